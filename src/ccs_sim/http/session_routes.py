"""``POST /start_session`` and ``POST /stop_session``: a charging session begins and ends here."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from ccs_sim.controller import CommandRefused
from ccs_sim.http.api_models import StartSessionRequest
from ccs_sim.http.errors import error_body
from ccs_sim.http.routing import controller_of
from evse_model.session import SessionParams

router = APIRouter()


@router.post("/start_session")
async def start_session(request: Request,
                        body: Annotated[StartSessionRequest | None, Body()] = None) -> dict[str, Any]:
    body = body or StartSessionRequest()
    controller = controller_of(request)
    if body.target_voltage > controller.evse_max_voltage_V:
        return error_body(f"target_voltage {body.target_voltage} V is above this charger's maximum "
                          f"{controller.evse_max_voltage_V} V")
    params = SessionParams(target_voltage_V=body.target_voltage, initial_current_A=body.initial_current,
                           duration_s=body.duration_s, ev_preset=body.ev_preset,
                           start_soc_percent=body.start_soc, target_soc_percent=body.target_soc,
                           precharge_timeout_s=body.precharge_timeout_s, id_token=body.id_token)
    try:
        session = controller.start_session(params)
    except CommandRefused as refused:
        return error_body(str(refused))
    operations = getattr(request.app.state, "operations", None)
    if operations is not None:
        await operations.recorder.record_start(session)  # durable before it is acknowledged
    return {"status": "started", "session_id": session.session_id}


@router.post("/stop_session")
async def stop_session(request: Request) -> dict[str, Any]:
    if not controller_of(request).request_stop():
        return error_body("No session in progress")
    return {"status": "stopping"}
