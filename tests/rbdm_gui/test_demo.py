"""Tests for rbdm_gui.cli.demo: ``rbdm demo`` on synthetic faces without a model (no TensorFlow)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from analysis.labels import LABELS
from analysis.metrics import ComparisonTable
from rbdm_gui.cli.demo import add_demo, cmd_demo


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_demo(parser)
    return parser.parse_args(list(argv))


def test_the_defaults_are_the_papers_two_annotators_and_the_bundled_trainer() -> None:
    args = _args()
    assert args.viewers == 2 and args.analyzer == "deep_taylor" and args.model is None and not args.no_model


def test_without_a_model_the_annotators_are_compared_and_the_masks_come_from_gaze(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cmd_demo(_args("--no-model", "--out", str(tmp_path), "--size", "32", "--seed", "3")) == 0
    table = ComparisonTable.from_csv((tmp_path / "table1.csv").read_text())
    assert table.pairs == (("U1", "U2"),)
    stimuli = (tmp_path / "stimuli.csv").read_text().splitlines()
    assert len(stimuli) == 1 + len(LABELS)  # a header, then one row per face (one pair each)
    assert (tmp_path / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "no model: masks from U1's gaze" in capsys.readouterr().out


def test_the_same_seed_gives_the_same_table(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert cmd_demo(_args("--no-model", "--out", str(tmp_path / name), "--size", "32")) == 0
    assert (tmp_path / "a" / "table1.csv").read_text() == (tmp_path / "b" / "table1.csv").read_text()


def test_no_annotator_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--viewers must be at least 1"):
        cmd_demo(_args("--no-model", "--viewers", "0", "--out", str(tmp_path)))
