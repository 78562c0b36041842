"""Every frame checked against the OCA JSON schema of its action, with ``format: date-time`` enforced.

The ``ocpp`` package validates payloads with jsonschema but without a format checker, so ``"timestamp":
"not-a-date"`` passes it. Both OCPP 1.6J (§4.1.3 / the schemas' ``"format": "date-time"``) and OCPP 2.0.1
(Part 2 §2.1.4 dateTime: RFC 3339 with a time zone) want RFC 3339 date-times: ``check_frame`` refuses anything
else before it leaves (``OutgoingPayloadRefused``); the test CSMS uses ``frame_violations`` on what it receives.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from jsonschema import Draft4Validator, FormatChecker
from ocpp.messages import MessageType, get_validator

#: RFC 3339 §5.6 date-time: full-date "T" full-time, the offset required (Z or +hh:mm).
RFC3339_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class OutgoingPayloadRefused(ValueError):
    """An outgoing payload broke its schema (a date-time field not RFC 3339, ...): it was not sent."""


def is_rfc3339_date_time(value: object) -> bool:
    if not isinstance(value, str) or RFC3339_DATE_TIME.match(value) is None:
        return False
    try:
        datetime.fromisoformat(value.upper())
    except ValueError:  # 2024-02-30, 25:00, ...
        return False
    return True


def _date_time_format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())

    @checker.checks("date-time")
    def check(value: object) -> bool:
        return not isinstance(value, str) or is_rfc3339_date_time(value)

    return checker


_FORMAT_CHECKER = _date_time_format_checker()


@cache
def strict_validator(version: str, message_type_id: int, action: str) -> Draft4Validator:
    """The action's schema (the ``ocpp`` package's copy of the OCA schemas) with date-time formats checked."""
    schema = get_validator(message_type_id, action, version).schema
    # Numbers as Decimal on both sides: the package may have cached this schema with Decimal numbers
    # (1.6 schedules' multipleOf 0.1), and 21.4 must pass multipleOf 0.1 (jsonschema issue 247).
    schema = json.loads(json.dumps(schema, default=float), parse_float=Decimal)
    return Draft4Validator(schema, format_checker=_FORMAT_CHECKER)


def _with_decimals(payload: Any) -> Any:
    return json.loads(json.dumps(payload, default=float), parse_float=Decimal)


def date_time_violations(version: str, message_type_id: int, action: str, payload: Any) -> list[str]:
    """The payload's date-time fields that are not RFC 3339 date-times, as ``path: value`` lines."""
    validator = strict_validator(version, message_type_id, action)
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '(payload)'}: {error.instance!r} is not an "
            f"RFC 3339 date-time" for error in validator.iter_errors(_with_decimals(payload)) if error.validator == "format"]


def frame_violations(version: str, message_type_id: int, action: str, payload: Any) -> list[str]:
    """Every schema violation of the payload (date-time formats included), one line each."""
    validator = strict_validator(version, message_type_id, action)
    return [f"{'/'.join(str(p) for p in error.absolute_path) or '(payload)'}: {error.message}"
            for error in validator.iter_errors(_with_decimals(payload))]


def check_outgoing(version: str, message_type_id: int, action: str, payload: Any) -> None:
    """``OutgoingPayloadRefused`` if a date-time field of this CALL / CALLRESULT is not RFC 3339."""
    if message_type_id not in (MessageType.Call, MessageType.CallResult):
        return
    try:
        violations = date_time_violations(version, message_type_id, action, payload)
    except (OSError, ValueError):  # no schema for this action (a vendor DataTransfer name): nothing to check
        return
    if violations:
        kind = "CALL" if message_type_id == MessageType.Call else "CALLRESULT"
        raise OutgoingPayloadRefused(f"{action} {kind} not sent: {'; '.join(violations)}")


def format_date_time(moment: datetime) -> str:
    """An aware ``datetime`` as the RFC 3339 UTC date-time OCPP frames carry (``2025-01-31T12:00:00.000Z``)."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no time zone: OCPP date-times need one")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
