"""Simulated drivers: every device reads and commands the one ``ChargerPlant``.

Each call first advances the plant to the clock's present, so readings from different devices taken at
the same instant agree with each other (the meter's voltage is the cable's voltage, which is the supply's
voltage while the contactor is closed, and 0 V / 0 A while it is open).

``SimHardware.read_sensors()`` (the control loop's one sensor pass per tick) advances the plant once and reads
every field from that one state: the same values as asking each device, without a dozen clock and plant calls.
A device whose reading method was replaced on the instance, or a device swapped for another (test rigs break
sensors that way), sends the pass back through the devices, so the replacement is what the controller reads.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from evse_hal.interfaces import (
    ContactorDriver,
    CPReader,
    DCPowerSupply,
    EmergencyStopInput,
    EVSEHardware,
    IsolationMonitor,
    Meter,
    PWMController,
    SensorReadings,
    SupplyCapabilities,
    TemperatureSensor,
)
from evse_hal.simulation import SimulatedCarView, SimulationControls, SimulationKnobs
from evse_model.clock import Clock
from evse_model.manual_clock import combined_attribute_dict
from sim_plant import BATTERY_PRESETS, ChargerPlant, PlantConfig
from sim_plant.battery import BatteryPreset, follow_preset
from sim_plant.ev import SimulatedEV, SpecRequestProfile

_T = TypeVar("_T")

EV_PRESET_NAMES = ("follow", *BATTERY_PRESETS)

#: The device methods the default (per-device) sensor pass calls; replacing one on an instance is noticed.
_SENSOR_READ_METHODS = frozenset((
    "get_status", "get_duty", "read_voltage", "read_negative_plateau_V", "is_closed", "read_voltage_V",
    "read_current_A", "read_isolation_ohm", "read_connector_temperature_C", "is_pressed"))
#: The adapter's attributes the one-snapshot sensor pass stands in for.
_SENSOR_PASS_PARTS = frozenset(("plant", "clock", "pwm", "cp", "contactor", "supply", "meter", "imd", "temperature",
                                "estop"))


#: The supply's command methods: replacing one on the instance turns ``holds_current_limit`` off.
_SUPPLY_COMMAND_METHODS = frozenset(("set_enabled", "set_voltage", "set_current_limit", "set_power_limit",
                                     "emergency_off"))


class _SensorPassWatch:
    """Shared by an adapter and its devices: ``snapshot_valid`` False once a sensor read was replaced (then every
    pass asks the devices); ``commands_plain`` False once a supply command was replaced."""

    __slots__ = ("snapshot_valid", "commands_plain")

    def __init__(self) -> None:
        self.snapshot_valid = True
        self.commands_plain = True


class _WatchedDevice:
    _sensor_watch: _SensorPassWatch | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        watch = self._sensor_watch
        if watch is not None:
            if name in _SENSOR_READ_METHODS:
                watch.snapshot_valid = False
            if name in _SUPPLY_COMMAND_METHODS:
                watch.commands_plain = False


class _PlantDevice(_WatchedDevice):
    def __init__(self, plant: ChargerPlant, clock: Clock) -> None:
        self._plant = plant
        self._clock = clock

    def _now(self) -> ChargerPlant:
        plant = self._plant
        now_s = self._clock.now()
        if now_s > plant.time_s:
            plant.advance_to(now_s)
        return plant


class SimPWM(_PlantDevice, PWMController):
    def set_duty(self, duty_percent: float) -> None:
        if not 0.0 <= duty_percent <= 100.0:
            raise ValueError(f"duty_percent must be 0…100, got {duty_percent}")
        self._now().set_pwm_duty(duty_percent)

    def get_duty(self) -> float:
        plant = self._now()
        return 0.0 if plant.state_f else plant.pwm_duty_percent

    def set_state_f(self) -> None:
        self._now().set_state_f()


class SimCPReader(_PlantDevice, CPReader):
    def read_voltage(self) -> float:
        return self._now().cp_plateaus_V()[0]

    def read_negative_plateau_V(self) -> float:
        return self._now().cp_plateaus_V()[1]


class SimContactor(_PlantDevice, ContactorDriver):
    def set_closed(self, closed: bool) -> None:
        self._now().set_evse_contactor(closed)

    def is_closed(self) -> bool:
        return self._now().evse_contactor_closed


class SimSupply(_PlantDevice, DCPowerSupply):
    def get_capabilities(self) -> SupplyCapabilities:
        cfg = self._plant.config
        return SupplyCapabilities(max_voltage_V=cfg.max_voltage_V, min_voltage_V=cfg.min_voltage_V,
                                  max_current_A=cfg.max_current_A, min_current_A=0.0,
                                  max_power_W=cfg.max_power_W, peak_current_ripple_A=cfg.peak_current_ripple_A)

    def set_enabled(self, enabled: bool) -> None:
        if self._plant.supply_ignores_commands:
            return  # an injected fault: the stage does not follow
        plant = self._now()
        plant.supply_enabled = enabled
        if enabled:
            plant.supply_emergency_off = False

    def set_voltage(self, voltage_V: float) -> None:
        if self._plant.supply_ignores_commands:
            return  # an injected fault: the stage does not follow
        self._now().voltage_setpoint_V = max(0.0, voltage_V)

    def set_current_limit(self, current_A: float) -> None:
        if self._plant.supply_ignores_commands:
            return  # an injected fault: the stage does not follow
        self._now().current_limit_A = max(0.0, current_A)

    def set_power_limit(self, power_W: float) -> None:
        if self._plant.supply_ignores_commands:
            return  # an injected fault: the stage does not follow
        self._now().power_limit_W = max(0.0, power_W)

    def holds_current_limit(self, current_A: float) -> bool:
        """True when ``set_current_limit(current_A)`` now would change nothing: the stage holds that limit already
        (or ignores commands). False whenever a supply command of this device was replaced (a test rig's)."""
        watch = self._sensor_watch
        if watch is None or not watch.commands_plain or type(self) is not SimSupply:
            return False
        plant = self._plant
        return plant.supply_ignores_commands or plant.current_limit_A == max(0.0, current_A)

    def holds_setpoints(self, voltage_V: float, power_W: float) -> bool:
        """True when ``set_voltage(voltage_V)`` and ``set_power_limit(power_W)`` now would change nothing (as
        ``holds_current_limit``)."""
        watch = self._sensor_watch
        if watch is None or not watch.commands_plain or type(self) is not SimSupply:
            return False
        plant = self._plant
        return plant.supply_ignores_commands or (plant.voltage_setpoint_V == max(0.0, voltage_V)
                                                 and plant.power_limit_W == max(0.0, power_W))

    def emergency_off(self) -> None:
        if self._plant.supply_ignores_commands:
            return  # an injected fault: the stage does not follow
        plant = self._now()
        plant.supply_emergency_off = True
        plant.supply_enabled = False
        plant.current_limit_A = 0.0

    def get_status(self) -> tuple[float, float]:
        plant = self._now()
        return plant.output_voltage_V, plant.supply_current_A


class SimMeter(_PlantDevice, Meter):
    """Counts what the plant integrates (exact ∫V·I dt); the controller's samples are not needed."""

    def start(self) -> None:
        meter = self._now().meter
        meter.reset()
        meter.running = True

    def update(self, voltage_V: float, current_A: float) -> None:
        self._now()

    def read_voltage_V(self) -> float:
        return self._now().inlet_voltage_V

    def read_current_A(self) -> float:
        return self._now().cable_current_A

    def get_energy_Wh(self) -> float:
        return self._now().meter.energy_Wh

    def get_avg_voltage(self) -> float:
        return self._now().meter.avg_voltage_V

    def get_avg_current(self) -> float:
        return self._now().meter.avg_current_A

    def get_session_time_s(self) -> float:
        return self._now().meter.session_time_s

    def get_transfer_time_s(self) -> float:
        return self._now().meter.transfer_time_s

    def sample_and_read(self, voltage_V: float, current_A: float) -> tuple[float, float, float, float]:
        meter = self._now().meter  # the plant counts by itself: the sample is not needed
        return (meter.energy_Wh, meter.avg_voltage_V, meter.avg_current_A, meter.session_time_s)

    def reset(self) -> None:
        meter = self._now().meter
        meter.running = False
        meter.reset()


class SimIMD(_PlantDevice, IsolationMonitor):
    def __init__(self, plant: ChargerPlant, clock: Clock) -> None:
        super().__init__(plant, clock)
        self.measuring = False

    def start_measurement(self) -> None:
        self.measuring = True

    def stop_measurement(self) -> None:
        self.measuring = False

    def read_isolation_ohm(self) -> float | None:
        plant = self._now()
        return plant.imd_reading_ohm() if self.measuring else None


class SimTemperature(_PlantDevice, TemperatureSensor):
    def read_connector_temperature_C(self) -> float:
        return self._now().connector_temperature_C


class SimEStop(_WatchedDevice, EmergencyStopInput):
    def __init__(self) -> None:
        self.pressed = False

    def is_pressed(self) -> bool:
        return self.pressed


def _under_lock(method: Callable[..., _T]) -> Callable[..., _T]:
    """The control under the adapter's lock: the controller's control thread steps the same plant."""

    @functools.wraps(method)
    def locked(self: SimPlantControls, *args: Any, **kwargs: Any) -> _T:
        with self.lock:
            return method(self, *args, **kwargs)

    return locked


class SimPlantControls(SimulationControls):
    """The sim adapter's simulation controls, on the one ``ChargerPlant`` (``plant`` and ``ev`` are there for
    test rigs that look inside the plant; code that works with any simulated adapter uses the interface).

    Each control takes the adapter's lock (``SimHardware.lock``, the controller's too): a control used from
    the event loop never moves the plant while the control thread steps it."""

    def __init__(self, plant: ChargerPlant, clock: Clock, estop: SimEStop,
                 lock: threading.RLock | None = None) -> None:
        self.lock = lock or threading.RLock()
        self.plant = plant
        self.clock = clock
        self.estop = estop
        self.preset_name = "follow"
        self.start_soc_percent: float | None = None
        self.target_soc_percent: float | None = None

    @property
    def ev(self) -> SimulatedEV:
        return self.plant.ev

    @_under_lock
    def advance(self) -> ChargerPlant:
        self.plant.advance_to(self.clock.now())
        return self.plant

    @_under_lock
    def configure_car(self, preset: str | None = None, start_soc_percent: float | None = None,
                      target_soc_percent: float | None = None) -> None:
        """Choose the car for the next session (takes effect at ``prepare_car``)."""
        if preset is not None:
            if preset not in EV_PRESET_NAMES:
                raise ValueError(f"unknown car preset {preset!r}; known: {', '.join(EV_PRESET_NAMES)}")
            self.preset_name = preset
        if start_soc_percent is not None:
            self.start_soc_percent = start_soc_percent
        if target_soc_percent is not None:
            self.target_soc_percent = target_soc_percent

    @_under_lock
    def prepare_car(self, target_voltage_V: float, initial_current_A: float) -> SimulatedEV:
        """A fresh car of the chosen preset arrives and plugs in (CP B) for a new session."""
        plant = self.advance()
        preset: BatteryPreset
        if self.preset_name == "follow":
            preset = follow_preset(target_voltage_V, initial_current_A)
        else:
            preset = BATTERY_PRESETS[self.preset_name]
        ev = SimulatedEV(preset, self.start_soc_percent, self.target_soc_percent)
        if self.preset_name == "follow":
            ev.spec_profile = SpecRequestProfile(initial_current_A=initial_current_A)
        else:
            ev.request_cap_A = initial_current_A
        ev.plug_in()
        ev.react_to_pwm(plant.pwm_duty_percent)
        plant.ev = ev
        return ev

    @_under_lock
    def prepare_hlc_car(self, pack_voltage_V: float, max_current_A: float) -> SimulatedEV:
        """The battery and contactor behind an ISO 15118 EV stack (HLC sessions on the sim adapter).

        The EV stack under test (e.g. iso15118's EVCC) is the car's brain; this is its body: a ``follow``
        pack sitting at ``pack_voltage_V`` (what the EV asked to precharge to) that accepts up to
        ``max_current_A``, and that wants energy, so it closes its contactor once the output is within
        20 V of the pack (IEC 61851-23 CC.5.2) and takes the current the EVSE drives. The preset chosen
        with ``configure_car`` is for simulated sessions; an EV stack brings its own voltages.
        """
        plant = self.advance()
        soc_percent = self.start_soc_percent
        ev = SimulatedEV(follow_preset(pack_voltage_V, max_current_A / 2.0), soc_percent, self.target_soc_percent)
        ev.plug_in()
        ev.react_to_pwm(plant.pwm_duty_percent)
        ev.energy_transfer_wanted = True
        plant.ev = ev
        return ev

    @_under_lock
    def knobs(self) -> SimulationKnobs:
        plant = self.plant
        ev = plant.ev
        return SimulationKnobs(preset_name=self.preset_name, start_soc_percent=self.start_soc_percent,
                               target_soc_percent=self.target_soc_percent, car_soc_percent=ev.battery.soc_percent,
                               car_plugged_in=ev.plugged_in, car_contactor_closed=ev.contactor_closed,
                               isolation_resistance_ohm=plant.isolation_resistance_ohm,
                               ambient_temperature_C=plant.config.ambient_temperature_C,
                               estop_pressed=self.estop.pressed)

    @_under_lock
    def present_cp_state(self, state: str) -> None:
        self.advance().ev.force_cp_state(state)

    @_under_lock
    def simulated_car_view(self) -> SimulatedCarView | None:
        ev = self.plant.ev
        if ev is None or not ev.plugged_in:
            return None
        preset, battery = ev.preset, ev.battery
        return SimulatedCarView(preset_name=preset.name, capacity_Wh=preset.capacity_Wh,
                                soc_percent=battery.soc_percent, target_soc_percent=ev.target_soc_percent,
                                open_circuit_voltage_V=battery.ocv_V(),
                                empty_open_circuit_voltage_V=preset.ocv_V(0.0),
                                target_voltage_V=ev.target_voltage_V(), target_current_A=ev.target_current_A(),
                                max_power_W=preset.max_power_W, max_current_A=preset.max_current_A,
                                max_voltage_V=preset.max_voltage_V)

    @_under_lock
    def set_estop_pressed(self, pressed: bool) -> None:
        self.estop.pressed = pressed

    @_under_lock
    def inject_device_faults(self, contactor_welded: bool | None = None, contactor_fails_to_close: bool | None = None,
                             supply_ignores_commands: bool | None = None) -> None:
        plant = self.advance()
        if contactor_welded is not None:
            plant.contactor_welded = contactor_welded
        if contactor_fails_to_close is not None:
            plant.contactor_fails_to_close = contactor_fails_to_close
        if supply_ignores_commands is not None:
            plant.supply_ignores_commands = supply_ignores_commands

    @_under_lock
    def set_isolation_resistance(self, resistance_ohm: float) -> None:
        if not resistance_ohm > 0:
            raise ValueError("isolation resistance must be > 0 ohm")
        self.advance().isolation_resistance_ohm = resistance_ohm

    @_under_lock
    def set_ambient_temperature(self, temperature_C: float) -> None:
        plant = self.advance()
        delta = temperature_C - plant.config.ambient_temperature_C
        plant.config.ambient_temperature_C = temperature_C
        plant.connector_temperature_C += delta


class SimHardware(EVSEHardware):
    name = "sim"
    blocking = False
    #: One plant state read per tick (False: ask each device in turn, the interface's default; benchmarks compare).
    one_snapshot_sensor_pass = True
    _sensor_watch: _SensorPassWatch | None = None

    def __init__(self, clock: Clock, config: PlantConfig | None = None) -> None:
        self.clock = clock
        ev = SimulatedEV(follow_preset(400.0, 50.0))
        self.plant = ChargerPlant(config or PlantConfig(), ev, start_time_s=clock.now())
        self.pwm = SimPWM(self.plant, clock)
        self.cp = SimCPReader(self.plant, clock)
        self.contactor = SimContactor(self.plant, clock)
        self.supply = SimSupply(self.plant, clock)
        self.meter = SimMeter(self.plant, clock)
        self.imd = self._sim_imd = SimIMD(self.plant, clock)
        self.temperature = SimTemperature(self.plant, clock)
        self.estop = self._sim_estop = SimEStop()
        #: Serialises the plant between threads: the controller takes it as its own lock (every device call and
        #: each control step), and the simulation controls take it too.
        self.lock = threading.RLock()
        self._controls = SimPlantControls(self.plant, clock, self.estop, self.lock)
        watch = _SensorPassWatch()
        for device in (self.pwm, self.cp, self.contactor, self.supply, self.meter, self.imd, self.temperature,
                       self.estop):
            device._sensor_watch = watch
        self._sensor_watch = watch
        # A dict of its own (see ``evse_model.manual_clock.combined_attribute_dict``): ``read_sensors_steady`` looks
        # for a replaced ``read_sensors`` in it
        combined_attribute_dict(self)

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)
        if name in _SENSOR_PASS_PARTS and self._sensor_watch is not None:
            self._sensor_watch.snapshot_valid = False  # a device (or the plant) swapped after construction

    def read_sensors(self) -> SensorReadings:
        """Advance the plant once to the clock's present and read every sensor from that one state."""
        watch = self._sensor_watch
        if watch is None or not watch.snapshot_valid or not self.one_snapshot_sensor_pass:
            return super().read_sensors()
        plant = self.plant
        now_s = self.clock.now()
        if now_s > plant.time_s:
            plant.advance_to(now_s)
        positive_V, negative_V = plant.cp_plateaus_V()
        return SensorReadings(
            duty_percent=0.0 if plant.state_f else plant.pwm_duty_percent,  # SimPWM.get_duty
            supply_voltage_V=plant.output_voltage_V,  # SimSupply.get_status
            supply_current_A=plant.supply_current_A,
            cp_positive_V=positive_V,
            cp_negative_V=negative_V,
            contactor_closed=plant.evse_contactor_closed,
            output_voltage_V=plant.inlet_voltage_V,  # SimMeter.read_voltage_V / read_current_A
            output_current_A=plant.cable_current_A,
            isolation_ohm=plant.imd_reading_ohm() if self._sim_imd.measuring else None,
            connector_temperature_C=plant.connector_temperature_C,
            estop_pressed=bool(self._sim_estop.pressed),
        )

    def read_sensors_steady(self) -> tuple[float, float, float, float, float, float, bool, float | None, bool] | None:
        """``read_sensors()`` while the output delivers steadily, as a tuple: (output voltage V, output current A,
        connector temperature °C, duty %, CP positive V, CP negative V, contactor closed, isolation Ω, E-stop
        pressed); the supply's voltage and current are the output's then. None, with nothing changed, when the
        plant is not in that state (``read_output_steady``'s conditions): ``read_sensors()`` then."""
        watch = self._sensor_watch  # read_output_steady(), inline (and _plain_pass)
        if (watch is None or not watch.snapshot_valid or not self.one_snapshot_sensor_pass
                or type(self).read_sensors is not SimHardware.read_sensors or "read_sensors" in self.__dict__):
            return None
        plant = self.plant
        measuring = self._sim_imd.measuring
        if measuring:
            since_s = plant.energised_since_s  # settled stays settled while the output stays energised
            if since_s is None or plant.time_s - since_s < plant.config.imd_settle_s:
                return None
        reading = plant.advance_steady_reading(self.clock.now(), False)
        if reading is None:
            return None
        voltage_V, current_A, temperature_C = reading
        positive_V, negative_V = plant.cp_plateaus_V()
        # imd_reading_ohm(): settled before the step (above), and the step keeps the output energised since then
        return (voltage_V, current_A, temperature_C, 0.0 if plant.state_f else plant.pwm_duty_percent, positive_V,
                negative_V, plant.evse_contactor_closed, plant.isolation_resistance_ohm if measuring else None,
                not not self._sim_estop.pressed)  # bool(), without the call

    def read_output_steady(self, continuing: bool = False) -> tuple[float, float, float] | None:
        """The sensor pass while the output delivers steadily (``ChargerPlant.advance_steady_to``): the plant
        advanced to the clock's present in its one steady step, and (output voltage V, output current A,
        connector temperature °C) read from it. The supply's voltage and current are the output's then; every
        other reading is what the previous ``read_sensors()`` read, provided nothing was commanded, pressed or
        changed through the simulation controls since (the caller's to know: a control-loop run in which nothing
        else runs) -- the isolation reading included (a measurement that has not settled yet makes this None).

        None, with nothing changed, when that cannot be promised (the plant not in that state, a sensor read or
        ``read_sensors`` itself replaced or overridden, the per-device pass chosen): ``read_sensors()`` then.

        ``continuing``: the previous pass was this one (or ``read_sensors_steady``), not None, and nothing else
        touched the adapter since: what it checked then still holds, only the step is checked again."""
        if continuing:
            return self.plant.advance_steady_reading(self.clock.now(), True)
        watch = self._sensor_watch
        if watch is None or not watch.snapshot_valid or not self.one_snapshot_sensor_pass or not self._plain_pass():
            return None
        plant = self.plant
        if self._sim_imd.measuring:
            since_s = plant.energised_since_s  # settled stays settled while the output stays energised
            if since_s is None or plant.time_s - since_s < plant.config.imd_settle_s:
                return None
        return plant.advance_steady_reading(self.clock.now(), False)

    def _plain_pass(self) -> bool:
        """``read_sensors`` is this class's own (not overridden by a subclass or replaced on the instance): what the
        steady passes stand in for."""
        return type(self).read_sensors is SimHardware.read_sensors and "read_sensors" not in self.__dict__

    def steady_reader(self) -> Callable[[float], tuple[float, float, float] | None]:
        """``read_output_steady(continuing=True)`` at a given time (the clock's present): for the ticks that follow
        a steady pass that was not None, nothing else having run in between."""
        return self.plant.advance_steady_reading

    @property
    def simulation(self) -> SimPlantControls:
        """The simulation controls this adapter offers (``evse_hal.simulation.simulation_controls``)."""
        return self._controls

    def close(self) -> None:
        self.supply.emergency_off()
        self.contactor.set_closed(False)
        self.pwm.set_duty(100.0)


def create_sim_hardware(clock: Clock, **options: object) -> SimHardware:
    """Registry factory for the ``sim`` adapter."""
    config = PlantConfig(**options) if options else None  # type: ignore[arg-type]
    return SimHardware(clock, config)


#: The options ``create_sim_hardware`` takes (the plant's constants), so the launchers check them before building.
create_sim_hardware.adapter_option_names = tuple(PlantConfig.__dataclass_fields__)  # type: ignore[attr-defined]
