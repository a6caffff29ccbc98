"""MouseSimulator: gaze from the mouse cursor, the embedded default when no tracker is attached.

No Qt here: the GUI lends the simulator a ``position_source`` (and optionally a ``button_source``),
plain callables it reads on the simulator's own thread.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

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

__all__ = ["MouseSimulator", "simulated_sample"]

PositionSource = Callable[[], tuple[float, float] | None]


def simulated_sample(
    position_screen_px: tuple[float, float] | None,
    *,
    t_ms: float,
    button_held: bool,
    noise_std_px: float,
    rng: np.random.Generator,
) -> GazeSample:
    """One simulated gaze sample: the cursor plus Gaussian noise, invalid while "blinking".

    Parameters
    ----------
    position_screen_px : (x, y) or None
        The cursor in screen pixels; None (cursor outside the screen) gives an invalid sample.
    t_ms : float
        Time stamp on the shared clock.
    button_held : bool
        A held button simulates a blink: the sample is invalid.
    noise_std_px : float
        Standard deviation of isotropic Gaussian noise added to valid positions (0: none).
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    GazeSample
        Invalid samples carry NaN coordinates, like a tracker during a blink.
    """
    if button_held or position_screen_px is None:
        return GazeSample(t_ms, math.nan, math.nan, valid=False)
    x, y = float(position_screen_px[0]), float(position_screen_px[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        return GazeSample(t_ms, math.nan, math.nan, valid=False)
    if noise_std_px > 0:
        dx, dy = rng.normal(0.0, noise_std_px, size=2)
        x, y = x + float(dx), y + float(dy)
    return GazeSample(t_ms, x, y, valid=True)


class MouseSimulator(WorkerStreaming):
    """A gaze driver that samples the mouse cursor at a fixed rate.

    Parameters
    ----------
    position_source : callable
        Returns the cursor's (x, y) in screen pixels, or None when it is unavailable. Called on the
        simulator's thread, so it must be thread-safe (the GUI can return the last position it saw).
    rate_hz : float
        Sampling rate (default 60 Hz, the Eye Tribe's fast mode). Ticks follow absolute deadlines,
        so the rate does not drift; ticks missed by a stalled machine are skipped and reported.
    noise_std_px : float
        Standard deviation of Gaussian noise added to each valid position, in screen pixels.
    button_source : callable, optional
        Returns True while a mouse button is held: a simulated blink (invalid samples).
    rng : numpy.random.Generator, optional
        Noise source; a fresh unseeded generator when omitted.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (gaze recorded while
       labelling; the simulator stands in for the Eye Tribe when none is attached).
    """

    name = "mouse"

    def __init__(
        self,
        position_source: PositionSource,
        *,
        rate_hz: float = 60.0,
        noise_std_px: float = 0.0,
        button_source: Callable[[], bool] | None = None,
        rng: np.random.Generator | None = None,
    ) -> None:
        if not callable(position_source):
            raise TypeError(f"position_source must be callable; got {position_source!r}.")
        self._rate_hz = check_positive(rate_hz=rate_hz)
        if not (math.isfinite(noise_std_px) and noise_std_px >= 0):
            raise ValueError(f"noise_std_px must be a finite number >= 0; got {noise_std_px!r}.")
        self._position_source = position_source
        self._button_source = button_source
        self._noise_std_px = float(noise_std_px)
        self._rng = rng if rng is not None else np.random.default_rng()
        self._status = DriverStatus(self.name)
        self._worker: WorkerThread | None = None
        self._on_sample: SampleCallback | None = None

    @property
    def nominal_rate_hz(self) -> float:
        """The configured sampling rate."""
        return self._rate_hz

    def connect(self) -> None:
        """Nothing to open: the simulator is ready at once."""
        if self.state is DriverState.CLOSED:
            raise DriverError("this mouse simulator was closed; create a new one.")
        if self.state is DriverState.DISCONNECTED:
            self._status.set_state(DriverState.CONNECTED)

    def start(self, on_sample: SampleCallback) -> None:
        """Sample the cursor into ``on_sample`` until :meth:`stop`.

        Raises
        ------
        DriverError
            When not connected, or already streaming.
        """
        if self.state is not DriverState.CONNECTED:
            raise DriverError(
                f"the mouse simulator cannot start while {self.state.value}; call connect() first "
                "(and stop() before starting again)."
            )
        self._on_sample = on_sample
        self._worker = WorkerThread("mouse-simulator", self._run, self._status)
        self._status.set_state(DriverState.STREAMING)
        self._worker.start()

    def _read_sources(self) -> tuple[tuple[float, float] | None, bool]:
        try:
            position = self._position_source()
            held = bool(self._button_source()) if self._button_source is not None else False
        except Exception as err:  # the lender's code: report and treat as no position
            self._status.emit(
                DriverEventKind.SOURCE_FAILED,
                f"mouse: the position source raised {err!r}; samples are invalid until it recovers.",
                throttle_ms=1000.0,
            )
            return None, False
        return position, held

    def _run(self, stop: threading.Event) -> None:
        period_ms = 1000.0 / self._rate_hz
        t0_ms = now_ms()
        tick = 0
        on_sample = self._on_sample
        while True:
            tick += 1
            wait_ms = t0_ms + tick * period_ms - now_ms()
            if wait_ms > 0 and stop.wait(wait_ms / 1000.0):
                return
            if stop.is_set():
                return
            if wait_ms < -period_ms:
                missed = int(-wait_ms // period_ms)
                tick += missed
                self._status.emit(
                    DriverEventKind.SAMPLES_DROPPED,
                    f"mouse: {missed} ticks skipped (the machine was busy).",
                    throttle_ms=1000.0,
                )
            position, held = self._read_sources()
            sample = simulated_sample(
                position, t_ms=now_ms(), button_held=held, noise_std_px=self._noise_std_px, rng=self._rng
            )
            self._status.deliver(on_sample, sample)
