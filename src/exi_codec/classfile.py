"""Minimal reader for JVM class files: constant pool and method bytecode.

Just enough of the JVM specification (Java SE 17, chapter 4 "The class File Format") to read the
straight-line constructors of EXIficient's generated grammar classes; see `jar_grammars`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Constant pool tags (JVMS §4.4, table 4.4-B).
_UTF8, _INTEGER, _FLOAT, _LONG, _DOUBLE = 1, 3, 4, 5, 6
_CLASS, _STRING, _FIELDREF, _METHODREF, _IMETHODREF, _NAME_AND_TYPE = 7, 8, 9, 10, 11, 12
_METHOD_HANDLE, _METHOD_TYPE, _DYNAMIC, _INVOKE_DYNAMIC, _MODULE, _PACKAGE = 15, 16, 17, 18, 19, 20


@dataclass(frozen=True)
class MemberRef:
    """A field or method reference: owning class (internal name), member name, descriptor."""

    owner: str
    name: str
    descriptor: str


@dataclass(frozen=True)
class ClassRef:
    name: str


class ClassFile:
    """Parsed class file: `constant(i)` resolves pool entries, `methods` maps name to bytecode."""

    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\xca\xfe\xba\xbe":
            raise ValueError("not a JVM class file")
        self._data = data
        self._pos = 8
        count = self._u2()
        self._pool: list[tuple] = [()] * count
        i = 1
        while i < count:
            tag = self._u1()
            if tag == _UTF8:
                n = self._u2()
                raw = data[self._pos : self._pos + n]
                self._pos += n
                self._pool[i] = (tag, raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", "surrogatepass"))
            elif tag in (_INTEGER, _FLOAT):
                self._pool[i] = (tag, data[self._pos : self._pos + 4])
                self._pos += 4
            elif tag in (_LONG, _DOUBLE):
                self._pool[i] = (tag, data[self._pos : self._pos + 8])
                self._pos += 8
                i += 1
            elif tag in (_CLASS, _STRING, _METHOD_TYPE, _MODULE, _PACKAGE):
                self._pool[i] = (tag, self._u2())
            elif tag in (_FIELDREF, _METHODREF, _IMETHODREF, _NAME_AND_TYPE, _DYNAMIC, _INVOKE_DYNAMIC):
                self._pool[i] = (tag, self._u2(), self._u2())
            elif tag == _METHOD_HANDLE:
                self._pool[i] = (tag, self._u1(), self._u2())
            else:
                raise ValueError(f"unknown constant pool tag {tag}")
            i += 1
        self._pos += 6  # access flags, this_class, super_class
        n_interfaces = self._u2()
        self._pos += 2 * n_interfaces
        self._skip_members()  # fields
        self.methods: dict[str, bytes] = {}
        for _ in range(self._u2()):
            self._pos += 2
            name = self._utf8(self._u2())
            self._pos += 2
            for _ in range(self._u2()):
                attr_name = self._utf8(self._u2())
                length = struct.unpack_from(">I", data, self._pos)[0]
                self._pos += 4
                if attr_name == "Code":
                    code_len = struct.unpack_from(">I", data, self._pos + 4)[0]
                    self.methods[name] = data[self._pos + 8 : self._pos + 8 + code_len]
                self._pos += length

    def _u1(self) -> int:
        v = self._data[self._pos]
        self._pos += 1
        return v

    def _u2(self) -> int:
        v = struct.unpack_from(">H", self._data, self._pos)[0]
        self._pos += 2
        return v

    def _skip_members(self) -> None:
        for _ in range(self._u2()):
            self._pos += 6
            for _ in range(self._u2()):
                self._pos += 2
                self._pos += 4 + struct.unpack_from(">I", self._data, self._pos)[0]

    def _utf8(self, index: int) -> str:
        return self._pool[index][1]

    def constant(self, index: int):
        """Resolve a pool entry to str / int / float / ClassRef / MemberRef."""
        entry = self._pool[index]
        tag = entry[0]
        if tag == _UTF8:
            return entry[1]
        if tag == _INTEGER:
            return struct.unpack(">i", entry[1])[0]
        if tag == _FLOAT:
            return struct.unpack(">f", entry[1])[0]
        if tag == _LONG:
            return struct.unpack(">q", entry[1])[0]
        if tag == _DOUBLE:
            return struct.unpack(">d", entry[1])[0]
        if tag == _CLASS:
            return ClassRef(self._utf8(entry[1]))
        if tag == _STRING:
            return self._utf8(entry[1])
        if tag in (_FIELDREF, _METHODREF, _IMETHODREF):
            owner = self._utf8(self._pool[entry[1]][1])
            nat = self._pool[entry[2]]
            return MemberRef(owner, self._utf8(nat[1]), self._utf8(nat[2]))
        raise ValueError(f"unsupported constant tag {tag} at {index}")
