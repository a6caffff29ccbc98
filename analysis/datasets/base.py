"""What every dataset loader shares: the sample record, the loader Protocol, image decoding, label maps.

A loader reads a dataset's own layout and label codes, maps them onto the common 8-label vocabulary
:data:`analysis.labels.LABELS` and streams :class:`Sample` records one at a time, so that a whole
corpus never has to sit in memory (RBDM §4). It first builds a cheap *index* (file names and labels,
no pixels), which answers :meth:`DatasetLoader.class_counts`; pixels are decoded only while streaming.
An image that cannot be decoded is skipped, recorded in :attr:`DatasetLoader.skipped` and reported with
an :class:`~analysis.errors.AnalysisWarning`; it never stops the stream.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4 (Datasets).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from analysis._validation import check_shape
from analysis.errors import AnalysisWarning
from analysis.labels import LABELS, label_index

__all__ = [
    "IMAGE_SUFFIXES",
    "DatasetLoader",
    "IndexEntry",
    "IndexedLoader",
    "Sample",
    "SkippedItem",
    "check_label_map",
    "check_split",
    "count_labels",
    "decode_image",
    "existing_path",
    "resolve_label",
    "resolve_size",
    "select_positions",
]

#: File suffixes (lower case) read as images by the folder-based loaders.
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png"})


@dataclass(frozen=True, slots=True, eq=False)
class Sample:
    """One labelled face image, as every loader yields it.

    Parameters
    ----------
    image : ndarray of float32, shape (H, W) or (H, W, 3)
        Grey or RGB pixels in [0, 1].
    label : str
        A name from :data:`analysis.labels.LABELS`.
    label_index : int
        Position of ``label`` in :data:`~analysis.labels.LABELS`.
    id : str
        Identifier unique within the loader (a relative path or a generated name).
    region_mask : ndarray of bool, shape (H, W), optional
        Pixels known to carry the expression (only synthetic faces know this).
    """

    image: NDArray[np.float32]
    label: str
    label_index: int
    id: str
    region_mask: NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        if self.image.dtype != np.float32 or self.image.ndim not in (2, 3):
            raise ValueError(
                f"sample {self.id!r}: image must be a float32 (H, W) or (H, W, 3) array; "
                f"got dtype {self.image.dtype!r} and shape {self.image.shape!r}."
            )
        if self.image.ndim == 3 and self.image.shape[2] != 3:
            raise ValueError(f"sample {self.id!r}: an RGB image needs 3 channels; got {self.image.shape!r}.")
        if label_index(self.label) != self.label_index:
            raise ValueError(
                f"sample {self.id!r}: label_index {self.label_index!r} does not match label {self.label!r}."
            )
        if self.region_mask is not None and self.region_mask.shape != self.image.shape[:2]:
            raise ValueError(
                f"sample {self.id!r}: region_mask shape {self.region_mask.shape!r} differs from the "
                f"image's (H, W) {self.image.shape[:2]!r}."
            )


@dataclass(frozen=True, slots=True)
class SkippedItem:
    """An item left out of a stream because its image could not be read.

    Parameters
    ----------
    id : str
        The item's identifier in its loader.
    path : str
        The file that failed.
    reason : str
        The decoder's or the file system's message.
    """

    id: str
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One item of a file-based dataset before decoding: where it is and what it shows.

    Parameters
    ----------
    id : str
        Identifier unique within the loader.
    path : pathlib.Path
        Image file.
    label : str
        A name from :data:`~analysis.labels.LABELS`.
    box_px : tuple of int, optional
        Face box ``(left, top, width, height)`` in image pixels to crop before resizing.
    """

    id: str
    path: Path
    label: str
    box_px: tuple[int, int, int, int] | None = None


@runtime_checkable
class DatasetLoader(Protocol):
    """What the training, masking and GUI code need from a dataset.

    ``iter_samples`` is a generator: nothing is decoded before the first ``next()``, and breaking out of
    the loop decodes nothing more. The training module wraps it in ``tf.data.Dataset.from_generator``.
    """

    @property
    def name(self) -> str:
        """Short name of the loader kind, a key of ``analysis.datasets.LOADERS``."""
        ...

    @property
    def splits(self) -> tuple[str, ...]:
        """The split names this dataset has, e.g. ``("train", "validation", "test")``."""
        ...

    @property
    def skipped(self) -> tuple[SkippedItem, ...]:
        """Items skipped so far while streaming (unreadable images), in the order met."""
        ...

    def labels(self, split: str) -> tuple[str, ...]:
        """Label of every item of ``split`` in streaming order, without decoding images."""
        ...

    def class_counts(self, split: str) -> dict[str, int]:
        """Number of items per label in ``split`` (every label of LABELS, zeros included)."""
        ...

    def iter_samples(self, split: str, *, positions: Sequence[int] | None = None) -> Iterator[Sample]:
        """Stream the samples of ``split``, or only those at ``positions`` of :meth:`labels`' order."""
        ...


def existing_path(path: str | Path, *, what: str) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, or raise if nothing is there.

    Raises
    ------
    FileNotFoundError
        Naming ``what`` was expected and the missing path.
    """
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise FileNotFoundError(
            f"{what} not found at {str(resolved)!r}. Check the path, or use the dataset 'synthetic' "
            "for the embedded faces."
        )
    return resolved


def check_split(split: str, splits: Sequence[str], *, dataset: str) -> None:
    """Raise ``ValueError`` unless ``split`` is one of ``splits``."""
    if split not in splits:
        raise ValueError(f"{dataset} has no split {split!r}; choose one of {', '.join(map(repr, splits))}.")


def resolve_label(name: str, label_map: Mapping[str, str], *, source: str) -> str:
    """Map a dataset's own label name onto the common vocabulary.

    Parameters
    ----------
    name : str
        The dataset's name for the class (a folder name, a CSV column).
    label_map : mapping of str to str
        Dataset name → a name from :data:`~analysis.labels.LABELS`.
    source : str
        Where ``name`` was found, shown in the message.

    Raises
    ------
    ValueError
        For a name missing from ``label_map``; the message lists the known names.
    """
    try:
        return label_map[name]
    except KeyError:
        known = ", ".join(sorted(label_map))
        raise ValueError(
            f"unknown label name {name!r} in {source}; known names: {known}. "
            "Rename it, or pass label_map={...} mapping it onto one of: " + ", ".join(LABELS) + "."
        ) from None


def check_label_map(label_map: Mapping[str, str]) -> dict[str, str]:
    """Return ``label_map`` as a dict after checking that every value is in the common vocabulary."""
    bad = sorted(f"{key!r}: {value!r}" for key, value in label_map.items() if value not in LABELS)
    if bad:
        raise ValueError(
            f"label_map must map onto the common labels ({', '.join(LABELS)}); got {', '.join(bad)}."
        )
    return dict(label_map)


def resolve_size(size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    """Return a target size as ``(height, width)`` in pixels, or ``None`` to keep each image's own."""
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        return check_shape(size=(size, size))
    return check_shape(size=size)


def decode_image(
    path: str | Path,
    *,
    size: int | tuple[int, int] | None = None,
    rgb: bool = False,
    box_px: tuple[int, int, int, int] | None = None,
) -> NDArray[np.float32]:
    """Read an image file as float32 pixels in [0, 1].

    Parameters
    ----------
    path : str or pathlib.Path
        A JPEG or PNG file (anything Pillow reads).
    size : int or (int, int), optional
        Output size in pixels, square for an int, ``(height, width)`` for a pair (bilinear resampling).
        ``None`` keeps the file's size.
    rgb : bool, default False
        Three channels ``(H, W, 3)`` instead of grey ``(H, W)`` (ITU-R 601-2 luma). 16-bit and other
        high-bit-depth grey images are scaled by their bit depth's full range (65535 for 16 bits).
    box_px : (int, int, int, int), optional
        ``(left, top, width, height)`` to crop, in the file's pixels, before resizing.

    Returns
    -------
    ndarray of float32, shape (H, W) or (H, W, 3)

    Raises
    ------
    OSError
        When the file is missing, truncated or not an image (``PIL.UnidentifiedImageError``).
    """
    target = resolve_size(size)
    with Image.open(path) as opened:
        if opened.mode in _HIGH_DEPTH_MODES:
            image = Image.fromarray(_unit_intensities(opened), mode="F")
        else:
            image = opened.convert("RGB" if rgb else "L")
    if box_px is not None:
        left, top, width, height = box_px
        image = image.crop((left, top, left + width, top + height))
    if target is not None and image.size != (target[1], target[0]):
        image = image.resize((target[1], target[0]), Image.Resampling.BILINEAR)
    if image.mode != "F":
        return np.asarray(image, dtype=np.float32) / np.float32(255.0)
    grey = np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=-1)) if rgb else grey


#: Pillow modes of grey images with more than 8 bits (16-bit PNG and TIFF, 32-bit integer and float).
_HIGH_DEPTH_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})


def _unit_intensities(image: Image.Image) -> NDArray[np.float32]:
    """A high-bit-depth grey image's pixels in [0, 1], by the full range of its bit depth.

    16-bit modes (and 32-bit integer images whose values fit 16 bits, as Pillow reads 16-bit PNGs) are
    divided by 65535, larger integers by 2³² − 1; float images are taken as intensities in [0, 1].
    Converting such images to 8 bits with Pillow clips every value above 255, which turns an
    ordinary 16-bit image almost white.
    """
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        return np.clip(values, 0.0, 1.0).astype(np.float32)
    full_scale = (
        65535.0 if image.mode.startswith("I;16") or values.max(initial=0.0) <= 65535.0 else 2.0**32 - 1
    )
    return np.clip(values / full_scale, 0.0, 1.0).astype(np.float32)


def count_labels(labels: Iterable[str]) -> dict[str, int]:
    """Count labels into a dict over all of :data:`~analysis.labels.LABELS` in vocabulary order."""
    counts = Counter(labels)
    return {label: counts.get(label, 0) for label in LABELS}


def select_positions(n_items: int, positions: Sequence[int] | None) -> list[int]:
    """Return sorted unique stream positions, all positions when ``None``; raise on out-of-range ones."""
    if positions is None:
        return list(range(n_items))
    chosen = sorted({int(p) for p in positions})
    if chosen and (chosen[0] < 0 or chosen[-1] >= n_items):
        raise ValueError(
            f"positions must lie in [0, {n_items}); got {chosen[0] if chosen[0] < 0 else chosen[-1]!r}."
        )
    return chosen


class IndexedLoader:
    """A file-based loader over a prepared index: counts from the index, pixels decoded while streaming.

    The per-dataset loaders build their index from the dataset's layout and hand it here.

    Parameters
    ----------
    name : str
        Loader kind, a key of ``analysis.datasets.LOADERS``.
    index : mapping of str to sequence of IndexEntry
        Split name → its items in streaming order.
    size : int or (int, int), optional
        Output size in pixels for every image (see :func:`decode_image`).
    rgb : bool, default False
        Decode to ``(H, W, 3)`` instead of grey ``(H, W)``.
    """

    def __init__(
        self,
        name: str,
        index: Mapping[str, Sequence[IndexEntry]],
        *,
        size: int | tuple[int, int] | None = None,
        rgb: bool = False,
    ) -> None:
        self._name = name
        self._index = {split: tuple(entries) for split, entries in index.items()}
        self._size = resolve_size(size)
        self._rgb = bool(rgb)
        self._skipped: dict[str, SkippedItem] = {}

    @property
    def name(self) -> str:
        """Loader kind, a key of ``analysis.datasets.LOADERS``."""
        return self._name

    @property
    def splits(self) -> tuple[str, ...]:
        """Split names in the dataset's own order."""
        return tuple(self._index)

    @property
    def skipped(self) -> tuple[SkippedItem, ...]:
        """Unreadable items met so far while streaming, each listed once."""
        return tuple(self._skipped.values())

    def entries(self, split: str) -> tuple[IndexEntry, ...]:
        """The index of ``split``: ids, paths and labels in streaming order."""
        check_split(split, self.splits, dataset=self._name)
        return self._index[split]

    def labels(self, split: str) -> tuple[str, ...]:
        """Label of every item of ``split`` in streaming order, without decoding images."""
        return tuple(entry.label for entry in self.entries(split))

    def class_counts(self, split: str) -> dict[str, int]:
        """Items per label of ``split``, counted from the index (all LABELS, zeros included)."""
        return count_labels(self.labels(split))

    def iter_samples(self, split: str, *, positions: Sequence[int] | None = None) -> Iterator[Sample]:
        """Stream decoded samples of ``split``; unreadable images are skipped, listed and warned about.

        Parameters
        ----------
        split : str
            One of :attr:`splits`.
        positions : sequence of int, optional
            Only the items at these positions of the split's order (streamed in ascending order).

        Yields
        ------
        Sample
        """
        entries = self.entries(split)
        chosen = select_positions(len(entries), positions)
        return self._stream(entries[p] for p in chosen)

    def _stream(self, entries: Iterable[IndexEntry]) -> Iterator[Sample]:
        for entry in entries:
            try:
                image = decode_image(entry.path, size=self._size, rgb=self._rgb, box_px=entry.box_px)
            except (OSError, ValueError, Image.DecompressionBombError) as err:
                self._skip(entry, err)
                continue
            yield Sample(image=image, label=entry.label, label_index=label_index(entry.label), id=entry.id)

    def _skip(self, entry: IndexEntry, err: BaseException) -> None:
        reason = f"{type(err).__name__}: {err}"
        self._skipped[entry.id] = SkippedItem(id=entry.id, path=str(entry.path), reason=reason)
        warnings.warn(
            f"{self._name}: skipped unreadable image {str(entry.path)!r} ({reason}); "
            "it is listed in loader.skipped. Replace or delete the file to include it.",
            AnalysisWarning,
            stacklevel=3,
        )
