"""The Experiments screen's Run and Cancel buttons, the grid's progress bar and the status line.

Run and Cancel are enabled as :class:`~rbdm_gui.workflows.experiment_screen.ExperimentScreen` says
(one run at a time; Cancel once); the bar shows its
:class:`~rbdm_gui.workflows.experiment_screen.ProgressBar` (cells done / running / failed and ETA, or
busy while images are loaded, relevance computed and masks made) while a run goes on.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from rbdm_gui.workflows.experiment_screen import ExperimentScreen, ProgressBar

__all__ = ["ExperimentProgressPanel"]


class ExperimentProgressPanel(QWidget):
    """Run, Cancel, the progress bar and the status line of the Experiments screen."""

    def __init__(self, model: ExperimentScreen, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        actions = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Mask the training images and train every Trainee in the background.")
        self.run_button.clicked.connect(lambda: model.start_run())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current training step; the run keeps its curves.")
        self.cancel_button.clicked.connect(model.cancel_run)
        actions.addWidget(self.run_button)
        actions.addWidget(self.cancel_button)
        layout.addLayout(actions)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.hide()
        layout.addWidget(self.progress_bar)
        self.status_label = QLabel(model.status)
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status_label)
        model.status_changed.subscribe(self.status_label.setText)
        model.progress_changed.subscribe(self._show_progress)
        model.running_changed.subscribe(self._show_running)
        self.update_buttons()

    def update_buttons(self) -> None:
        """Enable Run and Cancel as the model allows."""
        self.run_button.setEnabled(self.model.can_run)
        self.cancel_button.setEnabled(self.model.can_cancel)

    def _show_running(self, running: bool) -> None:
        self.progress_bar.setVisible(running)
        self.update_buttons()

    def _show_progress(self, bar: ProgressBar) -> None:
        if bar.fraction is not None:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(round(1000 * bar.fraction))
        elif bar.busy:
            self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat(bar.text)
