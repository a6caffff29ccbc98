"""The crash-safe session store: participants, sessions, trials, samples, fixations (RBDM §5.3.1).

One SQLite file (stdlib ``sqlite3``) in WAL mode holds a study. Participants appear only under a
pseudonym. A session keeps its settings, screen geometry, tracker, recogniser and stimulus
order; each finished trial is committed in one transaction with its fixations, so a trial is
either wholly there or not at all, and a session resumes at the first stimulus without a trial.
Raw samples stream in from a :class:`SampleWriter`, whose background thread writes them in
batches so that a 1,200 Hz driver never waits for the disk.

Durability: a committed transaction is in the write-ahead log before ``commit`` returns, so
killing the process (even with SIGKILL) loses at most the samples still queued in the writer
(up to ``batch_interval_s`` of them) and the trial being recorded. Trial commits also run with
``synchronous=FULL`` (an fsync per trial); sample batches use ``synchronous=NORMAL``, so after
a power loss or an OS crash the newest sample batches may be missing; beyond that, power loss
is out of scope.

Samples carry the time stamps of :func:`tracking.clock.now_ms`, a monotonic clock that restarts
with the computer. Every time a session is recorded into from a store object, a *recording*
row marks a new clock epoch; trials and samples belong to one recording, so a session resumed
after a reboot never mixes up its trials' samples.

Export writes one CSV file per table (RFC 4180, header row, empty field = NULL, floats
written exactly), plus ``meta.csv`` with the schema version; import reads them back into an
empty store.
"""

from __future__ import annotations

import csv
import itertools
import json
import sqlite3
import threading
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from analysis.geometry import ScreenGeometry
from tracking.clock import now_ms
from tracking.errors import StoreError, TrackingWarning
from tracking.records import (
    Fixation,
    GazeSample,
    Participant,
    PhaseOnsets,
    SampleArrays,
    Session,
    Trial,
    TrialFrames,
    ValidationPoint,
    ValidationResult,
    check_pseudonym,
)

__all__ = ["SCHEMA_VERSION", "SETTING_FLAGGED_TRIALS", "SampleWriter", "SessionStore"]

#: Version of the table layout, kept in ``PRAGMA user_version`` and in exported ``meta.csv``.
SCHEMA_VERSION = 4
#: Key of a session's settings holding the trials the experimenter marked as bad: position (as text) →
#: the reason. Kept in the settings (exported and imported with them) so that flagging needs no new
#: column: older versions of RBDM Studio read such a store unchanged and ignore the key.
SETTING_FLAGGED_TRIALS = "flagged_trials"
#: ``PRAGMA application_id`` marking a file as an RBDM Studio store ("RBDM" in ASCII).
_APPLICATION_ID = 0x5242444D
_FORMAT = "rbdm-studio-session-store"
_BUSY_TIMEOUT_S = 10.0

#: Display-frame statistics of each trial (schema version 2).
_TRIAL_FRAMES_TABLE = """
CREATE TABLE trial_frames (
    trial_id INTEGER PRIMARY KEY REFERENCES trials (trial_id),
    refresh_hz REAL NOT NULL CHECK (refresh_hz > 0),
    frame_counted INTEGER NOT NULL CHECK (frame_counted IN (0, 1)),
    blank_frames INTEGER NOT NULL CHECK (blank_frames >= 1),
    cross_frames INTEGER NOT NULL CHECK (cross_frames >= 1),
    second_blank_frames INTEGER NOT NULL CHECK (second_blank_frames >= 1),
    n_frames INTEGER NOT NULL CHECK (n_frames >= 1),
    dropped_frames INTEGER NOT NULL CHECK (dropped_frames >= 0),
    max_frame_interval_ms REAL NOT NULL CHECK (max_frame_interval_ms >= 0)
);
"""

_SCHEMA = (
    """
CREATE TABLE participants (
    participant_id INTEGER PRIMARY KEY,
    pseudonym TEXT NOT NULL UNIQUE
        CHECK (length(pseudonym) BETWEEN 1 AND 32 AND pseudonym NOT GLOB '*[^A-Za-z0-9_-]*'),
    created_utc TEXT NOT NULL
);
CREATE TABLE sessions (
    session_id INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants (participant_id),
    created_utc TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    screen_width_px INTEGER NOT NULL,
    screen_height_px INTEGER NOT NULL,
    screen_diagonal_in REAL NOT NULL,
    screen_distance_cm REAL NOT NULL,
    tracker TEXT NOT NULL,
    recogniser TEXT NOT NULL
);
CREATE TABLE session_stimuli (
    session_id INTEGER NOT NULL REFERENCES sessions (session_id),
    position INTEGER NOT NULL CHECK (position >= 0),
    stimulus_id TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
);
CREATE TABLE recordings (
    recording_id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (session_id),
    started_utc TEXT NOT NULL,
    started_clock_ms REAL NOT NULL,
    tracker TEXT,
    recogniser TEXT
);
CREATE TABLE trials (
    trial_id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (session_id),
    recording_id INTEGER NOT NULL REFERENCES recordings (recording_id),
    position INTEGER NOT NULL CHECK (position >= 0),
    stimulus_id TEXT NOT NULL,
    blank_onset_ms REAL NOT NULL,
    cross_onset_ms REAL NOT NULL,
    second_blank_onset_ms REAL NOT NULL,
    stimulus_onset_ms REAL NOT NULL,
    stimulus_offset_ms REAL NOT NULL,
    label TEXT NOT NULL,
    label_source TEXT NOT NULL CHECK (label_source IN ('speech', 'keyboard')),
    recognised_text TEXT,
    confidence REAL,
    response_time_ms REAL,
    committed_utc TEXT NOT NULL,
    UNIQUE (session_id, position),
    FOREIGN KEY (session_id, position) REFERENCES session_stimuli (session_id, position)
);
CREATE TABLE samples (
    recording_id INTEGER NOT NULL REFERENCES recordings (recording_id),
    t_ms REAL NOT NULL,
    x_screen_px REAL,
    y_screen_px REAL,
    valid INTEGER NOT NULL CHECK (valid IN (0, 1)),
    pupil_size REAL,
    device_t_ms REAL,
    device_state INTEGER
);
CREATE INDEX samples_by_time ON samples (recording_id, t_ms);
CREATE TABLE fixations (
    trial_id INTEGER NOT NULL REFERENCES trials (trial_id),
    onset_ms REAL NOT NULL,
    duration_ms REAL NOT NULL CHECK (duration_ms >= 0),
    x_screen_px REAL NOT NULL,
    y_screen_px REAL NOT NULL,
    n_samples INTEGER NOT NULL CHECK (n_samples >= 1)
);
CREATE INDEX fixations_by_trial ON fixations (trial_id);
CREATE TABLE validations (
    validation_id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (session_id),
    t_ms REAL NOT NULL,
    mean_accuracy_deg REAL NOT NULL,
    mean_precision_deg REAL NOT NULL
);
CREATE TABLE validation_points (
    validation_id INTEGER NOT NULL REFERENCES validations (validation_id),
    point_index INTEGER NOT NULL,
    target_x_screen_px REAL NOT NULL,
    target_y_screen_px REAL NOT NULL,
    accuracy_deg REAL NOT NULL CHECK (accuracy_deg >= 0),
    precision_deg REAL NOT NULL CHECK (precision_deg >= 0),
    PRIMARY KEY (validation_id, point_index)
);
"""
    + _TRIAL_FRAMES_TABLE
)

#: SQL upgrading schema version v to v + 1, applied in order on opening an older file.
_MIGRATIONS: dict[int, str] = {
    1: _TRIAL_FRAMES_TABLE,
    # Schema version 3: the device's own time stamp and validity/state flags of each sample (issue 16).
    2: "ALTER TABLE samples ADD COLUMN device_t_ms REAL; ALTER TABLE samples ADD COLUMN device_state INTEGER",
    # Schema version 4: the tracker and recogniser each recording really used (issue 19); NULL in
    # recordings made before: the session's own names apply.
    3: "ALTER TABLE recordings ADD COLUMN tracker TEXT; ALTER TABLE recordings ADD COLUMN recogniser TEXT",
}
#: Columns added to a table after schema version 2: an export of an older version lacks them
#: (trailing, nullable) and imports with NULL in them.
_ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "samples": ("device_t_ms", "device_state"),
    "recordings": ("tracker", "recogniser"),
}
#: The oldest export version :meth:`SessionStore.import_csv` reads.
_OLDEST_IMPORT_VERSION = 2

#: Tables in foreign-key order (parents first), with the order their rows are exported in.
_TABLES: dict[str, str] = {
    "participants": "participant_id",
    "sessions": "session_id",
    "session_stimuli": "session_id, position",
    "recordings": "recording_id",
    "trials": "trial_id",
    "samples": "rowid",
    "fixations": "rowid",
    "validations": "validation_id",
    "validation_points": "validation_id, point_index",
    "trial_frames": "trial_id",
}

#: Which rows of each table belong to session ``:sid`` (for exporting one session).
_SESSION_ROWS: dict[str, str] = {
    "participants": "participant_id IN (SELECT participant_id FROM sessions WHERE session_id = :sid)",
    "sessions": "session_id = :sid",
    "session_stimuli": "session_id = :sid",
    "recordings": "session_id = :sid",
    "trials": "session_id = :sid",
    "samples": "recording_id IN (SELECT recording_id FROM recordings WHERE session_id = :sid)",
    "fixations": "trial_id IN (SELECT trial_id FROM trials WHERE session_id = :sid)",
    "validations": "session_id = :sid",
    "validation_points": "validation_id IN (SELECT validation_id FROM validations WHERE session_id = :sid)",
    "trial_frames": "trial_id IN (SELECT trial_id FROM trials WHERE session_id = :sid)",
}

_TRIAL_COLUMNS = (
    "position, stimulus_id, blank_onset_ms, cross_onset_ms, second_blank_onset_ms, stimulus_onset_ms, "
    "stimulus_offset_ms, label, label_source, recognised_text, confidence, response_time_ms"
)
_FRAMES_COLUMNS = (
    "refresh_hz, frame_counted, blank_frames, cross_frames, second_blank_frames, n_frames, "
    "dropped_frames, max_frame_interval_ms"
)
_FRAMES_INSERT = f"INSERT INTO trial_frames (trial_id, {_FRAMES_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SAMPLE_INSERT = (
    "INSERT INTO samples (recording_id, t_ms, x_screen_px, y_screen_px, valid, pupil_size, device_t_ms, "
    "device_state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SAMPLE_COLUMNS = "t_ms, x_screen_px, y_screen_px, valid, pupil_size, device_t_ms, device_state"


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode: transactions are explicit (:func:`_transaction`)."""
    return sqlite3.connect(path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)


def _connect_read_only(path: Path, *, immutable: bool) -> sqlite3.Connection:
    """A read-only connection (SQLite URI ``mode=ro``; ``immutable=1`` also skips locking and the log)."""
    uri = f"{path.as_uri()}?mode=ro" + ("&immutable=1" if immutable else "")
    return sqlite3.connect(
        uri, uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )


def _configure(conn: sqlite3.Connection, path: Path, *, synchronous: str) -> None:
    """Write-ahead logging, the given durability, foreign keys enforced."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise StoreError(
            f"{path} cannot use write-ahead logging (journal mode {mode!r}). "
            "Keep the store on a local disk, not a network share."
        )
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")


@contextmanager
def _transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[sqlite3.Connection]:
    """All statements inside commit together or not at all."""
    conn.execute(begin)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SessionStore:
    """A study's recordings in one SQLite file; use as a context manager.

    Parameters
    ----------
    path : str or PathLike
        The store file; created with the current schema if it does not exist. Its folder must exist.

    Raises
    ------
    StoreError
        When the file is not an RBDM Studio store, was written by a newer version (schema
        version above :data:`SCHEMA_VERSION`), is damaged or cannot be opened.

    Notes
    -----
    One ``SessionStore`` per process and file; its methods may be called from any thread.
    Bad arguments raise ``ValueError``/``TypeError``, conflicts with what is stored raise
    :class:`StoreError`; either way nothing already recorded is changed.

    References
    ----------
    .. [1] Schiller et al. (2020), Relevance-Based Data Masking, §5.3.1 (the labeling study
       whose sessions and trials are stored here).
    """

    def __init__(self, path: str | PathLike[str], *, read_only: bool = False) -> None:
        self.path = Path(path).absolute()
        self.read_only = read_only
        if not self.path.parent.is_dir():
            raise StoreError(
                f"cannot create the store {self.path}: folder {self.path.parent} does not exist."
            )
        self._lock = threading.RLock()
        self._recordings: dict[int, int] = {}
        self._writers: list[SampleWriter] = []
        if read_only:
            with self._sqlite_errors("open the store read-only"):
                self._conn = self._open_read_only()
            self._closed = False
            return
        with self._sqlite_errors("open the store"):
            self._conn = _connect(self.path)
            try:
                version = self._schema_version()
                _configure(self._conn, self.path, synchronous="FULL")
                with _transaction(self._conn) as conn:
                    if version == 0:
                        self._create(conn)
                    else:
                        self._migrate(conn, version)
            except BaseException:
                self._conn.close()
                raise
        self._closed = False

    @classmethod
    def open_read_only(cls, path: str | PathLike[str]) -> SessionStore:
        """Open an existing store for reading only: the file is never created, initialised or migrated.

        The connection is SQLite's ``mode=ro`` (``immutable=1`` where the folder is read-only and the
        write-ahead log cannot be shared); a store of an older schema version is upgraded in a copy in
        memory, the file stays as it is. Writing methods then raise :class:`StoreError`.

        Raises
        ------
        StoreError
            When there is no file, it is empty or not an RBDM Studio store, or is of a newer version.
        """
        return cls(path, read_only=True)

    def _open_read_only(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError(f"no study file at {self.path}. Record sessions from 'Study setup' first.")
        if self.path.stat().st_size == 0:
            raise StoreError(
                f"{self.path} is empty, not an RBDM Studio session store; it was left unchanged."
            )
        self._conn = _connect_read_only(self.path, immutable=False)
        try:
            try:
                version = self._schema_version()
            except sqlite3.OperationalError:  # a read-only folder: the log index (-shm) cannot be made
                self._conn.close()
                self._conn = _connect_read_only(self.path, immutable=True)
                version = self._schema_version()
            if version == 0:
                raise StoreError(f"{self.path} is an empty SQLite file, not an RBDM Studio session store.")
            if version < SCHEMA_VERSION:
                memory = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                self._conn.backup(memory)
                self._conn.close()
                self._conn = memory
                with _transaction(memory) as conn:
                    self._migrate(conn, version)
        except BaseException:
            self._conn.close()
            raise
        return self._conn

    # --- opening and closing ------------------------------------------------------------------

    def _schema_version(self) -> int:
        """The file's schema version (0: a new, empty file); refuses foreign and newer files unchanged."""
        conn = self._conn
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        application = conn.execute("PRAGMA application_id").fetchone()[0]
        if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0:
            return 0
        if application != _APPLICATION_ID or version == 0:
            raise StoreError(f"{self.path} is an SQLite file but not an RBDM Studio session store.")
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, written by a newer RBDM Studio; this "
                f"version reads up to {SCHEMA_VERSION}. Update RBDM Studio to open it."
            )
        return version

    @staticmethod
    def _create(conn: sqlite3.Connection) -> None:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA application_id={_APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _migrate(self, conn: sqlite3.Connection, version: int) -> None:
        while version < SCHEMA_VERSION:
            if version not in _MIGRATIONS:
                raise StoreError(f"{self.path} has schema version {version}, which cannot be upgraded.")
            for statement in _MIGRATIONS[version].split(";"):
                if statement.strip():
                    conn.execute(statement)
            version += 1
            conn.execute(f"PRAGMA user_version={version}")

    def close(self) -> None:
        """Close open sample writers (flushing them), fold the log into the file and close it."""
        if self._closed:
            return
        try:
            for writer in list(self._writers):
                writer.close()
        finally:
            with self._lock:
                self._closed = True
                try:
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error:
                    pass  # another connection still reads; the log is folded in later
                self._conn.close()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _sqlite_errors(self, action: str) -> Iterator[None]:
        """Turn SQLite failures into a :class:`StoreError` that names the file and the action."""
        try:
            yield
        except sqlite3.Error as err:
            raise StoreError(
                f"could not {action} in {self.path}: {err}. Check that the disk is not full and that "
                "no other program holds the file."
            ) from err

    @contextmanager
    def _use(self, action: str) -> Iterator[sqlite3.Connection]:
        """The main connection, under the lock, with SQLite errors translated."""
        with self._lock, self._sqlite_errors(action):
            if self._closed:
                raise StoreError(f"the store {self.path} is closed; open it again to {action}.")
            yield self._conn

    # --- participants and sessions ------------------------------------------------------------

    def create_participant(self, pseudonym: str) -> int:
        """Add a participant under a pseudonym (never a real name); return its ``participant_id``.

        Raises
        ------
        ValueError
            When the pseudonym is not 1–32 of ``A–Z a–z 0–9 _ -``.
        StoreError
            When the pseudonym is taken.
        """
        check_pseudonym(pseudonym)
        with self._use("add a participant") as conn, _transaction(conn):
            if conn.execute("SELECT 1 FROM participants WHERE pseudonym = ?", (pseudonym,)).fetchone():
                raise StoreError(
                    f"participant {pseudonym!r} already exists in {self.path}; choose another pseudonym "
                    "or look it up with participants()."
                )
            cursor = conn.execute(
                "INSERT INTO participants (pseudonym, created_utc) VALUES (?, ?)", (pseudonym, _utc_now())
            )
            return int(cursor.lastrowid or 0)

    def participants(self) -> list[Participant]:
        """All participants, in the order they were added."""
        with self._use("list participants") as conn:
            rows = conn.execute("SELECT participant_id, pseudonym FROM participants ORDER BY participant_id")
            return [Participant(int(pid), str(name)) for pid, name in rows]

    def create_session(
        self,
        participant_id: int,
        *,
        settings: Mapping[str, Any],
        geometry: ScreenGeometry,
        tracker: str,
        recogniser: str,
        stimulus_order: Sequence[str],
    ) -> int:
        """Start a session for a participant; return its ``session_id``.

        Parameters
        ----------
        participant_id : int
            From :meth:`create_participant`.
        settings : Mapping
            JSON-serialisable settings of the run (protocol timings, detector options...).
        geometry : ScreenGeometry
            The screen the stimuli are shown on (RBDM §5.3.1: 27", 2560 × 1440 px, 70 cm).
        tracker, recogniser : str
            Names of the gaze driver and the speech recogniser.
        stimulus_order : sequence of str
            Stimulus ids in presentation order; trial positions index it.

        Raises
        ------
        ValueError, TypeError
            For settings that are not JSON, an empty order or empty names.
        StoreError
            For an unknown participant.
        """
        settings_json = _settings_json(settings)
        order = _check_session_args(geometry, tracker, recogniser, stimulus_order)
        g = geometry
        with self._use("create a session") as conn, _transaction(conn):
            self._require(conn, "participants", "participant_id", participant_id)
            cursor = conn.execute(
                "INSERT INTO sessions (participant_id, created_utc, settings_json, screen_width_px, "
                "screen_height_px, screen_diagonal_in, screen_distance_cm, tracker, recogniser) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (participant_id, _utc_now(), settings_json, g.width_px, g.height_px, g.diagonal_in,
                 g.distance_cm, tracker, recogniser),
            )  # fmt: skip
            session_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO session_stimuli (session_id, position, stimulus_id) VALUES (?, ?, ?)",
                [(session_id, k, stimulus) for k, stimulus in enumerate(order)],
            )
            return session_id

    def session(self, session_id: int) -> Session:
        """The stored session ``session_id``; raises :class:`StoreError` when there is none."""
        with self._use("read a session") as conn:
            self._require(conn, "sessions", "session_id", session_id)
            return self._session(conn, session_id)

    def sessions(self) -> list[Session]:
        """All sessions of the study, oldest first."""
        with self._use("list sessions") as conn:
            ids = [int(row[0]) for row in conn.execute("SELECT session_id FROM sessions ORDER BY session_id")]
            return [self._session(conn, sid) for sid in ids]

    def _session(self, conn: sqlite3.Connection, session_id: int) -> Session:
        row = conn.execute(
            "SELECT participant_id, created_utc, settings_json, screen_width_px, screen_height_px, "
            "screen_diagonal_in, screen_distance_cm, tracker, recogniser FROM sessions WHERE session_id = ?",
            (session_id,),
        ).fetchone()
        return Session(
            session_id=session_id,
            participant_id=int(row[0]),
            created_utc=str(row[1]),
            settings=json.loads(row[2]),
            geometry=ScreenGeometry(int(row[3]), int(row[4]), float(row[5]), float(row[6])),
            tracker=str(row[7]),
            recogniser=str(row[8]),
            stimulus_order=tuple(self._stimulus_order(conn, session_id)),
        )

    @staticmethod
    def _stimulus_order(conn: sqlite3.Connection, session_id: int) -> list[str]:
        rows = conn.execute(
            "SELECT stimulus_id FROM session_stimuli WHERE session_id = ? ORDER BY position", (session_id,)
        )
        return [str(row[0]) for row in rows]

    def _require(self, conn: sqlite3.Connection, table: str, key: str, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{key} must be an int; got {value!r}.")
        if conn.execute(f"SELECT 1 FROM {table} WHERE {key} = ?", (value,)).fetchone() is None:
            raise StoreError(f"there is no {key} {value!r} in {self.path}.")

    def resume_point(self, session_id: int) -> int:
        """Position of the next stimulus to show: the number of finished trials.

        Equal to ``len(session(session_id).stimulus_order)`` once the session is complete.
        """
        with self._use("read the resume point") as conn:
            self._require(conn, "sessions", "session_id", session_id)
            return self._finished(conn, session_id)

    @staticmethod
    def _finished(conn: sqlite3.Connection, session_id: int) -> int:
        return int(
            conn.execute("SELECT count(*) FROM trials WHERE session_id = ?", (session_id,)).fetchone()[0]
        )

    def _recording_id(
        self, session_id: int, *, tracker: str | None = None, recogniser: str | None = None
    ) -> int:
        """This store object's recording (clock epoch) of the session, created on first use."""
        with self._use("start a recording") as conn:
            if session_id not in self._recordings:
                with _transaction(conn):
                    self._require(conn, "sessions", "session_id", session_id)
                    cursor = conn.execute(
                        "INSERT INTO recordings (session_id, started_utc, started_clock_ms, tracker, "
                        "recogniser) VALUES (?, ?, ?, ?, ?)",
                        (session_id, _utc_now(), now_ms(), tracker, recogniser),
                    )
                self._recordings[session_id] = int(cursor.lastrowid or 0)
            return self._recordings[session_id]

    def start_recording(self, session_id: int, *, tracker: str, recogniser: str) -> int:
        """Begin this store object's recording of a session with the devices really in use.

        A resumed session may run on another tracker or recogniser than it started with; each
        recording keeps its own (see :meth:`recording_devices`).

        Returns
        -------
        int
            The recording's id.

        Raises
        ------
        ValueError
            For empty names.
        StoreError
            For an unknown session, or when this store object already records the session.
        """
        for name, value in (("tracker", tracker), ("recogniser", recogniser)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty name; got {value!r}.")
        if session_id in self._recordings:
            raise StoreError(
                f"session {session_id} is already being recorded from this store object; "
                "open the study again to record it anew."
            )
        return self._recording_id(session_id, tracker=tracker, recogniser=recogniser)

    def recording_devices(self, session_id: int) -> list[tuple[str, str]]:
        """``(tracker, recogniser)`` of each recording of the session, oldest first.

        Recordings from before schema version 4 name no devices: the session's own apply.
        """
        with self._use("list recordings") as conn:
            self._require(conn, "sessions", "session_id", session_id)
            rows = conn.execute(
                "SELECT coalesce(r.tracker, s.tracker), coalesce(r.recogniser, s.recogniser) "
                "FROM recordings AS r JOIN sessions AS s USING (session_id) "
                "WHERE r.session_id = ? ORDER BY r.recording_id",
                (session_id,),
            )
            return [(str(t), str(r)) for t, r in rows]

    # --- recording ----------------------------------------------------------------------------

    def sample_writer(
        self, session_id: int, *, batch_interval_s: float = 0.05, max_pending: int = 1_200 * 600
    ) -> SampleWriter:
        """A background writer for the session's raw samples; close it (or use ``with``) when done.

        Parameters
        ----------
        session_id : int
            The session the samples belong to.
        batch_interval_s : float, optional
            How often, in seconds, queued samples are committed in one batch.
        max_pending : int, optional
            Most samples held in memory while the disk lags (default: 10 min at 1,200 Hz);
            beyond it samples are dropped and counted.
        """
        recording_id = self._recording_id(session_id)
        with self._sqlite_errors("open a sample writer"):
            writer = SampleWriter(
                self, recording_id, batch_interval_s=batch_interval_s, max_pending=max_pending
            )
        self._writers.append(writer)
        return writer

    def record_trial(
        self,
        session_id: int,
        trial: Trial,
        fixations: Iterable[Fixation],
        *,
        frames: TrialFrames | None = None,
    ) -> int:
        """Commit a finished trial and its fixations atomically; return its ``trial_id``.

        Trials are recorded in stimulus order: ``trial.position`` must be :meth:`resume_point`
        and ``trial.stimulus_id`` the stimulus at that position. Samples are linked to the trial
        by time (``blank_onset_ms`` to ``stimulus_offset_ms``) within this store's recording.
        ``frames``, when given, is committed in the same transaction.

        Raises
        ------
        TypeError
            For a trial that is not a :class:`Trial`, a fixation that is not a :class:`Fixation`
            or ``frames`` that is neither None nor a :class:`TrialFrames`.
        StoreError
            For an unknown session, a position out of turn or a stimulus not at that position;
            nothing of the trial is then stored.
        """
        if not isinstance(trial, Trial):
            raise TypeError(f"trial must be a Trial; got {type(trial).__name__}.")
        if frames is not None and not isinstance(frames, TrialFrames):
            raise TypeError(f"frames must be a TrialFrames or None; got {type(frames).__name__}.")
        recording_id = self._recording_id(session_id)
        with self._use("record a trial") as conn, _transaction(conn):
            self._check_turn(conn, session_id, trial)
            p = trial.phases
            cursor = conn.execute(
                f"INSERT INTO trials (session_id, recording_id, committed_utc, {_TRIAL_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, recording_id, _utc_now(), trial.position, trial.stimulus_id, *p.as_tuple(),
                 trial.label, trial.label_source, trial.recognised_text, trial.confidence,
                 trial.response_time_ms),
            )  # fmt: skip
            trial_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO fixations (trial_id, onset_ms, duration_ms, x_screen_px, y_screen_px, "
                "n_samples) VALUES (?, ?, ?, ?, ?, ?)",
                (_fixation_row(trial_id, fixation) for fixation in fixations),
            )
            if frames is not None:
                conn.execute(_FRAMES_INSERT, (trial_id, *_frames_row(frames)))
            return trial_id

    def flag_trial(self, session_id: int, position: int, *, reason: str = "marked bad") -> None:
        """Mark the stored trial at ``position`` as bad: it is kept, with the flag and the reason.

        The flag lives in the session's settings under :data:`SETTING_FLAGGED_TRIALS`; flagging again
        replaces the reason. :meth:`flagged_trials` reads the flags back.

        Raises
        ------
        ValueError
            For an empty reason.
        StoreError
            For an unknown session or a position without a finished trial.
        """
        if not isinstance(reason, str) or not reason.strip():
            raise ValueError(f"reason must be a non-empty text; got {reason!r}.")
        with self._use("flag a trial") as conn, _transaction(conn):
            self._trial_key(conn, session_id, position)
            row = conn.execute("SELECT settings_json FROM sessions WHERE session_id = ?", (session_id,))
            settings = json.loads(row.fetchone()[0])
            flags = dict(settings.get(SETTING_FLAGGED_TRIALS) or {})
            flags[str(int(position))] = reason.strip()
            settings[SETTING_FLAGGED_TRIALS] = flags
            conn.execute(
                "UPDATE sessions SET settings_json = ? WHERE session_id = ?",
                (_settings_json(settings), session_id),
            )

    def flagged_trials(self, session_id: int) -> dict[int, str]:
        """The session's trials marked bad (:meth:`flag_trial`): position → reason, in position order."""
        flags = self.session(session_id).settings.get(SETTING_FLAGGED_TRIALS) or {}
        return {int(k): str(v) for k, v in sorted(flags.items(), key=lambda item: int(item[0]))}

    def _check_turn(self, conn: sqlite3.Connection, session_id: int, trial: Trial) -> None:
        order = self._stimulus_order(conn, session_id)
        expected = self._finished(conn, session_id)
        if expected >= len(order):
            raise StoreError(f"session {session_id} is complete: all {len(order)} stimuli have a trial.")
        if trial.position != expected:
            raise StoreError(
                f"trial for position {trial.position} but session {session_id} continues at position "
                f"{expected} (stimulus {order[expected]!r}). Record trials in order; resume_point() "
                "tells the next position."
            )
        if trial.stimulus_id != order[expected]:
            raise StoreError(
                f"trial shows stimulus {trial.stimulus_id!r} at position {expected}, but the session's "
                f"order has {order[expected]!r} there."
            )

    def record_validation(self, session_id: int, result: ValidationResult) -> int:
        """Store a tracker validation (per target and mean accuracy/precision); return its id."""
        if not isinstance(result, ValidationResult):
            raise TypeError(f"result must be a ValidationResult; got {type(result).__name__}.")
        with self._use("record a validation") as conn, _transaction(conn):
            self._require(conn, "sessions", "session_id", session_id)
            cursor = conn.execute(
                "INSERT INTO validations (session_id, t_ms, mean_accuracy_deg, mean_precision_deg) "
                "VALUES (?, ?, ?, ?)",
                (session_id, result.t_ms, result.mean_accuracy_deg, result.mean_precision_deg),
            )
            validation_id = int(cursor.lastrowid or 0)
            conn.executemany(
                "INSERT INTO validation_points (validation_id, point_index, target_x_screen_px, "
                "target_y_screen_px, accuracy_deg, precision_deg) VALUES (?, ?, ?, ?, ?, ?)",
                [(validation_id, k, p.target_x_screen_px, p.target_y_screen_px, p.accuracy_deg,
                  p.precision_deg) for k, p in enumerate(result.points)],
            )  # fmt: skip
            return validation_id

    # --- reading back -------------------------------------------------------------------------

    def trials(self, session_id: int) -> list[Trial]:
        """The session's finished trials in stimulus order."""
        with self._use("read trials") as conn:
            self._require(conn, "sessions", "session_id", session_id)
            rows = conn.execute(
                f"SELECT {_TRIAL_COLUMNS} FROM trials WHERE session_id = ? ORDER BY position", (session_id,)
            )
            return [_trial_from_row(row) for row in rows]

    def fixations(self, session_id: int, position: int) -> list[Fixation]:
        """The fixations stored with the trial at ``position``, in time order."""
        with self._use("read fixations") as conn:
            trial_id = self._trial_key(conn, session_id, position)[0]
            rows = conn.execute(
                "SELECT onset_ms, duration_ms, x_screen_px, y_screen_px, n_samples FROM fixations "
                "WHERE trial_id = ? ORDER BY rowid",
                (trial_id,),
            )
            return [Fixation(float(a), float(b), float(c), float(d), int(n)) for a, b, c, d, n in rows]

    def _trial_key(
        self, conn: sqlite3.Connection, session_id: int, position: int
    ) -> tuple[int, int, float, float]:
        self._require(conn, "sessions", "session_id", session_id)
        row = conn.execute(
            "SELECT trial_id, recording_id, blank_onset_ms, stimulus_offset_ms FROM trials "
            "WHERE session_id = ? AND position = ?",
            (session_id, position),
        ).fetchone()
        if row is None:
            raise StoreError(f"session {session_id} has no finished trial at position {position!r}.")
        return int(row[0]), int(row[1]), float(row[2]), float(row[3])

    def trial_frames(self, session_id: int) -> dict[int, TrialFrames]:
        """The session's trials' display-frame statistics by position (absent where none were stored)."""
        with self._use("read trial frames") as conn:
            self._require(conn, "sessions", "session_id", session_id)
            rows = conn.execute(
                f"SELECT t.position, {_FRAMES_COLUMNS} FROM trial_frames AS f "
                "JOIN trials AS t USING (trial_id) WHERE t.session_id = ? ORDER BY t.position",
                (session_id,),
            )
            return {int(row[0]): _frames_from_row(row[1:]) for row in rows}

    def samples(self, session_id: int) -> SampleArrays:
        """All raw samples of the session, recording by recording, in arrival order.

        Samples still queued in an open :class:`SampleWriter` appear after its :meth:`~SampleWriter.flush`.
        """
        with self._use("read samples") as conn:
            self._require(conn, "sessions", "session_id", session_id)
            rows = conn.execute(
                "SELECT s.t_ms, s.x_screen_px, s.y_screen_px, s.valid, s.pupil_size, s.device_t_ms, "
                "s.device_state FROM samples AS s "
                "JOIN recordings AS r USING (recording_id) WHERE r.session_id = ? ORDER BY s.rowid",
                (session_id,),
            ).fetchall()
        return _sample_arrays(rows)

    def trial_samples(self, session_id: int, position: int) -> SampleArrays:
        """The raw samples from the trial's first blank screen to the stimulus offset (RBDM §5.3.1)."""
        with self._use("read samples") as conn:
            _, recording_id, start_ms, stop_ms = self._trial_key(conn, session_id, position)
            rows = conn.execute(
                f"SELECT {_SAMPLE_COLUMNS} FROM samples "
                "WHERE recording_id = ? AND t_ms BETWEEN ? AND ? ORDER BY t_ms",
                (recording_id, start_ms, stop_ms),
            ).fetchall()
        return _sample_arrays(rows)

    def validations(self, session_id: int) -> list[ValidationResult]:
        """The session's validation results in the order they were stored."""
        with self._use("read validations") as conn:
            self._require(conn, "sessions", "session_id", session_id)
            heads = conn.execute(
                "SELECT validation_id, t_ms FROM validations WHERE session_id = ? ORDER BY validation_id",
                (session_id,),
            ).fetchall()
            return [
                ValidationResult(float(t_ms), self._validation_points(conn, int(vid))) for vid, t_ms in heads
            ]

    @staticmethod
    def _validation_points(conn: sqlite3.Connection, validation_id: int) -> tuple[ValidationPoint, ...]:
        rows = conn.execute(
            "SELECT target_x_screen_px, target_y_screen_px, accuracy_deg, precision_deg "
            "FROM validation_points WHERE validation_id = ? ORDER BY point_index",
            (validation_id,),
        )
        return tuple(ValidationPoint(float(x), float(y), float(a), float(p)) for x, y, a, p in rows)

    # --- export and import --------------------------------------------------------------------

    def export_csv(self, directory: str | PathLike[str], *, session_id: int | None = None) -> list[Path]:
        """Write one CSV file per table (plus ``meta.csv``) into ``directory``; return the paths.

        Parameters
        ----------
        directory : str or PathLike
            Created if missing; must not already hold an export.
        session_id : int, optional
            Export only this session (with its participant); by default the whole study.

        Raises
        ------
        StoreError
            When the folder already holds export files or the session does not exist.
        """
        out = Path(directory)
        targets = [out / f"{name}.csv" for name in (*_TABLES, "meta")]
        clash = [p.name for p in targets if p.exists()]
        if clash:
            raise StoreError(f"{out} already holds an export ({', '.join(clash)}); choose an empty folder.")
        out.mkdir(parents=True, exist_ok=True)
        try:
            with self._use("export") as conn, _transaction(conn, "BEGIN DEFERRED"):
                if session_id is not None:
                    self._require(conn, "sessions", "session_id", session_id)
                for table, path in zip(_TABLES, targets, strict=False):
                    _export_table(conn, table, path, session_id)
                _write_meta(targets[-1], session_id)
        except BaseException:
            for path in targets:
                path.unlink(missing_ok=True)
            raise
        return targets

    def import_csv(self, directory: str | PathLike[str]) -> None:
        """Read an export of :meth:`export_csv` back into this store, which must be empty.

        All rows are inserted in one transaction: on any error nothing is imported.

        Raises
        ------
        StoreError
            When files are missing, the export's schema version differs, the store already holds
            participants, or a row does not fit the schema (the message names file and line).
        """
        folder = Path(directory)
        _check_meta(folder / "meta.csv")
        missing = [f"{name}.csv" for name in _TABLES if not (folder / f"{name}.csv").is_file()]
        if missing:
            raise StoreError(f"{folder} lacks {', '.join(missing)}; it is not a complete export.")
        with self._use("import") as conn, _transaction(conn):
            if conn.execute("SELECT count(*) FROM participants").fetchone()[0]:
                raise StoreError(
                    f"{self.path} already holds participants; import into a new, empty store instead."
                )
            for table in _TABLES:
                _import_table(conn, table, folder / f"{table}.csv")


def _settings_json(settings: Mapping[str, Any]) -> str:
    if not isinstance(settings, Mapping):
        raise TypeError(f"settings must be a mapping; got {type(settings).__name__}.")
    try:
        return json.dumps(dict(settings), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"settings must be JSON-serialisable (str keys, finite numbers): {err}.") from err


def _check_session_args(
    geometry: ScreenGeometry, tracker: str, recogniser: str, stimulus_order: Sequence[str]
) -> list[str]:
    if not isinstance(geometry, ScreenGeometry):
        raise TypeError(f"geometry must be a ScreenGeometry; got {type(geometry).__name__}.")
    for name, value in (("tracker", tracker), ("recogniser", recogniser)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty name; got {value!r}.")
    if isinstance(stimulus_order, str):
        raise TypeError("stimulus_order must be a sequence of stimulus ids, not one string.")
    order = list(stimulus_order)
    if not order or not all(isinstance(s, str) and s for s in order):
        raise ValueError(f"stimulus_order must be a non-empty list of non-empty ids; got {order!r}.")
    return order


def _fixation_row(trial_id: int, fixation: Fixation) -> tuple[int, float, float, float, float, int]:
    if not isinstance(fixation, Fixation):
        raise TypeError(f"fixations must be Fixation records; got {type(fixation).__name__}.")
    f = fixation
    return (trial_id, f.onset_ms, f.duration_ms, f.x_screen_px, f.y_screen_px, f.n_samples)


def _frames_row(f: TrialFrames) -> tuple[float, int, int, int, int, int, int, float]:
    return (f.refresh_hz, int(f.frame_counted), f.blank_frames, f.cross_frames, f.second_blank_frames,
            f.n_frames, f.dropped_frames, f.max_frame_interval_ms)  # fmt: skip


def _frames_from_row(row: Sequence[Any]) -> TrialFrames:
    return TrialFrames(
        refresh_hz=float(row[0]),
        frame_counted=bool(row[1]),
        blank_frames=int(row[2]),
        cross_frames=int(row[3]),
        second_blank_frames=int(row[4]),
        n_frames=int(row[5]),
        dropped_frames=int(row[6]),
        max_frame_interval_ms=float(row[7]),
    )


def _trial_from_row(row: Sequence[Any]) -> Trial:
    return Trial(
        position=int(row[0]),
        stimulus_id=str(row[1]),
        phases=PhaseOnsets(*(float(v) for v in row[2:7])),
        label=str(row[7]),
        label_source=str(row[8]),
        recognised_text=row[9],
        confidence=None if row[10] is None else float(row[10]),
        response_time_ms=None if row[11] is None else float(row[11]),
    )


def _sample_arrays(rows: list[tuple[Any, ...]]) -> SampleArrays:
    table = np.array(rows, dtype=np.float64).reshape(len(rows), 7)  # NULL → NaN
    return SampleArrays(
        t_ms=table[:, 0].copy(),
        xy_screen_px=table[:, 1:3].copy(),
        valid=table[:, 3] == 1.0,
        pupil_size=table[:, 4].copy(),
        device_t_ms=table[:, 5].copy(),
        device_state=table[:, 6].copy(),
    )


def _export_table(conn: sqlite3.Connection, table: str, path: Path, session_id: int | None) -> None:
    where = "" if session_id is None else f" WHERE {_SESSION_ROWS[table]}"
    cursor = conn.execute(f"SELECT * FROM {table}{where} ORDER BY {_TABLES[table]}", {"sid": session_id})
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([d[0] for d in cursor.description])
        while rows := cursor.fetchmany(10_000):
            writer.writerows(rows)


def _write_meta(path: Path, session_id: int | None) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerows(
            [
                ("key", "value"),
                ("format", _FORMAT),
                ("schema_version", SCHEMA_VERSION),
                ("exported_utc", _utc_now()),
                ("session_id", "" if session_id is None else session_id),
            ]
        )


def _check_meta(path: Path) -> None:
    try:
        with path.open(newline="", encoding="utf-8") as file:
            meta = {row[0]: row[1] for row in csv.reader(file) if len(row) == 2}
    except OSError as err:
        raise StoreError(
            f"cannot read {path}: {err}. Point import_csv at a folder made by export_csv."
        ) from err
    if meta.get("format") != _FORMAT:
        raise StoreError(f"{path} does not describe an RBDM Studio export.")
    readable = [str(v) for v in range(_OLDEST_IMPORT_VERSION, SCHEMA_VERSION + 1)]
    if meta.get("schema_version") not in readable:
        raise StoreError(
            f"{path} has schema version {meta.get('schema_version')!r}; this RBDM Studio imports versions "
            f"{', '.join(readable)}. Open the export with the RBDM Studio version that wrote it."
        )


def _import_table(conn: sqlite3.Connection, table: str, path: Path) -> None:
    info = conn.execute(f"PRAGMA table_info({table})").fetchall()
    columns = [str(row[1]) for row in info]
    parsers = [_PARSERS[str(row[2])] for row in info]
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file)
        header = next(reader, [])
        older = columns[: len(columns) - len(_ADDED_COLUMNS.get(table, ()))]
        if header == older != columns:  # an older version's export: the added columns stay NULL
            columns, parsers = older, parsers[: len(older)]
        elif header != columns:
            raise StoreError(f"{path} has columns {header!r}; expected {columns!r}.")
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        while batch := [(reader.line_num, row) for row in itertools.islice(reader, 10_000)]:
            rows = [_parse_row(path, line, row, parsers) for line, row in batch]
            conn.execute("SAVEPOINT batch")
            try:
                conn.executemany(insert, rows)
            except sqlite3.Error:
                conn.execute("ROLLBACK TO batch")
                _insert_one_by_one(conn, insert, path, batch, rows)
            conn.execute("RELEASE batch")


def _insert_one_by_one(
    conn: sqlite3.Connection,
    insert: str,
    path: Path,
    batch: list[tuple[int, list[str]]],
    rows: list[tuple[Any, ...]],
) -> None:
    """Insert a batch row by row, so that a failure names the line that caused it."""
    for (line, _), row in zip(batch, rows, strict=True):
        try:
            conn.execute(insert, row)
        except sqlite3.Error as err:
            raise StoreError(f"cannot import line {line} of {path}: {err}.") from err


def _parse_row(path: Path, line: int, row: list[str], parsers: list[Any]) -> tuple[Any, ...]:
    try:
        if len(row) != len(parsers):
            raise ValueError(f"expected {len(parsers)} fields, got {len(row)}")
        return tuple(None if value == "" else parse(value) for value, parse in zip(row, parsers, strict=True))
    except ValueError as err:
        raise StoreError(f"cannot import line {line} of {path}: {err}.") from err


_PARSERS: dict[str, Any] = {"INTEGER": int, "REAL": float, "TEXT": str}


class SampleWriter:
    """Writes a recording's raw samples from a background thread, in batches.

    :meth:`add` only appends to an in-memory queue, so the driver's thread never waits for the
    disk; every ``batch_interval_s`` the writer thread commits what has queued in one
    transaction. Get one from :meth:`SessionStore.sample_writer`; stop the driver before closing.

    Samples are dropped, and counted in :attr:`dropped`, only when ``max_pending`` samples are
    already waiting or the writer thread has failed; :meth:`close` then warns with a
    :class:`~tracking.errors.TrackingWarning`, or raises :class:`StoreError` when writing failed.
    """

    def __init__(
        self, store: SessionStore, recording_id: int, *, batch_interval_s: float, max_pending: int
    ) -> None:
        if not batch_interval_s > 0:
            raise ValueError(f"batch_interval_s must be > 0; got {batch_interval_s!r}.")
        if isinstance(max_pending, bool) or not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an int >= 1; got {max_pending!r}.")
        self.recording_id = recording_id
        self._store = store
        self._interval_s = batch_interval_s
        self._max_pending = max_pending
        self._pending: deque[GazeSample] = deque()
        self._accepted = self._written = self._dropped = 0
        self._error: BaseException | None = None
        self._closed = self._stopping = False
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._conn = _connect(store.path)
        try:
            _configure(self._conn, store.path, synchronous="NORMAL")
        except BaseException:
            self._conn.close()
            raise
        self._thread = threading.Thread(target=self._run, name=f"sample-writer-{recording_id}", daemon=True)
        self._thread.start()

    @property
    def written(self) -> int:
        """Samples committed to the store so far."""
        return self._written

    @property
    def dropped(self) -> int:
        """Samples lost: queue full, or the writer thread failed."""
        return self._dropped

    def add(self, sample: GazeSample) -> None:
        """Queue one sample for writing; never blocks (safe to call from a driver's callback).

        Raises
        ------
        TypeError
            For anything but a :class:`GazeSample`.
        StoreError
            After :meth:`close`.
        """
        if not isinstance(sample, GazeSample):
            raise TypeError(f"add() takes a GazeSample; got {type(sample).__name__}.")
        if self._closed:
            raise StoreError("this sample writer is closed; stop the driver before closing the writer.")
        if self._error is not None or len(self._pending) >= self._max_pending:
            with self._progress:
                self._dropped += 1
            return
        self._pending.append(sample)
        self._accepted += 1

    def flush(self) -> None:
        """Block until every sample added before this call is committed.

        Raises
        ------
        StoreError
            When the writer thread failed; the message says why.
        """
        target = self._accepted
        self._wake.set()
        with self._progress:
            self._progress.wait_for(lambda: self._written >= target or not self._thread.is_alive())
        self._raise_if_failed()

    def close(self) -> None:
        """Write what is queued, stop the thread; warn if samples were dropped, raise if writing failed."""
        if self._closed:
            return
        self._closed = self._stopping = True
        self._wake.set()
        self._thread.join()
        with self._progress:
            self._dropped += len(self._pending)  # added while closing: the driver was still running
            self._pending.clear()
        if self in self._store._writers:
            self._store._writers.remove(self)
        self._raise_if_failed()
        if self._dropped:
            warnings.warn(
                f"{self._dropped} gaze samples were dropped because the store could not keep up "
                f"({self._written} written). Raise max_pending or record to a faster disk.",
                TrackingWarning,
                stacklevel=2,
            )

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise StoreError(
                f"writing gaze samples to {self._store.path} failed: {self._error}; {self._dropped} samples "
                "were lost. Check the disk, then resume the session."
            ) from self._error

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self._interval_s)
                self._wake.clear()
                stopping = self._stopping
                self._write_pending()
                if stopping and not self._pending:
                    break
        except sqlite3.Error as err:
            self._error = err
        finally:
            self._conn.close()
            with self._progress:
                self._progress.notify_all()

    def _write_pending(self) -> None:
        pending, rid = self._pending, self.recording_id
        while pending:
            batch = [pending.popleft() for _ in range(min(len(pending), 50_000))]
            rows = [
                (
                    rid,
                    s.t_ms,
                    s.x_screen_px,
                    s.y_screen_px,
                    int(s.valid),
                    s.pupil_size,
                    s.device_t_ms,
                    s.device_state,
                )
                for s in batch
            ]
            try:
                with _transaction(self._conn):
                    self._conn.executemany(_SAMPLE_INSERT, rows)
            except sqlite3.Error:
                with self._progress:
                    self._dropped += len(batch) + len(pending)
                    pending.clear()
                raise
            with self._progress:
                self._written += len(batch)
                self._progress.notify_all()
