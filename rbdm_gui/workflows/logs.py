"""Third-party warnings go to a log file, once each, not to the terminal the app was started from.

TensorFlow, Keras and their helpers warn about deprecations on every saliency computation; in the app
these are noise to the researcher and bury the project's own messages. While
:func:`third_party_warnings_to` is active, a warning raised from outside ``analysis``, ``tracking``,
``rbdm_gui`` and ``benchmarks`` is appended to the log file the first time its text is seen and then
dropped; the project's own warnings (dropped samples, damaged caches ...) reach the terminal as before.
The loggers of TensorFlow, Keras and absl write to the same file. No Qt here.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

__all__ = ["PROJECT_PACKAGES", "THIRD_PARTY_LOGGERS", "third_party_warnings_to"]

#: Warnings from these packages are the project's own and stay on the terminal.
PROJECT_PACKAGES = ("analysis", "tracking", "rbdm_gui", "benchmarks", "tests")
#: Loggers whose records go to the log file instead of the terminal.
THIRD_PARTY_LOGGERS = ("tensorflow", "keras", "absl", "h5py", "matplotlib", "PIL")

_ROOT = Path(__file__).resolve().parents[2]


def _is_project_file(filename: str) -> bool:
    try:
        relative = Path(filename).resolve().relative_to(_ROOT)
    except ValueError:
        return False
    return relative.parts[:1] != (".venv",) and relative.parts[0] in PROJECT_PACKAGES


@contextmanager
def third_party_warnings_to(path: str | Path) -> Iterator[Path]:
    """Within the block, log each distinct third-party warning once to ``path`` instead of printing it.

    Parameters
    ----------
    path : str or Path
        The log file (appended to; its folder is created).

    Yields
    ------
    Path
        The log file.
    """
    log = Path(path)
    log.parent.mkdir(parents=True, exist_ok=True)
    seen: set[tuple[str, str]] = set()
    shown = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if _is_project_file(filename):
            shown(message, category, filename, lineno, file, line)
            return
        key = (category.__name__, str(message))
        if key in seen:
            return
        seen.add(key)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        with log.open("a", encoding="utf-8") as handle:
            handle.write(f"{stamp} {filename}:{lineno}: {category.__name__}: {message}\n")

    handler = logging.FileHandler(log, encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in THIRD_PARTY_LOGGERS]
    before = [(logger.handlers[:], logger.propagate) for logger in loggers]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ log: errors only
    warnings.showwarning = show
    for logger in loggers:
        logger.handlers = [handler]
        logger.propagate = False
    try:
        yield log
    finally:
        warnings.showwarning = shown
        for logger, (handlers, propagate) in zip(loggers, before, strict=True):
            logger.handlers, logger.propagate = handlers, propagate
        handler.close()
