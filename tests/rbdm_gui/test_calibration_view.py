"""The calibration/validation screen: nine targets, accuracy and precision stored with the session."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from analysis.geometry import ScreenGeometry
from rbdm_gui.screens.calibration_view import CalibrationView
from tracking.drivers import MouseSimulator
from tracking.drivers.base import CalibrationPoint, CalibrationResult, TargetPresenter
from tracking.fixations import DETECTORS
from tracking.recording import gaze_recording
from tracking.records import ValidationResult
from tracking.store import SessionStore
from tracking.validation import ValidationProcedure

pytestmark = pytest.mark.gui

GEOMETRY = ScreenGeometry(800, 800, 15.0, 60.0)
OFFSET_PX = 12.0


def quick(geometry: ScreenGeometry) -> ValidationProcedure:
    return ValidationProcedure(geometry, show_ms=250.0, settle_ms=80.0, latency_ms=30.0)


class GazeNearTargets:
    """Looks OFFSET_PX to the right of whichever target the view shows."""

    def __init__(self) -> None:
        self.view: CalibrationView | None = None

    def __call__(self) -> tuple[float, float] | None:
        procedure = self.view._procedure if self.view is not None else None
        target = procedure.current_target if procedure is not None else None
        return None if target is None else (target[0] + OFFSET_PX, target[1])


def open_session(store: SessionStore) -> int:
    participant = store.create_participant("P01")
    return store.create_session(
        participant,
        settings={},
        geometry=GEOMETRY,
        tracker="mouse",
        recogniser="keyboard",
        stimulus_order=["a"],
    )


def test_validation_stores_accuracy_and_precision_in_degrees(qtbot: QtBot, tmp_path: Path) -> None:
    gaze = GazeNearTargets()
    with SessionStore(tmp_path / "study.sqlite") as store:
        session_id = open_session(store)
        driver = MouseSimulator(gaze, rate_hz=200.0)
        driver.connect()
        with gaze_recording(store, session_id, driver, DETECTORS["idt"](GEOMETRY)) as recorder:
            view = CalibrationView(
                recorder,
                store,
                session_id,
                geometry=GEOMETRY,
                refresh_hz=60.0,
                driver=driver,
                make_procedure=quick,
            )
            gaze.view = view
            qtbot.addWidget(view)
            view.show()
            results: list[object] = []
            view.finished.connect(results.append)
            qtbot.keyClick(view, Qt.Key.Key_Space)
            qtbot.waitUntil(lambda: view.result is not None, timeout=15_000)
            qtbot.keyClick(view, Qt.Key.Key_Space)
            assert len(results) == 1 and isinstance(results[0], ValidationResult)
        driver.close()
        (stored,) = store.validations(session_id)
    assert len(stored.points) == 9
    expected = math.degrees(math.atan2(OFFSET_PX / GEOMETRY.px_per_cm, GEOMETRY.distance_cm))
    for point in stored.points:
        # the gaze sits OFFSET_PX right of the target (a little less near the screen's edge)
        assert 0.8 * expected < point.accuracy_deg < 1.05 * expected
        assert point.precision_deg < 0.05


def test_escape_skips_the_validation(qtbot: QtBot, tmp_path: Path) -> None:
    with SessionStore(tmp_path / "study.sqlite") as store:
        session_id = open_session(store)
        driver = MouseSimulator(lambda: None)
        driver.connect()
        with gaze_recording(store, session_id, driver, DETECTORS["idt"](GEOMETRY)) as recorder:
            view = CalibrationView(recorder, store, session_id, geometry=GEOMETRY, refresh_hz=60.0)
            qtbot.addWidget(view)
            view.show()
            with qtbot.waitSignal(view.finished, timeout=2000) as signal:
                qtbot.keyClick(view, Qt.Key.Key_Escape)
        driver.close()
        assert signal.args == [None] and store.validations(session_id) == []


class CalibratingMouse(MouseSimulator):
    """A mouse simulator with a device calibration, as an EyeTribe has; records the targets shown."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.presented: list[tuple[float, float]] = []
        self.thread: str = ""

    def calibrate(
        self,
        targets_screen_px: Sequence[tuple[float, float]],
        *,
        present_target: TargetPresenter | None = None,
        settle_ms: float = 500.0,
        dwell_ms: float = 800.0,
    ) -> CalibrationResult:
        self.thread = threading.current_thread().name
        for x, y in targets_screen_px:
            assert present_target is not None
            present_target(x, y)
            self.presented.append((x, y))
        points = tuple(CalibrationPoint(x, y, 3.0, 0.3, True) for x, y in targets_screen_px)
        return CalibrationResult(True, points, 0.3)


def test_a_calibrating_driver_is_calibrated_first(qtbot: QtBot, tmp_path: Path) -> None:
    gaze = GazeNearTargets()
    with SessionStore(tmp_path / "study.sqlite") as store:
        session_id = open_session(store)
        driver = CalibratingMouse(gaze, rate_hz=200.0)
        driver.connect()
        with gaze_recording(store, session_id, driver, DETECTORS["idt"](GEOMETRY)) as recorder:
            view = CalibrationView(
                recorder,
                store,
                session_id,
                geometry=GEOMETRY,
                refresh_hz=60.0,
                driver=driver,
                make_procedure=quick,
            )
            gaze.view = view
            qtbot.addWidget(view)
            view.show()
            view.begin()
            qtbot.waitUntil(lambda: view.result is not None, timeout=15_000)
        driver.close()
        assert len(driver.presented) == 9 and driver.thread != threading.current_thread().name
        assert view.calibration is not None and view.calibration.succeeded
        assert len(store.validations(session_id)) == 1
