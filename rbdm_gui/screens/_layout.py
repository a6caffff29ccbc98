"""Layout pieces the screens share."""

from __future__ import annotations

import re

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QWidget

__all__ = ["keys_text", "sidebar_splitter"]


def sidebar_splitter(side: QWidget, main: QWidget, *, side_px: int, main_px: int = 1100) -> QSplitter:
    """A horizontal splitter: ``side`` at ``side_px`` wide, ``main`` taking the rest; neither collapses."""
    splitter = QSplitter(Qt.Orientation.Horizontal)
    splitter.addWidget(side)
    splitter.addWidget(main)
    splitter.setStretchFactor(1, 1)
    splitter.setChildrenCollapsible(False)
    splitter.setSizes([side_px, main_px])
    return splitter


_KEYS = re.compile(r"\b(keys?) 1[–-]\d\b")


def keys_text(text: str, n_labels: int) -> str:
    """``text`` with "keys 1–8" (the lower layers' wording for the full label set) as "keys 1–n"."""
    last = max(1, n_labels)
    return _KEYS.sub(lambda m: f"{m.group(1)} 1–{last}" if last > 1 else f"{m.group(1)} 1", text)
