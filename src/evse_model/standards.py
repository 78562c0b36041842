"""Numbers from the standards, each with its source (see ../shared/reference/standards.md).

IEC/ISO texts are paid documents; where a number is quoted by an implementation or the CharIN design
guide (DG) rather than read from the normative text, the comment says so.
"""

from __future__ import annotations

import math

# --- Control pilot, IEC 61851-1 Annex A (standards.md §1) -------------------------------------
CP_SOURCE_RESISTOR_OHM = 1000.0  # R1 1 kΩ ±3 % (DG L2495)
CP_OSCILLATOR_V = 12.0  # ±12 V ±5 % (DG L2513)
CP_EV_DIODE_DROP_V = 0.7  # 0.55…0.85 V (DG L2493)
CP_EV_R_STATE_B_OHM = 2740.0  # 2.74 kΩ (IEC 61851-1 Table A.4, via EVerest bring-up docs)
CP_EV_R_STATE_C_OHM = 882.0  # 2.74 kΩ ∥ 1.3 kΩ
CP_EV_R_STATE_D_OHM = 246.0  # 2.74 kΩ ∥ 270 Ω
#: State detection windows on the positive plateau, ±1 V around nominal (DG L2507).
CP_STATE_WINDOWS_V = {
    "A": (11.0, 13.0),
    "B": (8.0, 10.0),
    "C": (5.0, 7.0),
    "D": (2.0, 4.0),
    "E": (-1.0, 1.0),
}
CP_STATE_F_V = -12.0  # EVSE-generated −12 V, "EVSE not available"
#: A negative plateau above this while PWM runs means the EV's diode is missing or shorted.
CP_DIODE_FAULT_NEGATIVE_PLATEAU_V = -6.0
#: DC/HLC: the EVSE signals digital communication with a 5 % duty (IEC 61851-1 Table A.8; DG L531-533).
CP_HLC_DUTY_PERCENT = 5.0

# --- DC sequence, IEC 61851-23 Annex CC (standards.md §2) ------------------------------------
#: Maximum precharge / inrush current (IEC 61851-23 CC.5.2; DG L783, L881).
PRECHARGE_CURRENT_LIMIT_A = 2.0
#: Contactors close only when the voltages on both sides differ by less than this (DG L981).
CONTACTOR_CLOSE_MAX_DELTA_V = 20.0
#: Normal shutdown current ramp-down limit (DG L4110, level 1 shutdown).
NORMAL_RAMP_DOWN_A_PER_S = 100.0
#: The output is disabled / contactor opened only below this current (DG L1283-1285, L1388).
CONTACTOR_OPEN_MAX_CURRENT_A = 1.0
#: Emergency shutdown: current below 5 A within 30 ms, voltage below 60 V within 100 ms
#: (IEC 61851-23 9.4 / CC.5.4 via DG L6247-6249).
EMERGENCY_CURRENT_A = 5.0
EMERGENCY_CURRENT_DEADLINE_S = 0.030
EMERGENCY_VOLTAGE_V = 60.0
EMERGENCY_VOLTAGE_DEADLINE_S = 0.100
#: A contactor completes its motion (close, or open on command) within this; its mirror contact then agrees with
#: the command (the HAL contract's budget: IEC 61851-23 CC.5.4, the emergency shutdown opens within 100 ms, via
#: DG L6247-6249).
CONTACTOR_MOTION_MAX_S = 0.100
#: A power stage's output voltage rises towards its setpoint at no less than this (standards.md §2.3: 800 V within
#: the 5 s SECC precharge performance time needs ≥ 200 V/s).
SUPPLY_MIN_VOLTAGE_SLEW_V_PER_S = 200.0
#: Accuracy of the EVSE's voltage measurement: ±10 V (IEC 61851-23:2023 CC.6.3, via EVerest docs dc.rst,
#: standards.md §2.6).
VOLTAGE_MEASUREMENT_ACCURACY_V = 10.0
#: Touch-safe DC voltage: EV unlocks / session setup shuts down above it (DG L472, L1781).
SAFE_DC_VOLTAGE_V = 60.0
#: After the insulation test the supply is switched off and the output falls below the touch-safe voltage
#: before the cable check reports finished; precharge then starts from there (IEC 61851-23:2023 CC.4.1.2, last
#: sentence of the early prints; EVerest EvseManager ``cable_check_wait_below_60V_before_finish``, default true,
#: standards.md §2.2 and anchors.md).
CABLE_CHECK_DISCHARGE_BELOW_V = SAFE_DC_VOLTAGE_V
#: Accuracy of the EVSE's current measurement: ±1.5 % or ±0.5 A, whichever is larger (IEC 61851-23:2023 CC.6.3,
#: via EVerest docs dc.rst, standards.md §2.6). The only tolerance a test of a current limit or rate may allow.
CURRENT_MEASUREMENT_ACCURACY_FRACTION = 0.015
CURRENT_MEASUREMENT_ACCURACY_MIN_A = 0.5
#: EV precharge timeout, ISO 15118-2 V2G_EVCC_PreCharge_Timeout (Table 111, via standards.md §2.3).
PRECHARGE_TIMEOUT_S = 7.0
#: Insulation fault threshold, IEC 61851-23:2023 6.3.1.105 / CC.4.1.4 (via EVerest, standards.md §2.2).
ISOLATION_FAULT_OHM = 100_000.0
#: 2014 edition warning band: 100…500 Ω/V of the rated output voltage (EVerest 2014, standards.md §2.2).
ISOLATION_WARNING_OHM_PER_V = 500.0
ISOLATION_FAULT_OHM_PER_V = 100.0
#: Fallback cable-check test voltage when the EV maximum is unknown (IEC 61851-23:2014 practice).
CABLE_CHECK_DEFAULT_TEST_V = 500.0


def cable_check_test_voltage_V(ev_max_voltage_V: float | None, evse_max_voltage_V: float) -> float:
    """Cable-check test voltage, IEC 61851-23:2023 CC.4.1.2 formula CC.1 (via EVerest, standards.md §2.2)."""
    if ev_max_voltage_V is None or ev_max_voltage_V <= 0:
        return min(CABLE_CHECK_DEFAULT_TEST_V, evse_max_voltage_V)
    if ev_max_voltage_V <= 500.0:
        return min(500.0, ev_max_voltage_V + 50.0, evse_max_voltage_V)
    # 0.1 V below the float product at most: 1.1 × 850 V must stay at the 935 V protection level of Table 103
    # (overvoltage_limit_V), not a rounding error above it.
    return min(evse_max_voltage_V, math.floor(11.0 * ev_max_voltage_V) / 10.0)


def overvoltage_limit_V(negotiated_max_voltage_V: float) -> float:
    """Over-voltage protection level, IEC 61851-23:2023 6.3.1.106.2 Table 103 (via EVerest)."""
    if negotiated_max_voltage_V <= 500.0:
        return 550.0
    if negotiated_max_voltage_V <= 750.0:
        return 825.0
    if negotiated_max_voltage_V <= 850.0:
        return 935.0
    if negotiated_max_voltage_V <= 1000.0:
        return 1100.0
    return 1375.0


def current_measurement_tolerance_A(current_A: float) -> float:
    """How far a current reading may be off (IEC 61851-23:2023 CC.6.3: ±1.5 % or ±0.5 A, whichever is larger)."""
    return max(CURRENT_MEASUREMENT_ACCURACY_MIN_A, CURRENT_MEASUREMENT_ACCURACY_FRACTION * abs(current_A))
