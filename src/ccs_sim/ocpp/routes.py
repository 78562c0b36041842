"""GET /ocpp: the OCPP client as the operator sees it; ``{"enabled": false}`` when OCPP is off.

Importing this module imports neither ``ocpp`` nor ``websockets``: it only reads the client the runtime attached
(``app.state.operations.ocpp``, an ``OcppClient``) if there is one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

router = APIRouter()


def ocpp_client_of(request: Request) -> Any:
    operations = getattr(request.app.state, "operations", None)
    return getattr(operations, "ocpp", None)


@router.get("/ocpp")
async def ocpp_view(request: Request) -> dict[str, Any]:
    """OCPP: enabled, version, url, connection state, boot status, last error, last frames, queue depth,
    composite limit (``{"enabled": false}`` without ``--ocpp-url``)."""
    client = ocpp_client_of(request)
    if client is None:
        return {"enabled": False}
    return client.view()
