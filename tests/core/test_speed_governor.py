"""The simulation runs only as fast as it can compute; the control loop never stalls (issue 10, item 12).

Each control tick integrates the plant over the simulated time since the last tick, and that costs wall time
in proportion. At a speed the machine cannot sustain (``POST /sim/speed {"speed": 10000}``) every tick was
late, the next one had more to integrate, and the event loop stalled for tens of seconds.

A ``SpeedGovernor`` (made by the control loop from its ``ScaledClock``) lowers the speed in force when the
loop stays behind, raises it back towards the requested speed when there is headroom, and holds simulated
time at a horizon ``max_tick_span_s`` past the last tick, so no tick integrates an unbounded stretch.

These tests drive the clock with an injected wall-time source and a modelled tick cost (wall seconds =
fixed cost + cost per simulated second integrated): no wall-clock sleeps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import httpx
import pytest

from ccs_sim.fastapi_app import create_app
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock, RealClock, ScaledClock, SpeedGovernor

CONTROL_PERIOD_S = 0.01
#: What a tick costs on the modelled machine: a fixed part, and the plant's integration per simulated second.
TICK_FIXED_WALL_S = 200e-6
#: 1 ms of wall time per simulated second: this machine integrates at most 1000x real time.
INTEGRATION_WALL_PER_SIM_S = 1e-3
MACHINE_CAPACITY_SPEED = 1.0 / INTEGRATION_WALL_PER_SIM_S


class FakeWall:
    """Monotonic wall seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


@dataclass
class LoopModel:
    """The control loop's cycle on the modelled machine: tick (costing wall time in proportion to the
    simulated time it integrates), then sleep until the next period (nothing when late)."""

    clock: ScaledClock
    wall: FakeWall
    governor: SpeedGovernor
    fixed_wall_s: float = TICK_FIXED_WALL_S
    integration_wall_per_sim_s: float = INTEGRATION_WALL_PER_SIM_S
    last_tick_sim_s: float | None = None
    next_tick_s: float | None = None
    spans_s: list[float] = field(default_factory=list)
    costs_wall_s: list[float] = field(default_factory=list)
    #: (wall, simulated, speed in force) read at every step, to check continuity and monotonicity.
    samples: list[tuple[float, float, float]] = field(default_factory=list)

    def sample(self) -> None:
        self.samples.append((self.wall.now_s, self.clock.now(), self.clock.speed))

    def tick(self, pause_wall_s: float = 0.0) -> None:
        if self.next_tick_s is None:
            self.next_tick_s = self.clock.now()
        self.governor.tick_started()
        now_s = self.clock.now()
        span_s = 0.0 if self.last_tick_sim_s is None else now_s - self.last_tick_sim_s
        self.last_tick_sim_s = now_s
        cost_wall_s = self.fixed_wall_s + self.integration_wall_per_sim_s * span_s + pause_wall_s
        self.wall.advance(cost_wall_s)
        self.sample()
        self.governor.tick_finished()
        self.spans_s.append(span_s)
        self.costs_wall_s.append(cost_wall_s)
        # The control loop's own schedule: sleep until the next period, or not at all when late.
        self.next_tick_s += CONTROL_PERIOD_S
        now_s = self.clock.now()
        if now_s - self.next_tick_s > CONTROL_PERIOD_S:
            self.next_tick_s = now_s
        sleep_wall_s = max(0.0, self.next_tick_s - now_s) / self.clock.speed
        self.wall.advance(sleep_wall_s + 20e-6)  # and a little for the rest of the event loop
        self.sample()

    def run_for_wall(self, seconds: float) -> None:
        until_s = self.wall.now_s + seconds
        while self.wall.now_s < until_s:
            self.tick()


def _loop(speed: float, **costs: float) -> LoopModel:
    wall = FakeWall()
    clock = ScaledClock(speed, wall_time=wall)
    model = LoopModel(clock, wall, clock.governor(CONTROL_PERIOD_S), **costs)
    model.sample()
    return model


def _assert_continuous_and_monotonic(samples: list[tuple[float, float, float]]) -> None:
    """Simulated time never goes back and never jumps: between two readings it advances at most the
    highest speed in force × the wall time between them."""
    for (wall_a, sim_a, speed_a), (wall_b, sim_b, speed_b) in zip(samples, samples[1:]):
        assert sim_b >= sim_a, f"simulated time went back from {sim_a} to {sim_b}"
        assert sim_b - sim_a <= max(speed_a, speed_b) * (wall_b - wall_a) + 1e-9, (
            f"simulated time jumped {sim_b - sim_a:.3f} s in {wall_b - wall_a:.6f} s of wall time")


def test_at_10000x_on_a_machine_that_computes_1000x_the_governor_lowers_the_speed_and_no_tick_stalls():
    model = _loop(10_000.0)
    model.run_for_wall(3.0)

    clock = model.clock
    assert clock.requested_speed == 10_000.0
    assert 1.0 <= clock.speed < MACHINE_CAPACITY_SPEED, clock.speed
    assert model.governor.limit_count >= 1
    # No tick integrates more than the horizon allows, so none costs more than that much integration.
    horizon_s = model.governor.max_tick_span_s
    assert max(model.spans_s) <= horizon_s + 1e-6
    assert max(model.costs_wall_s) <= TICK_FIXED_WALL_S + INTEGRATION_WALL_PER_SIM_S * horizon_s + 1e-6
    # Once limited, the loop keeps up: the last second of ticks stays far below the horizon on average.
    last_second = model.spans_s[-200:]
    assert sum(last_second) / len(last_second) < horizon_s / 4
    _assert_continuous_and_monotonic(model.samples)


def test_without_the_governor_the_same_ticks_snowball():
    """The failure the governor prevents, on the same model: every tick integrates more than the last."""
    wall = FakeWall()
    clock = ScaledClock(10_000.0, wall_time=wall)
    span_s, cost_wall_s = 0.0, TICK_FIXED_WALL_S
    for _ in range(30):
        span_s = clock.speed * cost_wall_s  # the simulated time that passed while the last tick ran
        cost_wall_s = TICK_FIXED_WALL_S + INTEGRATION_WALL_PER_SIM_S * span_s
        wall.advance(cost_wall_s)
    assert cost_wall_s > 1e6  # a single tick costing days of wall time: the stall of item 12


def test_the_speed_returns_to_the_request_once_the_ticks_are_cheap_again():
    model = _loop(10_000.0)
    model.run_for_wall(1.0)
    assert model.clock.speed < MACHINE_CAPACITY_SPEED

    model.integration_wall_per_sim_s = 1e-6  # e.g. the session ended: the plant costs next to nothing
    model.run_for_wall(5.0)

    assert model.clock.speed == model.clock.requested_speed == 10_000.0
    _assert_continuous_and_monotonic(model.samples)


@pytest.mark.parametrize("speed", [1.0, 20.0, 1000.0 * 0.5])
def test_a_speed_the_machine_keeps_up_with_is_never_limited_nor_held(speed):
    model = _loop(speed)
    start_wall_s, start_sim_s = model.wall.now_s, model.clock.now()
    model.run_for_wall(2.0)

    assert model.clock.speed == speed and model.governor.limit_count == 0
    assert model.clock.held_back_s == 0.0
    # Identical to an ungoverned scaled clock: simulated time = speed × wall time.
    assert model.clock.now() - start_sim_s == pytest.approx(speed * (model.wall.now_s - start_wall_s))


def test_a_lone_pause_of_the_process_does_not_lower_the_speed_and_the_next_tick_is_bounded():
    model = _loop(500.0)
    model.run_for_wall(0.5)
    model.tick(pause_wall_s=0.2)  # the machine stops this process for 200 ms in one tick (100 s simulated)
    model.run_for_wall(0.5)

    assert model.clock.speed == 500.0 and model.governor.limit_count == 0
    assert max(model.spans_s) <= model.governor.max_tick_span_s + 1e-6
    _assert_continuous_and_monotonic(model.samples)


def test_the_speed_in_force_never_goes_below_1x():
    model = _loop(10_000.0, integration_wall_per_sim_s=5.0)  # a machine 5x slower than real time
    model.run_for_wall(3600.0)
    assert model.clock.speed == 1.0 and model.clock.requested_speed == 10_000.0
    _assert_continuous_and_monotonic(model.samples)


def test_it_warns_once_when_it_starts_limiting(caplog):
    caplog.set_level(logging.INFO, logger="evse_model.clock")
    model = _loop(10_000.0)
    model.run_for_wall(1.0)
    model.integration_wall_per_sim_s = 1e-6
    model.run_for_wall(5.0)
    model.integration_wall_per_sim_s = INTEGRATION_WALL_PER_SIM_S  # overloaded again at the same request
    model.run_for_wall(1.0)

    assert model.governor.limit_count >= 2
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot keep up with 10000" in warnings[0].getMessage()


def test_time_waits_at_the_horizon_and_runs_on_from_there_without_a_jump():
    wall = FakeWall()
    clock = ScaledClock(1000.0, wall_time=wall)
    governor = clock.governor(CONTROL_PERIOD_S)
    governor.tick_started()
    tick_s = clock.now()
    governor.tick_finished()
    horizon_s = tick_s + governor.max_tick_span_s

    wall.advance(0.05)  # 50 s simulated at 1000x: the loop has not ticked again
    assert clock.now() == pytest.approx(horizon_s)
    assert clock.held_back_s == pytest.approx(50.0 - governor.max_tick_span_s)
    governor.tick_started()  # the loop catches up: time runs on from the horizon
    wall.advance(0.001)
    assert clock.now() == pytest.approx(horizon_s + 1.0)


def test_a_horizon_nobody_moves_on_holds_for_at_most_a_bounded_wall_time():
    """Nothing awaited inside a tick can wait on simulated time forever."""
    wall = FakeWall()
    clock = ScaledClock(100.0, wall_time=wall)
    governor = clock.governor(CONTROL_PERIOD_S)
    governor.tick_started()  # ... and the tick awaits something that waits on simulated time, forever
    horizon_s = clock.now() + governor.max_tick_span_s
    wall.advance(1.0)  # 100 s simulated: time reached the horizon
    assert clock.now() == pytest.approx(horizon_s)
    wall.advance(ScaledClock.HORIZON_HOLD_MAX_WALL_S / 2)
    assert clock.now() == pytest.approx(horizon_s)  # still waiting there
    wall.advance(ScaledClock.HORIZON_HOLD_MAX_WALL_S / 2)
    wall.advance(0.01)
    assert clock.now() == pytest.approx(horizon_s + 1.0)  # running at 100x again, from where it waited


def test_a_new_request_applies_at_once_up_to_the_governors_limit():
    model = _loop(10_000.0)
    model.run_for_wall(1.0)
    limit = model.clock.speed
    assert limit < 1000.0

    model.clock.set_speed(5000.0)  # still above what the machine computes: the limit stays
    assert model.clock.requested_speed == 5000.0 and model.clock.speed == limit
    model.clock.set_speed(limit / 2)  # below the limit: in force at once, and the limit is lifted
    assert model.clock.speed == model.clock.requested_speed == limit / 2
    model.clock.set_speed(10_000.0)
    assert model.clock.speed == 10_000.0
    _assert_continuous_and_monotonic(model.samples)


def test_only_the_scaled_clock_is_governed():
    assert getattr(ManualClock(), "governor", None) is None
    assert getattr(RealClock(), "governor", None) is None


async def test_status_shows_the_speed_in_force_and_the_request_and_sim_speed_answers_the_request(tmp_path):
    wall = FakeWall()
    clock = ScaledClock(20.0, wall_time=wall)
    controller = build_controller(ControllerSettings(_env_file=None, data_dir=tmp_path), clock)
    app = create_app(controller)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://charger") as client:
        response = (await client.post("/sim/speed", json={"speed": 10_000})).json()
        assert response == {"status": "ok", "speed": 10_000.0}
        model = LoopModel(clock, wall, clock.governor(CONTROL_PERIOD_S))
        model.run_for_wall(1.0)  # the control loop's ticks on the modelled machine
        status = (await client.get("/status")).json()
        assert status["speed_requested"] == 10_000.0
        assert status["speed"] == pytest.approx(clock.speed, rel=1e-3) and status["speed"] < 1000.0
        assert (await client.post("/sim/speed", json={"speed": 10_000})).json()["speed"] == 10_000.0

    manual = build_controller(ControllerSettings(_env_file=None, data_dir=tmp_path), ManualClock())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(manual)),
                                 base_url="http://charger") as client:
        status = (await client.get("/status")).json()
        assert status["speed"] is None and status["speed_requested"] is None
