"""The live monitor's data quality: a trial's valid-sample share and longest gap as they grow, the tracker.

:class:`GazeQuality` keeps running sums for one trial's window, with the definitions of the session
report (:func:`tracking.recording.trial_quality`); :func:`finished_quality` turns it into the report's
record, :class:`tracking.recording.TrialQuality`, once the store has committed the trial.
:class:`TrackerLog` counts the tracker's faults from its events and says how fast it samples.
Nothing here imports Qt.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (the labeling protocol and its
   recordings).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from tracking.drivers.base import DriverEvent, DriverEventKind, DriverState
from tracking.protocol import FinishedTrial
from tracking.recording import TrialQuality
from tracking.records import Fixation

__all__ = ["GazeQuality", "TrackerLog", "TrackerStatus", "finished_quality"]

#: Driver events kept for the list on screen.
_EVENTS_SHOWN = 8
_LOST_KINDS = {DriverEventKind.CONNECTION_LOST, DriverEventKind.TIMEOUT, DriverEventKind.GAVE_UP}


class GazeQuality:
    """Running valid-sample share and longest gap of one trial's window ``[start_ms, stop_ms]``.

    The same definitions as :func:`tracking.recording.trial_quality`: samples in the window, the share
    of them that are valid, and the longest stretch without a valid sample, counted from the
    window's start to its end (or to ``now_ms`` while the trial runs). Samples must come in time order.
    """

    __slots__ = ("last_valid_ms", "longest_gap_ms", "n_samples", "n_valid", "start_ms", "stop_ms")

    def __init__(self, start_ms: float) -> None:
        self.start_ms = float(start_ms)
        self.stop_ms = math.inf
        self.n_samples = 0
        self.n_valid = 0
        self.last_valid_ms = self.start_ms
        self.longest_gap_ms = 0.0

    def add(self, t_ms: float, valid: bool) -> None:
        """One sample; ignored outside the window."""
        if not self.start_ms <= t_ms <= self.stop_ms:
            return
        self.n_samples += 1
        if valid:
            self.n_valid += 1
            self.longest_gap_ms = max(self.longest_gap_ms, t_ms - self.last_valid_ms)
            self.last_valid_ms = t_ms

    @property
    def valid_share(self) -> float:
        """Share of valid samples in [0, 1]; NaN without samples."""
        return self.n_valid / self.n_samples if self.n_samples else math.nan

    def gap_until(self, now_ms: float) -> float:
        """The longest gap, the open one up to ``now_ms`` (or the window's end) included."""
        end = min(now_ms, self.stop_ms)
        return max(self.longest_gap_ms, end - self.last_valid_ms, 0.0)


def finished_quality(
    finished: FinishedTrial, quality: GazeQuality, fixations: Sequence[Fixation], *, flagged: str = ""
) -> TrialQuality:
    """The session report's record of a committed trial, from what the monitor saw of it.

    Parameters
    ----------
    finished : FinishedTrial
        The trial as the store committed it (its phases bound the window).
    quality : GazeQuality
        Its samples from the first blank screen to the stimulus offset.
    fixations : sequence of Fixation
        The fixations the online detector emitted during the trial; those that began while the image
        was shown count, as in the store.
    flagged : str
        Why the experimenter marked it bad ("" when not marked).

    Returns
    -------
    TrialQuality
        Without ``events`` and ``note``, which only the session report fills in.
    """
    trial, phases = finished.trial, finished.trial.phases
    n_fixations = sum(phases.stimulus_onset_ms <= f.onset_ms < phases.stimulus_offset_ms for f in fixations)
    return TrialQuality(
        position=trial.position,
        stimulus_id=trial.stimulus_id,
        n_samples=quality.n_samples,
        valid_share=quality.valid_share,
        longest_gap_ms=quality.gap_until(phases.stimulus_offset_ms),
        n_fixations=int(n_fixations),
        label=trial.label,
        label_source=trial.label_source,
        confidence=trial.confidence,
        dropped_frames=finished.frames.dropped_frames,
        flagged=flagged,
    )


@dataclass(frozen=True, slots=True)
class TrackerStatus:
    """The tracker now: its state, the faults counted this session, the recent events, the rates."""

    state: str
    calibrated: bool | None
    lost: int
    restored: int
    uncalibrated: int
    events: tuple[str, ...]
    nominal_rate_hz: float
    effective_rate_hz: float


class TrackerLog:
    """The tracker's state, faults and recent events over a session, from its events.

    Parameters
    ----------
    nominal_rate_hz : float
        The tracker's nominal sampling rate.
    driver_status : callable, optional
        Returns ``(state, calibrated)`` of the tracker now (any thread): the driver's ``state`` and its
        ``calibrated`` where it has one.
    """

    def __init__(
        self,
        nominal_rate_hz: float = math.nan,
        driver_status: Callable[[], tuple[DriverState, bool | None]] | None = None,
    ) -> None:
        self.nominal_rate_hz = float(nominal_rate_hz)
        self._driver_status = driver_status
        self._lines: deque[str] = deque(maxlen=_EVENTS_SHOWN)
        self._lost = self._restored = self._uncalibrated = 0
        self._state = DriverState.CONNECTED
        self._calibrated: bool | None = None

    def add(self, event: DriverEvent) -> None:
        """Count one event (lost, restored, uncalibrated) and list it unless it is a plain state change."""
        self._state = event.state
        if event.kind in _LOST_KINDS or (
            event.kind is DriverEventKind.STATE_CHANGED and event.state is DriverState.LOST
        ):
            self._lost += 1
        elif event.kind is DriverEventKind.RECONNECTED:
            self._restored += 1
        elif event.kind is DriverEventKind.DEVICE_NOTICE and "calibrat" in event.message.lower():
            self._uncalibrated += 1
        if event.kind is not DriverEventKind.STATE_CHANGED or event.state is DriverState.LOST:
            self._lines.append(f"{event.kind.value}: {event.message}")

    def poll(self) -> None:
        """Ask the driver for its state and calibration now (where a ``driver_status`` was given)."""
        if self._driver_status is not None:
            self._state, self._calibrated = self._driver_status()

    def status(self, recent_t_ms: NDArray[np.float64]) -> TrackerStatus:
        """The status now; ``recent_t_ms``: the times of the last second's samples (the effective rate)."""
        effective = math.nan
        if len(recent_t_ms) > 1 and recent_t_ms[-1] > recent_t_ms[0]:
            effective = (len(recent_t_ms) - 1) * 1000.0 / (recent_t_ms[-1] - recent_t_ms[0])
        return TrackerStatus(
            state=self._state.value,
            calibrated=self._calibrated,
            lost=self._lost,
            restored=self._restored,
            uncalibrated=self._uncalibrated,
            events=tuple(self._lines),
            nominal_rate_hz=self.nominal_rate_hz,
            effective_rate_hz=effective,
        )
