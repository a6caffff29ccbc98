"""The desktop app: the main window, and one labeling session from setup to report (RBDM §5.3.1).

``rbdm gui`` (or :func:`main`) opens the main window on the study setup screen, filled with the
saved settings (the embedded default on first start: synthetic faces, the mouse as tracker,
pocketsphinx, a study file in the user's data folder). "Start session" runs a
:class:`SessionRun`:

1. the stimuli are decoded on a worker thread (with progress; cancellable);
2. the study file is opened and the session is planned: the participant's unfinished session on the
   same stimulus set is resumed, or a new one gets the participant's counterbalanced order
   (:func:`tracking.recording.plan_session`; a notice when it repeats a stored order);
3. the tracker connects and the speech recogniser loads on a worker thread (no recogniser or no
   microphone: a notice, and the keyboard path);
4. only now is the session row written (:func:`tracking.recording.begin_session`), naming the tracker
   and recogniser really in use; the tracker streams into the store for the whole session; the
   optional 9-point calibration/validation runs, then the full-screen labeling screen;
5. at the end (or on "Quit session") every finished trial is committed, the devices are closed,
   and the session report shows intended vs. measured phase durations and dropped frames.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCursor, QGuiApplication, QImage, QScreen
from PySide6.QtWidgets import QApplication, QProgressDialog, QWidget

from analysis.geometry import ScreenGeometry
from rbdm_gui.screens._layout import keys_text
from rbdm_gui.screens.calibration_view import CalibrationView
from rbdm_gui.screens.labeling_view import (
    LabelingView,
    SessionOutcome,
    SessionReport,
    screen_refresh,
    session_outcome,
    to_qimage,
)
from rbdm_gui.screens.main_window import MainWindow, Page
from rbdm_gui.screens.setup_view import SetupView
from rbdm_gui.screens.workers import ProgressCallback, Task, run_task
from rbdm_gui.workflows import speech
from rbdm_gui.workflows.logs import third_party_warnings_to
from rbdm_gui.workflows.monitor_model import FixationTap
from rbdm_gui.workflows.settings import (
    KEYBOARD_ONLY,
    StudySettings,
    build_driver,
    data_dir,
    load_settings,
    settings_path,
)
from tracking import records
from tracking.drivers.base import DriverEvent, GazeDriver
from tracking.fixations import DETECTORS
from tracking.protocol import LabelingProtocol, Phase, PhaseOnset, ProtocolTiming
from tracking.recording import (
    Cancelled,
    GazeRecorder,
    LabelingSession,
    SessionPlan,
    SpeechGate,
    SpokenLabel,
    StimulusSet,
    begin_session,
    gaze_recording,
    load_stimuli,
    plan_session,
)
from tracking.store import SessionStore
from tracking.validation import ValidationProcedure

__all__ = ["CursorProbe", "SessionOutcome", "SessionRun", "StudioApp", "default_pages", "main"]

DriverFactory = Callable[[StudySettings, ScreenGeometry], GazeDriver]


class CursorProbe(QObject):
    """Reads the mouse cursor on the GUI thread, in screen pixels, for the mouse simulator's thread.

    The simulator calls :meth:`position` and :meth:`button_held` from its own thread; they return the
    values last read here (a tuple and a bool: safe to hand between threads).
    """

    def __init__(self, screen: QScreen, *, rate_hz: float = 250.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._screen = screen
        self._position: tuple[float, float] | None = None
        self._held = False
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self.read)
        self._timer.start(max(1, round(1000.0 / rate_hz)))
        self.read()

    def read(self) -> None:
        """Take the cursor position now (logical coordinates → the screen's physical pixels)."""
        point = QCursor.pos(self._screen)
        origin = self._screen.geometry().topLeft()
        dpr = self._screen.devicePixelRatio()
        self._position = ((point.x() - origin.x()) * dpr, (point.y() - origin.y()) * dpr)
        self._held = QGuiApplication.mouseButtons() != Qt.MouseButton.NoButton

    def position(self) -> tuple[float, float] | None:
        """The cursor in screen pixels (any thread)."""
        return self._position

    def button_held(self) -> bool:
        """Whether a mouse button is held: a simulated blink (any thread)."""
        return self._held

    def stop(self) -> None:
        """Stop reading."""
        self._timer.stop()


def session_settings(
    settings: StudySettings,
    stimuli: StimulusSet,
    *,
    timing: ProtocolTiming,
    refresh_hz: float,
    frame_counted: bool,
) -> dict[str, Any]:
    """What a new session stores about itself: stimulus set, timings, frames, where the image is drawn."""
    geometry = settings.geometry()
    rect = geometry.stimulus_rect()
    return {
        records.SETTING_STIMULUS_SET: settings.stimulus_set_key(),
        records.SETTING_STIMULI: stimuli.spec,
        records.SETTING_SPLIT: stimuli.split,
        "seed": settings.seed,
        "order_design": settings.order_design,
        "calibrate": settings.calibrate,
        "labels": list(settings.labels),
        "timing": timing.as_dict(),
        "refresh_hz": refresh_hz,
        "frame_counted": frame_counted,
        records.SETTING_STIMULUS_SIZE_PX: 1200.0,
        records.SETTING_STIMULUS_RECT: {
            "x_px": rect.x_px,
            "y_px": rect.y_px,
            "width_px": rect.width_px,
            "height_px": rect.height_px,
        },
        "stimulus_scale": rect.width_px / 1200.0,
        "detector": settings.detector,
        "driver_options": dict(settings.driver_options.get(settings.driver, {})),
        "microphone": settings.microphone,
    }


class SessionRun(QObject):
    """One labeling session, step by step, from the setup's settings to the report.

    Parameters
    ----------
    settings : StudySettings
        Checked settings from the setup screen.
    screen : QScreen, optional
        The screen to label on (the primary screen by default).
    make_driver : callable, optional
        Builds the gaze driver from the settings and geometry; by default from
        :data:`tracking.drivers.DRIVERS`, the mouse simulator reading a :class:`CursorProbe`.
    make_procedure : callable, optional
        Builds the validation procedure (tests pass shorter timings).
    timing : ProtocolTiming, optional
        The protocol's phase lengths (RBDM §5.3.1 by default).
    open_audio : callable, optional
        ``open_audio(device, on_block)`` starts the audio source of spoken labels; the microphone
        (:func:`rbdm_gui.workflows.speech.open_microphone`) by default, a recorded file in tests.
    parent_window : QWidget, optional
        Parent of the progress and report dialogs.
    show_report : bool
        Open the report dialog at the end.
    new_session : bool
        Begin a new session even when the participant has an unfinished one (by default it is resumed).

    Signals
    -------
    ended(object)
        A :class:`SessionOutcome` (also after "Quit session").
    failed(str)
        The session could not start or run; the text says what to do.
    notice(str)
        Something the experimenter should know (speech unavailable: keyboard only).
    recording_started
        The tracker streams into the store and the labeling screen exists: the live monitor can attach.
    """

    ended = Signal(object)
    failed = Signal(str)
    notice = Signal(str)
    recording_started = Signal()

    def __init__(
        self,
        settings: StudySettings,
        *,
        screen: QScreen | None = None,
        make_driver: DriverFactory | None = None,
        make_procedure: Callable[[ScreenGeometry], ValidationProcedure] | None = None,
        timing: ProtocolTiming | None = None,
        open_audio: speech.OpenAudio | None = None,
        parent_window: QWidget | None = None,
        show_report: bool = True,
        new_session: bool = False,
    ) -> None:
        super().__init__(parent_window)
        self.settings = settings
        self._new_session = new_session
        self.plan: SessionPlan | None = None
        self._stored_settings: dict[str, Any] = {}
        self.geometry = settings.geometry()
        self._screen = screen or QGuiApplication.primaryScreen()
        self._make_driver = make_driver
        self._make_procedure = make_procedure
        self.timing = timing or ProtocolTiming()
        self._open_audio = open_audio or speech.open_microphone
        self._parent_window = parent_window
        self._show_report = show_report
        self.refresh_hz, self.frame_counted = screen_refresh(self._screen)
        self._stack = ExitStack()
        self._task: Task | None = None
        self._progress: QProgressDialog | None = None
        self.images: dict[str, QImage] = {}
        self.store: SessionStore | None = None
        self.session_id = -1
        self.start_position = 0
        self.driver: GazeDriver | None = None
        self.recorder: GazeRecorder | None = None
        self.session: LabelingSession | None = None
        self.gate: SpeechGate | None = None
        self.speech_notice = ""
        self.probe: CursorProbe | None = None
        self.calibration_view: CalibrationView | None = None
        self.labeling_view: LabelingView | None = None
        self.report_dialog: SessionReport | None = None
        self.outcome: SessionOutcome | None = None
        self.driver_events: list[DriverEvent] = []  # appended on the driver's thread (list.append is atomic)
        self.fixation_tap: FixationTap | None = None
        self.recalibration_pending = False
        self._closed = False

    # --- 1. stimuli ------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin: decode the stimuli (the other steps follow by themselves)."""
        settings = self.settings

        def load(
            progress: ProgressCallback, cancelled: Callable[[], bool]
        ) -> tuple[StimulusSet, dict[str, QImage]]:
            stimuli = load_stimuli(
                settings.stimuli,
                split=settings.split or None,
                max_stimuli=settings.max_stimuli,
                seed=settings.seed,
                progress=progress,
                cancelled=cancelled,
            )
            return stimuli, {key: to_qimage(image) for key, image in stimuli.images.items()}

        self._progress = QProgressDialog("Preparing the stimuli…", "Cancel", 0, 1000, self._parent_window)
        self._progress.setWindowModality(Qt.WindowModality.WindowModal)
        self._progress.setMinimumDuration(400)
        self._task = run_task(
            load, on_result=self._loaded, on_error=self._fail, on_progress=self._on_progress
        )
        self._progress.canceled.connect(self._cancel_loading)

    def _on_progress(self, fraction: float, text: str) -> None:
        dialog = self._progress  # setValue may process events, and the result may close the dialog
        if dialog is not None:
            dialog.setLabelText(f"Preparing the stimuli… {text}")
            dialog.setValue(min(999, round(fraction * 1000)))

    def _cancel_loading(self) -> None:
        if self._task is not None and not self._task.done:
            self._task.cancel()
            self._fail(Cancelled("Loading the stimuli was cancelled."))

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.canceled.disconnect(self._cancel_loading)
            self._progress.close()
            self._progress = None

    # --- 2. the session in the store -------------------------------------------------------------

    def _loaded(self, loaded: tuple[StimulusSet, dict[str, QImage]]) -> None:
        self._close_progress()
        stimuli, self.images = loaded
        try:
            self._open_session(stimuli)
            self.driver = self._build_driver()
        except Exception as err:  # any failure to start: show it, release what was opened
            self._fail(err)
            return
        self._connect()

    def _open_session(self, stimuli: StimulusSet) -> None:
        """Open the study and plan the session; nothing is written until recording starts."""
        settings = self.settings
        path = settings.resolved_study_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.store = self._stack.enter_context(SessionStore(path))
        self._stored_settings = session_settings(
            settings,
            stimuli,
            timing=self.timing,
            refresh_hz=self.refresh_hz,
            frame_counted=self.frame_counted,
        )
        plan = self.plan = plan_session(
            self.store,
            settings.participant,
            stimulus_set=settings.stimulus_set_key(),
            stimulus_ids=stimuli.ids,
            design=settings.order_design,
            seed=settings.seed,
            new=self._new_session,
        )
        self.start_position = plan.start_position
        missing = [s for s in plan.stimulus_order if s not in self.images]
        if missing:
            raise ValueError(
                f"the session to resume shows {len(missing)} stimuli that are not in the stimulus set now "
                f"(e.g. {missing[0]!r}). Choose the stimulus set it was started with."
            )
        if plan.warning:
            self.notice.emit(plan.warning)

    def _build_driver(self) -> GazeDriver:
        if self._make_driver is not None:
            return self._make_driver(self.settings, self.geometry)
        probe = None
        if self.settings.driver == "mouse" and self._screen is not None:
            probe = self.probe = CursorProbe(self._screen, parent=self)
        return build_driver(
            self.settings.driver,
            self.settings.driver_options.get(self.settings.driver, {}),
            geometry=self.geometry,
            position_source=probe.position if probe is not None else None,
            button_source=probe.button_held if probe is not None else None,
        )

    # --- 3. tracker and recogniser ---------------------------------------------------------------

    def _connect(self) -> None:
        driver, settings = self.driver, self.settings
        assert driver is not None

        def connect(progress: ProgressCallback, cancelled: Callable[[], bool]) -> tuple[Any, str]:
            driver.connect()
            if settings.recogniser == KEYBOARD_ONLY:
                return None, ""
            try:
                recogniser = speech.build_recogniser(
                    settings.recogniser, labels=settings.labels, model_dir=settings.vosk_model_dir
                )
            except speech.SpeechUnavailable as err:
                return None, keys_text(str(err), len(settings.labels))
            return recogniser, ""

        self._task = run_task(connect, on_result=self._connected, on_error=self._fail)

    def _connected(self, result: tuple[Any, str]) -> None:
        recogniser, self.speech_notice = result
        try:
            self._start_recording(recogniser)
        except Exception as err:  # the driver could not stream, the microphone failed badly...
            self._fail(err)
            return
        for text in (self.speech_notice, self._tracker_notice()):
            if text:
                self.notice.emit(text)
        self.recording_started.emit()
        if self.settings.calibrate:
            self._calibrate()
        else:
            self._label()

    def _tracker_notice(self) -> str:
        """What the connected tracker reports: its sampling rate, and a missing calibration."""
        driver = self.driver
        assert driver is not None
        text = f"{self.settings.driver} tracker connected at {driver.nominal_rate_hz:g} Hz."
        if getattr(driver, "calibrated", None) is False:
            text += (
                " It reports no calibration: its samples are invalid until it is calibrated. Calibrate it "
                "with the tracker's own software before the first trial."
            )
        return text

    # --- 4. recording, calibration, labeling ---------------------------------------------------------

    def _start_recording(self, recogniser: Any) -> None:
        assert self.store is not None and self.driver is not None and self.plan is not None
        used_recogniser = KEYBOARD_ONLY
        if recogniser is not None and self._start_speech(recogniser):
            used_recogniser = self.settings.recogniser
        self.session_id, self.start_position = begin_session(
            self.store,
            self.plan,
            settings={**self._stored_settings, "rate_hz": self.driver.nominal_rate_hz},
            geometry=self.geometry,
            tracker=self.settings.driver,
            recogniser=used_recogniser,
        )
        detector = self.fixation_tap = FixationTap(DETECTORS[self.settings.detector](self.geometry))
        self._stack.callback(self.driver.close)
        self.recorder = self._stack.enter_context(
            gaze_recording(self.store, self.session_id, self.driver, detector)
        )
        protocol = LabelingProtocol(
            self.store.session(self.session_id).stimulus_order,
            start_position=self.start_position,
            timing=self.timing,
            refresh_hz=self.refresh_hz,
            frame_counted=self.frame_counted,
            labels=self.settings.labels,
        )
        self.session = LabelingSession(self.store, self.session_id, protocol, self.recorder)
        self.labeling_view = LabelingView(
            self.session,
            self.images,
            geometry=self.geometry,
            refresh_hz=self.refresh_hz,
            speech_notice=self.speech_notice,
        )
        self.labeling_view.finished.connect(self.finish)
        self.labeling_view.quit_requested.connect(self.finish)
        self._stack.callback(self.driver.add_event_listener(self.labeling_view.driver_events.posted.emit))
        self._stack.callback(self.driver.add_event_listener(self.driver_events.append))
        if self.gate is not None:
            self.gate.attach(protocol)
        protocol.phase_started.subscribe(self._recalibrate_if_asked)

    def _start_speech(self, recogniser: Any) -> bool:
        """Open the microphone into a speech gate; False (and a notice) when there is none."""
        gate = SpeechGate(recogniser, self._deliver_spoken, on_error=self._speech_problem)
        try:
            microphone = self._open_audio(self.settings.microphone, gate.feed)
        except speech.SpeechUnavailable as err:
            gate.stop()
            self.speech_notice = keys_text(str(err), len(self.settings.labels))
            return False
        self.gate = gate
        self._stack.callback(gate.stop)  # after the microphone has closed (the stack unwinds backwards)
        self._stack.callback(microphone.close)
        return True

    def _deliver_spoken(self, spoken: SpokenLabel) -> None:
        """Speech-gate thread: hand a recognition to the labeling view (which exists once it listens)."""
        view = self.labeling_view
        if view is not None:
            view.recognitions.posted.emit(spoken)

    def _speech_problem(self, message: str) -> None:
        view = self.labeling_view
        if view is not None:
            view.speech_problems.posted.emit(message)

    def _show_full_screen(self, widget: QWidget) -> None:
        if self._screen is not None:
            widget.setScreen(self._screen)
            widget.setGeometry(self._screen.geometry())
        widget.showFullScreen()
        widget.raise_()
        widget.activateWindow()

    def _calibrate(self) -> None:
        assert self.recorder is not None and self.store is not None
        view = self.calibration_view = CalibrationView(
            self.recorder,
            self.store,
            self.session_id,
            geometry=self.geometry,
            refresh_hz=self.refresh_hz,
            driver=self.driver,
            make_procedure=self._make_procedure,
        )
        view.finished.connect(self._calibrated)
        self._show_full_screen(view)
        view.setFocus()

    def _calibrated(self, result: object) -> None:
        if self.calibration_view is not None:
            self.calibration_view.close()
            self.calibration_view.deleteLater()
        self._label()

    def recalibrate_before_next_trial(self) -> None:
        """Calibrate and validate again when the next trial begins (the live monitor's control)."""
        self.recalibration_pending = True

    def _recalibrate_if_asked(self, onset: PhaseOnset) -> None:
        if self.recalibration_pending and onset.phase is Phase.BLANK and not self._closed:
            QTimer.singleShot(0, self._recalibrate_now)  # after this frame, not inside it

    def _recalibrate_now(self) -> None:
        view = self.labeling_view
        if not self.recalibration_pending or view is None or self._closed:
            return
        self.recalibration_pending = False
        view.pause()  # the trial just begun is shown again, from its first blank, after the calibration
        self._calibrate()

    def _label(self) -> None:
        assert self.labeling_view is not None and self.driver is not None
        self._show_full_screen(self.labeling_view)
        if self.labeling_view.protocol.phase is not Phase.IDLE:  # back from a re-calibration
            self.labeling_view.resume()
            return
        uncalibrated = getattr(self.driver, "calibrated", None) is False
        self.labeling_view.start(hold=self._tracker_notice() if uncalibrated else "")

    # --- 5. the end ------------------------------------------------------------------------------

    def finish(self) -> None:
        """Commit what is finished, close the devices and the store, show the report (idempotent)."""
        if self._closed:
            return
        self._closed = True
        view = self.labeling_view
        if view is not None:
            view.stop()
        if self.probe is not None:
            self.probe.stop()
        try:
            outcome = self._close_session()
        except Exception as err:  # the store failed while closing: say so
            self.failed.emit(f"The session could not be closed cleanly: {err}")
            return
        finally:
            if view is not None:
                view.close()
                view.deleteLater()
        self.outcome = outcome
        if outcome is not None and self._show_report:
            self.report_dialog = SessionReport(
                outcome.report, summary=outcome.summary, quality=outcome.quality, parent=self._parent_window
            )
            self.report_dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self.report_dialog.show()
        self.ended.emit(outcome)

    def _close_session(self) -> SessionOutcome | None:
        try:
            if self.gate is not None:
                self.gate.close()
            if self.session is not None:
                self.driver_stop()
                self.session.close()
            outcome = self._outcome() if self.store is not None and self.session_id >= 0 else None
        finally:
            self._stack.close()
        return outcome

    def driver_stop(self) -> None:
        """Stop streaming before the last commits, so no sample is still on its way."""
        if self.driver is not None:
            self.driver.stop()

    def _outcome(self) -> SessionOutcome:
        assert self.store is not None
        return session_outcome(
            self.store,
            self.session_id,
            participant=self.settings.participant,
            timing=self.timing,
            refresh_hz=self.refresh_hz,
            events=self.driver_events,
        )

    def _fail(self, error: BaseException) -> None:
        self._close_progress()
        if self._closed:
            return
        self._closed = True
        for view in (self.calibration_view, self.labeling_view):
            if view is not None:
                view.close()
        try:
            if self.session is not None:
                self.driver_stop()
                self.session.close()
        finally:
            self._stack.close()
        self.failed.emit(str(error))


def default_pages(app: StudioApp) -> list[Page]:
    """The main window's screens in navigation order, as ``(title, factory)`` pairs.

    The study setup comes first; the comparison view, the experiment launcher and the prototypes
    view follow as further pairs.
    """
    return [
        ("Study setup", app.make_setup_view),
        ("Compare", app.make_comparison_view),
        ("Experiments", app.make_experiment_view),
        ("Temporal prototypes", _lazy_view("rbdm_gui.screens.prototypes_view", "PrototypesView")),
    ]


def _lazy_view(module: str, name: str) -> Callable[[], QWidget]:
    """A page factory that imports its screen's module when the screen is first shown.

    The screens behind the first one pull in pyqtgraph, scikit-learn and (for training) TensorFlow;
    importing them only when chosen keeps the first window quick (``python -m benchmarks.startup``).
    """

    def build() -> QWidget:
        view: QWidget = getattr(importlib.import_module(module), name)()
        return view

    return build


class StudioApp(QObject):
    """The app: settings, the main window and the session that runs from it.

    Parameters
    ----------
    settings_file : Path, optional
        The settings file (the user's config folder by default).
    pages : sequence of Page, optional
        The main window's screens; :func:`default_pages` by default.

    Signals
    -------
    study_changed(str)
        The study file chosen in Study setup changed; Compare and Experiments follow it at once.
    """

    study_changed = Signal(str)

    def __init__(self, *, settings_file: Path | None = None, pages: Sequence[Page] | None = None) -> None:
        super().__init__()
        self.settings_file = settings_file
        self.notice = ""
        try:
            self.settings = load_settings(settings_file)
        except ValueError as err:
            self.settings, self.notice = StudySettings(), str(err)
        self.first_start = not (settings_file or settings_path()).exists()
        self.setup_view: SetupView | None = None
        self.run: SessionRun | None = None
        self.monitor: Any = None  # the live monitor's SessionMonitor, once opened
        self.monitor_holder: QWidget | None = None
        self.window = MainWindow(default_pages(self) if pages is None else pages)
        self.window.closing.connect(self._on_closing)
        self.window.monitor_requested.connect(self.open_monitor)
        self.window.resize(1280, 800)
        if self.notice:
            self.window.notify(self.notice)

    def make_setup_view(self) -> SetupView:
        """The study setup screen, wired to start sessions."""
        view = SetupView(
            self.settings,
            screen=QGuiApplication.primaryScreen(),
            prefill_screen=self.first_start,
            settings_file=self.settings_file,
        )
        view.start_requested.connect(self.start_session)
        view.study_path_changed.connect(self.study_changed.emit)
        view.new_session_requested.connect(lambda settings: self.start_session(settings, new_session=True))
        view.monitor_requested.connect(self.open_monitor)
        self.setup_view = view
        return view

    def make_comparison_view(self) -> QWidget:
        """The Compare screen, on the study file chosen in Study setup (and following later changes)."""
        from rbdm_gui.screens.comparison_view import ComparisonView

        view = ComparisonView()
        self.study_changed.connect(view.follow_study)
        return view

    def make_experiment_view(self) -> QWidget:
        """The Experiments screen (its gaze Trainees' study follows Study setup)."""
        from rbdm_gui.screens.experiment_view import ExperimentView

        view = ExperimentView()
        self.study_changed.connect(view.follow_study)
        return view

    def start_session(self, settings: StudySettings, *, new_session: bool = False) -> SessionRun | None:
        """Run a labeling session with ``settings`` (one at a time).

        The participant's unfinished session is resumed, unless ``new_session``.
        """
        if self.run is not None:
            self.window.notify("A session is already running.")
            return None
        self.settings = settings
        run = self.run = SessionRun(settings, parent_window=self.window, new_session=new_session)
        run.ended.connect(self._ended)
        run.failed.connect(self._failed)
        run.notice.connect(self.window.notify)
        run.recording_started.connect(self._watch_run)
        self.window.notify("Preparing the session…")
        run.start()
        return run

    def open_monitor(self) -> Any:
        """Show the experimenter's live monitor (on another screen, else docked); it follows the sessions.

        Returns its :class:`~rbdm_gui.screens.monitor_session.SessionMonitor`.
        """
        from rbdm_gui.screens.monitor_session import SessionMonitor
        from rbdm_gui.screens.monitor_view import MonitorPanel, place_monitor

        if self.monitor is None:
            panel = MonitorPanel()
            self.monitor = SessionMonitor(panel)
            self.monitor_holder = place_monitor(panel, self.window)
        elif self.monitor_holder is not None:
            self.monitor_holder.show()
            self.monitor_holder.raise_()
        self._watch_run()
        return self.monitor

    def _watch_run(self) -> None:
        if self.monitor is not None and self.run is not None:
            self.monitor.attach(self.run)

    def _ended(self, outcome: SessionOutcome | None) -> None:
        self.run = None
        self.window.notify(outcome.summary if outcome is not None else "The session ended.")
        if self.setup_view is not None:
            self.setup_view.refresh_participants()

    def _failed(self, message: str) -> None:
        self.run = None
        self.window.notify(message)
        if self.setup_view is not None:
            self.setup_view.show_problem(message)
            self.setup_view.refresh_participants()

    def _on_closing(self) -> None:
        if self.run is not None:
            self.run.finish()
        if self.monitor is not None:
            self.monitor.close()
            if self.monitor_holder is not None:
                self.monitor_holder.close()
        if self.setup_view is not None:
            self.setup_view.save()
            self.setup_view.stop_meter()


def main(argv: Sequence[str] | None = None, *, settings_file: Path | None = None) -> int:
    """Open the main window and run the event loop; returns the exit status."""
    app = QApplication.instance() or QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName("RBDM Studio")
    with third_party_warnings_to(data_dir() / "logs" / "third-party-warnings.log"):
        studio = StudioApp(settings_file=settings_file)
        studio.window.show()
        return int(app.exec())
