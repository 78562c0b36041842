"""Bit-packed EXI channel (W3C EXI 1.0 §7.1 built-in datatype representations, alignment bit-packed)."""

from __future__ import annotations


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
    __slots__ = ("value", "total", "pos", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.value = int.from_bytes(data, "big")
        self.total = 8 * len(data)
        self.pos = 0

    def bits(self, n: int) -> int:
        if not n:
            return 0
        end = self.pos + n
        if end > self.total:
            raise EOFError("EXI stream ended early")
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

    def raw_bytes(self, n: int) -> bytes:
        if self.pos % 8 == 0:
            start = self.pos // 8
            if start + n > len(self.data):
                raise EOFError("EXI stream ended early")
            self.pos += 8 * n
            return self.data[start : start + n]
        return self.bits(8 * n).to_bytes(n, "big") if n else b""
