"""A study's comparison of gaze and saliency, over all its stimuli (RBDM §5.3.2, Table 1).

:func:`analysis.perception.compare_stimulus` compares the heatmaps of one stimulus pair by pair. A
study adds three things, all here and all pure: the study-level table, the mean of each pair's values
over the stimuli where they are defined (:func:`study_table`, RBDM Table 1); the per-stimulus rows as
one CSV text (:func:`stimulus_rows_csv`); and the stimulus image as the Trainer sees it, resized to
the model's input (:func:`model_input_image`), because the comparison with a model is made at the
model's input resolution, where its relevance map lives.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PIL import Image

from analysis.metrics import ComparisonRow, ComparisonTable

__all__ = ["model_input_image", "stimulus_rows_csv", "study_table"]

#: ITU-R 601-2 luma weights, as Pillow's "L" conversion and :func:`analysis.datasets.decode_image` use.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def study_table(tables: Sequence[ComparisonTable]) -> ComparisonTable:
    """RBDM Table 1 for a study: each pair's mean over the stimuli where its value is defined.

    Unlike :func:`analysis.metrics.mean_table`, the tables may hold different pairs (an annotator who
    did not see a stimulus has no rows there) and ``nan`` values (NSS and AUC-Judd have nothing to
    score when the reference annotator did not fixate the image). A pair's mean is taken over the
    tables that hold it, each metric over the values that are not ``nan``; with none left it is ``nan``.
    On tables with the same pairs and no ``nan`` it equals :func:`~analysis.metrics.mean_table`.

    Parameters
    ----------
    tables : sequence of ComparisonTable
        One table per stimulus (:func:`analysis.perception.compare_stimulus`), all with the same metrics.

    Returns
    -------
    ComparisonTable
        Pairs in the order they first appear; no rows when no table has any (or there are no tables).
        The metrics are those of the tables; with no tables at all, none. A pair with "not comparable"
        stimuli (:func:`~analysis.metrics.compare`) notes how many; with no comparable stimulus at all
        its values are ``nan``.

    Raises
    ------
    ValueError
        If the tables differ in their metrics.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1 ("ID_1, ID_2,
       ZeroMeasure, Spearman, Cosine distance"; annotator/annotator and annotator/model rows).
    """
    if len(tables) == 0:
        return ComparisonTable(metrics=(), rows=())
    metrics = tables[0].metrics
    for index, table in enumerate(tables):
        if table.metrics != metrics:
            raise ValueError(
                f"tables[{index}] has metrics {table.metrics!r}, tables[0] {metrics!r}. Compare every "
                "stimulus with the same metrics."
            )
    values: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    skipped: dict[tuple[str, str], int] = {}
    for table in tables:
        for row in table.rows:
            values.setdefault((row.id_1, row.id_2), []).append(row.values)
            if row.note:
                skipped[row.id_1, row.id_2] = skipped.get((row.id_1, row.id_2), 0) + 1
    rows = tuple(
        ComparisonRow(id_1, id_2, _nan_means(stack), _study_note(skipped.get((id_1, id_2), 0), len(stack)))
        for (id_1, id_2), stack in values.items()
    )
    return ComparisonTable(metrics=metrics, rows=rows)


def _study_note(n_skipped: int, n_stimuli: int) -> str:
    """How many of a pair's stimuli were not comparable (a map zero everywhere)."""
    if n_skipped == 0:
        return ""
    if n_skipped == n_stimuli:
        return (
            f"not comparable on any of its {n_stimuli} stimuli (a map zero everywhere: no gaze on the image)"
        )
    kept = n_stimuli - n_skipped
    return f"mean over {kept} of {n_stimuli} stimuli; {n_skipped} not comparable (a map zero everywhere)"


def _nan_means(stack: list[tuple[float, ...]]) -> tuple[float, ...]:
    """Column means ignoring nan; nan for a column without a number."""
    columns = np.array(stack, dtype=np.float64).T
    means = []
    for column in columns:
        defined = column[~np.isnan(column)]
        means.append(float(defined.mean()) if defined.size else math.nan)
    return tuple(means)


def stimulus_rows_csv(tables: Mapping[str, ComparisonTable]) -> str:
    """Every stimulus's comparison rows as one CSV text: ``stimulus, ID_1, ID_2, <metrics>``.

    Parameters
    ----------
    tables : mapping of str to ComparisonTable
        Stimulus id → its table, all with the same metrics; rows are written in this order. Tables
        without rows add nothing.

    Returns
    -------
    str
        A header and one line per (stimulus, pair); floats written exactly (``repr``), as in
        :meth:`ComparisonTable.to_csv`. Only the header (``stimulus, ID_1, ID_2``) for no tables.

    Raises
    ------
    ValueError
        If the tables differ in their metrics.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1 (per image).
    """
    metrics: tuple[str, ...] | None = None
    for stimulus, table in tables.items():
        if metrics is not None and table.metrics != metrics:
            raise ValueError(
                f"the table of {stimulus!r} has metrics {table.metrics!r}, an earlier one {metrics!r}. "
                "Compare every stimulus with the same metrics."
            )
        metrics = table.metrics
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["stimulus", "ID_1", "ID_2", *(metrics or ())])
    for stimulus, table in tables.items():
        writer.writerows([stimulus, row.id_1, row.id_2, *map(repr, row.values)] for row in table.rows)
    return buffer.getvalue()


def model_input_image(image: ArrayLike, input_shape: tuple[int, int, int]) -> NDArray[np.float32]:
    """A stimulus image resized to a model's input, grey or RGB as the model takes it.

    The image is stretched to the input size ignoring its aspect ratio, as the labeling screen
    stretches it into its square (so a screen point maps onto the model input with
    :func:`analysis.geometry.screen_to_image`). Resampling is Pillow's bilinear filter, which averages
    over the source pixels when shrinking (as :func:`analysis.datasets.decode_image` does for files);
    grey is the ITU-R 601-2 luma of an RGB image.

    Parameters
    ----------
    image : array_like, shape (H, W) or (H, W, 3)
        Intensities in [0, 1].
    input_shape : tuple of int
        The model's ``(height_px, width_px, channels)``, channels 1 or 3.

    Returns
    -------
    ndarray of float32
        ``(height_px, width_px)`` for a 1-channel model, ``(height_px, width_px, 3)`` for an RGB one;
        values in [0, 1].

    Raises
    ------
    ValueError
        For an image that is not a finite (H, W) or (H, W, 3) array in [0, 1], or a bad input shape.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (images drawn 1200 × 1200 px)
       and §5.3.2 (the model's relevance compared with the annotators' gaze).
    """
    pixels = _check_image(image)
    height, width, channels = _check_input_shape(input_shape)
    if channels == 1 and pixels.ndim == 3:
        pixels = pixels @ _LUMA
    planes = [pixels] if pixels.ndim == 2 else [pixels[..., k] for k in range(3)]
    resized = [_resize_plane(plane, height, width) for plane in planes]
    out = resized[0] if len(resized) == 1 else np.stack(resized, axis=-1)
    if channels == 3 and out.ndim == 2:
        out = np.repeat(out[..., np.newaxis], 3, axis=-1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _resize_plane(plane: NDArray[np.float64], height: int, width: int) -> NDArray[np.float64]:
    if plane.shape == (height, width):
        return plane
    resized = Image.fromarray(plane.astype(np.float32), mode="F").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.float64)


def _check_image(image: ArrayLike) -> NDArray[np.float64]:
    pixels = np.asarray(image, dtype=np.float64)
    if pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[-1] != 3) or pixels.size == 0:
        raise ValueError(f"image must be a grey (H, W) or RGB (H, W, 3) array; got shape {pixels.shape!r}.")
    bad = ~np.isfinite(pixels)
    if bad.any():
        raise ValueError(
            f"image must hold finite intensities in [0, 1]; got {int(bad.sum())} NaN or infinite values."
        )
    if pixels.min() < 0.0 or pixels.max() > 1.0:
        raise ValueError(
            f"image must hold intensities in [0, 1]; got values in [{pixels.min()!r}, {pixels.max()!r}]. "
            "Divide 8-bit images by 255."
        )
    return pixels


def _check_input_shape(input_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    try:
        height, width, channels = (int(v) for v in input_shape)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"input_shape must be (height_px, width_px, channels); got {input_shape!r}."
        ) from err
    if height < 1 or width < 1 or channels not in (1, 3):
        raise ValueError(
            f"input_shape must have positive height and width and 1 or 3 channels; got {input_shape!r}."
        )
    return height, width, channels
