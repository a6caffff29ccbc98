"""Tests for tracking/drivers/eyetribe.py: message parsing (pure) and the driver on a loopback server."""

from __future__ import annotations

import itertools
import json
import math
import socket
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tracking.drivers.eyetribe_server import EyeTribeTestServer, make_frame
from tracking.clock import now_ms
from tracking.drivers.base import DriverEvent, DriverEventKind, DriverState, ReconnectPolicy, SampleBuffer
from tracking.drivers.eyetribe import (
    EyeTribeDriver,
    EyeTribeFrame,
    EyeTribeNotice,
    EyeTribeReply,
    FrameState,
    MalformedMessage,
    encode_request,
    interpret_message,
    parse_calibration_result,
    parse_frame,
    parse_message,
    split_messages,
)
from tracking.errors import DriverError
from tracking.records import GazeSample

FAST_RETRY = ReconnectPolicy(first_delay_ms=30.0, factor=1.0, max_delay_ms=30.0, max_attempts=60)

# The frame of the API reference, with numbers filled in.
DOC_FRAME = {
    "timestamp": "2014-05-06 15:27:36.115",
    "time": 1399382856115,
    "fix": False,
    "state": 7,
    "raw": {"x": 510.0, "y": 402.5},
    "avg": {"x": 512.25, "y": 400.0},
    "lefteye": {
        "raw": {"x": 1, "y": 2},
        "avg": {"x": 1, "y": 2},
        "psize": 21.5,
        "pcenter": {"x": 0.4, "y": 0.5},
    },
    "righteye": {
        "raw": {"x": 1, "y": 2},
        "avg": {"x": 1, "y": 2},
        "psize": 22.5,
        "pcenter": {"x": 0.6, "y": 0.5},
    },
}


# -- split_messages --------------------------------------------------------------------------------


def test_split_joined_messages() -> None:
    result = split_messages(b'{"a":1}{"b":2}\n{"c":{"d":[3]}}\r\n  {"e"')
    assert result.messages == (b'{"a":1}', b'{"b":2}', b'{"c":{"d":[3]}}')
    assert result.rest == b'{"e"'
    assert result.discarded == ()


def test_split_honours_braces_and_escapes_inside_strings() -> None:
    tricky = rb'{"s":"}{ \" \\","t":"{"}'
    result = split_messages(tricky + b'{"u":2}')
    assert result.messages == (tricky, b'{"u":2}')
    assert json.loads(result.messages[0]) == {"s": '}{ " \\', "t": "{"}


def test_split_discards_garbage_between_messages() -> None:
    result = split_messages(b'HTTP/1.1 {"a":1} ]] {"b":2}  ')
    assert result.messages == (b'{"a":1}', b'{"b":2}')
    assert result.discarded == (b"HTTP/1.1 ", b" ]] ")
    assert result.rest == b""


def test_split_drops_an_unfinished_message_over_the_limit() -> None:
    result = split_messages(b'{"a":"' + b"x" * 100, max_message_bytes=50)
    assert result.messages == () and result.rest == b""
    assert len(result.discarded) == 1
    kept = split_messages(b'{"a":"' + b"x" * 10, max_message_bytes=50)
    assert kept.rest.startswith(b'{"a"')


def test_split_resynchronises_after_a_stray_quote_at_the_next_newline() -> None:
    stream = b'{"a":"unterminated}\n{"b":1}\n{"c":"x"}\n'
    result = split_messages(stream)
    assert result.messages == (b'{"b":1}', b'{"c":"x"}')
    assert result.discarded == (b'{"a":"unterminated}\n',)


def test_split_resynchronises_after_a_stray_brace_at_the_next_newline() -> None:
    frames = b"".join(b'{"n":%d}\n' % i for i in range(20))
    result = split_messages(b"{ " + frames, max_message_bytes=1000)
    assert [json.loads(m)["n"] for m in result.messages] == list(range(20))
    assert result.discarded == (b"{ ",)


def test_split_resynchronises_after_a_stray_brace_once_over_the_limit() -> None:
    frames = b"".join(b'{"n":%d} ' % i for i in range(20))  # no newlines to resynchronise at
    pending = split_messages(b"{ " + frames, max_message_bytes=1000)
    assert pending.messages == () and pending.rest.startswith(b"{ ")  # could still be one message
    result = split_messages(b"{ " + frames, max_message_bytes=100)
    assert [json.loads(m)["n"] for m in result.messages] == list(range(20))
    assert result.discarded == (b"{ ",)


_json_leaf = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8)
_json = st.recursive(
    _json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
)


@given(
    st.lists(st.dictionaries(st.text(max_size=6), _json, max_size=4), min_size=1, max_size=6),
    st.lists(st.sampled_from(["", "\n", " ", "\r\n", "\t"]), min_size=6, max_size=6),
    st.lists(st.integers(0, 10_000), max_size=12),
)
def test_split_anywhere_gives_the_same_messages(
    messages: list[dict[str, object]], separators: list[str], cuts: list[int]
) -> None:
    """However the stream is cut into reads, the same messages come out, in order."""
    stream = "".join(json.dumps(m) + sep for m, sep in zip(messages, separators, strict=False)).encode()
    bounds = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    found: list[bytes] = []
    rest = b""
    for start, end in itertools.pairwise(bounds):
        result = split_messages(rest + stream[start:end])
        assert result.discarded == ()
        found.extend(result.messages)
        rest = result.rest
    assert rest == b""
    assert [json.loads(m) for m in found] == messages


# -- parse_message / parse_frame / interpret_message -------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe{}",
        b"{not json}",
        b"[1, 2]",
        b'"text"',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a": 1e999999}x',
    ],
)
def test_parse_message_rejects_what_is_not_a_json_object(raw: bytes) -> None:
    with pytest.raises(MalformedMessage):
        parse_message(raw)


def test_parse_documented_frame() -> None:
    frame = parse_frame(DOC_FRAME)
    assert frame == EyeTribeFrame(1399382856115.0, 512.25, 400.0, False, FrameState(7), 22.0)
    assert frame.valid
    raw = parse_frame(DOC_FRAME, gaze="raw")
    assert (raw.x_screen_px, raw.y_screen_px) == (510.0, 402.5)
    sample = frame.to_sample(12.5)
    assert sample == GazeSample(12.5, 512.25, 400.0, True, 22.0, device_t_ms=1399382856115.0, device_state=7)


@pytest.mark.parametrize(
    ("state", "valid"),
    [(0x7, True), (0x1, True), (0x6, False), (0x0, False), (0x7 | 0x8, False), (0x7 | 0x10, False)],
)
def test_frame_validity_follows_the_state_bitmask(state: int, valid: bool) -> None:
    frame = parse_frame(dict(DOC_FRAME, state=state))
    assert frame.valid is valid
    sample = frame.to_sample(0.0)
    assert sample.valid is valid
    if not valid:
        assert math.isnan(sample.x_screen_px)


def test_frame_pupil_uses_eyes_with_a_positive_size_only() -> None:
    one_eye = dict(DOC_FRAME, lefteye={"psize": 0.0}, righteye={"psize": 30.0})
    assert parse_frame(one_eye).pupil_size == 30.0
    no_eyes = {k: v for k, v in DOC_FRAME.items() if k not in ("lefteye", "righteye")}
    assert parse_frame(no_eyes).pupil_size is None


def test_frame_without_usable_time_has_no_device_time() -> None:
    for bad_time in (None, "now", math.nan, 10**400, True):
        assert parse_frame(dict(DOC_FRAME, time=bad_time)).device_time_ms is None


def test_frame_with_non_finite_gaze_is_invalid() -> None:
    frame = parse_frame(dict(DOC_FRAME, avg={"x": math.inf, "y": 1.0}))
    assert not frame.valid
    assert not frame.to_sample(0.0).valid


@pytest.mark.parametrize(
    "frame",
    [
        [],
        {**DOC_FRAME, "state": "7"},
        {**DOC_FRAME, "state": True},
        {**DOC_FRAME, "avg": None},
        {**DOC_FRAME, "avg": {"x": "1", "y": 2}},
        {**DOC_FRAME, "avg": {"x": 1}},
        {k: v for k, v in DOC_FRAME.items() if k != "state"},
    ],
)
def test_malformed_frames_raise_malformed_message(frame: object) -> None:
    with pytest.raises(MalformedMessage):
        parse_frame(frame)


def test_interpret_the_documented_message_kinds() -> None:
    frame_message = {"category": "tracker", "statuscode": 200, "values": {"frame": DOC_FRAME}}
    assert isinstance(interpret_message(frame_message), EyeTribeFrame)
    heartbeat = interpret_message({"category": "heartbeat", "statuscode": 200})
    assert heartbeat == EyeTribeReply("heartbeat", "", 200, None)
    get = interpret_message(
        {
            "category": "tracker",
            "request": "get",
            "statuscode": 200,
            "values": {"push": True, "iscalibrated": True},
        }
    )
    assert isinstance(get, EyeTribeReply) and get.ok and get.values == {"push": True, "iscalibrated": True}
    error = interpret_message(
        {
            "category": "calibration",
            "request": "pointend",
            "statuscode": 403,
            "values": {"statusmessage": "no"},
        }
    )
    assert isinstance(error, EyeTribeReply) and not error.ok and error.status_message == "no"
    notice = interpret_message({"category": "tracker", "statuscode": 802, "values": {"trackerstate": 1}})
    assert isinstance(notice, EyeTribeNotice)
    assert "tracker state changed" in notice.text and "not connected" in notice.text


@pytest.mark.parametrize(
    "message",
    [
        {"statuscode": 200},
        {"category": 5, "statuscode": 200},
        {"category": "tracker"},
        {"category": "tracker", "statuscode": "200"},
        {"category": "tracker", "statuscode": True},
        {"category": "tracker", "statuscode": 200, "request": 3},
        {"category": "tracker", "statuscode": 200, "values": {"frame": "no"}},
    ],
)
def test_interpret_rejects_malformed_envelopes(message: dict[str, object]) -> None:
    with pytest.raises(MalformedMessage):
        interpret_message(message)


def test_parse_calibration_result() -> None:
    calibresult = {
        "result": True,
        "deg": 0.52,
        "degl": 0.6,
        "degr": 0.5,
        "calibpoints": [
            {"state": 2, "cp": {"x": 100, "y": 50}, "acd": {"ad": 0.4}, "mepix": {"mep": 6.5}},
            {"state": 1, "cp": {"x": 300, "y": 50}, "acd": {"ad": 1.4}, "mepix": {"mep": 16.0}},
            {"state": 0, "cp": {"x": 500, "y": 50}},
        ],
    }
    result = parse_calibration_result(calibresult)
    assert result.succeeded and result.accuracy_deg == 0.52
    assert [(p.x_screen_px, p.valid, p.accuracy_deg, p.mean_error_px) for p in result.points] == [
        (100.0, True, 0.4, 6.5),
        (300.0, False, 1.4, 16.0),
        (500.0, False, None, None),
    ]
    assert result.n_invalid == 2
    assert not parse_calibration_result({"result": False}).succeeded
    bad_results: list[object] = [
        [],
        {"calibpoints": {}},
        {"calibpoints": [3]},
        {"calibpoints": [{"cp": None}]},
    ]
    for bad in bad_results:
        with pytest.raises(MalformedMessage):
            parse_calibration_result(bad)


def test_encode_request_is_the_documented_json() -> None:
    assert json.loads(encode_request("tracker", "set", {"push": True, "version": 1})) == {
        "category": "tracker",
        "request": "set",
        "values": {"push": True, "version": 1},
    }
    assert json.loads(encode_request("heartbeat")) == {"category": "heartbeat"}


# -- fuzz: malformed messages never escape the driver ----------------------------------------------


def _receiving_driver() -> tuple[EyeTribeDriver, SampleBuffer, list[DriverEvent]]:
    driver = EyeTribeDriver(port=1)
    buffer = SampleBuffer()
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver._on_sample = buffer  # the receive path of a streaming driver, without a socket
    return driver, buffer, events


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_arbitrary_bytes_never_raise_out_of_the_receive_path(chunks: list[bytes]) -> None:
    driver, buffer, events = _receiving_driver()
    for chunk in chunks:
        driver._receive(chunk)
    assert all(isinstance(s, GazeSample) for s in buffer.snapshot())
    assert {e.kind for e in events} <= {
        DriverEventKind.MALFORMED_MESSAGE,
        DriverEventKind.DEVICE_NOTICE,
        DriverEventKind.REQUEST_FAILED,
    }


_any_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from([10**400, -(10**400), 800, 801, 802, 200, 403, "tracker", "frame", "avg"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def _json_ish_stream(draw: st.DrawFn) -> list[bytes]:
    """Documented messages with fields replaced by arbitrary values, truncated, glued and cut."""
    parts = []
    for i in range(draw(st.integers(1, 5))):
        message = make_frame(i, x=100.0, y=200.0, time_ms=1_000 + 16 * i)
        frame = message["values"]["frame"]
        for key in draw(st.lists(st.sampled_from([*frame, "time", "avg", "raw", "state"]), max_size=3)):
            frame[key] = draw(_any_value)
        for key in draw(
            st.lists(st.sampled_from(["category", "statuscode", "values", "request"]), max_size=2)
        ):
            message[key] = draw(_any_value)
        text = json.dumps(message, allow_nan=True).encode()
        if draw(st.booleans()):
            text = text[: draw(st.integers(0, len(text)))]
        parts.append(text + draw(st.sampled_from([b"", b"\n", b"}", b"{", b'"', b"\\", b"\xff"])))
    stream = b"".join(parts)
    cuts = sorted({c % (len(stream) + 1) for c in draw(st.lists(st.integers(0, 10**6), max_size=6))})
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@given(_json_ish_stream())
def test_mangled_documented_messages_never_raise_out_of_the_receive_path(chunks: list[bytes]) -> None:
    driver, buffer, _ = _receiving_driver()
    for chunk in chunks:
        driver._receive(chunk)
    for sample in buffer.snapshot():
        assert isinstance(sample, GazeSample)
        assert math.isfinite(sample.t_ms)
        assert not sample.valid or (math.isfinite(sample.x_screen_px) and math.isfinite(sample.y_screen_px))


def test_receive_path_delivers_good_frames_among_bad_ones() -> None:
    driver, buffer, events = _receiving_driver()
    good = [json.dumps(make_frame(i, x=10.0 * i, y=5.0, time_ms=1000 + 16 * i)).encode() for i in range(3)]
    driver._receive(good[0] + b"garbage" + b'{"category":' + b"}" + good[1])
    driver._receive(good[2][:10])
    driver._receive(good[2][10:])
    assert [s.x_screen_px for s in buffer.snapshot()] == [0.0, 10.0, 20.0]
    assert DriverEventKind.MALFORMED_MESSAGE in {e.kind for e in events}
    times = [s.t_ms for s in buffer.snapshot()]
    assert all(math.isfinite(t) for t in times) and times == sorted(times)


# -- the driver against the loopback test server ---------------------------------------------------


@pytest.fixture
def server() -> Iterator[EyeTribeTestServer]:
    with EyeTribeTestServer(framerate=100, heartbeat_interval_ms=50) as srv:
        yield srv


def _driver(server: EyeTribeTestServer, **kwargs: object) -> EyeTribeDriver:
    options: dict[str, object] = {"host": "127.0.0.1", "port": server.port, "reconnect": FAST_RETRY}
    options.update(kwargs)
    return EyeTribeDriver(**options)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_gives_actionable_error() -> None:
    port = _free_port()
    driver = EyeTribeDriver(host="127.0.0.1", port=port)
    with pytest.raises(DriverError) as info:
        driver.connect()
    assert str(info.value) == (
        f"EyeTribe server not reachable at 127.0.0.1:{port} (connection refused). "
        "Start EyeTribe Server, or choose the 'mouse' driver."
    )
    assert driver.state is DriverState.DISCONNECTED


def test_a_silent_program_on_the_port_is_not_taken_for_a_server() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        driver = EyeTribeDriver(host="127.0.0.1", port=listener.getsockname()[1], connect_timeout_s=0.3)
        with pytest.raises(DriverError, match="did not answer tracker/set"):
            driver.connect()


def test_connect_sets_push_mode_and_version_1(
    server: EyeTribeTestServer, thread_failures: list[object]
) -> None:
    driver = _driver(server)
    driver.connect()
    assert driver.state is DriverState.CONNECTED
    first = server.requests[0]
    assert first == {"category": "tracker", "request": "set", "values": {"push": True, "version": 1}}
    assert driver.nominal_rate_hz == 100.0
    assert driver.heartbeat_interval_ms == 50.0
    assert driver.server_values["trackerstate"] == 0
    assert server.wait_until(lambda: server.count("heartbeat") >= 3)
    assert driver.get_values("screenresw", "iscalibrated") == {"screenresw": 2560, "iscalibrated": False}
    driver.close()
    assert driver.state is DriverState.CLOSED


def _stream(driver: EyeTribeDriver, n: int) -> list[GazeSample]:
    buffer = SampleBuffer()
    driver.start(buffer)
    assert buffer.wait_for(n, timeout_s=10.0), f"only {len(buffer)} samples"
    driver.stop()
    return buffer.snapshot()


def test_streams_frames_as_samples_on_the_shared_clock(
    server: EyeTribeTestServer, thread_failures: list[object]
) -> None:
    driver = _driver(server)
    driver.connect()
    samples = _stream(driver, 8)
    assert driver.state is DriverState.CONNECTED
    xs = np.array([s.x_screen_px for s in samples])
    assert np.all(np.diff(xs) == 1.0)  # consecutive frames, none lost
    assert all(s.valid and s.y_screen_px == 200.0 and s.pupil_size == 21.0 for s in samples)
    times = np.array([s.t_ms for s in samples])
    assert np.all(np.diff(times) >= 0)
    assert times[-1] <= now_ms()
    driver.close()


@pytest.mark.parametrize(("chunk_bytes", "frames_per_send"), [(7, 1), (None, 5), (13, 4)])
def test_split_and_joined_messages_on_the_socket(
    server: EyeTribeTestServer, thread_failures: list[object], chunk_bytes: int | None, frames_per_send: int
) -> None:
    server.chunk_bytes = chunk_bytes
    server.frames_per_send = frames_per_send
    driver = _driver(server)
    driver.connect()
    samples = _stream(driver, 12)
    xs = np.array([s.x_screen_px for s in samples])
    assert np.all(np.diff(xs) == 1.0)
    driver.close()


def test_invalid_tracking_state_gives_invalid_samples(server: EyeTribeTestServer) -> None:
    server.frame_state = 0x4 | 0x10  # user present, tracking lost
    driver = _driver(server)
    driver.connect()
    samples = _stream(driver, 3)
    assert not any(s.valid for s in samples)
    driver.close()


def test_calibration_runs_the_documented_requests(
    server: EyeTribeTestServer, thread_failures: list[object]
) -> None:
    driver = _driver(server)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    targets = [(x, y) for y in (100.0, 720.0, 1340.0) for x in (100.0, 1280.0, 2460.0)]
    shown: list[tuple[float, float]] = []
    result = driver.calibrate(
        targets, present_target=lambda x, y: shown.append((x, y)), settle_ms=1.0, dwell_ms=1.0
    )
    assert shown == targets
    assert server.count("calibration", "start") == 1
    assert server.count("calibration", "pointstart") == 9
    assert server.count("calibration", "pointend") == 9
    assert result.succeeded and len(result.points) == 9 and result.n_invalid == 1
    assert [(p.x_screen_px, p.y_screen_px) for p in result.points] == targets
    assert result.accuracy_deg == pytest.approx(0.44)
    assert server.wait_until(
        lambda: any(
            e.kind is DriverEventKind.DEVICE_NOTICE and "calibration changed" in e.message for e in events
        )
    )
    assert driver.get_values("iscalibrated") == {"iscalibrated": True}
    driver.clear_calibration()
    assert driver.get_values("iscalibrated") == {"iscalibrated": False}
    driver.close()


def test_refused_calibration_step_aborts_and_raises(server: EyeTribeTestServer) -> None:
    server.refuse.add(("calibration", "pointstart"))
    driver = _driver(server)
    driver.connect()
    with pytest.raises(DriverError, match="refused calibration/pointstart: status 403"):
        driver.calibrate([(float(i), 0.0) for i in range(9)], settle_ms=0.0, dwell_ms=1.0)
    assert server.wait_until(lambda: server.count("calibration", "abort") == 1)
    assert driver.state is DriverState.CONNECTED
    with pytest.raises(ValueError, match="at least 7"):
        driver.calibrate([(0.0, 0.0)] * 5)
    driver.close()


def test_injected_garbage_is_an_event_and_streaming_goes_on(
    server: EyeTribeTestServer, thread_failures: list[object]
) -> None:
    driver = _driver(server)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    buffer = SampleBuffer()
    driver.start(buffer)
    assert buffer.wait_for(2, timeout_s=10.0)
    server.inject(b'<html>{"category": tracker} \xff\xfe {"statuscode": "x"}\n')
    server.notify(
        {"category": "tracker", "request": "get", "statuscode": 500, "values": {"statusmessage": "boom"}}
    )
    n = len(buffer)
    assert buffer.wait_for(n + 5, timeout_s=10.0)
    kinds = {e.kind for e in events}
    assert DriverEventKind.MALFORMED_MESSAGE in kinds
    assert server.wait_until(lambda: any(e.kind is DriverEventKind.REQUEST_FAILED for e in events))
    assert driver.state is DriverState.STREAMING
    driver.close()


def test_lost_server_is_reconnected_and_streaming_resumes(
    server: EyeTribeTestServer, thread_failures: list[object]
) -> None:
    driver = _driver(server)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    buffer = SampleBuffer()
    driver.start(buffer)
    assert buffer.wait_for(3, timeout_s=10.0)
    server.disappear()
    assert server.wait_until(lambda: driver.state is DriverState.LOST)
    with pytest.raises(DriverError, match=r"not connected|lost"):
        driver.get_values("framerate")
    server.reappear()
    assert server.wait_until(lambda: driver.state is DriverState.STREAMING)
    n = len(buffer)
    assert buffer.wait_for(n + 3, timeout_s=10.0)
    kinds = [e.kind for e in events]
    assert DriverEventKind.CONNECTION_LOST in kinds and DriverEventKind.RECONNECTED in kinds
    assert kinds.index(DriverEventKind.CONNECTION_LOST) < kinds.index(DriverEventKind.RECONNECTED)
    driver.close()


def test_server_gone_for_good_ends_disconnected_without_raising(
    server: EyeTribeTestServer, thread_failures: list[object]
) -> None:
    few = ReconnectPolicy(first_delay_ms=10.0, factor=1.0, max_delay_ms=10.0, max_attempts=3)
    driver = _driver(server, reconnect=few)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    driver.start(SampleBuffer())
    server.disappear()
    assert server.wait_until(lambda: driver.state is DriverState.DISCONNECTED)
    kinds = [e.kind for e in events]
    assert kinds.count(DriverEventKind.RECONNECT_FAILED) == 3
    gave_up = next(e for e in events if e.kind is DriverEventKind.GAVE_UP)
    assert "Start EyeTribe Server and connect again" in gave_up.message
    server.reappear()
    driver.connect()  # a fresh connect works once the server is back
    assert driver.state is DriverState.CONNECTED
    assert len(_stream(driver, 2)) >= 2
    driver.close()


def test_silent_server_times_out_and_is_reconnected(
    server: EyeTribeTestServer, thread_failures: list[object]
) -> None:
    driver = _driver(server, data_timeout_ms=200.0)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    server.silent = True
    assert server.wait_until(lambda: any(e.kind is DriverEventKind.TIMEOUT for e in events))
    server.silent = False
    assert server.wait_until(lambda: any(e.kind is DriverEventKind.RECONNECTED for e in events))
    assert server.wait_until(lambda: driver.state is DriverState.CONNECTED)
    driver.close()


def test_close_during_reconnection_is_prompt(
    server: EyeTribeTestServer, thread_failures: list[object]
) -> None:
    slow = ReconnectPolicy(first_delay_ms=10_000.0, max_attempts=5)
    driver = _driver(server, reconnect=slow)
    driver.connect()
    server.disappear()
    assert server.wait_until(lambda: driver.state is DriverState.LOST)
    started = now_ms()
    driver.close()
    assert now_ms() - started < 5000.0  # bounded by the join, not by the backoff
    assert driver.state is DriverState.CLOSED
    with pytest.raises(DriverError, match="closed"):
        driver.connect()


def test_start_and_stop_rules(server: EyeTribeTestServer) -> None:
    driver = _driver(server)
    with pytest.raises(DriverError, match="connect"):
        driver.start(SampleBuffer())
    driver.connect()
    driver.connect()  # already connected: nothing to do
    driver.start(SampleBuffer())
    with pytest.raises(DriverError, match="already streaming"):
        driver.start(SampleBuffer())
    driver.stop()
    driver.stop()
    driver.close()
    driver.close()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"gaze": "left"}, "gaze"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"reply_timeout_s": 0}, "reply"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        EyeTribeDriver(**kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[tuple[EyeTribeTestServer, EyeTribeDriver, SampleBuffer]]:
    with EyeTribeTestServer(framerate=60, heartbeat_interval_ms=100) as srv:
        # A generous frame timeout: these tests are about the bytes, not about stalls.
        driver = EyeTribeDriver(
            host="127.0.0.1", port=srv.port, reconnect=FAST_RETRY, frame_timeout_ms=5000.0
        )
        driver.connect()
        buffer = SampleBuffer()
        driver.start(buffer)
        yield srv, driver, buffer
        driver.close()


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300) | _json_ish_stream().map(b"".join))
def test_fuzzed_bytes_on_the_socket_never_break_the_driver(
    fuzz_target: tuple[EyeTribeTestServer, EyeTribeDriver, SampleBuffer], payload: bytes
) -> None:
    server, driver, _ = fuzz_target
    failures: list[threading.ExceptHookArgs] = []
    previous, threading.excepthook = threading.excepthook, failures.append
    try:
        server.inject(payload)
        server.inject(b"\n")
    finally:
        threading.excepthook = previous
    assert not failures
    assert driver.state is DriverState.STREAMING
    assert driver._worker is not None and driver._worker.alive


def test_fuzzed_driver_still_streams_after_a_resync(
    fuzz_target: tuple[EyeTribeTestServer, EyeTribeDriver, SampleBuffer],
) -> None:
    server, driver, buffer = fuzz_target
    # Whatever the fuzz left unfinished, the server's newline-terminated frames resynchronise the
    # splitter (at the next newline, or after MAX_MESSAGE_BYTES for a stray brace).
    n = len(buffer)
    assert server.wait_until(lambda: len(buffer) >= n + 3, timeout_s=10.0)
    assert driver.state is DriverState.STREAMING


# -- faults a real tracker meets (issue 16) ---------------------------------------------------------


def _frame_bytes(i: int) -> bytes:
    return json.dumps(make_frame(i, x=100.0 + i, y=200.0, time_ms=1000 + 16 * i)).encode()


@pytest.mark.parametrize("cut_after", [b'"time": 1000,', b'"fix": false', b'"state": 7, '])
def test_split_resynchronises_after_a_message_cut_between_tokens(cut_after: bytes) -> None:
    """A message cut short between two tokens, then the server's newline, loses only itself."""
    first = _frame_bytes(0)
    cut = first[: first.index(cut_after) + len(cut_after)]
    following = [_frame_bytes(i) for i in range(1, 22)]
    stream = cut + b"\n" + b"\n".join(following) + b"\n"
    result = split_messages(stream)
    assert result.messages == tuple(following)
    assert result.discarded == (cut + b"\n",)
    assert result.rest == b""


def test_split_keeps_a_cut_message_pending_until_its_newline() -> None:
    first = _frame_bytes(0)
    cut = first[: first.index(b'"fix"')]
    assert split_messages(cut).rest == cut  # could still be completed by the next read
    result = split_messages(cut + b"\n" + _frame_bytes(1))
    assert result.messages == (_frame_bytes(1),)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_are_malformed(constant: bytes) -> None:
    with pytest.raises(MalformedMessage, match=constant.decode().lstrip("-")):
        parse_message(b'{"category": "tracker", "statuscode": 200, "x": ' + constant + b"}")


def test_a_frame_with_nan_coordinates_is_dropped_with_an_event() -> None:
    driver, buffer, events = _receiving_driver()
    text = json.dumps(make_frame(1, x=math.nan, y=200.0, time_ms=1016), allow_nan=True).encode()
    driver._receive(_frame_bytes(0) + b"\n" + text + b"\n" + _frame_bytes(2) + b"\n")
    assert [s.x_screen_px for s in buffer.snapshot()] == [100.0, 102.0]
    assert [e.kind for e in events] == [DriverEventKind.MALFORMED_MESSAGE]
    assert "NaN" in events[0].message


def _wait_event(
    server: EyeTribeTestServer, events: list[DriverEvent], kind: DriverEventKind, text: str
) -> bool:
    return server.wait_until(
        lambda: any(e.kind is kind and text in e.message for e in list(events)), timeout_s=3.0
    )


def test_frame_stall_while_heartbeats_go_on_is_lost_then_restored(
    server: EyeTribeTestServer, thread_failures: list[object]
) -> None:
    driver = _driver(server, frame_timeout_ms=150.0)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    buffer = SampleBuffer()
    driver.start(buffer)
    assert buffer.wait_for(5, timeout_s=5.0)
    assert server.wait_until(
        lambda: driver.state is DriverState.STREAMING
    )  # past any stall of a busy machine
    events.clear()
    server.frames_paused = True
    beats = server.count("heartbeat")
    assert _wait_event(server, events, DriverEventKind.TIMEOUT, "no gaze frame")
    assert driver.state is DriverState.LOST
    assert server.wait_until(lambda: server.count("heartbeat") >= beats + 3)  # the connection lives
    n = len(buffer)
    server.frames_paused = False
    assert _wait_event(server, events, DriverEventKind.RECONNECTED, "frames again")
    assert driver.state is DriverState.STREAMING
    assert buffer.wait_for(n + 3, timeout_s=5.0)
    driver.stop()
    assert driver.state is DriverState.CONNECTED
    driver.close()


def test_no_stall_is_reported_while_not_streaming(server: EyeTribeTestServer) -> None:
    driver = _driver(server, frame_timeout_ms=100.0)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    server.frames_paused = True
    assert server.wait_until(lambda: server.count("heartbeat") >= 8)
    assert driver.state is DriverState.CONNECTED
    assert not any(e.kind is DriverEventKind.TIMEOUT for e in events)
    driver.close()


@pytest.mark.parametrize("with_values", [True, False])
def test_tracker_unplug_and_replug_are_lost_and_restored(
    server: EyeTribeTestServer, thread_failures: list[object], with_values: bool
) -> None:
    driver = _driver(server, frame_timeout_ms=5000.0)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    buffer = SampleBuffer()
    driver.start(buffer)
    assert buffer.wait_for(3, timeout_s=5.0)
    gets = server.count("tracker", "get")
    server.set_tracker_state(1, with_values=with_values)
    assert _wait_event(server, events, DriverEventKind.CONNECTION_LOST, "tracker disconnected")
    assert driver.state is DriverState.LOST
    assert driver.tracker_state == 1
    if not with_values:
        assert server.count("tracker", "get") > gets  # the driver asked for the state
    server.set_tracker_state(0, with_values=with_values)
    assert _wait_event(server, events, DriverEventKind.RECONNECTED, "tracker connected")
    assert driver.state is DriverState.STREAMING and driver.tracker_state == 0
    n = len(buffer)
    assert buffer.wait_for(n + 3, timeout_s=5.0)
    driver.close()


def test_uncalibrated_tracker_is_a_state_and_an_event(server: EyeTribeTestServer) -> None:
    driver = _driver(server)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    assert driver.calibrated is False
    notice = [e for e in events if e.kind is DriverEventKind.DEVICE_NOTICE]
    assert len(notice) == 1 and "not calibrated" in notice[0].message and "calibrate" in notice[0].message
    targets = [(x, y) for y in (100.0, 720.0, 1340.0) for x in (100.0, 1280.0, 2460.0)]
    driver.calibrate(targets, settle_ms=1.0, dwell_ms=1.0)
    assert driver.calibrated is True
    driver.clear_calibration()  # the server pushes 800; the driver asks again
    assert server.wait_until(lambda: driver.calibrated is False)
    driver.close()


def test_calibrated_tracker_raises_no_calibration_notice(server: EyeTribeTestServer) -> None:
    server.values["iscalibrated"] = True
    driver = _driver(server)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    assert driver.calibrated is True
    assert not any("calibrat" in e.message for e in events)
    driver.close()


def test_samples_keep_the_frame_time_and_state() -> None:
    sample = parse_frame(DOC_FRAME).to_sample(12.5)
    assert (sample.t_ms, sample.device_t_ms, sample.device_state) == (12.5, 1399382856115.0, 7)
    lost = parse_frame(dict(DOC_FRAME, state=0x14)).to_sample(13.0)
    assert not lost.valid and lost.device_state == 0x14 and lost.device_t_ms == 1399382856115.0


def _paused_stream(server: EyeTribeTestServer) -> tuple[EyeTribeDriver, SampleBuffer, list[DriverEvent]]:
    """A streaming driver whose server pushes no frames of its own (the test injects them)."""
    server.frames_paused = True
    driver = _driver(server)
    events: list[DriverEvent] = []
    driver.add_event_listener(events.append)
    driver.connect()
    buffer = SampleBuffer()
    driver.start(buffer)
    return driver, buffer, events


def test_a_cut_message_on_the_socket_loses_only_itself(
    server: EyeTribeTestServer, thread_failures: list[object]
) -> None:
    driver, buffer, events = _paused_stream(server)
    now = int(now_ms())
    frames = [
        json.dumps(make_frame(i, x=300.0 + i, y=200.0, time_ms=now + 16 * i)).encode() for i in range(22)
    ]
    cut = frames[0][: frames[0].index(b'"fix"')]  # between two tokens
    server.inject(cut + b"\n" + b"\n".join(frames[1:]) + b"\n")
    assert buffer.wait_for(21, timeout_s=5.0)
    assert [s.x_screen_px for s in buffer.snapshot()] == [300.0 + i for i in range(1, 22)]
    assert [e.kind for e in events if e.kind is DriverEventKind.MALFORMED_MESSAGE] == [
        DriverEventKind.MALFORMED_MESSAGE
    ]
    driver.close()


def test_a_nan_frame_on_the_socket_is_dropped_as_malformed(
    server: EyeTribeTestServer, thread_failures: list[object]
) -> None:
    driver, buffer, events = _paused_stream(server)
    now = int(now_ms())
    bad = json.dumps(make_frame(0, x=math.inf, y=200.0, time_ms=now), allow_nan=True).encode()
    good = json.dumps(make_frame(1, x=301.0, y=200.0, time_ms=now + 16)).encode()
    server.inject(bad + b"\n" + good + b"\n")
    assert buffer.wait_for(1, timeout_s=5.0)
    assert server.wait_until(lambda: any(e.kind is DriverEventKind.MALFORMED_MESSAGE for e in events))
    assert [(s.x_screen_px, s.valid) for s in buffer.snapshot()] == [(301.0, True)]
    assert "Infinity" in next(e.message for e in events if e.kind is DriverEventKind.MALFORMED_MESSAGE)
    driver.close()
