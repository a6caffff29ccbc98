"""The experimenter's live monitor as a Qt-free model: what a running labeling session looks like now.

:class:`MonitorModel` listens to a running session (:func:`attach_monitor`): the driver's samples
and events (on the driver's thread: they are only queued there), the protocol's phase onsets and
label changes, the fixations as the online detector emits them (:class:`FixationTap`) and the
trials the store has committed (on the GUI thread). :meth:`MonitorModel.update`, called by the
view at its own throttled rate (30 Hz), drains the queues and returns a :class:`MonitorSnapshot`:
the gaze trace of the last second, the current trial's fixations, its valid-sample share and
longest gap, the tracker's state and events, the effective against the nominal sampling rate,
the label heard or keyed with the recogniser's confidence and rejections, and each finished trial's
quality as the session report's :class:`tracking.recording.TrialQuality`. Memory is bounded: the
trace is a ring buffer, a trial's quality is kept as running sums
(:mod:`rbdm_gui.workflows.monitor_quality`).

The running RBDM Table 1 of the participant is :mod:`rbdm_gui.workflows.monitor_table`'s: the model
holds the newest one and tells (``table_outdated``) when its numbers changed: a trial was stored, or
a stored trial was marked bad.

The model computes numbers only; it never draws. Nothing here imports Qt.

References
----------
.. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (the labeling protocol and its
   recordings), §5.3.2 and Table 1 (the comparison of annotators and the Trainer's saliency).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from rbdm_gui.workflows.monitor_quality import GazeQuality, TrackerLog, TrackerStatus, finished_quality
from rbdm_gui.workflows.monitor_table import ParticipantTable
from tracking.drivers.base import DriverEvent, DriverState
from tracking.fixations import FixationDetector
from tracking.protocol import FinishedTrial, LabelChoice, LabelingProtocol, Listeners, Phase, PhaseOnset
from tracking.recording import TrialQuality
from tracking.records import Fixation, GazeSample

__all__ = [
    "MONITOR_RATE_HZ",
    "TRACE_WINDOW_MS",
    "FixationTap",
    "LabelStatus",
    "MonitorModel",
    "MonitorSnapshot",
    "attach_monitor",
    "phase_text",
]

#: How far back the raw gaze trace reaches.
TRACE_WINDOW_MS = 1000.0
#: How often the view asks for a snapshot and redraws (the monitor never runs at the display rate).
MONITOR_RATE_HZ = 30.0
#: Samples kept for the trace: 1 s at up to 4 kHz.
_RING_CAPACITY = 4096
#: A sample counts towards a trial's quality once it is this old: a phase onset is announced after
#: its frame was presented, by which time newer samples may have arrived (they belong to the next
#: phase's trial, not to the one that ended). A committed trial takes in all of its samples at once.
_SETTLE_MS = 100.0

_T = TypeVar("_T")


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
    listeners (``add_listener``), on the thread that feeds (the GUI thread's frame callback). A call
    that returns no fixation, nearly every one, costs nothing beyond the wrapped detector's.
    """

    def __init__(self, detector: FixationDetector) -> None:
        if not isinstance(detector, FixationDetector):
            raise TypeError(f"detector must be a FixationDetector; got {type(detector).__name__}.")
        self._detector = detector
        self._emitted: Listeners[Fixation] = Listeners()

    def add_listener(self, listener: Callable[[Fixation], None]) -> Callable[[], None]:
        """Also pass each emitted fixation to ``listener``; returns its remover."""
        return self._emitted.subscribe(listener)

    def feed(self, sample: GazeSample) -> list[Fixation]:
        """Feed the wrapped detector; pass on what it returns."""
        return self._emit(self._detector.feed(sample))

    def flush(self) -> list[Fixation]:
        """Flush the wrapped detector; pass on what it returns."""
        return self._emit(self._detector.flush())

    def _emit(self, fixations: list[Fixation]) -> list[Fixation]:
        for fixation in fixations:
            self._emitted.emit(fixation)
        return fixations


# --- records of the snapshot ----------------------------------------------------------------------


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
    trials : tuple of TrialQuality
        The finished trials of this recording, in order, as the session report has them.
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
    trials: tuple[TrialQuality, ...]
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
    queue); every other method on one thread, the GUI's. News (:class:`~tracking.protocol.Listeners`):
    ``trial_added`` (:class:`~tracking.recording.TrialQuality`, from :meth:`update`, when the store has
    committed a trial) and ``table_outdated`` (why: a trial was stored, or :meth:`set_flag` says one
    was marked bad in the store), after which the running Table 1 should be computed again
    (:class:`~rbdm_gui.workflows.monitor_table.RunningTable` does).
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
        self.tracker = TrackerLog(nominal_rate_hz, driver_status)
        self._samples: deque[GazeSample] = deque()
        self._events: deque[DriverEvent] = deque()
        self._onsets: deque[PhaseOnset] = deque()
        self._fixations: deque[Fixation] = deque()
        self._committed: deque[FinishedTrial] = deque()
        self._ring = _Ring(_RING_CAPACITY)
        self._unsettled: deque[tuple[float, bool]] = deque()  # (t_ms, valid), not yet in any trial
        self._settled_ms = -math.inf
        self._open: dict[int, _Trial] = {}
        self._current: _Trial | None = None
        self._phase = Phase.IDLE
        self._position = done
        self._stimulus_id: str | None = None
        self._choice = LabelChoice()
        self._label = LabelStatus()
        self._done = done
        self._trials: list[TrialQuality] = []
        self._flags: dict[int, str] = {}
        self.table: ParticipantTable | None = None
        self.table_problem = "Table 1 follows once a trial is stored."
        self.recalibration_pending = False
        self.trial_added: Listeners[TrialQuality] = Listeners()
        self.table_outdated: Listeners[str] = Listeners()

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

    def set_flag(self, position: int, reason: str, *, in_store: bool = True) -> None:
        """Show ``reason`` as the flag of the trial at ``position``.

        With ``in_store`` (the default) the trial was marked bad in the study file: the running
        Table 1, which leaves it out, is outdated at once (``table_outdated``). ``in_store=False``
        shows a note only: a flag still to be written once the trial is stored, or one that failed.
        """
        self._flags[position] = reason
        self._trials = [replace(q, flagged=reason) if q.position == position else q for q in self._trials]
        if in_store:
            self.table_outdated.emit("trial marked bad")

    def set_table(self, table: ParticipantTable | None, problem: str = "") -> None:
        """The running Table 1 (from :class:`~rbdm_gui.workflows.monitor_table.TableRunner`), or why
        there is none."""
        if table is not None:
            self.table = table
        self.table_problem = problem

    # --- reading ----------------------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        """The participant's screen, as of the last :meth:`update`."""
        return self._phase

    @property
    def trials(self) -> tuple[TrialQuality, ...]:
        """The finished trials so far."""
        return tuple(self._trials)

    def update(self, now_ms: float) -> MonitorSnapshot:
        """Take in what arrived since the last call; the numbers as of ``now_ms`` (shared clock)."""
        commits = _drain(self._committed)  # first: every sample of these trials has been queued by now
        for onset in _drain(self._onsets):
            self._take_onset(onset)
        self._take_samples(settle_until_ms=now_ms - _SETTLE_MS)
        for fixation in _drain(self._fixations):
            for trial in self._open.values():
                if trial.stimulus_onset_ms <= fixation.onset_ms <= trial.quality.stop_ms:
                    trial.fixations.append(fixation)
        for event in _drain(self._events):
            self.tracker.add(event)
        self.tracker.poll()
        for finished in commits:
            self._take_commit(finished)
        return self._snapshot(now_ms)

    def _take_onset(self, onset: PhaseOnset) -> None:
        self._phase, self._position, self._stimulus_id = onset.phase, onset.position, onset.stimulus_id
        current = self._current
        if onset.phase is Phase.BLANK:
            self._start_trial(onset)
        elif current is None:
            return
        elif onset.phase is Phase.STIMULUS:
            current.stimulus_onset_ms = onset.t_ms
        elif onset.phase is Phase.PAUSED:
            self._open.pop(current.position, None)  # abandoned: shown again after resuming
            self._current = None
        elif onset.phase is Phase.FINISHED:
            current.quality.stop_ms = onset.t_ms  # the last trial ended here
            self._current = None

    def _start_trial(self, onset: PhaseOnset) -> None:
        previous = self._current
        if previous is not None:  # it ended (labelled) where this one begins
            previous.quality.stop_ms = onset.t_ms
        trial = _Trial(onset.position, onset.stimulus_id, GazeQuality(onset.t_ms))
        rows = self._ring.rows()[:, [0, 3]]  # samples counted already that came after the onset
        _add_samples(trial.quality, rows[(rows[:, 0] >= onset.t_ms) & (rows[:, 0] <= self._settled_ms)])
        self._open[onset.position] = trial
        self._current = trial
        self._label = LabelStatus()

    def _take_samples(self, *, settle_until_ms: float) -> None:
        batch = _drain(self._samples)
        if batch:
            rows = [(s.t_ms, s.x_screen_px, s.y_screen_px, 1.0 if s.valid else 0.0) for s in batch]
            self._ring.extend(np.array(rows, dtype=np.float64))
            self._unsettled.extend((s.t_ms, s.valid) for s in batch)
        settled, unsettled = [], self._unsettled
        while unsettled and unsettled[0][0] <= settle_until_ms:
            settled.append(unsettled.popleft())
        for trial in self._open.values():
            _add_samples(trial.quality, settled)
        self._settled_ms = max(self._settled_ms, settle_until_ms)

    def _take_commit(self, finished: FinishedTrial) -> None:
        trial, phases = finished.trial, finished.trial.phases
        kept = self._open.pop(trial.position, None)
        if kept is None:  # its start came before the monitor: what the trace still holds
            kept = _Trial(trial.position, trial.stimulus_id, GazeQuality(phases.blank_onset_ms))
            samples: Iterable[Any] = self._ring.rows()[:, [0, 3]]
        else:
            samples = self._unsettled  # its window is known now: the samples not yet counted
        kept.quality.stop_ms = phases.stimulus_offset_ms
        _add_samples(kept.quality, samples)
        quality = finished_quality(
            finished, kept.quality, kept.fixations, flagged=self._flags.get(trial.position, "")
        )
        self._trials.append(quality)
        self._done = max(self._done, trial.position + 1)
        self.trial_added.emit(quality)
        self.table_outdated.emit("trial stored")

    def _snapshot(self, now_ms: float) -> MonitorSnapshot:
        rows = self._ring.rows()
        latest = rows[-1, 0] if len(rows) else now_ms
        recent = rows[rows[:, 0] > latest - TRACE_WINDOW_MS]
        trace = recent[:, 1:3].copy()
        trace[recent[:, 3] == 0.0] = np.nan
        current = self._current
        quality = current.quality if current is not None else GazeQuality(now_ms)
        on_image = current is not None and self._phase is Phase.STIMULUS
        return MonitorSnapshot(
            t_ms=now_ms,
            phase=self._phase,
            phase_text=phase_text(self._phase, self._choice),
            position=self._position,
            stimulus_id=self._stimulus_id,
            trace_screen_px=trace,
            fixations=tuple(current.fixations) if on_image and current is not None else (),
            n_samples=quality.n_samples,
            valid_share=quality.valid_share,
            longest_gap_ms=quality.gap_until(self._settled_ms) if current is not None else math.nan,
            tracker=self.tracker.status(recent[:, 0]),
            label=self._label,
            trials_done=self._done,
            trials_total=len(self.stimulus_ids),
            trials=tuple(self._trials),
            table=self.table,
            table_problem=self.table_problem,
            recalibration_pending=self.recalibration_pending,
        )


def _drain(queue: deque[_T]) -> list[_T]:
    """What the queue holds now, oldest first (other threads may append meanwhile)."""
    return [queue.popleft() for _ in range(len(queue))]


def _add_samples(quality: GazeQuality, samples: Iterable[Any]) -> None:
    """Count ``(t_ms, valid)`` pairs (tuples or array rows), in time order, that fall in its window."""
    for t_ms, valid in samples:
        quality.add(float(t_ms), bool(valid))


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
