"""SlacService's state handling with a scripted fake pyslac session and a fake key step (no sockets, no sleeps)."""

from __future__ import annotations

from slac_requirements import skip_without_pyslac

skip_without_pyslac()

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from pyslac.enums import STATE_MATCHED, STATE_MATCHING

from evse_slac.evse_slac import SlacService
from evse_slac.network_key import NetworkKey
from evse_slac.pyslac_loader import default_slac_config
from evse_slac.status import SlacState, SlacStatus

EV_MAC = bytes.fromhex("02000000e001")
WAIT_S = 2.0  # only a guard against a hung test; nothing here waits on the wall clock on success

PARM_OK, PARM_TIMEOUT = "parm-ok", "parm-timeout"
MATCH_OK, MATCH_FAIL = "match-ok", "match-fail"


class FakeSocket:
    closed = False

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeSession:
    """Stands in for pyslac's SlacEvseSession: each protocol step waits for the test's next scripted outcome."""

    script: asyncio.Queue
    state: int = 0
    nmk: bytes = b""
    nid: bytes = b""
    pev_mac: bytes = b""
    run_id: bytes = b""
    aag: list[int] = field(default_factory=lambda: [0] * 58)
    num_groups: int | None = None
    num_total_sounds: int = 0
    socket: FakeSocket = field(default_factory=FakeSocket)
    parm_calls: int = 0
    routine_calls: int = 0

    async def evse_slac_parm(self) -> None:
        self.parm_calls += 1
        if await self.script.get() == PARM_TIMEOUT:
            raise TimeoutError()
        self.pev_mac, self.run_id, self.state = EV_MAC, EV_MAC + bytes([0, self.parm_calls]), STATE_MATCHING

    async def atten_charac_routine(self) -> None:
        self.routine_calls += 1
        if await self.script.get() == MATCH_FAIL:
            raise ValueError("SLAC Match Failed")
        self.aag = [20] * 29 + [30] * 29
        self.num_groups, self.num_total_sounds, self.state = 58, 10, STATE_MATCHED


class ManualClock:
    def __init__(self) -> None:
        self.time = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        self.time += timedelta(seconds=1)
        return self.time


class Harness:
    """A SlacService wired to fakes, recording statuses, matches, sessions and keys."""

    def __init__(self, max_attempts: int = 3, key_gate: asyncio.Event | None = None) -> None:
        self.script: asyncio.Queue = asyncio.Queue()
        self.sessions: list[FakeSession] = []
        self.keys: list[NetworkKey] = []
        self.statuses: asyncio.Queue[SlacStatus] = asyncio.Queue()
        self.matches: list[SlacStatus] = []
        self.key_gate = key_gate
        self.service = SlacService("evse0", "DE*SIM*E0001", default_slac_config(), max_attempts=max_attempts,
                                   on_matched=self.matches.append, on_status=self.statuses.put_nowait,
                                   session_factory=self._new_session, key_setter=self._set_key, now=ManualClock())

    def _new_session(self, evse_id, iface, config) -> FakeSession:
        assert (evse_id, iface) == ("DE*SIM*E0001", "evse0")
        session = FakeSession(self.script)
        self.sessions.append(session)
        return session

    async def _set_key(self, key: NetworkKey) -> bool:
        if self.key_gate is not None:
            await self.key_gate.wait()
        self.keys.append(key)
        return True

    def play(self, *outcomes: str) -> None:
        for outcome in outcomes:
            self.script.put_nowait(outcome)

    async def until(self, state: SlacState) -> SlacStatus:
        async def next_matching() -> SlacStatus:
            while True:
                status = await self.statuses.get()
                if status.state == state:
                    return status
        return await asyncio.wait_for(next_matching(), WAIT_S)

    async def settle(self) -> None:
        """Let every task that can run, run (the fakes block only on the script)."""
        for _ in range(20):
            await asyncio.sleep(0)


async def test_plug_in_matches_and_reports_the_match():
    h = Harness()
    h.play(PARM_OK, MATCH_OK)
    await h.service.on_cp_state("B")
    assert h.service.status().state == SlacState.MATCHING
    matched = await h.until(SlacState.MATCHED)

    session, key = h.sessions[0], h.keys[0]
    assert (session.nmk, session.nid) == (key.nmk, key.nid)
    assert matched == h.service.status() == h.matches[0]
    assert matched.ev_mac == "02:00:00:00:E0:01"
    assert matched.nid == key.nid.hex() and matched.run_id == session.run_id.hex()
    assert matched.attenuation_db == 25.0
    assert matched.last_updated.tzinfo is timezone.utc
    assert h.service.nmk == key.nmk
    assert session.socket.closed, "pyslac's raw socket is closed once matching is over"


async def test_ev_mac_and_run_id_are_shown_while_matching():
    h = Harness()
    h.play(PARM_OK)
    await h.service.on_cp_state("B")
    status = await asyncio.wait_for(h.statuses.get(), WAIT_S)  # MATCHING, nothing known yet
    assert (status.state, status.ev_mac, status.run_id) == (SlacState.MATCHING, None, None)
    status = await asyncio.wait_for(h.statuses.get(), WAIT_S)
    assert (status.state, status.ev_mac, status.nid) == (SlacState.MATCHING, "02:00:00:00:E0:01", None)
    await h.service.close()


async def test_each_plug_in_gets_a_fresh_session_and_key_and_unplug_clears_everything():
    h = Harness()
    await h.service.on_cp_state("A")  # the launcher's first CP reading: the first key is prepared now
    nids = []
    for plug_in in range(3):
        h.play(PARM_OK, MATCH_OK)
        await h.service.on_cp_state("B2")
        nids.append((await h.until(SlacState.MATCHED)).nid)
        await h.service.on_cp_state("A")
        idle = h.service.status()
        assert (idle.state, idle.ev_mac, idle.nid, idle.run_id, idle.attenuation_db) == (
            SlacState.IDLE, None, None, None, None)
        assert h.service.nmk is None
    await h.settle()
    assert len(h.sessions) == 3 and len({id(session) for session in h.sessions}) == 3
    assert len({session.nmk for session in h.sessions}) == 3, "a new NMK for every plug-in"
    assert nids == [session.nid.hex() for session in h.sessions]
    assert len(h.keys) == 4, "CM_SET_KEY at start and after every unplug"
    assert len(h.matches) == 3


async def test_b_c_d_while_plugged_in_do_not_restart_matching():
    h = Harness()
    h.play(PARM_OK, MATCH_OK)
    await h.service.on_cp_state("B")
    await h.until(SlacState.MATCHED)
    for state in ("C", "D", "C2", "B"):
        await h.service.on_cp_state(state)
    await h.settle()
    assert len(h.sessions) == 1 and h.service.status().state == SlacState.MATCHED


async def test_retries_are_honoured_then_failed_and_no_more_attempts():
    h = Harness(max_attempts=3)
    h.play(PARM_OK, MATCH_FAIL, PARM_OK, MATCH_FAIL, PARM_OK, MATCH_FAIL, PARM_OK, MATCH_OK)
    await h.service.on_cp_state("B")
    failed = await h.until(SlacState.FAILED)
    await h.settle()
    session = h.sessions[0]
    assert (session.parm_calls, session.routine_calls) == (3, 3), "exactly max_attempts attempts"
    assert h.script.qsize() == 2, "no fourth attempt"
    assert failed.ev_mac == "02:00:00:00:E0:01" and failed.nid is None
    assert h.matches == [] and h.service.nmk is None and session.socket.closed


async def test_a_later_attempt_can_still_match():
    h = Harness(max_attempts=3)
    h.play(PARM_OK, MATCH_FAIL, PARM_OK, MATCH_FAIL, PARM_OK, MATCH_OK)
    await h.service.on_cp_state("B")
    matched = await h.until(SlacState.MATCHED)
    assert h.sessions[0].routine_calls == 3 and matched.run_id.endswith("0003")


async def test_no_slac_request_gives_failed_and_the_next_plug_in_recovers():
    h = Harness()
    h.play(PARM_TIMEOUT)
    await h.service.on_cp_state("B")
    await h.until(SlacState.FAILED)
    await h.service.on_cp_state("B")  # still plugged in: no restart (pyslac would stay stuck for good)
    await h.settle()
    assert len(h.sessions) == 1 and h.service.status().state == SlacState.FAILED

    await h.service.on_cp_state("A")
    assert h.service.status().state == SlacState.IDLE
    h.play(PARM_OK, MATCH_OK)
    await h.service.on_cp_state("B")
    await h.until(SlacState.MATCHED)
    assert len(h.sessions) == 2 and h.sessions[0].nmk != h.sessions[1].nmk


async def test_e_and_f_end_a_matched_or_failed_plug_in_but_not_one_in_progress():
    h = Harness()
    h.play(PARM_OK)
    await h.service.on_cp_state("B")
    await h.settle()
    await h.service.on_cp_state("E")  # the [V2G3-M06-07] E/F step while matching: keep going
    assert h.service.status().state == SlacState.MATCHING
    h.play(MATCH_OK)
    await h.until(SlacState.MATCHED)
    await h.service.on_cp_state("F")
    assert h.service.status().state == SlacState.IDLE

    h.play(PARM_TIMEOUT)
    await h.service.on_cp_state("B")
    await h.until(SlacState.FAILED)
    await h.service.on_cp_state("E")  # E/F then B: the retry sequence gets a new matching run
    h.play(PARM_OK, MATCH_OK)
    await h.service.on_cp_state("B")
    await h.until(SlacState.MATCHED)
    assert len(h.sessions) == 3


async def test_unplug_during_matching_cancels_it_and_drops_its_late_results():
    h = Harness()
    h.play(PARM_OK)
    await h.service.on_cp_state("B")
    await h.settle()
    session = h.sessions[0]
    assert session.routine_calls == 1  # waiting inside the sounding step
    await h.service.on_cp_state("A")
    h.play(MATCH_OK)
    await h.settle()
    assert h.service.status().state == SlacState.IDLE and h.matches == []
    assert session.socket.closed and h.script.qsize() == 1, "the cancelled step consumed nothing"


async def test_plug_in_waits_for_the_key_step():
    gate = asyncio.Event()
    h = Harness(key_gate=gate)
    await h.service.start()
    h.play(PARM_OK, MATCH_OK)
    await h.service.on_cp_state("B")
    await h.settle()
    assert h.sessions == [], "no pyslac session before the modem has the new key"
    gate.set()
    await h.until(SlacState.MATCHED)
    assert h.sessions[0].nmk == h.keys[0].nmk


async def test_unplug_during_the_key_step_then_plug_in_again_matches():
    gate = asyncio.Event()
    h = Harness(key_gate=gate)
    await h.service.on_cp_state("B")
    await h.service.on_cp_state("A")
    gate.set()
    h.play(PARM_OK, MATCH_OK)
    await h.service.on_cp_state("B")
    await h.until(SlacState.MATCHED)
    assert len(h.sessions) == 1


async def test_a_failing_callback_does_not_break_matching(caplog):
    h = Harness()

    def broken(status: SlacStatus) -> None:
        raise RuntimeError("boom")

    h.service._on_matched = broken
    h.play(PARM_OK, MATCH_OK)
    with caplog.at_level(logging.ERROR, logger="evse_slac.evse_slac"):
        await h.service.on_cp_state("B")
        await h.until(SlacState.MATCHED)
        await h.settle()
    assert "boom" in caplog.text and h.service.status().state == SlacState.MATCHED


async def test_coroutine_callbacks_are_awaited():
    seen: list[SlacState] = []

    async def on_matched(status: SlacStatus) -> None:
        seen.append(status.state)

    h = Harness()
    h.service._on_matched = on_matched
    h.play(PARM_OK, MATCH_OK)
    await h.service.on_cp_state("B")
    await h.until(SlacState.MATCHED)
    await h.settle()
    assert seen == [SlacState.MATCHED]


async def test_a_session_that_cannot_be_created_fails_the_plug_in():
    h = Harness()

    def no_interface(*args):
        raise OSError("There is no such interface evse0")

    h.service._session_factory = no_interface
    await h.service.on_cp_state("B")
    await h.until(SlacState.FAILED)


async def test_invalid_cp_states_are_refused():
    h = Harness()
    for bad in ("", "G", "x", "1"):
        with pytest.raises(ValueError):
            await h.service.on_cp_state(bad)
    with pytest.raises(ValueError):
        SlacService("evse0", "id", max_attempts=0)


async def test_status_as_json():
    h = Harness()
    data = h.service.status().as_json()
    assert set(data) == {"state", "ev_mac", "nid", "run_id", "attenuation_db", "last_updated"}
    assert data["state"] == "IDLE" and data["last_updated"].endswith("+00:00")



@dataclass
class CancellationSwallowingSession(FakeSession):
    """Its sounding step drops the first cancellation and waits on (pyslac's frame wait under Python < 3.12)."""

    cancellations: int = 0

    async def atten_charac_routine(self) -> None:
        self.routine_calls += 1
        while True:
            try:
                await self.script.get()
            except asyncio.CancelledError:
                self.cancellations += 1
                if self.cancellations > 1:
                    raise
                # dropped, as asyncio.wait_for does when the awaited frame arrived in the same turn


def harness_with_swallowing_sessions() -> tuple[Harness, list[CancellationSwallowingSession]]:
    """A Harness whose plug-ins get CancellationSwallowingSessions (listed as they are made)."""
    h = Harness()
    sessions: list[CancellationSwallowingSession] = []

    def new_session(evse_id, iface, config) -> CancellationSwallowingSession:
        sessions.append(CancellationSwallowingSession(h.script))
        return sessions[-1]

    h.service._session_factory = new_session
    return h, sessions


async def test_unplug_ends_a_matching_step_that_swallowed_its_first_cancellation():
    """pyslac waits for frames with asyncio.wait_for, which on Python < 3.12 drops a cancellation that lands as a
    frame arrives and goes on waiting for the next frame (seen in CI: "A" left the EVSE in MATCHING for > 5 s).
    The unplug cancels again until the step has ended: IDLE is published, the step's socket closed."""
    h, sessions = harness_with_swallowing_sessions()
    h.play(PARM_OK)
    await h.service.on_cp_state("B")
    await h.settle()
    assert sessions[0].routine_calls == 1  # waiting inside the sounding step
    await asyncio.wait_for(h.service.on_cp_state("A"), WAIT_S)
    assert sessions[0].cancellations == 2, "cancelled again after it dropped the first cancellation"
    assert h.service.status().state == SlacState.IDLE and sessions[0].socket.closed
    h.play(MATCH_OK)
    await h.settle()
    assert h.script.qsize() == 1 and h.matches == [], "the ended step consumed nothing more"


async def test_close_ends_a_matching_step_that_swallowed_its_first_cancellation():
    """The same at shutdown: close() does not wait for pyslac's own timeout."""
    h, sessions = harness_with_swallowing_sessions()
    h.play(PARM_OK)
    await h.service.on_cp_state("B")
    await h.settle()
    await asyncio.wait_for(h.service.close(), WAIT_S)
    assert sessions[0].cancellations == 2 and sessions[0].socket.closed
