from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.geometry import (
    FWHM_PER_C,
    VISUAL_SPAN_DEG,
    ScreenGeometry,
    StimulusRect,
    inside_stimulus,
    screen_to_image,
)


def test_paper_setup_gives_the_expected_visual_span_and_c() -> None:
    geometry = ScreenGeometry()  # RBDM §5.3.1: 27", 2560×1440, 70 cm
    px_per_cm = math.hypot(2560, 1440) / (27 * 2.54)
    span_px = 2 * 70 * math.tan(math.radians(2.5)) * px_per_cm
    assert geometry.px_per_cm == pytest.approx(px_per_cm)
    assert geometry.visual_span_px() == pytest.approx(span_px)
    assert geometry.visual_span_px() == pytest.approx(261.79, abs=0.01)
    assert geometry.gaussian_c() == pytest.approx(0.17 * span_px)


def test_c_makes_the_fwhm_forty_percent_of_the_span() -> None:
    geometry = ScreenGeometry()
    c = geometry.gaussian_c()
    half_width = FWHM_PER_C * c / 2
    assert math.exp(-(half_width**2) / (2 * c**2)) == pytest.approx(0.5, abs=0.002)
    assert FWHM_PER_C * c / geometry.visual_span_px() == pytest.approx(0.40, abs=0.001)


def test_span_grows_with_distance_and_angle() -> None:
    near, far = ScreenGeometry(distance_cm=50.0), ScreenGeometry(distance_cm=90.0)
    assert near.visual_span_px() < far.visual_span_px()
    assert near.visual_span_px(2.0) < near.visual_span_px(5.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"distance_cm": -70.0}, "distance_cm"),
        ({"diagonal_in": 0.0}, "diagonal_in"),
        ({"width_px": 0}, "resolution"),
        ({"distance_cm": float("nan")}, "distance_cm"),
    ],
)
def test_impossible_screens_cannot_exist(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ScreenGeometry(**kwargs)  # type: ignore[arg-type]


def test_bad_angles_are_refused() -> None:
    with pytest.raises(ValueError, match="angle_deg"):
        ScreenGeometry().visual_span_px(0.0)
    with pytest.raises(ValueError, match="below 180"):
        ScreenGeometry().visual_span_px(180.0)


def test_stimulus_is_centred_and_shrinks_on_small_screens() -> None:
    assert ScreenGeometry().stimulus_rect() == StimulusRect(680.0, 120.0, 1200.0, 1200.0)
    small = ScreenGeometry(width_px=1280, height_px=800, diagonal_in=13.3)
    rect = small.stimulus_rect()
    assert (rect.width_px, rect.height_px) == (800.0, 800.0)
    assert (rect.x_px, rect.y_px) == (240.0, 0.0)


def test_screen_to_image_maps_corners_and_drops_outside_points() -> None:
    rect = ScreenGeometry().stimulus_rect()
    points = [[680, 120], [1879, 1319], [679.9, 500], [1880, 500], [1000, 119], [1000, 1320]]
    mapped = screen_to_image(points, rect, (1200, 1200))
    np.testing.assert_allclose(mapped, [[0, 0], [1199, 1199]])
    assert inside_stimulus(points, rect).tolist() == [True, True, False, False, False, False]


def test_screen_to_image_scales_to_small_images() -> None:
    rect = ScreenGeometry().stimulus_rect()
    centre = [[rect.x_px + 600 - 0.5, rect.y_px + 600 - 0.5]]  # the point between the 4 centre pixels
    np.testing.assert_allclose(screen_to_image(centre, rect, (48, 48)), [[23.5, 23.5]])


def test_screen_to_image_of_nothing_is_empty() -> None:
    out = screen_to_image(np.zeros((0, 2)), ScreenGeometry().stimulus_rect(), (48, 48))
    assert out.shape == (0, 2)


@given(st.floats(-3000, 6000), st.floats(-3000, 6000))
def test_mapped_points_land_inside_the_image(x: float, y: float) -> None:
    rect = ScreenGeometry().stimulus_rect()
    mapped = screen_to_image([[x, y]], rect, (48, 64))
    assert len(mapped) == int(inside_stimulus([[x, y]], rect)[0])
    if len(mapped):
        assert -0.5 <= mapped[0, 0] < 63.5 and -0.5 <= mapped[0, 1] < 47.5


def test_degrees_from_screen_centre() -> None:
    geometry = ScreenGeometry()
    centre = (1280.0, 720.0)
    half_span = geometry.visual_span_px(5.0) / 2
    deg = geometry.screen_px_to_deg([centre, (centre[0] + half_span, centre[1])])
    np.testing.assert_allclose(deg, [[0.0, 0.0], [2.5, 0.0]], atol=1e-9)


def test_nan_points_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        screen_to_image([[np.nan, 1.0]], ScreenGeometry().stimulus_rect(), (48, 48))


def test_every_visual_angle_default_is_visual_span_deg() -> None:
    """The 5° visual span has one home (issue 20): each default reads VISUAL_SPAN_DEG."""
    import inspect

    from analysis.experiment import ExperimentConfig
    from analysis.masked_dataset import perceptive_options
    from analysis.perception import visual_span_in_image

    assert VISUAL_SPAN_DEG == 5.0  # RBDM §5.3.2, after Blignaut 2010
    defaults = [
        inspect.signature(f).parameters["angle_deg"].default
        for f in (
            ScreenGeometry.visual_span_px,
            ScreenGeometry.gaussian_c,
            visual_span_in_image,
            perceptive_options,
        )
    ]
    assert defaults == [VISUAL_SPAN_DEG] * 4
    assert ExperimentConfig(dataset="d", trainer="t").angle_deg == VISUAL_SPAN_DEG
