"""The simulation's routes (``GET /sim``, ``POST /sim/car``, ``/sim/speed``, ``/sim/plant``).

They exist only where the hardware adapter offers simulation controls (``evse_hal.simulation``):
``include_simulation_routes`` adds them to the app for such a controller and leaves a real adapter's API
without them (404). They act through the ``SimulationControls`` interface, never on the plant.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request

from ccs_sim.controller import ChargerController
from ccs_sim.http.api_models import SimCarRequest, SimPlantRequest, SimSpeedRequest
from ccs_sim.http.routing import add_router_routes, controller_of
from evse_hal.simulation import SimulationControls, simulation_controls

#: ``app.state`` flag: the simulation routes are in the app (added once).
SIMULATION_ROUTES_INCLUDED = "simulation_routes_included"
#: Every simulation route; ``include_simulation_routes`` adds them to an app that serves a simulation.
router = APIRouter()


def include_simulation_routes(app: FastAPI, controller: ChargerController) -> bool:
    """Add the ``/sim`` routes to ``app`` if ``controller``'s adapter offers simulation controls; True if so.

    Call it before the app serves (``create_app`` or its lifespan's start-up). The routes become the app's own
    (``add_router_routes``), as the spec's do."""
    if simulation_controls(controller.hw) is None:
        return False
    if not getattr(app.state, SIMULATION_ROUTES_INCLUDED, False):
        add_router_routes(app, router)
        setattr(app.state, SIMULATION_ROUTES_INCLUDED, True)
    return True


def simulation_view(controls: SimulationControls) -> dict[str, Any]:
    """The simulated car's and plant's knobs in force (``GET /sim`` and the dashboard's ``sim``)."""
    knobs = controls.knobs()
    return {
        "car": {"preset": knobs.preset_name, "start_soc": knobs.start_soc_percent,
                "target_soc": knobs.target_soc_percent, "soc": round(knobs.car_soc_percent, 3),
                "plugged_in": knobs.car_plugged_in, "contactor_closed": knobs.car_contactor_closed},
        "plant": {"isolation_resistance_ohm": knobs.isolation_resistance_ohm,
                  "ambient_temperature_C": knobs.ambient_temperature_C,
                  "estop_pressed": knobs.estop_pressed},
    }


def _controls(request: Request) -> SimulationControls:
    controls = simulation_controls(controller_of(request).hw)
    assert controls is not None, "the /sim routes are only added for an adapter with simulation controls"
    return controls


@router.get("/sim")
async def sim_state(request: Request) -> dict[str, Any]:
    clock = controller_of(request).clock
    return {"status": "ok", **simulation_view(_controls(request)),
            "speed": clock.speed if clock.speed != float("inf") else None}


@router.post("/sim/car")
async def sim_car(request: Request, body: SimCarRequest) -> dict[str, Any]:
    controls = _controls(request)
    controls.configure_car(body.preset, body.start_soc, body.target_soc)
    knobs = controls.knobs()
    return {"status": "ok", "preset": knobs.preset_name, "start_soc": knobs.start_soc_percent,
            "target_soc": knobs.target_soc_percent, "applies": "from the next session"}


@router.post("/sim/speed")
async def sim_speed(request: Request, body: SimSpeedRequest) -> dict[str, Any]:
    """Change how fast simulated time runs (scaled-clock simulations only), from now on."""
    clock = controller_of(request).clock
    set_speed = getattr(clock, "set_speed", None)
    if set_speed is None:
        return {"status": "error",
                "message": "the speed can only be changed in a simulation running on a scaled clock"}
    set_speed(body.speed)
    # The speed asked for; /status shows the speed in force (lower while the machine cannot keep up).
    return {"status": "ok", "speed": getattr(clock, "requested_speed", clock.speed)}


@router.post("/sim/plant")
async def sim_plant(request: Request, body: SimPlantRequest) -> dict[str, Any]:
    controls = _controls(request)
    if body.isolation_resistance_ohm is not None:
        controls.set_isolation_resistance(body.isolation_resistance_ohm)
    if body.ambient_temperature_C is not None:
        controls.set_ambient_temperature(body.ambient_temperature_C)
    if body.estop_pressed is not None:
        controls.set_estop_pressed(body.estop_pressed)
    await controller_of(request).tick_now()
    return {"status": "ok", **simulation_view(controls)["plant"]}

