"""The setup screen's Study group: the study file, the participant's pseudonym, the participants."""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QFormLayout, QLabel, QLineEdit, QPushButton, QWidget

from rbdm_gui.screens._layout import row
from rbdm_gui.screens.participants_panel import ParticipantsPanel
from rbdm_gui.screens.setup_form import GREY, RED, SetupPanel, set_text
from rbdm_gui.workflows.study_setup import PSEUDONYM_HINT, PSEUDONYM_MAX_CHARS, StudySetup, pseudonym_problem

__all__ = ["StudyPanel"]


class StudyPanel(SetupPanel):
    """The study file (new or existing), the pseudonym (explained while typed) and the study's participants.

    ``participants`` (:class:`ParticipantsPanel`) carries the click on a participant, which fills in the
    pseudonym, and the request to review a session.
    """

    aspects = frozenset({"settings", "participants"})

    def __init__(self, model: StudySetup, parent: QWidget | None = None) -> None:
        super().__init__("Study", model, parent)
        form = QFormLayout(self)
        self.study_edit = QLineEdit()
        self.study_edit.setPlaceholderText("study.sqlite in your data folder")
        choose = QPushButton("Choose…")
        choose.clicked.connect(self._choose_study)
        form.addRow("Study file", row(self.study_edit, choose))
        self.participant_edit = QLineEdit()
        self.participant_edit.setMaxLength(PSEUDONYM_MAX_CHARS)
        self.participant_edit.setToolTip(PSEUDONYM_HINT)
        form.addRow("Participant", self.participant_edit)
        self.participant_hint = QLabel(PSEUDONYM_HINT)
        self.participant_hint.setWordWrap(True)
        self.participant_hint.setStyleSheet(GREY)
        form.addRow("", self.participant_hint)
        self.participants = ParticipantsPanel()
        self.participants.setFlat(True)
        self.participants.chosen.connect(self.participant_edit.setText)
        form.addRow(self.participants)
        with self.showing():
            self.show_model("settings")
        self.study_edit.textChanged.connect(self.edit(lambda text: model.update(study_path=text)))
        self.participant_edit.textChanged.connect(self._check_pseudonym)
        self.participant_edit.textChanged.connect(self.edit(lambda text: model.update(participant=text)))

    def show_model(self, aspect: str) -> None:
        if aspect == "participants":
            read = self.model.participants
            self.participants.show_participants(
                read.states, plan_text=read.plan_text(), warning=read.warning()
            )
            return
        settings = self.model.settings
        set_text(self.study_edit, settings.study_path)
        set_text(self.participant_edit, settings.participant)

    def _check_pseudonym(self, text: str) -> None:
        """Say what is wrong with the pseudonym as typed, instead of dropping characters silently."""
        problem = pseudonym_problem(text)
        self.participant_hint.setText(problem or PSEUDONYM_HINT)
        self.participant_hint.setStyleSheet(RED if problem else GREY)

    def _choose_study(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Study file (new or existing)",
            self.study_edit.text(),
            "RBDM Studio study (*.sqlite *.db)",
            options=QFileDialog.Option.DontConfirmOverwrite,
        )
        if path:
            self.study_edit.setText(path)
