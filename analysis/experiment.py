"""The paper's experiment: Trainee variants compared by how fast they learn (RBDM §5.5, §6).

A Trainer's relevance maps (§5.2) of the training images are computed once (and cached on disk); each
masking method of §5.4 turns them into masked training images; human gaze from a recorded study, the
fusion of gaze and relevance and (synthetic faces) the ground-truth regions are further mask sources
(:data:`MASK_SOURCES`). Then a Trainee is trained per cell — variant × seed × training-set size — and
scored on the unmasked validation images every K steps:

- ``none``: the original images (the paper's "no mask" baseline);
- ``negative``, ``mean``, ``perceptive`` (and ``gaze``, ``fusion``, ``regions``): the masked images
  throughout;
- ``<source>+switch``: masked for ``switch_epoch`` epochs, then the original images (the paper switched
  after nine epochs).

Training-set sizes are class-balanced and nested (:func:`nested_subset`); a seed gives every variant the
same initial weights and batch order, so each variant is compared with ``none`` in pairs. Each Trainee's
best step is chosen on the validation images and scored on test images that choose nothing (a test split,
or a stratified share of the validation draw held apart). A cell (:class:`Cell`, :func:`run_cell`) is an
independent unit of work with the shared :class:`GridData`.

Every run lives in its own folder, so that runs can be listed, reopened and compared later::

    <run>/run.json                   config, status (running, finished, cancelled, failed), times, test images
    <run>/results.csv                one row per cell: best, final and test macro-F1, size, weights digest ...
    <run>/curves.csv                 every curve point of every cell
    <run>/report.md                  per size: measures with CIs, paired differences to none, verdicts
    <run>/by_variant.csv             the same numbers as a table (analysis.experiment_report)
    <run>/curves_n<size>.png         mean validation macro-F1 with 95 % bands per size
    <run>/learning_curves.png        mean curves of the largest size, three panels (RBDM Figure 10)
    <run>/trainees[/n<size>]/<variant>-seed<s>/curves.csv, confusion.csv, tensorboard/[, best.keras,
                                     final.keras]

:func:`run_experiment` reports through plain callables (``on_progress`` with :class:`ExperimentProgress`
records, ``cancel`` polled between steps), so a GUI can run it in a worker thread; a cancelled run keeps its
partial curves and is marked ``cancelled``.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5 (the seven Trainees), §5.6
   (reproducible curves) and §6 (Figures 10–12).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.datasets import SplitArrays, load_arrays, open_dataset, subset_positions
from analysis.errors import AnalysisError
from analysis.evaluation import evaluate_model
from analysis.files import atomic_write, atomic_write_text
from analysis.geometry import VISUAL_SPAN_DEG
from analysis.labels import LABELS
from analysis.learning_speed import DEFAULT_THRESHOLD_SHARE
from analysis.masked_dataset import (
    DEFAULT_N_POINTS,
    ImageFixations,
    fusion_masks,
    gaze_heatmaps,
    gaze_masks,
    perceptive_options,
    relevance_masks,
)
from analysis.masking import apply_mask
from analysis.saliency import DEFAULT_ANALYZER, compute_relevance_maps
from analysis.trainee import (
    CURVE_FIELDS,
    TRAINING_FIELDS,
    CurveLog,
    CurvePoint,
    TraineeResult,
    TrainingOptions,
    train_trainee,
)

__all__ = [
    "ALL_VARIANTS",
    "DEFAULT_SEEDS",
    "DEFAULT_TEST_FRACTION",
    "DEFAULT_TRAINING",
    "MASK_SOURCES",
    "MASK_SOURCE_COLOURS",
    "RESULT_FIELDS",
    "RUN_STATUSES",
    "VARIANTS",
    "Cell",
    "Curves",
    "ExperimentConfig",
    "ExperimentProgress",
    "ExperimentRun",
    "GridData",
    "GridTracker",
    "MaskedImages",
    "SeedCurves",
    "VariantResult",
    "curves_at",
    "finish_run",
    "grid_cells",
    "grid_status",
    "list_runs",
    "load_grid_data",
    "load_run",
    "load_splits",
    "masked_images",
    "mean_curves",
    "nested_subset",
    "new_run_dir",
    "plot_learning_curves",
    "prepare_grid_data",
    "read_confusion",
    "record_interruption",
    "run_cell",
    "run_experiment",
    "run_title",
    "stratified_holdout",
    "summary_by_variant",
    "train_into_run",
    "trainee_dir",
    "utc_now",
    "variant_parts",
    "write_confusion",
    "write_run_json",
    "write_tables",
]

#: The seven Trainees of RBDM §5.5 and §6.
VARIANTS: Final = (
    "none",
    "negative",
    "mean",
    "perceptive",
    "negative+switch",
    "mean+switch",
    "perceptive+switch",
)
#: Where a variant's masks come from: the Trainer's relevance with each masking method of RBDM §5.4,
#: human gaze from a recorded study (the perceptive mask with actual fixations, §6), the fusion of gaze and
#: relevance (their normalised mean, mean-masked; §7's future work), and the ground-truth expression
#: regions of synthetic faces (a known answer for tests).
MASK_SOURCES: Final = ("negative", "mean", "perceptive", "gaze", "fusion", "regions")
#: Every variant name: the baseline, each mask source masked throughout and with the switch.
ALL_VARIANTS: Final = ("none", *MASK_SOURCES, *(f"{m}+switch" for m in MASK_SOURCES))
#: Seeds of a study (``rbdm experiment``'s default): five Trainees per variant and size, paired across
#: variants; with fewer the t intervals are wide and the tests weak.
DEFAULT_SEEDS: Final = (0, 1, 2, 3, 4)
#: Share of the validation split held apart, stratified by class, as the test split when none is named.
DEFAULT_TEST_FRACTION: Final = 0.2
#: How a run's Trainees train unless told otherwise: :class:`~analysis.trainee.TrainingOptions`' defaults
#: (MobileNetV2 of width 0.35, 6 epochs, batches of 32, Adam 0.001, a point every 25 steps), with the
#: ``+switch`` variants switching to the original images after epoch 3 (``rbdm experiment``'s defaults).
DEFAULT_TRAINING: Final = TrainingOptions(switch_epoch=3)
#: What ``run.json`` can say about a run.
RUN_STATUSES: Final = ("running", "finished", "cancelled", "failed")

_SWITCH_SUFFIX = "+switch"


def variant_parts(variant: str) -> tuple[str | None, bool]:
    """``(mask source or None, switches to unmasked images)`` of a variant name (:data:`ALL_VARIANTS`).

    >>> variant_parts("mean+switch")
    ('mean', True)
    """
    if variant not in ALL_VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(ALL_VARIANTS)}.")
    switch = variant.endswith(_SWITCH_SUFFIX)
    method = variant.removesuffix(_SWITCH_SUFFIX)
    return (None if method == "none" else method), switch


@dataclass(frozen=True, slots=True)
class ExperimentConfig:
    """Everything that defines an experiment run (stored in its ``run.json``).

    Parameters
    ----------
    dataset : str
        Dataset spec or path for :func:`analysis.datasets.open_dataset`.
    trainer : str
        The Trainer's ``.keras`` file (RBDM §5.1), whose relevance maps make the masks.
    size_px : int
        Images are loaded at ``size_px × size_px`` (the Trainer's input size).
    rgb : bool
        Load RGB instead of grey images.
    train_split, val_split : str
        Splits to train on and to validate on (unmasked).
    n_train, n_val : int or None
        At most this many images per split, drawn class by class (balanced where the classes allow, see
        :func:`analysis.datasets.subset_positions`); None for the whole split. ``train_sizes`` replaces
        ``n_train`` when given.
    subset_seed : int
        Seed of that draw.
    train_sizes : tuple of int or None
        Training-set sizes to run the grid at (None: the whole split), class-balanced and nested: for one
        subset seed each size's images are part of every larger size's (:func:`nested_subset`). Empty:
        the one size ``n_train``.
    test_split : str or None
        Split scored at each Trainee's best validation step, never used to choose it (at most ``n_val``
        images, drawn like the validation images); None holds ``test_fraction`` of the validation images
        apart instead (stratified by class, subset seed).
    test_fraction : float
        That share (:data:`DEFAULT_TEST_FRACTION`).
    analyzer : str
        Relevance analyzer (:data:`analysis.saliency.ANALYZERS`; the paper's deep Taylor by default).
    variants : tuple of str
        Which of :data:`ALL_VARIANTS` to train, in this order (the paper's seven: :data:`VARIANTS`).
    seeds : tuple of int
        One Trainee per variant, seed and size; a seed gives every variant the same initial weights and
        batch order, so variants are compared with ``none`` in pairs. One seed by default (a quick look,
        no statistics); a study uses :data:`DEFAULT_SEEDS`, the default of ``rbdm experiment``.
    training : TrainingOptions
        How every Trainee of the run trains (:data:`DEFAULT_TRAINING`): architecture, builder options,
        epochs, batch size, learning rate, K, batch-normalisation momentum, determinism (RBDM §5.5, §5.6),
        and ``switch_epoch``, the last masked epoch of the ``+switch`` variants (1 ≤ switch_epoch < epochs
        when the run has one). Its fields read through as ``config.epochs`` etc. and are stored flat in
        ``run.json`` (:meth:`to_dict`).
    negative_fraction : float
        Share of pixels negative masking zeroes (paper: 0.10).
    n_points : int
        Fixations per image for perceptive masking (:data:`analysis.masked_dataset.DEFAULT_N_POINTS`).
    angle_deg : float
        Visual angle of the perceptive mask's span (RBDM §5.3.2: 5°), on the paper's screen.
    cache_dir : str or None
        Relevance map cache; None: ``relevance_cache`` beside the run folder.
    tensorboard : bool
        Also write TensorBoard logs per Trainee.
    auc_steps : int or None
        K of the normalised area under the validation macro-F1 curve (:mod:`analysis.learning_speed`);
        None: the shortest Trainee's steps at each size.
    threshold_share : float
        Steps-to-threshold waits for this share of the ``none`` Trainee's best validation macro-F1 (same
        seed and size).
    keep_models : bool
        Save each Trainee's best and final weights (``best.keras``, ``final.keras``) in its folder.
    gaze_study : str or None
        The study file the ``gaze`` and ``fusion`` masks were read from (recorded; the fixations are passed
        to :func:`run_experiment` as viewings, ``analysis`` never reads a study itself).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4–§5.6.
    """

    dataset: str
    trainer: str
    size_px: int = 48
    rgb: bool = False
    train_split: str = "train"
    val_split: str = "validation"
    n_train: int | None = 800
    n_val: int | None = 400
    subset_seed: int = 0
    train_sizes: tuple[int | None, ...] = ()
    test_split: str | None = None
    test_fraction: float = DEFAULT_TEST_FRACTION
    analyzer: str = DEFAULT_ANALYZER
    variants: tuple[str, ...] = VARIANTS
    seeds: tuple[int, ...] = (0,)
    training: TrainingOptions = field(default_factory=lambda: dataclasses.replace(DEFAULT_TRAINING))
    negative_fraction: float = 0.10
    n_points: int = DEFAULT_N_POINTS
    angle_deg: float = VISUAL_SPAN_DEG
    cache_dir: str | None = None
    tensorboard: bool = True
    auc_steps: int | None = None
    threshold_share: float = DEFAULT_THRESHOLD_SHARE
    keep_models: bool = False
    gaze_study: str | None = None

    def __post_init__(self) -> None:
        if not self.variants:
            raise ValueError(f"variants must name at least one of {', '.join(VARIANTS)}; got none.")
        for variant in self.variants:
            variant_parts(variant)
        if len(set(self.variants)) != len(self.variants) or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"variants and seeds must not repeat; got {self.variants!r}, {self.seeds!r}.")
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            raise ValueError(f"seeds must be one or more integers; got {self.seeds!r}.")
        self._check_sizes()
        if not 0 < self.test_fraction < 1:
            raise ValueError(f"test_fraction must lie in (0, 1); got {self.test_fraction!r}.")
        if not 0 < self.threshold_share <= 1:
            raise ValueError(f"threshold_share must lie in (0, 1]; got {self.threshold_share!r}.")
        if self.auc_steps is not None and (isinstance(self.auc_steps, bool) or self.auc_steps < 1):
            raise ValueError(f"auc_steps must be an integer ≥ 1 or None; got {self.auc_steps!r}.")
        if not isinstance(self.training, TrainingOptions):
            raise TypeError(f"training must be a TrainingOptions; got {type(self.training).__name__}.")
        if any(variant_parts(v)[1] for v in self.variants):
            self.training.check_switch()

    def _check_sizes(self) -> None:
        sizes = [s for s in self.train_sizes if s is not None]
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(
                f"train_sizes must be integers ≥ 1 or None (the whole split); got {self.train_sizes!r}."
            )
        if len(set(self.train_sizes)) != len(self.train_sizes):
            raise ValueError(f"train_sizes must not repeat; got {self.train_sizes!r}.")

    @property
    def sizes(self) -> tuple[int | None, ...]:
        """The training-set sizes of the grid, smallest first (None, the whole split, last)."""
        sizes = self.train_sizes or (self.n_train,)
        return tuple(sorted(sizes, key=lambda s: (s is None, s or 0)))

    # The Trainees' training, read through (the names run.json, reports and screens use).

    @property
    def architecture(self) -> str:
        """``training.architecture``."""
        return self.training.architecture

    @property
    def options(self) -> Mapping[str, Any]:
        """``training.options``."""
        return self.training.options or {}

    @property
    def epochs(self) -> int:
        """``training.epochs``."""
        return self.training.epochs

    @property
    def switch_epoch(self) -> int | None:
        """``training.switch_epoch``."""
        return self.training.switch_epoch

    @property
    def batch_size(self) -> int:
        """``training.batch_size``."""
        return self.training.batch_size

    @property
    def learning_rate(self) -> float:
        """``training.learning_rate``."""
        return self.training.learning_rate

    @property
    def eval_every_steps(self) -> int:
        """``training.eval_every_steps``."""
        return self.training.eval_every_steps

    @property
    def batch_norm_momentum(self) -> float | None:
        """``training.batch_norm_momentum``."""
        return self.training.batch_norm_momentum

    @property
    def deterministic(self) -> bool:
        """``training.deterministic``."""
        return self.training.deterministic

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-compatible values: ``run.json``'s ``"config"``, read by :meth:`from_dict`.

        One flat object: the fields, with ``training`` replaced by its fields
        (:meth:`~analysis.trainee.TrainingOptions.to_dict`: the keys ``run.json`` has always had).
        """
        raw: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "training"
        }
        raw.update(self.training.to_dict())
        parsed: dict[str, Any] = json.loads(json.dumps(raw))
        return parsed

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ExperimentConfig:
        """Parse :meth:`to_dict`'s output, of this version or an earlier one: keys an older ``run.json``
        lacks take their default (:data:`DEFAULT_TRAINING` for the training keys); unknown keys are
        refused."""
        names = {f.name for f in dataclasses.fields(cls)} - {"training"}
        unknown = sorted(set(raw) - names - set(TRAINING_FIELDS))
        if unknown:
            known = sorted(names | set(TRAINING_FIELDS))
            raise ValueError(f"unknown experiment settings {unknown!r}; known are {known!r}.")
        values = {key: value for key, value in raw.items() if key in names}
        for key in ("variants", "seeds", "train_sizes"):
            if key in values:
                values[key] = tuple(values[key])
        training = {key: value for key, value in raw.items() if key in TRAINING_FIELDS}
        return cls(**values, training=dataclasses.replace(DEFAULT_TRAINING, **training))


@dataclass(frozen=True, slots=True)
class ExperimentProgress:
    """One progress report of :func:`run_experiment`.

    Parameters
    ----------
    stage : str
        ``"loading"``, ``"relevance"``, ``"masking"``, ``"training"``, then ``"finished"`` or
        ``"cancelled"``.
    done, total : int
        Units done of the stage (images for relevance, Trainees for training).
    message : str
        One line for a status bar.
    variant : str or None
        The Trainee being trained.
    seed : int or None
        Its seed.
    point : CurvePoint or None
        A new curve point of that Trainee.
    train_size : int or None
        Its training-set size.
    running : int
        Of the ``training`` stage: cells being trained now (several on Ray).
    failed : int
        Of the ``training`` stage: cells that raised (the others go on).
    eta_s : float or None
        Of the ``training`` stage: estimated seconds until every cell is done; None before the first
        cell of this attempt finished.
    """

    stage: str
    done: int
    total: int
    message: str
    variant: str | None = None
    seed: int | None = None
    point: CurvePoint | None = None
    train_size: int | None = None
    running: int = 0
    failed: int = 0
    eta_s: float | None = None


@dataclass(frozen=True, slots=True)
class VariantResult:
    """The scores of one Trainee (one row of ``results.csv``).

    Parameters
    ----------
    variant : str
        One of :data:`ALL_VARIANTS`.
    seed : int
        Its seed.
    status : str
        ``"finished"`` or ``"cancelled"`` (partial curve).
    best_val_macro_f1 : float
        Highest validation macro-F1 of the curve.
    best_step, best_epoch : int
        Where it was reached.
    final_val_macro_f1, final_val_accuracy, final_val_loss : float
        Scores after the last step.
    mean_val_macro_f1 : float
        Mean validation macro-F1 over the curve points (the learning-speed measures of
        :mod:`analysis.experiment_report` compare variants over a common window instead).
    steps : int
        Training steps done.
    duration_s : float
        Wall time of building and training.
    train_size : int
        Training images of its cell (the original images; a gaze Trainee masks only the fixated ones).
    test_macro_f1, test_accuracy : float
        On the test split with the weights of the best validation step (NaN when not scored).
    final_test_macro_f1 : float
        On the test split after the last step.
    initial_weights_sha256 : str
        Digest of the initial weights: one value per seed across variants (paired comparison).
    """

    variant: str
    seed: int
    status: str
    best_val_macro_f1: float
    best_step: int
    best_epoch: int
    final_val_macro_f1: float
    final_val_accuracy: float
    final_val_loss: float
    mean_val_macro_f1: float
    steps: int
    duration_s: float
    train_size: int = 0
    test_macro_f1: float = math.nan
    test_accuracy: float = math.nan
    final_test_macro_f1: float = math.nan
    initial_weights_sha256: str = ""

    @classmethod
    def of(
        cls,
        variant: str,
        seed: int,
        result: TraineeResult,
        *,
        train_size: int = 0,
        test: tuple[float, float, float] = (math.nan, math.nan, math.nan),
    ) -> VariantResult:
        """Summarise a Trainee's curves; ``test`` is (best-step macro-F1, accuracy, final macro-F1)."""
        best, final = result.best, result.final
        return cls(
            variant=variant,
            seed=seed,
            status="cancelled" if result.cancelled else "finished",
            best_val_macro_f1=best.val_macro_f1,
            best_step=best.step,
            best_epoch=best.epoch,
            final_val_macro_f1=final.val_macro_f1,
            final_val_accuracy=final.val_accuracy,
            final_val_loss=final.val_loss,
            mean_val_macro_f1=float(np.mean([p.val_macro_f1 for p in result.curves])),
            steps=final.step,
            duration_s=result.duration_s,
            train_size=train_size,
            test_macro_f1=test[0],
            test_accuracy=test[1],
            final_test_macro_f1=test[2],
            initial_weights_sha256=result.initial_weights_sha256,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> VariantResult:
        """Parse a row of ``results.csv`` (columns added later than a file keep their defaults)."""
        parse: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float}
        values = {
            f.name: parse[str(f.type)](row[f.name])
            for f in dataclasses.fields(cls)
            if row.get(f.name) not in (None, "")
        }
        return cls(**values)


#: Columns of ``results.csv``.
RESULT_FIELDS: Final = tuple(f.name for f in dataclasses.fields(VariantResult))

#: Curve points of each (variant, seed, training-set size).
Curves = Mapping[tuple[str, int, int], Sequence[CurvePoint]]
#: Curve points of each (variant, seed) at one size, as :func:`mean_curves` and the figures take them.
SeedCurves = Mapping[tuple[str, int], Sequence[CurvePoint]]


def curves_at(curves: Curves, train_size: int) -> dict[tuple[str, int], tuple[CurvePoint, ...]]:
    """The curves of one training-set size, keyed ``(variant, seed)``."""
    return {(v, s): tuple(points) for (v, s, n), points in curves.items() if n == train_size}


@dataclass(frozen=True, slots=True)
class ExperimentRun:
    """A run folder as stored: config, status, results and curves.

    Parameters
    ----------
    run_dir : Path
        The folder.
    config : ExperimentConfig
        What was run.
    status : str
        One of :data:`RUN_STATUSES` (``running`` also for a run whose process died).
    started_utc, finished_utc : str
        ISO 8601 times; ``finished_utc`` is empty while running.
    error : str
        The error message of a failed run.
    results : tuple of VariantResult
        Rows of ``results.csv``.
    curves : mapping
        ``(variant, seed)`` → curve points at the run's largest training-set size (what the figure and
        the Experiments screen show).
    curves_by_size : mapping
        ``(variant, seed, train_size)`` → curve points, every size.
    test_source : str
        Which images the test scores come from (named in the report).
    masked_images : mapping of str to int
        Per mask source, how many training-pool images it masked (gaze: the fixated ones).
    """

    run_dir: Path
    config: ExperimentConfig
    status: str
    started_utc: str
    finished_utc: str = ""
    error: str = ""
    results: tuple[VariantResult, ...] = ()
    curves: SeedCurves = field(default_factory=dict)
    curves_by_size: Curves = field(default_factory=dict)
    test_source: str = ""
    masked_images: Mapping[str, int] = field(default_factory=dict)

    @property
    def plot_path(self) -> Path:
        """The learning-curve figure of the run (the largest training-set size)."""
        return self.run_dir / "learning_curves.png"

    @property
    def train_sizes(self) -> tuple[int, ...]:
        """The training-set sizes the results have, ascending."""
        return tuple(sorted({r.train_size for r in self.results}))

    def trainee_dir(self, result: VariantResult) -> Path:
        """The folder of one Trainee (curves, confusion matrix, kept models)."""
        return trainee_dir(self.run_dir, self.config, result.variant, result.seed, result.train_size)


def trainee_dir(
    run_dir: str | Path, config: ExperimentConfig, variant: str, seed: int, train_size: int
) -> Path:
    """``trainees/<variant>-seed<s>`` of a one-size run, ``trainees/n<size>/<variant>-seed<s>`` otherwise."""
    folder = Path(run_dir) / "trainees"
    if len(config.sizes) > 1:
        folder = folder / f"n{train_size}"
    return folder / f"{variant}-seed{seed}"


# --------------------------------------------------------------------------------------------------------
# The data of a grid: nested training subsets, validation, test, masked images
# --------------------------------------------------------------------------------------------------------


def nested_subset(labels: Sequence[str], size: int | None, *, seed: int) -> NDArray[np.intp]:
    """Positions of a class-balanced training subset of ``size`` items; nested across sizes.

    Each class is shuffled with ``seed`` and items are taken round-robin over the classes
    (:func:`analysis.datasets.subset_positions`), so for one seed the subset of a smaller size is part of
    every larger one's: a training-set-size curve adds images, it never swaps them.

    Parameters
    ----------
    labels : sequence of str
        Label of each item of the pool.
    size : int or None
        Items to take; None or at least the pool's size: all of them.
    seed : int
        The subset seed.

    Returns
    -------
    ndarray of intp
        Positions into ``labels``, ascending.
    """
    positions = subset_positions(labels, max_count=size, rng=np.random.default_rng(seed))
    return np.asarray(positions, dtype=np.intp)


def stratified_holdout(
    labels: ArrayLike, fraction: float, *, seed: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Split positions into (kept, held apart), holding ``round(fraction · N)`` items (at least one) apart.

    Stratified: class c gives ``⌊fraction · n_c⌋`` (never its last item), and the items still missing come
    one each from the classes with the largest remainders (ties to the lower class index), which may take a
    rare class's only item. At least one item is kept. The items of a class are drawn with ``seed``.

    Returns
    -------
    kept, held : ndarray of intp
        Ascending positions; together all of them.
    """
    y = np.asarray(labels)
    classes, counts = np.unique(y, return_counts=True)
    quota = fraction * counts
    held_counts = np.minimum(np.floor(quota).astype(int), counts - 1)
    target = min(max(1, int(np.floor(fraction * len(y) + 0.5))), len(y) - 1)
    for k in np.argsort(-(quota - np.floor(quota)), kind="stable"):
        if held_counts.sum() >= target:
            break
        held_counts[k] += int(held_counts[k] < counts[k])
    rng = np.random.default_rng(seed)
    held = [
        int(p)
        for label, n in zip(classes, held_counts, strict=True)
        for p in rng.permutation(np.flatnonzero(y == label))[:n]
    ]
    held_array = np.asarray(sorted(held), dtype=np.intp)
    kept = np.setdiff1d(np.arange(len(y)), held_array).astype(np.intp)
    return kept, held_array


def _take(arrays: SplitArrays, positions: NDArray[np.intp]) -> SplitArrays:
    masks = None if arrays.region_masks is None else arrays.region_masks[positions]
    return SplitArrays(
        images=arrays.images[positions],
        label_indices=arrays.label_indices[positions],
        ids=tuple(arrays.ids[p] for p in positions),
        region_masks=masks,
    )


@dataclass(frozen=True, slots=True)
class MaskedImages:
    """The training images one mask source could mask: their pool positions and the masked pixels."""

    positions: NDArray[np.intp]
    images: NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class GridData:
    """Everything the cells of a grid train and score on (computed once, shared by every cell).

    Parameters
    ----------
    train : SplitArrays
        The training pool: the largest training-set size; each cell takes its :func:`nested_subset`.
    validation : SplitArrays
        Unmasked validation images; the curves and the best step come from them.
    test : SplitArrays
        Images scored at the best step and never used to choose it.
    test_source : str
        What ``test`` is, for the report.
    masked : mapping of str to MaskedImages
        Per mask source of :data:`MASK_SOURCES` the variants need, its masked pool images.
    """

    train: SplitArrays
    validation: SplitArrays
    test: SplitArrays
    test_source: str
    masked: Mapping[str, MaskedImages] = field(default_factory=dict)


def load_grid_data(
    config: ExperimentConfig, report: Callable[[ExperimentProgress], None] = lambda _: None
) -> tuple[SplitArrays, SplitArrays, SplitArrays, str]:
    """The run's training pool, validation and test images and a sentence naming the test images.

    The pool is the largest of ``config.sizes`` drawn with the subset seed; without ``test_split`` the test
    images are ``test_fraction`` of the validation draw, held apart by :func:`stratified_holdout`.
    """
    report(ExperimentProgress("loading", 0, 3, f"loading {config.dataset}"))
    loader = open_dataset(config.dataset, size=config.size_px, rgb=config.rgb)
    pool_size = None if None in config.sizes else max(s for s in config.sizes if s is not None)
    wanted = [(config.train_split, pool_size), (config.val_split, config.n_val)]
    if config.test_split is not None:
        wanted.append((config.test_split, config.n_val))
    splits = []
    for k, (split, count) in enumerate(wanted):
        arrays = load_arrays(loader, split, max_count=count, rng=np.random.default_rng(config.subset_seed))
        if len(arrays.ids) == 0:
            raise AnalysisError(
                f"split {split!r} of {config.dataset!r} gave no images; choose another split."
            )
        splits.append(arrays)
        report(ExperimentProgress("loading", k + 1, 3, f"loaded {len(arrays.ids)} {split} images"))
    if config.test_split is not None:
        return (
            splits[0],
            splits[1],
            splits[2],
            f"the {config.test_split!r} split ({len(splits[2].ids)} images)",
        )
    kept, held = stratified_holdout(splits[1].label_indices, config.test_fraction, seed=config.subset_seed)
    if len(held) == 0 or len(kept) == 0:
        raise AnalysisError(
            f"{len(splits[1].ids)} {config.val_split!r} images cannot give both validation and test images; "
            "draw more (--max-val) or name a --test-split."
        )
    source = (
        f"{config.test_fraction:.0%} of the {config.val_split!r} images held apart, stratified by class "
        f"(subset seed {config.subset_seed}): {len(held)} images; validation keeps {len(kept)}"
    )
    return splits[0], _take(splits[1], kept), _take(splits[1], held), source


def load_splits(
    config: ExperimentConfig, report: Callable[[ExperimentProgress], None] = lambda _: None
) -> tuple[SplitArrays, SplitArrays]:
    """The run's training pool and validation images (:func:`load_grid_data` without the test images)."""
    train, validation, _, _ = load_grid_data(config, report)
    return train, validation


def masked_images(
    config: ExperimentConfig,
    train: SplitArrays,
    *,
    cache_dir: str | Path,
    viewings: Mapping[str, Sequence[ImageFixations]] | None = None,
    report: Callable[[ExperimentProgress], None] = lambda _: None,
) -> dict[str, MaskedImages]:
    """The pool images masked by each mask source the variants need (relevance computed once, cached).

    Parameters
    ----------
    config : ExperimentConfig
        Variants, Trainer, analyzer and masking options.
    train : SplitArrays
        The training pool.
    cache_dir : str or Path
        Relevance-map cache.
    viewings : mapping, optional
        Recorded fixations per image id, for ``gaze`` and ``fusion`` (e.g. read from a study by the CLI).

    Raises
    ------
    AnalysisError
        When gaze variants get no viewings of any pool image, or ``regions`` a dataset without region masks.
    """
    methods = sorted({m for m in (variant_parts(v)[0] for v in config.variants) if m is not None})
    maps: NDArray[np.float32] | None = None
    if set(methods) & {"negative", "mean", "perceptive", "fusion"}:
        maps = _relevance(config, train, cache_dir, report)
    shape = (int(train.images.shape[1]), int(train.images.shape[2]))
    out = {}
    for k, method in enumerate(methods):
        positions, masks = _masks(config, method, train, maps, viewings, shape)
        images = np.stack(
            [apply_mask(train.images[p], m) for p, m in zip(positions, masks, strict=True)]
        ).astype(np.float32)
        out[method] = MaskedImages(positions, images)
        kept = float(masks.mean())
        text = f"{method} masks keep {kept:.1%} of the pixels of {len(positions)} images"
        report(ExperimentProgress("masking", k + 1, len(methods), text))
    return out


def _relevance(
    config: ExperimentConfig,
    train: SplitArrays,
    cache_dir: str | Path,
    report: Callable[[ExperimentProgress], None],
) -> NDArray[np.float32]:
    total = len(train.ids)
    maps = compute_relevance_maps(
        config.trainer,
        train.images,
        train.ids,
        analyzer=config.analyzer,
        cache_dir=cache_dir,
        on_batch=lambda done, n: report(
            ExperimentProgress("relevance", done, n, f"relevance maps {done}/{n}")
        ),
    )
    report(ExperimentProgress("relevance", total, total, f"relevance maps ready ({maps.cache_file})"))
    return np.asarray(maps.maps, dtype=np.float32)


def _masks(
    config: ExperimentConfig,
    method: str,
    train: SplitArrays,
    maps: NDArray[np.float32] | None,
    viewings: Mapping[str, Sequence[ImageFixations]] | None,
    shape: tuple[int, int],
) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """(pool positions, masks) of one mask source."""
    everyone = np.arange(len(train.ids), dtype=np.intp)
    if method == "regions":
        if train.region_masks is None:
            raise AnalysisError(
                f"'regions' masks need ground-truth region masks, which {config.dataset!r} does not carry "
                "(only synthetic faces do); leave 'regions' out."
            )
        return everyone, train.region_masks
    if method in ("gaze", "fusion"):
        gaze = gaze_masks(viewings or {}, train.ids, shape)
        if len(gaze.positions) == 0:
            raise AnalysisError(
                f"none of the {len(train.ids)} {config.train_split!r} images of {config.dataset!r} has "
                f"fixations{f' in {config.gaze_study!r}' if config.gaze_study else ''}. Label these images "
                "in a study first (the same dataset and split) and pass it (--study), or leave 'gaze' and "
                "'fusion' out."
            )
        if method == "gaze":
            return gaze.positions, gaze.masks
        positions, heat = gaze_heatmaps(viewings or {}, train.ids, shape)
        assert maps is not None
        return positions, fusion_masks(maps[positions], heat)
    assert maps is not None
    options: dict[str, dict[str, Any]] = {
        "negative": {"fraction": config.negative_fraction},
        "mean": {},
        "perceptive": perceptive_options(shape, n_points=config.n_points, angle_deg=config.angle_deg),
    }
    return everyone, relevance_masks(maps, method, options=options[method]).masks


# --------------------------------------------------------------------------------------------------------
# Cells: one Trainee each, the grid's unit of work
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One Trainee of the grid: a variant, a seed and a training-set size.

    A cell is the unit of work: :func:`run_cell` trains it from the cell, the run's config and the shared
    :class:`GridData` alone, writes only into its own folder and returns its result, so cells can run in
    any order, in other processes or on other machines, and give the same curves (deterministic mode).

    Parameters
    ----------
    variant : str
        One of :data:`ALL_VARIANTS`.
    seed : int
        Initial weights and batch order (shared by every variant of the seed).
    train_size : int or None
        Requested training-set size; None: the whole pool.
    """

    variant: str
    seed: int
    train_size: int | None

    def to_dict(self) -> dict[str, Any]:
        """The cell as JSON-compatible values."""
        return {"variant": self.variant, "seed": self.seed, "train_size": self.train_size}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Cell:
        """Parse :meth:`to_dict`'s output."""
        size = raw["train_size"]
        return cls(str(raw["variant"]), int(raw["seed"]), None if size is None else int(size))


def grid_cells(config: ExperimentConfig) -> tuple[Cell, ...]:
    """Every cell of a run: sizes (smallest first) × variants (config order) × seeds."""
    return tuple(
        Cell(variant, seed, size)
        for size in config.sizes
        for variant in config.variants
        for seed in config.seeds
    )


def run_cell(
    config: ExperimentConfig,
    cell: Cell,
    data: GridData,
    run_dir: str | Path,
    *,
    progress: tuple[int, int] = (0, 1),
    report: Callable[[ExperimentProgress], None] = lambda _: None,
    cancel: Callable[[], bool] = lambda: False,
) -> tuple[VariantResult, tuple[CurvePoint, ...]]:
    """Train one cell into its folder; score its best and final weights on the test images.

    Parameters
    ----------
    config : ExperimentConfig
        The run's settings.
    cell : Cell
        What to train.
    data : GridData
        The shared data (:func:`load_grid_data`, :func:`masked_images`).
    run_dir : str or Path
        The run's folder; the cell writes ``trainees/…`` (:func:`trainee_dir`) and nothing else.
    progress : tuple of int
        ``(cells done before this one, cells in the run)`` for the progress records.
    report, cancel : callable
        As for :func:`run_experiment`.

    Returns
    -------
    tuple
        Its :class:`VariantResult` and curve points.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5 and §6.
    """
    positions = nested_subset(data.train.labels, cell.train_size, seed=config.subset_seed)
    train = _take(data.train, positions)
    method, switch = variant_parts(cell.variant)
    masked = None
    if method is not None:
        source = data.masked[method]
        chosen = np.isin(source.positions, positions)
        if not np.any(chosen):
            raise AnalysisError(
                f"{cell.variant!r} has no masked images among the {len(positions)} training images of size "
                f"{cell.train_size}; use a larger size or record fixations on these images."
            )
        masked = (source.images[chosen], data.train.label_indices[source.positions[chosen]])
    folder = trainee_dir(run_dir, config, cell.variant, cell.seed, len(positions))
    result = train_into_run(
        config,
        run_dir,
        cell.variant,
        cell.seed,
        masked,
        train,
        data.validation,
        switch=switch or method is None,
        progress=progress,
        report=report,
        cancel=cancel,
        folder=folder,
        train_size=len(positions),
    )
    try:
        test = _test_scores(result, data.test, folder if config.keep_models else None)
    finally:
        result.model.close()
    return VariantResult.of(
        cell.variant, cell.seed, result, train_size=len(positions), test=test
    ), result.curves


def _test_scores(result: TraineeResult, test: SplitArrays, keep: Path | None) -> tuple[float, float, float]:
    """(best-step macro-F1, best-step accuracy, final macro-F1) on the test images; saves both models."""
    from analysis.models import save_model_file

    final = evaluate_model(result.model, test.images, test.label_indices)
    if keep is not None:
        save_model_file(result.model, keep / "final.keras")
    with result.model.scope() as model:
        model.set_weights(list(result.best_weights))
    best = evaluate_model(result.model, test.images, test.label_indices)
    if keep is not None:
        save_model_file(result.model, keep / "best.keras")
    return best.macro_f1, best.accuracy, final.macro_f1


# --------------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------------


def new_run_dir(runs_dir: str | Path, *, name: str = "experiment") -> Path:
    """A fresh folder path ``<runs_dir>/<UTC time>-<name>`` (with ``-2``, ``-3`` … if taken); not created."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = Path(runs_dir) / f"{stamp}-{name}"
    candidate, k = base, 1
    while candidate.exists():
        k += 1
        candidate = base.with_name(f"{base.name}-{k}")
    return candidate


def run_experiment(
    config: ExperimentConfig,
    run_dir: str | Path,
    *,
    data: GridData | None = None,
    viewings: Mapping[str, Sequence[ImageFixations]] | None = None,
    on_progress: Callable[[ExperimentProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ExperimentRun:
    """Run every cell of ``config`` (sizes × variants × seeds) and write the run folder and its report.

    Parameters
    ----------
    config : ExperimentConfig
        What to run.
    run_dir : str or Path
        The run's folder; must not exist yet or be empty (:func:`new_run_dir` makes a fresh name).
    data : GridData, optional
        Train on these arrays instead of loading ``config.dataset`` (arrays made in a test or notebook);
        ``data.masked`` must hold every mask source the variants name.
    viewings : mapping, optional
        Recorded fixations per training image id, for the ``gaze`` and ``fusion`` variants (the CLI and
        the GUI read them from a study with ``tracking``).
    on_progress : callable, optional
        Called with :class:`ExperimentProgress` records (from the calling thread).
    cancel : callable, optional
        Polled between training steps and between Trainees; True stops the run, which is then stored as
        ``cancelled`` with the curves so far.

    Returns
    -------
    ExperimentRun

    Raises
    ------
    FileExistsError
        When ``run_dir`` holds files.
    Exception
        Whatever stopped the run (bad dataset path, missing Trainer ...); ``run.json`` then says
        ``failed`` with the message.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5 and §6.
    """
    folder = Path(run_dir)
    if folder.exists() and any(folder.iterdir()):
        raise FileExistsError(f"run folder {str(folder)!r} is not empty; choose a new one (new_run_dir).")
    folder.mkdir(parents=True, exist_ok=True)
    report = on_progress or (lambda _: None)
    stopped = cancel or (lambda: False)
    run = ExperimentRun(folder, config, "running", utc_now())
    write_run_json(run)
    try:
        data = data or prepare_grid_data(config, folder, viewings=viewings, report=report)
        counts = {name: len(images.positions) for name, images in data.masked.items()}
        run = dataclasses.replace(run, test_source=data.test_source, masked_images=counts)
        write_run_json(run)
        run = _run(run, data, report, stopped)
    except BaseException as err:
        record_interruption(run, err)
        raise
    report(
        ExperimentProgress(
            run.status, len(run.results), len(grid_cells(config)), f"run {run.status}: {folder}"
        )
    )
    return run


def prepare_grid_data(
    config: ExperimentConfig,
    run_dir: str | Path,
    *,
    viewings: Mapping[str, Sequence[ImageFixations]] | None = None,
    report: Callable[[ExperimentProgress], None] = lambda _: None,
) -> GridData:
    """Everything the cells of ``config`` share: the splits (:func:`load_grid_data`) and masked images.

    Relevance maps are cached in ``config.cache_dir``, else in ``relevance_cache`` beside ``run_dir``
    (:func:`masked_images`); ``viewings`` are the recorded fixations of the ``gaze`` and ``fusion`` masks.
    """
    train, validation, test, source = load_grid_data(config, report)
    cache = Path(config.cache_dir) if config.cache_dir else Path(run_dir).parent / "relevance_cache"
    masked = masked_images(config, train, cache_dir=cache, viewings=viewings, report=report)
    return GridData(train, validation, test, source, masked)


def _run(
    run: ExperimentRun,
    data: GridData,
    report: Callable[[ExperimentProgress], None],
    stopped: Callable[[], bool],
) -> ExperimentRun:
    config = run.config
    needed = {m for m in (variant_parts(v)[0] for v in config.variants) if m is not None}
    missing = sorted(needed - set(data.masked))
    if missing:
        raise ValueError(f"the grid data holds no masked images for {missing!r}; compute them first.")
    results: list[VariantResult] = []
    curves: dict[tuple[str, int, int], tuple[CurvePoint, ...]] = {}
    cells = grid_cells(config)
    tracker = GridTracker(len(cells), 0, report)
    for done, cell in enumerate(cells):
        if stopped():
            break
        tracker.started(cell)
        result, points = run_cell(
            config,
            cell,
            data,
            run.run_dir,
            progress=(done, len(cells)),
            report=tracker.forward_points(cell),
            cancel=stopped,
        )
        results.append(result)
        curves[(cell.variant, cell.seed, result.train_size)] = points
        write_tables(run.run_dir, results, curves)
        if result.status == "cancelled":
            break
        tracker.finished(cell, result)
    return finish_run(run, results, curves, n_cells=len(cells))


def finish_run(
    run: ExperimentRun,
    results: Sequence[VariantResult],
    curves: Curves,
    *,
    n_cells: int,
    error: str = "",
) -> ExperimentRun:
    """Store the end of a run: its tables, status, figure, ``report.md`` and ``run.json``.

    Parameters
    ----------
    run : ExperimentRun
        The run as it started (folder, config, start time, test source).
    results : sequence of VariantResult
        One per trained cell, in grid order (a cancelled cell's partial result included).
    curves : mapping
        ``(variant, seed, train_size)`` → curve points of those cells.
    n_cells : int
        Cells of the whole grid (:func:`grid_cells`).
    error : str
        Why cells failed; non-empty makes the run ``failed`` (its finished cells are kept).

    Returns
    -------
    ExperimentRun
        ``finished`` when every cell finished, ``failed`` with ``error``, else ``cancelled``; with
        ``finished_utc`` now and the curves of its largest training-set size.
    """
    from analysis.experiment_report import write_report

    results = tuple(results)
    complete = len(results) == n_cells and all(r.status == "finished" for r in results)
    status = "failed" if error else ("finished" if complete else "cancelled")
    largest = max((r.train_size for r in results), default=0)
    write_tables(run.run_dir, results, curves)
    run = dataclasses.replace(
        run,
        status=status,
        finished_utc=utc_now(),
        error=error,
        results=results,
        curves=curves_at(curves, largest),
        curves_by_size={key: tuple(points) for key, points in curves.items()},
    )
    if curves:
        plot_learning_curves(run.curves, run.plot_path, title=run_title(run.config, largest))
        write_report(run)
    write_run_json(run)
    return run


def run_title(config: ExperimentConfig, train_size: int) -> str:
    """The learning-curve figure's title: dataset, training images, Trainees, epochs, switch, seeds."""
    return (
        f"{Path(config.dataset).name or config.dataset}, {train_size} training images: "
        f"{config.architecture} Trainees, {config.epochs} epochs (switch after {config.switch_epoch}), "
        f"seeds {list(config.seeds)}"
    )


def grid_status(done: int, running: int, failed: int, total: int, *, eta_s: float | None) -> str:
    """One line about a grid's progress: ``"5/12 cells done, 2 running, 1 failed, ETA 3 min"``."""
    text = f"{done}/{total} cells done, {running} running, {failed} failed"
    if eta_s is None or not math.isfinite(eta_s):
        return text
    return text + (f", ETA {eta_s / 60:.0f} min" if eta_s >= 90 else f", ETA {eta_s:.0f} s")


class GridTracker:
    """Counts a grid's cells (done, running, failed) and reports them, with an ETA, as ``training`` records.

    Every engine reports through one: :func:`run_experiment` in this process and
    :func:`analysis.grid_engine.run_grid` on Ray. The ETA is the wall time per cell trained so far by
    this attempt times the cells left (cells found finished in a resumed folder count as done, not as
    speed).

    Parameters
    ----------
    total : int
        Cells of the grid.
    done : int
        Cells finished before this attempt (a resumed run's).
    report : callable
        Receives the :class:`ExperimentProgress` records.
    clock : callable
        Monotonic seconds (:func:`time.monotonic`; a test passes its own).
    """

    def __init__(
        self,
        total: int,
        done: int,
        report: Callable[[ExperimentProgress], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.done, self.report = total, done, report
        self.running: set[Cell] = set()
        self.n_failed = 0
        self._clock = clock
        self._start = clock()
        self._trained = 0

    def eta_s(self) -> float | None:
        """Seconds until every cell is done, at this attempt's pace; None before its first cell ended."""
        if self._trained == 0:
            return None
        remaining = self.total - self.done - self.n_failed
        return (self._clock() - self._start) / self._trained * remaining

    def _send(self, cell: Cell, point: CurvePoint | None = None, train_size: int | None = None) -> None:
        eta_s = self.eta_s()
        running, failed = len(self.running), self.n_failed
        text = grid_status(self.done, running, failed, self.total, eta_s=eta_s)
        progress = ExperimentProgress("training", self.done, self.total, text, cell.variant, cell.seed, point)
        self.report(
            dataclasses.replace(progress, train_size=train_size, running=running, failed=failed, eta_s=eta_s)
        )

    def started(self, cell: Cell) -> None:
        """``cell`` began training."""
        self.running.add(cell)
        self._send(cell)

    def point(self, cell: Cell, point: CurvePoint, train_size: int | None) -> None:
        """``cell`` reached a new curve point."""
        self.running.add(cell)
        self._send(cell, point, train_size)

    def forward_points(self, cell: Cell) -> Callable[[ExperimentProgress], None]:
        """A progress sink for :func:`run_cell` of ``cell`` that passes its curve points on."""

        def on_point(progress: ExperimentProgress) -> None:
            if progress.point is not None:
                self.point(cell, progress.point, progress.train_size)

        return on_point

    def finished(self, cell: Cell, result: VariantResult) -> None:
        """``cell`` ended with ``result``."""
        self.running.discard(cell)
        self.done += 1
        self._trained += 1
        self._send(cell, train_size=result.train_size)

    def failed(self, cell: Cell, error: str) -> None:
        """``cell`` raised ``error``."""
        self.running.discard(cell)
        self.n_failed += 1
        self._send(cell)


def train_into_run(
    config: ExperimentConfig,
    run_dir: str | Path,
    variant: str,
    seed: int,
    masked: tuple[NDArray[np.float32], NDArray[np.int64]] | None,
    train: SplitArrays,
    validation: SplitArrays,
    *,
    switch: bool,
    progress: tuple[int, int],
    report: Callable[[ExperimentProgress], None],
    cancel: Callable[[], bool],
    folder: str | Path | None = None,
    train_size: int | None = None,
) -> TraineeResult:
    """Train one Trainee of a run with the run's settings; its curves and confusion matrix go to its folder.

    Every cell of a run (:func:`run_cell`) is trained and recorded through this: its folder (default
    ``trainees/<variant>-seed<seed>/``) gets the curves (CSV, TensorBoard) and ``confusion.csv``.

    Parameters
    ----------
    config : ExperimentConfig
        The run's settings (architecture, epochs, switch epoch, optimiser, determinism).
    run_dir : str or Path
        The run's folder.
    variant : str
        The Trainee's name in the run's tables.
    seed : int
        Its seed.
    masked : tuple of arrays or None
        Masked training images and their labels; None trains on the originals only (the baseline).
    train, validation : SplitArrays
        The original training images and the (always unmasked) validation images (RBDM §3).
    switch : bool
        Also train on the originals: after ``config.switch_epoch`` when ``masked`` is given (RBDM §5.5).
    progress : tuple of int
        ``(Trainees done before this one, Trainees in the run)`` for the progress records.
    report, cancel : callable
        ExperimentProgress sink and cancel poll, as for :func:`run_experiment`.
    folder : str or Path, optional
        The Trainee's folder (:func:`trainee_dir`).
    train_size : int, optional
        Its training-set size, for the progress records.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5 (switching to the full images).
    """
    folder = Path(folder) if folder is not None else Path(run_dir) / "trainees" / f"{variant}-seed{seed}"
    done, total = progress
    with CurveLog(folder, tensorboard=config.tensorboard) as log:

        def on_curve(point: CurvePoint) -> None:
            log.add(point)
            text = f"{variant}, seed {seed}: step {point.step}, val. macro-F1 {point.val_macro_f1:.3f}"
            report(ExperimentProgress("training", done, total, text, variant, seed, point, train_size))

        switching = switch and masked is not None
        result = train_trainee(
            masked,
            (train.images, train.label_indices) if switch else None,
            (validation.images, validation.label_indices),
            training=config.training
            if switching
            else dataclasses.replace(config.training, switch_epoch=None),
            seed=seed,
            on_curve=on_curve,
            cancel=cancel,
        )
    write_confusion(folder / "confusion.csv", result.confusion)
    return result


def write_confusion(path: str | Path, confusion: NDArray[np.int64]) -> None:
    """Write a Trainee's confusion matrix as ``confusion.csv``, atomically (read by :func:`read_confusion`).

    A header row ``true \\ predicted, <labels>``, then one row per true class: its label and its counts
    per predicted class (RBDM Figures 11 and 12).
    """
    labels = LABELS[: len(confusion)]
    with atomic_write(Path(path), newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *labels])
        for label, row in zip(labels, confusion, strict=True):
            writer.writerow([label, *(int(v) for v in row)])


def read_confusion(path: str | Path) -> NDArray[np.int64] | None:
    """A Trainee's ``confusion.csv`` (rows true class, columns predicted); None when there is none yet.

    The reader of :func:`write_confusion`'s format.
    """
    file = Path(path)
    if not file.is_file():
        return None
    with file.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    if not rows:
        return None
    return np.asarray([[int(v) for v in row[1:]] for row in rows], dtype=np.int64)


# --------------------------------------------------------------------------------------------------------
# Run folders
# --------------------------------------------------------------------------------------------------------


def utc_now() -> str:
    """Now in UTC as ISO 8601 seconds (the times of ``run.json``)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_interruption(run: ExperimentRun, err: BaseException) -> None:
    """Write ``run.json`` for a run stopped by an exception: ``cancelled`` when the user pressed Ctrl-C
    (``KeyboardInterrupt``: nothing is wrong, re-running the command trains the missing cells), else
    ``failed`` with the error's message (its type when it has none)."""
    if isinstance(err, KeyboardInterrupt):
        status = "cancelled"
        error = "interrupted (Ctrl-C); run the same command again to train the missing cells"
    else:
        status, error = "failed", str(err) or type(err).__name__
    write_run_json(dataclasses.replace(run, status=status, finished_utc=utc_now(), error=error))


def write_run_json(run: ExperimentRun) -> None:
    """Write (atomically) a run folder's ``run.json``: config, status, times, error, test images.

    Top-level fields another writer added to an existing ``run.json`` (the GUI worker's ``used`` and
    ``worker_pid``) are kept.
    """
    path = run.run_dir / "run.json"
    record: dict[str, Any] = {}
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        record = previous if isinstance(previous, dict) else {}
    record |= {
        "config": run.config.to_dict(),
        "status": run.status,
        "started_utc": run.started_utc,
        "finished_utc": run.finished_utc,
        "error": run.error,
        "test_source": run.test_source,
        "masked_images": dict(run.masked_images),
    }
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")


def write_tables(run_dir: str | Path, results: Sequence[VariantResult], curves: Curves) -> None:
    """Write a run's ``results.csv`` (:data:`RESULT_FIELDS`) and ``curves.csv`` (variant, seed, size,
    curves)."""
    run_dir = Path(run_dir)
    with atomic_write(run_dir / "results.csv", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_FIELDS)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in results)
    with atomic_write(run_dir / "curves.csv", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=("variant", "seed", "train_size", *CURVE_FIELDS))
        writer.writeheader()
        for (variant, seed, size), points in curves.items():
            writer.writerows(
                {"variant": variant, "seed": seed, "train_size": size, **p.as_row()} for p in points
            )


def load_run(run_dir: str | Path) -> ExperimentRun:
    """Read a run folder written by :func:`run_experiment`.

    Raises
    ------
    FileNotFoundError
        When the folder has no ``run.json``.
    """
    folder = Path(run_dir)
    path = folder / "run.json"
    if not path.is_file():
        raise FileNotFoundError(f"no run.json in {str(folder)!r}; it is not an experiment run folder.")
    record = json.loads(path.read_text(encoding="utf-8"))
    results: tuple[VariantResult, ...] = ()
    curves: dict[tuple[str, int, int], list[CurvePoint]] = {}
    if (folder / "results.csv").is_file():
        with (folder / "results.csv").open(newline="", encoding="utf-8") as handle:
            results = tuple(VariantResult.from_row(row) for row in csv.DictReader(handle))
    if (folder / "curves.csv").is_file():
        with (folder / "curves.csv").open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                key = (row["variant"], int(row["seed"]), int(row.get("train_size") or 0))
                curves.setdefault(key, []).append(CurvePoint.from_row(row))
    sized = {key: tuple(points) for key, points in curves.items()}
    return ExperimentRun(
        run_dir=folder,
        config=ExperimentConfig.from_dict(record["config"]),
        status=str(record["status"]),
        started_utc=str(record["started_utc"]),
        finished_utc=str(record.get("finished_utc", "")),
        error=str(record.get("error", "")),
        results=results,
        curves=curves_at(sized, max((n for (_, _, n) in sized), default=0)),
        curves_by_size=sized,
        test_source=str(record.get("test_source", "")),
        masked_images={str(k): int(v) for k, v in (record.get("masked_images") or {}).items()},
    )


def list_runs(runs_dir: str | Path) -> list[ExperimentRun]:
    """Every run folder directly inside ``runs_dir``, oldest first (an empty list if there is none)."""
    folder = Path(runs_dir)
    if not folder.is_dir():
        return []
    runs = [load_run(d) for d in sorted(folder.iterdir()) if (d / "run.json").is_file()]
    return sorted(runs, key=lambda r: (r.started_utc, r.run_dir.name))


# --------------------------------------------------------------------------------------------------------
# Summaries and the figure
# --------------------------------------------------------------------------------------------------------


def summary_by_variant(results: Iterable[VariantResult]) -> list[dict[str, Any]]:
    """Per variant and training-set size, in first-seen order: the size, the number of seeds and the mean
    and standard deviation over seeds of the best, final and mean validation macro-F1 (standard deviation
    0 for one seed). The statistics that answer RBDM's question are :mod:`analysis.experiment_report`'s."""
    groups: dict[tuple[str, int], list[VariantResult]] = {}
    for result in results:
        groups.setdefault((result.variant, result.train_size), []).append(result)
    rows = []
    for (variant, size), group in groups.items():
        row: dict[str, Any] = {"variant": variant, "train_size": size, "seeds": len(group)}
        for name in ("best_val_macro_f1", "final_val_macro_f1", "mean_val_macro_f1"):
            values = np.array([getattr(r, name) for r in group], dtype=np.float64)
            row[name] = float(values.mean())
            row[f"{name}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def mean_curves(curves: SeedCurves) -> dict[str, dict[str, NDArray[np.float64]]]:
    """Per variant, the curves averaged over its seeds at the steps all seeds reached.

    Returns
    -------
    dict
        variant → ``{"step", "train_loss", "val_loss", "val_accuracy", "val_macro_f1"}`` arrays, plus
        ``"switch_step"``: the first step on unmasked images of a ``+switch`` variant (empty array if none).
    """
    by_variant: dict[str, list[Sequence[CurvePoint]]] = {}
    for (variant, _), points in curves.items():
        if points:
            by_variant.setdefault(variant, []).append(points)
    out: dict[str, dict[str, NDArray[np.float64]]] = {}
    for variant, runs in by_variant.items():
        steps = sorted(set.intersection(*({p.step for p in points} for points in runs)))
        table: dict[str, NDArray[np.float64]] = {"step": np.asarray(steps, dtype=np.float64)}
        for name in ("train_loss", "val_loss", "val_accuracy", "val_macro_f1"):
            per_seed = [[getattr(p, name) for p in points if p.step in set(steps)] for points in runs]
            table[name] = np.mean(np.asarray(per_seed, dtype=np.float64), axis=0)
        switch = (
            [p.step for p in runs[0] if p.phase == "unmasked"] if variant.endswith(_SWITCH_SUFFIX) else []
        )
        table["switch_step"] = np.asarray(switch[:1], dtype=np.float64)
        out[variant] = table
    return out


#: Line colour per mask source in every learning-curve plot (the PNGs here and in the report, the
#: Experiments screen): matplotlib's tab10 colours; ``+switch`` variants are drawn dashed (RBDM Figure 10).
MASK_SOURCE_COLOURS: Final = {
    "none": "#000000",
    "negative": "#1f77b4",
    "mean": "#ff7f0e",
    "perceptive": "#2ca02c",
    "gaze": "#d62728",
    "fusion": "#9467bd",
    "regions": "#8c564b",
}


def plot_learning_curves(curves: SeedCurves, path: str | Path, *, title: str = "") -> Path:
    """Draw the mean learning curves of each variant into a PNG (RBDM Figure 10).

    Three panels against the training step: training loss, validation loss and validation macro-F1.
    Colour tells the masking method (red for any other name, e.g. ``gaze``), dashed lines the ``+switch``
    variants; a dotted vertical line marks the switch. Uses matplotlib's Agg canvas directly (no pyplot,
    no global backend).

    Returns
    -------
    Path
        The written file.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §6, Figure 10.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    means = mean_curves(curves)
    figure = Figure(figsize=(15, 4.6), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 3)
    panels = (
        ("train_loss", "training loss"),
        ("val_loss", "validation loss"),
        ("val_macro_f1", "validation macro-F1"),
    )
    switches: set[float] = set()
    for variant, table in means.items():
        method = variant.removesuffix(_SWITCH_SUFFIX)
        dashed = variant.endswith(_SWITCH_SUFFIX)
        style = {
            "color": MASK_SOURCE_COLOURS.get(method, MASK_SOURCE_COLOURS["gaze"]),
            "linestyle": "--" if dashed else "-",
            "linewidth": 1.6,
        }
        for ax, (name, _) in zip(axes, panels, strict=True):
            ax.plot(table["step"], table[name], label=variant, **style)
        switches.update(float(s) for s in table["switch_step"])
    for ax, (_, label) in zip(axes, panels, strict=True):
        for step in sorted(switches):
            ax.axvline(step, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("training step")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    n_seeds = max((len({s for (v, s) in curves if v == variant}) for variant in means), default=0)
    axes[2].legend(title=f"mean of {n_seeds} seed(s)" if n_seeds > 1 else None, fontsize=8)
    if title:
        figure.suptitle(title)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=110)
    return target
