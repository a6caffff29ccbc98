"""RBDM Table 1 in a Qt table: the one layout the Compare screen and the live monitor share.

:func:`fill_table1` writes a :class:`analysis.metrics.ComparisonTable` into a ``QTableWidget`` as
RBDM Table 1 lays it out: ``ID_1``, ``ID_2``, optionally the number of stimuli each pair was compared
on, then one column per metric titled as :data:`METRIC_TITLES` names it. It computes nothing: the
values, the notes and the counts come from :class:`tracking.study.StudyComparison` (through the
Compare screen or the monitor's worker).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

from analysis.metrics import ComparisonTable

__all__ = ["METRIC_TITLES", "UNDEFINED", "fill_table1"]

#: Column titles of the metrics, as RBDM Table 1 and the saliency benchmark name them.
METRIC_TITLES: dict[str, str] = {
    "zero_measure": "ZeroMeasure",
    "spearman": "Spearman",
    "cosine_distance": "Cosine distance",
    "nss": "NSS",
    "cc": "CC",
    "sim": "SIM",
    "kld": "KLD",
    "auc_judd": "AUC-Judd",
}
#: What a cell shows for a value that is not defined (``nan``); its tooltip says why.
UNDEFINED = "–"
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_COUNT_TIP = "stimuli on which both have a heatmap to compare; the mean is over these"


def fill_table1(
    widget: QTableWidget, table: ComparisonTable, *, counts: Mapping[tuple[str, str], int] | None = None
) -> None:
    """Show ``table`` in ``widget`` in RBDM Table 1's layout, replacing what it showed.

    Parameters
    ----------
    widget : QTableWidget
        The table to fill; its columns and rows are set here.
    table : ComparisonTable
        One row per pair of maps; values three decimals wide, ``nan`` as :data:`UNDEFINED` with the
        row's note as tooltip.
    counts : mapping of (str, str) to int, optional
        The stimuli each pair ``(id_1, id_2)`` was compared on: a "stimuli" column after the IDs
        (0 for a pair missing here). Without it there is no such column.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1.
    """
    extra = ["stimuli"] if counts is not None else []
    titles = ["ID_1", "ID_2", *extra, *(METRIC_TITLES.get(m, m) for m in table.metrics)]
    widget.clear()
    widget.setColumnCount(len(titles))
    widget.setHorizontalHeaderLabels(titles)
    widget.setRowCount(len(table.rows))
    for r, row in enumerate(table.rows):
        widget.setItem(r, 0, QTableWidgetItem(row.id_1))
        widget.setItem(r, 1, QTableWidgetItem(row.id_2))
        if counts is not None:
            widget.setItem(r, 2, _number(str(counts.get((row.id_1, row.id_2), 0)), _COUNT_TIP))
        for c, value in enumerate(row.values, start=2 + len(extra)):
            if math.isnan(value):
                widget.setItem(r, c, _number(UNDEFINED, row.note or "undefined: no fixations to score"))
            else:
                widget.setItem(r, c, _number(f"{value:.3f}", repr(value)))


def _number(text: str, tip: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setTextAlignment(_RIGHT)
    item.setToolTip(tip)
    return item
