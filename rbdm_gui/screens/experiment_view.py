"""The Experiments screen: launch the Trainee grid, watch its learning curves, keep and compare runs.

Left, the kept runs of the runs folder (pick one to reopen it, several to compare them;
:mod:`~rbdm_gui.screens.experiment_runs_panel`), the form of a new run (RBDM §5.5) with what
``rbdm experiment`` offers (:mod:`~rbdm_gui.screens.experiment_form_panel`), and Run, Cancel, the grid's
progress and the status line (:mod:`~rbdm_gui.screens.experiment_progress_panel`). Run with the settings
of a cancelled run resumes its folder.

Centre, three pyqtgraph plots against the training step, as RBDM Figure 10
(:mod:`~rbdm_gui.screens.experiment_curves_panel`); below, the results table, the table by variant and
the comparison with ``none`` (:mod:`~rbdm_gui.screens.experiment_results_panel`) and the confusion matrix
of the Trainee chosen in the table (:mod:`~rbdm_gui.screens.experiment_confusion_panel`; RBDM Figures
11 and 12).

The view only assembles. The state and the policy are the Qt-free
:class:`rbdm_gui.workflows.experiment_screen.ExperimentScreen`, tested without Qt; its form is an
:class:`~rbdm_gui.workflows.experiment_settings.ExperimentSettings`, remembered in ``experiments.json``
in the user's config folder. A run executes in a worker process
(:class:`rbdm_gui.screens.experiment_runner.ExperimentRunner` running
:mod:`rbdm_gui.workflows.experiment_worker`), so TensorFlow and Ray never hold up the event loop; its
progress and curve points arrive as Qt signals, which the view hands to the model. Run folders are listed
and read on worker threads (:func:`rbdm_gui.screens.workers.run_task`), lent to the model as its
:class:`~rbdm_gui.workflows.experiment_screen.Background`. The runs folder is ``experiments`` in the
user's data folder unless given.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, §5.5 and §6 (Figures 10–12).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QHBoxLayout, QScrollArea, QSplitter, QVBoxLayout, QWidget

from analysis.experiment import ExperimentProgress
from rbdm_gui.screens._layout import sidebar_splitter
from rbdm_gui.screens.experiment_confusion_panel import ExperimentConfusionPanel
from rbdm_gui.screens.experiment_curves_panel import ExperimentCurvesPanel
from rbdm_gui.screens.experiment_form_panel import ExperimentFormPanel
from rbdm_gui.screens.experiment_progress_panel import ExperimentProgressPanel
from rbdm_gui.screens.experiment_results_panel import ExperimentResultsPanel
from rbdm_gui.screens.experiment_runner import ExperimentRunner
from rbdm_gui.screens.experiment_runs_panel import ExperimentRunsPanel
from rbdm_gui.screens.workers import Task, run_task
from rbdm_gui.workflows.experiment_screen import ExperimentScreen
from rbdm_gui.workflows.experiment_worker import LaunchRequest

__all__ = ["ExperimentView"]


class ExperimentView(QWidget):
    """The Experiments screen (RBDM §5.5, §6, Figures 10–12): the panels of an :class:`ExperimentScreen`.

    Parameters
    ----------
    runs_dir : Path, optional
        Where runs are kept; :func:`~rbdm_gui.workflows.experiment_screen.default_runs_dir` by default.
    trainer_path : Path, optional
        The Trainer for new runs; by default the one last chosen here, else the shipped small CNN.
    runner : ExperimentRunner, optional
        Runs the experiments (one in a worker process by default).
    """

    def __init__(
        self,
        *,
        runs_dir: Path | None = None,
        trainer_path: Path | None = None,
        runner: ExperimentRunner | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.runner = runner or ExperimentRunner(parent=self)
        self._tasks: dict[str, Task] = {}
        model = self.model = ExperimentScreen(
            self.runner, runs_dir=runs_dir, trainer_path=trainer_path, background=self._start
        )
        self.runs_panel = ExperimentRunsPanel(model)
        self.form = ExperimentFormPanel(model)
        self.progress = ExperimentProgressPanel(model)
        self.curves = ExperimentCurvesPanel(model)
        self.tables = ExperimentResultsPanel(model)
        self.confusion = ExperimentConfusionPanel(model)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(sidebar_splitter(self._sidebar(), self._centre(), side_px=400))
        self.runner.progress.connect(model.show_progress)
        self.runner.used.connect(model.show_used)
        self.runner.finished.connect(model.finish)
        model.refresh_runs()

    def _sidebar(self) -> QWidget:
        side = QWidget()
        side.setMinimumWidth(320)
        side.setMaximumWidth(440)
        layout = QVBoxLayout(side)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.runs_panel, 2)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.form)
        layout.addWidget(scroll, 5)
        layout.addWidget(self.progress)
        return side

    def _centre(self) -> QWidget:
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.tables)
        bottom.addWidget(self.confusion)
        bottom.setStretchFactor(0, 1)
        bottom.setStretchFactor(1, 1)
        bottom.setSizes([760, 470])
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.curves)
        splitter.addWidget(bottom)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([560, 400])
        return splitter

    # --- what the app, scripts and tests call --------------------------------------------------------

    def form_values(self) -> dict[str, Any]:
        """The form as plain values (what is remembered between sessions)."""
        return self.model.form.form_values()

    def form_request(self) -> LaunchRequest:
        """The run the form describes (:meth:`ExperimentScreen.request`).

        Raises
        ------
        ValueError
            With a message for the user when the form is incomplete or inconsistent.
        """
        return self.model.request()

    def save_form(self) -> None:
        """Remember the form for the next session (every Run does)."""
        self.model.save_form()

    def start_run(self) -> bool:
        """Start the run of the form in the background; False (and a message) when the form is not valid."""
        return self.model.start_run()

    def cancel_run(self) -> None:
        """Stop the running experiment after its current step (it is kept as ``cancelled``)."""
        self.model.cancel_run()

    def follow(self, run_dir: Path) -> None:
        """Show the run starting in ``run_dir`` live, as :meth:`show_progress` receives its curves."""
        self.model.follow(run_dir)

    def show_progress(self, progress: ExperimentProgress) -> None:
        """Show a progress record of the followed run: status, progress bar, a new curve point."""
        self.model.show_progress(progress)

    def show_used(self, used: Mapping[str, Any]) -> None:
        """Show the images per split the run really uses; the form takes those numbers, with a warning."""
        self.model.show_used(used)

    def follow_study(self, path: str | Path) -> None:
        """Study setup chose another study file: the gaze Trainees' study follows it."""
        self.model.follow_study(path)

    def closing_question(self) -> str:
        """What to ask before the window closes ("" when nothing would be lost)."""
        return self.model.closing_question()

    def refresh_runs(self, *, select: Path | None = None) -> None:
        """List the runs folder again (on a worker thread); then select ``select`` if given."""
        self.model.refresh_runs(select=select)

    def open_runs(self, run_dirs: Sequence[Path]) -> None:
        """Pick these runs in the list (one to reopen it, several to compare them)."""
        self.model.select(run_dirs)

    @property
    def selected_run_dirs(self) -> list[Path]:
        """The run folders picked in the list, newest first."""
        return list(self.model.selected)

    @property
    def busy(self) -> bool:
        """Whether a run is going on or a worker thread is reading runs."""
        return self.runner.running or any(not task.done for task in self._tasks.values())

    def _start(
        self,
        name: str,
        work: Callable[[], Any],
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None:
        """The model's :class:`~rbdm_gui.workflows.experiment_screen.Background`: a worker thread, one per
        name (a newer call cancels the older one)."""
        previous = self._tasks.get(name)
        if previous is not None and not previous.done:
            previous.cancel()
        self._tasks[name] = run_task(
            lambda progress, cancelled: work(), on_result=on_result, on_error=on_error
        )

    def closeEvent(self, event: QCloseEvent) -> None:
        for task in self._tasks.values():
            if not task.done:
                task.cancel()
        self.runner.stop()
        super().closeEvent(event)
