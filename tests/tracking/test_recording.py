"""Recording a labeling session: fixations cut at phase onsets, trials in the store, speech gating."""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.geometry import ScreenGeometry
from tests.tracking.fixations._scanpath import GEOMETRY, scan_path
from tracking.drivers import MouseSimulator
from tracking.fixations import DETECTORS, idt
from tracking.protocol import LabelingProtocol, Phase, PhaseOnset, stimulus_order
from tracking.recording import (
    SETTING_ORDER_DESIGN,
    Cancelled,
    GazeRecorder,
    LabelingSession,
    begin_session,
    gaze_recording,
    load_stimuli,
    open_labeling_session,
    participant_states,
    plan_session,
    stimulus_settings,
    trial_quality,
)
from tracking.records import (
    SETTING_SPLIT,
    SETTING_STIMULI,
    Fixation,
    GazeSample,
    PhaseOnsets,
    Trial,
    TrialFrames,
)
from tracking.store import SessionStore

# --- the recorder -------------------------------------------------------------------------------


def segments_reference(samples: list[GazeSample], boundaries: list[float]) -> list[Fixation]:
    """Offline I-DT run separately on the samples between consecutive boundaries."""
    edges = [-math.inf, *boundaries, math.inf]
    fixations: list[Fixation] = []
    for start, stop in itertools.pairwise(edges):
        part = [s for s in samples if start <= s.t_ms < stop]
        if part:
            t = np.array([s.t_ms for s in part])
            xy = np.array([(s.x_screen_px, s.y_screen_px) for s in part])
            valid = np.array([s.valid for s in part])
            fixations += idt(t, xy, valid, geometry=GEOMETRY)
    return fixations


@given(
    seed=st.integers(0, 10_000),
    cuts=st.lists(st.floats(0.0, 1.0), max_size=6),
    chunk=st.integers(1, 400),
    blink_every=st.sampled_from([0, 3]),
)
def test_property_online_fixations_equal_offline_ones_per_segment(
    seed: int, cuts: list[float], chunk: int, blink_every: int
) -> None:
    path = scan_path(np.random.default_rng(seed), n_fixations=6, rate_hz=300.0, blink_every=blink_every)
    samples = path.samples()
    end = samples[-1].t_ms
    boundaries = sorted(c * end for c in cuts)
    recorder = GazeRecorder(DETECTORS["idt"](GEOMETRY))
    marks = list(boundaries)
    # samples arrive in chunks; each phase onset is marked once the frame showing it is stamped,
    # which may be after samples later than it were already queued
    for k in range(0, len(samples), chunk):
        for sample in samples[k : k + chunk]:
            recorder(sample)
        newest = samples[min(k + chunk, len(samples)) - 1].t_ms
        while marks and marks[0] <= newest:
            recorder.mark(marks.pop(0))
        recorder.process(newest - 5.0)
    for mark in marks:
        recorder.mark(mark)
    recorder.finish()
    assert recorder.fixations_between(-math.inf, math.inf) == segments_reference(samples, boundaries)
    assert recorder.received == len(samples) and recorder.skipped == 0


def test_repeated_times_are_skipped_and_taps_see_every_sample() -> None:
    seen: list[GazeSample] = []
    stored: list[GazeSample] = []
    recorder = GazeRecorder(DETECTORS["idt"](GEOMETRY), sink=stored.append)
    recorder.add_tap(seen.append)
    for t in (0.0, 10.0, 10.0, 20.0):
        recorder(GazeSample(t, 100.0, 100.0))
    recorder.process(math.inf)
    assert recorder.skipped == 1 and len(seen) == len(stored) == 4
    recorder.mark(5.0)
    with pytest.raises(ValueError, match="back in time"):
        recorder.mark(1.0)


def test_forget_before_drops_old_fixations() -> None:
    recorder = GazeRecorder(DETECTORS["idt"](GEOMETRY))
    for t in range(0, 400, 10):
        recorder(GazeSample(float(t), 500.0, 500.0))
    recorder.mark(200.0)
    recorder.finish()
    assert [f.onset_ms for f in recorder.fixations_between(0, 1000)] == [0.0, 200.0]
    recorder.forget_before(100.0)
    assert [f.onset_ms for f in recorder.fixations_between(0, 1000)] == [200.0]


# --- a session into the store -------------------------------------------------------------------

SCREEN = ScreenGeometry(800, 800, 24.0, 60.0)
IDS = [f"synthetic/test/{k}" for k in range(4)]


@dataclass
class Simulation:
    """A session on a fake clock: 60 Hz frames, 240 Hz gaze resting on a point per trial."""

    session: LabelingSession
    protocol: LabelingProtocol
    recorder: GazeRecorder
    gaze_at: dict[int, tuple[float, float]]
    t_ms: float = 0.0
    last_sample_ms: float = 0.0
    stimulus_onset_ms: float = math.nan

    def step(self, *, label_after_ms: float = 400.0) -> Phase:
        period = 1000.0 / 60.0
        while self.last_sample_ms + 1000.0 / 240.0 <= self.t_ms:
            self.last_sample_ms += 1000.0 / 240.0
            x, y = self.gaze_at.get(self.protocol.position, (400.0, 400.0))
            if self.protocol.phase is not Phase.STIMULUS:
                x, y = 400.0, 400.0
            self.recorder(GazeSample(self.last_sample_ms, x, y))
        phase = self.session.begin_frame(self.t_ms)
        self.session.frame_presented(self.t_ms)
        if phase is Phase.STIMULUS and self.t_ms - self.stimulus_onset_ms >= label_after_ms:
            self.protocol.key_label(1 + self.protocol.position % 8)  # label once the image was looked at
            self.protocol.advance()
        self.t_ms += period
        return phase

    def on_phase(self, onset: PhaseOnset) -> None:
        if onset.phase is Phase.STIMULUS:
            self.stimulus_onset_ms = onset.t_ms


def simulate(
    store: SessionStore, session_id: int, start: int, gaze_at: dict[int, tuple[float, float]]
) -> Simulation:
    protocol = LabelingProtocol(store.session(session_id).stimulus_order, start_position=start)
    recorder = GazeRecorder(DETECTORS["idt"](SCREEN))
    session = LabelingSession(store, session_id, protocol, recorder, latency_ms=50.0)
    sim = Simulation(session, protocol, recorder, gaze_at)
    protocol.phase_started.subscribe(sim.on_phase)
    protocol.start()
    return sim


def new_session(store: SessionStore) -> int:
    order = stimulus_order(IDS, seed=1)
    session_id, start = open_labeling_session(
        store,
        "P01",
        stimulus_order=order,
        settings={"stimulus_set": "synthetic:n=1", "seed": 1},
        geometry=SCREEN,
        tracker="mouse",
        recogniser="keyboard",
    )
    assert start == 0
    return session_id


def test_a_session_stores_trials_with_their_fixations_and_frames(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "study.db") as store:
        session_id = new_session(store)
        gaze = {0: (300.0, 300.0), 1: (500.0, 320.0), 3: (350.0, 520.0)}  # trial 2: gaze stays central
        sim = simulate(store, session_id, 0, gaze)
        while sim.step() is not Phase.FINISHED:
            pass
        sim.session.close()
        trials = store.trials(session_id)
        assert [t.position for t in trials] == [0, 1, 2, 3]
        assert [t.stimulus_id for t in trials] == list(store.session(session_id).stimulus_order)
        frames = store.trial_frames(session_id)
        for trial in trials:
            fixations = store.fixations(session_id, trial.position)
            phases = trial.phases
            assert all(phases.stimulus_onset_ms <= f.onset_ms < phases.stimulus_offset_ms for f in fixations)
            assert len(fixations) == 1  # the gaze rested on one point while the image was shown
            expected = gaze.get(trial.position, (400.0, 400.0))
            assert (fixations[0].x_screen_px, fixations[0].y_screen_px) == pytest.approx(expected)
            assert frames[trial.position].dropped_frames == 0
            assert frames[trial.position].blank_frames == 30
        assert sim.session.uncommitted == 0


def test_closing_mid_session_keeps_finished_trials_and_resumes_at_the_next_stimulus(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "study.db") as store:
        session_id = new_session(store)
        sim = simulate(store, session_id, 0, {})
        finished: list[int] = []
        sim.session.committed.subscribe(lambda f: finished.append(f.trial.position))
        while sim.protocol.position < 2:
            sim.step()
        for _ in range(5):  # into the next trial's blank screen
            sim.step()
        sim.protocol.pause()
        sim.step()
        sim.session.close()
        assert store.resume_point(session_id) == 2 and finished == [0, 1]
        again, start = open_labeling_session(
            store,
            "P01",
            stimulus_order=IDS,
            settings={"stimulus_set": "synthetic:n=1", "seed": 1},
            geometry=SCREEN,
            tracker="mouse",
            recogniser="keyboard",
        )
        assert (again, start) == (session_id, 2)
        resumed = simulate(store, session_id, start, {})
        while resumed.step() is not Phase.FINISHED:
            pass
        resumed.session.close()
        assert store.resume_point(session_id) == 4
        # a complete session is not resumed: the same participant gets a new one
        third, start = open_labeling_session(
            store,
            "P01",
            stimulus_order=IDS,
            settings={"stimulus_set": "synthetic:n=1", "seed": 1},
            geometry=SCREEN,
            tracker="mouse",
            recogniser="keyboard",
        )
        assert third != session_id and start == 0


def test_a_failing_commit_is_reported(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "study.db") as store:
        session_id = new_session(store)
        sim = simulate(store, session_id, 0, {})
        messages: list[str] = []
        sim.session.failed.subscribe(messages.append)
        store.record_trial(session_id, _stolen_trial(store, session_id), [])  # position 0 taken
        while sim.protocol.position < 1:
            sim.step()
        sim.session.close()
        assert (
            len(messages) == 1
            and "could not be stored" in messages[0]
            and "continues at position 1" in messages[0]
        )


class _HeldDriver:
    """A driver whose samples the test hands to ``on_sample`` itself (the Simulation's clock)."""

    def start(self, on_sample: object) -> None:
        self.on_sample = on_sample

    def stop(self) -> None:
        pass


def test_a_trial_whose_samples_could_not_be_written_is_not_stored_and_the_session_pauses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tracking import store as store_module
    from tracking.errors import StoreError

    with SessionStore(tmp_path / "study.db") as store:
        session_id = new_session(store)
        # the disk fills up: every sample insert fails from the start
        monkeypatch.setattr(store_module, "_SAMPLE_INSERT", "INSERT INTO full_disk VALUES (?)")
        protocol = LabelingProtocol(store.session(session_id).stimulus_order, start_position=0)
        messages: list[str] = []
        with pytest.raises(StoreError, match="writing gaze samples"):  # closing the writer says so too
            with gaze_recording(store, session_id, _HeldDriver(), DETECTORS["idt"](SCREEN)) as recorder:  # type: ignore[arg-type]
                session = LabelingSession(store, session_id, protocol, recorder, latency_ms=50.0)
                session.failed.subscribe(messages.append)
                session.failed.subscribe(lambda _message: protocol.pause())  # as the labeling view does
                sim = Simulation(session, protocol, recorder, {})
                protocol.phase_started.subscribe(sim.on_phase)
                protocol.start()
                while protocol.position < 1 and protocol.phase is not Phase.PAUSED:
                    sim.step()
                for _ in range(20):
                    sim.step()
                session.close()
        assert store.resume_point(session_id) == 0  # the trial is not complete without its data
        assert store.trials(session_id) == []
        assert messages and "trial 1" in messages[0] and "writing gaze samples" in messages[0]
        assert "Check the disk, then resume the session" in messages[0]
        assert protocol.phase is Phase.PAUSED


def _stolen_trial(store: SessionStore, session_id: int) -> Trial:
    first = store.session(session_id).stimulus_order[0]
    return Trial(0, first, PhaseOnsets(0.0, 1.0, 2.0, 3.0, 4.0), "happy", "keyboard")


def test_gaze_recording_streams_the_mouse_simulator_into_the_store(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "study.db") as store:
        session_id = new_session(store)
        driver = MouseSimulator(lambda: (123.0, 456.0), rate_hz=200.0)
        driver.connect()
        with gaze_recording(store, session_id, driver, DETECTORS["idt"](SCREEN)) as recorder:
            deadline = time.monotonic() + 5.0
            while recorder.received < 20 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert driver.state.value == "connected"
        samples = store.samples(session_id)
        assert len(samples) >= 20 and (samples.xy_screen_px == (123.0, 456.0)).all()
        driver.close()


# --- stimuli ------------------------------------------------------------------------------------


def test_load_stimuli_decodes_a_seeded_choice_as_uint8_rgb() -> None:
    progress: list[float] = []
    stimuli = load_stimuli(
        "synthetic:n=1,size=32", max_stimuli=3, seed=2, progress=lambda f, _: progress.append(f)
    )
    assert stimuli.split == "test" and len(stimuli.ids) == 3
    assert all(img.dtype == np.uint8 and img.shape == (32, 32, 3) for img in stimuli.images.values())
    assert progress[-1] == 1.0
    assert stimuli.ids == load_stimuli("synthetic:n=1,size=32", max_stimuli=3, seed=2).ids
    assert len(load_stimuli("synthetic:n=1,size=32", split="train").ids) == 8
    with pytest.raises(ValueError, match="no split"):
        load_stimuli("synthetic:n=1,size=32", split="nope")
    with pytest.raises(Cancelled):
        load_stimuli("synthetic:n=1,size=32", cancelled=lambda: True)


# The speech gate (SpeechGate, give_spoken_label) is tested with a real recogniser in test_speech_gate.py.


# --- participants, plans and honest session rows ------------------------------------------------

SET = "synthetic:n=1|split=|max=0|seed=0"
STIMULI = [f"synthetic/test/{k}" for k in range(6)]


def _begin(
    store: SessionStore, pseudonym: str, *, new: bool = False, tracker: str = "mouse"
) -> tuple[int, int]:
    plan = plan_session(store, pseudonym, stimulus_set=SET, stimulus_ids=STIMULI, seed=0, new=new)
    return begin_session(
        store,
        plan,
        settings={"stimulus_set": SET},
        geometry=ScreenGeometry(),
        tracker=tracker,
        recogniser="keyboard",
    )


def _label(store: SessionStore, session_id: int, n: int) -> None:
    order = store.session(session_id).stimulus_order
    start = store.resume_point(session_id)
    for position in range(start, start + n):
        t = 10_000.0 * position
        phases = PhaseOnsets(t, t + 500, t + 700, t + 1200, t + 2000)
        store.record_trial(session_id, Trial(position, order[position], phases, "happy", "keyboard"), [])


def test_three_participants_get_three_stored_orders_and_their_states(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "study.db") as store:
        sessions = {p: _begin(store, p)[0] for p in ("P01", "P02", "P03")}
        _label(store, sessions["P01"], 6)
        _label(store, sessions["P02"], 2)
        orders = {store.session(s).stimulus_order for s in sessions.values()}
        assert len(orders) == 3
        assert store.session(sessions["P01"]).settings[SETTING_ORDER_DESIGN] == "per-participant"
        states = {s.pseudonym: s for s in participant_states(store, stimulus_set=SET)}
        assert (states["P01"].state, states["P01"].n_done, states["P01"].n_total) == ("finished", 6, 6)
        assert (states["P02"].state, states["P02"].text) == ("unfinished", "unfinished, 2 of 6")
        assert states["P03"].text == "unfinished, 0 of 6" and states["P03"].tracker == "mouse"
        assert participant_states(store, stimulus_set="another set")[0].state == "none"


def test_start_resumes_an_unfinished_session_and_warns_when_a_new_one_repeats_an_order(
    tmp_path: Path,
) -> None:
    with SessionStore(tmp_path / "study.db") as store:
        first, _ = _begin(store, "P01")
        _label(store, first, 2)
        plan = plan_session(store, "P01", stimulus_set=SET, stimulus_ids=STIMULI, seed=0)
        assert (plan.resume_session_id, plan.start_position, plan.warning) == (first, 2, "")
        assert "resumes" in plan.text and "stimulus 3 of 6" in plan.text
        again = plan_session(store, "P01", stimulus_set=SET, seed=0, new=True)  # ids from the stored session
        assert (
            again.new and again.repeats == () and again.stimulus_order != store.session(first).stimulus_order
        )
        fixed = plan_session(store, "P02", stimulus_set=SET, seed=0, design="same-for-all")
        twin = begin_session(
            store, fixed, settings={"stimulus_set": SET}, geometry=ScreenGeometry(), tracker="mouse",
            recogniser="keyboard",
        )[0]  # fmt: skip
        third = plan_session(store, "P03", stimulus_set=SET, seed=0, design="same-for-all")
        assert third.repeats == (twin,) and f"session {twin}" in third.warning
        fresh = plan_session(store, "P04", stimulus_set=SET, seed=0)
        assert fresh.new and fresh.repeats == () and fresh.warning == ""
        assert plan_session(store, "P09", stimulus_set="empty set", seed=0).stimulus_order == ()


def test_no_session_row_exists_before_recording_starts_and_it_names_the_devices_used(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "study.db") as store:
        plan = plan_session(store, "P01", stimulus_set=SET, stimulus_ids=STIMULI, seed=0)
        assert store.sessions() == [] and store.participants() == []  # planning writes nothing
        session_id, position = begin_session(
            store,
            plan,
            settings={"stimulus_set": SET},
            geometry=ScreenGeometry(),
            tracker="mouse",
            recogniser="keyboard",
        )
        session = store.session(session_id)
        assert (session.tracker, session.recogniser, position) == ("mouse", "keyboard", 0)
        assert store.recording_devices(session_id) == [("mouse", "keyboard")]
    with SessionStore(tmp_path / "study.db") as store:  # resumed later with another tracker
        assert _begin(store, "P01", tracker="eyetribe") == (session_id, 0)
        assert store.recording_devices(session_id) == [("mouse", "keyboard"), ("eyetribe", "keyboard")]


def test_the_quality_of_each_trial_says_when_valid_gaze_gave_no_fixation(tmp_path: Path) -> None:
    from tracking.drivers.base import DriverEvent, DriverEventKind, DriverState

    with SessionStore(tmp_path / "study.db") as store:
        session_id, _ = _begin(store, "P01")
        order = store.session(session_id).stimulus_order
        with store.sample_writer(session_id, batch_interval_s=0.01) as writer:
            for k in range(0, 2000, 10):  # trial 0: 0-2000 ms, a 300 ms blink from 1300 ms
                writer.add(GazeSample(float(k), 500.0, 400.0, valid=not 1300 <= k < 1600))
            for k in range(3000, 5000, 10):  # trial 1: valid throughout
                writer.add(GazeSample(float(k), 500.0, 400.0))
        fixation = Fixation(1250.0, 40.0, 500.0, 400.0, 5)
        for position, t0, fixations in ((0, 0.0, [fixation]), (1, 3000.0, [])):
            phases = PhaseOnsets(t0, t0 + 500, t0 + 700, t0 + 1200, t0 + 1990)
            trial = Trial(position, order[position], phases, "happy", "keyboard")
            store.record_trial(session_id, trial, fixations)
        lost = DriverEvent(DriverEventKind.CONNECTION_LOST, "tracker lost", 1400.0, DriverState.LOST, "x")
        first, second = trial_quality(store, session_id, events=[lost])
    assert (first.n_samples, first.n_fixations, first.note) == (200, 1, "")
    assert first.valid_share == pytest.approx(170 / 200) and first.longest_gap_ms == pytest.approx(310.0)
    assert first.events == ("connection_lost: tracker lost",)
    assert second.n_fixations == 0 and second.events == () and second.longest_gap_ms == pytest.approx(10.0)
    assert "no fixation" in second.note and "detector" in second.note
    with SessionStore(tmp_path / "study.db") as store:  # a tracker that stalled during the image
        stalled_id, _ = _begin(store, "P02")
        stalled_order = store.session(stalled_id).stimulus_order
        with store.sample_writer(stalled_id, batch_interval_s=0.01) as writer:
            for k in [*range(20_000, 21_200, 10), *range(21_900, 22_000, 10)]:
                writer.add(GazeSample(float(k), 500.0, 400.0))
        phases = PhaseOnsets(20_000.0, 20_500.0, 20_700.0, 21_200.0, 21_990.0)
        store.record_trial(stalled_id, Trial(0, stalled_order[0], phases, "sad", "keyboard"), [])
        (stalled,) = trial_quality(store, stalled_id)
    assert stalled.valid_share == 1.0 and "no valid gaze for 710 ms" in stalled.note


def test_the_quality_of_each_trial_carries_its_label_dropped_frames_and_flag(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "study.db") as store:
        session_id, _ = _begin(store, "P01")
        order = store.session(session_id).stimulus_order
        frames = TrialFrames(60.0, True, 30, 12, 30, 120, 2, 40.0)
        spoken = Trial(0, order[0], PhaseOnsets(0.0, 500, 700, 1200, 2000), "happy", "speech", "happy", 0.9)
        store.record_trial(session_id, spoken, [], frames=frames)
        keyed = Trial(1, order[1], PhaseOnsets(3000.0, 3500, 3700, 4200, 5000), "sad", "keyboard")
        store.record_trial(session_id, keyed, [])
        store.flag_trial(session_id, 1, reason="looked away")
        first, second = trial_quality(store, session_id)
    assert (first.label, first.label_source, first.confidence) == ("happy", "speech", 0.9)
    assert (first.dropped_frames, first.flagged) == (2, "")
    assert (second.label, second.confidence, second.dropped_frames, second.flagged) == (
        "sad",
        None,
        None,  # no frame statistics stored
        "looked away",
    )


def test_stimulus_settings_are_what_resuming_and_the_study_readers_read_back(tmp_path: Path) -> None:
    from tracking.study import session_stimulus_rect

    stimuli = load_stimuli("synthetic:n=1,size=64", split="test", max_stimuli=2)
    geometry = ScreenGeometry(1920, 1080, 24.0, 70.0)
    rect = geometry.stimulus_rect()
    with SessionStore(tmp_path / "study.db") as store:
        session_id = store.create_session(
            store.create_participant("P01"),
            settings=stimulus_settings(SET, stimuli, rect),
            geometry=geometry,
            tracker="mouse",
            recogniser="keyboard",
            stimulus_order=stimuli.ids,
        )
        session = store.session(session_id)
        (state,) = participant_states(store, stimulus_set=SET)  # a session of this set, to resume
    assert session_stimulus_rect(session) == rect
    assert (session.settings[SETTING_STIMULI], session.settings[SETTING_SPLIT]) == (
        "synthetic:n=1,size=64",
        "test",
    )
    assert (state.pseudonym, state.state, state.session_id) == ("P01", "unfinished", session_id)


def test_per_participant_orders_of_a_short_list_do_not_repeat_by_chance(tmp_path: Path) -> None:
    three = STIMULI[:3]  # six orders only: five participants would share some by chance
    with SessionStore(tmp_path / "study.db") as store:
        for k in range(6):
            plan = plan_session(store, f"P{k:02d}", stimulus_set=SET, stimulus_ids=three, seed=7)
            assert plan.repeats == ()
            begin_session(
                store, plan, settings={"stimulus_set": SET}, geometry=ScreenGeometry(), tracker="mouse",
                recogniser="keyboard",
            )  # fmt: skip
        assert len({s.stimulus_order for s in store.sessions()}) == 6
        seventh = plan_session(store, "P06", stimulus_set=SET, stimulus_ids=three, seed=7)
        assert len(seventh.repeats) == 1 and "repeats the stimulus order" in seventh.warning
