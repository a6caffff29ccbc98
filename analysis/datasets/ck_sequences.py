"""CK+ as frame sequences with their FACS action units: the input of temporal prototypes (TP §3.1).

Layout (as released)::

    <root>/cohn-kanade-images/<subject>/<sequence>/<subject>_<sequence>_<frame>.png
    <root>/FACS/<subject>/<sequence>/<subject>_<sequence>_<frame>_facs.txt
    <root>/Emotion/<subject>/<sequence>/<subject>_<sequence>_<frame>_emotion.txt   (optional)

Each sequence runs from a neutral onset to the expression's peak. Its FACS file codes the action units
of the peak frame, one per line: the AU number and its intensity (0 = not given, 1-5 = A-E), both
written as floats. The emotion file, present for 327 of the 593 sequences, holds one CK+ emotion code
(:data:`analysis.datasets.ckplus.CKPLUS_CODES`).

:class:`CKSequenceLoader` indexes the tree without decoding pixels; :meth:`CKSequenceLoader.iter_sequences`
decodes one sequence at a time. For the image-level interface shared by all loaders it streams the
first frame of each labelled sequence as ``neutral`` and its last frame with the sequence's emotion, as
:class:`~analysis.datasets.ckplus.CKPlusLoader` does.

References
----------
.. [1] Finzel et al. (2021), Temporal Prototypes, §3.1 (CK+: 593 sequences, 123 subjects, FACS-coded),
   Table 1 (sequences per emotion, "None" for unlabelled ones).
.. [2] Lucey et al. (2010), The Extended Cohn-Kanade Dataset (CK+), CVPR workshops.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from analysis.datasets.base import IndexedLoader, IndexEntry, decode_image, existing_path
from analysis.datasets.ckplus import read_emotion_code, sequence_frames

__all__ = [
    "NO_EMOTION",
    "CKSequence",
    "CKSequenceFrames",
    "CKSequenceLoader",
    "au_name",
    "is_ck_sequences_layout",
    "read_facs_file",
]

#: Class name of sequences without an emotion file (TP Table 1, column "None").
NO_EMOTION = "None"

_IMAGES = "cohn-kanade-images"
_FACS = "FACS"
_EMOTION = "Emotion"


def is_ck_sequences_layout(root: Path) -> bool:
    """Whether ``root`` holds the CK+ folders ``cohn-kanade-images/`` and ``FACS/``."""
    return (root / _IMAGES).is_dir() and (root / _FACS).is_dir()


def au_name(number: float) -> str:
    """The name of an action unit number as TP writes it: 1 → ``"AU01"``, 25 → ``"AU25"``.

    Raises
    ------
    ValueError
        For a number that is not a positive integer.
    """
    if (
        isinstance(number, bool)
        or not math.isfinite(float(number))
        or not float(number).is_integer()
        or number < 1
    ):
        raise ValueError(f"an action unit number must be a positive integer; got {number!r}.")
    return f"AU{int(number):02d}"


def read_facs_file(path: str | Path) -> dict[str, int]:
    """Read a CK+ ``*_facs.txt`` file: action unit name → intensity (0 = not given, 1-5 = A-E).

    Blank lines are skipped; a line with only an AU number gets intensity 0.

    Raises
    ------
    ValueError
        For a line that does not hold one or two numbers, a bad AU number, an intensity outside 0-5 or
        an AU listed twice (the message names the file and line).
    """
    source = Path(path)
    units: dict[str, int] = {}
    for number, line in enumerate(source.read_text(encoding="ascii", errors="replace").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        where = f"{str(source)!r} line {number}"
        try:
            values = [float(part) for part in parts]
        except ValueError as err:
            raise ValueError(
                f"CK+ FACS file {where} must hold an AU number and an intensity; got {line!r}."
            ) from err
        if len(values) > 2:
            raise ValueError(f"CK+ FACS file {where} must hold an AU number and an intensity; got {line!r}.")
        name = au_name(values[0])
        intensity = values[1] if len(values) == 2 else 0.0
        if not intensity.is_integer() or not 0 <= intensity <= 5:
            raise ValueError(f"CK+ FACS file {where}: intensity must be 0-5 (0 = not given); got {line!r}.")
        if name in units:
            raise ValueError(f"CK+ FACS file {where} lists {name} twice.")
        units[name] = int(intensity)
    return units


@dataclass(frozen=True, slots=True)
class CKSequence:
    """One CK+ sequence in the index: where its frames are and how it is labelled (no pixels).

    Parameters
    ----------
    id : str
        ``"<subject>/<sequence>"``, e.g. ``"S005/001"``.
    frame_paths : tuple of Path
        Frame files in order (onset to peak).
    action_units : mapping of str to int
        FACS coding of the peak frame: ``{"AU01": 2, ...}`` (0 = intensity not given, 1-5 = A-E);
        empty when the sequence has no FACS file.
    emotion : str or None
        Validated emotion label (a name of :data:`analysis.labels.LABELS`), or None.
    """

    id: str
    frame_paths: tuple[Path, ...]
    action_units: Mapping[str, int] = field(default_factory=dict)
    emotion: str | None = None

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return len(self.frame_paths)

    @property
    def class_name(self) -> str:
        """The emotion, or ``"None"`` for an unlabelled sequence (TP Table 1)."""
        return self.emotion if self.emotion is not None else NO_EMOTION


@dataclass(frozen=True, slots=True, eq=False)
class CKSequenceFrames:
    """A decoded CK+ sequence (satisfies :class:`analysis.prototype_pipeline.FrameSequence`).

    Parameters
    ----------
    id, class_name : str
        As in :class:`CKSequence`.
    frames : ndarray of float32, shape (T, H, W) or (T, H, W, 3)
        Intensities in [0, 1].
    action_units : mapping of str to int
        FACS coding of the peak (last) frame.
    emotion : str or None
    """

    id: str
    class_name: str
    frames: NDArray[np.float32]
    action_units: Mapping[str, int]
    emotion: str | None


def _subdirs(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _one_file(folder: Path, pattern: str, what: str) -> Path | None:
    files = sorted(folder.glob(pattern)) if folder.is_dir() else []
    if len(files) > 1:
        raise ValueError(f"CK+ sequence {str(folder)!r} has {len(files)} {what} files; expected one.")
    return files[0] if files else None


def _index_sequence(root: Path, subject: str, sequence_dir: Path) -> CKSequence | None:
    frames = tuple(sequence_frames(sequence_dir))  # by frame number: an unpadded 9 before 10
    if not frames:
        return None
    facs = _one_file(root / _FACS / subject / sequence_dir.name, "*_facs.txt", "FACS")
    emotion = _one_file(root / _EMOTION / subject / sequence_dir.name, "*_emotion.txt", "emotion")
    return CKSequence(
        id=f"{subject}/{sequence_dir.name}",
        frame_paths=frames,
        action_units=read_facs_file(facs) if facs is not None else {},
        emotion=read_emotion_code(emotion) if emotion is not None else None,
    )


def _image_entries(sequences: Sequence[CKSequence]) -> list[IndexEntry]:
    """The image-level view: first frame neutral, last frame with the emotion (labelled sequences)."""
    entries = []
    for item in sequences:
        if item.emotion is None:
            continue
        first, last = item.frame_paths[0], item.frame_paths[-1]
        if len(item.frame_paths) > 1:
            entries.append(IndexEntry(id=f"{item.id}/{first.stem}", path=first, label="neutral"))
        entries.append(IndexEntry(id=f"{item.id}/{last.stem}", path=last, label=item.emotion))
    return entries


class CKSequenceLoader(IndexedLoader):
    """Index and stream CK+ sequences with their FACS action units and emotion labels.

    Sequences are ordered by subject, then sequence folder; frames by file name.

    Parameters
    ----------
    root : str or pathlib.Path
        Folder holding ``cohn-kanade-images/`` and ``FACS/`` (``Emotion/`` is optional).
    size : int or (int, int), optional
        Resize every frame (CK+ frames are 640 × 490 or 640 × 480).
    rgb : bool, default False
        Decode to ``(H, W, 3)`` instead of grey ``(H, W)``.

    Raises
    ------
    FileNotFoundError
        When ``root``, ``root/cohn-kanade-images`` or ``root/FACS`` does not exist.
    ValueError
        For a malformed FACS or emotion file, or two of them in one sequence.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.1 and Table 1.
    """

    def __init__(
        self, root: str | Path, *, size: int | tuple[int, int] | None = None, rgb: bool = False
    ) -> None:
        folder = existing_path(root, what="CK+ dataset folder")
        images = existing_path(folder / _IMAGES, what="CK+ image folder cohn-kanade-images")
        existing_path(folder / _FACS, what="CK+ action unit folder FACS")
        sequences = []
        for subject in _subdirs(images):
            for sequence_dir in _subdirs(subject):
                item = _index_sequence(folder, subject.name, sequence_dir)
                if item is not None:
                    sequences.append(item)
        super().__init__("ck_sequences", {"all": _image_entries(sequences)}, size=size, rgb=rgb)
        self.root = folder
        self.sequences: tuple[CKSequence, ...] = tuple(sequences)
        self._frame_size = size
        self._frame_rgb = bool(rgb)

    def sequence(self, id: str) -> CKSequence:
        """The indexed sequence with this id (``"S005/001"``)."""
        for item in self.sequences:
            if item.id == id:
                return item
        raise KeyError(f"no CK+ sequence {id!r} under {str(self.root)!r}.")

    def iter_frames(self, sequence: CKSequence | str) -> Iterator[NDArray[np.float32]]:
        """Decode the frames of one sequence one at a time, in order.

        Raises
        ------
        OSError
            When a frame cannot be read (the message names the file).
        """
        item = self.sequence(sequence) if isinstance(sequence, str) else sequence
        for path in item.frame_paths:
            yield decode_image(path, size=self._frame_size, rgb=self._frame_rgb)

    def load(self, sequence: CKSequence | str) -> CKSequenceFrames:
        """Decode a whole sequence into a :class:`CKSequenceFrames`."""
        item = self.sequence(sequence) if isinstance(sequence, str) else sequence
        frames = np.stack(list(self.iter_frames(item)))
        return CKSequenceFrames(item.id, item.class_name, frames, dict(item.action_units), item.emotion)

    def iter_sequences(self, *, ids: Sequence[str] | None = None) -> Iterator[CKSequenceFrames]:
        """Decode sequences one at a time; a sequence with an unreadable frame is skipped and warned about.

        Parameters
        ----------
        ids : sequence of str, optional
            Only these sequences (in index order); default all.

        Yields
        ------
        CKSequenceFrames
        """
        wanted = None if ids is None else set(ids)
        for item in self.sequences:
            if wanted is not None and item.id not in wanted:
                continue
            try:
                yield self.load(item)
            except (OSError, ValueError, Image.DecompressionBombError) as err:
                bad = _first_unreadable(item)
                self._skip(IndexEntry(id=item.id, path=bad, label=item.emotion or "neutral"), err)


def _first_unreadable(item: CKSequence) -> Path:
    for path in item.frame_paths:
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, ValueError, Image.DecompressionBombError):
            return path
    return item.frame_paths[0]
