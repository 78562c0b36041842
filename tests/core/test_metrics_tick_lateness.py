"""``GET /metrics``: the control-tick start-lateness histogram (issue 13), on the manual clock.

The ticks' lateness is what the control thread records per scheduled tick (``tick_sequence`` counted,
``tick_lateness_s_recent`` appended); the tests record it the same way, so the values are chosen.

Each scrape observes the ticks run since the previous one, taken from ``controller.tick_lateness_s_recent``;
``ccs_control_tick_lateness_recent_max_seconds`` is the largest lateness in that window.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

from ccs_sim.observability.metrics import TICK_LATENESS_BUCKETS_S, ControllerMetrics
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock

if TYPE_CHECKING:
    from conftest import Rig  # tests/core/conftest.py

HISTOGRAM = "ccs_control_tick_lateness_seconds"
RECENT_MAX = "ccs_control_tick_lateness_recent_max_seconds"


def samples(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return values


def bucket(values: dict[str, float], le: str) -> float:
    return values[f'{HISTOGRAM}_bucket{{le="{le}"}}']


def run_ticks(controller, lateness_s: list[float]) -> None:  # type: ignore[no-untyped-def]
    """What the control loop records per scheduled tick: the tick counted, its start lateness kept."""
    for value in lateness_s:
        controller.tick_sequence += 1
        controller.tick_lateness_s_recent.append(value)


def test_each_tick_is_observed_once_in_its_bucket_and_the_recent_max_is_exposed() -> None:
    controller = build_controller(ControllerSettings(_env_file=None), ManualClock())  # type: ignore[call-arg]
    metrics = ControllerMetrics(controller)
    assert TICK_LATENESS_BUCKETS_S[0] == 0.00025 and TICK_LATENESS_BUCKETS_S[-1] == 0.1

    run_ticks(controller, [0.0, 0.0002, 0.0003, 0.004, 0.012])
    first = samples(metrics.render())
    assert first[f"{HISTOGRAM}_count"] == 5
    assert first[f"{HISTOGRAM}_sum"] == 0.0002 + 0.0003 + 0.004 + 0.012
    assert bucket(first, "0.00025") == 2      # 0 and 0.2 ms
    assert bucket(first, "0.0005") == 3       # + 0.3 ms
    assert bucket(first, "0.005") == 4        # + 4 ms
    assert bucket(first, "0.01") == 4
    assert bucket(first, "0.02") == 5         # + 12 ms
    assert bucket(first, "+Inf") == 5
    assert first[RECENT_MAX] == 0.012

    second = samples(metrics.render())  # no tick since: nothing observed twice
    assert second[f"{HISTOGRAM}_count"] == 5 and second[RECENT_MAX] == 0.012

    run_ticks(controller, [0.150, 0.0])
    third = samples(metrics.render())
    assert third[f"{HISTOGRAM}_count"] == 7
    assert bucket(third, "0.1") == 6 and bucket(third, "+Inf") == 7  # 150 ms is beyond the last bucket
    assert third[RECENT_MAX] == 0.150


def test_scrapes_further_apart_than_the_window_observe_the_window() -> None:
    controller = build_controller(ControllerSettings(_env_file=None), ManualClock())  # type: ignore[call-arg]
    metrics = ControllerMetrics(controller)
    window = controller.tick_lateness_s_recent.maxlen
    assert window == controller.TICK_LATENESS_WINDOW
    run_ticks(controller, [0.05] * 10 + [0.001] * window)  # the ten 50 ms ticks left the window
    values = samples(metrics.render())
    assert values[f"{HISTOGRAM}_count"] == window
    assert bucket(values, "0.001") == window
    assert values[RECENT_MAX] == 0.001


async def test_get_metrics_serves_the_histogram_of_the_ticks_run(rig: Rig) -> None:
    controller = rig.controller
    before = samples((await rig.client.get("/metrics")).text)
    run_ticks(controller, [0.0007, 0.0031, 0.0007])  # as the control thread records three ticks
    after = samples((await rig.client.get("/metrics")).text)
    assert after[f"{HISTOGRAM}_count"] - before[f"{HISTOGRAM}_count"] == 3
    assert bucket(after, "0.001") - bucket(before, "0.001") == 2
    assert bucket(after, "0.005") - bucket(before, "0.005") == 3
    assert after[RECENT_MAX] == max(controller.tick_lateness_s_recent) >= 0.0031
