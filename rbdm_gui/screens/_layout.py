"""Layout pieces the screens share."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QSplitter, QWidget

from rbdm_gui.workflows.speech import keys_text  # its home; the screens import it from here too

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
