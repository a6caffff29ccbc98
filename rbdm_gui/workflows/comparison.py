"""The Compare screen's state and policy, Qt-free: its remembered files, what is open and chosen, exports.

:class:`ComparisonSettings` is what the screen remembers between sessions (the study file, the Trainer
model, whether trials marked bad are compared), typed, in ``comparison.json`` beside ``settings.json``,
written the same way, atomically (:func:`analysis.files.atomic_write_text`). :func:`open_comparison`
reads a study and its stimuli and finds the Trainer (the worker of the screen's *Open*).
:class:`ComparisonSession` holds what the screen has open and chosen: the
:class:`tracking.study.StudyComparison` (which itself holds the annotators compared and the Trainer's
relevance), the stimulus on show, the tables once computed, and writes the exports. It emits plain
callbacks (``changed``), so the screen's panels follow it, and ``rbdm compare`` or a test can drive it
without Qt. The numbers all come from :class:`~tracking.study.StudyComparison`.

Trials the experimenter marked bad in the live monitor are left out unless
:attr:`ComparisonSettings.include_flagged` (``rbdm compare --include-flagged``);
:attr:`ComparisonSession.flagged` lists them either way.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2, Table 1 and Figure 7.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from analysis.files import atomic_write_text, keep_damaged
from analysis.progress import ProgressCallback
from analysis.study import stimulus_rows_csv
from rbdm_gui.workflows.figures import map_colours, save_comparison_figure
from rbdm_gui.workflows.settings import StudySettings, config_dir, load_settings
from tracking.protocol import Listeners
from tracking.study import (
    FlaggedTrial,
    ModelRelevance,
    StimulusComparison,
    Study,
    StudyComparison,
    StudyTables,
    TrainerInfo,
    default_cache_dir,
    load_stimulus_images,
    model_relevance,
    read_study,
    trainer_info,
)

_T = TypeVar("_T")
#: Work for a worker thread: ``work(progress, cancelled)`` (:func:`rbdm_gui.screens.workers.run_task`).
Work = Callable[[ProgressCallback, Callable[[], bool]], _T]

__all__ = [
    "ComparisonSession",
    "ComparisonSettings",
    "OpenedStudy",
    "Work",
    "comparison_config_path",
    "export_file_name",
    "flagged_text",
    "load_comparison_settings",
    "open_comparison",
    "save_comparison_settings",
    "setup_study_path",
    "stimulus_caption",
    "trainer_relevance",
    "trainer_text",
]


def comparison_config_path() -> Path:
    """The file remembering the Compare screen's settings: ``comparison.json`` in the config folder."""
    return config_dir() / "comparison.json"


@dataclass(frozen=True, slots=True)
class ComparisonSettings:
    """What the Compare screen remembers (RBDM §5.3.2).

    Parameters
    ----------
    study_path : str
        The study file last opened; empty for none (the screen then uses Study setup's).
    model_path : str
        The Trainer model last chosen; empty for none (the screen then uses the shipped default).
    include_flagged : bool
        Compare the trials marked bad in the live monitor too (``rbdm compare --include-flagged``).
    """

    study_path: str = ""
    model_path: str = ""
    include_flagged: bool = False

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON object (the keys of ``comparison.json``)."""
        return {
            "study_path": self.study_path,
            "model_path": self.model_path,
            "include_flagged": self.include_flagged,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ComparisonSettings:
        """Settings from a JSON object; a missing key or a value of the wrong type keeps its default."""
        default = cls()
        return cls(
            study_path=_text(data.get("study_path"), default.study_path),
            model_path=_text(data.get("model_path"), default.model_path),
            include_flagged=_flag(data.get("include_flagged"), default.include_flagged),
        )


def _text(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _flag(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def load_comparison_settings(path: Path | None = None) -> ComparisonSettings:
    """Read the Compare screen's settings (:func:`comparison_config_path`); the defaults when absent.

    Raises
    ------
    ValueError
        When the file is damaged (not UTF-8 JSON, or no object); it is renamed aside first
        (:func:`analysis.files.keep_damaged`) and the message names the copy.
    """
    target = comparison_config_path() if path is None else Path(path)
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ComparisonSettings()
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(_damaged(target, str(err))) from err
    if not isinstance(data, dict):
        raise ValueError(_damaged(target, f"it holds a JSON {type(data).__name__}, not settings"))
    return ComparisonSettings.from_json(data)


def _damaged(target: Path, problem: str) -> str:
    try:
        kept = f"it was kept as {keep_damaged(target)}"
    except OSError as err:
        kept = f"it could not be renamed aside ({err.strerror})"
    return f"The Compare settings file {target} is damaged ({problem}); {kept}. The defaults are used."


def save_comparison_settings(settings: ComparisonSettings, path: Path | None = None) -> Path:
    """Write the settings atomically (a temporary file renamed over the old one); return the path."""
    target = comparison_config_path() if path is None else Path(path)
    return atomic_write_text(target, json.dumps(settings.to_json(), indent=2))


# --- opening ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class OpenedStudy:
    """A study read for the comparison, its stimuli, and its Trainer (or why there is none).

    Parameters
    ----------
    study : Study
        From :func:`tracking.study.read_study`.
    images : mapping of str to ndarray
        Every stimulus as shown (:func:`tracking.study.load_stimulus_images`).
    trainer : TrainerInfo or None
        The Trainer whose saliency joins the comparison.
    trainer_problem : str
        Why there is no Trainer (empty when there is one).
    """

    study: Study
    images: Mapping[str, NDArray[np.float32]]
    trainer: TrainerInfo | None
    trainer_problem: str


def setup_study_path() -> Path:
    """The study file of Study setup's saved settings (the defaults' when that file is damaged)."""
    try:
        return load_settings().resolved_study_path()
    except ValueError:
        return StudySettings().resolved_study_path()


def open_comparison(
    study_path: Path,
    model_path: Path | None,
    *,
    stimulus_set: str | None = None,
    include_flagged: bool = False,
    progress: ProgressCallback | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> OpenedStudy:
    """Read a study and its stimuli, and the Trainer's description; runs on a worker thread.

    Raises
    ------
    FileNotFoundError, StoreError
        From :func:`tracking.study.read_study` (their text says what to do). A missing Trainer is no
        error: :attr:`OpenedStudy.trainer_problem` says so and the annotators are compared alone.
    """
    study = read_study(study_path, stimulus_set=stimulus_set, include_flagged=include_flagged)
    images = load_stimulus_images(study, progress=progress, cancelled=cancelled)
    if model_path is None:
        return OpenedStudy(study, images, None, "No trainer model chosen: comparing the annotators only.")
    try:
        trainer = trainer_info(model_path)
    except FileNotFoundError:
        problem = (
            f"No trainer model at {model_path}: comparing the annotators only. Train one with "
            "'rbdm train-trainer', or choose a .keras file."
        )
        return OpenedStudy(study, images, None, problem)
    return OpenedStudy(study, images, trainer, "")


def trainer_relevance(
    comparison: StudyComparison, *, analyzer: str, progress: ProgressCallback | None = None
) -> ModelRelevance:
    """The Trainer's relevance map of every stimulus (RBDM §5.2), cached next to the study; on a worker.

    Raises
    ------
    ValueError
        When ``comparison`` has no Trainer.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.2 (the Trainer's saliency).
    """
    if comparison.trainer is None:
        raise ValueError("this comparison has no trainer; open the study with a .keras model.")
    if progress is not None:
        progress(0.0, "loading the model")
    cache = default_cache_dir(comparison.study.path)
    return model_relevance(
        comparison.images, comparison.trainer, analyzer=analyzer, cache_dir=cache, progress=progress
    )


def trainer_text(trainer: TrainerInfo | None, analyzer: str) -> str:
    """One line about the Trainer: its name, input and the relevance analyzer (RBDM §5.2)."""
    if trainer is None:
        return ""
    height, width, channels = trainer.input_shape
    kind = "grey" if channels == 1 else "RGB"
    return f"{trainer.name}: {width} × {height} px {kind} input; saliency by {analyzer}."


def flagged_text(flagged: tuple[FlaggedTrial, ...], *, included: bool) -> str:
    """The trials marked bad in the live monitor, counted: left out, or compared anyway."""
    if not flagged:
        return ""
    trials = "trial" if len(flagged) == 1 else "trials"
    if included:
        return f" {len(flagged)} {trials} marked bad in the live monitor included, as asked."
    return f" {len(flagged)} {trials} marked bad in the live monitor left out, as if never recorded."


def stimulus_caption(comparison: StimulusComparison) -> str:
    """The stimulus id and the label each annotator gave it (and the model predicted)."""
    said = " · ".join(f"{key}: {label}" for key, label in comparison.labels.items() if label)
    return f"{comparison.stimulus_id} — {said}" if said else comparison.stimulus_id


def export_file_name(stimulus_id: str) -> str:
    """A file name for a stimulus's figure: its id with anything but ``A-Za-z0-9_.-`` as ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stimulus_id) + ".png"


# --- the screen's state -----------------------------------------------------------------------------


class ComparisonSession:
    """What the Compare screen has open and chosen, and what it writes (RBDM §5.3.2, Table 1, Figure 7).

    Parameters
    ----------
    settings : ComparisonSettings, optional
        The remembered settings; by default read from ``settings_path`` (the defaults when that file
        is damaged: :attr:`settings_problem` then says so and where the file was kept).
    settings_path : Path, optional
        Where the settings are remembered; by default :func:`comparison_config_path`.

    Notes
    -----
    ``changed`` (:class:`~tracking.protocol.Listeners` of str) is emitted with ``"settings"`` when the
    remembered settings changed, ``"opened"`` when a study was opened, ``"stimulus"`` when another
    stimulus was chosen, ``"shown"`` and ``"tables"`` when a stimulus's comparison or the study tables
    arrived, and passes on :attr:`comparison`'s own news (``"annotators"``, ``"relevance"``). A new
    study, or another choice of annotators or relevance, drops what was computed.
    """

    def __init__(
        self, settings: ComparisonSettings | None = None, *, settings_path: Path | None = None
    ) -> None:
        self._path = settings_path
        self.settings_problem = ""
        if settings is None:
            try:
                settings = load_comparison_settings(settings_path)
            except ValueError as err:
                settings, self.settings_problem = ComparisonSettings(), str(err)
        self.settings = settings
        self.changed: Listeners[str] = Listeners()
        self.comparison: StudyComparison | None = None
        self.stimulus_id: str | None = None
        self.shown: StimulusComparison | None = None
        self.tables: StudyTables | None = None
        self._unsubscribe: Callable[[], None] | None = None

    # --- settings ---------------------------------------------------------------------------------

    def remember(self, **changes: Any) -> bool:
        """Change and save the settings (``study_path=…``, ``include_flagged=…``); whether they changed.

        Saving is a convenience: a folder that cannot be written keeps the settings in memory only.
        """
        settings = replace(self.settings, **changes)
        if settings == self.settings:
            return False
        self.settings = settings
        try:
            save_comparison_settings(settings, self._path)
        except OSError:
            pass  # remembering is a convenience; the comparison works without it
        self.changed.emit("settings")
        return True

    # --- what is open -----------------------------------------------------------------------------

    def opening(
        self, study_path: Path, model_path: Path | None, *, stimulus_set: str | None = None
    ) -> Work[OpenedStudy]:
        """Remember the files; the work of opening them, for a worker thread: ``work(progress, cancelled)``.

        The trials marked bad are left out or included as :attr:`settings` say; hand the result to
        :meth:`open`.
        """
        self.remember(study_path=str(study_path), model_path=str(model_path or ""))
        include = self.settings.include_flagged

        def work(progress: ProgressCallback, cancelled: Callable[[], bool]) -> OpenedStudy:
            return open_comparison(
                study_path,
                model_path,
                stimulus_set=stimulus_set,
                include_flagged=include,
                progress=progress,
                cancelled=cancelled,
            )

        return work

    def relevance_work(self, analyzer: str) -> Work[ModelRelevance]:
        """The work of computing the Trainer's relevance (:func:`trainer_relevance`), for a worker thread;
        hand the result to :meth:`StudyComparison.set_relevance`.

        Raises
        ------
        ValueError
            When no study with a Trainer is open.
        """
        comparison = self.comparison
        if comparison is None or comparison.trainer is None:
            raise ValueError("no study with a trainer is open; open one with a .keras model first.")

        def work(progress: ProgressCallback, cancelled: Callable[[], bool]) -> ModelRelevance:
            return trainer_relevance(comparison, analyzer=analyzer, progress=progress)

        return work

    def open(self, opened: OpenedStudy) -> StudyComparison:
        """Compare ``opened`` (its first stimulus on show); what was computed before is dropped."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        comparison = StudyComparison(opened.study, opened.images, trainer=opened.trainer)
        self.comparison = comparison
        self._unsubscribe = comparison.changed.subscribe(self._comparison_changed)
        self.stimulus_id = opened.study.stimuli[0] if opened.study.stimuli else None
        self.shown, self.tables = None, None
        self.changed.emit("opened")
        return comparison

    def _comparison_changed(self, what: str) -> None:
        self.shown, self.tables = None, None
        self.changed.emit(what)

    @property
    def flagged(self) -> tuple[FlaggedTrial, ...]:
        """The trials of the open study marked bad in the live monitor (left out or, if asked, included)."""
        if self.comparison is None:
            return ()
        study = self.comparison.study
        return study.flagged_included or study.flagged_left_out

    @property
    def flagged_included(self) -> bool:
        """Whether the open study was read with its trials marked bad (as the settings said then)."""
        return self.comparison is not None and bool(self.comparison.study.flagged_included)

    def select_stimulus(self, stimulus_id: str) -> bool:
        """Show ``stimulus_id``; returns whether the choice changed.

        Raises
        ------
        KeyError
            When the open study has no such stimulus.
        """
        stimuli = self.comparison.study.stimuli if self.comparison is not None else ()
        if stimulus_id not in stimuli:
            raise KeyError(f"no stimulus {stimulus_id!r} in this study.")
        if stimulus_id == self.stimulus_id:
            return False
        self.stimulus_id = stimulus_id
        self.changed.emit("stimulus")
        return True

    def set_shown(self, shown: StimulusComparison) -> None:
        """A worker compared the stimulus on show (:meth:`StudyComparison.stimulus`)."""
        self.shown = shown
        self.changed.emit("shown")

    def set_tables(self, tables: StudyTables) -> None:
        """A worker compared every stimulus (:meth:`StudyComparison.tables`)."""
        self.tables = tables
        self.changed.emit("tables")

    def colours(self, keys: Iterable[str]) -> dict[str, str]:
        """Each heatmap's colour: an annotator's by its place in the study, the model's always the same."""
        annotators = self.comparison.study.annotators if self.comparison is not None else ()
        return map_colours(list(keys), annotators=annotators)

    # --- texts ------------------------------------------------------------------------------------

    def table_caption(self) -> str:
        """What the study table (RBDM Table 1) shows: its stimuli, n, the frame and the trials marked bad."""
        model, tables = self.comparison, self.tables
        if model is None or tables is None:
            return "The study table appears once every stimulus is compared."
        frame = ""
        if model.study.stimuli:
            height, width = model.shape(model.study.stimuli[0])
            frame = f", compared at {width} × {height} px"
        return (
            f"RBDM Table 1: per pair, the mean over the stimuli both have a map of (column 'stimuli'; "
            f"{len(tables.stimuli)} stimuli in all, n = {tables.n_points} points{frame})."
            + flagged_text(self.flagged, included=self.flagged_included)
        )

    def flagged_tooltip(self) -> str:
        """Which trials are marked bad, and why: one line each."""
        return "\n".join(f"{f.annotator} on {f.stimulus_id}: {f.reason}" for f in self.flagged)

    def frame_text(self) -> str:
        """The comparison frame, the visual span and n (RBDM §5.3.2); empty before a study is open."""
        model = self.comparison
        if model is None or not model.study.stimuli:
            return ""
        first = model.study.stimuli[0]
        height, width = model.shape(first)
        span = model.span(first)
        where = "the model's input" if model.trainer is not None else "the image's own size"
        return (
            f"Heatmaps at {width} × {height} px ({where}); visual span {span.radius:.1f} px, "
            f"c = {span.c:.2f} px; the model's heatmap from its n = {model.n_points} most relevant pixels."
        )

    # --- exports ----------------------------------------------------------------------------------

    def export_png(self, path: str | Path) -> Path:
        """Write the figure of the stimulus shown: the image with the contours, then each heatmap.

        Raises
        ------
        ValueError
            When no stimulus is shown yet.
        """
        if self.shown is None:
            raise ValueError("no stimulus is shown yet; open a study and pick a stimulus.")
        comparison = self.shown
        return save_comparison_figure(
            path,
            [comparison.image],
            [comparison.heatmaps],
            [{}],
            titles=[comparison.stimulus_id],
            colours=self.colours(comparison.heatmaps),
        )

    def export_csv(self, folder: str | Path) -> list[Path]:
        """Write ``table1.csv`` (the study-level table) and ``stimuli.csv`` (every stimulus's rows).

        Raises
        ------
        ValueError
            When the study table is not computed yet.
        """
        if self.tables is None:
            raise ValueError("the study table is not ready yet; wait until every stimulus is compared.")
        out = Path(folder)
        atomic_write_text(out / "table1.csv", self.tables.study.to_csv())
        atomic_write_text(out / "stimuli.csv", stimulus_rows_csv(self.tables.stimuli))
        return [out / "table1.csv", out / "stimuli.csv"]
