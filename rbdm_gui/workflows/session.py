"""One labeling session's lifecycle, without Qt: load → open/resume → connect → calibrate → label → report.

:class:`SessionLifecycle` holds the order of a session's steps (RBDM §5.3.1) and what is allowed
when; the app's :class:`~rbdm_gui.screens.app.SessionRun` is its Qt shell (progress dialog, worker
threads, full-screen windows), and a script or a test runs it with a headless screen:

1. :meth:`SessionLifecycle.read_stimuli` decodes the stimuli (any thread; progress and cancel);
2. :meth:`SessionLifecycle.open` opens the study and plans the session: the participant's unfinished
   session on the same stimulus set is resumed, or a new one gets the participant's counterbalanced
   order (:func:`tracking.recording.plan_session`; a notice when it repeats a stored order), and the
   gaze driver is built; nothing is written yet;
3. :meth:`SessionLifecycle.connect_devices` connects the tracker and loads the speech recogniser (any
   thread; no recogniser: a notice, and the keyboard path);
4. :meth:`SessionLifecycle.record` writes the session row (:func:`tracking.recording.begin_session`)
   naming the tracker and recogniser really in use, and the tracker streams into the store from
   here to the end;
5. :meth:`SessionLifecycle.start_trials` shows the optional 9-point calibration/validation, then the
   labeling screen; the live monitor may ask for a re-calibration before the next trial;
6. :meth:`SessionLifecycle.finish` (at the end, or "Quit session") commits every finished trial,
   closes the devices and reports intended vs. measured phase durations and each trial's gaze;
   :meth:`SessionLifecycle.fail` does the same without the report: a failure never loses a stored
   trial.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (the labeling protocol).
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from analysis.geometry import ScreenGeometry
from rbdm_gui.workflows import speech
from rbdm_gui.workflows.monitor_model import FixationTap
from rbdm_gui.workflows.settings import KEYBOARD_ONLY, StudySettings, build_driver
from tracking import records
from tracking.drivers.base import DriverEvent, GazeDriver
from tracking.fixations import DETECTORS
from tracking.protocol import (
    LabelingProtocol,
    Listeners,
    Phase,
    PhaseOnset,
    ProtocolTiming,
    TimingReport,
    timing_report,
)
from tracking.recording import (
    GazeRecorder,
    LabelingSession,
    SessionPlan,
    SpeechGate,
    SpokenLabel,
    StimulusSet,
    TrialQuality,
    begin_session,
    gaze_recording,
    load_stimuli,
    plan_session,
    stimulus_settings,
    trial_quality,
)
from tracking.store import SessionStore

__all__ = [
    "Connection",
    "DriverFactory",
    "LabelingScreen",
    "SessionLifecycle",
    "SessionOutcome",
    "SessionStep",
    "session_outcome",
    "session_settings",
]

DriverFactory = Callable[[StudySettings, ScreenGeometry], GazeDriver]
#: Runs a callable soon, after the frame being presented (the Qt shell: a zero-delay timer).
CallSoon = Callable[[Callable[[], None]], None]


class SessionStep(enum.Enum):
    """Where a session is in its lifecycle."""

    NEW = "new"
    OPENED = "opened"  # study open, session planned, driver built: nothing written yet
    RECORDING = "recording"  # session row written, the tracker streams into the store
    CALIBRATING = "calibrating"
    LABELING = "labeling"
    ENDED = "ended"
    FAILED = "failed"


#: The steps each step may go on to (any step may fail; a running session may end).
_NEXT: dict[SessionStep, frozenset[SessionStep]] = {
    SessionStep.NEW: frozenset({SessionStep.OPENED, SessionStep.ENDED}),
    SessionStep.OPENED: frozenset({SessionStep.RECORDING, SessionStep.ENDED}),
    SessionStep.RECORDING: frozenset({SessionStep.CALIBRATING, SessionStep.LABELING, SessionStep.ENDED}),
    SessionStep.CALIBRATING: frozenset({SessionStep.LABELING, SessionStep.ENDED}),
    SessionStep.LABELING: frozenset({SessionStep.CALIBRATING, SessionStep.ENDED}),
    SessionStep.ENDED: frozenset(),
    SessionStep.FAILED: frozenset(),
}


class LabelingScreen(Protocol):
    """What shows the trials to the participant: the app's labeling view, or a headless frame loop.

    ``start`` starts the protocol (paused on ``hold``, a text to read first) and its frames;
    ``resume`` continues a paused protocol; ``pause`` abandons the trial on screen; ``stop`` stops
    the frames (the lifecycle closes the session).
    """

    def start(self, *, hold: str = "") -> None: ...

    def resume(self) -> None: ...

    def pause(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Connection:
    """The connected devices: the speech recogniser (None: keys only) and why speech is off, if it is."""

    recogniser: Any
    speech_notice: str


class SessionOutcome:
    """How a session ended: the report's numbers, each trial's gaze quality and a one-line summary."""

    def __init__(
        self,
        session_id: int,
        report: TimingReport,
        summary: str,
        finished: bool,
        quality: Sequence[TrialQuality] = (),
    ) -> None:
        self.session_id = session_id
        self.report = report
        self.summary = summary
        self.finished = finished
        self.quality = tuple(quality)


def session_outcome(
    store: SessionStore,
    session_id: int,
    *,
    participant: str,
    timing: ProtocolTiming | None = None,
    refresh_hz: float | None = None,
    events: Sequence[DriverEvent] = (),
) -> SessionOutcome:
    """The report of a stored session: phase timing, each trial's gaze, and a summary line.

    ``timing`` and ``refresh_hz`` default to what the session stored (its ``timing`` and ``refresh_hz``
    settings), so a finished session can be reviewed later from Study setup.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (phase durations).
    """
    session = store.session(session_id)
    trials = store.trials(session_id)
    frames = list(store.trial_frames(session_id).values())
    stored_timing = session.settings.get("timing")
    if timing is None:
        timing = ProtocolTiming(**stored_timing) if isinstance(stored_timing, dict) else ProtocolTiming()
    refresh = float(refresh_hz if refresh_hz is not None else session.settings.get("refresh_hz", 60.0))
    report = timing_report(trials, timing=timing, refresh_hz=refresh, frames=frames)
    total = len(session.stimulus_order)
    sources = Counter(t.label_source for t in trials)
    summary = (
        f"Participant {participant}, session {session_id}: {len(trials)} of {total} stimuli labelled "
        f"({sources['speech']} spoken, {sources['keyboard']} by key)."
    )
    quality = trial_quality(store, session_id, events=events)
    return SessionOutcome(session_id, report, summary, len(trials) == total, quality)


def session_settings(
    settings: StudySettings,
    stimuli: StimulusSet,
    *,
    timing: ProtocolTiming,
    refresh_hz: float,
    frame_counted: bool,
) -> dict[str, Any]:
    """What a new session stores about itself: stimulus set, timings, frames, where the image is drawn.

    The stimuli and their rectangle are :func:`tracking.recording.stimulus_settings`, the part that
    resuming and the study readers read back.
    """
    rect = settings.geometry().stimulus_rect()
    return {
        **stimulus_settings(settings.stimulus_set_key(), stimuli, rect),
        "seed": settings.seed,
        "order_design": settings.order_design,
        "calibrate": settings.calibrate,
        "labels": list(settings.labels),
        "timing": timing.as_dict(),
        "refresh_hz": refresh_hz,
        "frame_counted": frame_counted,
        records.SETTING_STIMULUS_SIZE_PX: 1200.0,
        "stimulus_scale": rect.width_px / 1200.0,
        "detector": settings.detector,
        "driver_options": dict(settings.driver_options.get(settings.driver, {})),
        "microphone": settings.microphone,
    }


def _default_driver(settings: StudySettings, geometry: ScreenGeometry) -> GazeDriver:
    if settings.driver == "mouse":
        raise ValueError(
            "the mouse tracker follows a position that the caller lends it; pass make_driver building "
            "tracking.drivers.MouseSimulator(position_source), or choose another tracker."
        )
    return build_driver(settings.driver, settings.driver_options.get(settings.driver, {}), geometry=geometry)


def _at_once(callback: Callable[[], None]) -> None:
    callback()


class SessionLifecycle:
    """One labeling session, step by step, from the setup's settings to the report (RBDM §5.3.1).

    Parameters
    ----------
    settings : StudySettings
        Checked settings from the setup screen.
    make_driver : callable, optional
        Builds the gaze driver from the settings and geometry; :data:`tracking.drivers.DRIVERS` with
        the settings' options by default.
    timing : ProtocolTiming, optional
        The protocol's phase lengths (RBDM §5.3.1 by default).
    refresh_hz : float
        The screen's refresh rate in Hz; the protocol counts phases in its frames.
    frame_counted : bool
        Whether ``refresh_hz`` is the screen's own (else phases are paced by time).
    open_audio : callable, optional
        ``open_audio(device, on_block)`` starts the audio source of spoken labels; the microphone
        (:func:`rbdm_gui.workflows.speech.open_microphone`) by default, a recorded file in tests.
    new_session : bool
        Begin a new session even when the participant has an unfinished one (by default it is resumed).
    call_soon : callable, optional
        ``call_soon(fn)`` runs ``fn`` after the frame being presented; the re-calibration asked for by
        the live monitor starts there, not inside the frame. At once by default.

    Notes
    -----
    Listeners (plain callables, called on the thread named):

    ``step_changed`` (:class:`SessionStep`, owner's thread)
        The session went on to a step; the shell shows the calibration or the labeling screen.
    ``notice`` (str, owner's thread)
        Something the experimenter should know (speech unavailable, the tracker's rate, a repeated order).
    ``ended`` (:class:`SessionOutcome` or None, owner's thread)
        The session is closed and its finished trials stored (None: it never recorded).
    ``failed`` (str, owner's thread)
        The session could not start, run or close; the text says what to do.
    ``spoken`` (:class:`~tracking.recording.SpokenLabel`), ``speech_problem`` (str): the speech gate's thread.
    ``driver_event`` (:class:`~tracking.drivers.base.DriverEvent`): the driver's thread.

    Methods called in the wrong step raise :class:`RuntimeError` naming the step.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1.
    """

    def __init__(
        self,
        settings: StudySettings,
        *,
        make_driver: DriverFactory | None = None,
        timing: ProtocolTiming | None = None,
        refresh_hz: float = 60.0,
        frame_counted: bool = True,
        open_audio: speech.OpenAudio | None = None,
        new_session: bool = False,
        call_soon: CallSoon | None = None,
    ) -> None:
        self.settings = settings
        self.geometry = settings.geometry()
        self.timing = timing or ProtocolTiming()
        self.refresh_hz, self.frame_counted = refresh_hz, frame_counted
        self._make_driver = make_driver or _default_driver
        self._open_audio = open_audio or speech.open_microphone
        self._new_session = new_session
        self._call_soon = call_soon or _at_once
        self._stack = ExitStack()
        self._stored_settings: dict[str, Any] = {}
        self.step = SessionStep.NEW
        self.plan: SessionPlan | None = None
        self.store: SessionStore | None = None
        self.session_id = -1
        self.start_position = 0
        self.driver: GazeDriver | None = None
        self.recorder: GazeRecorder | None = None
        self.session: LabelingSession | None = None
        self.gate: SpeechGate | None = None
        self.speech_notice = ""
        self.fixation_tap: FixationTap | None = None
        self.screen: LabelingScreen | None = None
        self.outcome: SessionOutcome | None = None
        self.driver_events: list[DriverEvent] = []  # appended on the driver's thread (list.append is atomic)
        self.recalibration_pending = False
        self.step_changed: Listeners[SessionStep] = Listeners()
        self.notice: Listeners[str] = Listeners()
        self.ended: Listeners[SessionOutcome | None] = Listeners()
        self.failed: Listeners[str] = Listeners()
        self.spoken: Listeners[SpokenLabel] = Listeners()
        self.speech_problem: Listeners[str] = Listeners()
        self.driver_event: Listeners[DriverEvent] = Listeners()

    @property
    def closed(self) -> bool:
        """Whether the session has ended or failed (nothing more happens)."""
        return self.step in (SessionStep.ENDED, SessionStep.FAILED)

    def _go(self, step: SessionStep) -> None:
        if step is not SessionStep.FAILED and step not in _NEXT[self.step]:
            raise RuntimeError(f"a session at step {self.step.value!r} cannot go on to {step.value!r}.")
        self.step = step
        self.step_changed.emit(step)

    def _expect(self, *steps: SessionStep, doing: str) -> None:
        if self.step not in steps:
            wanted = " or ".join(repr(s.value) for s in steps)
            raise RuntimeError(f"{doing} needs a session at step {wanted}; it is at {self.step.value!r}.")

    # --- 1. stimuli ----------------------------------------------------------------------------------

    def read_stimuli(
        self,
        progress: Callable[[float, str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
    ) -> StimulusSet:
        """Decode the settings' stimuli (any thread: changes nothing here).

        Raises
        ------
        tracking.recording.Cancelled
            When ``cancelled()`` turned true.
        """
        settings = self.settings
        return load_stimuli(
            settings.stimuli,
            split=settings.split or None,
            max_stimuli=settings.max_stimuli,
            seed=settings.seed,
            progress=progress,
            cancelled=cancelled,
        )

    # --- 2. the session in the store -----------------------------------------------------------------

    def open(self, stimuli: StimulusSet) -> SessionPlan:
        """Open the study, plan the session and build the driver; nothing is written yet.

        Raises
        ------
        ValueError
            When the session to resume shows stimuli that the stimulus set no longer has.
        """
        self._expect(SessionStep.NEW, doing="opening the study")
        settings = self.settings
        path = Path(settings.resolved_study_path())
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
        missing = [s for s in plan.stimulus_order if s not in stimuli.images]
        if missing:
            raise ValueError(
                f"the session to resume shows {len(missing)} stimuli that are not in the stimulus set now "
                f"(e.g. {missing[0]!r}). Choose the stimulus set it was started with."
            )
        self.driver = self._make_driver(settings, self.geometry)
        self._stack.callback(self.driver.close)  # also when connecting fails
        self._go(SessionStep.OPENED)
        if plan.warning:
            self.notice.emit(plan.warning)
        return plan

    # --- 3. tracker and recogniser -------------------------------------------------------------------

    def connect_devices(self) -> Connection:
        """Connect the tracker and load the recogniser (any thread: they may take seconds).

        Raises
        ------
        tracking.errors.DriverError
            When the tracker cannot connect (the text says what to do).
        """
        self._expect(SessionStep.OPENED, doing="connecting the tracker")
        assert self.driver is not None
        settings = self.settings
        self.driver.connect()
        if settings.recogniser == KEYBOARD_ONLY:
            return Connection(None, "")
        try:
            recogniser = speech.build_recogniser(
                settings.recogniser, labels=settings.labels, model_dir=settings.vosk_model_dir
            )
        except speech.SpeechUnavailable as err:
            return Connection(None, speech.keys_text(str(err), len(settings.labels)))
        return Connection(recogniser, "")

    def tracker_notice(self) -> str:
        """What the connected tracker reports: its sampling rate, and a missing calibration."""
        driver = self.driver
        assert driver is not None
        text = f"{self.settings.driver} tracker connected at {driver.nominal_rate_hz:g} Hz."
        if self.tracker_uncalibrated:
            text += (
                " It reports no calibration: its samples are invalid until it is calibrated. Calibrate it "
                "with the tracker's own software before the first trial."
            )
        return text

    @property
    def tracker_uncalibrated(self) -> bool:
        """Whether the tracker says it has no calibration (its ``calibrated`` is False)."""
        return getattr(self.driver, "calibrated", None) is False

    # --- 4. recording --------------------------------------------------------------------------------

    def record(self, connection: Connection) -> LabelingSession:
        """Write the session row and record the tracker into the store; returns the labeling session.

        The speech gate listens from here on when the recogniser and an audio source are there.
        """
        self._expect(SessionStep.OPENED, doing="starting the recording")
        assert self.store is not None and self.driver is not None and self.plan is not None
        self.speech_notice = connection.speech_notice
        used_recogniser = KEYBOARD_ONLY
        if connection.recogniser is not None and self._start_speech(connection.recogniser):
            used_recogniser = self.settings.recogniser
        self.session_id, self.start_position = begin_session(
            self.store,
            self.plan,
            settings={**self._stored_settings, "rate_hz": self.driver.nominal_rate_hz},
            geometry=self.geometry,
            tracker=self.settings.driver,
            recogniser=used_recogniser,
        )
        self.session = self._start_protocol()
        self._go(SessionStep.RECORDING)
        for text in (self.speech_notice, self.tracker_notice()):
            if text:
                self.notice.emit(text)
        return self.session

    def _start_protocol(self) -> LabelingSession:
        assert self.store is not None and self.driver is not None
        detector = self.fixation_tap = FixationTap(DETECTORS[self.settings.detector](self.geometry))
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
        self._stack.callback(self.driver.add_event_listener(self._on_driver_event))
        if self.gate is not None:
            self.gate.attach(protocol)
        protocol.phase_started.subscribe(self._recalibrate_if_asked)
        return LabelingSession(self.store, self.session_id, protocol, self.recorder)

    def _on_driver_event(self, event: DriverEvent) -> None:
        self.driver_events.append(event)
        self.driver_event.emit(event)

    def _start_speech(self, recogniser: Any) -> bool:
        """Open the microphone into a speech gate; False (and a notice) when there is none."""
        gate = SpeechGate(recogniser, self.spoken.emit, on_error=self.speech_problem.emit)
        try:
            microphone = self._open_audio(self.settings.microphone, gate.feed)
        except speech.SpeechUnavailable as err:
            gate.stop()
            self.speech_notice = speech.keys_text(str(err), len(self.settings.labels))
            return False
        self.gate = gate
        self._stack.callback(gate.stop)  # after the microphone has closed (the stack unwinds backwards)
        self._stack.callback(microphone.close)
        return True

    # --- 5. calibration and labeling -----------------------------------------------------------------

    def start_trials(self, screen: LabelingScreen) -> None:
        """Calibrate first when the settings ask for it, else label on ``screen`` at once."""
        self._expect(SessionStep.RECORDING, doing="starting the trials")
        self.screen = screen
        if self.settings.calibrate:
            self._go(SessionStep.CALIBRATING)
        else:
            self._label()

    def calibration_done(self) -> None:
        """The calibration/validation is over (or skipped): label, or go on with the trial it interrupted."""
        if self.closed:
            return
        self._expect(SessionStep.CALIBRATING, doing="ending the calibration")
        self._label()

    def _label(self) -> None:
        screen, session = self.screen, self.session
        assert screen is not None and session is not None
        self._go(SessionStep.LABELING)
        if session.protocol.phase is not Phase.IDLE:  # back from a re-calibration
            screen.resume()
        else:
            screen.start(hold=self.tracker_notice() if self.tracker_uncalibrated else "")

    def pause(self) -> None:
        """Pause labeling: the trial on screen is shown again from its first blank after :meth:`resume`."""
        self._expect(SessionStep.LABELING, doing="pausing")
        assert self.screen is not None
        self.screen.pause()

    def resume(self) -> None:
        """Continue labeling after :meth:`pause`."""
        self._expect(SessionStep.LABELING, doing="resuming")
        assert self.screen is not None
        self.screen.resume()

    def recalibrate_before_next_trial(self) -> None:
        """Calibrate and validate again when the next trial begins (the live monitor's control)."""
        self._expect(
            SessionStep.RECORDING,
            SessionStep.CALIBRATING,
            SessionStep.LABELING,
            doing="asking for a re-calibration",
        )
        self.recalibration_pending = True

    def _recalibrate_if_asked(self, onset: PhaseOnset) -> None:
        if self.recalibration_pending and onset.phase is Phase.BLANK and not self.closed:
            self._call_soon(self._recalibrate_now)  # after this frame, not inside it

    def _recalibrate_now(self) -> None:
        if not self.recalibration_pending or self.step is not SessionStep.LABELING:
            return
        assert self.screen is not None
        self.recalibration_pending = False
        self.screen.pause()  # the trial just begun is shown again from its first blank after the calibration
        self._go(SessionStep.CALIBRATING)

    # --- 6. the end ----------------------------------------------------------------------------------

    def finish(self) -> SessionOutcome | None:
        """Commit what is finished, close the devices and the store, report (idempotent).

        Returns the outcome (None when the session never recorded); ``ended`` gets it too. When the
        store fails while closing, ``failed`` says so instead and None is returned.
        """
        if self.closed:
            return self.outcome
        if self.screen is not None:
            self.screen.stop()
        try:
            outcome = self._close_session()
        except Exception as err:  # the store failed while closing: say so
            self.step = SessionStep.FAILED
            self.step_changed.emit(SessionStep.FAILED)
            self.failed.emit(f"The session could not be closed cleanly: {err}")
            return None
        self.outcome = outcome
        self._go(SessionStep.ENDED)
        self.ended.emit(outcome)
        return outcome

    def _close_session(self) -> SessionOutcome | None:
        try:
            if self.gate is not None:
                self.gate.close()
            if self.session is not None:
                self._stop_and_commit()
            outcome = self._outcome() if self.store is not None and self.session_id >= 0 else None
        finally:
            self._stack.close()
        return outcome

    def _stop_and_commit(self) -> None:
        """Stop streaming before the last commits, so no sample is still on its way; commit the trials."""
        assert self.session is not None
        if self.driver is not None:
            self.driver.stop()
        self.session.close()

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

    def fail(self, error: BaseException | str) -> None:
        """Stop after an error: commit the finished trials, release what was opened, tell ``failed``.

        Nothing happens once the session has ended or failed.
        """
        if self.closed:
            return
        self.step = SessionStep.FAILED
        try:
            if self.screen is not None:
                self.screen.stop()
            if self.session is not None:
                self._stop_and_commit()
        finally:
            self._stack.close()
            self.step_changed.emit(SessionStep.FAILED)
            self.failed.emit(str(error))
