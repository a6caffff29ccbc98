"""The Compare screen's action bar: progress, cancel, the status line and the exports.

A panel of :class:`rbdm_gui.screens.comparison_view.ComparisonView`. The exports themselves are
written by :class:`rbdm_gui.workflows.comparison.ComparisonSession`; this panel asks where.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

__all__ = ["ComparisonActions"]


class ComparisonActions(QWidget):
    """Progress bar, *Cancel*, the status line, *Export PNG…* and *Export CSV…*.

    Signals
    -------
    cancel_requested()
        *Cancel*: stop computing the Trainer's saliency.
    png_chosen(str)
        The file the figure of the stimulus on show goes to.
    csv_chosen(str)
        The folder the tables go to.
    """

    cancel_requested = Signal()
    png_chosen = Signal(str)
    csv_chosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.png_name = "comparison.png"
        actions = QHBoxLayout(self)
        actions.setContentsMargins(0, 0, 0, 0)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setMaximumWidth(200)
        self.progress_bar.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested.emit)
        self.cancel_button.hide()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.png_button = QPushButton("Export PNG…")
        self.png_button.clicked.connect(self._choose_png)
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(self._choose_csv_folder)
        actions.addWidget(self.progress_bar)
        actions.addWidget(self.cancel_button)
        actions.addWidget(self.status_label, 1)
        actions.addWidget(self.png_button)
        actions.addWidget(self.csv_button)
        self.enable_exports(png=False, csv=False)

    def say(self, text: str) -> None:
        """Show ``text`` on the status line."""
        self.status_label.setText(text)

    def show_progress(self, fraction: float, text: str) -> None:
        """Fill the progress bar to ``fraction`` (clipped to [0, 1]) with ``text``."""
        self.progress_bar.setValue(round(1000 * min(1.0, max(0.0, fraction))))
        self.progress_bar.setFormat(text)

    def enable_exports(self, *, png: bool, csv: bool) -> None:
        """Offer the figure export once a stimulus is shown, the tables' once they are computed."""
        self.png_button.setEnabled(png)
        self.csv_button.setEnabled(csv)

    def _choose_png(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the figure", self.png_name, "PNG image (*.png)")
        if path:
            self.png_chosen.emit(str(Path(path)))

    def _choose_csv_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the tables (table1.csv, stimuli.csv) to")
        if folder:
            self.csv_chosen.emit(folder)
