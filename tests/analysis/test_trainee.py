"""Tests for analysis.trainee: the switch, curve points, determinism, cancelling, confusion, curve logs."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from analysis.datasets.synthetic_faces import make_faces
from analysis.trainee import (
    CURVE_FIELDS,
    DEFAULT_BATCH_NORM_MOMENTUM,
    DEFAULT_TRAINEE,
    DEFAULT_TRAINEE_OPTIONS,
    TRAINING_FIELDS,
    CurveLog,
    CurvePoint,
    TraineeResult,
    TrainingOptions,
    train_trainee,
)

Data = tuple[NDArray[np.float32], NDArray[np.int64]]

#: Tiny and fast: the small CNN, 40 training faces of 32 px, batches of 16 (3 steps per epoch).
FAST: dict[str, Any] = {"architecture": "small_cnn", "batch_size": 16, "eval_every_steps": 2}


@pytest.fixture(scope="module")
def data() -> tuple[Data, Data, Data]:
    """(training faces, the same faces with the lower half blacked out, validation faces)."""
    rng = np.random.default_rng(3)
    x, y, _ = make_faces(40, size=32, rng=rng)
    x_val, y_val, _ = make_faces(24, size=32, rng=rng)
    masked = x.copy()
    masked[:, 16:] = 0.0
    return (x, y), (masked, y), (x_val, y_val)


def _train(masked: Data | None, unmasked: Data | None, validation: Data, **kwargs: Any) -> TraineeResult:
    """:func:`train_trainee` with :data:`FAST`; keyword arguments that name a :class:`TrainingOptions` field
    go into ``training``, the others (seed, callbacks) to the function."""
    arguments = {**FAST, **kwargs}
    training = TrainingOptions(**{k: v for k, v in arguments.items() if k in TRAINING_FIELDS})
    others = {k: v for k, v in arguments.items() if k not in TRAINING_FIELDS}
    return train_trainee(masked, unmasked, validation, training=training, **others)


def _values(result: TraineeResult) -> list[tuple[Any, ...]]:
    return [tuple(p.as_row().values()) for p in result.curves]


# --------------------------------------------------------------------------------------------------------
# Without TensorFlow: argument checks
# --------------------------------------------------------------------------------------------------------


def test_the_default_trainee_is_the_papers_mobilenet_v2() -> None:
    assert DEFAULT_TRAINEE == "MobileNetV2"


@pytest.mark.parametrize(
    ("masked", "unmasked", "switch_epoch", "epochs", "message"),
    [
        (False, False, None, 2, "pass masked or unmasked training images"),
        (True, False, 1, 2, "switch_epoch needs both the masked and the unmasked"),
        (True, True, None, 2, "no switch_epoch; pass switch_epoch"),
        (True, True, 2, 2, r"switch_epoch must be below epochs \(2\)"),
        (True, True, 0, 2, "switch_epoch must be an integer ≥ 1"),
    ],
)
def test_inconsistent_phases_are_refused(
    data: tuple[Data, Data, Data],
    masked: bool,
    unmasked: bool,
    switch_epoch: int | None,
    epochs: int,
    message: str,
) -> None:
    original, masked_data, validation = data
    with pytest.raises(ValueError, match=message):
        _train(
            masked_data if masked else None,
            original if unmasked else None,
            validation,
            switch_epoch=switch_epoch,
            epochs=epochs,
        )


def test_training_options_hold_the_defaults_and_refuse_values_out_of_range() -> None:
    default = TrainingOptions()
    assert (default.architecture, default.options, default.switch_epoch) == (
        "MobileNetV2",
        {"alpha": 0.35},
        None,
    )
    assert default.options == DEFAULT_TRAINEE_OPTIONS and default.options is not DEFAULT_TRAINEE_OPTIONS
    assert (default.batch_size, default.learning_rate, default.batch_norm_momentum) == (32, 1e-3, 0.9)
    assert TrainingOptions(architecture="small_cnn").options == {}  # another architecture: its own defaults
    assert TrainingOptions(options={"alpha": 0.5}).options == {"alpha": 0.5}
    assert TrainingOptions.from_dict(json.loads(json.dumps(default.to_dict()))) == default
    assert tuple(default.to_dict()) == TRAINING_FIELDS == tuple(f.name for f in dataclasses.fields(default))
    with pytest.raises(ValueError, match="unknown training options"):
        TrainingOptions.from_dict({"epochs": 2, "colour": "red"})
    for name, value, message in [
        ("epochs", 0, "epochs must be an integer ≥ 1; got 0"),
        ("batch_size", 2.5, "batch_size must be an integer ≥ 1; got 2.5"),
        ("eval_every_steps", True, "eval_every_steps must be an integer ≥ 1; got True"),
        ("switch_epoch", 0, "switch_epoch must be an integer ≥ 1; got 0"),
        ("learning_rate", float("nan"), "learning_rate must be a finite number > 0; got nan"),
        ("batch_norm_momentum", 1.0, r"batch_norm_momentum must lie in \[0, 1\) or be None; got 1.0"),
        ("architecture", "", "architecture must name a model builder"),
        ("options", [0.35], "options must be a mapping"),
    ]:
        with pytest.raises(ValueError, match=message):
            TrainingOptions(**{name: value})
    TrainingOptions(switch_epoch=6, epochs=6)  # fine until a switch happens:
    with pytest.raises(ValueError, match=r"1 ≤ switch_epoch < epochs \(6\); got 6"):
        TrainingOptions(switch_epoch=6, epochs=6).check_switch()
    with pytest.raises(ValueError, match="got None"):
        TrainingOptions().check_switch()
    TrainingOptions(switch_epoch=5, epochs=6).check_switch()


def test_bad_data_and_options_are_refused(data: tuple[Data, Data, Data]) -> None:
    original, _, validation = data
    with pytest.raises(ValueError, match="Load every split at one size"):
        _train(None, original, (validation[0][:, :16, :16], validation[1]))
    with pytest.raises(ValueError, match="need one label per image"):
        _train(None, (original[0], original[1][:5]), validation)
    with pytest.raises(ValueError, match="eval_every_steps must be an integer ≥ 1"):
        _train(None, original, validation, eval_every_steps=0)
    with pytest.raises(ValueError, match=r"batch_norm_momentum must lie in \[0, 1\)"):
        _train(None, original, validation, batch_norm_momentum=1.0)
    with pytest.raises(ValueError, match="labels must lie in"):
        _train(None, (original[0], original[1] + 8), validation)
    with pytest.raises(TypeError, match=r"must be an \(images, labels\) pair"):
        _train(None, original[0], validation)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------


@pytest.mark.tf
def test_points_come_every_k_steps_and_after_the_last_step(data: tuple[Data, Data, Data]) -> None:
    original, _, validation = data
    seen: list[CurvePoint] = []
    result = _train(None, original, validation, epochs=2, eval_every_steps=4, on_curve=seen.append)
    assert [(p.step, p.epoch, p.phase, p.images_seen) for p in result.curves] == [
        (4, 2, "unmasked", 56),  # steps of 16, 16, 8 images per epoch
        (6, 2, "unmasked", 80),
    ]
    assert seen == list(result.curves)
    for point in result.curves:
        assert point.train_loss > 0 and point.val_loss > 0 and 0 <= point.val_macro_f1 <= 1
    assert not result.cancelled and result.duration_s > 0
    assert result.settings["phases"]["unmasked"]["n_train"] == 40 and result.settings["n_val"] == 24


@pytest.mark.tf
def test_the_switch_changes_the_images_after_switch_epoch(data: tuple[Data, Data, Data]) -> None:
    original, masked, validation = data
    switched = _train(masked, original, validation, epochs=3, switch_epoch=2)
    masked_only = _train(masked, None, validation, epochs=3)
    switched_to_same = _train(masked, masked, validation, epochs=3, switch_epoch=2)

    assert [p.phase for p in switched.curves] == ["masked"] * 3 + ["unmasked"] * 2
    assert [p.epoch for p in switched.curves] == [1, 2, 2, 3, 3]  # 3 steps per epoch, points at 2, 4, 6, 8, 9
    assert [p.phase for p in masked_only.curves] == ["masked"] * 5
    # Before the switch the runs are identical; after it only the run that got other images differs.
    before = [k for k, p in enumerate(switched.curves) if p.epoch <= 2]
    after = [k for k, p in enumerate(switched.curves) if p.epoch > 2 and p.step > 6]
    for k in before:
        assert _values(switched)[k][3:] == _values(masked_only)[k][3:]
    for k in after:
        assert switched.curves[k].train_loss != masked_only.curves[k].train_loss
    assert [v[3:] for v in _values(switched_to_same)] == [v[3:] for v in _values(masked_only)]
    assert switched.settings["switch_epoch"] == 2 and set(switched.settings["phases"]) == {
        "masked",
        "unmasked",
    }


@pytest.mark.tf
def test_the_same_seed_gives_the_same_curves_and_another_seed_others(data: tuple[Data, Data, Data]) -> None:
    original, masked, validation = data
    first = _train(masked, original, validation, epochs=2, switch_epoch=1, seed=5)
    second = _train(masked, original, validation, epochs=2, switch_epoch=1, seed=5)
    other = _train(masked, original, validation, epochs=2, switch_epoch=1, seed=6)
    assert _values(first) == _values(second)
    np.testing.assert_array_equal(first.confusion, second.confusion)
    assert _values(first) != _values(other)


@pytest.mark.tf
def test_the_confusion_matrix_counts_the_final_models_validation_predictions(
    data: tuple[Data, Data, Data],
) -> None:
    original, _, validation = data
    result = _train(None, original, validation, epochs=1)
    predicted = result.model.predict(validation[0]).argmax(axis=1)
    expected = np.zeros((8, 8), dtype=np.int64)
    for true, guess in zip(validation[1], predicted, strict=True):
        expected[true, guess] += 1
    np.testing.assert_array_equal(result.confusion, expected)
    assert result.final.val_accuracy == pytest.approx(np.trace(expected) / len(predicted))
    assert result.best.val_macro_f1 == max(p.val_macro_f1 for p in result.curves)


@pytest.mark.tf
def test_cancelling_stops_after_the_current_step_and_scores_it(data: tuple[Data, Data, Data]) -> None:
    original, _, validation = data
    steps = iter(range(100))
    result = _train(
        None, original, validation, epochs=5, eval_every_steps=10, cancel=lambda: next(steps) >= 2
    )
    assert result.cancelled
    assert [p.step for p in result.curves] == [3]


@pytest.mark.tf
@pytest.mark.slow
def test_the_default_mobilenet_v2_trains_on_grey_48_px_faces() -> None:
    rng = np.random.default_rng(0)
    x, y, _ = make_faces(32, size=48, rng=rng)
    result = train_trainee(
        None, (x, y), (x[:16], y[:16]), training=TrainingOptions(epochs=1, eval_every_steps=1)
    )
    assert result.settings["architecture"] == "MobileNetV2" and result.settings["options"] == {"alpha": 0.35}
    assert result.settings["batch_norm_momentum"] == DEFAULT_BATCH_NORM_MOMENTUM == 0.9
    assert result.model.input_shape == (48, 48, 1)
    with result.model.scope() as model:
        momenta = {layer.momentum for layer in model.layers if type(layer).__name__ == "BatchNormalization"}
    assert momenta == {0.9}  # keras.applications builds it with 0.999
    assert len(result.curves) == 1 and math.isfinite(result.final.val_loss)


# --------------------------------------------------------------------------------------------------------
# Curve logs
# --------------------------------------------------------------------------------------------------------


def _point(step: int, phase: str = "masked") -> CurvePoint:
    return CurvePoint(step, 1, phase, step * 32, 2.0 / step, 1.5, 0.25, 0.2 + step / 100)


def test_curve_points_round_trip_through_rows() -> None:
    point = _point(3)
    assert tuple(point.as_row()) == CURVE_FIELDS
    assert CurvePoint.from_row({k: str(v) for k, v in point.as_row().items()}) == point


def test_the_curve_log_writes_a_csv_row_per_point_at_once(tmp_path: Path) -> None:
    with CurveLog(tmp_path, tensorboard=False) as log:
        log.add(_point(1))
        with (tmp_path / "curves.csv").open() as handle:  # readable before the log is closed
            assert len(list(csv.DictReader(handle))) == 1
        log.add(_point(2, "unmasked"))
    with (tmp_path / "curves.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [CurvePoint.from_row(r) for r in rows] == [_point(1), _point(2, "unmasked")]
    assert not (tmp_path / "tensorboard").exists()


@pytest.mark.tf
def test_the_curve_log_writes_tensorboard_scalars(tmp_path: Path) -> None:
    import tensorflow as tf

    with CurveLog(tmp_path) as log:
        log.add(_point(1))
        log.add(_point(2, "unmasked"))
    (events,) = (tmp_path / "tensorboard").glob("events.out.tfevents.*")
    scalars: dict[str, list[tuple[int, float]]] = {}
    for event in tf.compat.v1.train.summary_iterator(str(events)):
        for value in event.summary.value:
            scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    assert scalars["macro_f1/validation"] == [(1, pytest.approx(0.21)), (2, pytest.approx(0.22))]
    assert scalars["loss/train"] == [(1, 2.0), (2, 1.0)]
    assert scalars["phase/masked"] == [(1, 1.0), (2, 0.0)]
    assert set(scalars) == {
        "loss/train",
        "loss/validation",
        "accuracy/validation",
        "macro_f1/validation",
        "phase/masked",
    }


@pytest.mark.tf
def test_a_saved_trainee_still_predicts_in_graph_mode(tmp_path: Path, data: tuple[Data, Data, Data]) -> None:
    from analysis.models import load_model_file, save_model_file

    original, _, validation = data
    result = _train(None, original, validation, epochs=1)
    before = result.model.predict(validation[0])
    save_model_file(result.model, tmp_path / "trainee.keras")  # builds an eager copy of the model
    np.testing.assert_array_equal(result.model.predict(validation[0]), before)
    np.testing.assert_allclose(
        load_model_file(tmp_path / "trainee.keras").predict(validation[0]), before, rtol=1e-6
    )


@pytest.mark.tf
@pytest.mark.parametrize("deterministic", [True, False])
def test_one_seed_gives_every_variant_the_same_initial_weights(
    data: tuple[Data, Data, Data], deterministic: bool
) -> None:
    original, masked, validation = data
    kwargs: dict[str, Any] = {"epochs": 1, "deterministic": deterministic}
    unmasked = _train(None, original, validation, seed=5, **kwargs)
    masked_only = _train(masked, None, validation, seed=5, **kwargs)
    other = _train(None, original, validation, seed=6, **kwargs)
    assert len(unmasked.initial_weights_sha256) == 64
    assert unmasked.initial_weights_sha256 == masked_only.initial_weights_sha256
    assert other.initial_weights_sha256 != unmasked.initial_weights_sha256
    assert _values(unmasked) != _values(masked_only)  # the images differ, the start does not


@pytest.mark.tf
def test_the_best_weights_score_the_best_point(data: tuple[Data, Data, Data]) -> None:
    from analysis.evaluation import evaluate_model

    original, _, validation = data
    result = _train(None, original, validation, epochs=3, eval_every_steps=1)
    assert result.best.step != result.final.step or len(result.curves) == 1  # a best that is not the last
    with result.model.scope() as model:
        model.set_weights(list(result.best_weights))
    assert evaluate_model(result.model, *validation).macro_f1 == pytest.approx(result.best.val_macro_f1)
