"""AffectNet (manually annotated part): images listed in ``training.csv`` and ``validation.csv``.

CSV columns: ``subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks,
expression, valence, arousal``; ``expression`` is a code of :data:`AFFECTNET_CODES`. As in RBDM §4.1:

1. an image listed more than once (possibly with different labels) is reduced to one of its rows,
   chosen at random with the given ``rng``; this runs over both CSVs together, so one file never lands
   in two splits;
2. rows coded 8 (None), 9 (Uncertain) or 10 (Non-Face) are removed;
3. the authors' split is kept: ``training.csv`` → ``train``, ``validation.csv`` → ``validation`` (the
   official test set is unreleased; RBDM uses validation as test).

The released ``validation.csv`` may lack the header row; rows are then read in the column order above.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4.1 (22,198 repeated images reduced to
   one each; None, Uncertain and Non-Face removed; 269,118 samples; the authors' split).
.. [2] Mollahosseini et al. (2017), AffectNet, IEEE Trans. Affective Computing.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis.datasets.base import IndexedLoader, IndexEntry, existing_path

__all__ = [
    "AFFECTNET_CODES",
    "AFFECTNET_CSVS",
    "AffectNetLabels",
    "AffectNetLoader",
    "AffectNetRow",
    "clean_affectnet",
    "is_affectnet_layout",
    "parse_affectnet_rows",
]

#: AffectNet expression code → common label, or ``None`` for the categories that are removed.
AFFECTNET_CODES: dict[int, str | None] = {
    0: "neutral",
    1: "happy",
    2: "sad",
    3: "surprise",
    4: "fear",
    5: "disgust",
    6: "anger",
    7: "contempt",
    8: None,
    9: None,
    10: None,
}

_REMOVED_NAMES = {8: "none", 9: "uncertain", 10: "non-face"}
_KEPT_LABELS = {code: label for code, label in AFFECTNET_CODES.items() if label is not None}

#: CSV file name → split name.
AFFECTNET_CSVS: dict[str, str] = {"training.csv": "train", "validation.csv": "validation"}

_COLUMNS = (
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
)


def is_affectnet_layout(root: Path) -> bool:
    """Whether ``root`` holds ``training.csv`` or ``validation.csv``."""
    return any((root / name).is_file() for name in AFFECTNET_CSVS)


@dataclass(frozen=True, slots=True)
class AffectNetRow:
    """One row of an AffectNet CSV.

    Parameters
    ----------
    split : str
        ``train`` or ``validation``.
    file_path : str
        ``subDirectory_filePath``, relative to the image root.
    code : int
        Expression code 0–10 (:data:`AFFECTNET_CODES`).
    box_px : (int, int, int, int)
        Face box ``(face_x, face_y, face_width, face_height)`` in image pixels.
    """

    split: str
    file_path: str
    code: int
    box_px: tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class AffectNetLabels:
    """Rows kept after cleaning, and how many were removed for which reason.

    Parameters
    ----------
    rows : tuple of AffectNetRow
        Kept rows, in file order.
    removed : dict of str to int
        ``"duplicate"``, ``"none"``, ``"uncertain"``, ``"non-face"`` → rows removed.
    """

    rows: tuple[AffectNetRow, ...]
    removed: dict[str, int]


def _parse_row(cells: Sequence[str], *, split: str, where: str) -> AffectNetRow:
    if len(cells) != len(_COLUMNS):
        raise ValueError(
            f"{where}: expected {len(_COLUMNS)} cells ({', '.join(_COLUMNS)}); got {len(cells)}."
        )
    try:
        code = int(cells[6])
        x, y, w, h = (int(float(cell)) for cell in cells[1:5])
    except (ValueError, OverflowError) as err:  # OverflowError: a box of inf
        raise ValueError(
            f"{where}: expression and face box must be integers; got {list(cells[1:7])!r} (inf is not one). "
            "Correct or remove the row."
        ) from err
    if w <= 0 or h <= 0:
        raise ValueError(
            f"{where}: the face box must have a positive width and height; got {w!r} × {h!r} "
            f"({list(cells[1:5])!r}). Correct or remove the row."
        )
    if code not in AFFECTNET_CODES:
        raise ValueError(f"{where}: unknown expression code {code!r}; AffectNet codes are 0–10.")
    return AffectNetRow(split=split, file_path=cells[0].strip(), code=code, box_px=(x, y, w, h))


def parse_affectnet_rows(lines: Iterable[Sequence[str]], *, split: str, source: str) -> list[AffectNetRow]:
    """Parse the rows of one AffectNet CSV (header row optional).

    Parameters
    ----------
    lines : iterable of sequence of str
        CSV rows as ``csv.reader`` yields them.
    split : str
        Split name given to every row.
    source : str
        File name shown in messages.

    Raises
    ------
    ValueError
        For a row with the wrong number of cells, a non-integer code or box, or a code outside 0–10.
    """
    rows: list[AffectNetRow] = []
    for line, cells in enumerate(lines, start=1):
        if not cells or (line == 1 and cells[0].strip() == _COLUMNS[0]):
            continue
        rows.append(_parse_row(cells, split=split, where=f"{source} line {line}"))
    return rows


def _reduce_duplicates(rows: Sequence[AffectNetRow], rng: np.random.Generator) -> list[AffectNetRow]:
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row.file_path, []).append(i)
    keep = {group[int(rng.integers(len(group)))] if len(group) > 1 else group[0] for group in groups.values()}
    return [row for i, row in enumerate(rows) if i in keep]


def clean_affectnet(rows: Sequence[AffectNetRow], *, rng: np.random.Generator) -> AffectNetLabels:
    """Reduce repeated images to one random row each, then remove None, Uncertain and Non-Face rows.

    Parameters
    ----------
    rows : sequence of AffectNetRow
        Rows of all splits together.
    rng : numpy.random.Generator
        Chooses the row kept for each repeated image (one draw per repeated image, in first-seen order).

    Returns
    -------
    AffectNetLabels

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4.1.
    """
    unique = _reduce_duplicates(rows, rng)
    removed: Counter[str] = Counter(dict.fromkeys(["duplicate", *_REMOVED_NAMES.values()], 0))
    removed["duplicate"] = len(rows) - len(unique)
    kept = []
    for row in unique:
        if row.code in _REMOVED_NAMES:
            removed[_REMOVED_NAMES[row.code]] += 1
        else:
            kept.append(row)
    return AffectNetLabels(rows=tuple(kept), removed=dict(removed))


def _csv_files(csv_path: Path) -> dict[str, Path]:
    if csv_path.is_file():
        return {AFFECTNET_CSVS.get(csv_path.name, csv_path.stem): csv_path}
    found = {split: csv_path / name for name, split in AFFECTNET_CSVS.items() if (csv_path / name).is_file()}
    if not found:
        raise FileNotFoundError(
            f"no AffectNet CSV in {str(csv_path)!r}: expected {' or '.join(AFFECTNET_CSVS)} there."
        )
    return found


def _read_rows(files: Mapping[str, Path]) -> list[AffectNetRow]:
    rows: list[AffectNetRow] = []
    for split, path in files.items():
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows += parse_affectnet_rows(csv.reader(handle), split=split, source=path.name)
        except (UnicodeDecodeError, csv.Error) as err:
            raise ValueError(
                f"{str(path)!r} is not an AffectNet label file (not UTF-8 CSV text: {err}). Give the "
                "training.csv and validation.csv of the release."
            ) from err
    return rows


class AffectNetLoader(IndexedLoader):
    """Stream AffectNet's manually annotated images, cleaned as in RBDM §4.1.

    Items stream in CSV order; ids are the ``subDirectory_filePath`` values.

    Parameters
    ----------
    csv_path : str or pathlib.Path
        A folder holding ``training.csv`` and/or ``validation.csv``, or one CSV file (its split is
        ``train``/``validation`` for those names, else the file's stem).
    image_root : str or pathlib.Path
        Folder that ``subDirectory_filePath`` is relative to (``Manually_Annotated_Images``).
    rng : numpy.random.Generator, optional
        Chooses among repeated rows; ``None`` means ``numpy.random.default_rng(0)``, so the default
        cleaning is reproducible.
    crop_face : bool, default False
        Crop each image to its ``face_x, face_y, face_width, face_height`` box before resizing (for
        the uncropped images; leave off for the released face crops).
    size : int or (int, int), optional
        Resize every image.
    rgb : bool, default False
        Yield ``(H, W, 3)`` images instead of grey ``(H, W)``.

    Raises
    ------
    FileNotFoundError
        When ``csv_path`` or ``image_root`` does not exist, or a folder holds neither CSV.
    ValueError
        For a malformed CSV row (the message names file and line).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4.1.
    """

    def __init__(
        self,
        csv_path: str | Path,
        image_root: str | Path,
        *,
        rng: np.random.Generator | None = None,
        crop_face: bool = False,
        size: int | tuple[int, int] | None = None,
        rgb: bool = False,
    ) -> None:
        files = _csv_files(existing_path(csv_path, what="AffectNet CSV"))
        root = existing_path(image_root, what="AffectNet image folder")
        cleaned = clean_affectnet(_read_rows(files), rng=np.random.default_rng(0) if rng is None else rng)
        index: dict[str, list[IndexEntry]] = {split: [] for split in files}
        for row in cleaned.rows:
            box = row.box_px if crop_face else None
            path = root / row.file_path
            entry = IndexEntry(id=row.file_path, path=path, label=_KEPT_LABELS[row.code], box_px=box)
            index[row.split].append(entry)
        super().__init__("affectnet", index, size=size, rgb=rgb)
        self.removed = cleaned.removed
