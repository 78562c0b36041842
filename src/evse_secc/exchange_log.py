"""Records of SECC request/response exchanges (our pydantic v2 model) and their JSON-lines log.

Written by the launcher (``--message-log``, see ``message_timing``), read by the interoperability
tests (SessionStopRes OK, the messages seen) and by bench/bench_secc.py (timings). Needs no iso15118.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from pydantic import BaseModel

#: ISO 15118-2 Table 109: V2G_SECC_Msg_Performance_Time for CurrentDemandRes (standards.md §2.4).
CURRENT_DEMAND_RES_PERFORMANCE_TIME_S = 0.025


class MessageExchange(BaseModel):
    """One request and the SECC's response to it."""

    namespace: str
    request: str
    response: str
    response_code: str | None
    duration_s: float  # decode start of the request -> encode end of the response
    decode_s: float
    encode_s: float


class JsonLinesExchangeLog:
    """Appends each exchange to a file as one JSON line (flushed, so readers see it at once)."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def __call__(self, exchange: MessageExchange) -> None:
        self._file.write(exchange.model_dump_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_exchanges(path: Path) -> list[MessageExchange]:
    """The exchanges a ``JsonLinesExchangeLog`` wrote."""
    if not path.exists():
        return []
    return [MessageExchange.model_validate_json(line)
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
