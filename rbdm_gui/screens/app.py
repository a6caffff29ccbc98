"""The desktop app: the main window, and the Qt shell of one labeling session (RBDM §5.3.1).

``rbdm gui`` (or :func:`main`) opens the main window on the study setup screen, filled with the
saved settings (the embedded default on first start: synthetic faces, the mouse as tracker,
pocketsphinx, a study file in the user's data folder). "Start session" runs a :class:`SessionRun`,
the Qt shell of :class:`rbdm_gui.workflows.session.SessionLifecycle`, which holds the steps and
their order (load → open/resume → connect → record → calibrate → label → commit → report). The shell
adds what needs Qt: the stimuli are decoded and the devices connected on worker threads (with a
cancellable progress dialog), the calibration and labeling screens are shown full screen, and the
report dialog opens at the end.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCursor, QGuiApplication, QImage, QScreen
from PySide6.QtWidgets import QApplication, QProgressDialog, QWidget

from analysis.geometry import ScreenGeometry
from rbdm_gui.screens.calibration_view import CalibrationView
from rbdm_gui.screens.labeling_view import LabelingView, SessionReport, screen_refresh, to_qimage
from rbdm_gui.screens.main_window import MainWindow, Page
from rbdm_gui.screens.painting import paint_on_gui_thread
from rbdm_gui.screens.setup_view import SetupView
from rbdm_gui.screens.workers import ProgressCallback, Task, run_task
from rbdm_gui.workflows import speech
from rbdm_gui.workflows.logs import third_party_warnings_to
from rbdm_gui.workflows.session import (
    Connection,
    DriverFactory,
    SessionLifecycle,
    SessionOutcome,
    SessionStep,
)
from rbdm_gui.workflows.settings import StudySettings, build_driver, data_dir, load_settings, settings_path
from tracking.drivers.base import DriverEvent, GazeDriver
from tracking.protocol import ProtocolTiming
from tracking.recording import Cancelled, SpokenLabel, StimulusSet
from tracking.validation import ValidationProcedure

__all__ = ["CursorProbe", "SessionRun", "StudioApp", "default_pages", "main"]


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


class _FromLifecycle:
    """A read-only attribute of :class:`SessionRun` that is its lifecycle's attribute of the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, run: SessionRun | None, owner: type | None = None) -> Any:
        return self if run is None else getattr(run.lifecycle, self._name)


class SessionRun(QObject):
    """The Qt shell of one labeling session: worker threads, windows and signals over its lifecycle.

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

    Attributes
    ----------
    lifecycle : SessionLifecycle
        The steps and the state; ``settings``, ``store``, ``session_id``, ``driver``, ``recorder``,
        ``session``, ``gate``... read through to it (the live monitor reads them).
    """

    ended = Signal(object)
    failed = Signal(str)
    notice = Signal(str)
    recording_started = Signal()

    settings = _FromLifecycle()
    geometry = _FromLifecycle()
    timing = _FromLifecycle()
    refresh_hz = _FromLifecycle()
    frame_counted = _FromLifecycle()
    plan = _FromLifecycle()
    store = _FromLifecycle()
    session_id = _FromLifecycle()
    start_position = _FromLifecycle()
    driver = _FromLifecycle()
    recorder = _FromLifecycle()
    session = _FromLifecycle()
    gate = _FromLifecycle()
    speech_notice = _FromLifecycle()
    fixation_tap = _FromLifecycle()
    driver_events = _FromLifecycle()
    recalibration_pending = _FromLifecycle()

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
        self._screen = screen or QGuiApplication.primaryScreen()
        refresh_hz, frame_counted = screen_refresh(self._screen)
        self.lifecycle = lifecycle = SessionLifecycle(
            settings,
            make_driver=make_driver or self._cursor_driver,
            timing=timing,
            refresh_hz=refresh_hz,
            frame_counted=frame_counted,
            open_audio=open_audio,
            new_session=new_session,
            call_soon=lambda callback: QTimer.singleShot(0, callback),
        )
        self._make_procedure = make_procedure
        self._parent_window = parent_window
        self._show_report = show_report
        self._task: Task | None = None
        self._progress: QProgressDialog | None = None
        self.images: dict[str, QImage] = {}
        self.probe: CursorProbe | None = None
        self.calibration_view: CalibrationView | None = None
        self.labeling_view: LabelingView | None = None
        self.report_dialog: SessionReport | None = None
        self.outcome: SessionOutcome | None = None
        lifecycle.step_changed.subscribe(self._on_step)
        lifecycle.notice.subscribe(self.notice.emit)
        lifecycle.ended.subscribe(self._ended)
        lifecycle.failed.subscribe(self._failed)
        lifecycle.spoken.subscribe(self._deliver_spoken)
        lifecycle.speech_problem.subscribe(self._speech_problem)
        lifecycle.driver_event.subscribe(self._deliver_driver_event)

    def _cursor_driver(self, settings: StudySettings, geometry: ScreenGeometry) -> GazeDriver:
        """The settings' driver; the mouse simulator reads the cursor through a :class:`CursorProbe`."""
        probe = None
        if settings.driver == "mouse" and self._screen is not None:
            probe = self.probe = CursorProbe(self._screen, parent=self)
        return build_driver(
            settings.driver,
            settings.driver_options.get(settings.driver, {}),
            geometry=geometry,
            position_source=probe.position if probe is not None else None,
            button_source=probe.button_held if probe is not None else None,
        )

    # --- stimuli, study, devices: worker threads -----------------------------------------------------

    def start(self) -> None:
        """Begin: decode the stimuli (the other steps follow by themselves)."""
        read = self.lifecycle.read_stimuli

        def load(
            progress: ProgressCallback, cancelled: Callable[[], bool]
        ) -> tuple[StimulusSet, dict[str, QImage]]:
            stimuli = read(progress, cancelled)
            return stimuli, {key: to_qimage(image) for key, image in stimuli.images.items()}

        self._progress = QProgressDialog("Preparing the stimuli…", "Cancel", 0, 1000, self._parent_window)
        self._progress.setWindowModality(Qt.WindowModality.WindowModal)
        self._progress.setMinimumDuration(400)
        self._task = run_task(load, on_result=self._loaded, on_error=self.fail, on_progress=self._on_progress)
        self._progress.canceled.connect(self._cancel_loading)

    def _on_progress(self, fraction: float, text: str) -> None:
        dialog = self._progress  # setValue may process events, and the result may close the dialog
        if dialog is not None:
            dialog.setLabelText(f"Preparing the stimuli… {text}")
            dialog.setValue(min(999, round(fraction * 1000)))

    def _cancel_loading(self) -> None:
        if self._task is not None and not self._task.done:
            self._task.cancel()
            self.fail(Cancelled("Loading the stimuli was cancelled."))

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.canceled.disconnect(self._cancel_loading)
            self._progress.close()
            self._progress = None

    def _loaded(self, loaded: tuple[StimulusSet, dict[str, QImage]]) -> None:
        self._close_progress()
        if self.lifecycle.closed:
            return
        stimuli, self.images = loaded
        try:
            self.lifecycle.open(stimuli)
        except Exception as err:  # any failure to start: show it, release what was opened
            self.fail(err)
            return
        connect = self.lifecycle.connect_devices
        self._task = run_task(
            lambda progress, cancelled: connect(), on_result=self._connected, on_error=self.fail
        )

    def _connected(self, connection: Connection) -> None:
        lifecycle = self.lifecycle
        if lifecycle.closed:
            return
        try:
            session = lifecycle.record(connection)
            view = self.labeling_view = LabelingView(
                session,
                self.images,
                geometry=lifecycle.geometry,
                refresh_hz=lifecycle.refresh_hz,
                speech_notice=lifecycle.speech_notice,
            )
        except Exception as err:  # the driver could not stream, the microphone failed badly...
            self.fail(err)
            return
        view.finished.connect(self.finish)
        view.quit_requested.connect(self.finish)
        self.recording_started.emit()
        lifecycle.start_trials(view)

    # --- threads of the devices: posted to the labeling view ---------------------------------------

    def _deliver_spoken(self, spoken: SpokenLabel) -> None:
        """Speech-gate thread: hand a recognition to the labeling view (which exists once it listens)."""
        view = self.labeling_view
        if view is not None:
            view.recognitions.posted.emit(spoken)

    def _speech_problem(self, message: str) -> None:
        view = self.labeling_view
        if view is not None:
            view.speech_problems.posted.emit(message)

    def _deliver_driver_event(self, event: DriverEvent) -> None:
        view = self.labeling_view
        if view is not None:
            view.driver_events.posted.emit(event)

    # --- windows -------------------------------------------------------------------------------------

    def _on_step(self, step: SessionStep) -> None:
        if step is SessionStep.CALIBRATING:
            self._calibrate()
        elif step is SessionStep.LABELING and self.labeling_view is not None:
            self._show_full_screen(self.labeling_view)  # the lifecycle then starts or resumes it

    def _show_full_screen(self, widget: QWidget) -> None:
        if self._screen is not None:
            widget.setScreen(self._screen)
            widget.setGeometry(self._screen.geometry())
        widget.showFullScreen()
        widget.raise_()
        widget.activateWindow()

    def _calibrate(self) -> None:
        lifecycle = self.lifecycle
        assert lifecycle.recorder is not None and lifecycle.store is not None
        view = self.calibration_view = CalibrationView(
            lifecycle.recorder,
            lifecycle.store,
            lifecycle.session_id,
            geometry=lifecycle.geometry,
            refresh_hz=lifecycle.refresh_hz,
            driver=lifecycle.driver,
            make_procedure=self._make_procedure,
        )
        view.finished.connect(self._calibrated)
        self._show_full_screen(view)
        view.setFocus()

    def _calibrated(self, result: object) -> None:
        if self.calibration_view is not None:
            self.calibration_view.close()
            self.calibration_view.deleteLater()
        self.lifecycle.calibration_done()

    def recalibrate_before_next_trial(self) -> None:
        """Calibrate and validate again when the next trial begins (the live monitor's control)."""
        if not self.lifecycle.closed:
            self.lifecycle.recalibrate_before_next_trial()

    # --- the end -------------------------------------------------------------------------------------

    def finish(self) -> None:
        """Commit what is finished, close the devices and the store, show the report (idempotent)."""
        if self.lifecycle.closed:
            return
        if self.probe is not None:
            self.probe.stop()
        self.lifecycle.finish()  # ends in _ended, or in _failed when the store fails while closing

    def fail(self, error: BaseException) -> None:
        """Stop after ``error``: the finished trials stay stored; ``failed`` tells the text."""
        self._close_progress()
        if self.probe is not None:
            self.probe.stop()
        self.lifecycle.fail(error)

    def _ended(self, outcome: SessionOutcome | None) -> None:
        view = self.labeling_view
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

    def _failed(self, message: str) -> None:
        for view in (self.calibration_view, self.labeling_view):
            if view is not None:
                view.close()
        self.failed.emit(message)


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
    paint_on_gui_thread()  # no repaint waits for Qt's helper threads on busy cores (issue 22)
    app = QApplication.instance() or QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setApplicationName("RBDM Studio")
    with third_party_warnings_to(data_dir() / "logs" / "third-party-warnings.log"):
        studio = StudioApp(settings_file=settings_file)
        studio.window.show()
        return int(app.exec())
