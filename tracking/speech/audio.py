"""Audio helpers for spoken labels: checks, levels in dBFS, WAV reading and resampling. No device I/O.

Audio is mono 16-bit PCM (``int16``, 1-D), the format microphones deliver and both recognisers
expect. Levels are root-mean-square levels relative to full scale (dBFS): a full-scale square wave
is 0 dBFS, a full-scale sine −3.01 dBFS, and digital silence −inf.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1: annotators spoke the label of
   each image into a microphone.
"""

from __future__ import annotations

import math
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.signal import resample_poly

from tracking._validation import check_positive

__all__ = [
    "FULL_SCALE",
    "check_pcm16",
    "frame_levels_dbfs",
    "level_dbfs",
    "read_wav",
    "resample_pcm16",
    "voiced_duration_ms",
    "wav_blocks",
]

FULL_SCALE = 32768.0
"""Magnitude of int16 full scale; an RMS of this value is 0 dBFS."""


def check_pcm16(**kwargs: object) -> NDArray[np.int16]:
    """Return mono 16-bit PCM as a 1-D int16 array, or raise.

    Raises
    ------
    TypeError
        When the samples are not int16 (convert with ``np.clip(x * 32768, -32768, 32767).astype(np.int16)``).
    ValueError
        When the array is not 1-D (take one channel first).
    """
    if len(kwargs) != 1:
        raise TypeError(f"pass exactly one keyword argument, got {sorted(kwargs)!r}")
    name, value = next(iter(kwargs.items()))
    arr = np.asarray(value)
    if arr.dtype != np.int16:
        raise TypeError(
            f"{name} must be 16-bit PCM (dtype int16); got dtype {arr.dtype!r}. "
            "Scale float audio in [-1, 1] by 32768 and convert with astype(np.int16)."
        )
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be mono, a 1-D array; got shape {arr.shape!r}. Take one channel first."
        )
    return arr


def level_dbfs(block: NDArray[np.int16]) -> float:
    """RMS level of one block of audio in dB relative to full scale, for the level meter.

    Parameters
    ----------
    block : ndarray of int16, shape (n,)
        Mono 16-bit PCM.

    Returns
    -------
    float
        ``20·log10(rms / 32768)``: 0 for a full-scale square wave, −3.01 for a full-scale sine,
        about −61 for the noise floor of a quiet microphone; ``-inf`` for digital silence or an
        empty block.
    """
    pcm = check_pcm16(block=block)
    if pcm.size == 0:
        return -math.inf
    rms = math.sqrt(float(np.mean(np.square(pcm, dtype=np.float64))))
    return 20.0 * math.log10(rms / FULL_SCALE) if rms > 0 else -math.inf


def frame_levels_dbfs(pcm: NDArray[np.int16], *, frame_len: int) -> NDArray[np.float64]:
    """RMS level in dBFS of each whole frame of ``frame_len`` samples (a trailing partial frame is dropped).

    Parameters
    ----------
    pcm : ndarray of int16, shape (n,)
        Mono 16-bit PCM.
    frame_len : int
        Samples per frame (160 for 10 ms at 16 kHz).

    Returns
    -------
    ndarray of float64, shape (n // frame_len,)
        One level per frame, as :func:`level_dbfs` would give it; ``-inf`` for silent frames.
    """
    samples = check_pcm16(pcm=pcm)
    if isinstance(frame_len, bool) or not isinstance(frame_len, (int, np.integer)) or frame_len < 1:
        raise ValueError(f"frame_len must be an integer >= 1; got {frame_len!r}.")
    n_frames = samples.size // int(frame_len)
    frames = samples[: n_frames * int(frame_len)].reshape(n_frames, int(frame_len))
    mean_square = np.mean(np.square(frames, dtype=np.float64), axis=1)
    with np.errstate(divide="ignore"):
        levels: NDArray[np.float64] = 10.0 * np.log10(mean_square / FULL_SCALE**2)
    return levels


def voiced_duration_ms(
    pcm: NDArray[np.int16],
    *,
    sample_rate_hz: int,
    frame_ms: float = 40.0,
    hop_ms: float = 10.0,
    pitch_range_hz: tuple[float, float] = (70.0, 400.0),
    min_periodicity: float = 0.5,
    min_level_dbfs: float = -50.0,
) -> float:
    """How long the audio is voiced (periodic at a speaking pitch), in ms; 0 for noise, hiss and clicks.

    A frame is voiced when its normalised autocorrelation (unbiased, mean removed) peaks above
    ``min_periodicity`` at a lag within ``pitch_range_hz`` and its level exceeds ``min_level_dbfs``.
    Every label word has a vowel, so an utterance without voiced frames is noise (breath, a fan, a
    chair), not a label. Measured: white noise at −50 to −10 dBFS gives 0 ms; each label and synonym
    spoken by 12 espeak-ng voices ≥ 140 ms.

    Parameters
    ----------
    pcm : ndarray of int16, shape (n,)
        Mono 16-bit PCM.
    sample_rate_hz : int
        Its sample rate.
    frame_ms, hop_ms : float
        Analysis window (two periods of the lowest pitch) and hop.
    pitch_range_hz : (float, float)
        Lowest and highest fundamental frequency counted as voice.
    min_periodicity : float
        Autocorrelation peak (0–1) needed.
    min_level_dbfs : float
        Quieter frames are never voiced.

    Returns
    -------
    float
        Number of voiced frames times ``hop_ms``; 0 for audio shorter than one frame.
    """
    samples = check_pcm16(pcm=pcm)
    rate = _rate(sample_rate_hz=sample_rate_hz)
    n, hop = _block_len(frame_ms, rate), _block_len(hop_ms, rate)
    f_low, f_high = pitch_range_hz
    if not 0 < f_low < f_high:
        raise ValueError(f"pitch_range_hz must be (low, high) with 0 < low < high; got {pitch_range_hz!r}.")
    lag_lo, lag_hi = max(int(rate / f_high), 1), min(int(rate / f_low), n - 1)
    if samples.size < n or lag_lo > lag_hi:
        return 0.0
    starts = np.arange(0, samples.size - n + 1, hop)
    frames = samples[starts[:, None] + np.arange(n)].astype(np.float64)
    frames -= frames.mean(axis=1, keepdims=True)
    power = np.abs(np.fft.rfft(frames, 2 * n, axis=1)) ** 2
    autocorr = np.fft.irfft(power, axis=1)[:, : lag_hi + 1]
    lags = np.arange(lag_lo, lag_hi + 1)
    energy = autocorr[:, :1]
    periodicity = autocorr[:, lag_lo:] / np.maximum(energy, 1e-12) * (n / (n - lags))
    with np.errstate(divide="ignore"):
        level = 10.0 * np.log10(energy[:, 0] / n / FULL_SCALE**2)
    voiced = (periodicity.max(axis=1) > min_periodicity) & (level > min_level_dbfs)
    return float(np.count_nonzero(voiced)) * float(hop_ms)


def resample_pcm16(pcm: NDArray[np.int16], *, from_rate_hz: int, to_rate_hz: int) -> NDArray[np.int16]:
    """Resample 16-bit PCM by a rational factor (polyphase filter), clipping to the int16 range.

    Parameters
    ----------
    pcm : ndarray of int16, shape (n,)
        Mono 16-bit PCM at ``from_rate_hz``.
    from_rate_hz, to_rate_hz : int
        Sample rates in Hz; 22,050 → 16,000 is the factor 320/441.

    Returns
    -------
    ndarray of int16
        The same audio at ``to_rate_hz`` (a copy even when the rates are equal).
    """
    samples = check_pcm16(pcm=pcm)
    src, dst = _rate(from_rate_hz=from_rate_hz), _rate(to_rate_hz=to_rate_hz)
    if src == dst:
        return samples.copy()
    g = math.gcd(src, dst)
    out = resample_poly(samples.astype(np.float64), dst // g, src // g)
    resampled: NDArray[np.int16] = np.clip(np.rint(out), -32768, 32767).astype(np.int16)
    return resampled


def read_wav(path: str | Path) -> tuple[NDArray[np.int16], int]:
    """Read a 16-bit PCM WAV file as mono samples and its sample rate.

    Several channels are averaged into one.

    Returns
    -------
    pcm : ndarray of int16, shape (n,)
    sample_rate_hz : int

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        When the file is not 16-bit PCM WAV.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"No WAV file at {str(file)!r}; give the path of a 16-bit PCM .wav file.")
    try:
        with wave.open(str(file), "rb") as wav:
            n_channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as err:
        raise ValueError(f"{str(file)!r} is not a readable PCM WAV file ({err}).") from err
    if width != 2:
        raise ValueError(
            f"{str(file)!r} holds {8 * width}-bit samples; only 16-bit PCM is read. Convert it, "
            "e.g. `sox in.wav -b 16 out.wav`."
        )
    samples = np.frombuffer(raw, dtype="<i2").reshape(-1, n_channels)
    if n_channels == 1:
        return samples[:, 0].astype(np.int16), rate
    return np.rint(samples.mean(axis=1)).astype(np.int16), rate


def wav_blocks(
    path: str | Path, *, block_ms: float = 30.0, sample_rate_hz: int = 16000
) -> Iterator[NDArray[np.int16]]:
    """Blocks of a WAV file, resampled to ``sample_rate_hz``, as a microphone would deliver them.

    Parameters
    ----------
    path : str or Path
        A 16-bit PCM WAV file (see :func:`read_wav`).
    block_ms : float
        Block duration in ms (default 30, like :class:`~tracking.speech.microphone.Microphone`); the
        last block may be shorter.
    sample_rate_hz : int
        Rate of the delivered blocks.

    Yields
    ------
    ndarray of int16
        Consecutive blocks of ``round(block_ms · sample_rate_hz / 1000)`` samples.
    """
    block_len = _block_len(block_ms, sample_rate_hz)
    pcm, rate = read_wav(path)
    samples = resample_pcm16(pcm, from_rate_hz=rate, to_rate_hz=sample_rate_hz)
    for start in range(0, samples.size, block_len):
        yield samples[start : start + block_len]


def _block_len(block_ms: float, sample_rate_hz: int) -> int:
    duration_ms = check_positive(block_ms=block_ms)
    rate = _rate(sample_rate_hz=sample_rate_hz)
    n = round(duration_ms * rate / 1000.0)
    if n < 1:
        raise ValueError(
            f"block_ms={block_ms!r} is shorter than one sample at {rate} Hz; use a longer block."
        )
    return int(n)


def _rate(**kwargs: object) -> int:
    name, value = next(iter(kwargs.items()))
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer number of Hz; got {value!r}.")
    return int(value)
