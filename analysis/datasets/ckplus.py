"""CK+ (extended Cohn-Kanade): posed sequences from neutral onset to expression peak.

Layout (as released)::

    <root>/cohn-kanade-images/<subject>/<sequence>/<subject>_<sequence>_<frame>.png
    <root>/Emotion/<subject>/<sequence>/<subject>_<sequence>_<frame>_emotion.txt

An emotion file holds one number, the CK+ emotion code (:data:`CKPLUS_CODES`). Each labelled sequence
gives two samples: its first frame as ``neutral`` and its peak frame with the sequence's label, as RBDM
§4.3 does (327 labelled sequences → 654 images). The peak is the frame the emotion file names (its
last frame as released); frames are ordered by frame number, a missing peak frame leaves the sequence
out with an :class:`~analysis.errors.AnalysisWarning`, and gaps in the numbering are warned about.
Sequences without an emotion file have no validated label; by default they are left out, and with
``neutral_from_unlabelled=True`` they contribute their first frame as ``neutral`` only. CK+ has no
official split: everything is in the split ``"all"``.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4.3 (first frame neutral, last frame
   labelled, 654 images).
.. [2] Lucey et al. (2010), The Extended Cohn-Kanade Dataset (CK+), CVPR workshops.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from analysis.datasets.base import IMAGE_SUFFIXES, IndexedLoader, IndexEntry, existing_path
from analysis.errors import AnalysisWarning

__all__ = [
    "CKPLUS_CODES",
    "CKPlusLoader",
    "frame_number",
    "is_ckplus_layout",
    "read_emotion_code",
    "sequence_frames",
]

#: CK+ emotion code → common label.
CKPLUS_CODES: dict[int, str] = {
    0: "neutral",
    1: "anger",
    2: "contempt",
    3: "disgust",
    4: "fear",
    5: "happy",
    6: "sad",
    7: "surprise",
}

_IMAGES = "cohn-kanade-images"
_EMOTION = "Emotion"


def is_ckplus_layout(root: Path) -> bool:
    """Whether ``root`` holds the CK+ folders ``cohn-kanade-images/`` and ``Emotion/``."""
    return (root / _IMAGES).is_dir() and (root / _EMOTION).is_dir()


def read_emotion_code(path: Path) -> str:
    """Read a CK+ ``*_emotion.txt`` file and return its common label.

    Raises
    ------
    ValueError
        When the file does not hold one of the codes 0–7 (the message names the file).
    """
    text = path.read_text(encoding="ascii", errors="replace").strip()
    try:
        value = float(text)
    except ValueError as err:
        raise ValueError(f"CK+ emotion file {str(path)!r} must hold one number 0–7; got {text!r}.") from err
    if not value.is_integer() or int(value) not in CKPLUS_CODES:
        codes = ", ".join(f"{code}={name}" for code, name in CKPLUS_CODES.items())
        raise ValueError(f"unknown CK+ emotion code {text!r} in {str(path)!r}; known codes: {codes}.")
    return CKPLUS_CODES[int(value)]


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def frame_number(path: Path) -> int | None:
    """The frame number of a CK+ file: ``S005_001_00000011.png`` and ``…_00000011_emotion.txt`` → 11.

    None when the name ends in no number. Frames are ordered by this number, not by name, so that an
    unpadded ``…_9.png`` comes before ``…_10.png``.
    """
    match = _FRAME_NUMBER.search(path.name)
    return int(match.group(1)) if match else None


_FRAME_NUMBER = re.compile(r"_(\d+)(?:_emotion|_facs)?\.[^.]+$")


def sequence_frames(sequence_dir: Path) -> list[Path]:
    """The image files of a CK+ sequence, in the order of their frame numbers (names without one last)."""
    frames = [p for p in sequence_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(frames, key=lambda p: (frame_number(p) is None, frame_number(p) or 0, p.name))


def _sequence_label(emotion_dir: Path) -> tuple[str, int | None] | None:
    """The sequence's label and the frame number its emotion file names (the peak); None if unlabelled."""
    if not emotion_dir.is_dir():
        return None
    files = sorted(emotion_dir.glob("*_emotion.txt"))
    if len(files) > 1:
        raise ValueError(
            f"CK+ sequence {str(emotion_dir)!r} has {len(files)} emotion files; expected one. "
            "Remove the extra ones."
        )
    return (read_emotion_code(files[0]), frame_number(files[0])) if files else None


def _peak(sequence_dir: Path, frames: list[Path], peak_number: int | None) -> Path | None:
    """The frame the emotion file names (the last frame when it names none); None, with a warning, when
    that frame is missing."""
    if peak_number is None:
        return frames[-1]
    for frame in frames:
        if frame_number(frame) == peak_number:
            return frame
    warnings.warn(
        f"CK+ sequence {str(sequence_dir)!r}: its emotion file names frame {peak_number}, which is missing "
        f"(frames {_numbers(frames)}); the sequence is left out. Restore the frame to use it.",
        AnalysisWarning,
        stacklevel=4,
    )
    return None


def _warn_gaps(sequence_dir: Path, frames: list[Path]) -> None:
    numbers = [frame_number(f) for f in frames]
    if None in numbers or not numbers:
        return
    expected = set(range(1, max(n for n in numbers if n is not None) + 1))
    missing = sorted(expected - set(numbers))
    if missing:
        warnings.warn(
            f"CK+ sequence {str(sequence_dir)!r} lacks frames {missing[:10]!r}; its first frame present "
            f"({numbers[0]}) is used as the neutral onset.",
            AnalysisWarning,
            stacklevel=4,
        )


def _numbers(frames: list[Path]) -> str:
    numbers = [frame_number(f) for f in frames]
    return ", ".join(str(n) for n in numbers[:10]) + (" …" if len(numbers) > 10 else "")


def _sequence_entries(
    sequence_dir: Path, label: tuple[str, int | None] | None, *, neutral_from_unlabelled: bool
) -> list[IndexEntry]:
    frames = sequence_frames(sequence_dir)
    if not frames or (label is None and not neutral_from_unlabelled):
        return []
    prefix = f"{sequence_dir.parent.name}/{sequence_dir.name}"
    first = IndexEntry(id=f"{prefix}/{frames[0].stem}", path=frames[0], label="neutral")
    if label is None:
        return [first]
    peak = _peak(sequence_dir, frames, label[1])
    if peak is None:
        return []
    _warn_gaps(sequence_dir, frames)
    last = IndexEntry(id=f"{prefix}/{peak.stem}", path=peak, label=label[0])
    return [last] if peak == frames[0] else [first, last]


class CKPlusLoader(IndexedLoader):
    """Stream CK+: first frame of each sequence as neutral, last frame with the sequence's emotion.

    Items stream by subject, sequence, then first-before-last frame. Ids are
    ``"<subject>/<sequence>/<frame file stem>"``. A one-frame labelled sequence gives only its
    labelled frame.

    Parameters
    ----------
    root : str or pathlib.Path
        Folder holding ``cohn-kanade-images/`` and ``Emotion/``.
    neutral_from_unlabelled : bool, default False
        Also take the first frame of sequences without an emotion file as neutral (RBDM counts only
        labelled sequences).
    size : int or (int, int), optional
        Resize every image (CK+ frames are 640 × 490 or 640 × 480).
    rgb : bool, default False
        Yield ``(H, W, 3)`` images instead of grey ``(H, W)``.

    Raises
    ------
    FileNotFoundError
        When ``root``, ``root/cohn-kanade-images`` or ``root/Emotion`` does not exist.
    ValueError
        For an emotion file without a known code 0–7, or two emotion files in one sequence.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4.3.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        neutral_from_unlabelled: bool = False,
        size: int | tuple[int, int] | None = None,
        rgb: bool = False,
    ) -> None:
        folder = existing_path(root, what="CK+ dataset folder")
        images = existing_path(folder / _IMAGES, what="CK+ image folder cohn-kanade-images")
        emotions = existing_path(folder / _EMOTION, what="CK+ label folder Emotion")
        entries: list[IndexEntry] = []
        for subject in _subdirs(images):
            for sequence in _subdirs(subject):
                label = _sequence_label(emotions / subject.name / sequence.name)
                entries += _sequence_entries(sequence, label, neutral_from_unlabelled=neutral_from_unlabelled)
        super().__init__("ckplus", {"all": entries}, size=size, rgb=rgb)
        self.root = folder
