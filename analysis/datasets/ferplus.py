"""FERPlus: FER2013 images relabelled by 10 crowd annotators (``fer2013new.csv``).

Each CSV row gives, for one FER2013 image, how many annotators chose each of ten categories
(``neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF``). A vote rule
turns the votes into one column; rows whose result is ``unknown`` or ``NF`` (not a face), rows without
any vote, and rows with an empty image name, are removed; the authors' split (``Usage``) is kept (RBDM §4.2).

Vote rules (:data:`VOTE_RULES`):

``"majority"`` (default)
    The column with the most votes; a tie goes to the column that comes first in the CSV, so an
    emotion tied with ``unknown`` or ``NF`` wins and the row is kept. On the released CSV this keeps
    exactly the 35,488 images RBDM §4.2 reports.
``"strict_majority"``
    The "majority" mode of the FERPlus authors' reference code: single votes are discarded as outliers,
    and a column must hold more than half of the remaining votes, else the row counts as ``unknown``
    and is removed (31,412 images kept).

Images: FERPlus names them ``fer%07d.png``. They are looked up under ``image_dir/FER2013Train``,
``FER2013Valid`` and ``FER2013Test`` (the layout the FERPlus tools write) when ``image_dir`` holds
any of these folders, else directly in ``image_dir`` (flat).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4.2 (FERPlus: majority vote, unknown and
   not-a-face removed, 35,488 images, the authors' split).
.. [2] Barsoum et al. (2016), Training Deep Networks for Facial Expression Recognition with
   Crowd-Sourced Label Distribution, ICMI, §3 (majority voting).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from analysis.datasets.base import IndexedLoader, IndexEntry, existing_path

__all__ = [
    "FERPLUS_COLUMNS",
    "FERPLUS_IMAGE_FOLDERS",
    "FERPLUS_SPLITS",
    "VOTE_RULES",
    "FERPlusLabels",
    "FERPlusLoader",
    "FERPlusRow",
    "majority_vote",
    "parse_ferplus_rows",
    "read_ferplus_csv",
    "strict_majority_vote",
]

#: Vote columns of fer2013new.csv, in file order, → common label (``None``: removed).
FERPLUS_COLUMNS: tuple[tuple[str, str | None], ...] = (
    ("neutral", "neutral"),
    ("happiness", "happy"),
    ("surprise", "surprise"),
    ("sadness", "sad"),
    ("anger", "anger"),
    ("disgust", "disgust"),
    ("fear", "fear"),
    ("contempt", "contempt"),
    ("unknown", None),
    ("NF", None),
)

#: FER2013 ``Usage`` → split name.
FERPLUS_SPLITS: dict[str, str] = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}

#: Split name → image folder of the FERPlus layout.
FERPLUS_IMAGE_FOLDERS: dict[str, str] = {
    "train": "FER2013Train",
    "validation": "FER2013Valid",
    "test": "FER2013Test",
}

_HEADER = ("Usage", "Image name", *(column for column, _ in FERPLUS_COLUMNS))


def majority_vote(votes: Sequence[int]) -> int:
    """Column with the most votes; ties go to the earliest column in CSV order (RBDM §4.2).

    Parameters
    ----------
    votes : sequence of int, length 10
        Votes per column of :data:`FERPLUS_COLUMNS`.

    Returns
    -------
    int
        Index into :data:`FERPLUS_COLUMNS`.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4.2.
    """
    top = max(votes)
    return next(i for i, v in enumerate(votes) if v == top)


def strict_majority_vote(votes: Sequence[int]) -> int:
    """Column holding more than half of the votes once single votes are dropped, else ``unknown``.

    Parameters
    ----------
    votes : sequence of int, length 10
        Votes per column of :data:`FERPLUS_COLUMNS`.

    Returns
    -------
    int
        Index into :data:`FERPLUS_COLUMNS`; the ``unknown`` column (8) when no column has a majority.

    References
    ----------
    .. [1] Barsoum et al. (2016), ICMI, §3 (majority voting; outlier votes removed).
    """
    kept = [v if v > 1 else 0 for v in votes]
    top = max(kept)
    if top > 0.5 * sum(kept):
        return kept.index(top)
    return 8


#: Vote rule name → function from the 10 vote counts to a column index.
VOTE_RULES: dict[str, Callable[[Sequence[int]], int]] = {
    "majority": majority_vote,
    "strict_majority": strict_majority_vote,
}


@dataclass(frozen=True, slots=True)
class FERPlusRow:
    """One kept row of fer2013new.csv.

    Parameters
    ----------
    split : str
        ``train``, ``validation`` or ``test`` (from ``Usage``).
    image_name : str
        File name, e.g. ``fer0000000.png``.
    label : str
        The voted common label.
    votes : tuple of int
        The 10 vote counts in :data:`FERPLUS_COLUMNS` order.
    """

    split: str
    image_name: str
    label: str
    votes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class FERPlusLabels:
    """Result of parsing fer2013new.csv: kept rows and how many were removed for which reason.

    Parameters
    ----------
    rows : tuple of FERPlusRow
        Kept rows in file order.
    removed : dict of str to int
        ``"empty name"``, ``"unknown"`` and ``"NF"`` → number of rows removed for it; also ``"no votes"``
        when rows without a single vote were removed (they are not ``neutral``).
    """

    rows: tuple[FERPlusRow, ...]
    removed: dict[str, int]


def _parse_votes(cells: Sequence[str], *, line: int) -> tuple[int, ...]:
    try:
        votes = tuple(int(float(cell)) for cell in cells)
    except ValueError as err:
        raise ValueError(
            f"fer2013new.csv line {line}: vote counts must be integers; got {list(cells)!r}."
        ) from err
    if any(v < 0 for v in votes):
        raise ValueError(f"fer2013new.csv line {line}: vote counts must be >= 0; got {list(cells)!r}.")
    return votes


def _check_header(header: Sequence[str]) -> None:
    if tuple(cell.strip() for cell in header) != _HEADER:
        raise ValueError(
            f"not a FERPlus label file: expected the header {', '.join(_HEADER)}; got {', '.join(header)!r}."
        )


def parse_ferplus_rows(lines: Iterable[Sequence[str]], *, vote_rule: str = "majority") -> FERPlusLabels:
    """Vote, filter and split the rows of fer2013new.csv (header first), without touching images.

    Parameters
    ----------
    lines : iterable of sequence of str
        CSV rows as ``csv.reader`` yields them, header row first.
    vote_rule : {"majority", "strict_majority"}
        Key of :data:`VOTE_RULES`.

    Returns
    -------
    FERPlusLabels

    Raises
    ------
    ValueError
        For an unknown vote rule, a wrong header, a row with the wrong number of cells, non-integer
        votes, or an unknown ``Usage`` (each message names the line).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4.2.
    """
    if vote_rule not in VOTE_RULES:
        raise ValueError(
            f"unknown vote_rule {vote_rule!r}; choose one of {', '.join(map(repr, VOTE_RULES))}."
        )
    vote = VOTE_RULES[vote_rule]
    rows_iter = iter(lines)
    _check_header(next(rows_iter, ()))
    kept: list[FERPlusRow] = []
    removed: Counter[str] = Counter({"empty name": 0, "unknown": 0, "NF": 0})
    for line, cells in enumerate(rows_iter, start=2):
        if not cells:
            continue
        if len(cells) != len(_HEADER):
            raise ValueError(f"fer2013new.csv line {line}: expected {len(_HEADER)} cells; got {len(cells)}.")
        usage, name = cells[0].strip(), cells[1].strip()
        if usage not in FERPLUS_SPLITS:
            raise ValueError(
                f"fer2013new.csv line {line}: unknown Usage {usage!r}; "
                f"expected one of {', '.join(FERPLUS_SPLITS)}."
            )
        votes = _parse_votes(cells[2:], line=line)
        column, label = FERPLUS_COLUMNS[vote(votes)]
        if not name:
            removed["empty name"] += 1
        elif not any(votes):  # no annotator voted: a tie of zeros is not a vote for "neutral"
            removed["no votes"] += 1
        elif label is None:
            removed[column] += 1
        else:
            kept.append(FERPlusRow(split=FERPLUS_SPLITS[usage], image_name=name, label=label, votes=votes))
    return FERPlusLabels(rows=tuple(kept), removed=dict(removed))


def read_ferplus_csv(csv_path: str | Path, *, vote_rule: str = "majority") -> FERPlusLabels:
    """Read fer2013new.csv and apply :func:`parse_ferplus_rows`.

    Raises
    ------
    FileNotFoundError
        When ``csv_path`` does not exist.
    ValueError
        When the file is not UTF-8 CSV text, or a row is malformed (see :func:`parse_ferplus_rows`).
    """
    path = existing_path(csv_path, what="FERPlus label file fer2013new.csv")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return parse_ferplus_rows(csv.reader(handle), vote_rule=vote_rule)
    except (UnicodeDecodeError, csv.Error) as err:
        raise ValueError(
            f"{str(path)!r} is not a FERPlus label file (not UTF-8 CSV text: {err}). Give fer2013new.csv."
        ) from err
    except ValueError as err:  # the row's problem, with the file it is in
        raise ValueError(f"{str(path)!r}: {err}") from err


def _image_folders(image_dir: Path) -> dict[str, Path]:
    if any((image_dir / folder).is_dir() for folder in FERPLUS_IMAGE_FOLDERS.values()):
        return {split: image_dir / folder for split, folder in FERPLUS_IMAGE_FOLDERS.items()}
    return dict.fromkeys(FERPLUS_IMAGE_FOLDERS, image_dir)


class FERPlusLoader(IndexedLoader):
    """Stream FERPlus images with their voted labels, in the authors' train/validation/test split.

    Ids are ``"<split>/<image name>"``. Items stream in CSV order. A row whose image file is missing
    or unreadable is skipped while streaming and listed in :attr:`skipped`, not fatal.

    Parameters
    ----------
    csv_path : str or pathlib.Path
        ``fer2013new.csv``.
    image_dir : str or pathlib.Path
        Folder with ``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/`` or, flat, the png files.
    vote_rule : {"majority", "strict_majority"}
        Key of :data:`VOTE_RULES`; ``"majority"`` reproduces RBDM §4.2.
    size : int or (int, int), optional
        Resize every image (FERPlus images are 48 × 48).
    rgb : bool, default False
        Yield ``(H, W, 3)`` images instead of grey ``(H, W)``.

    Raises
    ------
    FileNotFoundError
        When ``csv_path`` or ``image_dir`` does not exist.
    ValueError
        For a malformed CSV or an unknown vote rule (see :func:`parse_ferplus_rows`).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4.2.
    """

    def __init__(
        self,
        csv_path: str | Path,
        image_dir: str | Path,
        *,
        vote_rule: str = "majority",
        size: int | tuple[int, int] | None = None,
        rgb: bool = False,
    ) -> None:
        folder = existing_path(image_dir, what="FERPlus image folder")
        parsed = read_ferplus_csv(csv_path, vote_rule=vote_rule)
        folders = _image_folders(folder)
        index: dict[str, list[IndexEntry]] = {split: [] for split in FERPLUS_SPLITS.values()}
        for row in parsed.rows:
            entry_id = f"{row.split}/{row.image_name}"
            path = folders[row.split] / row.image_name
            index[row.split].append(IndexEntry(id=entry_id, path=path, label=row.label))
        super().__init__("ferplus", index, size=size, rgb=rgb)
        self.removed = parsed.removed
