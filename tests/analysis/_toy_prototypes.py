"""Toy temporal-prototype inputs shared by the pipeline and visualisation tests (no TensorFlow)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class ToySequence:
    id: str
    class_name: str
    frames: NDArray[np.float32]


def toy_relevance(rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """Two units over twelve 8-frame sequences; unit B's maps lie bottom-left or bottom-right (planted)."""
    sequences, scores, relevance, sides = [], [], [], []
    for index in range(12):
        frames = rng.uniform(0, 1, size=(8, 12, 12)).astype(np.float32)
        score = np.zeros((8, 2), dtype=np.float32)
        score[2:, 0] = 0.9  # unit A from frame 2
        score[4:7, 1] = 0.8  # unit B in frames 4-6
        blob_a = np.zeros((12, 12))
        blob_a[1:3, 4:8] = 1.0
        blob_b = np.zeros((12, 12))
        side = index % 2
        blob_b[6:10, (0 if side == 0 else 8) : (4 if side == 0 else 12)] = 1.0
        maps = {
            "A": np.stack([blob_a + 0.05 * rng.normal(size=(12, 12)) for _ in range(6)]),
            "B": np.stack([blob_b + 0.05 * rng.normal(size=(12, 12)) for _ in range(3)]),
        }
        sequences.append(ToySequence(f"s{index}", "odd" if index % 3 else "", frames))
        scores.append(score)
        relevance.append(maps)
        sides += [side] * 3
    return sequences, scores, relevance, np.array(sides)
