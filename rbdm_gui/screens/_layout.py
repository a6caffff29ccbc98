"""Layout pieces the screens share."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QSplitter, QWidget

__all__ = ["KERAS_FILES", "STUDY_FILES", "pick_file", "row", "sidebar_splitter"]

#: File-dialog filters of the files the screens open.
STUDY_FILES = "RBDM Studio study (*.sqlite *.db);;All files (*)"
KERAS_FILES = "Keras model (*.keras);;All files (*)"


def sidebar_splitter(side: QWidget, main: QWidget, *, side_px: int, main_px: int = 1100) -> QSplitter:
    """A horizontal splitter: ``side`` at ``side_px`` wide, ``main`` taking the rest; neither collapses."""
    splitter = QSplitter(Qt.Orientation.Horizontal)
    splitter.addWidget(side)
    splitter.addWidget(main)
    splitter.setStretchFactor(1, 1)
    splitter.setChildrenCollapsible(False)
    splitter.setSizes([side_px, main_px])
    return splitter


def row(*widgets: QWidget) -> QWidget:
    """The widgets side by side; line edits take the room."""
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget, 1 if isinstance(widget, QLineEdit) else 0)
    return holder


def pick_file(edit: QLineEdit, title: str, filters: str) -> bool:
    """Ask for a file to open, starting at ``edit``'s path; the choice goes in ``edit``. False: cancelled."""
    path, _ = QFileDialog.getOpenFileName(edit, title, edit.text(), filters)
    if path:
        edit.setText(path)
    return bool(path)
