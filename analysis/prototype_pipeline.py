"""The temporal-prototype pipeline over frame sequences, its result and its file (TP §3, Figure 2; §3.4).

TP derives temporal prototypes from a multi-label network in four steps, each in its own module:

1. :func:`analysis.action_units.predict_units` — sigmoid outputs per frame (§3.1), and
   :func:`analysis.prototypes.active_labels`;
2. :func:`analysis.unit_relevance.unit_relevance` — an LRP relevance map per frame and *active* unit,
   explaining the unit's pre-sigmoid logit (§3.2);
3. :func:`analysis.spray.cluster_units` — SpRAy per unit over the maps of all sequences (§3.3);
4. :func:`assemble` — clusters per frame, the temporal prototype and stages of every sequence
   (:mod:`analysis.prototypes`), the mean map of every (unit, cluster), i.e. the prototype of TP §3.4,
   and the statistics of TP Table 1.

:func:`analyse_sequences` runs all four; :func:`prototypes_from_relevance` runs 3-4 on given scores and
maps (no TensorFlow). Everything is kept in a :class:`PrototypeResult`, written and read with
:func:`save_result` and :func:`load_result` (one ``.npz`` file);
:func:`analysis.visualisation.stage_panels` turns a sequence's stages into the panels of a prototype
strip (§3.5).

References
----------
.. [1] Finzel et al. (2021), Deriving Temporal Prototypes from Saliency Map Clusters, §3.1-3.4,
   Figure 2, Table 1.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from analysis.action_units import _check_units, predict_units
from analysis.datasets.synthetic_sequences import UNIT_NAMES
from analysis.progress import ProgressCallback
from analysis.prototypes import (
    PrototypeTable,
    Stage,
    TemporalPrototype,
    active_labels,
    build_stages,
    frame_clusters,
    name_clusters,
    prototype_statistics,
)
from analysis.spray import (
    DEFAULT_SPRAY_FACTOR,
    DEFAULT_SPRAY_INPUT,
    SprayParams,
    SprayResult,
    cluster_units,
)
from analysis.unit_relevance import DEFAULT_ANALYZER, unit_explainer, unit_relevance

if TYPE_CHECKING:
    from analysis.models import BoundModel
    from analysis.saliency import RelevanceExplainer

__all__ = [
    "NO_CLASS",
    "FrameSequence",
    "PrototypeResult",
    "SequenceAnalysis",
    "analyse_sequences",
    "assemble",
    "load_result",
    "prototypes_from_relevance",
    "save_result",
]

#: Class name of sequences without an emotion label (TP Table 1, column "None").
NO_CLASS = "None"

_Maps = NDArray[np.float32]


class FrameSequence(Protocol):
    """What the pipeline needs of a sequence: an id, a class name and its frames (model input size)."""

    @property
    def id(self) -> str: ...

    @property
    def class_name(self) -> str: ...

    @property
    def frames(self) -> NDArray[np.float32]: ...


@dataclass(frozen=True, slots=True, eq=False)
class SequenceAnalysis:
    """One sequence through the pipeline (arrays read-only).

    Attributes
    ----------
    id, class_name : str
    frames : ndarray of float32, shape (T, H, W) or (T, H, W, 3)
    scores : ndarray of float32, shape (T, U)
        Sigmoid outputs.
    active : tuple of frozenset of str, length T
        Units predicted active per frame.
    relevance : dict of str to ndarray of float32, shape (n_u, H, W)
        Each unit's maps in the frames where it is active, in frame order.
    clusters : tuple of dict of str to int, length T
        SpRAy cluster id of each active unit per frame.
    names : tuple of frozenset of str, length T
        Named clusters per frame (``AU12_A``), letters by first appearance in this sequence.
    prototype : TemporalPrototype
        The sequence's temporal prototype (with clustering).
    stages : tuple of Stage
        Its stages with frame ranges.
    """

    id: str
    class_name: str
    frames: NDArray[np.float32]
    scores: NDArray[np.float32]
    active: tuple[frozenset[str], ...]
    relevance: dict[str, _Maps]
    clusters: tuple[dict[str, int], ...]
    names: tuple[frozenset[str], ...]
    prototype: TemporalPrototype
    stages: tuple[Stage, ...]

    @property
    def n_frames(self) -> int:
        """Number of frames T."""
        return int(self.frames.shape[0])

    def cluster_of(self, name: str) -> tuple[str, int]:
        """The (unit, cluster id) behind a cluster name of this sequence, e.g. ``"AU12_B"``."""
        for frame_names, frame in zip(self.names, self.clusters, strict=True):
            if name in frame_names:
                unit = name.rsplit("_", 1)[0]
                return unit, frame[unit]
        raise KeyError(f"{name!r} does not occur in sequence {self.id!r}.")

    def frame_relevance(self, frame: int, unit: str) -> _Maps:
        """The relevance map of ``unit`` in frame ``frame`` (where the unit is active)."""
        if unit not in self.active[frame]:
            raise KeyError(f"{unit!r} is not active in frame {frame} of {self.id!r}.")
        position = sum(1 for t in range(frame) if unit in self.active[t])
        return np.asarray(self.relevance[unit][position], dtype=np.float32)


@dataclass(frozen=True, slots=True, eq=False)
class PrototypeResult:
    """Everything the temporal-prototype pipeline produced for a set of sequences.

    Attributes
    ----------
    units : tuple of str
        Model output names.
    threshold : float
        Sigmoid threshold of an active unit.
    sequences : tuple of SequenceAnalysis
    spray : dict of str to SprayResult
        SpRAy of each unit that is active somewhere; its labels run over the unit's maps of all
        sequences, in sequence then frame order.
    mean_maps : dict of (str, int) to ndarray of float64, shape (H, W)
        The prototype of each (unit, cluster): the mean of its maps (TP §3.4, "the average heatmap
        from a cluster").
    table : PrototypeTable
        TP Table 1, one row per class and the pooled dataset.
    """

    units: tuple[str, ...]
    threshold: float
    sequences: tuple[SequenceAnalysis, ...]
    spray: dict[str, SprayResult]
    mean_maps: dict[tuple[str, int], NDArray[np.float64]]
    table: PrototypeTable

    def sequence(self, id: str) -> SequenceAnalysis:
        """The analysis of the sequence with this id."""
        for item in self.sequences:
            if item.id == id:
                return item
        raise KeyError(f"no sequence {id!r}; ids are {[s.id for s in self.sequences][:10]!r}….")


def _check_inputs(
    sequences: Sequence[FrameSequence],
    scores: Sequence[ArrayLike],
    units: tuple[str, ...],
) -> list[NDArray[np.float32]]:
    if not sequences:
        raise ValueError("sequences is empty; pass at least one sequence.")
    if len(scores) != len(sequences):
        raise ValueError(f"need one score matrix per sequence; got {len(scores)} for {len(sequences)}.")
    checked = []
    for item, matrix in zip(sequences, scores, strict=True):
        s = np.asarray(matrix, dtype=np.float32)
        if s.shape != (len(item.frames), len(units)):
            raise ValueError(
                f"scores of sequence {item.id!r} must have shape ({len(item.frames)}, {len(units)}); "
                f"got {s.shape!r}."
            )
        checked.append(s)
    return checked


def prototypes_from_relevance(
    sequences: Sequence[FrameSequence],
    scores: Sequence[ArrayLike],
    relevance: Sequence[Mapping[str, ArrayLike]],
    *,
    units: Sequence[str] = UNIT_NAMES,
    threshold: float = 0.5,
    rng: np.random.Generator,
    factor: int = DEFAULT_SPRAY_FACTOR,
    k: int | None = None,
    max_clusters: int = 10,
    spray_input: str = DEFAULT_SPRAY_INPUT,
) -> PrototypeResult:
    """SpRAy per unit over all sequences, then temporal prototypes and statistics (TP §3.3-3.4).

    Parameters
    ----------
    sequences : sequence of FrameSequence
        Ids, classes and frames.
    scores : sequence of array_like (T_i, U)
        Sigmoid outputs per sequence; a unit is active where its score exceeds ``threshold``.
    relevance : sequence of mapping of str to array_like (n_u, H, W)
        Per sequence, each active unit's maps in frame order (as
        :func:`analysis.unit_relevance.unit_relevance` returns).
    units : sequence of str
    threshold : float, default 0.5
    rng : numpy.random.Generator
        For SpRAy's k-means.
    factor, k, max_clusters, spray_input :
        See :func:`analysis.spray.cluster_units`.

    Returns
    -------
    PrototypeResult

    References
    ----------
    .. [1] Finzel et al. (2021), §3.3-3.4, Table 1.
    """
    names = _check_units(units)
    checked = _check_inputs(sequences, scores, names)
    if len(relevance) != len(sequences):
        raise ValueError(f"need relevance for every sequence; got {len(relevance)} for {len(sequences)}.")
    active = [active_labels(s, names, threshold=threshold) for s in checked]
    per_sequence = [
        _check_relevance(item, maps, labels)
        for item, maps, labels in zip(sequences, relevance, active, strict=True)
    ]
    pooled = {
        unit: np.concatenate([maps[unit] for maps in per_sequence if unit in maps])
        for unit in names
        if any(unit in maps for maps in per_sequence)
    }
    counts = {unit: [len(maps.get(unit, ())) for maps in per_sequence] for unit in pooled}
    results = cluster_units(
        pooled,
        rng=rng,
        maps_per_sequence=counts,
        factor=factor,
        k=k,
        max_clusters=max_clusters,
        spray_input=spray_input,
    )
    return assemble(sequences, checked, per_sequence, results, units=names, threshold=threshold)


def _check_relevance(
    item: FrameSequence, maps: Mapping[str, ArrayLike], active: Sequence[frozenset[str]]
) -> dict[str, _Maps]:
    checked = {}
    shape = tuple(np.shape(item.frames)[1:3])
    for unit in {u for labels in active for u in labels}:
        count = sum(1 for labels in active if unit in labels)
        array = np.asarray(maps.get(unit, np.zeros((0, *shape))), dtype=np.float32)
        if array.shape != (count, *shape):
            raise ValueError(
                f"sequence {item.id!r}: {unit} is active in {count} frames, so it needs {count} maps of "
                f"{shape!r} px; got shape {array.shape!r}."
            )
        checked[unit] = array
    return checked


def assemble(
    sequences: Sequence[FrameSequence],
    scores: Sequence[NDArray[np.float32]],
    relevance: Sequence[Mapping[str, _Maps]],
    spray_results: Mapping[str, SprayResult],
    *,
    units: tuple[str, ...],
    threshold: float,
) -> PrototypeResult:
    """Clusters per frame, temporal prototypes, mean maps and Table 1 from finished SpRAy results (TP §3.4).

    ``spray_results[u].labels`` must run over unit u's maps of all sequences in sequence, then frame
    order. Used by :func:`prototypes_from_relevance` and :func:`load_result`.
    """
    analyses = []
    offsets = dict.fromkeys(spray_results, 0)
    for item, matrix, maps in zip(sequences, scores, relevance, strict=True):
        active = active_labels(matrix, units, threshold=threshold)
        own = {}
        for unit, array in maps.items():
            own[unit] = spray_results[unit].labels[offsets[unit] : offsets[unit] + len(array)]
            offsets[unit] += len(array)
        clusters = frame_clusters(active, own)
        named = name_clusters(clusters)
        analyses.append(
            SequenceAnalysis(
                id=item.id,
                class_name=item.class_name or NO_CLASS,
                frames=_read_only(np.asarray(item.frames, dtype=np.float32)),
                scores=_read_only(matrix),
                active=active,
                relevance={unit: _read_only(array) for unit, array in maps.items()},
                clusters=clusters,
                names=named,
                prototype=TemporalPrototype(stages=tuple(stage.names for stage in build_stages(named))),
                stages=build_stages(named),
            )
        )
    by_class: dict[str, list[tuple[dict[str, int], ...]]] = {}
    for analysis in analyses:
        by_class.setdefault(analysis.class_name, []).append(analysis.clusters)
    return PrototypeResult(
        units=units,
        threshold=float(threshold),
        sequences=tuple(analyses),
        spray=dict(spray_results),
        mean_maps=_mean_maps(analyses, spray_results),
        table=prototype_statistics(by_class),
    )


def _read_only(array: NDArray[Any]) -> NDArray[Any]:
    frozen = np.array(array, copy=True)
    frozen.setflags(write=False)
    return frozen


def _mean_maps(
    analyses: Sequence[SequenceAnalysis], spray_results: Mapping[str, SprayResult]
) -> dict[tuple[str, int], NDArray[np.float64]]:
    means = {}
    for unit, result in spray_results.items():
        maps = np.concatenate([a.relevance[unit] for a in analyses if unit in a.relevance]).astype(np.float64)
        for cluster in range(result.n_clusters):
            members = maps[result.labels == cluster]
            if len(members):
                means[(unit, cluster)] = _read_only(members.mean(axis=0))
    return means


def analyse_sequences(
    model: BoundModel,
    sequences: Sequence[FrameSequence],
    *,
    units: Sequence[str] | None = None,
    rng: np.random.Generator,
    threshold: float = 0.5,
    analyzer: str = DEFAULT_ANALYZER,
    explainer: RelevanceExplainer | None = None,
    factor: int = DEFAULT_SPRAY_FACTOR,
    k: int | None = None,
    max_clusters: int = 10,
    spray_input: str = DEFAULT_SPRAY_INPUT,
    on_progress: ProgressCallback | None = None,
) -> PrototypeResult:
    """The whole pipeline: predict, explain each active unit, SpRAy per unit, temporal prototypes (TP §3).

    Parameters
    ----------
    model : BoundModel
        A multi-label network with sigmoid outputs (:func:`analysis.action_units.build_unit_model`,
        :func:`analysis.action_units.load_unit_model`).
    sequences : sequence of FrameSequence
        Frames at the model's input size.
    units : sequence of str, optional
        Output names; default :data:`analysis.datasets.synthetic_sequences.UNIT_NAMES` when the model
        has that many outputs.
    rng : numpy.random.Generator
        For SpRAy.
    threshold : float, default 0.5
        Sigmoid threshold of an active unit.
    analyzer : str, default "lrp.sequential_preset_a_flat"
        Relevance method (a key of :data:`analysis.saliency.ANALYZERS`).
    explainer : RelevanceExplainer, optional
        A prebuilt :func:`analysis.unit_relevance.unit_explainer` for ``model`` (building one takes a
        moment).
    factor, k, max_clusters, spray_input :
        See :func:`analysis.spray.cluster_units`.
    on_progress : callable, optional
        ``on_progress(fraction, text)`` after each sequence and step.

    Returns
    -------
    PrototypeResult

    References
    ----------
    .. [1] Finzel et al. (2021), §3.2-3.4, Figure 2, Table 1.
    """
    names = _check_units(units if units is not None else UNIT_NAMES[: model.n_classes])
    if len(names) != model.n_classes:
        raise ValueError(f"the model has {model.n_classes} outputs but {len(names)} unit names were given.")
    report = on_progress or (lambda fraction, text: None)
    explainer = explainer or unit_explainer(model, analyzer)
    scores, relevance = [], []
    for index, item in enumerate(sequences):
        matrix = predict_units(model, item.frames)
        active = active_labels(matrix, names, threshold=threshold)
        scores.append(matrix)
        relevance.append(unit_relevance(explainer, item.frames, active, units=names))
        report(0.9 * (index + 1) / max(len(sequences), 1), f"explained {item.id}")
    result = prototypes_from_relevance(
        sequences,
        scores,
        relevance,
        units=names,
        threshold=threshold,
        rng=rng,
        factor=factor,
        k=k,
        max_clusters=max_clusters,
        spray_input=spray_input,
    )
    report(1.0, "temporal prototypes done")
    return result


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------

_RESULT_VERSION = 1


@dataclass(frozen=True, slots=True)
class _StoredSequence:
    id: str
    class_name: str
    frames: NDArray[np.float32]


def save_result(path: str | Path, result: PrototypeResult) -> Path:
    """Write a :class:`PrototypeResult` to one ``.npz`` file (frames, scores, maps, SpRAy results).

    The temporal prototypes, mean maps and Table 1 are recomputed from these on :func:`load_result`.
    """
    target = Path(path)
    if target.suffix != ".npz":
        raise ValueError(f"result files end in '.npz'; got {str(target)!r}.")
    arrays: dict[str, NDArray[Any]] = {}
    for index, item in enumerate(result.sequences):
        arrays[f"frames_{index}"] = item.frames
        arrays[f"scores_{index}"] = item.scores
        for unit, maps in item.relevance.items():
            arrays[f"relevance_{index}_{unit}"] = maps
    spray_meta = {}
    for unit, outcome in result.spray.items():
        arrays[f"spray_labels_{unit}"] = outcome.labels
        arrays[f"spray_eigenvalues_{unit}"] = outcome.eigenvalues
        arrays[f"spray_embedding_{unit}"] = outcome.embedding
        spray_meta[unit] = {
            "n_clusters": outcome.n_clusters,
            "n_distinct": outcome.n_distinct,
            "params": dataclasses.asdict(outcome.params),
        }
    meta = {
        "version": _RESULT_VERSION,
        "units": list(result.units),
        "threshold": result.threshold,
        "sequences": [
            {"id": s.id, "class_name": s.class_name, "units": sorted(s.relevance)} for s in result.sequences
        ],
        "spray": spray_meta,
    }
    arrays["meta"] = np.asarray(json.dumps(meta))
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **arrays)
    return target


def load_result(path: str | Path) -> PrototypeResult:
    """Read a result written by :func:`save_result`.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the file is not a result file of this version.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no result file at {str(source)!r}. Write one with 'rbdm prototypes'.")
    with np.load(source, allow_pickle=False) as data:
        if "meta" not in data:
            raise ValueError(f"{str(source)!r} is not a temporal-prototype result (no 'meta' entry).")
        meta = json.loads(str(data["meta"]))
        if meta.get("version") != _RESULT_VERSION:
            raise ValueError(
                f"{str(source)!r} has result version {meta.get('version')!r}; expected {_RESULT_VERSION}."
            )
        sequences, scores, relevance = [], [], []
        for index, entry in enumerate(meta["sequences"]):
            sequences.append(_StoredSequence(entry["id"], entry["class_name"], data[f"frames_{index}"]))
            scores.append(np.asarray(data[f"scores_{index}"], dtype=np.float32))
            relevance.append({unit: data[f"relevance_{index}_{unit}"] for unit in entry["units"]})
        spray_results = {unit: _stored_spray(data, unit, info) for unit, info in meta["spray"].items()}
    return assemble(
        sequences,
        scores,
        relevance,
        spray_results,
        units=tuple(meta["units"]),
        threshold=float(meta["threshold"]),
    )


def _stored_spray(data: Any, unit: str, info: Mapping[str, Any]) -> SprayResult:
    params = dict(info["params"])
    params["size"] = tuple(params["size"]) if params["size"] is not None else None
    return SprayResult(
        labels=np.asarray(data[f"spray_labels_{unit}"], dtype=np.int64),
        n_clusters=int(info["n_clusters"]),
        eigenvalues=np.asarray(data[f"spray_eigenvalues_{unit}"], dtype=np.float64),
        embedding=np.asarray(data[f"spray_embedding_{unit}"], dtype=np.float64),
        params=SprayParams(**params),
        n_distinct=int(info["n_distinct"]),
    )
