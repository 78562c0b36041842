"""The controller's read-only JSON views: ``/status``, ``/meter`` and ``/vehicle/bms``.

Built from the latest readings and the session state, never changing either. The SLAC and ISO 15118
views are plain dicts the SLAC link and the SECC glue fill (``charger.slac_view``, ``charger.iso15118_view``).
"""

from __future__ import annotations

from typing import Any

from ccs_sim.core.ports import ChargerCore
from ccs_sim.vehicle import empty_bms_view, sim_bms_view
from evse_hal.simulation import simulation_controls


class Views:
    def __init__(self, charger: ChargerCore) -> None:
        self.charger = charger

    def bms_view(self) -> dict[str, Any]:
        charger = self.charger
        if charger.bms_view_override is not None:
            return charger.bms_view_override
        controls = simulation_controls(charger.hw)
        car = controls.simulated_car_view() if controls is not None else None
        if car is not None:
            present_V = charger.latest.output_voltage_V if charger.latest else 0.0
            return sim_bms_view(car, present_V)
        return empty_bms_view()

    def status_view(self) -> dict[str, Any]:
        charger = self.charger
        m = charger.latest
        cp_state = m.pilot.state if m else "A"
        session = charger.session
        time_s = 0.0
        if session is not None and charger.session_active:
            time_s = charger.clock.now() - session.started_at_s
        summary = charger.last_session_summary.to_dict() if charger.last_session_summary else None
        return {
            "session_active": charger.session_active,
            "phase": charger.phase.value,
            "error": charger.active_fault.name if charger.active_fault else None,
            "contactor_closed": bool(m.contactor_closed) if m else False,
            "cp_state": cp_state,
            "voltage": round(m.output_voltage_V, 3) if m else 0.0,
            "current": round(m.output_current_A, 3) if m else 0.0,
            "energy_Wh": round(charger.meter_reading.energy_Wh, 6),
            "time_s": round(time_s, 3),
            "last_session_summary": summary,
            # additive fields
            "stage": charger.stage.value,
            "session_id": session.session_id if session else None,
            "cp_sub_state": m.pilot.sub_state if m else None,
            "cp_voltage": round(m.cp_positive_V, 3) if m else None,
            "pwm_duty": m.duty_percent if m else None,
            "supply_voltage": round(m.supply_voltage_V, 3) if m else 0.0,
            "supply_current": round(m.supply_current_A, 3) if m else 0.0,
            "power_W": round(m.output_voltage_V * m.output_current_A, 1) if m else 0.0,
            "isolation_ohm": m.isolation_ohm if m else None,
            "connector_temperature_C": round(m.connector_temperature_C, 2) if m else None,
            "requested_current": round(charger.requested_current_A, 3),
            "commanded_current": round(charger.commanded_current_A, 3),
            "active_fault": charger.active_fault.name if charger.active_fault else None,
            "clock_s": round(charger.clock.now(), 3),
            # The speed in force (a scaled clock's governor holds it below the request while the machine
            # cannot keep up), and the one requested; None on a manual clock.
            "speed": round(charger.clock.speed, 3) if charger.clock.speed != float("inf") else None,
            "speed_requested": getattr(charger.clock, "requested_speed", None) or (
                charger.clock.speed if charger.clock.speed != float("inf") else None),
            "adapter": charger.hw.name,
            # The current and power limits in force and each source's (rating, OCPP ...), availability.
            "limits_in_force": charger.limits.view(),
        }

    def meter_view(self) -> dict[str, Any]:
        charger = self.charger
        reading, m = charger.meter_reading, charger.latest
        return {
            "energy_Wh": round(reading.energy_Wh, 6),
            "avg_voltage": round(reading.avg_voltage_V, 6),
            "avg_current": round(reading.avg_current_A, 6),
            "session_time_s": round(reading.session_time_s, 6),
            "voltage": round(m.output_voltage_V, 3) if m else 0.0,
            "current": round(m.output_current_A, 3) if m else 0.0,
        }

