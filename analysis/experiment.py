"""The paper's experiment: seven Trainee variants compared by their learning curves (RBDM §5.5, §6).

A Trainer's relevance maps (§5.2) of the training images are computed once (and cached on disk); each
masking method of §5.4 turns them into masked training images; then a Trainee is trained per variant and
seed and scored on the unmasked validation images every K steps:

- ``none``: the original images (the paper's "no mask" baseline);
- ``negative``, ``mean``, ``perceptive``: the masked images throughout;
- ``negative+switch``, ``mean+switch``, ``perceptive+switch``: masked for ``switch_epoch`` epochs, then the
  original images (the paper switched after nine epochs).

Every run lives in its own folder, so that runs can be listed, reopened and compared later::

    <run>/run.json                   config, status (running, finished, cancelled, failed), times
    <run>/results.csv                one row per variant and seed: best and final validation macro-F1 ...
    <run>/curves.csv                 every curve point of every variant and seed
    <run>/learning_curves.png        mean curves over the seeds, one line per variant (RBDM Figure 10)
    <run>/trainees/<variant>-seed<s>/curves.csv, confusion.csv, tensorboard/

:func:`run_experiment` reports through plain callables (``on_progress`` with :class:`Progress` records,
``cancel`` polled between steps), so a GUI can run it in a worker thread; a cancelled run keeps its
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from analysis.datasets import SplitArrays, load_arrays, open_dataset
from analysis.errors import AnalysisError
from analysis.files import atomic_write, atomic_write_text
from analysis.labels import LABELS
from analysis.masked_dataset import DEFAULT_N_POINTS, perceptive_options, relevance_masks
from analysis.masking import apply_mask
from analysis.saliency import DEFAULT_ANALYZER, compute_relevance_maps
from analysis.trainee import (
    CURVE_FIELDS,
    DEFAULT_BATCH_NORM_MOMENTUM,
    DEFAULT_TRAINEE,
    DEFAULT_TRAINEE_OPTIONS,
    CurveLog,
    CurvePoint,
    TraineeResult,
    train_trainee,
)

__all__ = [
    "RESULT_FIELDS",
    "RUN_STATUSES",
    "VARIANTS",
    "ExperimentConfig",
    "ExperimentRun",
    "Progress",
    "VariantResult",
    "list_runs",
    "load_run",
    "load_splits",
    "mean_curves",
    "new_run_dir",
    "plot_learning_curves",
    "run_experiment",
    "summary_by_variant",
    "train_into_run",
    "variant_parts",
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
#: What ``run.json`` can say about a run.
RUN_STATUSES: Final = ("running", "finished", "cancelled", "failed")

_SWITCH_SUFFIX = "+switch"


def variant_parts(variant: str) -> tuple[str | None, bool]:
    """``(masking method or None, switches to unmasked images)`` of a variant name.

    >>> variant_parts("mean+switch")
    ('mean', True)
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}.")
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
        :func:`analysis.datasets.subset_positions`); None for the whole split.
    subset_seed : int
        Seed of that draw.
    analyzer : str
        Relevance analyzer (:data:`analysis.saliency.ANALYZERS`; the paper's deep Taylor by default).
    variants : tuple of str
        Which of :data:`VARIANTS` to train, in this order.
    seeds : tuple of int
        One Trainee per variant and seed (weights, batch order).
    architecture : str
        Trainee architecture (RBDM §5.5: MobileNetV2).
    options : mapping
        Its builder options (MobileNetV2: width ``alpha`` 0.35).
    epochs, switch_epoch : int
        Epochs per Trainee; the last masked epoch of the ``+switch`` variants (1 ≤ switch_epoch < epochs).
    batch_size : int
        Images per step (paper: 32).
    learning_rate : float
        Adam's learning rate (paper: 0.001).
    eval_every_steps : int
        Steps between curve points.
    batch_norm_momentum : float or None
        Batch-normalisation momentum of the Trainees (:data:`analysis.trainee.DEFAULT_BATCH_NORM_MOMENTUM`);
        None keeps the architecture's.
    negative_fraction : float
        Share of pixels negative masking zeroes (paper: 0.10).
    n_points : int
        Fixations per image for perceptive masking (:data:`analysis.masked_dataset.DEFAULT_N_POINTS`).
    angle_deg : float
        Visual angle of the perceptive mask's span (RBDM §5.3.2: 5°), on the paper's screen.
    deterministic : bool
        Reproducible Trainees (RBDM §5.6).
    cache_dir : str or None
        Relevance map cache; None: ``relevance_cache`` beside the run folder.
    tensorboard : bool
        Also write TensorBoard logs per Trainee.

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
    analyzer: str = DEFAULT_ANALYZER
    variants: tuple[str, ...] = VARIANTS
    seeds: tuple[int, ...] = (0,)
    architecture: str = DEFAULT_TRAINEE
    options: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_TRAINEE_OPTIONS))
    epochs: int = 6
    switch_epoch: int = 3
    batch_size: int = 32
    learning_rate: float = 1e-3
    eval_every_steps: int = 25
    batch_norm_momentum: float | None = DEFAULT_BATCH_NORM_MOMENTUM
    negative_fraction: float = 0.10
    n_points: int = DEFAULT_N_POINTS
    angle_deg: float = 5.0
    deterministic: bool = True
    cache_dir: str | None = None
    tensorboard: bool = True

    def __post_init__(self) -> None:
        if not self.variants:
            raise ValueError(f"variants must name at least one of {', '.join(VARIANTS)}; got none.")
        for variant in self.variants:
            variant_parts(variant)
        if len(set(self.variants)) != len(self.variants) or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"variants and seeds must not repeat; got {self.variants!r}, {self.seeds!r}.")
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in self.seeds):
            raise ValueError(f"seeds must be one or more integers; got {self.seeds!r}.")
        switching = any(variant_parts(v)[1] for v in self.variants)
        if switching and not 1 <= self.switch_epoch < self.epochs:
            raise ValueError(
                f"switch_epoch must satisfy 1 ≤ switch_epoch < epochs ({self.epochs}); got "
                f"{self.switch_epoch!r}. Raise epochs or lower switch_epoch."
            )

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-compatible values."""
        raw = dataclasses.asdict(self)
        raw["options"] = dict(self.options)
        parsed: dict[str, Any] = json.loads(json.dumps(raw))
        return parsed

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ExperimentConfig:
        """Parse :meth:`to_dict`'s output (unknown keys are refused)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ValueError(f"unknown experiment settings {unknown!r}; known are {sorted(names)!r}.")
        values = dict(raw)
        for key in ("variants", "seeds"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Progress:
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
    """

    stage: str
    done: int
    total: int
    message: str
    variant: str | None = None
    seed: int | None = None
    point: CurvePoint | None = None


@dataclass(frozen=True, slots=True)
class VariantResult:
    """The scores of one Trainee (one row of ``results.csv``).

    Parameters
    ----------
    variant : str
        One of :data:`VARIANTS`.
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
        Mean validation macro-F1 over the curve points: the normalised area under the F1 curve, high when
        a Trainee learns early (the paper's "accelerated training").
    steps : int
        Training steps done.
    duration_s : float
        Wall time of building and training.
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

    @classmethod
    def of(cls, variant: str, seed: int, result: TraineeResult) -> VariantResult:
        """Summarise a Trainee's curves."""
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
        )

    @classmethod
    def from_row(cls, row: Mapping[str, str]) -> VariantResult:
        """Parse a row of ``results.csv``."""
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        parse: dict[str, Callable[[str], Any]] = {"str": str, "int": int, "float": float}
        return cls(**{name: parse[str(kind)](row[name]) for name, kind in kinds.items()})


#: Columns of ``results.csv``.
RESULT_FIELDS: Final = tuple(f.name for f in dataclasses.fields(VariantResult))

#: Curve points of each (variant, seed).
Curves = Mapping[tuple[str, int], Sequence[CurvePoint]]


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
        ``(variant, seed)`` → curve points.
    """

    run_dir: Path
    config: ExperimentConfig
    status: str
    started_utc: str
    finished_utc: str = ""
    error: str = ""
    results: tuple[VariantResult, ...] = ()
    curves: Curves = field(default_factory=dict)

    @property
    def plot_path(self) -> Path:
        """The learning-curve figure of the run."""
        return self.run_dir / "learning_curves.png"


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
    on_progress: Callable[[Progress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ExperimentRun:
    """Run the variants × seeds of ``config`` and write the run folder (see the module docstring).

    Parameters
    ----------
    config : ExperimentConfig
        What to run.
    run_dir : str or Path
        The run's folder; must not exist yet or be empty (:func:`new_run_dir` makes a fresh name).
    on_progress : callable, optional
        Called with :class:`Progress` records (from the calling thread).
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
    run = ExperimentRun(folder, config, "running", _utc_now())
    _write_run_json(run)
    try:
        run = _run(run, report, stopped)
    except BaseException as err:
        _write_run_json(dataclasses.replace(run, status="failed", finished_utc=_utc_now(), error=str(err)))
        raise
    _write_run_json(run)
    report(Progress(run.status, len(run.results), _n_trainees(config), f"run {run.status}: {folder}"))
    return run


def _n_trainees(config: ExperimentConfig) -> int:
    return len(config.variants) * len(config.seeds)


def _run(
    run: ExperimentRun, report: Callable[[Progress], None], stopped: Callable[[], bool]
) -> ExperimentRun:
    config = run.config
    train, validation = load_splits(config, report)
    masked = _masked_images(config, run.run_dir, train, report)
    results: list[VariantResult] = []
    curves: dict[tuple[str, int], tuple[CurvePoint, ...]] = {}
    jobs = [(variant, seed) for variant in config.variants for seed in config.seeds]
    for done, (variant, seed) in enumerate(jobs):
        if stopped():
            break
        report(Progress("training", done, len(jobs), f"training {variant}, seed {seed}", variant, seed))
        result = _train_variant(
            config, run.run_dir, variant, seed, train, masked, validation, report, stopped
        )
        results.append(VariantResult.of(variant, seed, result))
        curves[(variant, seed)] = result.curves
        result.model.close()
        write_tables(run.run_dir, results, curves)
        if result.cancelled:
            break
    status = (
        "finished"
        if len(results) == len(jobs) and not any(r.status == "cancelled" for r in results)
        else "cancelled"
    )
    if curves:
        plot_learning_curves(curves, run.plot_path, title=_title(config))
    return dataclasses.replace(
        run, status=status, finished_utc=_utc_now(), results=tuple(results), curves=curves
    )


def _title(config: ExperimentConfig) -> str:
    return (
        f"{Path(config.dataset).name or config.dataset}: {config.architecture} Trainees, "
        f"{config.epochs} epochs (switch after {config.switch_epoch}), seeds {list(config.seeds)}"
    )


def load_splits(
    config: ExperimentConfig, report: Callable[[Progress], None] = lambda _: None
) -> tuple[SplitArrays, SplitArrays]:
    """The run's training and validation subsets (its loader, caps and subset seed)."""
    report(Progress("loading", 0, 2, f"loading {config.dataset}"))
    loader = open_dataset(config.dataset, size=config.size_px, rgb=config.rgb)
    splits = []
    for k, (split, count) in enumerate(
        ((config.train_split, config.n_train), (config.val_split, config.n_val))
    ):
        rng = np.random.default_rng(config.subset_seed)
        arrays = load_arrays(loader, split, max_count=count, rng=rng)
        if len(arrays.ids) == 0:
            raise AnalysisError(
                f"split {split!r} of {config.dataset!r} gave no images; choose another split."
            )
        splits.append(arrays)
        report(Progress("loading", k + 1, 2, f"loaded {len(arrays.ids)} {split} images"))
    return splits[0], splits[1]


def _masked_images(
    config: ExperimentConfig, run_dir: Path, train: SplitArrays, report: Callable[[Progress], None]
) -> dict[str, NDArray[np.float32]]:
    """The training images masked by each method the variants need (relevance computed once, cached)."""
    methods = sorted({m for m in (variant_parts(v)[0] for v in config.variants) if m is not None})
    if not methods:
        return {}
    cache = Path(config.cache_dir) if config.cache_dir else run_dir.parent / "relevance_cache"
    total = len(train.ids)
    maps = compute_relevance_maps(
        config.trainer,
        train.images,
        train.ids,
        analyzer=config.analyzer,
        cache_dir=cache,
        on_batch=lambda done, n: report(Progress("relevance", done, n, f"relevance maps {done}/{n}")),
    )
    report(Progress("relevance", total, total, f"relevance maps ready ({maps.cache_file})"))
    shape = (train.images.shape[1], train.images.shape[2])
    options: dict[str, dict[str, Any]] = {
        "negative": {"fraction": config.negative_fraction},
        "mean": {},
        "perceptive": perceptive_options(shape, n_points=config.n_points, angle_deg=config.angle_deg),
    }
    masked = {}
    for k, method in enumerate(methods):
        mask_set = relevance_masks(maps.maps, method, options=options[method])
        masked[method] = np.stack(
            [apply_mask(image, mask) for image, mask in zip(train.images, mask_set.masks, strict=True)]
        ).astype(np.float32)
        kept = float(mask_set.masks.mean())
        report(Progress("masking", k + 1, len(methods), f"{method} masks keep {kept:.1%} of the pixels"))
    return masked


def _train_variant(
    config: ExperimentConfig,
    run_dir: Path,
    variant: str,
    seed: int,
    train: SplitArrays,
    masked: Mapping[str, NDArray[np.float32]],
    validation: SplitArrays,
    report: Callable[[Progress], None],
    stopped: Callable[[], bool],
) -> TraineeResult:
    method, switch = variant_parts(variant)
    masked_split = None if method is None else (masked[method], train.label_indices)
    done = len(config.seeds) * config.variants.index(variant) + config.seeds.index(seed)
    return train_into_run(
        config,
        run_dir,
        variant,
        seed,
        masked_split,
        train,
        validation,
        switch=switch or method is None,
        progress=(done, _n_trainees(config)),
        report=report,
        cancel=stopped,
    )


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
    report: Callable[[Progress], None],
    cancel: Callable[[], bool],
) -> TraineeResult:
    """Train one Trainee of a run with the run's settings; its curves and confusion matrix go to its folder.

    The grid's variants and any further mask source (the GUI's human-gaze Trainees) share this, so every
    Trainee of a run is trained and recorded alike: ``trainees/<variant>-seed<seed>/`` with the curves
    (CSV, TensorBoard) and ``confusion.csv``.

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
        Progress sink and cancel poll, as for :func:`run_experiment`.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5 (switching to the full images).
    """
    folder = Path(run_dir) / "trainees" / f"{variant}-seed{seed}"
    done, total = progress
    with CurveLog(folder, tensorboard=config.tensorboard) as log:

        def on_curve(point: CurvePoint) -> None:
            log.add(point)
            text = f"{variant}, seed {seed}: step {point.step}, val. macro-F1 {point.val_macro_f1:.3f}"
            report(Progress("training", done, total, text, variant, seed, point))

        result = train_trainee(
            masked,
            (train.images, train.label_indices) if switch else None,
            (validation.images, validation.label_indices),
            architecture=config.architecture,
            options=config.options,
            epochs=config.epochs,
            switch_epoch=config.switch_epoch if switch and masked is not None else None,
            batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            eval_every_steps=config.eval_every_steps,
            batch_norm_momentum=config.batch_norm_momentum,
            seed=seed,
            deterministic=config.deterministic,
            on_curve=on_curve,
            cancel=cancel,
        )
    _write_confusion(folder / "confusion.csv", result.confusion)
    return result


def _write_confusion(path: Path, confusion: NDArray[np.int64]) -> None:
    labels = LABELS[: len(confusion)]
    with atomic_write(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *labels])
        for label, row in zip(labels, confusion, strict=True):
            writer.writerow([label, *(int(v) for v in row)])


# --------------------------------------------------------------------------------------------------------
# Run folders
# --------------------------------------------------------------------------------------------------------


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_run_json(run: ExperimentRun) -> None:
    record = {
        "config": run.config.to_dict(),
        "status": run.status,
        "started_utc": run.started_utc,
        "finished_utc": run.finished_utc,
        "error": run.error,
    }
    atomic_write_text(run.run_dir / "run.json", json.dumps(record, indent=2, sort_keys=True) + "\n")


def write_tables(run_dir: str | Path, results: Sequence[VariantResult], curves: Curves) -> None:
    """Write a run's ``results.csv`` (:data:`RESULT_FIELDS`) and ``curves.csv`` (variant, seed, curves)."""
    run_dir = Path(run_dir)
    with atomic_write(run_dir / "results.csv", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_FIELDS)
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in results)
    with atomic_write(run_dir / "curves.csv", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=("variant", "seed", *CURVE_FIELDS))
        writer.writeheader()
        for (variant, seed), points in curves.items():
            writer.writerows({"variant": variant, "seed": seed, **p.as_row()} for p in points)


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
    curves: dict[tuple[str, int], list[CurvePoint]] = {}
    if (folder / "results.csv").is_file():
        with (folder / "results.csv").open(newline="", encoding="utf-8") as handle:
            results = tuple(VariantResult.from_row(row) for row in csv.DictReader(handle))
    if (folder / "curves.csv").is_file():
        with (folder / "curves.csv").open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                curves.setdefault((row["variant"], int(row["seed"])), []).append(CurvePoint.from_row(row))
    return ExperimentRun(
        run_dir=folder,
        config=ExperimentConfig.from_dict(record["config"]),
        status=str(record["status"]),
        started_utc=str(record["started_utc"]),
        finished_utc=str(record.get("finished_utc", "")),
        error=str(record.get("error", "")),
        results=results,
        curves={key: tuple(points) for key, points in curves.items()},
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
    """Per variant, in first-seen order: the number of seeds and the mean and standard deviation over seeds
    of the best, final and mean validation macro-F1 (standard deviation 0 for one seed)."""
    groups: dict[str, list[VariantResult]] = {}
    for result in results:
        groups.setdefault(result.variant, []).append(result)
    rows = []
    for variant, group in groups.items():
        row: dict[str, Any] = {"variant": variant, "seeds": len(group)}
        for name in ("best_val_macro_f1", "final_val_macro_f1", "mean_val_macro_f1"):
            values = np.array([getattr(r, name) for r in group], dtype=np.float64)
            row[name] = float(values.mean())
            row[f"{name}_sd"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


def mean_curves(curves: Curves) -> dict[str, dict[str, NDArray[np.float64]]]:
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


#: Line colour per masking method and line style per switch, as in RBDM Figure 10.
_COLOURS: Final = {"none": "black", "negative": "tab:blue", "mean": "tab:orange", "perceptive": "tab:green"}


def plot_learning_curves(curves: Curves, path: str | Path, *, title: str = "") -> Path:
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
            "color": _COLOURS.get(method, "tab:red"),
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
