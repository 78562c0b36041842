"""What the controller knows of the car: the spec's /vehicle/bms, /vehicle/slac and /vehicle/iso15118 views.

In simulation the BMS view is filled from the simulated car (the read-only ``SimulatedCarView`` the sim
adapter's simulation controls give: nothing here touches the plant); with the SECC it is filled from the
ISO 15118 EV data; SLAC from the SLAC service. Plain dicts of the spec's fields, built by functions, so
the API layer only serialises.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from evse_hal.iso15118.views import AC_RATED_FIELDS, AC_SESSION_FIELDS, DC_LIMIT_FIELDS
from evse_hal.simulation import SimulatedCarView


def empty_bms_view() -> dict[str, Any]:
    return {
        "protocol": None,
        "evcc_id": None,
        "present_soc": None,
        "present_voltage": None,
        "target_voltage": None,
        "target_current": None,
        "total_battery_capacity": None,
        "energy_requests": {"target_energy_request": None, "max_energy_request": None,
                            "min_energy_request": None},
        "soc_limits": {"min_soc": None, "max_soc": None, "target_soc": None},
        "rated_limits": {"dc": dict.fromkeys(DC_LIMIT_FIELDS), "ac": dict.fromkeys(AC_RATED_FIELDS)},
        "session_limits": {"dc": dict.fromkeys(DC_LIMIT_FIELDS), "ac": dict.fromkeys(AC_SESSION_FIELDS)},
        "source": None,
    }


def sim_bms_view(car: SimulatedCarView, present_voltage_V: float) -> dict[str, Any]:
    """The simulated car's BMS as an ISO 15118 EV would report it."""
    view = empty_bms_view()
    energy_to_target_Wh = max(0.0, (car.target_soc_percent - car.soc_percent) / 100.0 * car.capacity_Wh)
    energy_to_full_Wh = max(0.0, (100.0 - car.soc_percent) / 100.0 * car.capacity_Wh)
    view.update({
        "protocol": None,
        "evcc_id": f"SIM-{car.preset_name.upper()}",
        "present_soc": int(round(car.soc_percent)),
        "present_voltage": round(present_voltage_V if present_voltage_V > 0 else car.open_circuit_voltage_V, 3),
        "target_voltage": round(car.target_voltage_V, 3),
        "target_current": round(car.target_current_A, 3),
        "total_battery_capacity": car.capacity_Wh,
        "energy_requests": {"target_energy_request": round(energy_to_target_Wh, 1),
                            "max_energy_request": round(energy_to_full_Wh, 1),
                            "min_energy_request": 0.0},
        "soc_limits": {"min_soc": 0, "max_soc": 100, "target_soc": int(round(car.target_soc_percent))},
        "source": "simulation",
    })
    dc_rated = {"max_charge_power": car.max_power_W, "min_charge_power": 0.0,
                "max_charge_current": car.max_current_A, "min_charge_current": 0.0,
                "max_voltage": car.max_voltage_V, "min_voltage": round(car.empty_open_circuit_voltage_V, 1),
                "max_discharge_power": None, "min_discharge_power": None, "max_discharge_current": None}
    view["rated_limits"]["dc"] = dc_rated
    view["session_limits"]["dc"] = dict(dc_rated)
    return view


def empty_slac_view(now: datetime) -> dict[str, Any]:
    return {"state": "IDLE", "ev_mac": None, "nid": None, "run_id": None, "attenuation_db": None,
            "last_updated": now.isoformat()}


def empty_iso15118_view() -> dict[str, Any]:
    return {"protocol": None, "energy_service": None, "control_mode": None, "authorized": None,
            "evse_id": None, "session_id": None, "timestamps": {"started_at": None, "last_message_at": None}}
