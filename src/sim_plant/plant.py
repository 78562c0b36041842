"""One physically consistent charger + car plant, advanced lazily to the clock's present.

Topology: DC supply (setpoints, slew, current/power limits, output capacitance, active discharge) → EVSE contactor →
cable/inlet (with isolation resistance to PE) → car contactor → battery (OCV + R·I). The meter sits at
the EVSE output after the contactor, so it sees exactly what flowed into the cable. Every simulated
sensor reads this one state; ``advance_to(t)`` integrates from the last time to ``t`` in steps of at
most ``max_step_s``, and every command first brings the plant to the present.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass

from evse_model import standards
from evse_model.manual_clock import combined_attribute_dict
from sim_plant.battery import _NMC_CELL_OCV_XS, NMC_CELL_OCV_CURVE, Battery, BatteryPreset
from sim_plant.ev import SimulatedEV

_NMC_CELL_OCV_POINTS = len(NMC_CELL_OCV_CURVE)


@dataclass
class PlantConfig:
    """EVSE power stage and plant constants (defaults: standards.md §4.1)."""

    max_voltage_V: float = 1000.0
    #: Real power modules start at ~150 V; 0 here lets the spec's 20–40 V quick sessions run.
    min_voltage_V: float = 0.0
    max_current_A: float = 400.0
    max_power_W: float = 350_000.0
    #: Peak-to-peak output current ripple of the power stage, announced to the EV (ISO 15118-2 / DIN 70121
    #: EVSEPeakCurrentRipple; a module datasheet figure: the simulator's default, standards.md §4.1).
    peak_current_ripple_A: float = 5.0
    #: Output voltage slew of the power stage: 0 → 1000 V in 1 s (a cable check in ~1 s, precharge to
    #: 800 V well inside the EV's 7 s; standards.md §2.3 asks for ≥ 200 V/s).
    voltage_slew_up_V_per_s: float = 1000.0
    voltage_slew_down_V_per_s: float = 1000.0
    #: The power stage's own current loop (the controller ramps its setpoints more gently).
    current_slew_A_per_s: float = 2000.0
    #: Current fall when the output is disabled in an emergency (IEC 61851-23: < 5 A within 30 ms).
    emergency_current_fall_A_per_s: float = 40_000.0
    #: DC-link capacitance at the power stage's output, before the contactor (representative: a few hundred µF
    #: per power module, several modules in parallel). Precharge and cable check charge it at ≤ 2 A, so they
    #: take C·ΔV / 2 A: 400 V in ≈ 0.6 s, 800 V in ≈ 1.3 s (well inside the EV's 7 s, standards.md §2.3).
    output_capacitance_F: float = 0.003
    cable_capacitance_F: float = 0.0002
    #: Active discharge: the power stage is a source only (it cannot sink current), so like real DC power
    #: modules it switches a discharge resistor across its output whenever it is disabled (switched off or
    #: emergency off). τ = R·C = 6 Ω × 3.2 mF ≈ 19 ms: from 1000 V below 60 V within 100 ms (IEC 61851-23 9.4 /
    #: CC.5.4 via DG L6247-6249) and from a cable-check voltage below 60 V in a few tens of ms. While enabled
    #: with a setpoint below the output it regulates down at ``voltage_slew_down_V_per_s``.
    discharge_resistance_ohm: float = 6.0
    isolation_resistance_ohm: float = 10e6
    #: IMD reading settles this long after the output is energised.
    imd_settle_s: float = 0.5
    ambient_temperature_C: float = 25.0
    #: Connector temperature rise at 400 A in steady state, and its thermal time constant.
    connector_rise_at_400A_K: float = 40.0
    connector_thermal_time_constant_s: float = 300.0
    max_step_s: float = 0.02


def _approach(value: float, target: float, max_change: float) -> float:
    if target > value:
        return min(target, value + max_change)
    return max(target, value - max_change)


class ChargerPlant:
    def __init__(self, config: PlantConfig, ev: SimulatedEV, start_time_s: float = 0.0) -> None:
        self.config = config
        self.ev = ev
        self.time_s = start_time_s
        # EVSE-side inputs (set by the simulated drivers)
        self.pwm_duty_percent = 100.0  # 100 % = oscillator off, constant +12 V (X1)
        self.state_f = False
        self.evse_contactor_commanded = False
        self.supply_enabled = False
        self.supply_emergency_off = False
        self.voltage_setpoint_V = 0.0
        self.current_limit_A = 0.0
        self.power_limit_W = config.max_power_W
        self.isolation_resistance_ohm = config.isolation_resistance_ohm
        # device faults a test injects (the sim adapter's ``inject_device_faults``)
        #: The contactor's contacts are welded: an open command leaves it closed (its mirror contact says so).
        self.contactor_welded = False
        #: The contactor's coil or drive is dead: a close command leaves it open.
        self.contactor_fails_to_close = False
        #: The power stage ignores every command (enable, off, setpoints): its output carries on as it was.
        self.supply_ignores_commands = False
        # state
        self.evse_contactor_closed = False
        self.output_voltage_V = 0.0  # supply side of the EVSE contactor
        self.supply_current_A = 0.0
        self.inlet_voltage_V = 0.0  # cable / meter side
        self.cable_current_A = 0.0
        self.energised_since_s: float | None = None
        self.connector_temperature_C = config.ambient_temperature_C
        self.contactor_switched_under_load_A = 0.0
        self.meter = MeterIntegrator()
        #: The OCV curve's segment (x0, x1, y0, y1) the steady step last looked up (empty: x0 < soc <= x1 never).
        self._ocv_segment: tuple[float, float, float, float] = (0.0, -1.0, 0.0, 0.0)
        # A dict of its own (see ``evse_model.manual_clock.combined_attribute_dict``): the steady step looks for a
        # replaced ``_step`` in it
        combined_attribute_dict(self)

    # --- time ------------------------------------------------------------------------------------
    def advance_to(self, time_s: float) -> None:
        step = self._step
        max_step_s = self.config.max_step_s
        until_s = time_s - 1e-12
        while self.time_s < until_s:
            dt_s = time_s - self.time_s
            if max_step_s < dt_s:  # min(max_step_s, time_s - self.time_s), without the call
                dt_s = max_step_s
            step(dt_s)
            self.time_s += dt_s

    def advance_steady_to(self, time_s: float, continuing: bool = False) -> bool:
        """``advance_steady_reading`` without the readings: True when it stepped."""
        return self.advance_steady_reading(time_s, continuing) is not None

    def advance_steady_reading(self, time_s: float, continuing: bool = True) -> tuple[float, float, float] | None:
        """``advance_to(time_s)`` while the output delivers steadily, in at most one step: both contactors closed,
        the supply on, the car ready, wanting energy and taking current, nothing pending, the meter running.

        The same arithmetic as ``_step`` in the same order (so the same floats), with the branches that cannot
        be taken in that state left out and the state read once. Returns (output voltage V, output current A,
        connector temperature °C) after the step, or None, having changed nothing, when the plant is not in that
        state, would leave it in this step, or is at ``time_s`` already (the caller then uses ``advance_to``).

        ``continuing``: the previous call returned True and nothing else touched the plant since (the state it
        checked is as that step left it): only what the step itself moves is checked again."""
        until_s = time_s - 1e-12
        start_s = self.time_s
        if not start_s < until_s:
            return None  # advance_to would not step: nothing to do here (and no steady step to vouch for)
        dt_s = time_s - start_s
        cfg, ev = self.config, self.ev
        if not (cfg.max_step_s >= dt_s and not start_s + dt_s < until_s):
            return None
        battery = ev.battery
        preset = battery.preset
        if not continuing and not (
                self.evse_contactor_closed and ev.contactor_closed and self.supply_enabled
                and not self.supply_emergency_off and ev._pending_s2 is None and ev.energy_transfer_wanted
                and ev.plugged_in and ev.s2_closed and not ev.cp_shorted and self.meter.running
                # the inline lookups below are these classes' own, and _step is this class's
                and type(preset) is BatteryPreset and type(battery) is Battery and type(ev) is SimulatedEV
                and type(self) is ChargerPlant and "_step" not in self.__dict__):
            return None
        resistance = preset.internal_resistance_ohm
        soc = battery.soc_fraction
        if battery._ocv_soc == soc and battery._ocv_preset is preset:  # Battery.ocv_V(), its cache and lookup inline
            ocv = battery._ocv_V
        else:
            # BatteryPreset.ocv_V(soc): interpolate(NMC_CELL_OCV_CURVE, soc, _NMC_CELL_OCV_XS), the same sums
            # The segment (x0, x1] that holds soc, as bisect_left finds it: the last one found while soc stays in it.
            x0, x1, y0, y1 = self._ocv_segment
            if x0 < soc <= x1:
                cell_V = y0 + (y1 - y0) * (soc - x0) / (x1 - x0)
            else:
                index = bisect_left(_NMC_CELL_OCV_XS, soc)
                if index == 0:
                    cell_V = NMC_CELL_OCV_CURVE[0][1]
                elif index == _NMC_CELL_OCV_POINTS:
                    cell_V = NMC_CELL_OCV_CURVE[-1][1]
                else:
                    x0, y0 = NMC_CELL_OCV_CURVE[index - 1]
                    x1, y1 = NMC_CELL_OCV_CURVE[index]
                    self._ocv_segment = (x0, x1, y0, y1)
                    cell_V = y0 + (y1 - y0) * (soc - x0) / (x1 - x0)
            ocv = preset.series_cells * preset.cell_voltage_scale * cell_V
            battery._ocv_soc, battery._ocv_preset, battery._ocv_V = soc, preset, ocv
        before_A = self.supply_current_A
        voltage_setpoint = self.voltage_setpoint_V
        if cfg.max_voltage_V < voltage_setpoint:
            voltage_setpoint = cfg.max_voltage_V
        current_target = (voltage_setpoint - ocv) / resistance
        if not current_target > 0.0:
            current_target = 0.0
        power_W = self.power_limit_W
        if cfg.max_power_W < power_W:
            power_W = cfg.max_power_W
        inlet_V = self.inlet_voltage_V
        power_A = power_W / (inlet_V if inlet_V > 1.0 else 1.0)
        limit_A = self.current_limit_A  # the loop over (current limit, max current, power) of _step, unrolled
        if limit_A < current_target:
            current_target = limit_A
        limit_A = cfg.max_current_A
        if limit_A < current_target:
            current_target = limit_A
        if power_A < current_target:
            current_target = power_A
        max_change_A = cfg.current_slew_A_per_s * dt_s
        if current_target > before_A:
            current = before_A + max_change_A
            if current_target < current:
                current = current_target
        else:
            current = before_A - max_change_A
            if current < current_target:
                current = current_target
        voltage = ocv + current * resistance
        # The step keeps the state: current flows (the car keeps its contactor closed and the plant does not
        # fall back on the pack's open-circuit voltage) and the output stays energised.
        if not (current >= standards.CONTACTOR_OPEN_MAX_CURRENT_A and voltage > standards.SAFE_DC_VOLTAGE_V):
            return None
        # Battery.integrate(current, voltage, dt_s), inline
        charge_Ah = current * dt_s / 3600.0
        battery.charged_Ah += charge_Ah
        battery.charged_Wh += voltage * current * dt_s / 3600.0
        capacity_Ah = battery._capacity_Ah if battery._capacity_preset is preset else battery.capacity_Ah()
        soc = soc + charge_Ah / capacity_Ah
        soc = soc if soc > 0.0 else 0.0
        battery.soc_fraction = soc if soc < 1.0 else 1.0
        self.supply_current_A = self.cable_current_A = current
        self.output_voltage_V = self.inlet_voltage_V = voltage
        ev.charging_time_s += dt_s
        if self.energised_since_s is None:
            self.energised_since_s = start_s
        meter = self.meter  # MeterIntegrator.integrate(voltage, current, dt_s, True), inline
        meter.voltage_V, meter.current_A = voltage, current
        meter.session_time_s += dt_s
        meter.energy_Wh += voltage * current * dt_s / 3600.0
        meter.transfer_time_s += dt_s
        meter._voltage_time_Vs += voltage * dt_s
        meter._current_time_As += current * dt_s
        # self._heat(dt_s, current), inline
        steady_C = cfg.ambient_temperature_C + cfg.connector_rise_at_400A_K * (current / 400.0) ** 2
        temperature_C = self.connector_temperature_C
        if steady_C != temperature_C:
            alpha = dt_s / cfg.connector_thermal_time_constant_s
            if not alpha < 1.0:
                alpha = 1.0
            self.connector_temperature_C = temperature_C + (steady_C - temperature_C) * alpha
        ev._unready_since_s = None  # SimulatedEV.update_contactor: ready, wanting energy, current flowing
        self.time_s = start_s + dt_s
        return voltage, current, self.connector_temperature_C

    # --- commands (the caller advanced the plant to the present first) -------------------------
    def set_evse_contactor(self, closed: bool) -> None:
        if closed == self.evse_contactor_closed:
            self.evse_contactor_commanded = closed
            return
        if (self.contactor_welded and not closed) or (self.contactor_fails_to_close and closed):
            self.evse_contactor_commanded = closed  # the contacts do not move
            return
        if not closed:
            self.contactor_switched_under_load_A = max(self.contactor_switched_under_load_A,
                                                       abs(self.cable_current_A))
        self.evse_contactor_commanded = closed
        self.evse_contactor_closed = closed
        self._settle_instant()

    def set_pwm_duty(self, duty_percent: float) -> None:
        self.pwm_duty_percent = duty_percent
        self.state_f = False
        self.ev.react_to_pwm(duty_percent, self.time_s)

    def set_state_f(self) -> None:
        self.state_f = True
        self.ev.react_to_pwm(100.0, self.time_s)

    # --- readings --------------------------------------------------------------------------------
    def cp_plateaus_V(self) -> tuple[float, float]:
        """(positive, negative) plateau of the CP signal at the EVSE's measuring point."""
        if self.state_f:
            return (standards.CP_STATE_F_V, standards.CP_STATE_F_V)
        resistance = self.ev.cp_resistance_ohm()
        oscillator = standards.CP_OSCILLATOR_V
        if resistance is None:
            high = oscillator
        elif resistance == 0.0:
            return (0.0, 0.0)
        else:
            diode = standards.CP_EV_DIODE_DROP_V
            high = diode + (oscillator - diode) * resistance / (resistance + standards.CP_SOURCE_RESISTOR_OHM)
        oscillating = 0.0 < self.pwm_duty_percent < 100.0
        if not oscillating:
            return (high, high)
        if resistance is not None and self.ev.diode_fault:
            low = -oscillator * resistance / (resistance + standards.CP_SOURCE_RESISTOR_OHM)
        else:
            low = -oscillator
        return (high, low)

    def imd_reading_ohm(self) -> float | None:
        """Isolation resistance the IMD reports; None until the output has been energised long enough."""
        if self.energised_since_s is None or self.time_s - self.energised_since_s < self.config.imd_settle_s:
            return None
        return self.isolation_resistance_ohm

    # --- physics -----------------------------------------------------------------------------------
    def _step(self, dt_s: float) -> None:
        """Integrate ``dt_s`` from ``time_s`` (which the caller moves on afterwards).

        Written for speed (it runs once per control tick or more): builtin ``min``/``max`` calls are spelled as
        comparisons that pick the same float in every case (the first argument on a tie, as the builtins do).
        """
        cfg, ev = self.config, self.ev
        end_s = self.time_s + dt_s
        if ev._pending_s2 is not None:
            ev.advance(end_s)
        battery = ev.battery
        evse_closed = self.evse_contactor_closed
        supplying = self.supply_enabled and not self.supply_emergency_off
        if evse_closed and ev.contactor_closed:
            resistance = battery.preset.internal_resistance_ohm
            ocv = battery.ocv_V()
            before_A = self.supply_current_A
            if supplying:
                voltage_setpoint = self.voltage_setpoint_V
                if cfg.max_voltage_V < voltage_setpoint:
                    voltage_setpoint = cfg.max_voltage_V
                current_target = (voltage_setpoint - ocv) / resistance
                if not current_target > 0.0:
                    current_target = 0.0
                # min(current_target, current limit, max current, min(power limit, max power) / max(1, V_inlet))
                power_W = self.power_limit_W
                if cfg.max_power_W < power_W:
                    power_W = cfg.max_power_W
                inlet_V = self.inlet_voltage_V
                power_A = power_W / (inlet_V if inlet_V > 1.0 else 1.0)
                for limit_A in (self.current_limit_A, cfg.max_current_A, power_A):
                    if limit_A < current_target:
                        current_target = limit_A
                max_change_A = cfg.current_slew_A_per_s * dt_s
            else:
                current_target, max_change_A = 0.0, cfg.emergency_current_fall_A_per_s * dt_s
            # _approach(before_A, current_target, max_change_A)
            if current_target > before_A:
                current = before_A + max_change_A
                if current_target < current:
                    current = current_target
            else:
                current = before_A - max_change_A
                if current < current_target:
                    current = current_target
            voltage = ocv + current * resistance  # battery.terminal_voltage_V(current)
            battery.integrate(current, voltage, dt_s)
            self.supply_current_A = self.cable_current_A = current
            self.output_voltage_V = self.inlet_voltage_V = voltage
            if current > 0.0:
                ev.charging_time_s += dt_s
        else:
            capacitance = cfg.output_capacitance_F + (cfg.cable_capacitance_F if evse_closed else 0.0)
            before = self.output_voltage_V
            # Leakage to PE through the insulation, part of what the supply delivers within its current limit.
            leakage_A = before / self.isolation_resistance_ohm if evse_closed else 0.0
            if supplying:
                target = min(max(self.voltage_setpoint_V, cfg.min_voltage_V), cfg.max_voltage_V)
                if target >= before:
                    # Current-limited rise into the capacitance: dV/dt = (I_limit − I_leak) / C, at most the slew.
                    available_A = max(0.0, min(self.current_limit_A, cfg.max_current_A) - leakage_A)
                    voltage = min(target, before + min(cfg.voltage_slew_up_V_per_s, available_A / capacitance) * dt_s)
                else:
                    voltage = max(target, before - cfg.voltage_slew_down_V_per_s * dt_s)
            elif before == 0.0:
                voltage = 0.0  # discharged: before × exp(−dt/τ) stays 0
            else:
                voltage = before * math.exp(-dt_s / self.discharge_time_constant_s())
                if voltage < 0.5:
                    voltage = 0.0
            self.output_voltage_V = voltage
            charging_A = capacitance * (voltage - before) / dt_s
            self.supply_current_A = max(0.0, charging_A) + leakage_A
            if evse_closed:
                self.inlet_voltage_V = voltage
                cable_share = cfg.cable_capacitance_F / capacitance
                self.cable_current_A = max(0.0, charging_A * cable_share) + leakage_A
            else:
                self.inlet_voltage_V = 0.0
                self.cable_current_A = 0.0
        inlet_V, cable_A = self.inlet_voltage_V, self.cable_current_A
        # _track_energised()
        if evse_closed and inlet_V > standards.SAFE_DC_VOLTAGE_V:
            if self.energised_since_s is None:
                self.energised_since_s = self.time_s
        else:
            self.energised_since_s = None
        meter = self.meter
        if meter.running:
            meter.integrate(inlet_V, cable_A, dt_s, evse_closed)
        else:
            meter.voltage_V, meter.current_A = inlet_V, cable_A
        self._heat(dt_s, cable_A)
        ev.update_contactor(inlet_V, cable_A, end_s)
        if ev.contactor_closed and evse_closed and self.supply_current_A == 0.0:
            self.inlet_voltage_V = self.output_voltage_V = battery.terminal_voltage_V(0.0)

    def discharge_time_constant_s(self) -> float:
        """τ = R·C of the active discharge (the cable's capacitance too while the contactor is closed)."""
        cfg = self.config
        capacitance = cfg.output_capacitance_F + (cfg.cable_capacitance_F if self.evse_contactor_closed else 0.0)
        return cfg.discharge_resistance_ohm * capacitance

    def _settle_instant(self) -> None:
        """Apply a switching event at the present instant (no time passes)."""
        ev = self.ev
        if not self.evse_contactor_closed:
            # The car sees its charging voltage vanish and opens its own contactor (DG level 3).
            ev.contactor_closed = False
            self.inlet_voltage_V = 0.0
            self.cable_current_A = 0.0
            self.supply_current_A = 0.0  # nothing downstream draws until the next step
            self.energised_since_s = None
        else:
            self.inlet_voltage_V = self.output_voltage_V
            ev.update_contactor(self.inlet_voltage_V, 0.0, self.time_s)
            self._track_energised()

    def _track_energised(self) -> None:
        energised = self.evse_contactor_closed and self.inlet_voltage_V > standards.SAFE_DC_VOLTAGE_V
        if energised and self.energised_since_s is None:
            self.energised_since_s = self.time_s
        elif not energised:
            self.energised_since_s = None

    def _heat(self, dt_s: float, cable_current_A: float) -> None:
        """First-order approach of the connector temperature to its steady state for ``cable_current_A``."""
        cfg = self.config
        steady = cfg.ambient_temperature_C + cfg.connector_rise_at_400A_K * (cable_current_A / 400.0) ** 2
        temperature_C = self.connector_temperature_C
        if steady == temperature_C:
            return  # at its steady state: the step below would add exactly 0.0
        alpha = dt_s / cfg.connector_thermal_time_constant_s
        if not alpha < 1.0:  # min(1.0, alpha)
            alpha = 1.0
        self.connector_temperature_C = temperature_C + (steady - temperature_C) * alpha


class MeterIntegrator:
    """What a DC meter at the EVSE output counts: ∫V·I dt, and time-weighted V and I over the time energy
    flowed (current ≥ 1 A, so cable-check and precharge time do not dilute the averages)."""

    def __init__(self) -> None:
        self.running = False
        self.reset()

    def reset(self) -> None:
        self.energy_Wh = 0.0
        self.session_time_s = 0.0
        self.transfer_time_s = 0.0
        self._voltage_time_Vs = 0.0
        self._current_time_As = 0.0
        self.voltage_V = 0.0
        self.current_A = 0.0

    def integrate(self, voltage_V: float, current_A: float, dt_s: float, contactor_closed: bool) -> None:
        self.voltage_V, self.current_A = voltage_V, current_A
        if not self.running:
            return
        self.session_time_s += dt_s
        self.energy_Wh += voltage_V * current_A * dt_s / 3600.0
        if contactor_closed and current_A >= standards.CONTACTOR_OPEN_MAX_CURRENT_A:
            self.transfer_time_s += dt_s
            self._voltage_time_Vs += voltage_V * dt_s
            self._current_time_As += current_A * dt_s

    @property
    def avg_voltage_V(self) -> float:
        return self._voltage_time_Vs / self.transfer_time_s if self.transfer_time_s > 0 else 0.0

    @property
    def avg_current_A(self) -> float:
        return self._current_time_As / self.transfer_time_s if self.transfer_time_s > 0 else 0.0
