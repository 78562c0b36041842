"""JSON (the Java codec's MOXy shape) -> EXI body, driven by the schema-informed grammars.

Two encoders of the same grammars. ``encode_document_reference`` walks the message and, per element, picks each
event's production from the keys still to be written (``_choose``). ``encode_document`` gets the same bytes from a
*plan*: which productions are chosen depends only on the message's shape (its keys, which values are objects,
lists and how long, which are null), not on the values, so per shape the reference's walk is done once, on a copy
of the message whose values are placeholders (``_Planner``), and gives the event codes (and constant values: the
Java defaults) as constant bit runs between the values, each value with its datatype. Encoding is then: read the
shape and the values off the message in one pass (``_flatten``), look the plan up, write runs and values. Whatever
the plan cannot do (a value the fast writers do not take, a shape the reference refuses) goes to the reference,
whose bytes or error are the answer; tests/exi compares the two.
"""

from __future__ import annotations

from exi_codec.bits import BitWriter
from exi_codec.grammar import (
    AT,
    BOOLEAN,
    CH,
    CH_KEY,
    ED,
    EE,
    ENUM,
    INTEGER,
    NBIT,
    SE,
    STRING,
    UNSIGNED,
    Grammar,
    GrammarSet,
    Production,
)
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


def walk_content(grammar: Grammar, value):
    """The productions that encode the content of an element whose start tag grammar is ``grammar``, in order:
    ``(production, its code's width in bits, the JSON key, the item it carries)``, ending with its EE (item None).
    The one walk of the grammar both the reference encoder (``encode_element``) and the fast path's planner
    (``_Planner``) follow; the consumer encodes each item before asking for the next production."""
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
        kind = p.kind
        if kind == EE:
            yield p, state.width, None, None
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
        yield p, state.width, key, item
        state = p.next


def encode_element(w: BitWriter, grammar: Grammar, value) -> None:
    """Encode the content of an element whose start tag grammar is `grammar`, then its EE."""
    for p, width, key, item in walk_content(grammar, value):
        w.bits(p.code, width)
        kind = p.kind
        if kind == EE:
            return
        try:
            if kind == SE:
                encode_element(w, p.element, item)
            else:
                write_value(w, p.datatype, item)
        except EXIValueError as exc:
            raise EXIEncodeError(f"{key}: {exc}") from exc


def encode_document_reference(
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


# --- plans -------------------------------------------------------------------------------------------------------

#: Shape tokens (``_flatten``): after a key, what its value is; a list's length is an int token.
_OPEN, _CLOSE, _NONE, _LEAF = object(), object(), object(), object()
#: Plans kept per grammar set (shapes seen); past this the cache starts afresh (a peer cannot grow it: the SECC
#: encodes only its own messages, and their shapes are few).
MAX_PLANS = 4096

# Plan ops: how a value is written.
_W_NBIT, _W_UINT, _W_INT, _W_BOOLEAN, _W_ENUM, _W_STRING, _W_OTHER = range(7)
_WRITE_OPS = {NBIT: _W_NBIT, UNSIGNED: _W_UINT, INTEGER: _W_INT, BOOLEAN: _W_BOOLEAN, ENUM: _W_ENUM,
              STRING: _W_STRING}


class _NoPlan(Exception):
    """The shape is one the plan does not cover: encode generically."""


class _Leaf:
    """A placeholder for the ``index``-th value of the message (in ``_flatten`` order) while planning."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


def _flatten(value, tokens: list, leaves: list) -> None:
    """Append ``value``'s shape to ``tokens`` and its scalar values (in order) to ``leaves``."""
    if isinstance(value, dict):
        tokens.append(_OPEN)
        for key, item in value.items():
            tokens.append(key)
            if isinstance(item, (dict, list)):
                _flatten(item, tokens, leaves)
            elif item is None:
                tokens.append(_NONE)
            else:
                tokens.append(_LEAF)
                leaves.append(item)
        tokens.append(_CLOSE)
    elif isinstance(value, list):
        tokens.append(len(value))
        for item in value:
            if isinstance(item, (dict, list)):
                _flatten(item, tokens, leaves)
            elif item is None:
                tokens.append(_NONE)
            else:
                tokens.append(_LEAF)
                leaves.append(item)
    elif value is None:
        tokens.append(_NONE)
    else:
        tokens.append(_LEAF)
        leaves.append(value)


def _placeholders(value, counter: list[int]):
    """``value`` with each scalar replaced by its ``_Leaf`` (numbered as ``_flatten`` numbers them)."""
    if isinstance(value, dict):
        return {key: _placeholders(item, counter) for key, item in value.items()}
    if isinstance(value, list):
        return [_placeholders(item, counter) for item in value]
    if value is None:
        return None
    leaf = _Leaf(counter[0])
    counter[0] += 1
    return leaf


class _Planner:
    """The reference encoder's walk over a placeholder message, recorded as constant bit runs and value ops."""

    def __init__(self) -> None:
        self.ops: list[tuple] = []
        self.acc = 0
        self.nbits = 0

    def const(self, bits: int, n: int) -> None:
        if n:
            self.acc = (self.acc << n) | bits
            self.nbits += n

    def element(self, grammar: Grammar, value) -> None:
        """``encode_element`` on placeholders: the same walk, each value recorded instead of written."""
        for p, width, _key, item in walk_content(grammar, value):
            self.const(p.code, width)
            kind = p.kind
            if kind == EE:
                return
            if kind == SE:
                self.element(p.element, item)
            else:
                self.value(p.datatype, item)

    def value(self, dt, item) -> None:
        if isinstance(item, _Leaf):
            self.ops.append((self.acc, self.nbits, item.index, _WRITE_OPS.get(dt.kind, _W_OTHER), dt))
            self.acc = self.nbits = 0
        elif isinstance(item, (dict, list)) or item is None:
            raise _NoPlan  # an object or a list where a value goes: the reference's business
        else:  # a constant (a Java default): its bits are part of the run
            w = BitWriter()
            write_value(w, dt, item)
            self.const(w.acc, w.nbits)


def _plan(content_grammar: Grammar, root: str, value, root_uri: str | None) -> tuple | None:
    """(ops, tail bits, tail length) for messages of this one's shape, or None to encode them generically."""
    candidates = content_grammar.by_key.get(root)
    if not candidates:
        return None
    p = candidates[0]
    if root_uri is not None:
        p = next((q for q in candidates if q.uri == root_uri), p)
    planner = _Planner()
    planner.const(HEADER_BITS, 8)
    planner.const(p.code, content_grammar.width)
    try:
        planner.element(p.element, _placeholders(value, [0]))
        after = p.next
        end = next(q for q in after.prods if q.kind == ED)
    except Exception:  # noqa: BLE001 - _NoPlan, or the reference's own refusal (it raises it again, generically)
        return None
    planner.const(end.code, after.width)
    return tuple(planner.ops), planner.acc, planner.nbits


def encode_document(
    content_grammar: Grammar, message: dict, fragment: bool, root_uri: str | None = None,
    grammar_set: GrammarSet | None = None,
) -> bytes:
    """``encode_document_reference``'s bytes (or its error), from the plan for the message's shape when the
    grammar set (which holds the plans) is given."""
    if grammar_set is None or len(message) != 1:
        return encode_document_reference(content_grammar, message, fragment, root_uri)
    (root, value), = message.items()
    tokens: list = [id(content_grammar), root_uri, root]
    leaves: list = []
    _flatten(value, tokens, leaves)
    shape = tuple(tokens)
    plans = grammar_set.plans
    plan = plans.get(shape, _NONE)
    if plan is _NONE:
        if len(plans) >= MAX_PLANS:
            plans.clear()
        plan = plans[shape] = _plan(content_grammar, root, value, root_uri)
    if plan is None:
        return encode_document_reference(content_grammar, message, fragment, root_uri)
    try:
        return _run_plan(plan, leaves)
    except Exception:  # noqa: BLE001 - a value the fast writers do not take: the reference's bytes or error
        return encode_document_reference(content_grammar, message, fragment, root_uri)


def _run_plan(plan: tuple, leaves: list) -> bytes:
    ops, tail, tail_bits = plan
    acc = 0
    nbits = 0
    for run, run_bits, index, op, dt in ops:
        acc = (acc << run_bits) | run
        nbits += run_bits
        v = leaves[index]
        if op == _W_NBIT and type(v) is int:
            v -= dt.lower
            bits = dt.bits
            if v < 0 or v >> bits and bits:
                raise _NoPlan
            acc = (acc << bits) | v if bits else acc
            nbits += bits
        elif (op == _W_UINT or op == _W_INT) and type(v) is int:
            if op == _W_INT:
                acc <<= 1
                nbits += 1
                if v < 0:
                    acc |= 1
                    v = -v - 1
            elif v < 0:
                raise _NoPlan
            while v >= 0x80:
                acc = (acc << 8) | 0x80 | (v & 0x7F)
                nbits += 8
                v >>= 7
            acc = (acc << 8) | v
            nbits += 8
        elif op == _W_BOOLEAN and type(v) is bool:
            acc = (acc << 1) | v
            nbits += 1
        elif op == _W_ENUM and type(v) is str:
            acc = (acc << dt.bits) | dt.index[v]
            nbits += dt.bits
        else:  # strings, binary, lists, and values of another type than the usual: the reference's writer
            w = BitWriter()
            w.acc, w.nbits = acc, nbits
            write_value(w, dt, v)
            acc, nbits = w.acc, w.nbits
    acc = (acc << tail_bits) | tail
    nbits += tail_bits
    pad = -nbits % 8
    return (acc << pad).to_bytes((nbits + pad) // 8, "big")
