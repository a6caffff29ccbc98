"""The Compare screen's tables: the stimulus on show, and the study's RBDM Table 1.

A panel of :class:`rbdm_gui.screens.comparison_view.ComparisonView`: two tabs, each a caption above a
table laid out by :func:`rbdm_gui.screens.table1_widget.fill_table1`. The values, captions and counts
come from :class:`rbdm_gui.workflows.comparison.ComparisonSession`; nothing is computed here.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from rbdm_gui.screens.table1_widget import fill_table1
from tracking.study import StimulusComparison, StudyTables

__all__ = ["ComparisonTables"]


class ComparisonTables(QTabWidget):
    """Tab "This stimulus" (``stimulus_caption``, ``stimulus_table``) and tab "Study (RBDM Table 1)"
    (``study_caption``, ``study_table``)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stimulus_caption = QLabel()
        self.stimulus_table = _table_widget()
        self.study_caption = QLabel("The study table appears once every stimulus is compared.")
        self.study_table = _table_widget()
        self.addTab(_page(self.stimulus_caption, self.stimulus_table), "This stimulus")
        self.addTab(_page(self.study_caption, self.study_table), "Study (RBDM Table 1)")

    def show_stimulus(self, comparison: StimulusComparison, *, caption: str) -> None:
        """The metrics of every pair of heatmaps of one stimulus."""
        self.stimulus_caption.setText(caption)
        fill_table1(self.stimulus_table, comparison.table)

    def show_study(self, tables: StudyTables, *, caption: str, tooltip: str = "") -> None:
        """RBDM Table 1 with the stimuli each pair was compared on."""
        fill_table1(self.study_table, tables.study, counts=tables.pair_counts)
        self.study_caption.setText(caption)
        self.study_caption.setToolTip(tooltip)

    def comparing(self) -> None:
        """Say that the study table is being computed."""
        self.study_caption.setText("Comparing every stimulus…")


def _page(caption: QLabel, table: QTableWidget) -> QWidget:
    page = QWidget()
    layout = QVBoxLayout(page)
    layout.setContentsMargins(4, 4, 4, 4)
    caption.setWordWrap(True)
    layout.addWidget(caption)
    layout.addWidget(table, 1)
    return page


def _table_widget() -> QTableWidget:
    table = QTableWidget()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.verticalHeader().setVisible(False)
    header = table.horizontalHeader()  # headers never clipped: a narrow window scrolls the table instead
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    return table
