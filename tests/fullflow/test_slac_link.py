"""SlacLink (the launcher's SLAC glue) on a ChargerController with the sim adapter and a manual clock, with a
fake SlacService: CP changes reach SLAC in order, 5 % PWM on plug-in, /vehicle/slac follows SLAC, the SECC
starts on the first match only, a stopping SECC ends run(), and the CP-loss timeline (no sockets, no sleeps)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from evse_model.clock import ManualClock
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_secc.slac_link import CpLossRecord, CpLossTimeline, SlacLink
from evse_slac.status import SlacState, SlacStatus

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class FakeSlacService:
    iface = "evse0"

    def __init__(self, on_status, on_matched) -> None:
        self.on_status, self.on_matched = on_status, on_matched
        self.cp_states: list[str] = []
        self.started = self.closed = False

    async def start(self) -> None:
        self.started = True

    async def on_cp_state(self, state: str) -> None:
        self.cp_states.append(state)
        if state in "BCD" and len([s for s in self.cp_states if s in "BCD"]) >= 1:
            self.on_status(SlacStatus(SlacState.MATCHING, None, None, None, None, T0))
        elif state == "A":
            self.on_status(SlacStatus(SlacState.IDLE, None, None, None, None, T0))

    async def match(self) -> None:
        status = SlacStatus(SlacState.MATCHED, "02:00:00:00:E0:01", "00" * 7, "11" * 8, 25.0, T0)
        self.on_status(status)
        await self.on_matched(status)

    async def close(self) -> None:
        self.closed = True


class Rig:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.controller = build_controller(ControllerSettings(_env_file=None), self.clock)  # type: ignore[call-arg]
        self.secc_starts = 0
        self.secc_stop: asyncio.Future | None = None
        self.service: FakeSlacService | None = None

    def factory(self, on_status, on_matched) -> FakeSlacService:
        self.service = FakeSlacService(on_status, on_matched)
        return self.service

    async def start_secc(self) -> None:
        self.secc_starts += 1
        self.secc_stop = asyncio.get_running_loop().create_future()
        await self.secc_stop

    async def cp(self, state: str) -> None:
        await self.controller.set_cp_state(state)
        await self.clock.advance(0.02)


@pytest.fixture
async def rig():
    rig = Rig()
    await rig.controller.start()
    yield rig
    await rig.controller.shutdown()


async def test_cp_changes_reach_slac_pwm_follows_and_the_secc_starts_once(rig: Rig) -> None:
    link = SlacLink(rig.controller, rig.factory, rig.start_secc)
    runner = asyncio.create_task(link.run())
    await rig.clock.advance(0.02)
    service = rig.service
    assert service is not None and service.started
    assert service.cp_states == ["A"]
    assert rig.controller.slac_view["state"] == "IDLE"

    await rig.cp("B")
    assert service.cp_states == ["A", "B"]
    assert rig.controller.latest.duty_percent == 5.0, "5 % PWM on plug-in (HLC)"
    assert rig.controller.slac_view["state"] == "MATCHING"

    await service.match()
    await rig.clock.advance(0.02)
    assert rig.controller.slac_view == {"state": "MATCHED", "ev_mac": "02:00:00:00:E0:01", "nid": "00" * 7,
                                        "run_id": "11" * 8, "attenuation_db": 25.0,
                                        "last_updated": T0.isoformat()}
    assert rig.secc_starts == 1 and link.secc_started

    await rig.cp("C")
    await rig.cp("B")
    await rig.cp("A")
    assert service.cp_states == ["A", "B", "C", "B", "A"]
    assert rig.controller.latest.duty_percent == 100.0, "X1 after unplug"
    assert rig.controller.slac_view["state"] == "IDLE"

    await rig.cp("B")
    await service.match()
    await rig.clock.advance(0.02)
    assert rig.secc_starts == 1, "the SECC started on the first match is kept for the next car"

    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)
    assert service.closed
    assert link.on_tick not in rig.controller.tick_listeners
    assert rig.secc_stop.cancelled(), "the SECC task is cancelled with the link"


async def test_a_stopping_secc_ends_run_with_its_error(rig: Rig) -> None:
    link = SlacLink(rig.controller, rig.factory, rig.start_secc)
    runner = asyncio.create_task(link.run())
    await rig.cp("B")
    await rig.service.match()
    await rig.clock.advance(0.02)
    rig.secc_stop.set_exception(OSError("interface gone"))
    with pytest.raises(OSError, match="interface gone"):
        await asyncio.wait_for(runner, 1.0)
    assert rig.service.closed


async def test_no_pwm_change_while_a_session_runs_or_when_disabled(rig: Rig) -> None:
    link = SlacLink(rig.controller, rig.factory, rig.start_secc, hlc_pwm=False)
    runner = asyncio.create_task(link.run())
    await rig.cp("B")
    assert rig.controller.latest.duty_percent == 100.0
    assert rig.service.cp_states[-1] == "B"
    runner.cancel()
    await asyncio.gather(runner, return_exceptions=True)


async def test_cp_loss_timeline_measures_on_the_controller_clock(rig: Rig) -> None:
    """A sim session charging, then CP A: the timeline reports < 5 A and an open contactor within limits."""
    records: list[CpLossRecord] = []
    timeline = CpLossTimeline(rig.controller, records.append)
    rig.controller.tick_listeners.append(timeline.on_tick)
    from evse_model.session import SessionParams

    rig.controller.start_session(SessionParams(target_voltage_V=400.0, initial_current_A=100.0, duration_s=60.0))
    for _ in range(3000):
        await rig.clock.advance(0.01)
        m = rig.controller.latest
        if rig.controller.stage.value == "charging" and m.output_current_A > 50:
            break
    else:
        pytest.fail("the simulated session did not reach charging")
    await rig.controller.set_cp_state("A")
    for _ in range(20):
        await rig.clock.advance(0.005)
    assert len(records) == 1
    record = records[0]
    assert record.cp_state == "A" and record.current_before_loss_A > 50
    assert record.current_below_5A_after_s is not None and record.current_below_5A_after_s <= 0.030
    assert record.contactor_open_after_s is not None and record.contactor_open_after_s <= 0.100
