"""The EV's ISO 15118 data as the API's views: ``/vehicle/bms`` and ``/vehicle/iso15118`` (the spec's fields).

The SECC glue (``HalEVSEController``) builds them from iso15118's data objects, taken duck-typed
(attributes only), and hands plain dicts of plain numbers to the charger, so no iso15118 (pydantic v1) object
leaks into the API (pydantic v2). Nothing here imports iso15118.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

#: The limit fields of the spec's ``/vehicle/bms`` (iso15118's EV limit attribute names).
DC_LIMIT_FIELDS = ("max_charge_power", "min_charge_power", "max_charge_current", "min_charge_current",
                   "max_voltage", "min_voltage", "max_discharge_power", "min_discharge_power",
                   "max_discharge_current")
AC_RATED_FIELDS = ("max_charge_current", "min_charge_current", "max_voltage", "max_charge_power",
                   "min_charge_power", "max_discharge_power")
AC_SESSION_FIELDS = ("max_charge_power", "min_charge_power")


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


def enum_value(value: Any) -> str | None:
    """An iso15118 enum member (or a plain value) as its string value."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _limits(limits: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: plain_number(getattr(limits, name, None)) if limits is not None else None for name in fields}


def bms_view_from_ev_data(ev_data: Any, protocol: str | None) -> dict[str, Any]:
    """The spec's ``/vehicle/bms`` from iso15118's ``EVDataContext`` (every field, None when the EV did not say)."""
    rated = getattr(ev_data, "rated_limits", None)
    session = getattr(ev_data, "session_limits", None)
    return {
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
    }


def iso15118_view(protocol: str | None, energy_service: str | None, control_mode: str | None,
                  authorized: bool | None, evse_id: str | None, session_id: str | None,
                  started_at: datetime | None, last_message_at: datetime | None) -> dict[str, Any]:
    """The spec's ``/vehicle/iso15118``."""
    return {"protocol": protocol, "energy_service": energy_service, "control_mode": control_mode,
            "authorized": authorized, "evse_id": evse_id, "session_id": session_id,
            "timestamps": {"started_at": started_at.isoformat() if started_at else None,
                           "last_message_at": last_message_at.isoformat() if last_message_at else None}}


def energy_service_name(comm_session: Any, ev_data: Any) -> str | None:
    """The energy service the EV chose: -20 keeps it in the communication session (DC, DC_BPT, ...), DIN / -2
    in the EV data (DC_extended, ...)."""
    if comm_session is not None and getattr(comm_session, "selected_energy_service", None) is not None:
        return str(comm_session.selected_energy_service.service.name)
    return enum_value(getattr(ev_data, "selected_energy_mode", None))


def ev_max_voltage_V(ev_data: Any) -> float | None:
    """The EV's rated maximum DC voltage from iso15118's ``EVDataContext`` (None until it said, or 0)."""
    value = plain_number(ev_data.rated_limits.dc_limits.max_voltage)
    return float(value) if value else None


def ev_max_current_A(ev_data: Any) -> float | None:
    """The EV's rated maximum DC charge current from iso15118's ``EVDataContext`` (None until it said, or 0)."""
    value = plain_number(ev_data.rated_limits.dc_limits.max_charge_current)
    return float(value) if value else None
