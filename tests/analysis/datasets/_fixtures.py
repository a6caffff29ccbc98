"""Helpers that write small image files for the dataset tests (random pixels, or corrupt bytes)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, rng: np.random.Generator, *, shape: Sequence[int] = (48, 48)) -> Path:
    """Write random pixels as PNG or JPEG (chosen by the suffix); grey for (H, W), RGB for (H, W, 3)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 256, size=tuple(shape), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format="JPEG" if path.suffix.lower() in {".jpg", ".jpeg"} else "PNG")
    return path


def write_corrupt(path: Path) -> Path:
    """Write bytes that no image decoder accepts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not an image")
    return path
