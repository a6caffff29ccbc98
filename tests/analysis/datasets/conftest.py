"""Fixture datasets written into ``tmp_path`` (never the shared real datasets)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.analysis.datasets._fixtures import write_corrupt, write_image


@pytest.fixture
def folder_root(tmp_path: Path, rng: np.random.Generator) -> Path:
    """``<split>/<label>/`` folders as FER2013 names them.

    train: angry a0-a2.png, happy h0.jpg, h1.JPG and a corrupt zz_broken.png, surprise s0.png (60 x 40);
    validation: sad x.png. Plus files that are not images, which must be ignored.
    """
    root = tmp_path / "fer"
    for i in range(3):
        write_image(root / "train" / "angry" / f"a{i}.png", rng)
    write_image(root / "train" / "happy" / "h0.jpg", rng)
    write_image(root / "train" / "happy" / "h1.JPG", rng)
    write_corrupt(root / "train" / "happy" / "zz_broken.png")
    write_image(root / "train" / "surprise" / "s0.png", rng, shape=(60, 40))
    write_image(root / "validation" / "sad" / "x.png", rng)
    (root / "train" / "angry" / "notes.txt").write_text("ignored")
    (root / "README.md").write_text("ignored")
    return root
