"""The simulator only behind the HAL (issue 11 item 2): the device contract has no simulation hooks; the sim
adapter offers ``SimulationControls`` beside it, and the API's /sim routes, the dashboard's simulation panel
and POST /control/cp_state's CP wire exist only where an adapter offers them."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from ccs_sim.controller import ChargerController
from ccs_sim.dashboard.routes import SIM_PANEL_ABSENT_TAG, SIM_PANEL_TAG
from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from ccs_sim.vehicle import empty_bms_view, sim_bms_view
from evse_hal.adapters.sim import SimHardware
from evse_hal.interfaces import CPReader, EVSEHardware
from evse_hal.simulation import SimulatedCarView, SimulationControls, simulation_controls
from evse_model.clock import ManualClock

SRC = Path(__file__).resolve().parents[2] / "src"
SIM_ROUTES = ("/sim", "/sim/car", "/sim/speed", "/sim/plant")


class BenchHardware(EVSEHardware):
    """A hardware adapter as a builder writes one: the devices (borrowed from a sim plant, so that they
    measure something) and nothing else; it offers no simulation controls."""

    name = "bench"

    def __init__(self, clock: ManualClock) -> None:
        devices = SimHardware(clock)
        self.pwm, self.cp, self.contactor = devices.pwm, devices.cp, devices.contactor
        self.supply, self.meter, self.imd = devices.supply, devices.meter, devices.imd
        self.temperature, self.estop = devices.temperature, devices.estop
        self._devices = devices

    def close(self) -> None:
        self._devices.close()


async def _client_for(hardware: EVSEHardware, clock: ManualClock) -> AsyncIterator[tuple[ChargerController,
                                                                                          httpx.AsyncClient]]:
    controller = ChargerController(hardware, clock, ControllerSettings(_env_file=None))  # type: ignore[call-arg]
    await controller.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(controller)),
                                 base_url="http://charger") as client:
        yield controller, client
    await controller.shutdown()


@pytest.fixture
async def bench() -> AsyncIterator[tuple[ChargerController, httpx.AsyncClient]]:
    clock = ManualClock()
    async for value in _client_for(BenchHardware(clock), clock):
        yield value


def test_the_device_contract_has_no_simulation_hooks():
    assert not hasattr(EVSEHardware, "simulation")
    assert not hasattr(CPReader, "simulate_state")
    assert "simulate_state" not in CPReader.__abstractmethods__


def test_the_sim_adapter_offers_simulation_controls_and_a_hardware_adapter_none():
    clock = ManualClock()
    sim = SimHardware(clock)
    assert isinstance(simulation_controls(sim), SimulationControls) and simulation_controls(sim) is sim.simulation
    assert simulation_controls(BenchHardware(clock)) is None


def test_the_cp_wire_of_the_simulation_controls_sets_what_the_cp_reader_measures():
    sim = SimHardware(ManualClock())
    sim.pwm.set_duty(5.0)
    sim.simulation.present_cp_state("C")
    assert sim.cp.get_state() == "C" and sim.cp.read_voltage() == pytest.approx(6.0, abs=0.15)
    with pytest.raises(ValueError):
        sim.simulation.present_cp_state("F")  # F is the EVSE's state, no car presents it


def test_the_simulated_car_view_is_none_while_no_car_is_plugged_in():
    sim = SimHardware(ManualClock())
    sim.simulation.present_cp_state("A")
    assert sim.simulation.simulated_car_view() is None
    sim.simulation.present_cp_state("B")
    assert sim.simulation.simulated_car_view() is not None


def test_the_bms_view_of_a_simulated_car_is_built_from_its_read_only_view():
    car = SimulatedCarView(preset_name="ev400", capacity_Wh=60_000.0, soc_percent=20.4, target_soc_percent=80.0,
                           open_circuit_voltage_V=371.23456, empty_open_circuit_voltage_V=330.04,
                           target_voltage_V=410.1234, target_current_A=120.0004, max_power_W=150_000.0,
                           max_current_A=350.0, max_voltage_V=450.0)
    at_rest = sim_bms_view(car, present_voltage_V=0.0)
    assert at_rest["present_voltage"] == 371.235  # no output voltage: the pack's open-circuit voltage
    view = sim_bms_view(car, present_voltage_V=380.0)
    assert view["evcc_id"] == "SIM-EV400" and view["present_soc"] == 20 and view["present_voltage"] == 380.0
    assert view["target_voltage"] == 410.123 and view["target_current"] == 120.0
    assert view["energy_requests"] == {"target_energy_request": 35_760.0, "max_energy_request": 47_760.0,
                                       "min_energy_request": 0.0}
    assert view["soc_limits"] == {"min_soc": 0, "max_soc": 100, "target_soc": 80}
    assert view["rated_limits"]["dc"]["min_voltage"] == 330.0 and view["source"] == "simulation"
    assert view["session_limits"]["dc"] == view["rated_limits"]["dc"]


@pytest.mark.parametrize("method, path, body", [("GET", "/sim", None), ("POST", "/sim/car", {"preset": "ev400"}),
                                                ("POST", "/sim/speed", {"speed": 2.0}),
                                                ("POST", "/sim/plant", {"estop_pressed": True})])
async def test_a_hardware_adapter_has_no_sim_routes(bench, method, path, body):
    _, client = bench
    response = await client.request(method, path, json=body)
    assert response.status_code == 404 and response.json()["status"] == "error"


async def test_a_hardware_adapter_documents_no_sim_routes(bench):
    _, client = bench
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert not set(SIM_ROUTES) & set(paths) and "/control/cp_state" in paths


async def test_the_cp_state_endpoint_refuses_clearly_without_a_simulated_car(bench):
    controller, client = bench
    answer = (await client.post("/control/cp_state", json={"state": "B"})).json()
    assert answer["status"] == "error" and answer["state"] == "B"
    assert "no simulated car" in answer["message"] and "measured" in answer["message"]
    assert controller.latest is not None and controller.latest.pilot.state == "A"  # nothing pretended B


async def test_a_hardware_adapter_shows_no_simulation_panel_and_no_simulated_bms(bench):
    _, client = bench
    snapshot = (await client.get("/dashboard/snapshot")).json()
    assert snapshot["sim"] is None
    page = (await client.get("/")).text
    assert SIM_PANEL_ABSENT_TAG in page and SIM_PANEL_TAG not in page
    assert (await client.get("/vehicle/bms")).json() == empty_bms_view()
    refused = (await client.post("/start_session", json={})).json()
    assert refused["status"] == "error" and "no simulated car" in refused["message"]


async def test_the_sim_adapter_keeps_its_sim_routes_and_panel(rig):
    state = (await rig.client.get("/sim")).json()
    assert state["status"] == "ok" and state["car"]["preset"] == "follow"
    assert state["plant"]["estop_pressed"] is False and state["speed"] is None  # manual clock
    assert (await rig.post("/sim/car", {"preset": "ev400", "start_soc": 30})).json() == {
        "status": "ok", "preset": "ev400", "start_soc": 30.0, "target_soc": None, "applies": "from the next session"}
    assert (await rig.post("/sim/plant", {"isolation_resistance_ohm": 400_000.0})).json() == {
        "status": "ok", "isolation_resistance_ohm": 400_000.0, "ambient_temperature_C": 25.0, "estop_pressed": False}
    snapshot = (await rig.client.get("/dashboard/snapshot")).json()
    assert snapshot["sim"]["car"]["preset"] == "ev400" and snapshot["sim"]["plant"]["isolation_resistance_ohm"] == 4e5
    page = (await rig.client.get("/")).text
    assert SIM_PANEL_TAG in page and SIM_PANEL_ABSENT_TAG not in page
    paths = (await rig.client.get("/openapi.json")).json()["paths"]
    assert set(SIM_ROUTES) <= set(paths)


async def test_an_app_that_builds_its_controller_at_start_up_adds_the_sim_routes_then(tmp_path):
    app = create_app(settings=ControllerSettings(_env_file=None, data_dir=tmp_path / "data"))  # type: ignore[call-arg]
    assert not {getattr(route, "path", None) for route in app.routes} & set(SIM_ROUTES)  # no adapter yet
    async with app.router.lifespan_context(app):
        assert set(SIM_ROUTES) <= {getattr(route, "path", None) for route in app.routes}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://charger") as client:
            assert (await client.get("/sim")).json()["car"]["preset"] == "follow"


def test_nothing_but_the_sim_adapter_imports_the_plant():
    """ccs_sim, evse_secc and evse_hal (but adapters/sim.py) reach the plant only through the HAL."""
    importers = []
    for package in ("ccs_sim", "evse_secc", "evse_hal"):
        for path in sorted((SRC / package).rglob("*.py")):
            if path == SRC / "evse_hal" / "adapters" / "sim.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                if any(name == "sim_plant" or name.startswith("sim_plant.") for name in names):
                    importers.append(str(path.relative_to(SRC)))
    assert importers == []


def test_build_controller_on_the_sim_adapter_offers_simulation(tmp_path):
    controller = build_controller(ControllerSettings(_env_file=None, data_dir=tmp_path), ManualClock())  # type: ignore[call-arg]
    assert simulation_controls(controller.hw) is controller.hw.simulation


class _RecordingApi:
    """Stands in for ``evse_ev.api_client.ApiClient``: answers GET /sim as a controller with or without simulation."""

    def __init__(self, simulates: bool) -> None:
        self.simulates = simulates
        self.calls: list[tuple[str, str, dict | None]] = []

    async def aget(self, path: str) -> dict:
        from evse_ev.api_client import ApiError

        self.calls.append(("GET", path, None))
        if not self.simulates:
            raise ApiError(f"GET {path}: HTTP 404: {{'status': 'error', 'message': 'Not Found'}}")
        return {"status": "ok"}

    async def apost(self, path: str, body: dict) -> dict:
        self.calls.append(("POST", path, body))
        return {"status": "ok", **body}


@pytest.mark.parametrize("simulates", [True, False])
async def test_the_ev_tools_api_cp_wire_drives_only_a_simulating_controller(simulates):
    from evse_ev.cp_wire import ApiCpWire

    api = _RecordingApi(simulates)
    wire = ApiCpWire(api)  # type: ignore[arg-type]
    await wire.set_state("B")
    await wire.set_state("C")
    posts = [call for call in api.calls if call[0] == "POST"]
    assert api.calls[0] == ("GET", "/sim", None) and sum(call[0] == "GET" for call in api.calls) == 1
    assert posts == ([("POST", "/control/cp_state", {"state": "B"}), ("POST", "/control/cp_state", {"state": "C"})]
                     if simulates else [])
