"""The setup screen's Stimuli group: the stimulus set, its split, how many, and the label set."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QWidget,
)

from analysis.labels import LABELS
from rbdm_gui.screens._layout import row
from rbdm_gui.screens.setup_form import SetupPanel, set_text, spin
from rbdm_gui.screens.workers import Task, run_task
from rbdm_gui.workflows.study_setup import INT_LIMITS, SYNTHETIC_LIMITS, StudySetup, read_splits

__all__ = ["StimuliPanel"]

_SYNTHETIC, _FOLDER = "Synthetic faces (embedded)", "Dataset folder"


class StimuliPanel(SetupPanel):
    """The stimuli of the session (RBDM §5.3.1) and the labels the keys 1–n give.

    The embedded synthetic faces (how many per label, drawn how large) or a dataset folder, whose splits
    are read on a worker thread when the folder is chosen; the split (empty for the dataset's last);
    at most how many (a seeded random choice); the label set.
    """

    aspects = frozenset({"settings", "splits"})

    def __init__(self, model: StudySetup, parent: QWidget | None = None) -> None:
        super().__init__("Stimuli and labels", model, parent)
        self._split_task: Task | None = None
        form = QFormLayout(self)
        self.source_combo = QComboBox()
        self.source_combo.addItems([_SYNTHETIC, _FOLDER])
        form.addRow("Stimulus set", self.source_combo)
        form.addRow("", self._source_stack())
        self.split_combo = QComboBox()
        self.split_combo.setEditable(True)
        self.split_combo.setToolTip("Split to label; empty for the dataset's last split.")
        form.addRow("Split", self.split_combo)
        self.max_spin = spin(INT_LIMITS["max_stimuli"])
        self.max_spin.setSpecialValueText("all")
        form.addRow("At most", self.max_spin)
        form.addRow("Label set", self._label_grid())
        with self.showing():
            self.show_model("splits")
            self.show_model("settings")
        self._connect()

    def _source_stack(self) -> QStackedWidget:
        self.source_stack = QStackedWidget()
        synthetic = QWidget()
        self.faces_spin = spin(SYNTHETIC_LIMITS["n_per_label"], " per label")
        self.face_size_spin = spin(SYNTHETIC_LIMITS["size_px"], " px")
        synthetic_row = QHBoxLayout(synthetic)
        synthetic_row.setContentsMargins(0, 0, 0, 0)
        synthetic_row.addWidget(self.faces_spin)
        synthetic_row.addWidget(self.face_size_spin)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("FERPlus, CK+, AffectNet or <split>/<label>/ images")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._choose_folder)
        self.source_stack.addWidget(synthetic)
        self.source_stack.addWidget(row(self.folder_edit, browse))
        return self.source_stack

    def _label_grid(self) -> QWidget:
        labels = QWidget()
        grid = QGridLayout(labels)
        grid.setContentsMargins(0, 0, 0, 0)
        self.label_boxes: dict[str, QCheckBox] = {}
        for k, label in enumerate(LABELS):
            check = QCheckBox(label)
            self.label_boxes[label] = check
            grid.addWidget(check, k // 4, k % 4)
        return labels

    def _connect(self) -> None:
        model, edit = self.model, self.edit
        self.source_combo.currentIndexChanged.connect(edit(self._on_source))
        self.faces_spin.valueChanged.connect(edit(lambda n: model.set_stimuli(n_per_label=n)))
        self.face_size_spin.valueChanged.connect(edit(lambda size: model.set_stimuli(size_px=size)))
        self.folder_edit.textChanged.connect(edit(lambda text: model.set_stimuli(folder=text)))
        self.folder_edit.editingFinished.connect(self.refresh_splits)
        self.split_combo.currentTextChanged.connect(edit(lambda text: model.update(split=text)))
        self.max_spin.valueChanged.connect(edit(lambda n: model.update(max_stimuli=n)))
        for label, box in self.label_boxes.items():
            box.toggled.connect(edit(lambda on, label=label: model.set_label(label, on)))

    def show_model(self, aspect: str) -> None:
        settings, stimuli = self.model.settings, self.model.stimuli
        if aspect == "splits":
            self.split_combo.clear()
            self.split_combo.addItems(list(self.model.splits))
        self.source_combo.setCurrentText(_SYNTHETIC if stimuli.synthetic else _FOLDER)
        self.source_stack.setCurrentIndex(0 if stimuli.synthetic else 1)
        self.faces_spin.setValue(stimuli.n_per_label)
        self.face_size_spin.setValue(stimuli.size_px)
        set_text(self.folder_edit, stimuli.folder)
        if self.split_combo.currentText().strip() != settings.split:
            self.split_combo.setCurrentText(settings.split)
        self.max_spin.setValue(settings.max_stimuli)
        for label, box in self.label_boxes.items():
            box.setChecked(label in settings.labels)

    def _on_source(self, _index: int) -> None:
        self.model.set_stimuli(synthetic=self.source_combo.currentText() == _SYNTHETIC)
        self.refresh_splits()

    def refresh_splits(self) -> None:
        """Offer the splits of the chosen stimulus set (a dataset folder is read on a worker thread)."""
        folder = self.model.stimuli.folder
        if self.model.stimuli.synthetic or not folder:
            return
        if self._split_task is not None:
            self._split_task.cancel()
        self._split_task = run_task(
            lambda progress, cancelled: read_splits(folder),
            on_result=self.model.set_splits,
            on_error=lambda err: self.model.set_problem(str(err)),
        )

    def _choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Dataset folder", self.folder_edit.text())
        if path:
            self.folder_edit.setText(path)
            self.refresh_splits()
