"""The device-writing path: every command to the supply, the contactor, the PWM and the CP goes through here.

``io`` calls a driver method (in a worker thread when the adapter blocks); the commands above it apply the
safety rules first: a contactor closes only onto a matching voltage (< 20 V apart), opens under load only
after the output is shut down, and every supply current limit is remembered for the supervisor's judgement.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ccs_sim.core.ports import ChargerCore
from ccs_sim.core.types import ContactorCommandResult
from evse_hal.simulation import simulation_controls
from evse_model import standards
from evse_model.faults import SUPPLY_FAULT
from evse_model.session import Stage
from evse_model.session_errors import CommandRefused

log = logging.getLogger("ccs_sim.controller")

#: The driver commands the feedback watch follows (contactor and supply; see ``Outputs._note_command``).
_WATCHED_COMMANDS = frozenset({"set_closed", "set_enabled", "emergency_off", "set_voltage", "set_current_limit",
                               "set_power_limit"})


class Outputs:
    def __init__(self, charger: ChargerCore) -> None:
        self.charger = charger

    async def io(self, function: Callable[..., Any], *args: Any) -> Any:
        """Call a driver method; in a worker thread when the adapter's calls can block. A command to the
        contactor or the supply is noted for the feedback watch once issued."""
        if self.charger.hw.blocking:
            return await asyncio.to_thread(self.call, function, *args)
        return self.call(function, *args)

    def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """``io`` on this thread: the driver call under the controller's lock (the control step holds it for
        a whole tick, so no command lands in the middle of one), then noted for the feedback watch."""
        with self.charger.lock:
            result = function(*args)
            if getattr(function, "__name__", "") in _WATCHED_COMMANDS:
                self._note_command(function, args)
        return result

    def _note_command(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """What the supervisor's feedback watch judges the mirror contact and the supply's output against."""
        charger = self.charger
        hw, watch, now_s = charger.hw, charger.feedback, charger.clock.now()
        # The supply's setpoints first, by name (the control step's current limit, the car's requests); any other
        # command, or one whose name belongs to another method, through the comparisons below.
        name = getattr(function, "__name__", "")
        if name == "set_current_limit" and function == hw.supply.set_current_limit:
            watch.supply_setpoints(now_s, current_limit_A=float(args[0]))
        elif name == "set_voltage" and function == hw.supply.set_voltage:
            watch.supply_setpoints(now_s, voltage_V=float(args[0]))
        elif name == "set_power_limit" and function == hw.supply.set_power_limit:
            watch.supply_setpoints(now_s, power_limit_W=float(args[0]))
        elif function == hw.contactor.set_closed:
            watch.contactor_commanded(bool(args[0]), now_s)
        elif function == hw.supply.set_enabled:
            watch.supply_switched(bool(args[0]), now_s)
        elif function == hw.supply.emergency_off:
            watch.supply_switched(False, now_s)
        elif function == hw.supply.set_voltage:
            watch.supply_setpoints(now_s, voltage_V=float(args[0]))
        elif function == hw.supply.set_current_limit:
            watch.supply_setpoints(now_s, current_limit_A=float(args[0]))
        elif function == hw.supply.set_power_limit:
            watch.supply_setpoints(now_s, power_limit_W=float(args[0]))

    async def put_outputs_safe(self) -> None:
        """Supply off, contactor open, oscillator off (X1): the state after start-up or a crash."""
        charger = self.charger
        await charger.io(charger.hw.supply.emergency_off)
        await charger.io(charger.hw.contactor.set_closed, False)
        await charger.io(charger.hw.pwm.set_duty, 100.0)
        await charger.io(charger.hw.imd.stop_measurement)

    async def set_contactor(self, closed: bool) -> ContactorCommandResult:
        """Open or close the output contactor.

        Closing is vetted by the supervisor (|V_out - V_ev| < 20 V). Opening never breaks DC under load:
        with 1 A or more flowing, the output is shut down first (an error shutdown: current control off,
        supply disabled, which brings the current to 0 within 10 ms by the supply's contract, not the
        100 A/s ramp) and the contactor opens once the current is below 1 A (DG L1283-1285). If the
        current does not fall below 1 A within ``COMMAND_OPEN_DEADLINE_S``, the power stage did not
        follow: that is a SUPPLY_FAULT emergency, recorded as one, and the emergency shutdown opens.
        """
        charger = self.charger
        if closed:
            supply_V, _ = await charger.io(charger.hw.supply.get_status)
            refusal = charger.supervisor.vet_contactor_close(supply_V, charger.ev_side_voltage_V())
            if refusal:
                charger.refusals += 1
                raise CommandRefused(refusal)
            await charger.io(charger.hw.contactor.set_closed, True)
            await charger.tick_now()
            return ContactorCommandResult()
        current_A = await charger.io(charger.hw.meter.read_current_A)
        if current_A < standards.CONTACTOR_OPEN_MAX_CURRENT_A:
            await charger.io(charger.hw.contactor.set_closed, False)
            await charger.tick_now()
            return ContactorCommandResult(current_at_command_A=current_A, current_at_open_A=current_A)
        log.warning("contactor open commanded under load (%.1f A): shutting the output down first", current_A)
        with charger.lock:
            charger.current_control_active = False
            charger.requested_current_A = charger.commanded_current_A = 0.0
        await charger.set_supply_current_limit(0.0)
        await charger.io(charger.hw.supply.set_enabled, False)
        if not await charger.wait_current_below(standards.CONTACTOR_OPEN_MAX_CURRENT_A, charger.COMMAND_OPEN_DEADLINE_S):
            still_A = await charger.io(charger.hw.meter.read_current_A)
            await charger.raise_fault(SUPPLY_FAULT, source="supervisor",
                                   message=f"{still_A:.1f} A flowing {charger.COMMAND_OPEN_DEADLINE_S * 1000:.0f} ms "
                                           f"after the supply was disabled for a contactor open command")
            return ContactorCommandResult(current_at_command_A=current_A, shutdown_first=True,
                                          emergency=SUPPLY_FAULT)
        opened_at_A = await charger.io(charger.hw.meter.read_current_A)
        await charger.io(charger.hw.contactor.set_closed, False)
        await charger.tick_now()
        return ContactorCommandResult(current_at_command_A=current_A, current_at_open_A=opened_at_A,
                                      shutdown_first=True)

    async def set_pwm_duty(self, duty_percent: float) -> None:
        charger = self.charger
        if not 0.0 <= duty_percent <= 100.0:
            raise CommandRefused(f"duty must be within 0..100 %, got {duty_percent}")
        await charger.io(charger.hw.pwm.set_duty, duty_percent)
        await charger.tick_now()

    async def set_cp_state(self, state: str) -> None:
        charger = self.charger
        controls = simulation_controls(charger.hw)
        if controls is None:
            raise CommandRefused("no simulated car on this adapter: the CP state is measured on the wire")
        await charger.io(controls.present_cp_state, state)
        await charger.tick_now()

    async def set_supply_current_limit(self, limit_A: float) -> None:
        """Tell the power stage its current limit. Every limit goes through here: the supervisor judges
        the output current against the limits the stage was told (``supply_limits``)."""
        if self.charger.hw.blocking:
            await asyncio.to_thread(self.set_supply_current_limit_now, limit_A)
        else:
            self.set_supply_current_limit_now(limit_A)

    def set_supply_current_limit_now(self, limit_A: float) -> None:
        """``set_supply_current_limit`` on this thread (the control step's ramp)."""
        charger = self.charger
        with charger.lock:
            charger.supply_limits.told(charger.clock.now(), limit_A)
            self.call(charger.hw.supply.set_current_limit, limit_A)

    async def wait_current_below(self, limit_A: float, within_s: float) -> bool:
        charger = self.charger
        deadline_s = charger.clock.now() + within_s
        while True:
            current_A = await charger.io(charger.hw.meter.read_current_A)
            if current_A < limit_A:
                return True
            if charger.clock.now() >= deadline_s:
                return False
            await charger.clock.sleep(0.001)

    def ev_side_voltage_V(self) -> float | None:
        """The voltage of a stiff source on the EV side of the contactor, if one is known to be there."""
        charger = self.charger
        m = charger.latest
        if m is not None and not m.contactor_closed and m.output_voltage_V > standards.SAFE_DC_VOLTAGE_V:
            return m.output_voltage_V
        if charger.session_active and charger.stage in (Stage.CHARGING, Stage.CURRENT_RAMP, Stage.OUTPUT_INTERRUPTED):
            present = charger.bms_view().get("present_voltage")
            if present:
                return float(present)
        return None

    async def drive_supply(self, voltage_V: float | None = None, enabled: bool | None = None,
                           power_limit_W: float | None = None) -> None:
        """Set the power stage's voltage, power limit and/or enable (None leaves a setting as it is); the
        current limit goes through ``set_supply_current_limit``."""
        charger = self.charger
        supply = charger.hw.supply
        if voltage_V is not None:
            await charger.io(supply.set_voltage, voltage_V)
        if power_limit_W is not None:
            await charger.io(supply.set_power_limit, power_limit_W)
        if enabled is not None:
            await charger.io(supply.set_enabled, enabled)
