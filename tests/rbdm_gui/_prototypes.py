"""A small temporal-prototype result for the screen's tests (Qt-free): two units, twelve sequences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analysis.prototype_pipeline import PrototypeResult, prototypes_from_relevance


@dataclass(frozen=True)
class _Sequence:
    id: str
    class_name: str
    frames: NDArray[np.float32]


def result_of_two_units(rng: np.random.Generator) -> PrototypeResult:
    """Twelve 8-frame sequences of 16 × 16 px: unit A from frame 1, unit B (left or right blob) in 3-6."""
    sequences, scores, relevance = [], [], []
    for index in range(12):
        score = np.zeros((8, 2), dtype=np.float32)
        score[1:, 0] = 0.9
        score[3:7, 1] = 0.9
        a = np.zeros((16, 16))
        a[2:5, 5:11] = 1.0
        b = np.zeros((16, 16))
        b[10:14, (1 if index % 2 else 11) : (5 if index % 2 else 15)] = 1.0
        relevance.append(
            {
                "A": np.stack([a + 0.05 * rng.normal(size=a.shape) for _ in range(7)]),
                "B": np.stack([b + 0.05 * rng.normal(size=b.shape) for _ in range(4)]),
            }
        )
        sequences.append(
            _Sequence(
                f"s/{index}", "odd" if index % 2 else "even", rng.uniform(size=(8, 16, 16)).astype(np.float32)
            )
        )
        scores.append(score)
    return prototypes_from_relevance(sequences, scores, relevance, units=("A", "B"), rng=rng, factor=2)
