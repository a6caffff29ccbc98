"""The setup screen's Session group: stimulus order and seed, Start / New session / Live monitor."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from rbdm_gui.screens._layout import row
from rbdm_gui.screens.setup_form import GREY, RED, SetupPanel, spin
from rbdm_gui.workflows.study_setup import INT_LIMITS, ORDER_DESIGN_TEXT, StudySetup
from tracking.protocol import ORDER_DESIGNS

__all__ = ["SessionPanel"]


class SessionPanel(SetupPanel):
    """How the participants' stimulus orders are made, the study seed, and the buttons that start.

    "Start session" reads "Resume session" when the participant has an unfinished session; "New session"
    then begins another. Why the last start failed, or what is wrong with the settings, shows above them.

    Signals
    -------
    monitor_requested
        "Live monitor" was pressed.
    """

    aspects = frozenset({"settings", "problem", "participants"})
    monitor_requested = Signal()

    def __init__(self, model: StudySetup, parent: QWidget | None = None) -> None:
        super().__init__("Session", model, parent)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.design_combo = QComboBox()
        for name in ORDER_DESIGNS:
            self.design_combo.addItem(f"{name}: {ORDER_DESIGN_TEXT.get(name, name)}", name)
        self.design_combo.setToolTip(
            "How each participant's stimulus order is made. One order for all lets order effects "
            "confound the comparison of annotators."
        )
        form.addRow("Stimulus order", self.design_combo)
        self.seed_spin = spin(INT_LIMITS["seed"])
        self.seed_spin.setToolTip(
            "The study's seed: of the stimulus choice and, with the design, of the orders."
        )
        form.addRow("Study seed", self.seed_spin)
        layout.addLayout(form)
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet(RED)
        layout.addWidget(self.problem_label)
        layout.addWidget(self._buttons())
        self.hint_label = QLabel()
        self.hint_label.setWordWrap(True)
        self.hint_label.setStyleSheet(GREY)
        layout.addWidget(self.hint_label)
        layout.addStretch(1)
        with self.showing():
            self.show_model("settings")
        self.design_combo.currentIndexChanged.connect(
            self.edit(lambda _: model.update(order_design=str(self.design_combo.currentData())))
        )
        self.seed_spin.valueChanged.connect(self.edit(lambda value: model.update(seed=value)))

    def _buttons(self) -> QWidget:
        self.start_button = QPushButton("Start session")
        self.start_button.setDefault(True)
        self.start_button.setMinimumHeight(36)
        self.start_button.clicked.connect(lambda: self.model.request_start())
        self.new_button = QPushButton("New session")
        self.new_button.setMinimumHeight(36)
        self.new_button.setToolTip("Begin a new session even though this participant has an unfinished one.")
        self.new_button.clicked.connect(lambda: self.model.request_start(new_session=True))
        self.monitor_button = QPushButton("Live monitor")
        self.monitor_button.setMinimumHeight(36)
        self.monitor_button.setToolTip(
            "The experimenter's view of the session: gaze, fixations, data quality, labels, Table 1 so far."
        )
        self.monitor_button.clicked.connect(self.monitor_requested.emit)
        return row(self.start_button, self.new_button, self.monitor_button)

    def show_model(self, aspect: str) -> None:
        model = self.model
        if aspect == "problem":
            self.problem_label.setText(model.problem)
        elif aspect == "participants":
            resumes = model.participants.resumes
            self.start_button.setText("Resume session" if resumes else "Start session")
            self.new_button.setVisible(resumes)
            self.hint_label.setText(model.start_hint())
        else:
            settings = model.settings
            self.design_combo.setCurrentIndex(max(self.design_combo.findData(settings.order_design), 0))
            self.seed_spin.setValue(settings.seed)
