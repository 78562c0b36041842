"""The per-session log of decoded V2G messages (the codec wrapper the launcher installs with --controller hal)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from evse_secc.session_message_log import SessionMessageLog, SessionMessageLogCodec


class EchoCodec:
    """Stands in for an EXI codec: bytes are the JSON text."""

    def decode(self, stream: bytes, namespace: str) -> str:
        return stream.decode()

    def encode(self, message: str, namespace: str) -> bytes:
        return message.encode()

    def get_version(self) -> str:
        return "echo"


def test_messages_land_in_the_file_of_the_session_they_belong_to(tmp_path):
    current = {"id": None}
    message_log = SessionMessageLog(tmp_path, lambda: current["id"],
                                    now=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    codec = SessionMessageLogCodec(EchoCodec(), message_log)
    request = {"V2G_Message": {"Header": {"SessionID": "00"}, "Body": {"CurrentDemandReq": {"EVTargetCurrent": 1}}}}
    response = {"V2G_Message": {"Header": {"SessionID": "00"}, "Body": {"CurrentDemandRes": {"ResponseCode": "OK"}}}}
    codec.decode(json.dumps({"supportedAppProtocolReq": {}}).encode(), "urn:iso:15118:2:2010:AppProtocol")
    current["id"] = "abc123"
    assert codec.decode(json.dumps(request).encode(), "urn:iso:15118:2:2013:MsgDef") == json.dumps(request)
    assert codec.encode(json.dumps(response), "urn:iso:15118:2:2013:MsgDef") == json.dumps(response).encode()
    current["id"] = "../evil"
    codec.decode(json.dumps(request).encode(), "urn:iso:15118:2:2013:MsgDef")
    message_log.close()

    lines = [json.loads(line) for line in (tmp_path / "abc123.jsonl").read_text().splitlines()]
    assert [(line["direction"], line["message"]) for line in lines] == [
        ("ev_to_evse", "CurrentDemandReq"), ("evse_to_ev", "CurrentDemandRes")]
    assert lines[1]["body"] == response and lines[0]["at"] == "2026-01-01T00:00:00+00:00"
    assert json.loads((tmp_path / "no-session.jsonl").read_text())["message"] == "supportedAppProtocolReq"
    assert (tmp_path / ".._evil.jsonl").exists()  # a session id never escapes the directory
    assert codec.get_version() == "echo"
