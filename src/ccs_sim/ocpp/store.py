"""The OCPP client's durable state, in the controller's SQLite database (its own tables, its own connection).

The session records (``ccs_sim/observability/records.py`` and ``session_store.py``) own the database file and its lock; this module
opens a second connection to the same file (SQLite allows it; WAL lets a reader and a writer work at once)
and keeps its own tables, all prefixed ``ocpp_``:

- ``ocpp_message_queue``: transaction-related messages not yet acknowledged by the CSMS, in order, each with
  the OCPP-J message id it is (re)sent with (``message_id``; a column added to older databases on open);
- ``ocpp_dropped_messages``: messages given up after their last attempt (kept for inspection, never sent);
- ``ocpp_transaction_ids``: local transaction reference -> the id the CSMS gave (1.6 StartTransaction);
- ``ocpp_transactions``: the transactions this station opened (to end one a dead process left open);
- ``ocpp_meter_register``: the station's energy register (Wh), the sum of every finished transaction's energy;
- ``ocpp_availability``, ``ocpp_charging_profiles``, ``ocpp_settings``: what the CSMS set that survives a restart
  (``persisted_settings.py``: ChangeAvailability, the installed profiles but TxProfiles, changed configuration);
- ``ocpp_schema_version``: the version of these tables (``OCPP_SCHEMA_VERSION``; the database's own
  ``user_version`` is the session records').

Durability as the records: WAL journal, ``synchronous=FULL`` (a committed write survives a SIGKILL and a
power loss). The connection belongs to one worker thread (a single-thread executor): writes never block the
event loop and run in the order they were submitted.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ocpp_message_queue (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    action        TEXT NOT NULL,
    payload       TEXT NOT NULL,
    local_tx_ref  TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    enqueued_at   TEXT NOT NULL,
    message_id    TEXT
);
CREATE TABLE IF NOT EXISTS ocpp_dropped_messages (
    seq           INTEGER PRIMARY KEY,
    action        TEXT NOT NULL,
    payload       TEXT NOT NULL,
    local_tx_ref  TEXT,
    attempts      INTEGER NOT NULL,
    enqueued_at   TEXT NOT NULL,
    dropped_at    TEXT NOT NULL,
    reason        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ocpp_transaction_ids (
    local_tx_ref        TEXT PRIMARY KEY,
    csms_transaction_id TEXT NOT NULL,
    id_tag_status       TEXT
);
CREATE TABLE IF NOT EXISTS ocpp_transactions (
    local_tx_ref       TEXT PRIMARY KEY,
    session_id         TEXT NOT NULL,
    version            TEXT NOT NULL,
    id_tag             TEXT,
    started_at         TEXT NOT NULL,
    register_start_Wh  REAL NOT NULL,
    last_register_Wh   REAL NOT NULL,
    seq_no             INTEGER NOT NULL DEFAULT 0,
    status             TEXT NOT NULL CHECK (status IN ('open', 'ended'))
);
CREATE TABLE IF NOT EXISTS ocpp_meter_register (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    energy_Wh  REAL NOT NULL
);
INSERT OR IGNORE INTO ocpp_meter_register (id, energy_Wh) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS ocpp_schema_version (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL
);
"""
#: 1: the queue's tables; 2: + what the CSMS set that survives a restart (tables added, nothing changed).
OCPP_SCHEMA_VERSION = 2
_SCHEMA_2 = """
CREATE TABLE IF NOT EXISTS ocpp_availability (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    operative   INTEGER NOT NULL,
    changed_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ocpp_charging_profiles (
    profile_id    INTEGER PRIMARY KEY,
    version       TEXT NOT NULL,
    connector_id  INTEGER NOT NULL,
    purpose       TEXT NOT NULL,
    valid_to      TEXT,
    profile       TEXT NOT NULL,
    installed_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ocpp_settings (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    changed_at  TEXT NOT NULL
);
"""


class OcppSchemaTooNew(RuntimeError):
    """The database's OCPP tables were written by a newer program."""


def open_ocpp_connection(path: Path | str) -> sqlite3.Connection:
    """A connection to ``path`` with the OCPP tables created (WAL, synchronous=FULL, autocommit)."""
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10.0)
    try:
        db.row_factory = sqlite3.Row
        if str(path) != ":memory:":
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA}\nCOMMIT;")
        _add_missing_columns(db)
        row = db.execute("SELECT version FROM ocpp_schema_version WHERE id=1").fetchone()
        version = int(row[0]) if row is not None else 1
        if version > OCPP_SCHEMA_VERSION:
            raise OcppSchemaTooNew(f"OCPP tables of {path}: schema version {version} is newer than this program's "
                                   f"({OCPP_SCHEMA_VERSION})")
        db.executescript(f"BEGIN IMMEDIATE;\n{_SCHEMA_2 if version < 2 else ''}\nINSERT OR REPLACE INTO "
                         f"ocpp_schema_version (id, version) VALUES (1, {OCPP_SCHEMA_VERSION});\nCOMMIT;")
    except BaseException:
        db.close()
        raise
    return db


#: Columns later versions added: (table, column, declaration).
_ADDED_COLUMNS = (("ocpp_message_queue", "message_id", "TEXT"),)


def _add_missing_columns(db: sqlite3.Connection) -> None:
    """A database written by an older version gets the columns added since (empty in its old rows)."""
    for table, column, declaration in _ADDED_COLUMNS:
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")


class OcppDatabase:
    """The OCPP tables on one connection confined to one worker thread; every call runs there, in order."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocpp-store")
        self._db: sqlite3.Connection | None = None

    async def open(self) -> OcppDatabase:
        try:
            self._db = await self.run(open_ocpp_connection, self.path)
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        return self

    def submit(self, function: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue ``function(connection, *args)`` on the worker now (call order is run order); its future."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, self._with_connection, function, args)

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function(connection, *args)`` on the worker and wait for its result."""
        return await self.submit(function, *args)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    def _with_connection(self, function: Callable[..., T], args: tuple[Any, ...]) -> T:
        if self._db is None:
            raise RuntimeError("the OCPP database is not open")
        return function(self._db, *args)

    async def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await self.run(db.close)
        self._executor.shutdown(wait=True)
