"""Writing files without ever destroying what was there: temporary file, then rename.

Every file the project writes over (models and their cards, settings, caches, manifests, run records)
goes through :func:`atomic_write` or :func:`replace_together`: the new content is written to a
temporary file in the target's own folder, flushed to disk, and only then renamed over the target
with :func:`os.replace`, which is atomic on POSIX and Windows. A failed write (full disk, file-size
limit) leaves the old file as it was and no temporary file behind; a killed process leaves the old
file too, and its temporary file (``.<name>.<random>.tmp<suffix>``) is removed by a later write once it
is older than :data:`STALE_TEMPORARY_S`.

A file that exists but cannot be read (damaged JSON, a truncated cache) is never silently replaced:
:func:`keep_damaged` renames it aside (``settings.json.damaged-20261204T233012``) so that the user
keeps it, and the caller says where it went.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

__all__ = [
    "STALE_TEMPORARY_S",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "keep_damaged",
    "replace_together",
]

#: Writes the new content of a file to the (temporary) path it is given.
Writer = Callable[[Path], Any]


#: A temporary file older than this (seconds) was left by a killed writer; the next write removes it.
STALE_TEMPORARY_S = 3600.0


def _temporary_path(target: Path) -> Path:
    """A new, unused file next to ``target`` that keeps its suffix (Keras picks the format by suffix)."""
    _remove_stale(target)
    handle, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(handle)
    return Path(name)


def _remove_stale(target: Path) -> None:
    """Remove the temporaries of ``target`` that a killed process left (older than STALE_TEMPORARY_S)."""
    if not target.parent.is_dir():
        return
    oldest = time.time() - STALE_TEMPORARY_S
    for left in target.parent.glob(f".{glob.escape(target.name)}.*.tmp{glob.escape(target.suffix)}"):
        with contextlib.suppress(OSError):
            if left.is_file() and left.stat().st_mtime < oldest:
                left.unlink()


def _finish(temporary: Path, target: Path) -> None:
    """Before the rename: flush the written file to disk (best effort on file systems without fsync)
    and give it the old file's permissions (mkstemp makes it private, 0600), else rw-r--r--."""
    if temporary.is_file():
        descriptor = os.open(temporary, os.O_RDONLY)
        try:
            with contextlib.suppress(OSError):
                os.fsync(descriptor)
        finally:
            os.close(descriptor)
    with contextlib.suppress(OSError):
        os.chmod(temporary, target.stat().st_mode & 0o777 if target.exists() else 0o644)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()


def replace_together(writers: Mapping[str | Path, Writer]) -> list[Path]:
    """Write several files as one unit: all temporaries first, then the renames, in the given order.

    Use it for files that belong together, such as a model and its card: the card (listed last) is
    renamed last, so the card never describes a model that is not there. If any write fails, every
    target keeps its old content.

    Parameters
    ----------
    writers : mapping of path to callable
        Target file → a function that writes the new content to the path it is given (a temporary
        file in the target's folder with the target's suffix). Parent folders are created.

    Returns
    -------
    list of Path
        The written targets, in the given order.

    Raises
    ------
    OSError
        When a write or a rename fails (the message is the operating system's); no target has changed
        unless a rename after the first one failed, which needs the folder itself to fail between two
        renames.
    """
    targets = [Path(path) for path in writers]
    temporaries: list[Path] = []
    try:
        for target, write in zip(targets, writers.values(), strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = _temporary_path(target)
            temporaries.append(temporary)
            write(temporary)
            _finish(temporary, target)
        for temporary, target in zip(temporaries, targets, strict=True):
            os.replace(temporary, target)
    finally:
        _remove([t for t in temporaries if t.exists()])
    return targets


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` atomically (see the module notes); returns the path."""
    return replace_together({path: lambda temporary: temporary.write_bytes(data)})[0]


def atomic_write_text(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Replace ``path`` with ``text`` atomically (see the module notes); returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


@contextmanager
def atomic_write(
    path: str | Path, mode: str = "w", *, encoding: str | None = "utf-8", newline: str | None = None
) -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` when the ``with`` block ends without error.

    Parameters
    ----------
    path : str or Path
        The file to replace (or create); its folder is created.
    mode : {"w", "wb"}
        Text or binary.
    encoding, newline : str, optional
        As for :func:`open`, text mode only.

    Yields
    ------
    file object
        The temporary file. On an exception inside the block it is removed and ``path`` is unchanged.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb'; got {mode!r}.")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_path(target)
    try:
        opened: IO[Any] = (
            temporary.open("w", encoding=encoding, newline=newline) if mode == "w" else temporary.open("wb")
        )
        with opened as handle:
            yield handle
        _finish(temporary, target)
        os.replace(temporary, target)
    finally:
        _remove([temporary] if temporary.exists() else [])


def keep_damaged(path: str | Path) -> Path:
    """Rename a damaged file aside (``<name>.damaged-<UTC time>``) so that it is kept; returns the new path.

    Call it before writing a fresh file in the damaged one's place, and tell the user the returned path.

    Raises
    ------
    OSError
        When the file cannot be renamed (e.g. a read-only folder); then nothing has changed.
    """
    source = Path(path)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    aside = source.with_name(f"{source.name}.damaged-{stamp}")
    counter = 1
    while aside.exists():
        counter += 1
        aside = source.with_name(f"{source.name}.damaged-{stamp}-{counter}")
    os.replace(source, aside)
    return aside
