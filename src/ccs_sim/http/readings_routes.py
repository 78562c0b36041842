"""What the controller shows, read-only: ``GET /status``, ``/meter``, the vehicle's views (``/vehicle/bms``,
``/vehicle/slac``, ``/vehicle/iso15118``) and ``/health`` (the adapter and the control loop's timing)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ccs_sim.http.routing import controller_of
from ccs_sim.http.view_bodies import json_response

router = APIRouter()


@router.get("/status", response_model=dict[str, Any])
async def status(request: Request) -> Response:
    """The charger's state; built at most once per control tick (or command) and encoded once for all readers."""
    return json_response(request, "status", controller_of(request).status_view())


@router.get("/meter", response_model=dict[str, Any])
async def meter(request: Request) -> Response:
    """The session's meter; built at most once per control tick and encoded once for all readers."""
    return json_response(request, "meter", controller_of(request).meter_view())


@router.get("/vehicle/bms")
async def vehicle_bms(request: Request) -> dict[str, Any]:
    return controller_of(request).bms_view()


@router.get("/vehicle/slac")
async def vehicle_slac(request: Request) -> dict[str, Any]:
    return controller_of(request).slac_view


@router.get("/vehicle/iso15118")
async def vehicle_iso15118(request: Request) -> dict[str, Any]:
    return controller_of(request).iso15118_view


@router.get("/health")
async def health(request: Request) -> dict[str, Any]:
    controller = controller_of(request)
    return {"status": "ok", "adapter": controller.hw.name, "late_ticks": controller.late_ticks,
            "max_tick_lateness_s": controller.max_tick_lateness_s}
