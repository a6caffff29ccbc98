"""The Experiments form without Qt: its values, the run they launch, and a grid's progress in words.

The Experiments screen (:mod:`rbdm_gui.screens.experiment_view`) shows and edits a dict of plain values
(:data:`FORM_DEFAULTS` names every key); this module turns those values into the
:class:`~rbdm_gui.workflows.experiment_worker.LaunchRequest` of ``rbdm experiment``'s settings
(:func:`form_request`),
a kept run back into values (:func:`form_of_run`), and an
:class:`analysis.experiment.ExperimentProgress` record into what the progress bar and status line say
(:func:`progress_display`). Everything here is tested without Qt.

The form offers what the CLI offers: training-set sizes (``--train-sizes``), seeds (``--seeds``), the mask
sources of :data:`analysis.experiment.MASK_SOURCES` (gaze and fusion with a study, ``--study``), a test
split or the share of the validation images held apart (``--test-split``, ``--test-fraction``),
``--keep-models``, and the engine: ``workers`` (``--workers``: 1 in the worker process, N > 1 a local Ray
instance) and TensorFlow threads per cell (``--cpus-per-cell``). Pressing Run again with the settings of
a cancelled, failed or interrupted run resumes that run's folder: its finished cells are kept.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4–§5.6 and §6.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from analysis.experiment import (
    DEFAULT_TRAINING,
    ExperimentConfig,
    ExperimentProgress,
    ExperimentRun,
    grid_status,
    new_run_dir,
)
from analysis.grid_engine import Engine, resumable_run
from analysis.trainee import TrainingOptions
from analysis.training import ModelCard, card_path
from rbdm_gui.workflows.assets import DEFAULT_TRAINER
from rbdm_gui.workflows.experiment_worker import LaunchRequest, variant_names

__all__ = [
    "FORM_DEFAULTS",
    "FORM_TRAINING_FIELDS",
    "ProgressDisplay",
    "form_of_run",
    "form_of_training",
    "form_request",
    "form_training",
    "parse_seeds",
    "parse_sizes",
    "progress_display",
    "run_name",
    "run_used",
    "sizes_text",
    "trainer_card",
]

_CONFIG: Final[dict[str, Any]] = {f.name: f.default for f in dataclasses.fields(ExperimentConfig)}
_SWITCH = "+switch"

#: The fields of :class:`~analysis.trainee.TrainingOptions` the form shows, under the same keys; the others
#: (batch size, learning rate, batch-normalisation momentum, determinism) keep
#: :data:`~analysis.experiment.DEFAULT_TRAINING`'s values, as ``rbdm experiment`` without those flags.
FORM_TRAINING_FIELDS: Final = ("architecture", "options", "epochs", "switch_epoch", "eval_every_steps")


def form_of_training(training: TrainingOptions) -> dict[str, Any]:
    """The form's values of ``training`` (the keys of :data:`FORM_TRAINING_FIELDS`)."""
    values = training.to_dict()
    return {key: values[key] for key in FORM_TRAINING_FIELDS}


def form_training(values: Mapping[str, Any]) -> TrainingOptions:
    """The :class:`~analysis.trainee.TrainingOptions` of the form's ``values``: its fields from the form
    (missing ones, and those the form does not show, from :data:`~analysis.experiment.DEFAULT_TRAINING`).

    Raises
    ------
    ValueError
        With :class:`~analysis.trainee.TrainingOptions`' message for a value out of range.
    """
    shown = {key: values[key] for key in FORM_TRAINING_FIELDS if key in values}
    return dataclasses.replace(DEFAULT_TRAINING, **shown)


#: The form of a first session: every key of the form's values and its default (the config's own
#: defaults where the form shows a config field, :data:`~analysis.experiment.DEFAULT_TRAINING`'s for the
#: training, :class:`~analysis.grid_engine.Engine`'s for the engine).
FORM_DEFAULTS: Final[Mapping[str, Any]] = {
    "trainer": str(DEFAULT_TRAINER),
    "dataset": "synthetic:n=50",
    "train_split": _CONFIG["train_split"],
    "val_split": _CONFIG["val_split"],
    "n_train": _CONFIG["n_train"],
    "n_val": _CONFIG["n_val"],
    "methods": ["none", "negative", "mean", "perceptive"],
    "study": "",
    "masked": True,
    "switch": True,
    **form_of_training(DEFAULT_TRAINING),
    "seeds": ", ".join(str(s) for s in _CONFIG["seeds"]),
    "train_sizes": "",
    "test_split": "",
    "test_fraction": _CONFIG["test_fraction"],
    "keep_models": _CONFIG["keep_models"],
    "workers": Engine().workers,
    "cpus_per_cell": Engine().cpus_per_cell,
}


def trainer_card(path: Path) -> ModelCard | None:
    """The Trainer's model card (input size, scores), or None when it has none."""
    try:
        return ModelCard.from_json(card_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def parse_seeds(text: str) -> tuple[int, ...]:
    """Seeds from the form: different whole numbers separated by commas.

    Raises
    ------
    ValueError
        With a message for the user.
    """
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError as err:
        raise ValueError(
            f"Seeds must be whole numbers separated by commas, e.g. '0, 1, 2'; got {text!r}."
        ) from err
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"Give one or more different seeds, e.g. '0, 1, 2'; got {text!r}.")
    return seeds


def parse_sizes(text: str) -> tuple[int | None, ...]:
    """Training-set sizes from the form: whole numbers ≥ 1 or 'all', separated by commas; empty: none.

    Raises
    ------
    ValueError
        With a message for the user.
    """
    sizes: list[int | None] = []
    for part in (p.strip() for p in text.replace(";", ",").split(",")):
        if not part:
            continue
        if part.lower() == "all":
            sizes.append(None)
        elif part.isdigit() and int(part) > 0:
            sizes.append(int(part))
        else:
            raise ValueError(
                f"Training-set sizes are whole numbers or 'all', e.g. '500, 2000, all'; got {text!r}."
            )
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"Give each training-set size once; got {text!r}.")
    return tuple(sizes)


def sizes_text(sizes: Sequence[int | None]) -> str:
    """The form's text of training-set sizes: ``"500, 2000, all"``."""
    return ", ".join("all" if s is None else str(s) for s in sizes)


def run_name(dataset: str) -> str:
    """A folder-safe name part from the dataset spec: ``synthetic-n-50``, ``FER2013``."""
    base = Path(dataset).name or dataset
    cleaned = "".join(ch if ch.isalnum() else "-" for ch in base).strip("-")
    return cleaned[:40] or "experiment"


def form_request(values: Mapping[str, Any], *, runs_dir: Path) -> LaunchRequest:
    """The run the form's ``values`` describe: in the runs folder's unfinished run of the same settings
    (resumed) or a fresh folder.

    Parameters
    ----------
    values : mapping
        The form's values (the keys of :data:`FORM_DEFAULTS`; missing ones take their default).
    runs_dir : Path
        Where runs are kept.

    Raises
    ------
    ValueError
        With a message for the user when the form is incomplete or inconsistent.
    """
    values = {**FORM_DEFAULTS, **values}
    grid, gaze = variant_names(values["methods"], masked=values["masked"], switch=values["switch"])
    if not grid:
        raise ValueError(
            "Choose 'no mask' or a relevance mask as well: the gaze Trainees are compared with them."
            if gaze
            else "Choose at least one masking method, or 'no mask'."
        )
    trainer = Path(values["trainer"]).expanduser()
    if not trainer.is_file():
        raise ValueError(f"No Trainer model at {trainer}. Train one with 'rbdm train-trainer'.")
    needs_study = bool(gaze) or any(v.removesuffix(_SWITCH) == "fusion" for v in grid)
    study = str(values["study"]).strip() if needs_study else None
    if study is not None and not Path(study).expanduser().is_file():
        raise ValueError(
            f"No study file at {study!r}: gaze and fusion masks need a study with recorded fixations."
        )
    study = None if study is None else str(Path(study).expanduser())
    config = _config(values, trainer, grid, study)
    name = run_name(values["dataset"])
    request = LaunchRequest(
        config,
        "",
        study=study,
        gaze_variants=gaze,
        workers=int(values["workers"]),
        cpus_per_cell=int(values["cpus_per_cell"]),
    )
    folder = resumable_run(runs_dir, request.run_config, name=name) or new_run_dir(runs_dir, name=name)
    return dataclasses.replace(request, run_dir=str(folder))


def _config(
    values: Mapping[str, Any], trainer: Path, grid: tuple[str, ...], study: str | None
) -> ExperimentConfig:
    card = trainer_card(trainer)
    shape = card.input_shape if card is not None else (_CONFIG["size_px"], _CONFIG["size_px"], 1)
    test_split = str(values["test_split"]).strip() or None
    return ExperimentConfig(
        dataset=values["dataset"],
        trainer=str(trainer),
        size_px=int(shape[0]),
        rgb=shape[2] == 3,
        train_split=values["train_split"],
        val_split=values["val_split"],
        n_train=values["n_train"] or None,
        n_val=values["n_val"] or None,
        variants=grid,
        seeds=parse_seeds(str(values["seeds"])),
        train_sizes=parse_sizes(str(values["train_sizes"])),
        test_split=test_split,
        test_fraction=float(values["test_fraction"]),
        keep_models=bool(values["keep_models"]),
        gaze_study=study if any(v.removesuffix(_SWITCH) == "fusion" for v in grid) else None,
        training=form_training(values),
    )


def run_used(run: ExperimentRun) -> dict[str, Any]:
    """The ``used`` record of a run's ``run.json`` (images per split really used; empty for old runs)."""
    try:
        record = json.loads((run.run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    used = record.get("used")
    return dict(used) if isinstance(used, dict) else {}


def form_of_run(run: ExperimentRun) -> dict[str, Any]:
    """The form values that launch ``run`` again (gaze Trainees from its ``gaze.json``).

    Engine settings (workers, threads per cell) are not part of a run: the form keeps its own.
    """
    config = run.config
    gaze: dict[str, Any] = {}
    gaze_file = run.run_dir / "gaze.json"
    if gaze_file.is_file():
        gaze = json.loads(gaze_file.read_text(encoding="utf-8"))
    gaze_variants = list(gaze.get("variants", []))
    variants = [*(v for v in config.variants if v not in gaze_variants), *gaze_variants]
    methods = {v.removesuffix(_SWITCH) for v in variants}
    values = {key: value for key, value in config.to_dict().items() if key in FORM_DEFAULTS}
    values.update(form_of_training(config.training))
    values.update(
        methods=sorted(methods),
        study=gaze.get("study", "") or config.gaze_study or "",
        masked=any(not v.endswith(_SWITCH) and v != "none" for v in variants) or methods <= {"none"},
        switch=any(v.endswith(_SWITCH) for v in variants),
        n_train=config.n_train or 0,
        n_val=config.n_val or 0,
        seeds=", ".join(str(s) for s in config.seeds),
        train_sizes=sizes_text(config.train_sizes),
        test_split=config.test_split or "",
    )
    used = run_used(run)
    for key in ("n_train", "n_val"):  # what the run really used, where it said
        if isinstance(used.get(key), int):
            values[key] = used[key]
    return values


@dataclass(frozen=True, slots=True)
class ProgressDisplay:
    """What the Experiments screen shows of a progress record.

    Parameters
    ----------
    fraction : float or None
        Share of the grid's cells done (0–1) for the progress bar; None: a busy bar (loading images,
        computing relevance maps, masking).
    bar_text : str
        The bar's text: ``"3/8 cells done, 2 running, 0 failed, ETA 4 min"`` while training.
    status_text : str
        The line under it: the latest curve point, or the stage's message.
    """

    fraction: float | None
    bar_text: str
    status_text: str


def progress_display(progress: ExperimentProgress) -> ProgressDisplay:
    """The progress bar and status line of ``progress`` (cells done / running / failed and ETA)."""
    if progress.stage == "training" and progress.total > 0:
        bar = grid_status(
            progress.done, progress.running, progress.failed, progress.total, eta_s=progress.eta_s
        )
        status = progress.message
        if progress.point is not None and progress.variant is not None:
            size = "" if progress.train_size is None else f", {progress.train_size} images"
            status = (
                f"{progress.variant}, seed {progress.seed}{size}: step {progress.point.step}, "
                f"val. macro-F1 {progress.point.val_macro_f1:.3f}"
            )
        return ProgressDisplay(min(1.0, max(0.0, progress.done / progress.total)), bar, status)
    return ProgressDisplay(None, progress.stage, progress.message)
