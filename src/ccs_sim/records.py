"""Durable session records: a SQLite store and the recorder that feeds it from the controller.

Guarantees (README "Session records"):

- A row is written when a session starts, checkpointed every ``checkpoint_interval_s`` of simulated time
  while it runs (energy, averages, duration so far) and completed from the ``SessionSummary`` once the
  output is off and the meter has its final counts. A process that dies (SIGKILL, power loss) loses at
  most one checkpoint interval of charging plus the time one write takes.
- On start-up, rows still marked ``running`` belong to a process that died: they are closed as
  ``interrupted`` (``ended_phase`` ABORTED, ``end_reason`` "interrupted") with their last checkpointed
  energy, and ``ended_at`` = the time of that checkpoint.

Durability: WAL journal with ``synchronous=FULL``. In WAL mode NORMAL already survives an application
crash (a committed transaction is in the WAL file, which the OS keeps); FULL adds an fsync of the WAL at
every commit so that a *power* loss does not roll back the last commits either. A charger losing its
supply is a realistic event and these are billing records; the cost is one fsync per checkpoint (one
per second of charging), negligible next to the benefit.

Threading: the connection belongs to one worker thread (a single-thread executor), so writes never block
the event loop and keep their order (start → checkpoints → end). Each write is one short transaction.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from ccs_sim.session import EndReason, Phase, SessionSummary

if TYPE_CHECKING:
    from ccs_sim.controller import ActiveSession, ChargerController

log = logging.getLogger(__name__)
T = TypeVar("T")

DATABASE_FILENAME = "sessions.db"
SCHEMA_VERSION = 1
#: Simulated seconds between checkpoints of a running session (the most charging a crash can lose).
DEFAULT_CHECKPOINT_INTERVAL_S = 0.5
#: The EV fields worth keeping (what is known of the car); the rest of the BMS view is live data.
EV_FIELDS = ("evcc_id", "present_soc", "protocol", "total_battery_capacity")

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


class SessionStore:
    """The SQLite file. Not thread-safe by itself: use it from one thread (``AsyncSessionStore`` does)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path}: schema version {version} is newer than this program's "
                               f"({SCHEMA_VERSION}); refusing to write to it")
        if version < SCHEMA_VERSION:
            # executescript commits first, so the script carries its own transaction
            self._db.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nPRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;")

    def close(self) -> None:
        self._db.close()

    def _transaction(self) -> sqlite3.Connection:
        return _Transaction(self._db)  # type: ignore[return-value]

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


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: type | None, *_: Any) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


class AsyncSessionStore:
    """A ``SessionStore`` confined to one worker thread; every call returns an awaitable, in call order."""

    def __init__(self, path: Path | str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="session-records")
        self._store: SessionStore | None = None
        self.path = Path(path)

    async def open(self) -> "AsyncSessionStore":
        self._store = await self._run(SessionStore, self.path)
        return self

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    def submit(self, method: str, *args: Any) -> "asyncio.Future[Any]":
        """Queue a store call without waiting for it (used from synchronous listeners)."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self._call, method, args)

    def _call(self, method: str, args: tuple[Any, ...]) -> Any:
        if self._store is None:
            raise RuntimeError("session store is not open")
        return getattr(self._store, method)(*args)

    async def call(self, method: str, *args: Any) -> Any:
        return await self._run(self._call, method, args)

    async def call_iterator_next(self, iterator: Iterator[T]) -> T | None:
        """The next item of an iterator the store returned (run in the store's thread), or None."""
        return await self._run(next, iterator, None)

    async def flush(self) -> None:
        """Wait until every call queued so far has finished."""
        await self._run(lambda: None)

    async def close(self) -> None:
        if self._store is not None:
            store, self._store = self._store, None
            await self._run(store.close)
        self._executor.shutdown(wait=True)


class SessionRecorder:
    """Feeds the store from a controller's listeners: start → checkpoints (tick listener) → end."""

    def __init__(self, store: AsyncSessionStore, controller: "ChargerController",
                 checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S) -> None:
        self.store = store
        self.controller = controller
        self.checkpoint_interval_s = checkpoint_interval_s
        self.write_errors = 0
        self.writes = 0
        self.recovered_interrupted: list[str] = []
        self._open: "ActiveSession | None" = None
        self._durable_start: str | None = None
        self._last_checkpoint_s = 0.0
        self._checkpoint_in_flight: asyncio.Future[Any] | None = None

    async def recover(self) -> list[str]:
        """Close the rows a dead process left ``running`` (call before the controller starts)."""
        self.recovered_interrupted = await self.store.call("mark_interrupted")
        for session_id in self.recovered_interrupted:
            log.warning("session %s was interrupted (the process ended while it ran); recorded with its last "
                        "checkpoint", session_id)
        return self.recovered_interrupted

    def attach(self) -> None:
        self.controller.session_start_listeners.append(self.on_session_start)
        self.controller.tick_listeners.append(self.on_tick)
        self.controller.session_end_listeners.append(self.on_session_end)

    def detach(self) -> None:
        for listeners, listener in ((self.controller.session_start_listeners, self.on_session_start),
                                    (self.controller.tick_listeners, self.on_tick),
                                    (self.controller.session_end_listeners, self.on_session_end)):
            if listener in listeners:
                listeners.remove(listener)

    # --- listeners --------------------------------------------------------------------------------------
    async def record_start(self, session: "ActiveSession") -> None:
        """Make the session's row durable now. The API awaits this before it acknowledges ``/start_session``:
        a session a client was told about must survive a crash one instant later (the start listener
        runs in the session's task, after the answer may already be on the wire)."""
        if self._durable_start == session.session_id:
            return
        await self._write("insert_started", session.session_id, session.source, session.started_at.isoformat(),
                          asdict(session.params), dict(session.ev_info))
        self._durable_start = session.session_id

    async def on_session_start(self, session: "ActiveSession") -> None:
        self._open = session
        self._last_checkpoint_s = self.controller.clock.now()
        await self.record_start(session)

    def on_tick(self) -> None:
        session = self._open
        if session is None:
            return
        now_s = self.controller.clock.now()
        if now_s - self._last_checkpoint_s < self.checkpoint_interval_s:
            return
        if self._checkpoint_in_flight is not None and not self._checkpoint_in_flight.done():
            return  # the disk is slower than the interval: coalesce, retry next tick
        self._last_checkpoint_s = now_s
        future = self.store.submit("checkpoint", session.session_id, self.checkpoint_now(session))
        future.add_done_callback(self._write_done)
        self._checkpoint_in_flight = future

    async def on_session_end(self, summary: SessionSummary) -> None:
        session = self._open
        params = asdict(session.params) if session is not None and session.session_id == summary.session_id else None
        if session is not None and session.session_id == summary.session_id:
            self._open = None
        await self._write("finish", summary, params)

    async def close(self) -> None:
        """Graceful stop: a session still open gets a final checkpoint and is closed as interrupted."""
        session, self._open = self._open, None
        self.detach()
        if session is not None:
            await self._write("checkpoint", session.session_id, self.checkpoint_now(session))
            await self._write("mark_interrupted", session.session_id)
        await self.store.flush()

    # --- helpers ------------------------------------------------------------------------------------------
    def checkpoint_now(self, session: "ActiveSession") -> Checkpoint:
        controller = self.controller
        meter = controller.meter_reading
        now_s = controller.clock.now()
        charging_s = 0.0 if session.charging_started_at_s is None else now_s - session.charging_started_at_s
        ev = dict(session.ev_info)
        try:
            ev.update({key: value for key, value in controller.bms_view().items() if key in EV_FIELDS})
        except Exception:  # the EV view is best effort; the energy must still be written
            log.exception("could not read the EV view for a checkpoint")
        return Checkpoint(energy_Wh=round(meter.energy_Wh, 6), avg_voltage=round(meter.avg_voltage_V, 6),
                          avg_current=round(meter.avg_current_A, 6),
                          duration_s=round(now_s - session.started_at_s, 6), charging_time_s=round(charging_s, 6),
                          at=controller.clock.utcnow().isoformat(), ev=ev)

    async def _write(self, method: str, *args: Any) -> None:
        try:
            await self.store.call(method, *args)
            self.writes += 1
        except Exception:
            self.write_errors += 1
            log.exception("session record write (%s) failed", method)

    def _write_done(self, future: "asyncio.Future[Any]") -> None:
        if future.cancelled():
            return
        if future.exception() is not None:
            self.write_errors += 1
            log.error("session checkpoint failed: %r", future.exception())
        else:
            self.writes += 1


def default_database_path(data_dir: Path) -> Path:
    return Path(data_dir) / DATABASE_FILENAME
