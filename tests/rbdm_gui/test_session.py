"""The labeling session's lifecycle without Qt: whole sessions with the mouse simulator and recorded labels.

A headless screen paces frames on the test's thread (where the app's labeling view paces them on the
GUI thread), and a recorded participant looks at a point on each image and says its label: spoken
labels as the speech gate would hand them over (:class:`~tracking.recording.SpokenLabel`), then the
key press that goes on. Nothing here imports PySide6; a fresh interpreter checks it.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rbdm_gui.workflows.session import (
    Connection,
    SessionLifecycle,
    SessionOutcome,
    SessionStep,
)
from rbdm_gui.workflows.settings import StudySettings
from tests.rbdm_gui._sessions import SCREEN, settings_for
from tracking.clock import now_ms
from tracking.drivers import MouseSimulator
from tracking.drivers.base import DriverState
from tracking.errors import DriverError
from tracking.protocol import Phase, PhaseOnset, ProtocolTiming
from tracking.recording import LabelingSession, SpokenLabel, give_spoken_label
from tracking.speech.base import Recognition
from tracking.store import SessionStore

FAST = ProtocolTiming(blank_ms=200.0, cross_ms=100.0, second_blank_ms=200.0)
CENTRE = (SCREEN / 2, SCREEN / 2)




class Gaze:
    """The simulated gaze: a point in screen pixels, or None for closed eyes (the simulator's source)."""

    def __init__(self) -> None:
        self.xy: tuple[float, float] | None = CENTRE

    def __call__(self) -> tuple[float, float] | None:
        return self.xy


@dataclass
class Said:
    """What the recorded participant does on one image: where they look, and the label they say."""

    label: str
    look_at: tuple[float, float] | None
    look_ms: float = 350.0


@dataclass
class RecordedParticipant:
    """Looks at each image's point, then says its label and presses the key that goes on."""

    gaze: Gaze
    script: Sequence[Said]
    _due: tuple[int, float] | None = None
    given: list[int] = field(default_factory=list)

    def watch(self, session: LabelingSession) -> None:
        session.protocol.phase_started.subscribe(self._on_phase)

    def _on_phase(self, onset: PhaseOnset) -> None:
        if onset.phase is Phase.STIMULUS:
            said = self.script[onset.position]
            self.gaze.xy = said.look_at
            self._due = (onset.position, onset.t_ms + said.look_ms)
        elif onset.phase is Phase.PAUSED:
            self._due = None

    def act(self, session: LabelingSession) -> None:
        """Between frames: say the label and go on once the image has been looked at long enough."""
        if self._due is None or now_ms() < self._due[1]:
            return
        position, t_ms = self._due
        self._due = None
        label = self.script[position].label
        heard = Recognition(label, label, 0.9, t_ms - 200.0, t_ms)
        if give_spoken_label(session.protocol, SpokenLabel(position, heard)):
            self.given.append(position)
            session.protocol.advance()
        self.gaze.xy = CENTRE


class HeadlessScreen:
    """A :class:`~rbdm_gui.workflows.session.LabelingScreen` without Qt: it records what it was told."""

    def __init__(self, session: LabelingSession) -> None:
        self.session = session
        self.calls: list[str] = []
        self.hold = ""
        self.running = False

    def start(self, *, hold: str = "") -> None:
        self.calls.append("start")
        self.session.protocol.start()
        self.running = True
        if hold:
            self.hold = hold
            self.session.protocol.pause()

    def resume(self) -> None:
        self.calls.append("resume")
        self.session.protocol.resume()

    def pause(self) -> None:
        self.calls.append("pause")
        self.session.protocol.pause()

    def stop(self) -> None:
        self.calls.append("stop")
        self.running = False

    def run(
        self,
        until: Callable[[], bool],
        *,
        between: Callable[[], None] = lambda: None,
        rate_hz: float = 60.0,
        timeout_s: float = 30.0,
    ) -> None:
        """Present frames at about ``rate_hz`` until ``until()`` (calling ``between`` after each)."""
        deadline = time.monotonic() + timeout_s
        while not until():
            assert time.monotonic() < deadline, "the session did not get there in time"
            if self.running:
                self.session.begin_frame(now_ms())
                self.session.frame_presented(now_ms())
            between()
            time.sleep(1.0 / rate_hz)


@dataclass
class Run:
    """A lifecycle taken through its steps up to the first trial, with what it told its listeners."""

    lifecycle: SessionLifecycle
    screen: HeadlessScreen
    steps: list[SessionStep]
    notices: list[str]
    ended: list[SessionOutcome | None]
    failures: list[str]


def start(settings: StudySettings, gaze: Gaze, **options: object) -> Run:
    """load → open/resume → connect → record → start the trials, as the app's shell does."""
    lifecycle = SessionLifecycle(
        settings,
        make_driver=lambda s, g: MouseSimulator(gaze, rate_hz=120.0),
        timing=FAST,
        **options,  # type: ignore[arg-type]
    )
    steps: list[SessionStep] = []
    notices: list[str] = []
    ended: list[SessionOutcome | None] = []
    failures: list[str] = []
    lifecycle.step_changed.subscribe(steps.append)
    lifecycle.notice.subscribe(notices.append)
    lifecycle.ended.subscribe(ended.append)
    lifecycle.failed.subscribe(failures.append)
    lifecycle.open(lifecycle.read_stimuli())
    session = lifecycle.record(lifecycle.connect_devices())
    screen = HeadlessScreen(session)
    lifecycle.start_trials(screen)
    return Run(lifecycle, screen, steps, notices, ended, failures)


def label_all(run: Run, participant: RecordedParticipant) -> None:
    session = run.lifecycle.session
    assert session is not None
    participant.watch(session)
    protocol = session.protocol
    run.screen.run(lambda: protocol.phase is Phase.FINISHED, between=lambda: participant.act(session))


SCRIPT = (
    Said("happy", (300.0, 320.0)),
    Said("surprise", (480.0, 300.0)),
    Said("fear", None),  # eyes closed on the third image
)


def whole_session(tmp_path: Path) -> SessionOutcome | None:
    """A whole session of three trials; returns its outcome (also run in a fresh interpreter)."""
    gaze = Gaze()
    run = start(settings_for(tmp_path, n=3), gaze)
    label_all(run, RecordedParticipant(gaze, SCRIPT))
    return run.lifecycle.finish()


def test_a_whole_session_runs_without_qt_and_is_stored(tmp_path: Path) -> None:
    gaze = Gaze()
    run = start(settings_for(tmp_path, n=3), gaze)
    assert run.steps == [SessionStep.OPENED, SessionStep.RECORDING, SessionStep.LABELING]
    assert any("mouse tracker connected at 120 Hz" in n for n in run.notices)
    participant = RecordedParticipant(gaze, SCRIPT)
    label_all(run, participant)
    outcome = run.lifecycle.finish()
    assert run.steps[-1] is SessionStep.ENDED and run.ended == [outcome] and not run.failures
    assert run.screen.calls == ["start", "stop"] and participant.given == [0, 1, 2]
    assert isinstance(outcome, SessionOutcome) and outcome.finished
    assert "3 of 3 stimuli labelled (3 spoken, 0 by key)" in outcome.summary
    assert outcome.report.phase(Phase.BLANK).n_trials == 3
    assert run.lifecycle.finish() is outcome and run.ended == [outcome]  # idempotent

    with SessionStore(tmp_path / "study.sqlite") as store:
        (session,) = store.sessions()
        assert (session.tracker, session.recogniser) == ("mouse", "keyboard")
        trials = store.trials(session.session_id)
        assert [t.label for t in trials] == ["happy", "surprise", "fear"]
        assert {t.label_source for t in trials} == {"speech"} and all(t.confidence == 0.9 for t in trials)
        for trial, said in zip(trials, SCRIPT, strict=True):
            onsets = trial.phases.as_tuple()
            fixations = store.fixations(session.session_id, trial.position)
            assert all(onsets[3] <= f.onset_ms < onsets[4] for f in fixations)
            if said.look_at is None:
                assert fixations == []
            else:
                longest = max(fixations, key=lambda f: f.duration_ms)
                assert math.dist((longest.x_screen_px, longest.y_screen_px), said.look_at) < 1.0
        assert session.settings["stimulus_scale"] == pytest.approx(SCREEN / 1200)
        assert session.settings["rate_hz"] == 120.0


def test_the_lifecycle_imports_and_runs_without_pyside6(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tests.rbdm_gui.test_session import whole_session\n"
        f"outcome = whole_session(Path({str(tmp_path)!r}))\n"
        "print(outcome.finished, 'PySide6' in sys.modules, 'pyqtgraph' in sys.modules)\n"
    )
    root = Path(__file__).parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "False"]


def test_steps_run_in_their_order_only(tmp_path: Path) -> None:
    gaze = Gaze()
    lifecycle = SessionLifecycle(
        settings_for(tmp_path, n=1), make_driver=lambda s, g: MouseSimulator(gaze), timing=FAST
    )
    with pytest.raises(RuntimeError, match=r"step 'opened'.*it is at 'new'"):
        lifecycle.record(Connection(None, ""))
    with pytest.raises(RuntimeError, match="pausing needs a session at step 'labeling'"):
        lifecycle.pause()
    with pytest.raises(RuntimeError, match="re-calibration"):
        lifecycle.recalibrate_before_next_trial()
    lifecycle.open(lifecycle.read_stimuli())
    with pytest.raises(RuntimeError, match="it is at 'opened'"):
        lifecycle.open(lifecycle.read_stimuli())
    assert lifecycle.finish() is None and lifecycle.step is SessionStep.ENDED  # never recorded
    with SessionStore(tmp_path / "study.sqlite") as store:
        assert store.sessions() == []  # nothing is written before recording starts
    with pytest.raises(RuntimeError, match="it is at 'ended'"):
        lifecycle.connect_devices()
    mouse_without_source = SessionLifecycle(settings_for(tmp_path, n=1))
    with pytest.raises(ValueError, match="follows a position that the caller lends it"):
        mouse_without_source.open(mouse_without_source.read_stimuli())
    mouse_without_source.fail(ValueError("no source"))  # releases the study it opened


def test_calibration_comes_first_when_asked_and_again_before_the_next_trial(tmp_path: Path) -> None:
    gaze = Gaze()
    run = start(settings_for(tmp_path, n=3, calibrate=True), gaze)
    lifecycle, screen = run.lifecycle, run.screen
    assert run.steps[-1] is SessionStep.CALIBRATING and screen.calls == []
    lifecycle.calibration_done()
    assert run.steps[-2:] == [SessionStep.CALIBRATING, SessionStep.LABELING] and screen.calls == ["start"]
    session = lifecycle.session
    assert session is not None
    protocol = session.protocol
    participant = RecordedParticipant(gaze, SCRIPT)
    participant.watch(session)

    def act() -> None:
        participant.act(session)
        second_image = protocol.phase is Phase.STIMULUS and protocol.position == 1
        if second_image and SessionStep.CALIBRATING not in run.steps[3:]:
            lifecycle.recalibrate_before_next_trial()  # the live monitor's button, during trial 2

    screen.run(lambda: run.steps[-1] is SessionStep.CALIBRATING, between=act)
    assert protocol.position == 2 and protocol.phase is Phase.PAUSED  # trial 3 waits for the calibration
    assert screen.calls == ["start", "pause"] and not lifecycle.recalibration_pending
    lifecycle.calibration_done()
    assert screen.calls[-1] == "resume" and (protocol.phase, protocol.position) == (Phase.BLANK, 2)
    screen.run(lambda: protocol.phase is Phase.FINISHED, between=act)
    outcome = lifecycle.finish()
    assert outcome is not None and outcome.finished
    assert run.steps == [
        SessionStep.OPENED,
        SessionStep.RECORDING,
        SessionStep.CALIBRATING,
        SessionStep.LABELING,
        SessionStep.CALIBRATING,
        SessionStep.LABELING,
        SessionStep.ENDED,
    ]


def test_quitting_keeps_finished_trials_and_the_next_run_resumes(tmp_path: Path) -> None:
    gaze = Gaze()
    settings = settings_for(tmp_path, n=3)
    run = start(settings, gaze)
    session = run.lifecycle.session
    assert session is not None
    participant = RecordedParticipant(gaze, SCRIPT)
    participant.watch(session)
    protocol = session.protocol
    run.screen.run(lambda: protocol.position == 1, between=lambda: participant.act(session))
    run.lifecycle.pause()
    assert run.screen.calls[-1] == "pause" and protocol.phase is Phase.PAUSED
    run.lifecycle.resume()
    assert (protocol.phase, protocol.position) == (Phase.BLANK, 1)  # the second image, from its start
    outcome = run.lifecycle.finish()  # "Quit session" during the second trial
    assert outcome is not None and not outcome.finished and "1 of 3" in outcome.summary

    again = start(settings, gaze)
    assert again.lifecycle.session_id == run.lifecycle.session_id and again.lifecycle.start_position == 1
    assert again.lifecycle.session is not None and again.lifecycle.session.protocol.position == 1
    again.lifecycle.finish()
    with SessionStore(tmp_path / "study.sqlite") as store:
        assert store.resume_point(run.lifecycle.session_id) == 1


def test_a_failure_keeps_the_recorded_trials_and_ends_the_session(tmp_path: Path) -> None:
    gaze = Gaze()
    run = start(settings_for(tmp_path, n=3), gaze)
    session = run.lifecycle.session
    assert session is not None
    participant = RecordedParticipant(gaze, SCRIPT)
    participant.watch(session)
    run.screen.run(lambda: participant.given == [0], between=lambda: participant.act(session))
    run.lifecycle.fail(RuntimeError("the disk is full. Free some space, then resume the session."))
    assert run.failures == ["the disk is full. Free some space, then resume the session."]
    assert run.steps[-1] is SessionStep.FAILED and run.lifecycle.closed and run.ended == []
    assert run.screen.calls[-1] == "stop"
    run.lifecycle.fail(RuntimeError("again"))
    assert run.lifecycle.finish() is None and len(run.failures) == 1  # nothing happens after a failure
    with SessionStore(tmp_path / "study.sqlite") as store:
        (stored,) = store.sessions()
        assert [t.label for t in store.trials(stored.session_id)] == ["happy"]  # committed on the way out


def test_a_tracker_that_cannot_connect_writes_no_session(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, n=2, driver="eyetribe", driver_options={"eyetribe": {"port": 1, "connect_timeout_s": 0.2}}
    )
    lifecycle = SessionLifecycle(settings, timing=FAST)
    failures: list[str] = []
    lifecycle.failed.subscribe(failures.append)
    lifecycle.open(lifecycle.read_stimuli())
    with pytest.raises(DriverError) as raised:
        lifecycle.connect_devices()
    lifecycle.fail(raised.value)
    assert failures == [str(raised.value)] and lifecycle.step is SessionStep.FAILED
    assert lifecycle.driver is not None and lifecycle.driver.state is DriverState.CLOSED  # released
    with SessionStore(tmp_path / "study.sqlite") as store:
        assert store.sessions() == [] and store.participants() == []


def test_an_uncalibrated_tracker_holds_the_first_trial(tmp_path: Path) -> None:
    class Uncalibrated(MouseSimulator):
        calibrated = False

    gaze = Gaze()
    lifecycle = SessionLifecycle(
        settings_for(tmp_path, n=1), make_driver=lambda s, g: Uncalibrated(gaze, rate_hz=120.0), timing=FAST
    )
    notices: list[str] = []
    lifecycle.notice.subscribe(notices.append)
    lifecycle.open(lifecycle.read_stimuli())
    session = lifecycle.record(lifecycle.connect_devices())
    screen = HeadlessScreen(session)
    lifecycle.start_trials(screen)
    assert "no calibration" in screen.hold and session.protocol.phase is Phase.PAUSED
    assert any("120 Hz" in n and "no calibration" in n for n in notices)
    lifecycle.resume()
    participant = RecordedParticipant(gaze, SCRIPT[:1])
    participant.watch(session)
    screen.run(lambda: session.protocol.phase is Phase.FINISHED, between=lambda: participant.act(session))
    outcome = lifecycle.finish()
    assert outcome is not None and outcome.finished
