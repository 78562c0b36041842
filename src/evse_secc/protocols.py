"""The HLC protocols a DC charger offers, named and ordered by us (not by iso15118's settings loader).

iso15118's ``load_requested_protocols`` passes the configured list through ``set()``, so the order of
``PROTOCOLS`` is lost and changes per process (hash randomisation). We parse the names ourselves,
keep their order and set ``Config.supported_protocols`` explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from evse_secc.errors import LaunchError


class HlcProtocol(StrEnum):
    """A high-level-communication protocol; values are iso15118's ``Protocol`` member names."""

    DIN_SPEC_70121 = "DIN_SPEC_70121"
    ISO_15118_2 = "ISO_15118_2"
    ISO_15118_20_DC = "ISO_15118_20_DC"
    ISO_15118_20_AC = "ISO_15118_20_AC"


#: Offered when neither ``--protocols`` nor ``PROTOCOLS`` says otherwise: every DC protocol.
DEFAULT_DC_PROTOCOLS: tuple[HlcProtocol, ...] = (
    HlcProtocol.ISO_15118_20_DC, HlcProtocol.ISO_15118_2, HlcProtocol.DIN_SPEC_70121)

_ALIASES = {
    "DIN": HlcProtocol.DIN_SPEC_70121, "DIN70121": HlcProtocol.DIN_SPEC_70121,
    "ISO2": HlcProtocol.ISO_15118_2, "ISO15118_2": HlcProtocol.ISO_15118_2,
    "ISO20DC": HlcProtocol.ISO_15118_20_DC, "ISO20": HlcProtocol.ISO_15118_20_DC,
    "ISO20AC": HlcProtocol.ISO_15118_20_AC,
}


def parse_protocol(name: str) -> HlcProtocol:
    """One protocol from its iso15118 name (``ISO_15118_2``) or a short alias (``iso2``, ``din``)."""
    key = name.strip().upper().replace("-", "_")
    if key in HlcProtocol.__members__:
        return HlcProtocol[key]
    alias = _ALIASES.get(key.replace("_", ""))
    if alias is None:
        known = ", ".join(p.value for p in HlcProtocol)
        raise LaunchError(f"unknown protocol {name!r}; known: {known} (or din, iso2, iso20dc, iso20ac)")
    return alias


def parse_protocols(names: str | Iterable[str]) -> tuple[HlcProtocol, ...]:
    """Protocols from a comma-separated string or a list, in the given order, duplicates dropped."""
    items = names.split(",") if isinstance(names, str) else list(names)
    parsed: list[HlcProtocol] = []
    for item in items:
        if item.strip() and (protocol := parse_protocol(item)) not in parsed:
            parsed.append(protocol)
    if not parsed:
        raise LaunchError("no protocol given")
    return tuple(parsed)
