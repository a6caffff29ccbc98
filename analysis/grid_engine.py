"""Experiment grids on Ray: every cell a task, the grid's data shared once through Ray's object store.

An experiment grid (:func:`analysis.experiment.grid_cells`) is variants × seeds × training-set sizes, and
each :class:`~analysis.experiment.Cell` is an independent Trainee run (:func:`analysis.experiment.run_cell`).
:func:`run_grid` runs the cells

- in this process, one after the other (``Engine(workers=1)``, today's :func:`run_experiment` path), or
- as Ray tasks: on a local Ray instance with ``workers`` CPUs (``Engine(workers=N)``, N > 1), or on an
  existing Ray cluster (``Engine(address="host:6379")``; every node needs this project's environment).

The relevance maps and masked images (:class:`~analysis.experiment.GridData`) are computed once on the
driver and put into the object store (``ray.put``); a node reads them from there, never from a shared disk.
A task limits TensorFlow's thread pools to the CPUs Ray granted it, trains into a temporary folder on its
node and returns the cell's result, curve points and folder files; the driver writes them into the run
folder. With deterministic training (RBDM §5.6) a cell gives the same curves on any engine at equal
TensorFlow threads (oneDNN splits its sums by thread count): in this process, limit them first with
:func:`limit_tensorflow_threads` (``rbdm experiment`` does).

A run is resumable: the driver rewrites ``results.csv`` and ``curves.csv`` after every cell, and
:func:`run_grid` on a folder that holds an unfinished run of the same config keeps its finished cells and
trains only the missing ones (:func:`resumable_run` finds such a folder). A failing cell is reported with
its error (:class:`CellFailure`) and does not stop the others; the run is then stored as ``failed`` with
every finished cell. Ray re-runs a task whose worker or node died (``max_retries``).

Ray is imported inside functions only (:func:`analysis._optional.import_optional`), like TensorFlow.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.5, §5.6 and §6.
.. [2] Moritz et al. (2018), Ray: A Distributed Framework for Emerging AI Applications, OSDI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from analysis._optional import import_optional, import_tensorflow
from analysis.experiment import (
    Cell,
    ExperimentConfig,
    ExperimentProgress,
    ExperimentRun,
    GridData,
    GridTracker,
    VariantResult,
    finish_run,
    grid_cells,
    grid_status,
    load_run,
    nested_subset,
    prepare_grid_data,
    record_interruption,
    run_cell,
    run_experiment,
    trainee_dir,
    utc_now,
    variant_parts,
    write_run_json,
    write_tables,
)
from analysis.files import atomic_write_bytes

if TYPE_CHECKING:
    from types import ModuleType

    from analysis.masked_dataset import ImageFixations
    from analysis.trainee import CurvePoint

__all__ = [
    "DEFAULT_CPUS_PER_CELL",
    "DEFAULT_TASK_RETRIES",
    "CellFailure",
    "Engine",
    "GridOutcome",
    "finished_cells",
    "grid_status",
    "limit_tensorflow_threads",
    "ray_session",
    "resumable_run",
    "run_grid",
]

#: CPUs Ray reserves for one cell (and TensorFlow's thread pools of that task).
DEFAULT_CPUS_PER_CELL: Final = 1
#: How often Ray re-runs a cell whose worker process or node died (not a cell that raised).
DEFAULT_TASK_RETRIES: Final = 3
#: Seconds between the driver's looks at finished tasks and progress events.
_POLL_S: Final = 0.25

CellOutcome = tuple[VariantResult, tuple["CurvePoint", ...]]


@dataclass(frozen=True, slots=True)
class Engine:
    """Where the cells of a grid run.

    Parameters
    ----------
    workers : int
        1: in this process, one cell after the other. N > 1: a local Ray instance with N CPUs, N cells at a
        time (ignored with ``address``).
    address : str or None
        Join this Ray cluster (``ray start --head`` prints it, e.g. ``"192.168.1.10:6379"``; ``"auto"``
        finds a cluster started on this machine) instead of starting a local instance.
    cpus_per_cell : int
        CPUs Ray reserves for each cell; TensorFlow's thread pools get as many threads. In this process the
        caller sets the threads (:func:`limit_tensorflow_threads`), since they are the process's.
    """

    workers: int = 1
    address: str | None = None
    cpus_per_cell: int = DEFAULT_CPUS_PER_CELL

    def __post_init__(self) -> None:
        for name, value in (("workers", self.workers), ("cpus_per_cell", self.cpus_per_cell)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer ≥ 1; got {value!r}.")
        if self.address is not None and not self.address.strip():
            raise ValueError(f"address must name a Ray cluster (host:port or 'auto'); got {self.address!r}.")

    @property
    def on_ray(self) -> bool:
        """Whether the cells run as Ray tasks."""
        return self.address is not None or self.workers > 1


@dataclass(frozen=True, slots=True)
class CellFailure:
    """A cell that raised instead of giving a result (the others went on)."""

    cell: Cell
    error: str


#: What an engine gives per cell: the cell, its outcome or failure, the Ray node it ran on (None here).
Landed = tuple[Cell, CellOutcome | CellFailure, str | None]


@dataclass(frozen=True, slots=True)
class GridOutcome:
    """What :func:`run_grid` did.

    Parameters
    ----------
    run : ExperimentRun
        The run folder as stored (every finished cell, old and new).
    trained : tuple of Cell
        Cells trained by this call, in the order they finished.
    kept : tuple of Cell
        Finished cells found in the folder and not trained again.
    failures : tuple of CellFailure
        Cells that raised, with their errors.
    nodes : mapping of Cell to str
        The Ray node (its id) each cell trained by this call ran on; empty in this process.
    """

    run: ExperimentRun
    trained: tuple[Cell, ...] = ()
    kept: tuple[Cell, ...] = ()
    failures: tuple[CellFailure, ...] = ()
    nodes: Mapping[Cell, str] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------
# Run folders: what is finished, what can be resumed
# --------------------------------------------------------------------------------------------------------


def finished_cells(run: ExperimentRun, data: GridData) -> dict[Cell, CellOutcome]:
    """The cells of ``run`` whose results are stored as finished, with their results and curves.

    A stored row is matched to its cell by variant, seed and the cell's real training-set size (a cell
    asks for a size, the row records the images it got: :func:`analysis.experiment.nested_subset`).
    """
    sizes = {
        cell.train_size: len(nested_subset(data.train.labels, cell.train_size, seed=run.config.subset_seed))
        for cell in grid_cells(run.config)
    }
    rows = {(r.variant, r.seed, r.train_size): r for r in run.results if r.status == "finished"}
    found = {}
    for cell in grid_cells(run.config):
        key = (cell.variant, cell.seed, sizes[cell.train_size])
        if key in rows and key in run.curves_by_size:
            found[cell] = (rows[key], tuple(run.curves_by_size[key]))
    return found


def resumable_run(runs_dir: str | Path, config: ExperimentConfig, *, name: str = "experiment") -> Path | None:
    """The newest run folder in ``runs_dir`` named ``*-<name>`` that ran ``config`` and did not finish.

    Returns None when there is none (start a new run then); this is how re-running the same command
    resumes an interrupted run.
    """
    folder = Path(runs_dir)
    if not folder.is_dir():
        return None
    named = re.compile(rf"(?:.*-)?{re.escape(name)}(?:-\d+)?")  # new_run_dir: <UTC time>-<name>[-k]
    candidates = []
    for run_dir in sorted(folder.iterdir()):
        if not (run_dir / "run.json").is_file() or not named.fullmatch(run_dir.name):
            continue
        with contextlib.suppress(ValueError, KeyError, OSError):
            stored = load_run(run_dir)
            if stored.config == config and stored.status != "finished":
                candidates.append((stored.started_utc, run_dir.name, run_dir))
    return max(candidates)[2] if candidates else None


# --------------------------------------------------------------------------------------------------------
# The driver
# --------------------------------------------------------------------------------------------------------


def run_grid(
    config: ExperimentConfig,
    run_dir: str | Path,
    *,
    engine: Engine | None = None,
    data: GridData | None = None,
    viewings: Mapping[str, Sequence[ImageFixations]] | None = None,
    on_progress: Callable[[ExperimentProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> GridOutcome:
    """Run the grid's missing cells on ``engine`` and store the run folder (resuming an unfinished run).

    Parameters
    ----------
    config : ExperimentConfig
        What to run.
    run_dir : str or Path
        A new or empty folder, or one holding an unfinished run of the same ``config`` (resumed: its
        finished cells are kept, the others trained).
    engine : Engine, optional
        In this process (the default), on local Ray or on a Ray cluster.
    data, viewings, on_progress, cancel
        As for :func:`analysis.experiment.run_experiment`. ``on_progress`` gets, per finished, started or
        failed cell and per curve point, a ``"training"`` record whose ``done`` counts finished cells and
        whose message says how many run and failed and the ETA (:func:`grid_status`). ``cancel`` stops
        the run between steps in this process, and cancels the Ray tasks on Ray.

    Returns
    -------
    GridOutcome
        The stored run (``finished``, ``cancelled``, or ``failed`` when a cell failed) and what happened.

    Raises
    ------
    FileExistsError
        When ``run_dir`` holds files but no run, or a run of another config.
    """
    folder = Path(run_dir)
    engine = engine or Engine()
    stored = _stored_run(folder, config)
    if stored is None and not engine.on_ray:
        run = run_experiment(
            config, folder, data=data, viewings=viewings, on_progress=on_progress, cancel=cancel
        )
        pairs = zip(grid_cells(config), run.results, strict=False)
        return GridOutcome(run, trained=tuple(c for c, r in pairs if r.status == "finished"))
    folder.mkdir(parents=True, exist_ok=True)
    report = on_progress or (lambda _: None)
    stopped = cancel or (lambda: False)
    run = ExperimentRun(folder, config, "running", stored.started_utc if stored else utc_now())
    write_run_json(run)
    try:
        data = data or prepare_grid_data(config, folder, viewings=viewings, report=report)
        _check_masked(config, data)
        counts = {name: len(images.positions) for name, images in data.masked.items()}
        run = dataclasses.replace(run, test_source=data.test_source, masked_images=counts)
        write_run_json(run)
        outcome = _train_missing(run, stored, data, engine, report, stopped)
    except BaseException as err:
        record_interruption(run, err)
        raise
    cells = grid_cells(config)
    status = outcome.run.status
    report(ExperimentProgress(status, len(outcome.run.results), len(cells), f"run {status}: {folder}"))
    return outcome


def _stored_run(folder: Path, config: ExperimentConfig) -> ExperimentRun | None:
    if not folder.exists() or not any(folder.iterdir()):
        return None
    if not (folder / "run.json").is_file():
        raise FileExistsError(f"run folder {str(folder)!r} holds files but no run; choose a new one.")
    stored = load_run(folder)
    if stored.config != config:
        raise FileExistsError(
            f"run folder {str(folder)!r} holds a run of another experiment config; resume it with its own "
            "settings or choose a new folder (new_run_dir)."
        )
    return stored


def _check_masked(config: ExperimentConfig, data: GridData) -> None:
    needed = {m for m in (variant_parts(v)[0] for v in config.variants) if m is not None}
    missing = sorted(needed - set(data.masked))
    if missing:
        raise ValueError(f"the grid data holds no masked images for {missing!r}; compute them first.")


def _train_missing(
    run: ExperimentRun,
    stored: ExperimentRun | None,
    data: GridData,
    engine: Engine,
    report: Callable[[ExperimentProgress], None],
    stopped: Callable[[], bool],
) -> GridOutcome:
    config = run.config
    cells = grid_cells(config)
    done = finished_cells(stored, data) if stored is not None else {}
    kept = tuple(c for c in cells if c in done)
    missing = [c for c in cells if c not in done]
    for cell in missing:  # what an interrupted attempt left (curves, TensorBoard events) goes
        shutil.rmtree(_cell_dir(run.run_dir, config, data, cell), ignore_errors=True)
    tracker = GridTracker(len(cells), len(done), report)
    trained: list[Cell] = []
    failures: list[CellFailure] = []
    run_on = _on_ray if engine.on_ray else _in_process
    source = run_on(config, missing, data, run.run_dir, engine, tracker, stopped)
    nodes: dict[Cell, str] = {}
    for cell, outcome, node in source:
        if isinstance(outcome, CellFailure):
            failures.append(outcome)
            tracker.failed(cell, outcome.error)
            continue
        done[cell] = outcome
        trained.append(cell)
        if node is not None:
            nodes[cell] = node
        _write_tables(run.run_dir, cells, done)
        tracker.finished(cell, outcome[0])
    run = _finish(run, cells, done, failures)
    return GridOutcome(run, tuple(trained), kept, tuple(failures), nodes)


def _cell_dir(run_dir: Path, config: ExperimentConfig, data: GridData, cell: Cell) -> Path:
    size = len(nested_subset(data.train.labels, cell.train_size, seed=config.subset_seed))
    return trainee_dir(run_dir, config, cell.variant, cell.seed, size)


def _write_tables(run_dir: Path, cells: Sequence[Cell], done: Mapping[Cell, CellOutcome]) -> None:
    """``results.csv`` and ``curves.csv`` of the finished cells, in grid order (as the in-process path)."""
    ordered = [c for c in cells if c in done]
    results = [done[c][0] for c in ordered]
    curves = {(c.variant, c.seed, done[c][0].train_size): done[c][1] for c in ordered}
    write_tables(run_dir, results, curves)


def _finish(
    run: ExperimentRun,
    cells: Sequence[Cell],
    done: Mapping[Cell, CellOutcome],
    failures: Sequence[CellFailure],
) -> ExperimentRun:
    ordered = [c for c in cells if c in done]
    results = [done[c][0] for c in ordered]
    curves = {(c.variant, c.seed, done[c][0].train_size): done[c][1] for c in ordered}
    error = ""
    if failures:
        error = f"{len(failures)} of {len(cells)} cells failed: " + "; ".join(
            f"{f.cell.variant}, seed {f.cell.seed}, size {f.cell.train_size or 'all'}: {f.error}"
            for f in failures
        )
    return finish_run(run, results, curves, n_cells=len(cells), error=error)


def _error_text(err: BaseException) -> str:
    cause = getattr(err, "cause", None)
    shown = cause if isinstance(cause, BaseException) else err
    first = (str(shown).strip().splitlines() or [""])[-1 if shown is err else 0]
    return f"{type(shown).__name__}: {first}"


# --------------------------------------------------------------------------------------------------------
# Engines: in this process, or Ray tasks
# --------------------------------------------------------------------------------------------------------


def _in_process(
    config: ExperimentConfig,
    cells: Sequence[Cell],
    data: GridData,
    run_dir: Path,
    engine: Engine,
    tracker: GridTracker,
    stopped: Callable[[], bool],
) -> Iterator[Landed]:
    for cell in cells:
        if stopped():
            return
        tracker.started(cell)
        try:
            result, points = run_cell(
                config, cell, data, run_dir, report=tracker.forward_points(cell), cancel=stopped
            )
        except Exception as err:
            yield cell, CellFailure(cell, _error_text(err)), None
            continue
        if result.status == "cancelled":
            return
        yield cell, (result, points), None


def _ray(module: str = "ray") -> ModuleType:
    return import_optional(module, caller="analysis.grid_engine", package="ray")


@contextlib.contextmanager
def ray_session(engine: Engine) -> Iterator[ModuleType]:
    """Ray for ``engine``: joins its cluster or starts a local instance with ``engine.workers`` CPUs.

    A Ray already initialised in this process (a notebook's, a test's) is used as it is and left running;
    one started here is shut down on exit, also on error.
    """
    ray = _ray()
    if ray.is_initialized():
        yield ray
        return
    if engine.address is not None:
        ray.init(address=engine.address, logging_level="WARNING", log_to_driver=False)
    else:
        ray.init(  # "local": a new instance, even where another Ray runs on this machine (ray start)
            address="local",
            num_cpus=engine.workers * engine.cpus_per_cell,
            include_dashboard=False,
            logging_level="WARNING",
            log_to_driver=False,
        )
    try:
        yield ray
    finally:
        ray.shutdown()


def limit_tensorflow_threads(threads: int) -> int:
    """Limit this process's TensorFlow thread pools (inter- and intra-op) to ``threads``; the limit in force.

    TensorFlow fixes its pools when its context starts, so the first call in a process decides: a Ray
    worker calls this before any TensorFlow work of its first task, and later tasks of the same worker,
    which Ray gives the same resources, find the limit set.
    """
    tf = import_tensorflow("analysis.grid_engine.limit_tensorflow_threads")
    with contextlib.suppress(RuntimeError):  # the context started already: the earlier limit stays
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    return int(tf.config.threading.get_intra_op_parallelism_threads())


class _Inbox:
    """A Ray actor (no CPU) collecting the tasks' news for the driver: cells started, curve points."""

    def __init__(self) -> None:
        self._events: list[tuple[Cell, CurvePoint | None, int | None]] = []

    def put(self, cell: Cell, point: CurvePoint | None, train_size: int | None) -> None:
        self._events.append((cell, point, train_size))

    def take(self) -> list[tuple[Cell, CurvePoint | None, int | None]]:
        events, self._events = self._events, []
        return events


def _cell_task(config: ExperimentConfig, cell: Cell, data: GridData, inbox: Any) -> tuple[Any, ...]:
    """One cell on a Ray worker: threads limited, trained into a node-local folder, its files returned."""
    ray = _ray()
    threads = int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1))
    limit_tensorflow_threads(max(1, threads))
    inbox.put.remote(cell, None, None)

    def on_point(progress: ExperimentProgress) -> None:
        if progress.point is not None:
            inbox.put.remote(cell, progress.point, progress.train_size)

    with tempfile.TemporaryDirectory(prefix="rbdm-cell-") as scratch:
        result, points = run_cell(config, cell, data, scratch, report=on_point)
        folder = trainee_dir(scratch, config, cell.variant, cell.seed, result.train_size)
        files = {
            str(path.relative_to(folder)): path.read_bytes() for path in folder.rglob("*") if path.is_file()
        }
    return result, points, files, ray.get_runtime_context().get_node_id()


def _on_ray(
    config: ExperimentConfig,
    cells: Sequence[Cell],
    data: GridData,
    run_dir: Path,
    engine: Engine,
    tracker: GridTracker,
    stopped: Callable[[], bool],
) -> Iterator[Landed]:
    if not cells:
        return
    with ray_session(engine) as ray:
        strategies = _ray("ray.util.scheduling_strategies")
        here = strategies.NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False
        )  # on the driver's node: a worker node lost mid-run takes no news with it
        inbox = ray.remote(num_cpus=0, scheduling_strategy=here)(_Inbox).remote()
        task = ray.remote(num_cpus=engine.cpus_per_cell, max_retries=DEFAULT_TASK_RETRIES)(_cell_task)
        shared = ray.put(data)
        pending = {task.remote(config, cell, shared, inbox): cell for cell in cells}
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
                for cell, point, size in ray.get(inbox.take.remote()):
                    if point is None:
                        tracker.started(cell)
                    else:
                        tracker.point(cell, point, size)
                if stopped():
                    return
                for ref in ready:
                    yield _collect(ray, ref, pending.pop(ref), config, run_dir)
        finally:
            for ref in pending:
                ray.cancel(ref, force=False)
            ray.kill(inbox)


def _collect(ray: ModuleType, ref: Any, cell: Cell, config: ExperimentConfig, run_dir: Path) -> Landed:
    """A finished task's outcome; its folder's files written into the run folder."""
    try:
        result, points, files, node = ray.get(ref)
    except ray.exceptions.RayError as err:
        return cell, CellFailure(cell, _error_text(err)), None
    folder = trainee_dir(run_dir, config, cell.variant, cell.seed, result.train_size)
    for name, blob in files.items():
        atomic_write_bytes(folder / name, blob)
    return cell, (result, tuple(points)), str(node)
