"""Synthetic facial action unit sequences with ground truth: the embedded default for temporal prototypes.

CK+ (TP §3.1, read by :mod:`analysis.datasets.ck_sequences`) shows posed expressions from a neutral
onset to the apex, coded with facial action units (AUs, FACS). This module draws the same kind of data
with the schematic faces of :mod:`analysis.datasets.synthetic_faces`: each of :data:`UNITS` moves
facial features by a known amount, a :class:`Schedule` switches units on
and off over the frames of a sequence with linear onset and offset ramps, and
:func:`make_sequence` renders the frames together with the per-frame intensity of every unit and the
ground truth of which units are active. :data:`SEQUENCE_CLASSES` are emotion-like combinations, each
with its typical temporal order (surprise: brows, then lids, then the jaw), and
:func:`make_sequences` draws many jittered sequences of them. :func:`schedule_agreement` compares a
model's predicted active units with the planted schedule (stage boundaries within a tolerance).

One unit is planted with two strategies (:data:`TWO_STRATEGY_UNIT`): the lip corner puller AU12 is
drawn one-sided (FACS R12/L12), on the image-right corner in unmirrored sequences and on the
image-left corner in mirrored ones. A multi-label network must look at either corner, so SpRAy
(TP §3.3) should find two clusters in its relevance maps for AU12, and one for every other unit.

References
----------
.. [1] Finzel et al. (2021), Deriving Temporal Prototypes from Saliency Map Clusters, §3.1 (AUs,
   Figure 1, CK+ onset-to-apex sequences), §3.4 (stages), Figure 2.
.. [2] Ekman & Friesen (1978), Facial Action Coding System (unilateral actions are coded R/L).
.. [3] Lucey et al. (2010), The Extended Cohn-Kanade Dataset (CK+).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from analysis._validation import check_count, check_fraction
from analysis.datasets.synthetic_faces import (
    DEFAULT_NOISE_STD,
    Expression,
    FaceIdentity,
    draw_expression,
    sample_identity,
)
from analysis.prototypes import Stage, build_stages

__all__ = [
    "ACTIVE_INTENSITY",
    "SEQUENCE_CLASSES",
    "TWO_STRATEGY_UNIT",
    "UNITS",
    "UNIT_NAMES",
    "ActionUnit",
    "ClassTemplate",
    "Schedule",
    "ScheduleAgreement",
    "SyntheticSequence",
    "UnitInterval",
    "compose_expression",
    "make_sequence",
    "make_sequences",
    "make_unit_mix_sequences",
    "planted_stages",
    "sample_schedule",
    "schedule_agreement",
    "sequence_frames",
]


# --------------------------------------------------------------------------------------------------
# Action units
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ActionUnit:
    """One facial action unit and the feature movement that draws it at intensity 1.

    Parameters
    ----------
    code : str
        FACS code as CK+ prints it, ``"AU01"``.
    name : str
        FACS name, e.g. ``"inner brow raiser"``.
    expression : Expression
        Feature displacements at full intensity (:class:`analysis.datasets.synthetic_faces.Expression`).
    """

    code: str
    name: str
    expression: Expression


#: The drawn action units, in model output order (TP §3.1, Figure 1). AU12 is drawn one-sided (see
#: :data:`TWO_STRATEGY_UNIT`); AU01 + AU02 together raise the whole brow.
UNITS: dict[str, ActionUnit] = {
    unit.code: unit
    for unit in (
        ActionUnit("AU01", "inner brow raiser", Expression(brow_inner_raise=0.16)),
        ActionUnit("AU02", "outer brow raiser", Expression(brow_raise=0.12, brow_inner_raise=-0.12)),
        ActionUnit(
            "AU04", "brow lowerer", Expression(brow_raise=-0.1, brow_inner_raise=-0.08, brow_together=0.1)
        ),
        ActionUnit("AU05", "upper lid raiser", Expression(lid_open=0.7)),
        ActionUnit("AU12", "lip corner puller", Expression(mouth_corner_raise_right=0.4)),
        ActionUnit("AU26", "jaw drop", Expression(mouth_open=0.24)),
    )
}
#: Unit codes in model output order.
UNIT_NAMES: tuple[str, ...] = tuple(UNITS)
#: The unit planted with two strategies: one-sided AU12 on the image-right corner (unmirrored
#: sequences) or on the image-left corner (mirrored sequences).
TWO_STRATEGY_UNIT = "AU12"
#: A unit counts as active (ground truth and training target) from this intensity on.
ACTIVE_INTENSITY = 0.5

_EXPRESSION_FIELDS = tuple(field.name for field in fields(Expression))
_NON_NEGATIVE_FIELDS = frozenset({"nose_wrinkle", "upper_lip_raise", "mouth_open"})


def _check_unit(unit: object) -> str:
    if unit not in UNITS:
        raise ValueError(f"unknown action unit {unit!r}; expected one of {', '.join(UNIT_NAMES)}.")
    return str(unit)


def compose_expression(intensities: Mapping[str, float]) -> Expression:
    """The expression of several action units at once: their displacements, scaled and summed.

    Parameters
    ----------
    intensities : mapping of str to float
        Unit code → intensity in [0, 1.5] (1 = the displacement of :data:`UNITS`); absent units are 0.

    Returns
    -------
    Expression
        The sum of ``UNITS[u].expression`` scaled by the intensity of u, clipped to the ranges
        :class:`~analysis.datasets.synthetic_faces.Expression` accepts.

    Raises
    ------
    ValueError
        For an unknown unit or an intensity outside [0, 1.5].

    References
    ----------
    .. [1] Finzel et al. (2021), §3.1: action units co-occur in one face.
    """
    totals = dict.fromkeys(_EXPRESSION_FIELDS, 0.0)
    for unit, intensity in intensities.items():
        _check_unit(unit)
        value = float(intensity)
        if not (math.isfinite(value) and 0.0 <= value <= 1.5):
            raise ValueError(f"intensity of {unit} must lie in [0, 1.5]; got {intensity!r}.")
        for name in _EXPRESSION_FIELDS:
            totals[name] += value * getattr(UNITS[unit].expression, name)
    return Expression(
        **{
            name: float(np.clip(total, 0.0 if name in _NON_NEGATIVE_FIELDS else -2.0, 2.0))
            for name, total in totals.items()
        }
    )


# --------------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UnitInterval:
    """One unit switching on at ``onset_frame`` and, optionally, off at ``offset_frame``.

    The intensity rises linearly over ``ramp_frames`` frames from the onset frame,
    ``min(1, (t − onset_frame + 1) / ramp_frames)``, and falls the same way from the offset frame,
    reaching 0 at ``offset_frame + ramp_frames − 1``. ``ramp_frames = 1`` switches instantly.

    Parameters
    ----------
    unit : str
        A code of :data:`UNITS`.
    onset_frame : int
        First frame of the onset ramp (≥ 0).
    offset_frame : int, optional
        First frame of the offset ramp, after the apex (``onset_frame + ramp_frames``); None keeps the
        unit on to the end, as at the apex of a CK+ sequence.
    ramp_frames : int, default 3
        Length of each ramp in frames (≥ 1).
    """

    unit: str
    onset_frame: int
    offset_frame: int | None = None
    ramp_frames: int = 3

    def __post_init__(self) -> None:
        _check_unit(self.unit)
        check_count(onset_frame=self.onset_frame)
        if (
            isinstance(self.ramp_frames, bool)
            or not isinstance(self.ramp_frames, int)
            or self.ramp_frames < 1
        ):
            raise ValueError(f"ramp_frames must be an integer >= 1; got {self.ramp_frames!r}.")
        if self.offset_frame is not None:
            check_count(offset_frame=self.offset_frame)
            if self.offset_frame < self.onset_frame + self.ramp_frames:
                raise ValueError(
                    f"{self.unit}: offset_frame {self.offset_frame!r} comes before the apex at frame "
                    f"{self.onset_frame + self.ramp_frames}; switch off later or shorten the ramp."
                )

    def intensity(self, n_frames: int) -> NDArray[np.float64]:
        """The unit's intensity in each of ``n_frames`` frames, in [0, 1]."""
        t = np.arange(check_count(n_frames=n_frames), dtype=np.float64)
        rising = np.clip((t - self.onset_frame + 1.0) / self.ramp_frames, 0.0, 1.0)
        if self.offset_frame is None:
            return rising
        falling = np.clip(1.0 - (t - self.offset_frame + 1.0) / self.ramp_frames, 0.0, 1.0)
        return np.minimum(rising, falling)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When each unit of a sequence is on: a set of :class:`UnitInterval` (TP §3.4, Figure 2).

    A unit may have several intervals (switching on again later); where they overlap the larger
    intensity counts.
    """

    intervals: tuple[UnitInterval, ...]

    def __post_init__(self) -> None:
        intervals = tuple(self.intervals)
        for interval in intervals:
            if not isinstance(interval, UnitInterval):
                raise TypeError(f"intervals must be UnitInterval records; got {interval!r}.")
        object.__setattr__(self, "intervals", intervals)

    def intensities(self, n_frames: int, *, units: Sequence[str] = UNIT_NAMES) -> NDArray[np.float64]:
        """Intensity of each unit in each frame, shape ``(n_frames, len(units))``, in [0, 1]."""
        columns = [_check_unit(unit) for unit in units]
        result = np.zeros((check_count(n_frames=n_frames), len(columns)), dtype=np.float64)
        for interval in self.intervals:
            if interval.unit in columns:
                column = columns.index(interval.unit)
                result[:, column] = np.maximum(result[:, column], interval.intensity(n_frames))
        return result


@dataclass(frozen=True, slots=True)
class ClassTemplate:
    """The typical temporal order of one sequence class: per unit, onset and offset as frame fractions.

    Parameters
    ----------
    name : str
        Class (emotion) name.
    onsets : mapping of str to (float, float or None)
        Unit → (onset, offset) as fractions of the sequence length; offset None stays on to the end.
    """

    name: str
    onsets: Mapping[str, tuple[float, float | None]]


#: Emotion-like unit combinations with their typical order (FACS prototypes, simplified to the units
#: drawn here; TP §4 finds AU01, AU02 and AU25/26 in CK+ surprise).
SEQUENCE_CLASSES: dict[str, ClassTemplate] = {
    template.name: template
    for template in (
        ClassTemplate(
            "surprise", {"AU01": (0.15, None), "AU02": (0.2, None), "AU05": (0.3, 0.75), "AU26": (0.5, None)}
        ),
        ClassTemplate("contempt", {"AU12": (0.2, None)}),
        ClassTemplate("sad", {"AU01": (0.2, None), "AU04": (0.45, None)}),
        ClassTemplate("anger", {"AU04": (0.15, None), "AU05": (0.4, 0.8)}),
    )
}


def sample_schedule(
    template: ClassTemplate | str,
    *,
    n_frames: int,
    rng: np.random.Generator,
    jitter_frames: int = 2,
    ramp_frames: int = 3,
) -> Schedule:
    """A schedule of ``template`` for ``n_frames`` frames, each onset and offset jittered independently.

    Each boundary is the template's fraction of ``n_frames`` (rounded) plus a uniform integer in
    ``[-jitter_frames, jitter_frames]``, kept inside the sequence; an offset is kept at least
    ``ramp_frames + 2`` frames after its onset, and dropped when that leaves no room.

    Parameters
    ----------
    template : ClassTemplate or str
        A template or a key of :data:`SEQUENCE_CLASSES`.
    n_frames : int
        Sequence length (≥ 4).
    rng : numpy.random.Generator
    jitter_frames : int, default 2
    ramp_frames : int, default 3

    Returns
    -------
    Schedule
    """
    chosen = _template(template)
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 4:
        raise ValueError(f"n_frames must be an integer >= 4; got {n_frames!r}.")
    jitter = check_count(jitter_frames=jitter_frames)
    last = int(n_frames) - 1
    intervals = []
    for unit, (on_fraction, off_fraction) in chosen.onsets.items():
        onset = int(np.clip(round(on_fraction * n_frames) + rng.integers(-jitter, jitter + 1), 1, last))
        offset = None
        if off_fraction is not None:
            earliest = onset + ramp_frames + 2
            candidate = round(off_fraction * n_frames) + int(rng.integers(-jitter, jitter + 1))
            offset = max(candidate, earliest) if earliest <= last else None
            offset = None if offset is not None and offset > last else offset
        intervals.append(UnitInterval(unit, onset, offset, ramp_frames))
    return Schedule(tuple(intervals))


def _template(template: ClassTemplate | str) -> ClassTemplate:
    if isinstance(template, ClassTemplate):
        return template
    try:
        return SEQUENCE_CLASSES[template]
    except (KeyError, TypeError) as err:
        raise ValueError(
            f"unknown sequence class {template!r}; expected one of {', '.join(SEQUENCE_CLASSES)} "
            "or a ClassTemplate."
        ) from err


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class SyntheticSequence:
    """One rendered sequence and its ground truth (read-only arrays).

    Attributes
    ----------
    frames : ndarray of float32, shape (T, H, W) or (T, H, W, 3)
        The images in [0, 1].
    units : tuple of str
        Column names of ``intensity`` and ``active`` (:data:`UNIT_NAMES`).
    intensity : ndarray of float64, shape (T, U)
        Drawn intensity of each unit in each frame.
    active : ndarray of bool, shape (T, U)
        Ground truth: ``intensity >= ACTIVE_INTENSITY``.
    schedule : Schedule
        The planted on/off schedule.
    class_name : str
        The sequence class (emotion), or ``""``.
    id : str
        Identifier, e.g. ``"surprise/003"``.
    identity : FaceIdentity
        The drawn person.
    mirrored : bool
        Frames mirrored left-right: the one-sided AU12 then sits on the image-left corner.
    strategies : dict of str to str
        For :data:`TWO_STRATEGY_UNIT`, the planted strategy (``"right corner"`` or ``"left corner"``).
    """

    frames: NDArray[np.float32]
    units: tuple[str, ...]
    intensity: NDArray[np.float64]
    active: NDArray[np.bool_]
    schedule: Schedule
    class_name: str
    id: str
    identity: FaceIdentity
    mirrored: bool
    strategies: dict[str, str]

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return int(self.frames.shape[0])

    def active_sets(self) -> tuple[frozenset[str], ...]:
        """The ground-truth active units of each frame, as sets of codes."""
        return tuple(
            frozenset(unit for unit, on in zip(self.units, row, strict=True) if on) for row in self.active
        )


def make_sequence(
    schedule: Schedule,
    *,
    n_frames: int,
    size: int = 48,
    rgb: bool = False,
    rng: np.random.Generator,
    identity: FaceIdentity | None = None,
    mirrored: bool = False,
    noise_std: float = DEFAULT_NOISE_STD,
    class_name: str = "",
    id: str = "",
) -> SyntheticSequence:
    """Render one sequence of a schedule: one face per frame, the units at their scheduled intensity.

    All frames show the same person; only the units and the pixel noise change. Frames with equal
    intensities share one noiseless rendering, the noise is drawn per frame.

    Parameters
    ----------
    schedule : Schedule
        When each unit is on.
    n_frames : int
        Number of frames (≥ 1).
    size, rgb, noise_std :
        As in :func:`analysis.datasets.synthetic_faces.make_face`.
    rng : numpy.random.Generator
        Source of the identity (when not given) and the noise, in that order.
    identity : FaceIdentity, optional
        The person; default a fresh :func:`~analysis.datasets.synthetic_faces.sample_identity`.
    mirrored : bool, default False
        Mirror every frame left-right (the planted second strategy of :data:`TWO_STRATEGY_UNIT`).
    class_name, id : str
        Stored in the result.

    Returns
    -------
    SyntheticSequence

    References
    ----------
    .. [1] Finzel et al. (2021), §3.1 (CK+ sequences from onset to apex), §3.4, Figure 2.
    """
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be a Schedule; got {type(schedule).__name__}.")
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueError(f"n_frames must be an integer >= 1; got {n_frames!r}.")
    if not (math.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0; got {noise_std!r}.")
    person = sample_identity(rng) if identity is None else identity
    intensity = schedule.intensities(int(n_frames))
    frames = _render(intensity, person, size=size, rgb=rgb, mirrored=bool(mirrored))
    if noise_std > 0:
        frames = np.clip(frames + rng.normal(0.0, noise_std, size=frames.shape), 0.0, 1.0).astype(np.float32)
    active = intensity >= ACTIVE_INTENSITY
    side = "left corner" if mirrored else "right corner"
    for array in (frames, intensity, active):
        array.setflags(write=False)
    return SyntheticSequence(
        frames=frames,
        units=UNIT_NAMES,
        intensity=intensity,
        active=active,
        schedule=schedule,
        class_name=str(class_name),
        id=str(id),
        identity=person,
        mirrored=bool(mirrored),
        strategies={TWO_STRATEGY_UNIT: side},
    )


def _render(
    intensity: NDArray[np.float64], identity: FaceIdentity, *, size: int, rgb: bool, mirrored: bool
) -> NDArray[np.float32]:
    """Noiseless frames; each distinct row of intensities is drawn once."""
    cache: dict[tuple[float, ...], NDArray[np.float32]] = {}
    quiet = np.random.default_rng(0)  # draw_expression draws noise only, and noise_std is 0 here
    images = []
    for row in intensity:
        key = tuple(np.round(row, 6).tolist())
        if key not in cache:
            expression = compose_expression(dict(zip(UNIT_NAMES, key, strict=True)))
            cache[key] = draw_expression(
                expression, identity=identity, size=size, rgb=rgb, rng=quiet, noise_std=0.0
            )
        images.append(cache[key])
    frames = np.stack(images)
    return np.ascontiguousarray(frames[:, :, ::-1]) if mirrored else frames


def make_sequences(
    n_per_class: int,
    *,
    rng: np.random.Generator,
    classes: Sequence[str] | None = None,
    n_frames: tuple[int, int] = (16, 20),
    size: int = 48,
    rgb: bool = False,
    noise_std: float = DEFAULT_NOISE_STD,
    jitter_frames: int = 2,
    mirror_fraction: float = 0.5,
) -> list[SyntheticSequence]:
    """Draw ``n_per_class`` jittered sequences of each class, each a new person.

    Sequences come class by class. Each has a random length in ``n_frames`` (inclusive) and a schedule
    from :func:`sample_schedule`; ``round(mirror_fraction · n_per_class)`` sequences of each class,
    chosen at random, are mirrored (which plants the two strategies of :data:`TWO_STRATEGY_UNIT`).
    Ids are ``"<class>/<index:03d>"``.

    Parameters
    ----------
    n_per_class : int
        Sequences per class (≥ 0).
    rng : numpy.random.Generator
    classes : sequence of str, optional
        Keys of :data:`SEQUENCE_CLASSES`; default all.
    n_frames : (int, int), default (16, 20)
        Smallest and largest sequence length (CK+ averages about 18 frames, TP Table 1).
    size, rgb, noise_std :
        As in :func:`make_sequence`.
    jitter_frames : int, default 2
        See :func:`sample_schedule`.
    mirror_fraction : float, default 0.5
        Share of mirrored sequences per class, strictly between 0 and 1.

    Returns
    -------
    list of SyntheticSequence

    References
    ----------
    .. [1] Finzel et al. (2021), §3.1, Table 1 (sequence counts and lengths per emotion).
    """
    count = check_count(n_per_class=n_per_class)
    names = list(SEQUENCE_CLASSES) if classes is None else [_template(name).name for name in classes]
    low, high = (int(v) for v in n_frames)
    if not 4 <= low <= high:
        raise ValueError(f"n_frames must be (low, high) with 4 <= low <= high; got {n_frames!r}.")
    mirror = check_fraction(mirror_fraction=mirror_fraction)
    sequences = []
    for name in names:
        mirrors = rng.permutation(np.arange(count) < round(count * mirror))
        for index in range(count):
            sequences.append(
                _draw_sequence(
                    _template(name),
                    n_frames=(low, high),
                    jitter_frames=jitter_frames,
                    size=size,
                    rgb=rgb,
                    rng=rng,
                    mirrored=bool(mirrors[index]),
                    noise_std=noise_std,
                    class_name=name,
                    id=f"{name}/{index:03d}",
                )
            )
    return sequences


def _draw_sequence(
    template: ClassTemplate,
    *,
    n_frames: tuple[int, int],
    jitter_frames: int,
    rng: np.random.Generator,
    **render: Any,
) -> SyntheticSequence:
    """A random length in ``n_frames``, a jittered schedule of ``template``, then the rendered frames."""
    length = int(rng.integers(n_frames[0], n_frames[1] + 1))
    schedule = sample_schedule(template, n_frames=length, rng=rng, jitter_frames=jitter_frames)
    return make_sequence(schedule, n_frames=length, rng=rng, **render)


def make_unit_mix_sequences(
    n_sequences: int,
    *,
    rng: np.random.Generator,
    p_active: float = 0.35,
    onset_range: tuple[float, float] = (0.1, 0.5),
    n_frames: tuple[int, int] = (16, 20),
    size: int = 48,
    rgb: bool = False,
    noise_std: float = DEFAULT_NOISE_STD,
    mirror_fraction: float = 0.5,
) -> list[SyntheticSequence]:
    """Sequences of random unit combinations: training data in which no unit predicts another.

    In :data:`SEQUENCE_CLASSES` every unit comes with fixed companions: AU12 only in ``contempt``,
    whose upper face stays neutral. A network trained on those alone can detect AU12 partly from
    the *absence* of brow and lid movement (a co-occurrence shortcut), and how much it does differs
    from one training run (seed, CPU kernels) to the next; its AU12 relevance then lies partly on the
    eyes, the same for both planted strategies, and SpRAy (TP §3.3) can no longer tell the corners
    apart. Mixed into the training data, these sequences switch each unit on independently, so the
    only evidence for a unit is its own feature movement.

    Each sequence switches every unit of :data:`UNIT_NAMES` on independently with probability
    ``p_active`` (drawn again when none is on), each at an onset drawn uniformly from
    ``onset_range`` (fractions of the length) and on to the end; its class name is ``""`` and its
    id ``"mix/<index:03d>"``;
    ``round(mirror_fraction · n_sequences)`` of them, chosen at random, are mirrored.

    Parameters
    ----------
    n_sequences : int
        Number of sequences (≥ 0).
    rng : numpy.random.Generator
    p_active : float, default 0.35
        Probability of each unit being switched on in a sequence, strictly between 0 and 1.
    onset_range : (float, float), default (0.1, 0.5)
        Earliest and latest onset as fractions of the sequence length, ``0 <= low <= high <= 1``.
    n_frames, size, rgb, noise_std, mirror_fraction :
        As in :func:`make_sequences`.

    Returns
    -------
    list of SyntheticSequence

    References
    ----------
    .. [1] Finzel et al. (2021), §3.1 (the multi-label AU network), §3.3 (SpRAy finds strategies only
       where the network has them).
    .. [2] Lapuschkin et al. (2019), Unmasking Clever Hans predictors: a network that uses a spurious
       correlate of its label shows it in its relevance maps.
    """
    count = check_count(n_sequences=n_sequences)
    p = check_fraction(p_active=p_active)
    earliest, latest = (float(v) for v in onset_range)
    if not 0.0 <= earliest <= latest <= 1.0:
        raise ValueError(f"onset_range must be (low, high) with 0 <= low <= high <= 1; got {onset_range!r}.")
    low, high = (int(v) for v in n_frames)
    if not 4 <= low <= high:
        raise ValueError(f"n_frames must be (low, high) with 4 <= low <= high; got {n_frames!r}.")
    mirrors = rng.permutation(
        np.arange(count) < round(count * check_fraction(mirror_fraction=mirror_fraction))
    )
    sequences = []
    for index in range(count):
        on = rng.random(len(UNIT_NAMES)) < p
        while not on.any():
            on = rng.random(len(UNIT_NAMES)) < p
        onsets = {
            unit: (float(rng.uniform(earliest, latest)), None)
            for unit, chosen in zip(UNIT_NAMES, on, strict=True)
            if chosen
        }
        sequences.append(
            _draw_sequence(
                ClassTemplate("mix", onsets),
                n_frames=(low, high),
                jitter_frames=2,
                size=size,
                rgb=rgb,
                rng=rng,
                mirrored=bool(mirrors[index]),
                noise_std=noise_std,
                id=f"mix/{index:03d}",
            )
        )
    return sequences


def sequence_frames(sequences: Sequence[SyntheticSequence]) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """All frames of ``sequences`` stacked, with their ground-truth active units (training data).

    Returns
    -------
    frames : ndarray of float32, shape (ΣT, H, W) or (ΣT, H, W, 3)
    active : ndarray of bool, shape (ΣT, U)
    """
    if not sequences:
        raise ValueError("sequences is empty; draw some with make_sequences().")
    return (
        np.concatenate([s.frames for s in sequences]),
        np.concatenate([s.active for s in sequences]),
    )


def planted_stages(sequence: SyntheticSequence) -> tuple[Stage, ...]:
    """The stages of the ground truth: consecutive frames with the same active units (TP §3.4).

    This is the temporal prototype without clustering (TP Table 1, third row) that a perfect
    multi-label model would give.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4, stages; §4, prototypes from AU co-occurrence only.
    """
    return build_stages(sequence.active_sets())


# --------------------------------------------------------------------------------------------------
# Comparing predictions with the planted schedule
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScheduleAgreement:
    """How well predicted active units reproduce the planted on/off schedule of a sequence.

    A *switch* is a frame where a unit turns on or off (the first frame of its new state); every
    stage boundary of TP §3.4 (without clustering) is a switch of some unit. A planted switch is
    matched by a predicted switch of the same unit and direction at most ``tolerance_frames`` away,
    each predicted switch matching at most one planted switch.

    Attributes
    ----------
    n_planted : int
        Planted switches.
    n_predicted : int
        Predicted switches.
    n_matched : int
        Planted switches matched.
    offsets_frames : tuple of int
        Predicted minus planted frame of each matched switch.
    n_frames : int
        Frames compared.
    n_frames_equal : int
        Frames whose predicted set of active units equals the planted set.
    tolerance_frames : int
        The matching tolerance.
    """

    n_planted: int
    n_predicted: int
    n_matched: int
    offsets_frames: tuple[int, ...]
    n_frames: int
    n_frames_equal: int
    tolerance_frames: int

    @property
    def stages_match(self) -> bool:
        """Every planted switch matched and no other switch predicted: the same stages up to tolerance."""
        return self.n_matched == self.n_planted == self.n_predicted

    def __add__(self, other: ScheduleAgreement) -> ScheduleAgreement:
        """Pool two agreements (same tolerance), e.g. over the sequences of a data set."""
        if not isinstance(other, ScheduleAgreement):
            return NotImplemented
        if other.tolerance_frames != self.tolerance_frames:
            raise ValueError("only agreements with the same tolerance_frames can be pooled.")
        return ScheduleAgreement(
            self.n_planted + other.n_planted,
            self.n_predicted + other.n_predicted,
            self.n_matched + other.n_matched,
            self.offsets_frames + other.offsets_frames,
            self.n_frames + other.n_frames,
            self.n_frames_equal + other.n_frames_equal,
            self.tolerance_frames,
        )


def _switches(on: NDArray[np.bool_]) -> list[tuple[int, bool]]:
    frames = np.flatnonzero(on[1:] != on[:-1]) + 1
    return [(int(t), bool(on[t])) for t in frames]


def _match(planted: list[tuple[int, bool]], predicted: list[tuple[int, bool]], tolerance: int) -> list[int]:
    free = list(predicted)
    offsets = []
    for frame, direction in planted:
        candidates = [p for p in free if p[1] == direction and abs(p[0] - frame) <= tolerance]
        if candidates:
            best = min(candidates, key=lambda p: (abs(p[0] - frame), p[0]))
            free.remove(best)
            offsets.append(best[0] - frame)
    return offsets


def schedule_agreement(
    sequence: SyntheticSequence,
    predicted: Sequence[AbstractSet[str]],
    *,
    tolerance_frames: int = 1,
) -> ScheduleAgreement:
    """Compare predicted active units per frame with a sequence's planted schedule (TP §3.4 stages).

    Parameters
    ----------
    sequence : SyntheticSequence
        The sequence with its ground truth (:attr:`SyntheticSequence.active`).
    predicted : sequence of set of str, length T
        Units predicted active per frame, e.g. :func:`analysis.prototypes.active_labels` of a model's
        outputs; names outside ``sequence.units`` are ignored.
    tolerance_frames : int, default 1
        How far a predicted switch may lie from the planted one. The ground truth switches where the
        intensity ramp crosses :data:`ACTIVE_INTENSITY`; with the default three-frame ramp the frames
        on either side show 1/3 and 2/3 of the apex, so a model is expected within one frame.

    Returns
    -------
    ScheduleAgreement

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4, stages begin where the set of active units changes.
    """
    if len(predicted) != sequence.n_frames:
        raise ValueError(f"need one set per frame; got {len(predicted)} for {sequence.n_frames} frames.")
    tolerance = check_count(tolerance_frames=tolerance_frames)
    truth = sequence.active
    guess = np.array([[unit in frame for unit in sequence.units] for frame in predicted], dtype=bool)
    planted_count = predicted_count = 0
    offsets: list[int] = []
    for column in range(truth.shape[1]):
        planted, found = _switches(truth[:, column]), _switches(guess[:, column])
        planted_count += len(planted)
        predicted_count += len(found)
        offsets += _match(planted, found, tolerance)
    return ScheduleAgreement(
        n_planted=planted_count,
        n_predicted=predicted_count,
        n_matched=len(offsets),
        offsets_frames=tuple(offsets),
        n_frames=sequence.n_frames,
        n_frames_equal=int((truth == guess).all(axis=1).sum()),
        tolerance_frames=tolerance,
    )
