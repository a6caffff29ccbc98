"""The experiment launcher's worker: one experiment run in its own process, reported as JSON lines.

::

    python -m rbdm_gui.workflows.experiment_worker REQUEST.json [--stdin-control]

The Experiments screen (:mod:`rbdm_gui.screens.experiment_view`) starts this module through
:class:`rbdm_gui.screens.experiment_runner.ExperimentRunner`, so that TensorFlow trains in another process,
at a
lower priority (``nice``), and neither its CPU work nor the GIL can stall the GUI's event loop. The work
itself is ``rbdm experiment``'s: :func:`analysis.grid_engine.run_grid` (the Trainees of RBDM §5.5 and §6
per seed and training-set size), in this process with TensorFlow limited to ``cpus_per_cell`` threads, or
on a local Ray instance with ``workers`` CPUs; a run folder with an unfinished run of the same config is
resumed. This module adds the Trainees on human-gaze masks, a machine-readable progress channel and
cancelling.

``REQUEST.json`` holds :meth:`LaunchRequest.to_dict`. Standard output carries one JSON object per line
and nothing else (whatever else the process prints goes to standard error):

- ``{"event": "started", "run_dir": ..., "pid": ...}``;
- ``{"event": "progress", "stage": ..., "done": ..., "total": ..., "message": ..., "variant": ...,
  "seed": ..., "point": {...} or null, "train_size": ... or null}``: an
  :class:`analysis.experiment.ExperimentProgress` record, ``point`` a
  :class:`analysis.trainee.CurvePoint` row;
  ``total`` of the ``training`` stage counts every cell of the run, gaze ones included, and
  ``"running"``, ``"failed"``, ``"eta_s"`` say how many cells train now, failed, and the seconds left;
- ``{"event": "used", "n_train": ..., "n_val": ..., "warnings": [...]}``: the images per split the run
  really trains and validates on, and why they differ from the request (a split smaller than asked);
  ``run.json`` records the same under ``used`` and ``warnings``;
- ``{"event": "done", "status": "finished" or "cancelled", "run_dir": ...}``, or
  ``{"event": "failed", "error": ..., "run_dir": ...}``: the last line.

Cancelling: SIGTERM or SIGINT, or, with ``--stdin-control``, a line ``cancel`` on standard input or the
end of standard input (the launcher has gone). Training stops after the current step, the run folder
keeps the curves so far and says ``cancelled``; cancelling while images load or relevance maps are
computed ends the run there, also as ``cancelled``. When the launcher has gone (standard output is a
broken pipe), the run is cancelled the same way instead of failing on the next progress line. Each
Trainee's curve points are on disk as they arrive (``trainees/<variant>-seed<s>/curves.csv``), and
``run.json`` names the worker's process id while it runs, so a run whose process died (``kill -9``) is
recognised as interrupted and keeps its partial curves (:func:`run_state`, :func:`partial_curves`).

Human-gaze masks
----------------
The ``gaze`` and ``gaze+switch`` Trainees are perceptive masking "with actual human fixations" (RBDM
§6): each training image is masked by the union of its annotators' fixation heatmaps > 0
(:func:`analysis.masked_dataset.gaze_masks`), read from a study file. Images nobody looked at have no
mask: ``gaze`` trains on the fixated images only, ``gaze+switch`` on them for ``switch_epoch`` epochs and
then on every training image. They are variants of :func:`analysis.experiment.run_experiment` itself:
this module reads the study's fixations (``tracking``) and passes them in as viewings, so they train in
the same grid, on the same data subset, paired by seed with the others, into the same run folder and
report; ``gaze.json`` records the study and how many images had fixations, for launching the run again.
A run with gaze Trainees needs at least one other Trainee (the ``none`` baseline, say) to compare with.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.4 (perceptive masking), §5.5 (the
   Trainees), §5.6 (reproducible runs) and §6 (Figures 10–12; masking with human fixations).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any, Final

import numpy as np

from analysis.errors import AnalysisError
from analysis.experiment import (
    ALL_VARIANTS,
    ExperimentConfig,
    ExperimentProgress,
    ExperimentRun,
    grid_cells,
    load_run,
    utc_now,
    variant_parts,
    write_run_json,
)
from analysis.files import atomic_write_text
from analysis.grid_engine import DEFAULT_CPUS_PER_CELL, Engine, limit_tensorflow_threads, run_grid
from analysis.masking import MASKS
from analysis.trainee import CurvePoint

__all__ = [
    "GAZE_VARIANTS",
    "METHODS",
    "LaunchRequest",
    "SplitUse",
    "annotate_run",
    "end_run",
    "execute",
    "limit_threads",
    "main",
    "mark_run",
    "parse_event",
    "partial_curves",
    "progress_event",
    "progress_from_event",
    "run_state",
    "split_use",
    "variant_names",
]

#: The Trainees on human-gaze masks: masked throughout, or switching to the originals (RBDM §6).
GAZE_VARIANTS: Final = ("gaze", "gaze+switch")
#: What the launcher offers: the unmasked baseline, each relevance mask of RBDM §5.4, human gaze, the
#: fusion of gaze and relevance (§7) and the ground-truth regions of synthetic faces — the mask sources
#: of ``rbdm experiment`` (:data:`analysis.experiment.MASK_SOURCES`).
METHODS: Final = ("none", *MASKS, "gaze", "fusion", "regions")
#: Mask sources that need a study's recorded fixations.
_STUDY_SOURCES: Final = frozenset({"gaze", "fusion"})

_SWITCH = "+switch"
#: The grid's variants as the form lists them: the paper's seven first (RBDM §5.5), then the others.
_GRID_ORDER: Final = tuple(
    sorted(
        (v for v in ALL_VARIANTS if v not in GAZE_VARIANTS),
        key=lambda v: (variant_parts(v)[0] in ("fusion", "regions"), ALL_VARIANTS.index(v)),
    )
)
#: Stages of :func:`analysis.experiment.run_experiment` that do not poll ``cancel`` themselves.
_UNPOLLED_STAGES: Final = frozenset({"loading", "relevance", "masking"})


def variant_names(
    methods: Iterable[str], *, masked: bool = True, switch: bool = True
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Trainee variants of a choice of masking methods: ``(grid variants, gaze variants)``.

    Parameters
    ----------
    methods : iterable of str
        Names from :data:`METHODS`; ``"none"`` is the unmasked baseline.
    masked : bool
        Train a Trainee on each method's masked images throughout (``negative``, ``gaze`` ...).
    switch : bool
        Train a Trainee on each method's masked images for ``switch_epoch`` epochs, then on the originals
        (``negative+switch``, ``gaze+switch`` ...; RBDM §5.5).

    Returns
    -------
    tuple of (tuple of str, tuple of str)
        The grid's variants in the order of :data:`analysis.experiment.ALL_VARIANTS` (the paper's seven,
        then ``fusion`` and ``regions`` ones), and those of :data:`GAZE_VARIANTS`.

    Raises
    ------
    ValueError
        For an unknown method, or masking methods without ``masked`` or ``switch``.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5 (seven Trainees) and §6.
    """
    chosen = set(methods)
    unknown = sorted(chosen - set(METHODS))
    if unknown:
        raise ValueError(f"unknown masking methods {unknown!r}; expected some of {METHODS!r}.")
    if chosen - {"none"} and not (masked or switch):
        raise ValueError(
            "masking methods need 'masked throughout', 'switch to the originals', or both; choose one."
        )
    wanted = {"none"} & chosen
    for method in chosen - {"none"}:
        wanted |= {method} if masked else set()
        wanted |= {method + _SWITCH} if switch else set()
    grid = tuple(v for v in _GRID_ORDER if v in wanted)
    gaze = tuple(v for v in GAZE_VARIANTS if v in wanted)
    return grid, gaze


def _needs_study(variants: Iterable[str]) -> bool:
    return any(variant_parts(v)[0] in _STUDY_SOURCES for v in variants)


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """One run to launch: the grid's config, the run folder and the gaze Trainees.

    Parameters
    ----------
    config : ExperimentConfig
        The Trainees of the grid and every training setting (RBDM §5.5).
    run_dir : str
        The run's folder (:func:`analysis.experiment.new_run_dir`); must not exist yet or be empty.
    study : str or None
        Study file (SQLite) with recorded fixations on the training images, for :data:`GAZE_VARIANTS`.
    gaze_variants : tuple of str
        Which of :data:`GAZE_VARIANTS` to train after the grid.
    nice : int
        Added to the worker process's niceness (0–19): the GUI keeps the CPU when both want it.
    workers : int
        1: the cells train in the worker process, one after the other; N > 1: on a local Ray instance
        with N CPUs, N cells at a time (:class:`analysis.grid_engine.Engine`, as ``rbdm experiment
        --workers``).
    cpus_per_cell : int
        TensorFlow threads (and Ray CPUs) per cell on every engine, as ``rbdm experiment
        --cpus-per-cell``: equal settings give the CLI's curves.

    Raises
    ------
    ValueError
        For unknown gaze variants, gaze or fusion variants without a study, ``gaze+switch`` with a switch
        epoch outside ``1 ≤ switch_epoch < epochs``, a bad ``nice``, ``workers`` or ``cpus_per_cell``.
    """

    config: ExperimentConfig
    run_dir: str
    study: str | None = None
    gaze_variants: tuple[str, ...] = ()
    nice: int = 10
    workers: int = 1
    cpus_per_cell: int = DEFAULT_CPUS_PER_CELL

    def __post_init__(self) -> None:
        unknown = sorted(set(self.gaze_variants) - set(GAZE_VARIANTS))
        if unknown or len(set(self.gaze_variants)) != len(self.gaze_variants):
            raise ValueError(
                f"gaze_variants must be distinct names of {GAZE_VARIANTS!r}; got {self.gaze_variants!r}."
            )
        if (self.gaze_variants or _needs_study(self.config.variants)) and not (
            self.study or self.config.gaze_study
        ):
            raise ValueError(
                "gaze masks need a study file with recorded fixations on the training images; choose one, "
                "or leave 'gaze' and 'fusion' out."
            )
        if "gaze+switch" in self.gaze_variants:
            self.config.training.check_switch()
        if isinstance(self.nice, bool) or not isinstance(self.nice, int) or not 0 <= self.nice <= 19:
            raise ValueError(f"nice must be an integer from 0 to 19; got {self.nice!r}.")
        self.engine  # noqa: B018 -- refuses a bad workers or cpus_per_cell with Engine's message

    @property
    def variants(self) -> tuple[str, ...]:
        """Every variant of the run, in training order."""
        return (*self.config.variants, *self.gaze_variants)

    @property
    def run_config(self) -> ExperimentConfig:
        """The config the run folder records: the grid's variants, then the gaze ones, and the study."""
        study = self.study if _needs_study(self.variants) and self.study else self.config.gaze_study
        return dataclasses.replace(self.config, variants=self.variants, gaze_study=study)

    @property
    def n_trainees(self) -> int:
        """Trainees of the whole run (training-set sizes × variants × seeds)."""
        return len(grid_cells(self.run_config))

    @property
    def engine(self) -> Engine:
        """Where the cells run: this process (``workers`` 1) or a local Ray instance."""
        return Engine(workers=self.workers, cpus_per_cell=self.cpus_per_cell)

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON-compatible values."""
        return {
            "config": self.config.to_dict(),
            "run_dir": str(self.run_dir),
            "study": self.study,
            "gaze_variants": list(self.gaze_variants),
            "nice": self.nice,
            "workers": self.workers,
            "cpus_per_cell": self.cpus_per_cell,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> LaunchRequest:
        """Parse :meth:`to_dict`'s output."""
        return cls(
            config=ExperimentConfig.from_dict(raw["config"]),
            run_dir=str(raw["run_dir"]),
            study=None if raw.get("study") in (None, "") else str(raw["study"]),
            gaze_variants=tuple(raw.get("gaze_variants", ())),
            nice=int(raw.get("nice", 10)),
            workers=int(raw.get("workers", 1)),
            cpus_per_cell=int(raw.get("cpus_per_cell", DEFAULT_CPUS_PER_CELL)),
        )


# --------------------------------------------------------------------------------------------------------
# The JSON-lines channel
# --------------------------------------------------------------------------------------------------------


def progress_event(progress: ExperimentProgress) -> dict[str, Any]:
    """A progress record as the ``progress`` event written on the channel."""
    return {
        "event": "progress",
        "stage": progress.stage,
        "done": progress.done,
        "total": progress.total,
        "message": progress.message,
        "variant": progress.variant,
        "seed": progress.seed,
        "point": None if progress.point is None else progress.point.as_row(),
        "train_size": progress.train_size,
        "running": progress.running,
        "failed": progress.failed,
        "eta_s": progress.eta_s,
    }


def progress_from_event(event: Mapping[str, Any]) -> ExperimentProgress:
    """The :class:`analysis.experiment.ExperimentProgress` record of a ``progress`` event."""
    point = event.get("point")
    seed, size, eta_s = event.get("seed"), event.get("train_size"), event.get("eta_s")
    return ExperimentProgress(
        stage=str(event["stage"]),
        done=int(event["done"]),
        total=int(event["total"]),
        message=str(event.get("message", "")),
        variant=None if event.get("variant") is None else str(event["variant"]),
        seed=None if seed is None else int(seed),
        point=None if point is None else CurvePoint.from_row(point),
        train_size=None if size is None else int(size),
        running=int(event.get("running") or 0),
        failed=int(event.get("failed") or 0),
        eta_s=None if eta_s is None else float(eta_s),
    )


def parse_event(line: str | bytes) -> dict[str, Any] | None:
    """One line of the channel as an event dict; None for a blank line or one that is not an event."""
    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
    text = text.strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("event"), str):
        return None
    return value


# --------------------------------------------------------------------------------------------------------
# The run folder's status
# --------------------------------------------------------------------------------------------------------


def mark_run(run_dir: str | Path, *, status: str, error: str = "") -> bool:
    """Rewrite the status in a run folder's ``run.json`` (e.g. ``cancelled`` after the worker was killed).

    ``finished_utc`` becomes now (empty for ``running``), ``error`` the given text. The file is replaced
    atomically. Returns False when the folder has no ``run.json`` (the run never started).
    """
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return False
    record = json.loads(path.read_text(encoding="utf-8"))
    record.update(
        status=status,
        error=error,
        finished_utc="" if status == "running" else datetime.now(UTC).isoformat(timespec="seconds"),
    )
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return True


def end_run(request: LaunchRequest, *, status: str, error: str = "") -> None:
    """Record how a run ended when its worker could not say so: ``status`` in the folder's ``run.json``.

    A worker stopped before it wrote ``run.json`` (cancelled while Python and TensorFlow still loaded, on
    a busy machine a niced worker can take longer than the cancel grace) leaves no record; the folder
    then gets a fresh ``run.json`` of the request's config, no results, and ``status``, so the Experiments
    screen and ``rbdm experiment`` see a cancelled (resumable) or failed run instead of nothing.
    """
    if mark_run(request.run_dir, status=status, error=error):
        return
    now = utc_now()
    folder = Path(request.run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_run_json(ExperimentRun(folder, request.run_config, status, now, finished_utc=now, error=error))


def annotate_run(run_dir: str | Path, **fields: Any) -> bool:
    """Add top-level ``fields`` to a run folder's ``run.json`` (atomically); False when there is none."""
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return False
    record = json.loads(path.read_text(encoding="utf-8"))
    record.update(fields)
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=True) + "\n")
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(run: ExperimentRun) -> str:
    """The status to show: ``interrupted`` for a run still "running" whose worker process is gone."""
    if run.status != "running":
        return run.status
    try:
        record = json.loads((run.run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return run.status
    pid = record.get("worker_pid")
    if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 and _alive(pid):
        return run.status
    return "interrupted"


def partial_curves(run: ExperimentRun) -> dict[tuple[str, int], tuple[CurvePoint, ...]]:
    """The run's curves, completed from each Trainee's own ``curves.csv`` (written point by point).

    A run that died mid-Trainee has the points that Trainee reached in its folder only; they are added
    for the (variant, seed) pairs the run's ``curves.csv`` lacks or holds fewer points of.
    """
    curves: dict[tuple[str, int], tuple[CurvePoint, ...]] = {k: tuple(v) for k, v in run.curves.items()}
    for file in sorted((run.run_dir / "trainees").glob("*-seed*/curves.csv")):
        variant, _, seed_text = file.parent.name.rpartition("-seed")
        if not seed_text.lstrip("-").isdigit():
            continue
        key = (variant, int(seed_text))
        points = _read_points(file)
        if len(points) > len(curves.get(key, ())):
            curves[key] = points
    return curves


def _read_points(file: Path) -> tuple[CurvePoint, ...]:
    """The curve points of a Trainee's ``curves.csv`` up to the first line a kill cut short."""
    points = []
    try:
        with file.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                try:
                    points.append(CurvePoint.from_row(row))
                except (KeyError, TypeError, ValueError):
                    break
    except OSError:
        return ()
    return tuple(points)


@dataclass(frozen=True, slots=True)
class SplitUse:
    """How many images of each split a run really uses, against what it asked for.

    Parameters
    ----------
    n_train, n_val : int
        Images drawn from the training and validation splits.
    warnings : tuple of str
        One line per request that could not be met.
    """

    n_train: int
    n_val: int
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The ``used`` record of ``run.json`` (and of the ``used`` event)."""
        return {"n_train": self.n_train, "n_val": self.n_val, "warnings": list(self.warnings)}


def split_use(config: ExperimentConfig) -> SplitUse:
    """The images per split ``config`` draws (the same draw as :func:`analysis.experiment.load_grid_data`:
    the training pool is the largest training-set size; the test images are part of the validation draw).

    Only the labels are read, no pixels; a cap above the split's size is met with the whole split and
    a warning that says so.
    """
    from analysis.datasets import open_dataset, subset_positions

    loader = open_dataset(config.dataset, size=config.size_px, rgb=config.rgb)
    counts, warnings = [], []
    pool = None if None in config.sizes else max(n for n in config.sizes if n is not None)
    for split, asked in ((config.train_split, pool), (config.val_split, config.n_val)):
        labels = loader.labels(split)
        rng = np.random.default_rng(config.subset_seed)
        chosen = len(subset_positions(labels, max_count=asked, rng=rng))
        counts.append(chosen)
        if asked is not None and chosen < asked:
            warnings.append(
                f"{split}: {chosen} images instead of the {asked} asked for; {config.dataset} has only "
                f"{len(labels)} in that split."
            )
    return SplitUse(counts[0], counts[1], tuple(warnings))


# --------------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------------


class _Cancelled(Exception):
    """Raised from the progress callback to stop a stage that does not poll ``cancel``."""


def execute(
    request: LaunchRequest,
    *,
    on_progress: Callable[[ExperimentProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> ExperimentRun:
    """Run the grid of ``request``, gaze Trainees included, on its engine; write the run folder.

    The same code as ``rbdm experiment``: :func:`analysis.grid_engine.run_grid` on
    :attr:`LaunchRequest.engine`. With ``workers`` 1 the cells train in this process, whose TensorFlow
    threads are the caller's to set first (:func:`main` does, as the CLI does:
    :func:`limit_threads`), so that equal settings give the CLI's curves. A run folder holding an
    unfinished run of the same config is resumed: its finished cells are kept, the others trained.

    Parameters
    ----------
    request : LaunchRequest
        What to run, and where.
    on_progress : callable, optional
        Receives :class:`analysis.experiment.ExperimentProgress` records; the last one's stage is
        ``finished`` or ``cancelled``.
    cancel : callable, optional
        Polled between steps (and between batches of relevance maps); True stops the run as ``cancelled``.

    Returns
    -------
    ExperimentRun
        The run folder as stored.

    Raises
    ------
    Exception
        Whatever stopped the run; ``run.json`` then says ``failed``.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5 and §6.
    """
    report = on_progress or (lambda _: None)
    stopped = cancel or (lambda: False)
    record: dict[str, Any] = {}
    try:
        record["used"] = split_use(request.config).as_dict()
    except (OSError, ValueError, AnalysisError):
        pass  # run_experiment reports the same problem with its own message
    recorded = False

    def forward(progress: ExperimentProgress) -> None:
        nonlocal recorded
        if not recorded:  # run.json exists from the first report on
            recorded = annotate_run(request.run_dir, worker_pid=os.getpid(), **record)
        if progress.stage in _UNPOLLED_STAGES and stopped():
            raise _Cancelled
        report(progress)

    try:
        run = _execute(request, forward, report, stopped)
    finally:
        annotate_run(request.run_dir, **record)  # analysis rewrote run.json at the end
    return run


def _execute(
    request: LaunchRequest,
    forward: Callable[[ExperimentProgress], None],
    report: Callable[[ExperimentProgress], None],
    stopped: Callable[[], bool],
) -> ExperimentRun:
    config, viewings = request.run_config, None
    if _needs_study(config.variants):
        from tracking.study import read_image_fixations

        shape = (config.size_px, config.size_px)
        viewings = read_image_fixations(str(config.gaze_study), shape, angle_deg=config.angle_deg)
    try:
        outcome = run_grid(
            config,
            request.run_dir,
            engine=request.engine,
            viewings=viewings,
            on_progress=forward,
            cancel=stopped,
        )
    except _Cancelled:
        mark_run(request.run_dir, status="cancelled")
        report(ExperimentProgress("cancelled", 0, request.n_trainees, f"run cancelled: {request.run_dir}"))
        return load_run(request.run_dir)
    run = outcome.run
    if request.gaze_variants:
        _write_gaze_record(request, run)
    return run


def limit_threads(request: LaunchRequest) -> None:
    """Limit this process's TensorFlow threads to ``cpus_per_cell`` when its cells train here.

    What ``rbdm experiment`` does before training in its process; on Ray each task limits its own.
    """
    if not request.engine.on_ray:
        limit_tensorflow_threads(request.cpus_per_cell)


def _write_gaze_record(request: LaunchRequest, run: ExperimentRun) -> None:
    """``gaze.json``: the study and the gaze variants, so that the screen can launch the run again."""
    record: dict[str, Any] = {"study": str(request.study), "variants": list(request.gaze_variants)}
    record |= {"n_fixated_images": run.masked_images.get("gaze", 0), "n_train_images": max(run.train_sizes)}
    atomic_write_text(Path(request.run_dir) / "gaze.json", json.dumps(record, indent=2) + "\n")


# --------------------------------------------------------------------------------------------------------
# The process
# --------------------------------------------------------------------------------------------------------


def _json_channel() -> IO[str]:
    """A line-buffered writer on the real standard output; file descriptor 1 then points to stderr, so
    that nothing but events reaches the launcher on stdout (TensorFlow writes to fd 1 and 2 directly)."""
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    return channel


def _install_cancel(flag: threading.Event, *, stdin_control: bool) -> None:
    """SIGTERM/SIGINT set the flag (a second signal stops at once); with ``stdin_control`` so does a line
    ``cancel`` or the end of standard input."""

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if flag.is_set():
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        flag.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if stdin_control:

        def listen() -> None:
            for line in sys.stdin:
                if line.strip() == "cancel":
                    break
            flag.set()

        threading.Thread(target=listen, name="stdin-control", daemon=True).start()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m rbdm_gui.workflows.experiment_worker",
        description="Run one experiment (RBDM §5.5, §6) and report it as JSON lines on stdout.",
    )
    parser.add_argument("request", type=Path, help="JSON file with LaunchRequest.to_dict()")
    parser.add_argument(
        "--stdin-control",
        action="store_true",
        help="cancel on a line 'cancel' on stdin, or when stdin closes (the launcher has gone)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the request; write events on stdout. Exit status 0 for a finished or cancelled run, else 1."""
    args = _parser().parse_args(argv)
    channel = _json_channel()
    run_dir = ""
    flag = threading.Event()

    def emit(event: Mapping[str, Any]) -> None:
        if flag.is_set() and channel.closed:
            return
        try:
            channel.write(json.dumps(event) + "\n")
            channel.flush()
        except (BrokenPipeError, ValueError, OSError):  # the launcher has gone: cancel, keep the curves
            flag.set()
            with contextlib.suppress(OSError, ValueError):
                channel.close()

    try:
        request = LaunchRequest.from_dict(json.loads(Path(args.request).read_text(encoding="utf-8")))
        run_dir = request.run_dir
        _install_cancel(flag, stdin_control=args.stdin_control)
        if request.nice and hasattr(os, "nice"):
            os.nice(request.nice)
        emit({"event": "started", "run_dir": run_dir, "pid": os.getpid()})
        with contextlib.suppress(OSError, ValueError, AnalysisError):
            emit({"event": "used", **split_use(request.config).as_dict()})
        limit_threads(request)
        run = execute(request, on_progress=lambda p: emit(progress_event(p)), cancel=flag.is_set)
    except Exception as err:
        traceback.print_exc()
        emit({"event": "failed", "error": str(err) or type(err).__name__, "run_dir": run_dir})
        return 1
    emit({"event": "done", "status": run.status, "run_dir": str(run.run_dir)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
