"""One snapshot of everything the dashboard shows, built from the controller's public views.

The same dict is one event of ``GET /stream`` and the body of ``GET /dashboard/snapshot``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ccs_sim.controller import ChargerController
from ccs_sim.http.sim_routes import simulation_view
from evse_hal.simulation import simulation_controls

#: How many of the newest fault-history entries a snapshot carries (the cause of the latest abort is the last one).
RECENT_FAULTS = 5


def sim_view(controller: ChargerController) -> dict[str, Any] | None:
    """The simulated car's and plant's knobs in force (as ``GET /sim``), or None when the adapter offers no
    simulation controls (real hardware): the page then shows no simulation panel."""
    controls = simulation_controls(controller.hw)
    return simulation_view(controls) if controls is not None else None


def session_view(controller: ChargerController) -> dict[str, Any] | None:
    """The current (or most recent) session's identity and the parameters in force for it."""
    session = controller.session
    if session is None:
        return None
    return {"session_id": session.session_id, "source": session.source,
            "started_at": session.started_at.isoformat(), "params": asdict(session.params)}


def build_snapshot(controller: ChargerController, sequence: int = 0) -> dict[str, Any]:
    return {
        "seq": sequence,
        "status": controller.status_view(),
        "meter": controller.meter_view(),
        "bms": controller.bms_view(),
        "slac": controller.slac_view,
        "iso15118": controller.iso15118_view,
        "sim": sim_view(controller),
        "session": session_view(controller),
        "faults": [fault.to_dict() for fault in controller.fault_history[-RECENT_FAULTS:]],
        "limits": {"max_voltage_V": controller.evse_max_voltage_V, "max_current_A": controller.evse_max_current_A,
                   "max_power_W": controller.evse_max_power_W},
    }
