"""Tests for analysis.saliency: relevance maps, conservation, classes, threads, the disk cache, refusals."""

from __future__ import annotations

import functools
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from analysis import models, saliency
from analysis.errors import AnalysisWarning, UnsupportedLayerError
from analysis.training import TrainResult, save_trained
from tests.analysis.test_training import trained_on_faces

#: A trained model and held-out faces: (result, images, label indices, region masks).
Faces = tuple[TrainResult, NDArray[Any], NDArray[Any], NDArray[Any]]

# Share of positive relevance inside the ground-truth region masks of 200 held-out synthetic faces, for
# the small CNN of trained_on_faces (val. accuracy ≈ 0.8). Measured (seeds 0, 1; 800–1200 training
# faces): deep Taylor 0.30–0.36, preset A flat 0.40–0.47, LRP-ε 0.31–0.41, gradient 0.27–0.36, while the
# masks cover 8.3 % of the image on average (chance). Asserted: at least 2.5 × chance, and a floor.
MIN_RATIO_TO_CHANCE = 2.5
MIN_SHARE_IN_REGION = 0.2
# LRP-ε (ε = 1e-7) on a ReLU network without biases loses no relevance: measured relative error ≤ 1e-5.
# Deep Taylor (z+ ignoring biases, w² in the last layer) conserves max(logit, 0) even with biases:
# measured median 5e-8, max 1e-5 on the trained small CNN.
CONSERVATION_TOLERANCE = 1e-4


# --------------------------------------------------------------------------------------------------------
# Without TensorFlow
# --------------------------------------------------------------------------------------------------------


def test_the_analyzers_offered_are_the_issues_four() -> None:
    assert set(saliency.ANALYZERS) == {
        "deep_taylor",
        "lrp.sequential_preset_a_flat",
        "lrp.epsilon",
        "gradient",
    }
    assert saliency.DEFAULT_ANALYZER == "deep_taylor"


@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 5), st.integers(1, 5), st.sampled_from([1, 3]))))
def test_to_2d_sums_the_channels(relevance: NDArray[Any]) -> None:
    relevance = np.nan_to_num(relevance, nan=0.0, posinf=1.0, neginf=-1.0)
    flat = saliency.to_2d(relevance)
    expected = [
        [sum(float(v) for v in relevance[r, c]) for c in range(relevance.shape[1])]
        for r in range(relevance.shape[0])
    ]
    np.testing.assert_allclose(flat, expected, rtol=1e-5, atol=1e-5 * np.abs(relevance).max(initial=1.0))
    np.testing.assert_array_equal(saliency.to_2d(flat), flat)


def test_maps_to_2d_handles_batches() -> None:
    batch = np.arange(2 * 3 * 4 * 3, dtype=np.float32).reshape(2, 3, 4, 3)
    np.testing.assert_array_equal(saliency.maps_to_2d(batch), batch.sum(axis=-1))
    np.testing.assert_array_equal(saliency.maps_to_2d(batch[..., 0]), batch[..., 0])
    with pytest.raises(ValueError, match="batch"):
        saliency.maps_to_2d(batch[0, 0])
    with pytest.raises(ValueError, match="maps_to_2d"):
        saliency.to_2d(batch)


def test_conservation_error_is_the_relative_gap_between_total_relevance_and_output() -> None:
    relevance = np.array([[[1.0, 2.0]], [[0.5, 0.5]], [[0.25, 0.0]]])
    output = np.array([3.0, 2.0, 0.0])
    expected = [abs(3.0 - 3.0) / 3.0, abs(1.0 - 2.0) / 2.0, 0.25]  # f = 0: absolute error
    np.testing.assert_allclose(saliency.conservation_error(relevance, output), expected)
    with pytest.raises(ValueError, match="one output per relevance map"):
        saliency.conservation_error(relevance, output[:2])


def test_cache_file_names_are_readable_and_distinguish_the_class_selection() -> None:
    name = saliency.cache_file_name(model_sha256="a" * 64, data_sha256="b" * 64, analyzer="deep_taylor")
    assert name == f"{'a' * 16}-{'b' * 16}-deep_taylor-predicted.npz"
    kwargs = {"model_sha256": "a" * 64, "data_sha256": "b" * 64, "analyzer": "gradient"}
    assert saliency.cache_file_name(**kwargs, class_index=3).endswith("-gradient-class3.npz")
    per_image = {saliency.cache_file_name(**kwargs, class_index=np.array(c)) for c in ([0, 1], [1, 0])}
    assert len(per_image) == 2


def test_unknown_analyzer_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown analyzer 'lime'; expected one of deep_taylor"):
        saliency.compute_relevance_maps(
            tmp_path / "m.keras", np.zeros((1, 4, 4)), ["a"], analyzer="lime", cache_dir=None
        )


# --------------------------------------------------------------------------------------------------------
# With TensorFlow
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faces() -> Faces:
    return trained_on_faces()


@pytest.fixture(scope="module")
def explainers(
    faces: Faces,
) -> dict[str, saliency.RelevanceExplainer]:
    result = faces[0]
    return {name: saliency.RelevanceExplainer(result.model, name) for name in saliency.ANALYZERS}


@pytest.mark.tf
@pytest.mark.parametrize("analyzer", list(saliency.ANALYZERS))
def test_maps_are_finite_not_empty_and_put_relevance_in_the_discriminative_regions(
    analyzer: str,
    faces: Faces,
    explainers: dict[str, saliency.RelevanceExplainer],
) -> None:
    _, images, _, masks = faces
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnalysisWarning)  # a face whose predicted logit is ≤ 0 is allowed
        explanation = explainers[analyzer].explain(images, batch_size=64)
    relevance = explanation.relevance
    assert relevance.shape == images.shape and relevance.dtype == np.float32
    assert np.isfinite(relevance).all()
    non_empty = relevance.reshape(len(relevance), -1).any(axis=1)
    assert non_empty.mean() > 0.95
    positive = np.maximum(relevance, 0)[non_empty]
    share = (positive * masks[non_empty]).sum(axis=(1, 2)) / positive.sum(axis=(1, 2))
    chance = masks.mean()
    assert share.mean() >= max(MIN_SHARE_IN_REGION, MIN_RATIO_TO_CHANCE * chance)


@pytest.mark.tf
@pytest.mark.parametrize("analyzer", ["deep_taylor", "lrp.sequential_preset_a_flat"])
def test_one_pass_rules_give_innvestigates_own_relevance(
    analyzer: str,
    faces: Faces,
    explainers: dict[str, saliency.RelevanceExplainer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result, images, _, _ = faces
    monkeypatch.setitem(
        saliency.ANALYZERS, "stock", functools.partial(saliency._innvestigate_analyzer, analyzer)
    )
    stock = saliency.RelevanceExplainer(result.model, "stock").analyze(images[:32])
    ours = explainers[analyzer].analyze(images[:32])
    np.testing.assert_allclose(ours, stock, rtol=1e-5, atol=1e-6 * np.abs(stock).max())


@pytest.mark.tf
def test_nonnegative_inputs_are_traced_through_relu_pooling_and_flatten() -> None:
    tf = models.ensure_graph_mode()
    layers = tf.keras.layers
    graph, session = models.new_session()
    with graph.as_default(), session.as_default():
        inputs = layers.Input((8, 8, 1), name="image")
        x = layers.Conv2D(2, 3, activation="relu", name="a")(inputs)
        x = layers.Conv2D(2, 3, activation="tanh", name="b")(x)
        x = layers.MaxPooling2D(name="pool")(x)
        x = layers.Conv2D(2, 1, activation="relu", name="c")(x)
        x = layers.Flatten(name="flat")(x)
        model = tf.keras.Model(inputs, layers.Dense(3, name="d")(x))
        found = saliency._nonnegative_input_layers(model)
    assert {layer.name for layer in model.layers if id(layer) in found} == {"a", "b", "flat", "d"}


@pytest.mark.tf
def test_deep_taylor_conserves_the_explained_output_of_the_trained_model(
    faces: Faces,
    explainers: dict[str, saliency.RelevanceExplainer],
) -> None:
    images = faces[1][:64]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnalysisWarning)
        explanation = explainers["deep_taylor"].explain(images)
    np.testing.assert_array_equal(explanation.output, np.maximum(explanation.logit, 0))
    assert (
        saliency.conservation_error(explanation.relevance, explanation.output).max() < CONSERVATION_TOLERANCE
    )


@pytest.mark.tf
def test_lrp_epsilon_conserves_the_logit_of_a_network_without_biases(rng: np.random.Generator) -> None:
    model = models.build_bound_model("small_cnn", input_shape=(24, 24, 1), options={"use_bias": False})
    explanation = saliency.RelevanceExplainer(model, "lrp.epsilon").explain(
        rng.random((16, 24, 24), dtype=np.float32)
    )
    np.testing.assert_array_equal(explanation.output, explanation.logit)
    assert (
        saliency.conservation_error(explanation.relevance, explanation.logit).max() < CONSERVATION_TOLERANCE
    )


@pytest.mark.tf
def test_a_given_class_is_explained_instead_of_the_predicted_one(
    faces: Faces,
    explainers: dict[str, saliency.RelevanceExplainer],
) -> None:
    result, images, _, _ = faces
    images = images[:8]
    explainer = explainers["lrp.epsilon"]
    predicted = explainer.explain(images)
    with result.model.scope() as keras_model:
        logits = models.strip_softmax(keras_model).predict(
            models.as_model_input(images, input_shape=(48, 48, 1)), verbose=0
        )
    np.testing.assert_array_equal(predicted.class_index, logits.argmax(axis=1))
    np.testing.assert_allclose(predicted.logit, logits.max(axis=1), rtol=1e-6)
    chosen = (predicted.class_index + 1) % logits.shape[1]
    other = explainer.explain(images, class_index=chosen)
    np.testing.assert_array_equal(other.class_index, chosen)
    np.testing.assert_allclose(other.logit, logits[np.arange(8), chosen], rtol=1e-6)
    assert not np.allclose(other.relevance, predicted.relevance)
    single = explainer.explain(images, class_index=2)
    np.testing.assert_array_equal(single.class_index, np.full(8, 2))
    with pytest.raises(ValueError, match=r"class_index must lie in \[0, 8\)"):
        explainer.explain(images, class_index=8)


@pytest.mark.tf
def test_an_explainer_built_here_works_from_a_worker_thread(
    faces: Faces,
    explainers: dict[str, saliency.RelevanceExplainer],
) -> None:
    images = faces[1][:4]
    explainer = explainers["lrp.sequential_preset_a_flat"]
    here = explainer.analyze(images)
    there: list[NDArray[Any]] = []
    worker = threading.Thread(target=lambda: there.append(explainer.analyze(images)))
    worker.start()
    worker.join()
    np.testing.assert_array_equal(there[0], here)


@pytest.mark.tf
def test_grey_images_on_an_rgb_model_give_grey_relevance_that_still_conserves(
    rng: np.random.Generator,
) -> None:
    model = models.build_bound_model("small_cnn", input_shape=(16, 16, 3), options={"use_bias": False})
    explainer = saliency.RelevanceExplainer(model, "lrp.epsilon")
    grey = rng.random((3, 16, 16), dtype=np.float32)
    explanation = explainer.explain(grey)
    assert explanation.relevance.shape == (3, 16, 16)
    assert (
        saliency.conservation_error(explanation.relevance, explanation.logit).max() < CONSERVATION_TOLERANCE
    )
    assert explainer.analyze(np.repeat(grey[..., np.newaxis], 3, axis=-1)).shape == (3, 16, 16, 3)


@pytest.mark.tf
def test_all_zero_maps_are_reported(
    faces: Faces,
    explainers: dict[str, saliency.RelevanceExplainer],
) -> None:
    result, images, _, _ = faces
    probabilities = result.model.predict(images[:32])
    least = probabilities.argmin(axis=1)  # the least likely class usually has a negative logit
    with pytest.warns(AnalysisWarning, match="all zero"):
        explainers["deep_taylor"].explain(images[:32], class_index=least)


@pytest.mark.tf
def test_relevance_maps_are_cached_on_disk_and_reused(
    faces: Faces,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result, images, _, _ = faces
    images = images[:6]
    ids = [f"face{i}" for i in range(6)]
    model_path = tmp_path / "trainer.keras"
    save_trained(model_path, result)
    progress: list[tuple[int, int]] = []
    first = saliency.compute_relevance_maps(
        model_path,
        images,
        ids,
        analyzer="gradient",
        cache_dir=tmp_path / "cache",
        batch_size=4,
        on_batch=lambda *a: progress.append(a),
    )
    assert not first.from_cache and first.cache_file is not None and first.cache_file.is_file()
    assert progress == [(4, 6), (6, 6)]
    assert first.maps.shape == (6, 48, 48) and first.ids == tuple(ids)

    saliency._cached_explainer.cache_clear()

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the analyzer was built although the maps are cached")

    monkeypatch.setattr(saliency.RelevanceExplainer, "from_file", no_build)
    second = saliency.compute_relevance_maps(
        model_path, images, ids, analyzer="gradient", cache_dir=tmp_path / "cache"
    )
    assert second.from_cache and second.cache_file == first.cache_file
    np.testing.assert_array_equal(second.maps, first.maps)
    np.testing.assert_array_equal(second.class_index, first.class_index)
    np.testing.assert_array_equal(second.logit, first.logit)
    with pytest.raises(AssertionError, match="was built"):  # other images miss the cache
        saliency.compute_relevance_maps(
            model_path, images[::-1], ids, analyzer="gradient", cache_dir=tmp_path / "cache"
        )
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [first.cache_file.name]


def _model_with(tf_layer: str) -> models.BoundModel:
    def make() -> object:
        tf = models.ensure_graph_mode()
        layers = tf.keras.layers
        inputs = layers.Input((8, 8, 1))
        if tf_layer == "tanh":
            x = layers.Conv2D(2, 3, activation="tanh", name="tanh_conv")(inputs)
        else:
            x = layers.Conv2D(2, 3, name="conv")(inputs)
            x = layers.ReLU(name="separate_relu")(x)
        logits = layers.Dense(3, name="logits")(layers.Flatten()(x))
        return tf.keras.Model(inputs, layers.Activation("softmax")(logits), name=f"with_{tf_layer}")

    return models.new_bound_model(make)


@pytest.mark.tf
def test_a_layer_the_analyzer_rejects_is_named() -> None:
    with pytest.raises(
        UnsupportedLayerError,
        match=r"'deep_taylor' cannot analyse layer 'tanh_conv' \(Conv2D\).*only supports ReLU",
    ):
        saliency.RelevanceExplainer(_model_with("tanh"), "deep_taylor")


@pytest.mark.tf
def test_untested_layers_are_named_and_can_be_allowed(rng: np.random.Generator) -> None:
    model = _model_with("relu")
    with pytest.raises(
        UnsupportedLayerError, match=r"layer 'separate_relu' \(ReLU\).*allow_untested_layers=True"
    ):
        saliency.RelevanceExplainer(model, "lrp.epsilon")
    explainer = saliency.RelevanceExplainer(model, "lrp.epsilon", allow_untested_layers=True)
    assert explainer.untested_layers == ("'separate_relu' (ReLU)",)
    relevance = explainer.analyze(rng.random((2, 8, 8), dtype=np.float32))
    assert relevance.shape == (2, 8, 8) and np.isfinite(relevance).all()
