"""Tracker validation: 9 targets, accuracy and precision in degrees, the frame-driven procedure."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.geometry import ScreenGeometry
from tracking.records import GazeSample, ValidationResult
from tracking.validation import (
    TargetOnset,
    ValidationProcedure,
    validation_point,
    validation_result,
    validation_targets,
)

GEOMETRY = ScreenGeometry()  # RBDM §5.3.1: 27", 2560 × 1440 px, 70 cm


def degrees(geometry: ScreenGeometry, x_px: float, y_px: float) -> tuple[float, float]:
    """The slow, obvious mapping: each axis by its own arctangent, from the screen centre."""
    px_per_cm = math.hypot(geometry.width_px, geometry.height_px) / (geometry.diagonal_in * 2.54)
    x_cm = (x_px - geometry.width_px / 2) / px_per_cm
    y_cm = (y_px - geometry.height_px / 2) / px_per_cm
    return (
        math.degrees(math.atan2(x_cm, geometry.distance_cm)),
        math.degrees(math.atan2(y_cm, geometry.distance_cm)),
    )


def reference(target: tuple[float, float], xy: list[tuple[float, float]]) -> tuple[float, float]:
    """Accuracy as the mean offset, precision as the RMS of successive distances, one sample at a time."""
    tx, ty = degrees(GEOMETRY, *target)
    gaze = [degrees(GEOMETRY, x, y) for x, y in xy]
    offsets = [math.hypot(gx - tx, gy - ty) for gx, gy in gaze]
    steps = [math.hypot(b[0] - a[0], b[1] - a[1]) ** 2 for a, b in itertools.pairwise(gaze)]
    return sum(offsets) / len(offsets), math.sqrt(sum(steps) / len(steps))


def test_nine_targets_on_the_10_50_90_percent_grid() -> None:
    targets = validation_targets(GEOMETRY)
    assert len(targets) == 9
    assert targets[0] == (256.0, 144.0) and targets[4] == (1280.0, 720.0) and targets[8] == (2304.0, 1296.0)
    assert validation_targets(GEOMETRY, fractions=(0.5,)) == ((1280.0, 720.0),)
    with pytest.raises(ValueError, match="fractions"):
        validation_targets(GEOMETRY, fractions=(1.5,))


@given(
    st.tuples(st.floats(0, 2560), st.floats(0, 1440)),
    st.lists(st.tuples(st.floats(0, 2560), st.floats(0, 1440)), min_size=2, max_size=40),
)
def test_property_accuracy_and_precision_match_the_obvious_definitions(
    target: tuple[float, float], xy: list[tuple[float, float]]
) -> None:
    point = validation_point(target, xy, geometry=GEOMETRY)
    accuracy, precision = reference(target, xy)
    assert point.accuracy_deg == pytest.approx(accuracy, abs=1e-9)
    assert point.precision_deg == pytest.approx(precision, abs=1e-9)
    assert (point.target_x_screen_px, point.target_y_screen_px) == target


def test_gaze_on_the_target_is_perfectly_accurate_and_steady_gaze_perfectly_precise() -> None:
    point = validation_point((1280.0, 720.0), [(1280.0, 720.0)] * 5, geometry=GEOMETRY)
    assert (point.accuracy_deg, point.precision_deg) == (0.0, 0.0)
    offset = validation_point((1280.0, 720.0), [(1330.0, 720.0)] * 5, geometry=GEOMETRY)
    assert (
        offset.accuracy_deg == pytest.approx(degrees(GEOMETRY, 1330.0, 720.0)[0])
        and offset.precision_deg == 0.0
    )


def test_fewer_than_two_samples_cannot_be_measured() -> None:
    with pytest.raises(ValueError, match="1 valid gaze samples"):
        validation_point((10.0, 10.0), [(10.0, 10.0)], geometry=GEOMETRY)
    samples = [GazeSample(float(t), math.nan, math.nan, valid=False) for t in range(5)]
    with pytest.raises(ValueError, match="0 valid gaze samples"):
        validation_result([((10.0, 10.0), samples)], geometry=GEOMETRY, t_ms=0.0)


def drive(
    procedure: ValidationProcedure, gaze: dict[int, tuple[float, float]], *, period_ms: float = 10.0
) -> None:
    """Present frames; a sample every 5 ms at the target's gaze (missing targets get no samples)."""
    onsets: list[TargetOnset] = []
    procedure.target_shown.subscribe(onsets.append)
    procedure.start()
    t = 0.0
    while not procedure.done and t < 60_000:
        procedure.begin_frame(t)
        procedure.frame_presented(t)
        for k in range(int(period_ms // 5)):
            current = onsets[-1].index if onsets else None
            if current in gaze:
                x, y = gaze[current]
                procedure.add_sample(GazeSample(t + 5.0 * k, x, y))
        t += period_ms


def test_the_procedure_measures_each_target_after_the_settle_time() -> None:
    geometry = ScreenGeometry(800, 600, 24.0, 60.0)
    procedure = ValidationProcedure(geometry, show_ms=300.0, settle_ms=100.0, latency_ms=20.0)
    results: list[ValidationResult] = []
    procedure.finished.subscribe(results.append)
    gaze = {k: (x + 8.0, y) for k, (x, y) in enumerate(procedure.targets)}
    drive(procedure, gaze)
    (result,) = results
    assert len(result.points) == 9
    for point, (x, y) in zip(result.points, procedure.targets, strict=True):
        expected = validation_point((x, y), [(x + 8.0, y)] * 2, geometry=geometry)
        assert point.accuracy_deg == pytest.approx(expected.accuracy_deg)
        assert point.precision_deg == pytest.approx(0.0)
    assert result.mean_accuracy_deg > 0


def test_a_target_without_gaze_fails_with_a_message() -> None:
    geometry = ScreenGeometry(800, 600, 24.0, 60.0)
    procedure = ValidationProcedure(geometry, show_ms=200.0, settle_ms=50.0, latency_ms=0.0)
    failures: list[str] = []
    procedure.failed.subscribe(failures.append)
    drive(procedure, {k: xy for k, xy in enumerate(procedure.targets) if k != 4})
    assert len(failures) == 1 and "(400, 300) px has 0 valid gaze samples" in failures[0]


def test_procedure_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="settle_ms"):
        ValidationProcedure(GEOMETRY, show_ms=100.0, settle_ms=100.0)
    with pytest.raises(ValueError, match="at least one target"):
        ValidationProcedure(GEOMETRY, targets_screen_px=[])
    procedure = ValidationProcedure(GEOMETRY)
    procedure.start()
    with pytest.raises(RuntimeError):
        procedure.start()
    assert np.isfinite(procedure.targets).all()
