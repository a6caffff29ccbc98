"""The experimenter's live monitor as a Qt-free model: what a running labeling session looks like now.

:class:`MonitorModel` listens to a running session (:func:`attach_monitor`): the driver's samples
and events (on the driver's thread: they are only queued there), the protocol's phase onsets and
label changes, the fixations as the online detector emits them (:class:`FixationTap`) and the
trials the store has committed (on the GUI thread). :meth:`MonitorModel.update`, called by the
view at its own throttled rate (30 Hz), drains the queues and returns a :class:`MonitorSnapshot`:
the gaze trace of the last second, the current trial's fixations, its valid-sample share and
longest gap, the tracker's state and events, the effective against the nominal sampling rate,
the label heard or keyed with the recogniser's confidence and rejections, and each finished trial's
quality. Memory is bounded: the trace is a ring buffer, a trial's quality is kept as running sums.

The running RBDM Table 1 of the participant comes from :func:`participant_table`, which asks
:class:`tracking.study.StudyComparison` for the same numbers as the Compare screen (its Table 1 with
all annotators and the Trainer), restricted to the rows of this participant.
:class:`TableRunner` computes it in a separate process, so that the participant's screen never
waits for it.

The model computes numbers only; it never draws. Nothing here imports Qt.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (the labeling protocol and its
   recordings), §5.3.2 and Table 1 (the comparison of annotators and the Trainer's saliency).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.metrics import ComparisonTable
from tracking.drivers.base import DriverEvent, DriverEventKind, DriverState
from tracking.fixations import FixationDetector
from tracking.protocol import FinishedTrial, LabelChoice, LabelingProtocol, Phase, PhaseOnset
from tracking.records import Fixation, GazeSample

__all__ = [
    "MONITOR_RATE_HZ",
    "TRACE_WINDOW_MS",
    "FixationTap",
    "GazeQuality",
    "LabelStatus",
    "MonitorModel",
    "MonitorSnapshot",
    "ParticipantTable",
    "TableRequest",
    "TableRunner",
    "TrackerStatus",
    "TrialSummary",
    "attach_monitor",
    "participant_table",
    "phase_text",
]

#: How far back the raw gaze trace reaches.
TRACE_WINDOW_MS = 1000.0
#: How often the view asks for a snapshot and redraws (the monitor never runs at the display rate).
MONITOR_RATE_HZ = 30.0
#: Samples kept for the trace: 1 s at up to 4 kHz.
_RING_CAPACITY = 4096
#: Driver events kept for the list on screen.
_EVENTS_SHOWN = 8
_LOST_KINDS = {DriverEventKind.CONNECTION_LOST, DriverEventKind.TIMEOUT, DriverEventKind.GAVE_UP}


def phase_text(phase: Phase, choice: LabelChoice | None = None) -> str:
    """What the participant's screen shows, in words: blank, cross, stimulus, waiting for label..."""
    if phase is Phase.STIMULUS:
        if choice is None or choice.label is None:
            return "stimulus · waiting for label"
        return f"stimulus · labelled {choice.label}, waiting for the key"
    names = {
        Phase.IDLE: "not started",
        Phase.BLANK: "blank",
        Phase.CROSS: "fixation cross",
        Phase.SECOND_BLANK: "blank (second)",
        Phase.PAUSED: "paused",
        Phase.FINISHED: "finished",
    }
    return names[phase]


# --- the online detector's fixations ------------------------------------------------------------


class FixationTap:
    """A :class:`~tracking.fixations.FixationDetector` that passes on what the detector it wraps emits.

    The recorder feeds it as usual; every fixation the wrapped detector returns also reaches the
    listeners (``add_listener``), on the thread that feeds (the GUI thread's frame callback).
    Without listeners it costs one attribute look-up per call.
    """

    def __init__(self, detector: FixationDetector) -> None:
        if not isinstance(detector, FixationDetector):
            raise TypeError(f"detector must be a FixationDetector; got {type(detector).__name__}.")
        self._detector = detector
        self._listeners: list[Callable[[Fixation], None]] = []

    def add_listener(self, listener: Callable[[Fixation], None]) -> Callable[[], None]:
        """Also pass each emitted fixation to ``listener``; returns its remover."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def feed(self, sample: GazeSample) -> list[Fixation]:
        """Feed the wrapped detector; pass on what it returns."""
        return self._emit(self._detector.feed(sample))

    def flush(self) -> list[Fixation]:
        """Flush the wrapped detector; pass on what it returns."""
        return self._emit(self._detector.flush())

    def _emit(self, fixations: list[Fixation]) -> list[Fixation]:
        if fixations and self._listeners:
            for listener in list(self._listeners):
                for fixation in fixations:
                    listener(fixation)
        return fixations


# --- records of the snapshot ----------------------------------------------------------------------


class GazeQuality:
    """Running valid-sample share and longest gap of one trial's window ``[start_ms, stop_ms]``.

    The same definitions as :func:`tracking.recording.trial_quality`: samples in the window, the share
    of them that are valid, and the longest stretch without a valid sample, counted from the
    window's start to its end (or to ``now_ms`` while the trial runs). Samples must come in time order.
    """

    __slots__ = ("last_valid_ms", "longest_gap_ms", "n_samples", "n_valid", "start_ms", "stop_ms")

    def __init__(self, start_ms: float) -> None:
        self.start_ms = float(start_ms)
        self.stop_ms = math.inf
        self.n_samples = 0
        self.n_valid = 0
        self.last_valid_ms = self.start_ms
        self.longest_gap_ms = 0.0

    def add(self, t_ms: float, valid: bool) -> None:
        """One sample; ignored outside the window."""
        if not self.start_ms <= t_ms <= self.stop_ms:
            return
        self.n_samples += 1
        if valid:
            self.n_valid += 1
            self.longest_gap_ms = max(self.longest_gap_ms, t_ms - self.last_valid_ms)
            self.last_valid_ms = t_ms

    @property
    def valid_share(self) -> float:
        """Share of valid samples in [0, 1]; NaN without samples."""
        return self.n_valid / self.n_samples if self.n_samples else math.nan

    def gap_until(self, now_ms: float) -> float:
        """The longest gap, the open one up to ``now_ms`` (or the window's end) included."""
        end = min(now_ms, self.stop_ms)
        return max(self.longest_gap_ms, end - self.last_valid_ms, 0.0)


@dataclass(frozen=True, slots=True)
class TrialSummary:
    """One finished trial as the monitor saw it (RBDM §5.3.1).

    Parameters
    ----------
    position : int
        The trial.
    stimulus_id : str
        Its stimulus.
    label : str
        The label given.
    label_source : str
        ``"speech"`` or ``"keyboard"``.
    confidence : float or None
        The recogniser's confidence in a spoken label.
    n_samples : int
        Samples from the first blank screen to the stimulus offset.
    valid_share : float
        Their valid share (NaN without samples).
    longest_gap_ms : float
        Longest stretch without a valid sample in that window.
    n_fixations : int
        Fixations that began while the image was shown (the ones the store keeps).
    dropped_frames : int
        Dropped display frames of the participant's screen in the trial.
    flagged : str
        Why the experimenter marked it bad; empty when not marked.
    """

    position: int
    stimulus_id: str
    label: str
    label_source: str
    confidence: float | None
    n_samples: int
    valid_share: float
    longest_gap_ms: float
    n_fixations: int
    dropped_frames: int
    flagged: str = ""


@dataclass(frozen=True, slots=True)
class LabelStatus:
    """The label of the trial on screen: heard or keyed, the confidence, the utterances rejected."""

    label: str | None = None
    source: str | None = None
    heard_text: str | None = None
    confidence: float | None = None
    rejections: int = 0
    last_rejected: str | None = None

    def describe(self) -> str:
        """One line: ``happy (spoken, confidence 0.93) · 1 rejected: "hello"``."""
        parts = []
        if self.label is not None:
            how = "spoken" if self.source == "speech" else "key"
            if self.confidence is not None:
                how += f", confidence {self.confidence:.2f}"
            parts.append(f"{self.label} ({how})")
        else:
            parts.append("no label yet")
        if self.rejections:
            parts.append(f"{self.rejections} rejected: \u201c{self.last_rejected or '…'}\u201d")
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class TrackerStatus:
    """The tracker now: its state, the faults counted this session, the recent events, the rates."""

    state: str
    calibrated: bool | None
    lost: int
    restored: int
    uncalibrated: int
    events: tuple[str, ...]
    nominal_rate_hz: float
    effective_rate_hz: float


@dataclass(frozen=True, slots=True, eq=False)
class MonitorSnapshot:
    """What the monitor shows at one moment (see :meth:`MonitorModel.update`).

    Parameters
    ----------
    t_ms : float
        When it was taken, on the shared clock.
    phase : Phase
        The participant's screen.
    phase_text : str
        The phase in words (:func:`phase_text`).
    position : int
        The trial on screen (or next).
    stimulus_id : str or None
        Its stimulus.
    trace_screen_px : ndarray, shape (N, 2)
        The gaze of the last :data:`TRACE_WINDOW_MS`, invalid samples as NaN rows (gaps in the line).
    fixations : tuple of Fixation
        The current trial's fixations on the image, as the online detector emitted them.
    n_samples, valid_share, longest_gap_ms
        The current trial so far (from its first blank screen).
    tracker : TrackerStatus
        State, events and rates.
    label : LabelStatus
        The label of the trial on screen.
    trials_done, trials_total : int
        Finished (stored) trials and all trials of the session.
    trials : tuple of TrialSummary
        The finished trials of this recording, in order.
    table : ParticipantTable or None
        The running Table 1, once computed.
    table_problem : str
        Why there is no table (yet).
    recalibration_pending : bool
        A re-calibration runs before the next trial.
    """

    t_ms: float
    phase: Phase
    phase_text: str
    position: int
    stimulus_id: str | None
    trace_screen_px: NDArray[np.float64]
    fixations: tuple[Fixation, ...]
    n_samples: int
    valid_share: float
    longest_gap_ms: float
    tracker: TrackerStatus
    label: LabelStatus
    trials_done: int
    trials_total: int
    trials: tuple[TrialSummary, ...]
    table: ParticipantTable | None = None
    table_problem: str = ""
    recalibration_pending: bool = False


# --- the model ------------------------------------------------------------------------------------


class _Ring:
    """The last ``capacity`` samples as numpy columns (t, x, y, valid)."""

    def __init__(self, capacity: int) -> None:
        self._data = np.full((capacity, 4), np.nan)
        self._next = 0
        self._count = 0

    def extend(self, rows: NDArray[np.float64]) -> None:
        capacity = len(self._data)
        rows = rows[-capacity:]
        n = len(rows)
        first = min(n, capacity - self._next)
        self._data[self._next : self._next + first] = rows[:first]
        self._data[: n - first] = rows[first:]
        self._next = (self._next + n) % capacity
        self._count = min(capacity, self._count + n)

    def rows(self) -> NDArray[np.float64]:
        """All kept rows, oldest first (a copy)."""
        if self._count < len(self._data):
            return self._data[: self._count].copy()
        return np.concatenate([self._data[self._next :], self._data[: self._next]])


@dataclass
class _Trial:
    position: int
    stimulus_id: str | None
    quality: GazeQuality
    stimulus_onset_ms: float = math.inf
    fixations: list[Fixation] = field(default_factory=list)


class MonitorModel:
    """The live monitor's numbers for one session; fed by :func:`attach_monitor`, read by :meth:`update`.

    Parameters
    ----------
    stimulus_ids : sequence of str
        The session's stimulus order (trial positions index it).
    done : int
        Trials finished before this recording (a resumed session).
    nominal_rate_hz : float
        The tracker's nominal sampling rate.
    driver_status : callable, optional
        Returns ``(state, calibrated)`` of the tracker now (any thread): the driver's ``state`` and its
        ``calibrated`` where it has one.

    Notes
    -----
    :meth:`add_sample` and :meth:`add_driver_event` may be called on any thread (they append to a
    queue); every other method on one thread, the GUI's. Listeners: ``trial_added``
    (:class:`TrialSummary`, from :meth:`update`, when the store has committed a trial).
    """

    def __init__(
        self,
        stimulus_ids: Sequence[str],
        *,
        done: int = 0,
        nominal_rate_hz: float = math.nan,
        driver_status: Callable[[], tuple[DriverState, bool | None]] | None = None,
    ) -> None:
        self.stimulus_ids = tuple(stimulus_ids)
        self.nominal_rate_hz = float(nominal_rate_hz)
        self._driver_status = driver_status
        self._samples: deque[GazeSample] = deque()
        self._events: deque[DriverEvent] = deque()
        self._onsets: deque[PhaseOnset] = deque()
        self._fixations: deque[Fixation] = deque()
        self._committed: deque[FinishedTrial] = deque()
        self._ring = _Ring(_RING_CAPACITY)
        self._open: dict[int, _Trial] = {}
        self._current: _Trial | None = None
        self._phase = Phase.IDLE
        self._position = done
        self._stimulus_id: str | None = None
        self._choice = LabelChoice()
        self._label = LabelStatus()
        self._done = done
        self._summaries: list[TrialSummary] = []
        self._flags: dict[int, str] = {}
        self._event_lines: deque[str] = deque(maxlen=_EVENTS_SHOWN)
        self._lost = self._restored = self._uncalibrated = 0
        self._state = DriverState.CONNECTED
        self._calibrated: bool | None = None
        self.table: ParticipantTable | None = None
        self.table_problem = "Table 1 follows once a trial is stored."
        self.recalibration_pending = False
        self.trial_added: list[Callable[[TrialSummary], None]] = []

    # --- input (any thread for samples and events) ---------------------------------------------------

    def add_sample(self, sample: GazeSample) -> None:
        """A gaze sample (the driver's thread): queued for :meth:`update`."""
        self._samples.append(sample)

    def add_driver_event(self, event: DriverEvent) -> None:
        """A tracker event (the driver's thread): queued for :meth:`update`."""
        self._events.append(event)

    def add_fixation(self, fixation: Fixation) -> None:
        """A fixation the online detector emitted."""
        self._fixations.append(fixation)

    def on_phase(self, onset: PhaseOnset) -> None:
        """The protocol announced a phase onset."""
        self._onsets.append(onset)

    def on_label(self, choice: LabelChoice) -> None:
        """The label of the trial on screen changed (a label, or an utterance that is not one)."""
        self._choice = choice
        if choice == LabelChoice():
            self._label = LabelStatus()
            return
        rejections = self._label.rejections + (1 if choice.unrecognised else 0)
        last = choice.heard_text if choice.unrecognised else self._label.last_rejected
        self._label = LabelStatus(
            choice.label, choice.source, choice.heard_text, choice.confidence, rejections, last
        )

    def on_committed(self, finished: FinishedTrial) -> None:
        """The store has committed a finished trial."""
        self._committed.append(finished)

    def set_flag(self, position: int, reason: str) -> None:
        """The trial at ``position`` was marked bad in the store."""
        self._flags[position] = reason
        self._summaries = [
            replace(s, flagged=reason) if s.position == position else s for s in self._summaries
        ]

    def set_table(self, table: ParticipantTable | None, problem: str = "") -> None:
        """The running Table 1 (from :class:`TableRunner`), or why there is none."""
        if table is not None:
            self.table = table
        self.table_problem = problem

    # --- reading ----------------------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        """The participant's screen, as of the last :meth:`update`."""
        return self._phase

    @property
    def trials(self) -> tuple[TrialSummary, ...]:
        """The finished trials so far."""
        return tuple(self._summaries)

    def update(self, now_ms: float) -> MonitorSnapshot:
        """Take in what arrived since the last call; the numbers as of ``now_ms`` (shared clock)."""
        self._take_onsets()
        self._take_samples()
        self._take_fixations()
        self._take_events()
        self._take_commits()
        return self._snapshot(now_ms)

    def _take_onsets(self) -> None:
        while self._onsets:
            onset = self._onsets.popleft()
            self._phase, self._position, self._stimulus_id = onset.phase, onset.position, onset.stimulus_id
            if onset.phase is Phase.BLANK:
                self._start_trial(onset)
            elif onset.phase is Phase.STIMULUS and self._current is not None:
                self._current.stimulus_onset_ms = onset.t_ms
            elif onset.phase is Phase.PAUSED and self._current is not None:
                self._open.pop(self._current.position, None)  # abandoned: shown again after resuming
                self._current = None
            elif onset.phase is Phase.FINISHED and self._current is not None:
                self._current.quality.stop_ms = onset.t_ms  # the last trial ended here
                self._current = None

    def _start_trial(self, onset: PhaseOnset) -> None:
        previous = self._current
        if previous is not None:  # it ended (labelled) where this one begins
            previous.quality.stop_ms = onset.t_ms
        trial = _Trial(onset.position, onset.stimulus_id, GazeQuality(onset.t_ms))
        rows = self._ring.rows()
        for t, valid in rows[rows[:, 0] >= onset.t_ms][:, [0, 3]]:  # samples that came before the onset
            trial.quality.add(float(t), bool(valid))
        self._open[onset.position] = trial
        self._current = trial
        self._label = LabelStatus()

    def _take_samples(self) -> None:
        n = len(self._samples)
        if not n:
            return
        batch = [self._samples.popleft() for _ in range(n)]
        rows = np.array(
            [(s.t_ms, s.x_screen_px, s.y_screen_px, 1.0 if s.valid else 0.0) for s in batch], dtype=np.float64
        )
        self._ring.extend(rows)
        for trial in self._open.values():
            quality = trial.quality
            for s in batch:
                quality.add(s.t_ms, s.valid)

    def _take_fixations(self) -> None:
        while self._fixations:
            fixation = self._fixations.popleft()
            for trial in self._open.values():
                if trial.stimulus_onset_ms <= fixation.onset_ms <= trial.quality.stop_ms:
                    trial.fixations.append(fixation)

    def _take_events(self) -> None:
        while self._events:
            event = self._events.popleft()
            self._state = event.state
            if event.kind in _LOST_KINDS or (
                event.kind is DriverEventKind.STATE_CHANGED and event.state is DriverState.LOST
            ):
                self._lost += 1
            elif event.kind is DriverEventKind.RECONNECTED:
                self._restored += 1
            elif event.kind is DriverEventKind.DEVICE_NOTICE and "calibrat" in event.message.lower():
                self._uncalibrated += 1
            if event.kind is not DriverEventKind.STATE_CHANGED or event.state is DriverState.LOST:
                self._event_lines.append(f"{event.kind.value}: {event.message}")
        if self._driver_status is not None:
            self._state, self._calibrated = self._driver_status()

    def _take_commits(self) -> None:
        while self._committed:
            finished = self._committed.popleft()
            trial, phases = finished.trial, finished.trial.phases
            kept = self._open.pop(trial.position, None)
            quality = kept.quality if kept is not None else GazeQuality(phases.blank_onset_ms)
            quality.stop_ms = phases.stimulus_offset_ms
            fixations = [] if kept is None else kept.fixations
            n_fixations = sum(
                phases.stimulus_onset_ms <= f.onset_ms < phases.stimulus_offset_ms for f in fixations
            )
            summary = TrialSummary(
                position=trial.position,
                stimulus_id=trial.stimulus_id,
                label=trial.label,
                label_source=trial.label_source,
                confidence=trial.confidence,
                n_samples=quality.n_samples,
                valid_share=quality.valid_share,
                longest_gap_ms=quality.gap_until(phases.stimulus_offset_ms),
                n_fixations=int(n_fixations),
                dropped_frames=finished.frames.dropped_frames,
                flagged=self._flags.get(trial.position, ""),
            )
            self._summaries.append(summary)
            self._done = max(self._done, trial.position + 1)
            for listener in list(self.trial_added):
                listener(summary)

    def _snapshot(self, now_ms: float) -> MonitorSnapshot:
        rows = self._ring.rows()
        latest = rows[-1, 0] if len(rows) else now_ms
        recent = rows[rows[:, 0] > latest - TRACE_WINDOW_MS]
        trace = recent[:, 1:3].copy()
        trace[recent[:, 3] == 0.0] = np.nan
        current = self._current
        quality = current.quality if current is not None else None
        fixations: tuple[Fixation, ...] = ()
        if current is not None and self._phase is Phase.STIMULUS:
            fixations = tuple(current.fixations)
        return MonitorSnapshot(
            t_ms=now_ms,
            phase=self._phase,
            phase_text=phase_text(self._phase, self._choice),
            position=self._position,
            stimulus_id=self._stimulus_id,
            trace_screen_px=trace,
            fixations=fixations,
            n_samples=quality.n_samples if quality is not None else 0,
            valid_share=quality.valid_share if quality is not None else math.nan,
            longest_gap_ms=quality.gap_until(now_ms) if quality is not None else math.nan,
            tracker=self._tracker_status(recent),
            label=self._label,
            trials_done=self._done,
            trials_total=len(self.stimulus_ids),
            trials=tuple(self._summaries),
            table=self.table,
            table_problem=self.table_problem,
            recalibration_pending=self.recalibration_pending,
        )

    def _tracker_status(self, recent: NDArray[np.float64]) -> TrackerStatus:
        effective = math.nan
        if len(recent) > 1 and recent[-1, 0] > recent[0, 0]:
            effective = (len(recent) - 1) * 1000.0 / (recent[-1, 0] - recent[0, 0])
        return TrackerStatus(
            state=self._state.value,
            calibrated=self._calibrated,
            lost=self._lost,
            restored=self._restored,
            uncalibrated=self._uncalibrated,
            events=tuple(self._event_lines),
            nominal_rate_hz=self.nominal_rate_hz,
            effective_rate_hz=effective,
        )


def attach_monitor(
    model: MonitorModel,
    *,
    protocol: LabelingProtocol,
    add_sample_tap: Callable[[Callable[[GazeSample], None]], Callable[[], None]],
    add_event_listener: Callable[[Callable[[DriverEvent], None]], Callable[[], None]],
    committed: Any,
    fixation_tap: FixationTap | None = None,
) -> Callable[[], None]:
    """Subscribe ``model`` to a running session; returns the function that detaches it again.

    Parameters
    ----------
    model : MonitorModel
        The monitor's model.
    protocol : LabelingProtocol
        The session's protocol (phase onsets, label changes).
    add_sample_tap : callable
        ``GazeRecorder.add_tap``: every sample the recorder gets (driver's thread).
    add_event_listener : callable
        ``driver.add_event_listener``.
    committed : Listeners of FinishedTrial
        ``LabelingSession.committed``: trials safely stored.
    fixation_tap : FixationTap, optional
        The session's detector, wrapped; without it the snapshot has no fixations.
    """
    removers = [
        protocol.phase_started.subscribe(model.on_phase),
        protocol.label_changed.subscribe(model.on_label),
        add_sample_tap(model.add_sample),
        add_event_listener(model.add_driver_event),
        committed.subscribe(model.on_committed),
    ]
    if fixation_tap is not None:
        removers.append(fixation_tap.add_listener(model.add_fixation))

    def detach() -> None:
        for remove in removers:
            remove()

    return detach


# --- the running Table 1 --------------------------------------------------------------------------


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
        Stimuli each row was compared on.
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
    counts: dict[tuple[str, str], int] = {}
    for table in tables.stimuli.values():
        for row in table.rows:
            if who in (row.id_1, row.id_2) and not all(np.isnan(v) for v in row.values):
                counts[(row.id_1, row.id_2)] = counts.get((row.id_1, row.id_2), 0) + 1
    return ParticipantTable(
        participant=who,
        table=ComparisonTable(metrics=tables.study.metrics, rows=rows),
        counts=counts,
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
