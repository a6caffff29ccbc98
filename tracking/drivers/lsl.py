"""LslDriver: a gaze stream from Lab Streaming Layer (pylsl), on the shared clock.

The stream is resolved by type (``Gaze`` by default), name or source id. Each chunk's LSL time stamps
(seconds on the sender's ``local_clock``) are moved onto the receiver's LSL clock with
``inlet.time_correction()`` and then onto :func:`tracking.clock.now_ms` with an offset measured once
when connecting (both are monotonic clocks of this machine). pylsl is imported inside functions only,
so this module imports without it.

Resolution uses LSL's multicast/broadcast discovery. On machines without a multicast route (sandboxes,
isolated lab networks) point the environment variable ``LSLAPICFG`` at an ``lsl_api.cfg`` with
``[multicast] ResolveScope = machine`` and ``[lab] KnownPeers = {127.0.0.1}`` to discover streams on
this computer only.

References
----------
.. [1] Kothe et al., Lab Streaming Layer (liblsl / pylsl): StreamInlet.pull_chunk, time_correction,
   resolve_bypred; https://labstreaminglayer.readthedocs.io
"""

from __future__ import annotations

import importlib
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from tracking._validation import check_positive
from tracking.clock import now_ms
from tracking.drivers.base import (
    DriverEventKind,
    DriverState,
    DriverStatus,
    ReconnectPolicy,
    SampleCallback,
    StatusReporting,
    WorkerThread,
)
from tracking.errors import DriverError
from tracking.records import GazeSample

__all__ = ["ChannelMap", "LslDriver", "chunk_to_samples", "stream_predicate"]


def _import_pylsl(caller: str) -> ModuleType:
    """Import pylsl, or raise ImportError naming ``caller`` and the fix (also when liblsl is missing)."""
    try:
        return importlib.import_module("pylsl")
    except (ImportError, RuntimeError) as err:  # pylsl raises RuntimeError when liblsl cannot be loaded
        raise ImportError(
            f"{caller} needs 'pylsl' with its liblsl library, which could not be loaded ({err}). "
            "Install the pinned environment with 'make install' (or 'pip install pylsl'), "
            "or choose the 'mouse' driver."
        ) from err


@dataclass(frozen=True, slots=True)
class ChannelMap:
    """Which channels of the LSL stream hold what.

    Parameters
    ----------
    x_channel, y_channel : int
        Channels of the gaze x and y.
    valid_channel : int or None
        Channel that is > 0.5 for a valid sample; without it, samples with finite x and y are valid.
    pupil_channel : int or None
        Channel of the pupil size (stream's unit).
    screen_size_px : (width, height) or None
        When given, x and y are normalised display coordinates in [0, 1] (top-left origin) and are
        scaled to screen pixels; otherwise they already are screen pixels.
    zero_is_invalid : bool or None
        Treat a sample at exactly (0, 0) as invalid: many trackers' LSL apps send zeros for lost
        samples (blinks). None (default): on when the stream has no validity channel.
    bounds_px : (width, height) or None
        Samples outside ``[0, width] × [0, height]`` screen pixels are invalid (out of range).
        Default: the screen size for normalised coordinates, else no bounds.
    """

    x_channel: int = 0
    y_channel: int = 1
    valid_channel: int | None = None
    pupil_channel: int | None = None
    screen_size_px: tuple[float, float] | None = None
    zero_is_invalid: bool | None = None
    bounds_px: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        for name in ("x_channel", "y_channel", "valid_channel", "pupil_channel"):
            value = getattr(self, name)
            if value is None and name in ("valid_channel", "pupil_channel"):
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an int >= 0; got {value!r}.")
        if self.screen_size_px is not None:
            width, height = self.screen_size_px
            check_positive(screen_width_px=width)
            check_positive(screen_height_px=height)
        if self.bounds_px is not None:
            width, height = self.bounds_px
            check_positive(bounds_width_px=width)
            check_positive(bounds_height_px=height)
        if self.zero_is_invalid not in (None, True, False):
            raise TypeError(f"zero_is_invalid must be True, False or None; got {self.zero_is_invalid!r}.")

    @property
    def rejects_zero(self) -> bool:
        """Whether (0, 0) samples are invalid: the option, or its default (no validity channel)."""
        return self.valid_channel is None if self.zero_is_invalid is None else self.zero_is_invalid

    @property
    def screen_bounds_px(self) -> tuple[float, float] | None:
        """The bounds valid samples must lie in, in screen pixels, or None."""
        return self.bounds_px if self.bounds_px is not None else self.screen_size_px

    @property
    def highest_channel(self) -> int:
        """The largest channel index used."""
        used = (self.x_channel, self.y_channel, self.valid_channel, self.pupil_channel)
        return max(c for c in used if c is not None)


def stream_predicate(*, stream_type: str | None, stream_name: str | None, source_id: str | None) -> str:
    """The LSL XPath predicate that selects a stream by type, name and/or source id.

    Raises
    ------
    ValueError
        When nothing is given, or a value contains a quote (it cannot be matched safely).
    """
    parts = []
    for prop, value in (("type", stream_type), ("name", stream_name), ("source_id", source_id)):
        if value is None:
            continue
        if "'" in value or '"' in value:
            raise ValueError(f"LSL stream {prop} must not contain quotes; got {value!r}.")
        parts.append(f"{prop}='{value}'")
    if not parts:
        raise ValueError("give stream_type, stream_name or source_id to select an LSL stream.")
    return " and ".join(parts)


def _sample_from_row(
    row: Sequence[float], t_ms: float, device_t_ms: float, channels: ChannelMap
) -> GazeSample:
    raw_x, raw_y = float(row[channels.x_channel]), float(row[channels.y_channel])
    x, y = raw_x, raw_y
    if channels.screen_size_px is not None:
        x, y = x * channels.screen_size_px[0], y * channels.screen_size_px[1]
    flag = None if channels.valid_channel is None else float(row[channels.valid_channel])
    valid = _row_valid(raw_x, raw_y, x, y, flag, channels)
    pupil = None
    if channels.pupil_channel is not None:
        value = float(row[channels.pupil_channel])
        pupil = value if math.isfinite(value) else None
    return GazeSample(
        t_ms,
        x if valid else math.nan,
        y if valid else math.nan,
        valid=valid,
        pupil_size=pupil,
        device_t_ms=device_t_ms if math.isfinite(device_t_ms) else None,
        device_state=round(flag) if flag is not None and math.isfinite(flag) and abs(flag) < 2**62 else None,
    )


def _row_valid(
    raw_x: float, raw_y: float, x: float, y: float, flag: float | None, channels: ChannelMap
) -> bool:
    """Finite, flagged valid (if there is a flag), not the (0, 0) of a lost sample, within bounds."""
    if not (math.isfinite(x) and math.isfinite(y)) or (flag is not None and not flag > 0.5):
        return False
    if channels.rejects_zero and raw_x == 0.0 and raw_y == 0.0:
        return False
    bounds = channels.screen_bounds_px
    return bounds is None or (0.0 <= x <= bounds[0] and 0.0 <= y <= bounds[1])


def chunk_to_samples(
    chunk: Sequence[Sequence[float]],
    timestamps_s: Sequence[float],
    *,
    channels: ChannelMap,
    time_correction_s: float,
    lsl_to_local_ms: float,
) -> list[GazeSample]:
    """Turn one pulled LSL chunk into gaze samples on the shared clock.

    Parameters
    ----------
    chunk : sequence of rows
        One row of channel values per sample.
    timestamps_s : sequence of float
        The rows' LSL time stamps (sender's clock, seconds).
    channels : ChannelMap
        Where x, y, validity and pupil size are.
    time_correction_s : float
        ``inlet.time_correction()``: add it to move a stamp onto this machine's LSL clock.
    lsl_to_local_ms : float
        ``now_ms() - 1000 * pylsl.local_clock()``, measured on this machine.

    Returns
    -------
    list of GazeSample
        Rows whose time stamp is not finite are dropped. Each sample keeps the sender's stamp in
        ms (``device_t_ms``) and the validity channel's value (``device_state``). A row is invalid
        (NaN position) when x or y is not finite, the validity channel says so, it is exactly
        (0, 0) and :attr:`ChannelMap.rejects_zero`, or it lies outside
        :attr:`ChannelMap.screen_bounds_px`.
    """
    samples = []
    for row, stamp in zip(chunk, timestamps_s, strict=False):
        t_ms = (float(stamp) + time_correction_s) * 1000.0 + lsl_to_local_ms
        if math.isfinite(t_ms):
            samples.append(_sample_from_row(row, t_ms, float(stamp) * 1000.0, channels))
    return samples


def _clock_offset_ms(pylsl: ModuleType) -> float:
    """``now_ms() - 1000 * local_clock()``, bracketed to the tightest of a few readings."""
    best: tuple[float, float] | None = None
    for _ in range(5):
        before = now_ms()
        lsl_ms = pylsl.local_clock() * 1000.0
        after = now_ms()
        if best is None or after - before < best[0]:
            best = (after - before, (before + after) / 2.0 - lsl_ms)
    assert best is not None
    return best[1]


class LslDriver(StatusReporting):
    """A gaze driver reading a Lab Streaming Layer stream.

    Parameters
    ----------
    stream_type : str or None
        Stream type to resolve (default ``"Gaze"``).
    stream_name : str or None
        Stream name to resolve (combined with the type when both are given).
    source_id : str or None
        Source id to resolve; after a loss the driver looks for the same source id again.
    channels : ChannelMap
        Channel layout (default: x, y in channels 0, 1, screen pixels).
    resolve_timeout_s : float
        How long ``connect()`` looks for the stream.
    rate_hz : float
        Rate reported for streams with an irregular (0) nominal rate.
    data_timeout_ms : float
        Silence after which the stream counts as lost (state ``LOST``, event ``TIMEOUT``) until data
        arrives again.
    reconnect : ReconnectPolicy
        Backoff for finding the stream again after it disappeared.
    keep_before_start : bool
        Deliver the samples that arrived between :meth:`connect` and :meth:`start` (up to 10 s,
        the inlet's buffer) when streaming starts (default); False discards them at :meth:`start`.
    """

    name = "lsl"

    def __init__(
        self,
        *,
        stream_type: str | None = "Gaze",
        stream_name: str | None = None,
        source_id: str | None = None,
        channels: ChannelMap | None = None,
        resolve_timeout_s: float = 5.0,
        rate_hz: float = 60.0,
        data_timeout_ms: float = 2000.0,
        reconnect: ReconnectPolicy | None = None,
        keep_before_start: bool = True,
    ) -> None:
        if not isinstance(keep_before_start, bool):
            raise TypeError(f"keep_before_start must be True or False; got {keep_before_start!r}.")
        self._keep_before_start = keep_before_start
        self._predicate = stream_predicate(
            stream_type=stream_type, stream_name=stream_name, source_id=source_id
        )
        self._channels = channels if channels is not None else ChannelMap()
        self._resolve_timeout_s = check_positive(resolve_timeout_s=resolve_timeout_s)
        self._fallback_rate_hz = check_positive(rate_hz=rate_hz)
        self._data_timeout_ms = check_positive(data_timeout_ms=data_timeout_ms)
        self._reconnect = reconnect if reconnect is not None else ReconnectPolicy()
        self._status = DriverStatus(self.name)
        self._inlet: Any = None
        self._pylsl: ModuleType | None = None
        self._rate_hz = self._fallback_rate_hz
        self._stream_label = self._predicate
        self._lsl_to_local_ms = 0.0
        self._time_correction_s = 0.0
        self._worker: WorkerThread | None = None
        self._on_sample: SampleCallback | None = None

    @property
    def nominal_rate_hz(self) -> float:
        """The stream's nominal rate (``rate_hz`` for irregular streams or before connecting)."""
        return self._rate_hz

    def connect(self) -> None:
        """Resolve the stream, open an inlet and estimate the clock offsets.

        Raises
        ------
        ImportError
            When pylsl (or its liblsl) is not available.
        DriverError
            When no matching stream appears within ``resolve_timeout_s`` or its channels do not fit.
        """
        if self.state is DriverState.CLOSED:
            raise DriverError("this LSL driver was closed; create a new one.")
        if self.state is not DriverState.DISCONNECTED:
            return
        self._pylsl = _import_pylsl("the LSL driver")
        self._lsl_to_local_ms = _clock_offset_ms(self._pylsl)
        inlet = self._open_inlet(self._resolve_timeout_s)
        if inlet is None:
            raise DriverError(
                f"no LSL stream matching {self._predicate} found within {self._resolve_timeout_s:g} s. "
                "Start the program that sends the gaze stream (e.g. the tracker's LSL app), "
                "or choose the 'mouse' driver."
            )
        self._inlet = inlet
        self._status.set_state(DriverState.CONNECTED)

    def start(self, on_sample: SampleCallback) -> None:
        """Pull samples into ``on_sample`` until :meth:`stop`, beginning with those buffered since connecting.

        With ``keep_before_start=False`` the samples buffered before this call are discarded.

        Raises
        ------
        DriverError
            When not connected, or already streaming.
        """
        if self.state is not DriverState.CONNECTED or self._inlet is None:
            raise DriverError(
                f"the LSL driver cannot start while {self.state.value}; call connect() first "
                "(and stop() before starting again)."
            )
        if not self._keep_before_start:
            self._inlet.flush()
        self._on_sample = on_sample
        self._worker = WorkerThread("lsl-inlet", self._run, self._status)
        self._status.set_state(DriverState.STREAMING)
        self._worker.start()

    def stop(self) -> None:
        """Stop pulling samples (idempotent); the inlet stays open."""
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop()
        self._on_sample = None
        if self.state in (DriverState.STREAMING, DriverState.LOST):
            self._status.set_state(
                DriverState.CONNECTED if self._inlet is not None else DriverState.DISCONNECTED
            )

    def close(self) -> None:
        """Stop and close the inlet for good (idempotent)."""
        self.stop()
        inlet, self._inlet = self._inlet, None
        if inlet is not None:
            inlet.close_stream()
        self._status.set_state(DriverState.CLOSED)

    def _open_inlet(self, timeout_s: float) -> Any:
        """Resolve, check and open an inlet; None when no stream was found in time."""
        pylsl = self._pylsl
        assert pylsl is not None
        found = pylsl.resolve_bypred(self._predicate, 1, timeout_s)
        if not found:
            return None
        info = found[0]
        n_channels = info.channel_count()
        if self._channels.highest_channel >= n_channels:
            raise DriverError(
                f"LSL stream {info.name()!r} has {n_channels} channels, but the channel map uses channel "
                f"{self._channels.highest_channel}. Set ChannelMap(x_channel=..., y_channel=...) to fit it."
            )
        inlet = pylsl.StreamInlet(info, max_buflen=10, recover=False)
        inlet.open_stream(timeout=timeout_s)
        rate = info.nominal_srate()
        self._rate_hz = float(rate) if rate > 0 else self._fallback_rate_hz
        self._stream_label = f"{info.name()!r} ({info.type()}, {info.source_id() or 'no source id'})"
        self._refresh_time_correction(inlet, timeout_s=max(timeout_s, 2.0))
        return inlet

    def _refresh_time_correction(self, inlet: Any, *, timeout_s: float = 0.0) -> None:
        """Update the sender→receiver clock offset; liblsl's first estimate takes about 0.6 s."""
        pylsl = self._pylsl
        assert pylsl is not None
        try:
            self._time_correction_s = float(inlet.time_correction(timeout=timeout_s))
        except pylsl.util.TimeoutError:
            return  # no estimate yet: keep the previous one (0 for a stream from this machine)

    def _run(self, stop: threading.Event) -> None:
        pylsl = self._pylsl
        assert pylsl is not None
        last_data_ms = now_ms()
        timed_out = False
        while not stop.is_set():
            inlet = self._inlet
            try:
                first, stamp = inlet.pull_sample(timeout=0.1)
                if first is None:
                    if not timed_out and now_ms() - last_data_ms > self._data_timeout_ms:
                        timed_out = True
                        self._status.set_state(DriverState.LOST)
                        self._status.emit(
                            DriverEventKind.TIMEOUT,
                            f"LSL stream {self._stream_label} sent nothing "
                            f"for {self._data_timeout_ms:.0f} ms.",
                        )
                    continue
                chunk, stamps = inlet.pull_chunk(timeout=0.0)
                self._refresh_time_correction(inlet)
            except pylsl.util.LostError:
                if not self._recover(stop):
                    return
                last_data_ms, timed_out = now_ms(), False
                continue
            last_data_ms = now_ms()
            if timed_out:
                timed_out = False
                self._status.set_state(DriverState.STREAMING)
                self._status.emit(
                    DriverEventKind.RECONNECTED, f"LSL stream {self._stream_label} sends again."
                )
            self._deliver([first, *chunk], [stamp, *stamps])

    def _deliver(self, chunk: Sequence[Sequence[float]], stamps: Sequence[float]) -> None:
        try:
            samples = chunk_to_samples(
                chunk,
                stamps,
                channels=self._channels,
                time_correction_s=self._time_correction_s,
                lsl_to_local_ms=self._lsl_to_local_ms,
            )
        except (ValueError, TypeError, IndexError) as err:
            self._status.emit(
                DriverEventKind.MALFORMED_MESSAGE,
                f"LSL stream {self._stream_label} sent an unreadable chunk ({err}); dropped.",
                throttle_ms=1000.0,
            )
            return
        on_sample = self._on_sample
        for sample in samples:
            self._status.deliver(on_sample, sample)

    def _recover(self, stop: threading.Event) -> bool:
        """After a loss: find the stream again with backoff; False when given up or stopped."""
        old, self._inlet = self._inlet, None
        if old is not None:
            old.close_stream()
        self._status.set_state(DriverState.LOST, f"lsl: stream {self._stream_label} lost")
        self._status.emit(
            DriverEventKind.CONNECTION_LOST, f"LSL stream {self._stream_label} was lost. Reconnecting..."
        )
        delays = self._reconnect.delays_ms()
        for attempt, delay_ms in enumerate(delays, start=1):
            if stop.wait(delay_ms / 1000.0):
                return False
            try:
                inlet = self._open_inlet(min(self._resolve_timeout_s, max(delay_ms / 1000.0, 0.5)))
            except Exception as err:  # pylsl raises its own error types while the stream comes back
                inlet = None
                reason = repr(err)
            else:
                reason = "not found"
            if inlet is not None:
                self._inlet = inlet
                self._status.set_state(DriverState.STREAMING)
                self._status.emit(
                    DriverEventKind.RECONNECTED, f"LSL stream {self._stream_label} found again."
                )
                return True
            self._status.emit(
                DriverEventKind.RECONNECT_FAILED,
                f"LSL: attempt {attempt} of {len(delays)} to find the stream: {reason}.",
            )
        self._on_sample = None  # streaming has ended; connect() and start() again
        self._status.set_state(DriverState.DISCONNECTED)
        self._status.emit(
            DriverEventKind.GAVE_UP,
            f"LSL stream matching {self._predicate} did not come back after {len(delays)} attempts. "
            "Restart its sender and connect again, or choose the 'mouse' driver.",
        )
        return False
