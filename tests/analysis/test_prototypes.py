from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from sklearn.metrics import adjusted_rand_score

from analysis.prototypes import (
    NAMINGS,
    PrototypeTable,
    Stage,
    TemporalPrototype,
    active_labels,
    build_stages,
    description_length_reduction,
    frame_clusters,
    name_clusters,
    name_labels,
    prototype_statistics,
    temporal_prototype,
)
from analysis.spray import spray_per_label

# --------------------------------------------------------------------------------------------------
# The paper's example (TP §3.4, Figure 2)
# --------------------------------------------------------------------------------------------------

PAPER_PROTOTYPE = (
    "(NONE) → (AU02_A) → (AU01_A, AU02_A, AU04_A) → (AU01_A, AU02_B, AU04_A) → (AU01_A, AU02_B) → "
    "(AU01_A, AU02_A) → (AU02_A) → (NONE)"
)

# 18 frames (0-17). AU02 is predicted in frames 1-15: its relevance maps form one cluster in frames 1-4
# and 12-15 and another in frames 5-11 (TP §3.4); AU01 and AU04 have one cluster each. The cluster ids
# are arbitrary SpRAy numbers: the names must come from the order of first appearance, not the ids.
# Where AU01 and AU04 switch on and off the figure does not say; these frames are consistent with the
# printed prototype.
ORANGE, YELLOW = 7, 3
PAPER_FRAMES: list[dict[str, int]] = (
    [{}]
    + [{"AU02": ORANGE}] * 2
    + [{"AU01": 0, "AU02": ORANGE, "AU04": 5}] * 2
    + [{"AU01": 0, "AU02": YELLOW, "AU04": 5}] * 4
    + [{"AU01": 0, "AU02": YELLOW}] * 3
    + [{"AU01": 0, "AU02": ORANGE}] * 2
    + [{"AU02": ORANGE}] * 2
    + [{}] * 2
)


def test_paper_example_has_eight_stages_seven_unique() -> None:
    assert len(PAPER_FRAMES) == 18
    prototype = temporal_prototype(PAPER_FRAMES)
    assert str(prototype) == PAPER_PROTOTYPE
    assert prototype.n_stages == 8
    assert prototype.n_unique_stages == 7
    assert description_length_reduction(prototype, n_frames=18) == pytest.approx(1 - 8 / 18)


def test_paper_example_stages_cover_the_frames() -> None:
    stages = build_stages(name_clusters(PAPER_FRAMES))
    assert [(stage.start_frame, stage.stop_frame) for stage in stages] == [
        (0, 1), (1, 3), (3, 5), (5, 9), (9, 12), (12, 14), (14, 16), (16, 18),
    ]  # fmt: skip
    assert stages[3].names == {"AU01_A", "AU02_B", "AU04_A"}
    assert sum(stage.n_frames for stage in stages) == 18


def test_paper_example_without_clustering_merges_the_two_au02_clusters() -> None:
    prototype = temporal_prototype(PAPER_FRAMES, naming=name_labels)
    assert str(prototype) == "(NONE) → (AU02) → (AU01, AU02, AU04) → (AU01, AU02) → (AU02) → (NONE)"


def test_paper_example_parses_back() -> None:
    assert TemporalPrototype.parse(PAPER_PROTOTYPE) == temporal_prototype(PAPER_FRAMES)
    assert TemporalPrototype.parse(PAPER_PROTOTYPE.replace("→", "->")) == temporal_prototype(PAPER_FRAMES)


def test_paper_inclusion_example() -> None:
    # TP §4: (AU01 A, AU02 A) → (AU02 A) ⊂ (AU01 A, AU02 A) → (AU02 A, AU25 A)
    small = TemporalPrototype.parse("(AU01_A, AU02_A) → (AU02_A)")
    large = TemporalPrototype.parse("(AU01_A, AU02_A) → (AU02_A, AU25_A)")
    assert small.is_included_in(large)
    assert not large.is_included_in(small)


# --------------------------------------------------------------------------------------------------
# Naming rules
# --------------------------------------------------------------------------------------------------


def test_letters_are_per_label_in_order_of_first_appearance() -> None:
    frames = [{"AU01": 9}, {"AU01": 9, "AU02": 9}, {"AU01": 2}, {"AU02": 4}, {"AU01": 9, "AU02": 9}]
    assert name_clusters(frames) == (
        frozenset({"AU01_A"}),
        frozenset({"AU01_A", "AU02_A"}),
        frozenset({"AU01_B"}),
        frozenset({"AU02_B"}),
        frozenset({"AU01_A", "AU02_A"}),
    )


def test_letters_restart_for_each_sequence() -> None:
    first = temporal_prototype([{"AU01": 4}, {"AU01": 1}])
    second = temporal_prototype([{"AU01": 1}, {"AU01": 4}])
    assert first == second == TemporalPrototype.parse("(AU01_A) → (AU01_B)")


def test_letters_continue_after_z() -> None:
    named = name_clusters([{"AU01": cluster} for cluster in range(28)])
    names = [next(iter(frame)) for frame in named]
    assert names[0] == "AU01_A" and names[25] == "AU01_Z"
    assert names[26:] == ["AU01_AA", "AU01_AB"]


def test_stage_names_print_sorted_with_letters_in_order() -> None:
    prototype = TemporalPrototype(stages=(frozenset({"AU02_AA", "AU02_B", "AU01_C"}),))
    assert str(prototype) == "(AU01_C, AU02_B, AU02_AA)"


def test_empty_frames_are_none() -> None:
    assert str(temporal_prototype([{}, {}, {}])) == "(NONE)"
    assert str(temporal_prototype([])) == ""
    assert TemporalPrototype.parse("") == TemporalPrototype(stages=())


def test_namings_registry() -> None:
    assert NAMINGS == {"clusters": name_clusters, "labels": name_labels}


@pytest.mark.parametrize("label", ["NONE", "", " AU01", "AU(1)", "AU,1", "AU→1", "a->b"])
def test_unprintable_labels_are_rejected(label: str) -> None:
    with pytest.raises(ValueError, match="unambiguously"):
        name_clusters([{label: 0}])


def test_bad_frames_are_rejected() -> None:
    with pytest.raises(TypeError, match="frame_clusters"):
        name_clusters([{"AU01"}])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="integer cluster id"):
        name_clusters([{"AU01": "A"}])  # type: ignore[dict-item]


# --------------------------------------------------------------------------------------------------
# Stages and prototypes on hand-made inputs
# --------------------------------------------------------------------------------------------------


def test_build_stages_splits_where_the_set_changes() -> None:
    frames = [set(), {"a"}, {"a"}, {"a", "b"}, {"b", "a"}, {"a"}, set()]
    stages = build_stages(frames)
    assert stages == (
        Stage(frozenset(), 0, 1),
        Stage(frozenset({"a"}), 1, 3),
        Stage(frozenset({"a", "b"}), 3, 5),
        Stage(frozenset({"a"}), 5, 6),
        Stage(frozenset(), 6, 7),
    )
    assert build_stages([]) == ()


def test_a_cluster_change_alone_starts_a_stage() -> None:
    prototype = temporal_prototype([{"AU12": 0}, {"AU12": 1}, {"AU12": 1}])
    assert str(prototype) == "(AU12_A) → (AU12_B)"
    assert str(temporal_prototype([{"AU12": 0}, {"AU12": 1}], naming=name_labels)) == "(AU12)"


def test_adjacent_equal_stages_are_rejected() -> None:
    with pytest.raises(ValueError, match="adjacent"):
        TemporalPrototype(stages=(frozenset({"AU01_A"}), frozenset({"AU01_A"})))


def test_constructor_accepts_sets_and_stays_hashable() -> None:
    prototype = TemporalPrototype(stages=[{"AU01_A"}, set()])  # type: ignore[arg-type]
    assert prototype.stages == (frozenset({"AU01_A"}), frozenset())
    assert len({prototype, TemporalPrototype.parse("(AU01_A) → (NONE)")}) == 1


@pytest.mark.parametrize("text", ["AU01_A", "(AU01_A) → AU02_A", "(AU01_A, )", "(NONE, AU01_A)"])
def test_parse_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError):
        TemporalPrototype.parse(text)


def test_unique_stages_count_each_none_separately() -> None:
    assert TemporalPrototype.parse("(NONE) → (a_A) → (NONE) → (a_A) → (NONE)").n_unique_stages == 4
    assert TemporalPrototype.parse("(a_A) → (b_A) → (a_A) → (b_A)").n_unique_stages == 2


def test_none_is_included_in_any_stage() -> None:
    assert TemporalPrototype.parse("(NONE)").is_included_in(TemporalPrototype.parse("(AU01_A)"))
    assert not TemporalPrototype.parse("(NONE) → (AU01_A)").is_included_in(
        TemporalPrototype.parse("(AU01_A)")
    )
    assert TemporalPrototype(stages=()).is_included_in(TemporalPrototype.parse("(AU01_A)"))


def test_inclusion_needs_the_order() -> None:
    forward = TemporalPrototype.parse("(a_A) → (b_A)")
    assert not forward.is_included_in(TemporalPrototype.parse("(b_A) → (a_A)"))
    assert forward.is_included_in(TemporalPrototype.parse("(b_A) → (a_A, c_A) → (NONE) → (b_A, c_A)"))
    # One stage of the larger prototype cannot hold two stages of the smaller one.
    assert not forward.is_included_in(TemporalPrototype.parse("(a_A, b_A)"))


def test_description_length_reduction_checks_its_arguments() -> None:
    prototype = TemporalPrototype.parse("(a_A) → (b_A)")
    assert description_length_reduction(prototype, n_frames=2) == 0.0
    with pytest.raises(ValueError, match="at least"):
        description_length_reduction(prototype, n_frames=1)


# --------------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------------

LABEL_NAMES = ("AU01", "AU02", "AU04")
frames_strategy = st.lists(st.dictionaries(st.sampled_from(LABEL_NAMES), st.integers(0, 2)), max_size=30)
stage_strategy = st.frozensets(st.sampled_from(("a_A", "b_A", "c_A", "a_B")), max_size=3)


def collapse(stages: Sequence[frozenset[str]]) -> TemporalPrototype:
    """A valid prototype from any list of stages: adjacent repeats merged."""
    return TemporalPrototype(stages=tuple(s for i, s in enumerate(stages) if i == 0 or s != stages[i - 1]))


prototype_strategy = st.lists(stage_strategy, max_size=6).map(collapse)


def reference_inclusion(small: TemporalPrototype, large: TemporalPrototype) -> bool:
    """Try every increasing choice of stages of ``large``."""
    return any(
        all(stage <= large.stages[j] for stage, j in zip(small.stages, chosen, strict=True))
        for chosen in itertools.combinations(range(large.n_stages), small.n_stages)
    )


@given(frames_strategy)
def test_stages_reproduce_the_frames(frames: list[dict[str, int]]) -> None:
    named = name_clusters(frames)
    stages = build_stages(named)
    rebuilt = [stage.names for stage in stages for _ in range(stage.n_frames)]
    assert rebuilt == list(named)
    assert [stage.start_frame for stage in stages[1:]] == [stage.stop_frame for stage in stages[:-1]]
    assert all(a.names != b.names for a, b in itertools.pairwise(stages))
    prototype = temporal_prototype(frames)
    assert prototype.n_stages == len(stages) <= len(frames)
    assert prototype.n_unique_stages <= prototype.n_stages


@given(frames_strategy)
def test_names_match_the_active_labels(frames: list[dict[str, int]]) -> None:
    for frame, names in zip(frames, name_clusters(frames), strict=True):
        assert {name.rsplit("_", 1)[0] for name in names} == set(frame)
    assert name_labels(frames) == tuple(frozenset(frame) for frame in frames)


@given(frames_strategy)
def test_without_clustering_is_a_coarsening(frames: list[dict[str, int]]) -> None:
    with_clusters = temporal_prototype(frames)
    without = temporal_prototype(frames, naming=name_labels)
    assert without.n_stages <= with_clusters.n_stages
    coarsened = collapse([frozenset(n.rsplit("_", 1)[0] for n in stage) for stage in with_clusters.stages])
    assert coarsened == without


@given(frames_strategy, st.permutations(range(3)))
def test_names_do_not_depend_on_the_cluster_ids(frames: list[dict[str, int]], relabel: list[int]) -> None:
    renamed = [{label: relabel[cluster] for label, cluster in frame.items()} for frame in frames]
    assert temporal_prototype(renamed) == temporal_prototype(frames)


@given(prototype_strategy)
def test_str_and_parse_round_trip(prototype: TemporalPrototype) -> None:
    assert TemporalPrototype.parse(str(prototype)) == prototype


@given(prototype_strategy, prototype_strategy)
def test_inclusion_matches_the_reference(small: TemporalPrototype, large: TemporalPrototype) -> None:
    assert small.is_included_in(large) == reference_inclusion(small, large)


@given(prototype_strategy)
def test_inclusion_is_reflexive(prototype: TemporalPrototype) -> None:
    assert prototype.is_included_in(prototype)


@given(prototype_strategy, prototype_strategy)
def test_identity_is_mutual_inclusion(first: TemporalPrototype, second: TemporalPrototype) -> None:
    mutual = first.is_included_in(second) and second.is_included_in(first)
    assert mutual == (first == second)
    if first == second:
        assert hash(first) == hash(second)


@st.composite
def shrunk(draw: st.DrawFn, prototype: TemporalPrototype) -> TemporalPrototype:
    """A prototype included in ``prototype`` by construction: some stages dropped, the rest thinned."""
    kept = [stage for stage in prototype.stages if draw(st.booleans())]
    return collapse([frozenset(name for name in stage if draw(st.booleans())) for stage in kept])


@given(st.data())
def test_inclusion_is_transitive(data: st.DataObject) -> None:
    large = data.draw(prototype_strategy)
    middle = data.draw(shrunk(large))
    small = data.draw(shrunk(middle))
    assert small.is_included_in(middle) and middle.is_included_in(large)
    assert small.is_included_in(large)


@given(prototype_strategy, prototype_strategy, prototype_strategy)
def test_inclusion_is_transitive_on_random_triples(
    first: TemporalPrototype, second: TemporalPrototype, third: TemporalPrototype
) -> None:
    if first.is_included_in(second) and second.is_included_in(third):
        assert first.is_included_in(third)


# --------------------------------------------------------------------------------------------------
# Frames from network outputs and SpRAy results
# --------------------------------------------------------------------------------------------------


def test_active_labels_thresholds_strictly() -> None:
    scores = np.array([[0.9, 0.5, 0.1], [0.2, 0.51, 0.7]])
    assert active_labels(scores, LABEL_NAMES) == (frozenset({"AU01"}), frozenset({"AU02", "AU04"}))
    assert active_labels(scores, LABEL_NAMES, threshold=0.15) == (
        frozenset({"AU01", "AU02"}),
        frozenset(LABEL_NAMES),
    )
    with pytest.raises(ValueError, match="each of the 3"):
        active_labels(scores, ("AU01", "AU02"))
    with pytest.raises(ValueError, match="between 0 and 1"):
        active_labels(scores, LABEL_NAMES, threshold=1.0)


def test_frame_clusters_hands_out_ids_in_frame_order() -> None:
    active = [frozenset({"AU01"}), frozenset(), frozenset({"AU01", "AU02"}), frozenset({"AU02"})]
    frames = frame_clusters(active, {"AU01": np.array([4, 2]), "AU02": [0, 1]})
    assert frames == ({"AU01": 4}, {}, {"AU01": 2, "AU02": 0}, {"AU02": 1})
    with pytest.raises(ValueError, match="active in 2 frames but has 1"):
        frame_clusters(active, {"AU01": [4], "AU02": [0, 1]})
    with pytest.raises(ValueError, match="'AU02'"):
        frame_clusters(active, {"AU01": [4, 2]})


# --------------------------------------------------------------------------------------------------
# Statistics (TP Table 1)
# --------------------------------------------------------------------------------------------------


def test_statistics_on_hand_made_sequences() -> None:
    happy = [
        [{}, {"AU12": 0}, {"AU12": 0}, {"AU12": 0, "AU06": 0}],  # (NONE) → (AU12_A) → (AU06_A, AU12_A)
        [{}, {"AU12": 3}, {"AU12": 3, "AU06": 1}, {"AU12": 3, "AU06": 1}],  # the same prototype
        [{}, {"AU12": 0}, {"AU12": 1}, {"AU12": 1}, {"AU12": 1, "AU06": 0}, {}],  # AU12_B appears
    ]
    surprise = [[{"AU01": 0, "AU02": 0}] * 4]  # (AU01_A, AU02_A), one stage
    table = prototype_statistics({"happy": happy, "surprise": surprise})
    assert [row.class_name for row in table.rows] == ["happy", "surprise", "Entire dataset"]
    row = table.row("happy")
    assert row.n_sequences == 3
    assert row.mean_frames_per_sequence == pytest.approx(14 / 3)
    assert row.n_prototypes_with_clustering == 2
    assert row.n_prototypes_without_clustering == 2  # the third is (NONE)→(AU12)→(AU06, AU12)→(NONE)
    assert row.mean_stages_per_prototype == pytest.approx((3 + 3 + 5) / 3)
    assert row.mean_description_length_reduction == pytest.approx(
        ((1 - 3 / 4) + (1 - 3 / 4) + (1 - 5 / 6)) / 3
    )
    pooled = table.row("Entire dataset")
    assert (pooled.n_sequences, pooled.n_prototypes_with_clustering) == (4, 3)
    assert pooled.mean_frames_per_sequence == pytest.approx(18 / 4)
    assert table.row("surprise").mean_description_length_reduction == pytest.approx(0.75)


def test_pooled_row_counts_shared_prototypes_once() -> None:
    sequence = [{}, {"AU04": 0}]
    table = prototype_statistics({"anger": [sequence], "sadness": [sequence]})
    assert table.row("anger").n_prototypes_with_clustering == 1
    assert table.row("Entire dataset").n_prototypes_with_clustering == 1
    assert table.row("Entire dataset").n_sequences == 2


def test_table_to_csv() -> None:
    table = prototype_statistics({"happy": [PAPER_FRAMES]})
    records = list(csv.reader(io.StringIO(table.to_csv())))
    assert tuple(records[0]) == PrototypeTable.columns
    assert records[1][:3] == ["happy", "1", "18.0"]
    assert float(records[1][-1]) == pytest.approx(1 - 8 / 18)
    assert table.to_rows()[0][5] == 8.0
    with pytest.raises(KeyError, match="happy"):
        table.row("fear")


@pytest.mark.parametrize(
    ("sequences", "message"),
    [
        ({}, "empty"),
        ({"happy": []}, "non-empty list"),
        ({"happy": [[]]}, "no frames"),
        ({"Entire dataset": [[{}]]}, "collides"),
    ],
)
def test_statistics_rejects_degenerate_input(
    sequences: Mapping[str, list[list[dict[str, int]]]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        prototype_statistics(sequences)


@given(
    st.dictionaries(
        st.sampled_from(("happy", "sad")),
        st.lists(frames_strategy.filter(bool), min_size=1, max_size=4),
        min_size=1,
    )
)
@settings(max_examples=30)
def test_statistics_invariants(sequences: dict[str, list[list[dict[str, int]]]]) -> None:
    table = prototype_statistics(sequences)
    for row in table.rows:
        assert row.n_prototypes_without_clustering <= row.n_prototypes_with_clustering <= row.n_sequences
        assert 1 <= row.mean_stages_per_prototype <= row.mean_frames_per_sequence
        assert 0 <= row.mean_description_length_reduction < 1
    assert table.rows[-1].n_sequences == sum(len(s) for s in sequences.values())


# --------------------------------------------------------------------------------------------------
# Synthetic ground truth: planted strategies and schedules through SpRAy to prototypes
# --------------------------------------------------------------------------------------------------

# Each sequence: per label, the runs (start, stop, strategy) in which the label is on. AU02 has two
# relevance strategies (blob at two places); AU01 and AU04 have one.
SCHEDULES: dict[str, list[dict[str, list[tuple[int, int, int]]]]] = {
    "surprise": [
        {"AU01": [(3, 12, 0)], "AU02": [(2, 6, 0), (6, 10, 1), (10, 14, 0)]},
        {"AU01": [(4, 10, 0)], "AU02": [(4, 10, 0)]},
        {"AU01": [(1, 9, 0)], "AU02": [(1, 9, 1)]},
    ],
    "anger": [
        {"AU04": [(2, 15, 0)], "AU02": [(5, 8, 1)]},
        {"AU04": [(0, 7, 0), (9, 12, 0)]},
    ],
}
N_FRAMES = 16
EXPECTED = {
    (
        "surprise",
        0,
    ): "(NONE) → (AU02_A) → (AU01_A, AU02_A) → (AU01_A, AU02_B) → (AU01_A, AU02_A) → (AU02_A) → (NONE)",
    ("surprise", 1): "(NONE) → (AU01_A, AU02_A) → (NONE)",
    ("surprise", 2): "(NONE) → (AU01_A, AU02_A) → (NONE)",
    ("anger", 0): "(NONE) → (AU04_A) → (AU02_A, AU04_A) → (AU04_A) → (NONE)",
    ("anger", 1): "(AU04_A) → (NONE) → (AU04_A) → (NONE)",
}
BLOB_CENTRES = {"AU01": [(8, 6)], "AU02": [(6, 20), (24, 8)], "AU04": [(16, 16)]}  # (x, y) per strategy


def planted_state(schedule: Mapping[str, list[tuple[int, int, int]]]) -> list[dict[str, int]]:
    """Per frame, {label: planted strategy} of the labels that are on."""
    frames: list[dict[str, int]] = [{} for _ in range(N_FRAMES)]
    for label, runs in schedule.items():
        for start, stop, strategy in runs:
            for frame in frames[start:stop]:
                frame[label] = strategy
    return frames


def relevance_map(label: str, strategy: int, rng: np.random.Generator) -> NDArray[np.float64]:
    rows, cols = np.mgrid[:32, :32].astype(float)
    x, y = BLOB_CENTRES[label][strategy]
    blob = np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * 3.0**2))
    relevance: NDArray[np.float64] = rng.uniform(0.5, 2.0) * blob + rng.normal(0.0, 0.15, (32, 32))
    return relevance


def test_spray_and_stages_recover_the_planted_ground_truth(rng: np.random.Generator) -> None:
    # Sigmoid-like outputs from the schedule, then relevance maps for every active (frame, label).
    sequences = [(name, planted_state(s)) for name, schedules in SCHEDULES.items() for s in schedules]
    scores = np.array(
        [[0.9 if label in frame else 0.1 for label in LABEL_NAMES] for _, seq in sequences for frame in seq]
    )
    active = active_labels(scores, LABEL_NAMES)
    planted: dict[str, list[int]] = {label: [] for label in LABEL_NAMES}
    maps: dict[str, list[NDArray[np.float64]]] = {label: [] for label in LABEL_NAMES}
    for frame in (frame for _, seq in sequences for frame in seq):
        for label in sorted(frame):
            planted[label].append(frame[label])
            maps[label].append(relevance_map(label, frame[label], rng))

    results = spray_per_label({label: np.stack(stack) for label, stack in maps.items()}, factor=2, rng=rng)
    assert {label: result.n_clusters for label, result in results.items()} == {
        "AU01": 1,
        "AU02": 2,
        "AU04": 1,
    }
    assert adjusted_rand_score(planted["AU02"], results["AU02"].labels) == pytest.approx(1.0)

    frames = frame_clusters(active, {label: result.labels for label, result in results.items()})
    by_class: dict[str, list[Sequence[Mapping[str, int]]]] = {}
    for index, (name, _) in enumerate(sequences):
        sequence = frames[index * N_FRAMES : (index + 1) * N_FRAMES]
        position = sum(1 for other, _ in sequences[:index] if other == name)
        assert str(temporal_prototype(sequence)) == EXPECTED[(name, position)]
        by_class.setdefault(name, []).append(sequence)

    table = prototype_statistics(by_class)
    surprise = table.row("surprise")
    assert (surprise.n_sequences, surprise.mean_frames_per_sequence) == (3, 16.0)
    assert (
        surprise.n_prototypes_with_clustering == 2
    )  # sequences 1 and 2 share (NONE) → (AU01_A, AU02_A) → (NONE)
    assert surprise.n_prototypes_without_clustering == 2
    assert surprise.mean_stages_per_prototype == pytest.approx((7 + 3 + 3) / 3)
    assert table.row("Entire dataset").n_sequences == 5
