"""Small in-memory subsets of a split as numpy arrays, for training and analysis on a CPU.

The subset is chosen from the loader's label index before any pixel is decoded, so asking for 200
images of a 28,000-image split decodes 200 images.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4 (Datasets) and §5.5 (training sets).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analysis.datasets.base import DatasetLoader, Sample, check_split
from analysis.labels import LABELS

__all__ = ["SplitArrays", "load_arrays", "subset_positions"]


@dataclass(frozen=True, slots=True, eq=False)
class SplitArrays:
    """A split (or a subset of one) held in memory.

    Parameters
    ----------
    images : ndarray of float32, shape (N, H, W) or (N, H, W, 3)
        Pixels in [0, 1].
    label_indices : ndarray of int64, shape (N,)
        Positions in :data:`analysis.labels.LABELS`.
    ids : tuple of str, length N
        The samples' identifiers in their loader.
    region_masks : ndarray of bool, shape (N, H, W), optional
        Present when every sample carries a region mask (synthetic faces).
    """

    images: NDArray[np.float32]
    label_indices: NDArray[np.int64]
    ids: tuple[str, ...]
    region_masks: NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.label_indices.shape != (n,) or len(self.ids) != n:
            raise ValueError(
                f"images, label_indices and ids must share their length; got {n}, "
                f"{self.label_indices.shape[0]} and {len(self.ids)}."
            )

    @property
    def labels(self) -> tuple[str, ...]:
        """Label names of the samples."""
        return tuple(LABELS[i] for i in self.label_indices)


def _check_cap(value: int | None, *, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer or None; got {value!r}.")
    return int(value)


def subset_positions(
    labels: Sequence[str],
    *,
    max_count: int | None = None,
    per_class: int | None = None,
    rng: np.random.Generator | None = None,
) -> list[int]:
    """Choose stream positions for a subset, class by class, without looking at pixels.

    Each class keeps at most ``per_class`` items: its first ones in stream order, or a random draw when
    ``rng`` is given. ``max_count`` then takes items round-robin over the classes in
    :data:`~analysis.labels.LABELS` order (one of each class in turn), so a small subset is as balanced
    as the classes allow.

    Parameters
    ----------
    labels : sequence of str
        Label of each item in stream order (``loader.labels(split)``).
    max_count : int, optional
        Most items in all.
    per_class : int, optional
        Most items per class.
    rng : numpy.random.Generator, optional
        Draw each class's items at random instead of taking the first ones.

    Returns
    -------
    list of int
        Chosen positions, ascending.
    """
    max_count = _check_cap(max_count, name="max_count")
    per_class = _check_cap(per_class, name="per_class")
    groups = {label: [p for p, lab in enumerate(labels) if lab == label] for label in LABELS}
    if rng is not None:
        groups = {label: [int(p) for p in rng.permutation(group)] for label, group in groups.items()}
    if per_class is not None:
        groups = {label: group[:per_class] for label, group in groups.items()}
    chosen: list[int] = []
    depth = max((len(group) for group in groups.values()), default=0)
    for rank in range(depth):
        chosen.extend(group[rank] for group in groups.values() if rank < len(group))
    if max_count is not None:
        chosen = chosen[:max_count]
    return sorted(chosen)


def _stack(samples: list[Sample], *, dataset: str) -> NDArray[np.float32]:
    shapes = {sample.image.shape for sample in samples}
    if len(shapes) > 1:
        raise ValueError(
            f"{dataset}: images differ in shape ({', '.join(map(str, sorted(shapes)))}); "
            "open the loader with size=48 (or another size) so they can be stacked."
        )
    return np.stack([sample.image for sample in samples])


def load_arrays(
    loader: DatasetLoader,
    split: str,
    *,
    max_count: int | None = None,
    per_class: int | None = None,
    rng: np.random.Generator | None = None,
) -> SplitArrays:
    """Decode a split, or a capped subset of it, into numpy arrays in stream order.

    Unreadable images are skipped as while streaming (listed in ``loader.skipped``), so the arrays can
    hold fewer items than chosen. The same loader, arguments and ``rng`` seed give the same arrays.

    Parameters
    ----------
    loader : DatasetLoader
        Any loader of :data:`analysis.datasets.LOADERS`.
    split : str
        One of ``loader.splits``.
    max_count, per_class, rng
        Subset choice, see :func:`subset_positions`.

    Returns
    -------
    SplitArrays

    Raises
    ------
    ValueError
        For an unknown split, a bad cap, or images of different shapes (open the loader with ``size``).
    """
    check_split(split, loader.splits, dataset=loader.name)
    positions = subset_positions(loader.labels(split), max_count=max_count, per_class=per_class, rng=rng)
    samples = list(loader.iter_samples(split, positions=positions))
    if not samples:
        return SplitArrays(
            images=np.zeros((0, 0, 0), dtype=np.float32),
            label_indices=np.zeros(0, dtype=np.int64),
            ids=(),
        )
    masks = [sample.region_mask for sample in samples]
    return SplitArrays(
        images=_stack(samples, dataset=loader.name),
        label_indices=np.array([sample.label_index for sample in samples], dtype=np.int64),
        ids=tuple(sample.id for sample in samples),
        region_masks=None if any(m is None for m in masks) else np.stack([m for m in masks if m is not None]),
    )
