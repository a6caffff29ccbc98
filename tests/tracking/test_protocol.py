"""The labeling protocol model (RBDM §5.3.1): phases, frame counting, labels, pause/resume, timing."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.labels import LABELS
from tracking.protocol import (
    ORDER_DESIGNS,
    TIMED_PHASES,
    FinishedTrial,
    LabelChoice,
    LabelingProtocol,
    Phase,
    PhaseOnset,
    ProtocolTiming,
    counterbalanced_order,
    frame_statistics,
    frames_for,
    phase_durations,
    stimulus_order,
    timing_report,
)
from tracking.records import PhaseOnsets, Trial, TrialFrames

IDS = ("s/0", "s/1", "s/2", "s/3")


@dataclass
class Log:
    """Everything a protocol told its listeners."""

    phases: list[PhaseOnset] = field(default_factory=list)
    trials: list[FinishedTrial] = field(default_factory=list)
    labels: list[LabelChoice] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)


class Clock:
    """A hand-driven clock for the label times."""

    def __init__(self) -> None:
        self.t_ms = 0.0

    def __call__(self) -> float:
        return self.t_ms


def listen(protocol: LabelingProtocol) -> Log:
    log = Log()
    protocol.phase_started.subscribe(log.phases.append)
    protocol.trial_finished.subscribe(log.trials.append)
    protocol.label_changed.subscribe(log.labels.append)
    protocol.notice.subscribe(log.notices.append)
    protocol.finished.subscribe(log.finished.append)
    return log


def make(ids: tuple[str, ...] = IDS, **options: object) -> tuple[LabelingProtocol, Log, Clock]:
    clock = Clock()
    protocol = LabelingProtocol(ids, clock=clock, **options)  # type: ignore[arg-type]
    return protocol, listen(protocol), clock


def frame(protocol: LabelingProtocol, clock: Clock, t_ms: float) -> Phase:
    """One frame at ``t_ms``: decide, paint (nothing here), present."""
    clock.t_ms = t_ms
    phase = protocol.begin_frame(t_ms)
    protocol.frame_presented(t_ms)
    return phase


def run_until(
    protocol: LabelingProtocol, clock: Clock, t_ms: float, phase: Phase, *, period_ms: float
) -> float:
    """Present frames every ``period_ms`` until ``phase`` is on screen; return the next frame time."""
    for _ in range(10_000):
        shown = frame(protocol, clock, t_ms)
        t_ms += period_ms
        if shown is phase:
            return t_ms
    raise AssertionError(f"{phase} never came")


# --- timing, order, frames ----------------------------------------------------------------------


def test_protocol_timing_defaults_follow_the_paper_and_reject_bad_durations() -> None:
    timing = ProtocolTiming()
    assert timing.as_dict() == {"blank_ms": 500.0, "cross_ms": 200.0, "second_blank_ms": 500.0}
    assert [timing.duration_ms(p) for p in TIMED_PHASES] == [500.0, 200.0, 500.0]
    with pytest.raises(ValueError, match="blank_ms"):
        ProtocolTiming(blank_ms=0)
    with pytest.raises(ValueError, match="cross_ms"):
        ProtocolTiming(cross_ms=math.nan)
    with pytest.raises(ValueError, match="fixed length"):
        timing.duration_ms(Phase.STIMULUS)


def test_stimulus_order_is_a_seeded_permutation() -> None:
    ids = [f"img/{k}" for k in range(30)]
    order = stimulus_order(ids, seed=3)
    assert sorted(order) == sorted(ids)
    assert order == stimulus_order(ids, seed=3)
    assert order != stimulus_order(ids, seed=4)
    assert list(order) != ids
    with pytest.raises(ValueError, match="distinct"):
        stimulus_order(["a", "b", "a"], seed=0)
    with pytest.raises(ValueError, match="non-empty"):
        stimulus_order([], seed=0)
    with pytest.raises(TypeError):
        stimulus_order("abc", seed=0)


def test_each_participant_gets_an_order_of_their_own_by_default() -> None:
    ids = [f"img/{k}" for k in range(16)]
    orders = {p: counterbalanced_order(ids, seed=0, participant=p) for p in ("P01", "P02", "P03")}
    assert len(set(orders.values())) == 3  # the study seed alone gave all three the same order
    assert all(sorted(order) == sorted(ids) for order in orders.values())
    assert orders["P01"] == counterbalanced_order(list(reversed(ids)), seed=0, participant="P01")
    assert orders["P01"] != counterbalanced_order(ids, seed=1, participant="P01")
    same = {counterbalanced_order(ids, design="same-for-all", seed=0, participant=p) for p in orders}
    assert len(same) == 1
    with pytest.raises(ValueError, match="design must be one of"):
        counterbalanced_order(ids, design="shuffle", seed=0, participant="P01")
    with pytest.raises(ValueError, match="non-empty pseudonym"):
        counterbalanced_order(ids, seed=0, participant="")


@pytest.mark.parametrize("n", [4, 5])
def test_the_latin_square_balances_positions_and_successions(n: int) -> None:
    """Williams design: each stimulus once per position, each ordered pair once (twice for odd n)."""
    ids = [f"s/{k}" for k in range(n)]
    rows = n if n % 2 == 0 else 2 * n
    square = [
        counterbalanced_order(ids, design="latin-square", seed=5, participant="x", index=r)
        for r in range(rows)
    ]
    for position in range(n):
        assert {row[position] for row in square} == set(ids)
    pairs = [(a, b) for row in square for a, b in itertools.pairwise(row)]
    assert len(set(pairs)) == n * (n - 1) and len(pairs) == rows * (n - 1)
    assert square[0] == counterbalanced_order(ids, design="latin-square", seed=5, participant="x", index=rows)
    assert set(ORDER_DESIGNS) == {"per-participant", "latin-square", "same-for-all"}


@pytest.mark.parametrize(
    ("duration_ms", "refresh_hz", "expected"),
    [(500, 60, 30), (200, 60, 12), (500, 144, 72), (200, 144, 29), (200, 59.94, 12), (10, 60, 1), (1, 60, 1)],
)
def test_frames_for_rounds_to_whole_frames(duration_ms: float, refresh_hz: float, expected: int) -> None:
    assert frames_for(duration_ms, refresh_hz) == expected


@given(st.floats(1.0, 5000.0), st.floats(20.0, 500.0))
def test_property_frames_for_is_the_nearest_whole_frame(duration_ms: float, refresh_hz: float) -> None:
    n = frames_for(duration_ms, refresh_hz)
    period_ms = 1000.0 / refresh_hz
    assert n >= 1
    if duration_ms >= period_ms:
        assert abs(n * period_ms - duration_ms) <= period_ms / 2 + 1e-9


def test_frame_statistics_counts_intervals_over_one_and_a_half_periods() -> None:
    period = 1000.0 / 60.0
    times = np.cumsum([0.0, period, period, 2 * period, 1.4 * period, 1.6 * period, period])
    stats = frame_statistics(times, refresh_hz=60.0)
    intervals = np.diff(times)
    assert stats.n_intervals == 6
    assert stats.dropped_frames == sum(1 for d in intervals if d > 1.5 * period)  # the obvious loop: 2
    assert stats.dropped_frames == 2
    assert stats.max_interval_ms == pytest.approx(2 * period)
    assert stats.mean_interval_ms == pytest.approx(intervals.mean())
    empty = frame_statistics([5.0], refresh_hz=60.0)
    assert (empty.n_intervals, empty.dropped_frames) == (0, 0) and math.isnan(empty.mean_interval_ms)
    with pytest.raises(ValueError, match="decrease"):
        frame_statistics([2.0, 1.0], refresh_hz=60.0)


# --- the phase sequence -------------------------------------------------------------------------


def label_and_advance(
    protocol: LabelingProtocol, clock: Clock, t_ms: float, *, key: int, period_ms: float
) -> float:
    """Present three more frames of the image, label it by key and advance; return the next frame time."""
    for _ in range(3):
        frame(protocol, clock, t_ms)
        t_ms += period_ms
    clock.t_ms = t_ms
    assert protocol.key_label(key)
    assert protocol.advance()
    return t_ms


def test_a_whole_session_at_60_hz_has_the_intended_onsets_exactly() -> None:
    protocol, log, clock = make()
    period = 1000.0 / 60.0
    protocol.start()
    t = 0.0
    for k in range(len(IDS)):
        t = run_until(protocol, clock, t, Phase.STIMULUS, period_ms=period)
        t = label_and_advance(protocol, clock, t, key=k + 1, period_ms=period)
    frame(protocol, clock, t)
    assert protocol.phase is Phase.FINISHED and log.finished == [len(IDS)]
    assert [f.trial.stimulus_id for f in log.trials] == list(IDS)
    assert [f.trial.label for f in log.trials] == list(LABELS[: len(IDS)])
    for finished in log.trials:
        blank, cross, second, stimulus, offset = finished.trial.phases.as_tuple()
        assert cross - blank == pytest.approx(30 * period)  # 500 ms = 30 frames
        assert second - cross == pytest.approx(12 * period)  # 200 ms = 12 frames
        assert stimulus - second == pytest.approx(30 * period)
        assert offset - stimulus == pytest.approx(4 * period)  # 3 frames, then the key press
        assert finished.trial.label_source == "keyboard"
        assert finished.trial.response_time_ms == pytest.approx(4 * period)  # labelled as it ended
        assert finished.frames.n_frames == 30 + 12 + 30 + 4
        assert (finished.frames.blank_frames, finished.frames.cross_frames) == (30, 12)
        assert finished.frames.dropped_frames == 0
    # the next trial's blank begins with the frame that ends the previous image
    for before, after in zip(log.trials, log.trials[1:], strict=False):
        assert after.trial.phases.blank_onset_ms == before.trial.phases.stimulus_offset_ms


@given(
    refresh_hz=st.sampled_from([50.0, 59.94, 60.0, 75.0, 120.0, 144.0, 240.0]),
    jitter=st.lists(st.floats(-0.2, 0.2), min_size=400, max_size=400),
    drops=st.sets(st.integers(0, 399), max_size=6),
    label_frames=st.lists(st.integers(1, 20), min_size=3, max_size=3),
)
def test_property_phases_come_in_order_with_monotonic_onsets_near_their_intended_length(
    refresh_hz: float, jitter: list[float], drops: set[int], label_frames: list[int]
) -> None:
    protocol, log, clock = make(IDS[:3], refresh_hz=refresh_hz)
    period = 1000.0 / refresh_hz
    protocol.start()
    t, trial, waited = 0.0, 0, 0
    for k in range(5000):
        phase = protocol.begin_frame(t)
        clock.t_ms = t
        protocol.frame_presented(t)
        if phase is Phase.FINISHED:
            break
        if phase is Phase.STIMULUS:
            waited += 1
            if waited == label_frames[trial]:
                protocol.key_label(1 + trial)
                assert protocol.advance()
                trial, waited = trial + 1, 0
        step = (2.0 if k % 400 in drops else 1.0) + jitter[k % 400]
        t += step * period
    assert len(log.trials) == 3
    sequence = [p.phase for p in log.phases]
    assert sequence == [*([Phase.BLANK, Phase.CROSS, Phase.SECOND_BLANK, Phase.STIMULUS] * 3), Phase.FINISHED]
    onsets = [p.t_ms for p in log.phases]
    assert onsets == sorted(onsets)
    for finished in log.trials:
        durations = phase_durations([finished.trial.phases])[0]
        assert (durations >= 0).all()
        for phase, measured in zip(TIMED_PHASES, durations[:3], strict=True):
            intended = protocol.intended_frames(phase) * period
            # never more than half a frame short; at most one late frame (2.2 periods) long
            assert intended - 0.7 * period <= measured <= intended + 2.2 * period


def test_time_paced_phases_end_at_the_frame_nearest_their_intended_end() -> None:
    protocol, log, clock = make(IDS[:1], refresh_hz=60.0, frame_counted=False)
    protocol.start()
    t = run_until(protocol, clock, 0.0, Phase.STIMULUS, period_ms=7.0)  # a 142.9 Hz timer, 60 Hz assumed
    label_and_advance(protocol, clock, t, key=1, period_ms=7.0)
    frame(protocol, clock, t + 100.0)
    blank, cross, second, _, _ = log.trials[0].trial.phases.as_tuple()
    assert abs((cross - blank) - 500.0) <= 7.0
    assert abs((second - cross) - 200.0) <= 7.0
    assert log.trials[0].frames.frame_counted is False


# --- labels ---------------------------------------------------------------------------------------


def to_stimulus(protocol: LabelingProtocol, clock: Clock, t_ms: float = 0.0) -> float:
    if protocol.phase is Phase.IDLE:
        protocol.start()
    t = run_until(protocol, clock, t_ms, Phase.STIMULUS, period_ms=1000.0 / 60.0)
    frame(protocol, clock, t)
    return t + 1000.0 / 60.0


def test_labels_are_taken_only_while_the_image_is_shown() -> None:
    protocol, log, clock = make()
    protocol.start()
    frame(protocol, clock, 0.0)
    assert not protocol.key_label(2)
    assert log.notices[-1] == "Labels are taken while the image is shown."
    to_stimulus(protocol, clock, 16.0)
    assert protocol.key_label(2) and protocol.choice.label == "happy"
    assert not protocol.key_label(9)
    assert "Keys 1–8" in log.notices[-1]


def test_advancing_needs_a_label() -> None:
    protocol, log, clock = make()
    to_stimulus(protocol, clock)
    assert not protocol.advance()
    assert "before going on" in log.notices[-1]
    assert protocol.phase is Phase.STIMULUS


def test_unrecognised_speech_is_shown_and_never_becomes_a_label() -> None:
    protocol, log, clock = make()
    to_stimulus(protocol, clock)
    assert not protocol.set_label(None, source="speech", text="hoppy")
    assert protocol.choice.label is None and protocol.choice.unrecognised
    assert protocol.choice.describe() == "unrecognised: hoppy"
    assert not protocol.advance()
    assert protocol.set_label("surprise", source="speech", text="surprise", confidence=0.8)
    assert protocol.choice.describe() == "surprise (spoken)"
    assert not protocol.set_label(None, source="speech", text="um")
    assert protocol.choice.label == "surprise"  # an unrecognised utterance keeps the label
    assert protocol.choice.describe() == "surprise (spoken)   ·   unrecognised: um"
    assert [c.label for c in log.labels] == [None, None, "surprise", "surprise"]
    with pytest.raises(ValueError, match="only speech"):
        protocol.set_label(None, source="keyboard")
    with pytest.raises(ValueError, match="label set"):
        protocol.set_label("bored", source="speech", text="bored")


def test_a_key_corrects_a_spoken_label_and_keeps_what_was_heard() -> None:
    protocol, log, clock = make()
    t = to_stimulus(protocol, clock)
    protocol.set_label("fear", source="speech", text="fear", confidence=0.6)
    protocol.key_label(4)
    assert protocol.advance()
    frame(protocol, clock, t)
    trial = log.trials[0].trial
    assert (trial.label, trial.label_source, trial.recognised_text, trial.confidence) == (
        "surprise",
        "keyboard",
        "fear",
        None,
    )


def test_a_spoken_label_is_stored_with_its_text_and_confidence() -> None:
    protocol, log, clock = make()
    t = to_stimulus(protocol, clock)
    clock.t_ms = t + 300.0
    protocol.set_label("anger", source="speech", text="anger", confidence=0.9)
    protocol.advance()
    frame(protocol, clock, t + 320.0)
    trial = log.trials[0].trial
    assert (trial.label, trial.label_source, trial.recognised_text, trial.confidence) == (
        "anger",
        "speech",
        "anger",
        0.9,
    )
    assert trial.response_time_ms == pytest.approx(t + 300.0 - trial.phases.stimulus_onset_ms)


def test_a_label_subset_maps_keys_in_label_order() -> None:
    protocol, _, clock = make(labels=("neutral", "happy", "sad"))
    to_stimulus(protocol, clock)
    assert protocol.key_label(3) and protocol.choice.label == "sad"
    assert not protocol.key_label(4)
    with pytest.raises(ValueError, match="order"):
        LabelingProtocol(IDS, labels=("sad", "happy"))
    with pytest.raises(ValueError, match="unknown label"):
        LabelingProtocol(IDS, labels=("neutral", "bored"))


# --- pause and resume ---------------------------------------------------------------------------


def test_pausing_mid_trial_abandons_it_and_resume_shows_the_same_stimulus_again() -> None:
    protocol, log, clock = make()
    period = 1000.0 / 60.0
    t = to_stimulus(protocol, clock)
    protocol.key_label(1)
    assert protocol.advance()  # trial 0 done; trial 1 starts
    t = run_until(protocol, clock, t, Phase.CROSS, period_ms=period)
    protocol.pause()
    frame(protocol, clock, t)
    assert protocol.phase is Phase.PAUSED and protocol.stimulus_id is None
    for _ in range(5):
        t += period
        frame(protocol, clock, t)
    protocol.resume()
    t += period
    assert frame(protocol, clock, t) is Phase.BLANK
    assert protocol.position == 1 and protocol.stimulus_id == IDS[1]
    t = to_stimulus(protocol, clock, t + period)
    protocol.key_label(2)
    protocol.advance()
    frame(protocol, clock, t)
    assert [f.trial.stimulus_id for f in log.trials] == [IDS[0], IDS[1]]
    assert [f.trial.position for f in log.trials] == [0, 1]
    # the resumed trial's onsets are all after the pause
    pause_onset = next(p.t_ms for p in log.phases if p.phase is Phase.PAUSED)
    assert log.trials[1].trial.phases.blank_onset_ms > pause_onset


def test_pausing_right_after_a_key_press_keeps_the_finished_trial() -> None:
    protocol, log, clock = make()
    t = to_stimulus(protocol, clock)
    protocol.key_label(1)
    protocol.advance()
    protocol.pause()
    frame(protocol, clock, t)
    assert [f.trial.position for f in log.trials] == [0]
    assert log.trials[0].trial.phases.stimulus_offset_ms == t
    protocol.resume()
    assert protocol.position == 1


def test_closing_keeps_a_trial_whose_key_press_came_after_the_last_frame() -> None:
    protocol, log, clock = make()
    t = to_stimulus(protocol, clock)
    protocol.key_label(1)
    protocol.advance()
    clock.t_ms = t + 3.0
    protocol.close()
    assert [f.trial.phases.stimulus_offset_ms for f in log.trials] == [t + 3.0]
    assert protocol.phase is Phase.PAUSED and protocol.position == 1


def test_a_protocol_started_at_the_resume_point_shows_the_rest() -> None:
    protocol, _, clock = make(start_position=3)
    protocol.start()
    frame(protocol, clock, 0.0)
    assert protocol.stimulus_id == IDS[3]
    done, done_log, done_clock = make(start_position=len(IDS))
    done.start()
    frame(done, done_clock, 0.0)
    assert done.phase is Phase.FINISHED and done_log.finished == [len(IDS)]
    with pytest.raises(ValueError, match="start_position"):
        LabelingProtocol(IDS, start_position=5)


def test_frame_times_must_not_go_back() -> None:
    protocol, _, clock = make()
    protocol.start()
    frame(protocol, clock, 10.0)
    with pytest.raises(ValueError, match="non-decreasing"):
        protocol.frame_presented(5.0)


# --- the timing report --------------------------------------------------------------------------


def make_stored_trial(position: int, durations: tuple[float, float, float, float], start_ms: float) -> Trial:
    times = np.cumsum([start_ms, *durations])
    return Trial(position, f"s/{position}", PhaseOnsets(*(float(t) for t in times)), "happy", "keyboard")


def test_timing_report_against_hand_computed_numbers() -> None:
    trials = [
        make_stored_trial(0, (500.0, 200.0, 500.0, 900.0), 0.0),
        make_stored_trial(1, (516.0, 183.0, 500.0, 1500.0), 5000.0),
        make_stored_trial(2, (500.0, 217.0, 484.0, 1200.0), 9000.0),
    ]
    frames = [TrialFrames(60.0, True, 30, 12, 30, 130, d, 20.0) for d in (0, 2, 1)]
    report = timing_report(trials, timing=ProtocolTiming(), refresh_hz=60.0, frames=frames)
    blank = report.phase(Phase.BLANK)
    assert blank.n_trials == 3 and blank.intended_frames == 30
    assert blank.mean_ms == pytest.approx((500 + 516 + 500) / 3)
    assert blank.sd_ms == pytest.approx(float(np.std([500, 516, 500], ddof=1)))
    assert blank.max_error_ms == pytest.approx(16.0)
    assert blank.max_error_frames == pytest.approx(16.0 * 60 / 1000)
    assert blank.ratio == pytest.approx(blank.mean_ms / 500.0)
    cross = report.phase(Phase.CROSS)
    assert cross.max_error_ms == pytest.approx(17.0) and cross.intended_frames == 12
    stimulus = report.phase(Phase.STIMULUS)
    assert math.isnan(stimulus.intended_ms) and stimulus.mean_ms == pytest.approx(1200.0)
    assert (report.n_frames, report.dropped_frames, report.trials_with_drops) == (390, 3, 2)
    empty = timing_report([], timing=ProtocolTiming(), refresh_hz=60.0)
    assert empty.phase(Phase.BLANK).n_trials == 0 and math.isnan(empty.phase(Phase.BLANK).mean_ms)


@given(
    pauses=st.lists(st.tuples(st.integers(0, 300), st.integers(1, 30)), max_size=5),
    label_frames=st.integers(1, 30),
)
def test_property_pauses_never_lose_or_repeat_a_trial(
    pauses: list[tuple[int, int]], label_frames: int
) -> None:
    protocol, log, clock = make()
    period = 1000.0 / 60.0
    protocol.start()
    pause_at = dict(pauses)
    resume_at: int | None = None
    waited = 0
    for k in range(3000):
        t = k * period
        phase = frame(protocol, clock, t)
        if phase is Phase.FINISHED:
            break
        if resume_at == k:
            protocol.resume()
            resume_at = None
        elif phase is not Phase.PAUSED and k in pause_at:
            protocol.pause()
            resume_at, waited = k + pause_at[k], 0
        elif phase is Phase.STIMULUS:
            waited += 1
            if waited >= label_frames:
                protocol.key_label(1)
                protocol.advance()
                waited = 0
    assert [f.trial.position for f in log.trials] == list(range(len(IDS)))
    assert [f.trial.stimulus_id for f in log.trials] == list(IDS)
    pause_times = [p.t_ms for p in log.phases if p.phase is Phase.PAUSED]
    previous_offset = -math.inf
    for finished in log.trials:
        onsets = finished.trial.phases.as_tuple()
        assert list(onsets) == sorted(onsets) and onsets[0] >= previous_offset
        assert not any(onsets[0] < p < onsets[4] for p in pause_times)  # no trial spans a pause
        previous_offset = onsets[4]
