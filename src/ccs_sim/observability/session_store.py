"""The SQLite store of session records: schema, one exclusive owner per database file (``DatabaseLock``),
clear refusals for a database that cannot be used, and ``SessionStore`` (one connection, one short transaction
per write). The guarantees, durability and threading rules are in ``records.py``'s docstring; the recorder that
feeds this store from the controller and its worker-thread wrapper are there too."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ccs_sim.startup_errors import StartupRefused
from evse_model.session import EndReason, Phase, SessionSummary

log = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE_FILENAME = "sessions.db"
SCHEMA_VERSION = 1
#: Simulated seconds between checkpoints of a running session (the most charging a crash can lose).
DEFAULT_CHECKPOINT_INTERVAL_S = 0.5
#: The EV fields worth keeping (what is known of the car); the rest of the BMS view is live data.
EV_FIELDS = ("evcc_id", "present_soc", "protocol", "total_battery_capacity")

#: Beside the database: ``sessions.db`` -> ``sessions.db.lock``, flock()ed by the owning process.
LOCK_SUFFIX = ".lock"
#: What to do when the data directory itself is the problem (both entry points take these).
_CHOOSE_ANOTHER = "or choose another data directory (--data-dir / CCS_SIM_DATA_DIR, or CCS_SIM_RECORDS_DB)"

STATUS_RUNNING = "running"
STATUS_ENDED = "ended"
STATUS_INTERRUPTED = "interrupted"
INTERRUPTED_ERROR = "INTERRUPTED"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id      TEXT NOT NULL UNIQUE,
    source          TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('running', 'ended', 'interrupted')),
    started_at      TEXT NOT NULL,
    ended_at        TEXT,
    checkpoint_at   TEXT,
    ended_phase     TEXT,
    end_reason      TEXT,
    error           TEXT,
    energy_Wh       REAL NOT NULL DEFAULT 0,
    avg_voltage     REAL NOT NULL DEFAULT 0,
    avg_current     REAL NOT NULL DEFAULT 0,
    duration_s      REAL NOT NULL DEFAULT 0,
    charging_time_s REAL NOT NULL DEFAULT 0,
    params          TEXT NOT NULL DEFAULT '{}',
    ev              TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS sessions_status ON sessions (status);
"""

#: Column order of a record (CSV export order).
RECORD_FIELDS = ("session_id", "status", "source", "started_at", "ended_at", "checkpoint_at", "ended_phase",
                 "end_reason", "error", "energy_Wh", "avg_voltage", "avg_current", "duration_s", "charging_time_s",
                 "params", "ev")
_JSON_FIELDS = ("params", "ev")


@dataclass(frozen=True)
class Checkpoint:
    """A running session's counts so far."""

    energy_Wh: float
    avg_voltage: float
    avg_current: float
    duration_s: float
    charging_time_s: float
    at: str
    ev: dict[str, Any]


def _row_to_record(row: sqlite3.Row) -> dict[str, Any]:
    record = {name: row[name] for name in RECORD_FIELDS}
    for name in _JSON_FIELDS:
        try:
            record[name] = json.loads(record[name] or "{}")
        except ValueError:
            record[name] = {}
    return record


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, default=str, sort_keys=True)


class RecordsUnavailable(StartupRefused):
    """The session database cannot be used; ``str()`` is one line: which file, why, what to do."""


class DatabaseInUse(RecordsUnavailable):
    """Another live process owns the database (holds its lock)."""

    def __init__(self, path: Path, owner_pid: int | None) -> None:
        self.path = path
        self.owner_pid = owner_pid
        owner = f"PID {owner_pid}" if owner_pid is not None else "PID unknown"
        super().__init__(f"session records database {path} is in use by another process ({owner}): one server or "
                         f"launcher per database; stop that process {_CHOOSE_ANOTHER}")


class DatabaseLock:
    """An exclusive, non-blocking ``flock`` on ``<database>.lock`` for as long as it is held.

    flock belongs to the open file description: the OS releases it when the process ends in any way, and
    a second open of the same file (another process, or this one) cannot take it meanwhile. The holder's
    PID is written into the file so that the refusal can name it (the lock, not the file, is the truth: a
    stale PID left by a killed process is simply overwritten by the next owner)."""

    def __init__(self, database: Path) -> None:
        self.database = _shown(database)
        self.path = self.database.with_name(database.name + LOCK_SUFFIX)
        self._fd: int | None = None

    def acquire(self) -> DatabaseLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise RecordsUnavailable(_os_problem(self.database, f"cannot create its lock file {self.path}", exc)) \
                from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            owner = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DatabaseInUse(self.database, owner) from None
            raise RecordsUnavailable(_os_problem(self.database, f"cannot lock {self.path}", exc)) from exc
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the PID is a courtesy for the refusal message; the lock is held either way
        self._fd = fd
        return self

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor drops the flock


def _shown(path: Path) -> Path:
    """``path`` as the messages name it: absolute (the user may not know the process's working directory)."""
    return Path(os.path.abspath(path))


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def _os_problem(database: Path, what: str, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"session records database {database} cannot be written: {what} ({reason}); make its "
                f"directory writable by this user {_CHOOSE_ANOTHER}")
    return f"session records database {database}: {what} ({reason}); fix the path {_CHOOSE_ANOTHER}"


def _damaged(database: Path, reason: str) -> str:
    return (f"session records database {database} is damaged or not an SQLite database ({reason}): move it "
            f"aside (keep it for inspection, or restore a backup) and start again to begin a new one, "
            f"{_CHOOSE_ANOTHER}")


def _sqlite_problem(database: Path, exc: sqlite3.Error) -> str:
    """One line for an SQLite error met while opening ``database``."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    reason = str(exc)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return _damaged(database, reason)
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_CANTOPEN", "SQLITE_AUTH")):
        return (f"session records database {database} cannot be written ({reason}): make the file and its "
                f"directory writable by this user (the -wal and -shm files are created beside it) "
                f"{_CHOOSE_ANOTHER}")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return (f"session records database {database} is locked by another program ({reason}): close it "
                f"{_CHOOSE_ANOTHER}")
    if name.startswith("SQLITE_FULL"):
        return f"session records database {database} cannot be written ({reason}): free some disk space"
    return f"session records database {database} cannot be opened ({reason}) {_CHOOSE_ANOTHER}"


class SessionStore:
    """The SQLite file. Not thread-safe by itself: use it from one thread (``AsyncSessionStore`` does).

    Opening takes the database's lock (``DatabaseLock``) first, then proves the file is a sound database
    this process can write (``RecordsUnavailable`` otherwise, one line); ``close`` releases the lock."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        in_memory = str(path) == ":memory:"
        self._lock: DatabaseLock | None = None
        if not in_memory:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RecordsUnavailable(_os_problem(_shown(self.path), f"cannot create {_shown(self.path.parent)}",
                                                     exc)) from exc
            self._lock = DatabaseLock(self.path).acquire()
        try:
            self._db = self._open(str(path))
        except sqlite3.Error as exc:
            self._release_lock()
            raise RecordsUnavailable(_sqlite_problem(_shown(self.path), exc)) from exc
        except BaseException:
            self._release_lock()
            raise

    def _open(self, path: str) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RecordsUnavailable(
                    f"session records database {_shown(self.path)}: schema version {version} is newer than this "
                    f"program's ({SCHEMA_VERSION}); refusing to write to it: use the newer program "
                    f"{_CHOOSE_ANOTHER}")
            problems = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
            if problems != ["ok"]:
                raise RecordsUnavailable(_damaged(_shown(self.path), f"integrity check: {problems[0]}"))
            # The schema (first start) or a no-op write: either way a write transaction, so a file this
            # process cannot write is found now, not at the first session's start.
            db.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA if version < SCHEMA_VERSION else ''}\n"
                             f"PRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            db.close()
            raise
        return db

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._release_lock()

    def _transaction(self) -> sqlite3.Connection:
        return Transaction(self._db)  # type: ignore[return-value]

    # --- writes ---------------------------------------------------------------------------------------
    def insert_started(self, session_id: str, source: str, started_at: str, params: dict[str, Any],
                       ev: dict[str, Any]) -> None:
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO sessions (session_id, source, status, started_at, checkpoint_at, params, ev) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?)",
                (session_id, source, started_at, started_at, _json(params), _json(ev)))

    def checkpoint(self, session_id: str, checkpoint: Checkpoint) -> None:
        with self._transaction():
            self._db.execute(
                "UPDATE sessions SET energy_Wh=?, avg_voltage=?, avg_current=?, duration_s=?, charging_time_s=?, "
                "checkpoint_at=?, ev=? WHERE session_id=? AND status='running'",
                (checkpoint.energy_Wh, checkpoint.avg_voltage, checkpoint.avg_current, checkpoint.duration_s,
                 checkpoint.charging_time_s, checkpoint.at, _json(checkpoint.ev), session_id))

    def finish(self, summary: SessionSummary, params: dict[str, Any] | None = None) -> None:
        """The session ended: its summary is the record (inserted if its start was never written)."""
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO sessions (session_id, source, status, started_at, params) "
                "VALUES (?, ?, 'running', ?, ?)",
                (summary.session_id, summary.source, summary.started_at, _json(params or {})))
            self._db.execute(
                "UPDATE sessions SET status='ended', ended_at=?, checkpoint_at=?, ended_phase=?, end_reason=?, "
                "error=?, energy_Wh=?, avg_voltage=?, avg_current=?, duration_s=?, charging_time_s=?, ev=? "
                "WHERE session_id=?",
                (summary.ended_at, summary.ended_at, summary.ended_phase, summary.end_reason, summary.error,
                 summary.energy_Wh, summary.avg_voltage, summary.avg_current, summary.duration_s,
                 summary.charging_time_s, _json(summary.ev), summary.session_id))

    def mark_interrupted(self, session_id: str | None = None) -> list[str]:
        """Close ``running`` rows (all, or one) as interrupted with their last checkpoint; their ids."""
        with self._transaction():
            if session_id is None:
                rows = self._db.execute("SELECT session_id FROM sessions WHERE status='running'").fetchall()
            else:
                rows = self._db.execute("SELECT session_id FROM sessions WHERE status='running' AND session_id=?",
                                        (session_id,)).fetchall()
            ids = [row[0] for row in rows]
            self._db.executemany(
                "UPDATE sessions SET status='interrupted', ended_at=checkpoint_at, ended_phase=?, end_reason=?, "
                "error=? WHERE session_id=?",
                [(Phase.ABORTED.value, EndReason.INTERRUPTED.value, INTERRUPTED_ERROR, sid) for sid in ids])
        return ids

    # --- reads ----------------------------------------------------------------------------------------
    def get(self, session_id: str) -> dict[str, Any] | None:
        row = self._db.execute(f"SELECT {', '.join(RECORD_FIELDS)} FROM sessions WHERE session_id=?",
                               (session_id,)).fetchone()
        return _row_to_record(row) if row is not None else None

    def page(self, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Newest first; also the total number of records."""
        rows = self._db.execute(f"SELECT {', '.join(RECORD_FIELDS)} FROM sessions ORDER BY seq DESC "
                                "LIMIT ? OFFSET ?", (limit, offset)).fetchall()
        total = self._db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        return [_row_to_record(row) for row in rows], total

    def count_by_status(self) -> dict[str, int]:
        return {row[0]: row[1] for row in self._db.execute("SELECT status, COUNT(*) FROM sessions GROUP BY status")}

    def iter_all(self, batch: int = 500) -> Iterator[list[dict[str, Any]]]:
        """Every record, newest first, in batches (keyset pagination: stable while rows are added)."""
        last_seq: int | None = None
        while True:
            if last_seq is None:
                rows = self._db.execute(f"SELECT seq, {', '.join(RECORD_FIELDS)} FROM sessions "
                                        "ORDER BY seq DESC LIMIT ?", (batch,)).fetchall()
            else:
                rows = self._db.execute(f"SELECT seq, {', '.join(RECORD_FIELDS)} FROM sessions WHERE seq < ? "
                                        "ORDER BY seq DESC LIMIT ?", (last_seq, batch)).fetchall()
            if not rows:
                return
            last_seq = rows[-1]["seq"]
            yield [_row_to_record(row) for row in rows]


class Transaction:
    """``with Transaction(db):`` BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on an autocommit connection
    (the session records' and the OCPP queue's)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: type | None, *_: Any) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
