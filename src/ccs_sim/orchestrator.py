"""The spec's session flow with the simulated car: HANDSHAKE → (cable check) → PRECHARGE → CHARGING → COMPLETE.

This driver plays the part the ISO 15118 stack plays in HLC mode — it reads the simulated car's BMS
instead of V2G messages — and uses the same controller primitives (cable check, precharge, charge
targets, ramp-down) that the SECC's HAL controller uses. Timing (spec):

1. HANDSHAKE ≈ 2 s: the car plugs in (CP B), 5 % PWM after 0.5 s, the car answers with CP C.
2. Cable check ≈ 1 s (stage of HANDSHAKE): contactor closed, CC.1 test voltage at ≤ 2 A, IMD reading;
   an insulation fault aborts. Then the supply is switched off and its active discharge brings the output
   below 60 V before the check finishes (``discharge_after_cable_check``, on by default).
3. PRECHARGE: output up from below 60 V to the car's battery voltage (the session's ``target_voltage`` for
   the default car) at ≤ 2 A — C·ΔV / 2 A, ≈ 0.5 s for 400 V — within ``precharge_timeout_s`` (default 7 s);
   the car closes its contactor once within 20 V.
4. CHARGING: deliver the car's request (``initial_current``, stepped down after 5 s for the default car),
   ramped ≤ 100 A/s; for ``duration_s`` or until the car is full.
5. COMPLETE: summary recorded; the output ramps down ≤ 100 A/s and opens below 1 A; meter reset.
"""

from __future__ import annotations

from evse_model import standards
from ccs_sim.controller import ActiveSession, ChargerController, SessionAbort
from evse_model.session import EndReason, Phase, Stage


class SimSessionDriver:
    source = "sim"
    #: How often the car's request is read, like a CurrentDemandReq loop (real cars: 100–250 ms, standards.md §2.4).
    EV_REQUEST_PERIOD_S = 0.05

    async def run(self, controller: ChargerController, session: ActiveSession) -> None:
        sim = controller.hw.simulation
        if sim is None:
            raise SessionAbort("EV_NOT_READY", "the simulated session needs the sim adapter")
        params = session.params
        settings = controller.settings
        hw = controller.hw
        sim.configure_car(params.ev_preset, params.start_soc_percent, params.target_soc_percent)
        ev = sim.prepare_car(params.target_voltage_V, params.initial_current_A)
        session.ev_info = {"preset": sim.preset_name, "start_soc": round(ev.battery.soc_percent, 2)}

        # 1. HANDSHAKE: plug-in (B), 5 % PWM, the car answers C.
        handshake_started_s = controller.clock.now()
        controller.set_stage(Stage.PLUG_IN)
        await controller.hold(settings.pwm_start_delay_s)
        await controller.io(hw.pwm.set_duty, 5.0)
        controller.set_stage(Stage.HANDSHAKE)
        remaining_s = settings.handshake_s - (controller.clock.now() - handshake_started_s)
        await controller.hold(max(0.0, remaining_s))
        if controller.latest is None or controller.latest.pilot.state not in ("C", "D"):
            state = controller.latest.pilot.state if controller.latest else "?"
            raise SessionAbort("EV_NOT_READY", f"CP state {state} after the handshake, expected C or D")

        # 2. Cable check.
        await controller.cable_check(ev.preset.max_voltage_V)

        # 3. PRECHARGE: the car wants its contactor closed once the output matches its battery.
        ev.energy_transfer_wanted = True
        timeout_s = params.precharge_timeout_s or settings.precharge_timeout_s
        await controller.precharge(ev.precharge_target_V, timeout_s)
        if not await controller.wait_until(lambda: ev.contactor_closed, 1.0):
            raise SessionAbort("PRECHARGE_TIMEOUT", "the car did not close its contactor after precharge")

        # 4. CHARGING
        await controller.begin_energy_transfer(ev.preset.max_voltage_V)
        charging_started_s = controller.clock.now()
        reason = EndReason.DURATION_ELAPSED
        while True:
            if controller.clock.now() - charging_started_s >= params.duration_s:
                break
            if ev.charging_complete():
                reason = EndReason.EV_FULL
                break
            await self._follow_car(controller, ev)
            await controller.clock.sleep(self.EV_REQUEST_PERIOD_S)
        controller.end_session(Phase.COMPLETE, None, reason)

    @staticmethod
    async def _follow_car(controller: ChargerController, ev) -> None:  # type: ignore[no-untyped-def]
        """One step of the charge loop: the car's request, or re-matching after the output was opened."""
        m = controller.latest
        if m is not None and not m.contactor_closed:
            # The output was opened under us (/control/contactor): hold the supply at the car's voltage
            # at ≤ 2 A so that closing again is allowed and the car can reconnect.
            controller.set_stage(Stage.OUTPUT_INTERRUPTED)
            controller.current_control_active = False
            controller.commanded_current_A = 0.0
            await controller.set_supply_current_limit(standards.PRECHARGE_CURRENT_LIMIT_A)
            await controller.io(controller.hw.supply.set_voltage, ev.precharge_target_V())
            # An open under load shut the supply off first; upstream of the open contactor it may run again.
            await controller.io(controller.hw.supply.set_enabled, True)
            return
        if controller.stage is Stage.OUTPUT_INTERRUPTED:
            if not ev.contactor_closed:
                return
            controller.current_control_active = True
            controller.set_stage(Stage.CURRENT_RAMP)
        await controller.set_charge_targets(ev.target_voltage_V(), ev.target_current_A())
