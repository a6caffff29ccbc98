"""Tests for analysis.grid_engine: the grid's cells as Ray tasks on a local Ray instance with 2 CPUs.

One Ray instance serves the whole module (started here, shut down at the end); the grids are tiny (small
CNN Trainees on 24 px synthetic faces, 2 epochs) so that they run on a 2-core machine.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis.datasets import SplitArrays
from analysis.experiment import (
    Cell,
    ExperimentConfig,
    ExperimentProgress,
    ExperimentRun,
    GridData,
    MaskedImages,
    VariantResult,
    grid_cells,
    load_run,
    nested_subset,
)
from analysis.grid_engine import Engine, grid_status, limit_tensorflow_threads, resumable_run, run_grid
from analysis.trainee import TrainingOptions

_ROOT = Path(__file__).resolve().parents[2]
_LABELS = ("happy", "sad", "surprise", "anger")

#: Two variants × two seeds at the whole pool of 32 faces: four cells, 4 steps each.
CONFIG = ExperimentConfig(
    dataset="planted",
    trainer="none needed",
    size_px=24,
    n_train=None,
    variants=("none", "regions"),
    seeds=(0, 1),
    training=TrainingOptions(
        architecture="small_cnn", options={}, epochs=2, switch_epoch=1, batch_size=16, eval_every_steps=2
    ),
    tensorboard=False,
)


def _split(n: int, rng: np.random.Generator, tag: str) -> SplitArrays:
    from analysis.datasets.synthetic_faces import make_faces

    x, y, regions = make_faces(n, size=24, rng=rng, labels=_LABELS)
    noise = rng.uniform(0, 1, size=x.shape).astype(np.float32)
    return SplitArrays(
        np.where(regions, x, noise).astype(np.float32), y, tuple(f"{tag}/{k}" for k in range(n)), regions
    )


def _data(*, masked_positions: np.ndarray | None = None) -> GridData:
    rng = np.random.default_rng(0)
    train, validation, test = _split(32, rng, "train"), _split(16, rng, "val"), _split(16, rng, "test")
    assert train.region_masks is not None
    positions = np.arange(32) if masked_positions is None else masked_positions
    images = (train.images[positions] * train.region_masks[positions]).astype(np.float32)
    return GridData(train, validation, test, "16 faces", {"regions": MaskedImages(positions, images)})


def _same(a: tuple[VariantResult, ...], b: tuple[VariantResult, ...]) -> bool:
    return [dataclasses.replace(r, duration_s=0) for r in a] == [
        dataclasses.replace(r, duration_s=0) for r in b
    ]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """A Ray cluster of one head node with 2 CPUs, in its own processes, for the module; shut down after.

    The tests join it as drivers (``Engine(address=...)``, ``--ray-address``), as on a lab's cluster.
    """
    cluster_utils = pytest.importorskip("ray.cluster_utils")
    head = cluster_utils.Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}
    )
    try:
        yield head
    finally:
        head.shutdown()


#: Today's in-process path in a fresh interpreter whose TensorFlow has the one thread a Ray cell gets here:
#: oneDNN splits its sums by thread count, so curves are identical at equal threads per cell (1 against 2
#: threads moves validation losses in the 7th–9th digit).
_IN_PROCESS = """
import sys
from analysis.grid_engine import limit_tensorflow_threads
limit_tensorflow_threads(1)
from analysis.experiment import run_experiment
from tests.analysis.test_grid_engine import CONFIG, _data
run_experiment(CONFIG, sys.argv[1], data=_data())
"""


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> ExperimentRun:
    """The grid run today's way (every cell in one process, one after the other), 1 TensorFlow thread."""
    folder = tmp_path_factory.mktemp("in_process") / "run"
    subprocess.run([sys.executable, "-c", _IN_PROCESS, str(folder)], cwd=_ROOT, check=True, timeout=600)
    return load_run(folder)


# --------------------------------------------------------------------------------------------------------
# Without Ray
# --------------------------------------------------------------------------------------------------------


def test_engines_refuse_nonsense_and_say_where_cells_run() -> None:
    assert not Engine().on_ray and Engine(workers=2).on_ray and Engine(address="auto").on_ray
    for bad in ({"workers": 0}, {"cpus_per_cell": 0}, {"workers": True}, {"address": " "}):
        with pytest.raises(ValueError, match="must"):
            Engine(**bad)  # type: ignore[arg-type]


def test_the_status_line_counts_cells_and_gives_an_eta() -> None:
    assert grid_status(5, 2, 1, 12, eta_s=None) == "5/12 cells done, 2 running, 1 failed"
    assert grid_status(5, 2, 0, 12, eta_s=30.4).endswith("ETA 30 s")
    assert grid_status(5, 2, 0, 12, eta_s=600).endswith("ETA 10 min")


def test_a_folder_of_another_config_or_without_a_run_is_not_resumed(tmp_path: Path) -> None:
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds files but no run"):
        run_grid(CONFIG, tmp_path / "stray", data=_data())
    other = dataclasses.replace(CONFIG, seeds=(0,))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(
        json.dumps({"config": other.to_dict(), "status": "cancelled", "started_utc": "2026-01-01T00:00:00"})
    )
    with pytest.raises(FileExistsError, match="another experiment config"):
        run_grid(CONFIG, tmp_path / "run", data=_data())
    assert resumable_run(tmp_path, other, name="run") == tmp_path / "run"
    assert resumable_run(tmp_path, CONFIG, name="run") is None


def test_a_run_whose_name_ends_in_digits_is_found_to_resume(tmp_path: Path) -> None:
    """Old code stripped trailing digits and hyphens off the folder name before matching: a run named
    after ``synthetic:n=8`` (``…-synthetic-n-8``) was never resumed."""
    record = {"config": CONFIG.to_dict(), "status": "cancelled", "started_utc": "2026-01-01T00:00:00"}
    for name in ("20260101-000000-synthetic-n-8", "20260101-000000-synthetic-n-80"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "run.json").write_text(json.dumps(record))
    assert resumable_run(tmp_path, CONFIG, name="synthetic-n-8") == tmp_path / "20260101-000000-synthetic-n-8"
    assert (
        resumable_run(tmp_path, CONFIG, name="synthetic-n-80") == tmp_path / "20260101-000000-synthetic-n-80"
    )
    assert resumable_run(tmp_path, CONFIG, name="n-7") is None


# --------------------------------------------------------------------------------------------------------
# rbdm experiment --workers / --ray-address
# --------------------------------------------------------------------------------------------------------

#: Two seeds of the baseline on sixteen 48 px faces: two cells, no relevance maps needed.
_CLI = [
    "experiment",
    "--dataset",
    "synthetic:n=2",
    "--max-train",
    "16",
    "--max-val",
    "16",
    "--variants",
    "none",
]
_CLI += ["--seeds", "0,1", "--architecture", "small_cnn", "--epochs", "2", "--switch-epoch", "1"]
_CLI += ["--eval-every", "1", "--no-tensorboard", "--name", "tiny"]


@pytest.fixture(scope="module")
def local_ray_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``rbdm experiment --workers 2``: its own local Ray instance (requested before the cluster exists)."""
    import ray

    from rbdm_gui.cli.main import main

    out = tmp_path_factory.mktemp("local_ray")
    # Another Ray already runs on this machine (a user's `ray start`): --workers still starts its own.
    ray_cli = str(Path(sys.executable).with_name("ray"))
    subprocess.run([ray_cli, "start", "--head", "--num-cpus", "1", "--include-dashboard=false",
                    "--disable-usage-stats"], check=True, capture_output=True, timeout=120)  # fmt: skip
    try:
        assert main([*_CLI, "--out", str(out), "--workers", "2"]) == 0
    finally:
        subprocess.run([ray_cli, "stop", "--force"], check=False, capture_output=True, timeout=120)
    assert not ray.is_initialized()  # the instance it started is gone
    (run_dir,) = out.glob("*-tiny")
    return run_dir


@pytest.mark.tf
@pytest.mark.slow
def test_the_command_runs_its_cells_on_a_local_ray_instance(local_ray_run: Path) -> None:
    run = load_run(local_ray_run)
    assert run.status == "finished" and [(r.variant, r.seed) for r in run.results] == [
        ("none", 0),
        ("none", 1),
    ]
    assert "--workers 2" in (local_ray_run / "command.txt").read_text()
    assert (run.trainee_dir(run.results[1]) / "curves.csv").is_file()


@pytest.mark.tf
@pytest.mark.slow
def test_the_command_joins_a_cluster_and_resumes_an_interrupted_run(
    local_ray_run: Path, cluster: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rbdm_gui.cli.main import main

    argv = [*_CLI, "--out", str(tmp_path), "--ray-address", cluster.address]
    assert main(argv) == 0
    (run_dir,) = tmp_path.glob("*-tiny")
    assert "(finished; 2 cells trained, 0 kept)" in capsys.readouterr().out
    # the same cells on local Ray and on the cluster: the same curves
    assert load_run(run_dir).curves_by_size == load_run(local_ray_run).curves_by_size

    # interrupted after its first cell: the second row and curve never got written
    record = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**record, "status": "cancelled"}))
    for name in ("results.csv", "curves.csv"):
        lines = (run_dir / name).read_text().splitlines(keepends=True)
        (run_dir / name).write_text("".join(line for line in lines if not line.startswith("none,1,")))
    assert len(load_run(run_dir).results) == 1
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert f"{run_dir} (resuming its missing cells)" in text and "(finished; 1 cells trained, 1 kept)" in text
    assert load_run(run_dir).curves_by_size == load_run(local_ray_run).curves_by_size


# --------------------------------------------------------------------------------------------------------
# On Ray
# --------------------------------------------------------------------------------------------------------


@pytest.mark.tf
@pytest.mark.slow
def test_cells_on_ray_give_the_curves_and_scores_of_the_in_process_grid(
    cluster: Any, in_process: ExperimentRun, tmp_path: Path
) -> None:
    records: list[ExperimentProgress] = []
    outcome = run_grid(
        CONFIG,
        tmp_path / "run",
        engine=Engine(address=cluster.address),
        data=_data(),
        on_progress=records.append,
    )

    run = outcome.run
    assert run.status == "finished" and not outcome.failures and not outcome.kept
    assert set(outcome.trained) == set(grid_cells(CONFIG)) == set(outcome.nodes)
    assert len(set(outcome.nodes.values())) == 1  # the cluster's one node ran them all
    assert run.curves_by_size == in_process.curves_by_size  # deterministic mode: identical, not close
    assert _same(run.results, in_process.results)
    stored = load_run(run.run_dir)
    assert stored.curves_by_size == in_process.curves_by_size and _same(stored.results, in_process.results)
    for result in run.results:  # each task's folder came back from its node into the run folder
        assert (run.trainee_dir(result) / "curves.csv").is_file()
        assert (run.trainee_dir(result) / "confusion.csv").is_file()
    assert (run.run_dir / "report.md").is_file() and run.plot_path.is_file()
    # progress over the grid: live curve points, and the cells done counted up to all of them
    training = [r for r in records if r.stage == "training"]
    assert any(r.point is not None for r in training) and "running" in training[0].message
    assert [r.done for r in training if r.point is None][-1] == 4 and records[-1].stage == "finished"


@pytest.mark.tf
@pytest.mark.slow
def test_an_interrupted_run_keeps_its_finished_cells_and_trains_only_the_missing_ones(
    cluster: Any, in_process: ExperimentRun, tmp_path: Path
) -> None:
    done = [0]

    def note(progress: ExperimentProgress) -> None:
        if progress.stage == "training" and progress.point is None:
            done[0] = progress.done

    first = run_grid(
        CONFIG,
        tmp_path / "1-run",
        engine=Engine(address=cluster.address),
        data=_data(),
        on_progress=note,
        cancel=lambda: done[0] >= 1,
    )
    assert first.run.status == "cancelled" and 1 <= len(first.run.results) < 4
    assert resumable_run(tmp_path, CONFIG, name="run") == tmp_path / "1-run"

    second = run_grid(CONFIG, tmp_path / "1-run", engine=Engine(address=cluster.address), data=_data())
    assert set(second.kept) == set(first.trained) and set(second.kept).isdisjoint(second.trained)
    assert set(second.kept) | set(second.trained) == set(grid_cells(CONFIG))
    assert second.run.status == "finished" and second.run.started_utc == first.run.started_utc
    assert second.run.curves_by_size == in_process.curves_by_size and _same(
        second.run.results, in_process.results
    )
    assert resumable_run(tmp_path, CONFIG, name="run") is None  # finished: nothing left to resume


@pytest.mark.tf
@pytest.mark.slow
def test_a_failing_cell_is_reported_with_its_error_and_the_others_finish(
    cluster: Any, tmp_path: Path
) -> None:
    config = dataclasses.replace(CONFIG, seeds=(0,), train_sizes=(8, None))
    data = _data()
    small = nested_subset(data.train.labels, 8, seed=config.subset_seed)
    # the regions masks cover only faces outside the 8-image subset: that one cell has nothing to train on
    outside = np.setdiff1d(np.arange(32), small)
    outcome = run_grid(
        config, tmp_path / "run", engine=Engine(address=cluster.address), data=_data(masked_positions=outside)
    )

    assert [f.cell for f in outcome.failures] == [Cell("regions", 0, 8)]
    assert (
        outcome.failures[0].error.startswith("AnalysisError:")
        and "no masked images" in outcome.failures[0].error
    )
    assert set(outcome.trained) == {Cell("none", 0, 8), Cell("none", 0, None), Cell("regions", 0, None)}
    stored = load_run(outcome.run.run_dir)
    assert stored.status == "failed" and "1 of 4 cells failed: regions, seed 0, size 8" in stored.error
    assert [(r.variant, r.train_size) for r in stored.results] == [("none", 8), ("none", 32), ("regions", 32)]


@pytest.mark.tf
def test_a_worker_limits_tensorflow_to_the_cpus_ray_granted(cluster: Any) -> None:
    import ray

    def threads() -> int:
        granted = int(ray.get_runtime_context().get_assigned_resources()["CPU"])
        return limit_tensorflow_threads(granted)

    ray.init(address=cluster.address, logging_level="WARNING", log_to_driver=False)
    try:
        assert ray.get(ray.remote(num_cpus=1)(threads).remote()) == 1
        assert ray.get(ray.remote(num_cpus=2)(threads).remote()) == 2
    finally:
        ray.shutdown()
