"""The launcher's supervision on a ManualClock: a sim-adapter ChargerController with session records, the
HalEVSEController the SECC talks to, and stand-ins for the SECC and SLAC tasks that make the same calls.

``FakeSecc.serve`` is what ``run_secc`` is to the launcher (a coroutine serving until cancelled): it announces
ready and then runs one charging session per car put on ``cars``, calling the HAL controller in the order
iso15118 0.31.2's SECC does for an ISO 15118-2 DC session, paced on the simulated clock like an EV.
``FakeSlacService`` is what ``SlacLink`` drives (start, on_cp_state, close): it "matches" on plug-in.
The test moves time with ``ContainmentRig.pump``; nothing sleeps on the wall clock.

One thing here does run on the wall clock: the session records' worker thread (``AsyncSessionStore``), which
the controller awaits when a session starts and when its shutdown finalises it (the session's stage becomes
``ended`` only after the record is written). Whether such a write finished within one ``ManualClock.advance``
would depend on how busy the machine is, so every step of simulated time here (``ContainmentRig.step``) ends by
waiting for the writes queued during it and letting what awaited them run: a record write takes no simulated
time, and a run does not depend on the thread's speed.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import evse_secc  # noqa: F401  (installs the pydantic.v1 hook before iso15118 is imported)
from iso15118.shared.messages.enums import Protocol
from iso15118.shared.notifications import StopNotification

from evse_model.clock import ManualClock
from ccs_sim.controller import ChargerController
from ccs_sim.runtime import Operations, attach_operations, build_controller
from ccs_sim.settings import ControllerSettings
from evse_hal.iso15118_hal_controller import HalEVSEController
from evse_slac.status import SlacState, SlacStatus

EVSE_ID = "DE*CCS*E0000001*1"
PACK_V = 400.0
CHARGE_A = 100.0
#: The stand-in SECC's pace on the simulated clock (an EV's request cadence): CableCheck polled every 50 ms,
#: a PreChargeReq every 150 ms, a CurrentDemandReq every 100 ms. Between two of them it looks whether the
#: controller still runs its session, so it sees a session ended under it within the longest of these.
CABLE_CHECK_POLL_S = 0.05
PRECHARGE_PERIOD_S = 0.15
CURRENT_DEMAND_PERIOD_S = 0.1
SECC_SEES_SESSION_END_WITHIN_S = max(CABLE_CHECK_POLL_S, PRECHARGE_PERIOD_S, CURRENT_DEMAND_PERIOD_S)


class CarAborted(Exception):
    """The controller ended the session under the car (a fault): the SECC's side stops too."""


@dataclass
class FakeCommSession:
    session_id: str
    selected_energy_service: Any = None
    control_mode: Any = None
    stop_reason: StopNotification | None = None
    protocol: Protocol = Protocol.ISO_15118_2


def _state(name: str, comm_session: FakeCommSession) -> Any:
    def __init__(self: Any, comm: FakeCommSession) -> None:
        self.comm_session = comm

    return type(name, (), {"__init__": __init__})(comm_session)


@dataclass
class Car:
    charge_loops: int = 20  # CurrentDemand requests, CURRENT_DEMAND_PERIOD_S apart
    done: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: str | None = None


class FakeSecc:
    """The SECC's calls into ``hal`` for one DC session per car (see the module docstring)."""

    def __init__(self, hal: HalEVSEController, charger: ChargerController) -> None:
        self.hal = hal
        self.charger = charger
        self.clock = charger.clock
        self.cars: asyncio.Queue[Car] = asyncio.Queue()
        self.generations = 0
        self.in_current_demand = False
        self._ids = itertools.count(1)

    async def serve(self, on_ready: Callable[[], None]) -> None:
        self.generations += 1
        on_ready()
        while True:
            car = await self.cars.get()
            try:
                await self.run_car(car)
                car.outcome = "complete"
            except CarAborted as aborted:
                car.outcome = f"aborted: {aborted}"
                await self.hal.session_ended("CurrentDemand", str(aborted))
            finally:
                car.done.set()

    def _check(self) -> None:
        if not self.charger.session_active:
            fault = self.charger.active_fault
            raise CarAborted(fault.name if fault is not None else "session ended")

    async def _enter(self, name: str, comm: FakeCommSession) -> None:
        await self.hal.set_present_protocol_state(_state(name, comm))

    async def run_car(self, car: Car) -> None:
        hal, comm = self.hal, FakeCommSession(session_id=f"{next(self._ids):016X}")
        hal.set_selected_protocol(Protocol.ISO_15118_2)
        await self._enter("SupportedAppProtocol", comm)
        ev = hal.ev_data_context
        ev.evcc_id = "02000000E001"
        await self._enter("SessionSetup", comm)
        limits = ev.rated_limits.dc_limits
        limits.max_voltage, limits.max_charge_current, limits.max_charge_power = 500.0, 125.0, 62_500.0
        ev.present_soc = 30
        await self._enter("ChargeParameterDiscovery", comm)
        self._check()
        # CableCheck
        await hal.start_cable_check()
        while await hal.is_contactor_closed() is None:
            await self.clock.sleep(CABLE_CHECK_POLL_S)
        while await hal.get_cable_check_status() is None:
            self._check()
            await self.clock.sleep(CABLE_CHECK_POLL_S)
        await self._enter("CableCheck", comm)
        self._check()
        # PreCharge
        for _ in range(8):
            ev.target_voltage, ev.target_current = PACK_V, 1.0
            await hal.send_charging_command(PACK_V, 1.0, is_precharge=True)
            await hal.get_evse_present_voltage(comm.protocol)
            await self._enter("PreCharge", comm)
            await self.clock.sleep(PRECHARGE_PERIOD_S)
            self._check()
        # PowerDelivery(Start), CurrentDemand
        await hal.set_hlc_charging(True)
        await self._enter("PowerDelivery", comm)
        self.in_current_demand = True
        try:
            for _ in range(car.charge_loops):
                self._check()
                ev.target_voltage, ev.target_current = PACK_V + 10.0, CHARGE_A
                await hal.send_charging_command(PACK_V + 10.0, CHARGE_A)
                await hal.get_evse_present_voltage(comm.protocol)
                await hal.get_evse_present_current(comm.protocol)
                await hal.get_dc_evse_status()
                await self._enter("CurrentDemand", comm)
                await self.clock.sleep(CURRENT_DEMAND_PERIOD_S)
        finally:
            self.in_current_demand = False
        self._check()
        # PowerDelivery(Stop), SessionStop
        await hal.set_hlc_charging(False)
        await hal.stop_charger()
        await self._enter("PowerDelivery", comm)
        comm.stop_reason = StopNotification(True, "EV requested to terminate the communication session",
                                            ("fe80::1", 1))
        await self._enter("SessionStop", comm)


class FakeSlacService:
    """What ``SlacLink`` drives; matches on plug-in. ``hang_on`` makes ``on_cp_state`` of that letter hang."""

    instances: list["FakeSlacService"] = []

    def __init__(self, on_status: Callable[[SlacStatus], None], on_matched: Callable[[SlacStatus], Any],
                 hang_on: set[str]) -> None:
        self.iface = "fake0"
        self.on_status = on_status
        self.on_matched = on_matched
        self.hang_on = hang_on
        self.started = self.closed = False
        self.letters: list[str] = []
        FakeSlacService.instances.append(self)

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True

    async def on_cp_state(self, letter: str) -> None:
        self.letters.append(letter)
        if letter in self.hang_on:
            await asyncio.get_running_loop().create_future()  # never returns
        if letter in "BCD":
            status = SlacStatus(SlacState.MATCHED, "02:00:00:00:E0:01", "01" * 7, "02" * 8, 20.0,
                                datetime.now(timezone.utc))
            self.on_status(status)
            await self.on_matched(status)


@dataclass
class ContainmentRig:
    charger: ChargerController
    clock: ManualClock
    hal: HalEVSEController
    operations: Operations
    secc: FakeSecc

    @classmethod
    async def create(cls, database: Path) -> "ContainmentRig":
        clock = ManualClock()
        charger = build_controller(ControllerSettings(_env_file=None), clock)  # type: ignore[call-arg]
        operations = await attach_operations(charger, database)
        await charger.start()
        hal = HalEVSEController(charger, EVSE_ID)
        return cls(charger, clock, hal, operations, FakeSecc(hal, charger))

    async def close(self) -> None:
        await self.charger.shutdown()
        await self.operations.close()

    @property
    def plant(self) -> Any:
        return self.charger.hw.simulation.plant

    async def step(self, step_s: float) -> None:
        """Advance simulated time by ``step_s``; then finish the record writes queued meanwhile (the store's
        thread, on the wall clock) and let what awaited them run, before anything is looked at."""
        await self.clock.advance(step_s)
        await self.operations.store.flush()
        await self.clock.settle()

    async def pump(self, condition: Callable[[], bool], timeout_s: float, step_s: float = 0.01) -> float:
        """Advance simulated time until ``condition()``; returns the time it took."""
        start_s = self.clock.now()
        while not condition():
            if self.clock.now() - start_s > timeout_s:
                raise AssertionError(f"condition not met within {timeout_s} s of simulated time; status "
                                     f"{self.charger.status_view()}")
            await self.step(step_s)
        return self.clock.now() - start_s

    async def shutdown_timeline(self, since_s: float, window_s: float = 0.2) -> tuple[float | None, float | None]:
        """In 1 ms steps from now: (seconds after ``since_s`` at which the cable current was first seen < 5 A,
        at which the contactor was first seen open)."""
        start_s = since_s
        below_5A = opened = None
        plant = self.plant
        while self.clock.now() - start_s < window_s:
            plant.advance_to(self.clock.now())
            if below_5A is None and plant.cable_current_A < 5.0:
                below_5A = self.clock.now() - start_s
            if opened is None and not plant.evse_contactor_closed:
                opened = self.clock.now() - start_s
            if below_5A is not None and opened is not None:
                break
            await self.step(0.001)
        return below_5A, opened

    async def until_ended(self, timeout_s: float = 15.0) -> None:
        """Until the wind-down finished (stage ``ended``: its record is written, see ``step``)."""
        start_s = self.clock.now()
        await self.operations.store.flush()
        await self.clock.settle()
        while self.charger.stage.value != "ended":
            if self.clock.now() - start_s > timeout_s:
                raise AssertionError(f"wind-down not finished: {self.charger.status_view()}")
            await self.step(0.01)

    async def record(self, session_id: str) -> dict[str, Any]:
        await self.operations.store.flush()
        record = await self.operations.store.call("get", session_id)
        assert record is not None, f"no record of session {session_id}"
        return record

    def charging(self) -> bool:
        m = self.charger.latest
        return self.secc.in_current_demand and m is not None and m.output_current_A > 50.0
