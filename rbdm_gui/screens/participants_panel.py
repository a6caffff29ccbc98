"""The study's participants and their sessions, on the setup screen (RBDM §5.3.1: one session each).

The panel lists every participant of the study file with their state on the chosen stimulus set
(no session / unfinished k of n / finished, the session's date and tracker) and says what "Start" will
do for the participant in the form: resume an unfinished session, or begin a new one, with a warning
when the new session would repeat a stored stimulus order. The study is read by the setup screen's
model (:meth:`rbdm_gui.workflows.study_setup.StudySetup.read_participants`); nothing is read or written
here.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGroupBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from tracking.recording import ParticipantState

__all__ = ["ParticipantsPanel"]

_COLUMNS = ("Participant", "State", "Session", "Started (UTC)", "Tracker")
_STATE_COLOURS = {"finished": "#1b5e20", "unfinished": "#8a4b00", "none": "#444444"}


class ParticipantsPanel(QGroupBox):
    """Participants of the study with their session state, and what Start will do.

    Signals
    -------
    chosen(str)
        The user clicked a participant: the setup form takes the pseudonym.
    review_requested(int)
        "Review" of the chosen participant's session: the session id.
    """

    chosen = Signal(str)
    review_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Participants", parent)
        self.states: list[ParticipantState] = []
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(_COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.setMinimumHeight(96)
        self.table.setMaximumHeight(200)
        self.table.cellClicked.connect(self._on_click)
        self.table.itemSelectionChanged.connect(self._update_review)
        layout.addWidget(self.table)
        self.plan_label = QLabel()
        self.plan_label.setWordWrap(True)
        layout.addWidget(self.plan_label)
        self.review_button = QPushButton("Review session…")
        self.review_button.setToolTip("The chosen participant's session report: timing and gaze per trial.")
        self.review_button.setEnabled(False)
        self.review_button.clicked.connect(self._review)
        layout.addWidget(self.review_button)
        self.warning_label = QLabel()
        self.warning_label.setWordWrap(True)
        self.warning_label.setStyleSheet("color: #8a4b00; font-weight: bold;")
        layout.addWidget(self.warning_label)

    def show_participants(self, states: Sequence[ParticipantState], *, plan_text: str, warning: str) -> None:
        """Show the participants read from the study, what Start does (or why not), and a warning."""
        self.states = list(states)
        self._fill_table()
        self._update_review()
        self.plan_label.setText(plan_text)
        self.warning_label.setText(warning)

    def _update_review(self) -> None:
        row = self.table.currentRow()
        ok = 0 <= row < len(self.states) and self.states[row].session_id is not None
        self.review_button.setEnabled(ok)

    def _fill_table(self) -> None:
        self.table.setRowCount(len(self.states))
        for row, state in enumerate(self.states):
            cells = (
                state.pseudonym,
                state.text,
                "" if state.session_id is None else f"{state.session_id} ({state.n_sessions} in all)",
                state.created_utc[:16].replace("T", " "),
                state.tracker,
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column == 1:
                    item.setForeground(QColor(_STATE_COLOURS.get(state.state, "#444444")))
                self.table.setItem(row, column, item)
        if not self.states:
            self.table.setRowCount(0)

    def _on_click(self, row: int, column: int) -> None:
        if 0 <= row < len(self.states):
            self.chosen.emit(self.states[row].pseudonym)

    def _review(self) -> None:
        row = self.table.currentRow()
        if 0 <= row < len(self.states) and self.states[row].session_id is not None:
            self.review_requested.emit(int(self.states[row].session_id))  # type: ignore[arg-type]
