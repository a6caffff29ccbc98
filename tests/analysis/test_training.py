"""Tests for analysis.training: class weights, scores, augmentation, determinism, the Trainer, model cards."""

from __future__ import annotations

import functools
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from analysis import training
from analysis.datasets.synthetic_faces import make_faces
from analysis.labels import LABELS

# Measured on this project's synthetic 48 × 48 faces, small CNN (its defaults), 1,600 training faces,
# 15 epochs, no augmentation, seeds 0–1 and two data seeds: validation macro-F1 0.98–0.99 (chance 0.125).
MIN_VAL_ACCURACY = 0.8
TRAINING_EPOCHS = 15


@functools.lru_cache(maxsize=1)
def trained_on_faces() -> tuple[training.TrainResult, NDArray[Any], NDArray[Any], NDArray[Any]]:
    """A small CNN trained once per test process on synthetic faces; also returns 300 held-out faces.

    Shared with tests/analysis/test_saliency.py (imported there), so that the suite trains it once.
    Training uses no augmentation: with the paper's augmentation the small CNN needs ~15 epochs before
    it leaves chance level, too slow for a unit test.
    """
    rng = np.random.default_rng(7)
    x_train, y_train, _ = make_faces(1600, rng=rng)
    x_val, y_val, _ = make_faces(200, rng=rng)
    x_test, y_test, masks_test = make_faces(300, rng=rng)
    result = training.train_trainer(
        x_train, y_train, x_val, y_val, epochs=TRAINING_EPOCHS, seed=0, augmentation=training.NO_AUGMENTATION
    )
    return result, x_test, y_test, masks_test


# --------------------------------------------------------------------------------------------------------
# Class weights (RBDM §5.1, weighted loss)
# --------------------------------------------------------------------------------------------------------


def _class_weights_reference(labels: list[int], n_classes: int) -> list[float]:
    """Literal definition: w_c = N / (K · n_c) for the K classes present, 0 for absent classes."""
    present = sorted(set(labels))
    weights = []
    for c in range(n_classes):
        count = sum(1 for label in labels if label == c)
        weights.append(len(labels) / (len(present) * count) if count else 0.0)
    return weights


@given(st.lists(st.integers(0, 7), min_size=1, max_size=60))
def test_class_weights_match_the_definition_and_balance_the_classes(labels: list[int]) -> None:
    weights = training.class_weights(np.array(labels), n_classes=8)
    np.testing.assert_allclose(weights, _class_weights_reference(labels, 8))
    per_sample = weights[np.array(labels)]
    assert per_sample.mean() == pytest.approx(1.0)
    totals = {c: per_sample[np.array(labels) == c].sum() for c in set(labels)}
    for total in totals.values():
        assert total == pytest.approx(len(labels) / len(totals))


def test_class_weights_reject_labels_outside_the_classes() -> None:
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 8\); got values in \[0, 9\]"):
        training.class_weights(np.array([0, 9]), n_classes=8)
    with pytest.raises(TypeError, match="integer class indices"):
        training.class_weights(np.array([0.5]), n_classes=8)


# --------------------------------------------------------------------------------------------------------
# Validation scores (RBDM §5.1, F1 per epoch)
# --------------------------------------------------------------------------------------------------------


def _macro_f1_reference(truth: list[int], predicted: list[int]) -> float:
    classes = sorted(set(truth) | set(predicted))
    scores = []
    for c in classes:
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == c and p == c)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if t != c and p == c)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == c and p != c)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40))
def test_validation_scores_match_the_definitions(pairs: list[tuple[int, int]]) -> None:
    truth = [t for t, _ in pairs]
    predicted = [p for _, p in pairs]
    probabilities = np.full((len(pairs), 4), 0.1)
    probabilities[np.arange(len(pairs)), predicted] = 0.7
    loss, accuracy, macro_f1 = training.validation_scores(probabilities, np.array(truth))
    assert accuracy == pytest.approx(sum(t == p for t, p in pairs) / len(pairs))
    assert macro_f1 == pytest.approx(_macro_f1_reference(truth, predicted))
    expected_loss = -sum(np.log(probabilities[i, t]) for i, t in enumerate(truth)) / len(truth)
    assert loss == pytest.approx(expected_loss)


def test_validation_scores_need_one_label_per_row() -> None:
    with pytest.raises(ValueError, match="3 probability rows but 2 labels"):
        training.validation_scores(np.full((3, 2), 0.5), np.array([0, 1]))


# --------------------------------------------------------------------------------------------------------
# Augmentation (RBDM §5.1)
# --------------------------------------------------------------------------------------------------------


def test_affine_matrix_rotates_counter_clockwise_on_screen_about_the_centre() -> None:
    # 90° counter-clockwise on screen: a point 10 px right of the centre ends up 10 px above it.
    shape = (21, 21)
    matrix, offset = training.affine_matrix(angle_deg=90.0, zoom=1.0, shift_px=(0.0, 0.0), shape=shape)
    target = np.array([0.0, 10.0])  # (row, col): 10 px above the centre (10, 10)
    np.testing.assert_allclose(matrix @ target + offset, [10.0, 20.0], atol=1e-12)


@given(
    st.floats(-180, 180),
    st.floats(0.5, 1.5),
    st.tuples(st.floats(-5, 5), st.floats(-5, 5)),
    st.tuples(st.floats(0, 30), st.floats(0, 30)),
)
def test_affine_matrix_inverts_the_forward_map(
    angle_deg: float, zoom: float, shift_px: tuple[float, float], point: tuple[float, float]
) -> None:
    shape = (31, 25)
    centre = np.array([15.0, 12.0])
    theta = np.deg2rad(angle_deg)
    # Forward map written out from x' = cos·x − sin·y, y' = sin·x + cos·y (y up) with x = col, y = −row:
    # row' = cos·Δrow − sin·Δcol, col' = sin·Δrow + cos·Δcol.
    d_row, d_col = np.array(point) - centre
    moved = centre + zoom * np.array(
        [np.cos(theta) * d_row - np.sin(theta) * d_col, np.sin(theta) * d_row + np.cos(theta) * d_col]
    )
    moved += np.array(shift_px)
    matrix, offset = training.affine_matrix(angle_deg=angle_deg, zoom=zoom, shift_px=shift_px, shape=shape)
    np.testing.assert_allclose(matrix @ moved + offset, point, atol=1e-9)


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 3), st.integers(4, 9), st.integers(4, 9)),
        elements=st.floats(0, 1, width=32),
    ),
    st.booleans(),
)
def test_augment_keeps_shape_dtype_range_and_input(images: NDArray[Any], rgb: bool) -> None:
    batch = np.repeat(images[..., np.newaxis], 3, axis=-1) if rgb else images
    before = batch.copy()
    out = training.augment(batch, rng=np.random.default_rng(0))
    assert out.shape == batch.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    np.testing.assert_array_equal(batch, before)


def test_augment_is_reproducible_and_identity_without_augmentation(rng: np.random.Generator) -> None:
    images = rng.random((4, 12, 12), dtype=np.float32)
    a = training.augment(images, rng=np.random.default_rng(3))
    b = training.augment(images, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, images)
    state = rng.bit_generator.state
    unchanged = training.augment(images, rng=rng, augmentation=training.NO_AUGMENTATION)
    np.testing.assert_array_equal(unchanged, images)
    assert unchanged is not images and rng.bit_generator.state == state  # a copy; nothing drawn
    assert training.NO_AUGMENTATION.is_identity and not training.PAPER_AUGMENTATION.is_identity
    assert not training.Augmentation(0.0, 0.0, 0.0, 0.0, (1.0, 1.0), True).is_identity


def test_flip_only_mirrors_about_half_of_the_images(rng: np.random.Generator) -> None:
    images = rng.random((200, 6, 6), dtype=np.float32)
    flip_only = training.Augmentation(0.0, 0.0, 0.0, 0.0, (1.0, 1.0), True)
    out = training.augment(images, rng=rng, augmentation=flip_only)
    same = np.array([np.array_equal(o, i) for o, i in zip(out, images, strict=True)])
    mirrored = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images, strict=True)])
    assert np.all(same ^ mirrored)
    assert 70 < mirrored.sum() < 130


def test_brightness_and_channel_shift_stay_in_the_papers_ranges(rng: np.random.Generator) -> None:
    images = rng.uniform(0.3, 0.5, size=(100, 5, 5, 3)).astype(np.float32)
    brightness = training.Augmentation(0.0, 0.0, 0.0, 0.0, (0.5, 1.5), False)
    factors = training.augment(images, rng=rng, augmentation=brightness) / images
    per_image = factors.reshape(100, -1)
    np.testing.assert_allclose(per_image, np.broadcast_to(per_image[:, :1], per_image.shape), rtol=1e-5)
    assert 0.5 <= per_image.min() and per_image.max() <= 1.5
    shift = training.Augmentation(0.0, 0.0, 0.0, 0.2, (1.0, 1.0), False)
    offsets = training.augment(images, rng=rng, augmentation=shift) - images
    per_channel = offsets.reshape(100, 25, 3)
    np.testing.assert_allclose(per_channel, np.broadcast_to(per_channel[:, :1], per_channel.shape), atol=1e-6)
    assert np.abs(per_channel).max() <= 0.2 + 1e-6
    assert np.ptp(per_channel[:, 0], axis=1).max() > 0.01  # channels move independently


@pytest.mark.parametrize(
    "kwargs", [{"rotation_deg": -1.0}, {"zoom_fraction": 1.0}, {"brightness_range": (1.5, 0.5)}]
)
def test_augmentation_rejects_bad_ranges(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        training.Augmentation(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------
# Training (TensorFlow)
# --------------------------------------------------------------------------------------------------------


def test_train_trainer_validates_its_data_before_building_anything() -> None:
    images = np.zeros((4, 16, 16), dtype=np.float32)
    with pytest.raises(ValueError, match="one label per image"):
        training.train_trainer(images, np.array([0, 1]), images, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="batch_size must be an integer"):
        training.train_trainer(images, np.zeros(4, int), images, np.zeros(4, int), batch_size=0)


@pytest.mark.tf
def test_the_small_cnn_learns_synthetic_faces_and_keeps_its_best_epoch() -> None:
    result, x_test, y_test, _ = trained_on_faces()
    assert len(result.history) == TRAINING_EPOCHS
    best = max(result.history, key=lambda record: record.val_macro_f1)
    assert result.best_epoch == best.epoch
    assert result.best.val_accuracy >= MIN_VAL_ACCURACY
    assert (result.model.predict(x_test).argmax(axis=1) == y_test).mean() >= MIN_VAL_ACCURACY
    assert result.history[-1].loss < result.history[0].loss


def _short_run(seed: int, rng: np.random.Generator) -> training.TrainResult:
    images = rng.random((48, 24, 24), dtype=np.float32)
    labels = np.arange(48) % 4
    return training.train_trainer(
        images[:40], labels[:40], images[40:], labels[40:], epochs=2, batch_size=8, n_classes=4, seed=seed
    )


@pytest.mark.tf
def test_training_twice_with_one_seed_gives_identical_curves_and_weights() -> None:
    python_state, numpy_state = random.getstate(), np.random.get_state(legacy=False)  # noqa: NPY002
    first = _short_run(5, np.random.default_rng(0))
    second = _short_run(5, np.random.default_rng(0))
    other = _short_run(6, np.random.default_rng(0))
    curve = [(r.loss, r.val_loss, r.val_macro_f1) for r in first.history]
    assert curve == [(r.loss, r.val_loss, r.val_macro_f1) for r in second.history]
    for a, b in zip(first.model.weights(), second.model.weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert curve != [(r.loss, r.val_loss, r.val_macro_f1) for r in other.history]
    # determinism() restores the global random states it seeded.
    assert random.getstate() == python_state
    numpy_after = np.random.get_state(legacy=False)  # noqa: NPY002
    assert isinstance(numpy_state, dict) and isinstance(numpy_after, dict)
    np.testing.assert_array_equal(numpy_after["state"]["key"], numpy_state["state"]["key"])
    assert numpy_after["state"]["pos"] == numpy_state["state"]["pos"]


@pytest.mark.tf
def test_train_steps_update_the_model_exactly_as_train_on_batch(rng: np.random.Generator) -> None:
    from analysis.models import as_model_input, build_model, new_bound_model

    images, labels = rng.random((40, 24, 24), dtype=np.float32), np.arange(40) % 4
    weights = training.class_weights(labels, n_classes=4).astype(np.float32)

    def seeded() -> object:
        with training.determinism(0):
            model = build_model("small_cnn", input_shape=(24, 24, 1), n_classes=4)
            training.compile_model(model, learning_rate=1e-3)
            return model

    ours, keras_own = new_bound_model(seeded), new_bound_model(seeded)
    with ours.scope() as model, training.determinism(0):
        losses = list(
            training.train_steps(
                model, images, labels, weights, batch_size=8, augmentation=training.NO_AUGMENTATION,
                rng=np.random.default_rng(1),
            )
        )  # fmt: skip
    order, reference = np.random.default_rng(1).permutation(40), []
    with keras_own.scope() as model, training.determinism(0):
        for start in range(0, 40, 8):
            index = order[start : start + 8]
            inputs = as_model_input(images[index], input_shape=(24, 24, 1))
            targets = np.eye(4, dtype=np.float32)[labels[index]]
            reference.append(
                float(model.train_on_batch(inputs, targets, sample_weight=weights[labels[index]]))
            )
    np.testing.assert_allclose(losses, reference, rtol=1e-6)
    for a, b in zip(ours.weights(), keras_own.weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert not np.allclose(ours.weights()[0], keras_own.weights()[0] * 0)  # trained, not zeroed


@pytest.mark.tf
def test_on_epoch_reports_each_epoch_as_it_ends(rng: np.random.Generator) -> None:
    seen: list[training.EpochRecord] = []
    images = rng.random((24, 24, 24), dtype=np.float32)
    labels = np.arange(24) % 3
    result = training.train_trainer(
        images, labels, images, labels, epochs=3, n_classes=3, on_epoch=seen.append, deterministic=False
    )
    assert [r.epoch for r in seen] == [1, 2, 3]
    assert tuple(seen) == result.history
    assert result.settings["deterministic"] is False


@pytest.mark.tf
def test_saved_trainer_loads_with_its_card(tmp_path: Path) -> None:
    result, x_test, _, _ = trained_on_faces()
    card = training.save_trained(tmp_path / "trainer.keras", result, data={"dataset": "synthetic", "n": 800})
    model, loaded_card = training.load_trained(tmp_path / "trainer.keras")
    assert loaded_card == card
    np.testing.assert_allclose(model.predict(x_test[:10]), result.model.predict(x_test[:10]), rtol=1e-6)
    raw = json.loads((tmp_path / "trainer.json").read_text())
    assert raw["architecture"] == "small_cnn"
    assert raw["labels"] == list(LABELS)
    assert raw["input_shape"] == [48, 48, 1]
    assert raw["scores"]["best_epoch"] == result.best_epoch
    assert raw["training"]["learning_rate"] == 1e-3 and raw["training"]["batch_size"] == 32
    assert raw["training"]["seed"] == 0 and raw["training"]["deterministic"] is True
    assert "tensorflow-cpu" in raw["versions"] or "tensorflow" in raw["versions"]
    assert len(raw["history"]) == TRAINING_EPOCHS


def test_load_trained_needs_the_card(tmp_path: Path) -> None:
    (tmp_path / "lonely.keras").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="no model card"):
        training.load_trained(tmp_path / "lonely.keras")
