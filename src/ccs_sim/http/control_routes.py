"""Direct control of the outputs: ``POST /control/contactor``, ``/control/pwm`` and ``/control/cp_state``.

Each is one ``ChargerController`` command; what the controller refuses (e.g. closing onto a voltage mismatch)
comes back in the API's error shape.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ccs_sim.controller import CommandRefused
from ccs_sim.http.api_models import ContactorRequest, CPStateRequest, PWMRequest
from ccs_sim.http.errors import error_body
from ccs_sim.http.routing import controller_of

router = APIRouter()


@router.post("/control/contactor")
async def control_contactor(request: Request, body: ContactorRequest) -> dict[str, Any]:
    controller = controller_of(request)
    try:
        result = await controller.set_contactor(body.closed)
    except CommandRefused as refused:
        closed = bool(controller.latest and controller.latest.contactor_closed)
        return error_body(str(refused), contactor_closed=closed)
    closed = bool(controller.latest and controller.latest.contactor_closed)
    answer: dict[str, Any] = {"status": "ok", "contactor_closed": closed}
    if result.shutdown_first:  # additive: the open came under load and went through a shutdown
        answer.update(shutdown_first=True, current_at_command_A=round(result.current_at_command_A, 3),
                      current_at_open_A=None if result.current_at_open_A is None
                      else round(result.current_at_open_A, 3),
                      emergency=result.emergency.name if result.emergency else None, message=result.describe())
    return answer


@router.post("/control/pwm")
async def control_pwm(request: Request, body: PWMRequest) -> dict[str, Any]:
    try:
        await controller_of(request).set_pwm_duty(body.duty)
    except CommandRefused as refused:
        return error_body(str(refused))
    return {"status": "ok", "duty": body.duty}


@router.post("/control/cp_state")
async def control_cp_state(request: Request, body: CPStateRequest) -> dict[str, Any]:
    try:
        await controller_of(request).set_cp_state(body.state)
    except CommandRefused as refused:  # real hardware: no simulated car, the CP is what the wire measures
        return error_body(str(refused), state=body.state)
    return {"status": "ok", "state": body.state}
