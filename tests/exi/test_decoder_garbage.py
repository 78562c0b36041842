"""Malformed EXI (issue 10, item 8): whatever bytes arrive, the native decoder raises only ``EXIDecodeError``.

The SECC decodes what an EV sends; a corrupted, truncated or hostile message must end as the codec's own
error (a ``ValueError``), never as ``EOFError``, ``IndexError``, ``OverflowError`` or a bare ``ValueError`` from
``chr``. The inputs are the recorded messages of real sessions (tests/exi/vectors), mutated: bit flips,
truncation, inserted and deleted bytes, overwritten bytes. Seeded and derandomized, so every run tries the same
cases.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exi_codec.bits import BitReader
from exi_codec.decoder import EXIDecodeError
from exi_codec.grammar import ENUM, LIST, NBIT, STRING, Datatype
from exi_codec.values import read_value

VECTORS_PATH = Path(__file__).resolve().parent / "vectors" / "sessions.jsonl"
VECTORS = [json.loads(line) for line in VECTORS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
MESSAGES = [(bytes.fromhex(vector["exi"]), vector["namespace"]) for vector in VECTORS]
MUTATED_CASES = 20_000
SEED = 20_240_610
MAX_MUTATIONS_PER_CASE = 4
MAX_INSERTED_BYTES = 8


def mutate(data: bytes, rng: random.Random) -> bytes:
    mutated = bytearray(data)
    for _ in range(rng.randint(1, MAX_MUTATIONS_PER_CASE)):
        operation = rng.randrange(5)
        if operation == 0 and mutated:  # flip one bit
            bit = rng.randrange(8 * len(mutated))
            mutated[bit // 8] ^= 0x80 >> (bit % 8)
        elif operation == 1:  # truncate
            del mutated[rng.randrange(len(mutated) + 1):]
        elif operation == 2:  # insert random bytes
            at = rng.randrange(len(mutated) + 1)
            mutated[at:at] = rng.randbytes(rng.randint(1, MAX_INSERTED_BYTES))
        elif operation == 3 and mutated:  # delete a run of bytes
            at = rng.randrange(len(mutated))
            del mutated[at:at + rng.randint(1, MAX_INSERTED_BYTES)]
        elif operation == 4 and mutated:  # overwrite one byte
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    return bytes(mutated)


def outcome(native_codec, data: bytes, namespace: str) -> str | BaseException:
    """"decoded", "refused" (``EXIDecodeError``), or the other exception decoding ``data`` let out."""
    try:
        native_codec.decode(data, namespace)
    except EXIDecodeError:
        return "refused"
    except Exception as other:  # what the test looks for
        return other
    return "decoded"


def test_the_decode_error_is_still_a_value_error():
    import exi_codec
    import exi_codec.errors

    assert issubclass(EXIDecodeError, ValueError)
    assert exi_codec.EXIDecodeError is EXIDecodeError is exi_codec.errors.EXIDecodeError


def test_20000_mutated_real_messages_raise_only_the_codec_error(native_codec):
    rng = random.Random(SEED)
    escapes: dict[str, tuple[str, str, str]] = {}
    refused = 0
    for _ in range(MUTATED_CASES):
        original, namespace = rng.choice(MESSAGES)
        data = mutate(original, rng)
        result = outcome(native_codec, data, namespace)
        if isinstance(result, BaseException):
            escapes.setdefault(type(result).__name__, (str(result), data.hex(), namespace))
        refused += result == "refused"
    assert not escapes, escapes
    assert refused > MUTATED_CASES // 2  # the mutations do make most messages malformed


@settings(max_examples=2_000, derandomize=True, database=None, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(MESSAGES) - 1), cut=st.integers(0, 400), flips=st.lists(st.integers(0, 4000), max_size=3),
       inserted=st.binary(max_size=8), at=st.integers(0, 400))
def test_truncated_flipped_and_padded_messages_raise_only_the_codec_error(native_codec, index, cut, flips, inserted, at):
    original, namespace = MESSAGES[index]
    data = bytearray(original[:max(cut, 1)] if cut < len(original) else original)
    for bit in flips:
        if data:
            bit %= 8 * len(data)
            data[bit // 8] ^= 0x80 >> (bit % 8)
    data[at % (len(data) + 1):at % (len(data) + 1)] = inserted
    result = outcome(native_codec, bytes(data), namespace)
    assert isinstance(result, str), (type(result).__name__, str(result), bytes(data).hex(), namespace)


# --- the checks at their sources (without the codec's wrapper) ---------------------------------------------

def test_the_bit_reader_raises_the_decode_error_at_the_end_of_the_stream():
    reader = BitReader(b"\x80")
    assert reader.bits(8) == 0x80
    with pytest.raises(EXIDecodeError):
        reader.bits(1)
    with pytest.raises(EXIDecodeError):
        BitReader(b"\x01").raw_bytes(2)
    with pytest.raises(EXIDecodeError):
        BitReader(b"\xff" * 200).uint()  # continuation octets without end


def test_a_length_longer_than_the_stream_is_refused_before_anything_is_allocated():
    huge = b"\xff" * 9 + b"\x7f"  # an Unsigned Integer of about 2**70
    for datatype in (Datatype(STRING), Datatype(LIST, item=Datatype(NBIT, bits=0))):
        with pytest.raises(EXIDecodeError, match="longer than the rest"):
            read_value(BitReader(huge + b"\x00" * 8), datatype)
    reader = BitReader(b"\x05\x01\x02")  # five bytes announced, two present
    with pytest.raises(EXIDecodeError):
        reader.raw_bytes(reader.length(8))


@pytest.mark.parametrize("code_point_octets", [b"\x80\x80\xc4\x00", b"\x80\xb0\x03", b"\xff\xff\xff\xff\x0f"],
                         ids=["U+110000", "U+D800", "2**35"])
def test_a_string_character_outside_unicode_is_refused(code_point_octets):
    stream = b"\x03" + code_point_octets  # length 1 (+2), then the code point
    with pytest.raises(EXIDecodeError, match="not a Unicode scalar value"):
        read_value(BitReader(stream), Datatype(STRING))


def test_an_enumeration_index_past_its_values_is_refused():
    three_values = Datatype(ENUM, bits=2, values=["a", "b", "c"])
    assert read_value(BitReader(b"\x80"), three_values) == "c"
    with pytest.raises(EXIDecodeError, match="out of range"):
        read_value(BitReader(b"\xc0"), three_values)

