"""The model commands of ``rbdm``: Trainer, relevance maps, masked datasets, Trainee, the experiment.

- ``rbdm train-trainer`` (RBDM §5.1): trains a Trainer, writes a ``.keras`` file and its JSON card.
- ``rbdm saliency`` (§5.2): computes the Trainer's relevance maps of a split into the disk cache.
- ``rbdm mask`` (§5.4, §5.5): writes a masked copy of a dataset with one method, resumable.
- ``rbdm train-trainee`` (§5.5): trains a Trainee on a masked dataset, optionally switching to the originals.
- ``rbdm experiment`` (§6): Trainee variants × seeds × training-set sizes, with report.md: learning-speed
  measures, confidence intervals, paired tests against ``none`` and verdicts.
- ``rbdm evaluate``: any model on any split: accuracy, macro-F1, per-class F1, confusion matrix, CSV.

Each command is an ``add_<name>(parser)`` / ``cmd_<name>(args)`` pair registered in :mod:`rbdm_gui.cli.main`;
everything numeric happens in :mod:`analysis`. Study files are read here, at the edge, through
:class:`tracking.store.SessionStore`.
"""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.files import atomic_write_text
from rbdm_gui.workflows.assets import DEFAULT_TRAINER

if TYPE_CHECKING:
    from analysis.datasets import SplitArrays
    from analysis.experiment import ExperimentConfig, ExperimentProgress
    from analysis.trainee import TrainingOptions

__all__ = [
    "add_evaluate",
    "add_experiment",
    "add_mask",
    "add_mask_options",
    "add_saliency",
    "add_train_trainee",
    "add_train_trainer",
    "add_training_options",
    "cmd_evaluate",
    "cmd_experiment",
    "cmd_mask",
    "cmd_saliency",
    "cmd_train_trainee",
    "cmd_train_trainer",
    "command_line",
    "experiment_config",
    "study_fixation_counts",
    "training_options",
]


# --------------------------------------------------------------------------------------------------------
# Shared options
# --------------------------------------------------------------------------------------------------------


def _finish(parser: argparse.ArgumentParser, name: str) -> None:
    """Remember the command's options so that :func:`command_line` can write the full command back."""
    parser.set_defaults(_command=name, _actions=[a for a in parser._actions if a.dest != "help"])


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces ``args``: ``rbdm <command>`` with every option written out."""
    words = ["rbdm", args._command]
    words += [str(getattr(args, a.dest)) for a in args._actions if not a.option_strings]
    for action in (a for a in args._actions if a.option_strings):
        value = getattr(args, action.dest, None)
        flag = next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
        if action.dest == "help" or value is None:
            continue
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(flag if value else "--no-" + flag.removeprefix("--"))
        elif isinstance(action, argparse._StoreTrueAction):
            words.extend([flag] if value else [])
        else:
            words.extend([flag, json.dumps(value) if isinstance(value, (dict, list)) else str(value)])
    return shlex.join(words)


def _add_data(parser: argparse.ArgumentParser, *, default: str, splits: bool = True) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset",
        default=default,
        help=f"dataset spec or folder, e.g. 'synthetic:n=200' or a FER2013 folder (default: {default})",
    )
    group.add_argument("--size", type=int, default=48, help="image size in pixels (default: 48)")
    group.add_argument("--rgb", action="store_true", help="load RGB images instead of grey ones")
    group.add_argument(
        "--subset-seed", type=int, default=0, help="seed of the class-balanced subset draw (default: 0)"
    )
    if splits:
        group.add_argument("--train-split", default="train", help="training split (default: train)")
        group.add_argument("--val-split", default="validation", help="validation split (default: validation)")
        group.add_argument("--max-train", type=int, default=None, help="at most this many training images")
        group.add_argument("--max-val", type=int, default=None, help="at most this many validation images")


def add_training_options(parser: argparse.ArgumentParser, trainee: TrainingOptions | None = None) -> None:
    """The training options: ``--architecture --options --epochs --batch-size --learning-rate --seed
    --deterministic``, and with ``trainee`` (a Trainee's, RBDM §5.5) ``--switch-epoch --eval-every
    --batch-norm-momentum`` too, every default read from ``trainee`` (:func:`training_options` reads them
    back). Without it (the Trainer's), architecture, epochs, batch size and learning rate default to None:
    ``--preset`` fills them.
    """
    from analysis.trainee import TrainingOptions

    defaults = trainee or TrainingOptions()
    group = parser.add_argument_group("training (RBDM §5.1, §5.5: Adam 0.001, batches of 32)")

    def shown(value: object) -> str:
        return "default: the preset's" if trainee is None else f"default: {value}"

    group.add_argument(
        "--architecture",
        default=defaults.architecture,
        help="'small_cnn' or a tf.keras.applications name such as MobileNetV2 "
        f"({shown(defaults.architecture)})",
    )
    group.add_argument(
        "--options",
        type=_json_object,
        default=None,
        help="builder options as JSON, e.g. '{\"alpha\": 0.35}' (default: the architecture's)",
    )
    group.add_argument(
        "--epochs", type=int, default=defaults.epochs, help=f"epochs ({shown(defaults.epochs)})"
    )
    group.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help=f"images per step ({shown(defaults.batch_size)})",
    )
    group.add_argument(
        "--learning-rate",
        type=float,
        default=defaults.learning_rate,
        help=f"Adam's rate ({shown(defaults.learning_rate)})",
    )
    group.add_argument("--seed", type=int, default=0, help="seed of weights and batch order (default: 0)")
    group.add_argument(
        "--deterministic",
        action=argparse.BooleanOptionalAction,
        default=defaults.deterministic,
        help="reproducible runs: seeded weights, deterministic kernels (RBDM §5.6; default: "
        f"{'on' if defaults.deterministic else 'off'})",
    )
    if trainee is None:
        parser.set_defaults(architecture=None, epochs=None, batch_size=None, learning_rate=None)
        return
    switch = trainee.switch_epoch
    group.add_argument(
        "--switch-epoch",
        type=int,
        default=switch,
        help="last epoch on the masked images, then the originals (RBDM §5.5; default: "
        f"{'no switch' if switch is None else switch})",
    )
    group.add_argument(
        "--eval-every",
        type=int,
        default=trainee.eval_every_steps,
        help=f"steps between curve points (default: {trainee.eval_every_steps})",
    )
    momentum = "keep" if trainee.batch_norm_momentum is None else str(trainee.batch_norm_momentum)
    group.add_argument(
        "--batch-norm-momentum",
        default=momentum,
        help="momentum of the Trainee's batch-normalisation layers, or 'keep' for the architecture's "
        f"(default: {momentum}; MobileNetV2's own 0.999 lags ~1,000 steps behind)",
    )


def training_options(args: argparse.Namespace) -> TrainingOptions:
    """The Trainee's :class:`~analysis.trainee.TrainingOptions` of :func:`add_training_options`' flags.

    Raises
    ------
    ValueError
        With the option's name, for a value out of range or a ``--batch-norm-momentum`` that is neither a
        number nor 'keep'.
    """
    from analysis.trainee import TrainingOptions

    return TrainingOptions(
        architecture=args.architecture,
        options=args.options,
        epochs=args.epochs,
        switch_epoch=args.switch_epoch,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        eval_every_steps=args.eval_every,
        batch_norm_momentum=_batch_norm(args),
        deterministic=args.deterministic,
    )


def _json_object(text: str) -> dict[str, Any]:
    """``--options``: a JSON object; anything else is an argparse error that says what was expected."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(
            f"not JSON ({err}); give an object such as '{{\"alpha\": 0.35}}'"
        ) from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"expected a JSON object such as '{{\"alpha\": 0.35}}'; got a {type(value).__name__}: {text!r}"
        )
    return value


def _load_split(args: argparse.Namespace, split: str, max_count: int | None) -> SplitArrays:
    import numpy as np

    from analysis.datasets import load_arrays, open_dataset

    loader = open_dataset(args.dataset, size=args.size, rgb=args.rgb)
    arrays = load_arrays(loader, split, max_count=max_count, rng=np.random.default_rng(args.subset_seed))
    if len(arrays.ids) == 0:
        raise ValueError(f"split {split!r} of {args.dataset!r} holds no images; choose another split.")
    return arrays


def _trainer_path(path: Path | None) -> Path:
    chosen = Path(path) if path is not None else DEFAULT_TRAINER
    if not chosen.is_file():
        raise FileNotFoundError(
            f"no Trainer model at {str(chosen)!r}. Train one with 'rbdm train-trainer --out {chosen}'."
        )
    return chosen


def _bar(total: int, description: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="img", leave=False, dynamic_ncols=True)


# --------------------------------------------------------------------------------------------------------
# rbdm train-trainer
# --------------------------------------------------------------------------------------------------------


#: ``train-trainer`` options a preset fills when they are not given: destination → preset field.
_PRESET_FIELDS = {
    "architecture": "architecture",
    "options": "options",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "augmentation": "augmentation",
    "schedule": "schedule",
    "warmup_fraction": "warmup_fraction",
    "label_smoothing": "label_smoothing",
    "class_weight_power": "class_weight_power",
}


def add_train_trainer(parser: argparse.ArgumentParser) -> None:
    """Options of ``rbdm train-trainer``."""
    from analysis.training import AUGMENTATIONS, SCHEDULES, TRAINER_PRESETS

    _add_data(parser, default="synthetic:n=100")
    add_training_options(parser)
    presets = "; ".join(f"{name}: {preset.summary}" for name, preset in TRAINER_PRESETS.items())
    parser.add_argument(
        "--preset",
        choices=tuple(TRAINER_PRESETS),
        default="paper",
        help=(
            "named recipe that sets architecture, options, epochs, batch size, learning rate, schedule, "
            "augmentation, label smoothing and class weights; any of them given explicitly wins "
            f"(default: paper). {presets}"
        ),
    )
    parser.add_argument(
        "--augmentation",
        choices=tuple(AUGMENTATIONS),
        default=None,
        help="the paper's augmentation (rotation, shift, zoom, brightness, flips), a light one, or none "
        "(default: the preset's; paper)",
    )
    parser.add_argument(
        "--schedule", choices=SCHEDULES, default=None, help="learning-rate schedule (default: the preset's)"
    )
    parser.add_argument(
        "--warmup-fraction", type=float, default=None, help="share of warm-up steps of the cosine schedule"
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=None,
        help="label smoothing in [0, 1) (default: the preset's)",
    )
    parser.add_argument(
        "--class-weight-power",
        type=float,
        default=None,
        help="exponent of the class weights: 1 the paper's, 0.5 milder, 0 none (default: the preset's)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("out/trainer.keras"), help="model file (default: out/trainer.keras)"
    )
    _finish(parser, "train-trainer")


def _resolve_preset(args: argparse.Namespace) -> argparse.Namespace:
    """A copy of ``train-trainer``'s arguments with every recipe option not given taken from ``--preset``."""
    from analysis.training import TRAINER_PRESETS

    preset = TRAINER_PRESETS[args.preset]
    resolved = argparse.Namespace(**vars(args))
    for dest, name in _PRESET_FIELDS.items():
        if getattr(resolved, dest, None) is None:
            value = getattr(preset, name)
            setattr(resolved, dest, dict(value) if name == "options" else value)
    return resolved


def cmd_train_trainer(args: argparse.Namespace) -> int:
    """Train the Trainer, keep its best epoch, write ``--out`` and its JSON card."""
    from analysis.training import AUGMENTATIONS, save_trained, train_trainer

    if Path(args.out).suffix != ".keras":
        raise ValueError(f"--out must end in '.keras'; got {str(args.out)!r}.")
    args = _resolve_preset(args)
    train = _load_split(args, args.train_split, args.max_train)
    validation = _load_split(args, args.val_split, args.max_val)
    print(
        f"training {args.architecture} (preset {args.preset}) on {len(train.ids)} images, "
        f"validating on {len(validation.ids)}"
    )

    def on_epoch(record: Any) -> None:
        print(
            f"epoch {record.epoch:3d}  loss {record.loss:.4f}  val. loss {record.val_loss:.4f}  "
            f"val. acc. {record.val_accuracy:.3f}  val. macro-F1 {record.val_macro_f1:.3f}  "
            f"({record.duration_s:.1f} s)",
            flush=True,
        )

    result = train_trainer(
        train.images,
        train.label_indices,
        validation.images,
        validation.label_indices,
        architecture=args.architecture,
        options=args.options,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        augmentation=AUGMENTATIONS[args.augmentation],
        seed=args.seed,
        deterministic=args.deterministic,
        schedule=args.schedule,
        warmup_fraction=args.warmup_fraction,
        label_smoothing=args.label_smoothing,
        class_weight_power=args.class_weight_power,
        on_epoch=on_epoch,
    )
    data = {
        "dataset": str(args.dataset),
        "train_split": args.train_split,
        "val_split": args.val_split,
        "n_train": len(train.ids),
        "n_val": len(validation.ids),
        "size_px": args.size,
        "rgb": bool(args.rgb),
        "subset_seed": args.subset_seed,
        "command": command_line(args),
    }
    card = save_trained(args.out, result, data=data)
    print(
        f"best epoch {result.best_epoch}: val. macro-F1 {card.scores['val_macro_f1']:.3f}, "
        f"val. accuracy {card.scores['val_accuracy']:.3f}"
    )
    print(f"wrote {args.out} and {Path(args.out).with_suffix('.json')}")
    return 0


# --------------------------------------------------------------------------------------------------------
# rbdm saliency
# --------------------------------------------------------------------------------------------------------


def _add_relevance(parser: argparse.ArgumentParser) -> None:
    from analysis.saliency import DEFAULT_ANALYZER

    group = parser.add_argument_group("relevance (RBDM §5.2)")
    group.add_argument(
        "--model",
        type=Path,
        default=None,
        help=f"Trainer .keras file (default: assets/{DEFAULT_TRAINER.name})",
    )
    group.add_argument(
        "--analyzer", default=DEFAULT_ANALYZER, help=f"relevance analyzer (default: {DEFAULT_ANALYZER})"
    )
    group.add_argument(
        "--cache-dir",
        type=Path,
        default=Path("out/relevance"),
        help="where relevance maps are cached (default: out/relevance)",
    )
    group.add_argument(
        "--allow-untested-layers",
        action="store_true",
        help="run the analyzer on layers iNNvestigate has not validated for it",
    )


def _relevance(args: argparse.Namespace, arrays: SplitArrays, description: str) -> Any:
    from analysis.models import check_labels_fit
    from analysis.saliency import compute_relevance_maps
    from tracking.study import trainer_info

    model = _trainer_path(args.model)
    check_labels_fit(len(trainer_info(model).labels), arrays.label_indices, model=str(model))
    with _bar(len(arrays.ids), description) as bar:
        return compute_relevance_maps(
            model,
            arrays.images,
            arrays.ids,
            analyzer=args.analyzer,
            cache_dir=args.cache_dir,
            allow_untested_layers=args.allow_untested_layers,
            on_batch=lambda done, _total: bar.update(done - bar.n),
        )


def add_saliency(parser: argparse.ArgumentParser) -> None:
    """Options of ``rbdm saliency``."""
    _add_data(parser, default="synthetic:n=25", splits=False)
    parser.add_argument("--split", default="validation", help="split to explain (default: validation)")
    parser.add_argument("--max-count", type=int, default=None, help="at most this many images")
    _add_relevance(parser)
    _finish(parser, "saliency")


def cmd_saliency(args: argparse.Namespace) -> int:
    """Compute (or reuse) the relevance maps of a split; report where the positive relevance lies."""
    import numpy as np

    arrays = _load_split(args, args.split, args.max_count)
    maps = _relevance(args, arrays, f"relevance ({args.analyzer})")
    state = "read from the cache" if maps.from_cache else "computed"
    print(f"{len(maps.ids)} relevance maps of {args.split} {state}: {maps.cache_file}")
    positive = np.maximum(maps.maps, 0).astype(np.float64)
    totals = positive.sum(axis=(1, 2))
    print(f"maps with positive relevance: {int((totals > 0).sum())} of {len(totals)}")
    if arrays.region_masks is not None and (totals > 0).any():
        inside = (positive * arrays.region_masks).sum(axis=(1, 2))[totals > 0] / totals[totals > 0]
        area = float(arrays.region_masks.mean())
        print(
            f"share of positive relevance inside the ground-truth expression regions: {inside.mean():.3f} "
            f"(the regions cover {area:.3f} of the image: {inside.mean() / area:.1f} × chance)"
        )
    return 0


# --------------------------------------------------------------------------------------------------------
# rbdm mask
# --------------------------------------------------------------------------------------------------------


def add_mask_options(
    parser: argparse.ArgumentParser, *, n_points: int | None, n_points_help: str, study_help: str
) -> None:
    """The mask options of ``rbdm mask`` and ``rbdm experiment`` (RBDM §5.3.2, §5.4): ``--fraction``
    (negative masking), ``--n-points`` and ``--angle-deg`` (perceptive masking), ``--study`` (recorded
    fixations); defaults read from :class:`analysis.experiment.ExperimentConfig`.

    Parameters
    ----------
    n_points : int or None
        ``--n-points``' default (None: the command decides, e.g. from the study).
    n_points_help, study_help : str
        What that default is, and what the command reads the study for.
    """
    from analysis.experiment import ExperimentConfig

    defaults = _field_defaults(ExperimentConfig)
    fraction, angle_deg = defaults["negative_fraction"], defaults["angle_deg"]
    group = parser.add_argument_group("masks (RBDM §5.4)")
    group.add_argument(
        "--fraction", type=float, default=fraction, help=f"negative: share zeroed (default: {fraction:g})"
    )
    group.add_argument(
        "--n-points",
        type=int,
        default=n_points,
        help=f"perceptive: fixations per image (default: {n_points_help})",
    )
    group.add_argument(
        "--angle-deg", type=float, default=angle_deg, help=f"visual span angle (default: {angle_deg:g})"
    )
    group.add_argument("--study", type=Path, default=None, help=study_help)


def _field_defaults(cls: Any) -> dict[str, Any]:
    """A config dataclass's field defaults by name (fields without a plain default left out)."""
    import dataclasses

    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def add_mask(parser: argparse.ArgumentParser) -> None:
    """Options of ``rbdm mask``."""
    from analysis.masked_dataset import DEFAULT_N_POINTS, MASK_METHODS

    parser.add_argument("--method", required=True, choices=MASK_METHODS, help="masking method (RBDM §5.4)")
    _add_data(parser, default="synthetic:n=25", splits=False)
    parser.add_argument("--splits", default="train", help="comma-separated splits to mask (default: train)")
    parser.add_argument("--max-count", type=int, default=None, help="at most this many images per split")
    _add_relevance(parser)
    add_mask_options(
        parser,
        n_points=None,
        n_points_help=f"the --study's mean, else {DEFAULT_N_POINTS}",
        study_help="study file (SQLite) with recorded fixations (gaze, perceptive)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/masked"),
        help="writes <out>/<method>/<split>/<label>/*.png and a manifest (default: out/masked)",
    )
    _finish(parser, "mask")


def cmd_mask(args: argparse.Namespace) -> int:
    """Write (or finish writing) the masked copy of the chosen splits."""
    from analysis.masked_dataset import write_masked_dataset

    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    if not splits:
        raise ValueError("--splits names no split; e.g. --splits train,validation.")
    if args.method == "gaze" and args.study is None:
        raise ValueError("--method gaze needs --study: a study file with recorded fixations.")
    root = Path(args.out) / args.method
    for split in splits:
        arrays = _load_split(args, split, args.max_count)
        mask_set, provenance = _mask_set(args, arrays, split)
        with _bar(len(mask_set.positions), f"{args.method} {split}") as bar:
            result = write_masked_dataset(
                arrays,
                mask_set,
                root,
                split=split,
                source=str(args.dataset),
                provenance=provenance,
                on_image=lambda done, _total: bar.update(done - bar.n),
            )
        print(
            f"{split}: wrote {result.written}, kept {result.reused} from before; masks keep "
            f"{result.mean_kept_fraction:.1%} of the pixels on average"
        )
        if result.missing:
            shown = ", ".join(result.missing[:5]) + (" …" if len(result.missing) > 5 else "")
            print(f"{split}: {len(result.missing)} images have no fixations and were skipped: {shown}")
    print(f"masked dataset: {root} (manifest {root / 'manifest.csv'})")
    return 0


def _mask_set(args: argparse.Namespace, arrays: SplitArrays, split: str) -> tuple[Any, dict[str, Any]]:
    from analysis.masked_dataset import gaze_masks, perceptive_options, relevance_masks
    from analysis.saliency import file_sha256

    shape = (arrays.images.shape[1], arrays.images.shape[2])
    if args.method == "gaze":
        from tracking.study import read_image_fixations

        viewings = read_image_fixations(args.study, shape, angle_deg=args.angle_deg)
        return gaze_masks(viewings, arrays.ids, shape), {"study": str(Path(args.study).resolve())}
    options: dict[str, Any] = {}
    if args.method == "negative":
        options = {"fraction": args.fraction}
    elif args.method == "perceptive":
        geometry, rect = _study_screen(args.study) if args.study is not None else (None, None)
        options = perceptive_options(
            shape, n_points=_n_points(args), geometry=geometry, stimulus_rect=rect, angle_deg=args.angle_deg
        )
    maps = _relevance(args, arrays, f"relevance {split}")
    model = _trainer_path(args.model)
    provenance = {
        "model": str(model.resolve()),
        "model_sha256": file_sha256(model),
        "analyzer": args.analyzer,
    }
    return relevance_masks(maps.maps, args.method, options=options), provenance


def _n_points(args: argparse.Namespace) -> int:
    from analysis.masked_dataset import DEFAULT_N_POINTS
    from analysis.perception import mean_fixation_count

    if args.n_points is not None:
        return int(args.n_points)
    if args.study is not None:
        return mean_fixation_count(study_fixation_counts(args.study))
    return DEFAULT_N_POINTS


def _sessions(study: Path) -> Any:
    from tracking.store import SessionStore

    if not Path(study).is_file():
        raise FileNotFoundError(f"no study file at {str(study)!r}. Record a labeling session first.")
    return SessionStore.open_read_only(study)  # reading a study never initialises or migrates it


def _study_screen(study: Path) -> tuple[Any, Any]:
    """The screen and stimulus rectangle of a study's first session."""
    from tracking.study import session_stimulus_rect

    with _sessions(Path(study)) as store:
        sessions = store.sessions()
    if not sessions:
        raise ValueError(f"the study {str(study)!r} has no sessions; record one first.")
    return sessions[0].geometry, session_stimulus_rect(sessions[0])


def study_fixation_counts(study: str | Path) -> list[int]:
    """Fixations on the image per (session, trial) of a study file: the input of ``mean_fixation_count``.

    Fixations beside the image do not count, as in ``rbdm compare`` (:class:`tracking.study.StudyComparison`).
    Trials marked bad in the live monitor are left out (:func:`tracking.study.read_image_fixations`).
    """
    from tracking.study import read_image_fixations

    viewings = read_image_fixations(study, _COUNTING_SHAPE)
    return [len(viewing.fixations_image_px) for seen in viewings.values() for viewing in seen]


#: Any image grid serves to tell fixations on the image from those beside it.
_COUNTING_SHAPE = (64, 64)


def _batch_norm(args: argparse.Namespace) -> float | None:
    text = str(args.batch_norm_momentum).strip().lower()
    if text == "keep":
        return None
    try:
        return float(text)
    except ValueError as err:
        raise ValueError(f"--batch-norm-momentum takes a number or 'keep'; got {text!r}.") from err


# --------------------------------------------------------------------------------------------------------
# rbdm train-trainee
# --------------------------------------------------------------------------------------------------------


def add_train_trainee(parser: argparse.ArgumentParser) -> None:
    """Options of ``rbdm train-trainee``: the training options default to
    :class:`~analysis.trainee.TrainingOptions`' (no switch unless ``--switch-epoch`` is given)."""
    from analysis.trainee import TrainingOptions

    _add_data(parser, default="synthetic:n=25")
    parser.add_argument(
        "--masked",
        type=Path,
        default=None,
        help="masked dataset folder from 'rbdm mask' (<out>/<method>); without it: the unmasked baseline",
    )
    add_training_options(parser, TrainingOptions())
    parser.add_argument("--no-tensorboard", action="store_true", help="write the CSV curves only")
    parser.add_argument(
        "--out", type=Path, default=Path("out/trainee"), help="output folder (default: out/trainee)"
    )
    _finish(parser, "train-trainee")


def cmd_train_trainee(args: argparse.Namespace) -> int:
    """Train one Trainee; write curves (CSV, TensorBoard, PNG), confusion matrix, model and settings."""
    from analysis.experiment import plot_learning_curves
    from analysis.masked_dataset import load_masked_images
    from analysis.models import save_model_file
    from analysis.trainee import CurveLog, train_trainee

    if args.switch_epoch is not None and args.masked is None:
        raise ValueError("--switch-epoch needs --masked: the masked images to start with.")
    training = training_options(args)
    train = _load_split(args, args.train_split, args.max_train)
    validation = _load_split(args, args.val_split, args.max_val)
    original = (train.images, train.label_indices)
    masked = None
    if args.masked is not None:
        images, positions = load_masked_images(args.masked, train.ids)
        masked = (images, train.label_indices[positions])
        print(f"{len(positions)} of {len(train.ids)} training images have a masked copy in {args.masked}")
    out = Path(args.out)
    variant = _variant_name(args)
    with CurveLog(out, tensorboard=not args.no_tensorboard) as log:
        result = train_trainee(
            masked,
            original if masked is None or args.switch_epoch is not None else None,
            (validation.images, validation.label_indices),
            training=training,
            seed=args.seed,
            on_curve=_printing(log.add),
        )
    _write_trainee_outputs(out, result, args, variant)
    plot_learning_curves({(variant, args.seed): result.curves}, out / "learning_curves.png", title=variant)
    save_model_file(result.model, out / "trainee.keras")
    best = result.best
    print(f"best val. macro-F1 {best.val_macro_f1:.3f} at step {best.step} (epoch {best.epoch})")
    print(f"wrote {out}/curves.csv, confusion.csv, trainee.json, trainee.keras, learning_curves.png")
    return 0


def _variant_name(args: argparse.Namespace) -> str:
    if args.masked is None:
        return "none"
    header = Path(args.masked) / "masked_dataset.json"
    method = json.loads(header.read_text(encoding="utf-8"))["method"] if header.is_file() else "masked"
    return f"{method}+switch" if args.switch_epoch is not None else str(method)


def _printing(add: Callable[[Any], None]) -> Callable[[Any], None]:
    def on_curve(point: Any) -> None:
        add(point)
        print(
            f"step {point.step:6d}  epoch {point.epoch:3d}  {point.phase:8s}  loss {point.train_loss:.4f}  "
            f"val. loss {point.val_loss:.4f}  val. macro-F1 {point.val_macro_f1:.3f}",
            flush=True,
        )

    return on_curve


def _write_trainee_outputs(out: Path, result: Any, args: argparse.Namespace, variant: str) -> None:
    from analysis.experiment import write_confusion

    write_confusion(out / "confusion.csv", result.confusion)  # the format of a run's Trainees
    record = {
        "variant": variant,
        "command": command_line(args),
        "dataset": str(args.dataset),
        "masked": None if args.masked is None else str(args.masked),
        "settings": dict(result.settings),
        "best": result.best.as_row(),
        "final": result.final.as_row(),
        "duration_s": result.duration_s,
    }
    atomic_write_text(out / "trainee.json", json.dumps(record, indent=2, sort_keys=True) + "\n")


# --------------------------------------------------------------------------------------------------------
# rbdm experiment
# --------------------------------------------------------------------------------------------------------


def _csv_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _sizes(text: str) -> tuple[int | None, ...]:
    """``--train-sizes``: comma-separated counts, ``all`` for the whole split."""
    sizes: list[int | None] = []
    for part in _csv_list(text):
        if part.lower() == "all":
            sizes.append(None)
            continue
        try:
            sizes.append(int(part))
        except ValueError as err:
            raise ValueError(
                f"--train-sizes takes counts or 'all', e.g. 500,2000,8000,all; got {part!r}."
            ) from err
    return tuple(sizes)


def add_experiment(parser: argparse.ArgumentParser) -> None:
    """Options of ``rbdm experiment``: defaults read from :class:`analysis.experiment.ExperimentConfig` and
    its :data:`~analysis.experiment.DEFAULT_TRAINING`, seeds from :data:`~analysis.experiment.DEFAULT_SEEDS`
    (a study's five)."""
    from analysis.experiment import ALL_VARIANTS, DEFAULT_SEEDS, DEFAULT_TRAINING, VARIANTS, ExperimentConfig
    from analysis.grid_engine import Engine

    defaults, engine = _field_defaults(ExperimentConfig), Engine()
    _add_data(parser, default="synthetic:n=50")
    parser.set_defaults(max_train=defaults["n_train"], max_val=defaults["n_val"])
    parser.add_argument(
        "--train-sizes",
        default=None,
        help="training-set sizes, class-balanced and nested, e.g. 500,2000,8000,all (default: --max-train)",
    )
    parser.add_argument(
        "--test-split",
        default=None,
        help="split scored at each Trainee's best validation step (default: hold part of --val-split apart)",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=defaults["test_fraction"],
        help=f"share of the validation images held apart as test images without --test-split "
        f"(default: {defaults['test_fraction']})",
    )
    parser.add_argument(
        "--trainer",
        type=Path,
        default=None,
        help=f"Trainer .keras file (default: assets/{DEFAULT_TRAINER.name})",
    )
    parser.add_argument(
        "--analyzer",
        default=defaults["analyzer"],
        help=f"relevance analyzer (default: {defaults['analyzer']})",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated variants of {', '.join(ALL_VARIANTS)} (default: the paper's seven)",
    )
    seeds = ",".join(str(s) for s in DEFAULT_SEEDS)
    parser.add_argument(
        "--seeds", default=seeds, help=f"comma-separated seeds, paired across variants (default: {seeds})"
    )
    parser.add_argument(
        "--auc-steps", type=int, default=None, help="K of the AULC (default: the shortest Trainee's steps)"
    )
    parser.add_argument(
        "--threshold-share",
        type=float,
        default=defaults["threshold_share"],
        help=f"steps to this share of none's best val. macro-F1 (default: {defaults['threshold_share']})",
    )
    parser.add_argument(
        "--keep-models", action="store_true", help="save each Trainee's best.keras and final.keras"
    )
    add_training_options(parser, DEFAULT_TRAINING)
    add_mask_options(
        parser,
        n_points=defaults["n_points"],
        n_points_help=str(defaults["n_points"]),
        study_help="study file whose fixations make the 'gaze' and 'fusion' masks (RBDM §6, §7)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="relevance cache (default: <out>/relevance_cache)"
    )
    parser.add_argument("--no-tensorboard", action="store_true", help="write CSV curves only")
    parser.add_argument(
        "--out", type=Path, default=Path("out/experiments"), help="runs folder (default: out/experiments)"
    )
    parser.add_argument("--name", default="experiment", help="run folder name suffix (default: experiment)")
    parser.add_argument(
        "--workers",
        type=int,
        default=engine.workers,
        help="cells at a time as tasks on a local Ray instance with this many CPUs (1: one after the other "
        f"in this process; default: {engine.workers})",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="run the cells on this Ray cluster instead ('ray start --head' prints it; 'auto': the one "
        "started on this machine)",
    )
    parser.add_argument(
        "--cpus-per-cell",
        type=int,
        default=engine.cpus_per_cell,
        help=f"CPUs and TensorFlow threads per cell, on every engine: curves are identical across engines "
        f"at equal threads per cell (default: {engine.cpus_per_cell})",
    )
    _finish(parser, "experiment")


def experiment_config(args: argparse.Namespace) -> ExperimentConfig:
    """The :class:`~analysis.experiment.ExperimentConfig` of ``rbdm experiment``'s options (equal for equal
    options, which is how a re-run finds the unfinished run to resume)."""
    from analysis.experiment import ExperimentConfig

    return ExperimentConfig(
        dataset=str(args.dataset),
        trainer=str(_trainer_path(args.trainer)),
        size_px=args.size,
        rgb=bool(args.rgb),
        train_split=args.train_split,
        val_split=args.val_split,
        n_train=args.max_train,
        n_val=args.max_val,
        subset_seed=args.subset_seed,
        analyzer=args.analyzer,
        variants=_csv_list(args.variants),
        seeds=tuple(int(s) for s in _csv_list(args.seeds)),
        training=training_options(args),
        negative_fraction=args.fraction,
        n_points=args.n_points,
        angle_deg=args.angle_deg,
        cache_dir=None if args.cache_dir is None else str(args.cache_dir),
        tensorboard=not args.no_tensorboard,
        train_sizes=_sizes(args.train_sizes or ""),
        test_split=args.test_split,
        test_fraction=args.test_fraction,
        auc_steps=args.auc_steps,
        threshold_share=args.threshold_share,
        keep_models=bool(args.keep_models),
        gaze_study=None if args.study is None else str(args.study),
    )


def cmd_experiment(args: argparse.Namespace) -> int:
    """Run the grid (in this process or on Ray; resuming an unfinished run of the same settings in --out);
    print the results table and any failed cell; write the run folder."""
    from analysis.experiment import load_run, new_run_dir
    from analysis.grid_engine import Engine, limit_tensorflow_threads, resumable_run, run_grid

    config = experiment_config(args)
    engine = Engine(workers=args.workers, address=args.ray_address, cpus_per_cell=args.cpus_per_cell)
    if not engine.on_ray:  # this process trains: as many threads as a Ray task would get
        limit_tensorflow_threads(engine.cpus_per_cell)
    viewings = _experiment_viewings(config)
    resumed = resumable_run(args.out, config, name=args.name)
    run_dir = resumed or new_run_dir(args.out, name=args.name)
    print(f"experiment run folder: {run_dir}{' (resuming its missing cells)' if resumed else ''}")
    (Path(args.out)).mkdir(parents=True, exist_ok=True)
    progress = _ProgressPrinter()
    try:
        outcome = run_grid(config, run_dir, engine=engine, viewings=viewings, on_progress=progress)
    except KeyboardInterrupt:  # run.json says cancelled (analysis.experiment.record_interruption)
        progress.close()
        if not (Path(run_dir) / "run.json").is_file():
            raise
        atomic_write_text(Path(run_dir) / "command.txt", command_line(args) + "\n")
        kept = len(load_run(run_dir).results)
        print(f"interrupted: {kept} finished cells kept in {run_dir}; run the same command to train the rest")
        return 130
    finally:
        progress.close()
    run = outcome.run
    atomic_write_text(run.run_dir / "command.txt", command_line(args) + "\n")
    _print_results(run)
    for failure in outcome.failures:
        cell = failure.cell
        print(f"FAILED {cell.variant}, seed {cell.seed}, size {cell.train_size or 'all'}: {failure.error}")
    print(
        f"wrote {run.run_dir}/report.md, results.csv, curves.csv, by_variant.csv and figures ({run.status}; "
        f"{len(outcome.trained)} cells trained, {len(outcome.kept)} kept)"
    )
    if outcome.failures:
        print("re-run the same command to train the failed cells again; the finished ones are kept")
    return 1 if outcome.failures else 0


def _experiment_viewings(config: Any) -> dict[str, Any] | None:
    """The study's fixations in the images' pixels when a variant needs gaze; None otherwise."""
    from analysis.experiment import variant_parts

    sources = {variant_parts(v)[0] for v in config.variants}
    if not sources & {"gaze", "fusion"}:
        return None
    if config.gaze_study is None:
        raise ValueError(
            "the 'gaze' and 'fusion' variants need --study, a study file with recorded fixations."
        )
    from tracking.study import read_image_fixations

    shape = (config.size_px, config.size_px)
    return dict(read_image_fixations(config.gaze_study, shape, angle_deg=config.angle_deg))


class _ProgressPrinter:
    """Shows :class:`analysis.experiment.ExperimentProgress` records as one tqdm bar per stage."""

    def __init__(self) -> None:
        self._stage = ""
        self._bar: Any = None

    def __call__(self, progress: ExperimentProgress) -> None:
        from tqdm import tqdm

        if progress.stage != self._stage:
            self.close()
            self._stage = progress.stage
            self._bar = tqdm(total=progress.total, desc=progress.stage, leave=True, dynamic_ncols=True)
        if self._bar is not None:
            self._bar.update(max(0, progress.done - self._bar.n))
            self._bar.set_postfix_str(progress.message, refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _print_results(run: Any) -> None:
    """Per training-set size: AULC and best validation macro-F1 (mean over seeds) and the verdict."""
    from analysis.experiment_report import compare_variants, seed_measures

    measures = seed_measures(
        run.results,
        run.curves_by_size,
        auc_steps=run.config.auc_steps,
        threshold_share=run.config.threshold_share,
    )
    for row in compare_variants(measures):
        aulc, best = row.means.get("aulc"), row.means.get("best_val_macro_f1")
        numbers = f"AULC {aulc.mean:.3f}, best val. macro-F1 {best.mean:.3f}" if aulc and best else "–"
        print(f"n={row.train_size:<6d} {row.variant:20s} {len(row.seeds)} seed(s)  {numbers}  {row.verdict}")


# --------------------------------------------------------------------------------------------------------
# rbdm evaluate
# --------------------------------------------------------------------------------------------------------


def add_evaluate(parser: argparse.ArgumentParser) -> None:
    """Options of ``rbdm evaluate``."""
    parser.add_argument(
        "model", type=Path, help="model file (.keras): a Trainer, or a Trainee kept by --keep-models"
    )
    parser.add_argument("--dataset", required=True, help="dataset spec or folder, e.g. 'synthetic:n=20'")
    parser.add_argument("--split", default="test", help="split to score (default: test)")
    parser.add_argument(
        "--max-count", type=int, default=None, help="at most this many images, class-balanced (default: all)"
    )
    parser.add_argument("--subset-seed", type=int, default=0, help="seed of that draw (default: 0)")
    parser.add_argument(
        "--csv", type=Path, default=None, help="write the scores here and the confusion matrix beside it"
    )
    _finish(parser, "evaluate")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a model on a split at the model's input size; print and optionally write the scores."""
    import numpy as np

    from analysis.datasets import load_arrays, open_dataset
    from analysis.evaluation import evaluate_model
    from analysis.models import load_model_file

    model = load_model_file(args.model)
    try:
        height, _, channels = model.input_shape
        loader = open_dataset(args.dataset, size=height, rgb=channels == 3)
        rng = np.random.default_rng(args.subset_seed)
        arrays = load_arrays(loader, args.split, max_count=args.max_count, rng=rng)
        if len(arrays.ids) == 0:
            raise ValueError(
                f"split {args.split!r} of {args.dataset!r} holds no images; choose another split."
            )
        evaluation = evaluate_model(model, arrays.images, arrays.label_indices)
    finally:
        model.close()
    print(f"{args.model.name} on {args.dataset} {args.split!r}: {evaluation.n_images} images")
    print(f"accuracy {evaluation.accuracy:.4f}, macro-F1 {evaluation.macro_f1:.4f}")
    print("F1 per class: " + ", ".join(f"{k} {v:.3f}" for k, v in evaluation.per_class_f1.items()))
    labels = list(evaluation.per_class_f1)
    print("confusion (rows true, columns predicted): " + " ".join(labels))
    for label, row in zip(labels, evaluation.confusion, strict=True):
        print(f"  {label:10s} " + " ".join(f"{int(v):4d}" for v in row))
    if args.csv is not None:
        _write_evaluation(args.csv, evaluation)
        print(f"wrote {args.csv} and {_confusion_path(args.csv)}")
    return 0


def _confusion_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}_confusion.csv")


def _write_evaluation(path: Path, evaluation: Any) -> None:
    rows = ["measure,value", f"n_images,{evaluation.n_images}", f"accuracy,{evaluation.accuracy!r}"]
    rows.append(f"macro_f1,{evaluation.macro_f1!r}")
    rows += [f"f1_{label},{value!r}" for label, value in evaluation.per_class_f1.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(rows) + "\n")
    labels = list(evaluation.per_class_f1)
    matrix = ["true \\ predicted," + ",".join(labels)]
    matrix += [
        f"{k}," + ",".join(str(int(v)) for v in row)
        for k, row in zip(labels, evaluation.confusion, strict=True)
    ]
    atomic_write_text(_confusion_path(path), "\n".join(matrix) + "\n")
