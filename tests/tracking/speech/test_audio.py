"""Tests for tracking/speech/audio.py: levels, WAV reading, resampling, voicing."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.typing import NDArray

from tests.tracking.speech._espeak import write_wav
from tracking.speech.audio import (
    check_pcm16,
    frame_levels_dbfs,
    level_dbfs,
    read_wav,
    resample_pcm16,
    voiced_duration_ms,
    wav_blocks,
)

RATE = 16000


def tone(freq_hz: float, amplitude: float, duration_s: float, *, rate: int = RATE) -> NDArray[np.int16]:
    t = np.arange(round(duration_s * rate)) / rate
    out: NDArray[np.int16] = np.rint(amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)
    return out


def harmonic(f0_hz: float, amplitude: float, duration_s: float, n: int) -> NDArray[np.float64]:
    """A voice-like tone: ``n`` harmonics of ``f0_hz`` with amplitudes falling as 1/k."""
    t = np.arange(round(duration_s * RATE)) / RATE
    return np.asarray(sum(amplitude / k * np.sin(2 * np.pi * f0_hz * k * t) for k in range(1, n + 1)))


def slow_level_dbfs(block: NDArray[np.int16]) -> float:
    """The definition, sample by sample: 20·log10(sqrt(mean(x²)) / 32768)."""
    total = 0.0
    for x in block.tolist():
        total += float(x) * float(x)
    if not block.size or total == 0:
        return -math.inf
    return 20 * math.log10(math.sqrt(total / block.size) / 32768)


def slow_voiced_frames(pcm: NDArray[np.int16], *, rate: int, frame_len: int, hop: int) -> int:
    """Frame by frame, lag by lag: unbiased normalised autocorrelation peak in 70–400 Hz above 0.5."""
    count = 0
    for start in range(0, pcm.size - frame_len + 1, hop):
        frame = pcm[start : start + frame_len].astype(np.float64)
        frame = frame - frame.mean()
        energy = float(np.dot(frame, frame))
        if energy <= 0 or 10 * math.log10(energy / frame_len / 32768**2) <= -50:
            continue
        best = max(
            float(np.dot(frame[:-lag], frame[lag:])) / energy * frame_len / (frame_len - lag)
            for lag in range(int(rate / 400), int(rate / 70) + 1)
        )
        count += best > 0.5
    return count


class TestLevel:
    def test_full_scale_square_is_0_dbfs(self) -> None:
        square = np.where(np.arange(1600) % 40 < 20, 32767, -32768).astype(np.int16)
        assert level_dbfs(square) == pytest.approx(0.0, abs=1e-3)

    def test_full_scale_sine_is_minus_3_dbfs(self) -> None:
        assert level_dbfs(tone(1000, 32767, 0.1)) == pytest.approx(-3.0103, abs=0.01)

    def test_half_amplitude_is_6_db_lower(self) -> None:
        full, half = level_dbfs(tone(440, 20000, 0.1)), level_dbfs(tone(440, 10000, 0.1))
        assert full - half == pytest.approx(6.0206, abs=0.01)

    @pytest.mark.parametrize("block", [np.zeros(480, np.int16), np.zeros(0, np.int16)])
    def test_silence_and_empty_are_minus_inf(self, block: NDArray[np.int16]) -> None:
        assert level_dbfs(block) == -math.inf

    def test_noise_floor_of_a_quiet_microphone(self, rng: np.random.Generator) -> None:
        noise = np.rint(rng.normal(0, 30, 48000)).astype(np.int16)
        assert level_dbfs(noise) == pytest.approx(20 * math.log10(30 / 32768), abs=0.1)

    @given(arrays(np.int16, st.integers(0, 300)))
    def test_matches_the_definition(self, block: NDArray[np.int16]) -> None:
        expected = slow_level_dbfs(block)
        got = level_dbfs(block)
        assert got == pytest.approx(expected, abs=1e-9) if math.isfinite(expected) else got == expected

    @given(arrays(np.int16, st.integers(0, 1000)), st.integers(1, 200))
    def test_frame_levels_are_the_level_of_each_frame(self, pcm: NDArray[np.int16], frame_len: int) -> None:
        levels = frame_levels_dbfs(pcm, frame_len=frame_len)
        assert levels.shape == (pcm.size // frame_len,)
        for i, level in enumerate(levels):
            expected = level_dbfs(pcm[i * frame_len : (i + 1) * frame_len])
            assert (
                level == pytest.approx(expected, abs=1e-9) if math.isfinite(expected) else level == expected
            )

    def test_rejects_float_audio_with_advice(self) -> None:
        with pytest.raises(TypeError, match=r"int16.*32768"):
            level_dbfs(np.zeros(10))  # type: ignore[arg-type]

    def test_rejects_stereo(self) -> None:
        with pytest.raises(ValueError, match="mono"):
            check_pcm16(pcm=np.zeros((10, 2), np.int16))


class TestWav:
    def test_round_trip(self, tmp_path: Path, rng: np.random.Generator) -> None:
        pcm = rng.integers(-32768, 32767, 1000, endpoint=True).astype(np.int16)
        got, rate = read_wav(write_wav(tmp_path / "a.wav", pcm, rate_hz=22050))
        assert rate == 22050
        np.testing.assert_array_equal(got, pcm)

    def test_stereo_is_averaged(self, tmp_path: Path) -> None:
        path = tmp_path / "stereo.wav"
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(8000)
            wav.writeframes(np.array([100, 300, -50, -150], "<i2").tobytes())
        pcm, _ = read_wav(path)
        np.testing.assert_array_equal(pcm, [200, -100])

    def test_8_bit_is_refused_with_advice(self, tmp_path: Path) -> None:
        path = tmp_path / "8bit.wav"
        with wave.open(str(path), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(1)
            wav.setframerate(8000)
            wav.writeframes(bytes(100))
        with pytest.raises(ValueError, match=r"8-bit.*16-bit"):
            read_wav(path)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match="No WAV file"):
            read_wav(tmp_path / "nothing.wav")

    def test_not_a_wav(self, tmp_path: Path) -> None:
        (tmp_path / "x.wav").write_text("hello")
        with pytest.raises(ValueError, match="not a readable PCM WAV"):
            read_wav(tmp_path / "x.wav")

    def test_blocks_cover_the_resampled_file(self, tmp_path: Path) -> None:
        pcm = tone(300, 10000, 1.0, rate=22050)
        path = write_wav(tmp_path / "t.wav", pcm, rate_hz=22050)
        got = list(wav_blocks(path, block_ms=30, sample_rate_hz=RATE))
        assert all(b.size == 480 for b in got[:-1]) and 0 < got[-1].size <= 480
        whole = resample_pcm16(pcm, from_rate_hz=22050, to_rate_hz=RATE)
        np.testing.assert_array_equal(np.concatenate(got), whole)


class TestResample:
    def test_22050_to_16000_keeps_the_tone(self) -> None:
        pcm = tone(440, 10000, 1.0, rate=22050)
        out = resample_pcm16(pcm, from_rate_hz=22050, to_rate_hz=RATE)
        assert out.dtype == np.int16 and out.size == RATE
        spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
        assert np.argmax(spectrum) == pytest.approx(440, abs=1)  # 1-Hz bins for one second
        assert level_dbfs(out[1000:-1000]) == pytest.approx(level_dbfs(pcm[1000:-1000]), abs=0.1)

    def test_same_rate_is_a_copy(self) -> None:
        pcm = tone(440, 100, 0.01)
        out = resample_pcm16(pcm, from_rate_hz=RATE, to_rate_hz=RATE)
        np.testing.assert_array_equal(out, pcm)
        assert out is not pcm

    def test_clips_instead_of_wrapping(self) -> None:
        square = np.where(np.arange(2205) % 50 < 25, 32767, -32768).astype(np.int16)
        out = resample_pcm16(square, from_rate_hz=22050, to_rate_hz=RATE)
        assert out.max() == 32767 and out.min() == -32768  # the filter's overshoot is clipped

    @pytest.mark.parametrize("rate", [0, -16000, 16000.5, True])
    def test_rejects_bad_rates(self, rate: object) -> None:
        with pytest.raises(ValueError, match="from_rate_hz"):
            resample_pcm16(np.zeros(10, np.int16), from_rate_hz=rate, to_rate_hz=RATE)  # type: ignore[arg-type]


class TestVoicing:
    def test_a_voice_like_tone_is_voiced_throughout(self) -> None:
        harmonics = np.rint(harmonic(150, 3000, 0.5, 5)).astype(np.int16)
        assert voiced_duration_ms(harmonics, sample_rate_hz=RATE) == pytest.approx(470, abs=20)

    @pytest.mark.parametrize("std", [30, 300, 3000, 10000])
    def test_white_noise_is_not_voiced(self, std: float, rng: np.random.Generator) -> None:
        noise = np.clip(np.rint(rng.normal(0, std, RATE)), -32768, 32767).astype(np.int16)
        assert voiced_duration_ms(noise, sample_rate_hz=RATE) == 0.0

    def test_quiet_voice_below_the_level_gate_is_not_voiced(self) -> None:
        assert voiced_duration_ms(tone(150, 50, 0.5), sample_rate_hz=RATE) == 0.0

    def test_short_audio_has_no_voice(self) -> None:
        assert voiced_duration_ms(tone(150, 3000, 0.02), sample_rate_hz=RATE) == 0.0

    def test_matches_the_slow_definition(self, rng: np.random.Generator) -> None:
        voice = harmonic(120, 4000, 0.3, 3)
        noise = rng.normal(0, 2000, voice.size)
        pcm = np.concatenate([voice, noise, voice * 0.01, voice + noise * 0.5]).astype(np.int16)
        expected = slow_voiced_frames(pcm, rate=RATE, frame_len=640, hop=160)
        assert 0 < expected < (pcm.size - 640) // 160 + 1
        assert voiced_duration_ms(pcm, sample_rate_hz=RATE) == 10.0 * expected

    def test_rejects_an_inverted_pitch_range(self) -> None:
        with pytest.raises(ValueError, match="pitch_range_hz"):
            voiced_duration_ms(tone(150, 3000, 0.1), sample_rate_hz=RATE, pitch_range_hz=(400, 70))
