"""Benchmark of relevance maps (RBDM §5.2): maps per second against the plain gradient, and build times.

Run as ``python -m benchmarks.saliency`` (``--stock-build`` adds the slow stock build of MobileNetV2 and
InceptionV3). Two kinds of table, each with its baseline measured in the same run:

1. Maps per second. For each model, every analyzer of :data:`analysis.saliency.ANALYZERS` explains the
   same batch of 64 synthetic faces for their predicted class; the baseline is the gradient analyzer on
   that model and batch. Columns: the analyzer's build time, the best time per batch over 10 runs, maps
   per second, and the cost relative to the gradient (issue 22's goal for deep Taylor and LRP preset A
   flat: ≤ 1.5 ×; both are built with their element-wise operations fused by XLA, the gradient stock).
   Each batch time includes the one forward pass that picks the predicted class; the warm-up call before
   the timed ones compiles the fused operations.
   Models: the small CNN (48 × 48 grey) and MobileNetV2 α 0.35 (96 × 96 grey; LRP needs
   ``allow_untested_layers`` there, for MobileNetV2's separate ReLU layers).
2. Build time of deep Taylor: this project's build (Keras keeps the TensorFlow operations it wraps
   symbolic, see :mod:`analysis.saliency`) against the stock build (Keras evaluates each wrapped
   operation's inputs with a session call of its own), on the same model. The small CNN always; with
   ``--stock-build`` also MobileNetV2 and InceptionV3 (75 × 75), whose stock builds take minutes to a
   quarter of an hour on 2 CPU cores.

Weights are untrained: the cost of a relevance pass does not depend on the weight values. The first line
printed gives the load average, since other processes on the cores distort the times.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import time
import warnings
from typing import Any

import numpy as np

from analysis import models, saliency
from analysis.datasets.synthetic_faces import make_faces
from analysis.errors import AnalysisWarning
from benchmarks._report import best_of, print_table

BATCH = 64
BASELINE = "gradient"
#: Model name → (architecture, input shape, builder options, allow untested layers).
MODELS: dict[str, tuple[str, tuple[int, int, int], dict[str, Any], bool]] = {
    "Small CNN, 48 × 48 grey": ("small_cnn", (48, 48, 1), {}, False),
    "MobileNetV2 α 0.35, 96 × 96 grey": ("MobileNetV2", (96, 96, 1), {"alpha": 0.35}, True),
    "InceptionV3, 75 × 75 grey": ("InceptionV3", (75, 75, 1), {}, False),
}


def _bound(name: str) -> models.BoundModel:
    architecture, input_shape, options, _ = MODELS[name]
    return models.build_bound_model(architecture, input_shape=input_shape, options=options)


def _throughput_table(name: str) -> None:
    model, allow_untested = _bound(name), MODELS[name][3]
    images, _, _ = make_faces(BATCH, size=model.input_shape[0], rng=np.random.default_rng(0))
    timings: dict[str, tuple[float, float]] = {}
    for analyzer in [BASELINE, *(n for n in saliency.ANALYZERS if n != BASELINE)]:
        start = time.perf_counter()
        explainer = saliency.RelevanceExplainer(model, analyzer, allow_untested_layers=allow_untested)
        build_s = time.perf_counter() - start
        explainer.explain(images, batch_size=BATCH)  # warm-up: the first call compiles the function
        batch_s = best_of(functools.partial(explainer.explain, images, batch_size=BATCH), repeat=10)
        timings[analyzer] = (build_s, batch_s)
    base = timings[BASELINE][1]
    rows = [
        [analyzer, build_s, batch_s * 1e3, BATCH / batch_s, f"{batch_s / base:.2f}×"]
        for analyzer, (build_s, batch_s) in timings.items()
    ]
    print_table(
        f"{name}, batch of {BATCH}", ["analyzer", "build s", "ms / batch", "maps / s", "vs gradient"], rows
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
        _throughput_table(name)
    _build_table(list(MODELS) if args.stock_build else list(MODELS)[:1])


if __name__ == "__main__":
    main()
