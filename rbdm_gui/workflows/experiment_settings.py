"""What the Experiments screen remembers between sessions: its form, typed, in ``experiments.json``.

:class:`ExperimentSettings` holds the values of the Experiments form (the keys of
:data:`rbdm_gui.workflows.experiment_form.FORM_DEFAULTS`, which gives every default); its
:meth:`~ExperimentSettings.form_values` are what :func:`~rbdm_gui.workflows.experiment_form.form_request`
turns into a run. The file sits beside ``settings.json`` in the user's config folder and is written the
same way, atomically (:func:`analysis.files.atomic_write_text`); a damaged file is renamed aside
(:func:`analysis.files.keep_damaged`) and the defaults are used. Nothing here imports Qt.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4–§5.6 and §6.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from analysis.files import atomic_write_text, keep_damaged
from analysis.trainee import DEFAULT_TRAINEE_OPTIONS
from rbdm_gui.workflows.experiment_form import FORM_DEFAULTS, sizes_text
from rbdm_gui.workflows.experiment_worker import METHODS
from rbdm_gui.workflows.settings import config_dir

__all__ = [
    "ExperimentSettings",
    "experiments_config_path",
    "load_experiment_settings",
    "save_experiment_settings",
]

_DEFAULT_ALPHA: Final = float(DEFAULT_TRAINEE_OPTIONS["alpha"])


def experiments_config_path() -> Path:
    """The file remembering the Experiments screen's form: ``experiments.json`` in the config folder."""
    return config_dir() / "experiments.json"


@dataclass(frozen=True, slots=True)
class ExperimentSettings:
    """The Experiments form (RBDM §5.5): the run it launches, and the engine that runs it.

    Parameters
    ----------
    trainer : str
        The Trainer model whose relevance maps make the masks (RBDM §5.2).
    dataset, train_split, val_split : str
        ``"synthetic:n=50"`` or a dataset folder, and its training and validation splits.
    n_train, n_val : int
        Images per split, drawn class by class; 0 for the whole split.
    methods : tuple of str
        Masking methods, in :data:`~rbdm_gui.workflows.experiment_worker.METHODS` order (RBDM §5.4, §6).
    study : str
        Study file of the gaze and fusion masks; empty when none is chosen.
    masked, switch : bool
        Whether each mask trains a Trainee throughout and/or for ``switch_epoch`` epochs (RBDM §5.5).
    architecture : str
        The Trainee's architecture (a key of :data:`analysis.models.ARCHITECTURES`).
    alpha : float
        MobileNet width multiplier α (used by the MobileNet architectures only).
    epochs, switch_epoch, eval_every_steps : int
        Training length, the last masked epoch of the ``+switch`` Trainees, steps between curve points.
    seeds, train_sizes : str
        As typed: ``"0, 1, 2"``; ``"500, 2000, all"`` (empty: the train count).
    test_split : str
        A split scored at each Trainee's best step; empty to hold ``test_fraction`` of val. apart.
    test_fraction : float
        Share of the validation images held apart when there is no test split.
    keep_models : bool
        Keep each Trainee's best and final model.
    workers, cpus_per_cell : int
        Cells at once (1: the worker process, N: local Ray) and TensorFlow threads per cell.
    """

    trainer: str = str(FORM_DEFAULTS["trainer"])
    dataset: str = str(FORM_DEFAULTS["dataset"])
    train_split: str = str(FORM_DEFAULTS["train_split"])
    val_split: str = str(FORM_DEFAULTS["val_split"])
    n_train: int = int(FORM_DEFAULTS["n_train"] or 0)
    n_val: int = int(FORM_DEFAULTS["n_val"] or 0)
    methods: tuple[str, ...] = tuple(FORM_DEFAULTS["methods"])
    study: str = ""
    masked: bool = bool(FORM_DEFAULTS["masked"])
    switch: bool = bool(FORM_DEFAULTS["switch"])
    architecture: str = str(FORM_DEFAULTS["architecture"])
    alpha: float = _DEFAULT_ALPHA
    epochs: int = int(FORM_DEFAULTS["epochs"])
    switch_epoch: int = int(FORM_DEFAULTS["switch_epoch"])
    seeds: str = str(FORM_DEFAULTS["seeds"])
    eval_every_steps: int = int(FORM_DEFAULTS["eval_every_steps"])
    train_sizes: str = ""
    test_split: str = ""
    test_fraction: float = float(FORM_DEFAULTS["test_fraction"])
    keep_models: bool = bool(FORM_DEFAULTS["keep_models"])
    workers: int = int(FORM_DEFAULTS["workers"])
    cpus_per_cell: int = int(FORM_DEFAULTS["cpus_per_cell"])

    @property
    def has_alpha(self) -> bool:
        """Whether the architecture takes the width multiplier α (the MobileNets)."""
        return self.architecture.startswith("MobileNet")

    @property
    def needs_study(self) -> bool:
        """Whether a chosen mask reads a study's fixations (human gaze, gaze + relevance)."""
        return "gaze" in self.methods or "fusion" in self.methods

    def form_values(self) -> dict[str, Any]:
        """The form as the plain values of :func:`~rbdm_gui.workflows.experiment_form.form_request`."""
        return {
            "trainer": self.trainer,
            "dataset": self.dataset,
            "train_split": self.train_split,
            "val_split": self.val_split,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "methods": list(self.methods),
            "study": self.study,
            "masked": self.masked,
            "switch": self.switch,
            "architecture": self.architecture,
            "options": {"alpha": self.alpha} if self.has_alpha else {},
            "epochs": self.epochs,
            "switch_epoch": self.switch_epoch,
            "seeds": self.seeds,
            "eval_every_steps": self.eval_every_steps,
            "train_sizes": self.train_sizes,
            "test_split": self.test_split,
            "test_fraction": self.test_fraction,
            "keep_models": self.keep_models,
            "workers": self.workers,
            "cpus_per_cell": self.cpus_per_cell,
        }

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> ExperimentSettings:
        """Settings from form values (:meth:`form_values`, an old ``experiments.json``, or
        :func:`~rbdm_gui.workflows.experiment_form.form_of_run`).

        Missing keys, values of the wrong type, and empty text or zero where the form needs a value
        (dataset, epochs, ...) take the default; unknown keys and methods are ignored. Lists of seeds or
        sizes (older files) become the form's text.
        """
        default = cls()
        options = values.get("options")
        alpha = options.get("alpha") if isinstance(options, Mapping) and options else _DEFAULT_ALPHA
        methods = values.get("methods")
        chosen = set(methods) if isinstance(methods, (list, tuple)) and methods else set(default.methods)
        return cls(
            trainer=_text(values.get("trainer")) or default.trainer,
            dataset=_text(values.get("dataset")) or default.dataset,
            train_split=_text(values.get("train_split")) or default.train_split,
            val_split=_text(values.get("val_split")) or default.val_split,
            n_train=_count(values.get("n_train"), default.n_train),
            n_val=_count(values.get("n_val"), default.n_val),
            methods=tuple(m for m in METHODS if m in chosen),
            study=_text(values.get("study")),
            masked=_flag(values.get("masked"), default.masked),
            switch=_flag(values.get("switch"), default.switch),
            architecture=_text(values.get("architecture")) or default.architecture,
            alpha=_number(alpha, default.alpha),
            epochs=_count(values.get("epochs"), 0) or default.epochs,
            switch_epoch=_count(values.get("switch_epoch"), 0) or default.switch_epoch,
            seeds=_list_text(values.get("seeds")) or default.seeds,
            eval_every_steps=_count(values.get("eval_every_steps"), 0) or default.eval_every_steps,
            train_sizes=_list_text(values.get("train_sizes")),
            test_split=_text(values.get("test_split")),
            test_fraction=_number(values.get("test_fraction"), 0.0) or default.test_fraction,
            keep_models=_flag(values.get("keep_models"), default.keep_models),
            workers=_count(values.get("workers"), 0) or default.workers,
            cpus_per_cell=_count(values.get("cpus_per_cell"), 0) or default.cpus_per_cell,
        )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _list_text(value: Any) -> str:
    """The form's text of seeds or sizes, from text or (older files) a list."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(v is None or isinstance(v, int) for v in value):
        return sizes_text(value)
    return ""


def _count(value: Any, default: int) -> int:
    """A whole number ≥ 0; ``default`` for anything else (None from older files included)."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return int(value) if ok else default


def _number(value: Any, default: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else default


def _flag(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def load_experiment_settings(path: Path | None = None) -> ExperimentSettings:
    """Read the Experiments form from ``path`` (:func:`experiments_config_path`); the defaults when absent.

    Raises
    ------
    ValueError
        When the file is damaged (not UTF-8 JSON, or no object); it is renamed aside first and the
        message names the copy (the screen then uses the defaults).
    """
    target = experiments_config_path() if path is None else Path(path)
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ExperimentSettings()
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(_damaged(target, str(err))) from err
    if not isinstance(data, dict):
        raise ValueError(_damaged(target, f"it holds a JSON {type(data).__name__}, not a form"))
    return ExperimentSettings.from_values(data)


def _damaged(target: Path, problem: str) -> str:
    try:
        kept = f"it was kept as {keep_damaged(target)}"
    except OSError as err:
        kept = f"it could not be renamed aside ({err.strerror})"
    return f"The Experiments form file {target} is damaged ({problem}); {kept}. The defaults are shown."


def save_experiment_settings(settings: ExperimentSettings, path: Path | None = None) -> Path:
    """Write the form atomically (a temporary file renamed over the old one); return the path."""
    target = experiments_config_path() if path is None else Path(path)
    return atomic_write_text(target, json.dumps(settings.form_values(), indent=2))
