"""Benchmark of Trainee training (RBDM §5.5): images per second of the pipeline against a plain ``model.fit``.

Run as ``python -m benchmarks.training`` (``--images 1024 --repeat 3`` to change the sizes). The pipeline
is :func:`analysis.trainee.train_trainee`: class-weighted batches built in numpy from one seeded generator
(shuffle, augmentation hook, grey to model input), Keras' compiled training function per step (the one
``model.fit`` calls), a curve point every K steps. The baseline is Keras' own ``model.fit`` on the same
in-memory arrays, the same architecture, optimizer, batch size, class weights and deterministic kernels,
in the same graph mode, measured in the same run.

Both train 3 epochs and are timed over epochs 2 and 3, after model building and the first epoch (which
builds the training functions): ``model.fit`` by a second call, the pipeline at its per-step ``cancel``
poll. The three are run in turn ``--repeat`` times (interleaved, so that a change in the load of the
cores hits all of them) and the best of each is kept. The
pipeline scores the validation split every ``--eval-every`` steps (the curves, which ``model.fit`` does
not make); the last row shows the pipeline with curve points only at the end, the like-for-like
comparison. Goal: the pipeline is not slower than ``model.fit`` (ratio ≥ 1 ×, within noise).

The first line printed gives the load average, since other processes on the cores distort the times.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.datasets.synthetic_faces import make_faces
from analysis.models import as_model_input, build_model, new_session
from analysis.trainee import TrainingOptions, train_trainee
from analysis.training import class_weights, compile_model, determinism
from benchmarks._report import print_table

Arrays = tuple[NDArray[np.float32], NDArray[np.int64]]


def _pipeline(
    train: Arrays, validation: Arrays, architecture: str, options: dict[str, Any], every: int
) -> float:
    """Images per second of epochs 2 and 3 of :func:`train_trainee`, timed at its per-step ``cancel`` poll."""
    stamps: list[float] = []

    def tick() -> bool:
        stamps.append(time.perf_counter())
        return False

    training = TrainingOptions(architecture=architecture, options=options, epochs=3, eval_every_steps=every)
    result = train_trainee(None, train, validation, training=training, cancel=tick)
    result.model.close()
    steps_per_epoch = math.ceil(len(train[1]) / 32)
    return 2 * len(train[1]) / (stamps[-1] - stamps[steps_per_epoch - 1])


def _model_fit(train: Arrays, architecture: str, options: dict[str, Any]) -> float:
    """Images per second of ``model.fit`` over 2 epochs, after a first epoch that builds its functions."""
    x, y = train
    weights = dict(enumerate(class_weights(y).tolist()))
    graph, session = new_session()
    with graph.as_default(), session.as_default(), determinism(0):
        model = build_model(architecture, input_shape=(x.shape[1], x.shape[2], 1), options=options)
        compile_model(model, learning_rate=1e-3)
        inputs = as_model_input(x, input_shape=(x.shape[1], x.shape[2], 1))
        targets = np.eye(8, dtype=np.float32)[y]
        model.fit(inputs, targets, batch_size=32, epochs=1, shuffle=True, verbose=0, class_weight=weights)
        start = time.perf_counter()
        model.fit(inputs, targets, batch_size=32, epochs=2, shuffle=True, verbose=0, class_weight=weights)
        elapsed = time.perf_counter() - start
    session.close()
    return 2 * len(y) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1024, help="training images (default: 1024)")
    parser.add_argument("--repeat", type=int, default=3, help="tries per measurement (default: 3)")
    parser.add_argument("--eval-every", type=int, default=25, help="steps between curve points (default: 25)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    rng = np.random.default_rng(0)
    x, y, _ = make_faces(args.images, size=48, rng=rng)
    x_val, y_val, _ = make_faces(128, size=48, rng=rng)
    train, validation = (x, y), (x_val, y_val)
    for architecture, options in (("small_cnn", {}), ("MobileNetV2", {"alpha": 0.35})):
        runs: dict[str, Callable[[], float]] = {
            "model.fit (baseline)": functools.partial(_model_fit, train, architecture, options),
            f"train_trainee, point every {args.eval_every} steps": functools.partial(
                _pipeline, train, validation, architecture, options, args.eval_every
            ),
            "train_trainee, point at the end only": functools.partial(
                _pipeline, train, validation, architecture, options, 10**9
            ),
        }
        tries: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, run in runs.items():
                tries[name].append(run())
        base = max(tries["model.fit (baseline)"])
        rows = [[name, max(rates), f"{max(rates) / base:.2f}×"] for name, rates in tries.items()]
        title = f"{architecture} {options or ''} on {len(y)} grey 48 × 48 faces, batches of 32"
        print_table(title, ["pipeline", "images / s", "vs model.fit"], rows)


if __name__ == "__main__":
    main()
