"""Tests for tracking/speech/endpointing.py: where utterances begin and end, streamed or offline."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tracking.speech.base import Recognition
from tracking.speech.endpointing import (
    Endpointer,
    EndpointEvent,
    Endpointing,
    EndpointState,
    Utterance,
    UtteranceListener,
    endpoint_step,
    find_utterances,
)

RATE = 16000
FRAME = 160  # 10 ms
ENERGY = Endpointing(detector="energy")


def signal(
    duration_s: float, bursts: list[tuple[float, float]], *, amplitude: float = 5000.0, seed: int = 0
) -> NDArray[np.int16]:
    """A −61 dBFS noise floor with 200-Hz tone bursts at the given (start_s, end_s)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 30.0, round(duration_s * RATE))
    t = np.arange(x.size) / RATE
    for start, end in bursts:
        inside = (t >= start) & (t < end)
        x[inside] += amplitude * np.sin(2 * np.pi * 200 * t[inside])
    out: NDArray[np.int16] = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
    return out


def same(a: list[Utterance], b: list[Utterance]) -> bool:
    key = [(u.start_sample, u.speech_start_sample, u.speech_end_sample, u.truncated) for u in a]
    return key == [
        (u.start_sample, u.speech_start_sample, u.speech_end_sample, u.truncated) for u in b
    ] and all(np.array_equal(u.pcm, v.pcm) for u, v in zip(a, b, strict=True))


class TestFindUtterances:
    def test_one_word(self) -> None:
        x = signal(2.0, [(0.5, 1.0)])
        (u,) = find_utterances(x)
        assert abs(u.speech_start_sample - 8000) <= FRAME
        assert abs(u.speech_end_sample - 16000) <= FRAME
        assert u.start_sample == u.speech_start_sample - 800  # 50 ms of preroll
        assert u.start_sample + u.pcm.size == u.speech_end_sample + 6400  # 400 ms of trailing silence
        np.testing.assert_array_equal(u.pcm, x[u.start_sample : u.start_sample + u.pcm.size])
        assert not u.truncated

    def test_a_pause_longer_than_the_trailing_silence_separates_words(self) -> None:
        assert len(find_utterances(signal(3.0, [(0.5, 0.9), (1.5, 1.9)]))) == 2

    def test_a_short_pause_stays_inside_the_word(self) -> None:
        assert len(find_utterances(signal(3.0, [(0.5, 0.9), (1.1, 1.5)]))) == 1

    def test_clicks_shorter_than_min_speech_are_ignored(self) -> None:
        assert find_utterances(signal(2.0, [(0.5, 0.55), (1.0, 1.05)])) == []

    def test_the_noise_floor_alone_is_no_utterance(self) -> None:
        assert find_utterances(signal(3.0, [])) == []
        assert find_utterances(np.zeros(RATE, np.int16)) == []

    def test_the_threshold_follows_the_calibrated_noise_floor(self, rng: np.random.Generator) -> None:
        def noisy(amplitude: float) -> NDArray[np.int16]:
            x = rng.normal(0, 1000.0, 2 * RATE) + signal(2.0, [(0.5, 1.0)], amplitude=amplitude) * 1.0
            out: NDArray[np.int16] = np.clip(np.rint(x), -32768, 32767).astype(np.int16)
            return out

        assert find_utterances(noisy(1500.0), endpointing=ENERGY) == []  # 1 dB above a −30 dBFS room
        assert len(find_utterances(noisy(10000.0), endpointing=ENERGY)) == 1

    def test_the_energy_detector_misses_speech_during_calibration(self) -> None:
        assert find_utterances(signal(1.5, [(0.0, 0.12)]), endpointing=ENERGY) == []

    def test_the_webrtc_detector_needs_no_lead_in(self) -> None:
        x = signal(1.5, [(0.0, 0.4)])
        (u,) = find_utterances(x)
        assert u.start_sample == 0 and u.speech_start_sample <= 2 * FRAME
        assert abs(u.speech_end_sample - 6400) <= 3 * FRAME
        assert find_utterances(x, endpointing=ENERGY) == []  # the floor was measured on the tone

    @pytest.mark.parametrize("detector", ["webrtc", "energy"])
    def test_both_detectors_find_a_word_after_room_noise(self, detector: str) -> None:
        (u,) = find_utterances(signal(2.0, [(0.5, 1.0)]), endpointing=Endpointing(detector=detector))
        assert (
            abs(u.speech_start_sample - 8000) <= 3 * FRAME and abs(u.speech_end_sample - 16000) <= 3 * FRAME
        )

    def test_a_long_utterance_is_cut_at_max_utterance(self) -> None:
        first = find_utterances(signal(6.0, [(0.5, 5.8)]))[0]
        assert first.truncated
        assert (first.start_sample + first.pcm.size - first.speech_start_sample) == 4000 * RATE // 1000

    def test_speech_at_the_end_comes_back_truncated(self) -> None:
        (u,) = find_utterances(signal(1.0, [(0.5, 1.0)]))
        assert u.truncated and u.start_sample + u.pcm.size == RATE

    @settings(max_examples=25)
    @given(st.lists(st.integers(1, 6400), min_size=1, max_size=40))
    def test_streaming_in_any_blocks_gives_the_same_utterances(self, cuts: list[int]) -> None:
        x = signal(3.0, [(0.3, 0.8), (1.4, 1.6), (2.2, 2.3)], seed=3)
        whole = find_utterances(x)
        edges = np.unique(np.clip(np.cumsum(cuts), 0, x.size))
        endpointer = Endpointer(sample_rate_hz=RATE)
        streamed = [u for block in np.split(x, edges) for u in endpointer.process(block)]
        last = endpointer.flush()
        assert same(whole, streamed + ([] if last is None else [last]))
        assert len(whole) == 3


class TestEndpointStep:
    def test_start_and_end(self) -> None:
        e = Endpointing()
        state, events = EndpointState(), []
        for level in [-60.0] * 15 + [-20.0] * 8 + [-60.0] * 40:
            state, event = endpoint_step(state, level, endpointing=e)
            events.append(event)
        assert events.index(EndpointEvent.START) == 15 + 7  # the 8th speech frame completes 80 ms
        assert events.index(EndpointEvent.END) == 15 + 8 + 39  # the 40th silent frame completes 400 ms
        assert events.count(EndpointEvent.START) == events.count(EndpointEvent.END) == 1

    def test_the_floor_drops_at_once_and_rises_slowly(self) -> None:
        e = Endpointing(calibration_ms=0.0, floor_rise_db_s=2.0)
        state, _ = endpoint_step(EndpointState(floor_dbfs=-40.0), -70.0, endpointing=e)
        assert state.floor_dbfs == -70.0
        state, _ = endpoint_step(state, -30.0, endpointing=e)
        assert state.floor_dbfs == pytest.approx(-70.0 + 0.02)

    def test_a_detectors_verdict_replaces_the_energy_rule_and_calibration(self) -> None:
        e = Endpointing()
        state, _ = endpoint_step(EndpointState(), -30.0, endpointing=e, voiced=True)
        assert state.speech_run == 1  # in the first frame: no calibration
        state, _ = endpoint_step(EndpointState(floor_dbfs=-90.0), -20.0, endpointing=e, voiced=False)
        assert state.speech_run == 0
        state, _ = endpoint_step(EndpointState(), -55.0, endpointing=e, voiced=True)
        assert state.speech_run == 0  # voiced, but below min_level_dbfs

    def test_absolute_gate(self) -> None:
        e = Endpointing(calibration_ms=0.0)
        _, event = endpoint_step(EndpointState(floor_dbfs=-90.0), -55.0, endpointing=e)
        state, _ = endpoint_step(EndpointState(floor_dbfs=-90.0), -45.0, endpointing=e)
        assert event is EndpointEvent.NONE and state.speech_run == 1


class TestEndpointing:
    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"frame_ms": 0.0}, "frame_ms"),
            ({"snr_db": -1.0}, "snr_db"),
            ({"min_level_dbfs": 3.0}, "min_level_dbfs"),
            ({"max_utterance_ms": 300.0}, "max_utterance_ms"),
            ({"detector": "silero"}, "detector"),
            ({"webrtc_mode": 4}, "webrtc_mode"),
            ({"frame_ms": 15.0}, "10, 20 or 30 ms"),
        ],
    )
    def test_validates_itself(self, kwargs: dict[str, object], match: str) -> None:
        with pytest.raises(ValueError, match=match):
            Endpointing(**kwargs)  # type: ignore[arg-type]

    def test_the_webrtc_detector_wants_a_rate_it_knows(self) -> None:
        with pytest.raises(ValueError, match="Hz"):
            Endpointer(sample_rate_hz=11025)
        assert Endpointer(sample_rate_hz=11025, endpointing=ENERGY).frame_len == 110

    def test_frames(self) -> None:
        e = Endpointing()
        assert (e.n_frames(80.0), e.n_frames(85.0), e.n_frames(0.0)) == (8, 9, 0)


class TestUtteranceListener:
    @staticmethod
    def listener(decoded: list[NDArray[np.int16]]) -> UtteranceListener:
        def decode(pcm: NDArray[np.int16]) -> Recognition:  # records what the listener hands over
            decoded.append(pcm)
            return Recognition(None, "", 0.0, 100.0, 200.0)

        return UtteranceListener(decode, sample_rate_hz=RATE)

    def test_listens_only_between_start_and_finish(self) -> None:
        decoded: list[NDArray[np.int16]] = []
        listener = self.listener(decoded)
        x = signal(2.0, [(0.5, 1.0)])
        assert all(listener.accept(x[i : i + 480]) is None for i in range(0, x.size, 480))
        assert listener.finish() is None and decoded == [] and not listener.listening

    def test_times_are_shifted_onto_the_listening_clock(self) -> None:
        decoded: list[NDArray[np.int16]] = []
        listener = self.listener(decoded)
        x = signal(2.0, [(0.5, 1.0)])
        listener.start(t0_ms=5000.0)
        got = [r for r in (listener.accept(x[i : i + 480]) for i in range(0, x.size, 480)) if r is not None]
        (u,) = find_utterances(x)
        assert len(got) == 1 and listener.finish() is None
        offset_ms = 5000.0 + 1000.0 * u.start_sample / RATE
        assert (got[0].start_ms, got[0].end_ms) == (offset_ms + 100.0, offset_ms + 200.0)
        np.testing.assert_array_equal(decoded[0], u.pcm)

    def test_finish_decodes_the_utterance_in_progress(self) -> None:
        decoded: list[NDArray[np.int16]] = []
        listener = self.listener(decoded)
        x = signal(1.0, [(0.5, 1.0)])
        listener.start()
        assert all(listener.accept(x[i : i + 480]) is None for i in range(0, x.size, 480))
        assert listener.finish() is not None and len(decoded) == 1
        assert listener.accept(x[:480]) is None and listener.finish() is None

    def test_refuses_blocks_longer_than_the_trailing_silence(self) -> None:
        listener = self.listener([])
        listener.start()
        assert listener.max_block_ms == 400.0
        listener.accept(np.zeros(6400, np.int16))
        with pytest.raises(ValueError, match="at most 400 ms"):
            listener.accept(np.zeros(6401, np.int16))

    def test_rejects_a_non_finite_start(self) -> None:
        with pytest.raises(ValueError, match="t0_ms"):
            self.listener([]).start(t0_ms=float("nan"))
