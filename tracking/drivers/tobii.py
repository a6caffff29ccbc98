"""TobiiProDriver: Tobii Pro screen-based eye trackers through TittaPy (the Tobii Pro SDK for Python).

TittaPy ships the Tobii Pro SDK in two builds: ``TittaPy_v2`` (SDK 2.x: Spectrum, Fusion, Nano, Spark)
and ``TittaPy_v1`` (SDK 1.x, which still drives older trackers such as the TX300, T60 XL, X3-120 and
X2). The driver looks for a tracker with SDK 2 first, then with SDK 1. TittaPy is an optional extra
(``pip install .[tobii]``), imported inside functions only: this module imports without it, and
``connect()`` raises an :class:`ImportError` that says how to install it.

TittaPy buffers the tracker's data streams in C++. A worker thread of the driver drains them
(``consume_N``) every few milliseconds: gaze samples while streaming; notifications (connection lost
and restored, output frequency changed, device faults) and the SDK's stream errors while connected.

Gaze points arrive in normalised display-area coordinates (0..1, top-left origin) and are scaled to
screen pixels with the screen size the tracker's display area is configured for. Time stamps are
TittaPy's ``system_time_stamp`` (µs on this computer's monotonic clock), moved onto
:func:`tracking.clock.now_ms` with an offset measured against ``get_system_timestamp()`` when
connecting. A lost connection is re-established by the SDK itself; the driver reports it (state
``LOST``, events ``CONNECTION_LOST`` / ``RECONNECTED``) from the notification stream.

References
----------
.. [1] Niehorster, D. C., Andersson, R. & Nyström, M. (2020). Titta: A toolbox for creating
   PsychToolbox and Psychopy experiments with Tobii eye trackers. Behavior Research Methods 52,
   1970-1979. doi:10.3758/s13428-020-01358-8
.. [2] TittaPy API: find_all_eye_trackers, EyeTracker(address), start/stop/consume_N per stream,
   get_system_timestamp, enter_calibration_mode, calibration_collect_data,
   calibration_compute_and_apply, calibration_retrieve_result; https://github.com/dcnieho/Titta
"""

from __future__ import annotations

import importlib
import logging
import math
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tracking._validation import check_positive
from tracking.clock import now_ms
from tracking.drivers.base import (
    CalibrationPoint,
    CalibrationResult,
    DriverEventKind,
    DriverState,
    DriverStatus,
    SampleCallback,
    StatusReporting,
    TargetPresenter,
    WorkerThread,
)
from tracking.errors import DriverError
from tracking.records import GazeSample

__all__ = [
    "TobiiProDriver",
    "calibration_result_from_titta",
    "gaze_samples_from_titta",
    "import_tittapy",
    "notifications_from_titta",
]

_log = logging.getLogger(__name__)

_SDK_MODULES = ("TittaPy_v2", "TittaPy_v1")
"""TittaPy's SDK builds, newest first."""

_INSTALL = "Install it with: pip install .[tobii] (or pip install TittaPy), or choose the 'mouse' driver."
_EYES = ("left", "right")
_POLL_S = 0.004
_CALIBRATION_TIMEOUT_S = 30.0
_STATUS_OK = 0
"""TOBII_RESEARCH_STATUS_OK, the ``status`` of a calibration step that worked."""


def import_tittapy(caller: str = "the TobiiPro driver") -> tuple[ModuleType, ...]:
    """Import TittaPy's SDK builds, ``TittaPy_v2`` first, then ``TittaPy_v1``.

    Returns
    -------
    tuple of module
        The builds that import (at least one).

    Raises
    ------
    ImportError
        When neither imports; the message names ``caller`` and the install command.
    """
    modules: list[ModuleType] = []
    failure: ImportError | None = None
    for name in _SDK_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ImportError as err:
            failure = err
    if not modules:
        raise ImportError(
            f"{caller} needs TittaPy (the Tobii Pro SDK for Python), which could not be imported "
            f"({failure}). {_INSTALL}"
        ) from failure
    return tuple(modules)


def _enum_name(value: Any) -> str:
    """The member name of a TittaPy enum value (the same in both SDK builds)."""
    name = getattr(value, "name", None)
    return name if isinstance(name, str) else str(value)


def _column(data: Mapping[str, Any], key: str, dtype: type, n: int | None) -> NDArray[Any]:
    if key not in data:
        raise ValueError(f"TittaPy gaze data has no field {key!r}; got fields {sorted(data)!r}.")
    column: NDArray[Any] = np.asarray(data[key], dtype=dtype)
    if column.ndim != 1 or (n is not None and len(column) != n):
        expected = "a 1-D array" if n is None else f"one value per sample ({n})"
        raise ValueError(f"TittaPy gaze field {key!r} must hold {expected}; got shape {column.shape}.")
    return column


def _eye_columns(data: Mapping[str, Any], n: int, suffix: str, dtype: type) -> NDArray[Any]:
    """Shape (2, N): the left and the right eye's ``{eye}_{suffix}`` column."""
    return np.stack([_column(data, f"{eye}_{suffix}", dtype, n) for eye in _EYES])


def _mean_of_valid(values: NDArray[np.float64], ok: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Per sample (column) the mean of the entries where ``ok``; NaN where none is."""
    n_ok = ok.sum(axis=0)
    total = np.where(ok, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: NDArray[np.float64] = np.where(n_ok > 0, total / n_ok, np.nan)
    return mean


def gaze_samples_from_titta(
    data: Mapping[str, Any], *, screen_size_px: tuple[float, float], system_to_local_ms: float
) -> list[GazeSample]:
    """TittaPy gaze data (``EyeTracker.consume_N("gaze")``) as :class:`GazeSample` records.

    The position is the mean of the eyes whose ``{eye}_gaze_point_valid`` is set and whose point is
    finite, scaled from the normalised display area to screen pixels; the pupil size is the mean
    valid, finite, positive ``{eye}_pupil_diameter`` (mm).

    Parameters
    ----------
    data : mapping of str to 1-D arrays
        One entry per sample in each of ``system_time_stamp`` (µs),
        ``{left,right}_gaze_point_on_display_area_{x,y}``, ``{left,right}_gaze_point_valid``,
        ``{left,right}_pupil_diameter`` and ``{left,right}_pupil_valid``; other fields are ignored.
    screen_size_px : (width, height)
        Size of the display area in screen pixels.
    system_to_local_ms : float
        ``now_ms() - get_system_timestamp() / 1000``, measured when connecting.

    Returns
    -------
    list of GazeSample
        In the order given; invalid (NaN position) where neither eye is valid. Samples whose time
        stamp is not finite are dropped. No samples (empty arrays) give an empty list.

    Raises
    ------
    ValueError
        When a field is missing or the fields' lengths differ.
    """
    stamps = _column(data, "system_time_stamp", np.float64, None)
    n = len(stamps)
    xs = _eye_columns(data, n, "gaze_point_on_display_area_x", np.float64)
    ys = _eye_columns(data, n, "gaze_point_on_display_area_y", np.float64)
    gaze_ok = _eye_columns(data, n, "gaze_point_valid", np.bool_) & np.isfinite(xs) & np.isfinite(ys)
    pupils = _eye_columns(data, n, "pupil_diameter", np.float64)
    with np.errstate(invalid="ignore"):
        pupil_ok = _eye_columns(data, n, "pupil_valid", np.bool_) & np.isfinite(pupils) & (pupils > 0)
    x_px = _mean_of_valid(xs, gaze_ok) * screen_size_px[0]
    y_px = _mean_of_valid(ys, gaze_ok) * screen_size_px[1]
    pupil = _mean_of_valid(pupils, pupil_ok)
    t_ms = stamps / 1000.0 + system_to_local_ms
    samples = []
    for i in np.flatnonzero(np.isfinite(t_ms)):
        size = float(pupil[i]) if math.isfinite(pupil[i]) else None
        valid = bool(math.isfinite(x_px[i]))
        samples.append(GazeSample(float(t_ms[i]), float(x_px[i]), float(y_px[i]), valid, size))
    return samples


def _point_errors_px(
    point: Mapping[str, Any], eye: str, target: tuple[float, float], screen_size_px: tuple[float, float]
) -> NDArray[np.float64]:
    """Distances (screen px) of one eye's used calibration samples from the target."""
    xs = np.asarray(point[f"samples_{eye}_position_on_display_area_x"], dtype=np.float64).reshape(-1)
    ys = np.asarray(point[f"samples_{eye}_position_on_display_area_y"], dtype=np.float64).reshape(-1)
    used = np.array([_enum_name(v) == "valid_and_used" for v in point[f"samples_{eye}_validity"]], bool)
    ok = used & np.isfinite(xs) & np.isfinite(ys)
    errors: NDArray[np.float64] = np.hypot(
        (xs[ok] - target[0]) * screen_size_px[0], (ys[ok] - target[1]) * screen_size_px[1]
    )
    return errors


def calibration_result_from_titta(
    result: Mapping[str, Any], *, screen_size_px: tuple[float, float]
) -> CalibrationResult:
    """A TittaPy calibration result as a :class:`CalibrationResult`.

    Parameters
    ----------
    result : mapping
        The ``calibration_result`` of the ``compute`` step from ``calibration_retrieve_result()``:
        ``status`` (``calibration_status``) and ``points``, each with ``position_on_display_area_{x,y}``
        and, per eye, ``samples_{eye}_position_on_display_area_{x,y}`` and ``samples_{eye}_validity``
        (``calibration_eye_validity`` values).
    screen_size_px : (width, height)
        Size of the display area in screen pixels.

    Returns
    -------
    CalibrationResult
        Succeeded when the status is ``success``. Points in screen pixels with the mean distance of
        the ``valid_and_used`` samples from the target; a point without such samples is invalid.
        Tobii reports no angular accuracy here (None).
    """
    points = []
    for point in result["points"]:
        target = (float(point["position_on_display_area_x"]), float(point["position_on_display_area_y"]))
        errors = np.concatenate([_point_errors_px(point, eye, target, screen_size_px) for eye in _EYES])
        error = float(errors.mean()) if errors.size else None
        points.append(
            CalibrationPoint(
                x_screen_px=target[0] * screen_size_px[0],
                y_screen_px=target[1] * screen_size_px[1],
                mean_error_px=error,
                accuracy_deg=None,
                valid=error is not None,
            )
        )
    return CalibrationResult(_enum_name(result["status"]) == "success", tuple(points), None)


def notifications_from_titta(data: Mapping[str, Any]) -> list[tuple[str, float | str | None]]:
    """TittaPy notifications (``EyeTracker.consume_N("notification")``) as (name, detail) pairs.

    Parameters
    ----------
    data : mapping
        ``notification_type`` (``notification_type`` values), with ``output_frequency`` and
        ``errors_or_warnings`` alongside (None where a notification carries neither).

    Returns
    -------
    list of (str, detail)
        The notification's name (``"connection_lost"``, ``"connection_restored"``, ...) and its detail:
        the new rate in Hz for ``gaze_output_frequency_changed``, the text for ``device_faults`` and
        ``device_warnings``, None otherwise.

    Raises
    ------
    ValueError
        When ``notification_type`` is missing.
    """
    if "notification_type" not in data:
        raise ValueError(f"TittaPy notification data has no field 'notification_type'; got {sorted(data)!r}.")
    kinds = list(data["notification_type"])
    rates = list(data.get("output_frequency", [None] * len(kinds)))
    texts = list(data.get("errors_or_warnings", [None] * len(kinds)))
    out: list[tuple[str, float | str | None]] = []
    for kind, rate, text in zip(kinds, rates, texts, strict=False):
        name = _enum_name(kind)
        detail: float | str | None = None
        if name == "gaze_output_frequency_changed" and rate is not None:
            detail = float(rate)
        elif name in ("device_faults", "device_warnings") and text:
            detail = str(text)
        out.append((name, detail))
    return out


def _clock_offset_ms(sdk: ModuleType) -> float:
    """``now_ms() - get_system_timestamp() / 1000``, bracketed to the tightest of a few readings."""
    best: tuple[float, float] | None = None
    for _ in range(5):
        before = now_ms()
        system_ms = sdk.get_system_timestamp() / 1000.0
        after = now_ms()
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) / 2.0 - system_ms)
    assert best is not None
    return best[1]


def _await_calibration(tracker: Any, action: str, *, timeout_s: float) -> Mapping[str, Any]:
    """The result of the calibration step ``action``; results of other steps are skipped."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = tracker.calibration_retrieve_result()
        if result is None:
            time.sleep(_POLL_S)
        elif isinstance(result, Mapping) and _enum_name(result.get("work_item", {}).get("action")) == action:
            return result
    raise DriverError(
        f"the Tobii eye tracker did not finish the calibration step '{action}' within {timeout_s:g} s. "
        "Check its connection, then calibrate again."
    )


class TobiiProDriver(StatusReporting):
    """A gaze driver for Tobii Pro screen-based eye trackers.

    Parameters
    ----------
    screen_size_px : (width, height)
        The screen (display area) the tracker is set up for, in pixels.
    address : str, optional
        The tracker's address (e.g. ``"tet-tcp://169.254.5.12"``); the first tracker found otherwise.
    """

    name = "tobii"

    def __init__(self, *, screen_size_px: tuple[int, int], address: str | None = None) -> None:
        width, height = screen_size_px
        self._screen_size_px = (
            check_positive(screen_width_px=width),
            check_positive(screen_height_px=height),
        )
        self._address = address
        self._status = DriverStatus(self.name)
        self._sdk: ModuleType | None = None
        self._tracker: Any = None
        self._worker: WorkerThread | None = None
        self._gaze_lock = threading.RLock()
        self._rate_hz = 60.0
        self._system_to_local_ms = 0.0
        self._on_sample: SampleCallback | None = None

    @property
    def nominal_rate_hz(self) -> float:
        """The tracker's gaze output frequency (60 Hz until connected)."""
        return self._rate_hz

    def connect(self) -> None:
        """Find the tracker, open it and watch its notifications.

        Raises
        ------
        ImportError
            When TittaPy is not installed (the message says how to install it).
        DriverError
            When no tracker is found, or the one found (or at ``address``) cannot be opened.
        """
        if self.state is DriverState.CLOSED:
            raise DriverError("this TobiiPro driver was closed; create a new one.")
        if self.state is not DriverState.DISCONNECTED:
            return
        self._release()  # what a connection that failed in the worker thread left behind
        self._sdk, self._tracker = self._open(import_tittapy())
        try:
            self._rate_hz = float(self._tracker.frequency)
            self._sdk.start_logging()
            self._tracker.start("notification")
        except RuntimeError as err:
            self._release()
            raise DriverError(
                f"the Tobii eye tracker did not respond ({err}). Check its cable and power, "
                "then connect again."
            ) from err
        self._system_to_local_ms = _clock_offset_ms(self._sdk)
        self._status.set_state(DriverState.CONNECTED)
        self._worker = WorkerThread("tobii-poll", self._poll, self._status)
        self._worker.start()

    def start(self, on_sample: SampleCallback) -> None:
        """Stream gaze data into ``on_sample`` (on the driver's thread) until :meth:`stop`.

        Raises
        ------
        DriverError
            When not connected, already streaming, or the tracker refuses to stream.
        """
        tracker = self._tracker
        if self.state is not DriverState.CONNECTED or tracker is None:
            raise DriverError(
                f"the TobiiPro driver cannot start while {self.state.value}; call connect() first "
                "(and stop() before starting again)."
            )
        try:
            started = tracker.start("gaze")
        except RuntimeError as err:
            raise DriverError(f"the Tobii eye tracker refused to stream gaze data ({err}).") from err
        if not started:
            raise DriverError("the Tobii eye tracker refused to stream gaze data; connect it again.")
        with self._gaze_lock:
            self._on_sample = on_sample
        self._status.set_state(DriverState.STREAMING)

    def stop(self) -> None:
        """Stop streaming gaze data and drop what is still buffered (idempotent)."""
        with self._gaze_lock:
            on_sample, self._on_sample = self._on_sample, None
        if on_sample is not None and self._tracker is not None:
            self._stop_stream(self._tracker, "gaze")
        if self.state is DriverState.STREAMING:
            self._status.set_state(DriverState.CONNECTED)

    def close(self) -> None:
        """Stop and let go of the tracker for good (idempotent)."""
        self.stop()
        self._release()
        self._status.set_state(DriverState.CLOSED)

    def calibrate(
        self,
        targets_screen_px: Sequence[tuple[float, float]],
        *,
        present_target: TargetPresenter | None = None,
        settle_ms: float = 500.0,
        dwell_ms: float = 800.0,
    ) -> CalibrationResult:
        """Run a screen-based calibration over ``targets_screen_px``.

        For each target ``present_target(x, y)`` shows it, the eyes get ``settle_ms``, then the SDK
        collects data (once more if it reports a failure; ``dwell_ms`` is the SDK's own). The result is
        computed and applied; calibration mode is always left again.

        Raises
        ------
        DriverError
            When not connected or the SDK fails.
        """
        tracker = self._tracker
        if tracker is None or self.state not in (DriverState.CONNECTED, DriverState.STREAMING):
            raise DriverError(
                f"the TobiiPro driver cannot calibrate while {self.state.value}; connect() first."
            )
        width, height = self._screen_size_px
        with self._calibration_mode(tracker):
            for x, y in targets_screen_px:
                if present_target is not None:
                    present_target(float(x), float(y))
                time.sleep(max(settle_ms, 0.0) / 1000.0)
                point = [float(x) / width, float(y) / height]
                for _ in range(2):
                    tracker.calibration_collect_data(point)
                    collected = _await_calibration(tracker, "collect_data", timeout_s=_CALIBRATION_TIMEOUT_S)
                    if collected.get("status") == _STATUS_OK:
                        break
            tracker.calibration_compute_and_apply()
            computed = _await_calibration(tracker, "compute", timeout_s=_CALIBRATION_TIMEOUT_S)
        result = computed.get("calibration_result")
        if computed.get("status") != _STATUS_OK or not isinstance(result, Mapping):
            raise DriverError(
                f"Tobii calibration could not be computed ({computed.get('status_string')}); calibrate again."
            )
        return calibration_result_from_titta(result, screen_size_px=self._screen_size_px)

    @contextmanager
    def _calibration_mode(self, tracker: Any) -> Iterator[None]:
        while tracker.calibration_retrieve_result() is not None:
            pass  # results left over from an earlier calibration
        try:
            entered = tracker.enter_calibration_mode(False)
        except RuntimeError as err:
            raise DriverError(f"the Tobii eye tracker refused to enter calibration mode ({err}).") from err
        if not entered:
            raise DriverError(
                "the Tobii eye tracker is calibrating already; wait for that calibration to end."
            )
        try:
            result = _await_calibration(tracker, "enter", timeout_s=_CALIBRATION_TIMEOUT_S)
            if result.get("status") != _STATUS_OK:
                raise DriverError(
                    "the Tobii eye tracker refused to enter calibration mode "
                    f"({result.get('status_string')}). Check its connection, then calibrate again."
                )
            yield
        except RuntimeError as err:
            raise DriverError(f"Tobii calibration failed ({err}); calibrate again.") from err
        finally:
            tracker.leave_calibration_mode(False)

    def _open(self, modules: Sequence[ModuleType]) -> tuple[ModuleType, Any]:
        """The first SDK build that finds (or, with ``address``, opens) a tracker, and the tracker."""
        failures = []
        for sdk in modules:
            try:
                address = self._address
                if address is None:
                    found = sdk.find_all_eye_trackers()
                    if not found:
                        continue
                    address = str(found[0]["address"])
                return sdk, sdk.EyeTracker(address)
            except RuntimeError as err:
                failures.append(f"{sdk.__name__}: {err}")
        if failures:
            raise DriverError(
                f"could not open the Tobii Pro eye tracker ({'; '.join(failures)}). Check its address in "
                "Tobii Pro Eye Tracker Manager, or choose the 'mouse' driver."
            )
        raise DriverError(
            "no Tobii Pro eye tracker found. Connect it and check that Tobii Pro Eye Tracker Manager "
            "lists it, or choose the 'mouse' driver."
        )

    def _release(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
        with self._gaze_lock:
            self._on_sample = None
        tracker, self._tracker = self._tracker, None
        sdk, self._sdk = self._sdk, None
        if tracker is not None:
            for stream in ("gaze", "notification"):
                self._stop_stream(tracker, stream)
        if sdk is not None:
            sdk.stop_logging()

    @staticmethod
    def _stop_stream(tracker: Any, stream: str) -> None:
        try:
            tracker.stop(stream, True)  # and clear its buffer
        except RuntimeError:  # the tracker is gone already: nothing left to stop
            _log.debug("stopping the Tobii %s stream failed", stream, exc_info=True)

    def _poll(self, stop: threading.Event) -> None:
        """Worker thread: drain gaze (while streaming), notifications and stream errors."""
        while not stop.wait(_POLL_S):
            tracker, sdk = self._tracker, self._sdk
            if tracker is None or sdk is None:
                return
            self._pump_gaze(tracker)
            self._handle_notifications(tracker.consume_N("notification", sys.maxsize))
            self._report_stream_errors(sdk.get_log(True))

    def _pump_gaze(self, tracker: Any) -> None:
        with self._gaze_lock:
            on_sample = self._on_sample
            if on_sample is None:
                return
            data = tracker.consume_N("gaze", sys.maxsize)
            try:
                samples = gaze_samples_from_titta(
                    data, screen_size_px=self._screen_size_px, system_to_local_ms=self._system_to_local_ms
                )
            except (ValueError, TypeError) as err:
                self._status.emit(
                    DriverEventKind.MALFORMED_MESSAGE,
                    f"Tobii gaze data unreadable ({err}); dropped.",
                    throttle_ms=1000.0,
                )
                return
            for sample in samples:
                self._status.deliver(on_sample, sample)

    def _handle_notifications(self, data: Mapping[str, Any]) -> None:
        try:
            notifications = notifications_from_titta(data)
        except (ValueError, TypeError) as err:
            self._status.emit(
                DriverEventKind.MALFORMED_MESSAGE,
                f"Tobii notification unreadable ({err}).",
                throttle_ms=1000.0,
            )
            return
        for name, detail in notifications:
            if name == "connection_lost":
                self._status.set_state(DriverState.LOST, "tobii: connection to the eye tracker lost")
                self._status.emit(
                    DriverEventKind.CONNECTION_LOST,
                    "the Tobii eye tracker connection was lost; the SDK is reconnecting.",
                )
            elif name == "connection_restored":
                with self._gaze_lock:
                    streaming = self._on_sample is not None
                self._status.set_state(DriverState.STREAMING if streaming else DriverState.CONNECTED)
                self._status.emit(DriverEventKind.RECONNECTED, "the Tobii eye tracker connection is back.")
            elif isinstance(detail, float):
                self._rate_hz = detail
                self._status.emit(
                    DriverEventKind.DEVICE_NOTICE, f"the Tobii eye tracker now runs at {detail:g} Hz."
                )
            elif isinstance(detail, str):
                self._status.emit(DriverEventKind.DEVICE_NOTICE, f"Tobii {name.replace('_', ' ')}: {detail}")

    def _report_stream_errors(self, entries: Sequence[Any]) -> None:
        """Pass the SDK's stream errors on; its plain log messages are left out."""
        for entry in entries:
            if isinstance(entry, Mapping) and "error" in entry:
                self._status.emit(
                    DriverEventKind.DEVICE_NOTICE,
                    f"Tobii stream error ({_enum_name(entry['error'])}): {entry.get('message', '')}.",
                    throttle_ms=1000.0,
                )
