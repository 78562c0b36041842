"""Bit-packed EXI channel (W3C EXI 1.0 §7.1 built-in datatype representations, alignment bit-packed)."""

from __future__ import annotations

from exi_codec.errors import EXIDecodeError

#: An Unsigned Integer (§7.1.6) longer than this many octets (7 bits each: 2**700) is refused as malformed: every
#: value of the ISO 15118 / DIN schemas fits in 64 bits, and an unbounded run of continuation octets would make
#: decoding quadratic in the input length.
MAX_UINT_OCTETS = 100


class BitWriter:
    """Accumulates bits most-significant first into one integer; `getvalue()` pads to a byte."""

    __slots__ = ("acc", "nbits")

    def __init__(self) -> None:
        self.acc = 0
        self.nbits = 0

    def bits(self, value: int, n: int) -> None:
        if n:
            self.acc = (self.acc << n) | value
            self.nbits += n

    def uint(self, value: int) -> None:
        """Unsigned Integer (§7.1.6): 7-bit groups, least significant first, high bit = more follow."""
        if value < 0x80:
            self.acc = (self.acc << 8) | value
            self.nbits += 8
            return
        while True:
            group = value & 0x7F
            value >>= 7
            if value:
                self.acc = (self.acc << 8) | 0x80 | group
                self.nbits += 8
            else:
                self.acc = (self.acc << 8) | group
                self.nbits += 8
                return

    def raw_bytes(self, data: bytes) -> None:
        if data:
            n = 8 * len(data)
            self.acc = (self.acc << n) | int.from_bytes(data, "big")
            self.nbits += n

    def getvalue(self) -> bytes:
        pad = -self.nbits % 8
        total = self.nbits + pad
        return (self.acc << pad).to_bytes(total // 8, "big")


class BitReader:
    """Reads a bit-packed stream; running past its end, or a length longer than what is left, is an
    ``EXIDecodeError`` (never ``EOFError``, ``OverflowError`` or ``MemoryError``)."""

    __slots__ = ("value", "total", "pos", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.value = int.from_bytes(data, "big")
        self.total = 8 * len(data)
        self.pos = 0

    def remaining_bits(self) -> int:
        return self.total - self.pos

    def bits(self, n: int) -> int:
        if not n:
            return 0
        end = self.pos + n
        if end > self.total:
            raise EXIDecodeError("EXI stream ended early")
        self.pos = end
        return (self.value >> (self.total - end)) & ((1 << n) - 1)

    def uint(self) -> int:
        result = 0
        shift = 0
        while True:
            octet = self.bits(8)
            result |= (octet & 0x7F) << shift
            if not octet & 0x80:
                return result
            shift += 7
            if shift >= 7 * MAX_UINT_OCTETS:
                raise EXIDecodeError(f"unsigned integer longer than {MAX_UINT_OCTETS} octets")

    def length(self, bits_per_item: int) -> int:
        """A length prefix (Unsigned Integer) for items of at least ``bits_per_item`` bits each (0: at most one
        item per bit left), refused if the stream cannot hold that many."""
        n = self.uint()
        if n * max(bits_per_item, 1) > self.remaining_bits():
            raise EXIDecodeError(f"length {n} is longer than the rest of the EXI stream")
        return n

    def raw_bytes(self, n: int) -> bytes:
        if 8 * n > self.total - self.pos:
            raise EXIDecodeError("EXI stream ended early")
        if self.pos % 8 == 0:
            start = self.pos // 8
            self.pos += 8 * n
            return self.data[start : start + n]
        return self.bits(8 * n).to_bytes(n, "big") if n else b""
