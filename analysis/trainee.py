"""Training the Trainee on masked images, optionally switching to the unmasked ones (RBDM §5.5).

The Trainee is a new model of any architecture (the paper: MobileNetV2) trained from scratch on the
masked training images I * M (:mod:`analysis.masking`). In the "+switch" variants it trains on the masked
images for the first ``switch_epoch`` epochs and on the original images afterwards, "to make sure that the
specifics of the new corpus are taken into account". Validation always uses the unmasked images: the
Trainee must find the relevant areas by itself (RBDM §3).

Learning curves are the result (RBDM §6, Figures 10–12): every ``eval_every_steps`` training steps the
Trainee is scored on the validation split (loss, accuracy, macro-F1) and the mean training loss since the
previous point is recorded. :class:`CurveLog` writes the points to CSV and TensorBoard as they come.

Training reuses the Trainer's machinery (:mod:`analysis.training`): its own graph and session, the legacy
Adam optimizer, class-weighted cross-entropy, :func:`~analysis.training.train_steps` for the batches and
:func:`~analysis.training.determinism` for reproducible curves (RBDM §5.6).

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §3, §5.5 and §6.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.labels import LABELS
from analysis.models import (
    BoundModel,
    as_model_input,
    build_model,
    check_images,
    ensure_graph_mode,
    new_session,
)
from analysis.training import (
    NO_AUGMENTATION,
    Augmentation,
    class_weights,
    compile_model,
    determinism,
    train_steps,
    validation_scores,
)

__all__ = [
    "CURVE_FIELDS",
    "DEFAULT_BATCH_NORM_MOMENTUM",
    "DEFAULT_TRAINEE",
    "DEFAULT_TRAINEE_OPTIONS",
    "PHASES",
    "TRAINING_FIELDS",
    "CurveLog",
    "CurvePoint",
    "TraineeResult",
    "TrainingOptions",
    "train_trainee",
]

#: The paper's Trainee architecture (RBDM §5.5); width 0.35 keeps it small enough for a CPU.
DEFAULT_TRAINEE: Final = "MobileNetV2"
#: Builder options of :data:`DEFAULT_TRAINEE` (about 0.42 M parameters at 48 × 48 × 1).
DEFAULT_TRAINEE_OPTIONS: Final[Mapping[str, Any]] = {"alpha": 0.35}
#: Batch-normalisation momentum of Trainees. ``keras.applications`` builds MobileNetV2 with 0.999, made
#: for ImageNet-length training: its moving averages follow the weights with a lag of about 1,000 steps, so
#: in runs of a few thousand steps the validation (which uses the moving averages) sees stale statistics
#: and predicts one class for the first epochs. With 0.9 they follow within about 10 steps, and the
#: learning curves show the weights' progress. Keras' own default is 0.99.
DEFAULT_BATCH_NORM_MOMENTUM: Final = 0.9
#: Which images a training step used: the masked ones, or the originals (before any mask or after a switch).
PHASES: Final = ("masked", "unmasked")

#: An (images, labels) pair.
Split = tuple[ArrayLike, ArrayLike]


@dataclass(frozen=True, slots=True)
class TrainingOptions:
    """How a Trainee is trained (RBDM §5.5): the one home of these settings and their defaults.

    :func:`train_trainee` takes one; :class:`analysis.experiment.ExperimentConfig` holds the one every
    Trainee of a run shares; ``rbdm train-trainee`` and ``rbdm experiment`` read their option defaults
    from it and the Experiments form maps its fields to and from it. Which Trainee (its ``seed``) and what
    it sees (masked images, the switch) are the caller's.

    Parameters
    ----------
    architecture : str
        See :func:`analysis.models.build_model` (the paper's Trainee: :data:`DEFAULT_TRAINEE`).
    options : mapping or None
        Builder options; None: the architecture's defaults (:data:`DEFAULT_TRAINEE_OPTIONS` for the default
        Trainee, none for any other), resolved at construction, so that ``options`` is then a dict.
    epochs : int
        Passes over the training images, ≥ 1.
    switch_epoch : int or None
        Last epoch on the masked images before the switch to the originals, ≥ 1 (the paper switched after
        nine); None: no switch. ``switch_epoch < epochs`` is checked where a switch happens
        (:meth:`check_switch`), so one set of options serves Trainees with and without the switch.
    batch_size : int
        Images per step, ≥ 1 (paper: 32).
    learning_rate : float
        Adam's learning rate, finite and > 0 (paper: 0.001).
    eval_every_steps : int
        Steps between curve points (K), ≥ 1.
    batch_norm_momentum : float or None
        Momentum of the architecture's batch-normalisation layers in [0, 1)
        (:data:`DEFAULT_BATCH_NORM_MOMENTUM`); None keeps the architecture's own.
    deterministic : bool
        Train inside :func:`analysis.training.determinism` (RBDM §5.6): the same seed gives the same
        curves.

    Raises
    ------
    ValueError
        For a value outside the ranges above.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5 (Trainee, Adam 0.001, batches of 32,
       the switch) and §5.6 (determinism).
    """

    architecture: str = DEFAULT_TRAINEE
    options: Mapping[str, Any] | None = None
    epochs: int = 6
    switch_epoch: int | None = None
    batch_size: int = 32
    learning_rate: float = 1e-3
    eval_every_steps: int = 25
    batch_norm_momentum: float | None = DEFAULT_BATCH_NORM_MOMENTUM
    deterministic: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.architecture, str) or not self.architecture:
            raise ValueError(f"architecture must name a model builder; got {self.architecture!r}.")
        if self.options is None:
            options = DEFAULT_TRAINEE_OPTIONS if self.architecture == DEFAULT_TRAINEE else {}
        elif isinstance(self.options, Mapping):
            options = self.options
        else:
            raise ValueError(f"options must be a mapping of builder options or None; got {self.options!r}.")
        object.__setattr__(self, "options", dict(options))
        _check_options(epochs=self.epochs, batch_size=self.batch_size, eval_every_steps=self.eval_every_steps)
        switch = self.switch_epoch
        if switch is not None and (isinstance(switch, bool) or not isinstance(switch, int) or switch < 1):
            raise ValueError(f"switch_epoch must be an integer ≥ 1; got {switch!r}.")
        if not (np.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a finite number > 0; got {self.learning_rate!r}.")
        momentum = self.batch_norm_momentum
        if momentum is not None and not 0 <= momentum < 1:
            raise ValueError(f"batch_norm_momentum must lie in [0, 1) or be None; got {momentum!r}.")

    def check_switch(self) -> None:
        """Raise unless a switch can happen: ``1 ≤ switch_epoch < epochs`` (the ``+switch`` Trainees)."""
        if self.switch_epoch is None or not self.switch_epoch < self.epochs:
            raise ValueError(
                f"switch_epoch must satisfy 1 ≤ switch_epoch < epochs ({self.epochs}); got "
                f"{self.switch_epoch!r}. Raise epochs or lower switch_epoch."
            )

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-compatible values, one key per field (read by :meth:`from_dict`)."""
        raw = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        raw["options"] = dict(self.options or {})
        parsed: dict[str, Any] = json.loads(json.dumps(raw))
        return parsed

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrainingOptions:
        """Parse :meth:`to_dict`'s output; keys missing take their default, unknown keys are refused."""
        unknown = sorted(set(raw) - set(TRAINING_FIELDS))
        if unknown:
            raise ValueError(f"unknown training options {unknown!r}; known are {list(TRAINING_FIELDS)!r}.")
        return cls(**raw)


#: The field names of :class:`TrainingOptions`, in order.
TRAINING_FIELDS: Final = tuple(f.name for f in dataclasses.fields(TrainingOptions))


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One point of the learning curves (RBDM §6, Figures 10–12).

    Parameters
    ----------
    step : int
        Training steps (batches) done so far.
    epoch : int
        1-based epoch the step belongs to.
    phase : str
        ``"masked"`` or ``"unmasked"``: the images of that epoch.
    images_seen : int
        Training images used so far.
    train_loss : float
        Mean class-weighted training loss of the steps since the previous point.
    val_loss, val_accuracy, val_macro_f1 : float
        Scores on the unmasked validation split (:func:`analysis.training.validation_scores`).
    """

    step: int
    epoch: int
    phase: str
    images_seen: int
    train_loss: float
    val_loss: float
    val_accuracy: float
    val_macro_f1: float

    def as_row(self) -> dict[str, Any]:
        """The point as a flat dict in :data:`CURVE_FIELDS` order."""
        return dataclasses.asdict(self)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> CurvePoint:
        """Parse a row written by :meth:`as_row` (values may be strings, as read from CSV)."""
        return cls(
            step=int(row["step"]),
            epoch=int(row["epoch"]),
            phase=str(row["phase"]),
            images_seen=int(row["images_seen"]),
            train_loss=float(row["train_loss"]),
            val_loss=float(row["val_loss"]),
            val_accuracy=float(row["val_accuracy"]),
            val_macro_f1=float(row["val_macro_f1"]),
        )


#: Column names of a learning-curve CSV file.
CURVE_FIELDS: Final = tuple(f.name for f in dataclasses.fields(CurvePoint))


@dataclass(frozen=True, slots=True)
class TraineeResult:
    """A trained Trainee, its learning curves and its confusion matrix.

    Parameters
    ----------
    model : BoundModel
        The Trainee with its weights after the last step (not the best point: the curves are the
        result, and the final model is what the curves end in).
    curves : tuple of CurvePoint
        One point every ``eval_every_steps`` steps and one after the last step.
    confusion : ndarray of int64, shape (n_classes, n_classes)
        Rows true class, columns predicted class, on the validation split after the last step
        (RBDM Figures 11 and 12).
    settings : mapping
        The training arguments, JSON-compatible.
    cancelled : bool
        True when ``cancel()`` stopped the training early; the curves end where it stopped.
    duration_s : float
        Wall time of building and training.
    best_weights : tuple of ndarray
        The weights at :attr:`best` (the model's ``get_weights()`` order), so that a score on data that
        played no part in choosing that step (a test split) can be taken afterwards.
    initial_weights_sha256 : str
        SHA-256 of the initial weights: equal for every Trainee of one seed and architecture, which is what
        makes the comparison of variants paired.
    """

    model: BoundModel
    curves: tuple[CurvePoint, ...]
    confusion: NDArray[np.int64]
    settings: Mapping[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    duration_s: float = 0.0
    best_weights: tuple[NDArray[Any], ...] = ()
    initial_weights_sha256: str = ""

    @property
    def final(self) -> CurvePoint:
        """The last curve point."""
        return self.curves[-1]

    @property
    def best(self) -> CurvePoint:
        """The point with the highest validation macro-F1 (the earliest among ties)."""
        return max(self.curves, key=lambda p: (p.val_macro_f1, -p.step))


@dataclass(frozen=True, slots=True)
class _Phase:
    """The data of one phase: images, labels and per-class loss weights."""

    name: str
    x: NDArray[np.float32]
    y: NDArray[np.int64]
    weights: NDArray[np.float32]


def train_trainee(
    masked: Split | None,
    unmasked: Split | None,
    validation: Split,
    *,
    training: TrainingOptions | None = None,
    seed: int = 0,
    n_classes: int = len(LABELS),
    augmentation: Augmentation = NO_AUGMENTATION,
    on_curve: Callable[[CurvePoint], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> TraineeResult:
    """Train a Trainee from scratch on masked images, optionally switching to the originals (RBDM §5.5).

    Which images train epoch ``e`` (1-based):

    - ``masked`` only (``training.switch_epoch`` None): the masked images in every epoch;
    - ``masked`` and ``unmasked`` with ``training.switch_epoch=k``: masked for ``e ≤ k``, unmasked after;
    - ``unmasked`` only: the original images throughout (the paper's "no mask" baseline).

    Parameters
    ----------
    masked : (images, labels) or None
        Masked training images I * M, shape (N, H, W) or (N, H, W, 3) in [0, 1], and class indices (N,).
    unmasked : (images, labels) or None
        The original training images (may differ from ``masked`` in number, e.g. when gaze masks exist for
        only some images).
    validation : (images, labels)
        Unmasked validation images and labels; never masked (RBDM §3).
    training : TrainingOptions, optional
        Architecture, epochs, switch epoch, batch size, learning rate, K, batch-normalisation momentum and
        determinism (:class:`TrainingOptions`' defaults when omitted). Its ``switch_epoch`` must satisfy
        ``switch_epoch < epochs`` and is given exactly when both ``masked`` and ``unmasked`` are.
    n_classes : int
        Number of model outputs.
    augmentation : Augmentation
        Applied to training batches; none by default (the paper names augmentation for the Trainer only,
        and augmenting masked images would move the masks off the faces' features).
    seed : int
        Seeds weight initialisation (always: one seed, one set of initial weights, whatever the images),
        batch order (a permutation of the image count) and augmentation; with ``training.deterministic``
        the same seed gives the same curves.
    on_curve : callable, optional
        Called with each :class:`CurvePoint` as soon as it is scored (e.g. :meth:`CurveLog.add`).
    cancel : callable, optional
        Polled after every step; when it returns True training stops, the last point is scored and the
        result is marked ``cancelled``.

    Returns
    -------
    TraineeResult

    Raises
    ------
    ValueError
        For inconsistent data or options (see above), or images of different sizes.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §3 (validate on unmasked images), §5.5
       (Trainee, switch to the unmasked images), §5.6 (determinism), §6 (learning curves, confusion
       matrices).
    """
    training = TrainingOptions() if training is None else training
    switch_epoch, epochs = training.switch_epoch, training.epochs
    phases, x_va, y_va = _check_data(masked, unmasked, validation, switch_epoch, epochs, n_classes)
    first = phases[0].x
    input_shape = (first.shape[1], first.shape[2], 1 if first.ndim == 3 else first.shape[3])
    settings = _settings(training, seed, augmentation, phases, input_shape, len(y_va))
    deterministic, momentum = training.deterministic, training.batch_norm_momentum
    start = time.perf_counter()
    graph, session = new_session()
    with graph.as_default(), session.as_default():
        with determinism(seed) if deterministic else contextlib.nullcontext():
            # seeded even without deterministic kernels: one seed, one set of initial weights
            with contextlib.nullcontext() if deterministic else determinism(seed):
                keras_model = build_model(
                    training.architecture,
                    input_shape=input_shape,
                    n_classes=n_classes,
                    options=training.options,
                )
                if momentum is not None:
                    keras_model = _with_batch_norm_momentum(keras_model, momentum)
            bound = BoundModel(model=keras_model, graph=graph, session=session)
            initial = _weights_sha256(keras_model.get_weights())
            recorder = _Recorder(bound, x_va, y_va, every=settings["eval_every_steps"], on_curve=on_curve)
            cancelled = _fit(bound, phases, recorder, settings, augmentation, cancel)
            confusion = _confusion(bound, x_va, y_va, n_classes)
    return TraineeResult(
        model=bound,
        curves=tuple(recorder.points),
        confusion=confusion,
        settings=settings,
        cancelled=cancelled,
        duration_s=time.perf_counter() - start,
        best_weights=recorder.best_weights,
        initial_weights_sha256=initial,
    )


def _weights_sha256(weights: list[Any]) -> str:
    digest = hashlib.sha256()
    for array in weights:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _with_batch_norm_momentum(model: Any, momentum: float) -> Any:
    """The same architecture rebuilt with ``momentum`` in its batch-normalisation layers (or ``model``).

    Rebuilt from the model's config in the current graph, before any training, so that only the moving
    averages' momentum differs.
    """
    config = model.get_config()
    layers = [layer for layer in config.get("layers", []) if layer.get("class_name") == "BatchNormalization"]
    if not layers:
        return model
    for layer in layers:
        layer["config"]["momentum"] = float(momentum)
    tf = ensure_graph_mode()
    return tf.keras.Model.from_config(config)


def _check_data(
    masked: Split | None,
    unmasked: Split | None,
    validation: Split,
    switch_epoch: int | None,
    epochs: int,
    n_classes: int,
) -> tuple[list[_Phase], NDArray[np.float32], NDArray[np.int64]]:
    """The phases in training order, and the validation split; raises for inconsistent arguments."""
    if masked is None and unmasked is None:
        raise ValueError("pass masked or unmasked training images (or both with switch_epoch); got neither.")
    if switch_epoch is not None:
        if masked is None or unmasked is None:
            raise ValueError(
                "switch_epoch needs both the masked and the unmasked training images; pass both, or leave "
                "switch_epoch out."
            )
        if isinstance(switch_epoch, bool) or not isinstance(switch_epoch, int) or not 1 <= switch_epoch:
            raise ValueError(f"switch_epoch must be an integer ≥ 1; got {switch_epoch!r}.")
        if switch_epoch >= epochs:
            raise ValueError(
                f"switch_epoch must be below epochs ({epochs}) so that some epochs use the unmasked images; "
                f"got {switch_epoch!r}. Raise epochs or leave switch_epoch out."
            )
    elif masked is not None and unmasked is not None:
        raise ValueError("got masked and unmasked training images but no switch_epoch; pass switch_epoch.")
    phases = []
    for name, split in (("masked", masked), ("unmasked", unmasked)):
        if split is not None:
            x, y = _check_split(split, name=name, n_classes=n_classes)
            weights = class_weights(y, n_classes=n_classes).astype(np.float32)
            phases.append(_Phase(name, x, y, weights))
    x_va, y_va = _check_split(validation, name="validation", n_classes=n_classes)
    for phase in phases:
        if phase.x.shape[1:] != x_va.shape[1:]:
            raise ValueError(
                f"{phase.name} training images have shape {phase.x.shape[1:]}, validation images "
                f"{x_va.shape[1:]}. Load every split at one size."
            )
    return phases, x_va, y_va


def _check_split(split: Split, *, name: str, n_classes: int) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    try:
        images, labels = split
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be an (images, labels) pair; got {type(split).__name__}.") from err
    x = check_images(**{f"{name}_images": images})
    class_weights(labels, n_classes=n_classes)  # validates the labels
    y = np.asarray(labels).astype(np.int64)
    if len(y) != len(x):
        raise ValueError(f"{name}: need one label per image; got {len(x)} images and {len(y)} labels.")
    return x, y


def _check_options(**values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer ≥ 1; got {value!r}.")


def _settings(
    training: TrainingOptions,
    seed: int,
    augmentation: Augmentation,
    phases: list[_Phase],
    input_shape: tuple[int, int, int],
    n_val: int,
) -> dict[str, Any]:
    """The training arguments as JSON-compatible values (for cards, run files and tests)."""
    settings = training.to_dict()
    settings.update(
        seed=seed,
        input_shape=list(input_shape),
        augmentation=dataclasses.asdict(augmentation),
        optimizer="Adam",
        loss="class-weighted categorical cross-entropy",
        phases={p.name: {"n_train": len(p.y), "class_weights": p.weights.tolist()} for p in phases},
        n_val=n_val,
    )
    parsed: dict[str, Any] = json.loads(json.dumps(settings))
    return parsed


def _phase_of(epoch: int, phases: list[_Phase], switch_epoch: int | None) -> _Phase:
    if switch_epoch is None or epoch <= switch_epoch:
        return phases[0]
    return phases[1]


def _fit(
    bound: BoundModel,
    phases: list[_Phase],
    recorder: _Recorder,
    settings: Mapping[str, Any],
    augmentation: Augmentation,
    cancel: Callable[[], bool] | None,
) -> bool:
    """The step loop, inside the model's graph and session; the curve goes to ``recorder``. Returns whether
    it was cancelled."""
    compile_model(bound.model, learning_rate=settings["learning_rate"])
    rng = np.random.default_rng(settings["seed"])
    batch_size = settings["batch_size"]
    epoch, phase = 1, phases[0]
    for epoch in range(1, settings["epochs"] + 1):
        phase = _phase_of(epoch, phases, settings["switch_epoch"])
        steps = train_steps(
            bound.model,
            phase.x,
            phase.y,
            phase.weights,
            batch_size=batch_size,
            augmentation=augmentation,
            rng=rng,
        )
        for index, loss in enumerate(steps):
            recorder.add(loss, min(batch_size, len(phase.y) - index * batch_size), epoch, phase.name)
            if cancel is not None and cancel():
                recorder.finish(epoch, phase.name)
                return True
    recorder.finish(epoch, phase.name)
    return False


class _Recorder:
    """Collects batch losses and scores a curve point every ``every`` steps and once after the last step;
    keeps the weights of the best point (highest validation macro-F1, the earliest among ties)."""

    def __init__(
        self,
        bound: BoundModel,
        x_va: NDArray[np.float32],
        y_va: NDArray[np.int64],
        *,
        every: int,
        on_curve: Callable[[CurvePoint], None] | None,
    ) -> None:
        self._bound, self._x_va, self._y_va = bound, x_va, y_va
        self._every, self._on_curve = every, on_curve
        self._losses: list[float] = []
        self.points: list[CurvePoint] = []
        self.best_weights: tuple[NDArray[Any], ...] = ()
        self.step = self.images_seen = 0

    def add(self, loss: float, n_images: int, epoch: int, phase: str) -> None:
        """Count one training step."""
        self.step += 1
        self.images_seen += n_images
        self._losses.append(loss)
        if self.step % self._every == 0:
            self._score(epoch, phase)

    def finish(self, epoch: int, phase: str) -> None:
        """Score the steps since the last point, if any."""
        if self._losses:
            self._score(epoch, phase)

    def _score(self, epoch: int, phase: str) -> None:
        val_loss, val_accuracy, val_f1 = validation_scores(_predict(self._bound, self._x_va), self._y_va)
        point = CurvePoint(
            step=self.step,
            epoch=epoch,
            phase=phase,
            images_seen=self.images_seen,
            train_loss=float(np.mean(self._losses)),
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            val_macro_f1=val_f1,
        )
        self._losses = []
        if not self.points or val_f1 > max(p.val_macro_f1 for p in self.points):
            self.best_weights = tuple(np.array(w, copy=True) for w in self._bound.model.get_weights())
        self.points.append(point)
        if self._on_curve is not None:
            self._on_curve(point)


def _predict(bound: BoundModel, x: NDArray[np.float32]) -> NDArray[np.float32]:
    """Class probabilities (inside the model's scope already)."""
    inputs = as_model_input(x, input_shape=bound.input_shape)
    return np.asarray(bound.model.predict(inputs, batch_size=256, verbose=0), dtype=np.float32)


def _confusion(
    bound: BoundModel, x_va: NDArray[np.float32], y_va: NDArray[np.int64], n_classes: int
) -> NDArray[np.int64]:
    predicted = _predict(bound, x_va).argmax(axis=1)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y_va, predicted), 1)
    return confusion


# --------------------------------------------------------------------------------------------------------
# Writing curves: CSV and TensorBoard
# --------------------------------------------------------------------------------------------------------

#: TensorBoard tag of each scalar written per curve point.
_TENSORBOARD_TAGS: Final = {
    "train_loss": "loss/train",
    "val_loss": "loss/validation",
    "val_accuracy": "accuracy/validation",
    "val_macro_f1": "macro_f1/validation",
}


class CurveLog:
    """Writes learning-curve points to ``<directory>/curves.csv`` and TensorBoard as they arrive.

    Pass :meth:`add` as ``on_curve`` to :func:`train_trainee`. The CSV file gets a header and one flushed
    row per point, so a crashed or cancelled run keeps every point scored so far. TensorBoard event files
    go to ``<directory>/tensorboard`` (``tensorboard --logdir <directory>``), written with TensorFlow's
    graph-mode ``FileWriter``; scalars ``loss/train``, ``loss/validation``, ``accuracy/validation``,
    ``macro_f1/validation`` and ``phase/masked`` (1 on masked images) against the training step.

    Parameters
    ----------
    directory : str or Path
        Created if missing; an existing ``curves.csv`` is replaced.
    tensorboard : bool
        Also write TensorBoard event files.
    """

    def __init__(self, directory: str | Path, *, tensorboard: bool = True) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.directory / "curves.csv"
        self._handle = self.csv_path.open("w", newline="", encoding="utf-8")
        self._csv = csv.DictWriter(self._handle, fieldnames=CURVE_FIELDS)
        self._csv.writeheader()
        self._handle.flush()
        self._summary: Any = None
        self._writer: Any = None
        if tensorboard:
            tf = ensure_graph_mode()
            self._summary = tf.compat.v1.Summary
            self._writer = tf.compat.v1.summary.FileWriter(str(self.directory / "tensorboard"))

    def add(self, point: CurvePoint) -> None:
        """Append one point to the CSV file and the TensorBoard log."""
        self._csv.writerow(point.as_row())
        self._handle.flush()
        if self._writer is not None:
            values = [
                self._summary.Value(tag=tag, simple_value=float(getattr(point, name)))
                for name, tag in _TENSORBOARD_TAGS.items()
            ]
            values.append(
                self._summary.Value(tag="phase/masked", simple_value=float(point.phase == "masked"))
            )
            self._writer.add_summary(self._summary(value=values), global_step=point.step)
            self._writer.flush()

    def close(self) -> None:
        """Close the CSV file and the TensorBoard writer."""
        self._handle.close()
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> CurveLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
