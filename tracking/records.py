"""Records passed between drivers, fixation detectors, the store and the GUI.

Frozen dataclasses with unit-named fields that validate themselves. Hot paths (1,200 Hz sample
streams, whole sessions) use numpy arrays instead of lists of these.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis.geometry import ScreenGeometry
from analysis.labels import label_index

__all__ = [
    "LABEL_SOURCES",
    "PSEUDONYM_PATTERN",
    "SETTING_SPLIT",
    "SETTING_STIMULI",
    "SETTING_STIMULUS_RECT",
    "SETTING_STIMULUS_SET",
    "SETTING_STIMULUS_SIZE_PX",
    "Fixation",
    "GazeSample",
    "Participant",
    "PhaseOnsets",
    "SampleArrays",
    "Session",
    "Trial",
    "TrialFrames",
    "ValidationPoint",
    "ValidationResult",
    "check_pseudonym",
]


@dataclass(frozen=True, slots=True)
class GazeSample:
    """One gaze sample in screen pixels on the shared monotonic clock.

    Parameters
    ----------
    t_ms : float
        Time stamp on :func:`tracking.clock.now_ms`'s clock.
    x_screen_px, y_screen_px : float
        Gaze position; NaN is allowed only for an invalid sample (blink, lost track).
    valid : bool
        False during blinks, tracking loss or when the device flags the sample.
    pupil_size : float or None
        Pupil size in the device's own unit (EyeTribe: arbitrary units), when reported.
    device_t_ms : float or None
        The device's own time stamp of the sample in milliseconds on its clock (EyeTribe: the
        frame's ``time``; LSL: the sender's stamp), kept so that a recording can be checked
        against the device; None when the device sends none.
    device_state : int or None
        The device's own validity/state flags as it sent them (EyeTribe: the frame's ``state``
        bitmask; LSL: the validity channel's value), None when it sends none.
    """

    t_ms: float
    x_screen_px: float
    y_screen_px: float
    valid: bool = True
    pupil_size: float | None = None
    device_t_ms: float | None = None
    device_state: int | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.t_ms):
            raise ValueError(f"t_ms must be finite; got {self.t_ms!r}.")
        if self.device_t_ms is not None and not math.isfinite(self.device_t_ms):
            raise ValueError(f"device_t_ms must be finite or None; got {self.device_t_ms!r}.")
        if self.device_state is not None and (
            isinstance(self.device_state, bool) or not isinstance(self.device_state, int)
        ):
            raise TypeError(f"device_state must be an int or None; got {self.device_state!r}.")
        if self.valid and not (math.isfinite(self.x_screen_px) and math.isfinite(self.y_screen_px)):
            raise ValueError(
                f"a valid sample needs a finite position; got ({self.x_screen_px!r}, {self.y_screen_px!r}). "
                "Mark it valid=False."
            )


@dataclass(frozen=True, slots=True)
class Fixation:
    """A fixation: where the gaze rested and for how long.

    Parameters
    ----------
    onset_ms : float
        Time stamp of its first sample on the shared clock.
    duration_ms : float
        Last sample's time minus the first's (≥ 0).
    x_screen_px, y_screen_px : float
        Mean position of its samples.
    n_samples : int
        Number of samples it was built from.
    """

    onset_ms: float
    duration_ms: float
    x_screen_px: float
    y_screen_px: float
    n_samples: int

    def __post_init__(self) -> None:
        values = (self.onset_ms, self.duration_ms, self.x_screen_px, self.y_screen_px)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"fixation fields must be finite; got {values!r}.")
        if self.duration_ms < 0:
            raise ValueError(f"duration_ms must be >= 0; got {self.duration_ms!r}.")
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1; got {self.n_samples!r}.")

    @property
    def offset_ms(self) -> float:
        """Time stamp of its last sample."""
        return self.onset_ms + self.duration_ms


#: Pseudonyms: 1–32 ASCII letters, digits, ``_`` or ``-``. No spaces, so "First Last" cannot pass.
PSEUDONYM_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")


def check_pseudonym(pseudonym: str) -> str:
    """Return ``pseudonym`` if it matches :data:`PSEUDONYM_PATTERN`, else raise ``ValueError``."""
    if not isinstance(pseudonym, str) or PSEUDONYM_PATTERN.fullmatch(pseudonym) is None:
        raise ValueError(
            f"pseudonym must be 1-32 letters, digits, '_' or '-' (e.g. 'P07'); got {pseudonym!r}. "
            "Store pseudonymous ids only, never a participant's name."
        )
    return pseudonym


#: Where a trial's label came from: spoken and recognised, or typed on the keyboard (RBDM §5.3.1).
LABEL_SOURCES: tuple[str, ...] = ("speech", "keyboard")


@dataclass(frozen=True, slots=True)
class PhaseOnsets:
    """Onset times of the phases of one trial of the labeling protocol (RBDM §5.3.1).

    A trial runs: blank screen (500 ms) → central fixation cross (200 ms) → blank screen (500 ms)
    → stimulus, shown until the participant asks for the next one (after Utz and Carbon, 2016).

    Parameters
    ----------
    blank_onset_ms : float
        The first blank screen appeared.
    cross_onset_ms : float
        The fixation cross appeared.
    second_blank_onset_ms : float
        The second blank screen appeared.
    stimulus_onset_ms : float
        The stimulus image appeared.
    stimulus_offset_ms : float
        The stimulus image disappeared (end of the trial).

    Raises
    ------
    ValueError
        When a time is not finite or the phases are out of order.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (trial procedure).
    """

    blank_onset_ms: float
    cross_onset_ms: float
    second_blank_onset_ms: float
    stimulus_onset_ms: float
    stimulus_offset_ms: float

    def __post_init__(self) -> None:
        times = self.as_tuple()
        if not all(math.isfinite(t) for t in times):
            raise ValueError(f"phase onsets must be finite; got {times!r}.")
        if any(later < earlier for earlier, later in itertools.pairwise(times)):
            raise ValueError(
                "phase onsets must not decrease (blank, cross, second blank, stimulus on, stimulus off); "
                f"got {times!r}. Take all of them from tracking.clock.now_ms."
            )

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        """The five times in protocol order."""
        return (
            self.blank_onset_ms,
            self.cross_onset_ms,
            self.second_blank_onset_ms,
            self.stimulus_onset_ms,
            self.stimulus_offset_ms,
        )


@dataclass(frozen=True, slots=True)
class Trial:
    """One finished trial: a stimulus shown, looked at and labelled (RBDM §5.3.1).

    Parameters
    ----------
    position : int
        Zero-based place of the stimulus in the session's stimulus order.
    stimulus_id : str
        Identifier of the stimulus image (e.g. its path inside the dataset).
    phases : PhaseOnsets
        When each protocol phase began.
    label : str
        The participant's label, one of :data:`analysis.labels.LABELS`.
    label_source : str
        ``"speech"`` (spoken into the microphone and recognised) or ``"keyboard"``.
    recognised_text : str or None
        What the speech recogniser heard, for spoken labels.
    confidence : float or None
        The recogniser's confidence in [0, 1], when it reports one.
    response_time_ms : float or None
        Time from stimulus onset to the label, ≥ 0.

    Raises
    ------
    ValueError
        For a negative position, an empty stimulus id, an unknown label or label source, a
        confidence outside [0, 1] or a negative or non-finite response time.
    """

    position: int
    stimulus_id: str
    phases: PhaseOnsets
    label: str
    label_source: str
    recognised_text: str | None = None
    confidence: float | None = None
    response_time_ms: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.position, bool) or not isinstance(self.position, int) or self.position < 0:
            raise ValueError(f"position must be an int >= 0; got {self.position!r}.")
        if not isinstance(self.stimulus_id, str) or not self.stimulus_id:
            raise ValueError(f"stimulus_id must be a non-empty string; got {self.stimulus_id!r}.")
        label_index(self.label)
        if self.label_source not in LABEL_SOURCES:
            raise ValueError(f"label_source must be one of {LABEL_SOURCES!r}; got {self.label_source!r}.")
        if self.recognised_text is not None and (
            not isinstance(self.recognised_text, str) or not self.recognised_text
        ):
            raise ValueError(
                f"recognised_text must be a non-empty string or None; got {self.recognised_text!r}. "
                "Use None when nothing was recognised."
            )
        if self.confidence is not None and not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must lie in [0, 1] or be None; got {self.confidence!r}.")
        if self.response_time_ms is not None and not (
            math.isfinite(self.response_time_ms) and self.response_time_ms >= 0
        ):
            raise ValueError(
                f"response_time_ms must be finite and >= 0 or None; got {self.response_time_ms!r}."
            )


@dataclass(frozen=True, slots=True)
class TrialFrames:
    """How the display frames of one trial went: the intended frame counts and what was measured.

    Parameters
    ----------
    refresh_hz : float
        Refresh rate the phases were counted in (the screen's, or the pacing rate when the
        platform does not report one).
    frame_counted : bool
        True when the screen reported its refresh rate and phase durations were counted in its
        frames; False when they were paced by time at ``refresh_hz``.
    blank_frames, cross_frames, second_blank_frames : int
        Intended length of the three timed phases in frames (500, 200 and 500 ms in RBDM §5.3.1).
    n_frames : int
        Frames presented from the first blank's onset up to the stimulus offset.
    dropped_frames : int
        Frame intervals longer than 1.5 refresh periods within the trial.
    max_frame_interval_ms : float
        Longest interval between two presented frames of the trial.

    Raises
    ------
    ValueError
        For a non-positive rate, counts below 1 (below 0 for dropped frames) or a negative interval.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (blank 500 ms, cross 200 ms,
       blank 500 ms before each image).
    """

    refresh_hz: float
    frame_counted: bool
    blank_frames: int
    cross_frames: int
    second_blank_frames: int
    n_frames: int
    dropped_frames: int
    max_frame_interval_ms: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.refresh_hz) and self.refresh_hz > 0):
            raise ValueError(f"refresh_hz must be a finite number > 0; got {self.refresh_hz!r}.")
        counts = {
            "blank_frames": self.blank_frames,
            "cross_frames": self.cross_frames,
            "second_blank_frames": self.second_blank_frames,
            "n_frames": self.n_frames,
        }
        for name, value in {**counts, "dropped_frames": self.dropped_frames}.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an int; got {value!r}.")
        low = {name: value for name, value in counts.items() if value < 1}
        if low:
            raise ValueError(f"frame counts must be >= 1; got {low!r}.")
        if self.dropped_frames < 0:
            raise ValueError(f"dropped_frames must be >= 0; got {self.dropped_frames!r}.")
        if not (math.isfinite(self.max_frame_interval_ms) and self.max_frame_interval_ms >= 0):
            raise ValueError(
                f"max_frame_interval_ms must be finite and >= 0; got {self.max_frame_interval_ms!r}."
            )


@dataclass(frozen=True, slots=True)
class Participant:
    """A participant, known to the store only by a pseudonym.

    Parameters
    ----------
    participant_id : int
        The store's key.
    pseudonym : str
        1–32 characters from ``A–Z a–z 0–9 _ -`` (e.g. ``"P07"``); never a real name.
    """

    participant_id: int
    pseudonym: str

    def __post_init__(self) -> None:
        check_pseudonym(self.pseudonym)


#: Keys of :attr:`Session.settings` written by the app when a session starts and read back when a
#: session is resumed (:mod:`tracking.recording`) or analysed (:mod:`tracking.study`).
SETTING_STIMULUS_SET = "stimulus_set"  # the stimulus set's identity: resume only with the same set
SETTING_STIMULI = "stimuli"  # the dataset spec the stimuli came from
SETTING_SPLIT = "split"  # the dataset split the stimuli came from
SETTING_STIMULUS_RECT = "stimulus_rect"  # where the image was drawn: x_px, y_px, width_px, height_px
SETTING_STIMULUS_SIZE_PX = "stimulus_size_px"  # the drawn image's side when no rectangle is stored


@dataclass(frozen=True, slots=True)
class Session:
    """One recording session of one participant, as stored.

    Parameters
    ----------
    session_id, participant_id : int
        The store's keys.
    created_utc : str
        ISO 8601 UTC time the session was created.
    settings : Mapping[str, Any]
        Free-form JSON settings of the run (detector options, protocol timings...).
    geometry : ScreenGeometry
        The screen the stimuli were shown on.
    tracker, recogniser : str
        Names of the gaze driver and the speech recogniser used.
    stimulus_order : tuple of str
        Stimulus ids in presentation order; trial ``position`` indexes it.
    """

    session_id: int
    participant_id: int
    created_utc: str
    settings: Mapping[str, Any]
    geometry: ScreenGeometry
    tracker: str
    recogniser: str
    stimulus_order: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ValidationPoint:
    """Accuracy and precision of the tracker at one validation target.

    Parameters
    ----------
    target_x_screen_px, target_y_screen_px : float
        Where the target was shown.
    accuracy_deg : float
        Mean angular offset of the gaze from the target, ≥ 0.
    precision_deg : float
        Spread of the gaze samples (RMS sample-to-sample or SD), ≥ 0.
    """

    target_x_screen_px: float
    target_y_screen_px: float
    accuracy_deg: float
    precision_deg: float

    def __post_init__(self) -> None:
        values = (self.target_x_screen_px, self.target_y_screen_px, self.accuracy_deg, self.precision_deg)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"validation point fields must be finite; got {values!r}.")
        if self.accuracy_deg < 0 or self.precision_deg < 0:
            raise ValueError(
                "accuracy_deg and precision_deg must be >= 0; "
                f"got {self.accuracy_deg!r}, {self.precision_deg!r}."
            )


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """The outcome of one tracker validation: a result per target and their means.

    Parameters
    ----------
    t_ms : float
        When the validation finished, on the shared clock.
    points : tuple of ValidationPoint
        One entry per target, at least one.
    """

    t_ms: float
    points: tuple[ValidationPoint, ...]

    def __post_init__(self) -> None:
        if not math.isfinite(self.t_ms):
            raise ValueError(f"t_ms must be finite; got {self.t_ms!r}.")
        if not self.points or not all(isinstance(p, ValidationPoint) for p in self.points):
            raise ValueError(f"points must be a non-empty tuple of ValidationPoint; got {self.points!r}.")

    @property
    def mean_accuracy_deg(self) -> float:
        """Mean of the per-target accuracies."""
        return math.fsum(p.accuracy_deg for p in self.points) / len(self.points)

    @property
    def mean_precision_deg(self) -> float:
        """Mean of the per-target precisions."""
        return math.fsum(p.precision_deg for p in self.points) / len(self.points)


@dataclass(frozen=True, slots=True)
class SampleArrays:
    """Gaze samples as arrays, for whole trials and sessions (hot paths avoid per-sample records).

    Parameters
    ----------
    t_ms : ndarray, shape (N,)
        Time stamps on the shared clock, increasing within one recording.
    xy_screen_px : ndarray, shape (N, 2)
        Gaze positions ``(x, y)``; NaN for invalid samples.
    valid : ndarray of bool, shape (N,)
        False during blinks and tracking loss.
    pupil_size : ndarray, shape (N,)
        Pupil size in the device's unit; NaN where not reported.
    device_t_ms : ndarray, shape (N,)
        The device's own time stamps (ms on its clock); NaN where it sent none (and for samples
        recorded before schema version 3).
    device_state : ndarray, shape (N,)
        The device's validity/state flags as integral values; NaN where it sent none.
    """

    t_ms: NDArray[np.float64]
    xy_screen_px: NDArray[np.float64]
    valid: NDArray[np.bool_]
    pupil_size: NDArray[np.float64]
    device_t_ms: NDArray[np.float64]
    device_state: NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.t_ms.shape[0])
