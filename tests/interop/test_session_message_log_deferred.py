"""The per-session V2G message log on the SECC's event loop: lines are written on the loop's next turn (after
the response left), in order, each in the file of the session it belonged to when it passed the codec."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from evse_secc.session_message_log import SessionMessageLog, SessionMessageLogCodec

ISO2 = "urn:iso:15118:2:2013:MsgDef"


class EchoCodec:
    def decode(self, stream: bytes, namespace: str) -> str:
        return stream.decode()

    def encode(self, message: str, namespace: str) -> bytes:
        return message.encode()

    def get_version(self) -> str:
        return "echo"


def _message(name: str, **content: object) -> str:
    return json.dumps({"V2G_Message": {"Header": {"SessionID": "00"}, "Body": {name: content}}})


async def test_lines_are_written_on_the_next_loop_turn_in_order_with_the_time_and_session_of_their_message(
        tmp_path):
    current = {"id": "s1"}
    times = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=i) for i in range(10))
    message_log = SessionMessageLog(tmp_path, lambda: current["id"], now=lambda: next(times))
    codec = SessionMessageLogCodec(EchoCodec(), message_log)

    codec.decode(_message("CurrentDemandReq", EVTargetCurrent=1).encode(), ISO2)
    codec.encode(_message("CurrentDemandRes", ResponseCode="OK"), ISO2)
    codec.decode(_message("SessionStopReq").encode(), ISO2)
    current["id"] = None  # the session ended before the loop turned: the lines still go to s1
    assert not (tmp_path / "s1.jsonl").exists()  # nothing written while the request is being answered

    await asyncio.sleep(0)  # the loop's next turn
    lines = [json.loads(line) for line in (tmp_path / "s1.jsonl").read_text().splitlines()]
    assert [(line["direction"], line["message"]) for line in lines] == [
        ("ev_to_evse", "CurrentDemandReq"), ("evse_to_ev", "CurrentDemandRes"), ("ev_to_evse", "SessionStopReq")]
    assert [line["at"] for line in lines] == ["2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00.001000+00:00",
                                              "2026-01-01T00:00:00.002000+00:00"]
    assert not (tmp_path / "no-session.jsonl").exists()
    message_log.close()


async def test_close_writes_what_is_still_pending(tmp_path):
    message_log = SessionMessageLog(tmp_path, lambda: "s2")
    SessionMessageLogCodec(EchoCodec(), message_log).decode(_message("CurrentDemandReq").encode(), ISO2)
    message_log.close()  # before the loop turned
    assert [json.loads(line)["message"] for line in (tmp_path / "s2.jsonl").read_text().splitlines()] == [
        "CurrentDemandReq"]
