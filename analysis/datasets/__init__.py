"""Dataset loaders with one interface and the common 8-label vocabulary (RBDM §4).

Every loader satisfies :class:`DatasetLoader`: it streams :class:`Sample` records (image, label, id)
per split, counts classes from its index without decoding, and lists unreadable images it skipped.
:data:`LOADERS` maps loader names to classes; :func:`open_dataset` picks one from a spec string.

The synthetic data are generated beside their loaders: :mod:`analysis.datasets.synthetic_faces` draws
the faces that :class:`SyntheticLoader` streams, and :mod:`analysis.datasets.synthetic_sequences`
draws action unit sequences, the embedded stand-in for the CK+ sequences of
:class:`CKSequenceLoader` (TP §3.1).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §4 (AffectNet §4.1, FERPlus §4.2, CK+ §4.3).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from analysis.datasets.affectnet import AffectNetLoader, is_affectnet_layout
from analysis.datasets.arrays import SplitArrays, load_arrays, subset_positions
from analysis.datasets.base import DatasetLoader, Sample, SkippedItem, decode_image, existing_path
from analysis.datasets.ck_sequences import CKSequenceLoader
from analysis.datasets.ckplus import CKPlusLoader, is_ckplus_layout
from analysis.datasets.ferplus import FERPlusLoader, read_ferplus_csv
from analysis.datasets.folders import ImageFolderLoader, is_image_folder_layout
from analysis.datasets.synthetic import SyntheticLoader

__all__ = [
    "LOADERS",
    "AffectNetLoader",
    "CKPlusLoader",
    "CKSequenceLoader",
    "DatasetLoader",
    "FERPlusLoader",
    "ImageFolderLoader",
    "Sample",
    "SkippedItem",
    "SplitArrays",
    "SyntheticLoader",
    "decode_image",
    "load_arrays",
    "open_dataset",
    "read_ferplus_csv",
    "subset_positions",
]

#: Loader name → loader class. The CLI and the GUI offer these names.
LOADERS: dict[str, type[Any]] = {
    "folders": ImageFolderLoader,
    "ferplus": FERPlusLoader,
    "ckplus": CKPlusLoader,
    "ck_sequences": CKSequenceLoader,
    "affectnet": AffectNetLoader,
    "synthetic": SyntheticLoader,
}

_SYNTHETIC_OPTIONS = {"n": "n_per_class", "size": "size", "rgb": "rgb", "seed": "seed"}
_FERPLUS_CSV = "fer2013new.csv"


def _parse_flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes"}:
        return True
    if lowered in {"0", "false", "no"}:
        return False
    raise ValueError(f"rgb must be 0/1 or true/false in a dataset spec; got {text!r}.")


def _parse_int(text: str, *, key: str) -> int:
    try:
        return int(text)
    except ValueError as err:
        raise ValueError(f"synthetic option {key!r} needs an integer; got {text!r}.") from err


def _parse_synthetic(options: str, *, size: int | None, rgb: bool) -> SyntheticLoader:
    kwargs: dict[str, Any] = {"size": 48 if size is None else size, "rgb": rgb}
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in _SYNTHETIC_OPTIONS:
            raise ValueError(
                f"bad synthetic dataset option {item!r}; write key=value with keys "
                f"{', '.join(_SYNTHETIC_OPTIONS)}, e.g. 'synthetic:n=200,size=48'."
            )
        name = _SYNTHETIC_OPTIONS[key.strip()]
        kwargs[name] = _parse_flag(value) if name == "rgb" else _parse_int(value, key=key.strip())
    return SyntheticLoader(**kwargs)


def _open_csv(path: Path, *, size: int | None, rgb: bool) -> DatasetLoader:
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        header = next(csv.reader(handle), [])
    if header[:2] == ["Usage", "Image name"]:
        return FERPlusLoader(path, path.parent, size=size, rgb=rgb)
    if (header[:1] == ["subDirectory_filePath"]) or path.name in {"training.csv", "validation.csv"}:
        return AffectNetLoader(path, path.parent, size=size, rgb=rgb)
    raise ValueError(
        f"{str(path)!r} is neither a FERPlus label file (header 'Usage,Image name,...') nor an AffectNet "
        "CSV (header 'subDirectory_filePath,...'). Open it with FERPlusLoader or AffectNetLoader directly."
    )


def _open_folder(root: Path, *, size: int | None, rgb: bool) -> DatasetLoader:
    if (root / _FERPLUS_CSV).is_file():
        return FERPlusLoader(root / _FERPLUS_CSV, root, size=size, rgb=rgb)
    if is_ckplus_layout(root):
        return CKPlusLoader(root, size=size, rgb=rgb)
    if is_affectnet_layout(root):
        images = root / "Manually_Annotated_Images"
        return AffectNetLoader(root, images if images.is_dir() else root, size=size, rgb=rgb)
    if is_image_folder_layout(root):
        return ImageFolderLoader(root, size=size, rgb=rgb)
    raise ValueError(
        f"cannot tell the dataset layout of {str(root)!r}. Expected <split>/<label>/*.jpg folders, "
        f"a {_FERPLUS_CSV} (FERPlus), cohn-kanade-images/ and Emotion/ (CK+), or training.csv / "
        "validation.csv (AffectNet); or open the matching loader of LOADERS directly."
    )


def open_dataset(spec: str | Path, *, size: int | None = None, rgb: bool = False) -> DatasetLoader:
    """Open a dataset from a spec string: ``"synthetic[:key=value,...]"`` or a path.

    A path is recognised by its layout: a folder with ``fer2013new.csv`` (FERPlus, images beside it),
    ``cohn-kanade-images/`` and ``Emotion/`` (CK+), ``training.csv``/``validation.csv`` (AffectNet,
    images in ``Manually_Annotated_Images/`` or beside them), or ``<split>/<label>/*.jpg`` folders
    (FER2013 and other image folders); a FERPlus or AffectNet CSV file, images beside it.

    Parameters
    ----------
    spec : str or pathlib.Path
        ``"synthetic"``, ``"synthetic:n=200,size=48,rgb=0,seed=1"`` (``n`` faces per label and split), or
        a path.
    size : int, optional
        Resize images to ``size`` × ``size`` pixels (synthetic: default 48, a spec's ``size`` wins).
    rgb : bool, default False
        Yield ``(H, W, 3)`` images instead of grey ``(H, W)``.

    Returns
    -------
    DatasetLoader

    Raises
    ------
    FileNotFoundError
        When the path does not exist.
    ValueError
        For a bad synthetic option or a path whose layout is not recognised.
    """
    text = str(spec)
    name, _, options = text.partition(":")
    if name == "synthetic" and not Path(text).exists():
        return _parse_synthetic(options, size=size, rgb=rgb)
    path = existing_path(text, what="dataset")
    if path.is_file():
        return _open_csv(path, size=size, rgb=rgb)
    return _open_folder(path, size=size, rgb=rgb)
