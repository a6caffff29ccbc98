"""The live monitor's Qt-free model, quality and running Table 1: a recorded session replayed into it,
checked against the store."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from rbdm_gui.workflows.monitor_model import (
    FixationTap,
    LabelStatus,
    MonitorModel,
    attach_monitor,
    phase_text,
)
from rbdm_gui.workflows.monitor_quality import GazeQuality
from rbdm_gui.workflows.monitor_table import RunningTable, TableRequest, TableRunner, participant_table
from tests.tracking._study import GEOMETRY, RECT, STIMULI, session_settings, write_study
from tracking.clock import now_ms
from tracking.drivers import ReplayDriver
from tracking.drivers.base import DriverEvent, DriverEventKind, DriverState
from tracking.drivers.replay import write_samples
from tracking.errors import StoreError
from tracking.fixations import DETECTORS
from tracking.protocol import (
    FinishedTrial,
    LabelChoice,
    LabelingProtocol,
    Phase,
    PhaseOnset,
    ProtocolTiming,
    stimulus_order,
)
from tracking.recording import LabelingSession, gaze_recording, open_labeling_session, trial_quality
from tracking.records import Fixation, GazeSample, PhaseOnsets, Trial, TrialFrames
from tracking.store import SessionStore
from tracking.study import StudyComparison, load_stimulus_images, read_study

FAST = ProtocolTiming(blank_ms=200.0, cross_ms=100.0, second_blank_ms=200.0)
RATE_HZ = 120.0


def recorded_gaze(path: Path) -> Path:
    """4 s of 120 Hz gaze on the image: a new fixation point every 400 ms, a 300 ms blink every 2 s."""
    rng = np.random.default_rng(7)
    points = rng.uniform([RECT.x_px + 100, 100], [RECT.x_px + RECT.width_px - 100, 980], size=(10, 2))
    samples = []
    for k in range(int(4.0 * RATE_HZ)):
        t = k * 1000.0 / RATE_HZ
        blink = 600.0 <= t % 2000.0 < 900.0
        x, y = points[int(t // 400.0)] + rng.normal(0.0, 2.0, size=2)
        samples.append(GazeSample(t, math.nan, math.nan, valid=False) if blink else GazeSample(t, x, y))
    write_samples(path, samples)
    return path


def run_replayed_session(
    study: Path, gaze_file: Path, participant: str = "P03"
) -> tuple[MonitorModel, int, list]:
    """Label STIMULI with replayed gaze through the app's recording path, the monitor attached."""
    snapshots = []
    with SessionStore(study) as store:
        order = stimulus_order(STIMULI, seed=5)
        session_id, _ = open_labeling_session(
            store,
            participant,
            stimulus_order=order,
            settings=session_settings(),
            geometry=GEOMETRY,
            tracker="replay",
            recogniser="keyboard",
        )
        driver = ReplayDriver(gaze_file, loop=True)
        driver.connect()
        tap = FixationTap(DETECTORS["idt"](GEOMETRY))
        with gaze_recording(store, session_id, driver, tap) as recorder:
            protocol = LabelingProtocol(order, timing=FAST, refresh_hz=60.0, frame_counted=True)
            session = LabelingSession(store, session_id, protocol, recorder, latency_ms=50.0)
            model = MonitorModel(
                order,
                nominal_rate_hz=driver.nominal_rate_hz,
                driver_status=lambda: (driver.state, None),
            )
            detach = attach_monitor(
                model,
                protocol=protocol,
                add_sample_tap=recorder.add_tap,
                add_event_listener=driver.add_event_listener,
                committed=session.committed,
                fixation_tap=tap,
            )
            stimulus_onset, shown = [math.inf], [Phase.IDLE]

            def on_phase(onset: PhaseOnset) -> None:
                shown[0] = onset.phase  # what the participant's screen shows now
                if onset.phase is Phase.STIMULUS:
                    stimulus_onset[0] = onset.t_ms

            protocol.phase_started.subscribe(on_phase)
            protocol.start()
            next_update = 0.0
            while protocol.phase is not Phase.FINISHED:
                t = now_ms()
                session.begin_frame(t)
                session.frame_presented(now_ms())
                if protocol.phase is Phase.STIMULUS and now_ms() - stimulus_onset[0] >= 600.0:
                    protocol.key_label(1 + protocol.position % 3)
                    protocol.advance()
                if t >= next_update:
                    snapshots.append((shown[0], model.update(now_ms())))
                    next_update = t + 1000.0 / 30.0
                time.sleep(1.0 / 120.0)
            session.begin_frame(now_ms())
            session.frame_presented(now_ms())  # the frame that shows "finished"
            driver.stop()
            session.close()
        model.update(now_ms())
        detach()
        driver.close()
    return model, session_id, snapshots


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, MonitorModel, int, list]:
    folder = tmp_path_factory.mktemp("monitor")
    study = folder / "study.sqlite"
    write_study(study)  # P01 and P02 labelled the same three faces before
    model, session_id, snapshots = run_replayed_session(study, recorded_gaze(folder / "gaze.tsv"))
    return study, model, session_id, snapshots


def test_a_replayed_session_gives_the_stores_valid_share_gap_and_fixations(replayed) -> None:
    study, model, session_id, _ = replayed
    with SessionStore.open_read_only(study) as store:
        stored = trial_quality(store, session_id)
        trials = store.trials(session_id)
    seen = model.trials
    assert [s.position for s in seen] == [q.position for q in stored] == [0, 1, 2]
    for summary, quality, trial in zip(seen, stored, trials, strict=True):
        assert summary.stimulus_id == quality.stimulus_id == trial.stimulus_id
        assert summary.label == trial.label
        assert summary.n_samples == quality.n_samples > 0
        assert summary.valid_share == pytest.approx(quality.valid_share)
        assert summary.longest_gap_ms == pytest.approx(quality.longest_gap_ms)
        assert summary.n_fixations == quality.n_fixations
        assert (summary.label, summary.label_source, summary.confidence) == (
            quality.label,
            quality.label_source,
            quality.confidence,
        )
        assert summary.dropped_frames == quality.dropped_frames is not None
        assert summary.flagged == quality.flagged == ""
    assert sum(s.n_fixations for s in seen) >= 3  # a new point every 400 ms while each image shows 600 ms
    blinked = [s for s in seen if s.valid_share < 1.0]
    assert blinked and max(s.longest_gap_ms for s in blinked) >= 290.0  # the 300 ms blink


def test_the_snapshots_follow_the_phase_and_show_the_trace_and_rates(replayed) -> None:
    _, model, _, snapshots = replayed
    assert {phase for phase, _ in snapshots} >= {Phase.BLANK, Phase.STIMULUS}
    for phase, snapshot in snapshots:
        assert snapshot.phase is phase
        assert len(snapshot.trace_screen_px) <= RATE_HZ * 1.05 + 1  # at most the last second
        if snapshot.phase is Phase.STIMULUS:
            assert snapshot.phase_text.startswith("stimulus")
            assert all(f.onset_ms >= 0 for f in snapshot.fixations)
    late = [s for _, s in snapshots if s.t_ms - snapshots[0][1].t_ms > 1500.0]
    rates = [s.tracker.effective_rate_hz for s in late]
    assert np.nanmedian(rates) == pytest.approx(RATE_HZ, rel=0.1)
    assert late[-1].tracker.nominal_rate_hz == pytest.approx(RATE_HZ)
    assert snapshots[-1][1].trials_total == 3
    assert model.update(now_ms()).trials_done == 3
    assert model.phase is Phase.FINISHED


def test_the_running_table_1_is_the_compare_screens_rows_of_the_participant(replayed) -> None:
    study, _, _, _ = replayed
    result = participant_table(TableRequest(str(study), "P03"))
    full = read_study(study)
    expected = StudyComparison(full, load_stimulus_images(full)).tables().study  # what Compare shows
    rows = {(r.id_1, r.id_2): r.values for r in expected.rows if "P03" in (r.id_1, r.id_2)}
    assert set(result.table.pairs) == set(rows) and len(rows) == 2  # P03 against P01 and P02
    for row in result.table.rows:
        np.testing.assert_allclose(row.values, rows[(row.id_1, row.id_2)], rtol=1e-12, equal_nan=True)
    assert result.n_stimuli == 3 and result.others == ("P01", "P02") and result.model_id is None
    assert all(0 < n <= 3 for n in result.counts.values())
    counts = StudyComparison(full, load_stimulus_images(full)).tables().pair_counts  # Compare's counts
    assert result.counts == {pair: n for pair, n in counts.items() if "P03" in pair}


def test_the_table_runner_returns_the_newest_request_and_errors_as_values(replayed) -> None:
    study, _, _, _ = replayed
    runner = TableRunner(in_process=False)
    try:
        runner.request(TableRequest(str(study), "P03"))
        result = runner.wait(60.0)
        assert result is not None and not isinstance(result, BaseException)
        assert result.participant == "P03"
        runner.request(TableRequest(str(study.with_name("missing.sqlite")), "P03"))
        assert isinstance(runner.wait(60.0), FileNotFoundError)
        assert runner.poll() is None and not runner.busy
    finally:
        runner.close()


def test_a_participant_without_trials_has_no_rows(tmp_path: Path) -> None:
    study = tmp_path / "study.sqlite"
    write_study(study, participants=("P01",))
    result = participant_table(TableRequest(str(study), "P01"))
    assert result.table.rows == () and result.others == ()
    assert any("no other annotator" in note for note in result.notes)


def test_gaze_quality_counts_the_open_gap_until_now_and_ignores_samples_outside() -> None:
    quality = GazeQuality(1000.0)
    quality.add(900.0, True)  # before the trial
    quality.add(1010.0, True)
    quality.add(1020.0, False)
    quality.add(1030.0, True)
    assert (quality.n_samples, quality.valid_share) == (3, pytest.approx(2 / 3))
    assert quality.gap_until(1030.0) == pytest.approx(20.0)
    assert quality.gap_until(1500.0) == pytest.approx(470.0)  # nothing valid since 1030 ms
    quality.stop_ms = 1100.0
    assert quality.gap_until(5000.0) == pytest.approx(70.0)


def test_tracker_events_are_counted_and_listed() -> None:
    model = MonitorModel(["a"], nominal_rate_hz=60.0)

    def event(kind: DriverEventKind, state: DriverState, message: str) -> DriverEvent:
        return DriverEvent(kind, message, now_ms(), state, "eyetribe")

    model.add_driver_event(event(DriverEventKind.CONNECTION_LOST, DriverState.LOST, "tracker disconnected"))
    model.add_driver_event(
        event(DriverEventKind.RECONNECTED, DriverState.STREAMING, "tracker connected again")
    )
    model.add_driver_event(
        event(DriverEventKind.DEVICE_NOTICE, DriverState.STREAMING, "EyeTribe tracker is not calibrated")
    )
    tracker = model.update(now_ms()).tracker
    assert (tracker.lost, tracker.restored, tracker.uncalibrated) == (1, 1, 1)
    assert tracker.state == "streaming" and len(tracker.events) == 3
    assert "tracker disconnected" in tracker.events[0]


def test_labels_count_rejections_and_reset_with_each_image() -> None:
    model = MonitorModel(["a", "b"])
    model.on_phase(PhaseOnset(Phase.STIMULUS, 0, "a", 10.0))
    model.on_label(LabelChoice(heard_text="hello", unrecognised=True))
    model.on_label(LabelChoice("happy", "speech", "happy", 0.91, False, 20.0))
    snapshot = model.update(30.0)
    assert snapshot.label == LabelStatus("happy", "speech", "happy", 0.91, 1, "hello")
    assert "confidence 0.91" in snapshot.label.describe() and "1 rejected" in snapshot.label.describe()
    assert snapshot.phase_text == "stimulus · labelled happy, waiting for the key"
    model.on_label(LabelChoice())
    assert model.update(40.0).label == LabelStatus()
    assert phase_text(Phase.STIMULUS) == "stimulus · waiting for label"


def test_the_fixation_tap_passes_on_what_the_detector_emits() -> None:
    tap = FixationTap(DETECTORS["idt"](GEOMETRY))
    seen: list[Fixation] = []
    remove = tap.add_listener(seen.append)
    emitted = []
    for k in range(30):
        emitted += tap.feed(GazeSample(k * 10.0, 500.0, 500.0))
    emitted += tap.flush()
    assert emitted and seen == emitted
    bare = DETECTORS["idt"](GEOMETRY)  # the recording is the same with the tap as without it
    alone = [f for k in range(30) for f in bare.feed(GazeSample(k * 10.0, 500.0, 500.0))] + bare.flush()
    assert alone == emitted
    remove()
    tap.feed(GazeSample(400.0, 900.0, 500.0))
    assert seen == emitted
    with pytest.raises(TypeError, match="FixationDetector"):
        FixationTap(object())  # type: ignore[arg-type]


def test_the_trace_ring_keeps_only_the_last_second() -> None:
    model = MonitorModel(["a"])
    for k in range(5000):
        model.add_sample(GazeSample(k * 1.0, float(k), 1.0, valid=k % 100 != 0))
    trace = model.update(5000.0).trace_screen_px
    assert len(trace) == 1000  # t in (3999, 4999] of the 4096 samples kept
    assert np.isnan(trace).any(axis=1).sum() == 10  # the invalid samples break the line


def test_a_trial_marked_bad_is_kept_and_flagged_in_the_store(tmp_path: Path) -> None:
    study = tmp_path / "study.sqlite"
    write_study(study, participants=("P01",))
    with SessionStore(study) as store:
        session_id = store.sessions()[0].session_id
        before = (store.trials(session_id), store.fixations(session_id, 1))
        store.flag_trial(session_id, 1, reason="participant looked away")
        store.flag_trial(session_id, 0)
        assert store.flagged_trials(session_id) == {0: "marked bad", 1: "participant looked away"}
        assert (store.trials(session_id), store.fixations(session_id, 1)) == before  # kept as it was
        with pytest.raises(StoreError, match="no finished trial at position 7"):
            store.flag_trial(session_id, 7)
        with pytest.raises(ValueError, match="reason must be a non-empty text"):
            store.flag_trial(session_id, 0, reason=" ")
        store.export_csv(tmp_path / "export")
    with SessionStore(tmp_path / "copy.sqlite") as copy:
        copy.import_csv(tmp_path / "export")
        assert copy.flagged_trials(session_id)[1] == "participant looked away"
    assert read_study(study).annotators == ("P01",)  # the comparison still reads the study


def test_the_table_worker_waits_while_held_and_never_cancels(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from rbdm_gui.workflows import monitor_table

    hold = threading.Event()
    hold.set()
    monkeypatch.setattr(monitor_table, "_HOLD", hold)
    threading.Timer(0.15, hold.clear).start()  # the stimulus appears: the worker goes on
    started = time.monotonic()
    assert monitor_table._wait_while_held() is False
    assert time.monotonic() - started >= 0.14
    runner = TableRunner(in_process=False)
    runner.hold(True)  # a thread worker is never held (nothing to share a hold with)
    assert not runner.busy


def _finished(position: int, stimulus_id: str, phases: PhaseOnsets) -> FinishedTrial:
    trial = Trial(position, stimulus_id, phases, "happy", "keyboard")
    return FinishedTrial(trial, TrialFrames(60.0, True, 30, 12, 30, 90, 1, 20.0))


def test_samples_after_a_trial_ends_are_not_counted_even_when_its_end_is_announced_late() -> None:
    model = MonitorModel(["a", "b"])
    model.on_phase(PhaseOnset(Phase.BLANK, 0, "a", 0.0))
    model.on_phase(PhaseOnset(Phase.STIMULUS, 0, "a", 100.0))
    for t in range(0, 301, 10):
        model.add_sample(GazeSample(float(t), 500.0, 500.0))
    model.update(305.0)  # samples up to 300 ms have arrived; the image went at 250 ms, not yet announced
    model.on_phase(PhaseOnset(Phase.BLANK, 1, "b", 250.0))
    model.update(320.0)
    model.on_committed(_finished(0, "a", PhaseOnsets(0.0, 20.0, 40.0, 100.0, 250.0)))
    snapshot = model.update(400.0)
    (first,) = model.trials
    assert first.n_samples == 26 and first.valid_share == 1.0  # 0, 10, ..., 250 ms: as the store counts
    assert (first.dropped_frames, first.label) == (1, "happy")
    assert snapshot.n_samples == 6  # 250, ..., 300 ms belong to the next trial


def _poll_until_done(running: RunningTable, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not running.poll():
        assert time.monotonic() < deadline, "the running Table 1 was not computed in time"
        time.sleep(0.02)


def test_marking_a_trial_bad_outdates_the_running_table_at_once(tmp_path: Path) -> None:
    study = tmp_path / "study.sqlite"
    write_study(study)  # P01 and P02 labelled three faces
    model = MonitorModel(STIMULI)
    outdated: list[str] = []
    model.table_outdated.subscribe(outdated.append)
    runner = TableRunner(in_process=False)
    running = RunningTable(model, runner, TableRequest(str(study), "P02"))
    try:
        running.refresh()
        _poll_until_done(running)
        assert model.table is not None and model.table.n_stimuli == 3 and model.table_problem == ""
        model.set_flag(0, "to be flagged once stored", in_store=False)  # a note only: nothing to recompute
        assert outdated == [] and not runner.busy
        with SessionStore(study) as store:
            (p02,) = [p.participant_id for p in store.participants() if p.pseudonym == "P02"]
            (session,) = [s for s in store.sessions() if s.participant_id == p02]
            store.flag_trial(session.session_id, 0, reason="marked bad by the experimenter")
        model.set_flag(0, "marked bad by the experimenter")  # no trial stored since
        assert outdated == ["trial marked bad"] and runner.busy
        assert model.update(now_ms()).table_problem == "computing…"
        _poll_until_done(running)
        assert model.table.n_stimuli == 2  # the flagged trial is left out at once
        assert model.update(now_ms()).table is model.table and model.table_problem == ""
    finally:
        running.close()
        runner.close()
