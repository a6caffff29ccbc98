"""TobiiProDriver: Tobii Pro screen-based eye trackers through the Tobii Pro SDK (``tobii_research``).

The SDK is an optional extra (``pip install .[tobii]``), imported inside functions only: this module
imports without it, and ``connect()`` raises an :class:`ImportError` that says how to install it.

Gaze points arrive in normalised display-area coordinates (0..1, top-left origin) and are scaled to
screen pixels with the screen size the tracker's display area is configured for. Time stamps are the
SDK's ``system_time_stamp`` (µs on this computer's monotonic clock), moved onto
:func:`tracking.clock.now_ms` with an offset measured against ``tobii_research.get_system_time_stamp()``
when connecting. A lost connection is re-established by the SDK itself; the driver reports it
(state ``LOST``, events ``CONNECTION_LOST`` / ``RECONNECTED``) from the SDK's notifications.

References
----------
.. [1] Tobii Pro SDK Python API: find_all_eyetrackers, EyeTracker.subscribe_to(EYETRACKER_GAZE_DATA,
   callback, as_dictionary=True), ScreenBasedCalibration; https://developer.tobiipro.com/python.html
"""

from __future__ import annotations

import importlib
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

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
)
from tracking.errors import DriverError
from tracking.records import GazeSample

__all__ = ["TobiiProDriver", "calibration_result_from_sdk", "gaze_sample_from_dict", "import_tobii_research"]

_INSTALL = (
    "Install the Tobii Pro SDK with: pip install .[tobii] (or pip install tobii-research), "
    "or choose the 'mouse' driver."
)


def import_tobii_research(caller: str = "the TobiiPro driver") -> ModuleType:
    """Import the Tobii Pro SDK, or raise an ImportError naming ``caller`` and the install command."""
    try:
        return importlib.import_module("tobii_research")
    except ImportError as err:
        raise ImportError(
            f"{caller} needs the Tobii Pro SDK 'tobii_research', which is not installed ({err}). {_INSTALL}"
        ) from err


def _eye_point(data: Mapping[str, Any], eye: str) -> tuple[float, float] | None:
    if not data.get(f"{eye}_gaze_point_validity"):
        return None
    point = data.get(f"{eye}_gaze_point_on_display_area")
    if not isinstance(point, Sequence) or len(point) != 2:
        return None
    x, y = float(point[0]), float(point[1])
    return (x, y) if math.isfinite(x) and math.isfinite(y) else None


def _eye_pupil(data: Mapping[str, Any], eye: str) -> float | None:
    if not data.get(f"{eye}_pupil_validity"):
        return None
    value = data.get(f"{eye}_pupil_diameter")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    size = float(value)
    return size if math.isfinite(size) and size > 0 else None


def gaze_sample_from_dict(
    data: Mapping[str, Any], *, screen_size_px: tuple[float, float], system_to_local_ms: float
) -> GazeSample:
    """One Tobii gaze data dictionary (``as_dictionary=True``) as a :class:`GazeSample`.

    The position is the mean of the eyes whose ``*_gaze_point_validity`` is set, scaled from the
    normalised display area to screen pixels; the pupil size the mean valid ``*_pupil_diameter`` (mm).

    Parameters
    ----------
    data : mapping
        Keys ``system_time_stamp`` (µs), ``left_/right_gaze_point_on_display_area``,
        ``left_/right_gaze_point_validity``, ``left_/right_pupil_diameter``, ``left_/right_pupil_validity``.
    screen_size_px : (width, height)
        Size of the display area in screen pixels.
    system_to_local_ms : float
        ``now_ms() - get_system_time_stamp() / 1000``, measured when connecting.

    Returns
    -------
    GazeSample
        Invalid (NaN position) when neither eye is valid.

    Raises
    ------
    ValueError
        When ``system_time_stamp`` is missing or not a finite number.
    """
    stamp = data.get("system_time_stamp")
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
        raise ValueError(f"system_time_stamp must be a finite number of µs; got {stamp!r}.")
    t_ms = float(stamp) / 1000.0 + system_to_local_ms
    points = [p for p in (_eye_point(data, "left"), _eye_point(data, "right")) if p is not None]
    pupils = [p for p in (_eye_pupil(data, "left"), _eye_pupil(data, "right")) if p is not None]
    pupil = sum(pupils) / len(pupils) if pupils else None
    if not points:
        return GazeSample(t_ms, math.nan, math.nan, valid=False, pupil_size=pupil)
    x = sum(p[0] for p in points) / len(points) * screen_size_px[0]
    y = sum(p[1] for p in points) / len(points) * screen_size_px[1]
    return GazeSample(t_ms, x, y, valid=True, pupil_size=pupil)


def _mean_error_px(point: Any, screen_size_px: tuple[float, float], valid_code: Any) -> float | None:
    tx, ty = point.position_on_display_area
    errors = []
    for sample in point.calibration_samples:
        for eye in (sample.left_eye, sample.right_eye):
            if eye.validity == valid_code:
                ex, ey = eye.position_on_display_area
                errors.append(math.hypot((ex - tx) * screen_size_px[0], (ey - ty) * screen_size_px[1]))
    return sum(errors) / len(errors) if errors else None


def calibration_result_from_sdk(
    result: Any, *, screen_size_px: tuple[float, float], success_status: Any, valid_code: Any
) -> CalibrationResult:
    """A Tobii ``CalibrationResult`` (from ``compute_and_apply``) as a :class:`CalibrationResult`.

    Parameters
    ----------
    result : tobii_research.CalibrationResult
        With ``status`` and ``calibration_points`` (each ``position_on_display_area`` and
        ``calibration_samples`` holding ``left_eye``/``right_eye`` with ``position_on_display_area``
        and ``validity``).
    screen_size_px : (width, height)
        Size of the display area in screen pixels.
    success_status : object
        ``tobii_research.CALIBRATION_STATUS_SUCCESS``.
    valid_code : object
        ``tobii_research.VALIDITY_VALID_AND_USED``.

    Returns
    -------
    CalibrationResult
        Points in screen pixels with the mean distance of the used samples from the target; a point
        without used samples is invalid. Tobii reports no angular accuracy here (None).
    """
    points = []
    for point in result.calibration_points:
        tx, ty = point.position_on_display_area
        error = _mean_error_px(point, screen_size_px, valid_code)
        points.append(
            CalibrationPoint(
                x_screen_px=float(tx) * screen_size_px[0],
                y_screen_px=float(ty) * screen_size_px[1],
                mean_error_px=error,
                accuracy_deg=None,
                valid=error is not None,
            )
        )
    return CalibrationResult(result.status == success_status, tuple(points), None)


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
        self._tr: ModuleType | None = None
        self._tracker: Any = None
        self._rate_hz = 60.0
        self._system_to_local_ms = 0.0
        self._on_sample: SampleCallback | None = None

    @property
    def nominal_rate_hz(self) -> float:
        """The tracker's gaze output frequency (60 Hz until connected)."""
        return self._rate_hz

    def connect(self) -> None:
        """Find the tracker and subscribe to its connection notifications.

        Raises
        ------
        ImportError
            When the Tobii Pro SDK is not installed (the message says how to install it).
        DriverError
            When no tracker is found.
        """
        if self.state is DriverState.CLOSED:
            raise DriverError("this TobiiPro driver was closed; create a new one.")
        if self.state is not DriverState.DISCONNECTED:
            return
        tr = import_tobii_research()
        self._tracker = self._find(tr)
        self._tr = tr
        self._rate_hz = float(self._tracker.get_gaze_output_frequency())
        self._system_to_local_ms = self._clock_offset_ms(tr)
        self._tracker.subscribe_to(
            tr.EYETRACKER_NOTIFICATION_CONNECTION_LOST, self._on_lost, as_dictionary=True
        )
        self._tracker.subscribe_to(
            tr.EYETRACKER_NOTIFICATION_CONNECTION_RESTORED, self._on_restored, as_dictionary=True
        )
        self._tracker.subscribe_to(tr.EYETRACKER_STREAM_ERRORS, self._on_stream_error, as_dictionary=True)
        self._status.set_state(DriverState.CONNECTED)

    def start(self, on_sample: SampleCallback) -> None:
        """Subscribe to gaze data; samples go to ``on_sample`` (on the SDK's thread) until :meth:`stop`.

        Raises
        ------
        DriverError
            When not connected, or already streaming.
        """
        if self.state is not DriverState.CONNECTED or self._tr is None:
            raise DriverError(
                f"the TobiiPro driver cannot start while {self.state.value}; call connect() first "
                "(and stop() before starting again)."
            )
        self._on_sample = on_sample
        self._tracker.subscribe_to(self._tr.EYETRACKER_GAZE_DATA, self._on_gaze, as_dictionary=True)
        self._status.set_state(DriverState.STREAMING)

    def stop(self) -> None:
        """Unsubscribe from gaze data (idempotent)."""
        if self._on_sample is not None and self._tr is not None:
            self._tracker.unsubscribe_from(self._tr.EYETRACKER_GAZE_DATA, self._on_gaze)
        self._on_sample = None
        if self.state is DriverState.STREAMING:
            self._status.set_state(DriverState.CONNECTED)

    def close(self) -> None:
        """Stop and drop all subscriptions for good (idempotent)."""
        self.stop()
        tr, self._tr = self._tr, None
        if tr is not None:
            self._tracker.unsubscribe_from(tr.EYETRACKER_NOTIFICATION_CONNECTION_LOST, self._on_lost)
            self._tracker.unsubscribe_from(tr.EYETRACKER_NOTIFICATION_CONNECTION_RESTORED, self._on_restored)
            self._tracker.unsubscribe_from(tr.EYETRACKER_STREAM_ERRORS, self._on_stream_error)
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
        if self._tr is None or self.state not in (DriverState.CONNECTED, DriverState.STREAMING):
            raise DriverError(
                f"the TobiiPro driver cannot calibrate while {self.state.value}; connect() first."
            )
        tr, (width, height) = self._tr, self._screen_size_px
        with self._calibration_mode(tr) as calibration:
            for x, y in targets_screen_px:
                if present_target is not None:
                    present_target(float(x), float(y))
                time.sleep(max(settle_ms, 0.0) / 1000.0)
                xn, yn = float(x) / width, float(y) / height
                if calibration.collect_data(xn, yn) != tr.CALIBRATION_STATUS_SUCCESS:
                    calibration.collect_data(xn, yn)
            result = calibration.compute_and_apply()
        return calibration_result_from_sdk(
            result,
            screen_size_px=self._screen_size_px,
            success_status=tr.CALIBRATION_STATUS_SUCCESS,
            valid_code=tr.VALIDITY_VALID_AND_USED,
        )

    @contextmanager
    def _calibration_mode(self, tr: ModuleType) -> Iterator[Any]:
        calibration = tr.ScreenBasedCalibration(self._tracker)
        try:
            calibration.enter_calibration_mode()
        except Exception as err:  # the SDK's own error types
            raise DriverError(f"the Tobii tracker refused to enter calibration mode ({err}).") from err
        try:
            yield calibration
        except DriverError:
            raise
        except Exception as err:
            raise DriverError(f"Tobii calibration failed ({err}); calibrate again.") from err
        finally:
            calibration.leave_calibration_mode()

    def _find(self, tr: ModuleType) -> Any:
        if self._address is not None:
            try:
                return tr.EyeTracker(self._address)
            except Exception as err:  # the SDK's own error types
                raise DriverError(
                    f"no Tobii Pro eye tracker at {self._address!r} ({err}). Check the address in "
                    "Tobii Pro Eye Tracker Manager, or choose the 'mouse' driver."
                ) from err
        trackers = tr.find_all_eyetrackers()
        if not trackers:
            raise DriverError(
                "no Tobii Pro eye tracker found. Connect it and check that Tobii Pro Eye Tracker Manager "
                "lists it, or choose the 'mouse' driver."
            )
        return trackers[0]

    @staticmethod
    def _clock_offset_ms(tr: ModuleType) -> float:
        best: tuple[float, float] | None = None
        for _ in range(5):
            before = now_ms()
            system_ms = tr.get_system_time_stamp() / 1000.0
            after = now_ms()
            if best is None or after - before < best[0]:
                best = (after - before, (before + after) / 2.0 - system_ms)
        assert best is not None
        return best[1]

    def _on_gaze(self, data: Mapping[str, Any]) -> None:
        """SDK thread: one gaze data dictionary. Never raises."""
        try:
            sample = gaze_sample_from_dict(
                data, screen_size_px=self._screen_size_px, system_to_local_ms=self._system_to_local_ms
            )
        except (ValueError, TypeError) as err:
            self._status.emit(
                DriverEventKind.MALFORMED_MESSAGE, f"Tobii gaze data unreadable ({err}).", throttle_ms=1000.0
            )
            return
        self._status.deliver(self._on_sample, sample)

    def _on_lost(self, data: Any) -> None:
        self._status.set_state(DriverState.LOST, "tobii: connection to the eye tracker lost")
        self._status.emit(
            DriverEventKind.CONNECTION_LOST,
            "the Tobii eye tracker connection was lost; the SDK is reconnecting.",
        )

    def _on_restored(self, data: Any) -> None:
        self._status.set_state(
            DriverState.STREAMING if self._on_sample is not None else DriverState.CONNECTED
        )
        self._status.emit(DriverEventKind.RECONNECTED, "the Tobii eye tracker connection is back.")

    def _on_stream_error(self, data: Any) -> None:
        message = data.get("message", data) if isinstance(data, Mapping) else data
        self._status.emit(
            DriverEventKind.DEVICE_NOTICE, f"Tobii stream error: {message}.", throttle_ms=1000.0
        )
