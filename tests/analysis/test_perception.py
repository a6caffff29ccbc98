from __future__ import annotations

import numpy as np
import pytest

from analysis.geometry import ScreenGeometry
from analysis.metrics import zero_measure
from analysis.perception import (
    VisualSpan,
    compare_stimulus,
    fixation_heatmap,
    mean_fixation_count,
    stimulus_heatmaps,
    visual_span_in_image,
)


def test_span_scales_from_screen_to_image_pixels() -> None:
    geometry = ScreenGeometry()
    span = visual_span_in_image(geometry, geometry.stimulus_rect(), (48, 48))
    assert span.c == pytest.approx(geometry.gaussian_c() * 48 / 1200)
    assert span.radius == pytest.approx(geometry.visual_span_px() * 48 / 1200)
    assert span.c == pytest.approx(1.78, abs=0.01)


def test_fixation_heatmap_is_the_paper_sum_truncated_at_the_span() -> None:
    span = VisualSpan(c=2.0, radius=5.0)
    points = np.array([[10.0, 12.0], [20.0, 5.0]])
    heat = fixation_heatmap(points, (24, 32), span)
    rows, cols = np.mgrid[0:24, 0:32]
    expected = np.zeros((24, 32))
    for x, y in points:
        d2 = (cols - x) ** 2 + (rows - y) ** 2
        expected += np.where(d2 <= 25.0, np.exp(-d2 / 8.0), 0.0)
    np.testing.assert_allclose(heat, expected, rtol=1e-6, atol=1e-7)


def test_no_fixations_give_an_empty_heatmap() -> None:
    heat = fixation_heatmap(np.zeros((0, 2)), (8, 8), VisualSpan(c=1.0, radius=3.0))
    assert heat.shape == (8, 8) and not heat.any()


def test_mean_fixation_count_rounds_and_refuses_nothing() -> None:
    assert mean_fixation_count([9, 12, 14]) == 12
    assert mean_fixation_count([0, 0]) == 1
    with pytest.raises(ValueError, match="at least one"):
        mean_fixation_count([])
    with pytest.raises(ValueError, match=">= 0"):
        mean_fixation_count([3, -1])


def test_stimulus_comparison_has_table_one_rows_in_order() -> None:
    span = VisualSpan(c=2.0, radius=6.0)
    u1 = np.array([[10.0, 10.0], [20.0, 12.0]])
    u2 = np.array([[11.0, 10.0], [30.0, 30.0]])
    relevance = np.zeros((40, 40))
    relevance[10, 10] = relevance[12, 20] = 1.0
    table = compare_stimulus({"U1": u1, "U2": u2}, {"model": relevance}, (40, 40), span, n_points=2)
    assert table.pairs == (("U1", "U2"), ("U1", "model"), ("U2", "model"))
    # The model's top-2 pixels are exactly U1's fixations: identical heatmaps.
    assert table.value("U1", "model", "zero_measure") == pytest.approx(1.0)
    assert table.value("U1", "model", "cosine_distance") == pytest.approx(0.0, abs=1e-6)
    maps = stimulus_heatmaps({"U1": u1, "U2": u2}, {}, (40, 40), span, n_points=2)
    assert table.value("U1", "U2", "zero_measure") == pytest.approx(zero_measure(maps["U1"], maps["U2"]))


def test_mismatched_relevance_and_clashing_ids_are_refused() -> None:
    span = VisualSpan(c=1.0, radius=3.0)
    with pytest.raises(ValueError, match="shape"):
        stimulus_heatmaps({}, {"m": np.ones((5, 5))}, (6, 6), span, n_points=1)
    with pytest.raises(ValueError, match="differ"):
        stimulus_heatmaps({"m": [[1, 1]]}, {"m": np.ones((6, 6))}, (6, 6), span, n_points=1)


def test_impossible_spans_cannot_exist() -> None:
    with pytest.raises(ValueError, match="radius"):
        VisualSpan(c=1.0, radius=0.0)
