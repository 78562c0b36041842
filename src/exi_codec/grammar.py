"""Schema-informed EXI grammars as plain Python objects, built from the jar's generated grammars.

Event codes follow W3C EXI 1.0 §8.5.4 as EXIficient implements them with its default options
(non-strict, no fidelity options preserved): the productions of a grammar keep the order in which
the generated code adds them, and element grammars (start tag and content) carry a second level of
undeclared productions, so their first-level code has width ceil(log2(n + 1)); document, fragment
and document-end grammars have no second level (no comments, PIs or DTD preserved).
"""

from __future__ import annotations

from exi_codec.jar_grammars import JObj

# Event kinds
SD, ED, SE, SE_ANY, AT, AT_ANY, CH, CH_ANY, EE = range(9)
_EVENT_KINDS = {
    "StartDocument": SD,
    "EndDocument": ED,
    "StartElement": SE,
    "StartElementGeneric": SE_ANY,
    "StartElementNS": SE_ANY,
    "Attribute": AT,
    "AttributeGeneric": AT_ANY,
    "AttributeNS": AT_ANY,
    "Characters": CH,
    "CharactersGeneric": CH_ANY,
    "EndElement": EE,
}
_ELEMENT_GRAMMARS = {"SchemaInformedFirstStartTag", "SchemaInformedStartTag", "SchemaInformedElement"}

# Datatype kinds
STRING, INTEGER, UNSIGNED, NBIT, BOOLEAN, DECIMAL, FLOAT, HEX, BASE64, ENUM, DATETIME, LIST = range(12)

CH_KEY = "value"  # JSON key MOXy uses for the simple content of an element that has attributes


def code_width(n: int) -> int:
    """Bits needed to encode n distinct codes: ceil(log2(n)); 0 for n <= 1."""
    return (n - 1).bit_length() if n > 1 else 0


class Datatype:
    __slots__ = ("kind", "lower", "bits", "values", "index", "item")

    def __init__(self, kind: int, lower: int = 0, bits: int = 0, values=None, item=None) -> None:
        self.kind = kind
        self.lower = lower
        self.bits = bits
        self.values = values
        self.index = {v: i for i, v in enumerate(values)} if values else None
        self.item = item


class Production:
    __slots__ = ("code", "kind", "local", "uri", "element", "datatype", "next")

    def __init__(self, code, kind, local=None, uri=None, element=None, datatype=None, next_=None):
        self.code = code
        self.kind = kind
        self.local = local
        self.uri = uri
        self.element = element  # SE: grammar of the started element
        self.datatype = datatype  # AT / CH
        self.next = next_


class Grammar:
    __slots__ = ("name", "prods", "width", "by_key", "reach", "repeated", "has_attributes", "choice_cache",
                 "decode_defaults", "encode_defaults", "mask", "entries")

    def __init__(self, name: str) -> None:
        self.name = name
        self.prods: list[Production] = []
        self.width = 0
        self.by_key: dict = {}  # JSON key (or EE / CH) -> productions having it
        self.reach: frozenset = frozenset()  # keys reachable from here within this element
        self.repeated: frozenset = frozenset()  # (first start tag only) child names that repeat
        self.has_attributes = False
        self.choice_cache: dict = {}
        # (first start tag only) child -> the value Java's JSON has / Java writes when the stream / JSON has none
        self.decode_defaults: dict = {}
        self.encode_defaults: dict = {}
        # The decoder's dispatch table (``decode_tables``): the event code's mask and, per code, (op, JSON key,
        # element grammar or datatype, next state).
        self.mask = 0
        self.entries: tuple = ()


class GrammarSet:
    """The document and fragment grammars of one schema, and the encoder's plans for it (see ``encoder``)."""

    def __init__(self, document: Grammar, fragment: Grammar) -> None:
        self.document = document
        self.fragment = fragment
        self.doc_content = document.prods[0].next
        self.fragment_content = fragment.prods[0].next
        #: (content grammar id, root uri, message shape) -> the encoder's plan, or None (encode generically)
        self.plans: dict = {}
        self.grammars: list[Grammar] = []  # every state (for ``decode_tables``)


def _qname(qnc: JObj) -> tuple[str, str]:
    qname = qnc.args[2]
    return qname.args[0], qname.args[1]


class _Builder:
    def __init__(self) -> None:
        self.grammars: dict[int, Grammar] = {}
        self.datatypes: dict[int, Datatype] = {}
        self.pending: list[tuple[JObj, Grammar]] = []

    def grammar(self, obj: JObj) -> Grammar:
        """The Grammar for a symbolic grammar object; productions are filled in by `fill()`."""
        g = self.grammars.get(id(obj))
        if g is None:
            g = self.grammars[id(obj)] = Grammar(obj.cls)
            self.pending.append((obj, g))
        return g

    def fill(self) -> None:
        """Fill productions iteratively (grammar chains are too long for recursion)."""
        while self.pending:
            obj, g = self.pending.pop()
            adds = [args for name, args in obj.calls if name == "addProduction"]
            for code, (event, target) in enumerate(adds):
                g.prods.append(self.production(code, event, target))
            second_level = 1 if obj.cls in _ELEMENT_GRAMMARS else 0
            g.width = code_width(len(g.prods) + second_level)
            for p in g.prods:
                g.by_key.setdefault(_key(p), []).append(p)
                if p.kind == AT:
                    g.has_attributes = True

    def production(self, code: int, event: JObj, target: JObj) -> Production:
        kind = _EVENT_KINDS[event.cls]
        nxt = self.grammar(target) if target is not None else None
        if kind == SE:
            uri, local = _qname(event.args[0])
            return Production(code, kind, local, uri, element=self.grammar(event.args[1]), next_=nxt)
        if kind == AT:
            uri, local = _qname(event.args[0])
            return Production(code, kind, local, uri, datatype=self.datatype(event.args[1]), next_=nxt)
        if kind == CH:
            return Production(code, kind, datatype=self.datatype(event.args[0]), next_=nxt)
        return Production(code, kind, next_=nxt)

    def datatype(self, obj: JObj) -> Datatype:
        dt = self.datatypes.get(id(obj))
        if dt is None:
            dt = self.datatypes[id(obj)] = _datatype(self, obj)
        return dt


def _int_value(obj) -> int:
    return obj.args[0] if isinstance(obj, JObj) else obj


def _datatype(builder: _Builder, obj: JObj) -> Datatype:
    cls = obj.cls
    if cls == "StringDatatype":
        return Datatype(STRING)
    if cls == "IntegerDatatype":
        return Datatype(INTEGER)
    if cls == "UnsignedIntegerDatatype":
        return Datatype(UNSIGNED)
    if cls == "NBitUnsignedIntegerDatatype":
        lower, upper = _int_value(obj.args[0]), _int_value(obj.args[1])
        return Datatype(NBIT, lower=lower, bits=code_width(upper - lower + 1))
    if cls == "BooleanDatatype":
        return Datatype(BOOLEAN)
    if cls == "DecimalDatatype":
        return Datatype(DECIMAL)
    if cls == "FloatDatatype":
        return Datatype(FLOAT)
    if cls == "BinaryHexDatatype":
        return Datatype(HEX)
    if cls == "BinaryBase64Datatype":
        return Datatype(BASE64)
    if cls == "DatetimeDatatype":
        return Datatype(DATETIME)
    if cls == "ListDatatype":
        return Datatype(LIST, item=builder.datatype(obj.args[0]))
    if cls == "EnumerationDatatype":
        values = [v.args[0] if isinstance(v, JObj) else v for v in obj.args[0]]
        values = [_int_value(v) if isinstance(v, JObj) else v for v in values]
        return Datatype(ENUM, bits=code_width(len(values)), values=[str(v) for v in values])
    raise NotImplementedError(f"EXI datatype {cls}")


def _key(p: Production):
    if p.kind in (SE, AT):
        return p.local
    if p.kind == CH:
        return CH_KEY
    return p.kind  # EE, ED, SD, wildcards: keyed by kind


def _analyse(grammars: list[Grammar]) -> None:
    """Per state: keys reachable within the element; per first start tag: repeated child names."""
    reach = {id(g): {k for k in g.by_key if isinstance(k, str)} for g in grammars}
    changed = True
    while changed:
        changed = False
        for g in grammars:
            mine = reach[id(g)]
            before = len(mine)
            for p in g.prods:
                if p.next is not None and p.kind not in (SD, ED):
                    mine |= reach[id(p.next)]
            if len(mine) != before:
                changed = True
    for g in grammars:
        g.reach = frozenset(reach[id(g)])
    for g in grammars:
        if g.name != "SchemaInformedFirstStartTag":
            continue
        repeated = set()
        seen, todo = set(), [g]
        while todo:
            s = todo.pop()
            if id(s) in seen:
                continue
            seen.add(id(s))
            for p in s.prods:
                if p.next is None:
                    continue
                if p.kind == SE and p.local in p.next.reach:
                    repeated.add(p.local)
                todo.append(p.next)
        g.repeated = frozenset(repeated)


# Decoder ops (``Grammar.entries``): what an event code means, with the value's datatype folded in.
OP_SE, OP_EE, OP_ED, OP_NBIT, OP_BOOLEAN, OP_ENUM, OP_UNSIGNED, OP_INTEGER, OP_VALUE, OP_OTHER, OP_STRING = range(11)
#: OP_SIMPLE + a value op: SE of an element whose content is that one value (start tag: CH only, then EE only).
OP_SIMPLE = 16
_VALUE_OPS = {NBIT: OP_NBIT, BOOLEAN: OP_BOOLEAN, ENUM: OP_ENUM, UNSIGNED: OP_UNSIGNED, INTEGER: OP_INTEGER,
              STRING: OP_STRING}


def decode_tables(grammars: list[Grammar]) -> None:
    """Per state: the mask of its event code and one ``(op, key, element grammar or datatype, next)`` per code.

    Run again when a grammar's ``decode_defaults`` change (an element with defaults is never a simple one)."""
    for g in grammars:
        g.mask = (1 << g.width) - 1
        entries: list[tuple] = []
        for p in g.prods:
            if p.kind == SE:
                simple = _simple_content(p.element)
                if simple is not None:
                    ch, end = simple
                    op = OP_SIMPLE + _VALUE_OPS.get(ch.datatype.kind, OP_VALUE)
                    entries.append((op, p.local, (ch.datatype, p.element.width, end.width), p.next))
                else:
                    entries.append((OP_SE, p.local, p.element, p.next))
            elif p.kind == EE:
                entries.append((OP_EE, None, None, p.next))
            elif p.kind == ED:
                entries.append((OP_ED, None, None, p.next))
            elif p.kind in (AT, CH):
                op = _VALUE_OPS.get(p.datatype.kind, OP_VALUE)
                entries.append((op, p.local if p.kind == AT else CH_KEY, p.datatype, p.next))
            else:
                entries.append((OP_OTHER, None, None, p.next))
        # Every code the width can carry has an entry (the second level's and unused ones: OP_OTHER), so the
        # decoder indexes without a bounds check.
        entries += [(OP_OTHER, None, None, None)] * (g.mask + 1 - len(entries))
        g.entries = tuple(entries)


def _simple_content(element: Grammar) -> tuple[Production, Grammar] | None:
    """(CH production, end state) when ``element``'s start tag is CH (code 0) and the state after it EE (code 0)
    only, without attributes or defaults: the element is one typed value."""
    if len(element.prods) != 1 or element.decode_defaults or element.has_attributes:
        return None
    ch = element.prods[0]
    if ch.kind != CH or ch.code != 0 or ch.next is None:
        return None
    end = ch.next
    if len(end.prods) != 1 or end.prods[0].kind != EE or end.prods[0].code != 0:
        return None
    return ch, end


def build_grammar_set(document: JObj, fragment: JObj) -> GrammarSet:
    builder = _Builder()
    doc = builder.grammar(document)
    frag = builder.grammar(fragment)
    builder.fill()
    grammars = list(builder.grammars.values())
    _analyse(grammars)
    decode_tables(grammars)
    gs = GrammarSet(doc, frag)
    gs.grammars = grammars
    return gs


def element_grammars(gs: GrammarSet, local: str) -> list[Grammar]:
    """The start-tag grammars of every element named ``local`` reachable from the document or fragment."""
    found: dict[int, Grammar] = {}
    seen: set[int] = set()
    todo = [gs.doc_content, gs.fragment_content]
    while todo:
        g = todo.pop()
        if id(g) in seen:
            continue
        seen.add(id(g))
        for p in g.prods:
            if p.kind == SE:
                if p.local == local:
                    found[id(p.element)] = p.element
                todo.append(p.element)
            if p.next is not None:
                todo.append(p.next)
    return list(found.values())
