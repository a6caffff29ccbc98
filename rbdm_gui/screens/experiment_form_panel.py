"""The Experiments screen's form of a new run (RBDM §5.5): it shows the model's form and writes edits back.

What the form offers is what ``rbdm experiment`` offers (see :mod:`rbdm_gui.workflows.experiment_form`);
its values are an :class:`~rbdm_gui.workflows.experiment_settings.ExperimentSettings`, held by
:class:`~rbdm_gui.workflows.experiment_screen.ExperimentScreen`.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, §5.5 and §6.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from analysis.models import ARCHITECTURES
from rbdm_gui.screens._layout import KERAS_FILES, STUDY_FILES, pick_file
from rbdm_gui.workflows.experiment_display import trainer_text
from rbdm_gui.workflows.experiment_screen import ExperimentScreen
from rbdm_gui.workflows.experiment_settings import ExperimentSettings
from rbdm_gui.workflows.experiment_worker import METHODS

__all__ = ["ExperimentFormPanel"]

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


class ExperimentFormPanel(QGroupBox):
    """ "New run": the Trainer, data, masks, Trainees, seeds, test images, kept models and engine."""

    def __init__(self, model: ExperimentScreen, parent: QWidget | None = None) -> None:
        super().__init__("New run", parent)
        self.model = model
        self._showing = False
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._data_rows(form)
        self._trainee_rows(form)
        self._engine_rows(form)
        for edit in self.findChildren(QLineEdit):
            edit.textChanged.connect(self._edited)
        for spin in self.findChildren(QSpinBox):
            spin.valueChanged.connect(self._edited)
        for double in self.findChildren(QDoubleSpinBox):
            double.valueChanged.connect(self._edited)
        for box in self.findChildren(QCheckBox):
            box.toggled.connect(self._edited)
        self.architecture_combo.currentTextChanged.connect(self._edited)
        model.form_changed.subscribe(self.show_settings)
        model.used_changed.subscribe(self._show_used)
        self.show_settings(model.form)

    def _data_rows(self, form: QFormLayout) -> None:
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

    def _method_boxes(self) -> QWidget:
        holder = QWidget()
        grid = QGridLayout(holder)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setVerticalSpacing(2)
        self.method_boxes: dict[str, QCheckBox] = {}
        for k, method in enumerate(METHODS):
            box = QCheckBox(_METHOD_TITLES.get(method, method))
            box.setToolTip(_METHOD_TIPS.get(method, ""))
            self.method_boxes[method] = box
            grid.addWidget(box, *divmod(k, 2))
        return holder

    def _trainee_rows(self, form: QFormLayout) -> None:
        self.masked_box = QCheckBox("masked throughout")
        self.switch_box = QCheckBox("then originals")
        self.switch_box.setToolTip("Masked for 'switch after' epochs, then the original images (RBDM §5.5).")
        form.addRow("Trainees", _row(self.masked_box, self.switch_box))
        self.architecture_combo = QComboBox()
        self.architecture_combo.addItems(sorted(ARCHITECTURES, key=lambda a: (a != "small_cnn", a)))
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

    def _engine_rows(self, form: QFormLayout) -> None:
        self.test_split_edit = QLineEdit()
        self.test_split_edit.setPlaceholderText("none: hold part of val. apart")
        self.test_split_edit.setToolTip("Split scored at each Trainee's best step, never used to choose it.")
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

    # --- model ↔ widgets ----------------------------------------------------------------------------

    def show_settings(self, settings: ExperimentSettings) -> None:
        """Show ``settings``; what the widgets make of them (rounded, clamped) goes back to the model."""
        self._showing = True
        try:
            for edit, text in (
                (self.trainer_edit, settings.trainer),
                (self.dataset_edit, settings.dataset),
                (self.train_split_edit, settings.train_split),
                (self.val_split_edit, settings.val_split),
                (self.study_edit, settings.study),
                (self.sizes_edit, settings.train_sizes),
                (self.seeds_edit, settings.seeds),
                (self.test_split_edit, settings.test_split),
            ):
                edit.setText(text)
            for spin, value in (
                (self.n_train_spin, settings.n_train),
                (self.n_val_spin, settings.n_val),
                (self.epochs_spin, settings.epochs),
                (self.switch_spin, settings.switch_epoch),
                (self.eval_spin, settings.eval_every_steps),
                (self.workers_spin, settings.workers),
                (self.cpus_spin, settings.cpus_per_cell),
            ):
                spin.setValue(value)
            for method, box in self.method_boxes.items():
                box.setChecked(method in settings.methods)
            self.masked_box.setChecked(settings.masked)
            self.switch_box.setChecked(settings.switch)
            self.keep_models_box.setChecked(settings.keep_models)
            self.architecture_combo.setCurrentText(settings.architecture)
            self.alpha_spin.setValue(settings.alpha)
            self.test_fraction_spin.setValue(settings.test_fraction)
        finally:
            self._showing = False
        self._edited()
        self._show_trainer()

    def settings(self) -> ExperimentSettings:
        """The form as the widgets show it."""
        return ExperimentSettings(
            trainer=self.trainer_edit.text().strip(),
            dataset=self.dataset_edit.text().strip(),
            train_split=self.train_split_edit.text().strip(),
            val_split=self.val_split_edit.text().strip(),
            n_train=self.n_train_spin.value(),
            n_val=self.n_val_spin.value(),
            methods=tuple(m for m, box in self.method_boxes.items() if box.isChecked()),
            study=self.study_edit.text().strip(),
            masked=self.masked_box.isChecked(),
            switch=self.switch_box.isChecked(),
            architecture=self.architecture_combo.currentText(),
            alpha=self.alpha_spin.value(),
            epochs=self.epochs_spin.value(),
            switch_epoch=self.switch_spin.value(),
            seeds=self.seeds_edit.text(),
            eval_every_steps=self.eval_spin.value(),
            train_sizes=self.sizes_edit.text().strip(),
            test_split=self.test_split_edit.text().strip(),
            test_fraction=self.test_fraction_spin.value(),
            keep_models=self.keep_models_box.isChecked(),
            workers=self.workers_spin.value(),
            cpus_per_cell=self.cpus_spin.value(),
        )

    def _edited(self) -> None:
        """A widget changed: enable what the new values use, and write them to the model."""
        if self._showing:
            return
        settings = self.settings()
        self.study_row.setEnabled(settings.needs_study)
        self.test_fraction_spin.setEnabled(not settings.test_split)
        self.alpha_spin.setEnabled(settings.has_alpha)
        self.alpha_label.setEnabled(settings.has_alpha)
        self.model.set_form(settings)

    def _show_used(self, warnings: str) -> None:
        self.used_label.setText(warnings)
        self.used_label.setVisible(bool(warnings))

    def _show_trainer(self) -> None:
        self.trainer_label.setText(trainer_text(Path(self.trainer_edit.text())))

    # --- files ----------------------------------------------------------------------------------

    def _choose_trainer(self) -> None:
        if pick_file(self.trainer_edit, "Trainer model", KERAS_FILES):
            self._show_trainer()

    def _choose_dataset(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Dataset folder")
        if folder:
            self.dataset_edit.setText(folder)

    def _choose_study(self) -> None:
        pick_file(self.study_edit, "Study file", STUDY_FILES)


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
