"""Tests for ``rbdm train-trainer --preset`` (issue 13): presets fill the recipe, explicit options win."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from analysis.training import TRAINER_PRESETS
from rbdm_gui.cli.commands_models import _resolve_preset, command_line
from rbdm_gui.cli.main import build_parser, main


def _resolved(*argv: str) -> dict[str, object]:
    return vars(_resolve_preset(build_parser().parse_args(["train-trainer", *argv])))


def test_without_a_preset_the_recipe_is_the_papers() -> None:
    args = _resolved()
    assert args["preset"] == "paper"
    assert (args["architecture"], args["epochs"], args["batch_size"], args["learning_rate"]) == (
        "small_cnn",
        10,
        32,
        1e-3,
    )
    assert (args["augmentation"], args["schedule"], args["label_smoothing"], args["class_weight_power"]) == (
        "paper",
        "constant",
        0.0,
        1.0,
    )
    assert args["options"] == {}


def test_the_fer_preset_sets_the_whole_recipe() -> None:
    args = _resolved("--preset", "fer_vgg")
    fer = TRAINER_PRESETS["fer_vgg"]
    assert args["architecture"] == "vgg_bn" and args["epochs"] == fer.epochs
    assert (args["batch_size"], args["learning_rate"], args["schedule"]) == (64, fer.learning_rate, "cosine")
    assert (args["augmentation"], args["label_smoothing"], args["class_weight_power"]) == ("light", 0.1, 0.25)


def test_options_given_explicitly_win_over_the_preset() -> None:
    args = _resolved(
        "--preset", "fer_vgg", "--epochs", "3", "--learning-rate", "0.01", "--augmentation", "none",
        "--class-weight-power", "1", "--options", '{"dropout": 0.0}',
    )  # fmt: skip
    assert (args["epochs"], args["learning_rate"], args["augmentation"]) == (3, 0.01, "none")
    assert args["class_weight_power"] == 1.0 and args["options"] == {"dropout": 0.0}
    assert args["architecture"] == "vgg_bn" and args["schedule"] == "cosine"


def test_the_recorded_command_of_a_preset_run_names_every_recipe_option() -> None:
    parser = build_parser()
    resolved = _resolve_preset(parser.parse_args(["train-trainer", "--preset", "fer_vgg"]))
    line = command_line(resolved)
    for flag in ("--preset fer_vgg", "--architecture vgg_bn", "--schedule cosine", "--label-smoothing 0.1"):
        assert flag in line
    again = _resolve_preset(parser.parse_args(shlex.split(line)[1:]))
    assert {k: v for k, v in vars(again).items() if k != "run"} == {
        k: v for k, v in vars(resolved).items() if k != "run"
    }


def test_an_unknown_preset_is_refused_with_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train-trainer", "--preset", "huge"])
    assert "fer_vgg" in capsys.readouterr().err


def test_the_help_describes_each_preset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train-trainer", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "fer_vgg:" in text and "cosine" in text and "paper:" in text


@pytest.mark.tf
def test_a_fer_preset_run_writes_its_recipe_into_the_card(tmp_path: Path) -> None:
    out = tmp_path / "t.keras"
    argv = ["train-trainer", "--dataset", "synthetic:n=2,size=32", "--size", "32", "--preset", "fer_vgg"]
    argv += [
        "--epochs",
        "1",
        "--options",
        '{"filters": [4, 8], "convs_per_block": [1, 1]}',
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    card = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert card["architecture"] == "vgg_bn"
    training = card["training"]
    assert (training["schedule"], training["label_smoothing"], training["class_weight_power"]) == (
        "cosine",
        0.1,
        0.25,
    )
    assert training["augmentation"]["rotation_deg"] == 10.0
    assert "--preset fer_vgg" in card["data"]["command"]
