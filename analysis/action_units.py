"""The multi-label action unit model: one sigmoid output per unit, its training, saving and loading (TP §3.1).

TP explains a multi-label network that predicts facial action units (AUs) frame by frame (§3.1, the
model of Pahl et al.): one sigmoid output per unit, a unit active where its output exceeds 0.5. This
module builds such a network (:func:`build_unit_model`), trains it with binary cross-entropy and keeps
its best epoch (:func:`train_unit_model`), trains the embedded default on synthetic AU sequences
(:func:`train_default_unit_model`, data from :mod:`analysis.datasets.synthetic_sequences`), saves it
like the Trainer (``.keras`` and a JSON model card, :func:`save_unit_model`) and reads it back
(:func:`load_unit_model`, :func:`default_unit_model`). :func:`predict_units` gives the sigmoid outputs
per frame, :func:`unit_f1` scores them against the true active units.

The rest of TP §3 lives in its own modules: relevance of the active units (§3.2,
:mod:`analysis.unit_relevance`), SpRAy per unit (§3.3, :mod:`analysis.spray`), temporal prototypes
(§3.4, :mod:`analysis.prototypes`) and the pipeline that runs them over sequences
(:mod:`analysis.prototype_pipeline`).

TensorFlow runs in graph mode in the model's own graph and session (see :mod:`analysis.models`), so
models can be trained, loaded and explained from a worker thread.

References
----------
.. [1] Finzel et al. (2021), Deriving Temporal Prototypes from Saliency Map Clusters, §3.1.
.. [2] Pahl, Rieger and Seuss (2020), multi-label AU learning (TP [24]): one sigmoid per unit, binary
   cross-entropy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.datasets.synthetic_sequences import UNIT_NAMES, make_sequences, sequence_frames
from analysis.models import (
    BoundModel,
    as_model_input,
    build_model,
    check_images,
    new_session,
    save_model_file,
)

if TYPE_CHECKING:
    from analysis.training import ModelCard

__all__ = [
    "UNIT_MODEL_OPTIONS",
    "UnitEpochRecord",
    "UnitTrainResult",
    "build_unit_model",
    "default_unit_model",
    "load_unit_model",
    "predict_units",
    "save_unit_model",
    "train_default_unit_model",
    "train_unit_model",
    "unit_f1",
]


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


def build_unit_model(
    *,
    input_shape: tuple[int, int, int],
    units: Sequence[str] = UNIT_NAMES,
    architecture: str = "small_cnn",
    options: Mapping[str, Any] | None = None,
) -> Any:
    """An untrained multi-label network: one sigmoid output per unit, in the current default graph.

    The network is :func:`analysis.models.build_model`'s architecture with its softmax replaced by a
    separate ``Activation("sigmoid")`` named ``"sigmoid"`` on the layer ``"logits"``, so relevance can
    explain each unit's pre-sigmoid logit (:func:`analysis.unit_relevance.unit_logit_model`).

    Parameters
    ----------
    input_shape : (int, int, int)
        ``(height_px, width_px, channels)``.
    units : sequence of str
        Output names, at least two (default :data:`analysis.datasets.synthetic_sequences.UNIT_NAMES`).
    architecture, options :
        As in :func:`analysis.models.build_model`.

    Returns
    -------
    keras.Model

    References
    ----------
    .. [1] Finzel et al. (2021), §3.1, the multi-label AU network of Pahl et al. (TP [24]).
    """
    from analysis.models import ensure_graph_mode

    tf = ensure_graph_mode()
    names = _check_units(units)
    base = build_model(architecture, input_shape=input_shape, n_classes=len(names), options=options)
    logits = base.get_layer("logits").output
    outputs = tf.keras.layers.Activation("sigmoid", name="sigmoid")(logits)
    return tf.keras.Model(base.inputs, outputs, name=f"{architecture}_action_units")


def _check_units(units: Sequence[str]) -> tuple[str, ...]:
    names = tuple(units)
    if len(names) < 2 or len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"units must be at least two distinct non-empty names; got {names!r}.")
    return names


def predict_units(model: BoundModel, frames: ArrayLike, *, batch_size: int = 256) -> NDArray[np.float32]:
    """Sigmoid output of every unit for every frame, shape (T, U), in [0, 1] (TP §3.4).

    Parameters
    ----------
    model : BoundModel
        A network from :func:`build_unit_model` (or loaded with :func:`load_unit_model`).
    frames : array_like, shape (T, H, W) or (T, H, W, 3)
        Intensities in [0, 1] at the model's input size.
    """
    return model.predict(frames, batch_size=batch_size)


def unit_f1(scores: ArrayLike, truth: ArrayLike, *, threshold: float = 0.5) -> NDArray[np.float64]:
    """F1 score of each unit: predicted active (score > threshold) against the true active frames.

    Parameters
    ----------
    scores : array_like, shape (N, U)
        Sigmoid outputs.
    truth : array_like of bool, shape (N, U)
        Ground truth.
    threshold : float, default 0.5

    Returns
    -------
    ndarray of float64, shape (U,)
        ``2·TP / (2·TP + FP + FN)`` per unit; 1 for a unit never active and never predicted.
    """
    predicted = np.asarray(scores, dtype=np.float64) > threshold
    actual = np.asarray(truth, dtype=bool)
    if predicted.shape != actual.shape or predicted.ndim != 2:
        raise ValueError(
            f"scores and truth must both have shape (N, U); got {predicted.shape!r} and {actual.shape!r}."
        )
    tp = (predicted & actual).sum(axis=0)
    wrong = (predicted ^ actual).sum(axis=0)
    denominator = 2 * tp + wrong
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 1.0).astype(np.float64)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitEpochRecord:
    """Scores after one epoch of :func:`train_unit_model`.

    Parameters
    ----------
    epoch : int
        1-based epoch number.
    loss : float
        Mean binary cross-entropy over the epoch's training batches.
    val_loss : float
        Mean binary cross-entropy on the validation frames.
    val_macro_f1 : float
        Mean of ``val_f1``.
    val_f1 : tuple of float
        F1 of each unit on the validation frames (:func:`unit_f1`).
    duration_s : float
        Wall time of the epoch including validation.
    """

    epoch: int
    loss: float
    val_loss: float
    val_macro_f1: float
    val_f1: tuple[float, ...]
    duration_s: float


@dataclass(frozen=True, slots=True)
class UnitTrainResult:
    """A trained multi-label model at its best epoch (highest validation macro-F1).

    Parameters
    ----------
    model : BoundModel
        The network with sigmoid outputs.
    units : tuple of str
        Output names.
    history : tuple of UnitEpochRecord
    best_epoch : int
        1-based epoch whose weights ``model`` holds.
    settings : mapping
        The training arguments, JSON-compatible.
    """

    model: BoundModel
    units: tuple[str, ...]
    history: tuple[UnitEpochRecord, ...]
    best_epoch: int
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> UnitEpochRecord:
        """The record of :attr:`best_epoch`."""
        return self.history[self.best_epoch - 1]


def _check_targets(name: str, targets: ArrayLike, n_images: int, n_units: int) -> NDArray[np.float32]:
    y = np.asarray(targets)
    if y.shape != (n_images, n_units) or not (y.dtype == bool or np.isin(y, (0, 1)).all()):
        raise ValueError(
            f"{name} must be a 0/1 matrix of shape ({n_images}, {n_units}), one row per image and one "
            f"column per unit; got dtype {y.dtype} and shape {y.shape!r}."
        )
    return y.astype(np.float32)


def train_unit_model(
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_val: ArrayLike,
    y_val: ArrayLike,
    *,
    units: Sequence[str] = UNIT_NAMES,
    architecture: str = "small_cnn",
    options: Mapping[str, Any] | None = None,
    epochs: int = 14,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    mirror: bool = True,
    seed: int = 0,
    deterministic: bool = True,
    on_epoch: Callable[[UnitEpochRecord], None] | None = None,
) -> UnitTrainResult:
    """Train a multi-label unit network with binary cross-entropy and keep its best epoch.

    Adam, shuffled batches drawn from ``np.random.default_rng(seed)``, each image mirrored left-right
    with probability 1/2 (``mirror``), validation macro-F1 after every epoch, the best epoch's weights
    kept.

    Parameters
    ----------
    x_train, x_val : array_like, shape (N, H, W) or (N, H, W, 3)
        Frames with intensities in [0, 1].
    y_train, y_val : array_like of bool, shape (N, U)
        Active units per frame (e.g. :attr:`analysis.datasets.synthetic_sequences.SyntheticSequence.active`).
    units : sequence of str
        Output names, one per column of the targets.
    architecture, options :
        See :func:`build_unit_model`.
    epochs, batch_size, learning_rate : int, int, float
    mirror : bool, default True
        Random left-right mirroring, for units whose label does not depend on the side (FACS codes a
        unit the same on either side; one-sided AU12 is AU12).
    seed : int
        Seeds weights (with ``deterministic``) and batch order.
    deterministic : bool
        Build and train inside :func:`analysis.training.determinism`.
    on_epoch : callable, optional
        Called with each :class:`UnitEpochRecord`.

    Returns
    -------
    UnitTrainResult

    References
    ----------
    .. [1] Finzel et al. (2021), §3.1; Pahl et al. (2020), multi-label AU training.
    """
    from analysis.training import determinism

    names = _check_units(units)
    x_tr, x_va = check_images(x_train=x_train), check_images(x_val=x_val)
    y_tr = _check_targets("y_train", y_train, len(x_tr), len(names))
    y_va = _check_targets("y_val", y_val, len(x_va), len(names))
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    if x_tr.shape[1:] != x_va.shape[1:]:
        raise ValueError(
            f"training and validation frames differ in shape: {x_tr.shape[1:]} vs {x_va.shape[1:]}."
        )
    input_shape = (x_tr.shape[1], x_tr.shape[2], 1 if x_tr.ndim == 3 else x_tr.shape[3])
    settings: dict[str, Any] = {
        "architecture": architecture,
        "options": dict(options or {}),
        "input_shape": list(input_shape),
        "units": list(names),
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": float(learning_rate),
        "optimizer": "Adam",
        "loss": "binary cross-entropy (one sigmoid per unit)",
        "mirror": bool(mirror),
        "seed": int(seed),
        "deterministic": bool(deterministic),
        "n_train": len(x_tr),
        "n_val": len(x_va),
    }
    graph, session = new_session()
    with graph.as_default(), session.as_default():
        with determinism(seed) if deterministic else contextlib.nullcontext():
            keras_model = build_unit_model(
                input_shape=input_shape, units=names, architecture=architecture, options=options
            )
            bound = BoundModel(model=keras_model, graph=graph, session=session)
            history, best_epoch = _fit(bound, (x_tr, y_tr), (x_va, y_va), settings, on_epoch)
    return UnitTrainResult(
        model=bound, units=names, history=history, best_epoch=best_epoch, settings=settings
    )


def _fit(
    bound: BoundModel,
    train: tuple[NDArray[np.float32], NDArray[np.float32]],
    val: tuple[NDArray[np.float32], NDArray[np.float32]],
    settings: Mapping[str, Any],
    on_epoch: Callable[[UnitEpochRecord], None] | None,
) -> tuple[tuple[UnitEpochRecord, ...], int]:
    """The epoch loop, inside the model's graph and session."""
    from analysis.models import ensure_graph_mode

    tf = ensure_graph_mode()
    model = bound.model
    model.compile(
        optimizer=tf.keras.optimizers.legacy.Adam(learning_rate=settings["learning_rate"]),
        loss=tf.keras.losses.BinaryCrossentropy(),
    )
    x_tr = as_model_input(train[0], input_shape=bound.input_shape)
    x_va = as_model_input(val[0], input_shape=bound.input_shape)
    rng = np.random.default_rng(settings["seed"])
    history: list[UnitEpochRecord] = []
    best_epoch, best_f1, best_weights = 0, -np.inf, model.get_weights()
    for epoch in range(1, settings["epochs"] + 1):
        start = time.perf_counter()
        order = rng.permutation(len(x_tr))
        batches = [
            order[i : i + settings["batch_size"]] for i in range(0, len(order), settings["batch_size"])
        ]
        losses = []
        for batch in batches:
            images = x_tr[batch]
            if settings["mirror"]:
                flip = rng.random(len(batch)) < 0.5
                images = np.where(flip[:, None, None, None], images[:, :, ::-1], images)
            losses.append(float(model.train_on_batch(images, train[1][batch])))
        loss = float(np.mean(losses))
        scores = np.asarray(model.predict(x_va, batch_size=256, verbose=0), dtype=np.float64)
        f1 = unit_f1(scores, val[1] > 0.5)
        record = UnitEpochRecord(
            epoch,
            loss,
            _bce(scores, val[1]),
            float(f1.mean()),
            tuple(map(float, f1)),
            time.perf_counter() - start,
        )
        history.append(record)
        if record.val_macro_f1 > best_f1:
            best_epoch, best_f1, best_weights = epoch, record.val_macro_f1, model.get_weights()
        if on_epoch is not None:
            on_epoch(record)
    model.set_weights(best_weights)
    return tuple(history), best_epoch


def _bce(scores: NDArray[np.float64], targets: NDArray[np.float32]) -> float:
    p = np.clip(scores, 1e-7, 1.0 - 1e-7)
    return float(-np.mean(targets * np.log(p) + (1.0 - targets) * np.log(1.0 - p)))


#: Small-CNN options of the embedded default unit model (see :func:`train_default_unit_model`).
UNIT_MODEL_OPTIONS: Mapping[str, Any] = {"padding": "same"}


def train_default_unit_model(
    *,
    seed: int = 0,
    n_per_class: int = 20,
    n_val_per_class: int = 6,
    mix_ratio: float = 3.0,
    epochs: int = 20,
    size: int = 48,
    on_epoch: Callable[[UnitEpochRecord], None] | None = None,
) -> UnitTrainResult:
    """Train the embedded default: the small CNN on synthetic AU sequences (a minute or two on a CPU).

    The training data are the class sequences of
    :func:`analysis.datasets.synthetic_sequences.make_sequences` plus ``mix_ratio`` times as many
    sequences of random unit combinations
    (:func:`analysis.datasets.synthetic_sequences.make_unit_mix_sequences`), drawn from a generator
    seeded ``(seed, 0)``; validation data the same from ``(seed, 1)``. Without the mixed sequences AU12 occurs
    only with a neutral upper face, and depending on the seed and the CPU's floating-point kernels the
    network detects it partly from the eyes: the two planted AU12 strategies then look alike to
    SpRAy. The share of frames with a neutral upper face is 1.00 among AU12 frames against 0.29
    among the others with class sequences alone, 0.66 against 0.37 with as many mixed sequences as
    class sequences (some runs still looked at the eyes in some faces and SpRAy split each side in
    two), and 0.36 against 0.39 with three times as many, the default (``docs/prototypes_record.md``:
    the adjusted Rand index per seed and oneDNN setting). The network is the small CNN with
    :data:`UNIT_MODEL_OPTIONS`.

    Parameters
    ----------
    seed : int
        Seeds data and training.
    n_per_class, n_val_per_class : int
        Training and validation sequences per class of
        :data:`analysis.datasets.synthetic_sequences.SEQUENCE_CLASSES`.
    mix_ratio : float, default 3.0
        Mixed-unit sequences per class sequence (≥ 0; 0 trains on the class sequences alone).
    epochs : int
    size : int
        Frame size in pixels.
    on_epoch : callable, optional
        Progress callback, see :func:`train_unit_model`.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.1, §3.3.
    """
    from analysis.datasets.synthetic_sequences import SEQUENCE_CLASSES, make_unit_mix_sequences

    if not (np.isfinite(mix_ratio) and mix_ratio >= 0):
        raise ValueError(f"mix_ratio must be a finite number >= 0; got {mix_ratio!r}.")
    splits = []
    for index, count in enumerate((n_per_class, n_val_per_class)):
        rng = np.random.default_rng((seed, index))
        sequences = make_sequences(count, rng=rng, size=size)
        n_mixed = round(mix_ratio * count * len(SEQUENCE_CLASSES))
        sequences += make_unit_mix_sequences(n_mixed, rng=rng, size=size)
        splits.append(sequence_frames(sequences))
    (x_tr, y_tr), (x_va, y_va) = splits
    result = train_unit_model(
        x_tr, y_tr, x_va, y_va, options=UNIT_MODEL_OPTIONS, epochs=epochs, seed=seed, on_epoch=on_epoch
    )
    settings = dict(result.settings)
    settings["data"] = {
        "dataset": "synthetic AU sequences",
        "seed": seed,
        "n_per_class": n_per_class,
        "mix_ratio": float(mix_ratio),
    }
    return dataclasses.replace(result, settings=settings)


def save_unit_model(
    path: str | Path, result: UnitTrainResult, *, data: Mapping[str, Any] | None = None
) -> ModelCard:
    """Write the model (``.keras``) and its :class:`analysis.training.ModelCard` (``.json``) beside it.

    The card's ``labels`` are the unit names; its ``scores`` hold the best epoch, the validation macro-F1
    and loss and one ``val_f1_<unit>`` per unit.
    """
    from analysis.training import PREPROCESSING, ModelCard, card_path

    best = result.best
    scores = {
        "best_epoch": float(result.best_epoch),
        "val_macro_f1": best.val_macro_f1,
        "val_loss": best.val_loss,
    }
    scores.update({f"val_f1_{unit}": value for unit, value in zip(result.units, best.val_f1, strict=True)})
    card = ModelCard(
        architecture=str(result.settings.get("architecture", "")),
        input_shape=result.model.input_shape,
        labels=result.units,
        preprocessing=PREPROCESSING,
        data=dict(data or result.settings.get("data", {})),
        scores=scores,
        training={key: value for key, value in result.settings.items() if key != "data"},
        history=tuple(_history_entry(record, result.units) for record in result.history),
        versions=_package_versions(),
    )
    target = save_model_file(result.model, path)
    card_path(target).write_text(card.to_json(), encoding="utf-8")
    return card


def _history_entry(record: UnitEpochRecord, units: Sequence[str]) -> dict[str, float]:
    entry = {key: float(value) for key, value in dataclasses.asdict(record).items() if key != "val_f1"}
    entry.update({f"val_f1_{unit}": value for unit, value in zip(units, record.val_f1, strict=True)})
    return entry


def _package_versions() -> dict[str, str]:
    import importlib.metadata

    versions = {}
    for package in ("rbdm-studio", "tensorflow-cpu", "keras", "innvestigate", "numpy"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    return versions


def load_unit_model(path: str | Path) -> tuple[BoundModel, ModelCard]:
    """Read a model written by :func:`save_unit_model` and its card (units = ``card.labels``).

    Raises
    ------
    FileNotFoundError
        When the model file or its card is missing.
    """
    from analysis.training import load_trained

    model, card = load_trained(path)
    if model.n_classes != len(card.labels):
        raise ValueError(
            f"{str(path)!r} has {model.n_classes} outputs but its card names {len(card.labels)} units."
        )
    return model, card


def default_unit_model(
    path: str | Path | None = None,
    *,
    seed: int = 0,
    on_epoch: Callable[[UnitEpochRecord], None] | None = None,
) -> tuple[BoundModel, tuple[str, ...]]:
    """The model to explain: read from ``path`` when that file exists, else the default trained now.

    Parameters
    ----------
    path : str or Path, optional
        A ``.keras`` file written by :func:`save_unit_model` (e.g. the app's shipped default).
    seed : int
        Seed of :func:`train_default_unit_model` when training.
    on_epoch : callable, optional
        Training progress.

    Returns
    -------
    (BoundModel, tuple of str)
        The model and its unit names (output order).
    """
    if path is not None and Path(path).is_file():
        model, card = load_unit_model(path)
        return model, tuple(card.labels)
    result = train_default_unit_model(seed=seed, on_epoch=on_epoch)
    return result.model, result.units
