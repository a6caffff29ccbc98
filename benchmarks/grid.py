"""Benchmark of an experiment grid on Ray (issue 15): sequential against local Ray, and a simulated cluster.

Run as ``python -m benchmarks.grid`` (``--faces 96 --epochs 3 --seeds 2`` to change the grid). The grid is
variants ``none`` and ``regions`` × ``--seeds`` seeds of small-CNN Trainees on synthetic 32 px faces whose
training images carry noise around the expression regions (made here, no Trainer needed).

1. The same grid, each engine in a fresh interpreter: sequential in that process with one TensorFlow thread
   per cell (what ``rbdm experiment --workers 1`` does, so that its curves equal Ray's), sequential with
   TensorFlow on all cores (the path before issue 15; its curves differ), and on a local Ray instance with
   2 workers (one cell per CPU, one thread each). The table gives wall time (interpreter start to the run
   folder written), the Ray start-up (``ray.init``), the speed-up against the first row, the peak memory
   of the process and all its descendants (Ray's GCS, raylet and workers), sampled every 50 ms from
   ``/proc``, and whether the curves equal the first row's.
2. A simulated cluster on this machine (``ray.cluster_utils.Cluster``): a head node without CPUs (the
   driver, the object store holding the grid data) and two worker nodes with 1 CPU each. The grid runs
   across both nodes; once every cell has started, one worker node is killed. Ray re-runs the cells it
   held on the other node (``max_retries``); the table counts the cells per node, the re-run cells and
   whether the curves equal those of local Ray (same threads per cell, deterministic mode).

The first line printed gives the load average, since other processes on the cores distort the times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import print_table

_LABELS = ("happy", "sad", "surprise", "anger")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
#: The engines of the first table; the first is the baseline.
_MODES = {
    "sequential": "sequential, 1 TF thread (rbdm experiment)",
    "sequential_all_threads": "sequential, TF on all cores",
    "ray": "local Ray, 2 workers x 1 thread",
}


def _config(args: argparse.Namespace) -> Any:
    from analysis.experiment import ExperimentConfig
    from analysis.trainee import TrainingOptions

    return ExperimentConfig(
        dataset="planted",
        trainer="none needed",
        size_px=32,
        n_train=None,
        variants=("none", "regions"),
        seeds=tuple(range(args.seeds)),
        training=TrainingOptions(
            architecture="small_cnn",
            options={},
            epochs=args.epochs,
            switch_epoch=1,
            batch_size=16,
            eval_every_steps=4,
        ),
        tensorboard=False,
    )


def _data(args: argparse.Namespace) -> Any:
    from analysis.datasets import SplitArrays
    from analysis.datasets.synthetic_faces import make_faces
    from analysis.experiment import GridData, MaskedImages

    rng = np.random.default_rng(0)
    splits = []
    for n, tag in ((args.faces, "train"), (48, "val"), (48, "test")):
        x, y, regions = make_faces(n, size=32, rng=rng, labels=_LABELS)
        noise = rng.uniform(0, 1, size=x.shape).astype(np.float32)
        images = np.where(regions, x, noise).astype(np.float32)
        splits.append(SplitArrays(images, y, tuple(f"{tag}/{k}" for k in range(n)), regions))
    train = splits[0]
    masked = MaskedImages(np.arange(args.faces), (train.images * train.region_masks).astype(np.float32))
    return GridData(train, splits[1], splits[2], "48 faces", {"regions": masked})


# --------------------------------------------------------------------------------------------------------
# Children: one engine each, in a fresh interpreter
# --------------------------------------------------------------------------------------------------------


def _child(args: argparse.Namespace) -> dict[str, Any]:
    from analysis.grid_engine import Engine, limit_tensorflow_threads, ray_session, run_grid

    out = Path(args.out)
    config, data = _config(args), _data(args)
    if args.child in ("sequential", "sequential_all_threads"):
        if args.child == "sequential":  # as rbdm experiment --workers 1: a Ray task's one thread
            limit_tensorflow_threads(1)
        outcome = run_grid(config, out / "run", data=data)
        return {"status": outcome.run.status, "startup_s": 0.0}
    if args.child == "ray":
        engine = Engine(workers=2)
        start = time.perf_counter()
        with ray_session(engine):
            startup_s = time.perf_counter() - start
            outcome = run_grid(config, out / "run", engine=engine, data=data)
        return {"status": outcome.run.status, "startup_s": startup_s}
    return _cluster(config, data, out)


def _cluster(config: Any, data: Any, out: Path) -> dict[str, Any]:
    from ray.cluster_utils import Cluster

    from analysis.experiment import ExperimentProgress
    from analysis.grid_engine import Engine, run_grid

    start = time.perf_counter()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    try:
        nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        startup_s = time.perf_counter() - start
        last_step: dict[tuple[str, int], int] = {}
        reruns: set[tuple[str, int]] = set()
        killed: list[str] = []

        def watch(progress: ExperimentProgress) -> None:
            if progress.point is None or progress.variant is None or progress.seed is None:
                return
            key = (progress.variant, progress.seed)
            if progress.point.step <= last_step.get(key, 0):
                reruns.add(key)  # its curve starts again: Ray re-ran the cell elsewhere
            last_step[key] = progress.point.step
            if not killed and progress.done == 0 and len(last_step) >= 2:  # both nodes mid-cell: kill one
                killed.append(nodes[1].unique_id)
                cluster.remove_node(nodes[1], allow_graceful=False)

        outcome = run_grid(
            config, out / "run", engine=Engine(address=cluster.address), data=data, on_progress=watch
        )
        per_node = {node: list(outcome.nodes.values()).count(node) for node in set(outcome.nodes.values())}
        return {
            "status": outcome.run.status,
            "startup_s": startup_s,
            "cells": len(outcome.run.results),
            "failures": [f.error for f in outcome.failures],
            "per_node": sorted(per_node.values(), reverse=True),
            "nodes_used": len(per_node),
            "killed_node_ran": per_node.get(killed[0], 0) if killed else 0,
            "reruns": len(reruns),
            "killed": bool(killed),
        }
    finally:
        cluster.shutdown()


# --------------------------------------------------------------------------------------------------------
# The parent: runs each child, samples its memory, prints the tables
# --------------------------------------------------------------------------------------------------------


def _tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = int(fields[21]) * _PAGE_BYTES
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        children = [p for p, parent in parents.items() if parent == pid and p not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(rss.get(p, 0) for p in tree)


def _run_child(mode: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.grid", "--child", mode, "--out", str(out)]
    command += ["--faces", str(args.faces), "--epochs", str(args.epochs), "--seeds", str(args.seeds)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _tree_rss_bytes(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = process.communicate(timeout=1800)
    wall_s = time.perf_counter() - start
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"the {mode!r} child failed (exit {process.returncode}); its output is above.")
    record: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return {**record, "wall_s": wall_s, "peak_mib": peak[0] / 2**20}


def _curves(out: Path) -> Any:
    from analysis.experiment import load_run

    return load_run(out / "run").curves_by_size


def _largest_loss_difference(a: Any, b: Any) -> float:
    return max(abs(p.val_loss - q.val_loss) for key in a for p, q in zip(a[key], b[key], strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=96, help="training faces (default: 96)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per Trainee (default: 3)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds: cells = 2 variants × seeds (default: 2)")
    parser.add_argument("--child", choices=(*_MODES, "cluster"), help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args)))
        return 0
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; grid of {2 * args.seeds} cells")
    with tempfile.TemporaryDirectory(prefix="rbdm-bench-grid-") as scratch:
        folders = {mode: Path(scratch) / mode for mode in (*_MODES, "cluster")}
        results = {mode: _run_child(mode, args, folder) for mode, folder in folders.items()}
        curves = {mode: _curves(folder) for mode, folder in folders.items()}
    base = results["sequential"]["wall_s"]
    rows = [
        [
            name,
            f"{results[mode]['wall_s']:.1f}",
            f"{results[mode]['startup_s']:.1f}" if mode == "ray" else "–",
            f"{base / results[mode]['wall_s']:.2f} ×",
            f"{results[mode]['peak_mib']:.0f}",
            "yes" if curves[mode] == curves["sequential"] else "no",
        ]
        for mode, name in _MODES.items()
    ]
    columns = ["engine", "wall s", "Ray start-up s", "speed-up", "peak MiB", "curves equal 1st row's"]
    print_table(f"Grid of {2 * args.seeds} cells: sequential vs local Ray", columns, rows)
    cluster = results["cluster"]
    same = curves["cluster"] == curves["ray"]
    rows = [
        ["nodes (head without CPUs + 2 × 1 CPU)", "3"],
        ["cluster start-up s", f"{cluster['startup_s']:.1f}"],
        ["wall s (start-up and the node's loss included)", f"{cluster['wall_s']:.1f}"],
        ["worker node killed mid-run", "yes" if cluster["killed"] else "no (grid finished first)"],
        ["cells finished / failed", f"{cluster['cells']} / {len(cluster['failures'])}"],
        ["cells per node that finished them", ", ".join(str(n) for n in cluster["per_node"])],
        ["cells re-run after the node died", str(cluster["reruns"])],
        ["curves equal local Ray's", "yes" if same else "no"],
        [
            "largest val. loss difference, all threads vs 1 thread per cell",
            f"{_largest_loss_difference(curves['sequential_all_threads'], curves['sequential']):.1e}",
        ],
    ]
    print_table("Simulated cluster on this machine (ray.cluster_utils.Cluster)", ["", "value"], rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
