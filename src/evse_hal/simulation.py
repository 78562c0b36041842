"""Simulation controls: what a simulated adapter offers beside the device contract, and real hardware has not.

The device contract (``interfaces.py``) is everything the controller needs to charge; nothing in it is
simulation. A simulated adapter also offers a ``SimulationControls`` as its ``simulation`` attribute: the car
that plugs in (preset, SOC), the plant's knobs (insulation, ambient temperature, the emergency-stop button)
and the CP "wire" (the car's resistor network presenting a CP state). Code that needs them asks
``simulation_controls(hw)`` and gets None on real hardware, where the API's ``/sim`` routes and the
dashboard's simulation panel are then absent and ``POST /control/cp_state`` is refused.

Nothing here imports the simulated plant: what the controller reads of the simulated car comes as the
read-only ``SimulatedCarView``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

#: The CP states a simulated car can present (IEC 61851-1 Annex A; F is the EVSE's own state).
SIMULATED_CP_STATES = ("A", "B", "C", "D", "E")


@dataclass(frozen=True)
class SimulatedCarView:
    """What the simulated car's BMS knows now, read-only (the ``/vehicle/bms`` view of a simulated session)."""

    preset_name: str
    capacity_Wh: float
    soc_percent: float
    target_soc_percent: float
    #: Open-circuit voltage of the pack now.
    open_circuit_voltage_V: float
    #: Open-circuit voltage of the pack at 0 % SOC (the lowest voltage it accepts charge at).
    empty_open_circuit_voltage_V: float
    target_voltage_V: float
    target_current_A: float
    max_power_W: float
    max_current_A: float
    max_voltage_V: float


@dataclass(frozen=True)
class SimulationKnobs:
    """The simulation's settings in force and the car's state, read-only (``GET /sim``)."""

    preset_name: str
    start_soc_percent: float | None
    target_soc_percent: float | None
    car_soc_percent: float
    car_plugged_in: bool
    car_contactor_closed: bool
    isolation_resistance_ohm: float
    ambient_temperature_C: float
    estop_pressed: bool


class SimulationControls(ABC):
    """The knobs a simulation has and hardware has not: the car, its battery, the plant, the CP wire."""

    #: The car preset the next simulated session gets (``follow`` or a battery preset's name).
    preset_name: str

    @abstractmethod
    def knobs(self) -> SimulationKnobs:
        """The settings in force and the car's state now."""

    @abstractmethod
    def configure_car(self, preset: str | None = None, start_soc_percent: float | None = None,
                      target_soc_percent: float | None = None) -> None:
        """Choose the car for the next session (None keeps a setting); ValueError for an unknown preset."""

    @abstractmethod
    def prepare_car(self, target_voltage_V: float, initial_current_A: float) -> Any:
        """A fresh car of the chosen preset arrives and plugs in (CP B) for a new simulated session; returns
        that car, whose requests the simulated-session driver reads as an EV's."""

    @abstractmethod
    def prepare_hlc_car(self, pack_voltage_V: float, max_current_A: float) -> Any:
        """The battery and contactor behind an ISO 15118 EV stack (the stack is the car's brain, this its
        body), plugged in, its pack at ``pack_voltage_V``, accepting up to ``max_current_A``; returns it."""

    @abstractmethod
    def present_cp_state(self, state: str) -> None:
        """The CP wire: make the simulated car present ``state`` (one of ``SIMULATED_CP_STATES``); the
        charger measures it through ``CPReader`` as it would a real car's."""

    @abstractmethod
    def simulated_car_view(self) -> SimulatedCarView | None:
        """The plugged-in simulated car's BMS data, or None while no car is plugged in."""

    @abstractmethod
    def set_isolation_resistance(self, resistance_ohm: float) -> None:
        """Insulation resistance DC output ↔ PE; ValueError unless > 0 Ω."""

    @abstractmethod
    def set_ambient_temperature(self, temperature_C: float) -> None:
        """Ambient temperature; the connector's temperature moves by the same step."""

    @abstractmethod
    def set_estop_pressed(self, pressed: bool) -> None:
        """Latch or release the simulated emergency-stop button."""

    def inject_device_faults(self, contactor_welded: bool | None = None, contactor_fails_to_close: bool | None = None,
                             supply_ignores_commands: bool | None = None) -> None:
        """Break a device (None leaves a fault as it is): the contactor welded (stays closed on an open command)
        or dead (stays open on a close command), the power stage ignoring its commands (its output carries on).
        The mirror contact and the supply's measurements show it, as on hardware. Not every simulation offers it."""
        raise NotImplementedError(f"{type(self).__name__} cannot inject device faults")


def simulation_controls(hw: object) -> SimulationControls | None:
    """The simulation controls the adapter ``hw`` offers (its ``simulation`` attribute), or None: real hardware."""
    controls = getattr(hw, "simulation", None)
    return controls if isinstance(controls, SimulationControls) else None
