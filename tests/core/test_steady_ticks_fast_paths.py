"""The steady ticks' shortcuts (issue 13 item 2), each against the path it stands for:

- the supply's current limit set inline (what ``Outputs.set_supply_current_limit_now`` does: told, sent, noted),
  only while the controller's way is the plain one, and a spy on that way sees every limit;
- the judged limit worked out once per change of the supply-limit history and kept while the same limits count:
  an over-current whose threshold is crossed when an older, higher limit leaves the window inside a steady run is
  found at the same tick, on the same readings, as with full steps;
- the car's request (OCV and taper looked up in the curve segment of the last request): the same floats as the
  presets' own lookups;
- the whole 10->80 % charge of the 800 V car: the same energy to the uWh as before the shortcuts.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from ccs_sim.batch import simulate_session
from ccs_sim.controller import ChargerController
from ccs_sim.core.control_loop import ControlLoop, _plain_limit_setter
from ccs_sim.core.outputs import Outputs
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock
from evse_model.session import SessionParams
from sim_plant import BATTERY_PRESETS
from sim_plant.battery import Battery, follow_preset
from sim_plant.ev import SimulatedEV

CHARGE = SessionParams(ev_preset="ev800", start_soc_percent=10, target_soc_percent=80, initial_current_A=400,
                       duration_s=3600)


def _settings(period_s: float = 0.01) -> ControllerSettings:
    return ControllerSettings(_env_file=None, control_period_s=period_s)


async def _charging(seconds: float = 30.0) -> tuple[ManualClock, Any]:
    clock = ManualClock()
    controller = build_controller(_settings(), clock)
    await clock.run_until_complete(controller.start())
    controller.start_session(CHARGE)
    await clock.run_until_complete(clock.sleep(seconds))
    return clock, controller


# --- the supply's current limit, set inline ------------------------------------------------------------------
async def test_the_limit_is_set_inline_only_while_the_controllers_way_is_the_plain_one(monkeypatch):
    clock, controller = await _charging(1.0)
    assert _plain_limit_setter(controller, controller.hw) == controller.hw.supply.set_current_limit

    class OwnWay(ChargerController):
        def set_supply_current_limit_now(self, limit_A: float) -> None:
            super().set_supply_current_limit_now(limit_A)

    controller.__class__ = OwnWay
    assert _plain_limit_setter(controller, controller.hw) is None
    controller.__class__ = ChargerController
    controller._outputs.call = lambda function, *args: function(*args)  # type: ignore[method-assign]
    assert _plain_limit_setter(controller, controller.hw) is None
    del controller._outputs.call
    controller.hw.supply.set_current_limit = lambda limit_A: None  # type: ignore[method-assign]
    assert _plain_limit_setter(controller, controller.hw) is None  # Outputs would not note it for the watch
    del controller.hw.supply.set_current_limit
    with monkeypatch.context() as patch:
        patch.setattr(Outputs, "_note_command", lambda self, function, args: None)
        assert _plain_limit_setter(controller, controller.hw) is None
    assert _plain_limit_setter(controller, controller.hw) == controller.hw.supply.set_current_limit
    await clock.run_until_complete(controller.shutdown())


async def test_a_spy_on_the_controllers_way_sees_every_limit_the_steady_ticks_set(monkeypatch):
    """The plain way taken inline leaves what the controller's way leaves (the session charges the same); with a spy
    on ``Outputs`` every limit goes through it, one a car request while the steady ticks run."""
    summaries, limits_told = [], []
    original = Outputs.set_supply_current_limit_now

    def spying(self: Outputs, limit_A: float) -> None:
        limits_told.append(limit_A)
        original(self, limit_A)

    for spy in (False, True):
        with monkeypatch.context() as patch:
            if spy:
                patch.setattr(Outputs, "set_supply_current_limit_now", spying)
            result = await simulate_session(replace(CHARGE, target_soc_percent=12), _settings())
        assert result.controller._loop.steady_tick_count > 2000
        summaries.append({**result.summary.to_dict(), "session_id": None})
    assert summaries[0] == summaries[1] and summaries[0]["energy_Wh"] > 1500.0
    # ~20 car requests a second for ~24 s of charging, each a new limit while the car's request falls with its SOC
    assert len(limits_told) > 400, len(limits_told)


# --- the judged limit, kept while the same limits count ------------------------------------------------------
async def _overcurrent_when_a_higher_limit_leaves_the_window(steady: bool, monkeypatch: pytest.MonkeyPatch
                                                             ) -> dict[str, Any]:
    """At 30 s the stage stops following its commands (its current stays near I) and an operator limit brings the
    charger's to L, (I - 2 A) / 1.05 rounded: the ramp walks the limit down 1 A a tick, then holds it; the readings
    exceed L + 5 % only once the last higher limit has left the supply's 50 ms response window, ticks after the
    last change (in the middle of a steady run)."""
    monkeypatch.setattr(ControlLoop, "steady_ticks", steady)
    clock, controller = await _charging()
    loop = controller._loop
    current_A = controller.latest.output_current_A
    limit_A = float(round((current_A - 2.0) / 1.05))
    faulted: list[tuple[float, Any, int]] = []
    steady_before = loop.steady_tick_count

    def on_fault(fault: Any) -> None:
        faulted.append((clock.now(), controller.latest, loop.steady_tick_count - steady_before))

    controller.fault_listeners.append(on_fault)
    controller.hw.simulation.inject_device_faults(supply_ignores_commands=True)
    controller.set_external_limit("operator", current_A=limit_A)
    await clock.run_until_complete(clock.sleep(2.0))
    assert len(faulted) == 1
    fault = controller.fault_history[0]
    outcome = {"fault": fault.name, "fault_s": fault.time_s, "judged": faulted[0][1], "steady": faulted[0][2],
               "limit_A": limit_A, "current_at_arm_A": current_A,
               "energy_Wh": controller.meter_reading.energy_Wh}
    await clock.run_until_complete(controller.shutdown())
    return outcome


async def test_an_overcurrent_when_an_older_limit_leaves_the_window_is_found_at_the_same_tick(monkeypatch):
    full = await _overcurrent_when_a_higher_limit_leaves_the_window(False, monkeypatch)
    steady = await _overcurrent_when_a_higher_limit_leaves_the_window(True, monkeypatch)
    assert full["fault"] == steady["fault"] == "OVERCURRENT"
    assert steady["fault_s"] == full["fault_s"]
    assert steady["judged"] == full["judged"]  # the same readings, taken by the full step of the same tick
    assert steady["energy_Wh"] == full["energy_Wh"]
    assert full["steady"] == 0 and steady["steady"] > 20  # steady ticks up to the crossing
    assert steady["judged"].output_current_A > steady["limit_A"] * 1.05
    # the ramp down of (I - L) A at 1 A a tick, then the limits above L + 2 A leave the 50 ms window: the
    # crossing comes with the last ticks of the ramp or after it, not before
    ramp_s = (steady["current_at_arm_A"] - steady["limit_A"]) / 100.0
    assert 30.0 + ramp_s - 0.03 < steady["fault_s"] < 30.0 + ramp_s + 0.5


# --- the car's request ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", [BATTERY_PRESETS["ev800"], BATTERY_PRESETS["ev_small"], follow_preset(400.0, 80.0)])
def test_the_cars_request_is_the_presets_lookups_float_for_float(preset):
    ev = SimulatedEV(preset, 0.5, 100.0)
    ev.request_cap_A = preset.max_current_A * 0.9
    checked = 0
    soc = 0.0
    while soc < 1.0:  # every segment of both curves, entered from below as a charge does, and their ends
        ev.battery.soc_fraction = soc
        battery = ev.battery
        pack_V = max(1.0, preset.ocv_V(soc))
        expected_A = max(0.0, min(ev.request_cap_A, preset.max_current_A, preset.max_power_W / pack_V,
                                  preset.taper_current_A(soc)))
        assert battery.ocv_V() == preset.ocv_V(soc)
        assert ev.target_current_A() == expected_A
        checked += 1
        soc = soc + 0.0037 if soc < 0.99 else 1.0
    ev.battery = Battery(preset, 30.0)  # a fresh pack (its own segment cache)
    assert ev.battery.ocv_V() == preset.ocv_V(0.3)
    assert checked > 250


# --- the energy of the whole charge ------------------------------------------------------------------------------
@pytest.mark.parametrize(("period_s", "energy_Wh"), [(0.01, 57966.867421), (0.05, 57969.514893)])
def test_the_whole_charge_of_the_800_V_car_delivers_the_energy_it_did(period_s, energy_Wh):
    """10 -> 80 % of the 800 V car: the figures of main before the steady ticks (73935b4), to the uWh."""
    result = asyncio.run(simulate_session(CHARGE, _settings(period_s), max_simulated_s=2 * 3600.0))
    assert result.summary.energy_Wh == energy_Wh
    if period_s == 0.01:
        assert result.controller._loop.steady_tick_count > 0.9 * result.simulated_s / period_s
