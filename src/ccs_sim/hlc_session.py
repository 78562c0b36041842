"""An ISO 15118 (HLC) session in the controller: its driver, and the EV's data as the API's views.

The SECC runs the protocol; ``HalEVSEController`` (evse_hal.iso15118_hal_controller) turns its callbacks
into controller primitives. The controller still needs a ``SessionDriver`` for the session it records:
``HlcSessionDriver`` is that driver. It does nothing by itself: it waits until the SECC's side ends the
session (``end_session`` cancels it), like the simulated car's script waits for its duration.

The view builders take iso15118's data objects duck-typed (attributes only) and return plain dicts of
plain numbers, so no iso15118 (pydantic v1) object leaks into the API (pydantic v2).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from ccs_sim.controller import ActiveSession, ChargerController
from ccs_sim.vehicle import AC_RATED_FIELDS, AC_SESSION_FIELDS, DC_LIMIT_FIELDS, empty_bms_view, empty_iso15118_view


class HlcSessionDriver:
    """The controller-side driver of a session whose flow is the SECC's (source ``hlc``)."""

    source = "hlc"

    def __init__(self) -> None:
        self._done = asyncio.Event()

    async def run(self, controller: ChargerController, session: ActiveSession) -> None:
        # The SECC's callbacks drive the controller; the session ends through controller.end_session /
        # raise_fault, which cancel this wait. ``finish`` only releases it when nothing else ended it.
        await self._done.wait()

    def finish(self) -> None:
        self._done.set()


def plain_number(value: Any) -> float | int | None:
    """An iso15118 number (int, float, Decimal, RationalNumber, PhysicalValue) as a plain int/float."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    decimal = getattr(value, "get_decimal_value", None)
    if callable(decimal):
        value = decimal()
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() and abs(number) < 2**53 else round(number, 6)


def _limits(limits: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: plain_number(getattr(limits, name, None)) if limits is not None else None for name in fields}


def bms_view_from_ev_data(ev_data: Any, protocol: str | None) -> dict[str, Any]:
    """The spec's ``/vehicle/bms`` from iso15118's ``EVDataContext`` (every field, None when the EV did not say)."""
    view = empty_bms_view()
    rated = getattr(ev_data, "rated_limits", None)
    session = getattr(ev_data, "session_limits", None)
    view.update({
        "protocol": protocol,
        "evcc_id": getattr(ev_data, "evcc_id", None),
        "present_soc": plain_number(getattr(ev_data, "present_soc", None)),
        "present_voltage": plain_number(getattr(ev_data, "present_voltage", None)),
        "target_voltage": plain_number(getattr(ev_data, "target_voltage", None)),
        "target_current": plain_number(getattr(ev_data, "target_current", None)),
        "total_battery_capacity": plain_number(getattr(ev_data, "total_battery_capacity", None)),
        "energy_requests": {key: plain_number(getattr(ev_data, key, None))
                            for key in ("target_energy_request", "max_energy_request", "min_energy_request")},
        "soc_limits": {key: plain_number(getattr(ev_data, key, None)) for key in ("min_soc", "max_soc", "target_soc")},
        "rated_limits": {"dc": _limits(getattr(rated, "dc_limits", None), DC_LIMIT_FIELDS),
                         "ac": _limits(getattr(rated, "ac_limits", None), AC_RATED_FIELDS)},
        "session_limits": {"dc": _limits(getattr(session, "dc_limits", None), DC_LIMIT_FIELDS),
                           "ac": _limits(getattr(session, "ac_limits", None), AC_SESSION_FIELDS)},
        "source": "iso15118",
    })
    return view


def enum_value(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def iso15118_view(protocol: str | None, energy_service: str | None, control_mode: str | None,
                  authorized: bool | None, evse_id: str | None, session_id: str | None,
                  started_at: datetime | None, last_message_at: datetime | None) -> dict[str, Any]:
    """The spec's ``/vehicle/iso15118``."""
    view = empty_iso15118_view()
    view.update({"protocol": protocol, "energy_service": energy_service, "control_mode": control_mode,
                 "authorized": authorized, "evse_id": evse_id, "session_id": session_id,
                 "timestamps": {"started_at": started_at.isoformat() if started_at else None,
                                "last_message_at": last_message_at.isoformat() if last_message_at else None}})
    return view
