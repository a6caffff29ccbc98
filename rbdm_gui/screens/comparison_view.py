"""The comparison screen: a study's annotators' gaze against the Trainer's saliency (RBDM §5.3.2).

Pick a study file and a stimulus: the image with the contour of each heatmap (the annotators' gaze
heatmaps and the Trainer's saliency heatmap from its n most relevant pixels, n the annotators' mean
fixation count, same Gaussian), each heatmap on its own small panel (RBDM Figure 7), and the metrics
of every pair of heatmaps (ZeroMeasure, Spearman, cosine distance, NSS, CC, SIM, KLD, AUC-Judd). The
second tab holds the study-level table, RBDM Table 1: the mean over the stimuli. "Export PNG" writes
the figure of the stimulus shown, "Export CSV" both tables of the study. Trials marked bad in the live
monitor are left out (:func:`tracking.study.read_study`); the Table 1 tab says how many.

The view is thin: :class:`tracking.study.StudyComparison` computes every heatmap, point and value, on
worker threads (:func:`rbdm_gui.screens.workers.run_task`): opening the study (reading it and decoding the
stimuli), the Trainer's relevance maps (TensorFlow; with progress, cancellable; cached next to the
study), the shown stimulus and the study table. The annotator check boxes write the choice into the
model, whose ``changed`` news makes the view recompute what it shows; the view never writes the
check boxes back from that news. The study file and model file are remembered in
``comparison.json`` in the user's config folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QRectF, QSignalBlocker, Qt
from PySide6.QtGui import QCloseEvent, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from analysis.files import atomic_write_text
from analysis.study import stimulus_rows_csv
from rbdm_gui.screens._layout import sidebar_splitter
from rbdm_gui.screens.table1_widget import METRIC_TITLES, fill_table1
from rbdm_gui.screens.workers import ProgressCallback, Task, run_task
from rbdm_gui.workflows.assets import DEFAULT_TRAINER
from rbdm_gui.workflows.figures import MAP_COLOURS, map_colours, save_comparison_figure
from rbdm_gui.workflows.settings import config_dir, load_settings
from tracking.study import (
    FlaggedTrial,
    ModelRelevance,
    StimulusComparison,
    Study,
    StudyComparison,
    StudyTables,
    TrainerInfo,
    default_cache_dir,
    load_stimulus_images,
    model_relevance,
    read_study,
    trainer_info,
)

__all__ = ["MAP_COLOURS", "METRIC_TITLES", "ComparisonView", "comparison_config_path"]


def comparison_config_path() -> Path:
    """The file remembering the comparison screen's study and model files."""
    return config_dir() / "comparison.json"


def _heat_lookup_table() -> NDArray[np.uint8]:
    """Inferno with transparency growing with the value, so that the image shows through."""
    lut = np.asarray(pg.colormap.get("inferno").getLookupTable(nPts=256, alpha=True), dtype=np.float64)
    lut[:, 3] = 235.0 * np.sqrt(np.linspace(0.0, 1.0, 256))
    return np.round(lut).astype(np.uint8)


@dataclass(frozen=True, slots=True, eq=False)
class _Opened:
    """What the opening worker hands back."""

    study: Study
    images: Mapping[str, NDArray[np.float32]]
    trainer: TrainerInfo | None
    trainer_problem: str


@dataclass(frozen=True, slots=True, eq=False)
class _Shown:
    """A stimulus's comparison and each heatmap's contour lines ((M, 2) arrays, in frame pixels)."""

    comparison: StimulusComparison
    contours: Mapping[str, list[NDArray[np.float64]]]


def _contour_lines(comparison: StimulusComparison) -> dict[str, list[NDArray[np.float64]]]:
    """The outline of each heatmap's perceived area (pixels > 0), for drawing; runs on a worker.

    Coordinates follow pyqtgraph's image convention: pixel (x, y) covers [x, x + 1] × [y, y + 1].
    """
    lines = {}
    for key, area in comparison.areas.items():
        curves = pg.functions.isocurve(area.T.astype(np.float32), 0.5, connected=True, extendToEdge=True)
        lines[key] = [np.asarray(curve, dtype=np.float64) for curve in curves if len(curve) > 1]
    return lines


def _open(study_path: Path, model_path: Path | None, stimulus_set: str | None) -> Callable[..., _Opened]:
    def work(progress: ProgressCallback, cancelled: Callable[[], bool]) -> _Opened:
        study = read_study(study_path, stimulus_set=stimulus_set)
        images = load_stimulus_images(study, progress=progress, cancelled=cancelled)
        trainer, problem = None, ""
        if model_path is None:
            problem = "No trainer model chosen: comparing the annotators only."
        else:
            try:
                trainer = trainer_info(model_path)
            except FileNotFoundError:
                problem = (
                    f"No trainer model at {model_path}: comparing the annotators only. Train one with "
                    "'rbdm train-trainer', or choose a .keras file."
                )
        return _Opened(study, images, trainer, problem)

    return work


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
        self.model: StudyComparison | None = None
        self.shown: _Shown | None = None
        self.tables: StudyTables | None = None
        self._tasks: dict[str, Task] = {}
        self._unsubscribe: Callable[[], None] | None = None
        self._heat_lut = _heat_lookup_table()
        self._build()
        remembered = self._remembered()
        self.study_edit.setText(str(study_path or remembered.get("study_path") or _setup_study_path()))
        self.model_edit.setText(str(model_path or remembered.get("model_path") or DEFAULT_TRAINER))
        if open_now and Path(self.study_edit.text()).is_file():
            self.open_study()
        else:
            self._say(f"No study file at {self.study_edit.text()}. Record sessions in 'Study setup' first.")

    # --- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(sidebar_splitter(self._sidebar(), self._centre(), side_px=300))

    def _sidebar(self) -> QWidget:
        side = QWidget()
        side.setMinimumWidth(260)
        side.setMaximumWidth(380)
        layout = QVBoxLayout(side)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._study_group())
        layout.addWidget(self._model_group())
        layout.addWidget(QLabel("Stimuli"))
        self.stimulus_list = QListWidget()
        self.stimulus_list.currentRowChanged.connect(self._on_stimulus_row)
        layout.addWidget(self.stimulus_list, 3)
        layout.addWidget(QLabel("Annotators"))
        self.annotator_list = QListWidget()
        self.annotator_list.setMaximumHeight(120)
        self.annotator_list.itemChanged.connect(self._on_annotator_checked)
        layout.addWidget(self.annotator_list, 1)
        self.info_label = QLabel()
        self.info_label.setWordWrap(True)
        layout.addWidget(self.info_label)
        return side

    def _study_group(self) -> QGroupBox:
        box = QGroupBox("Study")
        form = QFormLayout(box)
        self.study_edit = QLineEdit()
        choose = _small_button("…", "Choose a study file")
        choose.clicked.connect(self._choose_study)
        form.addRow("File", _row(self.study_edit, choose))
        self.set_combo = QComboBox()
        self.set_combo.setToolTip("Sessions on one stimulus set saw the same images.")
        self.set_combo.activated.connect(self._on_set_chosen)
        self.set_label = QLabel("Stimulus set")
        form.addRow(self.set_label, self.set_combo)
        self.set_label.hide()
        self.set_combo.hide()
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(lambda: self.open_study())
        form.addRow(self.open_button)
        return box

    def _model_group(self) -> QGroupBox:
        box = QGroupBox("Trainer model")
        form = QFormLayout(box)
        self.model_edit = QLineEdit()
        choose = _small_button("…", "Choose a trained .keras model")
        choose.clicked.connect(self._choose_model)
        form.addRow("File", _row(self.model_edit, choose))
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        form.addRow(self.model_label)
        return box

    def _centre(self) -> QWidget:
        splitter = QSplitter(Qt.Orientation.Vertical)
        pictures = QWidget()
        row = QHBoxLayout(pictures)
        row.setContentsMargins(0, 0, 0, 0)
        self.image_plot = pg.GraphicsLayoutWidget()
        self.image_plot.setBackground("#202020")
        self._title = self.image_plot.addLabel("", row=0, col=0)
        self.image_box = self.image_plot.addViewBox(
            row=1, col=0, lockAspect=True, invertY=True, enableMenu=False
        )
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_box.addItem(self.image_item)
        self.legend = pg.LegendItem(offset=(6, 6), labelTextColor="w", brush=pg.mkBrush(0, 0, 0, 150))
        self.legend.setParentItem(self.image_box)
        panels = QWidget()
        panels.setStyleSheet("background: #202020;")
        self.panel_grid = QGridLayout(panels)
        self.panel_grid.setContentsMargins(2, 2, 2, 2)
        self.panel_grid.setSpacing(2)
        row.addWidget(self.image_plot, 3)
        row.addWidget(panels, 2)
        splitter.addWidget(pictures)
        splitter.addWidget(self._bottom())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        return splitter

    def _bottom(self) -> QWidget:
        bottom = QWidget()
        layout = QVBoxLayout(bottom)
        layout.setContentsMargins(0, 0, 0, 0)
        self.tabs = QTabWidget()
        self.stimulus_caption = QLabel()
        self.stimulus_table = _table_widget()
        self.study_caption = QLabel("The study table appears once every stimulus is compared.")
        self.study_table = _table_widget()
        self.tabs.addTab(_page(self.stimulus_caption, self.stimulus_table), "This stimulus")
        self.tabs.addTab(_page(self.study_caption, self.study_table), "Study (RBDM Table 1)")
        layout.addWidget(self.tabs)
        actions = QHBoxLayout()
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setMaximumWidth(200)
        self.progress_bar.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_relevance)
        self.cancel_button.hide()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.png_button = QPushButton("Export PNG…")
        self.png_button.clicked.connect(self._choose_png)
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(self._choose_csv_folder)
        for widget in (self.progress_bar, self.cancel_button):
            actions.addWidget(widget)
        actions.addWidget(self.status_label, 1)
        actions.addWidget(self.png_button)
        actions.addWidget(self.csv_button)
        layout.addLayout(actions)
        self._update_exports()
        return bottom

    # --- opening ----------------------------------------------------------------------------------

    def open_study(self, path: str | Path | None = None, *, stimulus_set: str | None = None) -> None:
        """Open a study file (the one in the file field by default) on a worker thread."""
        if path is not None:
            self.study_edit.setText(str(path))
        study_path = Path(self.study_edit.text()).expanduser()
        model_text = self.model_edit.text().strip()
        model_path = Path(model_text).expanduser() if model_text else None
        self._remember(study_path, model_path)
        self.cancel_tasks()
        self._say(f"Opening {study_path.name}…")
        self._start("open", _open(study_path, model_path, stimulus_set), self._opened, progress=True)

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

    def _opened(self, opened: _Opened) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        model = self.model = StudyComparison(opened.study, opened.images, trainer=opened.trainer)
        self._unsubscribe = model.changed.subscribe(self._on_model_changed)
        self.shown, self.tables = None, None
        self._fill_sets(opened.study)
        self._fill_lists(opened.study)
        self.model_label.setText(opened.trainer_problem or self._trainer_text(opened.trainer))
        self._say(" ".join(opened.study.notes) or f"Opened {opened.study.path.name}.")
        self.stimulus_list.setCurrentRow(0)
        self._refresh_tables()
        self._show_info()
        if opened.trainer is not None:
            self._compute_relevance(opened.trainer)

    def _fill_sets(self, study: Study) -> None:
        with QSignalBlocker(self.set_combo):
            self.set_combo.clear()
            self.set_combo.addItems(list(study.stimulus_sets))
            self.set_combo.setCurrentText(study.stimulus_set)
        several = len(study.stimulus_sets) > 1
        self.set_combo.setVisible(several)
        self.set_label.setVisible(several)

    def _fill_lists(self, study: Study) -> None:
        with QSignalBlocker(self.stimulus_list), QSignalBlocker(self.annotator_list):
            self.stimulus_list.clear()
            self.stimulus_list.addItems(list(study.stimuli))
            self.annotator_list.clear()
            colours = map_colours(study.annotators, annotators=study.annotators)
            for annotator in study.annotators:
                item = QListWidgetItem(annotator)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked)
                item.setForeground(QColor(colours[annotator]))
                self.annotator_list.addItem(item)

    def _trainer_text(self, trainer: TrainerInfo | None) -> str:
        if trainer is None:
            return ""
        height, width, channels = trainer.input_shape
        kind = "grey" if channels == 1 else "RGB"
        return f"{trainer.name}: {width} × {height} px {kind} input; saliency by {self.analyzer}."

    # --- the Trainer's relevance ------------------------------------------------------------------

    def _compute_relevance(self, trainer: TrainerInfo) -> None:
        model = self.model
        assert model is not None
        images, analyzer, cache = model.images, self.analyzer, default_cache_dir(model.study.path)

        def work(progress: ProgressCallback, cancelled: Callable[[], bool]) -> ModelRelevance:
            progress(0.0, "loading the model")
            return model_relevance(images, trainer, analyzer=analyzer, cache_dir=cache, progress=progress)

        self.cancel_button.show()
        self._start("relevance", work, self._relevance_ready, progress=True)
        self.model_label.setText(f"{self._trainer_text(trainer)} Computing the saliency maps…")

    def _relevance_ready(self, relevance: ModelRelevance) -> None:
        self.cancel_button.hide()
        if self.model is None:
            return
        source = "from the cache" if relevance.from_cache else "computed"
        self.model_label.setText(f"{self._trainer_text(self.model.trainer)} Saliency maps {source}.")
        if relevance.notes:
            self._say(" ".join(relevance.notes))
        self.model.set_relevance(relevance)

    def cancel_relevance(self) -> None:
        """Stop computing the Trainer's saliency; the annotators stay compared."""
        task = self._tasks.get("relevance")
        if task is not None and not task.done:
            task.cancel()
            self.model_label.setText(
                "Saliency cancelled: comparing the annotators only. Open the study again to retry."
            )
        self.cancel_button.hide()
        self._update_progress()

    # --- the model's news and the user's choices --------------------------------------------------

    def _on_model_changed(self, what: str) -> None:
        self._refresh_stimulus()
        self._refresh_tables()
        self._show_info()

    def _on_annotator_checked(self, item: QListWidgetItem) -> None:
        if self.model is None:
            return
        checked = [
            self.annotator_list.item(k).text()
            for k in range(self.annotator_list.count())
            if self.annotator_list.item(k).checkState() == Qt.CheckState.Checked
        ]
        self.model.set_annotators(checked)  # the model's news refreshes the view, never the boxes

    def _on_stimulus_row(self, row: int) -> None:
        self._refresh_stimulus()

    def _on_set_chosen(self, index: int) -> None:
        self.open_study(stimulus_set=self.set_combo.itemText(index))

    def select_stimulus(self, stimulus_id: str) -> None:
        """Show a stimulus of the list."""
        matches = self.stimulus_list.findItems(stimulus_id, Qt.MatchFlag.MatchExactly)
        if not matches:
            raise KeyError(f"no stimulus {stimulus_id!r} in this study.")
        self.stimulus_list.setCurrentItem(matches[0])

    @property
    def current_stimulus(self) -> str | None:
        """The stimulus chosen in the list."""
        item = self.stimulus_list.currentItem()
        return None if item is None else item.text()

    # --- computing on workers ---------------------------------------------------------------------

    def _refresh_stimulus(self) -> None:
        model, stimulus_id = self.model, self.current_stimulus
        if model is None or stimulus_id is None:
            return

        def work(progress: ProgressCallback, cancelled: Callable[[], bool]) -> _Shown:
            comparison = model.stimulus(stimulus_id)
            return _Shown(comparison, _contour_lines(comparison))

        self._start("stimulus", work, self._draw)

    def _refresh_tables(self) -> None:
        model = self.model
        if model is None:
            return
        self.tables = None
        self._update_exports()
        self.study_caption.setText("Comparing every stimulus…")

        def work(progress: ProgressCallback, cancelled: Callable[[], bool]) -> StudyTables:
            return model.tables(progress=progress, cancelled=cancelled)

        self._start("tables", work, self._tables_ready, progress=True)

    def _start(
        self, name: str, work: Callable[..., Any], on_result: Callable[[Any], None], *, progress: bool = False
    ) -> None:
        previous = self._tasks.get(name)
        if previous is not None and not previous.done:
            previous.cancel()

        def finished(result: Any) -> None:
            self._update_progress()
            on_result(result)

        def failed(error: BaseException) -> None:
            self._update_progress()
            self._failed(name, error)

        self._tasks[name] = run_task(
            work, on_result=finished, on_error=failed, on_progress=self._on_progress if progress else None
        )
        self._update_progress()

    def _failed(self, name: str, error: BaseException) -> None:
        if name == "relevance":
            self.cancel_button.hide()
            self.model_label.setText(f"No saliency: {error} Comparing the annotators only.")
            return
        self._say(str(error))

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress_bar.setValue(round(1000 * min(1.0, max(0.0, fraction))))
        self.progress_bar.setFormat(text)

    def _update_progress(self) -> None:
        self.progress_bar.setVisible(any(not t.done for n, t in self._tasks.items() if n != "stimulus"))

    @property
    def busy(self) -> bool:
        """Whether a worker is still computing something for this view."""
        return any(not task.done for task in self._tasks.values())

    def cancel_tasks(self) -> None:
        """Stop delivering every running computation (they end on their own)."""
        for task in self._tasks.values():
            if not task.done:
                task.cancel()
        self.cancel_button.hide()
        self._update_progress()

    # --- showing results --------------------------------------------------------------------------

    def _draw(self, shown: _Shown) -> None:
        self.shown = shown
        comparison = shown.comparison
        self._title.setText(self._caption(comparison), color="#e0e0e0")
        self.image_item.setImage(comparison.image, levels=(0.0, 1.0))
        self.image_box.clear()
        self.image_box.addItem(self.image_item)
        self.legend.clear()
        scale = _frame_scale(comparison)
        colours = self.colours(comparison.heatmaps)
        for key in comparison.heatmaps:
            colour = colours[key]
            curve = pg.PlotCurveItem(
                *_joined(shown.contours[key], scale), pen=pg.mkPen(colour, width=2), connect="finite"
            )
            self.image_box.addItem(curve)
            self.image_box.addItem(_point_marks(comparison.points[key], scale, colour))
            self.legend.addItem(curve, key)
        self.image_box.autoRange(padding=0.02)
        self._draw_panels(comparison)
        self.stimulus_caption.setText(self._caption(comparison))
        fill_table1(self.stimulus_table, comparison.table)
        self._update_exports()

    def _draw_panels(self, comparison: StimulusComparison) -> None:
        while self.panel_grid.count():
            taken = self.panel_grid.takeAt(0)
            widget = taken.widget() if taken is not None else None
            if widget is not None:
                widget.deleteLater()
        scale = _frame_scale(comparison)
        colours = self.colours(comparison.heatmaps)
        for k, (key, heat) in enumerate(comparison.heatmaps.items()):
            colour = colours[key]
            panel = pg.GraphicsLayoutWidget()
            panel.setBackground("#202020")
            panel.addLabel(_panel_title(key, comparison), row=0, col=0, color=colour, size="9pt")
            box = panel.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMenu=False)
            for item in self._panel_items(comparison, heat):
                box.addItem(item)
            box.addItem(_point_marks(comparison.points[key], scale, colour, size=5))
            box.autoRange(padding=0.0)
            self.panel_grid.addWidget(panel, *divmod(k, 2))

    def colours(self, keys: Iterable[str]) -> dict[str, str]:
        """Each heatmap's colour: an annotator's by its place in the study, the model's always the same."""
        annotators = self.model.study.annotators if self.model is not None else ()
        return map_colours(list(keys), annotators=annotators)

    def _panel_items(self, comparison: StimulusComparison, heat: NDArray[np.float32]) -> list[pg.ImageItem]:
        """The image, dimmed, and the heatmap over it (coloured, transparent where low)."""
        height, width = comparison.image.shape[:2]
        image = pg.ImageItem(comparison.image, axisOrder="row-major", levels=(0.0, 1.0))
        image.setOpacity(0.55)
        overlay = pg.ImageItem(heat, axisOrder="row-major", lut=self._heat_lut)
        peak = float(heat.max())
        overlay.setLevels((0.0, peak if peak > 0 else 1.0))
        overlay.setRect(QRectF(0.0, 0.0, float(width), float(height)))
        return [image, overlay]

    def _caption(self, comparison: StimulusComparison) -> str:
        said = " · ".join(f"{key}: {label}" for key, label in comparison.labels.items() if label)
        return f"{comparison.stimulus_id} — {said}" if said else comparison.stimulus_id

    def _tables_ready(self, tables: StudyTables) -> None:
        self.tables = tables
        fill_table1(self.study_table, tables.study, counts=_pair_counts(tables))
        model = self.model
        frame = ""
        if model is not None and model.study.stimuli:
            height, width = model.shape(model.study.stimuli[0])
            frame = f", compared at {width} × {height} px"
        flagged = model.study.flagged_left_out if model is not None else ()
        self.study_caption.setText(
            f"RBDM Table 1: per pair, the mean over the stimuli both have a map of (column 'stimuli'; "
            f"{len(tables.stimuli)} stimuli in all, n = {tables.n_points} points{frame})."
            + _flagged_caption(flagged)
        )
        self.study_caption.setToolTip(
            "\n".join(f"{f.annotator} on {f.stimulus_id}: {f.reason}" for f in flagged)
        )
        self._update_exports()

    def _show_info(self) -> None:
        model = self.model
        if model is None or not model.study.stimuli:
            return
        first = model.study.stimuli[0]
        height, width = model.shape(first)
        span = model.span(first)
        where = "the model's input" if model.trainer is not None else "the image's own size"
        self.info_label.setText(
            f"Heatmaps at {width} × {height} px ({where}); visual span {span.radius:.1f} px, "
            f"c = {span.c:.2f} px; the model's heatmap from its n = {model.n_points} most relevant pixels."
        )

    def _say(self, text: str) -> None:
        self.status_label.setText(text)

    def _update_exports(self) -> None:
        self.png_button.setEnabled(self.shown is not None)
        self.csv_button.setEnabled(self.tables is not None)

    # --- export -----------------------------------------------------------------------------------

    def export_png(self, path: str | Path) -> Path:
        """Write the figure of the stimulus shown: the image with the contours, then each heatmap."""
        if self.shown is None:
            raise ValueError("no stimulus is shown yet; open a study and pick a stimulus.")
        comparison = self.shown.comparison
        return save_comparison_figure(
            path,
            [comparison.image],
            [comparison.heatmaps],
            [{}],
            titles=[comparison.stimulus_id],
            colours=self.colours(comparison.heatmaps),
        )

    def export_csv(self, folder: str | Path) -> list[Path]:
        """Write ``table1.csv`` (the study-level table) and ``stimuli.csv`` (every stimulus's rows)."""
        if self.tables is None:
            raise ValueError("the study table is not ready yet; wait until every stimulus is compared.")
        out = Path(folder)
        atomic_write_text(out / "table1.csv", self.tables.study.to_csv())
        atomic_write_text(out / "stimuli.csv", stimulus_rows_csv(self.tables.stimuli))
        return [out / "table1.csv", out / "stimuli.csv"]

    def _choose_png(self) -> None:
        if self.shown is None:
            return
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.shown.comparison.stimulus_id) + ".png"
        path, _ = QFileDialog.getSaveFileName(self, "Export the figure", name, "PNG image (*.png)")
        if path:
            self._say(f"Wrote {self.export_png(path)}.")

    def _choose_csv_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the tables (table1.csv, stimuli.csv) to")
        if folder:
            written = self.export_csv(folder)
            self._say(f"Wrote {', '.join(str(p) for p in written)}.")

    # --- files ------------------------------------------------------------------------------------

    def _choose_study(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Study file", self.study_edit.text(), "RBDM Studio study (*.sqlite *.db);;All files (*)"
        )
        if path:
            self.open_study(path)

    def _choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Trainer model", self.model_edit.text(), "Keras model (*.keras);;All files (*)"
        )
        if path:
            self.model_edit.setText(path)
            self.open_study()

    @staticmethod
    def _remembered() -> dict[str, str]:
        try:
            data = json.loads(comparison_config_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}

    @staticmethod
    def _remember(study_path: Path, model_path: Path | None) -> None:
        file = comparison_config_path()
        data = {"study_path": str(study_path), "model_path": str(model_path or "")}
        try:
            atomic_write_text(file, json.dumps(data, indent=2))
        except OSError:
            pass  # remembering is a convenience; the comparison works without it

    def closeEvent(self, event: QCloseEvent) -> None:
        self.cancel_tasks()
        super().closeEvent(event)


# --- helpers ----------------------------------------------------------------------------------------


def _setup_study_path() -> Path:
    """The study file of the setup screen's saved settings."""
    try:
        return load_settings().resolved_study_path()
    except ValueError:
        from rbdm_gui.workflows.settings import StudySettings

        return StudySettings().resolved_study_path()


def _flagged_caption(flagged: Sequence[FlaggedTrial]) -> str:
    """The trials marked bad that the study left out, counted (the tooltip lists them)."""
    if not flagged:
        return ""
    trials = "trial" if len(flagged) == 1 else "trials"
    return f" {len(flagged)} {trials} marked bad in the live monitor left out, as if never recorded."


def _frame_scale(comparison: StimulusComparison) -> tuple[float, float]:
    """Display pixels (the image's) per comparison-frame pixel, along x and y."""
    height, width = comparison.image.shape[:2]
    return width / comparison.shape[1], height / comparison.shape[0]


def _joined(
    lines: Sequence[NDArray[np.float64]], scale: tuple[float, float]
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Contour lines (pixel-edge frame coordinates) as one x and one y array, NaN between lines."""
    if not lines:
        return np.zeros(0), np.zeros(0)
    gap = np.full((1, 2), np.nan)
    joined = np.vstack([part for line in lines for part in (line, gap)])[:-1]
    return joined[:, 0] * scale[0], joined[:, 1] * scale[1]


def _point_marks(
    points: NDArray[np.float64], scale: tuple[float, float], colour: str, *, size: float = 7.0
) -> pg.ScatterPlotItem:
    """Fixations (or the model's top-n pixels) at their pixel centres, in display pixels."""
    xy = (np.asarray(points, dtype=np.float64).reshape(-1, 2) + 0.5) * np.asarray(scale)
    return pg.ScatterPlotItem(
        x=xy[:, 0], y=xy[:, 1], size=size, brush=pg.mkBrush(colour), pen=pg.mkPen("w", width=0.8)
    )


def _panel_title(key: str, comparison: StimulusComparison) -> str:
    label = comparison.labels.get(key, "")
    return f"{key} ({label})" if label else key


def _small_button(text: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.setFixedWidth(32)
    return button


def _row(*widgets: QWidget) -> QWidget:
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget, 1 if isinstance(widget, QLineEdit) else 0)
    return holder


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


def _pair_counts(tables: StudyTables) -> dict[tuple[str, str], int]:
    """How many stimuli each pair of the study table was compared on (a value that is not NaN)."""
    counts: dict[tuple[str, str], int] = {}
    for table in tables.stimuli.values():
        for row in table.rows:
            if not all(np.isnan(v) for v in row.values):
                counts[(row.id_1, row.id_2)] = counts.get((row.id_1, row.id_2), 0) + 1
    return counts
