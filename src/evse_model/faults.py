"""The faults the controller knows, their severity and what each one does.

Severity follows EVerest's ErrorHandling split (standards.md §2.6):

- EMERGENCY: supply off at once (current < 5 A within 30 ms), contactor open as soon as the current is
  below 5 A (within 100 ms at the latest), PWM stopped (X1), the EV told EVSE_EmergencyShutdown.
- ERROR: supply off at once, contactor open below 1 A, PWM kept at 5 % so the HLC session can end
  cleanly, the EV told EVSE_Shutdown / StopCharging.

Both end the running session ABORTED with ``error`` = the fault's name. A fault type that is not in the
catalogue is still honoured (fail safe): it is treated as an EMERGENCY and reported as ``known: false``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(str, enum.Enum):
    EMERGENCY = "emergency"
    ERROR = "error"


@dataclass(frozen=True)
class FaultType:
    name: str
    severity: Severity
    description: str
    #: Detected by the supervisor from a measurement (as opposed to only by injection or the protocol).
    monitored: bool = True


FAULT_CATALOGUE: dict[str, FaultType] = {fault.name: fault for fault in (
    FaultType("E_STOP", Severity.EMERGENCY, "emergency-stop button pressed"),
    FaultType("OVERCURRENT", Severity.EMERGENCY,
              "output current above the commanded limit by more than the regulation tolerance"),
    FaultType("OVERVOLTAGE", Severity.EMERGENCY,
              "output voltage above the IEC 61851-23 Table 103 protection level for the negotiated maximum"),
    FaultType("ISOLATION_FAULT", Severity.EMERGENCY,
              "insulation resistance DC+/DC- to PE below 100 kΩ (IEC 61851-23:2023 6.3.1.105)"),
    FaultType("CP_LOSS", Severity.EMERGENCY,
              "control pilot lost (state A/E/F or out of range) while energy transfer was possible"),
    FaultType("EV_EMERGENCY_STOP", Severity.EMERGENCY,
              "EV opened S2 (CP C→B) while current flowed: EV-initiated emergency (DG L2448, L4116)"),
    FaultType("DIODE_FAULT", Severity.EMERGENCY, "EV diode missing: negative CP plateau above −6 V"),
    FaultType("OVER_TEMPERATURE", Severity.ERROR, "connector temperature above its limit"),
    FaultType("PRECHARGE_TIMEOUT", Severity.ERROR, "precharge did not reach the EV's voltage in time", False),
    FaultType("CABLE_CHECK_FAILED", Severity.ERROR, "no valid insulation measurement during cable check", False),
    FaultType("EV_NOT_READY", Severity.ERROR, "the EV did not signal ready (CP C/D) within the handshake", False),
    FaultType("CONTACTOR_FAULT", Severity.EMERGENCY, "contactor feedback disagrees with its command"),
    FaultType("SUPPLY_FAULT", Severity.EMERGENCY, "power stage reports a fault or does not follow its setpoint"),
    FaultType("COMMUNICATION_TIMEOUT", Severity.ERROR,
              "the EV stopped sending CurrentDemand / ChargeLoop requests (controller watchdog)", False),
    FaultType("HLC_FAILURE", Severity.ERROR, "the ISO 15118 session ended abnormally, or the SECC task died "
              "or hung (launcher supervisor)", False),
    FaultType("SLAC_FAILURE", Severity.ERROR, "the SLAC (ISO 15118-3) task died or hung (launcher supervisor)",
              False),
)}


def lookup_fault(name: str) -> tuple[FaultType, bool]:
    """The catalogue entry for ``name`` (case-insensitive) and whether it is known.

    Unknown names get an EMERGENCY entry of their own: an unrecognised fault is never taken lightly.
    """
    known = FAULT_CATALOGUE.get(name.strip().upper())
    if known is not None:
        return known, True
    return FaultType(name, Severity.EMERGENCY, "fault type not in the catalogue; treated as an emergency", False), \
        False
