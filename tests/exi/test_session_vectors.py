"""Messages of real sessions (the five interoperability cases, recorded with the Java codec on the SECC
side by record_session_vectors.py): the native codec gives Java's bytes and Java's JSON for each.

``op`` says which way the SECC used the codec: ``decode`` = a message the stock EVCC sent (its Java
codec's bytes), ``encode`` = a message our SECC sent (incl. fragments encoded for PnC signatures).
With a JRE present (always in CI) Java is asked again, so a changed jar cannot make the vectors stale.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exi_codec.codec import _FRAGMENT_ROOTS

VECTORS_PATH = Path(__file__).resolve().parent / "vectors" / "sessions.jsonl"
VECTORS = [json.loads(line) for line in VECTORS_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]
CASES = {"din70121", "iso2-dc-eim", "iso20-dc", "iso2-dc-tls12-pnc", "iso20-dc-tls13"}


def _name(vector: dict) -> str:
    root = next(iter(vector["json"]))
    if root == "V2G_Message":
        root = next(iter(vector["json"]["V2G_Message"]["Body"]))
    return root


def _is_fragment(vector: dict) -> bool:
    return next(iter(vector["json"])) in _FRAGMENT_ROOTS.get(vector["namespace"], {})


IDS = [f"{i:03d}-{v['case']}-{v['op']}-{_name(v)}" for i, v in enumerate(VECTORS)]


def test_every_case_and_the_charge_loop_are_recorded():
    assert {v["case"] for v in VECTORS} == CASES
    names = {_name(v) for v in VECTORS}
    for name in ("supportedAppProtocolReq", "supportedAppProtocolRes", "CurrentDemandReq", "CurrentDemandRes",
                 "DC_ChargeLoopReq", "DC_ChargeLoopRes", "SessionStopRes", "AuthorizationReq", "SignedInfo"):
        assert name in names


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_native_encodes_the_session_message_to_javas_bytes(native_codec, vector):
    assert native_codec.encode(json.dumps(vector["json"]), vector["namespace"]).hex() == vector["exi"]


@pytest.mark.parametrize("vector", [v for v in VECTORS if not _is_fragment(v)],
                         ids=[i for i, v in zip(IDS, VECTORS) if not _is_fragment(v)])
def test_native_decodes_javas_bytes_to_javas_json(native_codec, vector):
    assert json.loads(native_codec.decode(bytes.fromhex(vector["exi"]), vector["namespace"])) == vector["json"]


@pytest.mark.hlc
def test_java_still_gives_the_recorded_bytes(java_codec):
    for vector in VECTORS:
        assert java_codec.encode(json.dumps(vector["json"]), vector["namespace"]).hex() == vector["exi"], _name(vector)
