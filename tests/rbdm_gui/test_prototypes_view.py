"""Smoke tests of rbdm_gui/screens/prototypes_view.py with pytest-qt (offscreen), on a precomputed result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.prototype_pipeline import PrototypeResult, save_result
from analysis.visualisation import label_colours, prototype_strip, stage_panels
from rbdm_gui.screens.prototypes_view import PrototypesView
from tests.rbdm_gui._prototypes import result_of_two_units as _result

pytestmark = pytest.mark.gui


@pytest.fixture
def result(rng: np.random.Generator) -> PrototypeResult:
    return _result(rng)


def test_browse_sequences_stages_and_clusters(qtbot, result: PrototypeResult) -> None:  # type: ignore[no-untyped-def]
    view = PrototypesView(result)
    qtbot.addWidget(view)
    assert view.sequence_list.count() == 12
    assert view.table.rowCount() == 3  # even, odd, Entire dataset
    assert view.unit_box.count() == 2
    view.select_sequence(3)
    sequence = result.sequences[3]
    assert view.stage_list.count() == sequence.prototype.n_stages == 4
    assert view.prototype_label.text() == str(sequence.prototype)
    expected = prototype_strip(stage_panels(result, 3), label_colours(result.units), x=0.25, scale=3)
    np.testing.assert_array_equal(view.strip, expected)
    assert view.strip_label.pixmap().width() == expected.shape[1]
    view.select_stage(2)
    assert view.detail_overlay.pixmap().width() == 16 * 5
    view.unit_box.setCurrentText("B")
    assert "2 clusters" in view.cluster_label.toolTip()


def test_the_legend_names_each_unit_in_its_strip_colour(qtbot, result: PrototypeResult) -> None:  # type: ignore[no-untyped-def]
    view = PrototypesView(result)
    qtbot.addWidget(view)
    legend = view.legend_label.text()
    for unit, (r, g, b) in label_colours(result.units).items():
        assert f'color:#{r:02x}{g:02x}{b:02x}">&#9632;</span>&nbsp;{unit}' in legend


def test_top_x_and_map_source_redraw_the_strip(qtbot, result: PrototypeResult) -> None:  # type: ignore[no-untyped-def]
    view = PrototypesView(result)
    qtbot.addWidget(view)
    view.select_sequence(1)
    view.x_box.setValue(80.0)
    expected = prototype_strip(stage_panels(result, 1), label_colours(result.units), x=0.8, scale=3)
    np.testing.assert_array_equal(view.strip, expected)
    view.source_box.setCurrentText("stage")
    own = prototype_strip(
        stage_panels(result, 1, source="stage"), label_colours(result.units), x=0.8, scale=3
    )
    np.testing.assert_array_equal(view.strip, own)


def test_open_result_file_and_export_png(qtbot, result: PrototypeResult, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    view = PrototypesView()
    qtbot.addWidget(view)
    assert not view.export_button.isEnabled()
    with pytest.raises(ValueError, match="no prototype strip"):
        view.export_png(tmp_path / "none.png")
    with qtbot.waitSignal(view.result_changed):
        view.open_result(save_result(tmp_path / "result.npz", result))
    view.select_sequence(5)
    path = view.export_png(tmp_path / "strip.png")
    assert view.strip is not None
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    height = view.strip.shape[0]
    np.testing.assert_array_equal(pixels[:height], view.strip)
    legend = pixels[height:].reshape(-1, 3)  # old code: the strip alone, no legend
    assert len(legend) and view._colours
    for colour in view._colours.values():
        assert (legend == np.array(colour, dtype=np.uint8)).all(axis=1).any(), colour


def test_compute_runs_on_a_worker_and_shows_the_result(qtbot) -> None:  # type: ignore[no-untyped-def]
    def compute(progress, cancelled):  # type: ignore[no-untyped-def]
        progress(0.5, "half way")
        return _result(np.random.default_rng(1))

    view = PrototypesView(compute=compute)
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.result_changed, timeout=10_000):
        view.start_compute()
    assert view.result is not None and view.sequence_list.count() == 12
    assert view.compute_button.isEnabled()


def test_compute_failure_is_shown(qtbot) -> None:  # type: ignore[no-untyped-def]
    def compute(progress, cancelled):  # type: ignore[no-untyped-def]
        raise ValueError("no model here")

    view = PrototypesView(compute=compute)
    qtbot.addWidget(view)
    task = view.start_compute()
    qtbot.waitUntil(lambda: task.done, timeout=10_000)
    assert "no model here" in view.status.text()
