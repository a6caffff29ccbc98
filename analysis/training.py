"""Training the Trainer (RBDM §5.1) reproducibly (RBDM §5.6), and saving it with a model card.

The recipe is the paper's: Adam with learning rate 0.001, batches of 32, categorical cross-entropy
weighted per class against the class imbalance, the paper's augmentation, the macro-F1 score on the
validation split after every epoch, and the best epoch kept.

Training runs in graph mode in its own graph and session (see :mod:`analysis.models`), one batch at a
time through Keras' compiled training function (the one ``model.fit`` calls per batch); batches are
shuffled and augmented in numpy from one seeded ``np.random.Generator``, so the input pipeline is a
single worker by construction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from analysis._optional import import_optional
from analysis.files import replace_together
from analysis.labels import LABELS
from analysis.models import (
    BoundModel,
    as_model_input,
    build_model,
    check_images,
    ensure_graph_mode,
    load_model_file,
    model_writer,
    new_session,
)

__all__ = [
    "AUGMENTATIONS",
    "LIGHT_AUGMENTATION",
    "NO_AUGMENTATION",
    "PAPER_AUGMENTATION",
    "PREPROCESSING",
    "SCHEDULES",
    "TRAINER_PRESETS",
    "Augmentation",
    "EpochRecord",
    "ModelCard",
    "TrainResult",
    "TrainerPreset",
    "affine_matrix",
    "augment",
    "card_path",
    "class_weights",
    "compile_model",
    "determinism",
    "learning_rate_at",
    "load_trained",
    "save_trained",
    "train_steps",
    "train_trainer",
    "validation_scores",
]

#: How images are fed to every model of this project (recorded in each model card).
PREPROCESSING = (
    "float32 intensities in [0, 1], no normalisation; grey images repeated to 3 channels for RGB models"
)


# --------------------------------------------------------------------------------------------------------
# Class weights and scores
# --------------------------------------------------------------------------------------------------------


def class_weights(
    labels: ArrayLike, *, n_classes: int = len(LABELS), power: float = 1.0
) -> NDArray[np.float64]:
    """Per-class loss weights against class imbalance: inverse relative frequency, mean sample weight 1.

    The paper "weights each class by their relative proportion in the training dataset", following
    Mollahosseini et al. (2017), whose weighted loss scales each class by the inverse of its share so
    that every class contributes equally. Here ``w_c = N / (K · n_c)`` with ``N`` training samples,
    ``n_c`` of them in class ``c`` and ``K`` classes present; then ``Σ_i w_{y_i} = N`` and every present
    class carries the same total weight ``N / K``. A class absent from the training labels gets weight 0.

    Parameters
    ----------
    labels : array_like of int, shape (N,)
        Class indices in ``[0, n_classes)``.
    n_classes : int
        Number of classes.
    power : float, optional
        Exponent ≥ 0 on the inverse frequency: ``w_c ∝ (N / (K · n_c))^power``, rescaled so that the mean
        sample weight stays 1. 1 is the paper's weighting, 0.5 a milder one (rare classes still weigh
        more, but less than fully balanced), 0 no weighting at all.

    Returns
    -------
    ndarray of float64, shape (n_classes,)

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.1 (weighted loss).
    .. [2] Mollahosseini et al. (2017), AffectNet, weighted-loss approach.
    """
    y = _check_labels(labels=labels, n_classes=n_classes)
    if not (np.isfinite(power) and power >= 0):
        raise ValueError(f"power must be a finite number ≥ 0; got {power!r}.")
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes, dtype=np.float64)
    weights[present] = (y.size / (present.sum() * counts[present])) ** power
    if power != 1.0:  # power 1 sums to N already; rescaling would only add rounding
        weights[present] *= y.size / float(weights[present] @ counts[present])
    return weights


def validation_scores(probabilities: ArrayLike, labels: ArrayLike) -> tuple[float, float, float]:
    """Loss, accuracy and macro-F1 of predicted class probabilities against true labels.

    Parameters
    ----------
    probabilities : array_like, shape (N, K)
        Softmax outputs.
    labels : array_like of int, shape (N,)
        True class indices.

    Returns
    -------
    tuple of float
        ``(loss, accuracy, macro_f1)``: the unweighted mean categorical cross-entropy, the fraction of
        argmax predictions that are right, and the F1 score averaged over the classes present in the
        labels or the predictions (a class never predicted scores 0).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.1 (F1 on the validation set).
    """
    from sklearn.metrics import f1_score

    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probabilities must have shape (N, K) with N > 0; got shape {p.shape!r}.")
    y = _check_labels(labels=labels, n_classes=p.shape[1])
    if y.size != p.shape[0]:
        raise ValueError(f"got {p.shape[0]} probability rows but {y.size} labels; pass one label per row.")
    loss = float(-np.mean(np.log(np.clip(p[np.arange(y.size), y], 1e-7, 1.0))))
    predicted = p.argmax(axis=1)
    accuracy = float(np.mean(predicted == y))
    macro_f1 = float(f1_score(y, predicted, average="macro", zero_division=0))
    return loss, accuracy, macro_f1


def _check_labels(*, labels: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array of class indices; got shape {y.shape!r}.")
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"labels must be integer class indices; got dtype {y.dtype!r}.")
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(
            f"labels must lie in [0, {n_classes}); got values in [{int(y.min())}, {int(y.max())}]. "
            "Map label names with analysis.labels.label_index."
        )
    return y.astype(np.int64, copy=False)


#: Learning-rate schedules of :func:`learning_rate_at`: the paper's constant rate, or linear warm-up then
#: cosine decay to 0 (Loshchilov and Hutter 2017; Goyal et al. 2017).
SCHEDULES = ("constant", "cosine")


def learning_rate_at(
    step: int, *, total_steps: int, peak_rate: float, schedule: str = "cosine", warmup_fraction: float = 0.05
) -> float:
    """Adam's learning rate before the 0-based training step ``step`` of ``total_steps``.

    ``"constant"`` returns ``peak_rate`` throughout (RBDM §5.1). ``"cosine"`` rises linearly from
    ``peak_rate / W`` to ``peak_rate`` over the first ``W = max(1, round(warmup_fraction · total_steps))``
    steps, then follows ``peak_rate · (1 + cos(π · t)) / 2`` with ``t`` going from 0 to 1 over the remaining
    steps, so the last step trains at a rate near 0.

    Parameters
    ----------
    step : int
        0-based step, in ``[0, total_steps)``; later steps get the last step's rate.
    total_steps : int
        Steps of the whole run (epochs × batches per epoch), ≥ 1.
    peak_rate : float
        The largest rate (> 0).
    schedule : {"constant", "cosine"}
        See :data:`SCHEDULES`.
    warmup_fraction : float
        Share of the steps spent warming up, in [0, 1).

    Returns
    -------
    float

    References
    ----------
    .. [1] Loshchilov and Hutter (2017), SGDR: Stochastic Gradient Descent with Warm Restarts, eq. 5.
    .. [2] Goyal et al. (2017), Accurate, Large Minibatch SGD, §2.2 (gradual warm-up).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES!r}; got {schedule!r}.")
    if not (np.isfinite(warmup_fraction) and 0 <= warmup_fraction < 1):
        raise ValueError(f"warmup_fraction must lie in [0, 1); got {warmup_fraction!r}.")
    if schedule == "constant":
        return float(peak_rate)
    step = min(max(int(step), 0), total_steps - 1)
    warmup = max(1, round(warmup_fraction * total_steps))
    if step < warmup:
        return float(peak_rate * (step + 1) / warmup)
    t = (step - warmup) / max(1, total_steps - warmup)
    return float(peak_rate * 0.5 * (1.0 + np.cos(np.pi * t)))


# --------------------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Augmentation:
    """Random image changes applied to each training image (RBDM §5.1).

    Parameters
    ----------
    rotation_deg : float
        Rotation by an angle drawn uniformly from ±rotation_deg (paper: 25°).
    shift_fraction : float
        Shift along x and y, each drawn from ±shift_fraction of the width/height (paper: 10 %).
    zoom_fraction : float
        Scale factor drawn from [1 − zoom_fraction, 1 + zoom_fraction]. The paper's "random zoom of up to
        85 percent of the original image dimensions" is read as Keras' ``zoom_range=0.15``.
    channel_shift : float
        Each colour channel shifted by a value drawn from ±channel_shift of the intensity range [0, 1]
        (paper: 20 %); a grey image has one channel.
    brightness_range : tuple of float
        Intensities multiplied by a factor drawn from this range (paper: 50 %–150 %).
    horizontal_flip : bool
        Mirror left–right with probability 1/2 (paper: yes).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.1 (data augmentation).
    """

    rotation_deg: float = 25.0
    shift_fraction: float = 0.10
    zoom_fraction: float = 0.15
    channel_shift: float = 0.20
    brightness_range: tuple[float, float] = (0.5, 1.5)
    horizontal_flip: bool = True

    @property
    def is_identity(self) -> bool:
        """True when every image comes out unchanged (all ranges empty, no flip)."""
        return (
            self.rotation_deg == 0
            and self.shift_fraction == 0
            and self.zoom_fraction == 0
            and self.channel_shift == 0
            and self.brightness_range == (1.0, 1.0)
            and not self.horizontal_flip
        )

    def __post_init__(self) -> None:
        for name in ("rotation_deg", "shift_fraction", "zoom_fraction", "channel_shift"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number ≥ 0; got {value!r}.")
        if self.zoom_fraction >= 1:
            raise ValueError(
                f"zoom_fraction must be < 1 (the scale stays positive); got {self.zoom_fraction!r}."
            )
        low, high = self.brightness_range
        if not (0 < low <= high and np.isfinite(high)):
            raise ValueError(
                f"brightness_range must be (low, high) with 0 < low ≤ high; got {self.brightness_range!r}."
            )


#: The paper's augmentation (RBDM §5.1).
PAPER_AUGMENTATION = Augmentation()
#: No change at all (for validation-like training runs and tests).
NO_AUGMENTATION = Augmentation(0.0, 0.0, 0.0, 0.0, (1.0, 1.0), False)
#: Milder changes for 48 × 48 FER2013 faces (the ``fer_vgg`` preset): rotation ±10°, shift ±10 %, zoom
#: ±10 %, brightness 80–120 %, no channel shift, flips; close to the shifts, flips and small rotations of
#: the FER2013 mini-Xception's training (Arriaga et al. 2017). Measured in docs/trainers.md.
LIGHT_AUGMENTATION = Augmentation(10.0, 0.10, 0.10, 0.0, (0.8, 1.2), True)
#: ``--augmentation`` name → ranges.
AUGMENTATIONS: dict[str, Augmentation] = {
    "paper": PAPER_AUGMENTATION,
    "light": LIGHT_AUGMENTATION,
    "none": NO_AUGMENTATION,
}


def affine_matrix(
    *, angle_deg: float, zoom: float, shift_px: tuple[float, float], shape: tuple[int, int]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The inverse map of a rotation and zoom about the image centre followed by a shift.

    A content point at ``p = (row, col)`` moves to ``q = zoom · R(angle) · (p − c) + c + shift`` with
    ``c`` the image centre. The returned ``(matrix, offset)`` give ``p = matrix @ q + offset``, the form
    ``scipy.ndimage.affine_transform`` takes.

    Parameters
    ----------
    angle_deg : float
        Rotation angle; positive turns the content counter-clockwise on screen (rows grow downwards).
    zoom : float
        Scale factor > 0; above 1 enlarges the content.
    shift_px : tuple of float
        ``(rows, cols)`` shift of the content in pixels.
    shape : tuple of int
        ``(H, W)`` of the image.
    """
    theta = np.deg2rad(angle_deg)
    cos, sin = np.cos(theta), np.sin(theta)
    # Counter-clockwise on screen, rows growing downwards: row' = cos·row − sin·col, col' = sin·row + cos·col.
    forward = zoom * np.array([[cos, -sin], [sin, cos]])
    matrix = np.linalg.inv(forward)
    centre = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
    offset = centre - matrix @ (centre + np.asarray(shift_px, dtype=np.float64))
    return matrix, offset


@dataclass(frozen=True, slots=True)
class _Draws:
    """Random parameters for a batch, one row per image."""

    angle_deg: NDArray[np.float64]
    zoom: NDArray[np.float64]
    shift_px: NDArray[np.float64]  # (N, 2) rows, cols
    flip: NDArray[np.bool_]
    brightness: NDArray[np.float64]
    channel_shift: NDArray[np.float64]  # (N, C)


def _draw(
    n: int, shape: tuple[int, int, int], augmentation: Augmentation, rng: np.random.Generator
) -> _Draws:
    a = augmentation
    height, width, channels = shape
    fraction = rng.uniform(-a.shift_fraction, a.shift_fraction, size=(n, 2))
    return _Draws(
        angle_deg=rng.uniform(-a.rotation_deg, a.rotation_deg, size=n),
        zoom=rng.uniform(1.0 - a.zoom_fraction, 1.0 + a.zoom_fraction, size=n),
        shift_px=fraction * np.array([height, width], dtype=np.float64),
        flip=(rng.random(n) < 0.5) & a.horizontal_flip,
        brightness=rng.uniform(*a.brightness_range, size=n),
        channel_shift=rng.uniform(-a.channel_shift, a.channel_shift, size=(n, channels)),
    )


def _warp_one(image: NDArray[np.float32], draws: _Draws, i: int) -> NDArray[np.float32]:
    """The affine warp (bilinear, edges repeated) of one (H, W, C) image."""
    matrix, offset = affine_matrix(
        angle_deg=float(draws.angle_deg[i]),
        zoom=float(draws.zoom[i]),
        shift_px=(float(draws.shift_px[i, 0]), float(draws.shift_px[i, 1])),
        shape=(image.shape[0], image.shape[1]),
    )
    return np.stack(
        [
            ndimage.affine_transform(image[..., c], matrix, offset=offset, order=1, mode="nearest")
            for c in range(image.shape[-1])
        ],
        axis=-1,
    )


def _augment_batch(batch: NDArray[np.float32], draws: _Draws) -> NDArray[np.float32]:
    """Warp (where drawn), flip, brightness, channel shift and clipping of an (N, H, W, C) batch.

    The photometric steps run on the whole batch at once; the arithmetic is the per-image one (the
    brightness factor applied in float32, the channel shift added in float64), so the result does not
    depend on the batch it is computed in.
    """
    warped = batch.copy()
    moved = (draws.angle_deg != 0) | (draws.zoom != 1) | np.any(draws.shift_px != 0, axis=1)
    for i in np.flatnonzero(moved):
        warped[i] = _warp_one(batch[i], draws, int(i))
    flipped = np.where(draws.flip[:, None, None, None], warped[:, :, ::-1], warped)
    scaled = flipped * draws.brightness.astype(np.float32)[:, None, None, None]
    shifted = scaled + draws.channel_shift[:, None, None, :]
    return np.asarray(np.clip(shifted, 0.0, 1.0), dtype=np.float32)


def augment(
    images: ArrayLike, *, rng: np.random.Generator, augmentation: Augmentation = PAPER_AUGMENTATION
) -> NDArray[np.float32]:
    """A randomly augmented copy of an image batch (RBDM §5.1).

    Per image, in this order: rotation, zoom and shift about the centre (bilinear, edges repeated, as
    Keras' ``ImageDataGenerator`` with ``fill_mode="nearest"``), a horizontal flip, the brightness factor,
    the per-channel shift, and clipping to [0, 1]. The draws for the whole batch come from ``rng``.

    Parameters
    ----------
    images : array_like, shape (N, H, W) or (N, H, W, C)
        Intensities in [0, 1]; not modified.
    rng : numpy.random.Generator
        Source of all randomness.
    augmentation : Augmentation
        The ranges; :data:`PAPER_AUGMENTATION` by default.

    Returns
    -------
    ndarray of float32, same shape as ``images``

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.1 (data augmentation).
    """
    x = check_images(images=images)
    if augmentation.is_identity:  # nothing to draw: the generator is left as it is
        return x.copy()
    grey = x.ndim == 3
    batch = x[..., np.newaxis] if grey else x
    draws = _draw(len(batch), (batch.shape[1], batch.shape[2], batch.shape[3]), augmentation, rng)
    out = _augment_batch(batch, draws)
    return out[..., 0] if grey else out


# --------------------------------------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------------------------------------


@contextmanager
def determinism(seed: int) -> Iterator[None]:
    """Seed Python, NumPy, Keras and the current TensorFlow graph, and make TensorFlow ops deterministic.

    Enter it inside the graph scope of the model to train (the TensorFlow seed belongs to the default
    graph). On exit the global Python and NumPy random states, Keras' seed generator and TensorFlow's
    op-determinism switch are restored, so the change stays temporary.

    The paper needed deterministic GPU kernels and a single input-pipeline worker to reproduce learning
    curves exactly (RBDM §5.6). Here ``tf.config.experimental.enable_op_determinism`` selects the
    deterministic kernels (or raises for ops that have none), and the input pipeline of
    :func:`train_trainer` is single-threaded numpy.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.6.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer; got {seed!r}.")
    tf = ensure_graph_mode()
    tf_config = import_optional(
        "tensorflow.python.framework.config", caller="analysis.training.deterministic"
    )
    keras_backend = import_optional("keras.src.backend", caller="analysis.training.deterministic")
    python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002 (restored below)
    seed_generator = getattr(keras_backend._SEED_GENERATOR, "generator", None)
    was_deterministic = bool(tf_config.is_op_determinism_enabled())
    tf.keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was_deterministic:
            tf_config.disable_op_determinism()
        keras_backend._SEED_GENERATOR.generator = seed_generator
        random.setstate(python_state)
        np.random.set_state(numpy_state)  # noqa: NPY002 (the global state Keras seeded)


# --------------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """Scores after one epoch of training.

    Parameters
    ----------
    epoch : int
        1-based epoch number.
    loss : float
        Mean class-weighted training loss over the epoch's batches (augmented images).
    val_loss, val_accuracy, val_macro_f1 : float
        Scores on the validation split (see :func:`validation_scores`).
    duration_s : float
        Wall time of the epoch including validation.
    """

    epoch: int
    loss: float
    val_loss: float
    val_accuracy: float
    val_macro_f1: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class TrainResult:
    """A trained model at its best epoch, the learning curves and the settings that produced it.

    Parameters
    ----------
    model : BoundModel
        The model with the weights of the epoch with the highest validation macro-F1.
    history : tuple of EpochRecord
        One record per epoch.
    best_epoch : int
        1-based epoch whose weights ``model`` holds (the earliest among ties).
    settings : mapping
        The training arguments (architecture, options, epochs, batch size, learning rate, augmentation,
        seed, deterministic, class weights, sample counts), JSON-compatible.
    """

    model: BoundModel
    history: tuple[EpochRecord, ...]
    best_epoch: int
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> EpochRecord:
        """The record of :attr:`best_epoch`."""
        return self.history[self.best_epoch - 1]


@dataclass(frozen=True, slots=True)
class TrainerPreset:
    """A named Trainer recipe: what ``rbdm train-trainer --preset NAME`` sets (see :data:`TRAINER_PRESETS`).

    Each field is the :func:`train_trainer` argument of the same name, except ``augmentation``, which
    names an entry of :data:`AUGMENTATIONS`. ``summary`` says in one line what the recipe is for.
    """

    summary: str
    architecture: str
    epochs: int
    batch_size: int
    learning_rate: float
    augmentation: str
    options: Mapping[str, Any] = field(default_factory=dict)
    schedule: str = "constant"
    warmup_fraction: float = 0.05
    label_smoothing: float = 0.0
    class_weight_power: float = 1.0

    def __post_init__(self) -> None:
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(
                f"augmentation must be one of {sorted(AUGMENTATIONS)!r}; got {self.augmentation!r}."
            )
        learning_rate_at(
            0,
            total_steps=1,
            peak_rate=self.learning_rate,
            schedule=self.schedule,
            warmup_fraction=self.warmup_fraction,
        )


#: Named recipes of ``rbdm train-trainer --preset``. ``paper`` is RBDM §5.1 on the small CNN;
#: ``fer_vgg`` is the FER2013 Trainer of docs/trainers.md, sized for about 45 minutes on two CPU cores.
TRAINER_PRESETS: dict[str, TrainerPreset] = {
    "paper": TrainerPreset(
        summary="RBDM §5.1: small CNN, Adam 0.001, batches of 32, class weights, the paper's augmentation",
        architecture="small_cnn",
        epochs=10,
        batch_size=32,
        learning_rate=1e-3,
        augmentation="paper",
    ),
    "fer_vgg": TrainerPreset(
        summary=(
            "FER2013 at 48 px: VGG-style CNN with batch norms (vgg_bn), Adam 0.003 with warm-up and cosine "
            "decay, batches of 64, label smoothing 0.1, class weights to the power 0.25, light augmentation"
        ),
        architecture="vgg_bn",
        epochs=36,
        batch_size=64,
        learning_rate=3e-3,
        augmentation="light",
        schedule="cosine",
        warmup_fraction=0.03,
        label_smoothing=0.1,
        class_weight_power=0.25,
    ),
}


def train_trainer(
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_val: ArrayLike,
    y_val: ArrayLike,
    *,
    architecture: str = "small_cnn",
    options: Mapping[str, Any] | None = None,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    n_classes: int = len(LABELS),
    augmentation: Augmentation = PAPER_AUGMENTATION,
    seed: int = 0,
    deterministic: bool = True,
    schedule: str = "constant",
    warmup_fraction: float = 0.05,
    label_smoothing: float = 0.0,
    class_weight_power: float = 1.0,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> TrainResult:
    """Train a Trainer model from scratch and keep its best epoch (RBDM §5.1, §5.6).

    Parameters
    ----------
    x_train, x_val : array_like, shape (N, H, W) or (N, H, W, 3)
        Images with intensities in [0, 1]; the model's input shape is taken from ``x_train``.
    y_train, y_val : array_like of int, shape (N,)
        Class indices in the order of :data:`analysis.labels.LABELS`.
    architecture : str
        See :func:`analysis.models.build_model`.
    options : mapping, optional
        Builder options (e.g. ``{"alpha": 0.35}`` for MobileNetV2).
    epochs : int
        Number of passes over the training split.
    batch_size : int
        Images per step (paper: 32).
    learning_rate : float
        Adam's learning rate (paper: 0.001).
    n_classes : int
        Number of model outputs.
    augmentation : Augmentation
        Applied to every training batch (paper's by default); never to validation images.
    seed : int
        Seeds weight initialisation, batch order and augmentation.
    deterministic : bool
        Build and train inside :func:`determinism` (seeded weights, deterministic TensorFlow kernels;
        RBDM §5.6). When false, TensorFlow picks its own weight seeds and kernels (faster on a GPU); batch
        order and augmentation still follow ``seed``.
    schedule : {"constant", "cosine"}
        Learning-rate schedule over all steps of the run (:func:`learning_rate_at`); ``learning_rate`` is
        its peak. The paper's is constant.
    warmup_fraction : float
        Share of the steps of linear warm-up of the ``"cosine"`` schedule.
    label_smoothing : float
        Label smoothing in [0, 1) of the cross-entropy (Szegedy et al. 2016, §7); 0 in the paper.
    class_weight_power : float
        Exponent of the class weights (:func:`class_weights`): 1 the paper's, 0 none.
    on_epoch : callable, optional
        Called with each :class:`EpochRecord` as soon as the epoch is scored (e.g. to draw a curve).

    Returns
    -------
    TrainResult

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.1 (optimizer, batch size, weighted
       loss, augmentation, F1 per epoch, best model), §5.6 (determinism).
    """
    x_tr, y_tr, x_va, y_va = _check_splits(x_train, y_train, x_val, y_val, n_classes=n_classes)
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer ≥ 1; got {value!r}.")
    if not (np.isfinite(learning_rate) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a finite number > 0; got {learning_rate!r}.")
    if not (np.isfinite(label_smoothing) and 0 <= label_smoothing < 1):
        raise ValueError(f"label_smoothing must lie in [0, 1); got {label_smoothing!r}.")
    learning_rate_at(
        0, total_steps=1, peak_rate=learning_rate, schedule=schedule, warmup_fraction=warmup_fraction
    )
    input_shape = (x_tr.shape[1], x_tr.shape[2], 1 if x_tr.ndim == 3 else x_tr.shape[3])
    settings: dict[str, Any] = {
        "architecture": architecture,
        "options": dict(options or {}),
        "input_shape": list(input_shape),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": float(learning_rate),
        "schedule": schedule,
        "warmup_fraction": float(warmup_fraction),
        "optimizer": "Adam",
        "loss": "class-weighted categorical cross-entropy",
        "label_smoothing": float(label_smoothing),
        "class_weight_power": float(class_weight_power),
        "class_weights": class_weights(y_tr, n_classes=n_classes, power=class_weight_power).tolist(),
        "augmentation": dataclasses.asdict(augmentation),
        "seed": int(seed),
        "deterministic": bool(deterministic),
        "n_train": len(y_tr),
        "n_val": len(y_va),
    }
    settings = json.loads(json.dumps(settings))  # JSON types throughout, as in the model card
    graph, session = new_session()
    with graph.as_default(), session.as_default():
        with determinism(seed) if deterministic else contextlib.nullcontext():
            keras_model = build_model(
                architecture, input_shape=input_shape, n_classes=n_classes, options=options
            )
            bound = BoundModel(model=keras_model, graph=graph, session=session)
            history, best_epoch = _fit(bound, x_tr, y_tr, x_va, y_va, settings, augmentation, on_epoch)
    return TrainResult(model=bound, history=history, best_epoch=best_epoch, settings=settings)


def _check_splits(
    x_train: ArrayLike, y_train: ArrayLike, x_val: ArrayLike, y_val: ArrayLike, *, n_classes: int
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]:
    """Validated training and validation images and labels, one label per image, one image shape."""
    x_tr, x_va = check_images(x_train=x_train), check_images(x_val=x_val)
    y_tr = _check_labels(labels=y_train, n_classes=n_classes)
    y_va = _check_labels(labels=y_val, n_classes=n_classes)
    if len(x_tr) != len(y_tr) or len(x_va) != len(y_va):
        raise ValueError(
            f"need one label per image; got {len(x_tr)} training images for {len(y_tr)} labels and "
            f"{len(x_va)} validation images for {len(y_va)} labels."
        )
    if x_tr.shape[1:] != x_va.shape[1:]:
        raise ValueError(
            f"training and validation images differ in shape: {x_tr.shape[1:]} vs {x_va.shape[1:]}. "
            "Resize them to one size."
        )
    return x_tr, y_tr, x_va, y_va


def _fit(
    bound: BoundModel,
    x_tr: NDArray[np.float32],
    y_tr: NDArray[np.int64],
    x_va: NDArray[np.float32],
    y_va: NDArray[np.int64],
    settings: Mapping[str, Any],
    augmentation: Augmentation,
    on_epoch: Callable[[EpochRecord], None] | None,
) -> tuple[tuple[EpochRecord, ...], int]:
    """The epoch loop, run inside the model's graph and session."""
    model = bound.model
    compile_model(
        model, learning_rate=settings["learning_rate"], label_smoothing=settings.get("label_smoothing", 0.0)
    )
    rng = np.random.default_rng(settings["seed"])
    weights = np.asarray(settings["class_weights"], dtype=np.float32)
    rates = _step_rates(settings, n_train=len(y_tr))
    history: list[EpochRecord] = []
    best_epoch, best_f1, best_weights = 0, -np.inf, model.get_weights()
    for epoch in range(1, settings["epochs"] + 1):
        start = time.perf_counter()
        epoch_rates = None if rates is None else rates[epoch - 1]
        loss = _train_epoch(
            model, x_tr, y_tr, weights, settings["batch_size"], augmentation, rng, rates=epoch_rates
        )
        probabilities = model.predict(as_model_input(x_va, input_shape=bound.input_shape), batch_size=256)
        val_loss, val_accuracy, val_f1 = validation_scores(probabilities, y_va)
        record = EpochRecord(epoch, loss, val_loss, val_accuracy, val_f1, time.perf_counter() - start)
        history.append(record)
        if val_f1 > best_f1:
            best_epoch, best_f1, best_weights = epoch, val_f1, model.get_weights()
        if on_epoch is not None:
            on_epoch(record)
    model.set_weights(best_weights)
    return tuple(history), best_epoch


def _step_rates(settings: Mapping[str, Any], *, n_train: int) -> NDArray[np.float64] | None:
    """Per-epoch rows of per-step learning rates, or ``None`` for the constant schedule (nothing to set)."""
    schedule = settings.get("schedule", "constant")
    if schedule == "constant":
        return None
    steps_per_epoch = -(-n_train // settings["batch_size"])
    total = settings["epochs"] * steps_per_epoch
    rates = [
        learning_rate_at(
            step,
            total_steps=total,
            peak_rate=settings["learning_rate"],
            schedule=schedule,
            warmup_fraction=settings.get("warmup_fraction", 0.05),
        )
        for step in range(total)
    ]
    return np.asarray(rates, dtype=np.float64).reshape(settings["epochs"], steps_per_epoch)


def compile_model(model: Any, *, learning_rate: float, label_smoothing: float = 0.0) -> None:
    """Compile a Keras model for :func:`train_steps` (call inside its scope): Adam, cross-entropy.

    The legacy Adam optimizer is the one that works in graph mode (see :mod:`analysis.models`). The loss
    takes one weight per image (``sample_weight_mode="samplewise"``), which carries the class weights;
    ``label_smoothing`` moves that share of each one-hot target evenly onto all classes (Szegedy et al.
    2016, §7).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.1 (Adam, categorical cross-entropy).
    """
    tf = ensure_graph_mode()
    model.compile(
        optimizer=tf.keras.optimizers.legacy.Adam(learning_rate=learning_rate),
        loss=tf.keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        sample_weight_mode="samplewise",
    )


def train_steps(
    model: Any,
    x: NDArray[np.float32],
    y: NDArray[np.int64],
    weights: NDArray[np.float32],
    *,
    batch_size: int,
    augmentation: Augmentation,
    rng: np.random.Generator,
) -> Iterator[float]:
    """One shuffled pass over ``(x, y)`` in class-weighted, augmented batches; yields each batch's loss.

    A generator: each ``next()`` trains on one batch (inside the model's scope), so the caller can score,
    log or stop between steps. Batch order and augmentation draw from ``rng``. Each step calls Keras'
    compiled training function (:func:`_train_function`), as ``model.fit`` does, which gives the same
    updates as ``train_on_batch`` (tested) without its per-call input checks.

    Parameters
    ----------
    model : keras.Model
        Compiled with :func:`compile_model`.
    x : ndarray of float32, shape (N, H, W) or (N, H, W, C)
        Images in [0, 1].
    y : ndarray of int64, shape (N,)
        Class indices.
    weights : ndarray of float32, shape (n_classes,)
        Per-class loss weights (:func:`class_weights`).
    batch_size : int
        Images per step.
    augmentation : Augmentation
        Applied to every batch.
    rng : numpy.random.Generator
        Source of the batch order and the augmentation.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.1 (batches of 32, weighted loss).
    """
    n_classes = len(weights)
    height, width, channels = model.input_shape[1:]
    step = _train_function(model)
    order = rng.permutation(len(y))
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        images = augment(x[index], rng=rng, augmentation=augmentation)
        inputs = as_model_input(images, input_shape=(height, width, channels))
        targets = np.eye(n_classes, dtype=np.float32)[y[index]]
        yield step(inputs, targets, weights[y[index]].astype(np.float32))


def _train_function(
    model: Any,
) -> Callable[[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]], float]:
    """Keras' compiled training function of a compiled graph-mode model: (inputs, targets, weights) → loss.

    This is the function ``model.fit`` and ``train_on_batch`` call for each batch (Keras 2.14,
    ``training_v1``): one session call that applies the optimizer's update and the layers' updates
    (batch-norm statistics) and returns the total loss, regularisation included. Fed directly, it skips
    ``train_on_batch``'s per-call conversion and checks of the arrays, which are known good here.
    """
    keras_backend = import_optional("keras.src.backend", caller="analysis.training")
    model._make_train_function()
    function = model.train_function
    if len(model._feed_inputs) != 1 or len(model._feed_targets) != 1 or len(model._feed_sample_weights) != 1:
        raise ValueError(
            "train_steps needs a model with one input and one output, compiled with compile_model."
        )
    phase = [] if isinstance(keras_backend.symbolic_learning_phase(), int) else [True]

    def step(
        inputs: NDArray[np.float32], targets: NDArray[np.float32], weights: NDArray[np.float32]
    ) -> float:
        return float(function([inputs, targets, weights, *phase])[0])

    return step


def _train_epoch(
    model: Any,
    x: NDArray[np.float32],
    y: NDArray[np.int64],
    weights: NDArray[np.float32],
    batch_size: int,
    augmentation: Augmentation,
    rng: np.random.Generator,
    *,
    rates: NDArray[np.float64] | None = None,
) -> float:
    """One shuffled pass of class-weighted, augmented batches; returns the mean batch loss.

    With ``rates``, Adam's learning rate is set to ``rates[i]`` before the ``i``-th batch.
    """
    steps = train_steps(model, x, y, weights, batch_size=batch_size, augmentation=augmentation, rng=rng)
    if rates is None:
        return float(np.mean(list(steps)))
    keras_backend = import_optional("keras.src.backend", caller="analysis.training")
    losses = []
    for rate in rates:
        keras_backend.set_value(model.optimizer.lr, float(rate))
        loss = next(steps, None)
        if loss is None:
            break
        losses.append(loss)
    return float(np.mean(losses))


# --------------------------------------------------------------------------------------------------------
# Model card and files
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelCard:
    """What a saved Trainer is and how it was made, stored as JSON next to its ``.keras`` file.

    Parameters
    ----------
    architecture : str
        Architecture name (see :data:`analysis.models.ARCHITECTURES`).
    input_shape : tuple of int
        ``(height_px, width_px, channels)``.
    labels : tuple of str
        Output order of the model (:data:`analysis.labels.LABELS`).
    preprocessing : str
        How images are fed to the model (:data:`PREPROCESSING`).
    data : mapping
        Which data trained it (dataset name, split, sample counts: whatever the caller passes).
    scores : mapping
        Scores of the kept epoch: ``best_epoch``, ``val_macro_f1``, ``val_accuracy``, ``val_loss``.
    training : mapping
        The training settings (see :attr:`TrainResult.settings`).
    history : tuple of mapping
        Per-epoch scores (see :class:`EpochRecord`).
    versions : mapping
        Versions of the packages that trained it.
    """

    architecture: str
    input_shape: tuple[int, int, int]
    labels: tuple[str, ...]
    preprocessing: str
    data: Mapping[str, Any]
    scores: Mapping[str, float]
    training: Mapping[str, Any]
    history: tuple[Mapping[str, float], ...]
    versions: Mapping[str, str]

    def to_json(self) -> str:
        """The card as indented JSON text."""
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ModelCard:
        """Parse a card written by :meth:`to_json`."""
        raw = json.loads(text)
        try:
            return cls(
                architecture=str(raw["architecture"]),
                input_shape=(
                    int(raw["input_shape"][0]),
                    int(raw["input_shape"][1]),
                    int(raw["input_shape"][2]),
                ),
                labels=tuple(raw["labels"]),
                preprocessing=str(raw["preprocessing"]),
                data=dict(raw["data"]),
                scores=dict(raw["scores"]),
                training=dict(raw["training"]),
                history=tuple(dict(h) for h in raw["history"]),
                versions=dict(raw["versions"]),
            )
        except (KeyError, TypeError, IndexError) as err:
            raise ValueError(f"not a model card: missing or malformed field {err}.") from err


def card_path(model_path: str | Path) -> Path:
    """The card file of a model file: same name, ``.json`` instead of ``.keras``."""
    return Path(model_path).with_suffix(".json")


def _versions() -> dict[str, str]:
    versions = {}
    for package in ("rbdm-studio", "tensorflow-cpu", "tensorflow", "keras", "innvestigate", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def save_trained(
    path: str | Path, result: TrainResult, *, data: Mapping[str, Any] | None = None
) -> ModelCard:
    """Write the trained model to ``path`` (``.keras``) and its :class:`ModelCard` next to it (``.json``).

    Parameters
    ----------
    path : str or Path
        Model file, ending in ``.keras``.
    result : TrainResult
        What :func:`train_trainer` returned.
    data : mapping, optional
        Description of the training data for the card (e.g. ``{"dataset": "ferplus", "split": "train"}``).

    Returns
    -------
    ModelCard
        The card that was written.
    """
    best = result.best
    card = ModelCard(
        architecture=str(result.settings.get("architecture", "")),
        input_shape=result.model.input_shape,
        labels=tuple(LABELS[: result.model.n_classes]),
        preprocessing=PREPROCESSING,
        data=dict(data or {}),
        scores={
            "best_epoch": float(result.best_epoch),
            "val_macro_f1": best.val_macro_f1,
            "val_accuracy": best.val_accuracy,
            "val_loss": best.val_loss,
        },
        training=dict(result.settings),
        history=tuple(dataclasses.asdict(record) for record in result.history),
        versions=_versions(),
    )
    card = ModelCard.from_json(card.to_json())  # JSON types throughout (lists, not tuples)
    target = Path(path)
    text = card.to_json()
    # model and card as one unit, the card renamed last: a failed save leaves the old pair as it was
    replace_together(
        {
            target: model_writer(result.model, target),
            card_path(target): lambda temporary: temporary.write_text(text, encoding="utf-8"),
        }
    )
    return card


def load_trained(path: str | Path) -> tuple[BoundModel, ModelCard]:
    """Read a model written by :func:`save_trained` and its card.

    Raises
    ------
    FileNotFoundError
        When the model file or its card is missing.
    ValueError
        When the card is damaged, or the model's number of outputs differs from the card's labels.
    UnsafeModelError
        When the model file would run code stored in it (see :func:`analysis.models.load_model_file`).
    """
    card_file = card_path(path)
    if not card_file.is_file():
        raise FileNotFoundError(
            f"no model card at {str(card_file)!r} next to the model file. Save models with save_trained."
        )
    try:
        card = ModelCard.from_json(card_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(
            f"the model card {str(card_file)!r} is damaged ({err}). Restore it, or train the model again."
        ) from err
    model = load_model_file(path)
    if model.n_classes != len(card.labels):
        model.close()
        raise ValueError(
            f"the model {str(path)!r} has {model.n_classes} outputs but its card {str(card_file)!r} names "
            f"{len(card.labels)} labels {list(card.labels)!r}; the card does not belong to this model. "
            "Train the model again, or restore the matching card."
        )
    return model, card
