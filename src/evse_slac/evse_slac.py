"""``SlacService``: the EVSE side of ISO 15118-3 SLAC, pyslac's protocol steps driven by control-pilot states.

Use::

    service = SlacService("seccplc", "DE*ABC*E0001", load_slac_config(path), settle_time_s=0.0,
                          on_matched=start_secc)
    await service.start()              # optional: sets the first plug-in's key now, not at plug-in
    await service.on_cp_state("B")     # every CP change, "A".."F" (B/C/D start matching, A ends the plug-in)
    service.status()                   # SlacStatus(state=MATCHED, ev_mac=..., nid=..., ...)
    await service.close()

What it does differently from ``pyslac.SlacSessionController`` (see shared/reference/pyslac-notes.md §5.3):

* a new pyslac session per plug-in, so nothing (state MATCHED, EV MAC, RunID, a dead task) survives an unplug;
* a fresh NMK/NID per plug-in, set in the modem by our own CM_SET_KEY step (``modem_key``) right after the
  unplug (and at ``start()``), with a settle delay of ``settle_time_s`` instead of pyslac's fixed 10 s;
* ``max_attempts`` attempts, really (pyslac: 2 attempts, then retries forever);
* a missing CM_SLAC_PARM.REQ (``config.slac_init_timeout``) or the last failed attempt gives FAILED, and the
  next plug-in (A, then B) starts afresh (pyslac: the session stays stuck on the dead task);
* a match is reported through ``on_matched(status)``; every state change through ``on_status(status)``;
* importing pyslac no longer sets the root logger to DEBUG; its LOG_LEVEL setting is applied.

CP semantics: B, C or D while no plug-in is in progress starts one (state MATCHING until MATCHED or FAILED);
A ends it (state IDLE, everything cleared); E or F end a MATCHED or FAILED plug-in (as pyslac leaves the
network on E/F only once matched, so that the [V2G3-M06-07] E/F retry sequence can restart matching) and are
ignored while matching is in progress.

Needs root or CAP_NET_RAW on ``iface`` (pyslac's AF_PACKET socket).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from pyslac.enums import STATE_MATCHED, STATE_UNMATCHED
from pyslac.environment import Config

from evse_slac.frames import mac_to_str
from evse_slac.modem_key import DEFAULT_CNF_TIMEOUT_S, QCA_SETTLE_TIME_S, ModemKeySetter
from evse_slac.network_key import NetworkKey
from evse_slac.pyslac_loader import apply_pyslac_log_level, default_slac_config, import_pyslac_session
from evse_slac.status import SlacState, SlacStatus

logger = logging.getLogger(__name__)

CP_STATES = "ABCDEF"
DEFAULT_MAX_ATTEMPTS = 3  # ISO 15118-3 C_conn_max_match >= 3 (pyslac's intended number_of_retries)


class PyslacSession(Protocol):
    """The part of ``pyslac.session.SlacEvseSession`` this service uses."""

    state: int
    nmk: bytes
    nid: bytes
    pev_mac: bytes
    run_id: bytes
    aag: list[int]
    num_groups: int | None
    num_total_sounds: int

    async def evse_slac_parm(self) -> None: ...

    async def atten_charac_routine(self) -> None: ...


SessionFactory = Callable[[str, str, Config], PyslacSession]
KeySetter = Callable[[NetworkKey], Awaitable[bool]]
StatusCallback = Callable[[SlacStatus], Any]


def pyslac_session_factory(evse_id: str, iface: str, config: Config) -> PyslacSession:
    """A real ``SlacEvseSession`` (opens its raw socket on ``iface``)."""
    session_module = import_pyslac_session()
    return session_module.SlacEvseSession(evse_id, iface, config)


async def _skip_key(key: NetworkKey) -> bool:
    return False


class SlacService:
    """SLAC matching on one interface, one plug-in at a time.

    Args:
        iface: the interface of the EVSE's PLC modem (a veth end in simulation).
        evse_id: the EVSE ID pyslac logs with.
        config: pyslac settings (``load_slac_config(path)``); None: pyslac's defaults.
        settle_time_s: wait after CM_SET_KEY.CNF before the modem uses the new key (10 s for a QCA7000; 0 in
            simulation).
        set_key_timeout_s: how long to wait for CM_SET_KEY.CNF (then the new key is used anyway, with a warning).
        modem_set_key: False on a link without a PLC modem or its emulation: no CM_SET_KEY is sent.
        max_attempts: matching attempts per plug-in before FAILED.
        on_matched: called with the status once matched (may be a coroutine function).
        on_status: called with every new status (may be a coroutine function).
        session_factory, key_setter, now: injection points for tests.
    """

    def __init__(self, iface: str, evse_id: str, config: Config | None = None, *,
                 settle_time_s: float = QCA_SETTLE_TIME_S, set_key_timeout_s: float = DEFAULT_CNF_TIMEOUT_S,
                 modem_set_key: bool = True, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 on_matched: StatusCallback | None = None, on_status: StatusCallback | None = None,
                 session_factory: SessionFactory = pyslac_session_factory, key_setter: KeySetter | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.iface = iface
        self.evse_id = evse_id
        self.config = config if config is not None else default_slac_config()
        self.max_attempts = max_attempts
        self._on_matched = on_matched
        self._on_status = on_status
        self._session_factory = session_factory
        if key_setter is None:
            key_setter = (ModemKeySetter(iface, cnf_timeout_s=set_key_timeout_s, settle_time_s=settle_time_s)
                          if modem_set_key else _skip_key)
        self._key_setter = key_setter
        self._now = now
        self._status = SlacStatus(SlacState.IDLE, None, None, None, None, now())
        self._plugged = False
        self._generation = 0  # changes at every plug-in and unplug; stale task results are dropped
        self._match_task: asyncio.Task | None = None
        self._key_task: asyncio.Task[NetworkKey] | None = None
        self._key: NetworkKey | None = None
        apply_pyslac_log_level(self.config.log_level)

    # ----- public API -----

    def status(self) -> SlacStatus:
        """The current snapshot (immutable)."""
        return self._status

    @property
    def nmk(self) -> bytes | None:
        """The network membership key given to the EV of the current plug-in (secret: never publish it)."""
        return self._key.nmk if self._key is not None and self._status.state == SlacState.MATCHED else None

    async def start(self) -> None:
        """Set the first plug-in's key in the modem now, so the first plug-in does not wait for it. Optional."""
        self._ensure_key_task()

    async def on_cp_state(self, state: str) -> None:
        """Feed a control-pilot state: "A".."F", optionally with a suffix ("B1", "C2"); only the letter counts.

        Returns at once: matching runs in a task (its outcome arrives through status() and the callbacks);
        "A" waits only for an ongoing matching task to be cancelled."""
        letter = state[:1].upper()
        if not letter or letter not in CP_STATES:
            raise ValueError(f"not a control-pilot state: {state!r}")
        if letter == "A":
            await self._end_plugin()
        elif letter in "BCD":
            if not self._plugged:
                await self._begin_plugin()
        elif self._plugged and self._status.state in (SlacState.MATCHED, SlacState.FAILED):
            await self._end_plugin()

    async def close(self) -> None:
        """Stop matching and the key step; the service cannot be used afterwards."""
        self._plugged = False
        self._generation += 1
        for task in (self._match_task, self._key_task):
            if task is not None:
                await _cancel_until_done(task, self.iface)
        self._match_task = self._key_task = None

    # ----- plug-in life cycle -----

    async def _begin_plugin(self) -> None:
        self._plugged = True
        self._generation += 1
        await self._publish(self._generation, SlacStatus(SlacState.MATCHING, None, None, None, None, self._now()))
        self._match_task = asyncio.create_task(self._run_matching(self._generation),
                                               name=f"SLAC matching on {self.iface}")

    async def _end_plugin(self) -> None:
        self._plugged = False
        self._generation += 1
        task, self._match_task = self._match_task, None
        if task is not None:
            await _cancel_until_done(task, self.iface)
        self._key = None
        idle = SlacStatus(SlacState.IDLE, None, None, None, None, self._status.last_updated)
        if self._status != idle:
            await self._publish(self._generation, replace(idle, last_updated=self._now()))
        # ISO 15118-3 [V2G3-M09-17] / CharIN DG: a new logical network (CM_SET_KEY) after every unplug.
        self._ensure_key_task()

    def _ensure_key_task(self) -> None:
        if self._key_task is None:
            self._key_task = asyncio.create_task(self._prepare_key(), name=f"SLAC CM_SET_KEY on {self.iface}")

    async def _prepare_key(self) -> NetworkKey:
        key = NetworkKey.generate()
        confirmed = await self._key_setter(key)
        logger.debug("new NID %s on %s (modem confirmed: %s)", key.nid.hex(), self.iface, confirmed)
        return key

    async def _run_matching(self, generation: int) -> None:
        session: PyslacSession | None = None
        try:
            if self._key_task is None:
                self._ensure_key_task()
            key_task, self._key_task = self._key_task, None
            assert key_task is not None  # _ensure_key_task made it
            key = await key_task
            session = self._session_factory(self.evse_id, self.iface, self.config)
            session.nmk, session.nid = key.nmk, key.nid
            self._key = key
            for attempt in range(1, self.max_attempts + 1):
                try:
                    await session.evse_slac_parm()
                except TimeoutError:
                    await self._fail(generation, f"no CM_SLAC_PARM.REQ within {self.config.slac_init_timeout} s")
                    return
                await self._publish(generation, replace(
                    self._status, ev_mac=mac_to_str(session.pev_mac), run_id=session.run_id.hex(),
                    last_updated=self._now()))
                try:
                    await session.atten_charac_routine()
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # pyslac raises ValueError/TimeoutError/... for a failed step
                    session.state = STATE_UNMATCHED
                    logger.warning("SLAC attempt %d/%d on %s failed: %r", attempt, self.max_attempts, self.iface,
                                   error)
                    continue
                if session.state == STATE_MATCHED:
                    await self._matched(generation, session)
                    return
            await self._fail(generation, f"no match in {self.max_attempts} attempts")
        except asyncio.CancelledError:
            raise
        except Exception as error:
            logger.exception("SLAC on %s stopped by an error", self.iface)
            await self._fail(generation, repr(error))
        finally:
            sock = getattr(session, "socket", None)
            if sock is not None:
                sock.close()  # nothing reads it once matching is over

    async def _matched(self, generation: int, session: PyslacSession) -> None:
        groups = session.num_groups or len(session.aag)
        attenuation_db = (sum(session.aag[:groups]) / groups) if session.num_total_sounds and groups else None
        status = SlacStatus(SlacState.MATCHED, mac_to_str(session.pev_mac), session.nid.hex(),
                            session.run_id.hex(), attenuation_db, self._now())
        logger.info("SLAC matched on %s: EV %s, NID %s, RunID %s, %s dB", self.iface, status.ev_mac, status.nid,
                    status.run_id, attenuation_db)
        if await self._publish(generation, status) and self._on_matched is not None:
            await _call(self._on_matched, status)

    async def _fail(self, generation: int, reason: str) -> None:
        logger.warning("SLAC failed on %s: %s", self.iface, reason)
        await self._publish(generation, replace(self._status, state=SlacState.FAILED, nid=None,
                                                attenuation_db=None, last_updated=self._now()))

    async def _publish(self, generation: int, status: SlacStatus) -> bool:
        """Make ``status`` current unless it comes from an earlier plug-in; tell on_status. True if published."""
        if generation != self._generation:
            return False
        self._status = status
        if self._on_status is not None:
            await _call(self._on_status, status)
        return True


#: How long an unplug waits for the matching task to end after a cancellation before cancelling it again (s).
RECANCEL_AFTER_S = 0.05


async def _cancel_until_done(task: asyncio.Task[Any], iface: str) -> None:
    """Cancel ``task`` and wait until it has ended, cancelling again while it goes on: on Python < 3.12
    ``asyncio.wait_for`` (pyslac's ``rcv_frame``) drops a cancellation that lands as a frame arrives and carries on
    waiting for the next one (up to its own timeout, seconds) — neither an unplug nor a shutdown waits for that."""
    task.cancel()
    while not task.done():
        await asyncio.wait({task}, timeout=RECANCEL_AFTER_S)
        if not task.done():
            logger.warning("SLAC task %r on %s went on after its cancellation: cancelled again", task.get_name(),
                           iface)
            task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _call(callback: StatusCallback, status: SlacStatus) -> None:
    try:
        result = callback(status)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception("SLAC status callback %r failed", callback)
