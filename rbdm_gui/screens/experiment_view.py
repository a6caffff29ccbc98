"""The Experiments screen: launch the Trainee grid, watch its learning curves, keep and compare runs.

Left, the form of a new run (RBDM §5.5), with what ``rbdm experiment`` offers: the Trainer model whose
relevance maps make the masks, the dataset, its training and validation subsets and training-set sizes,
the masking methods (negative, mean and perceptive masking of §5.4, human gaze and its fusion with
relevance from a study file, the true regions of synthetic faces, and the unmasked baseline), whether
each mask trains its Trainee throughout and/or for ``switch_epoch`` epochs before the original images,
the Trainee's architecture (MobileNetV2 with its width α, or the small CNN), epochs, seeds, the test
images, kept models, and the engine (workers: 1 in the worker process, N on a local Ray instance;
TensorFlow threads per cell); "Run" and "Cancel". The values ↔ run mapping and the progress text are
Qt-free (:mod:`rbdm_gui.workflows.experiment_form`). Run with the settings of a cancelled run resumes its
folder.
Above it, the kept runs of the runs folder: pick one to reopen it, several to compare them.

Centre, three pyqtgraph plots against the training step, as RBDM Figure 10: training loss, validation
loss and validation macro-F1; colour tells the masking method, dashed lines the ``+switch`` Trainees, a
dotted vertical line the switch. Below, the results table (one row per Trainee: best, final and mean
validation macro-F1 ...), a table by variant (mean ± sd over the seeds), the comparison with ``none``
per training-set size (means with 95 % confidence intervals, paired differences, verdicts; computed by
:mod:`analysis.experiment_report` on the worker thread that opens the run) and the confusion matrix of
the Trainee chosen in the table (rows true class, columns predicted; RBDM Figures 11 and 12).

The view is thin. A run executes in a worker process
(:class:`rbdm_gui.screens.experiment_runner.ExperimentRunner`
running :mod:`rbdm_gui.workflows.experiment_worker`, i.e. :func:`analysis.grid_engine.run_grid`), so
TensorFlow
and Ray never hold up the event loop; its progress (cells done / running / failed, ETA) and curve points
arrive as Qt signals and are shown as they come. Run folders are listed and read on worker threads
(:func:`rbdm_gui.screens.workers.run_task`). When several runs are compared, each variant's curve is its mean
over the seeds (:func:`analysis.experiment.mean_curves`) and a marker shape tells the runs apart. The
runs folder is ``experiments`` in the user's data folder unless given; the form is remembered in
``experiments.json`` in the user's config folder.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, §5.5 and §6 (Figures 10–12).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QSignalBlocker, Qt
from PySide6.QtGui import QBrush, QCloseEvent, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
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
    QScrollArea,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from analysis.experiment import (
    ExperimentProgress,
    ExperimentRun,
    VariantResult,
    list_runs,
    load_run,
    mean_curves,
    read_confusion,
    summary_by_variant,
)
from analysis.experiment_report import VariantComparison, band_curves, compare_variants, seed_measures
from analysis.labels import LABELS
from analysis.models import ARCHITECTURES
from analysis.trainee import DEFAULT_TRAINEE_OPTIONS, CurvePoint
from rbdm_gui.screens._layout import sidebar_splitter
from rbdm_gui.screens.experiment_runner import ExperimentRunner
from rbdm_gui.screens.workers import ProgressCallback, Task, run_task
from rbdm_gui.workflows.experiment_form import (
    FORM_DEFAULTS,
    form_of_run,
    form_request,
    parse_sizes,
    progress_display,
    run_used,
    sizes_text,
    trainer_card,
)
from rbdm_gui.workflows.experiment_worker import METHODS, LaunchRequest, partial_curves, run_state
from rbdm_gui.workflows.settings import config_dir, data_dir

__all__ = [
    "COMPARISON_COLUMNS",
    "METHOD_COLOURS",
    "PANELS",
    "ExperimentView",
    "comparison_cells",
    "default_runs_dir",
    "experiments_config_path",
    "parse_sizes",
    "run_comparisons",
]

#: Line colour per masking method, as in :func:`analysis.experiment.plot_learning_curves`.
METHOD_COLOURS: Final = {
    "none": "#000000",
    "negative": "#1f77b4",
    "mean": "#ff7f0e",
    "perceptive": "#2ca02c",
    "gaze": "#d62728",
    "fusion": "#9467bd",
    "regions": "#8c564b",
}
#: The plots: curve field and title (RBDM Figure 10).
PANELS: Final = (
    ("train_loss", "training loss"),
    ("val_loss", "validation loss"),
    ("val_macro_f1", "validation macro-F1"),
)
#: What each method's check box says.
_METHOD_TITLES: Final = {
    "none": "no mask (baseline)",
    "negative": "negative",
    "mean": "mean",
    "perceptive": "perceptive",
    "gaze": "human gaze",
    "fusion": "gaze + relevance",
    "regions": "true regions",
}
_METHOD_TIPS: Final = {
    "none": "The Trainee on the original images: the baseline of RBDM §6.",
    "negative": "Zero the top 10 % most relevant pixels (RBDM §5.4).",
    "mean": "Keep the pixels whose relevance is at least the image's mean (RBDM §5.4).",
    "perceptive": "Keep the visual span around the n most relevant pixels (RBDM §5.4).",
    "gaze": "Keep what the annotators of a study looked at (RBDM §6); needs a study file.",
    "fusion": "Mean-mask the normalised mean of gaze and relevance (RBDM §7); needs a study file.",
    "regions": "Keep the ground-truth expression regions (synthetic faces only): a known answer.",
}
#: Marker per compared run (the first run has none).
_RUN_SYMBOLS: Final = (None, "o", "t", "s", "d", "+", "x", "star")
_TRAINEE_COLUMNS: Final = (
    "variant",
    "seed",
    "status",
    "best F1",
    "best step",
    "final F1",
    "final acc.",
    "final loss",
    "mean F1",
    "steps",
    "time (s)",
)
_SUMMARY_COLUMNS: Final = ("variant", "seeds", "best F1", "final F1", "mean F1")
#: Columns of the comparison with ``none`` (analysis.experiment_report), per training-set size.
COMPARISON_COLUMNS: Final = (
    "images",
    "variant",
    "seeds",
    "AULC [95 % CI]",
    "steps to threshold (reached)",
    "best val. F1 [95 % CI]",
    "test F1 [95 % CI]",
    "Δ AULC vs none, Holm p",
    "verdict",
)
_SWITCH = "+switch"


def experiments_config_path() -> Path:
    """The file remembering the Experiments screen's form."""
    return config_dir() / "experiments.json"


def default_runs_dir() -> Path:
    """Where runs are kept unless the view is given another folder: ``experiments`` in the data folder."""
    return data_dir() / "experiments"


# --- what workers hand back -------------------------------------------------------------------------

#: A Trainee of a run: (run folder, variant, seed).
TraineeKey = tuple[Path, str, int]


@dataclass(frozen=True, slots=True, eq=False)
class _Opened:
    """Runs read from their folders, with their Trainees' confusion matrices."""

    runs: tuple[ExperimentRun, ...]
    confusions: Mapping[TraineeKey, NDArray[np.int64]]
    comparisons: Mapping[Path, tuple[VariantComparison, ...]] = dataclasses.field(default_factory=dict)


def _open_runs(run_dirs: Sequence[Path]) -> Callable[[ProgressCallback, Callable[[], bool]], _Opened]:
    def work(progress: ProgressCallback, cancelled: Callable[[], bool]) -> _Opened:
        runs = tuple(_with_partial_curves(load_run(folder)) for folder in run_dirs)
        confusions = {}
        for run in runs:
            for result in run.results:
                matrix = read_confusion(run.trainee_dir(result) / "confusion.csv")
                if matrix is not None:
                    confusions[(run.run_dir, result.variant, result.seed)] = matrix
        return _Opened(runs, confusions, {run.run_dir: run_comparisons(run) for run in runs})

    return work


def run_comparisons(run: ExperimentRun) -> tuple[VariantComparison, ...]:
    """A run's comparison with ``none`` per size and variant (:mod:`analysis.experiment_report`)."""
    config = run.config
    measures = seed_measures(
        run.results, run.curves_by_size, auc_steps=config.auc_steps, threshold_share=config.threshold_share
    )
    return tuple(compare_variants(measures))


def comparison_cells(row: VariantComparison) -> list[str]:
    """One row of the comparison table (:data:`COMPARISON_COLUMNS`)."""

    def ci(measure: str, digits: int = 3) -> str:
        value = row.means.get(measure)
        if value is None:
            return "–"
        if value.n < 2:
            return f"{value.mean:.{digits}f}"
        return f"{value.mean:.{digits}f} [{value.low:.{digits}f}, {value.high:.{digits}f}]"

    difference, p = row.differences.get("aulc"), row.adjusted_p.get("aulc")
    delta = (
        "–" if difference is None else f"{difference.mean:+.3f} [{difference.low:.3f}, {difference.high:.3f}]"
    )
    if difference is not None and p is not None:
        delta += f", p = {p:.3g}"
    return [
        str(row.train_size) if row.train_size else "?",  # runs written before sizes were recorded
        row.variant,
        str(len(row.seeds)),
        ci("aulc"),
        f"{ci('steps_to_threshold', 0)} ({row.reached}/{len(row.seeds)})",
        ci("best_val_macro_f1"),
        ci("test_macro_f1"),
        delta,
        row.verdict,
    ]


def _with_partial_curves(run: ExperimentRun) -> ExperimentRun:
    """The run as shown: an orphaned "running" run is ``interrupted``; curves include unfinished Trainees'."""
    return dataclasses.replace(run, status=run_state(run), curves=partial_curves(run))


class ExperimentView(QWidget):
    """The Experiments screen (RBDM §5.5, §6, Figures 10–12).

    Parameters
    ----------
    runs_dir : Path, optional
        Where runs are kept; :func:`default_runs_dir` by default.
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
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.runner = runner or ExperimentRunner(parent=self)
        self.runs: dict[Path, ExperimentRun] = {}
        self.shown: tuple[ExperimentRun, ...] = ()
        self.confusions: dict[TraineeKey, NDArray[np.int64]] = {}
        self.comparisons: dict[Path, tuple[VariantComparison, ...]] = {}
        self.live_dir: Path | None = None
        self.live_curves: dict[tuple[str, int], list[CurvePoint]] = {}
        self.live_size: int | None = None  # the training-set size whose curves are shown live
        self.bands: list[pg.FillBetweenItem] = []  # the confidence bands drawn for the shown run
        self._live_items: dict[tuple[str, int], list[pg.PlotDataItem]] = {}
        self._switch_steps: set[int] = set()
        self._tasks: dict[str, Task] = {}
        self._live_listed = False
        self._build()
        self._fill_form(self._remembered(), trainer_path)
        self.runner.progress.connect(self.show_progress)
        self.runner.used.connect(self.show_used)
        self.runner.finished.connect(self._on_finished)
        self._update_buttons()
        self.refresh_runs()

    # --- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(sidebar_splitter(self._sidebar(), self._centre(), side_px=360))

    def _sidebar(self) -> QWidget:
        side = QWidget()
        side.setMinimumWidth(320)
        side.setMaximumWidth(440)
        layout = QVBoxLayout(side)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._runs_group(), 2)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self._form_group())
        layout.addWidget(scroll, 5)
        actions = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Mask the training images and train every Trainee in the background.")
        self.run_button.clicked.connect(lambda: self.start_run())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop after the current training step; the run keeps its curves.")
        self.cancel_button.clicked.connect(self.cancel_run)
        actions.addWidget(self.run_button)
        actions.addWidget(self.cancel_button)
        layout.addLayout(actions)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setTextVisible(True)
        self.progress_bar.hide()
        layout.addWidget(self.progress_bar)
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status_label)
        return side

    def _runs_group(self) -> QGroupBox:
        box = QGroupBox("Kept runs (pick several to compare)")
        layout = QVBoxLayout(box)
        self.runs_list = QListWidget()
        self.runs_list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.runs_list.itemSelectionChanged.connect(self._on_runs_selected)
        layout.addWidget(self.runs_list)
        row = QHBoxLayout()
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(lambda: self.refresh_runs())
        self.reuse_button = QPushButton("Use its settings")
        self.reuse_button.setToolTip("Copy the chosen run's settings into the form.")
        self.reuse_button.clicked.connect(self._reuse_settings)
        self.reuse_button.setEnabled(False)
        row.addWidget(refresh)
        row.addWidget(self.reuse_button)
        layout.addLayout(row)
        return box

    def _form_group(self) -> QGroupBox:
        box = QGroupBox("New run")
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.trainer_edit = QLineEdit()
        self.trainer_edit.editingFinished.connect(self._show_trainer)
        form.addRow("Trainer", _row(self.trainer_edit, _small_button("…", self._choose_trainer)))
        self.trainer_label = QLabel()
        self.trainer_label.setWordWrap(True)
        self.trainer_label.setStyleSheet("color: #555;")
        form.addRow(self.trainer_label)
        self.dataset_edit = QLineEdit()
        self.dataset_edit.setToolTip("'synthetic:n=50' (faces per label and split) or a dataset folder.")
        form.addRow("Dataset", _row(self.dataset_edit, _small_button("…", self._choose_dataset)))
        self.train_split_edit, self.val_split_edit = QLineEdit(), QLineEdit()
        form.addRow(
            "Splits", _row(QLabel("train"), self.train_split_edit, QLabel("val."), self.val_split_edit)
        )
        self.n_train_spin, self.n_val_spin = _count_spin(), _count_spin()
        form.addRow("Images", _row(QLabel("train"), self.n_train_spin, QLabel("val."), self.n_val_spin))
        self.sizes_edit = QLineEdit()
        self.sizes_edit.setPlaceholderText("e.g. 500, 2000, all (empty: the train count above)")
        self.sizes_edit.setToolTip(
            "Training-set sizes to run every variant and seed at: class-balanced, each part of the next."
        )
        form.addRow("Train sizes", self.sizes_edit)
        self.used_label = QLabel()
        self.used_label.setWordWrap(True)
        self.used_label.setStyleSheet("color: #8a4b00; font-weight: bold;")
        self.used_label.hide()
        form.addRow(self.used_label)
        form.addRow("Masks", self._method_boxes())
        self.study_edit = QLineEdit()
        self.study_edit.setToolTip("A study file whose annotators fixated the training images.")
        self.study_row = _row(self.study_edit, _small_button("…", self._choose_study))
        form.addRow("Study", self.study_row)
        self.masked_box = QCheckBox("masked throughout")
        self.switch_box = QCheckBox("then originals")
        self.switch_box.setToolTip("Masked for 'switch after' epochs, then the original images (RBDM §5.5).")
        form.addRow("Trainees", _row(self.masked_box, self.switch_box))
        self.architecture_combo = QComboBox()
        self.architecture_combo.addItems(sorted(ARCHITECTURES, key=lambda a: (a != "small_cnn", a)))
        self.architecture_combo.currentTextChanged.connect(self._on_architecture)
        self.alpha_spin = QDoubleSpinBox()
        self.alpha_spin.setRange(0.1, 1.4)
        self.alpha_spin.setSingleStep(0.05)
        self.alpha_spin.setToolTip("MobileNet width multiplier α (0.35: about 0.4 M parameters).")
        self.alpha_label = QLabel("α")
        form.addRow("Trainee", _row(self.architecture_combo, self.alpha_label, self.alpha_spin))
        self.epochs_spin = _spin(1, 1000)
        self.switch_spin = _spin(1, 999)
        self.switch_spin.setToolTip("Last epoch on the masked images of the 'then originals' Trainees.")
        form.addRow("Epochs", _row(self.epochs_spin, QLabel("switch after"), self.switch_spin))
        self.seeds_edit = QLineEdit()
        self.seeds_edit.setToolTip("Comma-separated seeds, one Trainee per variant and seed: 0, 1, 2.")
        form.addRow("Seeds", self.seeds_edit)
        self.eval_spin = _spin(1, 100_000)
        form.addRow("Curve point", _row(QLabel("every"), self.eval_spin, QLabel("steps")))
        self.test_split_edit = QLineEdit()
        self.test_split_edit.setPlaceholderText("none: hold part of val. apart")
        self.test_split_edit.setToolTip("Split scored at each Trainee's best step, never used to choose it.")
        self.test_split_edit.textChanged.connect(self._update_form)
        self.test_fraction_spin = QDoubleSpinBox()
        self.test_fraction_spin.setRange(0.01, 0.99)
        self.test_fraction_spin.setSingleStep(0.05)
        self.test_fraction_spin.setToolTip("Share of the validation images held apart, stratified by class.")
        form.addRow("Test split", _row(self.test_split_edit, QLabel("or"), self.test_fraction_spin))
        self.keep_models_box = QCheckBox("keep each Trainee's best and final model")
        form.addRow("Models", self.keep_models_box)
        self.workers_spin, self.cpus_spin = _spin(1, 256), _spin(1, 256)
        self.workers_spin.setToolTip("1: one cell at a time in the worker process; N: local Ray, N at once.")
        self.cpus_spin.setToolTip("TensorFlow threads per cell (rbdm experiment --cpus-per-cell).")
        form.addRow("Workers", _row(self.workers_spin, QLabel("× threads"), self.cpus_spin))
        return box

    def _method_boxes(self) -> QWidget:
        holder = QWidget()
        grid = QGridLayout(holder)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(2)
        self.method_boxes: dict[str, QCheckBox] = {}
        for k, method in enumerate(METHODS):
            box = QCheckBox(_METHOD_TITLES.get(method, method))
            box.setToolTip(_METHOD_TIPS.get(method, ""))
            box.toggled.connect(self._update_form)
            self.method_boxes[method] = box
            grid.addWidget(box, *divmod(k, 2))
        return holder

    def _centre(self) -> QWidget:
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.plot_widget = pg.GraphicsLayoutWidget()
        self.plot_widget.setBackground("w")
        self.plot_title = self.plot_widget.addLabel("", row=0, col=0, colspan=len(PANELS), color="#222")
        self.plots: dict[str, pg.PlotItem] = {}
        for k, (name, title) in enumerate(PANELS):
            plot = self.plot_widget.addPlot(row=1, col=k)
            plot.setTitle(title, color="#222", size="10pt")
            plot.setLabel("bottom", "training step", color="#222")
            plot.showGrid(x=True, y=True, alpha=0.25)
            for axis in ("left", "bottom"):
                plot.getAxis(axis).setPen(pg.mkPen("#444"))
                plot.getAxis(axis).setTextPen(pg.mkPen("#222"))
            if k:
                plot.setXLink(self.plots[PANELS[0][0]])
            self.plots[name] = plot
        self.legend = self.plots["val_macro_f1"].addLegend(  # top left: F1 starts low
            offset=(4, 4), labelTextColor="#222", brush=pg.mkBrush(255, 255, 255, 215), labelTextSize="8pt"
        )
        splitter.addWidget(self.plot_widget)
        splitter.addWidget(self._bottom())
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([560, 400])
        return splitter

    def _bottom(self) -> QWidget:
        bottom = QSplitter(Qt.Orientation.Horizontal)
        self.tabs = QTabWidget()
        self.results_table = _table_widget()
        self.results_table.itemSelectionChanged.connect(self._on_trainee_selected)
        self.summary_table = _table_widget()
        self.comparison_table = _table_widget()
        self.tabs.addTab(self.results_table, "Trainees")
        self.tabs.addTab(self.summary_table, "By variant (mean ± sd over seeds)")
        self.tabs.addTab(self.comparison_table, "By variant vs none (95 % CI, verdict)")
        bottom.addWidget(self.tabs)
        confusion = QWidget()
        layout = QVBoxLayout(confusion)
        layout.setContentsMargins(0, 0, 0, 0)
        self.confusion_caption = QLabel("Confusion matrix: pick a Trainee in the table.")
        self.confusion_caption.setWordWrap(True)
        self.confusion_table = QTableWidget(len(LABELS), len(LABELS))
        self.confusion_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.confusion_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        _label_headers(self.confusion_table, LABELS)
        self.confusion_table.setVerticalHeaderLabels(list(LABELS))
        for header in (self.confusion_table.horizontalHeader(), self.confusion_table.verticalHeader()):
            header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        widest = max(self.confusion_table.fontMetrics().horizontalAdvance(_short(label)) for label in LABELS)
        self.confusion_table.horizontalHeader().setMinimumSectionSize(widest + 12)  # never cut a label
        layout.addWidget(self.confusion_caption)
        layout.addWidget(self.confusion_table, 1)
        bottom.addWidget(confusion)
        bottom.setStretchFactor(0, 1)
        bottom.setStretchFactor(1, 1)
        bottom.setSizes([760, 470])
        return bottom

    # --- the form -------------------------------------------------------------------------------

    def _fill_form(self, remembered: Mapping[str, Any], trainer_path: Path | None) -> None:
        values = {**FORM_DEFAULTS, **{k: v for k, v in remembered.items() if v is not None}}
        options = values["options"] or DEFAULT_TRAINEE_OPTIONS
        self.trainer_edit.setText(str(trainer_path or values["trainer"] or FORM_DEFAULTS["trainer"]))
        for edit, key in (
            (self.dataset_edit, "dataset"),
            (self.train_split_edit, "train_split"),
            (self.val_split_edit, "val_split"),
        ):
            edit.setText(str(values[key] or FORM_DEFAULTS[key]))
        for spin, key in ((self.n_train_spin, "n_train"), (self.n_val_spin, "n_val")):
            spin.setValue(int(values[key] or 0))  # 0 or None: the whole split
        methods = set(values["methods"] or FORM_DEFAULTS["methods"])
        for method, box in self.method_boxes.items():
            box.setChecked(method in methods)
        self.study_edit.setText(str(values["study"] or ""))
        self.masked_box.setChecked(bool(values["masked"]))
        self.switch_box.setChecked(bool(values["switch"]))
        self.architecture_combo.setCurrentText(str(values["architecture"] or FORM_DEFAULTS["architecture"]))
        self.alpha_spin.setValue(float(options.get("alpha", DEFAULT_TRAINEE_OPTIONS["alpha"])))
        for spin, key in (
            (self.epochs_spin, "epochs"),
            (self.switch_spin, "switch_epoch"),
            (self.eval_spin, "eval_every_steps"),
            (self.workers_spin, "workers"),
            (self.cpus_spin, "cpus_per_cell"),
        ):
            spin.setValue(int(values[key] or FORM_DEFAULTS[key]))
        sizes = values["train_sizes"] or ""
        self.sizes_edit.setText(sizes if isinstance(sizes, str) else sizes_text(sizes))
        seeds = values["seeds"] or FORM_DEFAULTS["seeds"]
        self.seeds_edit.setText(seeds if isinstance(seeds, str) else ", ".join(str(s) for s in seeds))
        self.test_split_edit.setText(str(values["test_split"] or ""))
        self.test_fraction_spin.setValue(float(values["test_fraction"] or FORM_DEFAULTS["test_fraction"]))
        self.keep_models_box.setChecked(bool(values["keep_models"]))
        self._on_architecture(self.architecture_combo.currentText())
        self._update_form()
        self._show_trainer()

    def _update_form(self) -> None:
        self.study_row.setEnabled(
            self.method_boxes["gaze"].isChecked() or self.method_boxes["fusion"].isChecked()
        )
        self.test_fraction_spin.setEnabled(not self.test_split_edit.text().strip())

    def _on_architecture(self, architecture: str) -> None:
        has_alpha = architecture.startswith("MobileNet")
        self.alpha_spin.setEnabled(has_alpha)
        self.alpha_label.setEnabled(has_alpha)

    def _show_trainer(self) -> None:
        card = trainer_card(Path(self.trainer_edit.text()).expanduser())
        if card is None:
            self.trainer_label.setText("No model card beside this file: images are loaded at 48 × 48 px.")
            return
        height, width, channels = card.input_shape
        f1 = card.scores.get("val_macro_f1")
        scored = f", val. macro-F1 {f1:.3f}" if isinstance(f1, float) else ""
        self.trainer_label.setText(
            f"{card.architecture}, input {width} × {height} × {channels}{scored}; "
            f"trained on {card.data.get('dataset', '?')}."
        )

    def form_values(self) -> dict[str, Any]:
        """The form as plain values (what is remembered between sessions)."""
        architecture = self.architecture_combo.currentText()
        return {
            "trainer": self.trainer_edit.text().strip(),
            "dataset": self.dataset_edit.text().strip(),
            "train_split": self.train_split_edit.text().strip(),
            "val_split": self.val_split_edit.text().strip(),
            "n_train": self.n_train_spin.value(),
            "n_val": self.n_val_spin.value(),
            "methods": [m for m, box in self.method_boxes.items() if box.isChecked()],
            "study": self.study_edit.text().strip(),
            "masked": self.masked_box.isChecked(),
            "switch": self.switch_box.isChecked(),
            "architecture": architecture,
            "options": {"alpha": self.alpha_spin.value()} if architecture.startswith("MobileNet") else {},
            "epochs": self.epochs_spin.value(),
            "switch_epoch": self.switch_spin.value(),
            "seeds": self.seeds_edit.text(),
            "eval_every_steps": self.eval_spin.value(),
            "train_sizes": self.sizes_edit.text().strip(),
            "test_split": self.test_split_edit.text().strip(),
            "test_fraction": self.test_fraction_spin.value(),
            "keep_models": self.keep_models_box.isChecked(),
            "workers": self.workers_spin.value(),
            "cpus_per_cell": self.cpus_spin.value(),
        }

    def form_request(self) -> LaunchRequest:
        """The run the form describes (:func:`rbdm_gui.workflows.experiment_form.form_request`): in a fresh
        folder of
        the runs folder, or in the unfinished run of the same settings there, which it resumes.

        Raises
        ------
        ValueError
            With a message for the user when the form is incomplete or inconsistent.
        """
        return form_request(self.form_values(), runs_dir=self.runs_dir)

    # --- running --------------------------------------------------------------------------------

    def start_run(self) -> bool:
        """Start the run of the form in the background; False (and a message) when the form is not valid."""
        if self.runner.running:
            self._say("A run is going on; cancel it or wait until it ends.")
            return False
        try:
            request = self.form_request()
        except ValueError as err:
            self._say(str(err))
            return False
        self.save_form()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        how = "Resuming" if Path(request.run_dir).exists() else "Starting"
        self.follow(Path(request.run_dir))
        self.runner.start(request)
        self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat("starting…")
        self.progress_bar.show()
        where = (
            "in the worker process" if request.workers == 1 else f"on local Ray, {request.workers} at once"
        )
        self._say(f"{how} {Path(request.run_dir).name}: {request.n_trainees} Trainees {where}…")
        self._update_buttons()
        return True

    def cancel_run(self) -> None:
        """Stop the running experiment after its current step (it is kept as ``cancelled``)."""
        if self.runner.running:
            self.runner.cancel()
            self._say("Cancelling after the current step…")
            self._update_buttons()

    @property
    def busy(self) -> bool:
        """Whether a run is going on or a worker thread is reading runs."""
        return self.runner.running or any(not task.done for task in self._tasks.values())

    def follow(self, run_dir: Path) -> None:
        """Show the run starting in ``run_dir`` live: its curves as :meth:`show_progress` receives them."""
        self.live_dir = Path(run_dir)
        self.live_curves, self._live_listed, self.live_size = {}, False, None
        self._show_live()

    def show_progress(self, progress: ExperimentProgress) -> None:
        """Show a progress record of the followed run: status, progress bar, a new curve point."""
        if not self._live_listed:  # run.json exists once the worker reports
            self._live_listed = True
            self.refresh_runs(select=self.live_dir)
        shown = progress_display(progress)
        if shown.fraction is not None:
            self.progress_bar.setRange(0, 1000)
            self.progress_bar.setValue(round(1000 * shown.fraction))
        elif progress.stage in ("loading", "relevance", "masking"):
            self.progress_bar.setRange(0, 0)
        self.progress_bar.setFormat(shown.bar_text)
        self._say(shown.status_text)
        if progress.train_size is not None and progress.train_size != self.live_size:
            self.live_size, self.live_curves = progress.train_size, {}  # a larger size: show its curves
            if self._showing_live():
                self._show_live()
        if progress.point is not None and progress.variant is not None and progress.seed is not None:
            key = (progress.variant, progress.seed)
            self.live_curves.setdefault(key, []).append(progress.point)
            if self._showing_live():
                self._draw_live_point(key)

    def follow_study(self, path: str | Path) -> None:
        """Study setup chose another study file: the gaze Trainees' study follows it."""
        self.study_edit.setText(str(Path(path).expanduser()))

    def show_used(self, used: Mapping[str, Any]) -> None:
        """Show the images per split the run really uses; the form takes those numbers, with a warning."""
        warnings = [str(w) for w in used.get("warnings") or []]
        for spin, key in ((self.n_train_spin, "n_train"), (self.n_val_spin, "n_val")):
            value = used.get(key)
            if isinstance(value, int) and value > 0:
                spin.setValue(value)
        self.used_label.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.used_label.setVisible(bool(warnings))

    def closing_question(self) -> str:
        """What to ask before the window closes ("" when nothing would be lost)."""
        if not self.runner.running:
            return ""
        name = "" if self.live_dir is None else f" {self.live_dir.name}"
        return (
            f"The experiment{name} is still running. Quit anyway? It is cancelled after its current step "
            "and keeps its curves so far."
        )

    def _on_finished(self, status: str, text: str) -> None:
        self.progress_bar.hide()
        self._update_buttons()
        finished_dir = self.live_dir
        if status == "failed":
            self._say(f"The run failed: {text}")
        else:
            self._say(f"Run {status}: {text}")
        self.refresh_runs(select=finished_dir)

    def _update_buttons(self) -> None:
        running = self.runner.running
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running and not self.runner.cancelling)

    # --- kept runs ------------------------------------------------------------------------------

    def refresh_runs(self, *, select: Path | None = None) -> None:
        """List the runs folder again (on a worker thread); then select ``select`` if given."""
        folder = self.runs_dir
        keep = [select] if select is not None else self.selected_run_dirs

        def work(progress: ProgressCallback, cancelled: Callable[[], bool]) -> list[ExperimentRun]:
            return list_runs(folder)

        self._start("list", work, lambda runs: self._listed(runs, keep))

    def _listed(self, runs: list[ExperimentRun], select: Sequence[Path]) -> None:
        runs = [dataclasses.replace(run, status=run_state(run)) for run in runs]
        self.runs = {run.run_dir: run for run in runs}
        with QSignalBlocker(self.runs_list):
            self.runs_list.clear()
            for run in reversed(runs):  # newest first
                item = QListWidgetItem(_run_text(run))
                item.setData(Qt.ItemDataRole.UserRole, str(run.run_dir))
                item.setToolTip(_run_tip(run))
                self.runs_list.addItem(item)
                item.setSelected(run.run_dir in set(select))
        if not runs:
            self._say_if_idle(f"No runs yet in {self.runs_dir}. Fill in the form and press Run.")
        self._on_runs_selected()

    @property
    def selected_run_dirs(self) -> list[Path]:
        """The run folders picked in the list, newest first."""
        return [Path(item.data(Qt.ItemDataRole.UserRole)) for item in self.runs_list.selectedItems()]

    def open_runs(self, run_dirs: Sequence[Path]) -> None:
        """Pick these runs in the list (one to reopen it, several to compare them)."""
        wanted = {Path(d) for d in run_dirs}
        with QSignalBlocker(self.runs_list):
            for k in range(self.runs_list.count()):
                item = self.runs_list.item(k)
                item.setSelected(Path(item.data(Qt.ItemDataRole.UserRole)) in wanted)
        self._on_runs_selected()

    def _on_runs_selected(self) -> None:
        chosen = self.selected_run_dirs
        self.reuse_button.setEnabled(len(chosen) == 1)
        if not chosen:
            return
        if len(chosen) == 1 and chosen[0] == self.live_dir and self.runner.running:
            self._show_live()
            return
        self._start("open", _open_runs(chosen), self._opened)

    def _opened(self, opened: _Opened) -> None:
        self.shown = opened.runs
        self.confusions = dict(opened.confusions)
        self.comparisons = dict(opened.comparisons)
        if len(opened.runs) == 1:
            run = opened.runs[0]
            self._draw_curves(run.curves, title=_plot_title(run))
            if run.error:
                self._say_if_idle(f"{run.run_dir.name} {run.status}: {run.error}")
            elif run.status == "interrupted":
                self._say_if_idle(
                    f"{run.run_dir.name} was interrupted (its process ended without a result); "
                    "the curves it reached are shown."
                )
            warnings = run_used(run).get("warnings") or []
            self.used_label.setText("\n".join(f"⚠ {run.run_dir.name}: {w}" for w in warnings))
            self.used_label.setVisible(bool(warnings))
        else:
            self._draw_comparison(opened.runs)
        self._fill_results()

    def _reuse_settings(self) -> None:
        chosen = self.selected_run_dirs
        run = self.runs.get(chosen[0]) if len(chosen) == 1 else None
        if run is not None:
            self._fill_form(form_of_run(run), None)
            self._say(f"Settings of {run.run_dir.name} copied into the form.")

    # --- plots ----------------------------------------------------------------------------------

    def _clear_plots(self, title: str) -> None:
        for plot in self.plots.values():
            plot.clear()
            plot.enableAutoRange()  # the next run's range, not the last one's (or the user's zoom)
        self.legend.clear()
        self._live_items = {}
        self._switch_steps = set()
        self.bands = []
        self.plot_title.setText(title, color="#222")

    def _showing_live(self) -> bool:
        return self.live_dir is not None and self.selected_run_dirs in ([], [self.live_dir])

    def _show_live(self) -> None:
        self.shown, self.confusions = (), {}
        name = "" if self.live_dir is None else self.live_dir.name
        size = "" if self.live_size is None else f", {self.live_size} training images"
        self._clear_plots(f"{name} (running{size})")
        for key in self.live_curves:
            self._draw_live_point(key)
        self._fill_results()

    def _draw_live_point(self, key: tuple[str, int]) -> None:
        points = self.live_curves[key]
        items = self._live_items.get(key)
        if items is None:
            items = self._live_items[key] = self._add_curve(key[0], legend=not self._has_variant(key[0]))
        steps = np.array([p.step for p in points], dtype=np.float64)
        for item, (name, _) in zip(items, PANELS, strict=True):
            item.setData(steps, np.array([getattr(p, name) for p in points], dtype=np.float64))
        if key[0].endswith(_SWITCH):
            self._mark_switch([p.step for p in points if p.phase == "unmasked"][:1])

    def _has_variant(self, variant: str) -> bool:
        return any(v == variant for v, _ in self._live_items)

    def _draw_curves(self, curves: Mapping[tuple[str, int], Sequence[CurvePoint]], *, title: str) -> None:
        self._clear_plots(title)
        for (variant, seed), points in curves.items():
            self._live_items[(variant, seed)] = self._add_curve(
                variant, legend=not self._has_variant(variant)
            )
            steps = np.array([p.step for p in points], dtype=np.float64)
            for item, (name, _) in zip(self._live_items[(variant, seed)], PANELS, strict=True):
                item.setData(steps, np.array([getattr(p, name) for p in points], dtype=np.float64))
            if variant.endswith(_SWITCH):
                self._mark_switch([p.step for p in points if p.phase == "unmasked"][:1])
        self._draw_bands(curves)

    def _draw_bands(self, curves: Mapping[tuple[str, int], Sequence[CurvePoint]]) -> None:
        """Shade each variant's 95 % interval over its seeds on the validation macro-F1 panel."""
        for variant, table in band_curves(curves).items():
            if len({s for v, s in curves if v == variant}) < 2 or len(table["step"]) < 2:
                continue
            colour = QColor(METHOD_COLOURS.get(variant.removesuffix(_SWITCH), METHOD_COLOURS["gaze"]))
            colour.setAlpha(40)
            low = pg.PlotCurveItem(table["step"], table["low"])
            high = pg.PlotCurveItem(table["step"], table["high"])
            band = pg.FillBetweenItem(low, high, brush=pg.mkBrush(colour))
            band.setToolTip(f"{variant}: 95 % confidence interval over the seeds")
            self.plots["val_macro_f1"].addItem(band)
            self.bands.append(band)

    def _draw_comparison(self, runs: Sequence[ExperimentRun]) -> None:
        self._clear_plots("Comparing " + ", ".join(run.run_dir.name for run in runs) + " (mean over seeds)")
        for k, run in enumerate(runs):
            symbol = _RUN_SYMBOLS[k % len(_RUN_SYMBOLS)]
            for variant, table in mean_curves(run.curves).items():
                items = self._add_curve(variant, legend=False, symbol=symbol)
                for item, (name, _) in zip(items, PANELS, strict=True):
                    item.setData(table["step"], table[name])
                self.legend.addItem(items[-1], f"{_short_name(run)} · {variant}")
                self._mark_switch([int(s) for s in table["switch_step"]])

    def _add_curve(self, variant: str, *, legend: bool, symbol: str | None = None) -> list[pg.PlotDataItem]:
        method = variant.removesuffix(_SWITCH)
        colour = METHOD_COLOURS.get(method, METHOD_COLOURS["gaze"])
        style = Qt.PenStyle.DashLine if variant.endswith(_SWITCH) else Qt.PenStyle.SolidLine
        pen = pg.mkPen(colour, width=2, style=style)
        items = []
        for name, _ in PANELS:
            item = pg.PlotDataItem(pen=pen, symbol=symbol, symbolSize=6, symbolBrush=colour, symbolPen=colour)
            self.plots[name].addItem(item)
            items.append(item)
        if legend:
            self.legend.addItem(items[-1], variant)
        return items

    def _mark_switch(self, steps: Sequence[int]) -> None:
        for step in steps:
            if step in self._switch_steps:
                continue
            self._switch_steps.add(step)
            for plot in self.plots.values():
                line = pg.InfiniteLine(
                    pos=step, angle=90, pen=pg.mkPen("#888", width=1, style=Qt.PenStyle.DotLine)
                )
                line.setToolTip("switch to the original images")
                plot.addItem(line)

    # --- tables ---------------------------------------------------------------------------------

    @property
    def results(self) -> list[tuple[Path, VariantResult]]:
        """The Trainees in the results table: (run folder, result)."""
        return [(run.run_dir, result) for run in self.shown for result in run.results]

    def _fill_results(self) -> None:
        several = len(self.shown) > 1
        rows = self.results
        titles = (["run"] if several else []) + list(_TRAINEE_COLUMNS)
        with QSignalBlocker(self.results_table):
            self.results_table.clear()
            self.results_table.setColumnCount(len(titles))
            self.results_table.setHorizontalHeaderLabels(titles)
            self.results_table.setRowCount(len(rows))
            for r, (run_dir, result) in enumerate(rows):
                cells = ([run_dir.name] if several else []) + _trainee_cells(result)
                for c, text in enumerate(cells):
                    self.results_table.setItem(r, c, _cell(text, numeric=c >= (3 if several else 2)))
        self._fill_summary(several)
        self._fill_comparison(several)
        if rows:
            best = max(range(len(rows)), key=lambda r: rows[r][1].best_val_macro_f1)
            self.results_table.selectRow(best)
        else:
            self._show_confusion(None)

    def _fill_summary(self, several: bool) -> None:
        titles = (["run"] if several else []) + list(_SUMMARY_COLUMNS)
        rows = [(run, row) for run in self.shown for row in summary_by_variant(run.results)]
        table = self.summary_table
        table.clear()
        table.setColumnCount(len(titles))
        table.setHorizontalHeaderLabels(titles)
        table.setRowCount(len(rows))
        for r, (run, row) in enumerate(rows):
            cells = [run.run_dir.name] if several else []
            sized = len(run.train_sizes) > 1
            cells += [
                f"{row['variant']} · {row['train_size']}" if sized else row["variant"],
                str(row["seeds"]),
            ]
            for name in ("best_val_macro_f1", "final_val_macro_f1", "mean_val_macro_f1"):
                cells.append(f"{row[name]:.3f} ± {row[name + '_sd']:.3f}")
            for c, text in enumerate(cells):
                table.setItem(r, c, _cell(text, numeric=c >= len(cells) - 4))

    def _fill_comparison(self, several: bool) -> None:
        titles = (["run"] if several else []) + list(COMPARISON_COLUMNS)
        rows = [(run, row) for run in self.shown for row in self.comparisons.get(run.run_dir, ())]
        table = self.comparison_table
        table.clear()
        table.setColumnCount(len(titles))
        table.setHorizontalHeaderLabels(titles)
        table.setRowCount(len(rows))
        for r, (run, row) in enumerate(rows):
            cells = ([run.run_dir.name] if several else []) + comparison_cells(row)
            for c, text in enumerate(cells):
                item = _cell(text, numeric=0 < c < len(cells) - 1)
                item.setToolTip(text)
                table.setItem(r, c, item)

    def _on_trainee_selected(self) -> None:
        rows = sorted({index.row() for index in self.results_table.selectedIndexes()})
        entries = self.results
        if not rows or rows[0] >= len(entries):
            self._show_confusion(None)
            return
        run_dir, result = entries[rows[0]]
        self._show_confusion((run_dir, result.variant, result.seed))

    def _show_confusion(self, key: TraineeKey | None) -> None:
        matrix = None if key is None else self.confusions.get(key)
        table = self.confusion_table
        table.clearContents()
        if key is None or matrix is None:
            self.confusion_caption.setText("Confusion matrix: pick a finished Trainee in the table.")
            return
        run_dir, variant, seed = key
        n = len(matrix)
        labels = list(LABELS[:n])
        table.setRowCount(n)
        table.setColumnCount(n)
        _label_headers(table, labels)
        totals = matrix.sum(axis=1, keepdims=True)
        shares = matrix / np.maximum(totals, 1)
        for r in range(n):
            for c in range(n):
                item = _cell(str(int(matrix[r, c])), numeric=True)
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setBackground(QBrush(_heat(float(shares[r, c]))))
                item.setForeground(QBrush(QColor("white" if shares[r, c] > 0.55 else "black")))
                item.setToolTip(f"true {labels[r]}, predicted {labels[c]}: {shares[r, c]:.0%} of the row")
                table.setItem(r, c, item)
        accuracy = float(np.trace(matrix)) / max(int(matrix.sum()), 1)
        self.confusion_caption.setText(
            f"{variant}, seed {seed} ({run_dir.name}): rows true class, columns predicted, on the "
            f"validation images after the last step; accuracy {accuracy:.3f}. Colour: share of the row."
        )

    # --- workers and messages ---------------------------------------------------------------------

    def _start(self, name: str, work: Callable[..., Any], on_result: Callable[[Any], None]) -> None:
        previous = self._tasks.get(name)
        if previous is not None and not previous.done:
            previous.cancel()
        self._tasks[name] = run_task(work, on_result=on_result, on_error=lambda err: self._say(str(err)))

    def _say(self, text: str) -> None:
        self.status_label.setText(text)

    def _say_if_idle(self, text: str) -> None:
        if not self.runner.running:
            self._say(text)

    # --- files ------------------------------------------------------------------------------------

    def _choose_trainer(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Trainer model", self.trainer_edit.text(), "Keras model (*.keras);;All files (*)"
        )
        if path:
            self.trainer_edit.setText(path)
            self._show_trainer()

    def _choose_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder")
        if folder:
            self.dataset_edit.setText(folder)

    def _choose_study(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Study file", self.study_edit.text(), "RBDM Studio study (*.sqlite *.db);;All files (*)"
        )
        if path:
            self.study_edit.setText(path)

    @staticmethod
    def _remembered() -> dict[str, Any]:
        try:
            data = json.loads(experiments_config_path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save_form(self) -> None:
        """Remember the form for the next session (every Run does)."""
        file = experiments_config_path()
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(json.dumps(self.form_values(), indent=2), encoding="utf-8")
        except OSError:
            pass  # remembering is a convenience; runs work without it

    def closeEvent(self, event: QCloseEvent) -> None:
        for task in self._tasks.values():
            if not task.done:
                task.cancel()
        self.runner.stop()
        super().closeEvent(event)


# --- helpers ----------------------------------------------------------------------------------------


def _run_text(run: ExperimentRun) -> str:
    config = run.config
    variants = {r.variant for r in run.results} | set(config.variants)
    return (
        f"{run.run_dir.name}\n   {run.status} · {len(variants)} variants × {len(config.seeds)} seeds · "
        f"{config.architecture}, {config.epochs} epochs"
    )


def _run_tip(run: ExperimentRun) -> str:
    config = run.config
    lines = [
        str(run.run_dir),
        f"dataset {config.dataset} ({config.train_split}: {config.n_train or 'all'}, "
        f"{config.val_split}: {config.n_val or 'all'}), Trainer {Path(config.trainer).name}",
        f"started {run.started_utc}" + (f", ended {run.finished_utc}" if run.finished_utc else ""),
    ]
    used = run_used(run)
    if used:
        lines.append(f"used {used.get('n_train')} training and {used.get('n_val')} validation images")
        lines += [f"warning: {w}" for w in used.get("warnings") or []]
    if run.error:
        lines.append(f"error: {run.error}")
    return "\n".join(lines)


def _short_name(run: ExperimentRun) -> str:
    """``20250101-120000-synthetic`` → ``120000``: enough to tell compared runs apart in a legend."""
    parts = run.run_dir.name.split("-")
    return parts[1] if len(parts) > 2 and parts[1].isdigit() else run.run_dir.name


def _plot_title(run: ExperimentRun) -> str:
    config = run.config
    return (
        f"{run.run_dir.name} ({run.status}): {config.architecture} Trainees on {config.dataset}, "
        f"{config.epochs} epochs, switch after {config.switch_epoch}, seeds {list(config.seeds)}"
    )


def _trainee_cells(result: VariantResult) -> list[str]:
    return [
        result.variant,
        str(result.seed),
        result.status,
        f"{result.best_val_macro_f1:.3f}",
        str(result.best_step),
        f"{result.final_val_macro_f1:.3f}",
        f"{result.final_val_accuracy:.3f}",
        f"{result.final_val_loss:.3f}",
        f"{result.mean_val_macro_f1:.3f}",
        str(result.steps),
        f"{result.duration_s:.1f}",
    ]


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


def _cell(text: str, *, numeric: bool = False) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    if numeric:
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


def _table_widget() -> QTableWidget:
    table = QTableWidget()
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    table.horizontalHeader().setStretchLastSection(True)
    return table


def _spin(low: int, high: int) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(low, high)
    return spin


def _count_spin() -> QSpinBox:
    spin = _spin(0, 10_000_000)
    spin.setSpecialValueText("all")
    spin.setSingleStep(100)
    spin.setToolTip("At most this many images, drawn class by class; 'all' for the whole split.")
    return spin


def _small_button(text: str, on_click: Callable[[], None]) -> QPushButton:
    button = QPushButton(text)
    button.setFixedWidth(32)
    button.clicked.connect(on_click)
    return button


def _row(*widgets: QWidget) -> QWidget:
    holder = QWidget()
    layout = QHBoxLayout(holder)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget, 1 if isinstance(widget, (QLineEdit, QSpinBox, QComboBox)) else 0)
    return holder
