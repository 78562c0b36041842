"""The codec's fast paths against its reference paths (issue 13 item 4): same bytes, same JSON, same errors.

``encode_document`` writes a message from the plan cached for its shape, ``decode_document`` reads a stream in one
loop with the common datatypes inline (exi_codec.encoder / exi_codec.decoder); both hand anything unusual to the
reference (``encode_document_reference``, ``decode_document_reference``: the codec as it was, which the Java
differential tests check). Here: on every recorded session message and on messages of every type of the
application handshake, DIN SPEC 70121, ISO 15118-2 and ISO 15118-20 (the package's own models, seeded), the fast
paths give the reference's bytes and JSON *without* falling back (else they would be no faster); on mutated
streams the fast decoder returns a value only where the reference returns the same one; values that vary within
one shape (one cached plan) and invalid values give the reference's bytes and errors. No JRE needed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from exi_model_instances import CannotGenerate, all_message_kinds

from exi_codec import NativeEXICodec
from exi_codec.decoder import MAX_FAST_DEPTH, _decode_fast, decode_document, decode_document_reference
from exi_codec.encoder import EXIEncodeError, _flatten, _plan, _run_plan, encode_document_reference

VECTORS_PATH = Path(__file__).resolve().parent / "vectors" / "sessions.jsonl"
VECTORS = [json.loads(line) for line in VECTORS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
KINDS = all_message_kinds()
SEEDS_PER_KIND = 6
MUTATED_CASES = 20_000
SEED = 20_261_202
DIN = "urn:din:70121:2012:MsgDef"
ISO2 = "urn:iso:15118:2:2013:MsgDef"
ISO20_DC = "urn:iso:std:iso:15118:-20:DC"


def _reference_encode(codec: NativeEXICodec, message: dict, namespace: str) -> bytes:
    _gs, content, fragment, root_uri = codec.encode_target(message, namespace)
    return encode_document_reference(content, message, fragment, root_uri)


def _planned_encode(codec: NativeEXICodec, message: dict, namespace: str) -> bytes:
    """The message written from its plan, failing if there is none (the fast path would not be taken)."""
    _gs, content, _fragment, root_uri = codec.encode_target(message, namespace)
    (root, value), = message.items()
    plan = _plan(content, root, value, root_uri)
    assert plan is not None, f"no plan for {root} in {namespace}"
    leaves: list = []
    _flatten(value, [], leaves)
    return _run_plan(plan, leaves)


def _outcome(function, *args):
    try:
        return "value", function(*args)
    except Exception as exc:  # noqa: BLE001 - compared between the two paths
        return "error", (type(exc).__name__, str(exc))


@pytest.mark.parametrize("vector", VECTORS, ids=[f"{i:03d}-{v['case']}-{v['op']}" for i, v in enumerate(VECTORS)])
def test_recorded_session_messages_take_the_fast_paths_and_give_the_reference_bytes_and_json(native_codec, vector):
    namespace, message, exi = vector["namespace"], vector["json"], bytes.fromhex(vector["exi"])
    assert _planned_encode(native_codec, message, namespace) == _reference_encode(native_codec, message, namespace)
    assert native_codec.encode_dict(message, namespace) == exi
    content, fragment = native_codec.decode_target(namespace)
    reference = _outcome(decode_document_reference, content, exi, fragment)
    if reference[0] == "value":  # fragments recorded for signatures are not documents of their namespace
        assert _decode_fast(content, exi, fragment) == reference[1]


def test_messages_of_every_type_of_every_protocol_take_the_fast_paths(native_codec):
    compared = 0
    for kind in KINDS:
        for seed in range(SEEDS_PER_KIND):
            try:
                message = json.loads(kind.build(random.Random(seed)))
            except CannotGenerate:
                continue
            reference = _outcome(_reference_encode, native_codec, message, kind.namespace)
            assert _outcome(native_codec.encode_dict, message, kind.namespace) == reference, (kind.name, message)
            if reference[0] == "error":  # outside the schema (see test_exi_differential): no plan, same error
                continue
            exi = reference[1]
            assert _planned_encode(native_codec, message, kind.namespace) == exi, (kind.name, message)
            content, fragment = native_codec.decode_target(kind.namespace)
            expected = _outcome(decode_document_reference, content, exi, fragment)
            if expected[0] == "value":
                assert _decode_fast(content, exi, fragment) == expected[1], (kind.name, message)
                compared += 1
    assert compared > 4 * len(KINDS)


def _charge_loop_variants(rng: random.Random):
    """CurrentDemandRes (DIN, -2) and DC_ChargeLoopRes (-20) with values drawn across their types' ranges."""
    from evse_secc.codecs import WARMUP_MESSAGES

    def physical(value_range):
        return {"Value": rng.randint(*value_range), "Multiplier": rng.randint(-3, 3), "Unit": rng.choice("AVW")}

    for namespace in (DIN, ISO2):
        response = json.loads(json.dumps(WARMUP_MESSAGES[namespace][1]))
        body = response["V2G_Message"]["Body"]["CurrentDemandRes"]
        for key in ("EVSEPresentVoltage", "EVSEPresentCurrent", "EVSEMaximumVoltageLimit"):
            body[key] = physical((-32768, 32767))
        for key in ("EVSECurrentLimitAchieved", "EVSEVoltageLimitAchieved", "EVSEPowerLimitAchieved"):
            body[key] = rng.random() < 0.5
        body["DC_EVSEStatus"]["NotificationMaxDelay"] = rng.randint(0, 65535)
        yield namespace, response
    response = json.loads(json.dumps(WARMUP_MESSAGES[ISO20_DC][1]))
    loop = response["DC_ChargeLoopRes"]
    loop["Header"]["TimeStamp"] = rng.randint(0, 2**64 - 1)
    loop["EVSEPresentCurrent"] = {"Value": rng.randint(-32768, 32767), "Exponent": rng.randint(-128, 127)}
    loop["EVSEPresentVoltage"] = {"Value": rng.randint(-32768, 32767), "Exponent": rng.randint(-128, 127)}
    yield ISO20_DC, response


def test_values_varying_within_one_shape_give_the_reference_bytes_and_read_back(native_codec):
    rng = random.Random(SEED)
    for _ in range(300):
        for namespace, message in _charge_loop_variants(rng):
            exi = native_codec.encode_dict(message, namespace)
            assert exi == _reference_encode(native_codec, message, namespace)
            assert native_codec.decode_dict(exi, namespace) == message


@pytest.mark.parametrize("change,expected", [
    (lambda body: body.update(ResponseCode="NOT_A_CODE"), "'NOT_A_CODE' is not one of"),
    (lambda body: body["EVSEPresentVoltage"].update(Multiplier=5), "5 outside the n-bit range"),
    (lambda body: body["EVSEPresentVoltage"].update(Multiplier=-4), "-4 outside the n-bit range"),
    (lambda body: body["EVSEPresentVoltage"].update(Value=True), "expected an integer, got True"),
    (lambda body: body["DC_EVSEStatus"].update(NotificationMaxDelay=-1), "negative value -1"),
    (lambda body: body.update(EVSEID=7), "expected a string, got 7"),
    (lambda body: body["EVSEPresentVoltage"].update(Value="399"), None),
    (lambda body: body.update(EVSEPowerLimitAchieved="true"), None),
], ids=["enum", "nbit-above", "nbit-below", "bool-for-int", "negative-unsigned", "int-for-string",
        "string-for-int", "string-for-boolean"])
def test_a_value_the_plan_does_not_take_gives_the_reference_result(native_codec, change, expected):
    """After a plan for CurrentDemandRes is cached, an invalid value raises the reference's error, and a value
    of another JSON type than usual (which the reference converts) gives the reference's bytes."""
    from evse_secc.codecs import WARMUP_MESSAGES

    native_codec.encode_dict(WARMUP_MESSAGES[ISO2][1], ISO2)  # the plan for this shape
    message = json.loads(json.dumps(WARMUP_MESSAGES[ISO2][1]))
    change(message["V2G_Message"]["Body"]["CurrentDemandRes"])
    fast = _outcome(native_codec.encode_dict, message, ISO2)
    assert fast == _outcome(_reference_encode, native_codec, message, ISO2)
    if expected is None:
        assert fast[0] == "value"
    else:
        assert fast[0] == "error" and fast[1][0] == EXIEncodeError.__name__ and expected in fast[1][1]


def test_a_shape_the_grammar_refuses_gives_the_reference_error_every_time(native_codec):
    message = {"V2G_Message": {"Header": {"SessionID": "0A"}, "Body": {"CurrentDemandRes": {"Bogus": 1}}}}
    _gs, content, _fragment, _root_uri = native_codec.encode_target(message, ISO2)
    reference = _outcome(_reference_encode, native_codec, message, ISO2)
    assert reference[0] == "error"
    for _ in range(2):  # the second time from the cache (no plan)
        assert _outcome(native_codec.encode_dict, message, ISO2) == reference
    assert _plan(content, "V2G_Message", message["V2G_Message"], None) is None


def test_mutated_streams_decode_fast_only_to_the_reference_value(native_codec):
    """Where the fast decoder returns, the reference returns the same; where the reference refuses, so does the
    fast one (and ``decode_document`` then raises the reference's own error)."""
    from test_decoder_garbage import MESSAGES, mutate

    rng = random.Random(SEED)
    fast_values = 0
    for _ in range(MUTATED_CASES):
        original, namespace = rng.choice(MESSAGES)
        data = mutate(original, rng)
        content, fragment = native_codec.decode_target(namespace)
        reference = _outcome(decode_document_reference, content, data, fragment)
        fast = _outcome(_decode_fast, content, data, fragment)
        if fast[0] == "value":
            assert reference == fast, data.hex()
            fast_values += 1
        else:
            assert _outcome(decode_document, content, data, fragment) == reference, data.hex()
    assert fast_values > MUTATED_CASES // 20  # some mutations leave a valid message, and the fast path reads it


def test_nesting_deeper_than_the_fast_limit_is_left_to_the_reference(native_codec, monkeypatch):
    import exi_codec.decoder as decoder
    from evse_secc.codecs import WARMUP_MESSAGES

    deepest = max(_depth(vector["json"]) for vector in VECTORS)
    assert deepest < MAX_FAST_DEPTH  # no recorded message needs the reference for its depth
    request = WARMUP_MESSAGES[ISO2][0]  # V2G_Message/Body/CurrentDemandReq/EVTargetCurrent/Value: 5 deep
    exi = native_codec.encode_dict(request, ISO2)
    content, fragment = native_codec.decode_target(ISO2)
    monkeypatch.setattr(decoder, "MAX_FAST_DEPTH", 2)
    with pytest.raises(decoder._Unusual):
        _decode_fast(content, exi, fragment)
    assert decode_document(content, exi, fragment) == request


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return max((_depth(v) for v in value), default=0)
    return 0


def test_the_plan_cache_is_bounded(monkeypatch):
    import itertools

    import exi_codec.encoder as encoder
    from evse_secc.codecs import WARMUP_MESSAGES

    monkeypatch.setattr(encoder, "MAX_PLANS", 3)
    codec = NativeEXICodec()
    gs = codec.grammars(ISO2)
    optional = ("EVSEMaximumVoltageLimit", "EVSEMaximumCurrentLimit", "EVSEMaximumPowerLimit")
    shapes = 0
    for dropped in itertools.chain.from_iterable(itertools.combinations(optional, n) for n in range(4)):
        message = json.loads(json.dumps(WARMUP_MESSAGES[ISO2][1]))
        for key in dropped:  # eight shapes: with and without each optional limit
            del message["V2G_Message"]["Body"]["CurrentDemandRes"][key]
        assert codec.encode_dict(message, ISO2) == _reference_encode(codec, message, ISO2)
        assert 1 <= len(gs.plans) <= 3
        shapes += 1
    assert shapes == 8


@pytest.mark.parametrize("evse_id", ["", "DE*CCS*E0000001*1", "DE*CCS*É0000001*1", "DE*€*😀"],
                         ids=["empty", "ascii", "latin-1", "multi-octet"])
def test_strings_read_fast_when_ascii_and_by_the_reference_otherwise(native_codec, evse_id):
    import exi_codec.decoder as decoder
    from evse_secc.codecs import WARMUP_MESSAGES

    message = json.loads(json.dumps(WARMUP_MESSAGES[ISO2][1]))
    message["V2G_Message"]["Body"]["CurrentDemandRes"]["EVSEID"] = evse_id
    exi = native_codec.encode_dict(message, ISO2)
    assert exi == _reference_encode(native_codec, message, ISO2)
    content, fragment = native_codec.decode_target(ISO2)
    assert decode_document(content, exi, fragment) == decode_document_reference(content, exi, fragment) == message
    if evse_id.isascii():
        assert _decode_fast(content, exi, fragment) == message
    else:
        with pytest.raises(decoder._Unusual):
            _decode_fast(content, exi, fragment)
