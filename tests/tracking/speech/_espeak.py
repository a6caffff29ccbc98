"""Spoken test words: espeak-ng speech at 16 kHz with the noise floor of a real microphone.

espeak-ng writes 22,050-Hz WAV files with digital silence around the word. A microphone never
delivers digital silence, and PocketSphinx's features degrade on it (measured: the closed label
grammar named 44/64 words right on digital silence, 61/64 with a −61 dBFS noise floor), so a
seeded Gaussian noise floor (σ = 30 LSB ≈ −61 dBFS) and 500 ms of it before and after the word are
added, as a quiet room would give.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from tracking.speech.audio import read_wav, resample_pcm16

ESPEAK = shutil.which("espeak-ng")

needs_espeak = pytest.mark.skipif(
    ESPEAK is None, reason="espeak-ng is not installed (apt install espeak-ng); spoken-word tests need it"
)

NOISE_STD = 30.0
PAD_S = 0.5


@dataclass(frozen=True, slots=True)
class Voice:
    """An espeak-ng voice (``-v``, with an optional ``+variant``), its accent, and its pitch (0–99)."""

    name: str
    accent: str
    pitch: int


TUNING: tuple[Voice, ...] = (
    Voice("en-gb-x-gbclan", "Lancaster", 50),
    Voice("en-gb-x-gbcwmd", "West Midlands", 40),
    Voice("en-us-nyc", "New York", 55),
    Voice("en-gb-x-gbclan+f2", "Lancaster, female", 65),
    Voice("en-us-nyc+m3", "New York, low", 30),
)
"""Voices every option was tuned on."""

HELD_OUT: tuple[Voice, ...] = (
    Voice("en-gb", "British", 50),
    Voice("en-gb-scotland", "Scottish", 45),
    Voice("en-gb-x-rp", "RP", 35),
    Voice("en-029", "Caribbean", 55),
    Voice("en-us", "US", 50),
    Voice("en-us+f3", "US, female", 70),
    Voice("en-gb-scotland+m7", "Scottish, low", 25),
)
"""Voices never used for tuning (no espeak-ng voice in common with :data:`TUNING`)."""


def espeak_wav(
    word: str, folder: Path, *, voice: str = "en-us", rate_wpm: int = 130, pitch: int = 50
) -> Path:
    """Write ``word`` spoken by espeak-ng to a WAV file in ``folder`` (22,050 Hz, digital silence around)."""
    assert ESPEAK is not None
    path = folder / f"{voice}_{rate_wpm}_{pitch}_{word.replace(' ', '_')}.wav"
    if not path.exists():
        cmd = [ESPEAK, "-v", voice, "-s", str(rate_wpm), "-p", str(pitch), "-w", str(path), word]
        subprocess.run(cmd, check=True, capture_output=True)
    return path


def with_noise_floor(
    pcm: NDArray[np.int16],
    *,
    rate_hz: int,
    seed: int = 0,
    lead_s: float = PAD_S,
    tail_s: float = PAD_S,
    noise_std: float = NOISE_STD,
) -> NDArray[np.int16]:
    """``pcm`` after ``lead_s`` and before ``tail_s`` seconds of room, all under a seeded noise floor.

    ``lead_s=0`` gives a recording whose word starts at its first sample (no lead-in).
    """
    lead, tail = np.zeros(round(lead_s * rate_hz)), np.zeros(round(tail_s * rate_hz))
    signal = np.concatenate([lead, pcm.astype(np.float64), tail])
    noisy = signal + np.random.default_rng(seed).normal(0.0, noise_std, signal.size)
    out: NDArray[np.int16] = np.clip(np.rint(noisy), -32768, 32767).astype(np.int16)
    return out


def spoken(
    word: str,
    folder: Path,
    *,
    voice: str = "en-us",
    rate_wpm: int = 130,
    pitch: int = 50,
    lead_s: float = PAD_S,
    seed: int = 0,
) -> NDArray[np.int16]:
    """``word`` spoken by espeak-ng, at 16 kHz, with a microphone's noise floor (``lead_s`` of it first)."""
    pcm, rate = read_wav(espeak_wav(word, folder, voice=voice, rate_wpm=rate_wpm, pitch=pitch))
    pcm16 = resample_pcm16(pcm, from_rate_hz=rate, to_rate_hz=16000)
    return with_noise_floor(pcm16, rate_hz=16000, lead_s=lead_s, seed=seed)


def clean_word(
    word: str, folder: Path, *, voice: str = "en-us", rate_wpm: int = 130, pitch: int = 50
) -> NDArray[np.int16]:
    """``word`` spoken by espeak-ng at 16 kHz with espeak-ng's digital silence trimmed off both ends."""
    pcm, rate = read_wav(espeak_wav(word, folder, voice=voice, rate_wpm=rate_wpm, pitch=pitch))
    voiced = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 0)
    if voiced.size:
        pcm = pcm[voiced[0] : voiced[-1] + 1]
    return resample_pcm16(pcm, from_rate_hz=rate, to_rate_hz=16000)


def write_wav(path: Path, pcm: NDArray[np.int16], *, rate_hz: int) -> Path:
    """Write mono 16-bit PCM to ``path``."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate_hz)
        wav.writeframes(pcm.astype("<i2").tobytes())
    return path


def blocks(pcm: NDArray[np.int16], *, block_len: int = 480) -> list[NDArray[np.int16]]:
    """``pcm`` cut into consecutive blocks (30 ms at 16 kHz by default)."""
    return [pcm[i : i + block_len] for i in range(0, pcm.size, block_len)]
