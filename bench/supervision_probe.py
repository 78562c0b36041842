"""Fault injection and the fault → output current < 5 A measurement of bench_supervision.py.

Nothing here runs on the server's event loop while a sample is measured: a fault is injected from a thread of
its own (the e-stop button is pressed, the insulation fails, a user's ``POST /fault`` is sent or
``controller.raise_fault`` is handed to the loop whenever the world decides, not when the loop is free), and
the instant the output current falls below 5 A is read from the simulated plant itself: its integration step is
wrapped to note the simulated time (= wall time on the real clock) at which the cable current crosses 5 A,
interpolated inside the step (the emergency fall is linear, ``_approach``), or the instant the contactor opens.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from evse_model import standards
from evse_model.faults import E_STOP

#: IEC 61851-23 CC.5.4 / DG: emergency shutdown brings the output current below 5 A within 30 ms (standards.md).
EMERGENCY_CURRENT_A = standards.EMERGENCY_CURRENT_A
DEADLINE_S = standards.EMERGENCY_CURRENT_DEADLINE_S
#: An insulation resistance well below the 100 kΩ fault threshold (IEC 61851-23:2023 6.3.1.105).
FAILED_INSULATION_OHM = 20_000.0

#: The fault paths measured: who finds or reports the fault.
FAULT_PATHS = ("supervisor: e-stop pressed", "supervisor: insulation fails", "POST /fault (E_STOP)",
               "controller.raise_fault(E_STOP)")


class CurrentCrossingProbe:
    """Notes when the simulated cable current first falls below 5 A after ``arm(t0)``."""

    def __init__(self, plant: Any) -> None:
        self.plant = plant
        self._armed_at_s: float | None = None
        self.crossed_at_s: float | None = None
        self.crossed = threading.Event()
        step, set_contactor = plant._step, plant.set_evse_contactor

        def wrapped_step(dt_s: float) -> None:
            before_A, start_s = plant.cable_current_A, plant.time_s
            step(dt_s)
            if self._armed_at_s is not None and not self.crossed.is_set():
                after_A = plant.cable_current_A
                if after_A < EMERGENCY_CURRENT_A:
                    fraction = 1.0
                    if before_A > after_A and before_A >= EMERGENCY_CURRENT_A:
                        fraction = (before_A - EMERGENCY_CURRENT_A) / (before_A - after_A)
                    self._note(start_s + fraction * dt_s)

        def wrapped_set_contactor(closed: bool) -> None:
            set_contactor(closed)
            if self._armed_at_s is not None and plant.cable_current_A < EMERGENCY_CURRENT_A:
                self._note(plant.time_s)

        plant._step = wrapped_step
        plant.set_evse_contactor = wrapped_set_contactor

    def _note(self, time_s: float) -> None:
        if self.crossed.is_set():
            return
        assert self._armed_at_s is not None
        self.crossed_at_s = max(time_s, self._armed_at_s)
        self.crossed.set()

    def arm(self, at_s: float) -> None:
        self.crossed.clear()
        self.crossed_at_s = None
        self._armed_at_s = at_s

    def disarm(self) -> None:
        self._armed_at_s = None


@dataclass
class FaultInjector:
    """Injects one fault per ``inject`` call from the calling (non-loop) thread; returns the injection instant."""

    controller: Any
    loop: asyncio.AbstractEventLoop
    api_url: str
    probe: CurrentCrossingProbe

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.api_url, timeout=5.0)

    def inject(self, path: str) -> float:
        clock, hw = self.controller.clock, self.controller.hw
        action: Callable[[], object]
        if path == FAULT_PATHS[0]:
            action = lambda: setattr(hw.estop, "pressed", True)  # noqa: E731 - the button, read each tick
        elif path == FAULT_PATHS[1]:
            action = lambda: setattr(hw.simulation.plant, "isolation_resistance_ohm",  # noqa: E731
                                     FAILED_INSULATION_OHM)
        elif path == FAULT_PATHS[2]:
            action = lambda: self.http.post("/fault", json={"type": "E_STOP"})  # noqa: E731
        else:
            action = lambda: asyncio.run_coroutine_threadsafe(  # noqa: E731
                self.controller.raise_fault(E_STOP, source="bench"), self.loop)
        injected_at_s = clock.now()
        self.probe.arm(injected_at_s)
        action()
        return injected_at_s

    def restore(self) -> None:
        """Release the e-stop and mend the insulation (the next sample starts from a healthy charger)."""
        hw = self.controller.hw
        hw.estop.pressed = False
        hw.simulation.plant.isolation_resistance_ohm = hw.simulation.plant.config.isolation_resistance_ohm

    def close(self) -> None:
        self.http.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


class TickLatenessCollector:
    """The control ticks' start lateness since ``start()``, read from ``controller.tick_lateness_s_recent``."""

    def __init__(self, controller: Any) -> None:
        self.controller = controller
        self.values_s: list[float] = []
        self._seen_sequence = controller.tick_sequence

    def start(self) -> None:
        self.values_s = []
        self._seen_sequence = self.controller.tick_sequence

    def collect(self) -> None:
        """Take the entries of the ticks run since the last call (call it well within the 6000-tick window)."""
        sequence = self.controller.tick_sequence
        recent = list(self.controller.tick_lateness_s_recent)
        new = min(len(recent), sequence - self._seen_sequence)
        if new > 0:
            self.values_s.extend(recent[-new:])
        self._seen_sequence = sequence
