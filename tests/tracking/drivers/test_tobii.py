"""Tests for tracking/drivers/tobii.py: the guarded SDK import and the pure data mappings.

The Tobii Pro SDK is an optional extra and absent here; the mappings take the SDK's documented
dictionaries and result objects, built in the tests as plain data.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tracking.drivers.base import DriverState
from tracking.drivers.tobii import TobiiProDriver, calibration_result_from_sdk, gaze_sample_from_dict

SCREEN = (1920.0, 1080.0)
SDK_ABSENT = importlib.util.find_spec("tobii_research") is None


def _gaze(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "device_time_stamp": 123_456,
        "system_time_stamp": 5_000_000,
        "left_gaze_point_on_display_area": (0.25, 0.5),
        "left_gaze_point_validity": 1,
        "right_gaze_point_on_display_area": (0.75, 0.5),
        "right_gaze_point_validity": 1,
        "left_pupil_diameter": 3.0,
        "left_pupil_validity": 1,
        "right_pupil_diameter": 4.0,
        "right_pupil_validity": 1,
    }
    data.update(overrides)
    return data


def test_both_eyes_valid_gives_their_mean_in_screen_pixels() -> None:
    sample = gaze_sample_from_dict(_gaze(), screen_size_px=SCREEN, system_to_local_ms=-1000.0)
    assert sample.t_ms == pytest.approx(4000.0)  # 5,000,000 µs = 5,000 ms, moved by the offset
    assert (sample.x_screen_px, sample.y_screen_px) == (960.0, 540.0)
    assert sample.valid and sample.pupil_size == 3.5


def test_one_valid_eye_is_used_alone() -> None:
    data = _gaze(right_gaze_point_validity=0, right_gaze_point_on_display_area=(math.nan, math.nan))
    data.update(right_pupil_validity=0, right_pupil_diameter=math.nan)
    sample = gaze_sample_from_dict(data, screen_size_px=SCREEN, system_to_local_ms=0.0)
    assert (sample.x_screen_px, sample.y_screen_px) == (480.0, 540.0)
    assert sample.pupil_size == 3.0


def test_no_valid_eye_gives_an_invalid_sample() -> None:
    data = _gaze(left_gaze_point_validity=0, right_gaze_point_validity=0)
    sample = gaze_sample_from_dict(data, screen_size_px=SCREEN, system_to_local_ms=0.0)
    assert not sample.valid and math.isnan(sample.x_screen_px)
    assert sample.pupil_size == 3.5  # pupils can be valid without a gaze point


@pytest.mark.parametrize("stamp", [None, "5", math.nan, True])
def test_unusable_time_stamp_raises_value_error(stamp: object) -> None:
    with pytest.raises(ValueError, match="system_time_stamp"):
        gaze_sample_from_dict(_gaze(system_time_stamp=stamp), screen_size_px=SCREEN, system_to_local_ms=0.0)


def _eye(x: float, y: float, validity: str) -> SimpleNamespace:
    return SimpleNamespace(position_on_display_area=(x, y), validity=validity)


def test_calibration_result_is_mapped_to_screen_pixels() -> None:
    good = SimpleNamespace(
        position_on_display_area=(0.5, 0.5),
        calibration_samples=[
            SimpleNamespace(
                left_eye=_eye(0.5 + 3 / 1920, 0.5, "used"), right_eye=_eye(0.5, 0.5 + 4 / 1080, "used")
            ),
            SimpleNamespace(left_eye=_eye(0.9, 0.9, "invalid"), right_eye=_eye(0.5, 0.5, "used")),
        ],
    )
    bad = SimpleNamespace(
        position_on_display_area=(0.1, 0.1),
        calibration_samples=[
            SimpleNamespace(left_eye=_eye(0.1, 0.1, "invalid"), right_eye=_eye(0, 0, "invalid"))
        ],
    )
    result = calibration_result_from_sdk(
        SimpleNamespace(status="success", calibration_points=[good, bad]),
        screen_size_px=SCREEN,
        success_status="success",
        valid_code="used",
    )
    assert result.succeeded and result.accuracy_deg is None
    first, second = result.points
    assert (first.x_screen_px, first.y_screen_px) == (960.0, 540.0)
    assert first.valid and first.mean_error_px == pytest.approx((3.0 + 4.0 + 0.0) / 3)
    assert (second.x_screen_px, second.y_screen_px) == pytest.approx((192.0, 108.0))
    assert not second.valid and second.mean_error_px is None
    assert result.n_invalid == 1
    failed = calibration_result_from_sdk(
        SimpleNamespace(status="failure", calibration_points=[]),
        screen_size_px=SCREEN,
        success_status="success",
        valid_code="used",
    )
    assert not failed.succeeded


@pytest.mark.skipif(not SDK_ABSENT, reason="the Tobii Pro SDK is installed")
def test_connect_without_the_sdk_names_the_install_command() -> None:
    driver = TobiiProDriver(screen_size_px=(1920, 1080))
    with pytest.raises(ImportError, match=r"pip install \.\[tobii\]"):
        driver.connect()
    assert driver.state is DriverState.DISCONNECTED


def test_module_imports_without_the_sdk() -> None:
    code = "import sys, tracking.drivers.tobii; print('tobii_research' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_bad_screen_size_is_rejected() -> None:
    with pytest.raises(ValueError, match="screen_width_px"):
        TobiiProDriver(screen_size_px=(0, 1080))
