"""A HalEVSEController on a sim-adapter ChargerController with a ManualClock, and the SECC's side of a DC
session replayed call by call (the calls and their order are those of iso15118 0.31.2's SECC states)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import evse_secc  # noqa: F401  (installs the pydantic.v1 hook before iso15118 is imported)

# isort: split
from iso15118.shared.messages.enums import Protocol
from iso15118.shared.notifications import StopNotification

from ccs_sim.controller import ChargerController
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_hal.iso15118_hal_controller import HalEVSEController
from evse_model.clock import ManualClock

EVSE_ID = "DE*CCS*E0000001*1"


@dataclass
class FakeCommSession:
    """What the HAL controller reads of iso15118's SECCCommunicationSession."""

    session_id: str = "0A0B0C0D0E0F1011"
    selected_energy_service: Any = None
    control_mode: Any = None
    stop_reason: StopNotification | None = None
    protocol: Protocol = Protocol.ISO_15118_2


def state(name: str, comm_session: FakeCommSession) -> Any:
    """An object of a class named like iso15118's state (the HAL controller looks at the class name)."""
    return type(name, (), {})() if comm_session is None else _state_class(name)(comm_session)


def _state_class(name: str) -> type:
    def __init__(self: Any, comm_session: FakeCommSession) -> None:
        self.comm_session = comm_session

    return type(name, (), {"__init__": __init__})


@dataclass
class HlcRig:
    controller: ChargerController
    clock: ManualClock
    hal: HalEVSEController
    comm: FakeCommSession = field(default_factory=FakeCommSession)

    @classmethod
    async def create(cls, **settings: Any) -> HlcRig:
        clock = ManualClock()
        controller = build_controller(ControllerSettings(_env_file=None, **settings), clock)  # type: ignore[call-arg]
        await controller.start()
        return cls(controller=controller, clock=clock, hal=HalEVSEController(controller, EVSE_ID))

    async def close(self) -> None:
        await self.controller.shutdown()

    @property
    def sim(self):  # type: ignore[no-untyped-def]
        return self.controller.hw.simulation

    async def advance(self, seconds: float, step_s: float = 0.01) -> None:
        end_s = self.clock.now() + seconds
        while self.clock.now() < end_s - 1e-9:
            await self.clock.advance(min(step_s, end_s - self.clock.now()))

    async def run_while_advancing(self, awaitable: Awaitable[Any], timeout_s: float) -> Any:
        """Await a call that waits on simulated time (stop_charger, a cable check) while time moves."""
        task = asyncio.ensure_future(awaitable)
        end_s = self.clock.now() + timeout_s
        while not task.done():
            if self.clock.now() >= end_s:
                task.cancel()
                raise AssertionError(f"call not finished within {timeout_s} s of simulated time")
            await self.clock.advance(0.01)
        return task.result()

    async def until(self, predicate: Callable[[], Awaitable[bool]], timeout_s: float, step_s: float = 0.05) -> None:
        end_s = self.clock.now() + timeout_s
        while not await predicate():
            if self.clock.now() >= end_s:
                raise AssertionError(f"condition not met within {timeout_s} s")
            await self.advance(step_s)

    async def enter(self, name: str) -> None:
        """The SECC sent a response of state ``name`` (it then calls set_present_protocol_state)."""
        await self.hal.set_present_protocol_state(state(name, self.comm))

    # --- the session, step by step ----------------------------------------------------------------------
    async def handshake(self, protocol: Protocol = Protocol.ISO_15118_2, ev_max_voltage_V: float = 550.0,
                        ev_max_current_A: float = 125.0) -> None:
        self.hal.set_selected_protocol(protocol)
        self.comm.protocol = protocol
        await self.enter("SupportedAppProtocol")
        ev = self.hal.ev_data_context
        ev.evcc_id = "02000000E001"
        await self.enter("SessionSetup")
        limits = ev.rated_limits.dc_limits
        limits.max_voltage, limits.max_charge_current, limits.max_charge_power = \
            ev_max_voltage_V, ev_max_current_A, ev_max_voltage_V * ev_max_current_A
        ev.present_soc = 30
        await self.enter("ChargeParameterDiscovery")

    async def cable_check(self) -> str:
        """CableCheckReq until EVSEProcessing=Finished, as iso15118's CableCheck state asks."""
        await self.hal.start_cable_check()
        closed = await self.hal.is_contactor_closed()
        while closed is None:
            await self.advance(0.05)
            closed = await self.hal.is_contactor_closed()
        assert closed is True
        level = await self.hal.get_cable_check_status()
        while level is None:
            await self.advance(0.05)
            level = await self.hal.get_cable_check_status()
        await self.enter("CableCheck")
        return level.value

    async def precharge(self, target_V: float, target_A: float = 1.0, requests: int = 6) -> list[float]:
        """PreChargeReq ``requests`` times, 150 ms apart; returns the present currents reported."""
        currents = []
        for _ in range(requests):
            self.hal.ev_data_context.target_voltage, self.hal.ev_data_context.target_current = target_V, target_A
            present = await self.hal.get_evse_present_current(self.comm.protocol)
            currents.append(present.get_decimal_value() if hasattr(present, "get_decimal_value") else present)
            await self.hal.send_charging_command(target_V, target_A, is_precharge=True)
            await self.enter("PreCharge")
            await self.advance(0.15)
        return currents

    async def power_delivery_start(self) -> None:
        await self.hal.set_hlc_charging(True)
        assert await self.hal.is_contactor_closed() is True
        await self.enter("PowerDelivery")

    async def current_demand(self, target_V: float, target_A: float, loops: int, period_s: float = 0.1) -> None:
        for _ in range(loops):
            ev = self.hal.ev_data_context
            ev.target_voltage, ev.target_current = target_V, target_A
            await self.hal.send_charging_command(target_V, target_A)
            await self.enter("CurrentDemand")
            await self.advance(period_s)

    async def power_delivery_stop(self) -> None:
        await self.hal.set_hlc_charging(False)
        await self.run_while_advancing(self.hal.stop_charger(), timeout_s=15.0)
        assert await self.hal.is_contactor_opened() is True
        await self.enter("PowerDelivery")

    async def session_stop(self) -> None:
        self.comm.stop_reason = StopNotification(True, "EV requested to terminate the communication session",
                                                 ("fe80::1", 1))
        await self.enter("SessionStop")

    async def full_session(self, target_V: float = 500.0, target_A: float = 50.0, loops: int = 30) -> None:
        await self.handshake()
        await self.cable_check()
        await self.precharge(target_V)
        await self.power_delivery_start()
        await self.current_demand(target_V, target_A, loops)
        await self.power_delivery_stop()
        await self.session_stop()
