"""Multi-label action unit models and the temporal-prototype pipeline over frame sequences (TP §3.1-3.4).

TP explains a multi-label network that predicts facial action units (AUs) frame by frame (§3.1): one
sigmoid output per unit, a unit active where its output exceeds 0.5. This module builds and trains a
small such network on synthetic AU sequences (:mod:`analysis.sequences`), which is the embedded
default, saves it like the Trainer (``.keras`` and a JSON model card), and runs TP's pipeline:

1. :func:`predict_units` — sigmoid outputs per frame; :func:`analysis.prototypes.active_labels`;
2. :func:`unit_relevance` — an LRP relevance map per frame and *active* unit, explaining the unit's
   pre-sigmoid logit with iNNvestigate's ``lrp.sequential_preset_a_flat`` (§3.2);
3. :func:`cluster_units` — SpRAy per unit over the maps of all sequences (§3.3), by default on where
   each map focuses, its top 5 % of pixels by |R| (:data:`SPRAY_INPUTS`), at 8 × 8, with
   :func:`default_spray_k` neighbours;
4. :func:`assemble` — clusters per frame, temporal prototypes per sequence, the mean map of every
   (unit, cluster) and the statistics of TP Table 1 (§3.4).

:func:`analyse_sequences` runs all four; :func:`prototypes_from_relevance` runs 3-4 on given scores and
maps (no TensorFlow). :func:`stage_panels` turns a sequence's stages into the panels of a prototype
strip (:mod:`analysis.visualisation`, §3.5). Results are saved and loaded with :func:`save_result` and
:func:`load_result` (one ``.npz`` file).

TensorFlow runs in graph mode in the model's own graph and session (see :mod:`analysis.models`), so
models can be trained, loaded and explained from a worker thread.

References
----------
.. [1] Finzel et al. (2021), Deriving Temporal Prototypes from Saliency Map Clusters, §3.1-3.5, Table 1.
.. [2] Pahl, Rieger and Seuss (2020), multi-label AU learning (TP [24]): one sigmoid per unit, binary
   cross-entropy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.models import (
    BoundModel,
    as_model_input,
    build_model,
    check_images,
    new_session,
    save_model_file,
)
from analysis.progress import ProgressCallback
from analysis.prototypes import (
    PrototypeTable,
    Stage,
    TemporalPrototype,
    active_labels,
    build_stages,
    frame_clusters,
    name_clusters,
    prototype_statistics,
)
from analysis.sequences import UNIT_NAMES, make_sequences, sequence_frames
from analysis.spray import SprayParams, SprayResult, spray
from analysis.visualisation import StagePanel

if TYPE_CHECKING:
    from analysis.saliency import RelevanceExplainer
    from analysis.training import ModelCard

__all__ = [
    "DEFAULT_ANALYZER",
    "DEFAULT_SPRAY_FACTOR",
    "DEFAULT_SPRAY_INPUT",
    "FOCUS_FRACTION",
    "NO_CLASS",
    "SPRAY_INPUTS",
    "UNIT_MODEL_OPTIONS",
    "FrameSequence",
    "PrototypeResult",
    "SequenceAnalysis",
    "UnitEpochRecord",
    "UnitTrainResult",
    "analyse_sequences",
    "assemble",
    "build_unit_model",
    "cluster_units",
    "default_spray_k",
    "default_unit_model",
    "load_result",
    "load_unit_model",
    "predict_units",
    "prototypes_from_relevance",
    "save_result",
    "save_unit_model",
    "stage_panels",
    "train_default_unit_model",
    "train_unit_model",
    "unit_explainer",
    "unit_f1",
    "unit_logit_model",
    "unit_relevance",
]

#: The relevance method of TP §3.2 (iNNvestigate's LRPSequentialPresetAFlat).
DEFAULT_ANALYZER = "lrp.sequential_preset_a_flat"
#: SpRAy downscaling factor: 48 × 48 maps become 8 × 8 before clustering (TP §3.3, pre-processing).
#: At 6 × 6 (factor 8) one cell spans the whole lip corner, and the two planted AU12 strategies, whose
#: relevance lies 3-5 px apart, fall into the same cells.
DEFAULT_SPRAY_FACTOR = 6
#: Share of the pixels of each map that :data:`SPRAY_INPUTS` ``["focus"]`` keeps (TP §3.5, Top-X).
FOCUS_FRACTION = 0.05
#: The default SpRAy input (a key of :data:`SPRAY_INPUTS`).
DEFAULT_SPRAY_INPUT = "focus"
#: Class name of sequences without an emotion label (TP Table 1, column "None").
NO_CLASS = "None"

_Maps = NDArray[np.float32]


class FrameSequence(Protocol):
    """What the pipeline needs of a sequence: an id, a class name and its frames (model input size)."""

    @property
    def id(self) -> str: ...

    @property
    def class_name(self) -> str: ...

    @property
    def frames(self) -> NDArray[np.float32]: ...


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
    explain each unit's pre-sigmoid logit (:func:`unit_logit_model`).

    Parameters
    ----------
    input_shape : (int, int, int)
        ``(height_px, width_px, channels)``.
    units : sequence of str
        Output names, at least two (default :data:`analysis.sequences.UNIT_NAMES`).
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


def unit_logit_model(model: BoundModel) -> BoundModel:
    """The same network returning the pre-sigmoid logits, sharing graph, session and lock.

    Relevance explains a logit, not a probability (TP §3.2); iNNvestigate needs a linear output.

    Raises
    ------
    ValueError
        When the model's last layer is not a separate sigmoid ``Activation``.
    """
    from analysis.models import ensure_graph_mode

    tf = ensure_graph_mode()
    with model.scope() as keras_model:
        last = keras_model.layers[-1]
        if not (
            isinstance(last, tf.keras.layers.Activation) and last.activation is tf.keras.activations.sigmoid
        ):
            raise ValueError(
                f"model {keras_model.name!r} does not end in a separate sigmoid Activation layer (last layer "
                f"{last.name!r}); build it with build_unit_model."
            )
        logits = tf.keras.Model(keras_model.inputs, last.input, name=f"{keras_model.name}_logits")
    return BoundModel(model=logits, graph=model.graph, session=model.session, lock=model.lock)


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
        Active units per frame (e.g. :attr:`analysis.sequences.SyntheticSequence.active`).
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

    The training data are the class sequences of :func:`analysis.sequences.make_sequences` plus
    ``mix_ratio`` times as many sequences of random unit combinations
    (:func:`analysis.sequences.make_unit_mix_sequences`), drawn from a generator seeded
    ``(seed, 0)``; validation data the same from ``(seed, 1)``. Without the mixed sequences AU12 occurs
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
        Training and validation sequences per class of :data:`analysis.sequences.SEQUENCE_CLASSES`.
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
    from analysis.sequences import SEQUENCE_CLASSES, make_unit_mix_sequences

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


# --------------------------------------------------------------------------------------------------
# Relevance per frame and active unit (TP §3.2)
# --------------------------------------------------------------------------------------------------


def unit_explainer(model: BoundModel, analyzer: str = DEFAULT_ANALYZER) -> RelevanceExplainer:
    """A relevance explainer for the units' logits (built once per model; reuse it).

    References
    ----------
    .. [1] Finzel et al. (2021), §3.2, LRPSequentialPresetAFlat from iNNvestigate.
    """
    from analysis.saliency import RelevanceExplainer

    return RelevanceExplainer(unit_logit_model(model), analyzer)


def unit_relevance(
    explainer: RelevanceExplainer,
    frames: ArrayLike,
    active: Sequence[AbstractSet[str]],
    *,
    units: Sequence[str] = UNIT_NAMES,
    batch_size: int = 64,
) -> dict[str, _Maps]:
    """One relevance map per frame and active unit, grouped by unit in frame order (TP §3.2).

    Parameters
    ----------
    explainer : RelevanceExplainer
        From :func:`unit_explainer`.
    frames : array_like, shape (T, H, W) or (T, H, W, 3)
        Frames of one or several sequences.
    active : sequence of set of str, length T
        Active units per frame (e.g. :func:`analysis.prototypes.active_labels` of the predictions).
    units : sequence of str
        Output names of the model, in output order.
    batch_size : int

    Returns
    -------
    dict of str to ndarray of float32, shape (n_u, H, W)
        For each unit active in some frame, its maps in frame order (colour relevance summed).

    References
    ----------
    .. [1] Finzel et al. (2021), §3.2 (relevance per pixel), §3.4 (per predicted unit).
    """
    from analysis.saliency import maps_to_2d

    x = check_images(frames=frames)
    names = _check_units(units)
    if len(active) != len(x):
        raise ValueError(f"need one set of active units per frame; got {len(active)} for {len(x)} frames.")
    unknown = sorted({u for labels in active for u in labels} - set(names))
    if unknown:
        raise ValueError(f"active units {unknown!r} are not outputs of the model ({', '.join(names)}).")
    pairs = [(t, names.index(u)) for t, labels in enumerate(active) for u in sorted(labels, key=names.index)]
    if not pairs:
        return {}
    rows = np.array([t for t, _ in pairs])
    outputs = np.array([u for _, u in pairs])
    relevance = maps_to_2d(explainer.explain(x[rows], class_index=outputs, batch_size=batch_size).relevance)
    return {names[u]: relevance[outputs == u] for u in sorted(set(outputs.tolist()))}


# --------------------------------------------------------------------------------------------------
# Clustering and prototypes (TP §3.3-3.4)
# --------------------------------------------------------------------------------------------------


def default_spray_k(maps_per_sequence: Sequence[int]) -> int:
    """Neighbours per map for SpRAy over sequences: ``max(10, 3 · median maps per sequence, ⌈N / 4⌉)``.

    Consecutive frames of one sequence give nearly identical maps. With fewer neighbours than a
    sequence has maps, each sequence becomes its own part of the similarity graph and the eigengap
    counts sequences (or groups of similar faces) instead of strategies; three times the typical count
    joins every map to other sequences. ``⌈N / 4⌉`` neighbours among N maps still separate up to about
    four strategies of similar size, while smaller groups of similar faces merge.

    Parameters
    ----------
    maps_per_sequence : sequence of int
        Number of maps of the unit in each sequence where it is active (zeros are ignored).

    Returns
    -------
    int

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3 (similarity matrix); von Luxburg (2007), §8.1 (choice of k).
    """
    counts = [int(c) for c in maps_per_sequence if int(c) > 0]
    if not counts:
        return 10
    return max(10, 3 * int(np.ceil(np.median(counts))), int(np.ceil(sum(counts) / 4)))


def _magnitude(maps: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.abs(maps)


def _signed(maps: NDArray[np.float64]) -> NDArray[np.float64]:
    return maps


def _positive(maps: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.clip(maps, 0.0, None)


def _focus(maps: NDArray[np.float64]) -> NDArray[np.float64]:
    """1 on the top :data:`FOCUS_FRACTION` of each map's pixels by ``|R|``, 0 elsewhere (ties kept)."""
    flat = np.abs(maps).reshape(len(maps), -1)
    if flat.shape[1] == 0:
        return np.zeros_like(maps)
    cut = np.quantile(flat, 1.0 - FOCUS_FRACTION, axis=1, keepdims=True)
    focus: NDArray[np.float64] = ((flat >= cut) & (flat > 0)).reshape(maps.shape).astype(np.float64)
    return focus


#: What SpRAy clusters of each relevance map (TP §3.3, pre-processing). ``"focus"`` (default): where
#: the network looks, the top :data:`FOCUS_FRACTION` of the pixels by ``|R|`` as a binary map (TP §3.5's
#: Top-X). How strongly it looks there changes with the face (skin and background contrast) and with
#: the frame (an action's onset ramp), and with ``|R|`` those changes outweighed the 3-5 px between the
#: two planted AU12 strategies on some training runs; the focus keeps only the place. ``"magnitude"``:
#: ``|R|``, whatever the sign. ``"signed"``: the maps as they are (the sign of weak evidence elsewhere in
#: the face varies between faces and splits one strategy into several); ``"positive"``: only evidence
#: for the unit (negative relevance removed, as in TP §3.5).
SPRAY_INPUTS: dict[str, Callable[[NDArray[np.float64]], NDArray[np.float64]]] = {
    "focus": _focus,
    "magnitude": _magnitude,
    "signed": _signed,
    "positive": _positive,
}


def cluster_units(
    relevance_by_unit: Mapping[str, ArrayLike],
    *,
    rng: np.random.Generator,
    maps_per_sequence: Mapping[str, Sequence[int]] | None = None,
    factor: int = DEFAULT_SPRAY_FACTOR,
    k: int | None = None,
    max_clusters: int = 10,
    spray_input: str = DEFAULT_SPRAY_INPUT,
) -> dict[str, SprayResult]:
    """SpRAy per unit over the maps of all sequences (TP §3.3: clusters are formed per Action Unit).

    Each unit's maps go through :data:`SPRAY_INPUTS` ``[spray_input]``, then
    :func:`analysis.spray.spray` (downscaled by ``factor``, L2-normalised, ``k`` neighbours, eigengap).

    Parameters
    ----------
    relevance_by_unit : mapping of str to array_like (n_u, H, W)
        Each unit's maps, e.g. concatenated over sequences from :func:`unit_relevance`.
    rng : numpy.random.Generator
        Each unit gets its own child generator (as :func:`analysis.spray.spray_per_label`).
    maps_per_sequence : mapping of str to sequence of int, optional
        How many of each unit's maps come from each sequence, for :func:`default_spray_k`.
    factor : int, default 6
        Downscaling factor of :func:`analysis.spray.preprocess`.
    k : int, optional
        Neighbours per map; default :func:`default_spray_k` per unit.
    max_clusters : int, default 10
    spray_input : str, default "focus"
        A key of :data:`SPRAY_INPUTS`.

    Returns
    -------
    dict of str to SprayResult

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3 ("similar relevance maps most likely focus on the same
       features"), §3.4.
    """
    try:
        transform = SPRAY_INPUTS[spray_input]
    except KeyError as err:
        raise ValueError(
            f"unknown spray_input {spray_input!r}; expected one of {', '.join(SPRAY_INPUTS)}."
        ) from err
    children = rng.spawn(len(relevance_by_unit))
    results = {}
    for (unit, maps), child in zip(relevance_by_unit.items(), children, strict=True):
        counts = (maps_per_sequence or {}).get(unit, [np.shape(maps)[0]])
        neighbours = default_spray_k(counts) if k is None else k
        features = transform(np.asarray(maps, dtype=np.float64))
        results[unit] = spray(
            features, rng=child, factor=factor, normalise="l2", k=neighbours, max_clusters=max_clusters
        )
    return results


@dataclass(frozen=True, slots=True, eq=False)
class SequenceAnalysis:
    """One sequence through the pipeline (arrays read-only).

    Attributes
    ----------
    id, class_name : str
    frames : ndarray of float32, shape (T, H, W) or (T, H, W, 3)
    scores : ndarray of float32, shape (T, U)
        Sigmoid outputs.
    active : tuple of frozenset of str, length T
        Units predicted active per frame.
    relevance : dict of str to ndarray of float32, shape (n_u, H, W)
        Each unit's maps in the frames where it is active, in frame order.
    clusters : tuple of dict of str to int, length T
        SpRAy cluster id of each active unit per frame.
    names : tuple of frozenset of str, length T
        Named clusters per frame (``AU12_A``), letters by first appearance in this sequence.
    prototype : TemporalPrototype
        The sequence's temporal prototype (with clustering).
    stages : tuple of Stage
        Its stages with frame ranges.
    """

    id: str
    class_name: str
    frames: NDArray[np.float32]
    scores: NDArray[np.float32]
    active: tuple[frozenset[str], ...]
    relevance: dict[str, _Maps]
    clusters: tuple[dict[str, int], ...]
    names: tuple[frozenset[str], ...]
    prototype: TemporalPrototype
    stages: tuple[Stage, ...]

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return int(self.frames.shape[0])

    def cluster_of(self, name: str) -> tuple[str, int]:
        """The (unit, cluster id) behind a cluster name of this sequence, e.g. ``"AU12_B"``."""
        for frame_names, frame in zip(self.names, self.clusters, strict=True):
            if name in frame_names:
                unit = name.rsplit("_", 1)[0]
                return unit, frame[unit]
        raise KeyError(f"{name!r} does not occur in sequence {self.id!r}.")

    def frame_relevance(self, frame: int, unit: str) -> _Maps:
        """The relevance map of ``unit`` in frame ``frame`` (where the unit is active)."""
        if unit not in self.active[frame]:
            raise KeyError(f"{unit!r} is not active in frame {frame} of {self.id!r}.")
        position = sum(1 for t in range(frame) if unit in self.active[t])
        return np.asarray(self.relevance[unit][position], dtype=np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class PrototypeResult:
    """Everything the temporal-prototype pipeline produced for a set of sequences.

    Attributes
    ----------
    units : tuple of str
        Model output names.
    threshold : float
        Sigmoid threshold of an active unit.
    sequences : tuple of SequenceAnalysis
    spray : dict of str to SprayResult
        SpRAy of each unit that is active somewhere; its labels run over the unit's maps of all
        sequences, in sequence then frame order.
    mean_maps : dict of (str, int) to ndarray of float64, shape (H, W)
        The prototype of each (unit, cluster): the mean of its maps (TP §3.4, "the average heatmap
        from a cluster").
    table : PrototypeTable
        TP Table 1, one row per class and the pooled dataset.
    """

    units: tuple[str, ...]
    threshold: float
    sequences: tuple[SequenceAnalysis, ...]
    spray: dict[str, SprayResult]
    mean_maps: dict[tuple[str, int], NDArray[np.float64]]
    table: PrototypeTable

    def sequence(self, id: str) -> SequenceAnalysis:
        """The analysis of the sequence with this id."""
        for item in self.sequences:
            if item.id == id:
                return item
        raise KeyError(f"no sequence {id!r}; ids are {[s.id for s in self.sequences][:10]!r}….")


def _check_inputs(
    sequences: Sequence[FrameSequence],
    scores: Sequence[ArrayLike],
    units: tuple[str, ...],
) -> list[NDArray[np.float32]]:
    if not sequences:
        raise ValueError("sequences is empty; pass at least one sequence.")
    if len(scores) != len(sequences):
        raise ValueError(f"need one score matrix per sequence; got {len(scores)} for {len(sequences)}.")
    checked = []
    for item, matrix in zip(sequences, scores, strict=True):
        s = np.asarray(matrix, dtype=np.float32)
        if s.shape != (len(item.frames), len(units)):
            raise ValueError(
                f"scores of sequence {item.id!r} must have shape ({len(item.frames)}, {len(units)}); "
                f"got {s.shape!r}."
            )
        checked.append(s)
    return checked


def prototypes_from_relevance(
    sequences: Sequence[FrameSequence],
    scores: Sequence[ArrayLike],
    relevance: Sequence[Mapping[str, ArrayLike]],
    *,
    units: Sequence[str] = UNIT_NAMES,
    threshold: float = 0.5,
    rng: np.random.Generator,
    factor: int = DEFAULT_SPRAY_FACTOR,
    k: int | None = None,
    max_clusters: int = 10,
    spray_input: str = DEFAULT_SPRAY_INPUT,
) -> PrototypeResult:
    """SpRAy per unit over all sequences, then temporal prototypes and statistics (TP §3.3-3.4).

    Parameters
    ----------
    sequences : sequence of FrameSequence
        Ids, classes and frames.
    scores : sequence of array_like (T_i, U)
        Sigmoid outputs per sequence; a unit is active where its score exceeds ``threshold``.
    relevance : sequence of mapping of str to array_like (n_u, H, W)
        Per sequence, each active unit's maps in frame order (as :func:`unit_relevance` returns).
    units : sequence of str
    threshold : float, default 0.5
    rng : numpy.random.Generator
        For SpRAy's k-means.
    factor, k, max_clusters, spray_input :
        See :func:`cluster_units`.

    Returns
    -------
    PrototypeResult

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3-3.4, Table 1.
    """
    names = _check_units(units)
    checked = _check_inputs(sequences, scores, names)
    if len(relevance) != len(sequences):
        raise ValueError(f"need relevance for every sequence; got {len(relevance)} for {len(sequences)}.")
    active = [active_labels(s, names, threshold=threshold) for s in checked]
    per_sequence = [
        _check_relevance(item, maps, labels)
        for item, maps, labels in zip(sequences, relevance, active, strict=True)
    ]
    pooled = {
        unit: np.concatenate([maps[unit] for maps in per_sequence if unit in maps])
        for unit in names
        if any(unit in maps for maps in per_sequence)
    }
    counts = {unit: [len(maps.get(unit, ())) for maps in per_sequence] for unit in pooled}
    results = cluster_units(
        pooled,
        rng=rng,
        maps_per_sequence=counts,
        factor=factor,
        k=k,
        max_clusters=max_clusters,
        spray_input=spray_input,
    )
    return assemble(sequences, checked, per_sequence, results, units=names, threshold=threshold)


def _check_relevance(
    item: FrameSequence, maps: Mapping[str, ArrayLike], active: Sequence[frozenset[str]]
) -> dict[str, _Maps]:
    checked = {}
    shape = tuple(np.shape(item.frames)[1:3])
    for unit in {u for labels in active for u in labels}:
        count = sum(1 for labels in active if unit in labels)
        array = np.asarray(maps.get(unit, np.zeros((0, *shape))), dtype=np.float32)
        if array.shape != (count, *shape):
            raise ValueError(
                f"sequence {item.id!r}: {unit} is active in {count} frames, so it needs {count} maps of "
                f"{shape!r} px; got shape {array.shape!r}."
            )
        checked[unit] = array
    return checked


def assemble(
    sequences: Sequence[FrameSequence],
    scores: Sequence[NDArray[np.float32]],
    relevance: Sequence[Mapping[str, _Maps]],
    spray_results: Mapping[str, SprayResult],
    *,
    units: tuple[str, ...],
    threshold: float,
) -> PrototypeResult:
    """Clusters per frame, temporal prototypes, mean maps and Table 1 from finished SpRAy results (TP §3.4).

    ``spray_results[u].labels`` must run over unit u's maps of all sequences in sequence, then frame
    order. Used by :func:`prototypes_from_relevance` and :func:`load_result`.
    """
    analyses = []
    offsets = dict.fromkeys(spray_results, 0)
    for item, matrix, maps in zip(sequences, scores, relevance, strict=True):
        active = active_labels(matrix, units, threshold=threshold)
        own = {}
        for unit, array in maps.items():
            own[unit] = spray_results[unit].labels[offsets[unit] : offsets[unit] + len(array)]
            offsets[unit] += len(array)
        clusters = frame_clusters(active, own)
        named = name_clusters(clusters)
        analyses.append(
            SequenceAnalysis(
                id=item.id,
                class_name=item.class_name or NO_CLASS,
                frames=_read_only(np.asarray(item.frames, dtype=np.float32)),
                scores=_read_only(matrix),
                active=active,
                relevance={unit: _read_only(array) for unit, array in maps.items()},
                clusters=clusters,
                names=named,
                prototype=TemporalPrototype(stages=tuple(stage.names for stage in build_stages(named))),
                stages=build_stages(named),
            )
        )
    by_class: dict[str, list[tuple[dict[str, int], ...]]] = {}
    for analysis in analyses:
        by_class.setdefault(analysis.class_name, []).append(analysis.clusters)
    return PrototypeResult(
        units=units,
        threshold=float(threshold),
        sequences=tuple(analyses),
        spray=dict(spray_results),
        mean_maps=_mean_maps(analyses, spray_results),
        table=prototype_statistics(by_class),
    )


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    frozen = np.array(array, copy=True)
    frozen.setflags(write=False)
    return frozen


def _mean_maps(
    analyses: Sequence[SequenceAnalysis], spray_results: Mapping[str, SprayResult]
) -> dict[tuple[str, int], NDArray[np.float64]]:
    means = {}
    for unit, result in spray_results.items():
        maps = np.concatenate([a.relevance[unit] for a in analyses if unit in a.relevance]).astype(np.float64)
        for cluster in range(result.n_clusters):
            members = maps[result.labels == cluster]
            if len(members):
                means[(unit, cluster)] = _read_only(members.mean(axis=0))
    return means


def analyse_sequences(
    model: BoundModel,
    sequences: Sequence[FrameSequence],
    *,
    units: Sequence[str] | None = None,
    rng: np.random.Generator,
    threshold: float = 0.5,
    analyzer: str = DEFAULT_ANALYZER,
    explainer: RelevanceExplainer | None = None,
    factor: int = DEFAULT_SPRAY_FACTOR,
    k: int | None = None,
    max_clusters: int = 10,
    spray_input: str = DEFAULT_SPRAY_INPUT,
    on_progress: ProgressCallback | None = None,
) -> PrototypeResult:
    """The whole pipeline: predict, explain each active unit, SpRAy per unit, temporal prototypes (TP §3).

    Parameters
    ----------
    model : BoundModel
        A multi-label network with sigmoid outputs (:func:`build_unit_model`, :func:`load_unit_model`).
    sequences : sequence of FrameSequence
        Frames at the model's input size.
    units : sequence of str, optional
        Output names; default :data:`analysis.sequences.UNIT_NAMES` when the model has that many outputs.
    rng : numpy.random.Generator
        For SpRAy.
    threshold : float, default 0.5
        Sigmoid threshold of an active unit.
    analyzer : str, default "lrp.sequential_preset_a_flat"
        Relevance method (a key of :data:`analysis.saliency.ANALYZERS`).
    explainer : RelevanceExplainer, optional
        A prebuilt :func:`unit_explainer` for ``model`` (building one takes a moment).
    factor, k, max_clusters, spray_input :
        See :func:`cluster_units`.
    on_progress : callable, optional
        ``on_progress(fraction, text)`` after each sequence and step.

    Returns
    -------
    PrototypeResult

    References
    ----------
    .. [1] Finzel et al. (2021), §3.2-3.4, Figure 2, Table 1.
    """
    names = _check_units(units if units is not None else UNIT_NAMES[: model.n_classes])
    if len(names) != model.n_classes:
        raise ValueError(f"the model has {model.n_classes} outputs but {len(names)} unit names were given.")
    report = on_progress or (lambda fraction, text: None)
    explainer = explainer or unit_explainer(model, analyzer)
    scores, relevance = [], []
    for index, item in enumerate(sequences):
        matrix = predict_units(model, item.frames)
        active = active_labels(matrix, names, threshold=threshold)
        scores.append(matrix)
        relevance.append(unit_relevance(explainer, item.frames, active, units=names))
        report(0.9 * (index + 1) / max(len(sequences), 1), f"explained {item.id}")
    result = prototypes_from_relevance(
        sequences,
        scores,
        relevance,
        units=names,
        threshold=threshold,
        rng=rng,
        factor=factor,
        k=k,
        max_clusters=max_clusters,
        spray_input=spray_input,
    )
    report(1.0, "temporal prototypes done")
    return result


# --------------------------------------------------------------------------------------------------
# Strips (TP §3.5)
# --------------------------------------------------------------------------------------------------


def stage_panels(
    result: PrototypeResult, sequence: int | str, *, source: str = "cluster"
) -> list[StagePanel]:
    """The panels of a sequence's prototype strip: per stage its middle frame and its maps (TP §3.5).

    Parameters
    ----------
    result : PrototypeResult
    sequence : int or str
        Index into ``result.sequences`` or a sequence id.
    source : {"cluster", "stage"}
        ``"cluster"``: each active name shows its cluster's mean map, the prototype of TP §3.4.
        ``"stage"``: the mean of the stage's own frames' maps for that unit (aligned with this face).

    Returns
    -------
    list of StagePanel
        One per stage, keyed by cluster names (``AU12_A``).

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4 (prototype = average heatmap of a cluster), §3.5, Figure 4.
    """
    if source not in ("cluster", "stage"):
        raise ValueError(f"source must be 'cluster' or 'stage'; got {source!r}.")
    item = result.sequences[sequence] if isinstance(sequence, int) else result.sequence(sequence)
    panels = []
    for stage in item.stages:
        maps = {}
        for name in sorted(stage.names):
            unit, cluster = item.cluster_of(name)
            if source == "cluster":
                maps[name] = result.mean_maps[(unit, cluster)]
            else:
                frames = range(stage.start_frame, stage.stop_frame)
                maps[name] = np.mean([item.frame_relevance(t, unit) for t in frames], axis=0).astype(
                    np.float64
                )
        middle = (stage.start_frame + stage.stop_frame - 1) // 2
        panels.append(StagePanel(frame=item.frames[middle], relevance_by_name=maps))
    return panels


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------

_RESULT_VERSION = 1


@dataclass(frozen=True, slots=True)
class _StoredSequence:
    id: str
    class_name: str
    frames: NDArray[np.float32]


def save_result(path: str | Path, result: PrototypeResult) -> Path:
    """Write a :class:`PrototypeResult` to one ``.npz`` file (frames, scores, maps, SpRAy results).

    The temporal prototypes, mean maps and Table 1 are recomputed from these on :func:`load_result`.
    """
    target = Path(path)
    if target.suffix != ".npz":
        raise ValueError(f"result files end in '.npz'; got {str(target)!r}.")
    arrays: dict[str, NDArray[Any]] = {}
    for index, item in enumerate(result.sequences):
        arrays[f"frames_{index}"] = item.frames
        arrays[f"scores_{index}"] = item.scores
        for unit, maps in item.relevance.items():
            arrays[f"relevance_{index}_{unit}"] = maps
    spray_meta = {}
    for unit, outcome in result.spray.items():
        arrays[f"spray_labels_{unit}"] = outcome.labels
        arrays[f"spray_eigenvalues_{unit}"] = outcome.eigenvalues
        arrays[f"spray_embedding_{unit}"] = outcome.embedding
        spray_meta[unit] = {
            "n_clusters": outcome.n_clusters,
            "n_distinct": outcome.n_distinct,
            "params": dataclasses.asdict(outcome.params),
        }
    meta = {
        "version": _RESULT_VERSION,
        "units": list(result.units),
        "threshold": result.threshold,
        "sequences": [
            {"id": s.id, "class_name": s.class_name, "units": sorted(s.relevance)} for s in result.sequences
        ],
        "spray": spray_meta,
    }
    arrays["meta"] = np.asarray(json.dumps(meta))
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **arrays)
    return target


def load_result(path: str | Path) -> PrototypeResult:
    """Read a result written by :func:`save_result`.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the file is not a result file of this version.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no result file at {str(source)!r}. Write one with 'rbdm prototypes'.")
    with np.load(source, allow_pickle=False) as data:
        if "meta" not in data:
            raise ValueError(f"{str(source)!r} is not a temporal-prototype result (no 'meta' entry).")
        meta = json.loads(str(data["meta"]))
        if meta.get("version") != _RESULT_VERSION:
            raise ValueError(
                f"{str(source)!r} has result version {meta.get('version')!r}; expected {_RESULT_VERSION}."
            )
        sequences, scores, relevance = [], [], []
        for index, entry in enumerate(meta["sequences"]):
            sequences.append(_StoredSequence(entry["id"], entry["class_name"], data[f"frames_{index}"]))
            scores.append(np.asarray(data[f"scores_{index}"], dtype=np.float32))
            relevance.append({unit: data[f"relevance_{index}_{unit}"] for unit in entry["units"]})
        spray_results = {unit: _stored_spray(data, unit, info) for unit, info in meta["spray"].items()}
    return assemble(
        sequences,
        scores,
        relevance,
        spray_results,
        units=tuple(meta["units"]),
        threshold=float(meta["threshold"]),
    )


def _stored_spray(data: Any, unit: str, info: Mapping[str, Any]) -> SprayResult:
    params = dict(info["params"])
    params["size"] = tuple(params["size"]) if params["size"] is not None else None
    return SprayResult(
        labels=np.asarray(data[f"spray_labels_{unit}"], dtype=np.int64),
        n_clusters=int(info["n_clusters"]),
        eigenvalues=np.asarray(data[f"spray_eigenvalues_{unit}"], dtype=np.float64),
        embedding=np.asarray(data[f"spray_embedding_{unit}"], dtype=np.float64),
        params=SprayParams(**params),
        n_distinct=int(info["n_distinct"]),
    )
