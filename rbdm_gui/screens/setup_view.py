"""The study setup screen: study file, participant, stimuli, labels, tracker, speech, screen, seed.

The screen is a Qt-free model, :class:`~rbdm_gui.workflows.study_setup.StudySetup` (the
:class:`~rbdm_gui.workflows.settings.StudySettings` as edited, the study's participants, what Start
does), shown by one panel per group: :class:`~rbdm_gui.screens.setup_study_panel.StudyPanel`,
:class:`~rbdm_gui.screens.setup_session_panel.SessionPanel`,
:class:`~rbdm_gui.screens.setup_screen_panel.ScreenPanel`,
:class:`~rbdm_gui.screens.setup_stimuli_panel.StimuliPanel`,
:class:`~rbdm_gui.screens.setup_tracker_panel.TrackerPanel` and
:class:`~rbdm_gui.screens.setup_speech_panel.SpeechPanel`. :class:`SetupView` lays them out, turns the
model's start requests into Qt signals, and opens stored sessions' reports. The settings are saved
(JSON in the user's config folder) when a session starts and when the app closes.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QScreen
from PySide6.QtWidgets import QHBoxLayout, QScrollArea, QVBoxLayout, QWidget

from rbdm_gui.screens.labeling_view import SessionReport
from rbdm_gui.screens.setup_screen_panel import ScreenPanel
from rbdm_gui.screens.setup_session_panel import SessionPanel
from rbdm_gui.screens.setup_speech_panel import SpeechPanel
from rbdm_gui.screens.setup_stimuli_panel import StimuliPanel
from rbdm_gui.screens.setup_study_panel import StudyPanel
from rbdm_gui.screens.setup_tracker_panel import TrackerPanel
from rbdm_gui.workflows.settings import StudySettings
from rbdm_gui.workflows.study_setup import StartRequest, StudySetup
from tracking.errors import StoreError

__all__ = ["SetupView"]


class SetupView(QWidget):
    """The study setup screen.

    Parameters
    ----------
    settings : StudySettings
        Shown at first.
    screen : QScreen, optional
        Fills in the screen geometry ("This screen" button; at once when ``prefill_screen``).
    prefill_screen : bool
        Take the screen geometry from ``screen`` now (first start: nothing saved yet).
    settings_file : Path, optional
        Where :meth:`save` writes (the user's config folder by default).

    Attributes
    ----------
    model : StudySetup
        The screen's state and policy; the panels show it and write the user's edits back.

    Signals
    -------
    start_requested(object)
        The user pressed "Start session"; carries the checked, saved :class:`StudySettings`.
        An unfinished session of the participant is resumed.
    new_session_requested(object)
        The user pressed "New session": the same, but a new session is begun even when one is unfinished.
    study_path_changed(str)
        The study file (resolved path) changed; other screens follow it.
    monitor_requested
        "Live monitor": open the experimenter's monitor of the session that runs or starts next.
    """

    start_requested = Signal(object)
    new_session_requested = Signal(object)
    study_path_changed = Signal(str)
    monitor_requested = Signal()

    def __init__(
        self,
        settings: StudySettings,
        *,
        screen: QScreen | None = None,
        prefill_screen: bool = False,
        settings_file: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model = StudySetup(settings, settings_file=settings_file)
        self.review_dialog: SessionReport | None = None
        self._participants_timer = QTimer(self)
        self._participants_timer.setSingleShot(True)
        self._participants_timer.setInterval(150)
        self._participants_timer.timeout.connect(self.refresh_participants)
        self._build(screen)
        self.model.changed.subscribe(self._on_changed)
        self.model.start_requested.subscribe(self._on_start_requested)
        self.model.study_path_changed.subscribe(self.study_path_changed.emit)
        self.stimuli_panel.refresh_splits()
        self.refresh_participants()
        if prefill_screen:
            self.use_screen()

    def _build(self, screen: QScreen | None) -> None:
        model = self.model
        self.study_panel = StudyPanel(model)
        self.session_panel = SessionPanel(model)
        self.screen_panel = ScreenPanel(model, screen=screen)
        self.stimuli_panel = StimuliPanel(model)
        self.tracker_panel = TrackerPanel(model)
        self.speech_panel = SpeechPanel(model)
        self.study_panel.participants.review_requested.connect(self.review_session)
        self.session_panel.monitor_requested.connect(self.monitor_requested.emit)
        self._expose_widgets()
        content = QWidget()
        columns = QHBoxLayout(content)
        # two independent columns (each group at its own height): who, when and where; what and how
        for panels in (
            (self.study_panel, self.session_panel, self.screen_panel),
            (self.stimuli_panel, self.tracker_panel, self.speech_panel),
        ):
            column = QVBoxLayout()
            for panel in panels:
                column.addWidget(panel)
            column.addStretch(1)
            columns.addLayout(column, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

    def _expose_widgets(self) -> None:
        """The panels' widgets under the names the app, the tests and the screenshot script use."""
        study, session, screen = self.study_panel, self.session_panel, self.screen_panel
        stimuli, tracker, voice = self.stimuli_panel, self.tracker_panel, self.speech_panel
        self.study_edit, self.participant_edit = study.study_edit, study.participant_edit
        self.participant_hint, self.participants = study.participant_hint, study.participants
        self.design_combo, self.seed_spin = session.design_combo, session.seed_spin
        self.problem_label, self.hint_label = session.problem_label, session.hint_label
        self.start_button, self.new_button = session.start_button, session.new_button
        self.monitor_button = session.monitor_button
        self.width_spin, self.height_spin = screen.width_spin, screen.height_spin
        self.diagonal_spin, self.distance_spin = screen.diagonal_spin, screen.distance_spin
        self.geometry_info = screen.geometry_info
        self.source_combo, self.folder_edit = stimuli.source_combo, stimuli.folder_edit
        self.faces_spin, self.face_size_spin = stimuli.faces_spin, stimuli.face_size_spin
        self.split_combo, self.max_spin = stimuli.split_combo, stimuli.max_spin
        self.label_boxes = stimuli.label_boxes
        self.driver_combo, self.option_editors = tracker.driver_combo, tracker.option_editors
        self.detector_combo, self.detector_info = tracker.detector_combo, tracker.detector_info
        self.calibrate_check, self.tracker_info = tracker.calibrate_check, tracker.tracker_info
        self.recogniser_combo, self.vosk_edit = voice.recogniser_combo, voice.vosk_edit
        self.microphone_combo, self.level_bar = voice.microphone_combo, voice.level_bar
        self.speech_notice = voice.speech_notice

    # --- settings in and out --------------------------------------------------------------------

    def set_settings(self, settings: StudySettings) -> None:
        """Show ``settings`` (a dataset folder's splits are read on a worker thread)."""
        self.model.set_settings(settings)
        self.stimuli_panel.refresh_splits()

    def settings(self) -> StudySettings:
        """The settings as shown (other trackers' options that cannot be read are left out).

        Raises
        ------
        ValueError
            For an option of the chosen tracker that cannot be read (the message names it).
        """
        return self.model.entered_settings()

    def save(self) -> Path | None:
        """Save the settings as shown; returns the file, or None when they cannot be read."""
        return self.model.save()

    @Slot()
    def request_start(self) -> None:
        """Check and save the settings, then ask for a session (``start_requested``): resume or begin."""
        self.model.request_start()

    @Slot()
    def request_new_session(self) -> None:
        """Check and save the settings, then ask for a new session (``new_session_requested``)."""
        self.model.request_start(new_session=True)

    def _on_start_requested(self, request: StartRequest) -> None:
        signal = self.new_session_requested if request.new_session else self.start_requested
        signal.emit(request.settings)

    def show_problem(self, text: str) -> None:
        """Show why a session could not start (until the next start, or another tracker is chosen)."""
        self.model.show_problem(text)

    # --- participants ---------------------------------------------------------------------------

    def _on_changed(self, aspect: str) -> None:
        if aspect == "start":  # re-read the study shortly after the last edit that changes what Start does
            self._participants_timer.start()

    @Slot()
    def refresh_participants(self) -> None:
        """Show the study's participants, what Start does, and the label keys (also after a session)."""
        self._participants_timer.stop()
        self.model.read_participants()

    @Slot(int)
    def review_session(self, session_id: int) -> SessionReport | None:
        """Open the report of a stored session (phase timing, gaze per trial); None when it cannot be read."""
        try:
            outcome = self.model.session_report(session_id)
        except (StoreError, ValueError) as err:
            self.model.set_problem(str(err))
            return None
        dialog = SessionReport(outcome.report, summary=outcome.summary, quality=outcome.quality, parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        self.review_dialog = dialog
        return dialog

    # --- screen, tracker, microphone ------------------------------------------------------------

    @Slot()
    def use_screen(self) -> None:
        """Fill in the screen geometry Qt reports."""
        self.screen_panel.use_screen()

    @Slot()
    def test_tracker(self) -> None:
        """Connect the chosen tracker on a worker thread; show the sampling rate it reports, or why not."""
        self.tracker_panel.test_tracker()

    def stop_meter(self) -> None:
        """Close the microphone of the level meter."""
        self.speech_panel.stop_meter()
