"""The controller's read-only JSON views: ``/status``, ``/meter`` and ``/vehicle/bms``.

Built from the latest readings and the session state, never changing either. The SLAC and ISO 15118
views are plain dicts the SLAC link and the SECC glue fill (``charger.slac_view``, ``charger.iso15118_view``).

``/status`` and ``/meter`` are built at most once per control tick and the same dict is handed to every
reader until something it shows may have changed. The cache key is the tick counter (``tick_sequence``) and
the readings' identity, plus the state a command can change between ticks (phase, stage, session, fault,
last summary, requested/commanded current, limits in force, clock speed; on a manual clock its time), so a
command followed at once by a read shows the command's effect. On a running clock a view is also rebuilt
once it is older than two control periods (a controller whose loop does not tick still shows the time
move). The dicts handed out are shared: readers must not change them.

Safe to call from the event loop while the control step runs on a thread of its own: ``charger.latest`` and
``charger.meter_reading`` are read once each (they are replaced, never changed in place), nothing here takes
the control lock or writes controller state.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from ccs_sim.core.ports import ChargerCore
from ccs_sim.vehicle import empty_bms_view, sim_bms_view
from evse_hal.simulation import simulation_controls

#: A cached view is rebuilt, whatever its key, once this many control periods old on a running clock.
MAX_VIEW_AGE_PERIODS = 2.0


class _CachedView:
    """One view and what it was built from (set as one tuple: a reader never sees a key with another view)."""

    __slots__ = ("entry",)

    def __init__(self) -> None:
        self.entry: tuple[tuple[Any, ...], float, dict[str, Any]] | None = None


class Views:
    def __init__(self, charger: ChargerCore) -> None:
        self.charger = charger
        self._status = _CachedView()
        self._meter = _CachedView()
        #: How many times each cached view was built (``status``, ``meter``): what tests and benchmarks count.
        self.builds: Counter[str] = Counter()

    def bms_view(self) -> dict[str, Any]:
        charger = self.charger
        if charger.bms_view_override is not None:
            return charger.bms_view_override
        controls = simulation_controls(charger.hw)
        car = controls.simulated_car_view() if controls is not None else None
        if car is not None:
            m = charger.latest
            present_V = m.output_voltage_V if m else 0.0
            return sim_bms_view(car, present_V)
        return empty_bms_view()

    # --- the cache --------------------------------------------------------------------------------------------
    def _time_key(self) -> tuple[float | None, float]:
        """(the clock's time when it only moves when told, i.e. a manual clock, else None; the time now)."""
        now_s = self.charger.clock.now()
        return (now_s if self.charger.clock.speed == math.inf else None), now_s

    def _fresh(self, cache: _CachedView, key: tuple[Any, ...], now_s: float) -> dict[str, Any] | None:
        entry = cache.entry
        if entry is None or entry[0] != key:
            return None
        if key[0] is None and now_s - entry[1] > MAX_VIEW_AGE_PERIODS * self.charger.settings.control_period_s:
            return None  # a running clock whose loop has not ticked for a while: show the time move
        return entry[2]

    def status_key(self) -> tuple[Any, ...]:
        """What ``status_view`` shows besides the clock's time: far cheaper to compute than the view."""
        c = self.charger
        clock = c.clock
        limits = c.limits
        return (c.tick_sequence, c.latest, c.meter_reading, c.phase, c.stage, c.session_active, c.session,
                c.active_fault, c.last_session_summary, c.requested_current_A, c.commanded_current_A,
                limits.state_key(),
                clock.speed, getattr(clock, "requested_speed", None), c.hw.name)

    def status_view(self) -> dict[str, Any]:
        manual_s, now_s = self._time_key()
        key = (manual_s, *self.status_key())
        view = self._fresh(self._status, key, now_s)
        if view is None:
            view = self._build_status(now_s)
            self._status.entry = (key, now_s, view)
            self.builds["status"] += 1
        return view

    def meter_view(self) -> dict[str, Any]:
        c = self.charger
        manual_s, now_s = self._time_key()
        key = (manual_s, c.tick_sequence, c.latest, c.meter_reading)
        view = self._fresh(self._meter, key, now_s)
        if view is None:
            view = self._build_meter()
            self._meter.entry = (key, now_s, view)
            self.builds["meter"] += 1
        return view

    # --- the views --------------------------------------------------------------------------------------------
    def _build_status(self, now_s: float) -> dict[str, Any]:
        charger = self.charger
        m = charger.latest
        cp_state = m.pilot.state if m else "A"
        session = charger.session
        time_s = 0.0
        if session is not None and charger.session_active:
            time_s = now_s - session.started_at_s
        summary = charger.last_session_summary.to_dict() if charger.last_session_summary else None
        fault = charger.active_fault
        speed = charger.clock.speed
        return {
            "session_active": charger.session_active,
            "phase": charger.phase.value,
            "error": fault.name if fault else None,
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
            "active_fault": fault.name if fault else None,
            "clock_s": round(now_s, 3),
            # The speed in force (a scaled clock's governor holds it below the request while the machine
            # cannot keep up), and the one requested; None on a manual clock.
            "speed": round(speed, 3) if speed != math.inf else None,
            "speed_requested": getattr(charger.clock, "requested_speed", None) or (
                speed if speed != math.inf else None),
            "adapter": charger.hw.name,
            # The current and power limits in force and each source's (rating, OCPP ...), availability.
            "limits_in_force": charger.limits.view(),
        }

    def _build_meter(self) -> dict[str, Any]:
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
