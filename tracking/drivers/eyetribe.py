"""EyeTribeDriver: the Eye Tribe tracker through the Eye Tribe Server API (JSON over TCP).

The server (default ``localhost:6555``) sends JSON objects back to back on one TCP stream; one read
may hold several of them or part of one. :func:`split_messages` cuts a byte buffer into complete
objects, :func:`parse_message` decodes one, :func:`interpret_message` turns it into a
:class:`EyeTribeFrame`, an :class:`EyeTribeReply` or an :class:`EyeTribeNotice`. All three are pure
and raise only :class:`MalformedMessage`; the driver turns that into a ``MALFORMED_MESSAGE`` event.

Time stamps: each frame carries the server's ``time`` in ms (its wall clock). The driver maps it
onto the shared clock with :class:`~tracking.drivers.base.DeviceClockMapper` (offset = smallest
arrival minus device time seen since (re)connecting), which keeps the tracker's sample spacing even
when several frames arrive in one read. Frames without a usable ``time`` are stamped on arrival.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (an Eye Tribe ET1000 recorded the
   annotators' gaze).
.. [2] The Eye Tribe, Tracker API reference (dev.theeyetribe.com/api): categories tracker,
   calibration and heartbeat; push frames; status codes 200, 400/403/500 and 800-802.
"""

from __future__ import annotations

import enum
import json
import math
import re
import reprlib
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from tracking._validation import check_positive
from tracking.clock import now_ms
from tracking.drivers.base import (
    CalibrationPoint,
    CalibrationResult,
    DeviceClockMapper,
    DriverEventKind,
    DriverState,
    DriverStatus,
    ReconnectPolicy,
    SampleCallback,
    StatusReporting,
    TargetPresenter,
    WorkerThread,
)
from tracking.errors import DriverError
from tracking.records import GazeSample

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "EyeTribeDriver",
    "EyeTribeFrame",
    "EyeTribeNotice",
    "EyeTribeReply",
    "FrameState",
    "MalformedMessage",
    "SplitResult",
    "encode_request",
    "interpret_message",
    "parse_calibration_result",
    "parse_frame",
    "parse_message",
    "split_messages",
]

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 6555
MAX_MESSAGE_BYTES = 32 * 1024
"""An unfinished message longer than this is garbage (a frame is under 1 KiB, a calibration result a few)."""

_NOTICES = {
    800: "the calibration changed",
    801: "the display changed",
    802: "the tracker state changed",
}
_TRACKER_STATES = {
    0: "tracker connected",
    1: "tracker not connected to EyeTribe Server; plug it in (USB 3.0)",
    2: "tracker connected with a wrong connection; use a USB 3.0 port",
    3: "no USB 3.0 port available for the tracker",
    4: "tracker connected but not streaming; restart EyeTribe Server",
}
_SESSION_KEYS = ("push", "version", "heartbeatinterval", "framerate", "iscalibrated", "trackerstate")


_REPR = reprlib.Repr()
_REPR.maxstring = 60
_REPR.maxother = 60


def _short(value: Any) -> str:
    """A bounded repr of untrusted message content, for error texts."""
    return _REPR.repr(value)


class MalformedMessage(ValueError):
    """A message from the server is not what the Eye Tribe API documents."""


class FrameState(enum.IntFlag):
    """The ``state`` bitmask of an Eye Tribe frame."""

    GAZE = 0x1
    EYES = 0x2
    PRESENCE = 0x4
    FAILED = 0x8
    LOST = 0x10


@dataclass(frozen=True, slots=True)
class SplitResult:
    """Complete messages cut from a byte buffer, what is left of it, and what was thrown away."""

    messages: tuple[bytes, ...]
    rest: bytes
    discarded: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class EyeTribeFrame:
    """One pushed frame.

    Parameters
    ----------
    device_time_ms : float or None
        The server's ``time`` stamp (ms on its clock), None when absent or not finite.
    x_screen_px, y_screen_px : float
        Gaze point (``avg`` smoothed or ``raw``) in screen pixels.
    fixation : bool
        The server's own fixation flag (``fix``).
    state : FrameState
        Tracking state bitmask.
    pupil_size : float or None
        Mean of the eyes' ``psize`` (arbitrary units) over eyes that report a positive one.
    """

    device_time_ms: float | None
    x_screen_px: float
    y_screen_px: float
    fixation: bool
    state: FrameState
    pupil_size: float | None

    @property
    def valid(self) -> bool:
        """Gaze tracked, tracking neither failed nor lost, and a finite position."""
        tracked = FrameState.GAZE in self.state and not self.state & (FrameState.FAILED | FrameState.LOST)
        return tracked and math.isfinite(self.x_screen_px) and math.isfinite(self.y_screen_px)

    def to_sample(self, t_ms: float) -> GazeSample:
        """The frame as a :class:`GazeSample` stamped ``t_ms``; invalid frames get NaN coordinates.

        The sample keeps the server's own ``time`` (``device_t_ms``) and ``state`` bitmask
        (``device_state``), so a recording can be checked against the device.
        """
        valid = self.valid
        return GazeSample(
            t_ms,
            self.x_screen_px if valid else math.nan,
            self.y_screen_px if valid else math.nan,
            valid=valid,
            pupil_size=self.pupil_size,
            device_t_ms=self.device_time_ms,
            device_state=int(self.state),
        )


@dataclass(frozen=True, slots=True)
class EyeTribeReply:
    """The server's answer to a request (or a heartbeat)."""

    category: str
    request: str
    statuscode: int
    values: Any = field(default=None)

    @property
    def ok(self) -> bool:
        """Status code 200."""
        return self.statuscode == 200

    @property
    def status_message(self) -> str:
        """The server's ``values.statusmessage`` for an error, or ``""``."""
        message = self.values.get("statusmessage", "") if isinstance(self.values, Mapping) else ""
        return message if isinstance(message, str) else _short(message)


@dataclass(frozen=True, slots=True)
class EyeTribeNotice:
    """A notification the server pushes at any time (status codes 800-899)."""

    statuscode: int
    category: str
    values: Any = field(default=None)

    @property
    def text(self) -> str:
        """What the notice means, in words."""
        what = _NOTICES.get(self.statuscode, f"notification {self.statuscode}")
        state = self.values.get("trackerstate") if isinstance(self.values, Mapping) else None
        if isinstance(state, int) and not isinstance(state, bool):
            what += f" ({_TRACKER_STATES.get(state, f'trackerstate {state}')})"
        return f"EyeTribe Server: {what}."


_TOKEN = re.compile(rb'[{}"\\\x00-\x1f]')


def _object_end(buffer: bytes, start: int) -> tuple[int, bool]:
    """Scan the JSON object starting at ``buffer[start] == b'{'``.

    Returns ``(end, True)`` with ``end`` just after its closing brace; ``(end, False)`` when a raw
    control byte (such as the newline the server puts after each message) turns up inside a string,
    which no valid JSON has, or a line break turns up between tokens, which the server never writes
    inside a message (it writes one message per line): the candidate was cut short and is broken up
    to ``end``; ``(-1, False)`` when unfinished.
    """
    depth, in_string, pos = 0, False, start
    while True:
        match = _TOKEN.search(buffer, pos)
        if match is None:
            return -1, False
        token, pos = match.group(), match.end()
        if in_string:
            if token == b"\\":
                pos += 1
            elif token == b'"':
                in_string = False
            elif token < b" ":
                return pos, False
        elif token == b'"':
            in_string = True
        elif token in (b"\n", b"\r"):
            return pos, False
        elif token == b"{":
            depth += 1
        elif token == b"}":
            depth -= 1
            if depth == 0:
                return pos, True


def split_messages(buffer: bytes, *, max_message_bytes: int = MAX_MESSAGE_BYTES) -> SplitResult:
    """Cut complete top-level JSON objects off the front of ``buffer``.

    Objects may be back to back, separated by whitespace or newlines. Braces inside strings are
    honoured. Garbage is discarded (reported in ``discarded``) and scanning resynchronises:
    bytes outside any object; a candidate whose string runs into a raw control byte such as a
    newline (illegal in JSON strings; the server ends each message with one) is dropped up to that
    byte; so is a candidate with a line break between its tokens (a message cut short, followed by
    the server's newline and the next messages, which are kept; a complete message inside it, after
    a stray ``{``, is kept too); an unfinished candidate longer than ``max_message_bytes`` (a stray
    ``{`` with no newline after it) is dropped up to the next ``{``. UTF-8 needs no care: bytes of
    multi-byte characters are all ≥ 0x80.

    Parameters
    ----------
    buffer : bytes
        Bytes received so far, beginning where the previous call's ``rest`` began.
    max_message_bytes : int
        Longest unfinished message kept for the next read.

    Returns
    -------
    SplitResult
        ``messages`` (each one candidate JSON object), ``rest`` (an unfinished object to prepend to
        the next read) and ``discarded`` (garbage segments).
    """
    messages: list[bytes] = []
    dropped: list[tuple[int, int]] = []
    pos, rest = 0, b""
    while pos < len(buffer):
        start = buffer.find(b"{", pos)
        garbage_end = len(buffer) if start < 0 else start
        if buffer[pos:garbage_end].strip():
            _drop(dropped, pos, garbage_end)
        if start < 0:
            break
        end, complete = _object_end(buffer, start)
        if complete:
            messages.append(buffer[start:end])
            pos = end
        elif end >= 0:
            # Cut short: a complete message may begin inside it (after a stray brace); retry there.
            inner = buffer.find(b"{", start + 1, end)
            pos = inner if inner >= 0 else end
            _drop(dropped, start, pos)
        elif len(buffer) - start <= max_message_bytes:
            rest = buffer[start:]
            break
        else:
            pos = buffer.find(b"{", start + 1)
            _drop(dropped, start, pos if pos >= 0 else len(buffer))
            if pos < 0:
                break
    return SplitResult(tuple(messages), rest, tuple(buffer[a:b] for a, b in dropped))


def _drop(dropped: list[tuple[int, int]], start: int, end: int) -> None:
    """Record ``buffer[start:end]`` as discarded, joined to the previous piece when they touch."""
    if dropped and dropped[-1][1] == start:
        start = dropped.pop()[0]
    dropped.append((start, end))


def parse_message(raw: bytes) -> dict[str, Any]:
    """Decode one message: UTF-8 JSON whose top level is an object.

    Raises
    ------
    MalformedMessage
        When it is not valid UTF-8, not JSON, nested too deeply, not an object, or holds ``NaN``
        or ``Infinity`` (not JSON; Python's reader would otherwise accept them).
    """
    try:
        value = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except MalformedMessage:
        raise
    except (ValueError, RecursionError) as err:
        raise MalformedMessage(f"not valid JSON ({type(err).__name__}: {err})") from err
    if not isinstance(value, dict):
        raise MalformedMessage(f"expected a JSON object; got {type(value).__name__}")
    return value


def _reject_constant(name: str) -> Any:
    raise MalformedMessage(f"{name} is not a number JSON allows; the message is dropped")


def _finite(value: Any) -> float | None:
    """``value`` as a finite float, or None (not a number, a bool, NaN, infinite or too large)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedMessage(f"{what} must be a number; got {_short(value)}")
    try:
        return float(value)
    except OverflowError as err:
        raise MalformedMessage(f"{what} is out of range; got {_short(value)}") from err


def _point(value: Any, what: str) -> tuple[float, float]:
    if not isinstance(value, Mapping):
        raise MalformedMessage(f"{what} must be an object with x and y; got {_short(value)}")
    return _number(value.get("x"), f"{what}.x"), _number(value.get("y"), f"{what}.y")


def _pupil_size(frame: Mapping[str, Any]) -> float | None:
    sizes = []
    for eye in ("lefteye", "righteye"):
        data = frame.get(eye)
        size = _finite(data.get("psize")) if isinstance(data, Mapping) else None
        if size is not None and size > 0:
            sizes.append(size)
    return sum(sizes) / len(sizes) if sizes else None


def parse_frame(frame: Any, *, gaze: Literal["avg", "raw"] = "avg") -> EyeTribeFrame:
    """Read a pushed ``values.frame`` object.

    Parameters
    ----------
    frame : mapping
        The ``frame`` object: ``time``, ``fix``, ``state``, ``raw``, ``avg``, ``lefteye``, ``righteye``.
    gaze : {"avg", "raw"}
        Which gaze point to use: the server's smoothed ``avg`` or the unfiltered ``raw``.

    Returns
    -------
    EyeTribeFrame

    Raises
    ------
    MalformedMessage
        When ``state`` or the chosen gaze point is missing or not numeric.
    """
    if not isinstance(frame, Mapping):
        raise MalformedMessage(f"frame must be an object; got {_short(frame)}")
    state = frame.get("state")
    if isinstance(state, bool) or not isinstance(state, int):
        raise MalformedMessage(f"frame.state must be an integer bitmask; got {_short(state)}")
    x, y = _point(frame.get(gaze), f"frame.{gaze}")
    return EyeTribeFrame(
        device_time_ms=_finite(frame.get("time")),
        x_screen_px=x,
        y_screen_px=y,
        fixation=frame.get("fix") is True,
        state=FrameState(state & 0x1F),
        pupil_size=_pupil_size(frame),
    )


def interpret_message(
    message: Mapping[str, Any], *, gaze: Literal["avg", "raw"] = "avg"
) -> EyeTribeFrame | EyeTribeReply | EyeTribeNotice:
    """Classify a decoded message: a pushed frame, a reply, or a notification.

    A message whose ``values`` holds a ``frame`` is a frame; status codes 800-899 are
    notifications; everything else is a reply (to a request or a heartbeat).

    Raises
    ------
    MalformedMessage
        When ``category`` or ``statuscode`` is missing or mistyped, or the frame is malformed.
    """
    category = message.get("category")
    statuscode = message.get("statuscode")
    if not isinstance(category, str):
        raise MalformedMessage(f"category must be a string; got {_short(category)}")
    if isinstance(statuscode, bool) or not isinstance(statuscode, int):
        raise MalformedMessage(f"statuscode must be an integer; got {_short(statuscode)}")
    values = message.get("values")
    if 800 <= statuscode < 900:
        return EyeTribeNotice(statuscode, category, values)
    if statuscode == 200 and isinstance(values, Mapping) and "frame" in values:
        return parse_frame(values["frame"], gaze=gaze)
    request = message.get("request", "")
    if not isinstance(request, str):
        raise MalformedMessage(f"request must be a string; got {_short(request)}")
    return EyeTribeReply(category, request, statuscode, values)


def _optional_number(mapping: Any, key: str) -> float | None:
    return _finite(mapping.get(key)) if isinstance(mapping, Mapping) else None


def parse_calibration_result(calibresult: Any) -> CalibrationResult:
    """Read the ``calibresult`` object that ends a calibration.

    Point ``state`` 2 is a good point; 0 (no data) and 1 (resample) are invalid. Per point,
    ``acd.ad`` is the accuracy in degrees and ``mepix.mep`` the mean error in pixels.

    Raises
    ------
    MalformedMessage
        When the object or a point's ``cp`` is missing or mistyped.
    """
    if not isinstance(calibresult, Mapping):
        raise MalformedMessage(f"calibresult must be an object; got {_short(calibresult)}")
    raw_points = calibresult.get("calibpoints", [])
    if not isinstance(raw_points, list):
        raise MalformedMessage(f"calibpoints must be a list; got {_short(raw_points)}")
    points = []
    for i, item in enumerate(raw_points):
        if not isinstance(item, Mapping):
            raise MalformedMessage(f"calibpoints[{i}] must be an object; got {_short(item)}")
        x, y = _point(item.get("cp"), f"calibpoints[{i}].cp")
        points.append(
            CalibrationPoint(
                x_screen_px=x,
                y_screen_px=y,
                mean_error_px=_optional_number(item.get("mepix"), "mep"),
                accuracy_deg=_optional_number(item.get("acd"), "ad"),
                valid=item.get("state") == 2,
            )
        )
    return CalibrationResult(
        calibresult.get("result") is True, tuple(points), _optional_number(calibresult, "deg")
    )


def encode_request(category: str, request: str | None = None, values: Any = None) -> bytes:
    """A request message as bytes: ``{"category": ..., "request": ..., "values": ...}``."""
    message: dict[str, Any] = {"category": category}
    if request is not None:
        message["request"] = request
    if values is not None:
        message["values"] = values
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


class _Pending:
    """A request waiting for its reply."""

    __slots__ = ("category", "done", "error", "keys", "reply", "request")

    def __init__(self, category: str, request: str, keys: tuple[str, ...]) -> None:
        self.category = category
        self.request = request
        self.keys = keys
        self.done = threading.Event()
        self.reply: EyeTribeReply | None = None
        self.error = ""

    def matches(self, reply: EyeTribeReply) -> bool:
        if (reply.category, reply.request) != (self.category, self.request):
            return False
        if not self.keys or not reply.ok:
            return True
        return isinstance(reply.values, Mapping) and any(k in reply.values for k in self.keys)


@dataclass(frozen=True, slots=True)
class _Session:
    sock: socket.socket
    values: dict[str, Any]
    rest: bytes


def _unreachable_text(host: str, port: int, err: OSError) -> str:
    if isinstance(err, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(err, TimeoutError):
        why = "no answer"
    else:
        why = err.strerror or str(err) or type(err).__name__
    return (
        f"EyeTribe server not reachable at {host}:{port} ({why}). "
        "Start EyeTribe Server, or choose the 'mouse' driver."
    )


class EyeTribeDriver(StatusReporting):
    """A gaze driver for the Eye Tribe tracker, speaking the Eye Tribe Server API over TCP.

    ``connect()`` opens the socket, sets push mode and API version 1 and reads the server's
    heartbeat interval and frame rate. One reader thread then owns the socket: it sends heartbeats
    at the server's interval, delivers pushed frames while streaming, answers pending requests, and
    reports malformed messages and notifications as events. A lost connection (closed socket, no
    data for ``data_timeout_ms``) puts the driver in state ``LOST`` and is retried with
    ``reconnect``'s backoff; streaming resumes by itself after reconnecting.

    Parameters
    ----------
    host : str
        Server address (default ``localhost``).
    port : int
        Server port (default 6555).
    gaze : {"avg", "raw"}
        Smoothed (``avg``) or unfiltered (``raw``) gaze point.
    connect_timeout_s : float
        Limit for opening the connection and for each reply during the handshake.
    reply_timeout_s : float
        Limit for the reply to a request after connecting.
    data_timeout_ms : float, optional
        Silence after which the connection counts as lost; default 4 heartbeat intervals, ≥ 1 s.
    frame_timeout_ms : float, optional
        While streaming, a gap between frames longer than this is a frame stall (state ``LOST``,
        event ``TIMEOUT``) even though the server still answers; the next frame ends it (state
        ``STREAMING``, event ``RECONNECTED``). Default: 6 frame periods, at least 250 ms.
    reconnect : ReconnectPolicy
        Backoff for reconnection attempts.

    Notes
    -----
    The tracker's own faults are events too: an unplugged tracker (``trackerstate`` other than 0,
    read when connecting and after each 802 notification, asked for where the notification lacks
    it) is state ``LOST`` with a ``CONNECTION_LOST`` event "tracker disconnected", its return a
    ``RECONNECTED`` event "tracker connected again". An uncalibrated tracker (``iscalibrated``
    false, re-read after each 800 notification) is :attr:`calibrated` ``False`` and a
    ``DEVICE_NOTICE`` event that says to calibrate before the first trial.
    """

    name = "eyetribe"

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        gaze: Literal["avg", "raw"] = "avg",
        connect_timeout_s: float = 2.0,
        reply_timeout_s: float = 2.0,
        data_timeout_ms: float | None = None,
        frame_timeout_ms: float | None = None,
        reconnect: ReconnectPolicy | None = None,
    ) -> None:
        if gaze not in ("avg", "raw"):
            raise ValueError(f"gaze must be 'avg' or 'raw'; got {gaze!r}.")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ValueError(f"port must be an int in 1..65535; got {port!r}.")
        self._host, self._port, self._gaze = host, port, gaze
        self._connect_timeout_s = check_positive(connect_timeout_s=connect_timeout_s)
        self._reply_timeout_s = check_positive(reply_timeout_s=reply_timeout_s)
        self._data_timeout_ms = (
            None if data_timeout_ms is None else check_positive(data_timeout_ms=data_timeout_ms)
        )
        self._frame_timeout_ms = (
            None if frame_timeout_ms is None else check_positive(frame_timeout_ms=frame_timeout_ms)
        )
        self._reconnect = reconnect if reconnect is not None else ReconnectPolicy()
        self._status = DriverStatus(self.name)
        self._clock = DeviceClockMapper()
        self._last_frame_ms = 0.0
        self._stalled = False
        self._tracker_state: int | None = None
        self._calibrated: bool | None = None
        self._send_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._server_values: dict[str, Any] = {}
        self._worker: WorkerThread | None = None
        self._on_sample: SampleCallback | None = None
        self._last_rx_ms = 0.0

    # -- public surface -------------------------------------------------------------------------

    @property
    def nominal_rate_hz(self) -> float:
        """The tracker's frame rate (30 or 60 Hz; 40 on later firmware); 30 until connected."""
        rate = _finite(self._server_values.get("framerate"))
        return rate if rate is not None and rate > 0 else 30.0

    @property
    def heartbeat_interval_ms(self) -> float:
        """The server's heartbeat interval (250 ms unless it says otherwise), within 50..10,000 ms."""
        interval = _finite(self._server_values.get("heartbeatinterval"))
        return min(max(interval, 50.0), 10_000.0) if interval is not None else 250.0

    @property
    def frame_timeout_ms(self) -> float:
        """Longest gap between frames while streaming before it counts as a frame stall."""
        if self._frame_timeout_ms is not None:
            return self._frame_timeout_ms
        return max(6000.0 / self.nominal_rate_hz, 250.0)

    @property
    def tracker_state(self) -> int | None:
        """The server's ``trackerstate`` (0: connected, 1: not connected, ...); None before connecting."""
        return self._tracker_state

    @property
    def calibrated(self) -> bool | None:
        """Whether the server holds a calibration (frames are invalid until then); None before connecting."""
        return self._calibrated

    @property
    def server_values(self) -> dict[str, Any]:
        """The tracker values read when (re)connecting (push, version, framerate, trackerstate...)."""
        return dict(self._server_values)

    def connect(self) -> None:
        """Connect to EyeTribe Server, set push mode and API version 1, start the reader thread.

        Raises
        ------
        DriverError
            When the server is unreachable or does not answer like an EyeTribe Server.
        """
        state = self.state
        if state is DriverState.CLOSED:
            raise DriverError("this EyeTribe driver was closed; create a new one.")
        if state is not DriverState.DISCONNECTED:
            return
        if self._worker is not None:
            self._worker.stop()
        self._drop_socket()  # left over if the reader thread failed
        self._on_sample = None
        self._install(self._open_session())
        self._status.set_state(DriverState.CONNECTED)
        self._report_session_values()
        self._worker = WorkerThread("eyetribe-reader", self._run, self._status)
        self._worker.start()

    def start(self, on_sample: SampleCallback) -> None:
        """Deliver pushed frames to ``on_sample`` until :meth:`stop`.

        Raises
        ------
        DriverError
            When not connected (a ``LOST`` driver starts streaming once reconnected) or streaming.
        """
        if self._on_sample is not None:
            raise DriverError("the EyeTribe driver is already streaming; call stop() first.")
        state = self.state
        if state not in (DriverState.CONNECTED, DriverState.LOST):
            raise DriverError(f"the EyeTribe driver cannot start while {state.value}; call connect() first.")
        self._clock.reset()
        self._last_frame_ms = now_ms()
        self._on_sample = on_sample
        if state is DriverState.CONNECTED:
            self._status.set_state(DriverState.STREAMING)

    def stop(self) -> None:
        """Stop delivering frames (idempotent); the connection stays open."""
        self._on_sample = None
        stalled, self._stalled = self._stalled, False
        if self.state is DriverState.STREAMING or (stalled and self.state is DriverState.LOST):
            self._status.set_state(DriverState.CONNECTED)

    def close(self) -> None:
        """Close the connection and stop the reader thread for good (idempotent)."""
        self._on_sample = None
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(timeout_s=0)
        self._drop_socket()
        if worker is not None:
            worker.stop()
        self._fail_pending("the EyeTribe driver was closed.")
        self._status.set_state(DriverState.CLOSED)

    def get_values(self, *keys: str) -> dict[str, Any]:
        """Read tracker values (``framerate``, ``iscalibrated``, ``screenresw`` ...) from the server.

        Raises
        ------
        DriverError
            When not connected, the server refuses, or no reply arrives in time.
        """
        if not keys:
            raise ValueError("name at least one key, e.g. get_values('iscalibrated').")
        reply = self._request("tracker", "get", list(keys), keys=keys)
        values = reply.values
        if not isinstance(values, Mapping):
            raise DriverError(
                f"EyeTribe server answered get {list(keys)!r} without values; got {_short(values)}."
            )
        return dict(values)

    def calibrate(
        self,
        targets_screen_px: Sequence[tuple[float, float]],
        *,
        present_target: TargetPresenter | None = None,
        settle_ms: float = 500.0,
        dwell_ms: float = 800.0,
    ) -> CalibrationResult:
        """Run the server's calibration over ``targets_screen_px`` (at least 7; 9 is usual).

        For each target: ``present_target(x, y)`` shows it, the eyes get ``settle_ms``, then the
        server samples it for ``dwell_ms`` between ``pointstart`` and ``pointend``. The last
        ``pointend`` returns the result. On any failure the calibration is aborted.

        Parameters
        ----------
        targets_screen_px : sequence of (x, y)
            Targets in screen pixels.
        present_target : callable, optional
            Shows a target; called before each one.
        settle_ms, dwell_ms : float
            Time to look at a target before and while the server samples it.

        Returns
        -------
        CalibrationResult

        Raises
        ------
        ValueError
            When fewer than 7 targets are given.
        DriverError
            When the server refuses a step, does not answer, or the connection is lost.
        """
        targets = [(float(x), float(y)) for x, y in targets_screen_px]
        if len(targets) < 7:
            raise ValueError(
                f"EyeTribe calibration needs at least 7 targets (9 recommended); got {len(targets)}."
            )
        check_positive(dwell_ms=dwell_ms)
        reply = None
        with self._calibration_session(len(targets)):
            for x, y in targets:
                if present_target is not None:
                    present_target(x, y)
                time.sleep(max(settle_ms, 0.0) / 1000.0)
                self._request("calibration", "pointstart", {"x": round(x), "y": round(y)})
                time.sleep(dwell_ms / 1000.0)
                reply = self._request("calibration", "pointend")
        values = reply.values if reply is not None else None
        if not isinstance(values, Mapping) or "calibresult" not in values:
            raise DriverError("EyeTribe server ended the calibration without a result; calibrate again.")
        try:
            result = parse_calibration_result(values["calibresult"])
        except MalformedMessage as err:
            raise DriverError(f"EyeTribe server sent an unreadable calibration result ({err}).") from err
        if result.succeeded:
            self._calibrated = True
        return result

    def abort_calibration(self) -> None:
        """Abort a calibration in progress (the previous calibration stays in use)."""
        self._request("calibration", "abort")

    def clear_calibration(self) -> None:
        """Remove the current calibration from the server."""
        self._request("calibration", "clear")

    # -- requests -------------------------------------------------------------------------------

    @contextmanager
    def _calibration_session(self, n_points: int) -> Iterator[None]:
        self._request("calibration", "start", {"pointcount": n_points})
        try:
            yield
        except BaseException:
            try:
                self.abort_calibration()
            except DriverError:
                pass  # the original failure is the one to report
            raise

    def _request(
        self, category: str, request: str, values: Any = None, *, keys: tuple[str, ...] = ()
    ) -> EyeTribeReply:
        pending = _Pending(category, request, keys)
        with self._pending_lock:
            self._pending.append(pending)
        try:
            self._send(encode_request(category, request, values))
            if not pending.done.wait(self._reply_timeout_s):
                raise DriverError(
                    f"EyeTribe server did not answer {category}/{request} within "
                    f"{self._reply_timeout_s:g} s. Check that EyeTribe Server is running and responsive."
                )
        finally:
            with self._pending_lock:
                if pending in self._pending:
                    self._pending.remove(pending)
        if pending.reply is None:
            raise DriverError(pending.error or f"EyeTribe request {category}/{request} failed.")
        if not pending.reply.ok:
            raise DriverError(
                f"EyeTribe server refused {category}/{request}: status {pending.reply.statuscode} "
                f"{pending.reply.status_message}".rstrip()
                + "."
            )
        return pending.reply

    def _send(self, data: bytes) -> None:
        with self._send_lock:
            sock = self._sock
            if sock is None:
                raise DriverError(
                    f"EyeTribe server at {self._host}:{self._port} is not connected ({self.state.value}). "
                    "Wait for the reconnection, or connect again."
                )
            try:
                sock.sendall(data)
            except OSError as err:
                raise DriverError(
                    f"sending to EyeTribe server failed ({err}); the connection is lost."
                ) from err

    def _fail_pending(self, error: str) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for item in pending:
            item.error = error
            item.done.set()

    def _answer_pending(self, reply: EyeTribeReply) -> bool:
        with self._pending_lock:
            for item in self._pending:
                if item.matches(reply):
                    self._pending.remove(item)
                    break
            else:
                return False
        item.reply = reply
        item.done.set()
        return True

    # -- session (handshake) --------------------------------------------------------------------

    def _open_session(self) -> _Session:
        """Connect and handshake synchronously (caller's thread, or the reader when reconnecting)."""
        try:
            sock = socket.create_connection((self._host, self._port), timeout=self._connect_timeout_s)
        except OSError as err:
            raise DriverError(_unreachable_text(self._host, self._port, err)) from err
        if sock.getsockname() == sock.getpeername():
            # TCP self-connect: with no listener on a local port in the ephemeral range, the kernel
            # can pick that very port as source and connect the socket to itself. Nobody is there.
            sock.close()
            raise DriverError(_unreachable_text(self._host, self._port, ConnectionRefusedError()))
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _, rest = self._await_reply(sock, b"", "set", {"push": True, "version": 1}, ())
            reply, rest = self._await_reply(sock, rest, "get", list(_SESSION_KEYS), _SESSION_KEYS)
        except BaseException:
            sock.close()
            raise
        values = dict(reply.values) if isinstance(reply.values, Mapping) else {}
        return _Session(sock, values, rest)

    def _await_reply(
        self, sock: socket.socket, rest: bytes, request: str, values: Any, keys: tuple[str, ...]
    ) -> tuple[EyeTribeReply, bytes]:
        pending = _Pending("tracker", request, keys)
        where = f"{self._host}:{self._port}"
        try:
            sock.sendall(encode_request("tracker", request, values))
        except OSError as err:
            raise DriverError(_unreachable_text(self._host, self._port, err)) from err
        deadline = time.monotonic() + self._connect_timeout_s
        while True:
            split = split_messages(rest)
            rest = split.rest
            for raw in split.messages:
                reply = self._handshake_reply(raw)
                if reply is not None and pending.matches(reply):
                    if not reply.ok:
                        raise DriverError(
                            f"EyeTribe server at {where} refused tracker/{request} "
                            f"(status {reply.statuscode} {reply.status_message}). "
                            "Update EyeTribe Server to a version that speaks API 1."
                        )
                    return reply, rest
            remaining = deadline - time.monotonic()
            data = b""
            if remaining > 0:
                sock.settimeout(remaining)
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    data = b""
                except OSError as err:
                    raise DriverError(_unreachable_text(self._host, self._port, err)) from err
            if not data:
                raise DriverError(
                    f"EyeTribe server at {where} did not answer tracker/{request} within "
                    f"{self._connect_timeout_s:g} s. Is EyeTribe Server (and not another program) "
                    "listening there? Restart it, or choose the 'mouse' driver."
                )
            rest += data

    def _handshake_reply(self, raw: bytes) -> EyeTribeReply | None:
        try:
            item = interpret_message(parse_message(raw), gaze=self._gaze)
        except MalformedMessage as err:
            self._report_malformed(raw, err)
            return None
        return item if isinstance(item, EyeTribeReply) else None

    def _install(self, session: _Session) -> None:
        session.sock.settimeout(0.05)
        with self._send_lock:
            self._sock = session.sock
        self._buffer = session.rest
        self._server_values = session.values
        self._clock.reset()
        self._last_rx_ms = now_ms()

    def _report_session_values(self) -> None:
        """After (re)connecting: the tracker's state and calibration as states and events."""
        self._tracker_state = None
        self._calibrated = None
        self._apply_values(self._server_values)

    def _apply_values(self, values: Mapping[str, Any]) -> None:
        state = values.get("trackerstate")
        if isinstance(state, int) and not isinstance(state, bool):
            self._apply_tracker_state(state)
        calibrated = values.get("iscalibrated")
        if isinstance(calibrated, bool):
            self._apply_calibrated(calibrated)

    def _apply_tracker_state(self, state: int) -> None:
        old, self._tracker_state = self._tracker_state, state
        if state == old:
            return
        if state != 0:
            what = _TRACKER_STATES.get(state, f"trackerstate {state}")
            self._stalled = False
            self._status.set_state(DriverState.LOST, f"eyetribe: tracker disconnected ({what})")
            self._status.emit(
                DriverEventKind.CONNECTION_LOST,
                f"EyeTribe Server: tracker disconnected ({what}). No gaze is recorded until it is back.",
            )
        elif old is not None:
            self._last_frame_ms = now_ms()
            self._status.set_state(DriverState.STREAMING if self._on_sample else DriverState.CONNECTED)
            self._status.emit(DriverEventKind.RECONNECTED, "EyeTribe Server: tracker connected again.")

    def _apply_calibrated(self, calibrated: bool) -> None:
        old, self._calibrated = self._calibrated, calibrated
        if not calibrated and old is not False:
            self._status.emit(
                DriverEventKind.DEVICE_NOTICE,
                "EyeTribe tracker is not calibrated: every sample is invalid until it is. "
                "Run the calibration to calibrate the tracker before the first trial.",
            )

    def _ask(self, *keys: str) -> None:
        """Request tracker values without waiting; the reply updates the state when it arrives."""
        try:
            self._send(encode_request("tracker", "get", list(keys)))
        except DriverError:
            pass  # the connection is gone; the reader reports that and re-reads on reconnecting

    # -- reader thread --------------------------------------------------------------------------

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if self._sock is None and not self._reconnect_loop(stop):
                return
            self._pump(stop)

    def _pump(self, stop: threading.Event) -> None:
        """Read, dispatch and heartbeat until the connection is lost or ``stop`` is set."""
        next_beat_ms = now_ms()
        while not stop.is_set():
            sock = self._sock
            if sock is None:
                return
            t_ms = now_ms()
            if t_ms >= next_beat_ms:
                next_beat_ms = t_ms + self.heartbeat_interval_ms
                try:
                    self._send(encode_request("heartbeat"))
                except DriverError as err:
                    if not stop.is_set():
                        self._lose(str(err), DriverEventKind.CONNECTION_LOST)
                    return
            try:
                data = sock.recv(65536)
            except TimeoutError:
                if now_ms() - self._last_rx_ms > self._silence_limit_ms():
                    self._lose(
                        f"EyeTribe server sent nothing for {self._silence_limit_ms():.0f} ms.",
                        DriverEventKind.TIMEOUT,
                    )
                    return
                self._check_frame_stall()
                continue
            except OSError as err:
                if not stop.is_set():
                    self._lose(
                        f"reading from EyeTribe server failed ({err}).", DriverEventKind.CONNECTION_LOST
                    )
                return
            if not data:
                if not stop.is_set():
                    self._lose("EyeTribe server closed the connection.", DriverEventKind.CONNECTION_LOST)
                return
            self._receive(data)
            self._check_frame_stall()

    def _check_frame_stall(self) -> None:
        """While streaming with the tracker plugged in: no frame for too long is a stall (``LOST``)."""
        if self._stalled or self._on_sample is None or self._tracker_state not in (None, 0):
            return
        gap_ms = now_ms() - self._last_frame_ms
        if gap_ms <= self.frame_timeout_ms or self.state is not DriverState.STREAMING:
            return
        self._stalled = True
        self._status.set_state(DriverState.LOST, "eyetribe: frames stalled")
        self._status.emit(
            DriverEventKind.TIMEOUT,
            f"EyeTribe Server answers, but sent no gaze frame for {gap_ms:.0f} ms (the tracker stalled). "
            "Waiting for frames; check the tracker's USB 3.0 connection if this goes on.",
        )

    def _frame_arrived(self, arrival_ms: float) -> None:
        gap_ms, self._last_frame_ms = arrival_ms - self._last_frame_ms, arrival_ms
        if self._stalled:
            self._stalled = False
            if self._on_sample is not None and self.state is DriverState.LOST:
                self._status.set_state(DriverState.STREAMING)
                self._status.emit(
                    DriverEventKind.RECONNECTED,
                    f"EyeTribe Server sends gaze frames again after {gap_ms:.0f} ms.",
                )

    def _silence_limit_ms(self) -> float:
        if self._data_timeout_ms is not None:
            return self._data_timeout_ms
        return max(4.0 * self.heartbeat_interval_ms, 1000.0)

    def _receive(self, data: bytes) -> None:
        """Split, parse and dispatch received bytes; never raises for any content of ``data``."""
        arrival_ms = now_ms()
        self._last_rx_ms = arrival_ms
        split = split_messages(self._buffer + data)
        self._buffer = split.rest
        for garbage in split.discarded:
            self._report_malformed(garbage, MalformedMessage("bytes outside any JSON object"))
        for raw in split.messages:
            try:
                item = interpret_message(parse_message(raw), gaze=self._gaze)
            except MalformedMessage as err:
                self._report_malformed(raw, err)
                continue
            self._dispatch(item, arrival_ms)

    def _dispatch(self, item: EyeTribeFrame | EyeTribeReply | EyeTribeNotice, arrival_ms: float) -> None:
        if isinstance(item, EyeTribeFrame):
            self._frame_arrived(arrival_ms)
            on_sample = self._on_sample
            if on_sample is not None:
                t_ms = arrival_ms
                if item.device_time_ms is not None:
                    t_ms = self._clock.to_local_ms(item.device_time_ms, arrival_ms)
                self._status.deliver(on_sample, item.to_sample(t_ms))
        elif isinstance(item, EyeTribeNotice):
            self._notice(item)
        else:
            self._update_from_reply(item)
            if self._answer_pending(item) or item.ok:
                return
            self._status.emit(
                DriverEventKind.REQUEST_FAILED,
                f"EyeTribe server reported status {item.statuscode} for {item.category}/{item.request}"
                f" {item.status_message}".rstrip(),
                throttle_ms=1000.0,
            )

    def _notice(self, notice: EyeTribeNotice) -> None:
        """802 (tracker state) becomes tracker events, asking for the state where it is missing."""
        values = notice.values if isinstance(notice.values, Mapping) else {}
        if notice.statuscode == 802:
            if "trackerstate" in values:
                self._apply_values(values)
            else:
                self._ask("trackerstate")
            return
        self._status.emit(DriverEventKind.DEVICE_NOTICE, notice.text)
        if notice.statuscode == 800:
            self._ask("iscalibrated")

    def _update_from_reply(self, reply: EyeTribeReply) -> None:
        """Take ``trackerstate``/``iscalibrated`` from any ``get`` reply, asked for or not."""
        if reply.ok and (reply.category, reply.request) == ("tracker", "get"):
            if isinstance(reply.values, Mapping):
                self._apply_values(reply.values)

    def _report_malformed(self, raw: bytes, err: MalformedMessage) -> None:
        self._status.emit(
            DriverEventKind.MALFORMED_MESSAGE,
            f"EyeTribe server sent a malformed message ({err}); ignored: {raw[:120]!r}",
            throttle_ms=1000.0,
        )

    def _drop_socket(self) -> None:
        with self._send_lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer
            sock.close()

    def _lose(self, reason: str, kind: DriverEventKind) -> None:
        self._drop_socket()
        self._buffer = b""
        self._stalled = False
        self._fail_pending(f"the connection to EyeTribe server was lost: {reason}")
        self._status.set_state(DriverState.LOST, f"eyetribe: connection lost ({reason})")
        self._status.emit(kind, f"{reason} Reconnecting...")

    def _reconnect_loop(self, stop: threading.Event) -> bool:
        delays = self._reconnect.delays_ms()
        for attempt, delay_ms in enumerate(delays, start=1):
            if stop.wait(delay_ms / 1000.0):
                return False
            try:
                session = self._open_session()
            except DriverError as err:
                self._status.emit(
                    DriverEventKind.RECONNECT_FAILED,
                    f"reconnection attempt {attempt} of {len(delays)} failed: {err}",
                )
                continue
            if stop.is_set():
                session.sock.close()
                return False
            self._install(session)
            self._status.set_state(DriverState.STREAMING if self._on_sample else DriverState.CONNECTED)
            self._status.emit(
                DriverEventKind.RECONNECTED, f"reconnected to EyeTribe server at {self._host}:{self._port}."
            )
            self._last_frame_ms = now_ms()
            self._report_session_values()
            return True
        self._on_sample = None  # streaming has ended; connect() and start() again
        self._status.set_state(DriverState.DISCONNECTED)
        self._status.emit(
            DriverEventKind.GAVE_UP,
            f"EyeTribe server at {self._host}:{self._port} did not come back after {len(delays)} attempts. "
            "Start EyeTribe Server and connect again, or choose the 'mouse' driver.",
        )
        return False
