"""Relevance maps of a Trainer's decisions with iNNvestigate (RBDM §5.2).

The paper explains the Trainer with Layer-wise Relevance Propagation using deep Taylor decomposition
(Montavon et al. 2017) as implemented in iNNvestigate (Alber et al. 2018). LRP is chosen for its
conservation property: the input relevances sum to the value of the explained output neuron, so a pixel
with twice the relevance contributed twice as much. :data:`ANALYZERS` offers deep Taylor (the default),
LRP preset A with the flat input rule (the Temporal Prototypes paper), LRP-ε, and the plain gradient
(Simonyan et al. 2013) as a baseline.

How it runs: iNNvestigate 2 needs graph mode (see :mod:`analysis.models`). A :class:`RelevanceExplainer`
builds its analyzer once, in the graph and session of its :class:`~analysis.models.BoundModel`, and every
call enters that model's scope, so an explainer can be built in one thread and used from another (a GUI
worker). Build one explainer per model and analyzer and reuse it: :func:`explainer_for` keeps the most
recent ones per process, and :func:`compute_relevance_maps` caches finished maps on disk.

Build time: iNNvestigate joins raw TensorFlow gradients with Keras layers. In graph mode, Keras wraps each
such TensorFlow operation in a layer and, by default, *evaluates* every operation input that is not a Keras
tensor (shapes, constants, weight reads) with a session call of its own; every call re-sends the growing
graph to the session, so building takes time quadratic in the depth of the network (stock: about 5 minutes
for MobileNetV2 and a quarter of an hour for InceptionV3 on 2 CPU cores). :func:`_symbolic_op_layers` makes
Keras keep those inputs as graph tensors instead, for the duration of the build: the same maps (tested),
built in seconds, and the analyzer reads the model's live weights rather than a copy frozen at build time.

Speed: iNNvestigate evaluates its α1β0 rule (used by deep Taylor, on every layer with a kernel, and by
preset A on convolutions) as a positive-input and a negative-input half. Where a layer's inputs are ≥ 0
by construction (image intensities, ReLU outputs) the second half is zero, and the analyzers here use a
one-pass form of the same rule for such layers, separable convolutions (mini-Xception) included. LRP-ε
reads each layer's denominator from the forward pass instead of a second forward convolution; deep
Taylor passes relevance through batch norms as the product their gradient is, without TensorFlow's
learning-phase branch and fused gradient kernel. The
maps are identical to iNNvestigate's (tested); ``python -m benchmarks.saliency`` compares the cost with
the plain gradient's. The rest of an LRP pass is mostly element-wise work (masks of the positive and
negative parts, the stabilised divisions, the batch-norm rule), each operation one pass over a whole
activation tensor: on MobileNetV2 these cost four times the convolutions. On networks with batch norms
the three LRP analyzers are therefore built with their element-wise operations fused by XLA
(:func:`_fused_elementwise_operations`), the convolutions left to TensorFlow's kernels: deep Taylor
and preset A flat give the same maps within float32 rounding (within 1e-6 of each map's scale of the
stock analyzers, tested); LRP-ε, whose ε = 1e-7 makes its maps move with any change of float32
rounding, is as close to the stock analyzer computed in float64 as the stock float32 analyzer is
(tested). XLA compiles the fused operations once per batch shape (seconds); batches are padded to a
power of two (at most the batch size), so a ragged last batch or a single image reuses a compiled shape.
The plain gradient, the baseline, is iNNvestigate's own.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import re
import threading
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis._optional import import_innvestigate, import_optional, import_tensorflow
from analysis.errors import AnalysisError, AnalysisWarning, UnsupportedLayerError
from analysis.files import replace_together
from analysis.models import BoundModel, as_model_input, check_images, load_model_file, strip_softmax

__all__ = [
    "ANALYZERS",
    "DEFAULT_ANALYZER",
    "Explanation",
    "RelevanceExplainer",
    "RelevanceMaps",
    "cache_file_name",
    "compute_relevance_maps",
    "conservation_error",
    "explainer_for",
    "file_sha256",
    "maps_to_2d",
    "to_2d",
]


def _innvestigate_analyzer(name: str, logit_model: Any, *, disable_model_checks: bool = False) -> Any:
    """iNNvestigate's analyzer ``name`` for ``logit_model``, explaining the output neuron given per image."""
    innvestigate = import_innvestigate(f"analysis.saliency ({name})")
    return innvestigate.create_analyzer(
        name, logit_model, neuron_selection_mode="index", disable_model_checks=disable_model_checks
    )


def _nonnegative_input_layers(model: Any) -> frozenset[int]:
    """``id`` of each layer of ``model`` whose every input is ≥ 0 by construction.

    A tensor is ≥ 0 when it is the model input (images in [0, 1], enforced by :func:`check_images`), the
    output of a ReLU (activation or layer), or the output of a layer that only selects, pools, pads or
    rearranges values (max/average pooling, flatten, reshape, dropout, zero padding, cropping,
    concatenation) of tensors that are ≥ 0.
    """
    tf = import_tensorflow("analysis.saliency")
    layers = tf.keras.layers
    passes_sign = (
        layers.MaxPooling2D,
        layers.AveragePooling2D,
        layers.GlobalMaxPooling2D,
        layers.GlobalAveragePooling2D,
        layers.Flatten,
        layers.Reshape,
        layers.Dropout,
        layers.ZeroPadding2D,
        layers.Cropping2D,
        layers.Concatenate,
    )
    nonnegative_outputs: set[int] = set()
    nonnegative_inputs: set[int] = set()
    for layer in model.layers:  # topological order
        tensors = [t for node in layer.inbound_nodes for t in tf.nest.flatten(node.input_tensors)]
        if all(id(t._keras_history[0]) in nonnegative_outputs for t in tensors):
            nonnegative_inputs.add(id(layer))
            if isinstance(layer, passes_sign):
                nonnegative_outputs.add(id(layer))
        if isinstance(layer, layers.InputLayer) or _is_relu(layer, tf):
            nonnegative_outputs.add(id(layer))
    return frozenset(nonnegative_inputs)


def _is_relu(layer: Any, tf: Any) -> bool:
    """A ReLU layer without leak, or a layer with a ReLU activation: its output is ≥ 0."""
    if isinstance(layer, tf.keras.layers.ReLU):
        return float(layer.negative_slope) == 0.0 and float(layer.threshold) >= 0.0
    return getattr(layer, "activation", None) is tf.keras.activations.get("relu")


def _nonnegative_input_rule() -> Any:
    """An iNNvestigate reverse mapping for α1β0 on inputs x ≥ 0, in one pass.

    For x ≥ 0, LRP-α1β0 keeps only the positive weights: ``R_i = x_i Σ_j w⁺_ij R_j / z_j`` with
    ``z_j = Σ_i x_i w⁺_ij + b_j``, where ``b`` is the layer's bias when the rule keeps biases (in
    iNNvestigate's α1β0 the positive and the negative bias parts both reach ``z_j`` because its
    negative-input half is zero) and 0 when it ignores them (z+). iNNvestigate evaluates both halves of
    α1β0 (two convolutions and two gradients); this needs one of each.
    """
    tf = import_tensorflow("analysis.saliency")
    graph = import_optional("innvestigate.backend.graph", caller="analysis.saliency")
    backend = import_optional("innvestigate.backend", caller="analysis.saliency")

    class NonnegativeInputAlpha1Beta0Rule(graph.ReverseMappingBase):  # type: ignore[misc, name-defined]
        keep_bias = True

        def __init__(self, layer: Any, _state: Any) -> None:
            # The kernels come first: ``kernel``, ``depthwise_kernel``, or a separable convolution's
            # ``depthwise_kernel`` and ``pointwise_kernel``; each keeps its positive part, as in
            # iNNvestigate's positive half.
            has_bias = bool(getattr(layer, "use_bias", False))
            kernels = layer.weights[: len(layer.weights) - has_bias]
            weights = [kernel * tf.cast(kernel > 0, kernel.dtype) for kernel in kernels]
            if self.keep_bias and has_bias:
                weights.append(layer.bias)
            self._positive = graph.copy_layer_wo_activation(
                layer,
                keep_bias=self.keep_bias,
                weights=weights,
                name_template="reversed_kernel_positive_nonnegative_input_%s",
            )

        def apply(self, Xs: Any, _Ys: Any, Rs: Any, _reverse_state: Any) -> Any:
            Zs = backend.apply(self._positive, Xs)
            divide = _safe_divide_layer(keep_bias=self.keep_bias)
            scaled = [divide([r, z]) for r, z in zip(Rs, Zs, strict=True)]
            grads = backend.gradients(Xs, Zs, scaled)
            return [tf.keras.layers.Multiply()([x, g]) for x, g in zip(Xs, grads, strict=True)]

    class NonnegativeInputZPlusRule(NonnegativeInputAlpha1Beta0Rule):
        keep_bias = False

    return NonnegativeInputAlpha1Beta0Rule, NonnegativeInputZPlusRule


def _rule_modules() -> tuple[Any, Any, Any]:
    """TensorFlow, iNNvestigate's relevance rules and its backend: what a rule class here is built on,
    imported when the first analyzer is built (this module loads without TensorFlow)."""
    return (
        import_tensorflow("analysis.saliency"),
        import_optional("innvestigate.analyzer.relevance_based.relevance_rule", caller="analysis.saliency"),
        import_optional("innvestigate.backend", caller="analysis.saliency"),
    )


def _safe_divide_layer(*, keep_bias: bool) -> Any:
    """iNNvestigate's ``safe_divide(a, b)`` of an α1β0 rule: ``a / (b + 1e-7·[b = 0])``.

    Without biases (z+) ``b_j = Σ_i x⁺_i w⁺_ij + x⁻_i w⁻_ij`` is 0 only where every product is 0, and
    then every input ``i`` that ``a_j / b_j`` reaches through a non-zero weight is multiplied by an
    ``x_i = 0`` afterwards: whatever the quotient, the relevance is the same, so one ``divide_no_nan``
    (0 where ``b = 0``) replaces iNNvestigate's five operations. With biases a sum can cancel its bias
    exactly, so iNNvestigate's own form is kept.
    """
    tf = import_tensorflow("analysis.saliency")
    backend = import_optional("innvestigate.backend", caller="analysis.saliency")

    def divide(inputs: list[Any]) -> Any:
        a, b = inputs
        return backend.safe_divide(a, b) if keep_bias else tf.math.divide_no_nan(a, b)

    return tf.keras.layers.Lambda(divide)


def _signed_input_rule() -> Any:
    """iNNvestigate's α1β0 reverse mappings (with biases, and ignoring them) in fewer operations.

    The same two halves as iNNvestigate's ``AlphaBetaRule`` with β = 0, ``x⁺`` through the positive
    and ``x⁻`` through the negative weights, with the same sums in the same order; its masks
    ``x·[x > 0]`` and ``x·[x < 0]`` are one operation each here (``max(x, 0)``, ``min(x, 0)``) and its
    stabilised division one without biases (:func:`_safe_divide_layer`). The maps are the same
    (tested). For layers whose inputs can be negative (after mini-Xception's residual additions).
    """
    tf, rules, backend = _rule_modules()

    def combine(inputs: list[Any]) -> Any:
        positive, positive_grad, negative, negative_grad = inputs
        return positive * positive_grad + negative * negative_grad

    class SignedInputAlpha1Beta0Rule(rules.Alpha1Beta0Rule):  # type: ignore[misc, name-defined]
        keep_bias = True

        def apply(self, Xs: Any, _Ys: Any, Rs: Any, _reverse_state: Any) -> Any:
            positive = [tf.keras.layers.Lambda(lambda x: tf.maximum(x, 0.0))(x) for x in Xs]
            negative = [tf.keras.layers.Lambda(lambda x: tf.minimum(x, 0.0))(x) for x in Xs]
            Z1 = backend.apply(self._layer_wo_act_positive, positive)
            Z2 = backend.apply(self._layer_wo_act_negative, negative)
            Zs = [tf.keras.layers.Add()([a, b]) for a, b in zip(Z1, Z2, strict=True)]
            divide = _safe_divide_layer(keep_bias=self.keep_bias)
            scaled = [divide([r, z]) for r, z in zip(Rs, Zs, strict=True)]
            grads1 = backend.gradients(positive, Z1, scaled)
            grads2 = backend.gradients(negative, Z2, scaled)
            return [
                tf.keras.layers.Lambda(combine)([p, g1, n, g2])
                for p, g1, n, g2 in zip(positive, grads1, negative, grads2, strict=True)
            ]

    class SignedInputZPlusRule(SignedInputAlpha1Beta0Rule):
        keep_bias = False

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            rules.AlphaBetaRule.__init__(self, *args, alpha=1, beta=0, bias=False, **kwargs)

    return SignedInputAlpha1Beta0Rule, SignedInputZPlusRule


def _one_image_flat_rule() -> Any:
    """iNNvestigate's flat rule with its denominator computed for one image instead of every image.

    The flat rule divides by ``z_j``, the number of inputs of neuron ``j`` (the layer with all weights
    1 and no bias applied to ones); iNNvestigate applies it to ones shaped like the whole batch, a
    convolution whose result is the same for every image. Here the ones have one image and the division
    broadcasts: the same values (small integer sums, exact in float32).
    """
    tf, rules, backend = _rule_modules()

    class OneImageFlatRule(rules.FlatRule):  # type: ignore[misc, name-defined]
        def apply(self, Xs: Any, _Ys: Any, Rs: Any, _reverse_state: Any) -> Any:
            Ys = backend.apply(self._layer_wo_act_b, Xs)  # the path back; its values are not computed
            one_image = tf.keras.layers.Lambda(lambda x: tf.ones_like(x[:1]))
            Zs = [self._layer_wo_act_b(one_image(x)) for x in Xs]
            scaled = [backend.safe_divide(r, z) for r, z in zip(Rs, Zs, strict=True)]
            return backend.gradients(Xs, Ys, scaled)

    return OneImageFlatRule


def _batch_norm_gradient_rule() -> Any:
    """The gradient of an inference-mode batch norm as one element-wise product.

    iNNvestigate's deep Taylor passes relevance through batch norms by their gradient (its ReLU
    mapping matches every layer without kernel and activation). TensorFlow differentiates Keras' batch
    norm through its learning-phase branch and a fused gradient kernel that also reduces the unused
    scale and offset gradients over the batch; the gradient with respect to the input is
    ``R · γ / √(σ² + ε)`` per channel, written here as such so that XLA fuses it with its neighbours.
    """
    tf = import_tensorflow("analysis.saliency")
    graph = import_optional("innvestigate.backend.graph", caller="analysis.saliency")

    class BatchNormGradientRule(graph.ReverseMappingBase):  # type: ignore[misc, name-defined]
        def __init__(self, layer: Any, _state: Any) -> None:
            self._layer = layer

        def apply(self, _Xs: Any, _Ys: Any, Rs: Any, _reverse_state: Any) -> Any:
            layer = self._layer
            # A graph tensor read from the variables at every run (not a variable inside the Lambda)
            slope = tf.math.rsqrt(layer.moving_variance + layer.epsilon)
            if layer.scale:
                slope = layer.gamma * slope
            return [tf.keras.layers.Lambda(lambda r: r * slope)(r) for r in Rs]

    return BatchNormGradientRule


def _is_channels_last_batch_norm(layer: Any, tf: Any) -> bool:
    if not isinstance(layer, tf.keras.layers.BatchNormalization):
        return False
    rank = len(layer.input_shape)
    return [a % rank for a in np.atleast_1d(layer.axis).tolist()] == [rank - 1]


def _one_pass_layer_types(tf: Any) -> tuple[type, ...]:
    """Convolutions whose weights are their kernels followed by an optional bias (the one-pass rule's
    assumption): plain, depthwise, and separable (depthwise then pointwise, as in mini-Xception)."""
    layers = tf.keras.layers
    return (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)


def _deep_taylor(logit_model: Any, *, disable_model_checks: bool = False) -> Any:
    """iNNvestigate's deep Taylor, with its z+ rule done in one pass where a layer's inputs are ≥ 0.

    iNNvestigate's deep Taylor applies α1β0 ignoring biases (z+) to every layer with a kernel and an
    ``activation`` attribute (ReLU or linear: the convolutions and dense layers of Keras), evaluating a
    positive-input and a negative-input half. For inputs that are ≥ 0 by construction
    (:func:`_nonnegative_input_layers`) the second half is exactly zero; those layers get the one-pass
    rule instead, so the relevance is unchanged (tested) and the analysis about 1.5 × faster.
    """
    innvestigate = import_innvestigate("analysis.saliency (deep_taylor)")
    tf = import_tensorflow("analysis.saliency")
    checks = import_optional("innvestigate.backend.checks", caller="analysis.saliency")
    _, zplus = _nonnegative_input_rule()
    _, signed_zplus = _signed_input_rule()
    batch_norm_gradient = _batch_norm_gradient_rule()
    nonnegative = _nonnegative_input_layers(logit_model)

    def one_pass(layer: Any) -> bool:
        # DeepTaylor's z+ condition (a kernel and an ``activation`` attribute, linear included), for the
        # layer types whose weights the one-pass rule reads.
        return (
            checks.contains_kernel(layer)
            and checks.contains_activation(layer)
            and (type(layer) in _one_pass_layer_types(tf) or type(layer) is tf.keras.layers.Dense)
        )

    class DeepTaylor(innvestigate.analyzer.DeepTaylor):  # type: ignore[misc, name-defined]
        def _create_analysis(self, *args: Any, **kwargs: Any) -> Any:
            self._add_conditional_reverse_mapping(
                lambda layer: id(layer) in nonnegative and one_pass(layer),
                zplus,
                name="deep_taylor_kernel_w_relu_nonnegative_input",
                priority=1,  # before DeepTaylor's own mappings (priority -1)
            )
            self._add_conditional_reverse_mapping(
                lambda layer: id(layer) not in nonnegative and one_pass(layer),
                signed_zplus,
                name="deep_taylor_kernel_w_relu_signed_input",
                priority=1,
            )
            self._add_conditional_reverse_mapping(
                lambda layer: _is_channels_last_batch_norm(layer, tf),
                batch_norm_gradient,
                name="deep_taylor_batch_norm_gradient",
                priority=1,
            )
            return super()._create_analysis(*args, **kwargs)

    analyzer = DeepTaylor(
        logit_model, neuron_selection_mode="index", disable_model_checks=disable_model_checks
    )
    setattr(analyzer, _FUSED_MARK, _has_batch_norm(logit_model))
    return analyzer


def _preset_a_flat(logit_model: Any, *, disable_model_checks: bool = False) -> Any:
    """iNNvestigate's LRP preset A flat, with its α1β0 convolutions done in one pass where inputs are ≥ 0.

    Preset A applies α1β0 (with biases) to convolutions, ε = 0.1 to dense layers and, in this "flat"
    variant, the flat rule to the first layer. Convolutions (plain, depthwise, separable) after the first
    whose inputs are ≥ 0 by construction get the one-pass form of the same rule; the relevance is
    unchanged (tested).
    """
    innvestigate = import_innvestigate("analysis.saliency (lrp.sequential_preset_a_flat)")
    tf = import_tensorflow("analysis.saliency")
    checks = import_optional("innvestigate.backend.checks", caller="analysis.saliency")
    alpha1beta0, _ = _nonnegative_input_rule()
    signed_alpha1beta0, _ = _signed_input_rule()
    flat = _one_image_flat_rule()
    nonnegative = _nonnegative_input_layers(logit_model)

    def convolution(layer: Any) -> bool:
        # the first layer keeps the flat rule
        return type(layer) in _one_pass_layer_types(tf) and not checks.is_input_layer(layer)

    class PresetAFlat(innvestigate.analyzer.LRPSequentialPresetAFlat):  # type: ignore[misc, name-defined]
        def _create_analysis(self, *args: Any, **kwargs: Any) -> Any:
            self._add_conditional_reverse_mapping(
                lambda layer: convolution(layer) and id(layer) in nonnegative,
                alpha1beta0,
                name="lrp_conv_nonnegative_input",
                priority=1,
            )
            self._add_conditional_reverse_mapping(
                lambda layer: convolution(layer) and id(layer) not in nonnegative,
                signed_alpha1beta0,
                name="lrp_conv_signed_input",
                priority=1,
            )
            self._add_conditional_reverse_mapping(
                lambda layer: checks.is_input_layer(layer) and checks.contains_kernel(layer),
                flat,
                name="lrp_input_layer_flat_one_image",
                priority=1,
            )
            return super()._create_analysis(*args, **kwargs)

    analyzer = PresetAFlat(
        logit_model, neuron_selection_mode="index", disable_model_checks=disable_model_checks
    )
    setattr(analyzer, _FUSED_MARK, _has_batch_norm(logit_model))
    return analyzer


def _forward_denominator_epsilon_rule() -> Any:
    """iNNvestigate's ε rule with the denominator read from the forward pass instead of computed again.

    The ε rule divides the relevance ``R_j`` by ``z_j + ε·sign(z_j)``, where ``z_j = Σ_i x_i w_ij + b_j``
    is the layer's pre-activation; iNNvestigate computes ``z`` with a second forward convolution. For a
    layer without activation the forward pass's output ``y`` is ``z``; for a ReLU layer ``y = z`` where
    ``z > 0``, and where ``y = 0`` the relevance reaching the neuron is 0 (every LRP rule hands relevance
    to a neuron in proportion to its activation), so ``0 / (0 + ε)`` gives the stock rule's 0. ``R / z``
    is carried back by the gradient of the forward pass itself (through a ReLU, its gradient zeroes
    only values that are 0 already): the same maps (tested), one convolution fewer per layer.
    """
    tf, rules, backend = _rule_modules()

    class ForwardDenominatorEpsilonRule(rules.EpsilonRule):  # type: ignore[misc, name-defined]
        def apply(self, Xs: Any, Ys: Any, Rs: Any, _reverse_state: Any) -> Any:
            epsilon = self._epsilon

            def scale(inputs: list[Any]) -> Any:
                r, y = inputs
                return r / (y + (tf.cast(y >= 0, y.dtype) * 2 - 1) * epsilon)

            scaled = [tf.keras.layers.Lambda(scale)([r, y]) for r, y in zip(Rs, Ys, strict=True)]
            # Back through the forward pass itself: a ReLU's gradient only zeroes what is already 0.
            grads = backend.gradients(Xs, Ys, scaled)
            return [tf.keras.layers.Multiply()([x, g]) for x, g in zip(Xs, grads, strict=True)]

    return ForwardDenominatorEpsilonRule


def _epsilon(logit_model: Any, *, disable_model_checks: bool = False) -> Any:
    """iNNvestigate's LRP-ε (ε = 1e-7), with each ReLU or linear layer's denominator from the forward pass.

    See :func:`_forward_denominator_epsilon_rule`; other activations keep iNNvestigate's rule. On
    networks with batch norms the element-wise operations are fused like deep Taylor's; ε = 1e-7 makes
    the maps sensitive to any change in float32 rounding, so the fused maps are tested against a
    float64 computation of the stock analyzer: no farther from it than the stock float32 maps are.
    """
    innvestigate = import_innvestigate("analysis.saliency (lrp.epsilon)")
    tf = import_tensorflow("analysis.saliency")
    forward_denominator = _forward_denominator_epsilon_rule()

    def applies(layer: Any) -> bool:
        activation = getattr(layer, "activation", None)
        return type(layer) in (*_one_pass_layer_types(tf), tf.keras.layers.Dense) and activation in (
            tf.keras.activations.get("linear"),
            tf.keras.activations.get("relu"),
        )

    class Epsilon(innvestigate.analyzer.LRPEpsilon):  # type: ignore[misc, name-defined]
        def _create_analysis(self, *args: Any, **kwargs: Any) -> Any:
            self._add_conditional_reverse_mapping(
                applies, forward_denominator, name="lrp_epsilon_forward_denominator", priority=1
            )
            return super()._create_analysis(*args, **kwargs)

    analyzer = Epsilon(logit_model, neuron_selection_mode="index", disable_model_checks=disable_model_checks)
    setattr(analyzer, _FUSED_MARK, _has_batch_norm(logit_model))
    return analyzer


#: Analyzer name → factory ``(logit_model, *, disable_model_checks) -> iNNvestigate analyzer``.
ANALYZERS: dict[str, Callable[..., Any]] = {
    # Deep Taylor decomposition (RBDM §5.2, the paper's choice): z+ in ReLU layers, w² in linear ones.
    # iNNvestigate's DeepTaylor; one-pass z+ where inputs are ≥ 0; element-wise operations fused
    # (same maps).
    "deep_taylor": _deep_taylor,
    # LRP-ε (ε = 0.1) in dense layers, LRP-α1β0 in convolutions, flat rule in the first layer (TP paper).
    # iNNvestigate's LRPSequentialPresetAFlat; one-pass α1β0 where inputs are ≥ 0; element-wise
    # operations fused (same maps).
    "lrp.sequential_preset_a_flat": _preset_a_flat,
    # LRP-ε everywhere with iNNvestigate's ε = 1e-7: conserves relevance up to what biases absorb.
    # iNNvestigate's LRPEpsilon; denominators read from the forward pass (same maps); element-wise
    # operations fused on networks with batch norms (as close to a float64 oracle as the stock maps).
    "lrp.epsilon": _epsilon,
    # The plain gradient of the logit (sensitivity); the baseline, with no conservation property.
    "gradient": functools.partial(_innvestigate_analyzer, "gradient"),
}

#: The paper's analyzer (RBDM §5.2).
DEFAULT_ANALYZER = "deep_taylor"

#: Analyzers that distribute max(logit, 0) instead of the logit (iNNvestigate's deep Taylor adds a ReLU).
_EXPLAINS_RELU_OF_LOGIT = frozenset({"deep_taylor"})


@dataclass(frozen=True, slots=True)
class Explanation:
    """Relevance of every input value for one output neuron per image.

    Parameters
    ----------
    relevance : ndarray of float32, shape of the images, (N, H, W) or (N, H, W, 3)
        Relevance per pixel (and channel).
    class_index : ndarray of int64, shape (N,)
        The output neuron explained for each image.
    logit : ndarray of float32, shape (N,)
        The model's logit of that neuron.
    output : ndarray of float32, shape (N,)
        The value the analyzer distributes: the logit, or max(logit, 0) for deep Taylor. For LRP it is
        what the relevance sums to (conservation, RBDM §5.2).
    """

    relevance: NDArray[np.float32]
    class_index: NDArray[np.int64]
    logit: NDArray[np.float32]
    output: NDArray[np.float32]


class RelevanceExplainer:
    """One iNNvestigate analyzer built once for one model, explaining batches of images (RBDM §5.2).

    Parameters
    ----------
    model : BoundModel
        The classifier (softmax output allowed: it is stripped, relevance explains logits). The analyzer's
        operations are added to this model's graph.
    analyzer : str
        A key of :data:`ANALYZERS`; ``"deep_taylor"`` is the paper's.
    allow_untested_layers : bool
        iNNvestigate refuses some analyzer/layer pairs it has not validated (for LRP: layers outside its
        list of convnet layers, such as the separate ``ReLU`` layers of MobileNetV2; for preset A: non-ReLU
        activations). False raises :class:`UnsupportedLayerError` naming them; True runs the analyzer
        anyway and lists them in :attr:`untested_layers`. Layers an analyzer cannot handle at all raise
        either way.

    Raises
    ------
    ValueError
        For an unknown analyzer.
    UnsupportedLayerError
        When iNNvestigate cannot analyse a layer of the model; the message names the layer.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.2.
    .. [2] Alber et al. (2019), iNNvestigate neural networks!, JMLR 20(93).
    """

    def __init__(
        self, model: BoundModel, analyzer: str = DEFAULT_ANALYZER, *, allow_untested_layers: bool = False
    ):
        if analyzer not in ANALYZERS:
            raise ValueError(f"unknown analyzer {analyzer!r}; expected one of {', '.join(ANALYZERS)}.")
        self.model = model
        self.analyzer = analyzer
        with model.scope() as keras_model:
            self._logit_model = strip_softmax(keras_model)
            # Initialise the variables in this session before iNNvestigate copies any layer.
            self._logit_model.predict(np.zeros((1, *model.input_shape), dtype=np.float32), verbose=0)
            self._analyzer, self.untested_layers = _build_analyzer(
                analyzer, self._logit_model, allow_untested_layers=allow_untested_layers
            )

    @classmethod
    def from_file(
        cls, path: str | Path, analyzer: str = DEFAULT_ANALYZER, *, allow_untested_layers: bool = False
    ) -> RelevanceExplainer:
        """Load a ``.keras`` model into its own graph and build the analyzer for it."""
        return cls(load_model_file(path), analyzer, allow_untested_layers=allow_untested_layers)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The model's input shape ``(height_px, width_px, channels)``."""
        return self.model.input_shape

    def explain(
        self,
        images: ArrayLike,
        *,
        class_index: int | ArrayLike | None = None,
        batch_size: int = 64,
        on_batch: Callable[[int, int], None] | None = None,
        warn_empty: bool = True,
    ) -> Explanation:
        """Relevance maps of ``images`` for the predicted class or the given class(es).

        Parameters
        ----------
        images : array_like, shape (N, H, W) or (N, H, W, 3)
            Intensities in [0, 1] at the model's input size. Grey images fed to an RGB model are repeated
            to 3 channels and their relevance summed back over the channels.
        class_index : int or array_like of int, optional
            The output neuron to explain: None for each image's predicted class (the largest logit), one
            index for all images, or one per image.
        batch_size : int
            Images per analyzer call.
        on_batch : callable, optional
            Called as ``on_batch(n_done, n_total)`` after each batch (progress).
        warn_empty : bool
            Warn when some maps are all zero. Callers that report empty maps themselves, and callers on
            worker threads (where ``warnings.catch_warnings`` is not safe), pass False.

        Returns
        -------
        Explanation
            ``relevance`` has the shape of ``images``.

        Raises
        ------
        AnalysisError
            When the analyzer returns NaN or infinite relevance.

        Warns
        -----
        AnalysisWarning
            When some maps are all zero (deep Taylor gives nothing for a logit ≤ 0) and ``warn_empty``.
        """
        x = as_model_input(images, input_shape=self.input_shape)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer ≥ 1; got {batch_size!r}.")
        with self.model.scope():
            logits = np.asarray(self._logit_model.predict(x, batch_size=256, verbose=0), dtype=np.float32)
            classes = _class_selection(class_index, logits)
            parts = []
            for start in range(0, len(x), batch_size):
                stop = min(start + batch_size, len(x))
                parts.append(self._analyze(x[start:stop], classes[start:stop], batch_size=batch_size))
                if on_batch is not None:
                    on_batch(stop, len(x))
        relevance = _like_images(np.concatenate(parts).astype(np.float32), np.ndim(images))
        logit = logits[np.arange(len(x)), classes]
        output = np.maximum(logit, 0) if self.analyzer in _EXPLAINS_RELU_OF_LOGIT else logit
        _check_relevance(relevance, self.analyzer, warn_empty=warn_empty)
        return Explanation(
            relevance=relevance, class_index=classes, logit=logit, output=output.astype(np.float32)
        )

    def _analyze(
        self, x: NDArray[np.float32], classes: NDArray[np.int64], *, batch_size: int
    ) -> NDArray[Any]:
        """One analyzer call; a fused analyzer's batch is padded to a :func:`_padded_batch_size` first.

        XLA compiles the fused operations once per batch shape (seconds each); padded, a data set whose
        last batch is ragged, or single images from the GUI, reuse a few compiled shapes. Each image's
        relevance depends on that image only, so the padding (black images) is cut off unchanged.
        """
        n = len(x)
        padded = _padded_batch_size(n, batch_size) if getattr(self._analyzer, _FUSED_MARK, False) else n
        if padded > n:
            x = np.concatenate([x, np.zeros((padded - n, *x.shape[1:]), dtype=x.dtype)])
            classes = np.concatenate([classes, np.zeros(padded - n, dtype=classes.dtype)])
        return np.asarray(self._analyzer.analyze(x, neuron_selection=classes))[:n]

    def analyze(
        self, images: ArrayLike, *, class_index: int | ArrayLike | None = None
    ) -> NDArray[np.float32]:
        """Only the relevance of :meth:`explain`, shaped like ``images``."""
        return self.explain(images, class_index=class_index).relevance


def _padded_batch_size(n: int, batch_size: int) -> int:
    """The batch shape a fused analyzer runs ``n`` ≤ ``batch_size`` images in: the next power of two,
    at most ``batch_size``. Over any number of calls a fused analyzer is compiled for at most
    ``log2(batch_size) + 2`` shapes per batch size."""
    return min(1 << (n - 1).bit_length(), batch_size)


def _build_analyzer(
    name: str, logit_model: Any, *, allow_untested_layers: bool
) -> tuple[Any, tuple[str, ...]]:
    """Create and compile the analyzer; translate iNNvestigate's refusals into UnsupportedLayerError.

    iNNvestigate 2.1.2 raises ``NotAnalyzeableModelException`` for analyzer/layer pairs it rejects, and a
    bare ``NotImplementedError`` right after warning about pairs it merely has not validated (its
    "warning" model checks). Its exception-type checks run before its warning-type ones, so when only a
    warning fired, rebuilding with ``disable_model_checks=True`` skips nothing that would have raised.
    """
    innvestigate = import_innvestigate("analysis.saliency")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return _compiled(ANALYZERS[name](logit_model)), ()
        except innvestigate.NotAnalyzeableModelException as err:
            raise _unsupported(name, logit_model, str(err)) from err
        except NotImplementedError as err:
            notes = [str(w.message) for w in caught if "Check triggered by layers" in str(w.message)]
            if str(err) or not notes:
                raise _unsupported(name, logit_model, str(err) or repr(err)) from err
    untested = tuple(layer for note in notes for layer in _layer_names(note, logit_model))
    if not allow_untested_layers:
        raise _unsupported(
            name,
            logit_model,
            " ".join(notes),
            hint="Pass allow_untested_layers=True (CLI: --allow-untested-layers) to run it anyway.",
        )
    return _compiled(ANALYZERS[name](logit_model, disable_model_checks=True)), untested


#: Keras 2.14's switch between evaluating (default) and keeping symbolic the non-Keras inputs of the
#: TensorFlow operations it wraps into layers in graph mode (``keras.src.engine.base_layer_utils``).
_KERAS_OP_LAYER_MODULE = "keras.src.engine.base_layer_utils"
_KERAS_OP_LAYER_SWITCH = "_UNSAFE_GRAPH_OP_LAYER_CREATION"
_op_layer_lock = threading.Lock()


@contextlib.contextmanager
def _symbolic_op_layers() -> Iterator[None]:
    """Keep the inputs of wrapped TensorFlow operations symbolic while an analyzer is built.

    Keras' default evaluates each such input with its own session call, re-sending the whole graph each
    time (see the module docstring). The switch is process-wide, so builds take turns and the previous
    value is always restored. Keras versions without the switch build the stock (slow) way.
    """
    module = importlib.import_module(_KERAS_OP_LAYER_MODULE)
    if not hasattr(module, _KERAS_OP_LAYER_SWITCH):
        yield
        return
    with _op_layer_lock:
        previous = getattr(module, _KERAS_OP_LAYER_SWITCH)
        setattr(module, _KERAS_OP_LAYER_SWITCH, True)
        try:
            yield
        finally:
            setattr(module, _KERAS_OP_LAYER_SWITCH, previous)


def _compiled(analyzer: Any) -> Any:
    """Build the analyzer's Keras model now, so that build errors and build time happen here."""
    with _symbolic_op_layers(), _fused_elementwise_operations(analyzer):
        analyzer.create_analyzer_model()
    return analyzer


#: Operations left to TensorFlow's own (oneDNN) kernels when the rest of a relevance pass is fused.
_UNFUSED_OPERATIONS = frozenset(
    {
        "Conv2D",
        "Conv2DBackpropInput",
        "Conv2DBackpropFilter",
        "DepthwiseConv2dNative",
        "DepthwiseConv2dNativeBackpropInput",
        "DepthwiseConv2dNativeBackpropFilter",
        "FusedBatchNormV3",
        "FusedBatchNormGradV3",
        "MatMul",
    }
)

#: Marks an iNNvestigate analyzer whose reverse pass is built with fused element-wise operations.
_FUSED_MARK = "_rbdm_fused_elementwise"


def _has_batch_norm(model: Any) -> bool:
    """Whether ``model`` has a batch norm, whose LRP rule is the bulk of the element-wise work.

    Fusing pays there (MobileNetV2: preset A flat from about 3 × to 1.2 × the gradient's cost); on a
    plain CNN the fused clusters cost more than they save (small CNN: 1.3 × stock, 2.3–2.7 × fused).
    """
    tf = import_tensorflow("analysis.saliency")
    return any(isinstance(layer, tf.keras.layers.BatchNormalization) for layer in model.layers)


def _fuse(node_def: Any) -> bool:
    return str(node_def.op) not in _UNFUSED_OPERATIONS


@contextlib.contextmanager
def _fused_elementwise_operations(analyzer: Any) -> Iterator[None]:
    """Let XLA fuse the element-wise operations of the relevance pass built in this context.

    LRP rules are chains of element-wise operations (masks of positive and negative parts, the
    stabilised division, the batch-norm rule): each one pass over a whole activation tensor, and
    together they cost several times the convolutions. Fused (``jit_scope``), a chain reads and writes
    each tensor once; the convolutions keep TensorFlow's kernels. Analyzers without the mark (the
    plain gradient, iNNvestigate's stock analyzers) are built as they are.
    """
    if not getattr(analyzer, _FUSED_MARK, False):
        yield
        return
    tf = import_tensorflow("analysis.saliency")
    with tf.xla.experimental.jit_scope(compile_ops=_fuse):
        yield


def _layer_names(message: str, model: Any) -> list[str]:
    """Names of the layers whose object addresses iNNvestigate printed in ``message``."""
    by_id = {id(layer): layer for layer in model.layers}
    found = []
    for address in re.findall(r" at (0x[0-9a-fA-F]+)>", message):
        layer = by_id.get(int(address, 16))
        if layer is not None:
            found.append(f"{layer.name!r} ({type(layer).__name__})")
    return found


def _unsupported(name: str, model: Any, message: str, *, hint: str = "") -> UnsupportedLayerError:
    layers = _layer_names(message, model)
    reason = re.sub(r"\s*Check triggered by layers:.*", "", message, flags=re.DOTALL).strip()
    reason = re.sub(r"<[\w.]+ object at 0x[0-9a-fA-F]+>", "", reason).strip() or "unsupported layer"
    which = ", ".join(dict.fromkeys(layers)) or "a layer"
    return UnsupportedLayerError(
        f"iNNvestigate's {name!r} cannot analyse layer {which} of model {model.name!r}: {reason} "
        f"{hint or 'Choose another analyzer (e.g. gradient) or an architecture without that layer.'}"
    )


def _class_selection(class_index: int | ArrayLike | None, logits: NDArray[np.float32]) -> NDArray[np.int64]:
    n, n_classes = logits.shape
    if class_index is None:
        return np.asarray(logits.argmax(axis=1), dtype=np.int64)
    selected = np.asarray(class_index)
    if not np.issubdtype(selected.dtype, np.integer) or selected.ndim > 1:
        raise ValueError(
            f"class_index must be None, an integer or one integer per image; got {class_index!r}."
        )
    selected = np.broadcast_to(selected, (n,)) if selected.ndim == 0 else selected
    if selected.shape != (n,):
        raise ValueError(f"class_index must hold one class per image ({n}); got {selected.shape[0]}.")
    if selected.min() < 0 or selected.max() >= n_classes:
        raise ValueError(
            f"class_index must lie in [0, {n_classes}); got values in [{selected.min()}, {selected.max()}]."
        )
    return selected.astype(np.int64)


def _like_images(relevance: NDArray[np.float32], images_ndim: int) -> NDArray[np.float32]:
    """Sum channels away for grey images: (N, H, W, C) → (N, H, W); keep RGB relevance as it is."""
    return relevance.sum(axis=-1, dtype=np.float32) if images_ndim == 3 else relevance


def _check_relevance(relevance: NDArray[np.float32], analyzer: str, *, warn_empty: bool) -> None:
    bad = ~np.isfinite(relevance)
    if bad.any():
        raise AnalysisError(
            f"{analyzer} returned {int(bad.sum())} NaN or infinite relevance values. "
            "Try 'lrp.epsilon' or 'gradient', or check the model's weights."
        )
    empty = np.flatnonzero(~relevance.reshape(len(relevance), -1).any(axis=1))
    if empty.size and warn_empty:
        warnings.warn(
            f"{empty.size} of {len(relevance)} relevance maps from {analyzer} are all zero (images "
            f"{empty[:10].tolist()}{'…' if empty.size > 10 else ''}); deep Taylor gives no relevance when "
            "the "
            "explained logit is ≤ 0. Masks built from them keep or drop nothing.",
            AnalysisWarning,
            stacklevel=3,
        )


# --------------------------------------------------------------------------------------------------------
# Maps
# --------------------------------------------------------------------------------------------------------


def to_2d(relevance: ArrayLike) -> NDArray[np.float32]:
    """One relevance map as a 2-D (H, W) map: colour relevance summed over its channel axis.

    Summing keeps conservation: the 2-D map still sums to the explained output.

    Parameters
    ----------
    relevance : array_like, shape (H, W) or (H, W, C)
    """
    r = np.asarray(relevance, dtype=np.float32)
    if r.ndim == 2:
        return r.copy()
    if r.ndim == 3:
        return np.asarray(r.sum(axis=-1), dtype=np.float32)
    raise ValueError(
        f"relevance must be one (H, W) or (H, W, C) map; got shape {r.shape!r}. Use maps_to_2d for a batch."
    )


def maps_to_2d(relevance: ArrayLike) -> NDArray[np.float32]:
    """A batch of relevance maps as (N, H, W): (N, H, W, C) summed over channels, (N, H, W) copied."""
    r = np.asarray(relevance, dtype=np.float32)
    if r.ndim == 3:
        return r.copy()
    if r.ndim == 4:
        return np.asarray(r.sum(axis=-1), dtype=np.float32)
    raise ValueError(f"relevance must be a batch (N, H, W) or (N, H, W, C); got shape {r.shape!r}.")


def conservation_error(relevance: ArrayLike, output: ArrayLike) -> NDArray[np.float64]:
    """Relative conservation error per map: ``|Σ_i R_i − f| / |f|`` (RBDM §5.2, conservation property).

    Parameters
    ----------
    relevance : array_like, shape (N, ...)
        Relevance maps, one per explained output.
    output : array_like, shape (N,)
        The explained values f (:attr:`Explanation.output`).

    Returns
    -------
    ndarray of float64, shape (N,)
        0 for perfect conservation; for f = 0 the absolute error ``|Σ_i R_i|`` is returned instead.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.2.
    .. [2] Bach et al. (2015), On pixel-wise explanations ... by layer-wise relevance propagation.
    """
    r = np.asarray(relevance, dtype=np.float64)
    f = np.asarray(output, dtype=np.float64)
    if f.ndim != 1 or r.ndim < 2 or r.shape[0] != f.shape[0]:
        raise ValueError(
            f"need one output per relevance map; got relevance of shape {r.shape!r} "
            f"and output of shape {f.shape!r}."
        )
    total = r.reshape(len(r), -1).sum(axis=1)
    scale = np.where(f != 0, np.abs(f), 1.0)
    return np.asarray(np.abs(total - f) / scale, dtype=np.float64)


# --------------------------------------------------------------------------------------------------------
# Disk cache
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelevanceMaps:
    """2-D relevance maps of a data set under one model and analyzer, with where they are cached.

    Parameters
    ----------
    maps : ndarray of float32, shape (N, H, W)
        One map per image (colour relevance summed over channels).
    ids : tuple of str
        Sample ids, in the order of ``maps``.
    class_index, logit, output : ndarray, shape (N,)
        As in :class:`Explanation`.
    analyzer : str
        The analyzer's name.
    cache_file : Path or None
        The ``.npz`` file holding the maps, if caching was on.
    from_cache : bool
        True when the maps were read from ``cache_file`` instead of computed.
    """

    maps: NDArray[np.float32]
    ids: tuple[str, ...]
    class_index: NDArray[np.int64]
    logit: NDArray[np.float32]
    output: NDArray[np.float32]
    analyzer: str
    cache_file: Path | None
    from_cache: bool


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _data_sha256(images: NDArray[np.float32], ids: Sequence[str]) -> str:
    digest = hashlib.sha256()
    digest.update(repr(images.shape).encode())
    digest.update(np.ascontiguousarray(images).tobytes())
    digest.update("\0".join(ids).encode("utf-8"))
    return digest.hexdigest()


def _selection_tag(class_index: int | ArrayLike | None) -> str:
    if class_index is None:
        return "predicted"
    selected = np.asarray(class_index)
    if selected.ndim == 0:
        return f"class{int(selected)}"
    return "classes" + hashlib.sha256(selected.astype(np.int64).tobytes()).hexdigest()[:8]


def cache_file_name(
    *, model_sha256: str, data_sha256: str, analyzer: str, class_index: int | ArrayLike | None = None
) -> str:
    """The cache file name of one (model, data set, analyzer, class selection): readable and unique.

    ``<model hash>-<data hash>-<analyzer>-<selection>.npz`` with 16 hex digits of each SHA-256; the data
    hash covers the image bytes and the sample ids, so changed images or a changed order miss the cache.
    """
    return f"{model_sha256[:16]}-{data_sha256[:16]}-{analyzer}-{_selection_tag(class_index)}.npz"


@functools.lru_cache(maxsize=4)
def _cached_explainer(
    path: str, sha256: str, analyzer: str, allow_untested_layers: bool
) -> RelevanceExplainer:
    return RelevanceExplainer.from_file(path, analyzer, allow_untested_layers=allow_untested_layers)


def explainer_for(
    model_path: str | Path, analyzer: str = DEFAULT_ANALYZER, *, allow_untested_layers: bool = False
) -> RelevanceExplainer:
    """A :class:`RelevanceExplainer` for a model file, built once per process and file content.

    The four most recently used explainers are kept (keyed by path, file hash, analyzer, and
    ``allow_untested_layers``), because building an analyzer can take minutes.
    """
    path = Path(model_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}. Train one with 'rbdm train-trainer'.")
    return _cached_explainer(str(path), file_sha256(path), analyzer, allow_untested_layers)


def compute_relevance_maps(
    model_path: str | Path,
    images: ArrayLike,
    ids: Sequence[str],
    *,
    analyzer: str = DEFAULT_ANALYZER,
    cache_dir: str | Path | None,
    class_index: int | ArrayLike | None = None,
    batch_size: int = 64,
    allow_untested_layers: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
    warn_empty: bool = True,
) -> RelevanceMaps:
    """2-D relevance maps for a data set, read from the disk cache when this exact run was done before.

    Parameters
    ----------
    model_path : str or Path
        The Trainer's ``.keras`` file.
    images : array_like, shape (N, H, W) or (N, H, W, 3)
        Intensities in [0, 1] at the model's input size.
    ids : sequence of str
        One sample id per image (kept with the maps; part of the cache key).
    analyzer : str
        A key of :data:`ANALYZERS`.
    cache_dir : str or Path or None
        Folder of the cache (created if missing); None computes without caching.
    class_index : int or array_like of int, optional
        See :meth:`RelevanceExplainer.explain`.
    batch_size : int
        Images per analyzer call.
    allow_untested_layers : bool
        See :class:`RelevanceExplainer`.
    on_batch : callable, optional
        Progress callback ``on_batch(n_done, n_total)``; not called on a cache hit.
    warn_empty : bool
        See :meth:`RelevanceExplainer.explain`.

    Returns
    -------
    RelevanceMaps

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.2.
    """
    if analyzer not in ANALYZERS:
        raise ValueError(f"unknown analyzer {analyzer!r}; expected one of {', '.join(ANALYZERS)}.")
    x = check_images(images=images)
    names = tuple(str(i) for i in ids)
    if len(names) != len(x):
        raise ValueError(f"need one id per image; got {len(names)} ids for {len(x)} images.")
    cache_file = None
    if cache_dir is not None:
        name = cache_file_name(
            model_sha256=file_sha256(model_path),
            data_sha256=_data_sha256(x, names),
            analyzer=analyzer,
            class_index=class_index,
        )
        cache_file = Path(cache_dir) / name
        if cache_file.is_file():
            cached = _read_cache(cache_file, names, analyzer)
            if cached is not None:
                return cached
    explainer = explainer_for(model_path, analyzer, allow_untested_layers=allow_untested_layers)
    explanation = explainer.explain(
        x, class_index=class_index, batch_size=batch_size, on_batch=on_batch, warn_empty=warn_empty
    )
    maps = RelevanceMaps(
        maps=maps_to_2d(explanation.relevance),
        ids=names,
        class_index=explanation.class_index,
        logit=explanation.logit,
        output=explanation.output,
        analyzer=analyzer,
        cache_file=cache_file,
        from_cache=False,
    )
    if cache_file is not None:
        _write_cache(cache_file, maps)
    return maps


def _write_cache(cache_file: Path, maps: RelevanceMaps) -> None:
    """Write atomically: a partial file never looks like a cache entry; a failed write leaves none."""

    def write(temporary: Path) -> None:
        with temporary.open("wb") as handle:
            np.savez(
                handle,
                maps=maps.maps,
                ids=np.asarray(maps.ids, dtype=str),
                class_index=maps.class_index,
                logit=maps.logit,
                output=maps.output,
                analyzer=np.asarray(maps.analyzer),
            )

    replace_together({cache_file: write})


def _read_cache(cache_file: Path, ids: tuple[str, ...], analyzer: str) -> RelevanceMaps | None:
    """The cached maps; None, with an :class:`AnalysisWarning`, when the file cannot be read (recompute)."""
    try:
        with np.load(cache_file, allow_pickle=False) as data:
            stored_ids = tuple(str(i) for i in data["ids"])
            stored_analyzer = str(data["analyzer"])
            maps = RelevanceMaps(
                maps=data["maps"].astype(np.float32),
                ids=stored_ids,
                class_index=data["class_index"].astype(np.int64),
                logit=data["logit"].astype(np.float32),
                output=data["output"].astype(np.float32),
                analyzer=analyzer,
                cache_file=cache_file,
                from_cache=True,
            )
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
        warnings.warn(
            f"the relevance cache file {str(cache_file)!r} is damaged or incomplete ({err}); the maps are "
            "computed again and the file replaced.",
            AnalysisWarning,
            stacklevel=3,
        )
        return None
    if stored_ids != ids or stored_analyzer != analyzer or len(maps.maps) != len(ids):
        raise AnalysisError(
            f"cache file {str(cache_file)!r} does not match this run (other ids or analyzer). Delete it."
        )
    return maps
