"""EXI body -> JSON-ready dicts in the Java codec's (MOXy) shape, driven by the grammars.

Two decoders of the same grammars: ``decode_document`` (fast: one loop over an explicit element stack, the bit
reader and the common datatypes inline, each state's event codes looked up in its ``Grammar.entries``), and
``decode_document_reference`` (one call per element and per event, the datatypes in ``values.read_value``). The
fast one returns only what the reference returns: on anything unusual (any malformed input, an event it does not
handle, nesting deeper than ``MAX_FAST_DEPTH``) it hands the stream to the reference, whose result or error is the
answer, so errors and their messages are the reference's. tests/exi compares the two on every recorded message
and on mutated ones.
"""

from __future__ import annotations

from exi_codec.bits import MAX_UINT_OCTETS, BitReader
from exi_codec.errors import EXIDecodeError
from exi_codec.grammar import (
    AT,
    CH,
    CH_KEY,
    ED,
    EE,
    OP_BOOLEAN,
    OP_ED,
    OP_EE,
    OP_ENUM,
    OP_INTEGER,
    OP_NBIT,
    OP_SE,
    OP_SIMPLE,
    OP_STRING,
    OP_UNSIGNED,
    OP_VALUE,
    SE,
    Grammar,
)
from exi_codec.values import read_value

HEADER_BITS = 0b10000000
#: Elements nested deeper than this are left to the reference decoder (recursive: its limit is Python's).
MAX_FAST_DEPTH = 64
_MAX_UINT_SHIFT = 7 * MAX_UINT_OCTETS


__all__ = ["EXIDecodeError", "decode_document", "decode_document_reference", "decode_element"]


class _Unusual(Exception):
    """The fast decoder met something it leaves to the reference decoder (malformed or unusual input)."""


def _production(r: BitReader, state: Grammar):
    code = r.bits(state.width)
    if code >= len(state.prods):
        raise EXIDecodeError(
            f"second-level (undeclared) event in {state.name}: not produced by the Java codec"
        )
    return state.prods[code]


def decode_element(r: BitReader, grammar: Grammar):
    """Decode one element's content up to its EE; returns a dict, or a scalar for simple content."""
    out: dict = {}
    repeated = grammar.repeated
    state = grammar
    while True:
        p = _production(r, state)
        kind = p.kind
        if kind == EE:
            break
        if kind == SE:
            value = decode_element(r, p.element)
            if p.local in repeated:
                out.setdefault(p.local, []).append(value)
            else:
                out[p.local] = value
        elif kind == AT:
            out[p.local] = read_value(r, p.datatype)
        elif kind == CH:
            out[CH_KEY] = read_value(r, p.datatype)
        else:
            raise EXIDecodeError(f"unsupported event kind {kind} in {state.name}")
        state = p.next
    for key, default in grammar.decode_defaults.items():
        out.setdefault(key, default)
    if len(out) == 1 and CH_KEY in out and not grammar.has_attributes:
        return out[CH_KEY]
    return out


def decode_document_reference(content_grammar: Grammar, data: bytes, fragment: bool) -> dict:
    r = BitReader(data)
    if r.bits(8) != HEADER_BITS:
        raise EXIDecodeError("unsupported EXI header (expected 0x80: no cookie, no options)")
    result: dict = {}
    state = content_grammar
    while True:
        p = _production(r, state)
        if p.kind == ED:
            break
        if p.kind != SE:
            raise EXIDecodeError("wildcard root elements are not supported")
        result[p.local] = decode_element(r, p.element)
        state = p.next
        if not fragment:
            p = _production(r, state)  # DocEnd: ED
            break
    return result


def decode_document(content_grammar: Grammar, data: bytes, fragment: bool) -> dict:
    """The document in ``data``, as ``decode_document_reference`` gives it (its error for a malformed stream)."""
    try:
        return _decode_fast(content_grammar, data, fragment)
    except Exception:  # noqa: BLE001 - anything unusual: the reference decides (its result or its error)
        return decode_document_reference(content_grammar, data, fragment)


def _decode_fast(content_grammar: Grammar, data: bytes, fragment: bool) -> dict:
    reader = BitReader(data)
    total = reader.total
    if total < 8 or data[0] != HEADER_BITS:
        raise _Unusual
    value = reader.value
    pos = 8
    result: dict = {}
    state = content_grammar
    while True:
        # A document / fragment content production: SE(root) or ED (no second level in these grammars).
        end = pos + state.width
        if end > total:
            raise _Unusual
        code = (value >> (total - end)) & state.mask
        pos = end
        op, key, element, nxt = state.entries[code]
        if op == OP_ED:
            break
        if op != OP_SE:
            raise _Unusual
        result[key], pos = _element_fast(reader, pos, element)
        state = nxt
        if not fragment:  # DocEnd: ED
            end = pos + state.width
            if end > total:
                raise _Unusual
            if state.entries[(value >> (total - end)) & state.mask][0] != OP_ED:
                raise _Unusual
            break
    return result


def _element_fast(reader: BitReader, pos: int, grammar: Grammar):
    """(content, position after its EE) of the element whose start tag grammar is ``grammar``, from bit ``pos``."""
    value = reader.value
    total = reader.total
    stack: list = []
    out: dict = {}
    g = grammar
    state = grammar
    depth = 0
    while True:
        width = state.width
        if width:
            end = pos + width
            if end > total:
                raise _Unusual
            op, key, target, nxt = state.entries[(value >> (total - end)) & state.mask]  # padded: OP_OTHER
            pos = end
        else:
            op, key, target, nxt = state.entries[0]
        if op == OP_SE:
            depth += 1
            if depth > MAX_FAST_DEPTH:
                raise _Unusual
            stack.append((out, g, key, nxt))
            out = {}
            g = state = target
            continue
        if op == OP_EE:
            if g.decode_defaults:
                for default_key, default in g.decode_defaults.items():
                    out.setdefault(default_key, default)
            content = out[CH_KEY] if len(out) == 1 and CH_KEY in out and not g.has_attributes else out
            if not stack:
                return content, pos
            out, g, key, state = stack.pop()
            depth -= 1
            if key in g.repeated:
                out.setdefault(key, []).append(content)
            else:
                out[key] = content
            continue
        simple = op >= OP_SIMPLE
        if simple:  # SE(key) of an element that is one value: its CH code (0) here, its EE code after the value
            target, start_width, end_width = target
            if start_width:
                end = pos + start_width
                if end > total or (value >> (total - end)) & ((1 << start_width) - 1):
                    raise _Unusual
                pos = end
            op -= OP_SIMPLE
        if op == OP_NBIT:
            bits = target.bits
            if bits:
                end = pos + bits
                if end > total:
                    raise _Unusual
                v = ((value >> (total - end)) & ((1 << bits) - 1)) + target.lower
                pos = end
            else:
                v = target.lower
        elif op == OP_ENUM:
            bits = target.bits
            if bits:
                end = pos + bits
                if end > total:
                    raise _Unusual
                index = (value >> (total - end)) & ((1 << bits) - 1)
                pos = end
            else:
                index = 0
            if index >= len(target.values):
                raise _Unusual
            v = target.values[index]
        elif op == OP_BOOLEAN:
            if pos >= total:
                raise _Unusual
            pos += 1
            v = bool((value >> (total - pos)) & 1)
        elif op == OP_UNSIGNED or op == OP_INTEGER:
            negative = 0
            if op == OP_INTEGER:
                if pos >= total:
                    raise _Unusual
                pos += 1
                negative = (value >> (total - pos)) & 1
            number = 0
            shift = 0
            while True:
                end = pos + 8
                if end > total:
                    raise _Unusual
                octet = (value >> (total - end)) & 0xFF
                pos = end
                number |= (octet & 0x7F) << shift
                if octet < 0x80:
                    break
                shift += 7
                if shift >= _MAX_UINT_SHIFT:
                    raise _Unusual
            v = -number - 1 if negative else number
        elif op == OP_STRING:
            # Length n + 2 (n >= 0: no string table), then n code points; an all-ASCII string is its bytes.
            number = 0
            shift = 0
            while True:
                end = pos + 8
                if end > total:
                    raise _Unusual
                octet = (value >> (total - end)) & 0xFF
                pos = end
                number |= (octet & 0x7F) << shift
                if octet < 0x80:
                    break
                shift += 7
                if shift >= _MAX_UINT_SHIFT:
                    raise _Unusual
            length = number - 2
            if length < 0 or pos + 8 * length > total:
                raise _Unusual
            end = pos + 8 * length
            text = ((value >> (total - end)) & ((1 << (8 * length)) - 1)).to_bytes(length, "big")
            if not text.isascii():
                raise _Unusual  # a multi-octet code point: the reference reads it
            v = text.decode("ascii")
            pos = end
        elif op == OP_VALUE:  # binary, lists, ...: the reference's value decoder, at this position
            reader.pos = pos
            v = read_value(reader, target)
            pos = reader.pos
        else:
            raise _Unusual
        if simple:
            if end_width:
                end = pos + end_width
                if end > total or (value >> (total - end)) & ((1 << end_width) - 1):
                    raise _Unusual  # not EE (code 0): a second-level event
                pos = end
            if key in g.repeated:
                out.setdefault(key, []).append(v)
            else:
                out[key] = v
        else:
            out[key] = v
        state = nxt
