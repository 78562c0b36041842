"""The per-session V2G message log writes a request and its response with one flush to the disk, on the event
loop's turn after the response (issue 13 item 4: nothing of it runs while the SECC handles the request)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from evse_secc.session_message_log import SessionMessageLog

ISO2 = "urn:iso:15118:2:2013:MsgDef"


class SpyFile:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.flushes = 0
        self.closed = False

    def write(self, text: str) -> int:
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        self.closed = True


def _v2g(name: str) -> str:
    return json.dumps({"V2G_Message": {"Header": {"SessionID": "00"}, "Body": {name: {}}}})


def test_request_and_response_are_written_on_the_next_turn_with_one_flush(tmp_path: Path):
    message_log = SessionMessageLog(tmp_path, lambda: "s1", now=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    spy = SpyFile()
    message_log._files["s1"] = spy  # type: ignore[assignment]  # the session's file, already open

    async def one_exchange() -> tuple[int, int]:
        message_log.append("ev_to_evse", ISO2, _v2g("CurrentDemandReq"))
        message_log.append("evse_to_ev", ISO2, _v2g("CurrentDemandRes"))
        during = len(spy.lines)
        await asyncio.sleep(0)
        return during, len(spy.lines)

    assert asyncio.run(one_exchange()) == (0, 2)
    assert spy.flushes == 1
    assert [json.loads(line)["message"] for line in spy.lines] == ["CurrentDemandReq", "CurrentDemandRes"]


def test_without_a_running_loop_each_message_is_written_and_flushed_at_once(tmp_path: Path):
    message_log = SessionMessageLog(tmp_path, lambda: "s2")
    message_log.append("ev_to_evse", ISO2, _v2g("SessionStopReq"))
    assert json.loads((tmp_path / "s2.jsonl").read_text())["message"] == "SessionStopReq"  # on disk, not closed
    message_log.close()
