"""JSON (the Java codec's MOXy shape) -> EXI body, driven by the schema-informed grammars."""

from __future__ import annotations

from exi_codec.bits import BitWriter
from exi_codec.grammar import AT, CH, CH_KEY, ED, EE, SE, Grammar, Production
from exi_codec.values import EXIValueError, write_value

# EXI header (§5): distinguishing bits "10", no options ("0"), final version 1 ("0 0000").
HEADER_BITS = 0b10000000


class EXIEncodeError(ValueError):
    pass


def _choose(state: Grammar, remaining: dict) -> Production:
    """Pick the production for the next event given the keys still to be written.

    A production fits when it writes a remaining key (EE: when none remain) and every other
    remaining key stays reachable from its successor state; the first fitting one wins.
    """
    cache_key = tuple([(k, c > 1) for k, c in remaining.items()])
    hit = state.choice_cache.get(cache_key)
    if hit is not None:
        return hit
    choice = None
    if not remaining:
        ee = state.by_key.get(EE)
        if ee:
            choice = ee[0]
    else:
        for p in state.prods:
            kind = p.kind
            if kind == SE or kind == AT:
                key = p.local
            elif kind == CH:
                key = CH_KEY
            else:
                continue
            if key not in remaining:
                continue
            reach = p.next.reach
            if all(k in reach for k in remaining if k != key or remaining[k] > 1):
                choice = p
                break
    if choice is None:
        raise EXIEncodeError(
            f"no production in {state.name} for remaining {sorted(remaining)}; expected one of "
            f"{[p.local or p.kind for p in state.prods]}"
        )
    state.choice_cache[cache_key] = choice
    return choice


def encode_element(w: BitWriter, grammar: Grammar, value) -> None:
    """Encode the content of an element whose start tag grammar is `grammar`, then its EE."""
    if isinstance(value, dict):
        content = value
    else:
        content = {CH_KEY: value}
    if grammar.encode_defaults:
        content = {**grammar.encode_defaults, **{k: v for k, v in content.items() if v is not None}}
    # remaining: key -> how many values of that key are still to be written (insertion order kept)
    remaining = {}
    known = grammar.reach
    for k, v in content.items():
        if v is None or k not in known:
            continue  # MOXy ignores JSON keys that map to no property of the element's type
        remaining[k] = len(v) if isinstance(v, list) else 1
    cursor: dict = {}
    state = grammar
    while True:
        p = _choose(state, remaining)
        w.bits(p.code, state.width)
        kind = p.kind
        if kind == EE:
            return
        key = p.local if kind != CH else CH_KEY
        item = content[key]
        if isinstance(item, list):
            i = cursor.get(key, 0)
            cursor[key] = i + 1
            item = item[i]
        left = remaining[key] - 1
        if left:
            remaining[key] = left
        else:
            del remaining[key]
        try:
            if kind == SE:
                encode_element(w, p.element, item)
            else:
                write_value(w, p.datatype, item)
        except EXIValueError as exc:
            raise EXIEncodeError(f"{key}: {exc}") from exc
        state = p.next


def encode_document(
    content_grammar: Grammar, message: dict, fragment: bool, root_uri: str | None = None
) -> bytes:
    """Header, SD (0 bits), SE(root) in the (fragment) content grammar, the element, ED."""
    if len(message) != 1:
        raise EXIEncodeError("the JSON message must have exactly one root key")
    (root, value), = message.items()
    candidates = content_grammar.by_key.get(root)
    if not candidates:
        raise EXIEncodeError(f"unknown root element {root!r}")
    p = candidates[0]
    if root_uri is not None:
        p = next((q for q in candidates if q.uri == root_uri), p)
    w = BitWriter()
    w.bits(HEADER_BITS, 8)
    w.bits(p.code, content_grammar.width)
    encode_element(w, p.element, value)
    # after the root: DocEnd (ED only, 0 bits) or FragmentContent (ED beside the SEs)
    after = p.next
    end = next(q for q in after.prods if q.kind == ED)
    w.bits(end.code, after.width)
    return w.getvalue()
