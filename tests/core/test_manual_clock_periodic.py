"""The manual clock's periodic jobs: called at each deadline, in order with sleepers, without a loop turn each."""

from __future__ import annotations

import asyncio

import pytest

from evse_model.clock import ManualClock


async def test_a_periodic_job_runs_at_each_of_its_deadlines():
    clock = ManualClock()
    calls: list[float] = []
    clock.every(0.01, lambda: calls.append(round(clock.now(), 9)))
    await clock.advance(0.055)
    assert calls == [0.01, 0.02, 0.03, 0.04, 0.05]
    assert clock.now() == pytest.approx(0.055)


async def test_a_job_and_sleepers_run_in_deadline_order_ties_in_the_order_they_were_scheduled():
    clock = ManualClock()
    order: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        order.append((name, round(clock.now(), 9)))

    early = asyncio.create_task(sleeper("sleeper-before", 0.02))  # scheduled before the job's 0.02 deadline
    await clock.settle()
    clock.every(0.01, lambda: order.append(("job", round(clock.now(), 9))))
    late = asyncio.create_task(sleeper("sleeper-after", 0.015))
    await clock.advance(0.02)
    await asyncio.gather(early, late)
    assert order == [("job", 0.01), ("sleeper-after", 0.015), ("sleeper-before", 0.02), ("job", 0.02)]


async def test_what_a_job_starts_on_the_loop_runs_before_time_moves_on():
    clock = ManualClock()
    seen: list[float] = []

    async def follow_up(at_s: float) -> None:
        seen.append(at_s)

    clock.every(0.01, lambda: asyncio.ensure_future(follow_up(clock.now())) and None)
    await clock.advance(0.03)
    assert [round(at_s, 9) for at_s in seen] == [0.01, 0.02, 0.03]


async def test_a_cancelled_job_stops_and_run_until_complete_drives_jobs_without_a_loop_turn_each():
    clock = ManualClock()
    calls = 0

    def count() -> None:
        nonlocal calls
        calls += 1

    job = clock.every(0.01, count)
    turns = 0
    loop = asyncio.get_running_loop()
    original = loop._run_once  # type: ignore[attr-defined]

    def counting_run_once() -> None:
        nonlocal turns
        turns += 1
        original()

    loop._run_once = counting_run_once  # type: ignore[attr-defined]
    try:
        await clock.run_until_complete(clock.sleep(100.005))
    finally:
        loop._run_once = original  # type: ignore[attr-defined]
    assert calls == 10_000
    # One turn of the event loop per DIRECT_RUNS_BETWEEN_YIELDS jobs (and a few for the sleeper), not one per job.
    assert turns <= 10_000 // ManualClock.DIRECT_RUNS_BETWEEN_YIELDS + 10
    job.cancel()
    await clock.advance(1.0)
    assert calls == 10_000
