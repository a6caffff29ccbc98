"""Masked copies of a dataset on disk: "Masking the Input" applied to a whole split (RBDM §5.4, §5.5).

The paper creates "a masked version of the FERPlus dataset for each masking algorithm" and trains the
Trainee on it. Here one masking method gives one folder that the folder loader reads back
(:class:`analysis.datasets.ImageFolderLoader`)::

    <root>/masked_dataset.json          method, options, where the images and masks came from
    <root>/manifest.csv                 id, file, split, label, source, method, options, kept_fraction
    <root>/<split>/<label>/<name>.png   I * M, 8-bit grey or RGB

Masks come from the Trainer's relevance maps (:data:`analysis.masking.MASKS`: negative, mean, perceptive)
or from recorded human fixations (``gaze``: the perceptive mask with real fixations instead of the most
relevant pixels, the paper's stated future work, §6). Writing is resumable: each image is written to a
temporary file and renamed, then listed in the manifest; a second run skips the images already listed and
appends the rest, so an interrupted run finishes with the same bytes as an uninterrupted one.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4 (masks, I * M), §5.5 (masked versions
   of the dataset), §5.3.2 (heatmaps, visual span, n fixations) and §6 (masking with human fixations).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image

from analysis._validation import check_count, check_points, check_shape
from analysis.datasets.arrays import SplitArrays
from analysis.errors import AnalysisError
from analysis.files import atomic_write_bytes
from analysis.geometry import VISUAL_SPAN_DEG, ScreenGeometry, StimulusRect
from analysis.labels import LABELS
from analysis.masking import MASKS, apply_mask
from analysis.perception import VisualSpan, fixation_heatmap, visual_span_in_image

__all__ = [
    "DEFAULT_N_POINTS",
    "HEADER_FILE",
    "MANIFEST_FIELDS",
    "MANIFEST_FILE",
    "MASK_METHODS",
    "ImageFixations",
    "MaskSet",
    "WriteResult",
    "fusion_masks",
    "gaze_heatmaps",
    "gaze_masks",
    "image_file_name",
    "load_masked_images",
    "perceptive_options",
    "read_manifest",
    "relevance_masks",
    "write_masked_dataset",
]

#: Masking methods a masked dataset can be made with: the three of RBDM §5.4, and human gaze (§6).
MASK_METHODS: Final = (*MASKS, "gaze")

#: n of perceptive masking when no study gives the annotators' mean fixation count (RBDM §5.3.2). The paper
#: does not publish its n; 10 fixations are about 2.5 s of looking at a face at a typical 250 ms per
#: fixation. Pass the mean of a real study instead (``analysis.perception.mean_fixation_count``).
DEFAULT_N_POINTS: Final = 10

#: Whole datasets are masked through the stacked (B, H, W) API in slices of about this many pixels
#: (1,820 maps of 48 × 48, 83 of 224 × 224: a 32 MB float64 copy at a time).
_MASK_BATCH_PIXELS: Final = 1 << 22

MANIFEST_FILE: Final = "manifest.csv"
HEADER_FILE: Final = "masked_dataset.json"
#: Columns of the manifest, one row per written image.
MANIFEST_FIELDS: Final = ("id", "file", "split", "label", "source", "method", "options", "kept_fraction")


@dataclass(frozen=True, slots=True)
class MaskSet:
    """Binary masks M for some images of a split, made by one method.

    Parameters
    ----------
    method : str
        One of :data:`MASK_METHODS`.
    options : mapping
        The method's options (JSON-compatible), recorded with every image.
    masks : ndarray of bool, shape (M, H, W)
        True keeps a pixel (m_i = 1).
    positions : ndarray of int, shape (M,)
        Which images of the split each mask belongs to (indices into its arrays).
    missing : tuple of str
        Ids of images that got no mask (gaze: never fixated); they are not written.
    """

    method: str
    options: Mapping[str, Any]
    masks: NDArray[np.bool_]
    positions: NDArray[np.intp]
    missing: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in MASK_METHODS:
            raise ValueError(f"unknown masking method {self.method!r}; expected one of {MASK_METHODS!r}.")
        if self.masks.ndim != 3 or self.masks.dtype != np.bool_ or self.positions.shape != (len(self.masks),):
            raise ValueError(
                f"masks must be a boolean (M, H, W) array with one position each; got masks of shape "
                f"{self.masks.shape!r} ({self.masks.dtype}) and positions of shape {self.positions.shape!r}."
            )


@dataclass(frozen=True, slots=True)
class ImageFixations:
    """One viewer's fixations on one stimulus, in the stimulus image's pixels, and their visual span.

    What the gaze masks and heatmaps consume; a recorded trial (:class:`tracking.study.Viewing`) gives
    one with :meth:`tracking.study.Viewing.on_image`, and :func:`tracking.study.read_image_fixations`
    gives every trial of a study file.

    Parameters
    ----------
    fixations_image_px : ndarray, shape (N, 2)
        Fixation centres ``(x, y)`` in image pixels (:func:`analysis.geometry.screen_to_image`).
    span : VisualSpan
        The heatmap kernel of the viewer's screen in image pixels (:func:`visual_span_in_image`).
    """

    fixations_image_px: NDArray[np.float64]
    span: VisualSpan

    def __post_init__(self) -> None:
        check_points(fixations_image_px=self.fixations_image_px)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What :func:`write_masked_dataset` did.

    Parameters
    ----------
    root : Path
        The masked dataset's folder.
    written : int
        Images written by this call.
    reused : int
        Images already written and listed by an earlier (interrupted) call, left as they were.
    missing : tuple of str
        Ids skipped because they have no mask (see :attr:`MaskSet.missing`).
    mean_kept_fraction : float
        Mean share of pixels kept over the images of this split.
    """

    root: Path
    written: int
    reused: int
    missing: tuple[str, ...] = field(default=())
    mean_kept_fraction: float = float("nan")


# --------------------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------------------


def perceptive_options(
    image_shape: tuple[int, int],
    *,
    n_points: int = DEFAULT_N_POINTS,
    geometry: ScreenGeometry | None = None,
    stimulus_rect: StimulusRect | None = None,
    angle_deg: float = VISUAL_SPAN_DEG,
) -> dict[str, float]:
    """Options of perceptive masking for images of ``image_shape``: ``n_points``, ``c`` and ``radius``.

    ``c`` and ``radius`` (image pixels) are the visual span of ``angle_deg`` on the screen of the study
    (RBDM §5.3.1: 27", 2560 × 1440 px, 70 cm) scaled into an image drawn in ``stimulus_rect`` (1200 px
    square in the screen's centre): for a 48 px image, c ≈ 1.78 px and radius ≈ 10.5 px.

    Parameters
    ----------
    image_shape : tuple of int
        ``(height, width)`` of the images to mask.
    n_points : int
        The annotators' mean number of fixations per image (:data:`DEFAULT_N_POINTS` without a study).
    geometry : ScreenGeometry, optional
        The study's screen; the paper's by default.
    stimulus_rect : StimulusRect, optional
        Where the images were drawn; ``geometry.stimulus_rect()`` by default.
    angle_deg : float
        Visual angle of the span (5° after Blignaut 2010).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 (n, visual span, c = 0.17 · span)
       and §5.4 (perceptive masking).
    """
    shape = check_shape(image_shape=image_shape)
    count = check_count(n_points=n_points)
    screen = ScreenGeometry() if geometry is None else geometry
    rect = screen.stimulus_rect() if stimulus_rect is None else stimulus_rect
    span = visual_span_in_image(screen, rect, shape, angle_deg=angle_deg)
    return {"n_points": count, "c": span.c, "radius": span.radius}


def relevance_masks(maps: ArrayLike, method: str, *, options: Mapping[str, Any] | None = None) -> MaskSet:
    """Masks of every image from its relevance map with one of :data:`analysis.masking.MASKS`.

    Parameters
    ----------
    maps : array_like, shape (N, H, W)
        2-D relevance maps (:func:`analysis.saliency.compute_relevance_maps`).
    method : str
        ``"negative"``, ``"mean"`` or ``"perceptive"``.
    options : mapping, optional
        Keyword options of the mask (``fraction`` for negative; ``n_points``, ``c``, ``radius`` for
        perceptive, e.g. from :func:`perceptive_options`).

    Returns
    -------
    MaskSet
        One mask per map, ``positions`` 0 … N-1.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4.
    """
    if method not in MASKS:
        raise ValueError(
            f"unknown relevance masking method {method!r}; expected one of {tuple(MASKS)!r} "
            "('gaze' masks come from fixations: use gaze_masks)."
        )
    values = np.asarray(maps)
    if values.ndim != 3 or len(values) == 0:
        raise ValueError(f"maps must be a non-empty batch (N, H, W) of 2-D maps; got shape {values.shape!r}.")
    chosen = dict(options or {})
    masks = _stacked_masks(values, partial(MASKS[method], **chosen))
    return MaskSet(method, _json_safe(chosen), masks, np.arange(len(values), dtype=np.intp))


def gaze_masks(
    viewings: Mapping[str, Sequence[ImageFixations]], ids: Sequence[str], image_shape: tuple[int, int]
) -> MaskSet:
    """Masks from recorded human fixations: keep what any viewer perceived (RBDM §6, future work).

    The perceptive mask of RBDM §5.4 with the annotators' actual fixations instead of the Trainer's most
    relevant pixels: per viewer the fixation heatmap I (visual-span Gaussians, §5.3.2) and m_i = 1 where
    I_i > 0 for at least one viewer (the union equals I > 0 of the summed heatmap, as heatmaps are ≥ 0).

    Parameters
    ----------
    viewings : mapping of str to sequence of ImageFixations
        Stimulus id → the viewings recorded for it (several annotators or sessions).
    ids : sequence of str
        The split's sample ids, in the order of its arrays.
    image_shape : tuple of int
        ``(height, width)`` of the split's images.

    Returns
    -------
    MaskSet
        Masks for the images with at least one fixation; the others are listed in ``missing`` (never
        silently left unmasked).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2, §5.4 and §6 ("perceptive masking
       should be used with actual human fixations").
    """
    shape = check_shape(image_shape=image_shape)
    masks, positions, missing = [], [], []
    for position, sample_id in enumerate(ids):
        seen = [v for v in viewings.get(sample_id, ()) if len(v.fixations_image_px)]
        if not seen:
            missing.append(sample_id)
            continue
        keep = np.zeros(shape, dtype=np.bool_)
        for viewing in seen:
            keep |= fixation_heatmap(viewing.fixations_image_px, shape, viewing.span) > 0
        masks.append(keep)
        positions.append(position)
    stacked = np.stack(masks) if masks else np.zeros((0, *shape), dtype=np.bool_)
    spans = sorted({(v.span.c, v.span.radius) for views in viewings.values() for v in views})
    options = {"spans_px": [{"c": c, "radius": r} for c, r in spans]}
    return MaskSet("gaze", options, stacked, np.asarray(positions, dtype=np.intp), tuple(missing))


def gaze_heatmaps(
    viewings: Mapping[str, Sequence[ImageFixations]], ids: Sequence[str], image_shape: tuple[int, int]
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """The summed fixation heatmap of every viewed image: where human gaze fell (RBDM §5.3.2).

    Parameters
    ----------
    viewings, ids, image_shape
        As for :func:`gaze_masks`.

    Returns
    -------
    positions : ndarray of intp, shape (M,)
        Images with at least one fixation (indices into ``ids``), ascending.
    maps : ndarray of float64, shape (M, H, W)
        Σ over their viewings of the visual-span heatmap I (≥ 0, > 0 somewhere).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2, I(x, y).
    """
    shape = check_shape(image_shape=image_shape)
    maps, positions = [], []
    for position, sample_id in enumerate(ids):
        seen = [v for v in viewings.get(sample_id, ()) if len(v.fixations_image_px)]
        if seen:
            maps.append(sum(fixation_heatmap(v.fixations_image_px, shape, v.span) for v in seen))
            positions.append(position)
    stacked = np.stack(maps).astype(np.float64) if maps else np.zeros((0, *shape), dtype=np.float64)
    return np.asarray(positions, dtype=np.intp), stacked


def fusion_masks(relevance: ArrayLike, gaze: ArrayLike) -> NDArray[np.bool_]:
    """Masks from the fusion of a Trainer's relevance and human gaze: the mean mask of their normalised mean.

    Per image F = (R⁺ / max R⁺ + G / max G) / 2, with R⁺ the positive relevance and G the gaze heatmap (a
    map whose maximum is 0 contributes 0), then m_i = 1 where F_i ≥ mean(F) (:func:`analysis.masking.
    mean_mask`). Both sources count equally whatever their scale; pixels that only one source marks are
    kept when that source is strong there.

    Parameters
    ----------
    relevance, gaze : array_like, shape (N, H, W)
        Relevance maps and gaze heatmaps of the same N images.

    Returns
    -------
    ndarray of bool, shape (N, H, W)

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4 (mean masking) and §7 (combining
       human and model relevance as future work).
    """
    r = np.clip(np.asarray(relevance, dtype=np.float64), 0, None)
    g = np.asarray(gaze, dtype=np.float64)
    if r.ndim != 3 or r.shape != g.shape:
        raise ValueError(
            f"relevance and gaze must be (N, H, W) maps of the same images; got shapes {r.shape!r} and "
            f"{g.shape!r}."
        )
    if not (np.all(np.isfinite(r)) and np.all(np.isfinite(g)) and np.all(g >= 0)):
        raise ValueError("relevance must be finite and gaze heatmaps finite and ≥ 0; replace bad values.")
    fused = (_unit_max(r) + _unit_max(g)) / 2
    return _stacked_masks(fused, MASKS["mean"])


def _stacked_masks(
    maps: NDArray[Any], mask: Callable[[NDArray[Any]], NDArray[np.bool_]]
) -> NDArray[np.bool_]:
    """``mask`` applied to (B, H, W) slices of ``maps`` (N, H, W) into one preallocated (N, H, W) array.

    The stacked masking API for a whole dataset; slices of about ``_MASK_BATCH_PIXELS`` pixels bound the
    float64 copy that masking makes of each.
    """
    masks = np.empty(maps.shape, dtype=np.bool_)
    step = max(1, _MASK_BATCH_PIXELS // max(1, maps.shape[1] * maps.shape[2]))
    for start in range(0, len(maps), step):
        masks[start : start + step] = mask(maps[start : start + step])
    return masks


def _unit_max(maps: NDArray[np.float64]) -> NDArray[np.float64]:
    peak = maps.reshape(len(maps), -1).max(axis=1, initial=0.0)[:, None, None]
    return np.divide(maps, peak, out=np.zeros_like(maps), where=peak > 0)


def _json_safe(options: Mapping[str, Any]) -> dict[str, Any]:
    try:
        parsed: dict[str, Any] = json.loads(json.dumps(dict(options), sort_keys=True))
    except TypeError as err:
        raise ValueError(f"mask options must be JSON-compatible numbers; got {dict(options)!r}.") from err
    return parsed


# --------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def image_file_name(sample_id: str) -> str:
    """The PNG file name of a sample: its id without an image suffix, unsafe characters as ``_``.

    ``"train/angry/Training_10118481.jpg"`` → ``"train_angry_Training_10118481.png"``,
    ``"synthetic/train/3"`` → ``"synthetic_train_3.png"``.
    """
    stem = re.sub(r"\.(jpe?g|png)$", "", str(sample_id), flags=re.IGNORECASE)
    return _UNSAFE.sub("_", stem).strip("._") + ".png"


def write_masked_dataset(
    arrays: SplitArrays,
    mask_set: MaskSet,
    root: str | Path,
    *,
    split: str,
    source: str,
    provenance: Mapping[str, Any] | None = None,
    on_image: Callable[[int, int], None] | None = None,
) -> WriteResult:
    """Write the masked images I * M of one split as PNG files plus manifest rows; resumable.

    Parameters
    ----------
    arrays : SplitArrays
        The split's images (float in [0, 1]), labels and ids (:func:`analysis.datasets.load_arrays`).
    mask_set : MaskSet
        Masks for (some of) these images.
    root : str or Path
        The masked dataset's folder (one per method); created if missing.
    split : str
        Split name, the first folder level (``train``).
    source : str
        Where the images came from (a dataset spec or path), recorded per image.
    provenance : mapping, optional
        How the masks were made (Trainer file and hash, analyzer, study file ...), stored in
        ``masked_dataset.json`` with the method and options.
    on_image : callable, optional
        Called as ``on_image(n_done, n_total)`` after each image, reused ones included. An exception it
        raises stops the writing; a later call with the same arguments resumes.

    Returns
    -------
    WriteResult

    Raises
    ------
    AnalysisError
        When ``root`` holds a masked dataset made with another method, options or source, or two ids map
        onto one file name.
    ValueError
        When the masks do not fit the images.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4 (I * M) and §5.5 (a masked version
       of the dataset per masking algorithm).
    """
    folder = Path(root)
    _check_fit(arrays, mask_set)
    header = {
        "method": mask_set.method,
        "options": dict(mask_set.options),
        "source": source,
        "provenance": _json_safe(provenance or {}),
    }
    _claim(folder, header)
    done = {row["id"] for row in read_manifest(folder) if (folder / row["file"]).is_file()}
    names = _file_names(arrays, mask_set, split)
    options_text = json.dumps(dict(mask_set.options), sort_keys=True)
    written = reused = 0
    total = len(mask_set.positions)
    with _manifest_appender(folder) as append:
        for k, position in enumerate(mask_set.positions):
            sample_id = arrays.ids[position]
            if sample_id in done:
                reused += 1
            else:
                label = LABELS[int(arrays.label_indices[position])]
                _write_png(folder / names[k], apply_mask(arrays.images[position], mask_set.masks[k]))
                kept = float(mask_set.masks[k].mean())
                row = [sample_id, names[k], split, label, source, mask_set.method, options_text, repr(kept)]
                append(row)
                written += 1
            if on_image is not None:
                on_image(k + 1, total)
    kept_mean = float(mask_set.masks.mean()) if total else float("nan")
    return WriteResult(folder, written, reused, mask_set.missing, kept_mean)


def _check_fit(arrays: SplitArrays, mask_set: MaskSet) -> None:
    positions = mask_set.positions
    if len(positions) and (positions.min() < 0 or positions.max() >= len(arrays.ids)):
        raise ValueError(
            f"mask positions must index the split's {len(arrays.ids)} images; got "
            f"{int(positions.min())}…{int(positions.max())}."
        )
    if len(positions) and mask_set.masks.shape[1:] != arrays.images.shape[1:3]:
        raise ValueError(
            f"masks are {mask_set.masks.shape[1:]} px but the images {arrays.images.shape[1:3]}; "
            "compute the masks on the images at the size they are written."
        )


def _file_names(arrays: SplitArrays, mask_set: MaskSet, split: str) -> list[str]:
    """Relative PNG paths ``<split>/<label>/<name>.png``; raises if two ids share one."""
    names = []
    for position in mask_set.positions:
        label = LABELS[int(arrays.label_indices[position])]
        names.append(f"{split}/{label}/{image_file_name(arrays.ids[position])}")
    if len(set(names)) != len(names):
        clash = sorted({n for n in names if names.count(n) > 1})[:3]
        raise AnalysisError(
            f"several sample ids map onto the same file name ({clash!r}); rename the images so that "
            "their ids differ in letters or digits."
        )
    return names


def _claim(folder: Path, header: Mapping[str, Any]) -> None:
    """Create the folder and its header, or check that an existing one was made the same way."""
    path = folder / HEADER_FILE
    text = json.dumps(header, indent=2, sort_keys=True) + "\n"
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise AnalysisError(
                f"the header {str(path)!r} of the masked dataset is damaged ({err}). Choose another output "
                "folder, or move this one away to start again."
            ) from err
        if not isinstance(stored, dict):
            stored = {"method": None}
        if stored != json.loads(text):
            raise AnalysisError(
                f"{str(folder)!r} holds a masked dataset made differently ({stored.get('method')!r} with "
                f"options {stored.get('options')!r} from {stored.get('source')!r}). Choose another output "
                "folder, or delete this one to start again."
            )
        return
    folder.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, text.encode("utf-8"))


def read_manifest(root: str | Path) -> list[dict[str, str]]:
    """The manifest rows of a masked dataset (an empty list when there is none yet).

    A last row cut short by an interruption is ignored.
    """
    path = Path(root) / MANIFEST_FILE
    if not path.is_file():
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise AnalysisError(_foreign_manifest(path, f"not UTF-8 text: {err}")) from err
    complete = text[: text.rfind("\n") + 1]
    reader = csv.DictReader(io.StringIO(complete))
    if complete and tuple(reader.fieldnames or ()) != MANIFEST_FIELDS:
        raise AnalysisError(_foreign_manifest(path, f"its columns are {reader.fieldnames!r}"))
    return list(reader)


def _foreign_manifest(path: Path, problem: str) -> str:
    return (
        f"{str(path)!r} is not a masked-dataset manifest ({problem}; expected {', '.join(MANIFEST_FIELDS)}). "
        "Choose another output folder, or move this file away to start the dataset again."
    )


def load_masked_images(root: str | Path, ids: Sequence[str]) -> tuple[NDArray[np.float32], NDArray[np.intp]]:
    """The masked images of the given sample ids, read back from a masked dataset.

    Parameters
    ----------
    root : str or Path
        A folder written by :func:`write_masked_dataset`.
    ids : sequence of str
        Original sample ids (e.g. ``SplitArrays.ids`` of the unmasked split).

    Returns
    -------
    images : ndarray of float32, shape (M, H, W) or (M, H, W, 3)
        Intensities in [0, 1] of the ids that have a masked image, in the order of ``ids``.
    positions : ndarray of int, shape (M,)
        Their positions in ``ids``; ids without a masked image (gaze: never fixated) are left out.

    Raises
    ------
    FileNotFoundError
        When ``root`` holds no manifest.
    AnalysisError
        When no id has a masked image (another dataset, subset or split).
    """
    folder = Path(root)
    if not (folder / MANIFEST_FILE).is_file():
        raise FileNotFoundError(
            f"no masked dataset at {str(folder)!r} (no {MANIFEST_FILE}). Write one with 'rbdm mask'."
        )
    files = {row["id"]: row["file"] for row in read_manifest(folder)}
    positions = [k for k, sample_id in enumerate(ids) if sample_id in files]
    if not positions:
        raise AnalysisError(
            f"none of the {len(ids)} images has a masked copy in {str(folder)!r}; mask the same dataset, "
            "split and subset (e.g. the same --max-count and --subset-seed) that you train on."
        )
    images = []
    for k in positions:
        with Image.open(folder / files[ids[k]]) as image:
            images.append(np.asarray(image, dtype=np.float32) / np.float32(255.0))
    return np.stack(images), np.asarray(positions, dtype=np.intp)


@contextmanager
def _manifest_appender(folder: Path) -> Iterator[Callable[[Sequence[str]], None]]:
    """Yields ``append(row)``: one complete, flushed manifest line per call. A row cut short before is
    dropped first, and a new manifest starts with its header."""
    path = folder / MANIFEST_FILE
    data = path.read_bytes() if path.is_file() else b""
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as damaged:
            damaged.truncate(data.rfind(b"\n") + 1)
    with path.open("a", newline="", encoding="utf-8") as handle:

        def append(row: Sequence[str]) -> None:
            line = io.StringIO()
            csv.writer(line, lineterminator="\n").writerow(row)
            handle.write(line.getvalue())
            handle.flush()

        if handle.tell() == 0:
            append(MANIFEST_FIELDS)
        yield append


def _write_png(path: Path, image: NDArray[Any]) -> None:
    pixels = np.round(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(path, buffer.getvalue())


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it: ``path`` is whole or absent, and a failed
    write leaves no partial file (:func:`analysis.files.atomic_write_bytes`)."""
    atomic_write_bytes(path, data)
