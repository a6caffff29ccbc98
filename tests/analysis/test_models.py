"""Tests for analysis.models: architectures, graph-bound models, image batches, .keras files."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from analysis import models
from analysis.labels import LABELS

# --------------------------------------------------------------------------------------------------------
# Without TensorFlow
# --------------------------------------------------------------------------------------------------------


def test_every_architecture_has_a_minimum_input_size() -> None:
    assert set(models.ARCHITECTURES) == set(models.MIN_INPUT_SIZE_PX)
    assert models.MIN_INPUT_SIZE_PX["InceptionV3"] == 75
    assert models.MIN_INPUT_SIZE_PX["Xception"] == 71
    assert models.MIN_INPUT_SIZE_PX["MobileNetV2"] == 32


def test_build_model_rejects_inputs_below_the_architecture_minimum() -> None:
    with pytest.raises(ValueError, match=r"InceptionV3 needs inputs of at least 75 × 75 px; got 48 × 48"):
        models.build_model("InceptionV3", input_shape=(48, 48, 1))


@pytest.mark.tf
def test_the_small_cnn_takes_its_smallest_input_and_refuses_smaller_ones() -> None:
    models.build_bound_model("small_cnn", input_shape=(22, 22, 1)).close()  # 22 → 20 → 10 → 8 → 4 → 2 → 1
    with pytest.raises(ValueError, match=r"small_cnn needs inputs of at least 22 × 22 px; got 21 × 21"):
        models.build_model("small_cnn", input_shape=(21, 21, 1))


@pytest.mark.tf
def test_the_small_cnn_defaults_to_unpadded_convolutions_and_offers_dropout_and_weight_decay() -> None:
    bound = models.build_bound_model("small_cnn", input_shape=(48, 48, 1))
    with bound.scope() as model:
        convolutions = [layer for layer in model.layers if layer.name.startswith("conv")]
        assert [layer.padding for layer in convolutions] == ["valid"] * 3
        assert "dropout" not in [layer.name for layer in model.layers]
        assert model.get_layer("conv1").kernel_regularizer is None
        assert model.get_layer("flatten").output_shape == (None, 4 * 4 * 128)
    regularised = models.build_bound_model(
        "small_cnn",
        input_shape=(48, 48, 1),
        options={"padding": "same", "dropout": 0.5, "weight_decay": 1e-4},
    )
    with regularised.scope() as model:
        assert model.get_layer("dropout").rate == 0.5
        for name in ("conv1", "conv2", "conv3", "dense", "logits"):
            assert float(model.get_layer(name).kernel_regularizer.l2) == pytest.approx(1e-4)
        assert model.get_layer("flatten").output_shape == (None, 6 * 6 * 128)


@pytest.mark.parametrize(
    ("options", "message"), [({"dropout": 1.0}, "dropout"), ({"weight_decay": -1e-4}, "weight_decay")]
)
def test_the_small_cnn_rejects_bad_regularisation(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        models.build_model("small_cnn", input_shape=(48, 48, 1), options=options)


@pytest.mark.parametrize("shape", [(48, 48), (48, 48, 2), (0, 48, 1), "48x48"])
def test_build_model_rejects_bad_input_shapes(shape: object) -> None:
    with pytest.raises(ValueError, match="input_shape"):
        models.build_model("small_cnn", input_shape=shape)  # type: ignore[arg-type]


def test_build_model_rejects_a_single_class() -> None:
    with pytest.raises(ValueError, match="n_classes"):
        models.build_model("small_cnn", input_shape=(48, 48, 1), n_classes=1)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((4, 8)), "batch of grey"),
        (np.zeros((2, 8, 8, 2)), "batch of grey"),
        (np.zeros((0, 8, 8)), "must not be empty"),
        (np.full((1, 8, 8), np.nan), "must be finite"),
        (np.full((1, 8, 8), 255.0), r"in \[0, 1\].*Divide 8-bit images by 255"),
    ],
)
def test_check_images_names_the_problem(images: NDArray[Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        models.check_images(images=images)


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6)),
        elements=st.floats(0, 1, width=32),
    )
)
def test_grey_images_become_one_or_three_identical_channels(images: NDArray[Any]) -> None:
    _, height, width = images.shape
    one = models.as_model_input(images, input_shape=(height, width, 1))
    three = models.as_model_input(images, input_shape=(height, width, 3))
    assert one.shape == (*images.shape, 1) and one.dtype == np.float32
    np.testing.assert_array_equal(one[..., 0], images)
    for channel in range(3):
        np.testing.assert_array_equal(three[..., channel], images)


def test_as_model_input_keeps_rgb_and_refuses_rgb_for_a_grey_model() -> None:
    images = np.random.default_rng(0).random((2, 5, 5, 3), dtype=np.float32)
    np.testing.assert_array_equal(models.as_model_input(images, input_shape=(5, 5, 3)), images)
    with pytest.raises(ValueError, match="Convert them to grey first"):
        models.as_model_input(images, input_shape=(5, 5, 1))


def test_as_model_input_refuses_another_image_size() -> None:
    with pytest.raises(ValueError, match=r"takes 48 × 48 px images; got 40 × 40"):
        models.as_model_input(np.zeros((1, 40, 40)), input_shape=(48, 48, 1))


def test_load_model_file_names_a_missing_file() -> None:
    with pytest.raises(FileNotFoundError, match="no model file"):
        models.load_model_file("/nonexistent/model.keras")


# --------------------------------------------------------------------------------------------------------
# With TensorFlow (graph mode)
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_cnn() -> models.BoundModel:
    return models.build_bound_model("small_cnn", input_shape=(48, 48, 1))


@pytest.mark.tf
def test_small_cnn_outputs_class_probabilities(
    small_cnn: models.BoundModel, rng: np.random.Generator
) -> None:
    images = rng.random((5, 48, 48), dtype=np.float32)
    probabilities = small_cnn.predict(images)
    assert small_cnn.input_shape == (48, 48, 1)
    assert small_cnn.n_classes == len(LABELS)
    assert probabilities.shape == (5, len(LABELS))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.tf
def test_strip_softmax_returns_the_logits(small_cnn: models.BoundModel, rng: np.random.Generator) -> None:
    images = rng.random((3, 48, 48, 1), dtype=np.float32)
    with small_cnn.scope() as model:
        logits = models.strip_softmax(model).predict(images, verbose=0)
        probabilities = model.predict(images, verbose=0)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(exp / exp.sum(axis=1, keepdims=True), probabilities, rtol=1e-5, atol=1e-7)


@pytest.mark.tf
def test_a_bound_model_works_from_another_thread(
    small_cnn: models.BoundModel, rng: np.random.Generator
) -> None:
    images = rng.random((4, 48, 48), dtype=np.float32)
    here = small_cnn.predict(images)
    there: list[NDArray[Any]] = []
    worker = threading.Thread(target=lambda: there.append(small_cnn.predict(images)))
    worker.start()
    worker.join()
    np.testing.assert_array_equal(there[0], here)


@pytest.mark.tf
def test_keras_file_round_trip_keeps_weights_and_outputs(
    small_cnn: models.BoundModel, tmp_path: object, rng: np.random.Generator
) -> None:
    path = models.save_model_file(small_cnn, f"{tmp_path}/sub/cnn.keras")
    loaded = models.load_model_file(path)
    images = rng.random((3, 48, 48), dtype=np.float32)
    for saved, read in zip(small_cnn.weights(), loaded.weights(), strict=True):
        np.testing.assert_array_equal(saved, read)
    np.testing.assert_array_equal(loaded.predict(images), small_cnn.predict(images))
    with pytest.raises(ValueError, match=r"end in '\.keras'"):
        models.save_model_file(small_cnn, f"{tmp_path}/cnn.h5")


@pytest.mark.tf
def test_keras_application_by_name_on_its_own_input() -> None:
    bound = models.build_bound_model(
        "MobileNetV2", input_shape=(32, 32, 3), n_classes=3, options={"alpha": 0.35}
    )
    with bound.scope() as model:
        assert model.layers[-1].name == "softmax"
        assert model.layers[-2].name == "logits"
        assert not any(isinstance(layer, type(model)) for layer in model.layers)  # flat, no nested model
    assert bound.predict(np.zeros((2, 32, 32))).shape == (2, 3)


@pytest.mark.tf
def test_unknown_architecture_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown architecture 'NoSuchNet'.*InceptionV3"):
        models.build_bound_model("NoSuchNet", input_shape=(48, 48, 1))
