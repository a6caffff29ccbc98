"""RBDM Table 1 laid out in a Qt table: the one layout of the Compare screen and the live monitor."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem
from pytestqt.qtbot import QtBot

from analysis.metrics import ComparisonRow, ComparisonTable
from rbdm_gui.screens.table1_widget import METRIC_TITLES, UNDEFINED, fill_table1

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]
TABLE = ComparisonTable(
    metrics=("zero_measure", "spearman", "auc_judd"),
    rows=(
        ComparisonRow("P01", "P02", (0.5, 0.25, 0.75)),
        ComparisonRow(
            "P01", "Model", (0.125, math.nan, 0.6666), note="not comparable: P01 is zero everywhere"
        ),
    ),
)


def _item(widget: QTableWidget, row: int, column: int) -> QTableWidgetItem:
    item = widget.item(row, column)
    assert item is not None
    return item


def _cells(widget: QTableWidget) -> list[list[str]]:
    return [
        [_item(widget, r, c).text() for c in range(widget.columnCount())] for r in range(widget.rowCount())
    ]


def _header(widget: QTableWidget) -> list[str]:
    return [widget.horizontalHeaderItem(c).text() for c in range(widget.columnCount())]


def test_a_table_is_laid_out_as_rbdm_table_one(qtbot: QtBot) -> None:
    widget = QTableWidget(5, 9)  # leftovers of an earlier table are cleared
    qtbot.addWidget(widget)
    fill_table1(widget, TABLE)
    assert _header(widget) == ["ID_1", "ID_2", "ZeroMeasure", "Spearman", "AUC-Judd"]
    assert _cells(widget) == [
        ["P01", "P02", "0.500", "0.250", "0.750"],
        ["P01", "Model", "0.125", UNDEFINED, "0.667"],
    ]
    assert _item(widget, 1, 3).toolTip() == "not comparable: P01 is zero everywhere"
    assert _item(widget, 0, 3).toolTip() == repr(0.25)
    assert _item(widget, 0, 2).textAlignment() & Qt.AlignmentFlag.AlignRight


def test_the_stimuli_each_pair_shares_follow_the_ids(qtbot: QtBot) -> None:
    widget = QTableWidget()
    qtbot.addWidget(widget)
    fill_table1(widget, TABLE, counts={("P01", "P02"): 3})
    assert _header(widget) == ["ID_1", "ID_2", "stimuli", *(METRIC_TITLES[m] for m in TABLE.metrics)]
    assert [row[:4] for row in _cells(widget)] == [
        ["P01", "P02", "3", "0.500"],
        ["P01", "Model", "0", "0.125"],
    ]
    fill_table1(widget, ComparisonTable(metrics=("kld",), rows=()))
    assert _header(widget) == ["ID_1", "ID_2", "KLD"] and widget.rowCount() == 0


def test_an_unknown_metric_keeps_its_name_as_title(qtbot: QtBot) -> None:
    widget = QTableWidget()
    qtbot.addWidget(widget)
    fill_table1(widget, ComparisonTable(metrics=("my_metric",), rows=(ComparisonRow("a", "b", (1.0,)),)))
    assert _header(widget) == ["ID_1", "ID_2", "my_metric"]


@pytest.mark.parametrize(
    "module", ["rbdm_gui/screens/comparison_tables.py", "rbdm_gui/screens/monitor_view.py"]
)
def test_the_screens_use_the_public_layout_not_each_others_private_helpers(module: str) -> None:
    tree = ast.parse((ROOT / module).read_text(encoding="utf-8"))
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rbdm_gui.")
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "rbdm_gui.screens.table1_widget"
        for alias in node.names
    }
    assert "fill_table1" in imported
