"""The EVSE ID checked at start-up against the protocols offered: what cannot be sent as given is said then,
not discovered at the first EV's SessionSetup. The per-protocol forms themselves (DIN SPEC 70121 hexBinary,
ISO 15118-2 7..37 characters, ISO 15118-20 ≤ 255) are the SECC glue's: ``evse_hal.iso15118.evse_id``.
"""

from __future__ import annotations

from collections.abc import Iterable

from evse_hal.iso15118.evse_id import (  # noqa: F401 (re-exported: the launcher's and the tests' names)
    DIN_NO_EVSE_ID,
    ISO_15118_2_EVSE_ID_LENGTH,
    ISO_15118_2_NO_EVSE_ID,
    ISO_15118_20_EVSE_ID_MAX_LENGTH,
    din_evse_id,
    iso_15118_2_evse_id,
)
from evse_secc.errors import LaunchError
from evse_secc.protocols import HlcProtocol


def check_evse_id(evse_id: str, protocols: Iterable[HlcProtocol]) -> list[str]:
    """Warnings for what cannot be sent as given; raise LaunchError for an ID no protocol can carry."""
    offered = set(protocols)
    warnings = []
    low, high = ISO_15118_2_EVSE_ID_LENGTH
    if HlcProtocol.ISO_15118_2 in offered and not low <= len(evse_id) <= high:
        warnings.append(f"--evse-id {evse_id!r} has {len(evse_id)} characters; ISO 15118-2 needs {low}..{high} "
                        f"(e.g. DE*ABC*E1234567*1), so ISO 15118-2 sessions get {ISO_15118_2_NO_EVSE_ID} (no EVSE ID)")
    if HlcProtocol.DIN_SPEC_70121 in offered and din_evse_id(evse_id) == DIN_NO_EVSE_ID:
        warnings.append(f"--evse-id {evse_id!r} is not a DIN SPEC 91286 ID (digits and *); DIN SPEC 70121 sessions "
                        f"get {DIN_NO_EVSE_ID} (no EVSE ID)")
    if len(evse_id) > ISO_15118_20_EVSE_ID_MAX_LENGTH:
        raise LaunchError(f"--evse-id is longer than {ISO_15118_20_EVSE_ID_MAX_LENGTH} characters")
    return warnings
