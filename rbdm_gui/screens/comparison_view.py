"""The comparison screen: a study's annotators' gaze against the Trainer's saliency (RBDM §5.3.2).

Pick a study file and a stimulus: the image with the contour of each heatmap (the annotators' gaze
heatmaps and the Trainer's saliency heatmap from its n most relevant pixels, n the annotators' mean
fixation count, same Gaussian), each heatmap on its own small panel (RBDM Figure 7), and the metrics
of every pair of heatmaps (ZeroMeasure, Spearman, cosine distance, NSS, CC, SIM, KLD, AUC-Judd). The
second tab holds the study-level table, RBDM Table 1: the mean over the stimuli. "Export PNG" writes
the figure of the stimulus shown, "Export CSV" both tables of the study. Trials marked bad in the live
monitor are left out (:func:`tracking.study.read_study`) unless "Include trials marked bad" is checked
(``rbdm compare --include-flagged``); the box counts them and the Table 1 tab says what happened.

The screen is a Qt-free model plus panels. :class:`rbdm_gui.workflows.comparison.ComparisonSession`
holds the remembered settings (``comparison.json``, typed), what is open and chosen, and writes the
exports; its :class:`tracking.study.StudyComparison` computes every heatmap, point and value. The panels
(:mod:`~rbdm_gui.screens.comparison_sidebar`, :mod:`~rbdm_gui.screens.comparison_maps`,
:mod:`~rbdm_gui.screens.comparison_tables`, :mod:`~rbdm_gui.screens.comparison_actions`) show it and
hand the user's choices on. This class assembles them and runs the long work on worker threads
(:func:`rbdm_gui.screens.workers.run_task`): opening the study (reading it and decoding the stimuli),
the Trainer's relevance maps (TensorFlow; with progress, cancellable; cached next to the study), the
shown stimulus and the study table. The annotator boxes write the choice into the model, whose news
makes the view recompute what it shows; the view never writes the boxes back from that news.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QHBoxLayout, QSplitter, QVBoxLayout, QWidget

from rbdm_gui.screens._layout import sidebar_splitter
from rbdm_gui.screens.comparison_actions import ComparisonActions
from rbdm_gui.screens.comparison_maps import ComparisonMaps, ShownStimulus, contour_lines
from rbdm_gui.screens.comparison_sidebar import ComparisonSidebar
from rbdm_gui.screens.comparison_tables import ComparisonTables
from rbdm_gui.screens.task_group import TaskGroup
from rbdm_gui.screens.workers import ProgressCallback
from rbdm_gui.workflows.assets import DEFAULT_TRAINER
from rbdm_gui.workflows.comparison import (
    ComparisonSession,
    OpenedStudy,
    export_file_name,
    setup_study_path,
    stimulus_caption,
    trainer_text,
)
from tracking.study import (
    ModelRelevance,
    StudyComparison,
    StudyTables,
    TrainerInfo,
)

__all__ = ["ComparisonView"]


class ComparisonView(QWidget):
    """The comparison screen (RBDM §5.3.2, Table 1, Figure 7).

    Parameters
    ----------
    study_path : Path, optional
        The study to open; by default the one last opened here, else the setup's study file.
    model_path : Path, optional
        The Trainer; by default the one last chosen here, else the shipped default model.
    analyzer : str
        Relevance analyzer (:data:`analysis.saliency.ANALYZERS`); deep Taylor is the paper's.
    open_now : bool
        Open the study at once when its file exists.
    """

    def __init__(
        self,
        *,
        study_path: Path | None = None,
        model_path: Path | None = None,
        analyzer: str = "deep_taylor",
        open_now: bool = True,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.analyzer = analyzer
        self.session = ComparisonSession()
        settings = self.session.settings
        self.session.changed.subscribe(self._on_session_changed)
        self._build()
        self._tasks = TaskGroup(self._update_progress)
        self.study_edit.setText(str(study_path or settings.study_path or setup_study_path()))
        self.model_edit.setText(str(model_path or settings.model_path or DEFAULT_TRAINER))
        self.sidebar.show_flagged(None, included=settings.include_flagged)
        if open_now and Path(self.study_edit.text()).is_file():
            self.open_study()
        else:
            self._say(f"No study file at {self.study_edit.text()}. Record sessions in 'Study setup' first.")
        if self.session.settings_problem:
            self._say(self.session.settings_problem)

    def _build(self) -> None:
        self.sidebar = ComparisonSidebar()
        self.maps = ComparisonMaps()
        self.tabs = ComparisonTables()
        self.action_bar = ComparisonActions()
        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(self.maps)
        bottom = QWidget()
        column = QVBoxLayout(bottom)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.tabs)
        column.addWidget(self.action_bar)
        centre.addWidget(bottom)
        centre.setStretchFactor(0, 3)
        centre.setStretchFactor(1, 2)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(sidebar_splitter(self.sidebar, centre, side_px=300))
        side, maps, tabs, bar = self.sidebar, self.maps, self.tabs, self.action_bar
        # the panels' widgets, by the names the screen has always had
        self.study_edit, self.model_edit = side.study_edit, side.model_edit
        self.model_label, self.set_combo = side.model_label, side.set_combo
        self.flagged_box = side.flagged_box
        self.stimulus_list, self.annotator_list = side.stimulus_list, side.annotator_list
        self.info_label, self.image_box, self.panel_grid = side.info_label, maps.image_box, maps.panel_grid
        self.stimulus_caption, self.stimulus_table = tabs.stimulus_caption, tabs.stimulus_table
        self.study_caption, self.study_table = tabs.study_caption, tabs.study_table
        self.status_label, self.png_button = bar.status_label, bar.png_button
        self.csv_button = bar.csv_button
        side.open_requested.connect(lambda: self.open_study())
        side.set_chosen.connect(lambda key: self.open_study(stimulus_set=key))
        side.include_flagged_toggled.connect(self.set_include_flagged)
        side.stimulus_chosen.connect(self.select_stimulus)
        side.annotators_chosen.connect(self._on_annotators_chosen)
        bar.cancel_requested.connect(self.cancel_relevance)
        bar.png_chosen.connect(lambda path: self._say(f"Wrote {self.export_png(path)}."))
        bar.csv_chosen.connect(
            lambda folder: self._say(f"Wrote {', '.join(str(p) for p in self.export_csv(folder))}.")
        )

    # --- what the session holds -------------------------------------------------------------------

    @property
    def model(self) -> StudyComparison | None:
        """The comparison of the open study (None before one is open)."""
        return self.session.comparison

    @property
    def shown(self) -> ShownStimulus | None:
        """The stimulus drawn, once its comparison is the session's current one."""
        shown = self.maps.shown
        return shown if shown is not None and shown.comparison is self.session.shown else None

    @property
    def tables(self) -> StudyTables | None:
        """The study tables, once every stimulus is compared."""
        return self.session.tables

    @property
    def current_stimulus(self) -> str | None:
        """The stimulus on show."""
        return self.session.stimulus_id

    def colours(self, keys: Iterable[str]) -> dict[str, str]:
        """Each heatmap's colour: an annotator's by its place in the study, the model's always the same."""
        return self.session.colours(keys)

    # --- opening ----------------------------------------------------------------------------------

    def open_study(self, path: str | Path | None = None, *, stimulus_set: str | None = None) -> None:
        """Open a study file (the one in the file field by default) on a worker thread."""
        if path is not None:
            self.study_edit.setText(str(path))
        study_path = Path(self.study_edit.text()).expanduser()
        model_text = self.model_edit.text().strip()
        model_path = Path(model_text).expanduser() if model_text else None
        work = self.session.opening(study_path, model_path, stimulus_set=stimulus_set)
        self.cancel_tasks()
        self._say(f"Opening {study_path.name}…")
        self._start("open", work, self._opened, progress=True)

    def follow_study(self, path: str | Path) -> None:
        """Study setup chose another study file: open it here at once (when it exists)."""
        target = Path(path).expanduser()
        if Path(self.study_edit.text()).expanduser() == target and self.model is not None:
            return
        if target.is_file():
            self.open_study(target)
        else:
            self.study_edit.setText(str(target))
            self._say(f"No study file at {target}. Record sessions in 'Study setup' first.")

    def set_include_flagged(self, include: bool) -> None:
        """Compare the trials marked bad in the live monitor too (or not), and open the study again."""
        if not self.session.remember(include_flagged=include):
            return
        self._show_flagged()
        if self.model is not None or Path(self.study_edit.text()).expanduser().is_file():
            current = self.model.study.stimulus_set if self.model is not None else None
            self.open_study(stimulus_set=current)

    def _opened(self, opened: OpenedStudy) -> None:
        self.session.open(opened)
        self.model_label.setText(opened.trainer_problem or trainer_text(opened.trainer, self.analyzer))
        self._say(" ".join(opened.study.notes) or f"Opened {opened.study.path.name}.")
        if opened.trainer is not None:
            self._compute_relevance(opened.trainer)

    def _show_flagged(self) -> None:
        opened = self.model is not None
        count = len(self.session.flagged) if opened else None
        tip = self.session.flagged_tooltip()
        self.sidebar.show_flagged(count, included=self.session.settings.include_flagged, tooltip=tip)

    # --- the Trainer's relevance ------------------------------------------------------------------

    def _compute_relevance(self, trainer: TrainerInfo) -> None:
        self.action_bar.cancel_button.show()
        self._start(
            "relevance", self.session.relevance_work(self.analyzer), self._relevance_ready, progress=True
        )
        self.model_label.setText(f"{trainer_text(trainer, self.analyzer)} Computing the saliency maps…")

    def _relevance_ready(self, relevance: ModelRelevance) -> None:
        self.action_bar.cancel_button.hide()
        if self.model is None:
            return
        source = "from the cache" if relevance.from_cache else "computed"
        self.model_label.setText(f"{trainer_text(self.model.trainer, self.analyzer)} Saliency maps {source}.")
        if relevance.notes:
            self._say(" ".join(relevance.notes))
        self.model.set_relevance(relevance)

    def cancel_relevance(self) -> None:
        """Stop computing the Trainer's saliency; the annotators stay compared."""
        if self._tasks.cancel("relevance"):
            self.model_label.setText(
                "Saliency cancelled: comparing the annotators only. Open the study again to retry."
            )
        self.action_bar.cancel_button.hide()
        self._update_progress()

    # --- the session's news and the user's choices ------------------------------------------------

    def _on_session_changed(self, what: str) -> None:
        session = self.session
        if what == "opened" and session.comparison is not None:
            study = session.comparison.study
            self.sidebar.show_study(
                study, annotators=session.comparison.annotators, stimulus_id=session.stimulus_id
            )
            self._show_flagged()
        if what == "stimulus":
            self.sidebar.show_stimulus(session.stimulus_id)
        if what in ("opened", "annotators", "relevance"):
            self.info_label.setText(session.frame_text())
            self._refresh_tables()
        if what in ("opened", "stimulus", "annotators", "relevance"):
            self._refresh_stimulus()
        if what == "shown" and session.shown is not None:
            self.tabs.show_stimulus(session.shown, caption=stimulus_caption(session.shown))
            self.action_bar.png_name = export_file_name(session.shown.stimulus_id)
        if what == "tables" and session.tables is not None:
            self.tabs.show_study(
                session.tables, caption=session.table_caption(), tooltip=session.flagged_tooltip()
            )
        self.action_bar.enable_exports(png=session.shown is not None, csv=session.tables is not None)

    def _on_annotators_chosen(self, annotators: list[str]) -> None:
        if self.model is not None:
            self.model.set_annotators(annotators)  # the model's news refreshes the view, never the boxes

    def select_stimulus(self, stimulus_id: str) -> None:
        """Show a stimulus of the study.

        Raises
        ------
        KeyError
            When the open study has no such stimulus.
        """
        self.session.select_stimulus(stimulus_id)

    # --- computing on workers ---------------------------------------------------------------------

    def _refresh_stimulus(self) -> None:
        model, stimulus_id = self.model, self.current_stimulus
        if model is None or stimulus_id is None:
            return

        def work(progress: ProgressCallback, cancelled: Callable[[], bool]) -> ShownStimulus:
            comparison = model.stimulus(stimulus_id)
            return ShownStimulus(comparison, contour_lines(comparison))

        self._start("stimulus", work, self._draw)

    def _draw(self, shown: ShownStimulus) -> None:
        comparison = shown.comparison
        caption = stimulus_caption(comparison)
        self.maps.draw(shown, title=caption, colours=self.colours(comparison.heatmaps))
        self.session.set_shown(comparison)

    def _refresh_tables(self) -> None:
        model = self.model
        if model is None:
            return
        self.tabs.comparing()

        def work(progress: ProgressCallback, cancelled: Callable[[], bool]) -> StudyTables:
            return model.tables(progress=progress, cancelled=cancelled)

        self._start("tables", work, self.session.set_tables, progress=True)

    def _start(
        self, name: str, work: Callable[..., Any], on_result: Callable[[Any], None], *, progress: bool = False
    ) -> None:
        on_progress = self.action_bar.show_progress if progress else None
        self._tasks.start(
            name, work, on_result=on_result, on_error=lambda e: self._failed(name, e), on_progress=on_progress
        )

    def _failed(self, name: str, error: BaseException) -> None:
        if name == "relevance":
            self.action_bar.cancel_button.hide()
            self.model_label.setText(f"No saliency: {error} Comparing the annotators only.")
            return
        self._say(str(error))

    def _update_progress(self) -> None:
        self.action_bar.progress_bar.setVisible(self._tasks.running_except("stimulus"))

    @property
    def busy(self) -> bool:
        """Whether a worker is still computing something for this view."""
        return self._tasks.running()

    def cancel_tasks(self) -> None:
        """Stop delivering every running computation (they end on their own)."""
        self._tasks.cancel_all()
        self.action_bar.cancel_button.hide()

    # --- export -----------------------------------------------------------------------------------

    def export_png(self, path: str | Path) -> Path:
        """Write the figure of the stimulus shown: the image with the contours, then each heatmap."""
        return self.session.export_png(path)

    def export_csv(self, folder: str | Path) -> list[Path]:
        """Write ``table1.csv`` (the study-level table) and ``stimuli.csv`` (every stimulus's rows)."""
        return self.session.export_csv(folder)

    def _say(self, text: str) -> None:
        self.action_bar.say(text)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.cancel_tasks()
        super().closeEvent(event)
