"""A loopback server that speaks the Eye Tribe Server API, for testing the EyeTribe driver.

It implements the documented protocol on 127.0.0.1 (ephemeral port): ``tracker`` set/get,
``heartbeat``, push frames at the frame rate while push is on, the ``calibration`` requests
(start, pointstart, pointend, abort, clear) with a result after the last point, and the 800
notification when the calibration changes. Test knobs: split every outgoing message into small
chunks, join several frames into one send, inject raw bytes, go silent, stall the frames while
replies go on, unplug and replug the tracker (802), disappear and come back on the same port. It
parses what clients send with ``json.JSONDecoder.raw_decode``, independently of the driver's own
splitter.
"""

from __future__ import annotations

import json
import math
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["EyeTribeTestServer", "make_frame"]

GazeFunction = Callable[[int], tuple[float, float]]


def make_frame(
    index: int,
    *,
    x: float,
    y: float,
    time_ms: int,
    state: int = 0x7,
    fix: bool = False,
    psize: float = 20.0,
) -> dict[str, Any]:
    """One documented push frame message (``values.frame``) for gaze at (x, y)."""
    eye = {"raw": {"x": x, "y": y}, "avg": {"x": x, "y": y}, "psize": psize, "pcenter": {"x": 0.4, "y": 0.5}}
    stamp = datetime.fromtimestamp(time_ms / 1000.0).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    frame = {
        "timestamp": stamp,
        "time": time_ms,
        "fix": fix,
        "state": state,
        "raw": {"x": x + 0.5, "y": y - 0.5},
        "avg": {"x": x, "y": y},
        "lefteye": eye,
        "righteye": dict(eye, psize=psize + 2.0),
        "index": index,
    }
    return {"category": "tracker", "statuscode": 200, "values": {"frame": frame}}


@dataclass
class _Client:
    sock: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)
    push: bool = False
    alive: bool = True


class EyeTribeTestServer:
    """The Eye Tribe Server API on loopback.

    Parameters
    ----------
    framerate : int
        Push rate in Hz (reported as ``framerate``).
    heartbeat_interval_ms : int
        Reported as ``heartbeatinterval``.
    gaze : callable, optional
        Frame index → (x, y) screen pixels; default moves right one pixel per frame from (100, 200).
    frame_state : int
        ``state`` bitmask of the frames (7: gaze, eyes and user present).
    """

    def __init__(
        self,
        *,
        framerate: int = 60,
        heartbeat_interval_ms: int = 250,
        gaze: GazeFunction | None = None,
        frame_state: int = 0x7,
    ) -> None:
        self.values: dict[str, Any] = {
            "push": False,
            "heartbeatinterval": heartbeat_interval_ms,
            "version": 1,
            "trackerstate": 0,
            "framerate": framerate,
            "iscalibrated": False,
            "iscalibrating": False,
            "calibresult": None,
            "screenindex": 0,
            "screenresw": 2560,
            "screenresh": 1440,
            "screenpsyw": 0.597,
            "screenpsyh": 0.336,
        }
        self.gaze = gaze or (lambda i: (100.0 + i, 200.0))
        self.frame_state = frame_state
        self.chunk_bytes: int | None = None
        self.frames_per_send = 1
        self.silent = False
        self.frames_paused = False
        self.refuse: set[tuple[str, str]] = set()
        self.requests: list[dict[str, Any]] = []
        self.frames_sent = 0
        self._clients: list[_Client] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._port = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._calibration_points: list[tuple[float, float]] = []
        self._point_active = False
        self._pointcount = 0

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port (fixed for the server's lifetime, also after reappear())."""
        return self._port

    def start(self) -> EyeTribeTestServer:
        """Listen on 127.0.0.1 (an ephemeral port the first time) and start pushing."""
        self._listen()
        self._spawn(self._push_loop)
        return self

    def __enter__(self) -> EyeTribeTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Close everything and end the server's threads."""
        self._stop.set()
        self.disappear()
        for thread in self._threads:
            thread.join(2.0)

    def disappear(self) -> None:
        """Close the listening socket and every client connection, as if the server process died."""
        with self._lock:
            listener, self._listener = self._listener, None
            clients, self._clients = self._clients, []
        if listener is not None:
            listener.close()
        for client in clients:
            client.alive = False
            try:
                client.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.sock.close()

    def reappear(self) -> None:
        """Listen again on the same port."""
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        deadline = time.monotonic() + 3.0
        while True:  # the old listener lives on until its pending accept() returns (<= 50 ms)
            try:
                listener.bind(("127.0.0.1", self._port))
                break
            except OSError:
                if self._port == 0 or time.monotonic() > deadline:
                    listener.close()
                    raise
                time.sleep(0.01)
        listener.listen(4)
        listener.settimeout(0.05)
        self._port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        self._spawn(self._accept_loop, listener)

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    # -- test knobs -----------------------------------------------------------------------------

    @property
    def n_clients(self) -> int:
        """Connected clients."""
        with self._lock:
            return len(self._clients)

    def inject(self, data: bytes) -> None:
        """Send raw bytes to every client, as they are."""
        for client in self._snapshot():
            self._write(client, data, chunked=False)

    def set_tracker_state(self, state: int, *, announce: bool = True, with_values: bool = True) -> None:
        """Plug the tracker out (``state`` 1) or in (0): frames stop while it is not 0; push 802.

        The 802 notification carries ``values.trackerstate`` only with ``with_values``; without it a
        client has to ask ``get trackerstate``.
        """
        self.values["trackerstate"] = state
        if announce:
            values = {"values": {"trackerstate": state}} if with_values else {}
            self.notify({"category": "tracker", "statuscode": 802, **values})

    def notify(self, message: dict[str, Any]) -> None:
        """Send one message to every client."""
        for client in self._snapshot():
            self._send(client, [message])

    def count(self, category: str, request: str | None = None) -> int:
        """How many requests of this kind arrived."""
        with self._lock:
            return sum(
                1 for r in self.requests if r.get("category") == category and r.get("request") == request
            )

    def wait_until(self, condition: Callable[[], bool], *, timeout_s: float = 5.0) -> bool:
        """Poll ``condition`` until it holds or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.01)
        return condition()

    # -- I/O ------------------------------------------------------------------------------------

    def _snapshot(self) -> list[_Client]:
        with self._lock:
            return [c for c in self._clients if c.alive]

    def _write(self, client: _Client, data: bytes, *, chunked: bool = True) -> None:
        if not data:
            return
        size = self.chunk_bytes if chunked and self.chunk_bytes else len(data)
        with client.lock:
            try:
                for start in range(0, len(data), size):
                    client.sock.sendall(data[start : start + size])
                    if size < len(data):
                        time.sleep(0.0005)
            except OSError:
                client.alive = False

    def _send(self, client: _Client, messages: list[dict[str, Any]]) -> None:
        if self.silent or not messages:
            return
        # The real server ends each message with a newline; the driver must not rely on it.
        self._write(client, b"".join(json.dumps(m).encode() + b"\n" for m in messages))

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # listener closed (disappear)
            client = _Client(sock)
            with self._lock:
                self._clients.append(client)
            self._spawn(self._client_loop, client)

    def _client_loop(self, client: _Client) -> None:
        decoder = json.JSONDecoder()
        text = ""
        client.sock.settimeout(0.05)
        while not self._stop.is_set() and client.alive:
            try:
                data = client.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            text += data.decode("utf-8")
            while True:
                text = text.lstrip()
                if not text:
                    break
                try:
                    request, end = decoder.raw_decode(text)
                except json.JSONDecodeError:
                    break  # incomplete: wait for more
                text = text[end:]
                self._send(client, self._handle(client, request))
        client.alive = False

    def _push_loop(self) -> None:
        period_s = 1.0 / float(self.values["framerate"])
        next_s = time.monotonic()
        pending: list[dict[str, Any]] = []
        index = 0
        while not self._stop.is_set():
            next_s += period_s
            time.sleep(max(0.0, next_s - time.monotonic()))
            clients = [c for c in self._snapshot() if c.push]
            if self.frames_paused or self.values["trackerstate"] != 0:
                clients = []  # a stalled or unplugged tracker: heartbeats go on, frames do not
            if not clients:
                pending = []
                continue
            x, y = self.gaze(index)
            pending.append(
                make_frame(index, x=x, y=y, time_ms=int(time.time() * 1000), state=self.frame_state)
            )
            index += 1
            if len(pending) >= self.frames_per_send:
                for client in clients:
                    self._send(client, pending)
                self.frames_sent += len(pending)
                pending = []

    # -- protocol -------------------------------------------------------------------------------

    def _handle(self, client: _Client, request: Any) -> list[dict[str, Any]]:
        if not isinstance(request, dict):
            return [_error("", "", 400, "request must be a JSON object")]
        with self._lock:
            self.requests.append(request)
        category, name = request.get("category"), request.get("request")
        if (category, name) in self.refuse:
            return [_error(category, name, 403, f"{category}/{name} refused by the test")]
        if category == "heartbeat":
            return [{"category": "heartbeat", "statuscode": 200}]
        if category == "tracker" and name == "set":
            return self._set(client, request.get("values"))
        if category == "tracker" and name == "get":
            keys = request.get("values") or []
            values = {k: self.values[k] for k in keys if k in self.values}
            return [{"category": "tracker", "request": "get", "statuscode": 200, "values": values}]
        if category == "calibration":
            return self._calibration(name, request.get("values"))
        return [_error(category, name, 400, "unknown request")]

    def _set(self, client: _Client, values: Any) -> list[dict[str, Any]]:
        if not isinstance(values, dict):
            return [_error("tracker", "set", 400, "values must be an object")]
        if "version" in values and values["version"] != 1:
            return [_error("tracker", "set", 400, "unsupported version")]
        if "push" in values:
            client.push = bool(values["push"])
        return [{"category": "tracker", "request": "set", "statuscode": 200}]

    def _calibration(self, name: Any, values: Any) -> list[dict[str, Any]]:
        ok = {"category": "calibration", "request": name, "statuscode": 200}
        calibrating = self.values["iscalibrating"]
        if name == "start":
            count = values.get("pointcount") if isinstance(values, dict) else None
            if calibrating or not isinstance(count, int) or count < 7:
                return [_error("calibration", name, 403, "cannot start calibration")]
            self.values["iscalibrating"] = True
            self._pointcount, self._calibration_points = count, []
            return [ok]
        if name == "pointstart":
            if not calibrating or self._point_active or not isinstance(values, dict):
                return [_error("calibration", name, 403, "calibration point not expected")]
            self._calibration_points.append((float(values["x"]), float(values["y"])))
            self._point_active = True
            return [ok]
        if name == "pointend":
            if not self._point_active:
                return [_error("calibration", name, 403, "no calibration point active")]
            self._point_active = False
            if len(self._calibration_points) < self._pointcount:
                return [ok]
            return self._finish_calibration()
        if name in ("abort", "clear"):
            self.values["iscalibrating"] = False
            self._point_active = False
            if name == "clear":
                self.values["iscalibrated"] = False
                return [ok, {"category": "calibration", "statuscode": 800}]
            return [ok]
        return [_error("calibration", name, 400, "unknown calibration request")]

    def _finish_calibration(self) -> list[dict[str, Any]]:
        points = [
            {
                "state": 2 if i != 1 else 1,  # the second point asks to be resampled
                "cp": {"x": x, "y": y},
                "mecp": {"x": x + 3.0, "y": y - 4.0},
                "acd": {"ad": 0.4 + 0.01 * i, "adl": 0.5, "adr": 0.45},
                "mepix": {"mep": 5.0, "mepl": 6.0, "mepr": 5.5},
                "asdp": {"asd": 1.0, "asdl": 1.1, "asdr": 0.9},
            }
            for i, (x, y) in enumerate(self._calibration_points)
        ]
        mean_deg = math.fsum(p["acd"]["ad"] for p in points) / len(points)  # type: ignore[index]
        result = {"result": True, "deg": mean_deg, "degl": 0.5, "degr": 0.45, "calibpoints": points}
        self.values.update(iscalibrating=False, iscalibrated=True, calibresult=result)
        reply = {
            "category": "calibration",
            "request": "pointend",
            "statuscode": 200,
            "values": {"calibresult": result},
        }
        return [reply, {"category": "calibration", "statuscode": 800}]


def _error(category: Any, request: Any, statuscode: int, message: str) -> dict[str, Any]:
    return {
        "category": category,
        "request": request,
        "statuscode": statuscode,
        "values": {"statusmessage": message},
    }
