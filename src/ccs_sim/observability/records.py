"""Durable session records: a SQLite store and the recorder that feeds it from the controller.

Guarantees (README "Session records"):

- A row is written when a session starts, checkpointed every ``checkpoint_interval_s`` of simulated time
  while it runs (energy, averages, duration so far) and completed from the ``SessionSummary`` once the
  output is off and the meter has its final counts. A process that dies (SIGKILL, power loss) loses at
  most one checkpoint interval of charging plus the time one write takes.
- One process owns a database while it runs: ``SessionStore`` holds an exclusive ``flock`` on
  ``<database>.lock`` (beside it; the owner's PID written in it) from open to close. The OS drops the lock
  when the process ends, however it ends (SIGKILL, power loss), so ownership needs no clean-up. A second
  server or launcher on the same database refuses to start (``DatabaseInUse``) before it reads or writes
  anything: nothing a live process wrote is rewritten by another.
- On start-up, rows still marked ``running`` belong to a process that died (a live one would hold the
  lock): they are closed as ``interrupted`` (``ended_phase`` ABORTED, ``end_reason`` "interrupted") with
  their last checkpointed energy, and ``ended_at`` = the time of that checkpoint.
- A database that cannot be used (corrupt, not SQLite, read-only, in a directory that cannot be written,
  a newer schema) is refused at open with ``RecordsUnavailable``: one line naming the file, the reason and
  what to do. Writability is proven at open by a write transaction: a charger never starts on a database
  it could not record a session in.

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
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ccs_sim.observability.session_store import (
    DATABASE_FILENAME,
    DEFAULT_CHECKPOINT_INTERVAL_S,
    EV_FIELDS,
    Checkpoint,
    SessionStore,
)
from evse_model.session import SessionSummary

if TYPE_CHECKING:
    from ccs_sim.controller import ActiveSession, ChargerController

log = logging.getLogger(__name__)

T = TypeVar("T")


class AsyncSessionStore:
    """A ``SessionStore`` confined to one worker thread; every call returns an awaitable, in call order."""

    def __init__(self, path: Path | str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="session-records")
        self._store: SessionStore | None = None
        self.path = Path(path)

    async def open(self) -> AsyncSessionStore:
        """Open (and lock) the database; ``RecordsUnavailable`` if it cannot be used (the worker is stopped)."""
        try:
            self._store = await self._run(SessionStore, self.path)
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        return self

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, function, *args)

    def submit(self, method: str, *args: Any) -> asyncio.Future[Any]:
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

    def __init__(self, store: AsyncSessionStore, controller: ChargerController,
                 checkpoint_interval_s: float = DEFAULT_CHECKPOINT_INTERVAL_S) -> None:
        self.store = store
        self.controller = controller
        self.checkpoint_interval_s = checkpoint_interval_s
        self.write_errors = 0
        self.writes = 0
        self.recovered_interrupted: list[str] = []
        self._open: ActiveSession | None = None
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
    async def record_start(self, session: ActiveSession) -> None:
        """Make the session's row durable now. The API awaits this before it acknowledges ``/start_session``:
        a session a client was told about must survive a crash one instant later (the start listener
        runs in the session's task, after the answer may already be on the wire)."""
        if self._durable_start == session.session_id:
            return
        await self._write("insert_started", session.session_id, session.source, session.started_at.isoformat(),
                          asdict(session.params), dict(session.ev_info))
        self._durable_start = session.session_id

    async def on_session_start(self, session: ActiveSession) -> None:
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
    def checkpoint_now(self, session: ActiveSession) -> Checkpoint:
        controller = self.controller
        meter = controller.session_meter_reading(session)  # zero for a session the meter never counted for
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

    def _write_done(self, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            return
        if future.exception() is not None:
            self.write_errors += 1
            log.error("session checkpoint failed: %r", future.exception())
        else:
            self.writes += 1


def default_database_path(data_dir: Path) -> Path:
    return Path(data_dir) / DATABASE_FILENAME
