"""The embedded default dataset: synthetic faces from :mod:`analysis.datasets.synthetic_faces`, on demand.

Nothing is stored: sample ``i`` of a split is drawn from its own generator seeded with
``(seed, crc32(split), i)``, so any item can be produced alone, in any order, and the same arguments
always give the same pixels. Every sample carries its ``region_mask`` (the pixels that show the
expression), which real datasets cannot provide.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4 (the 8 categories of AffectNet/FERPlus).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from analysis._validation import check_shape
from analysis.datasets.base import Sample, check_split, count_labels, select_positions
from analysis.labels import LABELS

__all__ = ["SYNTHETIC_SPLITS", "SyntheticLoader"]

#: Default split names of the synthetic dataset.
SYNTHETIC_SPLITS: tuple[str, ...] = ("train", "validation", "test")

#: Smallest face analysis.datasets.synthetic_faces.make_face draws, in pixels.
_MIN_SIZE_PX = 16


def _check_count(value: object, *, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}.")
    return int(value)


class SyntheticLoader:
    """Stream synthetic faces, ``n_per_class`` of each of the 8 labels per split, labels interleaved.

    Items of a split cycle through :data:`~analysis.labels.LABELS` (neutral, happy, ..., contempt,
    neutral, ...). Ids are ``"synthetic/<split>/<position>"``.

    Parameters
    ----------
    n_per_class : int or mapping of str to int, default 25
        Faces per label in every split, or per split name.
    size : int, default 48
        Image height and width in pixels (at least 16).
    rgb : bool, default False
        ``(H, W, 3)`` images instead of grey ``(H, W)``.
    seed : int, default 0
        Seed of the whole dataset; splits draw from independent streams.
    splits : sequence of str, default ("train", "validation", "test")
        Split names.

    Raises
    ------
    ValueError
        For a negative count, a bad size or seed, or ``n_per_class`` naming unknown splits.
    """

    def __init__(
        self,
        *,
        n_per_class: int | Mapping[str, int] = 25,
        size: int = 48,
        rgb: bool = False,
        seed: int = 0,
        splits: Sequence[str] = SYNTHETIC_SPLITS,
    ) -> None:
        self._splits = tuple(splits)
        counts = (
            dict(n_per_class)
            if isinstance(n_per_class, Mapping)
            else dict.fromkeys(self._splits, n_per_class)
        )
        extra = sorted(set(counts) - set(self._splits))
        if extra:
            raise ValueError(f"n_per_class names unknown splits {extra!r}; the splits are {self._splits!r}.")
        self._n_per_class = {
            split: _check_count(counts.get(split, 0), name="n_per_class") for split in self._splits
        }
        self._size_px, _ = check_shape(size=(size, size))
        if self._size_px < _MIN_SIZE_PX:
            raise ValueError(f"synthetic faces need size >= {_MIN_SIZE_PX} pixels; got {size!r}.")
        self._rgb = bool(rgb)
        self._seed = _check_count(seed, name="seed")

    @property
    def name(self) -> str:
        """Loader kind, ``"synthetic"``."""
        return "synthetic"

    @property
    def splits(self) -> tuple[str, ...]:
        """Split names."""
        return self._splits

    @property
    def skipped(self) -> tuple[()]:
        """Always empty: generated faces cannot be unreadable."""
        return ()

    def labels(self, split: str) -> tuple[str, ...]:
        """Label of every item of ``split`` in streaming order (labels cycle through LABELS)."""
        check_split(split, self._splits, dataset="synthetic")
        n = self._n_per_class[split] * len(LABELS)
        return tuple(LABELS[i % len(LABELS)] for i in range(n))

    def class_counts(self, split: str) -> dict[str, int]:
        """``n_per_class`` for every label of ``split``."""
        return count_labels(self.labels(split))

    def iter_samples(self, split: str, *, positions: Sequence[int] | None = None) -> Iterator[Sample]:
        """Generate the faces of ``split`` lazily, each with its region mask.

        Parameters
        ----------
        split : str
            One of :attr:`splits`.
        positions : sequence of int, optional
            Only the items at these positions (generated in ascending order, identical to the full stream's).

        Yields
        ------
        Sample
        """
        labels = self.labels(split)
        chosen = select_positions(len(labels), positions)
        return self._generate(split, labels, chosen)

    def _generate(self, split: str, labels: Sequence[str], chosen: Sequence[int]) -> Iterator[Sample]:
        from analysis.datasets.synthetic_faces import make_face

        split_key = zlib.crc32(split.encode("utf-8"))
        for position in chosen:
            rng = np.random.default_rng([self._seed, split_key, position])
            face = make_face(labels[position], size=self._size_px, rgb=self._rgb, rng=rng)
            yield Sample(
                image=np.asarray(face.image, dtype=np.float32),
                label=labels[position],
                label_index=LABELS.index(labels[position]),
                id=f"synthetic/{split}/{position}",
                region_mask=np.asarray(face.region_mask, dtype=bool),
            )
