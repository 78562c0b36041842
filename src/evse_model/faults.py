"""The faults the controller knows, their severity and what each one does.

Severity follows EVerest's ErrorHandling split (standards.md §2.6):

- EMERGENCY: supply off at once (current < 5 A within 30 ms), contactor open as soon as the current is
  below 5 A (within 100 ms at the latest), PWM stopped (X1), the EV told EVSE_EmergencyShutdown.
- ERROR: supply off at once, contactor open below 1 A, PWM kept at 5 % so the HLC session can end
  cleanly, the EV told EVSE_Shutdown / StopCharging.

Both end the running session ABORTED with ``error`` = the fault's name. A fault type that is not in the
catalogue is still honoured (fail safe): it is treated as an EMERGENCY and reported as ``known: false``.

Inside the program a fault travels as its catalogue entry (``FaultType``, one module constant per entry)
or, once raised, as a ``Fault`` (the entry, who raised it, why and when); it becomes a name only at the API
and database boundary (``Fault.to_dict``, the session summary's ``error``). ``lookup_fault`` is that
boundary's way back from a name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any


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

    @property
    def known(self) -> bool:
        """This is the catalogue's own entry (an unknown name gets an ad-hoc EMERGENCY entry)."""
        return FAULT_CATALOGUE.get(self.name) is self


E_STOP = FaultType("E_STOP", Severity.EMERGENCY, "emergency-stop button pressed")
OVERCURRENT = FaultType("OVERCURRENT", Severity.EMERGENCY,
                        "output current above the commanded limit by more than the regulation tolerance")
OVERVOLTAGE = FaultType("OVERVOLTAGE", Severity.EMERGENCY,
                        "output voltage above the IEC 61851-23 Table 103 protection level for the negotiated maximum")
ISOLATION_FAULT = FaultType("ISOLATION_FAULT", Severity.EMERGENCY,
                            "insulation resistance DC+/DC- to PE below 100 kΩ (IEC 61851-23:2023 6.3.1.105)")
CP_LOSS = FaultType("CP_LOSS", Severity.EMERGENCY,
                    "control pilot lost (state A/E/F or out of range) while energy transfer was possible")
EV_EMERGENCY_STOP = FaultType("EV_EMERGENCY_STOP", Severity.EMERGENCY,
                              "EV opened S2 (CP C→B) while current flowed: EV-initiated emergency (DG L2448, L4116)")
DIODE_FAULT = FaultType("DIODE_FAULT", Severity.EMERGENCY, "EV diode missing: negative CP plateau above −6 V")
OVER_TEMPERATURE = FaultType("OVER_TEMPERATURE", Severity.ERROR, "connector temperature above its limit")
PRECHARGE_TIMEOUT = FaultType("PRECHARGE_TIMEOUT", Severity.ERROR, "precharge did not reach the EV's voltage in time",
                              False)
CABLE_CHECK_FAILED = FaultType("CABLE_CHECK_FAILED", Severity.ERROR,
                               "no valid insulation measurement during cable check", False)
EV_NOT_READY = FaultType("EV_NOT_READY", Severity.ERROR,
                         "the EV did not signal ready (CP C/D) within the handshake", False)
CONTACTOR_FAULT = FaultType("CONTACTOR_FAULT", Severity.EMERGENCY,
                            "contactor feedback disagrees with its command (welded, or fails to close)")
SUPPLY_FAULT = FaultType("SUPPLY_FAULT", Severity.EMERGENCY,
                         "power stage reports a fault or does not follow its setpoint")
COMMUNICATION_TIMEOUT = FaultType("COMMUNICATION_TIMEOUT", Severity.ERROR,
                                  "the EV stopped sending CurrentDemand / ChargeLoop requests (controller watchdog)",
                                  False)
HLC_FAILURE = FaultType("HLC_FAILURE", Severity.ERROR, "the ISO 15118 session ended abnormally, or the SECC task "
                        "died or hung (launcher supervisor)", False)
SLAC_FAILURE = FaultType("SLAC_FAILURE", Severity.ERROR,
                         "the SLAC (ISO 15118-3) task died or hung (launcher supervisor)", False)

FAULT_CATALOGUE: dict[str, FaultType] = {fault.name: fault for fault in (
    E_STOP, OVERCURRENT, OVERVOLTAGE, ISOLATION_FAULT, CP_LOSS, EV_EMERGENCY_STOP, DIODE_FAULT, OVER_TEMPERATURE,
    PRECHARGE_TIMEOUT, CABLE_CHECK_FAILED, EV_NOT_READY, CONTACTOR_FAULT, SUPPLY_FAULT, COMMUNICATION_TIMEOUT,
    HLC_FAILURE, SLAC_FAILURE,
)}


def lookup_fault(name: str) -> tuple[FaultType, bool]:
    """The catalogue entry for ``name`` (case-insensitive) and whether it is known: the way in from a name
    (the API's ``POST /fault``, a stored record).

    Unknown names get an EMERGENCY entry of their own, named as given (stripped): an unrecognised fault is
    never taken lightly.
    """
    known = FAULT_CATALOGUE.get(name.strip().upper())
    if known is not None:
        return known, True
    return FaultType(name.strip(), Severity.EMERGENCY, "fault type not in the catalogue; treated as an emergency",
                     False), False


@dataclass(frozen=True)
class Fault:
    """A fault as raised: its catalogue entry, who raised it (``api``, ``supervisor``, ``session``, ``hlc``),
    why, and when (the controller's clock, simulated seconds, and its UTC time)."""

    type: FaultType
    source: str
    message: str
    time_s: float
    at: datetime

    @property
    def name(self) -> str:
        return self.type.name

    @property
    def severity(self) -> Severity:
        return self.type.severity

    @property
    def known(self) -> bool:
        return self.type.known

    def to_dict(self) -> dict[str, Any]:
        """The fault as the API shows it (the dashboard's recent faults): names and plain values."""
        return {"type": self.name, "severity": self.severity.value, "source": self.source, "known": self.known,
                "message": self.message, "time_s": self.time_s, "at": self.at.isoformat()}
