"""The Experiments screen without Qt: its state and policy, evented through plain callables.

:class:`ExperimentScreen` is the model of :class:`rbdm_gui.screens.experiment_view.ExperimentView`, as
:class:`tracking.study.StudyComparison` is the Compare screen's. It holds the form
(:class:`~rbdm_gui.workflows.experiment_settings.ExperimentSettings`), the runs folder's kept runs and
which are picked, the runs shown (one reopened, several compared, or the running one live), their
Trainees' confusion matrices and their comparison with ``none`` (:mod:`analysis.experiment_report`),
the Trainee whose confusion matrix is shown, the live curves of the followed run, and the policy:
Run starts the form's run or resumes the unfinished run of the same settings
(:func:`~rbdm_gui.workflows.experiment_form.form_request`), one run at a time; Cancel stops it after its
current step; a finished run is listed and picked; the best Trainee of a reopened run is chosen.

The model is lent what only the GUI has: a :class:`Launcher` (the worker process,
:class:`rbdm_gui.screens.experiment_runner.ExperimentRunner`, satisfies it) and a :class:`Background`
that runs the folder reading off the GUI thread (:func:`run_now`, the default, runs it at once: tests
and scripts). Its news are :class:`tracking.protocol.Listeners`; the text and table cells it shows come
from :mod:`rbdm_gui.workflows.experiment_display`, so the panels only draw.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4, §5.5 and §6 (Figures 10–12).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from analysis.experiment import (
    ExperimentProgress,
    ExperimentRun,
    VariantResult,
    list_runs,
    load_run,
    read_confusion,
)
from analysis.experiment_report import VariantComparison, compare_variants, seed_measures
from analysis.trainee import CurvePoint
from rbdm_gui.workflows.experiment_display import (
    CurveKey,
    TextTable,
    TraineeKey,
    comparison_table,
    plot_title,
    summary_table,
    trainee_table,
)
from rbdm_gui.workflows.experiment_form import form_of_run, form_request, progress_display, run_used
from rbdm_gui.workflows.experiment_settings import (
    ExperimentSettings,
    experiments_config_path,
    load_experiment_settings,
    save_experiment_settings,
)
from rbdm_gui.workflows.experiment_worker import LaunchRequest, partial_curves, run_state
from rbdm_gui.workflows.settings import data_dir
from tracking.protocol import Listeners

__all__ = [
    "Background",
    "ExperimentScreen",
    "Launcher",
    "OpenedRuns",
    "ProgressBar",
    "default_runs_dir",
    "open_runs",
    "run_comparisons",
    "run_now",
]

#: The stages of a run before training, shown as a busy bar.
_BUSY_STAGES: Final = ("loading", "relevance", "masking")


def default_runs_dir() -> Path:
    """Where runs are kept unless the screen is given another folder: ``experiments`` in the data folder."""
    return data_dir() / "experiments"


# --- what the GUI lends ---------------------------------------------------------------------------


class Launcher(Protocol):
    """Runs one experiment at a time (:class:`rbdm_gui.screens.experiment_runner.ExperimentRunner`)."""

    @property
    def running(self) -> bool: ...

    @property
    def cancelling(self) -> bool: ...

    def start(self, request: LaunchRequest) -> None: ...

    def cancel(self) -> None: ...


class Background(Protocol):
    """Runs ``work()`` off the GUI thread, then hands its result (or error) back on the GUI thread.

    A second call with the same ``name`` replaces a first one still running.
    """

    def __call__(
        self,
        name: str,
        work: Callable[[], Any],
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
    ) -> None: ...


def run_now(
    name: str,
    work: Callable[[], Any],
    on_result: Callable[[Any], None],
    on_error: Callable[[BaseException], None],
) -> None:
    """A :class:`Background` that works at once, on the caller's thread (tests, scripts)."""
    try:
        result = work()
    except (OSError, ValueError) as err:
        on_error(err)
        return
    on_result(result)


# --- what the screen shows ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProgressBar:
    """The progress bar of the running experiment: ``fraction`` of cells done, or ``busy``, and its text."""

    text: str
    fraction: float | None = None
    busy: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class OpenedRuns:
    """Runs read from their folders, with their Trainees' confusion matrices and comparisons with none."""

    runs: tuple[ExperimentRun, ...]
    confusions: Mapping[TraineeKey, NDArray[np.int64]]
    comparisons: Mapping[Path, tuple[VariantComparison, ...]] = dataclasses.field(default_factory=dict)


def open_runs(run_dirs: Sequence[Path]) -> OpenedRuns:
    """Read runs as the screen shows them: an orphaned "running" run as ``interrupted``, curves including
    unfinished Trainees', each Trainee's confusion matrix and each run's comparison with ``none``."""
    runs = tuple(_as_shown(load_run(folder)) for folder in run_dirs)
    confusions = {}
    for run in runs:
        for result in run.results:
            matrix = read_confusion(run.trainee_dir(result) / "confusion.csv")
            if matrix is not None:
                confusions[TraineeKey.of(run.run_dir, result)] = matrix
    return OpenedRuns(runs, confusions, {run.run_dir: run_comparisons(run) for run in runs})


def _as_shown(run: ExperimentRun) -> ExperimentRun:
    return dataclasses.replace(run, status=run_state(run), curves=partial_curves(run))


def run_comparisons(run: ExperimentRun) -> tuple[VariantComparison, ...]:
    """A run's comparison with ``none`` per size and variant (:mod:`analysis.experiment_report`)."""
    config = run.config
    measures = seed_measures(
        run.results, run.curves_by_size, auc_steps=config.auc_steps, threshold_share=config.threshold_share
    )
    return tuple(compare_variants(measures))


# --- the model ------------------------------------------------------------------------------------


class ExperimentScreen:
    """The Experiments screen's state and policy (RBDM §5.5, §6, Figures 10–12), without Qt.

    Parameters
    ----------
    launcher : Launcher
        Runs the experiments.
    runs_dir : Path, optional
        Where runs are kept; :func:`default_runs_dir` by default.
    trainer_path : Path, optional
        The Trainer for new runs; by default the one last chosen, else the shipped small CNN.
    settings_path : Path, optional
        The remembered form; :func:`~rbdm_gui.workflows.experiment_settings.experiments_config_path`.
    background : Background
        Reads run folders (:func:`run_now` by default).

    Notes
    -----
    Listeners, all called on the GUI thread: ``status_changed`` (the status line), ``runs_changed``
    (the kept runs or the pick changed), ``shown_changed`` (other runs shown, or the live run again:
    redraw plots and tables), ``point_added`` (a live curve's new point, while the live run is shown),
    ``trainee_changed`` (the Trainee whose confusion matrix is shown), ``progress_changed``,
    ``running_changed`` (a run started or ended: what Run and Cancel may do), ``used_changed`` (the
    warnings about the images a run really uses) and ``form_changed`` (the form changed from outside the
    form: reused settings, the used images, the study chosen in Study setup). :meth:`set_form` (the
    form's own edits) emits nothing.
    """

    def __init__(
        self,
        launcher: Launcher,
        *,
        runs_dir: Path | None = None,
        trainer_path: Path | None = None,
        settings_path: Path | None = None,
        background: Background = run_now,
    ) -> None:
        self.launcher = launcher
        self.runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
        self.settings_path = settings_path if settings_path is not None else experiments_config_path()
        self._background = background
        self.status = ""
        try:
            form = load_experiment_settings(self.settings_path)
        except ValueError as err:
            form, self.status = ExperimentSettings(), str(err)
        self.form = form if trainer_path is None else dataclasses.replace(form, trainer=str(trainer_path))
        self.runs: dict[Path, ExperimentRun] = {}
        self.listed: tuple[Path, ...] = ()  # newest first
        self.selected: tuple[Path, ...] = ()  # in listed order
        self.shown: tuple[ExperimentRun, ...] = ()
        self.live_shown = False
        self.confusions: dict[TraineeKey, NDArray[np.int64]] = {}
        self.comparisons: dict[Path, tuple[VariantComparison, ...]] = {}
        self.trainee: TraineeKey | None = None
        self.live_dir: Path | None = None
        self.live_curves: dict[CurveKey, list[CurvePoint]] = {}
        self.live_size: int | None = None  # the training-set size whose curves are shown live
        self._live_listed = False
        self.status_changed: Listeners[str] = Listeners()
        self.runs_changed: Listeners[None] = Listeners()
        self.shown_changed: Listeners[None] = Listeners()
        self.point_added: Listeners[CurveKey] = Listeners()
        self.trainee_changed: Listeners[TraineeKey | None] = Listeners()
        self.progress_changed: Listeners[ProgressBar] = Listeners()
        self.running_changed: Listeners[bool] = Listeners()
        self.used_changed: Listeners[str] = Listeners()
        self.form_changed: Listeners[ExperimentSettings] = Listeners()

    # --- the form -------------------------------------------------------------------------------

    def set_form(self, form: ExperimentSettings) -> None:
        """The form's own edits (emits nothing: the form already shows them)."""
        self.form = form

    def _show_form(self, form: ExperimentSettings) -> None:
        if form != self.form:
            self.form = form
            self.form_changed.emit(form)

    def request(self) -> LaunchRequest:
        """The run the form describes: in a fresh folder of the runs folder, or in the unfinished run of the
        same settings there, which it resumes (:func:`~rbdm_gui.workflows.experiment_form.form_request`).

        Raises
        ------
        ValueError
            With a message for the user when the form is incomplete or inconsistent.
        """
        return form_request(self.form.form_values(), runs_dir=self.runs_dir)

    def save_form(self) -> None:
        """Remember the form for the next session (every Run does)."""
        try:
            save_experiment_settings(self.form, self.settings_path)
        except OSError:
            pass  # remembering is a convenience; runs work without it

    def follow_study(self, path: str | Path) -> None:
        """Study setup chose another study file: the gaze Trainees' study follows it."""
        self._show_form(dataclasses.replace(self.form, study=str(Path(path).expanduser())))

    @property
    def can_reuse(self) -> bool:
        """Whether "Use its settings" has one picked run to copy."""
        return len(self.selected) == 1 and self.selected[0] in self.runs

    def reuse_settings(self) -> None:
        """Copy the picked run's settings into the form (the engine settings stay the form's own)."""
        if not self.can_reuse:
            return
        run = self.runs[self.selected[0]]
        reused = ExperimentSettings.from_values(form_of_run(run))
        self._show_form(
            dataclasses.replace(reused, workers=self.form.workers, cpus_per_cell=self.form.cpus_per_cell)
        )
        self.say(f"Settings of {run.run_dir.name} copied into the form.")

    # --- running --------------------------------------------------------------------------------

    @property
    def can_run(self) -> bool:
        """Whether Run may start a run (one at a time)."""
        return not self.launcher.running

    @property
    def can_cancel(self) -> bool:
        """Whether Cancel may stop the run (it runs and was not asked to stop yet)."""
        return self.launcher.running and not self.launcher.cancelling

    def start_run(self) -> bool:
        """Start the form's run in the background; False (and a message) when the form is not valid."""
        if self.launcher.running:
            self.say("A run is going on; cancel it or wait until it ends.")
            return False
        try:
            request = self.request()
        except ValueError as err:
            self.say(str(err))
            return False
        self.save_form()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        run_dir = Path(request.run_dir)
        how = "Resuming" if run_dir.exists() else "Starting"
        self.follow(run_dir)
        self.launcher.start(request)
        self.progress_changed.emit(ProgressBar("starting…", busy=True))
        where = (
            "in the worker process" if request.workers == 1 else f"on local Ray, {request.workers} at once"
        )
        self.say(f"{how} {run_dir.name}: {request.n_trainees} Trainees {where}…")
        self.running_changed.emit(True)
        return True

    def cancel_run(self) -> None:
        """Stop the running experiment after its current step (it is kept as ``cancelled``)."""
        if self.launcher.running:
            self.launcher.cancel()
            self.say("Cancelling after the current step…")
            self.running_changed.emit(True)

    def follow(self, run_dir: Path) -> None:
        """Show the run starting in ``run_dir`` live: its curves as :meth:`show_progress` receives them."""
        self.live_dir = Path(run_dir)
        self.live_curves, self._live_listed, self.live_size = {}, False, None
        self._show_live()

    def show_progress(self, progress: ExperimentProgress) -> None:
        """A progress record of the followed run: status, progress bar, a new curve point."""
        if not self._live_listed:  # run.json exists once the worker reports
            self._live_listed = True
            self.refresh_runs(select=self.live_dir)
        shown = progress_display(progress)
        busy = shown.fraction is None and progress.stage in _BUSY_STAGES
        self.progress_changed.emit(ProgressBar(shown.bar_text, shown.fraction, busy))
        self.say(shown.status_text)
        if progress.train_size is not None and progress.train_size != self.live_size:
            self.live_size, self.live_curves = progress.train_size, {}  # a larger size: show its curves
            if self.showing_live:
                self._show_live()
        if progress.point is not None and progress.variant is not None and progress.seed is not None:
            key = (progress.variant, progress.seed)
            self.live_curves.setdefault(key, []).append(progress.point)
            if self.showing_live:
                self.point_added.emit(key)

    def show_used(self, used: Mapping[str, Any]) -> None:
        """The images per split the run really uses: the form takes those numbers, with a warning."""
        n_train, n_val = (used.get(k) for k in ("n_train", "n_val"))
        self._show_form(
            dataclasses.replace(
                self.form,
                n_train=n_train if isinstance(n_train, int) and n_train > 0 else self.form.n_train,
                n_val=n_val if isinstance(n_val, int) and n_val > 0 else self.form.n_val,
            )
        )
        self.used_changed.emit("\n".join(f"⚠ {w}" for w in used.get("warnings") or []))

    def finish(self, status: str, text: str) -> None:
        """The run ended (``finished``, ``cancelled`` or ``failed``): say so, list it and pick it."""
        self.running_changed.emit(False)
        self.say(f"The run failed: {text}" if status == "failed" else f"Run {status}: {text}")
        self.refresh_runs(select=self.live_dir)

    def closing_question(self) -> str:
        """What to ask before the window closes ("" when nothing would be lost)."""
        if not self.launcher.running:
            return ""
        name = "" if self.live_dir is None else f" {self.live_dir.name}"
        return (
            f"The experiment{name} is still running. Quit anyway? It is cancelled after its current step "
            "and keeps its curves so far."
        )

    def say(self, text: str) -> None:
        """Set the status line."""
        self.status = text
        self.status_changed.emit(text)

    def _say_if_idle(self, text: str) -> None:
        if not self.launcher.running:
            self.say(text)

    # --- kept runs ------------------------------------------------------------------------------

    def refresh_runs(self, *, select: Path | None = None) -> None:
        """List the runs folder again (in the background); then pick ``select`` if given."""
        folder, keep = self.runs_dir, (select,) if select is not None else self.selected
        self._background(
            "list", lambda: list_runs(folder), lambda runs: self._listed(runs, keep), self._failed
        )

    def _listed(self, runs: Sequence[ExperimentRun], keep: Sequence[Path]) -> None:
        self.runs = {run.run_dir: dataclasses.replace(run, status=run_state(run)) for run in runs}
        self.listed = tuple(reversed([run.run_dir for run in runs]))  # newest first
        self.selected = tuple(d for d in self.listed if d in set(keep))
        self.runs_changed.emit(None)
        if not runs:
            self._say_if_idle(f"No runs yet in {self.runs_dir}. Fill in the form and press Run.")
        self._open_selected()

    def select(self, run_dirs: Sequence[Path]) -> None:
        """Pick these listed runs (one to reopen it, several to compare them)."""
        wanted = {Path(d) for d in run_dirs}
        self.selected = tuple(d for d in self.listed if d in wanted)
        self.runs_changed.emit(None)
        self._open_selected()

    def _open_selected(self) -> None:
        chosen = self.selected
        if not chosen:
            return
        if len(chosen) == 1 and chosen[0] == self.live_dir and self.launcher.running:
            self._show_live()
            return
        self._background("open", lambda: open_runs(chosen), self._opened, self._failed)

    def _failed(self, err: BaseException) -> None:
        self.say(str(err))

    def _opened(self, opened: OpenedRuns) -> None:
        self.confusions = dict(opened.confusions)
        self.comparisons = dict(opened.comparisons)
        if len(opened.runs) == 1:
            run = opened.runs[0]
            if run.error:
                self._say_if_idle(f"{run.run_dir.name} {run.status}: {run.error}")
            elif run.status == "interrupted":
                self._say_if_idle(
                    f"{run.run_dir.name} was interrupted (its process ended without a result); "
                    "the curves it reached are shown."
                )
            warnings = run_used(run).get("warnings") or []
            self.used_changed.emit("\n".join(f"⚠ {run.run_dir.name}: {w}" for w in warnings))
        self._set_shown(opened.runs, live=False)

    # --- what is shown --------------------------------------------------------------------------

    @property
    def showing_live(self) -> bool:
        """Whether the followed run is the one shown (nothing else is picked)."""
        return self.live_dir is not None and self.selected in ((), (self.live_dir,))

    def _show_live(self) -> None:
        self.confusions = {}
        self._set_shown((), live=True)

    def _set_shown(self, runs: tuple[ExperimentRun, ...], *, live: bool) -> None:
        self.shown, self.live_shown = runs, live
        self.shown_changed.emit(None)
        rows = self.results
        best = max(range(len(rows)), key=lambda r: rows[r][1].best_val_macro_f1) if rows else None
        self.choose_trainee(best)

    @property
    def plot_title(self) -> str:
        """The title above the curves: the run shown, the runs compared, or the live run and its size."""
        if self.live_shown:
            name = "" if self.live_dir is None else self.live_dir.name
            size = "" if self.live_size is None else f", {self.live_size} training images"
            return f"{name} (running{size})"
        if len(self.shown) == 1:
            return plot_title(self.shown[0])
        return "Comparing " + ", ".join(run.run_dir.name for run in self.shown) + " (mean over seeds)"

    @property
    def results(self) -> list[tuple[Path, VariantResult]]:
        """The Trainees in the results table: (run folder, result)."""
        return [(run.run_dir, result) for run in self.shown for result in run.results]

    def trainee_table(self) -> TextTable:
        """The results table of the runs shown (:func:`~.experiment_display.trainee_table`)."""
        return trainee_table(self.shown)

    def summary_table(self) -> TextTable:
        """By variant, mean ± sd over the seeds (:func:`~.experiment_display.summary_table`)."""
        return summary_table(self.shown)

    def comparison_table(self) -> TextTable:
        """By variant against ``none`` (:func:`~.experiment_display.comparison_table`)."""
        return comparison_table(self.shown, self.comparisons)

    def choose_trainee(self, row: int | None) -> None:
        """Show the confusion matrix of the Trainee in this row of the results table (None: none)."""
        entries = self.results
        key = None
        if row is not None and 0 <= row < len(entries):
            run_dir, result = entries[row]
            key = TraineeKey.of(run_dir, result)
        self.trainee = key
        self.trainee_changed.emit(key)

    @property
    def trainee_row(self) -> int | None:
        """The row of the chosen Trainee in the results table."""
        keys = [TraineeKey.of(d, r) for d, r in self.results]
        return keys.index(self.trainee) if self.trainee in keys else None

    def confusion(self) -> NDArray[np.int64] | None:
        """The chosen Trainee's confusion matrix (rows true class, columns predicted), if it has one."""
        return None if self.trainee is None else self.confusions.get(self.trainee)
