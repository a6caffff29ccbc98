"""Tests for tracking.study: a recorded study read back and compared (RBDM §5.3.2, Table 1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from analysis.datasets import SyntheticLoader
from analysis.geometry import screen_to_image
from analysis.heatmap import top_n_points
from analysis.metrics import mean_table
from analysis.perception import compare_stimulus, mean_fixation_count, visual_span_in_image
from tests.tracking import _study
from tests.tracking._study import GEOMETRY, PARTICIPANTS, RECT, SPEC, STIMULI, write_study
from tracking.errors import StoreError
from tracking.records import Fixation, PhaseOnsets, Trial
from tracking.store import SessionStore
from tracking.study import (
    ModelRelevance,
    StudyComparison,
    StudyTables,
    TrainerInfo,
    default_cache_dir,
    load_stimulus_images,
    model_relevance,
    read_image_fixations,
    read_study,
    trainer_info,
)

StudyFile = tuple[Path, dict[tuple[str, str], NDArray[np.float64]]]
Images = dict[str, NDArray[np.float32]]
ALL_PAIRS = (("P01", "P02"), ("P01", "Model"), ("P02", "Model"))


@pytest.fixture
def study_file(tmp_path: Path) -> StudyFile:
    path = tmp_path / "study.sqlite"
    return path, write_study(path)


@pytest.fixture
def images() -> Images:
    loader = SyntheticLoader(n_per_class=2, size=64, rgb=True)
    return {s.id: s.image for s in loader.iter_samples("test", positions=[2, 5, 10])}


def _model(rng: np.random.Generator, shape: tuple[int, int] = (32, 32)) -> tuple[TrainerInfo, ModelRelevance]:
    trainer = TrainerInfo(Path("model.keras"), "Model", (*shape, 1))
    maps = {s: rng.random(shape).astype(np.float32) for s in STIMULI}
    return trainer, ModelRelevance(maps=maps, predicted=dict.fromkeys(STIMULI, "anger"))


def test_read_study_collects_each_annotators_fixations_by_stimulus(study_file: StudyFile) -> None:
    path, truth = study_file
    study = read_study(path)
    assert study.annotators == PARTICIPANTS
    assert study.stimuli == STIMULI  # natural order: …/2, …/5, …/10
    assert study.stimuli_spec == SPEC and study.split == "test"
    assert study.stimulus_sets == (_study.stimulus_set_key(),) == (study.stimulus_set,)
    assert study.stimulus_rect == RECT and study.geometry == GEOMETRY and study.notes == ()
    for (annotator, stimulus), points in truth.items():
        viewing = study.viewings[stimulus][annotator]
        written = np.vstack([_study.image_to_screen(points), _study.OFF_IMAGE_SCREEN_PX])
        np.testing.assert_allclose(viewing.fixations_screen_px, written)
        assert viewing.durations_ms.tolist() == [250.0] * len(written)
        assert viewing.label == _study.LABELS[annotator] and viewing.stimulus_rect == RECT


def test_fixations_are_mapped_into_the_frame_and_those_beside_the_image_dropped(
    study_file: StudyFile, images: Images, rng: np.random.Generator
) -> None:
    path, truth = study_file
    study = read_study(path)
    alone = StudyComparison(study, images)
    assert alone.shape(STIMULI[0]) == (64, 64)
    for (annotator, stimulus), points in truth.items():
        np.testing.assert_allclose(alone.fixations(stimulus)[annotator], points, atol=1e-9)
    trainer, _ = _model(rng)
    with_model = StudyComparison(study, images, trainer=trainer)
    assert with_model.shape(STIMULI[0]) == (32, 32)
    for (annotator, stimulus), points in truth.items():
        # Pixel centres onto pixel centres: image point p of 64 px lands at (p + 0.5) / 2 - 0.5 in 32 px.
        np.testing.assert_allclose(
            with_model.fixations(stimulus)[annotator], (points + 0.5) / 2 - 0.5, atol=1e-9
        )
    assert with_model.span(STIMULI[0]) == visual_span_in_image(GEOMETRY, RECT, (32, 32))


def test_every_trial_is_read_as_fixations_on_the_image_with_its_visual_span(study_file: StudyFile) -> None:
    path, truth = study_file
    by_stimulus = read_image_fixations(path, (32, 32), angle_deg=4.0)
    assert sorted(by_stimulus) == sorted(STIMULI)
    span = visual_span_in_image(GEOMETRY, RECT, (32, 32), angle_deg=4.0)
    for stimulus in STIMULI:
        seen = by_stimulus[stimulus]  # one per annotator's trial, in session order
        assert [item.span for item in seen] == [span] * len(PARTICIPANTS)
        for annotator, item in zip(PARTICIPANTS, seen, strict=True):
            points = truth[(annotator, stimulus)]  # the fixation beside the image is dropped
            np.testing.assert_allclose(item.fixations_image_px, (points + 0.5) / 2 - 0.5, atol=1e-9)
    viewing = read_study(path).viewings[STIMULI[0]][PARTICIPANTS[0]]
    on_image = viewing.on_image((32, 32), angle_deg=4.0)
    np.testing.assert_array_equal(on_image.fixations_image_px, by_stimulus[STIMULI[0]][0].fixations_image_px)


def test_reading_fixations_needs_a_study_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no study file"):
        read_image_fixations(tmp_path / "none.sqlite", (32, 32))


def test_n_is_the_chosen_annotators_mean_count_of_fixations_on_the_image(
    study_file: StudyFile, images: Images
) -> None:
    path, truth = study_file
    comparison = StudyComparison(read_study(path), images)
    assert comparison.n_points == mean_fixation_count([len(points) for points in truth.values()])
    comparison.set_annotators(["P02"])
    assert comparison.n_points == mean_fixation_count([len(p) for (a, _), p in truth.items() if a == "P02"])
    comparison.set_annotators([])
    assert comparison.n_points == mean_fixation_count([len(points) for points in truth.values()])


def test_tables_hold_table_one_rows_with_the_values_of_compare_stimulus(
    study_file: StudyFile, images: Images, rng: np.random.Generator
) -> None:
    path, _ = study_file
    study = read_study(path)
    trainer, relevance = _model(rng)
    comparison = StudyComparison(study, images, trainer=trainer)
    comparison.set_relevance(relevance)
    tables = comparison.tables()
    span = visual_span_in_image(GEOMETRY, RECT, (32, 32))
    assert list(tables.stimuli) == list(STIMULI) and tables.n_points == comparison.n_points
    expected = {}
    for stimulus in STIMULI:
        fixations = {
            a: screen_to_image(study.viewings[stimulus][a].fixations_screen_px, RECT, (32, 32))
            for a in PARTICIPANTS
        }
        expected[stimulus] = compare_stimulus(
            fixations, {"Model": relevance.maps[stimulus]}, (32, 32), span, n_points=tables.n_points
        )
        assert tables.stimuli[stimulus] == expected[stimulus]
        assert comparison.stimulus(stimulus).table == expected[stimulus]
    assert tables.study.pairs == ALL_PAIRS
    assert tables.study.metrics[:3] == ("zero_measure", "spearman", "cosine_distance")
    mean = mean_table(list(expected.values()))
    for row, other in zip(tables.study.rows, mean.rows, strict=True):
        np.testing.assert_allclose(row.values, other.values, rtol=1e-12)


def test_a_stimulus_comparison_holds_what_figure_7_shows(
    study_file: StudyFile, images: Images, rng: np.random.Generator
) -> None:
    path, _ = study_file
    trainer, relevance = _model(rng)
    comparison = StudyComparison(read_study(path), images, trainer=trainer)
    before = comparison.stimulus(STIMULI[1])
    assert list(before.heatmaps) == ["P01", "P02"] and before.table.pairs == (("P01", "P02"),)
    comparison.set_relevance(relevance)
    shown = comparison.stimulus(STIMULI[1])
    assert list(shown.heatmaps) == ["P01", "P02", "Model"] and shown.table.pairs == ALL_PAIRS
    assert shown.image is images[STIMULI[1]] and shown.shape == (32, 32)
    assert all(heat.shape == (32, 32) and heat.dtype == np.float32 for heat in shown.heatmaps.values())
    np.testing.assert_array_equal(
        shown.points["Model"], top_n_points(relevance.maps[STIMULI[1]], shown.n_points)
    )
    assert shown.labels == {"P01": "happy", "P02": "sad", "Model": "anger"}
    assert all(np.array_equal(shown.areas[k], shown.heatmaps[k] > 0) for k in shown.heatmaps)
    with pytest.raises(KeyError, match="no stimulus"):
        comparison.stimulus("synthetic/test/3")


def test_choosing_annotators_tells_the_listeners_once(
    study_file: StudyFile, images: Images, rng: np.random.Generator
) -> None:
    path, _ = study_file
    trainer, relevance = _model(rng)
    comparison = StudyComparison(read_study(path), images, trainer=trainer)
    news: list[str] = []
    comparison.changed.subscribe(news.append)
    assert comparison.set_annotators(["P02", "P01"]) is False and news == []
    assert comparison.set_annotators(["P02"]) is True and news == ["annotators"]
    assert comparison.annotators == ("P02",)
    assert comparison.tables().study.rows == ()  # one annotator, no model yet: nothing to compare
    comparison.set_relevance(relevance)
    assert news == ["annotators", "relevance"]
    assert comparison.tables().study.pairs == (("P02", "Model"),)
    with pytest.raises(ValueError, match="unknown annotators"):
        comparison.set_annotators(["P09"])


def test_relevance_must_cover_the_study_and_needs_a_trainer(
    study_file: StudyFile, images: Images, rng: np.random.Generator
) -> None:
    path, _ = study_file
    study = read_study(path)
    _, relevance = _model(rng)
    with pytest.raises(ValueError, match="no trainer"):
        StudyComparison(study, images).set_relevance(relevance)
    trainer, _ = _model(rng)
    partial = ModelRelevance(maps={STIMULI[0]: relevance.maps[STIMULI[0]]}, predicted={})
    with pytest.raises(ValueError, match="missing stimuli"):
        StudyComparison(study, images, trainer=trainer).set_relevance(partial)
    with pytest.raises(ValueError, match="every stimulus"):
        StudyComparison(study, {STIMULI[0]: images[STIMULI[0]]})


def test_a_stimulus_without_relevance_has_no_model_heatmap(
    study_file: StudyFile, images: Images, rng: np.random.Generator
) -> None:
    path, _ = study_file
    trainer, relevance = _model(rng)
    maps = dict(relevance.maps)
    maps[STIMULI[0]] = np.zeros((32, 32), dtype=np.float32)
    comparison = StudyComparison(read_study(path), images, trainer=trainer)
    comparison.set_relevance(ModelRelevance(maps=maps, predicted=relevance.predicted))
    assert list(comparison.stimulus(STIMULI[0]).heatmaps) == ["P01", "P02"]
    tables = comparison.tables()
    assert tables.stimuli[STIMULI[0]].pairs == (("P01", "P02"),) and tables.study.pairs == ALL_PAIRS
    others = [tables.stimuli[s].value("P01", "Model", "spearman") for s in STIMULI[1:]]
    assert tables.study.value("P01", "Model", "spearman") == pytest.approx(np.mean(others))


def test_a_model_named_like_an_annotator_gets_its_own_row_id(study_file: StudyFile, images: Images) -> None:
    path, _ = study_file
    comparison = StudyComparison(
        read_study(path), images, trainer=TrainerInfo(Path("P01.keras"), "P01", (16, 16, 1))
    )
    assert comparison.model_id == "P01 (model)"


def test_the_stimuli_are_decoded_from_the_sessions_spec(study_file: StudyFile, images: Images) -> None:
    path, _ = study_file
    study = read_study(path)
    progress: list[float] = []
    loaded = load_stimulus_images(study, progress=lambda f, _: progress.append(f))
    assert list(loaded) == list(STIMULI) and progress[-1] == 1.0
    for stimulus in STIMULI:
        np.testing.assert_array_equal(loaded[stimulus], images[stimulus])
    assert list(load_stimulus_images(study, stimuli=[STIMULI[2]])) == [STIMULI[2]]


def test_stimuli_missing_from_the_dataset_are_named(tmp_path: Path) -> None:
    path = tmp_path / "study.sqlite"
    write_study(path, settings=_study.session_settings("synthetic:n=1,size=64"))  # 8 faces: no …/10
    with pytest.raises(ValueError, match="synthetic/test/10"):
        load_stimulus_images(read_study(path))


def test_the_set_with_most_annotators_is_compared_unless_another_is_chosen(study_file: StudyFile) -> None:
    path, _ = study_file
    other = "synthetic:n=2,size=32"
    write_study(path, settings=_study.session_settings(other), participants=("P03",))
    study = read_study(path)
    assert study.annotators == PARTICIPANTS and len(study.stimulus_sets) == 2
    chosen = read_study(path, stimulus_set=_study.stimulus_set_key(other))
    assert chosen.annotators == ("P03",) and chosen.stimuli_spec == other
    with pytest.raises(StoreError, match="no sessions on stimulus set"):
        read_study(path, stimulus_set="nothing")


def test_a_second_trial_on_a_stimulus_is_left_out_with_a_note(study_file: StudyFile) -> None:
    path, _ = study_file
    before = read_study(path).viewings[STIMULI[0]]["P01"]
    with SessionStore(path) as store:
        sid = store.create_session(
            1,
            settings=_study.session_settings(),
            geometry=GEOMETRY,
            tracker="mouse",
            recogniser="keyboard",
            stimulus_order=[STIMULI[0]],
        )
        trial = Trial(0, STIMULI[0], PhaseOnsets(0.0, 500.0, 700.0, 1200.0, 3000.0), "fear", "keyboard")
        store.record_trial(sid, trial, [Fixation(1300.0, 200.0, 960.0, 540.0, 20)])
        store.create_session(2, settings={"protocol": "other"}, geometry=GEOMETRY, tracker="mouse",
                             recogniser="keyboard", stimulus_order=["x"])  # fmt: skip
    study = read_study(path)
    again = study.viewings[STIMULI[0]]["P01"]
    assert again.session_id == before.session_id and again.label == before.label
    assert any("labelled synthetic/test/2 again" in note for note in study.notes)
    assert any("does not say which stimuli" in note for note in study.notes)


def test_a_session_without_its_stimulus_rect_is_read_with_the_rbdm_square(study_file: StudyFile) -> None:
    path, _ = study_file
    settings = _study.session_settings()
    del settings["stimulus_rect"]
    write_study(path, settings=settings, participants=("P03",))
    study = read_study(path)
    assert study.annotators == ("P01", "P02", "P03")
    assert study.viewings[STIMULI[0]]["P03"].stimulus_rect == GEOMETRY.stimulus_rect() == RECT
    assert any("does not say where it drew" in note for note in study.notes)


def test_read_study_says_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no study file"):
        read_study(tmp_path / "none.sqlite")
    empty = tmp_path / "empty.sqlite"
    SessionStore(empty).close()
    with pytest.raises(StoreError, match="no labeling session"):
        read_study(empty)
    with SessionStore(empty) as store:
        pid = store.create_participant("P01")
        store.create_session(pid, settings=_study.session_settings(), geometry=GEOMETRY, tracker="mouse",
                             recogniser="keyboard", stimulus_order=list(STIMULI))  # fmt: skip
    with pytest.raises(StoreError, match="no finished trial"):
        read_study(empty)


def test_the_relevance_cache_sits_beside_the_study() -> None:
    assert default_cache_dir(Path("/data/study.sqlite")) == Path("/data/study-relevance-cache")


def test_trainer_info_needs_a_model_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no trainer model"):
        trainer_info(tmp_path / "none.keras")


# --- with a real Trainer ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_trainer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _study.train_tiny_trainer(tmp_path_factory.mktemp("trainer") / "tiny.keras")


@pytest.mark.tf
def test_the_trainers_saliency_joins_the_comparison(
    study_file: StudyFile, images: Images, tiny_trainer: Path
) -> None:
    path, _ = study_file
    study = read_study(path)
    trainer = trainer_info(tiny_trainer)
    assert trainer.name == "tiny" and trainer.input_shape == (48, 48, 1)
    progress: list[float] = []
    cache = default_cache_dir(path)
    relevance = model_relevance(images, trainer, cache_dir=cache, progress=lambda f, _: progress.append(f))
    assert not relevance.from_cache and progress[-1] == 1.0 and any(cache.iterdir())
    assert set(relevance.maps) == set(STIMULI)
    assert all(m.shape == (48, 48) and np.isfinite(m).all() for m in relevance.maps.values())
    again = model_relevance(images, trainer, cache_dir=cache)
    assert again.from_cache and all(np.array_equal(again.maps[s], relevance.maps[s]) for s in STIMULI)
    comparison = StudyComparison(study, images, trainer=trainer)
    comparison.set_relevance(relevance)
    tables = comparison.tables()
    assert tables.study.pairs == (("P01", "P02"), ("P01", "tiny"), ("P02", "tiny"))
    span = visual_span_in_image(GEOMETRY, RECT, (48, 48))
    for stimulus in STIMULI:
        fixations = {a: comparison.fixations(stimulus)[a] for a in PARTICIPANTS}
        expected = compare_stimulus(
            fixations, {"tiny": relevance.maps[stimulus]}, (48, 48), span, n_points=tables.n_points
        )
        assert tables.stimuli[stimulus] == expected
    # Without its card the model file is opened to read its input shape.
    bare = tiny_trainer.parent / "bare" / "tiny.keras"
    bare.parent.mkdir(exist_ok=True)
    shutil.copy(tiny_trainer, bare)
    assert trainer_info(bare).input_shape == (48, 48, 1)


# --- trials marked bad in the live monitor -------------------------------------------------------------


def _flag_last_trial(path: Path, annotator: str, *, reason: str = "participant looked away") -> str:
    """Mark the annotator's last trial bad (SessionStore.flag_trial); return its stimulus."""
    with SessionStore(path) as store:
        by_pseudonym = {p.pseudonym: p.participant_id for p in store.participants()}
        session = next(s for s in store.sessions() if s.participant_id == by_pseudonym[annotator])
        position = len(session.stimulus_order) - 1
        store.flag_trial(session.session_id, position, reason=reason)
        return session.stimulus_order[position]


def _table_one(path: Path, images: Images, relevance: ModelRelevance, **options: bool) -> StudyTables:
    trainer = TrainerInfo(Path("model.keras"), "Model", (32, 32, 1))
    comparison = StudyComparison(read_study(path, **options), images, trainer=trainer)
    comparison.set_relevance(relevance)
    return comparison.tables()


def test_a_trial_marked_bad_is_left_out_as_if_never_recorded(
    tmp_path: Path, images: Images, rng: np.random.Generator
) -> None:
    flagged, never = tmp_path / "flagged.sqlite", tmp_path / "never.sqlite"
    write_study(flagged)
    write_study(never, unfinished=("P01",))  # P01's last trial never recorded
    stimulus = _flag_last_trial(flagged, "P01")
    _, relevance = _model(rng)

    study = read_study(flagged)
    assert "P01" not in study.viewings[stimulus] and "P02" in study.viewings[stimulus]
    assert [(f.annotator, f.stimulus_id, f.reason) for f in study.flagged_left_out] == [
        ("P01", stimulus, "participant looked away")
    ]
    without = _table_one(flagged, images, relevance)
    expected = _table_one(never, images, relevance)
    assert without.n_points == expected.n_points
    assert list(without.stimuli) == list(expected.stimuli)
    assert without.stimuli[stimulus].pairs == (("P02", "Model"),)  # P01 has no map there
    assert without.study == expected.study  # Table 1, value for value

    kept = read_study(flagged, include_flagged=True)
    assert kept.flagged_left_out == () and "P01" in kept.viewings[stimulus]
    old = _table_one(flagged, images, relevance, include_flagged=True)
    full = tmp_path / "full.sqlite"
    write_study(full)
    assert old.study == _table_one(full, images, relevance).study  # the numbers from before the flag
    assert old.study != without.study


def test_gaze_masks_leave_out_trials_marked_bad_unless_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "study.sqlite"
    write_study(path)
    stimulus = _flag_last_trial(path, "P02")
    assert len(read_image_fixations(path, (32, 32))[stimulus]) == 1  # P01's only
    assert len(read_image_fixations(path, (32, 32), include_flagged=True)[stimulus]) == 2


def test_a_repeated_trial_counts_when_the_earlier_one_is_marked_bad(study_file: StudyFile) -> None:
    path, _ = study_file
    stimulus = _flag_last_trial(path, "P01")
    with SessionStore(path) as store:
        sid = store.create_session(
            1, settings=_study.session_settings(), geometry=GEOMETRY, tracker="mouse",
            recogniser="keyboard", stimulus_order=[stimulus],
        )  # fmt: skip
        trial = Trial(0, stimulus, PhaseOnsets(0.0, 500.0, 700.0, 1200.0, 3000.0), "fear", "keyboard")
        store.record_trial(sid, trial, [Fixation(1300.0, 200.0, 960.0, 540.0, 20)])
    study = read_study(path)
    assert (
        study.viewings[stimulus]["P01"].session_id == sid and study.viewings[stimulus]["P01"].label == "fear"
    )
    assert not any("again" in note for note in study.notes)
    assert read_study(path, include_flagged=True).viewings[stimulus]["P01"].label == "happy"


def test_a_stimulus_set_whose_trials_are_all_marked_bad_says_so(tmp_path: Path) -> None:
    path = tmp_path / "study.sqlite"
    write_study(path, participants=("P01",))
    with SessionStore(path) as store:
        session = store.sessions()[0]
        for position in range(len(session.stimulus_order)):
            store.flag_trial(session.session_id, position)
    with pytest.raises(StoreError, match=r"all 3 finished trials .* are marked bad.*include_flagged=True"):
        read_study(path)
    assert read_study(path, include_flagged=True).annotators == ("P01",)
