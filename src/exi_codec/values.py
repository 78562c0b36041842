"""Typed value encoding (W3C EXI 1.0 §7.1) between JSON values and the bit stream.

JSON forms are those of the Java codec (EclipseLink MOXy): integers and booleans as JSON numbers and
booleans, enumerations and strings as strings, hexBinary as upper-case hex, base64Binary as base64.
Strings are always encoded as literals: the Java codec sets valuePartitionCapacity = 0, so no value
is ever added to (or found in) the string table (§7.3.3), and length is sent as n + 2.
"""

from __future__ import annotations

import base64
import binascii

from exi_codec.bits import BitReader, BitWriter
from exi_codec.errors import EXIDecodeError
from exi_codec.grammar import (
    BASE64,
    BOOLEAN,
    ENUM,
    HEX,
    INTEGER,
    LIST,
    NBIT,
    STRING,
    UNSIGNED,
    Datatype,
)


class EXIValueError(ValueError):
    pass


def _text(code_points: list[int]) -> str:
    """W3C EXI 1.0 §7.1.10: a String is a sequence of code points of XML characters, so of Unicode scalar values
    (U+0000..U+10FFFF without the UTF-16 surrogates U+D800..U+DFFF, which UTF-8 cannot encode)."""
    try:
        text = "".join(map(chr, code_points))
        text.encode("utf-8")
    except (ValueError, OverflowError) as exc:  # chr's range; UnicodeEncodeError (a ValueError) for a surrogate
        raise EXIDecodeError(f"a character of the string is not a Unicode scalar value ({exc})") from exc
    return text


def _as_int(value) -> int:
    if isinstance(value, bool):
        raise EXIValueError(f"expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return int(value.strip())
    raise EXIValueError(f"expected an integer, got {value!r}")


def _write_string(w: BitWriter, text: str) -> None:
    if text.isascii():
        w.uint(len(text) + 2)
        w.raw_bytes(text.encode("ascii"))  # code points < 128 are one Unsigned Integer octet each: the ASCII bytes
        return
    w.uint(len(text) + 2)
    for character in text:
        w.uint(ord(character))


def write_value(w: BitWriter, dt: Datatype, value) -> None:
    kind = dt.kind
    if kind == NBIT:
        v = _as_int(value) - dt.lower
        if v < 0 or v >= (1 << dt.bits) and dt.bits:
            raise EXIValueError(f"{value!r} outside the n-bit range")
        w.bits(v, dt.bits)
    elif kind == INTEGER:
        v = _as_int(value)
        if v < 0:
            w.bits(1, 1)
            w.uint(-v - 1)
        else:
            w.bits(0, 1)
            w.uint(v)
    elif kind == UNSIGNED:
        v = _as_int(value)
        if v < 0:
            raise EXIValueError(f"negative value {v} for an unsigned type")
        w.uint(v)
    elif kind == STRING:
        if not isinstance(value, str):
            raise EXIValueError(f"expected a string, got {value!r}")
        _write_string(w, value)
    elif kind == ENUM:
        assert dt.index is not None  # an enumeration's grammar always has its value index
        index = dt.index.get(value if isinstance(value, str) else str(value))
        if index is None:
            raise EXIValueError(f"{value!r} is not one of {dt.values}")
        w.bits(index, dt.bits)
    elif kind == BOOLEAN:
        if isinstance(value, str):
            value = {"true": True, "1": True, "false": False, "0": False}[value.strip()]
        w.bits(1 if value else 0, 1)
    elif kind == HEX:
        data = binascii.unhexlify(value)
        w.uint(len(data))
        w.raw_bytes(data)
    elif kind == BASE64:
        data = base64.b64decode(value)
        w.uint(len(data))
        w.raw_bytes(data)
    elif kind == LIST:
        items = value if isinstance(value, list) else str(value).split()
        w.uint(len(items))
        for item in items:
            write_value(w, dt.item, item)
    else:
        raise NotImplementedError(f"EXI datatype kind {kind} not supported yet")


def read_value(r: BitReader, dt: Datatype):
    """One typed value; a malformed one (out of range, longer than the stream) raises ``EXIDecodeError``."""
    kind = dt.kind
    if kind == NBIT:
        return r.bits(dt.bits) + dt.lower
    if kind == INTEGER:
        negative = r.bits(1)
        magnitude = r.uint()
        return -magnitude - 1 if negative else magnitude
    if kind == UNSIGNED:
        return r.uint()
    if kind == STRING:
        n = r.uint()
        if n < 2:
            raise EXIDecodeError("string table hit, but the Java codec never fills the string table")
        if 8 * (n - 2) > r.remaining_bits():  # each character is at least one octet
            raise EXIDecodeError(f"string of {n - 2} characters is longer than the rest of the EXI stream")
        return _text([r.uint() for _ in range(n - 2)])
    if kind == ENUM:
        index = r.bits(dt.bits)
        if index >= len(dt.values):
            raise EXIDecodeError(f"enumeration index {index} out of range ({len(dt.values)} values)")
        return dt.values[index]
    if kind == BOOLEAN:
        return bool(r.bits(1))
    if kind == HEX:
        return r.raw_bytes(r.length(8)).hex().upper()
    if kind == BASE64:
        return base64.b64encode(r.raw_bytes(r.length(8))).decode("ascii")
    if kind == LIST:
        return [read_value(r, dt.item) for _ in range(r.length(0))]
    raise EXIDecodeError(f"EXI datatype kind {kind} not supported by the native codec")
