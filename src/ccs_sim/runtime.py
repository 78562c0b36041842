"""Wiring: settings → clock → hardware (registry) → controller, with nothing done at import time."""

from __future__ import annotations

from ccs_sim.clock import Clock, RealClock, ScaledClock
from ccs_sim.controller import ChargerController
from ccs_sim.orchestrator import SimSessionDriver
from ccs_sim.settings import ControllerSettings
from evse_hal.registry import create_hardware


def make_clock(settings: ControllerSettings) -> Clock:
    if settings.adapter != "sim" or settings.speed == 1.0:
        return RealClock()
    return ScaledClock(settings.speed)


def build_controller(settings: ControllerSettings, clock: Clock | None = None) -> ChargerController:
    """A controller on the adapter the settings name (not started: call ``await controller.start()``)."""
    if settings.adapter != "sim" and settings.speed != 1.0:
        raise ValueError("speed applies to the simulated adapter only; hardware runs in real time")
    clock = clock or make_clock(settings)
    hardware = create_hardware(settings.adapter, clock)
    controller = ChargerController(hardware, clock, settings)
    controller.register_sim_driver(SimSessionDriver)
    return controller
