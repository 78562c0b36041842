"""One snapshot of everything the dashboard shows, built from the controller's public views.

The same dict is one event of ``GET /stream`` and the body of ``GET /dashboard/snapshot``.

``SnapshotCache`` builds it (and its JSON) once per control tick for every reader: 50 ``/stream``
subscribers cost one build per tick, each event then splices its own ``seq`` into the shared JSON text.
Its key is what the snapshot shows that can change between ticks (the cached ``/status`` and ``/meter``
dicts, which already key on the tick and on the command state, the vehicle views, the simulation knobs,
the session, the fault history, the limits), so a command followed at once by a read shows its effect.
"""

from __future__ import annotations

import json
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


def snapshot_key(controller: ChargerController) -> tuple[Any, ...]:
    """What a snapshot shows, by identity (or cheap value): far cheaper than building the snapshot."""
    controls = simulation_controls(controller.hw)
    history = controller.fault_history
    return (controller.status_view(), controller.meter_view(), controller.bms_view_override,
            controller.slac_view, controller.iso15118_view, controls.knobs() if controls is not None else None,
            controller.session, len(history), history[-1] if history else None,
            controller.evse_max_voltage_V, controller.evse_max_current_A, controller.evse_max_power_W)


class SnapshotCache:
    """The latest snapshot of one controller (``seq`` 0) and its ``/stream`` JSON, rebuilt when its key changes."""

    def __init__(self, controller: ChargerController) -> None:
        self.controller = controller
        self._entry: tuple[tuple[Any, ...], dict[str, Any], str] | None = None
        #: How many times the snapshot was built (tests and benchmarks count them).
        self.builds = 0

    def _current(self) -> tuple[dict[str, Any], str]:
        key = snapshot_key(self.controller)
        entry = self._entry
        if entry is None or entry[0] != key:
            snapshot = build_snapshot(self.controller, 0)
            body = {name: value for name, value in snapshot.items() if name != "seq"}
            # As ``sse.format_event`` writes a snapshot's data line (compact, strict JSON).
            text = json.dumps(body, separators=(",", ":"), allow_nan=False, default=str)
            entry = self._entry = (key, snapshot, text)
            self.builds += 1
        return entry[1], entry[2]

    def snapshot(self) -> dict[str, Any]:
        """The snapshot (``seq`` 0), shared by every reader: do not change it."""
        return self._current()[0]

    def event_data(self, sequence: int) -> str:
        """The JSON of the snapshot with ``seq`` = ``sequence`` (the ``data:`` of one ``/stream`` event)."""
        return f'{{"seq":{int(sequence)},{self._current()[1][1:]}'
