"""Device contracts for a CCS DC charger. A hardware adapter implements these; the controller uses nothing else.

Conventions every implementation must keep:

- Units are in the names: volts (``_V``), amperes (``_A``), watts (``_W``), watt-hours (``_Wh``),
  ohms (``_ohm``), seconds (``_s``), percent (``_percent``), degrees Celsius (``_C``).
- Methods are synchronous. An adapter whose calls can block (serial, CAN, I²C round trips) sets
  ``EVSEHardware.blocking = True``; the controller then runs its calls in a worker thread
  (``asyncio.to_thread``) so the event loop never stalls. Non-blocking adapters must return within
  a few hundred microseconds.
- A setter returns once the command is issued; the physical effect follows within the time the
  method's docstring states. Getters return the latest *measurement*, never the last command.
- Safety does not depend on an adapter's goodwill: the controller's supervisor checks every command
  and every reading. An adapter reports what it measures, including values that are out of range.
- Nothing here is simulation. A simulated adapter offers its extra knobs (the car, the plant, the CP
  "wire") as a separate interface, ``evse_hal.simulation.SimulationControls``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

CP_STATES = ("A", "B", "C", "D", "E", "F")


class PWMController(ABC):
    """The control-pilot oscillator (IEC 61851-1 Annex A): ±12 V, 1 kHz, duty cycle in percent."""

    @abstractmethod
    def set_duty(self, duty_percent: float) -> None:
        """Set the duty cycle, 0…100 %. 5 % = digital communication (DC/HLC always uses 5 %).

        0 % and 100 % stop the oscillator and hold a constant +12 V level (the X1 sub-state, "EVSE not
        ready / no energy"). The new duty must be on the wire within 10 ms.
        """

    @abstractmethod
    def get_duty(self) -> float:
        """The duty cycle now being generated, in percent (100 while the oscillator is off)."""

    @abstractmethod
    def set_state_f(self) -> None:
        """Drive a constant −12 V (state F, "EVSE not available"); cleared by the next ``set_duty``."""


class CPReader(ABC):
    """Control-pilot measurement at the EVSE side of the 1 kΩ source resistor."""

    @abstractmethod
    def read_voltage(self) -> float:
        """Positive plateau of the CP signal in volts (A 12, B 9, C 6, D 3, E 0, F −12), sampled within
        the last 10 ms. For a constant level (oscillator off) the level itself."""

    @abstractmethod
    def read_negative_plateau_V(self) -> float:
        """Negative plateau in volts: ≈ −12 V while the oscillator runs and the EV diode is present;
        higher than −6 V while oscillating means a diode fault. Equals the positive plateau when the
        oscillator is off."""

    def get_state(self) -> str:
        """CP state letter A..F classified from the measured plateau (IEC 61851-1 windows ±1 V)."""
        from evse_hal.pilot import classify_cp_voltage

        return classify_cp_voltage(self.read_voltage())


class ContactorDriver(ABC):
    """The EVSE's DC output contactor(s), both poles switched together."""

    @abstractmethod
    def set_closed(self, closed: bool) -> None:
        """Command the contactor. The controller only closes it when the voltages on both sides differ by
        less than 20 V and opens it only below 1 A (except in an emergency). The driver must complete the
        motion within 100 ms (IEC 61851-23 emergency budget)."""

    @abstractmethod
    def is_closed(self) -> bool:
        """Contactor position from its auxiliary (mirror) contact, not the last command."""


@dataclass(frozen=True)
class SupplyCapabilities:
    """What the power stage can deliver (announced to the EV as EVSE maximum/minimum limits)."""

    max_voltage_V: float
    min_voltage_V: float
    max_current_A: float
    min_current_A: float
    max_power_W: float
    #: Largest current ripple the stage produces, peak-to-peak (ISO 15118-2 / DIN 70121 EVSEPeakCurrentRipple).
    peak_current_ripple_A: float = 5.0
    #: Regulation tolerance, percent (ISO 15118 EVSECurrentRegulationTolerance).
    current_regulation_tolerance_percent: float = 5.0


class DCPowerSupply(ABC):
    """The DC power stage (one module or a stack acting as one), upstream of the contactor."""

    @abstractmethod
    def get_capabilities(self) -> SupplyCapabilities:
        """Static limits of the stage."""

    @abstractmethod
    def set_enabled(self, enabled: bool) -> None:
        """Switch the output stage on or off. Off: current falls to 0 within 10 ms and the output
        capacitance is actively discharged (< 60 V within 100 ms from the maximum voltage)."""

    @abstractmethod
    def set_voltage(self, voltage_V: float) -> None:
        """Voltage setpoint (CV limit). The stage slews towards it at its own rate (≥ 200 V/s expected)."""

    @abstractmethod
    def set_current_limit(self, current_A: float) -> None:
        """Current limit (CC setpoint), ≥ 0. The stage never sources more than this."""

    @abstractmethod
    def set_power_limit(self, power_W: float) -> None:
        """Power limit, ≥ 0."""

    @abstractmethod
    def emergency_off(self) -> None:
        """Fastest possible shutdown: output current below 5 A within 30 ms (IEC 61851-23 CC.5.4 via
        DG L6247). Stays off until ``set_enabled(True)``."""

    @abstractmethod
    def get_status(self) -> tuple[float, float]:
        """(voltage_V, current_A) measured at the stage's output terminals, before the contactor."""


class Meter(ABC):
    """The DC energy meter at the EVSE output, after the contactor.

    It counts time while a session runs (``start()`` … ``reset()``): energy ∫V·I dt, and time-weighted
    average voltage and current over the time energy flowed (current ≥ 1 A).
    """

    @abstractmethod
    def start(self) -> None:
        """Begin counting for a session (from zero)."""

    @abstractmethod
    def update(self, voltage_V: float, current_A: float) -> None:
        """Feed one sample. A software meter integrates the samples; a metering device that measures by
        itself ignores them. Called by the controller on every control tick."""

    @abstractmethod
    def read_voltage_V(self) -> float:
        """Instantaneous output voltage (0 when the contactor is open and the cable is discharged)."""

    @abstractmethod
    def read_current_A(self) -> float:
        """Instantaneous output current (0 when the contactor is open)."""

    @abstractmethod
    def get_energy_Wh(self) -> float:
        """Energy delivered since ``start()``."""

    @abstractmethod
    def get_avg_voltage(self) -> float:
        """Time-weighted average voltage while energy flowed (≥ 1 A), in volts."""

    @abstractmethod
    def get_avg_current(self) -> float:
        """Time-weighted average current while energy flowed (≥ 1 A), in amperes."""

    @abstractmethod
    def get_session_time_s(self) -> float:
        """Seconds counted since ``start()``."""

    def sample_and_read(self, voltage_V: float, current_A: float) -> tuple[float, float, float, float]:
        """``update`` with the control loop's sample, then (energy Wh, average V, average A, session s): the
        meter's part of a tick in one call. The default calls each method; an adapter may do it at once."""
        self.update(voltage_V, current_A)
        return (self.get_energy_Wh(), self.get_avg_voltage(), self.get_avg_current(), self.get_session_time_s())

    @abstractmethod
    def reset(self) -> None:
        """Stop counting and zero every counter."""


class IsolationMonitor(ABC):
    """Insulation monitoring device (IMD, IEC 61557-8) between the DC output and PE."""

    @abstractmethod
    def start_measurement(self) -> None:
        """Start measuring (self-test first if the device does one). Readings settle within ~1 s in
        simulation and up to ~10 s on real devices."""

    @abstractmethod
    def stop_measurement(self) -> None:
        """Stop measuring (the IMD injects a signal; some EVs object to two IMDs during charging)."""

    @abstractmethod
    def read_isolation_ohm(self) -> float | None:
        """Latest insulation resistance in ohms, or None while no valid measurement exists."""


class TemperatureSensor(ABC):
    @abstractmethod
    def read_connector_temperature_C(self) -> float:
        """Hottest connector contact / cable temperature, °C, sampled within the last second."""


class EmergencyStopInput(ABC):
    @abstractmethod
    def is_pressed(self) -> bool:
        """True while the charger's emergency-stop button is latched."""


@dataclass(frozen=True, slots=True)
class SensorReadings:
    """Every sensor of the charger read once, as close to one instant as the adapter can (``read_sensors``)."""

    duty_percent: float
    supply_voltage_V: float
    supply_current_A: float
    cp_positive_V: float
    cp_negative_V: float
    contactor_closed: bool
    output_voltage_V: float
    output_current_A: float
    isolation_ohm: float | None
    connector_temperature_C: float
    estop_pressed: bool


class EVSEHardware(ABC):
    """One charger's devices, as the controller uses them. ``close()`` releases the hardware."""

    #: Adapter name as registered (``sim``, …).
    name: str = "abstract"
    #: True if calls may block (see module docstring).
    blocking: bool = False

    pwm: PWMController
    cp: CPReader
    contactor: ContactorDriver
    supply: DCPowerSupply
    meter: Meter
    imd: IsolationMonitor
    temperature: TemperatureSensor
    estop: EmergencyStopInput | None = None

    def read_sensors(self) -> SensorReadings:
        """Every reading the control loop takes each tick, once. The default asks each device in turn; an
        adapter that can sample all at one instant (one bus frame, one plant state) overrides it."""
        supply_V, supply_A = self.supply.get_status()
        return SensorReadings(
            duty_percent=self.pwm.get_duty(),
            supply_voltage_V=supply_V,
            supply_current_A=supply_A,
            cp_positive_V=self.cp.read_voltage(),
            cp_negative_V=self.cp.read_negative_plateau_V(),
            contactor_closed=self.contactor.is_closed(),
            output_voltage_V=self.meter.read_voltage_V(),
            output_current_A=self.meter.read_current_A(),
            isolation_ohm=self.imd.read_isolation_ohm(),
            connector_temperature_C=self.temperature.read_connector_temperature_C(),
            estop_pressed=bool(self.estop and self.estop.is_pressed()),
        )

    def close(self) -> None:  # noqa: B027 - not abstract: an adapter with nothing to release may keep it
        """Put every output in its safe state (contactor open, supply off, PWM off) and release devices."""
