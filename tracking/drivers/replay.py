"""ReplayDriver: plays a recorded gaze sample file back, in real time or faster (analysis, tests).

The sample file format (written by :func:`write_samples`, read by :func:`read_samples`) is UTF-8
text with tab-separated columns and one header row::

    # rbdm gaze samples v1
    t_ms	x_screen_px	y_screen_px	valid	pupil_size
    1520.25	1280.5	720.0	1	3.2
    1537.00	nan	nan	0

Lines starting with ``#`` are comments. ``valid`` is 1 or 0; ``pupil_size`` may be empty;
coordinates of invalid samples may be ``nan``. Times are milliseconds and must not decrease.
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from tracking._validation import check_positive
from tracking.clock import now_ms
from tracking.drivers.base import (
    DriverEventKind,
    DriverState,
    DriverStatus,
    SampleCallback,
    WorkerStreaming,
    WorkerThread,
)
from tracking.errors import DriverError
from tracking.records import GazeSample

__all__ = ["SAMPLE_COLUMNS", "SAMPLE_FILE_VERSION", "ReplayDriver", "read_samples", "write_samples"]

SAMPLE_FILE_VERSION = 1
SAMPLE_COLUMNS = ("t_ms", "x_screen_px", "y_screen_px", "valid", "pupil_size")
_MAGIC = f"# rbdm gaze samples v{SAMPLE_FILE_VERSION}"


def _format_sample(sample: GazeSample) -> str:
    pupil = "" if sample.pupil_size is None else repr(float(sample.pupil_size))
    fields = (repr(float(sample.t_ms)), repr(float(sample.x_screen_px)), repr(float(sample.y_screen_px)))
    return "\t".join((*fields, "1" if sample.valid else "0", pupil))


def write_samples(path: str | os.PathLike[str], samples: Iterable[GazeSample]) -> None:
    """Write gaze samples to a sample file (see the module docstring for the format).

    Floats are written with ``repr`` so that reading gives back exactly the same samples.

    Parameters
    ----------
    path : str or path-like
        The file to create (overwritten if it exists).
    samples : iterable of GazeSample
        In time order.

    Raises
    ------
    ValueError
        When the time stamps decrease.
    OSError
        When the file cannot be written.
    """
    lines = [_MAGIC, "\t".join(SAMPLE_COLUMNS)]
    last_t = -math.inf
    for i, sample in enumerate(samples):
        if sample.t_ms < last_t:
            raise ValueError(
                f"samples must be in time order; sample {i} at t_ms={sample.t_ms!r} follows {last_t!r}. "
                "Sort them by t_ms first."
            )
        last_t = sample.t_ms
        lines.append(_format_sample(sample))
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _parse_line(fields: list[str]) -> GazeSample:
    if len(fields) == 4:
        fields.append("")
    if len(fields) != len(SAMPLE_COLUMNS):
        raise ValueError(f"expected {len(SAMPLE_COLUMNS)} tab-separated fields, got {len(fields)}")
    if fields[3] not in ("0", "1"):
        raise ValueError(f"valid must be 0 or 1, got {fields[3]!r}")
    pupil = float(fields[4]) if fields[4].strip() else None
    return GazeSample(float(fields[0]), float(fields[1]), float(fields[2]), fields[3] == "1", pupil)


def read_samples(path: str | os.PathLike[str]) -> list[GazeSample]:
    """Read a sample file written by :func:`write_samples` (or by hand, in the same format).

    Parameters
    ----------
    path : str or path-like
        The sample file.

    Returns
    -------
    list of GazeSample
        In file order; empty when the file has only its header.

    Raises
    ------
    ValueError
        When the header is missing or a line is malformed; the message names the file and line.
    OSError
        When the file cannot be read (``FileNotFoundError`` when it does not exist).
    """
    text = Path(path).read_text(encoding="utf-8")
    samples: list[GazeSample] = []
    header_seen = False
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.rstrip("\r\n").split("\t")
        if not header_seen:
            if tuple(f.strip() for f in fields) != SAMPLE_COLUMNS:
                raise ValueError(
                    f"{path}:{number}: expected the header {' '.join(SAMPLE_COLUMNS)!r} (tab-separated); "
                    f"got {line!r}. Is this a gaze sample file written by write_samples?"
                )
            header_seen = True
            continue
        try:
            sample = _parse_line(fields)
        except ValueError as err:
            raise ValueError(f"{path}:{number}: {err}; line {line!r}.") from err
        if samples and sample.t_ms < samples[-1].t_ms:
            raise ValueError(f"{path}:{number}: t_ms={sample.t_ms!r} is before the previous sample's.")
        samples.append(sample)
    if not header_seen:
        raise ValueError(f"{path}: no header row {' '.join(SAMPLE_COLUMNS)!r}; not a gaze sample file.")
    return samples


def _median_rate_hz(samples: Sequence[GazeSample]) -> float | None:
    steps = np.diff([s.t_ms for s in samples])
    steps = steps[steps > 0]
    return float(1000.0 / np.median(steps)) if len(steps) else None


class ReplayDriver(WorkerStreaming):
    """A gaze driver that plays back recorded samples.

    Delivered samples keep the recording's spacing, moved onto the shared clock: sample i gets
    ``t_ms = start + (t_i - t_0)`` where ``start`` is :func:`~tracking.clock.now_ms` at ``start()``,
    so fixation detectors see the real durations at any speed. At ``speed=1`` a sample is delivered at
    its time stamp; at ``speed=10`` ten times faster (its stamp then lies ahead of the clock); at
    ``speed=math.inf`` as fast as possible.

    Parameters
    ----------
    source : path or sequence of GazeSample
        A sample file (read on ``connect()``) or samples in time order.
    speed : float
        Playback speed factor (> 0; ``math.inf`` allowed).
    loop : bool
        Start over at the end instead of stopping.
    rate_hz : float
        Nominal rate reported when the recording has fewer than two distinct times.
    """

    name = "replay"

    def __init__(
        self,
        source: str | os.PathLike[str] | Sequence[GazeSample],
        *,
        speed: float = 1.0,
        loop: bool = False,
        rate_hz: float = 60.0,
    ) -> None:
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
            raise ValueError(f"speed must be > 0 (math.inf for as fast as possible); got {speed!r}.")
        self._fallback_rate_hz = check_positive(rate_hz=rate_hz)
        self._source = source
        self._speed = float(speed)
        self._loop = bool(loop)
        self._samples: list[GazeSample] = []
        self._status = DriverStatus(self.name)
        self._worker: WorkerThread | None = None
        self._on_sample: SampleCallback | None = None
        self._finished = threading.Event()

    @property
    def nominal_rate_hz(self) -> float:
        """The recording's median sample rate (after ``connect()``)."""
        return _median_rate_hz(self._samples) or self._fallback_rate_hz

    @property
    def samples(self) -> tuple[GazeSample, ...]:
        """The recording as loaded (original time stamps)."""
        return tuple(self._samples)

    def connect(self) -> None:
        """Load the recording.

        Raises
        ------
        DriverError
            When the file is missing, unreadable or malformed, or holds no samples.
        """
        if self.state is DriverState.CLOSED:
            raise DriverError("this replay driver was closed; create a new one.")
        self._samples = self._load()
        if not self._samples:
            raise DriverError(
                f"the replay source {self._describe()} holds no samples; record a session first."
            )
        if self.state is DriverState.DISCONNECTED:
            self._status.set_state(DriverState.CONNECTED)

    def start(self, on_sample: SampleCallback) -> None:
        """Play the recording into ``on_sample``.

        Raises
        ------
        DriverError
            When not connected, or already streaming.
        """
        if self.state is not DriverState.CONNECTED:
            raise DriverError(
                f"the replay driver cannot start while {self.state.value}; call connect() first "
                "(and stop() before starting again)."
            )
        if self._worker is not None:
            self._worker.stop()
        self._finished.clear()
        self._on_sample = on_sample
        self._worker = WorkerThread("replay", self._run, self._status)
        self._status.set_state(DriverState.STREAMING)
        self._worker.start()

    def wait_finished(self, *, timeout_s: float) -> bool:
        """Block until the recording has been played to its end; False if ``timeout_s`` passes first."""
        return self._finished.wait(timeout_s)

    def _describe(self) -> str:
        if isinstance(self._source, (str, os.PathLike)):
            return repr(os.fspath(self._source))
        return "(samples in memory)"

    def _load(self) -> list[GazeSample]:
        if not isinstance(self._source, (str, os.PathLike)):
            samples = list(self._source)
            times = [s.t_ms for s in samples]
            if any(b < a for a, b in itertools.pairwise(times)):
                raise DriverError("the replay samples must be in time order; sort them by t_ms.")
            return samples
        try:
            return read_samples(self._source)
        except FileNotFoundError as err:
            raise DriverError(
                f"replay file {self._describe()} not found. Choose an existing sample file."
            ) from err
        except (OSError, ValueError) as err:
            raise DriverError(f"cannot replay {self._describe()}: {err}") from err

    def _run(self, stop: threading.Event) -> None:
        samples, on_sample = self._samples, self._on_sample
        span_ms = samples[-1].t_ms - samples[0].t_ms + 1000.0 / self.nominal_rate_hz
        stamp_base_ms = play_base_ms = now_ms()
        while True:
            if not self._play_once(samples, on_sample, stamp_base_ms, play_base_ms, stop):
                return
            if not self._loop:
                break
            stamp_base_ms += span_ms
            play_base_ms += span_ms / self._speed
        self._status.set_state(DriverState.CONNECTED)
        self._status.emit(DriverEventKind.END_OF_DATA, f"replay: all {len(samples)} samples played.")
        self._finished.set()

    def _play_once(
        self,
        samples: Sequence[GazeSample],
        on_sample: SampleCallback | None,
        stamp_base_ms: float,
        play_base_ms: float,
        stop: threading.Event,
    ) -> bool:
        t0_ms = samples[0].t_ms
        for sample in samples:
            elapsed_ms = sample.t_ms - t0_ms
            wait_ms = play_base_ms + elapsed_ms / self._speed - now_ms()
            if wait_ms > 0 and stop.wait(wait_ms / 1000.0):
                return False
            if stop.is_set():
                return False
            moved = GazeSample(
                stamp_base_ms + elapsed_ms,
                sample.x_screen_px,
                sample.y_screen_px,
                sample.valid,
                sample.pupil_size,
            )
            self._status.deliver(on_sample, moved)
        return True
