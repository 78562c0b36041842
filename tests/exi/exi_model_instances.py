"""Random valid instances of iso15118's pydantic (v1) message models, as the JSON its EXI layer sends.

`message_json(namespace, rng)` style helpers: every message type of each namespace, filled from the
model's own field types and constraints (enums, bounds, lengths, optional fields, unions), wrapped
exactly as `iso15118.shared.exi_codec.EXI.to_exi` wraps them. Strings are drawn from upper-case hex
digits of even length, so fields that are hexBinary in the XSD (SessionID, EVCCID, DIN EVSEID) and
plain strings are both valid. Instances the model's validators reject are redrawn.
"""

from __future__ import annotations

import enum
import json
import random
import typing
from dataclasses import dataclass

from evse_hal.iso15118 import compat

compat.install()

from pydantic.v1 import AnyUrl, BaseModel, ValidationError  # noqa: E402
from pydantic.v1.fields import ModelField  # noqa: E402

from iso15118.shared.exceptions import V2GMessageValidationError  # noqa: E402
from iso15118.shared.exi_codec import CustomJSONEncoder  # noqa: E402
from iso15118.shared.messages import app_protocol  # noqa: E402
from iso15118.shared.messages.din_spec import body as din_body  # noqa: E402
from iso15118.shared.messages.din_spec import header as din_header  # noqa: E402
from iso15118.shared.messages.din_spec import msgdef as din_msgdef  # noqa: E402
from iso15118.shared.messages.enums import Namespace  # noqa: E402
from iso15118.shared.messages.iso15118_2 import body as iso2_body  # noqa: E402
from iso15118.shared.messages.iso15118_2 import header as iso2_header  # noqa: E402
from iso15118.shared.messages.iso15118_2 import msgdef as iso2_msgdef  # noqa: E402
from iso15118.shared.messages.iso15118_20 import ac as iso20_ac  # noqa: E402
from iso15118.shared.messages.iso15118_20 import common_messages as iso20_common  # noqa: E402
from iso15118.shared.messages.iso15118_20 import dc as iso20_dc  # noqa: E402
from iso15118.shared.messages.iso15118_20.common_types import V2GMessage as V2GMessageV20  # noqa: E402

MAX_LIST_ITEMS = 3
MAX_BYTES = 24
UNBOUNDED_INT_RANGE = (0, 100)
_HEX = "0123456789ABCDEF"
_URLS = ["http://www.w3.org/2001/10/xml-exc-c14n#", "http://www.w3.org/2001/04/xmlenc#sha256"]


class CannotGenerate(Exception):
    pass


def _bound(type_, *names):
    for name in names:
        value = getattr(type_, name, None)
        if value is not None:
            return name, value
    return None, None


def _gen_int(type_, rng: random.Random) -> int:
    lo_name, lo = _bound(type_, "ge", "gt")
    hi_name, hi = _bound(type_, "le", "lt")
    if lo is not None and lo_name == "gt":
        lo += 1
    if hi is not None and hi_name == "lt":
        hi -= 1
    if lo is None and hi is None:
        lo, hi = UNBOUNDED_INT_RANGE
    elif lo is None:
        lo = max(hi - 100, min(0, hi))
    elif hi is None:
        hi = lo + 100
    edges = [lo, hi, lo + (hi - lo) // 2]
    return rng.choice(edges) if rng.random() < 0.3 else rng.randint(lo, hi)


def _gen_str(type_, rng: random.Random) -> str:
    lo = getattr(type_, "min_length", None) or 1
    hi = getattr(type_, "max_length", None) or 16
    hi = min(hi, 32)
    n = rng.randint(max(1, lo), max(lo, hi))
    if n % 2:
        n = n + 1 if n + 1 <= hi else max(n - 1, 2)
    return "".join(rng.choice(_HEX) for _ in range(n))


def _gen_bytes(type_, rng: random.Random) -> bytes:
    lo = getattr(type_, "min_length", None) or 1
    hi = min(getattr(type_, "max_length", None) or MAX_BYTES, MAX_BYTES)
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(lo, max(lo, hi))))


def _gen_type(type_, rng: random.Random, depth: int):
    origin = typing.get_origin(type_)
    if origin is typing.Union:
        args = [a for a in typing.get_args(type_) if a is not type(None)]
        return _gen_type(rng.choice(args), rng, depth)
    if origin is typing.Literal:
        return rng.choice(typing.get_args(type_))
    if origin in (list, typing.List):
        (item,) = typing.get_args(type_) or (str,)
        return [_gen_type(item, rng, depth) for _ in range(rng.randint(1, MAX_LIST_ITEMS))]
    if isinstance(type_, type):
        if issubclass(type_, BaseModel):
            return generate_model(type_, rng, depth + 1)
        if issubclass(type_, enum.Enum):
            return rng.choice(list(type_))
        if issubclass(type_, bool):
            return rng.random() < 0.5
        if issubclass(type_, int):
            return _gen_int(type_, rng)
        if issubclass(type_, AnyUrl):
            return rng.choice(_URLS)
        if issubclass(type_, bytes):
            return _gen_bytes(type_, rng)
        if issubclass(type_, str):
            return _gen_str(type_, rng)
        if issubclass(type_, list):  # conlist
            item = getattr(type_, "item_type", str)
            lo = getattr(type_, "min_items", None) or 1
            hi = min(getattr(type_, "max_items", None) or MAX_LIST_ITEMS, MAX_LIST_ITEMS)
            return [_gen_type(item, rng, depth) for _ in range(rng.randint(lo, max(lo, hi)))]
    raise CannotGenerate(f"no generator for {type_!r}")


def _gen_field(field: ModelField, rng: random.Random, depth: int):
    if field.sub_fields and field.shape == 1:  # Union
        return _gen_field(rng.choice(field.sub_fields), rng, depth)
    if field.shape != 1:  # List-like shapes
        if field.sub_fields:
            inner = field.sub_fields[0]
        else:
            inner = None
        lo = getattr(field.outer_type_, "min_items", None) or 1
        hi = min(getattr(field.outer_type_, "max_items", None) or MAX_LIST_ITEMS, MAX_LIST_ITEMS)
        n = rng.randint(lo, max(lo, hi))
        if inner is not None:
            return [_gen_field(inner, rng, depth) for _ in range(n)]
        return [_gen_type(field.type_, rng, depth) for _ in range(n)]
    return _gen_type(field.outer_type_, rng, depth)


def generate_model(model: type[BaseModel], rng: random.Random, depth: int = 0, attempts: int = 30):
    """A valid instance of `model`; optional fields are present with probability 1/2."""
    if depth > 12:
        raise CannotGenerate("model nesting too deep")
    last_error: Exception | None = None
    for _ in range(attempts):
        values = {}
        for name, field in model.__fields__.items():
            if not field.required and rng.random() < 0.5:
                continue
            values[field.alias] = _gen_field(field, rng, depth)
        try:
            return model.parse_obj(values)
        except (ValidationError, V2GMessageValidationError, ValueError, TypeError) as exc:
            last_error = exc
    raise CannotGenerate(f"{model.__name__}: {last_error}")


@dataclass(frozen=True)
class MessageKind:
    """One message type of one namespace and how to build its JSON."""

    namespace: str
    name: str
    build: typing.Callable[[random.Random], str]


def _dump(root: str, model: BaseModel) -> str:
    return json.dumps({root: model.dict(by_alias=True, exclude_none=True)}, cls=CustomJSONEncoder)


def _v2g_kinds(namespace, body_module, header_module, msgdef_module) -> list[MessageKind]:
    kinds = []
    for name, field in body_module.Body.__fields__.items():
        msg_class = field.outer_type_

        def build(rng, field=field, msg_class=msg_class):
            header = generate_model(header_module.MessageHeader, rng)
            msg = generate_model(msg_class, rng)
            body = body_module.Body(**{field.alias: msg})
            return _dump("V2G_Message", msgdef_module.V2GMessage(header=header, body=body))

        kinds.append(MessageKind(namespace, field.alias, build))
    return kinds


def _v20_kinds(namespace, module) -> list[MessageKind]:
    kinds = []
    for name in sorted(vars(module)):
        cls = getattr(module, name)
        if not (isinstance(cls, type) and issubclass(cls, V2GMessageV20) and cls.__module__ == module.__name__):
            continue
        if not (name.endswith("Req") or name.endswith("Res")):
            continue

        def build(rng, cls=cls):
            msg = generate_model(cls, rng)
            return _dump(str(msg), msg)

        kinds.append(MessageKind(namespace, name, build))
    return kinds


def _sap_kinds() -> list[MessageKind]:
    def req(rng):
        return _dump("supportedAppProtocolReq", generate_model(app_protocol.SupportedAppProtocolReq, rng))

    def res(rng):
        return _dump("supportedAppProtocolRes", generate_model(app_protocol.SupportedAppProtocolRes, rng))

    return [MessageKind(Namespace.SAP.value, "supportedAppProtocolReq", req),
            MessageKind(Namespace.SAP.value, "supportedAppProtocolRes", res)]


def all_message_kinds() -> list[MessageKind]:
    return (
        _sap_kinds()
        + _v2g_kinds(Namespace.DIN_MSG_DEF.value, din_body, din_header, din_msgdef)
        + _v2g_kinds(Namespace.ISO_V2_MSG_DEF.value, iso2_body, iso2_header, iso2_msgdef)
        + _v20_kinds(Namespace.ISO_V20_COMMON_MSG.value, iso20_common)
        + _v20_kinds(Namespace.ISO_V20_DC.value, iso20_dc)
        + _v20_kinds(Namespace.ISO_V20_AC.value, iso20_ac)
    )
