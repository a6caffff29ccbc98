"""The session store: atomic trials, background sample writing, resume after SIGKILL, CSV round trip."""

from __future__ import annotations

import json
import math
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.geometry import ScreenGeometry
from tracking.errors import StoreError, TrackingWarning
from tracking.records import (
    Fixation,
    GazeSample,
    PhaseOnsets,
    Trial,
    TrialFrames,
    ValidationPoint,
    ValidationResult,
)
from tracking.store import SCHEMA_VERSION, SessionStore

ROOT = Path(__file__).resolve().parents[2]
ORDER = [f"ckplus/S{k:03d}.png" for k in range(10)]


def make_trial(position: int, start_ms: float, *, stimulus_id: str | None = None) -> Trial:
    """A trial following RBDM §5.3.1: 500 ms blank, 200 ms cross, 500 ms blank, 2 s stimulus."""
    phases = PhaseOnsets(start_ms, start_ms + 500, start_ms + 700, start_ms + 1200, start_ms + 3200)
    return Trial(
        position=position,
        stimulus_id=ORDER[position] if stimulus_id is None else stimulus_id,
        phases=phases,
        label="happy" if position % 2 else "sad",
        label_source="speech" if position % 2 else "keyboard",
        recognised_text="happy" if position % 2 else None,
        confidence=0.875 if position % 2 else None,
        response_time_ms=1234.5,
    )


def make_fixations(start_ms: float) -> list[Fixation]:
    return [
        Fixation(start_ms + 1300.0, 250.0, 1200.5, 700.25, 301),
        Fixation(start_ms + 1600.0, 180.0, 1290.0, 650.0, 217),
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SessionStore]:
    with SessionStore(tmp_path / "study.db") as opened:
        yield opened


def new_session(store: SessionStore, pseudonym: str = "P01", order: Sequence[str] = tuple(ORDER)) -> int:
    participant = store.create_participant(pseudonym)
    return store.create_session(
        participant,
        settings={"detector": "idt", "dispersion_deg": 1.0, "blank_ms": 500},
        geometry=ScreenGeometry(),
        tracker="eyetribe",
        recogniser="vosk",
        stimulus_order=order,
    )


# --- participants and sessions ------------------------------------------------------------------


def test_a_session_keeps_what_it_was_created_with(store: SessionStore) -> None:
    session_id = new_session(store)
    session = store.session(session_id)
    assert session.stimulus_order == tuple(ORDER)
    assert session.settings == {"detector": "idt", "dispersion_deg": 1.0, "blank_ms": 500}
    assert session.geometry == ScreenGeometry()
    assert (session.tracker, session.recogniser) == ("eyetribe", "vosk")
    assert [p.pseudonym for p in store.participants()] == ["P01"]
    assert store.sessions() == [session]
    assert store.resume_point(session_id) == 0


@pytest.mark.parametrize("pseudonym", ["Jane Doe", "", "x" * 33, "anna@example.org", "Müller"])
def test_only_pseudonyms_are_accepted(store: SessionStore, pseudonym: str) -> None:
    with pytest.raises(ValueError, match="pseudonym"):
        store.create_participant(pseudonym)
    assert store.participants() == []


def test_a_taken_pseudonym_is_refused(store: SessionStore) -> None:
    store.create_participant("P01")
    with pytest.raises(StoreError, match="already exists"):
        store.create_participant("P01")


def test_bad_session_arguments_are_refused(store: SessionStore) -> None:
    participant = store.create_participant("P01")
    args = {"geometry": ScreenGeometry(), "tracker": "mouse", "recogniser": "none", "stimulus_order": ["a"]}
    with pytest.raises(ValueError, match="JSON"):
        store.create_session(participant, settings={"x": math.nan}, **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stimulus_order"):
        store.create_session(participant, settings={}, **{**args, "stimulus_order": []})  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="no participant_id 99"):
        store.create_session(99, settings={}, **args)  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="no session_id 7"):
        store.resume_point(7)
    assert store.sessions() == []


# --- trials ---------------------------------------------------------------------------------------


def test_trials_and_fixations_come_back_as_recorded(store: SessionStore) -> None:
    session_id = new_session(store)
    for position in range(3):
        store.record_trial(
            session_id, make_trial(position, 10_000.0 * position), make_fixations(10_000.0 * position)
        )
    assert store.trials(session_id) == [make_trial(k, 10_000.0 * k) for k in range(3)]
    assert store.fixations(session_id, 2) == make_fixations(20_000.0)
    assert store.resume_point(session_id) == 3


def test_trials_must_follow_the_stimulus_order(store: SessionStore) -> None:
    session_id = new_session(store, order=ORDER[:2])
    with pytest.raises(StoreError, match="continues at position 0"):
        store.record_trial(session_id, make_trial(1, 0.0), [])
    with pytest.raises(StoreError, match=r"order has 'ckplus/S000\.png' there"):
        store.record_trial(session_id, make_trial(0, 0.0, stimulus_id="other.png"), [])
    store.record_trial(session_id, make_trial(0, 0.0), [])
    store.record_trial(session_id, make_trial(1, 5000.0), [])
    with pytest.raises(StoreError, match="complete"):
        store.record_trial(session_id, make_trial(1, 9000.0), [])
    assert store.resume_point(session_id) == 2


def test_a_trial_that_fails_half_way_leaves_nothing_behind(store: SessionStore) -> None:
    session_id = new_session(store)
    store.record_trial(session_id, make_trial(0, 0.0), make_fixations(0.0))

    def fixations_then_junk() -> Iterator[object]:
        yield from make_fixations(5000.0)
        yield (1.0, 2.0)

    with pytest.raises(TypeError, match="Fixation records"):
        store.record_trial(session_id, make_trial(1, 5000.0), fixations_then_junk())  # type: ignore[arg-type]
    assert store.resume_point(session_id) == 1
    assert store.trials(session_id) == [make_trial(0, 0.0)]
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT count(*) FROM fixations").fetchone() == (2,)
    store.record_trial(session_id, make_trial(1, 5000.0), make_fixations(5000.0))
    assert store.fixations(session_id, 1) == make_fixations(5000.0)


def test_a_session_resumes_at_the_next_stimulus_after_reopening(tmp_path: Path) -> None:
    with SessionStore(tmp_path / "study.db") as store:
        session_id = new_session(store)
        for position in range(4):
            store.record_trial(session_id, make_trial(position, 4000.0 * position), [])
    with SessionStore(tmp_path / "study.db") as store:
        resume = store.resume_point(session_id)
        assert (resume, store.session(session_id).stimulus_order[resume]) == (4, ORDER[4])
        store.record_trial(session_id, make_trial(resume, 0.0), [])
        assert store.resume_point(session_id) == 5


def test_invalid_trial_records_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="unknown label"):
        Trial(0, "a", PhaseOnsets(0, 1, 2, 3, 4), "joy", "speech")
    with pytest.raises(ValueError, match="label_source"):
        Trial(0, "a", PhaseOnsets(0, 1, 2, 3, 4), "happy", "mouse")
    with pytest.raises(ValueError, match="must not decrease"):
        PhaseOnsets(0, 1, 2, 5, 4)
    with pytest.raises(ValueError, match="confidence"):
        Trial(0, "a", PhaseOnsets(0, 1, 2, 3, 4), "happy", "speech", "happy", confidence=1.5)


def test_validation_results_round_trip(store: SessionStore) -> None:
    session_id = new_session(store)
    result = ValidationResult(
        12.5, (ValidationPoint(100, 100, 0.5, 0.1), ValidationPoint(2460, 1340, 0.9, 0.3))
    )
    store.record_validation(session_id, result)
    (stored,) = store.validations(session_id)
    assert stored == result
    assert stored.mean_accuracy_deg == pytest.approx(0.7)


# --- samples --------------------------------------------------------------------------------------


def sample_stream(n: int, start_ms: float = 0.0) -> list[GazeSample]:
    return [
        GazeSample(start_ms + k / 1.2, 1000.0 + k % 97, 500.0 + k % 31, pupil_size=3.5)
        if k % 50
        else GazeSample(start_ms + k / 1.2, math.nan, math.nan, valid=False)
        for k in range(n)
    ]


def test_the_writer_stores_every_sample_in_order(store: SessionStore) -> None:
    session_id = new_session(store)
    samples = sample_stream(5000)
    with store.sample_writer(session_id, batch_interval_s=0.01) as writer:
        for sample in samples:
            writer.add(sample)
        writer.flush()
        assert (writer.written, writer.dropped) == (5000, 0)
    stored = store.samples(session_id)
    np.testing.assert_array_equal(stored.t_ms, [s.t_ms for s in samples])
    np.testing.assert_array_equal(stored.xy_screen_px, [(s.x_screen_px, s.y_screen_px) for s in samples])
    np.testing.assert_array_equal(stored.valid, [s.valid for s in samples])
    assert np.isnan(stored.pupil_size[~stored.valid]).all()


def test_a_full_queue_drops_samples_counts_them_and_warns(store: SessionStore) -> None:
    session_id = new_session(store)
    writer = store.sample_writer(session_id, batch_interval_s=60.0, max_pending=10)
    for sample in sample_stream(1000):
        writer.add(sample)  # the writer thread sleeps: the queue fills up
    assert writer.dropped == 990
    with pytest.warns(TrackingWarning, match="990 gaze samples were dropped"):
        writer.close()
    assert len(store.samples(session_id)) == 10
    with pytest.raises(StoreError, match="closed"):
        writer.add(sample_stream(1)[0])


def test_a_failing_writer_raises_on_flush_and_loses_nothing_recorded(store: SessionStore) -> None:
    session_id = new_session(store)
    store.record_trial(session_id, make_trial(0, 0.0), make_fixations(0.0))
    writer = store.sample_writer(session_id, batch_interval_s=0.01)
    with sqlite3.connect(store.path) as conn:
        conn.execute("DROP TABLE samples")  # the disk "fails" under the writer
    writer.add(sample_stream(1)[0])
    with pytest.raises(StoreError, match=r"writing gaze samples .* failed"):
        writer.flush()
    writer.add(sample_stream(2)[1])  # later samples are counted, not raised into the driver
    assert writer.dropped == 2
    with pytest.raises(StoreError, match="2 samples were lost"):
        writer.close()
    assert store.trials(session_id) == [make_trial(0, 0.0)]


def test_trial_samples_stay_within_their_recording(tmp_path: Path) -> None:
    """After a reboot the clock restarts: equal time stamps of two recordings must not mix."""
    path = tmp_path / "study.db"
    with SessionStore(path) as store:
        session_id = new_session(store)
        with store.sample_writer(session_id) as writer:
            for sample in sample_stream(4000, start_ms=0.0):
                writer.add(sample)
        store.record_trial(session_id, make_trial(0, 0.0), [])
    with SessionStore(path) as store:  # "after the reboot": same clock values again
        with store.sample_writer(session_id) as writer:
            for sample in sample_stream(4000, start_ms=100.0):
                writer.add(sample)
        store.record_trial(session_id, make_trial(1, 100.0), [])
        first, second = store.trial_samples(session_id, 0), store.trial_samples(session_id, 1)
        assert (first.t_ms[0], len(first)) == (0.0, 3841)  # 0 ms to 3,200 ms at 1,200 Hz
        assert (second.t_ms[0], len(second)) == (100.0, 3841)
        assert len(store.samples(session_id)) == 8000


def test_the_writer_rejects_what_is_not_a_sample(store: SessionStore) -> None:
    with store.sample_writer(new_session(store)) as writer, pytest.raises(TypeError, match="GazeSample"):
        writer.add((0.0, 1.0, 2.0))  # type: ignore[arg-type]


# --- SIGKILL in the middle of a session ---------------------------------------------------------

CHILD = r"""
import json, sys, time
from analysis.geometry import ScreenGeometry
from tracking.clock import now_ms
from tracking.fixations import IDTDetector
from tracking.records import GazeSample, PhaseOnsets, Trial
from tracking.store import SessionStore

path, n_finish, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
geometry = ScreenGeometry()
store = SessionStore(path)
session = store.create_session(store.create_participant("P07"), settings={}, geometry=geometry,
                               tracker="mouse", recogniser="keyboard", stimulus_order=json.loads(sys.argv[4]))
writer = store.sample_writer(session, batch_interval_s=0.01)
detector = IDTDetector(geometry, min_duration_ms=20.0)

def look(duration_ms, x, y):
    fixations, end = [], now_ms() + duration_ms
    while now_ms() < end:
        sample = GazeSample(now_ms(), x, y)
        writer.add(sample)
        fixations += detector.feed(sample)
        time.sleep(0.0005)
    return fixations

def hang(fixations):
    yield from fixations
    print("committing", flush=True)
    time.sleep(600)

for position in range(10):
    blank = now_ms()
    fixations = look(10, 100.0, 100.0)
    cross = now_ms()
    fixations += look(10, 1280.0, 720.0)
    second_blank = now_ms()
    fixations += look(10, 100.0, 100.0)
    onset = now_ms()
    fixations += look(40, 1200.0 + position, 700.0) + look(40, 1400.0, 800.0) + detector.flush()
    if position == n_finish and mode == "streaming":
        print("streaming", flush=True)
        look(600_000, 1000.0, 500.0)
    phases = PhaseOnsets(blank, cross, second_blank, onset, now_ms())
    trial = Trial(position, json.loads(sys.argv[4])[position], phases, "anger", "keyboard",
                  response_time_ms=now_ms() - onset)
    store.record_trial(session, trial, hang(fixations) if position == n_finish else fixations)
    print("finished", json.dumps([position, [[f.onset_ms, f.duration_ms, f.x_screen_px, f.y_screen_px,
                                                f.n_samples] for f in fixations]]), flush=True)
"""


def _run_until_killed(path: Path, n_finish: int, mode: str) -> list[str]:
    """Run the recording child; SIGKILL it when it reports streaming mid-trial or committing."""
    args = [sys.executable, "-c", CHILD, str(path), str(n_finish), mode, json.dumps(ORDER)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as child:
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(child, lines), daemon=True)
        reader.start()
        seen: list[str] = []
        try:
            while not seen or seen[-1] not in ("streaming", "committing", "EOF"):
                seen.append(lines.get(timeout=60))
            if mode == "streaming":
                threading.Event().wait(0.2)  # let a few sample batches of the unfinished trial land
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(timeout=30)
            reader.join(timeout=30)
        assert child.stderr is not None
        stderr = child.stderr.read()
    assert child.returncode == -signal.SIGKILL, f"the recording child ended on its own:\n{stderr}"
    return seen


def _read_lines(child: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert child.stdout is not None
    for line in child.stdout:
        lines.put(line.strip())
    lines.put("EOF")


@pytest.mark.parametrize("mode", ["streaming", "committing"])
def test_sigkill_mid_session_keeps_finished_trials_and_resumes_at_the_next(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "study.db"
    seen = _run_until_killed(path, 3, mode)
    finished = [json.loads(line.removeprefix("finished ")) for line in seen if line.startswith("finished")]
    assert [position for position, _ in finished] == [0, 1, 2]

    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with SessionStore(path) as store:
        (session,) = store.sessions()
        assert store.resume_point(session.session_id) == 3
        assert [t.position for t in store.trials(session.session_id)] == [0, 1, 2]
        for position, fixations in finished:
            assert fixations, "each trial had fixations to lose"
            assert store.fixations(session.session_id, position) == [Fixation(*f) for f in fixations]
            assert len(store.trial_samples(session.session_id, position)) > 0
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM trials").fetchone() == (3,)
            assert conn.execute("SELECT count(*) FROM fixations").fetchone() == (
                sum(len(f) for _, f in finished),
            )
        if mode == "streaming":  # samples of the unfinished trial were committed while it streamed
            last_offset = store.trials(session.session_id)[-1].phases.stimulus_offset_ms
            assert (store.samples(session.session_id).t_ms > last_offset + 100.0).sum() > 0

        resume = store.resume_point(session.session_id)  # the next stimulus, then the rest
        for position in range(resume, len(ORDER)):
            store.record_trial(session.session_id, make_trial(position, 0.0), [])
        assert store.resume_point(session.session_id) == len(ORDER)
        assert [t.stimulus_id for t in store.trials(session.session_id)] == ORDER


# --- schema versions and foreign files ----------------------------------------------------------


def test_a_new_store_carries_the_schema_version_in_wal_mode(tmp_path: Path) -> None:
    SessionStore(tmp_path / "study.db").close()
    with sqlite3.connect(tmp_path / "study.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_store_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    SessionStore(tmp_path / "study.db").close()
    with sqlite3.connect(tmp_path / "study.db") as conn:
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer RBDM Studio"):
        SessionStore(tmp_path / "study.db")


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "other.db") as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not an RBDM Studio session store"):
        SessionStore(tmp_path / "other.db")
    with sqlite3.connect(tmp_path / "other.db") as conn:  # left as it was
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    (tmp_path / "notes.txt").write_text("not a database, just text" * 100)
    with pytest.raises(StoreError, match="could not open the store"):
        SessionStore(tmp_path / "notes.txt")
    with pytest.raises(StoreError, match="does not exist"):
        SessionStore(tmp_path / "missing" / "study.db")


# --- CSV export and import ----------------------------------------------------------------------


def fill_study(store: SessionStore) -> list[int]:
    sessions = []
    for k, pseudonym in enumerate(["P01", "P02"]):
        session_id = new_session(store, pseudonym)
        with store.sample_writer(session_id) as writer:
            for sample in sample_stream(3000, start_ms=1000.0 * k):
                writer.add(sample)
        for position in range(2 + k):
            store.record_trial(
                session_id, make_trial(position, 3300.0 * position), make_fixations(3300.0 * position)
            )
        store.record_validation(session_id, ValidationResult(1.0, (ValidationPoint(10, 20, 0.4, 0.05),)))
        sessions.append(session_id)
    return sessions


def assert_same_study(a: SessionStore, b: SessionStore) -> None:
    assert a.participants() == b.participants()
    assert a.sessions() == b.sessions()
    for session in a.sessions():
        sid = session.session_id
        assert a.trials(sid) == b.trials(sid)
        assert a.validations(sid) == b.validations(sid)
        for trial in a.trials(sid):
            assert a.fixations(sid, trial.position) == b.fixations(sid, trial.position)
        sa, sb = a.samples(sid), b.samples(sid)
        np.testing.assert_array_equal(sa.t_ms, sb.t_ms)
        np.testing.assert_array_equal(sa.xy_screen_px, sb.xy_screen_px)
        np.testing.assert_array_equal(sa.valid, sb.valid)
        np.testing.assert_array_equal(sa.pupil_size, sb.pupil_size)


def test_a_study_survives_export_and_import(store: SessionStore, tmp_path: Path) -> None:
    fill_study(store)
    files = store.export_csv(tmp_path / "export")
    assert sorted(p.name for p in files) == sorted(p.name for p in (tmp_path / "export").iterdir())
    with SessionStore(tmp_path / "copy.db") as copy:
        copy.import_csv(tmp_path / "export")
        assert_same_study(store, copy)
        copy.export_csv(tmp_path / "again")
    for path in files:
        if path.name != "meta.csv":  # meta holds the export time
            assert path.read_bytes() == (tmp_path / "again" / path.name).read_bytes()


def test_one_session_can_be_exported_alone(store: SessionStore, tmp_path: Path) -> None:
    _, second = fill_study(store)
    store.export_csv(tmp_path / "export", session_id=second)
    with SessionStore(tmp_path / "copy.db") as copy:
        copy.import_csv(tmp_path / "export")
        assert [p.pseudonym for p in copy.participants()] == ["P02"]
        assert copy.sessions() == [store.session(second)]
        assert copy.trials(second) == store.trials(second)
        assert len(copy.samples(second)) == len(store.samples(second)) == 3000


def test_export_refuses_to_overwrite_and_import_refuses_bad_input(
    store: SessionStore, tmp_path: Path
) -> None:
    fill_study(store)
    store.export_csv(tmp_path / "export")
    with pytest.raises(StoreError, match="already holds an export"):
        store.export_csv(tmp_path / "export")
    with pytest.raises(StoreError, match="already holds participants"):
        store.import_csv(tmp_path / "export")
    trials = tmp_path / "export" / "trials.csv"
    trials.write_text(trials.read_text().replace("keyboard", "gesture", 1))
    with SessionStore(tmp_path / "copy.db") as copy:
        with pytest.raises(StoreError, match=r"line 2 of .*trials.csv: CHECK constraint failed"):
            copy.import_csv(tmp_path / "export")
        assert copy.participants() == []  # all or nothing
        (tmp_path / "export" / "fixations.csv").unlink()
        with pytest.raises(StoreError, match=r"lacks fixations\.csv"):
            copy.import_csv(tmp_path / "export")
        meta = tmp_path / "export" / "meta.csv"
        meta.write_text(meta.read_text().replace(f"schema_version,{SCHEMA_VERSION}", "schema_version,99"))
        with pytest.raises(StoreError, match="schema version '99'"):
            copy.import_csv(tmp_path / "export")


@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=50))
def test_property_floats_survive_the_csv_round_trip_exactly(tmp_path: Path, values: list[float]) -> None:
    folder = tmp_path / f"run{len(list(tmp_path.iterdir()))}"
    folder.mkdir()
    with SessionStore(folder / "a.db") as store:
        session_id = new_session(store)
        with store.sample_writer(session_id) as writer:
            for k, value in enumerate(values):
                writer.add(GazeSample(float(k), value, -value, pupil_size=value))
        store.export_csv(folder / "export")
        with SessionStore(folder / "b.db") as copy:
            copy.import_csv(folder / "export")
            stored = copy.samples(session_id)
    np.testing.assert_array_equal(stored.xy_screen_px, np.column_stack([values, np.negative(values)]))
    np.testing.assert_array_equal(stored.pupil_size, values)


# --- display-frame statistics (schema version 2) ------------------------------------------------


def make_frames(dropped: int) -> TrialFrames:
    return TrialFrames(59.94, True, 30, 12, 30, 150, dropped, 33.25)


def test_trial_frames_are_committed_with_their_trial(store: SessionStore) -> None:
    session_id = new_session(store)
    store.record_trial(session_id, make_trial(0, 0.0), make_fixations(0.0), frames=make_frames(2))
    store.record_trial(session_id, make_trial(1, 5000.0), [])
    assert store.trial_frames(session_id) == {0: make_frames(2)}
    with pytest.raises(TypeError, match="TrialFrames"):
        store.record_trial(session_id, make_trial(2, 9000.0), [], frames={"dropped_frames": 1})  # type: ignore[arg-type]
    assert store.resume_point(session_id) == 2
    with pytest.raises(ValueError, match="frame counts"):
        TrialFrames(60.0, True, 0, 12, 30, 150, 0, 16.7)


def test_a_version_1_store_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SessionStore(path) as store:
        session_id = new_session(store)
        store.record_trial(session_id, make_trial(0, 0.0), [])
    with sqlite3.connect(path) as conn:  # what version 1 looked like
        conn.execute("DROP TABLE trial_frames")
        conn.execute("ALTER TABLE samples DROP COLUMN device_t_ms")
        conn.execute("ALTER TABLE samples DROP COLUMN device_state")
        _drop_recording_devices(conn)
        conn.execute("PRAGMA user_version=1")
    with SessionStore(path) as store:
        assert store.trial_frames(session_id) == {}
        store.record_trial(session_id, make_trial(1, 5000.0), [], frames=make_frames(0))
        assert store.trial_frames(session_id) == {1: make_frames(0)}
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (4,)


def _drop_recording_devices(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE recordings DROP COLUMN tracker")
    conn.execute("ALTER TABLE recordings DROP COLUMN recogniser")


def _as_version_2(path: Path) -> None:
    """Turn a store into what schema version 2 wrote: samples without the device's stamp and flags."""
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE samples DROP COLUMN device_t_ms")
        conn.execute("ALTER TABLE samples DROP COLUMN device_state")
        _drop_recording_devices(conn)
        conn.execute("PRAGMA user_version=2")


def _as_version_3(path: Path) -> None:
    """Turn a store into what schema version 3 wrote: recordings without their devices."""
    with sqlite3.connect(path) as conn:
        _drop_recording_devices(conn)
        conn.execute("PRAGMA user_version=3")


def test_each_recording_keeps_the_devices_it_really_used(store: SessionStore) -> None:
    session_id = new_session(store)  # started with the Eye Tribe and Vosk ...
    store.start_recording(session_id, tracker="mouse", recogniser="keyboard")  # ... but recorded with these
    assert store.recording_devices(session_id) == [("mouse", "keyboard")]
    with pytest.raises(StoreError, match="already being recorded"):
        store.start_recording(session_id, tracker="eyetribe", recogniser="vosk")
    with pytest.raises(ValueError, match="tracker must be a non-empty name"):
        store.start_recording(session_id, tracker="", recogniser="vosk")


def test_a_version_3_store_reads_its_recordings_as_the_session_devices(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    with SessionStore(path) as store:
        session_id = new_session(store)
        store.record_trial(session_id, make_trial(0, 0.0), [])
    _as_version_3(path)
    with SessionStore.open_read_only(path) as reader:  # upgraded in memory only
        assert reader.recording_devices(session_id) == [("eyetribe", "vosk")]
    with SessionStore(path) as store:
        assert store.recording_devices(session_id) == [("eyetribe", "vosk")]
        store.start_recording(session_id, tracker="mouse", recogniser="keyboard")
        assert store.recording_devices(session_id) == [("eyetribe", "vosk"), ("mouse", "keyboard")]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (4,)


def test_a_version_3_export_imports_recordings_without_devices(store: SessionStore, tmp_path: Path) -> None:
    session_id = new_session(store)
    store.start_recording(session_id, tracker="mouse", recogniser="keyboard")
    store.export_csv(tmp_path / "export")
    recordings_csv = tmp_path / "export" / "recordings.csv"
    lines = recordings_csv.read_text().splitlines()
    recordings_csv.write_text("\n".join(",".join(line.split(",")[:-2]) for line in lines) + "\n")
    meta = tmp_path / "export" / "meta.csv"
    meta.write_text(meta.read_text().replace(f"schema_version,{SCHEMA_VERSION}", "schema_version,3"))
    with SessionStore(tmp_path / "copy.db") as copy:
        copy.import_csv(tmp_path / "export")
        assert copy.recording_devices(session_id) == [("eyetribe", "vosk")]


def test_the_device_time_stamp_and_state_are_stored(store: SessionStore) -> None:
    session_id = new_session(store)
    samples = [
        GazeSample(10.0, 100.0, 200.0, device_t_ms=1_700_000_000_016.0, device_state=7),
        GazeSample(26.7, math.nan, math.nan, valid=False, device_t_ms=1_700_000_000_033.0, device_state=0x14),
        GazeSample(43.3, 101.0, 201.0),  # a device that sends neither
    ]
    with store.sample_writer(session_id, batch_interval_s=0.01) as writer:
        for sample in samples:
            writer.add(sample)
    stored = store.samples(session_id)
    np.testing.assert_array_equal(stored.device_t_ms, [1_700_000_000_016.0, 1_700_000_000_033.0, math.nan])
    np.testing.assert_array_equal(stored.device_state, [7.0, 20.0, math.nan])


def test_a_version_2_store_keeps_its_samples_and_stores_device_fields_after_the_upgrade(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.db"
    with SessionStore(path) as store:
        session_id = new_session(store)
        with store.sample_writer(session_id) as writer:
            writer.add(GazeSample(1.0, 10.0, 20.0, pupil_size=3.0))
    _as_version_2(path)
    with SessionStore(path) as store:
        old = store.samples(session_id)
        assert (old.t_ms.tolist(), old.pupil_size.tolist()) == ([1.0], [3.0])
        assert np.isnan(old.device_t_ms).all() and np.isnan(old.device_state).all()
        with store.sample_writer(session_id) as writer:
            writer.add(GazeSample(2.0, 10.0, 20.0, device_t_ms=5.0, device_state=1))
        assert store.samples(session_id).device_state.tolist()[1] == 1.0
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)


def test_a_version_2_export_is_imported_with_empty_device_fields(store: SessionStore, tmp_path: Path) -> None:
    session_id = new_session(store)
    with store.sample_writer(session_id) as writer:
        writer.add(GazeSample(1.0, 10.0, 20.0, device_t_ms=5.0, device_state=7))
    store.export_csv(tmp_path / "export")
    samples_csv = tmp_path / "export" / "samples.csv"
    lines = samples_csv.read_text().splitlines()
    samples_csv.write_text("\n".join(",".join(line.split(",")[:-2]) for line in lines) + "\n")
    meta = tmp_path / "export" / "meta.csv"
    meta.write_text(meta.read_text().replace(f"schema_version,{SCHEMA_VERSION}", "schema_version,2"))
    with SessionStore(tmp_path / "copy.db") as copy:
        copy.import_csv(tmp_path / "export")
        stored = copy.samples(session_id)
        assert stored.t_ms.tolist() == [1.0] and np.isnan(stored.device_t_ms).all()


def test_device_fields_must_be_what_they_say() -> None:
    with pytest.raises(ValueError, match="device_t_ms must be finite"):
        GazeSample(0.0, 1.0, 1.0, device_t_ms=math.inf)
    with pytest.raises(TypeError, match="device_state must be an int"):
        GazeSample(0.0, 1.0, 1.0, device_state=1.5)  # type: ignore[arg-type]


def test_trial_frames_survive_export_and_import(store: SessionStore, tmp_path: Path) -> None:
    session_id = new_session(store)
    store.record_trial(session_id, make_trial(0, 0.0), [], frames=make_frames(1))
    store.export_csv(tmp_path / "export")
    with SessionStore(tmp_path / "copy.db") as copy:
        copy.import_csv(tmp_path / "export")
        assert copy.trial_frames(session_id) == {0: make_frames(1)}
