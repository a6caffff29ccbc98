"""What the Temporal prototypes screen shows, computed without Qt (TP §3.3–§3.5, Table 1)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from analysis.prototype_pipeline import PrototypeResult
from analysis.visualisation import bwr_heatmap, label_colours, stage_panels, top_x_overlay, upscale
from rbdm_gui.workflows.prototypes import (
    DETAIL_SCALE,
    cluster_row,
    cluster_summary,
    export_name,
    legend_html,
    sequence_title,
    stage_detail,
    stage_titles,
    table_cells,
)
from tests.rbdm_gui._prototypes import result_of_two_units

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def result(rng: np.random.Generator) -> PrototypeResult:
    return result_of_two_units(rng)


def test_the_module_imports_no_qt() -> None:
    code = "import sys, rbdm_gui.workflows.prototypes; print('PySide6' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_titles_name_sequences_and_stages(result: PrototypeResult) -> None:
    sequence = result.sequences[3]
    assert sequence_title(sequence) == f"s/3  [odd]  {sequence.prototype.n_stages} stages"
    titles = stage_titles(sequence)
    assert len(titles) == sequence.prototype.n_stages == 4
    assert titles[0] == f"frames 0–{sequence.stages[0].stop_frame - 1}: (NONE)"  # no unit in frame 0
    assert all(t.startswith("frames ") for t in titles)
    assert export_name(sequence) == "s_3.png" and export_name(None) == "prototype.png"


def test_table_one_as_text(result: PrototypeResult) -> None:
    columns, rows = table_cells(result)
    assert columns == list(result.table.columns) and len(rows) == 3  # even, odd, Entire dataset
    for row, values in zip(rows, result.table.to_rows(), strict=True):
        assert row == [f"{v:.3f}" if isinstance(v, float) else str(v) for v in values]


def test_the_stage_detail_is_its_top_x_projection_and_heatmap(result: PrototypeResult) -> None:
    colours = label_colours(result.units)
    overlay, heatmap = stage_detail(result, "s/3", 2, colours, source="stage", x=0.5)
    panel = stage_panels(result, "s/3", source="stage")[2]
    expected = top_x_overlay(panel.frame, panel.relevance_by_name, colours, x=0.5)
    np.testing.assert_array_equal(overlay, upscale(expected, factor=DETAIL_SCALE))
    total = sum(np.asarray(m, dtype=np.float64) for m in panel.relevance_by_name.values())
    np.testing.assert_array_equal(heatmap, upscale(bwr_heatmap(total), factor=DETAIL_SCALE))
    assert overlay.shape == heatmap.shape == (16 * DETAIL_SCALE, 16 * DETAIL_SCALE, 3)


def test_a_units_clusters_side_by_side_and_counted(result: PrototypeResult) -> None:
    colours = label_colours(result.units)
    outcome = result.spray["B"]
    row = cluster_row(result, "B")
    assert row is not None and row.dtype == np.uint8
    assert row.shape == (32, outcome.n_clusters * 32 + (outcome.n_clusters - 1) * 4, 3)
    assert cluster_summary(result, "B", colours).startswith(f"B: {outcome.n_clusters} clusters of ")
    assert "2 clusters" in cluster_summary(result, "B", colours)


def test_the_legend_has_each_units_colour(result: PrototypeResult) -> None:
    colours = label_colours(result.units)
    html = legend_html(colours)
    for unit, (r, g, b) in colours.items():
        assert f'color:#{r:02x}{g:02x}{b:02x}">&#9632;</span>&nbsp;{unit}' in html
