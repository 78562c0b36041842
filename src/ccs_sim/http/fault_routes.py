"""``POST /fault`` (inject a fault, as if a device reported it) and ``GET /faults`` (the catalogue)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ccs_sim.http.api_models import FaultRequest
from ccs_sim.http.routing import controller_of
from evse_model.faults import FAULT_CATALOGUE, lookup_fault

router = APIRouter()


@router.post("/fault")
async def fault(request: Request, body: FaultRequest) -> dict[str, Any]:
    fault_type, known = lookup_fault(body.type)  # the name becomes the catalogue entry here, at the API
    await controller_of(request).raise_fault(fault_type, source="api")
    return {"status": "fault_injected", "type": body.type, "known": known,
            "severity": fault_type.severity.value}


# --- additive endpoints -------------------------------------------------------------------------
@router.get("/faults")
async def faults() -> dict[str, Any]:
    """The documented fault types, their severity and meaning; unknown types act as emergencies."""
    return {"faults": [{"type": f.name, "severity": f.severity.value, "description": f.description}
                       for f in FAULT_CATALOGUE.values()],
            "unknown_type_policy": "accepted and handled as an emergency shutdown (known: false)"}
