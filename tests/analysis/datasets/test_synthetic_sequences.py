"""Tests for analysis/datasets/synthetic_sequences.py: unit expressions, schedules, sequences, their truth."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.datasets.synthetic_faces import Expression, draw_expression, sample_identity
from analysis.datasets.synthetic_sequences import (
    ACTIVE_INTENSITY,
    SEQUENCE_CLASSES,
    TWO_STRATEGY_UNIT,
    UNIT_NAMES,
    UNITS,
    Schedule,
    UnitInterval,
    compose_expression,
    make_sequence,
    make_sequences,
    make_unit_mix_sequences,
    planted_stages,
    sample_schedule,
    schedule_agreement,
    sequence_frames,
)
from analysis.prototypes import build_stages


def _slow_intensity(onset: int, offset: int | None, ramp: int, n_frames: int) -> list[float]:
    """The ramp written out frame by frame."""
    values = []
    for t in range(n_frames):
        if t < onset:
            value = 0.0
        elif t < onset + ramp:
            value = (t - onset + 1) / ramp
        else:
            value = 1.0
        if offset is not None and t >= offset:
            value = min(value, max(0.0, 1.0 - (t - offset + 1) / ramp))
        values.append(value)
    return values


# --------------------------------------------------------------------------------------------------
# Units and expressions
# --------------------------------------------------------------------------------------------------


def test_units_are_facs_codes_in_output_order() -> None:
    assert UNIT_NAMES == ("AU01", "AU02", "AU04", "AU05", "AU12", "AU26")
    assert all(UNITS[name].code == name for name in UNIT_NAMES)
    assert TWO_STRATEGY_UNIT in UNITS


def test_compose_expression_sums_scaled_units() -> None:
    combined = compose_expression({"AU01": 1.0, "AU02": 0.5, "AU26": 1.0})
    for field in fields(Expression):
        expected = (
            getattr(UNITS["AU01"].expression, field.name)
            + 0.5 * getattr(UNITS["AU02"].expression, field.name)
            + getattr(UNITS["AU26"].expression, field.name)
        )
        assert getattr(combined, field.name) == pytest.approx(expected)


def test_compose_expression_of_nothing_is_neutral() -> None:
    assert compose_expression({}) == Expression()
    assert compose_expression(dict.fromkeys(UNIT_NAMES, 0.0)) == Expression()


@pytest.mark.parametrize("bad", [{"AU99": 1.0}, {"AU01": -0.1}, {"AU01": 2.0}, {"AU01": float("nan")}])
def test_compose_expression_rejects_bad_input(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        compose_expression(bad)


@pytest.mark.parametrize("unit", UNIT_NAMES)
def test_each_unit_changes_the_face(unit: str, rng: np.random.Generator) -> None:
    identity = sample_identity(rng)
    neutral = draw_expression(Expression(), identity=identity, rng=rng, noise_std=0.0)
    moved = draw_expression(compose_expression({unit: 1.0}), identity=identity, rng=rng, noise_std=0.0)
    assert np.abs(moved - neutral).max() > 0.2


@pytest.mark.parametrize("seed", range(5))
def test_one_sided_au12_changes_only_its_own_side(seed: int) -> None:
    # Issue 12: moving the corner point of the whole quadratic lip line bent its other half too
    # (16-30 % of the pixel change on the image-left half), and networks read AU12 there.
    import dataclasses

    rng = np.random.default_rng(seed)
    identity = dataclasses.replace(sample_identity(rng), roll_deg=0.0, centre_dx_frac=0.0)
    neutral = draw_expression(Expression(), identity=identity, size=96, rng=rng, noise_std=0.0)
    au12 = draw_expression(
        compose_expression({"AU12": 1.0}), identity=identity, size=96, rng=rng, noise_std=0.0
    )
    change = np.abs(au12 - neutral)
    assert change[:, 48:].max() > 0.1
    assert change[:, :47].max() == 0.0


def test_draw_expression_matches_make_face(rng: np.random.Generator) -> None:
    from analysis.datasets.synthetic_faces import EXPRESSIONS, make_face

    identity = sample_identity(rng)
    face = make_face("surprise", identity=identity, intensity=1.0, rng=rng, noise_std=0.0)
    drawn = draw_expression(EXPRESSIONS["surprise"], identity=identity, rng=rng, noise_std=0.0)
    np.testing.assert_array_equal(drawn, face.image)


# --------------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------------


@given(
    onset=st.integers(0, 20),
    ramp=st.integers(1, 5),
    hold=st.integers(0, 6),
    has_offset=st.booleans(),
    n_frames=st.integers(1, 40),
)
def test_interval_intensity_is_the_ramp(
    onset: int, ramp: int, hold: int, has_offset: bool, n_frames: int
) -> None:
    offset = onset + ramp + hold if has_offset else None
    interval = UnitInterval("AU01", onset, offset, ramp)
    np.testing.assert_allclose(interval.intensity(n_frames), _slow_intensity(onset, offset, ramp, n_frames))


def test_interval_rejects_offset_before_apex() -> None:
    with pytest.raises(ValueError, match="apex"):
        UnitInterval("AU01", 5, 6, 3)
    with pytest.raises(ValueError, match="unknown action unit"):
        UnitInterval("AU03", 5)


def test_schedule_takes_the_larger_of_overlapping_intervals() -> None:
    schedule = Schedule((UnitInterval("AU05", 2, 6, 2), UnitInterval("AU05", 5, None, 2)))
    column = schedule.intensities(10)[:, UNIT_NAMES.index("AU05")]
    np.testing.assert_allclose(column, [0, 0, 0.5, 1, 1, 1, 1, 1, 1, 1])
    assert schedule.intensities(10)[:, UNIT_NAMES.index("AU01")].sum() == 0


@pytest.mark.parametrize("name", list(SEQUENCE_CLASSES))
def test_sampled_schedule_follows_the_template(name: str, rng: np.random.Generator) -> None:
    template = SEQUENCE_CLASSES[name]
    for _ in range(20):
        n_frames = int(rng.integers(16, 21))
        schedule = sample_schedule(name, n_frames=n_frames, rng=rng, jitter_frames=2)
        assert {interval.unit for interval in schedule.intervals} == set(template.onsets)
        for interval in schedule.intervals:
            on_fraction, off_fraction = template.onsets[interval.unit]
            assert abs(interval.onset_frame - round(on_fraction * n_frames)) <= 2 or interval.onset_frame == 1
            if off_fraction is None:
                assert interval.offset_frame is None
            if interval.offset_frame is not None:
                assert interval.offset_frame >= interval.onset_frame + interval.ramp_frames + 2


def test_sample_schedule_rejects_unknown_class(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="unknown sequence class"):
        sample_schedule("joy", n_frames=18, rng=rng)


# --------------------------------------------------------------------------------------------------
# Rendered sequences
# --------------------------------------------------------------------------------------------------


def test_make_sequence_ground_truth(rng: np.random.Generator) -> None:
    schedule = Schedule((UnitInterval("AU12", 3, None, 3), UnitInterval("AU26", 6, 12, 3)))
    sequence = make_sequence(schedule, n_frames=16, rng=rng, class_name="contempt", id="c/0")
    assert sequence.frames.shape == (16, 48, 48) and sequence.frames.dtype == np.float32
    assert 0.0 <= sequence.frames.min() and sequence.frames.max() <= 1.0
    np.testing.assert_array_equal(sequence.intensity, schedule.intensities(16))
    np.testing.assert_array_equal(sequence.active, sequence.intensity >= ACTIVE_INTENSITY)
    assert sequence.active_sets()[0] == frozenset()
    assert sequence.active_sets()[4] == {"AU12"}  # intensity 2/3 ≥ 0.5
    assert sequence.active_sets()[7] == {"AU12", "AU26"}
    assert not sequence.frames.flags.writeable and not sequence.active.flags.writeable


def test_frames_change_only_with_the_units(rng: np.random.Generator) -> None:
    schedule = Schedule((UnitInterval("AU05", 5, None, 2),))
    sequence = make_sequence(schedule, n_frames=10, rng=rng, noise_std=0.0)
    assert all(np.array_equal(sequence.frames[0], sequence.frames[t]) for t in range(5))
    assert not np.array_equal(sequence.frames[4], sequence.frames[5])
    assert np.array_equal(sequence.frames[6], sequence.frames[9])


def test_mirrored_sequence_is_the_mirror_image(rng: np.random.Generator) -> None:
    schedule = Schedule((UnitInterval("AU12", 1),))
    identity = sample_identity(rng)
    plain = make_sequence(schedule, n_frames=5, rng=rng, identity=identity, noise_std=0.0)
    mirrored = make_sequence(schedule, n_frames=5, rng=rng, identity=identity, noise_std=0.0, mirrored=True)
    np.testing.assert_array_equal(mirrored.frames, plain.frames[:, :, ::-1])
    assert plain.strategies[TWO_STRATEGY_UNIT] == "right corner"
    assert mirrored.strategies[TWO_STRATEGY_UNIT] == "left corner"


def test_one_sided_au12_moves_one_corner(rng: np.random.Generator) -> None:
    schedule = Schedule((UnitInterval("AU12", 1, None, 1),))
    identity = sample_identity(rng)
    sequence = make_sequence(schedule, n_frames=2, rng=rng, identity=identity, noise_std=0.0)
    change = np.abs(sequence.frames[1] - sequence.frames[0])
    centre_x = (48 - 1) / 2 + identity.centre_dx_frac * 48
    columns = np.arange(48)
    assert change[:, columns > centre_x].sum() > 3 * change[:, columns < centre_x].sum()


def test_make_sequences_balances_mirroring_and_classes(rng: np.random.Generator) -> None:
    sequences = make_sequences(4, rng=rng, n_frames=(8, 10), size=32)
    assert [s.class_name for s in sequences] == [c for c in SEQUENCE_CLASSES for _ in range(4)]
    for name in SEQUENCE_CLASSES:
        assert sum(s.mirrored for s in sequences if s.class_name == name) == 2
    assert len({s.id for s in sequences}) == len(sequences)
    assert all(8 <= s.n_frames <= 10 and s.frames.shape[1:] == (32, 32) for s in sequences)
    frames, active = sequence_frames(sequences)
    assert frames.shape[0] == active.shape[0] == sum(s.n_frames for s in sequences)


def _upper_face_active(active: np.ndarray) -> np.ndarray:
    upper = [UNIT_NAMES.index(u) for u in ("AU01", "AU02", "AU04", "AU05")]
    return active[:, upper].any(axis=1)


def test_class_sequences_confound_au12_with_a_neutral_upper_face(rng: np.random.Generator) -> None:
    """Why the default unit model also trains on mixed sequences: in the classes, AU12 never has company."""
    _, active = sequence_frames(make_sequences(3, rng=rng, n_frames=(8, 10), size=24))
    au12 = active[:, UNIT_NAMES.index(TWO_STRATEGY_UNIT)]
    assert au12.any() and not (au12 & _upper_face_active(active)).any()


def test_unit_mix_sequences_switch_units_independently() -> None:
    sequences = make_unit_mix_sequences(120, rng=np.random.default_rng(4), n_frames=(8, 8), size=24)
    assert len(sequences) == 120 and len({s.id for s in sequences}) == 120
    assert sum(s.mirrored for s in sequences) == 60 and all(s.class_name == "" for s in sequences)
    final = np.array([s.active[-1] for s in sequences])  # every unit stays on to the end
    assert final.any(axis=1).all()  # at least one unit per sequence
    share = final.mean(axis=0)
    assert np.all((share > 0.2) & (share < 0.55)), share  # p_active 0.35 each (a bit more: ≥ 1 unit)
    au12 = final[:, UNIT_NAMES.index(TWO_STRATEGY_UNIT)]
    assert _upper_face_active(final)[au12].mean() > 0.6  # AU12 mostly has upper-face company (0 in classes)
    for unit in ("AU01", "AU02", "AU04", "AU05", "AU26"):
        other = final[:, UNIT_NAMES.index(unit)]
        assert abs(np.corrcoef(au12, other)[0, 1]) < 0.3, unit  # no unit predicts AU12


def test_unit_mix_sequences_reject_bad_options(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="p_active"):
        make_unit_mix_sequences(2, rng=rng, p_active=1.0)
    with pytest.raises(ValueError, match="onset_range"):
        make_unit_mix_sequences(2, rng=rng, onset_range=(0.6, 0.2))
    with pytest.raises(ValueError, match="n_frames"):
        make_unit_mix_sequences(2, rng=rng, n_frames=(3, 5))
    assert make_unit_mix_sequences(0, rng=rng) == []


def test_make_sequences_is_reproducible() -> None:
    first = make_sequences(1, rng=np.random.default_rng(3), n_frames=(6, 6), size=24)
    second = make_sequences(1, rng=np.random.default_rng(3), n_frames=(6, 6), size=24)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.frames, b.frames)


def test_planted_stages_follow_the_active_sets(rng: np.random.Generator) -> None:
    schedule = Schedule((UnitInterval("AU01", 2, None, 1), UnitInterval("AU02", 4, 7, 1)))
    sequence = make_sequence(schedule, n_frames=10, rng=rng, size=24)
    stages = planted_stages(sequence)
    assert [(s.start_frame, sorted(s.names)) for s in stages] == [
        (0, []),
        (2, ["AU01"]),
        (4, ["AU01", "AU02"]),
        (7, ["AU01"]),
    ]
    assert stages == build_stages(sequence.active_sets())


# --------------------------------------------------------------------------------------------------
# Agreement with the planted schedule
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def planted(rng: np.random.Generator):  # type: ignore[no-untyped-def]
    schedule = Schedule((UnitInterval("AU01", 3, None, 1), UnitInterval("AU26", 6, 10, 1)))
    return make_sequence(schedule, n_frames=14, rng=rng, size=24)


def test_agreement_of_the_truth_is_perfect(planted) -> None:  # type: ignore[no-untyped-def]
    agreement = schedule_agreement(planted, planted.active_sets())
    assert agreement.stages_match
    assert (agreement.n_planted, agreement.n_matched, agreement.n_frames_equal) == (3, 3, 14)
    assert agreement.offsets_frames == (0, 0, 0)


def test_agreement_tolerates_shifts_up_to_the_tolerance(planted) -> None:  # type: ignore[no-untyped-def]
    shifted = list(planted.active_sets())
    shifted[3] = frozenset()  # AU01 one frame late
    shifted[10] = frozenset({"AU01", "AU26"})  # AU26 one frame late off
    agreement = schedule_agreement(planted, shifted, tolerance_frames=1)
    assert agreement.stages_match
    assert sorted(agreement.offsets_frames) == [0, 1, 1]
    assert agreement.n_frames_equal == 12
    strict = schedule_agreement(planted, shifted, tolerance_frames=0)
    assert not strict.stages_match and strict.n_matched == 1


def test_agreement_counts_a_flicker_as_extra_switches(planted) -> None:  # type: ignore[no-untyped-def]
    flicker = list(planted.active_sets())
    flicker[12] = frozenset({"AU01", "AU05"})
    agreement = schedule_agreement(planted, flicker)
    assert agreement.n_matched == agreement.n_planted == 3
    assert agreement.n_predicted == 5 and not agreement.stages_match
    pooled = agreement + schedule_agreement(planted, planted.active_sets())
    assert (pooled.n_planted, pooled.n_predicted, pooled.n_frames) == (6, 8, 28)


def test_agreement_needs_one_set_per_frame(planted) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="one set per frame"):
        schedule_agreement(planted, planted.active_sets()[:-1])
