"""The EVSE ID in the form each protocol's SessionSetupRes/ChargeParameterDiscoveryRes carries.

- DIN SPEC 70121: ``EVSEID`` is hexBinary. A DIN SPEC 91286 ID made of digits and ``*`` is packed one
  character per nibble (``0``..``9`` -> 0x0..0x9, ``*`` -> 0xA; an odd count is padded with the
  "unused" nibble 0xF), e.g. ``49*89*6360`` -> ``49A89A6360`` (the rule quoted in iso15118's
  simulator). Any other ID cannot be expressed; DIN SPEC 70121 then sends ``00`` (no EVSE ID).
- ISO 15118-2: ``EVSEID`` is a string of 7..37 characters (``evseIDType``; iso15118 validates this). An ID
  that does not fit is sent as ``ZZ00000``, the value ISO 15118-2 prescribes when no EVSE ID is available
  (so the spec's ``--evse-id EVSE-1`` still charges; the launcher warns).
- ISO 15118-20: a string of at most 255 characters.

Pure formatting, used by the SECC glue (``HalEVSEController``) and by the launcher's start-up check
(``evse_secc.evse_id.check_evse_id``).
"""

from __future__ import annotations

ISO_15118_2_EVSE_ID_LENGTH = (7, 37)  # ISO 15118-2 evseIDType: minLength 7, maxLength 37
ISO_15118_20_EVSE_ID_MAX_LENGTH = 255  # ISO 15118-20 identifierType maxLength
DIN_EVSE_ID_MAX_HEX_DIGITS = 32  # DIN SPEC 70121 EVSEID hexBinary, at most 16 bytes
DIN_NO_EVSE_ID = "00"
#: ISO 15118-2: the EVSEID to use when none is available (evseIDType description, [V2G2-…] via the package's docs).
ISO_15118_2_NO_EVSE_ID = "ZZ00000"
_DIN_NIBBLES = {**{str(digit): format(digit, "X") for digit in range(10)}, "*": "A"}
_DIN_UNUSED_NIBBLE = "F"


def din_evse_id(evse_id: str) -> str:
    """The DIN SPEC 70121 hexBinary form of ``evse_id`` (``00`` when it is not a DIN SPEC 91286 ID)."""
    if not evse_id or any(char not in _DIN_NIBBLES for char in evse_id):
        return DIN_NO_EVSE_ID
    hex_digits = "".join(_DIN_NIBBLES[char] for char in evse_id)
    if len(hex_digits) % 2:
        hex_digits += _DIN_UNUSED_NIBBLE
    if len(hex_digits) > DIN_EVSE_ID_MAX_HEX_DIGITS:
        return DIN_NO_EVSE_ID
    return hex_digits


def iso_15118_2_evse_id(evse_id: str) -> str:
    """``evse_id`` when ISO 15118-2 can carry it (7..37 characters), else ``ZZ00000`` (no EVSE ID)."""
    low, high = ISO_15118_2_EVSE_ID_LENGTH
    return evse_id if low <= len(evse_id) <= high else ISO_15118_2_NO_EVSE_ID
