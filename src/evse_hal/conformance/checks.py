"""The checks: what ``interfaces.py`` promises, measured on the adapter (units, ranges, timing, safe states).

Budgets come from the contract's docstrings (and the standards they cite); where the contract says "≈ 0" the
suite's tolerance is named here. A check never closes the contactor onto a voltage difference of 20 V or more
and never opens it above 1 A except on the emergency path, as the controller would.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from evse_hal.conformance.context import Check, CheckContext, CheckSkipped
from evse_hal.interfaces import (
    CP_STATES,
    ContactorDriver,
    CPReader,
    DCPowerSupply,
    EmergencyStopInput,
    EVSEHardware,
    IsolationMonitor,
    Meter,
    PWMController,
    TemperatureSensor,
)
from evse_hal.pilot import classify_cp_voltage
from evse_model import standards

#: interfaces.py: "Non-blocking adapters must return within a few hundred microseconds" (median per method).
NON_BLOCKING_CALL_BUDGET_S = 500e-6
#: The suite's budget for an adapter with ``blocking = True``: a call that takes longer than the contactor's
#: whole motion budget cannot keep the 100 ms below.
BLOCKING_CALL_BUDGET_S = 0.100
#: PWMController.set_duty: "The new duty must be on the wire within 10 ms" (state F: the same oscillator).
PWM_ON_WIRE_S = 0.010
#: ContactorDriver.set_closed: "complete the motion within 100 ms" (IEC 61851-23 emergency budget).
CONTACTOR_MOTION_S = 0.100
#: DCPowerSupply.set_enabled(False): "current falls to 0 within 10 ms" ...
SUPPLY_OFF_CURRENT_S = 0.010
#: ... "and the output capacitance is actively discharged (< 60 V within 100 ms from the maximum voltage)".
DISCHARGE_S = standards.EMERGENCY_VOLTAGE_DEADLINE_S
#: DCPowerSupply.set_voltage: "slews towards it at its own rate (≥ 200 V/s expected)".
MIN_SLEW_V_PER_S = 200.0
#: The suite's margin on top of the slew time for the current limit charging the output capacitance.
SETTLE_MARGIN_S = 0.5
#: The suite's "≈ 0": output voltage with nothing energised, measured current with nothing flowing.
IDLE_VOLTAGE_V = 5.0
IDLE_CURRENT_A = standards.CURRENT_MEASUREMENT_ACCURACY_MIN_A
#: The suite's duty tolerance, percentage points, and how close a reached setpoint must be (fraction).
DUTY_TOLERANCE_PERCENT = 0.5
SETPOINT_TOLERANCE_FRACTION = 0.05
#: CP plateau limits: ±12 V oscillator ±5 % (DG L2513), and the IEC 61851-1 ±1 V state windows.
CP_LIMIT_V = standards.CP_OSCILLATOR_V * 1.05 + 0.5
CP_WINDOW_V = 1.0
#: The supply setpoint the "disabled supply" check gives while nothing is energised (harmless if it leaks).
DISABLED_SETPOINT_V = standards.SAFE_DC_VOLTAGE_V / 2

CHECKS: dict[str, Check] = {}


def check(function: Callable[[CheckContext], None]) -> Callable[[CheckContext], None]:
    CHECKS[function.__name__.removeprefix("check_")] = function
    return function


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms"


@check
def check_declares_itself(ctx: CheckContext) -> None:
    """An EVSEHardware with every device implementing its contract, a name and a ``blocking`` flag."""
    hw = ctx.hw
    ctx.require(isinstance(hw, EVSEHardware), f"the factory returned {type(hw).__name__}, not an EVSEHardware")
    devices = {"pwm": PWMController, "cp": CPReader, "contactor": ContactorDriver, "supply": DCPowerSupply,
               "meter": Meter, "imd": IsolationMonitor, "temperature": TemperatureSensor}
    for attribute, contract in devices.items():
        device = getattr(hw, attribute, None)
        ctx.require(isinstance(device, contract), f"hw.{attribute} is {type(device).__name__}, not a "
                                                  f"{contract.__name__}")
    ctx.require(hw.estop is None or isinstance(hw.estop, EmergencyStopInput),
                f"hw.estop is {type(hw.estop).__name__}, neither None nor an EmergencyStopInput")
    ctx.require(isinstance(hw.name, str) and hw.name not in ("", "abstract"), f"hw.name is {hw.name!r}: name it")
    ctx.require(isinstance(hw.blocking, bool), f"hw.blocking is {hw.blocking!r}, not a bool")


@check
def check_safe_state_on_start(ctx: CheckContext) -> None:
    """Just built: contactor open (mirror contact), output ≈ 0 V / 0 A, PWM off (constant level), meter ≈ 0."""
    hw = ctx.hw
    ctx.require(not hw.contactor.is_closed(), "the contactor reads closed on start: it must start open")
    voltage_V, current_A = hw.supply.get_status()
    ctx.require(abs(voltage_V) <= IDLE_VOLTAGE_V and abs(current_A) <= IDLE_CURRENT_A,
                f"the supply reads {voltage_V:g} V / {current_A:g} A on start: it must start disabled "
                f"(≤ {IDLE_VOLTAGE_V:g} V, ≤ {IDLE_CURRENT_A:g} A)")
    duty_percent = hw.pwm.get_duty()
    off = duty_percent >= 100.0 - DUTY_TOLERANCE_PERCENT or duty_percent <= DUTY_TOLERANCE_PERCENT
    ctx.require(off, f"the PWM runs at {duty_percent:g} % on start: the oscillator must be off (100 %)")
    positive_V, negative_V = hw.cp.read_voltage(), hw.cp.read_negative_plateau_V()
    ctx.require(abs(positive_V - negative_V) <= CP_WINDOW_V,
                f"the CP oscillates on start ({positive_V:g} V / {negative_V:g} V): it must hold a constant level")
    meter_V, meter_A = hw.meter.read_voltage_V(), hw.meter.read_current_A()
    ctx.require(abs(meter_V) <= IDLE_VOLTAGE_V and abs(meter_A) <= IDLE_CURRENT_A,
                f"the meter reads {meter_V:g} V / {meter_A:g} A on start with the contactor open")


@check
def check_readings_in_range(ctx: CheckContext) -> None:
    """Every reading has its type, unit and a physical range; the capabilities are consistent."""
    hw = ctx.hw
    for label, value in (("cp.read_voltage()", hw.cp.read_voltage()),
                         ("cp.read_negative_plateau_V()", hw.cp.read_negative_plateau_V())):
        ctx.require(_finite(value) and abs(value) <= CP_LIMIT_V,
                    f"{label} = {value!r}: a CP plateau is a number of volts within ±{CP_LIMIT_V:g} V")
    positive_V = hw.cp.read_voltage()
    state = hw.cp.get_state()
    ctx.require(state in CP_STATES, f"cp.get_state() = {state!r}, not one of {', '.join(CP_STATES)}")
    ctx.require(state == classify_cp_voltage(positive_V),
                f"cp.get_state() = {state!r} but the plateau {positive_V:g} V is state "
                f"{classify_cp_voltage(positive_V)!r} (IEC 61851-1 windows)")
    duty_percent = hw.pwm.get_duty()
    ctx.require(_finite(duty_percent) and 0.0 <= duty_percent <= 100.0, f"pwm.get_duty() = {duty_percent!r} %")
    ctx.require(isinstance(hw.contactor.is_closed(), bool), "contactor.is_closed() must return a bool")
    status = hw.supply.get_status()
    ctx.require(isinstance(status, tuple) and len(status) == 2 and all(_finite(value) for value in status),
                f"supply.get_status() = {status!r}: expected (voltage_V, current_A)")
    caps = hw.supply.get_capabilities()
    ctx.require(0.0 <= caps.min_voltage_V <= caps.max_voltage_V and caps.max_voltage_V > 0.0,
                f"capabilities: voltage {caps.min_voltage_V:g}…{caps.max_voltage_V:g} V")
    ctx.require(0.0 <= caps.min_current_A <= caps.max_current_A and caps.max_current_A > 0.0,
                f"capabilities: current {caps.min_current_A:g}…{caps.max_current_A:g} A")
    ctx.require(caps.max_power_W > 0.0 and caps.peak_current_ripple_A >= 0.0
                and caps.current_regulation_tolerance_percent >= 0.0, f"capabilities: {caps}")
    for label, value in (("meter.read_voltage_V()", hw.meter.read_voltage_V()),
                         ("meter.read_current_A()", hw.meter.read_current_A()),
                         ("meter.get_energy_Wh()", hw.meter.get_energy_Wh()),
                         ("meter.get_avg_voltage()", hw.meter.get_avg_voltage()),
                         ("meter.get_avg_current()", hw.meter.get_avg_current()),
                         ("meter.get_session_time_s()", hw.meter.get_session_time_s())):
        ctx.require(_finite(value), f"{label} = {value!r}: expected a number")
    ctx.require(hw.meter.get_energy_Wh() >= 0.0 and hw.meter.get_session_time_s() >= 0.0,
                "the meter's energy and session time are never negative")
    temperature_C = hw.temperature.read_connector_temperature_C()
    ctx.require(_finite(temperature_C) and -50.0 <= temperature_C <= 200.0,
                f"read_connector_temperature_C() = {temperature_C!r}: degrees Celsius expected")
    for _ in range(2):  # not measuring, then measuring
        isolation_ohm = hw.imd.read_isolation_ohm()
        ctx.require(isolation_ohm is None or (_finite(isolation_ohm) and isolation_ohm > 0.0),
                    f"imd.read_isolation_ohm() = {isolation_ohm!r}: None or ohms > 0")
        hw.imd.start_measurement()
        ctx.pass_s(0.1)
    hw.imd.stop_measurement()
    if hw.estop is not None:
        ctx.require(isinstance(hw.estop.is_pressed(), bool), "estop.is_pressed() must return a bool")


@check
def check_calls_return_promptly(ctx: CheckContext) -> None:
    """Median time per call: a few hundred µs for a non-blocking adapter (``blocking = True``: 100 ms)."""
    hw = ctx.hw
    calls: dict[str, Callable[[], object]] = {
        "pwm.get_duty": hw.pwm.get_duty, "pwm.set_duty(100)": lambda: hw.pwm.set_duty(100.0),
        "cp.read_voltage": hw.cp.read_voltage, "cp.read_negative_plateau_V": hw.cp.read_negative_plateau_V,
        "cp.get_state": hw.cp.get_state, "contactor.is_closed": hw.contactor.is_closed,
        "contactor.set_closed(False)": lambda: hw.contactor.set_closed(False),
        "supply.get_status": hw.supply.get_status, "supply.get_capabilities": hw.supply.get_capabilities,
        "supply.set_enabled(False)": lambda: hw.supply.set_enabled(False),
        "supply.set_voltage(0)": lambda: hw.supply.set_voltage(0.0),
        "supply.set_current_limit(0)": lambda: hw.supply.set_current_limit(0.0),
        "supply.set_power_limit(0)": lambda: hw.supply.set_power_limit(0.0),
        "meter.read_voltage_V": hw.meter.read_voltage_V, "meter.read_current_A": hw.meter.read_current_A,
        "meter.update(0, 0)": lambda: hw.meter.update(0.0, 0.0), "meter.get_energy_Wh": hw.meter.get_energy_Wh,
        "imd.read_isolation_ohm": hw.imd.read_isolation_ohm,
        "temperature.read_connector_temperature_C": hw.temperature.read_connector_temperature_C,
    }
    if hw.estop is not None:
        calls["estop.is_pressed"] = hw.estop.is_pressed
    budget_s = BLOCKING_CALL_BUDGET_S if hw.blocking else NON_BLOCKING_CALL_BUDGET_S
    medians = {label: ctx.median_call_s(call) for label, call in calls.items()}
    slow = {label: median_s for label, median_s in medians.items() if median_s > budget_s}
    ctx.require(not slow, f"{'blocking' if hw.blocking else 'non-blocking'} adapter, budget {budget_s * 1e6:g} µs "
                          f"per call; median: " + ", ".join(f"{label} {median_s * 1e6:.0f} µs"
                                                             for label, median_s in slow.items()))


@check
def check_pwm_duty_on_the_wire(ctx: CheckContext) -> None:
    """set_duty(5): 5 % and an oscillating CP (−12 V plateau) within 10 ms; set_duty(100): constant again."""
    hw = ctx.hw
    hw.pwm.set_duty(standards.CP_HLC_DUTY_PERCENT)
    low_V = -standards.CP_OSCILLATOR_V + CP_WINDOW_V
    elapsed_s = ctx.within(PWM_ON_WIRE_S, lambda: abs(hw.pwm.get_duty() - standards.CP_HLC_DUTY_PERCENT)
                           <= DUTY_TOLERANCE_PERCENT and hw.cp.read_negative_plateau_V() <= low_V)
    ctx.require(elapsed_s is not None,
                f"set_duty(5): after {_ms(PWM_ON_WIRE_S)} get_duty() = {hw.pwm.get_duty():g} % and the negative "
                f"plateau {hw.cp.read_negative_plateau_V():g} V (expected 5 % and ≤ {low_V:g} V: oscillating)")
    hw.pwm.set_duty(100.0)
    elapsed_s = ctx.within(PWM_ON_WIRE_S, lambda: hw.pwm.get_duty() >= 100.0 - DUTY_TOLERANCE_PERCENT and abs(
        hw.cp.read_voltage() - hw.cp.read_negative_plateau_V()) <= CP_WINDOW_V)
    ctx.require(elapsed_s is not None,
                f"set_duty(100): after {_ms(PWM_ON_WIRE_S)} get_duty() = {hw.pwm.get_duty():g} %, CP "
                f"{hw.cp.read_voltage():g} V / {hw.cp.read_negative_plateau_V():g} V (expected a constant level)")


@check
def check_state_f_and_back(ctx: CheckContext) -> None:
    """set_state_f(): the plateau reads state F (−12 V) within 10 ms; the next set_duty clears it."""
    hw = ctx.hw
    hw.pwm.set_state_f()
    elapsed_s = ctx.within(PWM_ON_WIRE_S, lambda: classify_cp_voltage(hw.cp.read_voltage()) == "F")
    ctx.require(elapsed_s is not None, f"set_state_f(): after {_ms(PWM_ON_WIRE_S)} the CP reads "
                                       f"{hw.cp.read_voltage():g} V (state F is −12 V)")
    hw.pwm.set_duty(100.0)
    elapsed_s = ctx.within(PWM_ON_WIRE_S, lambda: classify_cp_voltage(hw.cp.read_voltage()) != "F")
    ctx.require(elapsed_s is not None, f"set_duty(100) after state F: after {_ms(PWM_ON_WIRE_S)} the CP still "
                                       f"reads {hw.cp.read_voltage():g} V (state F)")


@check
def check_cp_idle_state(ctx: CheckContext) -> None:
    """The measured plateau classifies as the bench's idle state (A: nothing plugged in), PWM off and on."""
    expected = ctx.parameters.expected_idle_cp_state
    if expected is None:
        raise CheckSkipped("no idle CP state expected (expected_idle_cp_state=None)")
    hw = ctx.hw
    for duty_percent in (100.0, standards.CP_HLC_DUTY_PERCENT):
        hw.pwm.set_duty(duty_percent)
        ctx.pass_s(PWM_ON_WIRE_S)
        positive_V = hw.cp.read_voltage()
        ctx.require(hw.cp.get_state() == expected == classify_cp_voltage(positive_V),
                    f"PWM {duty_percent:g} %: the plateau {positive_V:g} V reads state {hw.cp.get_state()!r}, "
                    f"expected {expected!r}")


def _require_no_mismatch(ctx: CheckContext) -> None:
    """Never close onto a voltage difference (IEC 61851-23 CC.5.2: < 20 V)."""
    supply_V, _ = ctx.hw.supply.get_status()
    outlet_V = ctx.hw.meter.read_voltage_V()
    if abs(supply_V - outlet_V) >= standards.CONTACTOR_CLOSE_MAX_DELTA_V:
        raise CheckSkipped(f"not closing the contactor onto {supply_V:g} V / {outlet_V:g} V (a 20 V difference "
                           f"or more)")


def _close_contactor(ctx: CheckContext) -> None:
    _require_no_mismatch(ctx)
    ctx.hw.contactor.set_closed(True)
    elapsed_s = ctx.within(CONTACTOR_MOTION_S, ctx.hw.contactor.is_closed)
    ctx.require(elapsed_s is not None, f"set_closed(True): the mirror contact does not read closed within "
                                       f"{_ms(CONTACTOR_MOTION_S)}")


def _open_contactor(ctx: CheckContext, when: str) -> None:
    ctx.hw.contactor.set_closed(False)
    elapsed_s = ctx.within(CONTACTOR_MOTION_S, lambda: not ctx.hw.contactor.is_closed())
    ctx.require(elapsed_s is not None, f"{when}set_closed(False): the mirror contact still reads closed after "
                                       f"{_ms(CONTACTOR_MOTION_S)}")


@check
def check_contactor_follows_within_100ms(ctx: CheckContext) -> None:
    """With nothing energised: the mirror contact reads closed, then open, each within 100 ms."""
    ctx.hw.supply.set_enabled(False)
    _close_contactor(ctx)
    _open_contactor(ctx, "")


@check
def check_disabled_supply_holds_output_at_zero(ctx: CheckContext) -> None:
    """Setpoints on a disabled supply: get_status() is the measured output (≈ 0 V, 0 A), not the command."""
    hw = ctx.hw
    hw.supply.set_enabled(False)
    setpoint_V = ctx.parameters.energised_test_voltage_V() or DISABLED_SETPOINT_V
    hw.supply.set_voltage(setpoint_V)
    hw.supply.set_current_limit(standards.PRECHARGE_CURRENT_LIMIT_A)
    hw.supply.set_power_limit(setpoint_V * standards.PRECHARGE_CURRENT_LIMIT_A)
    ctx.pass_s(0.2)
    voltage_V, current_A = hw.supply.get_status()
    ctx.require(abs(voltage_V) <= IDLE_VOLTAGE_V and abs(current_A) <= IDLE_CURRENT_A,
                f"supply disabled with setpoints {setpoint_V:g} V / {standards.PRECHARGE_CURRENT_LIMIT_A:g} A: "
                f"get_status() = ({voltage_V:g} V, {current_A:g} A); a measurement reads ≈ 0 (the command?)")


def _energise(ctx: CheckContext) -> float:
    """Supply on at the test voltage with the precharge current limit; returns the test voltage."""
    voltage_V = ctx.parameters.energised_test_voltage_V()
    if voltage_V is None:
        raise CheckSkipped("energised check: give a test voltage (--energize-output VOLTS) with the output "
                           "disconnected")
    hw = ctx.hw
    caps = hw.supply.get_capabilities()
    if not caps.min_voltage_V <= voltage_V <= caps.max_voltage_V:
        raise CheckSkipped(f"test voltage {voltage_V:g} V outside the supply's {caps.min_voltage_V:g}…"
                           f"{caps.max_voltage_V:g} V")
    hw.supply.set_voltage(voltage_V)
    hw.supply.set_current_limit(standards.PRECHARGE_CURRENT_LIMIT_A)
    hw.supply.set_power_limit(voltage_V * standards.PRECHARGE_CURRENT_LIMIT_A)
    hw.supply.set_enabled(True)
    budget_s = voltage_V / MIN_SLEW_V_PER_S + SETTLE_MARGIN_S
    tolerance_V = voltage_V * SETPOINT_TOLERANCE_FRACTION
    elapsed_s = ctx.within(budget_s, lambda: abs(hw.supply.get_status()[0] - voltage_V) <= tolerance_V)
    ctx.require(elapsed_s is not None, f"supply enabled at {voltage_V:g} V: it reads {hw.supply.get_status()[0]:g} V "
                                       f"after {budget_s:g} s (≥ {MIN_SLEW_V_PER_S:g} V/s expected)")
    return voltage_V


@check
def check_supply_reaches_its_setpoint(ctx: CheckContext) -> None:
    """Energised, contactor open: the output reaches the setpoint at ≥ 200 V/s; the meter (after the open
    contactor) still reads ≈ 0 V."""
    _energise(ctx)
    meter_V = ctx.hw.meter.read_voltage_V()
    ctx.require(abs(meter_V) <= IDLE_VOLTAGE_V, f"the meter reads {meter_V:g} V with the contactor open: it must "
                                                f"measure after the contactor")


def _energise_through_closed_contactor(ctx: CheckContext) -> float:
    ctx.hw.supply.set_enabled(False)
    _close_contactor(ctx)  # at 0 V on both sides
    voltage_V = _energise(ctx)
    meter_V = ctx.hw.meter.read_voltage_V()
    ctx.require(abs(meter_V - voltage_V) <= voltage_V * SETPOINT_TOLERANCE_FRACTION + IDLE_VOLTAGE_V,
                f"contactor closed, output at {voltage_V:g} V: the meter reads {meter_V:g} V")
    return voltage_V


def _require_discharged(ctx: CheckContext, when: str) -> None:
    elapsed_s = ctx.within(DISCHARGE_S, lambda: ctx.hw.supply.get_status()[0] < standards.SAFE_DC_VOLTAGE_V)
    ctx.require(elapsed_s is not None, f"{when}: the output reads {ctx.hw.supply.get_status()[0]:g} V after "
                                       f"{_ms(DISCHARGE_S)} (< {standards.SAFE_DC_VOLTAGE_V:g} V expected)")


@check
def check_shutdown_supply_off_then_contactor_opens(ctx: CheckContext) -> None:
    """Energised through the closed contactor: set_enabled(False) → current ≈ 0 within 10 ms and < 60 V within
    100 ms; then the contactor opens (below 1 A) within 100 ms."""
    _energise_through_closed_contactor(ctx)
    hw = ctx.hw
    hw.supply.set_enabled(False)
    elapsed_s = ctx.within(SUPPLY_OFF_CURRENT_S, lambda: abs(hw.supply.get_status()[1]) <= IDLE_CURRENT_A)
    ctx.require(elapsed_s is not None, f"set_enabled(False): the supply still sources {hw.supply.get_status()[1]:g} A "
                                       f"after {_ms(SUPPLY_OFF_CURRENT_S)}")
    _require_discharged(ctx, "set_enabled(False)")
    ctx.require(abs(hw.meter.read_current_A()) < standards.CONTACTOR_OPEN_MAX_CURRENT_A,
                f"the meter reads {hw.meter.read_current_A():g} A with the supply off")
    _open_contactor(ctx, "supply off: ")


@check
def check_emergency_off_and_stays_off(ctx: CheckContext) -> None:
    """Energised through the closed contactor: emergency_off() → < 5 A within 30 ms, < 60 V within 100 ms, the
    contactor opens within 100 ms; new setpoints do not bring the output back before set_enabled(True)."""
    voltage_V = _energise_through_closed_contactor(ctx)
    hw = ctx.hw
    hw.supply.emergency_off()
    deadline_s = standards.EMERGENCY_CURRENT_DEADLINE_S
    elapsed_s = ctx.within(deadline_s, lambda: abs(hw.supply.get_status()[1]) < standards.EMERGENCY_CURRENT_A)
    ctx.require(elapsed_s is not None, f"emergency_off(): {hw.supply.get_status()[1]:g} A after {_ms(deadline_s)} "
                                       f"(< {standards.EMERGENCY_CURRENT_A:g} A expected, IEC 61851-23 CC.5.4)")
    _open_contactor(ctx, "emergency_off(): ")
    _require_discharged(ctx, "emergency_off()")
    hw.supply.set_voltage(voltage_V)
    hw.supply.set_current_limit(standards.PRECHARGE_CURRENT_LIMIT_A)
    ctx.pass_s(voltage_V / MIN_SLEW_V_PER_S + SETTLE_MARGIN_S)
    output_V = hw.supply.get_status()[0]
    ctx.require(output_V < standards.SAFE_DC_VOLTAGE_V, f"after emergency_off(), new setpoints brought the output "
                                                         f"to {output_V:g} V without set_enabled(True)")


@check
def check_meter_counts_and_resets(ctx: CheckContext) -> None:
    """start(): session time counts (1 s → 1 s ± 10 %), no energy without current; reset(): all zero."""
    meter = ctx.hw.meter
    meter.start()
    ctx.pass_s(1.0)
    session_s, energy_Wh = meter.get_session_time_s(), meter.get_energy_Wh()
    ctx.require(0.9 <= session_s <= 1.1, f"1 s after start() the meter counts {session_s:g} s")
    ctx.require(0.0 <= energy_Wh <= 0.01, f"{energy_Wh:g} Wh counted with no current flowing")
    meter.reset()
    ctx.require(meter.get_session_time_s() == 0.0 and meter.get_energy_Wh() == 0.0,
                f"after reset(): {meter.get_session_time_s():g} s, {meter.get_energy_Wh():g} Wh (zero expected)")


@check
def check_close_leaves_safe_state(ctx: CheckContext) -> None:
    """close() with the contactor closed and the PWM at 5 %: contactor open and PWM off afterwards (when the
    devices can still be read after close())."""
    hw = ctx.hw
    hw.supply.set_enabled(False)
    _close_contactor(ctx)
    hw.pwm.set_duty(standards.CP_HLC_DUTY_PERCENT)
    ctx.closed = True
    hw.close()
    try:
        ctx.pass_s(CONTACTOR_MOTION_S)
        closed, duty_percent = hw.contactor.is_closed(), hw.pwm.get_duty()
    except Exception:  # devices released: close() returned, nothing more to read
        return
    ctx.require(not closed, "after close() the contactor reads closed")
    ctx.require(duty_percent >= 100.0 - DUTY_TOLERANCE_PERCENT or duty_percent <= DUTY_TOLERANCE_PERCENT,
                f"after close() the PWM runs at {duty_percent:g} %")
