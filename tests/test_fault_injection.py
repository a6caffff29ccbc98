"""Fault injection (issue 18): bad input never gives a silent wrong answer, never runs foreign code,
never destroys what a user had.

Each test feeds one kind of fault through the public API or the real ``rbdm`` command and asserts the
outcome the README's "Reliability" section counts: *refused* (a clear error naming the file or
argument and the next step), *kept* (what was on disk is intact), *flagged* (a documented "not
comparable" result or a warning instead of a wrong number) or *recovered* (recomputed, with a warning).
The classes are the sections below.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis import files, models
from analysis.errors import UnsafeModelError

ROOT = Path(__file__).resolve().parents[1]


def _enospc(*_args: Any, **_kwargs: Any) -> Any:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# --------------------------------------------------------------------------------------------------------
# Hostile model files: loading never runs code from the file
# --------------------------------------------------------------------------------------------------------

_LAMBDA_H5 = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    marker, out = sys.argv[1], sys.argv[2]
    inputs = tf.keras.Input((4,))
    x = tf.keras.layers.Lambda(lambda t, p=marker: (open(p, "w").close(), t)[1], name="evil")(inputs)
    outputs = tf.keras.layers.Dense(3, activation="softmax")(x)
    tf.keras.Model(inputs, outputs).save(out)
    """
)


def _lambda_config(name: str = "evil") -> dict[str, Any]:
    """A functional model's config whose Lambda layer holds marshalled Python code (as Keras 2 writes it)."""
    return {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": [
                {"class_name": "InputLayer", "config": {"name": "input_1", "batch_input_shape": [None, 4]}},
                {
                    "class_name": "Lambda",
                    "config": {
                        "name": name,
                        "function": ["4wEAAAAAAAAA", None, None],
                        "function_type": "lambda",
                    },
                    "inbound_nodes": [[["input_1", 0, 0, {}]]],
                },
            ],
        },
    }


@pytest.mark.tf
def test_a_legacy_h5_model_with_a_lambda_layer_is_refused_before_its_code_runs(tmp_path: Path) -> None:
    marker, model_file = tmp_path / "marker", tmp_path / "evil.h5"
    subprocess.run([sys.executable, "-c", _LAMBDA_H5, str(marker), str(model_file)], check=True, cwd=ROOT)
    marker.unlink()  # building the model ran the lambda once; loading must not
    with pytest.raises(UnsafeModelError, match=r"layer 'evil' is a Lambda layer.*was not loaded"):
        models.load_model_file(model_file)
    assert not marker.exists()
    renamed = tmp_path / "evil.keras"  # the suffix does not decide how the file is read
    model_file.rename(renamed)
    with pytest.raises(UnsafeModelError, match="evil"):
        models.load_model_file(renamed)
    assert not marker.exists()


def test_the_rbdm_commands_refuse_a_lambda_model_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h5py = pytest.importorskip("h5py")
    model_file = tmp_path / "evil.h5"
    with h5py.File(model_file, "w") as handle:
        handle.attrs["model_config"] = json.dumps(_lambda_config()).encode()
    from rbdm_gui.cli.main import main

    command = ["saliency", "--dataset", "synthetic:n=8", "--model", str(model_file)]
    assert main([*command, "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "evil.h5" in err and "Lambda" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (_lambda_config("shift"), "layer 'shift' is a Lambda layer"),
        (
            {"class_name": "Dense", "config": {"name": "d", "activation": {"class_name": "__lambda__"}}},
            "layer 'd' holds a serialised Python function",
        ),
        (
            {"module": "os", "class_name": "system", "config": {"name": "boom"}, "registered_name": None},
            "os.system",
        ),
    ],
)
def test_model_configs_that_hold_code_are_refused_without_keras(
    tmp_path: Path, config: dict[str, Any], named: str
) -> None:
    keras_file = tmp_path / "m.keras"
    with zipfile.ZipFile(keras_file, "w") as archive:
        archive.writestr("config.json", json.dumps(config))
        archive.writestr("metadata.json", "{}")
    with pytest.raises(UnsafeModelError, match=named):
        models.check_model_file(keras_file)


def test_model_files_that_are_not_keras_models_are_refused_by_name(tmp_path: Path) -> None:
    saved_model = tmp_path / "exported"
    (saved_model / "variables").mkdir(parents=True)
    (saved_model / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(ValueError, match=r"'.*exported' is a folder \(a TensorFlow SavedModel\?\)"):
        models.check_model_file(saved_model)
    text = tmp_path / "notes.keras"
    text.write_text("not a model")
    with pytest.raises(ValueError, match=r"notes\.keras' is neither a \.keras model"):
        models.check_model_file(text)
    h5py = pytest.importorskip("h5py")
    weights = tmp_path / "weights.h5"
    with h5py.File(weights, "w") as handle:
        handle.create_dataset("kernel", data=np.zeros(3))
    with pytest.raises(ValueError, match=r"weights\.h5' holds no model configuration"):
        models.check_model_file(weights)
    truncated = tmp_path / "cut.keras"
    with zipfile.ZipFile(truncated, "w") as archive:
        archive.writestr("metadata.json", "{}")
    with pytest.raises(ValueError, match=r"cut\.keras.*damaged or not a Keras model"):
        models.check_model_file(truncated)


# --------------------------------------------------------------------------------------------------------
# Interrupted and failing writes: the old file stays intact
# --------------------------------------------------------------------------------------------------------


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "manifest.json"
    target.write_text('{"old": true}')
    with pytest.raises(OSError, match="No space left"), files.atomic_write(target) as handle:
        handle.write('{"new": ')
        _enospc()
    assert target.read_text() == '{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
    files.atomic_write_text(target, '{"new": true}')
    assert json.loads(target.read_text()) == {"new": True}


def test_replace_together_changes_no_file_when_one_write_fails(tmp_path: Path) -> None:
    model, card = tmp_path / "m.keras", tmp_path / "m.json"
    model.write_bytes(b"old model")
    card.write_text("old card")

    def half_then_full(path: Path) -> None:
        path.write_text("new car")
        _enospc()

    with pytest.raises(OSError):
        files.replace_together({model: lambda p: p.write_bytes(b"new model"), card: half_then_full})
    assert model.read_bytes() == b"old model" and card.read_text() == "old card"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.keras"]


def test_a_file_size_limit_during_a_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "cache.npz"
    target.write_bytes(b"x" * 100)
    script = textwrap.dedent(
        """
        import resource, signal, sys
        from analysis.files import atomic_write_bytes
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        try:
            atomic_write_bytes(sys.argv[1], b"y" * 100_000)
        except OSError as err:
            print("refused:", err)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "refused" in done.stdout
    assert target.read_bytes() == b"x" * 100
    assert [p.name for p in tmp_path.iterdir()] == ["cache.npz"]


def test_an_atomic_write_keeps_the_old_files_permissions(tmp_path: Path) -> None:
    kept = tmp_path / "kept.json"
    kept.write_text("{}")
    os.chmod(kept, 0o640)
    files.atomic_write_text(kept, '{"new": 1}')
    fresh = files.atomic_write_text(tmp_path / "fresh.json", "{}")
    assert (kept.stat().st_mode & 0o777, fresh.stat().st_mode & 0o777) == (0o640, 0o644)


def test_keep_damaged_renames_aside_and_never_overwrites_an_earlier_copy(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{ one")
    first = files.keep_damaged(path)
    path.write_text("{ two")
    second = files.keep_damaged(path)
    assert first != second and not path.exists()
    assert first.read_text() == "{ one" and second.read_text() == "{ two"
    assert first.name.startswith("settings.json.damaged-")


@pytest.mark.tf
def test_a_failed_save_keeps_the_previous_model_and_its_card(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis import training

    images = rng.random((12, 24, 24), dtype=np.float32)
    labels = np.arange(12) % 3
    result = training.train_trainer(images, labels, images, labels, epochs=1, n_classes=3, batch_size=12)
    path = tmp_path / "trainer.keras"
    training.save_trained(path, result, data={"run": "first"})
    before = path.read_bytes(), training.card_path(path).read_text()
    tf = models.ensure_graph_mode()

    def full_disk(self: Any, filepath: Any, *args: Any, **kwargs: Any) -> None:
        Path(filepath).write_bytes(b"PK\x03\x04 truncated")
        _enospc()

    monkeypatch.setattr(tf.keras.Model, "save", full_disk)
    with pytest.raises(OSError, match="No space left"):
        training.save_trained(path, result, data={"run": "second"})
    assert (path.read_bytes(), training.card_path(path).read_text()) == before
    monkeypatch.undo()
    model, card = training.load_trained(path)
    assert card.data == {"run": "first"} and model.n_classes == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trainer.json", "trainer.keras"]


class _FixedExplainer:
    """Stands in for a model: relevance = the image, explaining class 0."""

    calls = 0

    def explain(self, x: Any, **_kwargs: Any) -> Any:
        from analysis.saliency import Explanation

        _FixedExplainer.calls += 1
        n = len(x)
        zeros = np.zeros(n, dtype=np.float32)
        return Explanation(np.asarray(x, dtype=np.float32), np.zeros(n, dtype=np.int64), zeros, zeros)


@pytest.fixture
def fixed_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from analysis import saliency

    monkeypatch.setattr(saliency, "explainer_for", lambda *_a, **_k: _FixedExplainer())
    model_file = tmp_path / "model.keras"
    model_file.write_bytes(b"stands for a model")
    return model_file


@pytest.mark.parametrize("damage", ["empty", "truncated", "not a zip"])
def test_a_damaged_relevance_cache_is_recomputed_with_a_warning(
    tmp_path: Path, fixed_model: Path, rng: np.random.Generator, damage: str
) -> None:
    from analysis.errors import AnalysisWarning
    from analysis.saliency import compute_relevance_maps

    images = rng.random((3, 8, 8)).astype(np.float32)
    first = compute_relevance_maps(fixed_model, images, ["a", "b", "c"], cache_dir=tmp_path / "cache")
    assert first.cache_file is not None and not first.from_cache
    data = first.cache_file.read_bytes()
    first.cache_file.write_bytes(
        {"empty": b"", "truncated": data[: len(data) // 2], "not a zip": b"x" * 64}[damage]
    )
    with pytest.warns(AnalysisWarning, match=r"relevance cache file .*\.npz' is damaged or incomplete"):
        again = compute_relevance_maps(fixed_model, images, ["a", "b", "c"], cache_dir=tmp_path / "cache")
    assert not again.from_cache
    np.testing.assert_array_equal(again.maps, first.maps)
    third = compute_relevance_maps(fixed_model, images, ["a", "b", "c"], cache_dir=tmp_path / "cache")
    assert third.from_cache  # the damaged file was replaced by a whole one
    np.testing.assert_array_equal(third.maps, first.maps)


def test_a_failed_cache_write_leaves_no_partial_file(
    tmp_path: Path, fixed_model: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analysis.saliency import compute_relevance_maps

    def full_disk(file: Any, **_arrays: Any) -> None:
        (file if hasattr(file, "write") else Path(file).open("wb")).write(b"PK\x03\x04")
        _enospc()

    monkeypatch.setattr(np, "savez", full_disk)
    images = rng.random((2, 8, 8)).astype(np.float32)
    with pytest.raises(OSError, match="No space left"):
        compute_relevance_maps(fixed_model, images, ["a", "b"], cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_failed_run_record_write_keeps_the_old_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rbdm_gui.workflows.experiment_worker import mark_run

    record = tmp_path / "run.json"
    record.write_text('{"status": "running"}\n')
    real_open = Path.open

    def open_full_disk(self: Path, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "w" in mode:
            handle = real_open(self, mode, *args, **kwargs)
            handle.write(b"{" if "b" in mode else "{")
            handle.close()
            _enospc()
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_full_disk)
    monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: open_full_disk(self, "w"))
    monkeypatch.setattr(Path, "write_bytes", lambda self, *a, **k: open_full_disk(self, "wb"))
    with pytest.raises(OSError, match="No space left"):
        mark_run(tmp_path, status="cancelled")
    monkeypatch.undo()
    assert record.read_text() == '{"status": "running"}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


# --------------------------------------------------------------------------------------------------------
# Damaged or foreign files of the formats the project reads
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"name,size\nx,1\n", "its columns are"), (b"\xff\xfe\x00bad", "not UTF-8")],
)
def test_a_foreign_manifest_is_refused_by_name(tmp_path: Path, content: bytes, problem: str) -> None:
    from analysis.errors import AnalysisError
    from analysis.masked_dataset import read_manifest

    (tmp_path / "manifest.csv").write_bytes(content)
    with pytest.raises(AnalysisError, match=rf"manifest\.csv' is not a masked-dataset manifest \({problem}"):
        read_manifest(tmp_path)


# --------------------------------------------------------------------------------------------------------
# Read-only commands open studies read-only
# --------------------------------------------------------------------------------------------------------


def _compare(study: Path, out: Path, *extra: str) -> int:
    from rbdm_gui.cli.main import main

    return main(["compare", str(study), "--out", str(out), "--no-model", "--figure-stimuli", "0", *extra])


def test_compare_does_not_initialise_an_empty_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "typo.sqlite"
    empty.touch()
    assert _compare(empty, tmp_path / "out") == 2
    assert "typo.sqlite is empty, not an RBDM Studio session store" in capsys.readouterr().err
    assert empty.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["typo.sqlite"]


def test_compare_reads_an_old_schema_without_migrating_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    from tests.tracking._study import write_study
    from tracking import store

    study = tmp_path / "old.sqlite"
    write_study(study)
    before = study.read_bytes()
    old = store.SCHEMA_VERSION  # pretend this version is one step behind the current one
    monkeypatch.setattr(store, "SCHEMA_VERSION", old + 1)
    monkeypatch.setitem(store._MIGRATIONS, old, "CREATE TABLE newer_feature (x INTEGER)")
    assert _compare(study, tmp_path / "out") == 0
    assert (tmp_path / "out" / "table1.csv").is_file()
    assert study.read_bytes() == before
    with sqlite3.connect(f"{study.as_uri()}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (old,)
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'newer_feature'").fetchone() == (
            0,
        )
    conn.close()


@pytest.mark.skipif(not hasattr(os, "fork") or os.geteuid() != 0, reason="drops root in a child process")
def test_compare_reads_a_study_on_a_read_only_folder(tmp_path: Path) -> None:
    import analysis.study  # noqa: F401 - imported here: the unprivileged child cannot read the stdlib
    import rbdm_gui.cli.commands_models
    import rbdm_gui.cli.compare
    import rbdm_gui.workflows.figures  # noqa: F401
    import tracking.study  # noqa: F401
    from tests.tracking._study import write_study

    folder = tmp_path / "readonly"
    folder.mkdir()
    study = folder / "study.sqlite"
    write_study(study)
    out = tmp_path / "out"
    out.mkdir()
    os.chmod(study, 0o444)
    os.chmod(folder, 0o555)
    for parent in (tmp_path, *tmp_path.parents):
        os.chmod(parent, os.stat(parent).st_mode | 0o005)  # let the unprivileged child reach it
    os.chmod(out, 0o777)
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)  # nobody: the folder and the file are really read-only now
            code = _compare(study, out)
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    os.chmod(folder, 0o755)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (out / "table1.csv").is_file()


# --------------------------------------------------------------------------------------------------------
# Degenerate numbers: no gaze on the image is "not comparable", never perfect agreement
# --------------------------------------------------------------------------------------------------------


def test_a_map_that_is_zero_everywhere_is_not_comparable(rng: np.random.Generator) -> None:
    from analysis.metrics import METRICS, compare
    from analysis.study import study_table

    seen = rng.random((6, 6))
    table = compare({"U1": np.zeros((6, 6)), "U2": np.zeros((6, 6)), "M": seen})
    for row in table.rows:
        assert all(np.isnan(row.values)) and "not comparable" in row.note
    assert "U1 and U2 are zero everywhere" in table.rows[0].note
    assert len(table.notes) == 3 and table.notes[1].startswith("U1–M: not comparable: U1 is zero")
    looked = compare({"U1": seen, "U2": np.zeros((6, 6)), "M": seen})
    assert looked.value("U1", "M", "zero_measure") == 1.0 and looked.rows[1].note == ""
    study = study_table([looked, table])
    assert study.value("U1", "M", "zero_measure") == 1.0
    assert study.rows[1].note == "mean over 1 of 2 stimuli; 1 not comparable (a map zero everywhere)"
    assert np.isnan(study.value("U1", "U2", "spearman")) and "any of its 2 stimuli" in study.rows[0].note
    assert set(table.metrics) == set(METRICS)


def _off_image_study(path: Path) -> None:
    from tests.tracking._study import GEOMETRY, PARTICIPANTS, STIMULI, _record, session_settings
    from tracking.protocol import stimulus_order
    from tracking.store import SessionStore

    with SessionStore(path) as store:
        for k, participant in enumerate(PARTICIPANTS):
            pid = store.create_participant(participant)
            order = stimulus_order(STIMULI, seed=k + 1)
            sid = store.create_session(
                pid,
                settings=session_settings(),
                geometry=GEOMETRY,
                tracker="mouse",
                recogniser="keyboard",
                stimulus_order=order,
            )
            for position, stimulus in enumerate(order):  # only the fixation beside the image
                _record(store, sid, position, stimulus, np.zeros((0, 2)), "happy")


def test_compare_on_a_study_without_gaze_on_the_images_reports_not_comparable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analysis.metrics import ComparisonTable

    study = tmp_path / "study.sqlite"
    _off_image_study(study)
    assert _compare(study, tmp_path / "out") == 1
    captured = capsys.readouterr()
    assert "not comparable on any of its 3 stimuli" in captured.out
    assert "no pair could be compared" in captured.err
    table = ComparisonTable.from_csv((tmp_path / "out" / "table1.csv").read_text())
    assert table.pairs == (("P01", "P02"),) and all(np.isnan(table.rows[0].values))


def test_perceptive_masking_counts_only_fixations_on_the_image(tmp_path: Path) -> None:
    from rbdm_gui.cli.commands_models import study_fixation_counts
    from tests.tracking._study import STIMULI, stimulus_order, write_study

    study = tmp_path / "study.sqlite"
    truth = write_study(study)  # every trial also has one fixation beside the image
    expected = [
        len(truth[participant, stimulus])
        for k, participant in enumerate(("P01", "P02"))
        for stimulus in stimulus_order(STIMULI, seed=k + 1)
    ]
    assert sorted(study_fixation_counts(study)) == sorted(expected)


@pytest.mark.parametrize("rgb", [False, True])
def test_a_16_bit_grey_png_is_scaled_by_its_bit_depth(tmp_path: Path, rgb: bool) -> None:
    from PIL import Image

    from analysis.datasets.base import decode_image

    ramp = np.tile(np.linspace(0, 65535, 64).round().astype(np.uint16), (32, 1))  # mean 0.5
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    with Image.open(path) as opened:
        assert opened.mode.startswith("I")  # really a 16-bit file
    pixels = decode_image(path, rgb=rgb)
    assert pixels.shape == ((32, 64, 3) if rgb else (32, 64)) and pixels.dtype == np.float32
    assert pixels.mean() == pytest.approx(0.5, abs=1e-3)
    assert np.mean(pixels >= 1.0) < 0.05 and pixels.min() == 0.0
    small = decode_image(path, size=16, box_px=(0, 0, 32, 32))
    assert small.shape == (16, 16) and 0.0 <= small.min() and small.max() <= 0.5 + 1e-3


def test_a_model_with_fewer_outputs_than_the_data_has_labels_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analysis.models import check_labels_fit
    from rbdm_gui.cli.main import main

    check_labels_fit(3, [0, 2, 1], model="m")
    with pytest.raises(ValueError, match=r"has 3 outputs \(neutral, happy, sad\).*\['surprise'\]"):
        check_labels_fit(3, [0, 3], model="m")
    model = tmp_path / "three.keras"
    model.write_bytes(b"never read: the card tells the outputs")
    card = {
        "architecture": "small_cnn",
        "input_shape": [48, 48, 1],
        "labels": ["neutral", "happy", "sad"],
        "preprocessing": "",
        **{key: {} for key in ("data", "scores", "training", "versions")},
        "history": [],
    }
    (tmp_path / "three.json").write_text(json.dumps(card))
    command = ["saliency", "--dataset", "synthetic:n=16", "--model", str(model)]
    assert main([*command, "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    assert "three.keras' has 3 outputs" in err and "cannot predict" in err and "Traceback" not in err


# --------------------------------------------------------------------------------------------------------
# Damaged or foreign label files and arguments
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"weights": "imagenet"}, r"options may not set \['weights'\]"),
        ([0.35], "options must be a mapping"),
        ({"alpha": 0.35, "include_top": True}, r"\['include_top'\]"),
    ],
)
def test_builder_options_that_are_not_options_are_refused(options: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        models.build_model("MobileNetV2", input_shape=(32, 32, 3), options=options)


@pytest.mark.parametrize("text", ["[0.35]", '"alpha"', "{alpha: 1}"])
def test_options_on_the_command_line_must_be_a_json_object(
    text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from rbdm_gui.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["train-trainer", "--options", text])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --options" in err and "JSON" in err and "Traceback" not in err


@pytest.mark.parametrize("box", ["inf", "-inf", "nan", "0"])
def test_an_affectnet_face_box_that_is_not_a_box_is_refused_by_line(box: str) -> None:
    from analysis.datasets.affectnet import parse_affectnet_rows

    header = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks"]
    header += ["expression", "valence", "arousal"]
    row = ["1/a.jpg", "0", "0", box, "10", "", "1", "0.5", "0.5"]
    with pytest.raises(ValueError, match=r"training\.csv line 2: .*face box"):
        parse_affectnet_rows([header, row], split="train", source="training.csv")


def test_a_ferplus_row_without_votes_is_removed_not_neutral() -> None:
    from analysis.datasets.ferplus import parse_ferplus_rows

    header = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust"]
    header += ["fear", "contempt", "unknown", "NF"]
    rows = [
        header,
        ["Training", "fer0000000.png", *["0"] * 10],
        ["Training", "fer0000001.png", "9", *["0"] * 9],
    ]
    parsed = parse_ferplus_rows(rows)
    assert [row.image_name for row in parsed.rows] == ["fer0000001.png"]
    assert parsed.removed["no votes"] == 1


def _ck_sequence(root: Path, frames: list[str], peak: str, code: int = 5) -> Path:
    from PIL import Image

    sequence = root / "cohn-kanade-images" / "S005" / "001"
    sequence.mkdir(parents=True)
    for k, frame in enumerate(frames):
        Image.fromarray(np.full((8, 8), 20 * k, dtype=np.uint8)).save(sequence / f"S005_001_{frame}.png")
    emotion = root / "Emotion" / "S005" / "001"
    emotion.mkdir(parents=True)
    (emotion / f"S005_001_{peak}_emotion.txt").write_text(f"{code:.7e}\n")
    return sequence


def test_ckplus_takes_the_peak_frame_by_number_not_by_name(tmp_path: Path) -> None:
    from analysis.datasets.ckplus import CKPlusLoader

    _ck_sequence(tmp_path, [str(k) for k in range(1, 12)], peak="11")  # unpadded: "9" sorts after "11"
    entries = CKPlusLoader(tmp_path).entries("all")
    assert [(e.id, e.label) for e in entries] == [
        ("S005/001/S005_001_1", "neutral"),
        ("S005/001/S005_001_11", "happy"),
    ]


def test_ckplus_warns_and_leaves_out_a_sequence_whose_peak_frame_is_missing(tmp_path: Path) -> None:
    from analysis.datasets.ckplus import CKPlusLoader
    from analysis.errors import AnalysisWarning

    _ck_sequence(tmp_path, ["00000001", "00000002", "00000003"], peak="00000004")
    with pytest.warns(
        AnalysisWarning, match=r"emotion file names frame 4, which is missing \(frames 1, 2, 3\)"
    ):
        loader = CKPlusLoader(tmp_path)
    assert loader.entries("all") == ()


def test_ckplus_warns_about_missing_frames_before_the_peak(tmp_path: Path) -> None:
    from analysis.datasets.ckplus import CKPlusLoader
    from analysis.errors import AnalysisWarning

    _ck_sequence(tmp_path, ["00000001", "00000002", "00000005"], peak="00000005")
    with pytest.warns(AnalysisWarning, match=r"lacks frames \[3, 4\]"):
        loader = CKPlusLoader(tmp_path)
    assert [e.id.rsplit("_", 1)[1] for e in loader.entries("all")] == ["00000001", "00000005"]


# --------------------------------------------------------------------------------------------------------
# SIGKILL at random points, damaged studies, concurrent access
# --------------------------------------------------------------------------------------------------------

_REWRITE_FOREVER = textwrap.dedent(
    """
    import sys
    from analysis.files import atomic_write_bytes
    target, k = sys.argv[1], 0
    print("ready", flush=True)
    while True:
        k += 1
        atomic_write_bytes(target, (b"A" if k % 2 else b"B") * 3_000_000)
    """
)


def test_sigkill_at_random_points_never_leaves_a_partial_file(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    import signal
    import time

    target = tmp_path / "model.keras"
    target.write_bytes(b"A" * 3_000_000)
    for delay_s in rng.uniform(0.05, 0.4, size=5):
        child = subprocess.Popen(
            [sys.executable, "-c", _REWRITE_FOREVER, str(target)], cwd=ROOT, stdout=subprocess.PIPE
        )
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        time.sleep(float(delay_s))
        child.send_signal(signal.SIGKILL)
        child.wait()
        content = target.read_bytes()
        assert content in (b"A" * 3_000_000, b"B" * 3_000_000)
    fresh = tmp_path / ".model.keras.another-writer.tmp.keras"  # a temporary still being written
    fresh.write_bytes(b"in progress")
    for left in tmp_path.glob(".model.keras.*.tmp.keras"):
        if left != fresh:  # what the killed writers left: make it look old
            os.utime(left, (time.time() - files.STALE_TEMPORARY_S - 60,) * 2)
    files.atomic_write_bytes(target, b"C")
    assert sorted(p.name for p in tmp_path.iterdir()) == [fresh.name, "model.keras"]


@pytest.mark.parametrize("content", [b"\x00" * 4096, b"SQLite format 3\x00" + b"\xff" * 200, b"id,x\n1,2\n"])
def test_compare_refuses_a_damaged_or_foreign_study_and_leaves_it_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    study = tmp_path / "study.sqlite"
    study.write_bytes(content)
    assert _compare(study, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "study.sqlite" in err and "Traceback" not in err
    assert study.read_bytes() == content and sorted(p.name for p in tmp_path.iterdir()) == ["study.sqlite"]


def test_a_foreign_sqlite_file_is_refused_read_only_and_unchanged(tmp_path: Path) -> None:
    import sqlite3

    from tracking.errors import StoreError
    from tracking.store import SessionStore

    other = tmp_path / "photos.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE photos (name TEXT)")
    conn.close()
    before = other.read_bytes()
    with pytest.raises(StoreError, match="not an RBDM Studio session store"):
        SessionStore.open_read_only(other)
    assert other.read_bytes() == before


_RECORD_TRIALS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tests.tracking._study import write_study
    write_study(Path(sys.argv[1]), participants=(sys.argv[2],))
    """
)


def test_two_writers_on_one_study_both_keep_every_trial(tmp_path: Path) -> None:
    import sqlite3

    from tests.tracking._study import STIMULI
    from tracking.store import SessionStore

    study = tmp_path / "study.sqlite"
    SessionStore(study).close()
    writers = [
        subprocess.Popen([sys.executable, "-c", _RECORD_TRIALS, str(study), name], cwd=ROOT)
        for name in ("P01", "P02")
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    with SessionStore.open_read_only(study) as store:
        sessions = store.sessions()
        assert len(sessions) == 2
        assert all(len(store.trials(s.session_id)) == len(STIMULI) for s in sessions)
    with sqlite3.connect(f"{study.as_uri()}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    conn.close()


def test_a_reader_during_recording_sees_the_committed_trials_and_blocks_nothing(tmp_path: Path) -> None:
    from tests.tracking._study import GEOMETRY, STIMULI, _record, session_settings
    from tracking.records import GazeSample
    from tracking.store import SessionStore
    from tracking.study import read_study

    study = tmp_path / "study.sqlite"
    with SessionStore(study) as store:
        sid = store.create_session(
            store.create_participant("P01"),
            settings=session_settings(),
            geometry=GEOMETRY,
            tracker="mouse",
            recogniser="keyboard",
            stimulus_order=STIMULI,
        )
        with store.sample_writer(sid) as writer:
            for k, stimulus in enumerate(STIMULI):
                for j in range(100):
                    writer.add(GazeSample(10_000.0 * (k + 1) + j, 960.0, 540.0))
                writer.flush()
                _record(store, sid, k, stimulus, np.array([[32.0, 32.0]]), "happy")
                seen = read_study(study)  # read-only, while the session records
                assert sorted(seen.stimuli) == sorted(STIMULI[: k + 1])
        assert len(store.samples(sid)) == 100 * len(STIMULI)


def test_a_damaged_model_card_is_refused_by_name(tmp_path: Path) -> None:
    from analysis.training import load_trained

    (tmp_path / "trainer.keras").write_bytes(b"never read")
    (tmp_path / "trainer.json").write_text('{"architecture": "small_cnn", "labels": [')
    with pytest.raises(ValueError, match=r"model card '.*trainer\.json' is damaged .*train the model again"):
        load_trained(tmp_path / "trainer.keras")


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"t_ms\tx\n1\t2\n", b""])
def test_a_damaged_replay_file_is_refused_by_name(tmp_path: Path, content: bytes) -> None:
    from tracking.drivers.replay import ReplayDriver
    from tracking.errors import DriverError

    path = tmp_path / "gaze.tsv"
    path.write_bytes(content)
    with pytest.raises(DriverError, match=r"cannot replay '.*gaze\.tsv'"):
        ReplayDriver(path).connect()


@pytest.mark.parametrize("content", [b"\xff\xfe\x00\x01 not text", b"Usage,Image name\x00,x\n"])
def test_a_label_csv_that_is_not_text_is_refused_by_name(tmp_path: Path, content: bytes) -> None:
    from analysis.datasets.affectnet import AffectNetLoader
    from analysis.datasets.ferplus import read_ferplus_csv

    ferplus = tmp_path / "fer2013new.csv"
    ferplus.write_bytes(content)
    with pytest.raises(ValueError, match=r"fer2013new\.csv'.* not a FERPlus label file"):
        read_ferplus_csv(ferplus)
    affectnet = tmp_path / "affectnet"
    affectnet.mkdir()
    (affectnet / "training.csv").write_bytes(content)
    named = r"training\.csv('? is not an AffectNet label file| line 1: expected)"
    with pytest.raises(ValueError, match=named):
        AffectNetLoader(affectnet, tmp_path)


@pytest.mark.tf
def test_a_truncated_model_file_is_refused_by_name(tmp_path: Path) -> None:
    whole = models.save_model_file(
        models.build_bound_model("small_cnn", input_shape=(24, 24, 1), n_classes=3), tmp_path / "ok.keras"
    )
    data = whole.read_bytes()
    cut = tmp_path / "cut.keras"
    cut.write_bytes(data[: len(data) // 2])  # a copy that stopped half-way
    with pytest.raises(ValueError, match=r"cut\.keras' is neither a \.keras model"):
        models.load_model_file(cut)
    weights_cut = tmp_path / "weights_cut.keras"  # the archive is whole, the weights inside are not
    with zipfile.ZipFile(whole) as source, zipfile.ZipFile(weights_cut, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            target.writestr(
                info.filename, content[: len(content) // 3] if info.filename.endswith(".h5") else content
            )
    with pytest.raises(ValueError, match=r"cannot load the model '.*weights_cut\.keras'.*damaged"):
        models.load_model_file(weights_cut)


_SAVE_UNDER_A_SIZE_LIMIT = textwrap.dedent(
    """
    import resource, signal, sys
    import numpy as np
    from analysis import training
    rng = np.random.default_rng(0)
    images = rng.random((12, 24, 24), dtype=np.float32)
    labels = np.arange(12) % 3
    result = training.train_trainer(images, labels, images, labels, epochs=1, n_classes=3, batch_size=12)
    training.save_trained(sys.argv[1], result, data={"run": "first"})
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # far below the model's size
    try:
        training.save_trained(sys.argv[1], result, data={"run": "second"})
    except OSError as err:
        print("refused:", err)
    """
)


@pytest.mark.tf
def test_a_save_over_a_model_under_a_file_size_limit_keeps_the_old_model_and_card(tmp_path: Path) -> None:
    from analysis import training

    path = tmp_path / "trainer.keras"
    done = subprocess.run(
        [sys.executable, "-c", _SAVE_UNDER_A_SIZE_LIMIT, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "refused:" in done.stdout
    model, card = training.load_trained(path)  # whole and readable, with its own card
    assert card.data == {"run": "first"} and model.n_classes == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trainer.json", "trainer.keras"]
