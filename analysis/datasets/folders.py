"""Image folders laid out as ``<root>/<split>/<label>/*.{jpg,jpeg,png}`` (the FER2013 image-folder release).

Folder names are mapped onto the common vocabulary :data:`analysis.labels.LABELS`; the default map
knows FER2013's names (``angry`` → ``anger``, ...) and the common names themselves.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4.2 (FER2013 / FERPlus images).
.. [2] Goodfellow et al. (2013), Challenges in Representation Learning (FER2013).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from analysis.datasets.base import (
    IMAGE_SUFFIXES,
    IndexedLoader,
    IndexEntry,
    check_label_map,
    existing_path,
    resolve_label,
)
from analysis.labels import LABELS

__all__ = ["FER2013_LABEL_MAP", "FOLDER_LABEL_MAP", "ImageFolderLoader", "is_image_folder_layout"]

#: FER2013's folder names → the common vocabulary (FER2013 has no contempt).
FER2013_LABEL_MAP: dict[str, str] = {
    "angry": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprise",
}

#: Default folder-name map: the common names themselves plus FER2013's names.
FOLDER_LABEL_MAP: dict[str, str] = {**{label: label for label in LABELS}, **FER2013_LABEL_MAP}


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def is_image_folder_layout(root: Path) -> bool:
    """Whether ``root`` holds at least one ``<split>/<label>/<image>`` file (checked shallowly)."""
    return any(_images(label_dir) for split_dir in _subdirs(root) for label_dir in _subdirs(split_dir))


def _index_split(split_dir: Path, label_map: Mapping[str, str]) -> list[IndexEntry]:
    entries: list[IndexEntry] = []
    for label_dir in _subdirs(split_dir):
        label = resolve_label(label_dir.name, label_map, source=f"folder {str(label_dir)!r}")
        for path in _images(label_dir):
            entry_id = f"{split_dir.name}/{label_dir.name}/{path.name}"
            entries.append(IndexEntry(id=entry_id, path=path, label=label))
    return entries


class ImageFolderLoader(IndexedLoader):
    """Stream ``<root>/<split>/<label>/*.{jpg,jpeg,png}`` with labels mapped onto LABELS.

    Every non-hidden folder below ``root`` that has label folders is a split (FER2013 here: ``train``,
    ``validation``). Items stream in sorted order: by label folder, then file name. Ids are the paths
    relative to ``root`` (``"train/angry/Training_10118481.jpg"``). Other files are ignored.

    Parameters
    ----------
    root : str or pathlib.Path
        Folder holding the split folders.
    label_map : mapping of str to str, optional
        Folder name → common label; replaces :data:`FOLDER_LABEL_MAP` (extend it with
        ``{**FOLDER_LABEL_MAP, "joy": "happy"}``).
    size : int or (int, int), optional
        Resize every image to this many pixels (``48`` for FER2013's native size); ``None`` keeps sizes.
    rgb : bool, default False
        Yield ``(H, W, 3)`` images instead of grey ``(H, W)``.

    Raises
    ------
    FileNotFoundError
        When ``root`` does not exist.
    ValueError
        When a label folder's name is not in ``label_map`` (the message lists the known names), a value
        of ``label_map`` is not a common label, or no ``<split>/<label>/`` images are found.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4.2.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        label_map: Mapping[str, str] | None = None,
        size: int | tuple[int, int] | None = None,
        rgb: bool = False,
    ) -> None:
        folder = existing_path(root, what="image folder dataset")
        if not folder.is_dir():
            raise ValueError(
                f"root must be a folder laid out as <split>/<label>/*.jpg; got file {str(folder)!r}."
            )
        mapping = check_label_map(FOLDER_LABEL_MAP if label_map is None else label_map)
        index = {d.name: _index_split(d, mapping) for d in _subdirs(folder) if _subdirs(d)}
        if not any(index.values()):
            raise ValueError(
                f"no images found as <split>/<label>/*.jpg|png under {str(folder)!r}. "
                "Expected e.g. train/happy/0001.png."
            )
        super().__init__("folders", index, size=size, rgb=rgb)
        self.root = folder
