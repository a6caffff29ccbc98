"""Benchmark of relevance maps (RBDM §5.2): maps per second of each analyzer against the plain gradient.

Run as ``python -m benchmarks.saliency`` (add ``--mobilenet`` for the second table). For each model,
every analyzer of :data:`analysis.saliency.ANALYZERS` explains the same batch of 64 synthetic faces for
their predicted class; the baseline is the gradient analyzer on that model and batch, measured in the same
run. Columns: the analyzer's one-off build time (graph construction, paid once per process and model),
the best time per batch over 10 runs, maps per second, and the cost relative to the gradient (the issue's
goal for deep Taylor and LRP preset A flat: ≤ 1.5 ×). Each batch time includes the one forward pass that
picks the predicted class, the same for every analyzer.

1. The small CNN (48 × 48 grey, :data:`analysis.models.ARCHITECTURES` ``"small_cnn"``).
2. With ``--mobilenet``: MobileNetV2, alpha 0.35, 96 × 96 grey. iNNvestigate's analyzer build grows
   steeply with depth (minutes per analyzer for MobileNetV2 on 2 CPU cores, about a quarter of an hour
   for deep Taylor on InceptionV3), so this table is opt-in. LRP needs ``allow_untested_layers`` there
   (MobileNetV2's separate ReLU layers).

Weights are untrained: the cost of a relevance pass does not depend on the weight values. The first line
printed gives the load average, since other processes on the cores distort the times.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
import warnings

import numpy as np
from numpy.typing import NDArray

from analysis import models, saliency
from analysis.errors import AnalysisWarning
from analysis.synthetic import make_faces
from benchmarks._report import best_of, print_table

BATCH = 64
BASELINE = "gradient"


def _table(
    title: str, model: models.BoundModel, images: NDArray[np.float32], *, allow_untested: bool
) -> None:
    timings: dict[str, tuple[float, float]] = {}
    for name in [BASELINE, *(n for n in saliency.ANALYZERS if n != BASELINE)]:
        start = time.perf_counter()
        explainer = saliency.RelevanceExplainer(model, name, allow_untested_layers=allow_untested)
        build_s = time.perf_counter() - start
        explainer.explain(images, batch_size=BATCH)  # warm-up: the first call compiles the function
        batch_s = best_of(functools.partial(explainer.explain, images, batch_size=BATCH), repeat=10)
        timings[name] = (build_s, batch_s)
    base = timings[BASELINE][1]
    rows = [
        [name, build_s, batch_s * 1e3, BATCH / batch_s, f"{batch_s / base:.2f}×"]
        for name, (build_s, batch_s) in timings.items()
    ]
    print_table(title, ["analyzer", "build s", "ms / batch", "maps / s", "vs gradient"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mobilenet", action="store_true", help="also MobileNetV2 96 × 96 (slow to build)")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    warnings.simplefilter("ignore", AnalysisWarning)  # untrained weights: some logits ≤ 0 give empty maps
    rng = np.random.default_rng(0)
    faces, _, _ = make_faces(BATCH, size=48, rng=rng)
    small = models.build_bound_model("small_cnn", input_shape=(48, 48, 1))
    _table(f"Small CNN, 48 × 48 grey, batch of {BATCH}", small, faces, allow_untested=False)
    if args.mobilenet:
        faces96, _, _ = make_faces(BATCH, size=96, rng=rng)
        mobile = models.build_bound_model("MobileNetV2", input_shape=(96, 96, 1), options={"alpha": 0.35})
        _table(
            f"MobileNetV2 alpha 0.35, 96 × 96 grey, batch of {BATCH}", mobile, faces96, allow_untested=True
        )


if __name__ == "__main__":
    main()
