"""Tests for the Trainer recipes: the vgg_bn network, the cosine schedule, class-weight powers, the light
augmentation and the named presets of ``rbdm train-trainer`` (issue 13)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis import models, training
from analysis.datasets.synthetic_faces import make_faces


def _cosine_reference(step: int, total: int, peak: float, warmup_fraction: float) -> float:
    """The schedule written out: linear warm-up over W steps, then half a cosine period down to 0."""
    warmup = max(1, round(warmup_fraction * total))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (1 + math.cos(math.pi * progress)) / 2


# --------------------------------------------------------------------------------------------------------
# Learning-rate schedule
# --------------------------------------------------------------------------------------------------------


@given(
    total=st.integers(1, 500),
    peak=st.floats(1e-5, 1.0),
    warmup_fraction=st.floats(0.0, 0.5),
    data=st.data(),
)
def test_the_cosine_schedule_matches_its_definition(
    total: int, peak: float, warmup_fraction: float, data: st.DataObject
) -> None:
    step = data.draw(st.integers(0, total - 1))
    rate = training.learning_rate_at(
        step, total_steps=total, peak_rate=peak, schedule="cosine", warmup_fraction=warmup_fraction
    )
    assert rate == pytest.approx(_cosine_reference(step, total, peak, warmup_fraction), rel=1e-12)
    assert 0 <= rate <= peak * (1 + 1e-12)


def test_the_cosine_schedule_warms_up_peaks_and_ends_near_zero() -> None:
    total, peak = 1000, 3e-3
    rates = [
        training.learning_rate_at(s, total_steps=total, peak_rate=peak, warmup_fraction=0.05)
        for s in range(total)
    ]
    assert rates[0] == pytest.approx(peak / 50)
    assert rates[49] == pytest.approx(peak) and max(rates) == pytest.approx(peak)
    assert np.all(np.diff(rates[:50]) > 0) and np.all(np.diff(rates[50:]) <= 0)
    assert rates[-1] < 1e-4 * peak
    assert rates[525] == pytest.approx(peak / 2, rel=1e-2)  # half-way through the decay


def test_the_constant_schedule_is_the_papers_rate() -> None:
    for step in (0, 7, 99):
        assert training.learning_rate_at(step, total_steps=100, peak_rate=1e-3, schedule="constant") == 1e-3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": "step"}, "schedule must be one of"),
        ({"warmup_fraction": 1.0}, "warmup_fraction must lie in"),
        ({"warmup_fraction": -0.1}, "warmup_fraction must lie in"),
    ],
)
def test_the_schedule_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        training.learning_rate_at(0, total_steps=10, peak_rate=1e-3, **kwargs)


def test_step_rates_cover_every_batch_of_every_epoch() -> None:
    settings = {
        "schedule": "cosine",
        "epochs": 3,
        "batch_size": 4,
        "learning_rate": 0.01,
        "warmup_fraction": 0.1,
    }
    rates = training._step_rates(settings, n_train=10)  # 3 batches per epoch, the last one short
    assert rates is not None and rates.shape == (3, 3)
    expected = [_cosine_reference(s, 9, 0.01, 0.1) for s in range(9)]
    np.testing.assert_allclose(rates.ravel(), expected, rtol=1e-12)
    assert training._step_rates({**settings, "schedule": "constant"}, n_train=10) is None


# --------------------------------------------------------------------------------------------------------
# Class weights with a power
# --------------------------------------------------------------------------------------------------------


LABELS_SKEWED = np.array([0] * 50 + [1] * 10 + [2] * 5 + [4] * 1)


def test_class_weight_power_one_is_the_papers_weighting() -> None:
    paper = training.class_weights(LABELS_SKEWED)
    counts = np.bincount(LABELS_SKEWED, minlength=8)
    expected = np.where(counts > 0, len(LABELS_SKEWED) / (4 * np.maximum(counts, 1)), 0.0)
    np.testing.assert_array_equal(training.class_weights(LABELS_SKEWED, power=1.0), paper)
    np.testing.assert_allclose(paper, expected)


@pytest.mark.parametrize("power", [0.0, 0.25, 0.5, 1.0, 2.0])
def test_class_weight_powers_keep_the_mean_sample_weight_and_the_order(power: float) -> None:
    weights = training.class_weights(LABELS_SKEWED, power=power)
    assert np.mean(weights[LABELS_SKEWED]) == pytest.approx(1.0)
    assert weights[3] == 0 and weights[5:].sum() == 0  # absent classes
    present = weights[[0, 1, 2, 4]]
    assert np.all(np.diff(present) >= 0) if power > 0 else np.allclose(present, 1.0)


def test_the_square_root_weights_are_the_square_root_of_the_papers_rescaled() -> None:
    paper = training.class_weights(LABELS_SKEWED)
    root = training.class_weights(LABELS_SKEWED, power=0.5)
    present = paper > 0
    ratio = root[present] / np.sqrt(paper[present])
    np.testing.assert_allclose(ratio, ratio[0])


def test_class_weights_reject_a_negative_power() -> None:
    with pytest.raises(ValueError, match="power must be a finite number ≥ 0"):
        training.class_weights(LABELS_SKEWED, power=-1.0)


# --------------------------------------------------------------------------------------------------------
# The light augmentation
# --------------------------------------------------------------------------------------------------------


def test_the_light_augmentation_keeps_shapes_range_and_the_image_count() -> None:
    images, labels, _ = make_faces(16, rng=np.random.default_rng(0))
    out = training.augment(images, rng=np.random.default_rng(1), augmentation=training.LIGHT_AUGMENTATION)
    assert out.shape == images.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert not np.array_equal(out, images)
    # a flip-free, warp-free copy at brightness 1 is the identity, whatever else the light ranges allow
    plain = training.Augmentation(0.0, 0.0, 0.0, 0.0, (1.0, 1.0), False)
    np.testing.assert_array_equal(
        training.augment(images, rng=np.random.default_rng(1), augmentation=plain), images
    )
    assert labels.shape == (16,)


def test_the_light_augmentation_is_milder_than_the_papers() -> None:
    light, paper = training.LIGHT_AUGMENTATION, training.PAPER_AUGMENTATION
    assert light.rotation_deg < paper.rotation_deg and light.zoom_fraction < paper.zoom_fraction
    assert light.channel_shift == 0 and light.horizontal_flip
    assert light.brightness_range[0] > paper.brightness_range[0]
    assert set(training.AUGMENTATIONS) == {"paper", "light", "none"}


def test_the_light_augmentation_keeps_each_image_in_its_place() -> None:
    """Labels stay valid: image i of the output comes from image i of the input (no reordering).

    Constant images stay constant under warps and flips; only the brightness factor (0.8–1.2) scales
    them, and the four levels are chosen so that their scaled ranges do not overlap.
    """
    levels = np.array([0.05, 0.1, 0.2, 0.4], dtype=np.float32)
    images = np.repeat(levels, 8)[:, None, None] * np.ones((1, 48, 48), dtype=np.float32)
    order = np.random.default_rng(3).permutation(len(images))
    out = training.augment(
        images[order], rng=np.random.default_rng(4), augmentation=training.LIGHT_AUGMENTATION
    )
    factors = out.mean(axis=(1, 2)) / images[order].mean(axis=(1, 2))
    assert np.all((factors >= 0.8 - 1e-5) & (factors <= 1.2 + 1e-5))
    np.testing.assert_allclose(out.std(axis=(1, 2)), 0.0, atol=1e-5)


# --------------------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------------------


def test_every_preset_is_a_valid_recipe() -> None:
    assert {"paper", "fer_vgg"} <= set(training.TRAINER_PRESETS)
    for preset in training.TRAINER_PRESETS.values():
        assert preset.architecture in models.ARCHITECTURES
        assert preset.augmentation in training.AUGMENTATIONS
        assert preset.schedule in training.SCHEDULES
        assert preset.epochs >= 1 and preset.batch_size >= 1 and preset.learning_rate > 0


def test_the_paper_preset_is_the_plain_default_recipe() -> None:
    paper = training.TRAINER_PRESETS["paper"]
    assert (paper.architecture, paper.batch_size, paper.learning_rate) == ("small_cnn", 32, 1e-3)
    assert (paper.schedule, paper.label_smoothing, paper.class_weight_power) == ("constant", 0.0, 1.0)
    assert paper.augmentation == "paper"


def test_the_fer_preset_uses_the_vgg_network_and_the_measured_recipe() -> None:
    fer = training.TRAINER_PRESETS["fer_vgg"]
    assert fer.architecture == "vgg_bn" and fer.schedule == "cosine" and fer.augmentation == "light"
    assert 0 < fer.label_smoothing < 0.5 and 0 < fer.class_weight_power < 1


def test_a_preset_rejects_an_unknown_augmentation() -> None:
    with pytest.raises(ValueError, match="augmentation must be one of"):
        training.TrainerPreset(
            summary="x",
            architecture="small_cnn",
            epochs=1,
            batch_size=1,
            learning_rate=1e-3,
            augmentation="heavy",
        )


# --------------------------------------------------------------------------------------------------------
# The vgg_bn network
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"filters": (8, 16), "convs_per_block": (1,)}, "one entry per block"),
        ({"filters": (8, 0), "convs_per_block": (1, 1)}, "must be ≥ 1"),
        ({"dropout": 1.0}, "dropout must lie in"),
        ({"weight_decay": -1.0}, "weight_decay must be ≥ 0"),
    ],
)
def test_vgg_bn_rejects_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        models.build_model("vgg_bn", input_shape=(48, 48, 1), options=options)


@pytest.mark.tf
def test_vgg_bn_builds_at_48_px_with_batch_norms_and_a_softmax() -> None:
    bound = models.build_bound_model("vgg_bn", input_shape=(48, 48, 1))
    with bound.scope():
        model = bound.model
        names = [layer.name for layer in model.layers]
        kinds = [type(layer).__name__ for layer in model.layers]
        assert model.output_shape == (None, 8) and names[-2:] == ["logits", "softmax"]
        assert kinds.count("Conv2D") == 8 and kinds.count("BatchNormalization") == 8
        assert kinds.count("MaxPooling2D") == 3 and "GlobalAveragePooling2D" in kinds
        assert 250_000 < model.count_params() < 350_000
    probabilities = bound.predict(np.random.default_rng(0).random((3, 48, 48), dtype=np.float32))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    bound.close()


@pytest.mark.tf
def test_vgg_bn_takes_its_smallest_input() -> None:
    bound = models.build_bound_model("vgg_bn", input_shape=(models.MIN_INPUT_SIZE_PX["vgg_bn"],) * 2 + (1,))
    assert bound.n_classes == 8
    bound.close()
    with pytest.raises(ValueError, match="at least 8 × 8"):
        models.build_model("vgg_bn", input_shape=(7, 7, 1))


@pytest.mark.tf
def test_a_cosine_run_with_label_smoothing_ends_at_the_last_rate_and_records_the_recipe() -> None:
    rng = np.random.default_rng(5)
    x, y, _ = make_faces(48, rng=rng, size=32)
    result = training.train_trainer(
        x,
        y,
        x[:16],
        y[:16],
        architecture="vgg_bn",
        options={"filters": (4, 8), "convs_per_block": (1, 1)},
        epochs=2,
        batch_size=16,
        learning_rate=1e-2,
        augmentation=training.LIGHT_AUGMENTATION,
        schedule="cosine",
        warmup_fraction=0.2,
        label_smoothing=0.1,
        class_weight_power=0.5,
    )
    settings = result.settings
    assert settings["schedule"] == "cosine" and settings["label_smoothing"] == 0.1
    assert settings["class_weights"] == pytest.approx(training.class_weights(y, power=0.5).tolist())
    with result.model.scope():
        import tensorflow as tf

        last_rate = float(tf.keras.backend.get_value(result.model.model.optimizer.lr))
    assert last_rate == pytest.approx(_cosine_reference(5, 6, 1e-2, 0.2), rel=1e-5)
    assert len(result.history) == 2 and all(np.isfinite(r.loss) for r in result.history)
    result.model.close()
