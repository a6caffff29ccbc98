"""The Compare screen's sidebar: the study and Trainer files, the trials marked bad, stimuli and annotators.

A panel of :class:`rbdm_gui.screens.comparison_view.ComparisonView`. It shows what
:class:`rbdm_gui.workflows.comparison.ComparisonSession` has open and hands the user's choices on as
signals; it never writes its own lists back from the session's news (the fills block the signals).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1–§5.3.2.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from rbdm_gui.screens._layout import KERAS_FILES, STUDY_FILES, pick_file, row
from rbdm_gui.workflows.figures import map_colours
from tracking.study import Study

__all__ = ["INCLUDE_FLAGGED_TEXT", "ComparisonSidebar"]

#: The toggle's text; the count of trials marked bad follows it in brackets.
INCLUDE_FLAGGED_TEXT = "Include trials marked bad"
_FLAGGED_TIP = (
    "Trials the experimenter marked bad in the live monitor are left out, as if never recorded "
    "(rbdm compare leaves them out too; --include-flagged compares them)."
)


class ComparisonSidebar(QWidget):
    """Study and Trainer files, the trials-marked-bad toggle, the stimulus list and the annotator boxes.

    Signals
    -------
    open_requested()
        *Open*, or a study or Trainer file was chosen: open the files in the fields.
    set_chosen(str)
        Another stimulus set of the study was chosen.
    include_flagged_toggled(bool)
        The "Include trials marked bad" box was switched by the user.
    stimulus_chosen(str)
        The user picked a stimulus in the list.
    annotators_chosen(list)
        The annotators whose boxes are checked, in list order, after the user (un)checked one.
    """

    open_requested = Signal()
    set_chosen = Signal(str)
    include_flagged_toggled = Signal(bool)
    stimulus_chosen = Signal(str)
    annotators_chosen = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(260)
        self.setMaximumWidth(380)
        layout = QVBoxLayout(self)
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

    def _study_group(self) -> QGroupBox:
        box = QGroupBox("Study")
        form = QFormLayout(box)
        self.study_edit = QLineEdit()
        choose = _small_button("…", "Choose a study file")
        choose.clicked.connect(self._choose_study)
        form.addRow("File", row(self.study_edit, choose))
        self.set_combo = QComboBox()
        self.set_combo.setToolTip("Sessions on one stimulus set saw the same images.")
        self.set_combo.activated.connect(lambda index: self.set_chosen.emit(self.set_combo.itemText(index)))
        self.set_label = QLabel("Stimulus set")
        form.addRow(self.set_label, self.set_combo)
        self.set_label.hide()
        self.set_combo.hide()
        self.flagged_box = QCheckBox(INCLUDE_FLAGGED_TEXT)
        self.flagged_box.setToolTip(_FLAGGED_TIP)
        self.flagged_box.toggled.connect(self.include_flagged_toggled.emit)
        form.addRow(self.flagged_box)
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(self.open_requested.emit)
        form.addRow(self.open_button)
        return box

    def _model_group(self) -> QGroupBox:
        box = QGroupBox("Trainer model")
        form = QFormLayout(box)
        self.model_edit = QLineEdit()
        choose = _small_button("…", "Choose a trained .keras model")
        choose.clicked.connect(self._choose_model)
        form.addRow("File", row(self.model_edit, choose))
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        form.addRow(self.model_label)
        return box

    # --- showing the session ----------------------------------------------------------------------

    def show_study(self, study: Study, *, annotators: Sequence[str], stimulus_id: str | None) -> None:
        """Fill the stimulus sets, the stimuli and the annotators (``annotators`` checked) of ``study``."""
        with QSignalBlocker(self.set_combo):
            self.set_combo.clear()
            self.set_combo.addItems(list(study.stimulus_sets))
            self.set_combo.setCurrentText(study.stimulus_set)
        several = len(study.stimulus_sets) > 1
        self.set_combo.setVisible(several)
        self.set_label.setVisible(several)
        with QSignalBlocker(self.stimulus_list), QSignalBlocker(self.annotator_list):
            self.stimulus_list.clear()
            self.stimulus_list.addItems(list(study.stimuli))
            self.annotator_list.clear()
            colours = map_colours(study.annotators, annotators=study.annotators)
            for annotator in study.annotators:
                item = QListWidgetItem(annotator)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                checked = annotator in annotators
                item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
                item.setForeground(QColor(colours[annotator]))
                self.annotator_list.addItem(item)
        self.show_stimulus(stimulus_id)

    def show_stimulus(self, stimulus_id: str | None) -> None:
        """Mark ``stimulus_id`` as the current row (no signal)."""
        matches = (
            []
            if stimulus_id is None
            else self.stimulus_list.findItems(stimulus_id, Qt.MatchFlag.MatchExactly)
        )
        with QSignalBlocker(self.stimulus_list):
            if matches:
                self.stimulus_list.setCurrentItem(matches[0])
            else:
                self.stimulus_list.setCurrentRow(-1)

    def show_flagged(self, count: int | None, *, included: bool, tooltip: str = "") -> None:
        """The toggle's state and, once a study is open (``count`` not None), how many are marked bad."""
        with QSignalBlocker(self.flagged_box):
            self.flagged_box.setChecked(included)
        self.flagged_box.setText(
            INCLUDE_FLAGGED_TEXT if count is None else f"{INCLUDE_FLAGGED_TEXT} ({count})"
        )
        self.flagged_box.setToolTip(f"{_FLAGGED_TIP}\n{tooltip}" if tooltip else _FLAGGED_TIP)

    # --- the user's choices -----------------------------------------------------------------------

    def _on_stimulus_row(self, row: int) -> None:
        item = self.stimulus_list.item(row)
        if item is not None:
            self.stimulus_chosen.emit(item.text())

    def _on_annotator_checked(self, item: QListWidgetItem) -> None:
        checked = [
            self.annotator_list.item(k).text()
            for k in range(self.annotator_list.count())
            if self.annotator_list.item(k).checkState() == Qt.CheckState.Checked
        ]
        self.annotators_chosen.emit(checked)

    def _choose_study(self) -> None:
        if pick_file(self.study_edit, "Study file", STUDY_FILES):
            self.open_requested.emit()

    def _choose_model(self) -> None:
        if pick_file(self.model_edit, "Trainer model", KERAS_FILES):
            self.open_requested.emit()


def _small_button(text: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setToolTip(tip)
    button.setFixedWidth(32)
    return button


