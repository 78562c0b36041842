"""Precharge: bring the output to the EV's battery voltage with at most 2 A, within the EV's timeout.

The EV closes its own contactor once the voltages differ by less than 20 V (IEC 61851-23 CC.5.2,
DG L981); the EVSE aims closer than that so the EV's check passes at once. The target is re-applied on
every step because some EVs correct their first request (standards.md §2.3, BMW i3 quirk).
"""

from __future__ import annotations

from dataclasses import dataclass

from evse_model import standards


class PrechargeTimeout(Exception):
    def __init__(self, target_V: float, reached_V: float, timeout_s: float) -> None:
        super().__init__(f"precharge reached {reached_V:.1f} V of {target_V:.1f} V within {timeout_s:.1f} s")
        self.target_V, self.reached_V, self.timeout_s = target_V, reached_V, timeout_s


@dataclass
class PrechargeSetpoint:
    voltage_V: float
    current_limit_A: float


def precharge_tolerance_V(target_V: float) -> float:
    """How close counts as reached: 2 % of the target, between 0.5 V and 5 V (well inside the EV's 20 V)."""
    return min(5.0, max(0.5, 0.02 * target_V))


class PrechargeControl:
    """Setpoints for one precharge, and the judgement of when it is done or has timed out."""

    def __init__(self, target_V: float, timeout_s: float, started_at_s: float,
                 evse_max_voltage_V: float) -> None:
        if target_V < 0:
            raise ValueError("precharge target must be ≥ 0 V")
        self.target_V = min(target_V, evse_max_voltage_V)
        self.timeout_s = timeout_s
        self.started_at_s = started_at_s

    def retarget(self, target_V: float, evse_max_voltage_V: float) -> None:
        self.target_V = min(max(0.0, target_V), evse_max_voltage_V)

    def setpoint(self, requested_current_A: float = standards.PRECHARGE_CURRENT_LIMIT_A) -> PrechargeSetpoint:
        current_A = min(max(0.0, requested_current_A), standards.PRECHARGE_CURRENT_LIMIT_A)
        return PrechargeSetpoint(voltage_V=self.target_V, current_limit_A=current_A)

    def reached(self, measured_V: float) -> bool:
        return abs(measured_V - self.target_V) <= precharge_tolerance_V(self.target_V)

    def timed_out(self, now_s: float) -> bool:
        return now_s - self.started_at_s > self.timeout_s
