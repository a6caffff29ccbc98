"""The confusion matrix of the Trainee picked in the Experiments screen's results table (RBDM Figures 11, 12).

Rows are the true class, columns the predicted one, on the validation images after the last step; a
cell's colour is its share of the row (white → dark blue). Matrix and caption come from
:class:`~rbdm_gui.workflows.experiment_screen.ExperimentScreen`.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §6, Figures 11 and 12.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from analysis.labels import LABELS
from rbdm_gui.screens.experiment_results_panel import table_cell
from rbdm_gui.workflows.experiment_display import TraineeKey, confusion_caption, confusion_labels
from rbdm_gui.workflows.experiment_screen import ExperimentScreen

__all__ = ["ExperimentConfusionPanel"]


class ExperimentConfusionPanel(QWidget):
    """The caption and the heat-coloured confusion matrix of the model's chosen Trainee."""

    def __init__(self, model: ExperimentScreen, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.confusion_caption = QLabel("Confusion matrix: pick a Trainee in the table.")
        self.confusion_caption.setWordWrap(True)
        table = self.confusion_table = QTableWidget(len(LABELS), len(LABELS))
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        _label_headers(table, LABELS)
        for header in (table.horizontalHeader(), table.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        widest = max(table.fontMetrics().horizontalAdvance(_short(label)) for label in LABELS)
        table.horizontalHeader().setMinimumSectionSize(widest + 12)  # never cut a label
        layout.addWidget(self.confusion_caption)
        layout.addWidget(table, 1)
        model.trainee_changed.subscribe(self._show)

    def _show(self, key: TraineeKey | None) -> None:
        matrix = self.model.confusion()
        table = self.confusion_table
        table.clearContents()
        self.confusion_caption.setText(confusion_caption(key, matrix))
        if key is None or matrix is None:
            return
        labels = confusion_labels(matrix)
        n = len(labels)
        table.setRowCount(n)
        table.setColumnCount(n)
        _label_headers(table, labels)
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        for r in range(n):
            for c in range(n):
                item = table_cell(str(int(matrix[r, c])), numeric=True)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setBackground(QBrush(_heat(float(shares[r, c]))))
                item.setForeground(QBrush(QColor("white" if shares[r, c] > 0.55 else "black")))
                item.setToolTip(f"true {labels[r]}, predicted {labels[c]}: {shares[r, c]:.0%} of the row")
                table.setItem(r, c, item)


def _heat(share: float) -> QColor:
    """White → dark blue as a share of the row grows from 0 to 1."""
    t = min(1.0, max(0.0, share))
    low, high = np.array([255.0, 255.0, 255.0]), np.array([8.0, 48.0, 107.0])
    r, g, b = np.round(low + (high - low) * t).astype(int)
    return QColor(int(r), int(g), int(b))


def _short(label: str) -> str:
    """A column title short enough for an 8-column matrix: ``surprise`` → ``sur.``."""
    return label if len(label) <= 4 else label[:3] + "."


def _label_headers(table: QTableWidget, labels: Sequence[str]) -> None:
    """Rows: the true class's name; columns: the predicted class, abbreviated (full name as tooltip)."""
    table.setVerticalHeaderLabels(list(labels))
    for c, label in enumerate(labels):
        item = QTableWidgetItem(_short(label))
        item.setToolTip(f"predicted {label}")
        table.setHorizontalHeaderItem(c, item)
