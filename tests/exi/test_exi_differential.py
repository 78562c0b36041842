"""Differential tests: native EXI codec vs the package's Java codec (the oracle), per message type.

For every message type of the application handshake, DIN SPEC 70121, ISO 15118-2 and ISO 15118-20
(common, DC, AC), hypothesis draws instances of iso15118's own pydantic models and turns them into
the JSON `EXI.to_exi` sends. Then: our EXI bytes == Java's bytes, and decoding Java's bytes gives
the same JSON as Java's decoder.

Inputs the Java codec itself rejects are skipped (its own bugs, e.g. `ParameterSetID` > 32767,
-20 "Contract" auth service, Signature headers needing javax.mail). Inputs the package's models
accept but the XSD does not (missing required element, two members of one substitution group,
value outside an n-bit facet) are counted, not compared: Java encodes them with non-strict
second-level events, which the native codec does not implement (it raises instead). Java also
writes such an event for ISO 15118-2 MeteringReceiptReq instances without SAScheduleTupleID: its
JAXB field is a primitive, so Java writes 0, outside SAIDType (1..255), as an undeclared untyped
value (see exi_codec.codec.JAVA_PRIMITIVE_DEFAULTS); native decoding of those streams raises. A kind where no instance was comparable is
xfailed (or skipped when Java rejected all of them).
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exi_codec.decoder import EXIDecodeError
from exi_codec.encoder import EXIEncodeError
from exi_model_instances import CannotGenerate, all_message_kinds

pytestmark = pytest.mark.hlc

KINDS = all_message_kinds()
EXAMPLES_PER_KIND = 5  # keeps tests/exi within ~40 s on a 2-core CI box


def _shape(value):
    """The key structure of a JSON value (which elements and attributes, how many of each)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return None


def _check(native_codec, java_codec, kind, seed: int) -> str:
    try:
        message = kind.build(random.Random(seed))
    except CannotGenerate:
        return "not-generated"
    try:
        java_bytes = java_codec.encode(message, kind.namespace)
        java_json = json.loads(java_codec.decode(java_bytes, kind.namespace))
    except Exception:  # noqa: BLE001 - the oracle's own failures are not ours to test
        return "java-rejects"
    # Decoding: the same JSON as Java's decoder.
    try:
        native_json = json.loads(native_codec.decode(java_bytes, kind.namespace))
    except EXIDecodeError as exc:
        assert "second-level" in str(exc), exc
        return "java-second-level"  # Java wrote an undeclared (non-strict) event; not decodable yet
    assert native_json == java_json, message
    if _shape(java_json) != _shape(json.loads(message)):
        # Java's JAXB layer changed the message (dropped a second substitution-group member or an
        # unknown key, added a primitive's default). Its own output, re-encoded, must still match.
        assert native_codec.encode(json.dumps(java_json), kind.namespace).hex() == java_bytes.hex()
        return "java-altered"
    try:
        native_bytes = native_codec.encode(message, kind.namespace)
    except EXIEncodeError:
        return "schema-invalid"
    assert native_bytes.hex() == java_bytes.hex(), message
    return "identical"


@pytest.mark.parametrize("kind", KINDS, ids=[f"{k.namespace.rsplit(':', 1)[-1]}-{k.name}" for k in KINDS])
def test_same_bytes_and_json_as_java(native_codec, java_codec, kind):
    outcomes: list[str] = []

    @settings(
        max_examples=EXAMPLES_PER_KIND,
        deadline=None,
        database=None,
        derandomize=True,  # the same instances on every CI run
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(seed=st.integers(min_value=0, max_value=2**32 - 1))
    def run(seed):
        outcomes.append(_check(native_codec, java_codec, kind, seed))

    run()
    if "identical" not in outcomes and "java-altered" not in outcomes:
        if "schema-invalid" in outcomes or "java-second-level" in outcomes:
            pytest.xfail(f"only instances needing non-strict second-level events drawn: {outcomes}")
        pytest.skip(f"no instance the Java codec accepts: {outcomes}")
