"""Trainer architectures (RBDM §5.1): a small CNN for 48 × 48 faces, and ``keras.applications`` by name.

All TensorFlow work in :mod:`analysis` runs in TensorFlow 1-style *graph mode*, because iNNvestigate 2
(RBDM §5.2) only works with eager execution disabled, and eager execution can only be switched off for the
whole process. Training runs in graph mode too, so that training and relevance analysis can share one process
(the CLI, the GUI, the test suite). Each model therefore lives in its own ``tf.Graph`` with its own
``tf.compat.v1.Session``; :class:`BoundModel` keeps the three together, and every use of the model enters
:meth:`BoundModel.scope`, which makes the graph and the session the default ones *for the calling thread*.
This is what makes a model usable from a worker thread: Keras otherwise creates a fresh session per thread,
in which the trained variables are uninitialised.

Keras 2.14 cannot read or write the ``.keras`` format in graph mode (writing fails, reading silently leaves
the weights at their initial values), so :func:`save_model_file` and :func:`load_model_file` copy the
architecture and the weights through a short-lived eager model.
"""

from __future__ import annotations

import functools
import json
import threading
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis._optional import import_innvestigate, import_optional, import_tensorflow
from analysis.errors import UnsafeModelError
from analysis.files import replace_together
from analysis.labels import LABELS

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "ARCHITECTURES",
    "MIN_INPUT_SIZE_PX",
    "BoundModel",
    "as_model_input",
    "build_bound_model",
    "build_model",
    "check_images",
    "check_labels_fit",
    "check_model_file",
    "ensure_graph_mode",
    "load_model_file",
    "model_writer",
    "new_bound_model",
    "new_session",
    "save_model_file",
    "strip_softmax",
]

#: Builds an uncompiled Keras model ending in a softmax: ``builder(input_shape, n_classes, **options)``.
ArchitectureBuilder = Callable[..., Any]


# --------------------------------------------------------------------------------------------------------
# Graph mode and the model/graph/session bundle
# --------------------------------------------------------------------------------------------------------


def ensure_graph_mode() -> Any:
    """Switch TensorFlow to graph mode (once per process) and return the ``tensorflow`` module.

    iNNvestigate 2 requires ``tf.compat.v1.disable_eager_execution()``; the switch is process-wide and is
    not undone. Call it before creating any TensorFlow object; every TensorFlow entry point of
    :mod:`analysis` calls it.
    """
    tf = import_tensorflow("analysis.models")
    if tf.compat.v1.executing_eagerly_outside_functions():
        tf.compat.v1.disable_eager_execution()
    return tf


@dataclass(frozen=True, slots=True)
class BoundModel:
    """A Keras model together with the graph and the session that hold its variables.

    Parameters
    ----------
    model : keras.Model
        The model; only usable inside :meth:`scope`.
    graph : tf.Graph
        The graph the model was built in.
    session : tf.compat.v1.Session
        The session holding the model's variable values.
    lock : threading.RLock
        Taken by :meth:`scope`; one thread at a time uses the model.
    """

    model: Any
    graph: Any
    session: Any
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)

    @contextmanager
    def scope(self) -> Iterator[Any]:
        """Make the graph and session the defaults of the calling thread; yields the model.

        Enter it around every use of :attr:`model` (predict, fit, get_weights, building an analyzer),
        from any thread. Threads take turns: the scope holds :attr:`lock` (re-entrant), because adding
        operations to a graph is not thread-safe.
        """
        with self.lock, self.graph.as_default(), self.session.as_default():
            yield self.model

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """The model's input shape ``(height_px, width_px, channels)``."""
        height, width, channels = self.model.input_shape[1:]
        return int(height), int(width), int(channels)

    @property
    def n_classes(self) -> int:
        """Number of model outputs (classes)."""
        return int(self.model.output_shape[-1])

    def predict(self, images: ArrayLike, *, batch_size: int = 256) -> NDArray[np.float32]:
        """Model outputs for ``images`` (see :func:`as_model_input`), shape (N, n_classes)."""
        x = as_model_input(images, input_shape=self.input_shape)
        with self.scope() as model:
            return np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)

    def weights(self) -> list[NDArray[Any]]:
        """A copy of the model's weights as numpy arrays (Keras ``get_weights`` order)."""
        with self.scope() as model:
            return [np.array(w) for w in model.get_weights()]

    def close(self) -> None:
        """Release the session; the model is unusable afterwards."""
        self.session.close()


def new_session() -> tuple[Any, Any]:
    """A fresh ``(tf.Graph, tf.compat.v1.Session)`` pair, in graph mode."""
    tf = ensure_graph_mode()
    graph = tf.Graph()
    return graph, tf.compat.v1.Session(graph=graph)


def new_bound_model(make: Callable[[], Any]) -> BoundModel:
    """Run ``make()`` in a fresh graph and session and bind the model it returns to them.

    Parameters
    ----------
    make : callable
        Builds (or loads) a Keras model in the current default graph; called with no arguments.
    """
    graph, session = new_session()
    with graph.as_default(), session.as_default():
        model = make()
    return BoundModel(model=model, graph=graph, session=session)


# --------------------------------------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------------------------------------


def _small_cnn(
    input_shape: tuple[int, int, int],
    n_classes: int,
    *,
    filters: tuple[int, ...] = (32, 64, 128),
    dense_units: int = 64,
    use_bias: bool = True,
    padding: str = "valid",
    dropout: float = 0.0,
    weight_decay: float = 0.0,
) -> Any:
    """Conv(3 × 3, ReLU) + max-pool blocks, optional dropout, a ReLU dense layer, logits and a softmax.

    Only layers every iNNvestigate analyzer supports (Conv2D, MaxPooling2D, Flatten, Dropout, Dense with
    ReLU). The first convolution reads the input directly, so input-layer rules (the flat rule of
    ``lrp.sequential_preset_a_flat``) apply to it. ``use_bias=False`` gives a network for which LRP-ε and
    deep Taylor conserve relevance exactly (no relevance is absorbed by biases).

    The convolutions are unpadded (``"valid"``) by default: zero padding on a bright background draws an
    edge along the image border, which the network then responds to and its relevance maps show. Measured
    on synthetic faces (1,600 training faces, 15 epochs, 300 held-out faces), the share of positive
    relevance inside the ground-truth regions rose from 0.40 to 0.44 (deep Taylor) and from 0.57 to 0.65
    (LRP preset A flat), validation macro-F1 from 0.93 to 0.99. Dropout and weight decay are off by
    default: dropout 0.5 with weight decay 1e-4 raised those shares to 0.49–0.52 and 0.63–0.66, but on
    FER2013 with the paper's augmentation it held the Trainer at validation macro-F1 0.39 after 20 epochs
    (dropout 0.25: 0.35 after 13) where the unregularised network reached 0.43 after 14. With three blocks
    of ``"valid"`` convolutions the input needs at least 22 × 22 px.

    Parameters
    ----------
    padding : {"valid", "same"}, optional
        Padding of the convolutions.
    dropout : float, optional
        Dropout rate in [0, 1) on the flattened features (training only); 0 leaves the layer out.
    weight_decay : float, optional
        L2 penalty (≥ 0) on every kernel; 0 turns it off.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1); got {dropout!r}.")
    if not weight_decay >= 0.0:
        raise ValueError(f"weight_decay must be ≥ 0; got {weight_decay!r}.")
    tf = import_tensorflow("analysis.models.small_cnn")
    layers = tf.keras.layers
    decay = tf.keras.regularizers.L2(weight_decay) if weight_decay > 0 else None
    inputs = layers.Input(shape=input_shape, name="image")
    x = inputs
    for i, n_filters in enumerate(filters):
        x = layers.Conv2D(
            n_filters, 3, padding=padding, activation="relu", use_bias=use_bias, kernel_regularizer=decay,
            name=f"conv{i + 1}",
        )(x)  # fmt: skip
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(
        dense_units, activation="relu", use_bias=use_bias, kernel_regularizer=decay, name="dense"
    )(x)
    logits = layers.Dense(n_classes, use_bias=use_bias, kernel_regularizer=decay, name="logits")(x)
    outputs = layers.Activation("softmax", name="softmax")(logits)
    return tf.keras.Model(inputs, outputs, name="small_cnn")


def _vgg_bn(
    input_shape: tuple[int, int, int],
    n_classes: int,
    *,
    filters: tuple[int, ...] = (16, 32, 64, 128),
    convs_per_block: tuple[int, ...] = (2, 2, 2, 2),
    dropout: float = 0.3,
    weight_decay: float = 0.0,
) -> Any:
    """A VGG-style network with batch norms for small faces: the FER2013 Trainer of ``fer_vgg``.

    Blocks of zero-padded Conv(3 × 3, no bias) → BatchNormalization → ReLU, a 2 × 2 max-pool between
    blocks, global average pooling, dropout, logits and a softmax. At 48 × 48 px the defaults give 8
    convolutions (16-16-32-32-64-64-128-128 filters), 0.30 M parameters and about 30 M multiply-adds per
    image, which keeps an epoch of FER2013's 28,709 training images near a minute on two CPU cores. Only
    layers iNNvestigate's analyzers handle (batch norms are folded where an analyzer needs that).

    Parameters
    ----------
    filters : tuple of int, optional
        Filters of each block's convolutions; one block per entry.
    convs_per_block : tuple of int, optional
        Convolutions per block, one entry per block (each ≥ 1).
    dropout : float, optional
        Dropout rate in [0, 1) before the logits (training only); 0 leaves the layer out.
    weight_decay : float, optional
        L2 penalty (≥ 0) on every kernel; 0 turns it off.

    References
    ----------
    .. [1] Simonyan and Zisserman (2015), Very Deep Convolutional Networks (stacked 3 × 3 convolutions).
    .. [2] Khaireddin and Chen (2021), Facial Emotion Recognition: State of the Art Performance on FER2013
       (a VGG-style network on 48 × 48 FER2013 faces).
    """
    if len(filters) == 0 or len(filters) != len(convs_per_block):
        raise ValueError(
            f"filters and convs_per_block need one entry per block; got {filters!r} and {convs_per_block!r}."
        )
    if any(int(n) < 1 for n in (*filters, *convs_per_block)):
        raise ValueError(f"filters and convs_per_block must be ≥ 1; got {filters!r} and {convs_per_block!r}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1); got {dropout!r}.")
    if not weight_decay >= 0.0:
        raise ValueError(f"weight_decay must be ≥ 0; got {weight_decay!r}.")
    tf = import_tensorflow("analysis.models.vgg_bn")
    layers = tf.keras.layers
    decay = tf.keras.regularizers.L2(weight_decay) if weight_decay > 0 else None
    inputs = layers.Input(shape=input_shape, name="image")
    x = inputs
    for block, (n_filters, n_convs) in enumerate(zip(filters, convs_per_block, strict=True), start=1):
        if block > 1:
            x = layers.MaxPooling2D(2, name=f"pool{block - 1}")(x)
        for i in range(1, int(n_convs) + 1):
            name = f"block{block}_conv{i}"
            x = layers.Conv2D(
                int(n_filters), 3, padding="same", use_bias=False, kernel_regularizer=decay, name=name
            )(x)
            x = layers.BatchNormalization(name=f"{name}_bn")(x)
            x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    logits = layers.Dense(n_classes, kernel_regularizer=decay, name="logits")(x)
    outputs = layers.Activation("softmax", name="softmax")(logits)
    return tf.keras.Model(inputs, outputs, name="vgg_bn")


def _application(name: str, input_shape: tuple[int, int, int], n_classes: int, **options: Any) -> Any:
    """``tf.keras.applications.<name>`` without its top, untrained, plus global pooling, logits, softmax.

    The network is built on our own input tensor so that the result is one flat functional model (no
    nested sub-model), which is what iNNvestigate can analyse.
    """
    tf = import_tensorflow(f"analysis.models.{name}")
    layers = tf.keras.layers
    factory = getattr(tf.keras.applications, name, None)
    if factory is None or not callable(factory):
        raise ValueError(
            f"unknown architecture {name!r}; expected 'small_cnn', 'vgg_bn' or a tf.keras.applications model "
            f"such as {', '.join(sorted(set(ARCHITECTURES) - {'small_cnn', 'vgg_bn'}))}."
        )
    inputs = layers.Input(shape=input_shape, name="image")
    try:
        base = factory(include_top=False, weights=None, input_tensor=inputs, pooling="avg", **options)
    except ValueError as err:
        minimum = MIN_INPUT_SIZE_PX.get(name)
        hint = f" {name} needs inputs of at least {minimum} × {minimum} px." if minimum else ""
        raise ValueError(
            f"cannot build {name} for input shape {input_shape!r}: {err}.{hint} "
            "Resize the images or choose another architecture."
        ) from err
    logits = layers.Dense(n_classes, name="logits")(base.output)
    outputs = layers.Activation("softmax", name="softmax")(logits)
    return tf.keras.Model(inputs, outputs, name=name)


#: Smallest input height/width each architecture accepts (from keras.applications' own checks).
MIN_INPUT_SIZE_PX: dict[str, int] = {
    "small_cnn": 22,
    "vgg_bn": 8,
    "DenseNet121": 32,
    "EfficientNetB0": 32,
    "InceptionResNetV2": 75,
    "InceptionV3": 75,
    "MobileNet": 32,
    "MobileNetV2": 32,
    "ResNet50": 32,
    "VGG16": 32,
    "VGG19": 32,
    "Xception": 71,
}

#: Architecture name → builder. Any other ``tf.keras.applications`` name also works in :func:`build_model`.
ARCHITECTURES: dict[str, ArchitectureBuilder] = {
    "small_cnn": _small_cnn,
    "vgg_bn": _vgg_bn,
    **{
        name: functools.partial(_application, name)
        for name in MIN_INPUT_SIZE_PX
        if name not in ("small_cnn", "vgg_bn")
    },
}


def build_model(
    architecture: str = "small_cnn",
    *,
    input_shape: tuple[int, int, int],
    n_classes: int = len(LABELS),
    options: Mapping[str, Any] | None = None,
) -> Any:
    """Build an untrained classifier ending in a softmax, in the current default graph.

    Parameters
    ----------
    architecture : str
        A key of :data:`ARCHITECTURES` or any other ``tf.keras.applications`` model name (trained from
        scratch, ``weights=None``). The paper's Trainer candidates are InceptionV3, MobileNetV2, Xception
        and VGG-Face (a VGG16); InceptionV3 won (RBDM §5.1).
    input_shape : tuple of int
        ``(height_px, width_px, channels)`` with 1 (grey) or 3 (RGB) channels; at least
        :data:`MIN_INPUT_SIZE_PX` on each side.
    n_classes : int
        Number of classes (the 8 of :data:`analysis.labels.LABELS` by default).
    options : mapping, optional
        Extra keyword arguments for the builder, e.g. ``{"alpha": 0.35}`` for MobileNetV2 or
        ``{"use_bias": False}`` for the small CNN.

    Returns
    -------
    keras.Model
        Its last layer is a separate ``Activation("softmax")`` named ``"softmax"`` on ``"logits"``.

    Raises
    ------
    ValueError
        For an unknown architecture, a bad input shape, an input smaller than the architecture allows,
        or options that are not a mapping, set what the project sets (``weights``, ``include_top`` …)
        or are not arguments of the builder.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.1 (Trainer architectures).
    """
    shape = _check_input_shape(input_shape)
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer ≥ 2; got {n_classes!r}.")
    minimum = MIN_INPUT_SIZE_PX.get(architecture)
    if minimum is not None and min(shape[:2]) < minimum:
        advice = "" if architecture == "small_cnn" else " (e.g. to 96 × 96) or use 'small_cnn'"
        raise ValueError(
            f"{architecture} needs inputs of at least {minimum} × {minimum} px; got "
            f"{shape[0]} × {shape[1]}. Resize the images{advice}."
        )
    builder = ARCHITECTURES.get(architecture) or functools.partial(_application, architecture)
    chosen = _check_options(architecture, options)
    try:
        return builder(shape, n_classes, **chosen)
    except TypeError as err:
        if "keyword argument" not in str(err):
            raise
        raise ValueError(
            f"{architecture} does not take the options {sorted(chosen)!r} ({err}). Check their names."
        ) from err


#: Builder arguments RBDM Studio sets itself; an ``options`` entry may not replace them.
_RESERVED_OPTIONS = frozenset(
    {"include_top", "weights", "input_tensor", "input_shape", "pooling", "classes", "classifier_activation"}
)


def _check_options(architecture: str, options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping) or not all(isinstance(key, str) for key in options):
        raise ValueError(
            f"options must be a mapping of option names to values (a JSON object such as "
            f'{{"alpha": 0.35}}); got {options!r}.'
        )
    reserved = sorted(set(options) & _RESERVED_OPTIONS)
    if reserved:
        raise ValueError(
            f"options may not set {reserved!r}: RBDM Studio sets them itself ({architecture} is built "
            "untrained, without its top, on the project's input). Remove them from the options."
        )
    return dict(options)


def build_bound_model(
    architecture: str = "small_cnn",
    *,
    input_shape: tuple[int, int, int],
    n_classes: int = len(LABELS),
    options: Mapping[str, Any] | None = None,
) -> BoundModel:
    """:func:`build_model` in a fresh graph and session (see :class:`BoundModel`)."""
    return new_bound_model(
        lambda: build_model(architecture, input_shape=input_shape, n_classes=n_classes, options=options)
    )


def _check_input_shape(input_shape: Any) -> tuple[int, int, int]:
    try:
        height, width, channels = (int(v) for v in input_shape)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"input_shape must be (height_px, width_px, channels); got {input_shape!r}."
        ) from err
    if height <= 0 or width <= 0 or channels not in (1, 3):
        raise ValueError(
            f"input_shape must have positive height and width and 1 or 3 channels; got {input_shape!r}."
        )
    return height, width, channels


def strip_softmax(model: tf.keras.Model) -> tf.keras.Model:
    """The same model without its final softmax, i.e. returning logits (call inside the model's scope).

    Relevance methods explain a logit, not a probability (RBDM §5.2; iNNvestigate rejects softmax
    layers). A separate final softmax layer is dropped; a softmax inside the last layer is removed with
    ``innvestigate.model_wo_softmax``; a model without a final softmax is returned unchanged. The
    result shares the layers (and weights) of ``model``.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.2.
    """
    tf = import_tensorflow("analysis.models.strip_softmax")
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    softmax = tf.keras.activations.softmax
    if isinstance(last, tf.keras.layers.Softmax) or (
        isinstance(last, tf.keras.layers.Activation) and activation is softmax
    ):
        return tf.keras.Model(model.inputs, last.input, name=f"{model.name}_logits")
    if activation is softmax:
        innvestigate = import_innvestigate("analysis.models.strip_softmax")
        return innvestigate.model_wo_softmax(model)
    return model


# --------------------------------------------------------------------------------------------------------
# Images in, model inputs out
# --------------------------------------------------------------------------------------------------------


def check_images(**kwargs: Any) -> NDArray[np.float32]:
    """Return a float32 image batch (N, H, W) or (N, H, W, 3) with values in [0, 1], else raise.

    Raises
    ------
    ValueError
        For a wrong number of dimensions, an empty batch, NaN or infinite values, or values outside [0, 1].
    """
    if len(kwargs) != 1:
        raise TypeError(f"pass exactly one keyword argument, got {sorted(kwargs)!r}")
    name, value = next(iter(kwargs.items()))
    arr = np.asarray(value)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{name} must be a numeric array; got dtype {arr.dtype!r}.")
    if arr.ndim not in (3, 4) or (arr.ndim == 4 and arr.shape[-1] not in (1, 3)):
        raise ValueError(
            f"{name} must be a batch of grey (N, H, W) or RGB (N, H, W, 3) images; got shape {arr.shape!r}."
        )
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {arr.shape!r}.")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise ValueError(
            f"{name} must be finite; got {int((~np.isfinite(arr)).sum())} NaN or infinite values."
        )
    low, high = float(arr.min()), float(arr.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{name} must hold intensities in [0, 1]; got values in [{low!r}, {high!r}]. "
            "Divide 8-bit images by 255."
        )
    return arr


def as_model_input(images: ArrayLike, *, input_shape: tuple[int, int, int]) -> NDArray[np.float32]:
    """Images in [0, 1] as the (N, H, W, C) float32 batch a model with ``input_shape`` takes.

    Grey images (N, H, W) gain a channel axis and are repeated to 3 channels for an RGB model. The pixel
    values stay in [0, 1] (the preprocessing every model of this project is trained with).

    Raises
    ------
    ValueError
        When the image size differs from the model's, or RGB images meet a grey model.
    """
    x = check_images(images=images)
    if x.ndim == 3:
        x = x[..., np.newaxis]
    height, width, channels = input_shape
    if x.shape[1:3] != (height, width):
        raise ValueError(
            f"the model takes {height} × {width} px images; got {x.shape[1]} × {x.shape[2]}. "
            "Resize the images to the model's input size first."
        )
    if x.shape[-1] == channels:
        return np.ascontiguousarray(x)
    if x.shape[-1] == 1:
        return np.ascontiguousarray(np.repeat(x, channels, axis=-1))
    raise ValueError(
        f"the model takes grey (1-channel) images; got {x.shape[-1]}-channel images. "
        "Convert them to grey first."
    )


# --------------------------------------------------------------------------------------------------------
# .keras files
# --------------------------------------------------------------------------------------------------------


@contextmanager
def _eager_mode() -> Iterator[None]:
    """Run eager in the calling thread although the process is in graph mode; restore Keras' classes after.

    Keras picks its v1 (graph) or v2 (eager) ``Model`` and ``Layer`` base classes by rewriting the
    ``__bases__`` of the classes it instantiates. Building a model in eager mode therefore switches
    ``Functional``, ``Conv2D`` ... to the v2 bases for the whole process, and graph-mode models built
    earlier then refuse ``predict`` until the next graph-mode model switches them back. The bases are
    restored on exit.
    """
    context = import_optional(
        "tensorflow.python.eager.context", caller="analysis.models", package="tensorflow-cpu"
    )
    saved = _keras_class_bases()
    try:
        with context.eager_mode():
            yield
    finally:
        for cls, bases in saved.items():
            if cls.__bases__ != bases:
                cls.__bases__ = bases


def _keras_class_bases() -> dict[type, tuple[type, ...]]:
    """``__bases__`` of every Keras layer and model class defined so far."""
    tf = import_tensorflow("analysis.models")
    pending: list[type] = [tf.keras.layers.Layer]
    v1_layer = import_optional("keras.src.engine.base_layer_v1", caller="analysis.models").Layer
    pending.append(v1_layer)
    found: dict[type, tuple[type, ...]] = {}
    while pending:
        cls = pending.pop()
        if cls not in found:
            found[cls] = cls.__bases__
            pending.extend(cls.__subclasses__())
    return found


def save_model_file(model: BoundModel, path: str | Path) -> Path:
    """Write ``model`` (architecture and weights, no optimizer state) to a ``.keras`` file.

    The file is written to a temporary file next to it and renamed over ``path`` only when complete
    (:mod:`analysis.files`): a failed write (full disk) leaves an existing model as it was.

    Parameters
    ----------
    model : BoundModel
        The model to save.
    path : str or Path
        Target file; must end in ``.keras``. Parent folders are created.

    Returns
    -------
    Path
        The written file.
    """
    target = Path(path)
    replace_together({target: model_writer(model, target)})
    return target


def model_writer(model: BoundModel, path: str | Path) -> Callable[[Path], None]:
    """A function that writes ``model`` as a ``.keras`` file to the path it gets, for
    :func:`analysis.files.replace_together` (a model and its card replaced as one unit)."""
    target = Path(path)
    if target.suffix != ".keras":
        raise ValueError(f"model files end in '.keras'; got {str(target)!r}.")
    with model.scope() as keras_model:
        config = keras_model.to_json()
        weights = keras_model.get_weights()

    def write(temporary: Path) -> None:
        tf = import_tensorflow("analysis.models.save_model_file")
        with _eager_mode():
            eager = tf.keras.models.model_from_json(config)
            eager.set_weights(weights)
            eager.save(temporary)

    return write


def load_model_file(path: str | Path) -> BoundModel:
    """Read a Keras model file (``.keras``, or a legacy HDF5 ``.h5``) into a fresh graph and session.

    No code from the file runs: before Keras reads it, the model's configuration is read as plain
    JSON and refused when it holds a ``Lambda`` layer, a serialised Python function or a class from
    a module outside Keras and TensorFlow (see :func:`check_model_file`); ``.keras`` files are then
    loaded in Keras' safe mode.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    UnsafeModelError
        When loading the model would run code stored in the file (the message names the layers).
    ValueError
        When the file is not a Keras model (a folder such as a SavedModel, weights only, another format)
        or is damaged; the message names it.
    """
    source = Path(path)
    model_format = check_model_file(source)
    tf = ensure_graph_mode()
    with _eager_mode():
        try:
            if model_format == "keras":
                eager = tf.keras.models.load_model(source, compile=False, safe_mode=True)
            else:
                eager = tf.keras.models.load_model(source, compile=False)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(
                f"cannot load the model {str(source)!r}: {err}. The file is damaged (truncated?) or was "
                "written by another Keras version; save the model again with model.save('model.keras')."
            ) from err
        config = eager.to_json()
        weights = eager.get_weights()

    def make() -> Any:
        keras_model = tf.keras.models.model_from_json(config)
        keras_model.set_weights(weights)
        return keras_model

    return new_bound_model(make)


def check_labels_fit(n_classes: int, label_indices: ArrayLike, *, model: str) -> None:
    """Refuse data with labels the model has no output for (e.g. a 3-class model on 8-label data).

    Parameters
    ----------
    n_classes : int
        The model's number of outputs: the first ``n_classes`` of :data:`~analysis.labels.LABELS`.
    label_indices : array_like of int
        The data's labels, as positions in :data:`~analysis.labels.LABELS`.
    model : str
        The model's name or file, for the message.

    Raises
    ------
    ValueError
        When a label index is ``n_classes`` or more; the message names the labels the model lacks.
    """
    indices = np.asarray(label_indices, dtype=np.int64).ravel()
    beyond = sorted({int(i) for i in indices if i >= n_classes})
    if beyond:
        names = [LABELS[i] if 0 <= i < len(LABELS) else str(i) for i in beyond]
        raise ValueError(
            f"the model {model!r} has {n_classes} outputs ({', '.join(LABELS[:n_classes])}), but the data "
            f"also holds the labels {names!r}, which it cannot predict. Use a model trained on all "
            f"{len(LABELS[: max(beyond) + 1])} labels, or data with the model's labels only."
        )


# --------------------------------------------------------------------------------------------------------
# Model files that would run their own code
# --------------------------------------------------------------------------------------------------------

#: Top-level modules whose classes and functions a model configuration may name.
_TRUSTED_MODULES = frozenset({"keras", "tensorflow", "builtins"})


def check_model_file(path: str | Path) -> str:
    """Refuse a model file whose loading would run code stored in it, without running any; return its format.

    The configuration is read as JSON (``config.json`` of a ``.keras`` zip, the ``model_config``
    attribute of an HDF5 file) and searched for what Keras would turn into code: ``Lambda`` layers,
    serialised Python functions (``function_type: "lambda"``, ``__lambda__``) and classes or functions
    of modules other than Keras and TensorFlow (importing such a module runs it).

    Parameters
    ----------
    path : str or Path
        A ``.keras`` or HDF5 model file (the format is read from the content, not the suffix).

    Returns
    -------
    str
        ``"keras"`` or ``"h5"``.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    UnsafeModelError
        When the configuration holds code; the message names the layers.
    ValueError
        When the file is a folder (a TensorFlow SavedModel), holds weights only or is not a Keras model.
    """
    source = Path(path)
    if source.is_dir():
        raise ValueError(
            f"{str(source)!r} is a folder (a TensorFlow SavedModel?); RBDM Studio reads .keras model files "
            "only, because loading a SavedModel runs the TensorFlow graph stored in it. Where the model was "
            "made, load it and save it with model.save('model.keras')."
        )
    if not source.is_file():
        raise FileNotFoundError(f"no model file at {str(source)!r}. Train one with 'rbdm train-trainer'.")
    model_format, config = _read_model_config(source)
    offenders = sorted(set(_code_in_config(config)))
    if offenders:
        raise UnsafeModelError(
            f"the model file {str(source)!r} holds code that would run while it loads: "
            f"{'; '.join(offenders)}. It was not loaded. Rebuild the model without Lambda layers or custom "
            "code (built-in Keras layers only) and save it as .keras."
        )
    return model_format


def _read_model_config(source: Path) -> tuple[str, Any]:
    """The model's configuration as parsed JSON, and the file's format; no Keras involved."""
    h5py = import_optional("h5py", caller="analysis.models.check_model_file")
    try:
        if zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                return "keras", json.loads(archive.read("config.json"))
        if h5py.is_hdf5(str(source)):
            with h5py.File(source, "r") as handle:
                raw = handle.attrs.get("model_config")
            if raw is None:
                raise ValueError(
                    f"the HDF5 file {str(source)!r} holds no model configuration (weights only?). "
                    "Give the file saved with model.save(), not model.save_weights()."
                )
            return "h5", json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except (KeyError, OSError, UnicodeDecodeError, json.JSONDecodeError, zipfile.BadZipFile) as err:
        raise ValueError(
            f"cannot read the model configuration of {str(source)!r} ({err}); the file is damaged or not "
            "a Keras model. Save the model again with model.save('model.keras')."
        ) from err
    raise ValueError(
        f"{str(source)!r} is neither a .keras model (a complete zip archive; a truncated copy is not one) "
        "nor an HDF5 model file. Give a model saved with model.save('model.keras')."
    )


def _code_in_config(node: Any, layer: str = "the model") -> Iterator[str]:
    """Describe every place of a Keras configuration that Keras would turn into code."""
    if isinstance(node, list):
        for item in node:
            yield from _code_in_config(item, layer)
        return
    if not isinstance(node, dict):
        return
    config = node.get("config")
    if isinstance(config, dict) and isinstance(config.get("name"), str):
        layer = f"layer {config['name']!r}"
    class_name = node.get("class_name")
    if class_name == "Lambda":
        yield f"{layer} is a Lambda layer (Python code)"
    elif class_name == "__lambda__" or node.get("function_type") == "lambda":
        yield f"{layer} holds a serialised Python function"
    module = node.get("module")
    if isinstance(module, str) and module.split(".")[0] not in _TRUSTED_MODULES:
        yield f"{layer} names {module}.{class_name or node.get('registered_name')} (code outside Keras)"
    for value in node.values():
        yield from _code_in_config(value, layer)
