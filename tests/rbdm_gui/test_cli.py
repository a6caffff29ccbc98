from __future__ import annotations

import csv
from pathlib import Path

import pytest

from analysis.metrics import ComparisonTable
from rbdm_gui.cli.main import COMMANDS, build_parser, main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for command in COMMANDS:
        assert command.name in text


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: rbdm" in capsys.readouterr().out


def test_every_command_has_its_own_help() -> None:
    parser = build_parser()
    for command in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([command.name, "--help"])
        assert exit_info.value.code == 0


def test_geometry_prints_the_paper_span(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["geometry", "--image-px", "48"]) == 0
    text = capsys.readouterr().out
    assert "261.79 screen px" in text and "c 1.780 px" in text


def test_bad_input_is_an_error_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["geometry", "--distance-cm", "-5"]) == 2
    assert "distance_cm must be a finite number > 0" in capsys.readouterr().err


def test_demo_writes_table_one_and_the_figure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--no-model", "--out", str(tmp_path), "--size", "48", "--viewers", "3"]) == 0
    table = ComparisonTable.from_csv((tmp_path / "table1.csv").read_text())
    assert table.pairs == (("U1", "U2"), ("U1", "U3"), ("U2", "U3"))
    for pair in table.pairs:
        assert 0.0 < table.value(*pair, "zero_measure") <= 1.0
    with (tmp_path / "stimuli.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 * 3 and rows[0]["stimulus"] == "neutral"
    assert (tmp_path / "comparison.png").stat().st_size > 10_000
    assert "RBDM Table 1" in capsys.readouterr().out


def test_demo_refuses_a_missing_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--model", str(tmp_path / "none.keras"), "--out", str(tmp_path)]) == 2
    assert "rbdm train-trainer" in capsys.readouterr().err


def test_lazily_loaded_commands_run_their_cmd_function(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # rbdm_gui.cli.commands_import.cmd_import_trainer, found by name when the command runs
    assert main(["import-trainer", "--out", str(tmp_path / "t.keras")]) == 2
    assert "give either a model file or --fer" in capsys.readouterr().err
