"""Gaze tracker drivers, one device per file, all satisfying :class:`~tracking.drivers.base.GazeDriver`.

``DRIVERS`` maps the names the CLI and the GUI offer to the driver classes; each takes its own
keyword options (the mouse simulator a ``position_source``, EyeTribe ``host``/``port``, ...).
"""

from __future__ import annotations

from collections.abc import Callable

from tracking.drivers.base import (
    CalibratingDriver,
    CalibrationPoint,
    CalibrationResult,
    DriverEvent,
    DriverEventKind,
    DriverState,
    GazeDriver,
    ReconnectPolicy,
    SampleBuffer,
    streaming,
    validate,
    validation_point,
)
from tracking.drivers.eyetribe import EyeTribeDriver
from tracking.drivers.lsl import ChannelMap, LslDriver
from tracking.drivers.mouse import MouseSimulator
from tracking.drivers.replay import ReplayDriver, read_samples, write_samples
from tracking.drivers.tobii import TobiiProDriver

__all__ = [
    "DRIVERS",
    "CalibratingDriver",
    "CalibrationPoint",
    "CalibrationResult",
    "ChannelMap",
    "DriverEvent",
    "DriverEventKind",
    "DriverState",
    "EyeTribeDriver",
    "GazeDriver",
    "LslDriver",
    "MouseSimulator",
    "ReconnectPolicy",
    "ReplayDriver",
    "SampleBuffer",
    "TobiiProDriver",
    "read_samples",
    "streaming",
    "validate",
    "validation_point",
    "write_samples",
]

DRIVERS: dict[str, Callable[..., GazeDriver]] = {
    "mouse": MouseSimulator,
    "eyetribe": EyeTribeDriver,
    "lsl": LslDriver,
    "tobii": TobiiProDriver,
    "replay": ReplayDriver,
}
"""Driver name → driver class; ``"mouse"`` is the embedded default."""
