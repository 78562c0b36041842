"""What ``SlacService.status()`` reports (the body of GET /vehicle/slac)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import Enum


class SlacState(str, Enum):
    IDLE = "IDLE"  # no vehicle plugged in (CP A), or the plug-in ended
    MATCHING = "MATCHING"  # plugged in (CP B/C/D); waiting for the EV's CM_SLAC_PARM.REQ or matching
    MATCHED = "MATCHED"  # CM_SLAC_MATCH.CNF sent: the EV joins our logical network (nid)
    FAILED = "FAILED"  # no EV request in time, or every attempt failed; the next plug-in starts afresh


@dataclass(frozen=True)
class SlacStatus:
    state: SlacState
    ev_mac: str | None  # "AA:BB:CC:DD:EE:FF", from the EV's CM_SLAC_PARM.REQ
    nid: str | None  # hex, 7 bytes, the logical network the EV was told to join (when MATCHED)
    run_id: str | None  # hex, 8 bytes, chosen by the EV
    attenuation_db: float | None  # average over the attenuation groups of the sounds received (when MATCHED)
    last_updated: datetime  # UTC

    def as_json(self) -> dict:
        """JSON-ready dict: state as its name, last_updated as ISO 8601."""
        data = asdict(self)
        data["state"] = self.state.value
        data["last_updated"] = self.last_updated.isoformat()
        return data
