"""The live monitor's running RBDM Table 1: the participant against the other annotators and the Trainer.

:func:`participant_table` asks :class:`tracking.study.StudyComparison` for the Compare screen's numbers
(its Table 1 with every annotator and the Trainer, and how many stimuli each pair was compared on,
:attr:`tracking.study.StudyTables.pair_counts`) over the stimuli the participant has labelled, and
keeps the rows that involve the participant. :class:`TableRunner` computes it in a separate process,
so that the participant's screen never waits for it; :class:`RunningTable` keeps a
:class:`~rbdm_gui.workflows.monitor_model.MonitorModel`'s table up to date: recomputed whenever the
model says the numbers changed (a trial stored, a trial marked bad). Nothing here imports Qt.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1 (the comparison of
   annotators and the Trainer's saliency).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from analysis.metrics import ComparisonTable

if TYPE_CHECKING:
    from rbdm_gui.workflows.monitor_model import MonitorModel

__all__ = ["ParticipantTable", "RunningTable", "TableRequest", "TableRunner", "participant_table"]


@dataclass(frozen=True, slots=True, eq=False)
class ParticipantTable:
    """RBDM Table 1 rows of one participant against the study's other annotators and the Trainer.

    Parameters
    ----------
    participant : str
        The participant.
    table : ComparisonTable
        The rows of the study's Table 1 (as the Compare screen computes it, all annotators chosen)
        in which the participant is ``ID_1`` or ``ID_2``, over the stimuli the participant labelled.
    counts : mapping of (str, str) to int
        Stimuli each row was compared on (:attr:`tracking.study.StudyTables.pair_counts`).
    n_stimuli : int
        Stimuli the participant has labelled in the study.
    others : tuple of str
        The other annotators of the study.
    model_id : str or None
        The Trainer's row id; None without a Trainer.
    notes : tuple of str
        What to know about the numbers (no other annotator yet, all-zero relevance...).
    """

    participant: str
    table: ComparisonTable
    counts: Mapping[tuple[str, str], int]
    n_stimuli: int
    others: tuple[str, ...]
    model_id: str | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TableRequest:
    """What :func:`participant_table` needs (picklable: it crosses into the worker process).

    Parameters
    ----------
    study_path : str
        The study file.
    participant : str
        The participant of the running session.
    stimulus_set : str or None
        The session's stimulus-set key.
    trainer_path : str or None
        The Trainer (``.keras``); None compares the annotators only.
    analyzer : str
        Relevance analyzer (deep Taylor, as the Compare screen).
    stimulus_ids : tuple of str
        The session's stimuli: their relevance is computed once, in one batch.
    """

    study_path: str
    participant: str
    stimulus_set: str | None = None
    trainer_path: str | None = None
    analyzer: str = "deep_taylor"
    stimulus_ids: tuple[str, ...] = ()


_IMAGES: dict[tuple[str, str], dict[str, NDArray[np.float32]]] = {}
_RELEVANCE: dict[tuple[str, str, str], tuple[dict[str, NDArray[np.float32]], dict[str, str]]] = {}


def participant_table(request: TableRequest) -> ParticipantTable:
    """The running RBDM Table 1 of a participant: the Compare screen's numbers, this participant's rows.

    Reads the study file read-only (:func:`tracking.study.read_study`), builds a
    :class:`~tracking.study.StudyComparison` with every annotator (and the Trainer's relevance, cached
    on disk as the Compare screen does) over the stimuli the participant has labelled, and keeps the
    rows that involve the participant. Images and relevance maps are kept in memory between calls.

    Raises
    ------
    StoreError
        When the study holds no finished trial of the stimulus set yet.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.2 and Table 1.
    """
    from tracking.study import (
        ModelRelevance,
        StudyComparison,
        default_cache_dir,
        read_study,
        trainer_info,
    )

    _wait_while_held()
    study = read_study(request.study_path, stimulus_set=request.stimulus_set)
    who = request.participant
    own = tuple(s for s in study.stimuli if who in study.viewings[s])
    others = tuple(a for a in study.annotators if a != who)
    images = _study_images(study)
    trainer = trainer_info(request.trainer_path) if request.trainer_path else None
    sub = replace(study, stimuli=own)
    comparison = StudyComparison(sub, images, trainer=trainer)
    notes = []
    if trainer is not None and own:
        maps, predicted = _relevance(study, images, trainer, request, default_cache_dir(study.path))
        comparison.set_relevance(ModelRelevance({s: maps[s] for s in own}, {s: predicted[s] for s in own}))
        empty = [s for s in own if not maps[s].any()]
        if empty:
            notes.append(f"{len(empty)} of {len(own)} relevance maps are all zero: no model heatmap there.")
    if not others:
        notes.append("no other annotator in the study yet: only the Trainer to compare with.")
    _wait_while_held()
    tables = comparison.tables(cancelled=_wait_while_held)
    rows = tuple(r for r in tables.study.rows if who in (r.id_1, r.id_2))
    return ParticipantTable(
        participant=who,
        table=ComparisonTable(metrics=tables.study.metrics, rows=rows),
        counts={pair: n for pair, n in tables.pair_counts.items() if who in pair},
        n_stimuli=len(own),
        others=others,
        model_id=comparison.model_id,
        notes=(*notes, *(n for n in tables.study.notes if who in n)),
    )


def _study_images(study: Any) -> dict[str, NDArray[np.float32]]:
    """Every stimulus image of the study, decoded once per process."""
    from tracking.study import load_stimulus_images

    cache = _IMAGES.setdefault((study.stimuli_spec, study.split), {})
    missing = [s for s in study.stimuli if s not in cache]
    if missing:
        cache.update(load_stimulus_images(study, stimuli=missing))
    return {s: cache[s] for s in study.stimuli}


def _relevance(
    study: Any,
    images: Mapping[str, NDArray[np.float32]],
    trainer: Any,
    request: TableRequest,
    cache_dir: Path,
) -> tuple[dict[str, NDArray[np.float32]], dict[str, str]]:
    """The Trainer's relevance of the session's and the study's stimuli, computed once per process."""
    from tracking.study import load_stimulus_images, model_relevance

    key = (request.study_path, str(trainer.path), request.analyzer)
    maps, predicted = _RELEVANCE.setdefault(key, ({}, {}))
    wanted = [s for s in dict.fromkeys((*request.stimulus_ids, *study.stimuli)) if s not in maps]
    if wanted:
        more = load_stimulus_images(study, stimuli=[s for s in wanted if s not in images])
        batch = {s: images[s] if s in images else more[s] for s in wanted}
        found = model_relevance(batch, trainer, analyzer=request.analyzer, cache_dir=cache_dir)
        maps.update(found.maps)
        predicted.update(found.predicted)
    return maps, predicted


class TableRunner:
    """Computes :func:`participant_table` away from the GUI thread: the newest request wins.

    Parameters
    ----------
    in_process : bool
        Compute in a separate process (the default: the participant's screen never competes with it
        for the interpreter) or, with False, on a thread of this one (tests).

    Notes
    -----
    :meth:`request` queues a computation (replacing one still waiting); :meth:`poll`, called from the
    view's timer, returns the finished result (a :class:`ParticipantTable` or the exception) once.
    The worker process runs at the lowest scheduling priority with one thread for numpy and
    TensorFlow (:func:`_quiet_worker`), so that it takes only CPU time the participant's screen does
    not need; :meth:`start` starts it ahead of the first request (its imports take a while).
    :meth:`hold` makes it wait (between stimuli) while the participant's screen shows the timed
    phases (blank, cross, blank), whose lengths are measured to the frame: on a busy machine its
    work there cost phase errors (``benchmarks.protocol_timing --monitor``).
    """

    def __init__(self, *, in_process: bool = True) -> None:
        self._in_process = in_process
        self._executor: Any = None
        self._future: Future[ParticipantTable] | None = None
        self._waiting: TableRequest | None = None
        self._hold: Any = multiprocessing.get_context("spawn").Event() if in_process else None

    @property
    def busy(self) -> bool:
        """A computation runs or waits."""
        return self._future is not None or self._waiting is not None

    def hold(self, held: bool) -> None:
        """Make the worker wait (True) or go on (False); it checks between steps and stimuli."""
        if self._hold is not None and held != self._hold.is_set():
            self._hold.set() if held else self._hold.clear()

    def start(self) -> None:
        """Start the worker now (it imports the comparison's modules), instead of at the first request."""
        if self._executor is None:
            self._executor = self._new_executor()
            with _environment(_ONE_THREAD if self._in_process else {}):  # the child inherits it at spawn
                self._executor.submit(_warm_up)

    def request(self, request: TableRequest) -> None:
        """Compute the table for ``request`` (after the one running, if any)."""
        self._waiting = request
        if self._future is None:
            self._submit()

    def poll(self) -> ParticipantTable | BaseException | None:
        """The finished computation's result (once), or None while it runs or when nothing was asked."""
        future = self._future
        if future is None or not future.done():
            return None
        self._future = None
        if self._waiting is not None:
            self._submit()
        error = future.exception()
        return error if error is not None else future.result()

    def wait(self, timeout_s: float) -> ParticipantTable | BaseException | None:
        """Block until the running computation ends (tests and benchmarks); its result as :meth:`poll`."""
        future = self._future
        if future is None:
            return None
        try:
            future.exception(timeout=timeout_s)
        except TimeoutError:
            return None
        return self.poll()

    def close(self) -> None:
        """Stop the worker; a computation still running is abandoned (idempotent)."""
        executor, self._executor = self._executor, None
        self._future, self._waiting = None, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _submit(self) -> None:
        request, self._waiting = self._waiting, None
        if request is None:
            return
        self.start()
        self._future = self._executor.submit(participant_table, request)

    def _new_executor(self) -> Any:
        if self._in_process:
            context = multiprocessing.get_context("spawn")  # never fork a process that runs Qt
            return ProcessPoolExecutor(
                1, mp_context=context, initializer=_quiet_worker, initargs=(self._hold,)
            )
        from concurrent.futures import ThreadPoolExecutor

        return ThreadPoolExecutor(1, thread_name_prefix="monitor-table")


class RunningTable:
    """Keeps a monitor's running Table 1 current: recomputed as soon as the model says its numbers changed.

    Parameters
    ----------
    model : MonitorModel
        The monitor's model. Its ``table_outdated`` news (a trial stored, a trial marked bad in the
        store) asks ``runner`` for a new table; the table shown meanwhile says "computing…".
    runner : TableRunner
        Computes the table (the newest request wins); it may serve one session after another.
    request : TableRequest
        The session's study, participant, stimulus set and Trainer.

    Notes
    -----
    Call :meth:`poll` from the view's timer: it hands a finished table, or why there is none, to the
    model. :meth:`close` stops listening to the model (the runner stays).
    """

    def __init__(self, model: MonitorModel, runner: TableRunner, request: TableRequest) -> None:
        self.model = model
        self.runner = runner
        self.request = request
        self._unsubscribe = model.table_outdated.subscribe(lambda _reason: self.refresh())

    def refresh(self) -> None:
        """Ask for the table now (a resumed session's stored trials, or the model said so)."""
        self.runner.request(self.request)
        self.model.set_table(None, "computing…")

    def poll(self) -> bool:
        """Hand the finished computation, if any, to the model; whether one was handed over."""
        result = self.runner.poll()
        if isinstance(result, ParticipantTable):
            self.model.set_table(result, "computing…" if self.runner.busy else "")
        elif isinstance(result, BaseException):
            self.model.set_table(None, f"not computed: {result}")
        return result is not None

    def close(self) -> None:
        """Stop listening to the model (idempotent)."""
        self._unsubscribe()


#: Environment of the worker process: one thread for BLAS, OpenMP and TensorFlow's thread pools.
_ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for a ``with`` block (while the worker process is spawned)."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


#: In the worker process: set while the participant's screen shows a timed phase (:meth:`TableRunner.hold`).
_HOLD: Any = None
#: The longest a worker waits for a hold to end before it goes on anyway.
_MAX_HOLD_S = 30.0


def _wait_while_held() -> bool:
    """Wait while the hold is set (at most :data:`_MAX_HOLD_S`); never cancels (returns False)."""
    deadline = time.monotonic() + _MAX_HOLD_S
    while _HOLD is not None and _HOLD.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    return False


def _quiet_worker(hold: Any = None) -> None:
    """The worker process's initializer: lowest priority, one thread (set before numpy or TF load)."""
    global _HOLD
    _HOLD = hold
    os.environ.update(_ONE_THREAD)
    warnings.filterwarnings("ignore", module=r"keras(\.|$)")  # Keras 2's deprecation notes, once per map
    if hasattr(os, "nice"):
        os.nice(19)


def _warm_up() -> None:
    """Import what :func:`participant_table` needs, so that the first table comes sooner."""
    import tracking.study  # noqa: F401
