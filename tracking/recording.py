"""Recording a labeling session: gaze samples, fixations per trial and spoken labels (RBDM §5.3.1).

The gaze driver streams for the whole session into a :class:`GazeRecorder`, which passes every
sample on to the store's :class:`~tracking.store.SampleWriter` and feeds an online fixation
detector (I-DT by default). The detector's input is cut at every phase onset of the protocol, so a
fixation never spans two phases: the fixations of a trial are those that begin while its image is
shown. :class:`LabelingSession` ties a :class:`~tracking.protocol.LabelingProtocol` to the store:
each finished trial is committed with its fixations and frame statistics in one transaction, on
a background thread so that the display never waits for the disk. :class:`SpeechGate` lets a
speech recogniser hear the microphone only while the image is shown.

Nothing here imports Qt: the GUI lends callables (a thread-safe ``deliver`` for recognitions, the
mouse simulator's ``position_source``) and drives the models from its frame timer.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (gaze recorded while labelling,
   labels spoken into a microphone), §5.3.2 (fixations as the heatmaps' points).
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis._validation import check_count
from analysis.datasets import open_dataset
from analysis.geometry import ScreenGeometry, StimulusRect
from tracking.drivers.base import DriverEvent, GazeDriver
from tracking.fixations import FixationDetector
from tracking.protocol import (
    DEFAULT_ORDER_DESIGN,
    FinishedTrial,
    LabelingProtocol,
    Listeners,
    Phase,
    PhaseOnset,
    counterbalanced_order,
)
from tracking.records import (
    SETTING_SPLIT,
    SETTING_STIMULI,
    SETTING_STIMULUS_RECT,
    SETTING_STIMULUS_SET,
    Fixation,
    GazeSample,
    Session,
)
from tracking.speech.base import Recognition, SpeechRecogniser
from tracking.store import SampleWriter, SessionStore

__all__ = [
    "LONG_GAP_MS",
    "SETTING_ORDER_DESIGN",
    "Cancelled",
    "GazeRecorder",
    "LabelingSession",
    "ParticipantState",
    "SessionPlan",
    "SpeechGate",
    "SpokenLabel",
    "StimulusSet",
    "TrialQuality",
    "begin_session",
    "gaze_recording",
    "give_spoken_label",
    "load_stimuli",
    "open_labeling_session",
    "participant_states",
    "plan_session",
    "stimulus_settings",
    "trial_quality",
]


class Cancelled(Exception):
    """Raised by long calls (loading stimuli) when their ``cancelled`` callable returned True."""


# --- gaze ---------------------------------------------------------------------------------------


class GazeRecorder:
    """A driver's ``on_sample``: stores each sample and detects fixations online, phase by phase.

    Parameters
    ----------
    detector : FixationDetector
        An online detector, e.g. ``DETECTORS["idt"](geometry)``.
    sink : callable, optional
        Receives every sample on the driver's thread (``SampleWriter.add``).
    flush : callable, optional
        Makes every sample given to ``sink`` so far durable, raising when it cannot
        (``SampleWriter.flush``); :class:`LabelingSession` calls it before it commits a trial, so a
        trial is never stored as complete without its samples.

    Notes
    -----
    Samples are queued on the driver's thread and fed to the detector by :meth:`process`, which
    the drawing thread calls once per frame with a *watermark*: every sample older than it has
    arrived. Feeding in time order against the phase onsets known by then cuts the detector's
    input exactly at each :meth:`mark`, whatever the delay between a sample and its delivery.
    Samples that do not advance in time are counted in :attr:`skipped` and not fed.
    """

    def __init__(
        self,
        detector: FixationDetector,
        *,
        sink: Callable[[GazeSample], None] | None = None,
        flush: Callable[[], None] | None = None,
    ) -> None:
        if not isinstance(detector, FixationDetector):
            raise TypeError(f"detector must be a FixationDetector; got {type(detector).__name__}.")
        self._detector = detector
        self._sink = sink
        self._flush = flush
        self._lock = threading.Lock()
        self._queue: deque[GazeSample] = deque()
        self._boundaries: deque[float] = deque()
        self._fixations: list[Fixation] = []
        self._taps: list[Callable[[GazeSample], None]] = []
        self._last_fed_ms = -math.inf
        self._watermark_ms = -math.inf
        self._skipped = 0
        self._received = 0

    @property
    def watermark_ms(self) -> float:
        """Samples before this time have been fed to the detector."""
        return self._watermark_ms

    @property
    def skipped(self) -> int:
        """Samples not fed because their time did not advance."""
        return self._skipped

    @property
    def received(self) -> int:
        """Samples received so far."""
        return self._received

    def __call__(self, sample: GazeSample) -> None:
        """Take one sample (driver thread): pass it to the sink and the taps, queue it for detection."""
        if self._sink is not None:
            self._sink(sample)
        for tap in list(self._taps):
            tap(sample)
        with self._lock:
            self._queue.append(sample)
            self._received += 1

    def flush_sink(self) -> None:
        """Block until the samples given to the sink so far are stored (any thread).

        Raises
        ------
        StoreError
            When the sink failed (a full disk): the samples of the trial on screen are not all stored.
        """
        if self._flush is not None:
            self._flush()

    def add_tap(self, tap: Callable[[GazeSample], None]) -> Callable[[], None]:
        """Also pass every sample to ``tap`` (on the driver's thread); returns its remover."""
        self._taps.append(tap)

        def remove() -> None:
            if tap in self._taps:
                self._taps.remove(tap)

        return remove

    def mark(self, t_ms: float) -> None:
        """A phase began at ``t_ms``: no fixation will span this time."""
        with self._lock:
            if self._boundaries and t_ms < self._boundaries[-1]:
                raise ValueError(
                    f"phase onsets must not go back in time; got {t_ms!r} after {self._boundaries[-1]!r}."
                )
            self._boundaries.append(float(t_ms))

    def process(self, until_ms: float) -> None:
        """Feed the queued samples older than ``until_ms`` to the detector, cutting at the marks."""
        with self._lock:
            queue, boundaries = self._queue, self._boundaries
            while queue and queue[0].t_ms < until_ms:
                sample = queue.popleft()
                while boundaries and boundaries[0] <= sample.t_ms:
                    boundaries.popleft()
                    self._fixations += self._detector.flush()
                self._feed(sample)
            while boundaries and boundaries[0] <= until_ms:
                boundaries.popleft()
                self._fixations += self._detector.flush()
            self._watermark_ms = max(self._watermark_ms, until_ms)

    def finish(self) -> None:
        """End of the stream: feed every queued sample, then close the fixation still open."""
        self.process(math.inf)
        with self._lock:
            self._fixations += self._detector.flush()

    def _feed(self, sample: GazeSample) -> None:
        if not sample.t_ms > self._last_fed_ms:
            self._skipped += 1
            return
        self._last_fed_ms = sample.t_ms
        self._fixations += self._detector.feed(sample)

    def fixations_between(self, start_ms: float, stop_ms: float) -> list[Fixation]:
        """Fixations that began in ``[start_ms, stop_ms)`` (all of them once ``watermark_ms >= stop_ms``)."""
        with self._lock:
            return [f for f in self._fixations if start_ms <= f.onset_ms < stop_ms]

    def forget_before(self, t_ms: float) -> None:
        """Drop the fixations that began before ``t_ms`` (they were stored or are not needed)."""
        with self._lock:
            self._fixations = [f for f in self._fixations if f.onset_ms >= t_ms]


@contextmanager
def gaze_recording(
    store: SessionStore, session_id: int, driver: GazeDriver, detector: FixationDetector
) -> Iterator[GazeRecorder]:
    """Stream ``driver`` into the session's sample writer and a :class:`GazeRecorder` for a ``with`` block.

    The driver must be connected; it is stopped and the writer closed on leaving, also on error.

    Raises
    ------
    DriverError
        When the driver cannot start streaming.
    """
    writer: SampleWriter = store.sample_writer(session_id)
    try:
        recorder = GazeRecorder(detector, sink=writer.add, flush=writer.flush)
        driver.start(recorder)
        try:
            yield recorder
        finally:
            driver.stop()
    finally:
        writer.close()


# --- trials -------------------------------------------------------------------------------------


class LabelingSession:
    """Records a running :class:`~tracking.protocol.LabelingProtocol` into the store (RBDM §5.3.1).

    Parameters
    ----------
    store : SessionStore
        The study's store.
    session_id : int
        The session the protocol runs; the protocol's ``start_position`` must be its resume point.
    protocol : LabelingProtocol
        The state machine the view drives; this object marks its phase onsets in ``recorder``.
    recorder : GazeRecorder
        Receives the driver's samples.
    latency_ms : float, optional
        How long after a frame its samples may still arrive from the tracker; a trial is committed
        once the samples up to its stimulus offset are in (after at most this delay).

    Notes
    -----
    The view calls :meth:`begin_frame` and :meth:`frame_presented` for each frame, and the
    protocol's own methods for labels, advancing and pausing. Listeners, called on the view's
    thread: ``committed`` (:class:`~tracking.protocol.FinishedTrial`, once it is safely stored) and
    ``failed`` (str, when the store could not commit a trial, or could not store its gaze samples; the
    trial is then not stored, the view pauses, and the message says what to do).
    """

    def __init__(
        self,
        store: SessionStore,
        session_id: int,
        protocol: LabelingProtocol,
        recorder: GazeRecorder,
        *,
        latency_ms: float = 100.0,
    ) -> None:
        if not (math.isfinite(latency_ms) and latency_ms >= 0):
            raise ValueError(f"latency_ms must be finite and >= 0; got {latency_ms!r}.")
        self.store, self.session_id = store, session_id
        self.protocol, self.recorder = protocol, recorder
        self._latency_ms = float(latency_ms)
        self._pending: deque[FinishedTrial] = deque()
        self._commits: deque[tuple[FinishedTrial, Future[int]]] = deque()
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(1, thread_name_prefix="trial-commit")
        self.committed: Listeners[FinishedTrial] = Listeners()
        self.failed: Listeners[str] = Listeners()
        protocol.phase_started.subscribe(self._on_phase)
        protocol.trial_finished.subscribe(self._pending.append)

    def begin_frame(self, t_ms: float) -> Phase:
        """Same as :meth:`LabelingProtocol.begin_frame`."""
        return self.protocol.begin_frame(t_ms)

    def frame_presented(self, t_ms: float) -> None:
        """Stamp the frame in the protocol, then detect fixations and commit the trials that are complete."""
        self.protocol.frame_presented(t_ms)
        self.poll(t_ms - self._latency_ms)

    def poll(self, watermark_ms: float) -> None:
        """Detect fixations up to ``watermark_ms``, commit the complete trials, report finished commits."""
        self.recorder.process(watermark_ms)
        while (
            self._pending and self._pending[0].trial.phases.stimulus_offset_ms <= self.recorder.watermark_ms
        ):
            self._commit(self._pending.popleft())
        while self._commits and self._commits[0][1].done():
            self._report(*self._commits.popleft())

    def close(self) -> None:
        """Commit every finished trial (waiting for the store) and stop the commit thread (idempotent).

        The protocol is closed first (:meth:`LabelingProtocol.close`), so a trial whose key press
        came after the last frame is kept. Call after the driver has stopped, so that no sample is
        still on its way.
        """
        if self._executor is None:
            return
        self.protocol.close()
        self.poll(math.inf)
        executor, self._executor = self._executor, None
        executor.shutdown(wait=True)
        while self._commits:
            self._report(*self._commits.popleft())

    @property
    def uncommitted(self) -> int:
        """Finished trials not yet confirmed stored."""
        return len(self._pending) + len(self._commits)

    def _on_phase(self, onset: PhaseOnset) -> None:
        self.recorder.mark(onset.t_ms)

    def _commit(self, finished: FinishedTrial) -> None:
        phases = finished.trial.phases
        fixations = self.recorder.fixations_between(phases.stimulus_onset_ms, phases.stimulus_offset_ms)
        self.recorder.forget_before(phases.stimulus_offset_ms)
        assert self._executor is not None
        future = self._executor.submit(self._store_trial, finished, fixations)
        self._commits.append((finished, future))

    def _store_trial(self, finished: FinishedTrial, fixations: list[Fixation]) -> int:
        """Commit a trial only once its samples are stored: a failed sample writer fails the commit."""
        self.recorder.flush_sink()
        return self.store.record_trial(self.session_id, finished.trial, fixations, frames=finished.frames)

    def _report(self, finished: FinishedTrial, future: Future[int]) -> None:
        error = future.exception()
        if error is None:
            self.committed.emit(finished)
            return
        self.failed.emit(
            f"trial {finished.trial.position + 1} ({finished.trial.stimulus_id}) could not be stored: {error}"
        )


def open_labeling_session(
    store: SessionStore,
    pseudonym: str,
    *,
    stimulus_order: Sequence[str],
    settings: Mapping[str, Any],
    geometry: ScreenGeometry,
    tracker: str,
    recogniser: str,
) -> tuple[int, int]:
    """Resume the participant's unfinished session on the same stimulus set, or start a new one.

    A stored session is resumed when its ``settings["stimulus_set"]`` equals ``settings["stimulus_set"]``
    and it still has stimuli without a trial; its own stored order then applies.

    Parameters
    ----------
    store : SessionStore
        The study.
    pseudonym : str
        The participant (created when new).
    stimulus_order : sequence of str
        The order for a new session (see :func:`tracking.protocol.stimulus_order`).
    settings, geometry, tracker, recogniser
        As for :meth:`SessionStore.create_session`.

    Returns
    -------
    (int, int)
        The session id and the position to start at (the store's resume point).
    """
    participant = next((p for p in store.participants() if p.pseudonym == pseudonym), None)
    participant_id = (
        store.create_participant(pseudonym) if participant is None else participant.participant_id
    )
    key = settings.get(SETTING_STIMULUS_SET)
    for session in reversed(store.sessions()):
        if session.participant_id != participant_id or session.settings.get(SETTING_STIMULUS_SET) != key:
            continue
        position = store.resume_point(session.session_id)
        if position < len(session.stimulus_order):
            return session.session_id, position
    session_id = store.create_session(
        participant_id,
        settings=settings,
        geometry=geometry,
        tracker=tracker,
        recogniser=recogniser,
        stimulus_order=stimulus_order,
    )
    return session_id, 0


# --- participants and their sessions -----------------------------------------------------------

#: Session setting naming the counterbalancing design its order came from (a key of
#: :data:`tracking.protocol.ORDER_DESIGNS`).
SETTING_ORDER_DESIGN = "order_design"


@dataclass(frozen=True, slots=True)
class ParticipantState:
    """Where one participant stands on a stimulus set: no session, unfinished or finished.

    Parameters
    ----------
    pseudonym : str
        The participant.
    state : {"none", "unfinished", "finished"}
        ``unfinished`` when a session on the set still has stimuli without a trial (Start resumes
        it), ``finished`` when every session on it is complete, ``none`` without a session on it.
    n_done, n_total : int
        Trials stored and stimuli in the session the state describes (0 for ``none``).
    session_id : int or None
        That session: the newest unfinished one, else the newest one.
    n_sessions : int
        Sessions of the participant on the set.
    created_utc : str
        When that session was created (ISO 8601 UTC; "" for ``none``).
    tracker : str
        The tracker of its newest recording ("" for ``none``).
    """

    pseudonym: str
    state: str
    n_done: int = 0
    n_total: int = 0
    session_id: int | None = None
    n_sessions: int = 0
    created_utc: str = ""
    tracker: str = ""

    @property
    def text(self) -> str:
        """``"none"``, ``"unfinished, 3 of 16"`` or ``"finished, 16 of 16"``."""
        if self.state == "none":
            return "no session"
        return f"{self.state}, {self.n_done} of {self.n_total}"


def _sessions_on(store: SessionStore, stimulus_set: str) -> list[Session]:
    return [s for s in store.sessions() if s.settings.get(SETTING_STIMULUS_SET) == stimulus_set]


def participant_states(store: SessionStore, *, stimulus_set: str) -> list[ParticipantState]:
    """Every participant of the study and their state on ``stimulus_set``, in the order they joined.

    Parameters
    ----------
    store : SessionStore
        The study (read-only is enough).
    stimulus_set : str
        The stimulus-set key (``Session.settings["stimulus_set"]``).

    Returns
    -------
    list of ParticipantState
        Participants without a session on the set are listed as ``none``.
    """
    by_participant: dict[int, list[Session]] = {}
    for session in _sessions_on(store, stimulus_set):
        by_participant.setdefault(session.participant_id, []).append(session)
    states = []
    for participant in store.participants():
        sessions = by_participant.get(participant.participant_id, [])
        if not sessions:
            states.append(ParticipantState(participant.pseudonym, "none"))
            continue
        done = {s.session_id: store.resume_point(s.session_id) for s in sessions}
        open_ = [s for s in sessions if done[s.session_id] < len(s.stimulus_order)]
        shown = open_[-1] if open_ else sessions[-1]
        devices = store.recording_devices(shown.session_id)
        states.append(
            ParticipantState(
                pseudonym=participant.pseudonym,
                state="unfinished" if open_ else "finished",
                n_done=done[shown.session_id],
                n_total=len(shown.stimulus_order),
                session_id=shown.session_id,
                n_sessions=len(sessions),
                created_utc=shown.created_utc,
                tracker=devices[-1][0] if devices else shown.tracker,
            )
        )
    return states


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """What "Start" does for a participant: resume a session, or begin a new one in a given order.

    Parameters
    ----------
    pseudonym : str
        The participant.
    resume_session_id : int or None
        The unfinished session to resume; None for a new session.
    start_position : int
        The position to start at (the resume point; 0 for a new session).
    stimulus_order : tuple of str
        The order shown (the stored one when resuming; empty when not known yet).
    design : str
        The counterbalancing design of a new order.
    repeats : tuple of int
        Stored sessions on the same stimulus set whose order a new session would repeat.
    """

    pseudonym: str
    resume_session_id: int | None
    start_position: int
    stimulus_order: tuple[str, ...]
    design: str = DEFAULT_ORDER_DESIGN
    repeats: tuple[int, ...] = ()

    @property
    def new(self) -> bool:
        """Whether a new session is begun."""
        return self.resume_session_id is None

    @property
    def text(self) -> str:
        """One line for the setup screen."""
        if not self.new:
            return (
                f"Start resumes {self.pseudonym}'s session {self.resume_session_id} at stimulus "
                f"{self.start_position + 1} of {len(self.stimulus_order)}."
            )
        return f"Start begins a new session for {self.pseudonym} ({self.design} order)."

    @property
    def warning(self) -> str:
        """Why the new order may confound comparisons; "" when it repeats no stored order."""
        if not self.repeats:
            return ""
        listed = ", ".join(str(s) for s in self.repeats)
        return (
            f"The new session repeats the stimulus order of session{'s' if len(self.repeats) > 1 else ''} "
            f"{listed} (design {self.design!r}); order effects then differ from a fresh random order. "
            "Change the seed or the design for a different order."
        )


def plan_session(
    store: SessionStore,
    pseudonym: str,
    *,
    stimulus_set: str,
    stimulus_ids: Sequence[str] | None = None,
    design: str = DEFAULT_ORDER_DESIGN,
    seed: int = 0,
    new: bool = False,
) -> SessionPlan:
    """Plan the participant's next session on a stimulus set (nothing is written).

    The newest unfinished session on the set is resumed unless ``new``; otherwise a new session gets
    :func:`~tracking.protocol.counterbalanced_order` for the participant (its index is the number of
    participants who joined the set before it). Under the ``per-participant`` design an order that
    repeats a stored session's (likely with few stimuli, and for a participant's second session) is
    drawn again with the pseudonym tagged ``/1``, ``/2`` ...; :attr:`SessionPlan.repeats` names the
    sessions a plan still repeats (always so under ``same-for-all``, after n participants under
    ``latin-square``).

    Parameters
    ----------
    store : SessionStore
        The study (read-only is enough).
    pseudonym : str
        The participant (need not exist yet).
    stimulus_set : str
        The stimulus-set key.
    stimulus_ids : sequence of str, optional
        The stimuli of the set; by default those of a stored session on it (the order stays empty
        when there is none).
    design, seed
        As for :func:`~tracking.protocol.counterbalanced_order`.
    new : bool
        Begin a new session even when one is unfinished.

    Returns
    -------
    SessionPlan
    """
    sessions = _sessions_on(store, stimulus_set)
    names = {p.participant_id: p.pseudonym for p in store.participants()}
    own = [s for s in sessions if names[s.participant_id] == pseudonym]
    if not new:
        for session in reversed(own):
            position = store.resume_point(session.session_id)
            if position < len(session.stimulus_order):
                return SessionPlan(pseudonym, session.session_id, position, session.stimulus_order, design)
    ids = (
        list(stimulus_ids)
        if stimulus_ids is not None
        else (list(sessions[0].stimulus_order) if sessions else [])
    )
    if not ids:
        return SessionPlan(pseudonym, None, 0, (), design)
    joined = list(dict.fromkeys(names[s.participant_id] for s in sessions))
    index = joined.index(pseudonym) if pseudonym in joined else len(joined)
    stored = {s.stimulus_order for s in sessions}
    order = counterbalanced_order(ids, design=design, seed=seed, participant=pseudonym, index=index)
    if design == "per-participant":  # a short list repeats orders by chance: draw again, reproducibly
        for attempt in range(1, _REDRAWS + 1):
            if order not in stored:
                break
            tag = f"{pseudonym}/{attempt}"
            order = counterbalanced_order(ids, design=design, seed=seed, participant=tag, index=index)
    repeats = tuple(s.session_id for s in sessions if s.stimulus_order == order)
    return SessionPlan(pseudonym, None, 0, order, design, repeats)


#: How often a per-participant order that repeats a stored one is drawn again before the repeat stands.
_REDRAWS = 50


def begin_session(
    store: SessionStore,
    plan: SessionPlan,
    *,
    settings: Mapping[str, Any],
    geometry: ScreenGeometry,
    tracker: str,
    recogniser: str,
) -> tuple[int, int]:
    """Carry out a plan once recording really starts: the session row exists only from here on.

    A new session (and, when new, the participant) is created with the plan's order and the devices
    really in use; either way this store object's recording of it starts with ``tracker`` and
    ``recogniser`` (:meth:`SessionStore.start_recording`).

    Returns
    -------
    (int, int)
        The session id and the position to start at.

    Raises
    ------
    ValueError
        For a new plan without an order.
    """
    session_id = plan.resume_session_id
    if session_id is None:
        if not plan.stimulus_order:
            raise ValueError("the plan has no stimulus order; plan with the stimulus ids.")
        participant = next((p for p in store.participants() if p.pseudonym == plan.pseudonym), None)
        participant_id = (
            store.create_participant(plan.pseudonym) if participant is None else participant.participant_id
        )
        session_id = store.create_session(
            participant_id,
            settings={**settings, SETTING_ORDER_DESIGN: plan.design},
            geometry=geometry,
            tracker=tracker,
            recogniser=recogniser,
            stimulus_order=plan.stimulus_order,
        )
    store.start_recording(session_id, tracker=tracker, recogniser=recogniser)
    return session_id, store.resume_point(session_id)


# --- the quality of each trial's gaze --------------------------------------------------------------

#: Valid gaze on the image for at least this long without any fixation is reported, not stored silently.
_SILENT_GAZE_MS = 100.0
#: A stretch without valid gaze at least this long is pointed out (longer than a blink's 100-400 ms).
LONG_GAP_MS = 500.0


@dataclass(frozen=True, slots=True)
class TrialQuality:
    """The gaze behind one finished trial: for the session report and the live monitor (RBDM §5.3.1).

    Parameters
    ----------
    position : int
        The trial.
    stimulus_id : str
        Its stimulus.
    n_samples : int
        Samples from its first blank screen to the stimulus offset.
    valid_share : float
        Share of them that are valid, in [0, 1] (NaN without samples).
    longest_gap_ms : float
        Longest time in that window without a valid sample (the whole window without any).
    n_fixations : int
        Fixations stored for it (those that began while the image was shown).
    events : tuple of str
        The tracker's events during the trial (lost, reconnected, not calibrated...).
    note : str
        What deserves a look: valid gaze on the image but no fixation, no valid sample at all, or
        no valid sample for :data:`LONG_GAP_MS` and more.
    label : str
        The label given ("" where not known).
    label_source : str
        ``"speech"`` or ``"keyboard"`` ("" where not known).
    confidence : float or None
        The recogniser's confidence in a spoken label.
    dropped_frames : int or None
        Dropped display frames of the participant's screen during the trial; None where the store
        holds no frame statistics for it.
    flagged : str
        Why the experimenter marked the trial bad (``SessionStore.flag_trial``); "" when not marked.
    """

    position: int
    stimulus_id: str
    n_samples: int
    valid_share: float
    longest_gap_ms: float
    n_fixations: int
    events: tuple[str, ...] = ()
    note: str = ""
    label: str = ""
    label_source: str = ""
    confidence: float | None = None
    dropped_frames: int | None = None
    flagged: str = ""


def trial_quality(
    store: SessionStore, session_id: int, *, events: Sequence[DriverEvent] = ()
) -> list[TrialQuality]:
    """Samples, valid share, longest gap, fixations and tracker events of each stored trial.

    Parameters
    ----------
    store : SessionStore
        The study.
    session_id : int
        The session.
    events : sequence of DriverEvent
        The tracker's events of this recording; each is listed with the trial whose window (first blank
        to stimulus offset) holds its time.

    Returns
    -------
    list of TrialQuality
        One per stored trial, in order, with its label, dropped frames and flag; a trial whose image
        had at least 100 ms of valid gaze but no fixation says so in its ``note``.
    """
    frames, flags = store.trial_frames(session_id), store.flagged_trials(session_id)
    out = []
    for trial in store.trials(session_id):
        phases = trial.phases
        start, onset, stop = phases.blank_onset_ms, phases.stimulus_onset_ms, phases.stimulus_offset_ms
        samples = store.trial_samples(session_id, trial.position)
        valid_t = samples.t_ms[samples.valid]
        edges = np.concatenate([[start], valid_t, [stop]])
        on_image = valid_t[(valid_t >= onset) & (valid_t < stop)]
        n_fixations = len(store.fixations(session_id, trial.position))
        gap_ms = float(np.diff(edges).max())
        trial_frames = frames.get(trial.position)
        out.append(
            TrialQuality(
                position=trial.position,
                stimulus_id=trial.stimulus_id,
                n_samples=len(samples),
                valid_share=float(samples.valid.mean()) if len(samples) else math.nan,
                longest_gap_ms=gap_ms,
                n_fixations=n_fixations,
                events=tuple(f"{e.kind.value}: {e.message}" for e in events if start <= e.t_ms <= stop),
                note=_quality_note(len(samples), valid_t.size, n_fixations, on_image, gap_ms),
                label=trial.label,
                label_source=trial.label_source,
                confidence=trial.confidence,
                dropped_frames=None if trial_frames is None else trial_frames.dropped_frames,
                flagged=flags.get(trial.position, ""),
            )
        )
    return out


def _quality_note(
    n_samples: int, n_valid: int, n_fixations: int, on_image_t_ms: NDArray[np.float64], gap_ms: float
) -> str:
    """What deserves a look in a trial's gaze, or ""."""
    if n_samples and not n_valid:
        return "no valid gaze sample"
    seen_ms = float(on_image_t_ms[-1] - on_image_t_ms[0]) if on_image_t_ms.size > 1 else 0.0
    if not n_fixations and seen_ms >= _SILENT_GAZE_MS:
        return (
            f"valid gaze on the image for {seen_ms:.0f} ms but no fixation; "
            "check the fixation detector's parameters"
        )
    if gap_ms >= LONG_GAP_MS:
        return f"no valid gaze for {gap_ms:.0f} ms (a blink, lost tracking or a stalled tracker)"
    return ""


# --- stimuli ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StimulusSet:
    """Stimulus images by id, as uint8 RGB arrays ``(H, W, 3)``, with the spec they came from."""

    spec: str
    split: str
    images: Mapping[str, NDArray[np.uint8]]

    @property
    def ids(self) -> tuple[str, ...]:
        """The stimulus ids in dataset order."""
        return tuple(self.images)


def stimulus_settings(stimulus_set: str, stimuli: StimulusSet, stimulus_rect: StimulusRect) -> dict[str, Any]:
    """The session settings that say which stimuli a session shows and where it draws them.

    The part of ``Session.settings`` that resuming (:func:`plan_session`) and the study readers
    (:func:`tracking.study.read_study`, :func:`tracking.study.session_stimulus_rect`) read back;
    a new session stores it with its other settings.

    Parameters
    ----------
    stimulus_set : str
        The stimulus set's identity: a session is resumed only with the same one.
    stimuli : StimulusSet
        The images shown (their dataset spec and split are stored).
    stimulus_rect : StimulusRect
        Where the image is drawn on the participant's screen, in screen pixels.

    Returns
    -------
    dict
        ``stimulus_set``, ``stimuli``, ``split`` and ``stimulus_rect`` (``x_px``, ``y_px``,
        ``width_px``, ``height_px``).

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (the stimuli shown) and §5.3.2
       (fixations mapped from the screen onto the image).
    """
    return {
        SETTING_STIMULUS_SET: stimulus_set,
        SETTING_STIMULI: stimuli.spec,
        SETTING_SPLIT: stimuli.split,
        SETTING_STIMULUS_RECT: {
            "x_px": stimulus_rect.x_px,
            "y_px": stimulus_rect.y_px,
            "width_px": stimulus_rect.width_px,
            "height_px": stimulus_rect.height_px,
        },
    }


def load_stimuli(
    spec: str | Path,
    *,
    split: str | None = None,
    max_stimuli: int = 0,
    seed: int = 0,
    progress: Callable[[float, str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> StimulusSet:
    """Decode the images of a dataset split for display (RBDM §5.3.1: the stimuli to label).

    Parameters
    ----------
    spec : str or Path
        A spec for :func:`analysis.datasets.open_dataset` (``"synthetic:n=2,size=512"`` or a folder).
    split : str, optional
        The split to show; by default the dataset's last split (``test`` for the synthetic faces).
    max_stimuli : int, optional
        At most this many images, a seeded random choice; 0 for the whole split.
    seed : int, optional
        Seed of that choice.
    progress : callable, optional
        Called with (fraction done, text) after each image.
    cancelled : callable, optional
        Polled between images; loading stops with :class:`Cancelled` when it returns True.

    Returns
    -------
    StimulusSet
        Images in dataset order, as uint8 RGB.

    Raises
    ------
    ValueError
        For an unknown split or a split without images.
    Cancelled
        When ``cancelled()`` returned True.
    """
    loader = open_dataset(spec, rgb=True)
    chosen_split = split or loader.splits[-1]
    if chosen_split not in loader.splits:
        raise ValueError(f"{spec!s} has no split {chosen_split!r}; choose one of {loader.splits!r}.")
    n_items = len(loader.labels(chosen_split))
    if n_items == 0:
        raise ValueError(f"split {chosen_split!r} of {spec!s} holds no images; choose another split.")
    positions = _choose_positions(n_items, check_count(max_stimuli=max_stimuli), seed)
    images: dict[str, NDArray[np.uint8]] = {}
    for k, sample in enumerate(loader.iter_samples(chosen_split, positions=positions)):
        if cancelled is not None and cancelled():
            raise Cancelled(f"loading {spec!s} was cancelled.")
        images[sample.id] = np.round(np.clip(sample.image, 0.0, 1.0) * 255.0).astype(np.uint8)
        if progress is not None:
            progress((k + 1) / len(positions), f"{k + 1} of {len(positions)} images")
    if not images:
        raise ValueError(f"no image of split {chosen_split!r} of {spec!s} could be read; see the warnings.")
    return StimulusSet(str(spec), chosen_split, images)


def _choose_positions(n_items: int, max_stimuli: int, seed: int) -> list[int]:
    if max_stimuli == 0 or max_stimuli >= n_items:
        return list(range(n_items))
    rng = np.random.default_rng(check_count(seed=seed))
    return sorted(int(p) for p in rng.choice(n_items, size=max_stimuli, replace=False))


# --- speech -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpokenLabel:
    """A recognition heard while stimulus ``position`` was shown (what :class:`SpeechGate` delivers).

    Parameters
    ----------
    position : int
        The trial position whose listening period the utterance fell into.
    recognition : Recognition
        What the recogniser made of it; ``label=None`` for an utterance that is not a label word.
    """

    position: int
    recognition: Recognition


def give_spoken_label(protocol: LabelingProtocol, spoken: SpokenLabel) -> bool:
    """Pass a spoken label to ``protocol`` if its image is still shown; returns whether it became the label.

    An unrecognised utterance (``label=None``) is shown as such and never becomes a label
    (:meth:`LabelingProtocol.set_label`). A recognition that arrives after its image has gone (the
    annotator pressed the key, or paused) is dropped, so it can never label the next image.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (the label is spoken while the
       image is shown).
    """
    if protocol.phase is not Phase.STIMULUS or protocol.position != spoken.position:
        return False
    found = spoken.recognition
    return protocol.set_label(found.label, source="speech", text=found.text, confidence=found.confidence)


_STOP = object()


class SpeechGate:
    """Lets a recogniser hear the microphone only while the stimulus is shown (RBDM §5.3.1).

    Audio blocks arrive on the microphone's thread (:meth:`feed`, cheap: the block is queued); one
    worker thread runs the recogniser, which takes tens of ms per utterance and so must not run on
    PortAudio's callback thread. At each stimulus onset the recogniser starts a listening period
    (``start_utterance(t0_ms=onset)``); blocks outside the stimulus phase are ignored; at the next
    phase the period ends (``finish``).

    Parameters
    ----------
    recogniser : SpeechRecogniser
        E.g. ``RECOGNISERS["pocketsphinx"]()``, with the session's label words.
    deliver : callable
        Receives each :class:`SpokenLabel` on the worker thread: the GUI lends a thread-safe
        callable that posts it to its own thread, which passes it on with :func:`give_spoken_label`.
    on_error : callable, optional
        Receives a message (worker thread) when the recogniser fails; the gate keeps running.

    Notes
    -----
    Use as a context manager, or call :meth:`stop`, to end the worker thread. A result the
    recogniser gives only when a period ends (an utterance cut by the key press) belongs to an image
    that is no longer shown and is dropped; the annotator's key press needs a label anyway.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1.
    """

    def __init__(
        self,
        recogniser: SpeechRecogniser,
        deliver: Callable[[SpokenLabel], None],
        *,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        if not isinstance(recogniser, SpeechRecogniser):
            raise TypeError(
                "recogniser must provide start_utterance, accept and finish (see tracking.speech); "
                f"got {type(recogniser).__name__}."
            )
        if not callable(deliver):
            raise TypeError(f"deliver must be callable; got {deliver!r}.")
        self._recogniser = recogniser
        self._deliver = deliver
        self._on_error = on_error
        self._lock = threading.Lock()
        self._position: int | None = None
        self._queue: queue.Queue[object] = queue.Queue()
        self._worker = threading.Thread(target=self._run, name="speech-gate", daemon=True)
        self._worker.start()

    @property
    def listening(self) -> bool:
        """Whether audio currently reaches the recogniser."""
        return self._position is not None

    @property
    def recogniser(self) -> SpeechRecogniser:
        """The recogniser the worker thread runs."""
        return self._recogniser

    def attach(self, protocol: LabelingProtocol) -> Callable[[], None]:
        """Open at each stimulus onset of ``protocol``, close at every other phase; returns the detacher."""
        return protocol.phase_started.subscribe(self._on_phase)

    def open(self, position: int, *, t0_ms: float) -> None:
        """Start listening for stimulus ``position``, shown from ``t0_ms`` (ms, shared clock)."""
        if not math.isfinite(t0_ms):
            raise ValueError(f"t0_ms must be finite; got {t0_ms!r}.")
        with self._lock:
            if self._position is not None:
                self._queue.put(("finish", self._position))
            self._position = int(position)
            self._queue.put(("start", self._position, float(t0_ms)))

    def close(self) -> None:
        """Stop listening; an utterance still in progress is decoded and dropped."""
        with self._lock:
            if self._position is not None:
                self._queue.put(("finish", self._position))
                self._position = None

    def feed(self, pcm: NDArray[np.int16]) -> None:
        """One block of microphone audio (any thread, e.g. PortAudio's); ignored unless listening."""
        with self._lock:
            if self._position is not None:
                self._queue.put(("block", self._position, pcm))

    def drain(self, *, timeout_s: float = 5.0) -> bool:
        """Wait until every queued block is recognised; returns False when ``timeout_s`` passed first."""
        deadline = time.monotonic() + timeout_s
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def stop(self) -> None:
        """Stop listening and end the worker thread after the queued audio (idempotent)."""
        self.close()
        if self._worker.is_alive():
            self._queue.put(_STOP)
            self._worker.join()

    def __enter__(self) -> SpeechGate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_phase(self, onset: PhaseOnset) -> None:
        if onset.phase is Phase.STIMULUS:
            self.open(onset.position, t0_ms=onset.t_ms)
        else:
            self.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._handle(item)
            except Exception as err:  # never let an exception end the worker thread
                self._report(f"speech recognition failed: {type(err).__name__}: {err}")
            finally:
                self._queue.task_done()

    def _handle(self, item: Any) -> None:
        kind, position = item[0], item[1]
        if kind == "start":
            self._recogniser.start_utterance(t0_ms=item[2])
        elif kind == "block":
            found = self._recogniser.accept(item[2])
            if found is not None:
                self._deliver(SpokenLabel(position, found))
        else:
            self._recogniser.finish()

    def _report(self, message: str) -> None:
        if self._on_error is not None:
            self._on_error(message)
