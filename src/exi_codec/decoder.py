"""EXI body -> JSON-ready dicts in the Java codec's (MOXy) shape, driven by the grammars."""

from __future__ import annotations

from exi_codec.bits import BitReader
from exi_codec.errors import EXIDecodeError
from exi_codec.grammar import AT, CH, CH_KEY, ED, EE, SE, Grammar
from exi_codec.values import read_value

HEADER_BITS = 0b10000000


__all__ = ["EXIDecodeError", "decode_document", "decode_element"]


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


def decode_document(content_grammar: Grammar, data: bytes, fragment: bool) -> dict:
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
