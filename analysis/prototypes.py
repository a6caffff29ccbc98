"""Temporal prototypes: stages of co-occurring label clusters over a sequence of frames (TP §3.4).

For every frame of a sequence the network predicts which labels (Action Units) are active, and SpRAy
(:mod:`analysis.spray`, TP §3.3) assigns each active (frame, label) to one of the label's clusters.
A frame is then described by the set of its active clusters, named per label in order of first
appearance in the sequence (``AU01_A``, ``AU02_A``, ``AU02_B`` …). Consecutive frames with the same set
form a *stage*, and the ordered list of stages is the sequence's *temporal prototype*, printed as in
TP §3.4::

    (NONE) → (AU02_A) → (AU01_A, AU02_A, AU04_A) → (AU01_A, AU02_B, AU04_A) → …

A frame is represented here as a mapping ``{label: cluster id}`` over its active labels (an empty
mapping for a frame where nothing is active); :func:`active_labels` and :func:`frame_clusters` build
these from sigmoid outputs and SpRAy results. :func:`prototype_statistics` produces the columns of
TP Table 1.

References
----------
.. [1] Finzel et al. (2021), Deriving Temporal Prototypes from Saliency Map Clusters, §3.4, §4, Table 1.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike

from analysis._validation import check_fraction

__all__ = [
    "ARROW",
    "NAMINGS",
    "NONE",
    "PrototypeStatistics",
    "PrototypeTable",
    "Stage",
    "TemporalPrototype",
    "active_labels",
    "build_stages",
    "description_length_reduction",
    "frame_clusters",
    "name_clusters",
    "name_labels",
    "prototype_statistics",
    "temporal_prototype",
]

#: How a stage without any active label is printed (TP §3.4: 'No prediction ... is marked by "NONE"').
NONE = "NONE"
#: Arrow between stages when a prototype is printed (TP §3.4).
ARROW = " → "

Frame = Mapping[str, int]
Naming = Callable[[Sequence[Frame]], tuple[frozenset[str], ...]]

_FORBIDDEN = re.compile(r"[(),→]|->")
_CLUSTER_NAME = re.compile(r"^(.*)_([A-Z]+)$")


# --------------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------------


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string; got {name!r}.")
    if not name or name != name.strip() or _FORBIDDEN.search(name) or name == NONE:
        raise ValueError(
            f"{what} {name!r} cannot be printed unambiguously in a temporal prototype; use a non-empty "
            f"name without surrounding spaces, '(', ')', ',', '→' or '->', other than {NONE!r}."
        )
    return name


def _check_frames(frames: Sequence[Frame], what: str = "frames") -> tuple[dict[str, int], ...]:
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Sequence):
        raise TypeError(
            f"{what} must be a sequence of {{label: cluster}} mappings; got {type(frames).__name__}."
        )
    checked = []
    for index, frame in enumerate(frames):
        if not isinstance(frame, Mapping):
            raise TypeError(
                f"{what}[{index}] must map each active label to its cluster id; got {frame!r}. "
                "Use frame_clusters() to build frames from active labels and SpRAy results."
            )
        row = {}
        for label, cluster in frame.items():
            _check_name(label, f"label in {what}[{index}]")
            if isinstance(cluster, bool) or not isinstance(cluster, (int, np.integer)):
                raise TypeError(f"{what}[{index}][{label!r}] must be an integer cluster id; got {cluster!r}.")
            row[label] = int(cluster)
        checked.append(row)
    return tuple(checked)


# --------------------------------------------------------------------------------------------------
# Frames: active labels and their clusters
# --------------------------------------------------------------------------------------------------


def active_labels(
    scores: ArrayLike, labels: Sequence[str], *, threshold: float = 0.5
) -> tuple[frozenset[str], ...]:
    """The labels predicted active in each frame: sigmoid output above ``threshold`` (TP §3.4).

    Parameters
    ----------
    scores : array_like, shape (T, L)
        Per-frame outputs of a multi-label network (sigmoid, in [0, 1]).
    labels : sequence of str, length L
        Name of each output column, e.g. ``("AU01", "AU02", ...)``.
    threshold : float, default 0.5
        A label is active when its score is strictly greater.

    Returns
    -------
    tuple of frozenset of str, length T

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4, "based on the prediction of the neural network".
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"scores must have shape (T, L), one row per frame; got shape {arr.shape!r}.")
    if not np.isfinite(arr).all():
        raise ValueError("scores must be finite; replace NaN outputs before thresholding.")
    names = [_check_name(label, "label") for label in labels]
    if len(names) != arr.shape[1] or len(set(names)) != len(names):
        raise ValueError(
            f"labels must name each of the {arr.shape[1]} score columns once; got {list(labels)!r}."
        )
    threshold = check_fraction(threshold=threshold)
    return tuple(
        frozenset(name for name, on in zip(names, row, strict=True) if on) for row in arr > threshold
    )


def frame_clusters(
    active: Sequence[AbstractSet[str]], clusters: Mapping[str, ArrayLike]
) -> tuple[dict[str, int], ...]:
    """Attach SpRAy cluster ids to the active labels of each frame (TP §3.3 → §3.4).

    Parameters
    ----------
    active : sequence of set of str, length T
        Active labels per frame, e.g. from :func:`active_labels`. May span several sequences.
    clusters : mapping of str to array_like of int
        For each label, its cluster id in every frame where it is active, in frame order (e.g.
        ``SprayResult.labels`` from :func:`analysis.spray.spray` run on the maps of exactly those
        frames).

    Returns
    -------
    tuple of dict of str to int, length T
        ``{label: cluster id}`` of the active labels of each frame.

    Raises
    ------
    ValueError
        When a label is active but has no cluster ids, or its number of ids differs from the number of
        frames in which it is active.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4, "Action Unit-wise spectral clustering" (Table 1).
    """
    frames = [sorted(_check_name(label, "active label") for label in labels) for labels in active]
    counts: dict[str, int] = {}
    for labels in frames:
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    ids = {label: np.asarray(clusters.get(label, ()), dtype=np.int64).reshape(-1) for label in counts}
    for label, count in counts.items():
        if ids[label].size != count:
            raise ValueError(
                f"label {label!r} is active in {count} frames but has {ids[label].size} cluster ids; "
                "run SpRAy on the relevance maps of exactly the frames where the label is active."
            )
    position = dict.fromkeys(counts, 0)
    result = []
    for labels in frames:
        row = {}
        for label in labels:
            row[label] = int(ids[label][position[label]])
            position[label] += 1
        result.append(row)
    return tuple(result)


# --------------------------------------------------------------------------------------------------
# Naming (TP §3.4: "The first occurrence of a cluster for an Action Unit is always labeled by A ...")
# --------------------------------------------------------------------------------------------------


def _letters(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA, 27 → AB … (bijective base 26, as spreadsheet columns)."""
    letters = ""
    index += 1
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def name_clusters(frames: Sequence[Frame]) -> tuple[frozenset[str], ...]:
    """Name each frame's active clusters ``<label>_<letter>``, letters per label by first appearance.

    Within one sequence, the first cluster of a label to appear is ``A``, the next new one ``B`` and so
    on (after ``Z`` come ``AA``, ``AB`` …); a cluster that reappears keeps its letter. Letters are
    counted per label, not across labels: ``AU01_A`` and ``AU02_A`` are the first clusters of two
    different labels. As a consequence the letters compare sequences by the order in which clusters
    appear, not by SpRAy's cluster ids, which is how TP §4 compares prototypes across sequences.

    Parameters
    ----------
    frames : sequence of mapping of str to int
        ``{label: cluster id}`` of the active labels of each frame of one sequence.

    Returns
    -------
    tuple of frozenset of str
        The names active in each frame; empty where nothing is active.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4, "The first occurrence of a cluster for an Action Unit is always
       labeled by 'A', the second by 'B' and so on which allows to identify if a cluster reoccurs
       during a sequence."
    """
    letters: dict[str, dict[int, str]] = {}
    named = []
    for frame in _check_frames(frames):
        names = set()
        for label in sorted(frame):
            seen = letters.setdefault(label, {})
            letter = seen.setdefault(frame[label], _letters(len(seen)))
            names.add(f"{label}_{letter}")
        named.append(frozenset(names))
    return tuple(named)


def name_labels(frames: Sequence[Frame]) -> tuple[frozenset[str], ...]:
    """Name each frame by its active labels only, ignoring clusters (TP Table 1, "only AU co-occurrence").

    Parameters
    ----------
    frames : sequence of mapping of str to int

    Returns
    -------
    tuple of frozenset of str
        The active labels of each frame (``AU01`` rather than ``AU01_A``).

    References
    ----------
    .. [1] Finzel et al. (2021), §4, "without clustering among individual Action Units, considering only
       the occurrence of Action Units as predicted by the neural network"; Table 1, third row.
    """
    return tuple(frozenset(frame) for frame in _check_frames(frames))


#: Namings of the frames of a sequence: with SpRAy clusters (TP §3.4) or labels only (TP §4, Table 1).
NAMINGS: dict[str, Naming] = {"clusters": name_clusters, "labels": name_labels}


# --------------------------------------------------------------------------------------------------
# Stages and temporal prototypes
# --------------------------------------------------------------------------------------------------


def _check_stage_names(names: AbstractSet[str]) -> frozenset[str]:
    if isinstance(names, (str, bytes)) or not isinstance(names, AbstractSet):
        raise TypeError(f"a stage must be a set of names; got {names!r}.")
    return frozenset(_check_name(name, "name in a stage") for name in names)


@dataclass(frozen=True, slots=True)
class Stage:
    """Consecutive frames ``start_frame … stop_frame − 1`` that share one set of active names (TP §3.4).

    ``names`` is empty for a stage where nothing is active (printed ``NONE``).
    """

    names: frozenset[str]
    start_frame: int
    stop_frame: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", _check_stage_names(self.names))
        if not 0 <= self.start_frame < self.stop_frame:
            raise ValueError(
                f"a stage needs 0 <= start_frame < stop_frame; got {self.start_frame!r}, {self.stop_frame!r}."
            )

    @property
    def n_frames(self) -> int:
        """Number of frames in the stage."""
        return self.stop_frame - self.start_frame


def build_stages(named_frames: Sequence[AbstractSet[str]]) -> tuple[Stage, ...]:
    """Group consecutive frames with the same set of names into stages (TP §3.4).

    A new stage starts exactly where the set of active names changes: a label switching on or off, or
    one of its clusters changing to another. The stages cover the frames in order without gaps, and
    adjacent stages differ. No frames give no stages.

    Parameters
    ----------
    named_frames : sequence of set of str
        The names active in each frame, e.g. from :func:`name_clusters`.

    Returns
    -------
    tuple of Stage

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4, "define different stages within a video sequence by grouping
       together similar frames until there is a significant change".
    """
    names = [_check_stage_names(frame) for frame in named_frames]
    stages: list[Stage] = []
    start = 0
    for index in range(1, len(names) + 1):
        if index == len(names) or names[index] != names[start]:
            stages.append(Stage(names=names[start], start_frame=start, stop_frame=index))
            start = index
    return tuple(stages)


def _sort_key(name: str) -> tuple[str, int, str]:
    match = _CLUSTER_NAME.match(name)
    if match is None:
        return (name, 0, "")
    return (match.group(1), len(match.group(2)), match.group(2))


def _format_stage(names: frozenset[str]) -> str:
    return "(" + (", ".join(sorted(names, key=_sort_key)) if names else NONE) + ")"


@dataclass(frozen=True, slots=True)
class TemporalPrototype:
    """The ordered stages of a sequence: its temporal prototype (TP §3.4).

    Two prototypes are identical (``==``, equal hashes) when they have the same stages in the same order
    (TP §4: "the exact same sequence of transitions into the exact same stages"). ``str()`` prints them
    as in TP §3.4, names sorted within a stage and ``(NONE)`` for an empty stage; a prototype of no
    stages prints as the empty string. Sequences of sets are accepted and stored as a tuple of
    frozensets.

    Parameters
    ----------
    stages : tuple of frozenset of str
        Names active in each stage; adjacent stages must differ.

    Raises
    ------
    ValueError
        When two adjacent stages are equal (they would be one stage), or a name cannot be printed.

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4 (definition and notation) and §4 (identity, inclusion).
    """

    stages: tuple[frozenset[str], ...]

    def __post_init__(self) -> None:
        if isinstance(self.stages, (str, bytes)) or not isinstance(self.stages, Sequence):
            raise TypeError(f"stages must be a sequence of sets of names; got {self.stages!r}.")
        stages = tuple(_check_stage_names(stage) for stage in self.stages)
        for index in range(1, len(stages)):
            if stages[index] == stages[index - 1]:
                raise ValueError(
                    f"stages {index - 1} and {index} are both {_format_stage(stages[index])}; adjacent "
                    "stages must differ. Build prototypes with temporal_prototype() or build_stages()."
                )
        object.__setattr__(self, "stages", stages)

    def __str__(self) -> str:
        return ARROW.join(_format_stage(stage) for stage in self.stages)

    @classmethod
    def parse(cls, text: str) -> TemporalPrototype:
        """Read a prototype printed by ``str()`` (``->`` is accepted for ``→``; spaces are ignored)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string; got {text!r}.")
        if not text.strip():
            return cls(stages=())
        stages = []
        for part in re.split(r"→|->", text):
            inner = part.strip()
            if not (inner.startswith("(") and inner.endswith(")")):
                raise ValueError(f"each stage must be written '(name, name, …)' or '(NONE)'; got {inner!r}.")
            body = inner[1:-1].strip()
            stages.append(frozenset() if body == NONE else frozenset(n.strip() for n in body.split(",")))
        return cls(stages=tuple(stages))

    @property
    def n_stages(self) -> int:
        """Number of stages (TP Table 1, "Avg. num. of stages")."""
        return len(self.stages)

    @property
    def n_unique_stages(self) -> int:
        """Number of distinct stages, every ``NONE`` stage counted on its own.

        TP §3.4 counts the 8 stages of its example as 7 unique "since cluster AU02_A occurs twice",
        although ``(NONE)`` also occurs twice: a ``NONE`` stage shows no cluster, so two of them are
        not a reoccurring cluster. Here: distinct non-empty stages + number of empty stages.
        """
        return len({stage for stage in self.stages if stage}) + sum(1 for stage in self.stages if not stage)

    def is_included_in(self, other: TemporalPrototype) -> bool:
        """Relaxed inclusion: this prototype's stages appear in ``other``, in order, as subsets (TP §4).

        True when there are stage indices ``j_1 < j_2 < … < j_n`` of ``other`` with
        ``self.stages[i] ⊆ other.stages[j_i]`` for every stage i of ``self``, e.g.
        ``(AU01_A, AU02_A) → (AU02_A)`` is included in ``(AU01_A, AU02_A) → (AU02_A, AU25_A)``. Each stage
        of ``self`` needs a stage of its own in ``other`` (the indices increase strictly), so the
        relation is reflexive, transitive and antisymmetric: mutual inclusion is identity. A ``NONE``
        stage is the empty set and hence a subset of any stage; the empty prototype is included in
        every prototype. Decided greedily (earliest match), which finds an embedding whenever one exists.

        References
        ----------
        .. [1] Finzel et al. (2021), §4, "interpret the temporal prototypes as sets which allows to
           define an inclusion relation".
        """
        if not isinstance(other, TemporalPrototype):
            raise TypeError(f"other must be a TemporalPrototype; got {type(other).__name__}.")
        position = 0
        for stage in self.stages:
            while position < len(other.stages) and not stage <= other.stages[position]:
                position += 1
            if position == len(other.stages):
                return False
            position += 1
        return True


def temporal_prototype(frames: Sequence[Frame], *, naming: Naming = name_clusters) -> TemporalPrototype:
    """The temporal prototype of one sequence: name the frames, then group them into stages (TP §3.4).

    Parameters
    ----------
    frames : sequence of mapping of str to int
        ``{label: cluster id}`` of the active labels of each frame of one sequence.
    naming : callable, default name_clusters
        One of :data:`NAMINGS`: :func:`name_clusters` (with clustering) or :func:`name_labels`
        (only label co-occurrence, TP Table 1 third row).

    Returns
    -------
    TemporalPrototype

    References
    ----------
    .. [1] Finzel et al. (2021), §3.4, Figure 2.
    """
    return TemporalPrototype(stages=tuple(stage.names for stage in build_stages(naming(frames))))


def description_length_reduction(prototype: TemporalPrototype, *, n_frames: int) -> float:
    """Fraction of the description saved by stages instead of frames: ``1 − n_stages / n_frames``.

    Parameters
    ----------
    prototype : TemporalPrototype
        The sequence's prototype (with clustering, as in TP Table 1).
    n_frames : int
        Number of frames of the sequence, at least ``prototype.n_stages`` and at least 1.

    Returns
    -------
    float
        In [0, 1); the paper's example (18 frames, 8 stages) gives 10/18 ≈ 0.56.

    References
    ----------
    .. [1] Finzel et al. (2021), Table 1, "Avg. reduction in description length"; §4 (approx. 18 frames
       and 6 stages → 66 %; 129 frames and 18 stages → 86 %).
    """
    if not isinstance(prototype, TemporalPrototype):
        raise TypeError(f"prototype must be a TemporalPrototype; got {type(prototype).__name__}.")
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)):
        raise TypeError(f"n_frames must be an integer; got {n_frames!r}.")
    if n_frames < max(1, prototype.n_stages):
        raise ValueError(
            f"n_frames must be at least 1 and at least the {prototype.n_stages} stages; got {n_frames!r}."
        )
    return 1.0 - prototype.n_stages / int(n_frames)


# --------------------------------------------------------------------------------------------------
# Statistics (TP Table 1)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrototypeStatistics:
    """One class's column of TP Table 1 (one row here).

    Attributes
    ----------
    class_name : str
        Emotion label of the sequences (or ``"Entire dataset"``).
    n_sequences : int
        Number of sequences.
    mean_frames_per_sequence : float
        Mean number of frames per sequence.
    n_prototypes_without_clustering : int
        Number of distinct prototypes when only label co-occurrence is considered (:func:`name_labels`).
    n_prototypes_with_clustering : int
        Number of distinct prototypes with SpRAy clusters (:func:`name_clusters`).
    mean_stages_per_prototype : float
        Mean number of stages of the sequences' prototypes (with clustering).
    mean_description_length_reduction : float
        Mean over sequences of :func:`description_length_reduction` (with clustering), a fraction.
    """

    class_name: str
    n_sequences: int
    mean_frames_per_sequence: float
    n_prototypes_without_clustering: int
    n_prototypes_with_clustering: int
    mean_stages_per_prototype: float
    mean_description_length_reduction: float


@dataclass(frozen=True, slots=True)
class PrototypeTable:
    """TP Table 1: one :class:`PrototypeStatistics` row per class, the pooled dataset last."""

    rows: tuple[PrototypeStatistics, ...]

    #: Column names, in the order of the fields of :class:`PrototypeStatistics`.
    columns: ClassVar[tuple[str, ...]] = (
        "class_name",
        "n_sequences",
        "mean_frames_per_sequence",
        "n_prototypes_without_clustering",
        "n_prototypes_with_clustering",
        "mean_stages_per_prototype",
        "mean_description_length_reduction",
    )

    def row(self, class_name: str) -> PrototypeStatistics:
        """The row of ``class_name``; ``KeyError`` listing the classes when there is none."""
        for row in self.rows:
            if row.class_name == class_name:
                return row
        raise KeyError(f"no row {class_name!r}; rows are {[row.class_name for row in self.rows]!r}.")

    def to_rows(self) -> list[tuple[Any, ...]]:
        """The table as plain tuples in :attr:`columns` order (for printing)."""
        return [tuple(getattr(row, column) for column in self.columns) for row in self.rows]

    def to_csv(self) -> str:
        """The table as CSV text with a header line; floats at full precision, fractions not percent."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.to_rows())
        return buffer.getvalue()


def _statistics_row(class_name: str, sequences: Sequence[tuple[dict[str, int], ...]]) -> PrototypeStatistics:
    with_clusters = [temporal_prototype(frames, naming=name_clusters) for frames in sequences]
    without_clusters = {temporal_prototype(frames, naming=name_labels) for frames in sequences}
    n_frames = [len(frames) for frames in sequences]
    reductions = [
        description_length_reduction(prototype, n_frames=count)
        for prototype, count in zip(with_clusters, n_frames, strict=True)
    ]
    return PrototypeStatistics(
        class_name=class_name,
        n_sequences=len(sequences),
        mean_frames_per_sequence=float(np.mean(n_frames)),
        n_prototypes_without_clustering=len(without_clusters),
        n_prototypes_with_clustering=len(set(with_clusters)),
        mean_stages_per_prototype=float(np.mean([prototype.n_stages for prototype in with_clusters])),
        mean_description_length_reduction=float(np.mean(reductions)),
    )


def prototype_statistics(
    sequences_by_class: Mapping[str, Sequence[Sequence[Frame]]], *, total_name: str = "Entire dataset"
) -> PrototypeTable:
    """The statistics of TP Table 1, one row per class and a last row over all sequences pooled.

    Prototypes are counted as distinct under identity (``==``). In the pooled row a prototype shared by
    two classes counts once, so its counts need not be the sum of the class rows (in TP Table 1 they
    are not). Means are over sequences; the reduction is the mean of the per-sequence reductions, not
    the reduction of the mean lengths.

    Parameters
    ----------
    sequences_by_class : mapping of str to sequence of sequences of frames
        For each class (e.g. emotion), its sequences; each sequence is a list of frames
        ``{label: cluster id}`` as for :func:`temporal_prototype`.
    total_name : str, default "Entire dataset"
        Name of the pooled row.

    Returns
    -------
    PrototypeTable

    Raises
    ------
    ValueError
        For no classes, a class without sequences, a sequence without frames, or a class named
        ``total_name``.

    References
    ----------
    .. [1] Finzel et al. (2021), Table 1 and §4.
    """
    if not sequences_by_class:
        raise ValueError("sequences_by_class is empty; pass at least one class with its sequences.")
    checked: dict[str, list[tuple[dict[str, int], ...]]] = {}
    for class_name, sequences in sequences_by_class.items():
        if class_name == total_name:
            raise ValueError(f"class {class_name!r} collides with the pooled row; pass another total_name.")
        if isinstance(sequences, (str, bytes)) or not isinstance(sequences, Sequence) or not sequences:
            raise ValueError(
                f"class {class_name!r} must have a non-empty list of sequences; got {sequences!r}."
            )
        checked[class_name] = []
        for index, frames in enumerate(sequences):
            frames_checked = _check_frames(frames, f"sequence {index} of class {class_name!r}")
            if not frames_checked:
                raise ValueError(f"sequence {index} of class {class_name!r} has no frames; drop it.")
            checked[class_name].append(frames_checked)
    rows = [_statistics_row(class_name, sequences) for class_name, sequences in checked.items()]
    pooled = [frames for sequences in checked.values() for frames in sequences]
    return PrototypeTable(rows=(*rows, _statistics_row(total_name, pooled)))
