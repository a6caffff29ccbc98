"""The Experiments screen's kept runs: the runs folder's runs, newest first; pick one or several.

The list shows the model's ``listed`` runs (:class:`~rbdm_gui.workflows.experiment_screen.ExperimentScreen`)
and writes the pick back (its ``select``): one run is reopened, several are compared. "Use its settings"
copies the picked run's settings into the form.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from rbdm_gui.workflows.experiment_display import run_list_text, run_tooltip
from rbdm_gui.workflows.experiment_screen import ExperimentScreen

__all__ = ["ExperimentRunsPanel"]


class ExperimentRunsPanel(QGroupBox):
    """ "Kept runs": the list of runs, Refresh, and "Use its settings"."""

    def __init__(self, model: ExperimentScreen, parent: QWidget | None = None) -> None:
        super().__init__("Kept runs (pick several to compare)", parent)
        self.model = model
        layout = QVBoxLayout(self)
        self.runs_list = QListWidget()
        self.runs_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.runs_list.itemSelectionChanged.connect(self._picked)
        layout.addWidget(self.runs_list)
        row = QHBoxLayout()
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(lambda: model.refresh_runs())
        self.reuse_button = QPushButton("Use its settings")
        self.reuse_button.setToolTip("Copy the chosen run's settings into the form.")
        self.reuse_button.clicked.connect(model.reuse_settings)
        self.reuse_button.setEnabled(False)
        row.addWidget(refresh)
        row.addWidget(self.reuse_button)
        layout.addLayout(row)
        self._shown: tuple[Path, ...] = ()
        model.runs_changed.subscribe(lambda _: self._show_runs())

    def _show_runs(self) -> None:
        """List the model's runs (again only when they changed) and show its pick."""
        model = self.model
        with QSignalBlocker(self.runs_list):
            if model.listed != self._shown:
                self._shown = model.listed
                self.runs_list.clear()
                for run_dir in model.listed:
                    run = model.runs[run_dir]
                    item = QListWidgetItem(run_list_text(run))
                    item.setData(Qt.ItemDataRole.UserRole, str(run_dir))
                    item.setToolTip(run_tooltip(run))
                    self.runs_list.addItem(item)
            else:
                for k, run_dir in enumerate(model.listed):  # the texts of runs still running change
                    run = model.runs[run_dir]
                    item = self.runs_list.item(k)
                    item.setText(run_list_text(run))
                    item.setToolTip(run_tooltip(run))
            picked = set(model.selected)
            for k in range(self.runs_list.count()):
                item = self.runs_list.item(k)
                item.setSelected(Path(item.data(Qt.ItemDataRole.UserRole)) in picked)
        self.reuse_button.setEnabled(model.can_reuse)

    def _picked(self) -> None:
        items = [self.runs_list.item(k) for k in range(self.runs_list.count())]
        self.model.select([Path(item.data(Qt.ItemDataRole.UserRole)) for item in items if item.isSelected()])
