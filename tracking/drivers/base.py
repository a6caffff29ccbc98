"""The one Protocol every gaze tracker driver satisfies, and the small pieces drivers share.

A driver delivers :class:`~tracking.records.GazeSample` records in screen pixels, time-stamped on
the shared clock :func:`tracking.clock.now_ms`, to one ``on_sample`` callback while it streams.
Failures inside a driver's own threads (a disconnect, a timeout, a malformed message, a callback
that raises) never escape as exceptions: they become a :class:`DriverState` change and a
:class:`DriverEvent` passed to the listeners registered with ``add_event_listener``. Only the calls a
caller makes directly (``connect``, ``start``, ``calibrate``) raise
:class:`~tracking.errors.DriverError`, with text that says what to do next.

State machine (all drivers)::

    DISCONNECTED --connect()--> CONNECTED --start()--> STREAMING --stop()--> CONNECTED
    CONNECTED/STREAMING --failure--> LOST --reconnected--> CONNECTED/STREAMING (as before)
    LOST --reconnection given up--> DISCONNECTED (connect() may be called again)
    any --close()--> CLOSED (final; create a new driver)

Callbacks (``on_sample``, event listeners) run on the driver's thread: keep them short and
thread-safe (append to a :class:`SampleBuffer`, post to the GUI thread).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1: gaze of the annotators was
   recorded with an Eye Tribe ET1000 while they labelled the images; §5.3.2: fixations of that
   gaze become the heatmaps.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from analysis.geometry import ScreenGeometry
from tracking._validation import check_positive
from tracking.clock import now_ms
from tracking.errors import DriverError
from tracking.records import GazeSample, ValidationPoint, ValidationResult

__all__ = [
    "CalibratingDriver",
    "CalibrationPoint",
    "CalibrationResult",
    "DeviceClockMapper",
    "DriverEvent",
    "DriverEventKind",
    "DriverState",
    "DriverStatus",
    "EventListener",
    "GazeDriver",
    "ReconnectPolicy",
    "SampleBuffer",
    "SampleCallback",
    "StatusReporting",
    "TargetPresenter",
    "WorkerStreaming",
    "WorkerThread",
    "streaming",
    "validate",
    "validation_point",
]

_log = logging.getLogger(__name__)

SampleCallback = Callable[[GazeSample], None]
"""Receives each gaze sample, on the driver's thread."""


class DriverState(enum.Enum):
    """Where a driver stands; see the module docstring for the transitions."""

    DISCONNECTED = "disconnected"
    CONNECTED = "connected"
    STREAMING = "streaming"
    LOST = "lost"
    CLOSED = "closed"


class DriverEventKind(enum.Enum):
    """What a :class:`DriverEvent` reports."""

    STATE_CHANGED = "state_changed"
    CONNECTION_LOST = "connection_lost"
    TIMEOUT = "timeout"
    RECONNECT_FAILED = "reconnect_failed"
    RECONNECTED = "reconnected"
    GAVE_UP = "gave_up"
    MALFORMED_MESSAGE = "malformed_message"
    REQUEST_FAILED = "request_failed"
    DEVICE_NOTICE = "device_notice"
    CALLBACK_FAILED = "callback_failed"
    SOURCE_FAILED = "source_failed"
    SAMPLES_DROPPED = "samples_dropped"
    END_OF_DATA = "end_of_data"
    DRIVER_FAILED = "driver_failed"


@dataclass(frozen=True, slots=True)
class DriverEvent:
    """Something a driver reports instead of raising.

    Parameters
    ----------
    kind : DriverEventKind
        What happened.
    message : str
        Human-readable text, shown as is by the GUI; says what to do where something can be done.
    t_ms : float
        When it was reported, on :func:`tracking.clock.now_ms`'s clock.
    state : DriverState
        The driver's state right after the event.
    driver : str
        Name of the reporting driver (``"eyetribe"``, ``"mouse"``, ...).
    """

    kind: DriverEventKind
    message: str
    t_ms: float
    state: DriverState
    driver: str

    def __post_init__(self) -> None:
        if not math.isfinite(self.t_ms):
            raise ValueError(f"t_ms must be finite; got {self.t_ms!r}.")


EventListener = Callable[[DriverEvent], None]
"""Receives each driver event, on the thread that produced it."""

TargetPresenter = Callable[[float, float], None]
"""Shows a calibration or validation target at (x, y) screen pixels; returns once it is shown."""


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    """Quality of one calibration target as reported by the device.

    Parameters
    ----------
    x_screen_px, y_screen_px : float
        Where the target was shown.
    mean_error_px : float or None
        Mean distance of the calibrated gaze estimates from the target, when the device reports it.
    accuracy_deg : float or None
        Mean angular error at this target, when the device reports it.
    valid : bool
        False where the device rejected the point (no data, or asks to resample it).
    """

    x_screen_px: float
    y_screen_px: float
    mean_error_px: float | None
    accuracy_deg: float | None
    valid: bool


@dataclass(frozen=True, slots=True)
class CalibrationResult:
    """Outcome of a device calibration.

    Parameters
    ----------
    succeeded : bool
        The device accepted the calibration and applies it from now on.
    points : tuple of CalibrationPoint
        One entry per target, in the order the device reports them.
    accuracy_deg : float or None
        Mean angular error over all points, when the device reports it.
    """

    succeeded: bool
    points: tuple[CalibrationPoint, ...]
    accuracy_deg: float | None = None

    @property
    def n_invalid(self) -> int:
        """Number of points the device rejected; recalibrate when it is > 0."""
        return sum(not p.valid for p in self.points)


@runtime_checkable
class GazeDriver(Protocol):
    """What every gaze tracker driver provides (structurally; no base class needed).

    ``nominal_rate_hz`` is the device's nominal sample rate (known for certain after
    ``connect()``). ``start`` delivers samples to ``on_sample`` on the driver's thread until ``stop``.
    ``add_event_listener`` returns a function that removes the listener again.
    """

    @property
    def nominal_rate_hz(self) -> float: ...

    @property
    def state(self) -> DriverState: ...

    def connect(self) -> None: ...

    def start(self, on_sample: SampleCallback) -> None: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...

    def add_event_listener(self, listener: EventListener) -> Callable[[], None]: ...


@runtime_checkable
class CalibratingDriver(GazeDriver, Protocol):
    """A driver whose device runs its own calibration (EyeTribe, Tobii Pro)."""

    def calibrate(
        self,
        targets_screen_px: Sequence[tuple[float, float]],
        *,
        present_target: TargetPresenter | None = None,
        settle_ms: float = 500.0,
        dwell_ms: float = 800.0,
    ) -> CalibrationResult: ...


@contextmanager
def streaming(driver: GazeDriver, on_sample: SampleCallback) -> Iterator[GazeDriver]:
    """Stream from ``driver`` into ``on_sample`` for the duration of a ``with`` block.

    The driver must be connected. It is always stopped on leaving the block, also on error.

    Raises
    ------
    DriverError
        From ``driver.start`` when the driver cannot stream (not connected, closed).
    """
    driver.start(on_sample)
    try:
        yield driver
    finally:
        driver.stop()


class SampleBuffer:
    """A thread-safe ``on_sample`` callback that keeps what it receives.

    Use it where samples are consumed elsewhere than on the driver's thread: the GUI drains it on a
    timer, tests wait for a number of samples.
    """

    def __init__(self) -> None:
        self._samples: list[GazeSample] = []
        self._cond = threading.Condition()

    def __call__(self, sample: GazeSample) -> None:
        with self._cond:
            self._samples.append(sample)
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._samples)

    def snapshot(self) -> list[GazeSample]:
        """All samples received so far (a copy)."""
        with self._cond:
            return list(self._samples)

    def drain(self) -> list[GazeSample]:
        """The samples received since the last drain, removing them from the buffer."""
        with self._cond:
            out, self._samples = self._samples, []
            return out

    def wait_for(self, n_samples: int, *, timeout_s: float) -> bool:
        """Block until at least ``n_samples`` are buffered; False if ``timeout_s`` passes first."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._samples) >= n_samples, timeout=timeout_s)


class DriverStatus:
    """State, event listeners and guarded sample delivery, shared by the drivers by composition.

    Parameters
    ----------
    driver : str
        The driver's name, copied into each event.
    """

    def __init__(self, driver: str) -> None:
        self._driver = driver
        self._lock = threading.Lock()
        self._state = DriverState.DISCONNECTED
        self._listeners: list[EventListener] = []
        self._last_emit_ms: dict[DriverEventKind, float] = {}
        self._suppressed: dict[DriverEventKind, int] = {}

    @property
    def state(self) -> DriverState:
        """The current state."""
        with self._lock:
            return self._state

    def add_listener(self, listener: EventListener) -> Callable[[], None]:
        """Register ``listener``; returns a function that unregisters it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def set_state(self, state: DriverState, message: str = "") -> None:
        """Change the state; emits ``STATE_CHANGED`` when it actually changes."""
        with self._lock:
            old, self._state = self._state, state
        if old is not state:
            text = message or f"{self._driver}: {old.value} → {state.value}"
            self._notify(DriverEvent(DriverEventKind.STATE_CHANGED, text, now_ms(), state, self._driver))

    def emit(self, kind: DriverEventKind, message: str, *, throttle_ms: float = 0.0) -> None:
        """Report an event to all listeners.

        With ``throttle_ms`` > 0 at most one event of this kind is passed on per interval; the next
        one passed on says how many were suppressed (a stream of malformed messages is one line a
        second, not sixty).
        """
        t_ms = now_ms()
        with self._lock:
            if throttle_ms > 0:
                last = self._last_emit_ms.get(kind)
                if last is not None and t_ms - last < throttle_ms:
                    self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                    return
                self._last_emit_ms[kind] = t_ms
                n_suppressed = self._suppressed.pop(kind, 0)
                if n_suppressed:
                    message = f"{message} ({n_suppressed} similar events suppressed)"
            state = self._state
        self._notify(DriverEvent(kind, message, t_ms, state, self._driver))

    def deliver(self, on_sample: SampleCallback | None, sample: GazeSample) -> None:
        """Call ``on_sample(sample)``; an exception it raises becomes a ``CALLBACK_FAILED`` event."""
        if on_sample is None:
            return
        try:
            on_sample(sample)
        except Exception as err:  # the caller's code: report, keep streaming
            _log.debug("on_sample raised", exc_info=True)
            self.emit(
                DriverEventKind.CALLBACK_FAILED,
                f"{self._driver}: the sample callback raised {err!r}; the sample was dropped.",
                throttle_ms=1000.0,
            )

    def _notify(self, event: DriverEvent) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop the driver's thread
                _log.exception("event listener %r raised on %r", listener, event)


class StatusReporting:
    """The ``state`` and ``add_event_listener`` of a driver, read from its :class:`DriverStatus`.

    Drivers keep their status in ``self._status`` and inherit these two members from here, so the
    GazeDriver surface that is the same for every device is written once.
    """

    _status: DriverStatus

    @property
    def state(self) -> DriverState:
        """The driver's state."""
        return self._status.state

    def add_event_listener(self, listener: EventListener) -> Callable[[], None]:
        """Register ``listener`` for driver events; returns its remover."""
        return self._status.add_listener(listener)


class WorkerStreaming(StatusReporting):
    """``stop`` and ``close`` of a driver whose samples come from one :class:`WorkerThread`.

    The mouse simulator and the replay driver start a worker that calls ``self._on_sample``; stopping
    ends the worker and forgets the callback, closing stops for good.
    """

    _worker: WorkerThread | None
    _on_sample: SampleCallback | None

    def stop(self) -> None:
        """Stop streaming (idempotent)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
        self._on_sample = None
        if self.state is DriverState.STREAMING:
            self._status.set_state(DriverState.CONNECTED)

    def close(self) -> None:
        """Stop and release the driver for good (idempotent)."""
        self.stop()
        self._status.set_state(DriverState.CLOSED)


class WorkerThread:
    """A daemon thread running ``body(stop_event)``; an exception in it becomes an event, not a crash.

    Parameters
    ----------
    name : str
        Thread name (shows up in debuggers and logs).
    body : callable
        Runs until it returns or until the event it receives is set.
    status : DriverStatus
        Receives ``DRIVER_FAILED`` and the state ``DISCONNECTED`` when ``body`` raises.
    """

    def __init__(self, name: str, body: Callable[[threading.Event], None], status: DriverStatus) -> None:
        self._name = name
        self._body = body
        self._status = status
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (once)."""
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Ask the body to stop and wait for it, unless called from the thread itself."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout_s)

    def _run(self) -> None:
        try:
            self._body(self._stop)
        except Exception as err:
            _log.exception("%s failed", self._name)
            self._status.set_state(DriverState.DISCONNECTED)
            self._status.emit(
                DriverEventKind.DRIVER_FAILED,
                f"{self._name} stopped after an unexpected error: {err!r}. "
                "Connect again, or choose another driver.",
            )


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """How a driver retries a lost connection: exponential backoff, a bounded number of attempts.

    Parameters
    ----------
    first_delay_ms : float
        Wait before the first attempt.
    factor : float
        Each further wait is the previous one times ``factor`` (≥ 1) ...
    max_delay_ms : float
        ... but never longer than this.
    max_attempts : int
        Attempts before giving up (state ``DISCONNECTED``, event ``GAVE_UP``); 0 never retries.
    """

    first_delay_ms: float = 250.0
    factor: float = 2.0
    max_delay_ms: float = 4000.0
    max_attempts: int = 8

    def __post_init__(self) -> None:
        check_positive(first_delay_ms=self.first_delay_ms)
        check_positive(max_delay_ms=self.max_delay_ms)
        if not (math.isfinite(self.factor) and self.factor >= 1.0):
            raise ValueError(f"factor must be a finite number >= 1; got {self.factor!r}.")
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise TypeError(f"max_attempts must be an int; got {self.max_attempts!r}.")
        if self.max_attempts < 0:
            raise ValueError(f"max_attempts must be >= 0; got {self.max_attempts!r}.")

    def delays_ms(self) -> tuple[float, ...]:
        """The waits before each attempt, in order."""
        delays = []
        delay = self.first_delay_ms
        for _ in range(self.max_attempts):
            delays.append(min(delay, self.max_delay_ms))
            delay *= self.factor
        return tuple(delays)


class DeviceClockMapper:
    """Maps a device's time stamps (ms on its own clock) onto :func:`tracking.clock.now_ms`.

    The offset is the smallest ``arrival_ms - device_ms`` seen so far: the sample that travelled
    fastest bounds the transport delay from below. Mapped times therefore keep the device's own
    sample spacing (no network jitter, no identical stamps for messages that arrived together) and
    never lie after the latest arrival time. While the estimate still improves (the first samples after
    a reset) a mapped time could fall before the previous one; it is then held at the previous one,
    so mapped times never decrease. The estimate starts again after :meth:`reset` (call it on
    reconnection: the device may have restarted). A device clock stepped back (e.g. by NTP) leaves
    later times early by the step until the next reset.
    """

    def __init__(self) -> None:
        self._offset_ms: float | None = None
        self._last_ms = -math.inf
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget the offset estimate."""
        with self._lock:
            self._offset_ms = None
            self._last_ms = -math.inf

    def to_local_ms(self, device_ms: float, arrival_ms: float) -> float:
        """The local time of a sample stamped ``device_ms`` that arrived at ``arrival_ms``."""
        with self._lock:
            offset = arrival_ms - device_ms
            if self._offset_ms is None or offset < self._offset_ms:
                self._offset_ms = offset
            self._last_ms = max(device_ms + self._offset_ms, self._last_ms)
            return self._last_ms


def _rays(xy_screen_px: NDArray[np.float64], geometry: ScreenGeometry) -> NDArray[np.float64]:
    """Vectors (cm) from an eye in front of the screen centre to screen points, shape (N, 3)."""
    centre = np.array([geometry.width_px / 2.0, geometry.height_px / 2.0])
    offset_cm = (xy_screen_px - centre) / geometry.px_per_cm
    return np.column_stack([offset_cm, np.full(len(offset_cm), geometry.distance_cm)])


def _angles_deg(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """Angle between paired rays, in degrees (atan2 of cross and dot: exact also for tiny angles)."""
    cross: NDArray[np.float64] = np.linalg.norm(np.cross(a, b), axis=1)
    dot: NDArray[np.float64] = np.einsum("ij,ij->i", a, b)
    angles: NDArray[np.float64] = np.degrees(np.arctan2(cross, dot))
    return angles


def validation_point(
    target_screen_px: tuple[float, float], samples: Sequence[GazeSample], *, geometry: ScreenGeometry
) -> ValidationPoint:
    """Accuracy and precision of the gaze ``samples`` recorded while looking at one target.

    Accuracy is the mean visual angle between target and gaze; precision the root mean square of
    the visual angles between successive valid samples. Angles are seen from an eye
    ``geometry.distance_cm`` in front of the screen centre. Invalid samples are ignored.

    Parameters
    ----------
    target_screen_px : (float, float)
        The target's (x, y) in screen pixels.
    samples : sequence of GazeSample
        Samples recorded at that target.
    geometry : ScreenGeometry
        Screen size, resolution and viewing distance (RBDM §5.3.1: 27", 2560 × 1440 px, 70 cm).

    Returns
    -------
    tracking.records.ValidationPoint

    Raises
    ------
    ValueError
        When fewer than two samples are valid: neither measure can be estimated.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (viewing geometry).
    """
    tx, ty = float(target_screen_px[0]), float(target_screen_px[1])
    xy = np.array([(s.x_screen_px, s.y_screen_px) for s in samples if s.valid], dtype=np.float64).reshape(
        -1, 2
    )
    if len(xy) < 2:
        raise ValueError(
            f"validation needs at least 2 valid gaze samples at target ({tx:g}, {ty:g}); got {len(xy)} "
            f"of {len(samples)}. Check that the tracker sees the eyes, then validate again."
        )
    rays = _rays(xy, geometry)
    target = np.broadcast_to(_rays(np.array([[tx, ty]]), geometry), rays.shape)
    accuracy = float(_angles_deg(target, rays).mean())
    precision = float(np.sqrt((_angles_deg(rays[:-1], rays[1:]) ** 2).mean()))
    return ValidationPoint(tx, ty, accuracy, precision)


def validate(
    driver: GazeDriver,
    targets_screen_px: Sequence[tuple[float, float]],
    *,
    geometry: ScreenGeometry,
    present_target: TargetPresenter | None = None,
    settle_ms: float = 500.0,
    dwell_ms: float = 1000.0,
    on_sample: SampleCallback | None = None,
) -> ValidationResult:
    """Measure a connected driver's accuracy: show each target, record the gaze while it is looked at.

    Works with any driver (the device's own calibration is not involved). The driver streams during
    the call and is stopped afterwards, also on error. The result can go to the session store as is.

    Parameters
    ----------
    driver : GazeDriver
        A connected, not streaming driver.
    targets_screen_px : sequence of (x, y)
        Targets in screen pixels, shown in order (at least one).
    geometry : ScreenGeometry
        Viewing geometry for converting pixel offsets to visual angle.
    present_target : callable, optional
        Called with (x, y) before each target's recording; shows the target, returns once shown.
    settle_ms : float
        Time given to the eyes to reach the target; samples in it are not used.
    dwell_ms : float
        Recording time per target.
    on_sample : callable, optional
        Also receives every sample (e.g. to draw the gaze while validating).

    Returns
    -------
    tracking.records.ValidationResult
        One point per target (accuracy and precision in degrees), stamped when it finished.

    Raises
    ------
    DriverError
        When the driver cannot stream, or a target got fewer than two valid samples.
    """
    check_positive(dwell_ms=dwell_ms)
    if not (math.isfinite(settle_ms) and settle_ms >= 0):
        raise ValueError(f"settle_ms must be a finite number >= 0; got {settle_ms!r}.")
    targets = [(float(x), float(y)) for x, y in targets_screen_px]
    if not targets:
        raise ValueError("targets_screen_px must hold at least one target; got none.")
    buffer = SampleBuffer()

    def collect(sample: GazeSample) -> None:
        buffer(sample)
        if on_sample is not None:
            on_sample(sample)

    recorded = []
    with streaming(driver, collect):
        for x, y in targets:
            if present_target is not None:
                present_target(x, y)
            time.sleep(settle_ms / 1000.0)
            buffer.drain()
            time.sleep(dwell_ms / 1000.0)
            recorded.append(buffer.drain())
    try:
        points = tuple(
            validation_point(t, s, geometry=geometry) for t, s in zip(targets, recorded, strict=True)
        )
    except ValueError as err:
        raise DriverError(f"validation failed: {err}") from err
    return ValidationResult(now_ms(), points)
