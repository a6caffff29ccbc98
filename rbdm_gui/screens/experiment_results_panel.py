"""The Experiments screen's tables: the Trainees, by variant, and by variant against ``none``.

"Trainees": one row per Trainee (best, final and mean validation macro-F1, ...); picking a row shows its
confusion matrix. "By variant": mean ± sd over the seeds. "By variant vs none": per training-set size,
means with 95 % confidence intervals, paired differences and verdicts (:mod:`analysis.experiment_report`).
The cells are made by :class:`~rbdm_gui.workflows.experiment_screen.ExperimentScreen`; this panel draws them.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5 and §6.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QWidget,
)

from rbdm_gui.workflows.experiment_display import TextTable, TraineeKey
from rbdm_gui.workflows.experiment_screen import ExperimentScreen

__all__ = ["ExperimentResultsPanel", "table_cell", "table_widget"]


class ExperimentResultsPanel(QTabWidget):
    """The three result tables of the runs the model shows, as tabs."""

    def __init__(self, model: ExperimentScreen, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.results_table = table_widget()
        self.results_table.itemSelectionChanged.connect(self._picked)
        self.summary_table = table_widget()
        self.comparison_table = table_widget()
        self.addTab(self.results_table, "Trainees")
        self.addTab(self.summary_table, "By variant (mean ± sd over seeds)")
        self.addTab(self.comparison_table, "By variant vs none (95 % CI, verdict)")
        model.shown_changed.subscribe(lambda _: self._show())
        model.trainee_changed.subscribe(self._show_trainee)

    def _show(self) -> None:
        with QSignalBlocker(self.results_table):
            trainees = self.model.trainee_table()
            _fill(self.results_table, trainees, lambda c, n: c >= (3 if trainees.several else 2))
        _fill(self.summary_table, self.model.summary_table(), lambda c, n: c >= n - 4)
        _fill(self.comparison_table, self.model.comparison_table(), lambda c, n: 0 < c < n - 1, tips=True)

    def _show_trainee(self, key: TraineeKey | None) -> None:
        row = self.model.trainee_row
        picked = sorted({index.row() for index in self.results_table.selectedIndexes()})
        if row is not None and picked[:1] != [row]:
            with QSignalBlocker(self.results_table):
                self.results_table.selectRow(row)

    def _picked(self) -> None:
        rows = sorted({index.row() for index in self.results_table.selectedIndexes()})
        self.model.choose_trainee(rows[0] if rows else None)


def _fill(
    table: QTableWidget, text: TextTable, numeric: Callable[[int, int], bool], *, tips: bool = False
) -> None:
    """Show ``text`` in ``table``; ``numeric(column, n_columns)`` says which columns align right."""
    table.clear()
    table.setColumnCount(len(text.titles))
    table.setHorizontalHeaderLabels(list(text.titles))
    table.setRowCount(len(text.rows))
    for r, cells in enumerate(text.rows):
        for c, cell in enumerate(cells):
            item = table_cell(cell, numeric=numeric(c, len(cells)))
            if tips:
                item.setToolTip(cell)
            table.setItem(r, c, item)


def table_cell(text: str, *, numeric: bool = False) -> QTableWidgetItem:
    """A read-only cell; numbers align right."""
    item = QTableWidgetItem(text)
    if numeric:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def table_widget() -> QTableWidget:
    """A read-only table whose rows are picked one at a time."""
    table = QTableWidget()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table
