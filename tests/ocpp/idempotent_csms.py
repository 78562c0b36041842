"""The test CSMS (``csms.TestCsms``) as a central system that keeps what it accepted, for the SIGKILL test.

- **Accepted set**: each CALL is processed once per message id. A CALL whose id the CSMS already answered
  (a station resending a message whose CALLRESULT it never got) is answered again with the same CALLRESULT
  and not processed again (``resent`` lists those ids). OCPP-J lets a station reuse a message id on a new
  WebSocket connection (OCPP-J 1.6 §4.1.3 / OCPP 2.0.1 Part 4 §4.1.3: an id must differ from the sender's
  earlier CALL ids *on the same connection*); libocpp resends a transaction message restored from its database
  after a restart with its stored id. ``accepted`` is what a CSMS that dedupes by message id would bill from.
- **A lost answer**: ``hold_answer(predicate)``: the first CALL for which ``predicate(action, payload)`` is true
  is processed (accepted: a 1.6 StartTransaction gets its transactionId) but its CALLRESULT never leaves the
  CSMS; ``held`` is set then. A test kills the station while it waits: the answer is lost in the kill.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from csms import RecordedFrame, RecordingConnection, TestCsms

TRANSACTION_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction", "TransactionEvent")
HoldPredicate = Callable[[str, dict[str, Any]], bool]


class IdempotentConnection(RecordingConnection):
    csms: IdempotentCsms

    async def recv(self) -> str | bytes:
        while True:
            raw = await super().recv()
            frame = json.loads(raw)
            if int(frame[0]) != 2:
                return raw
            unique_id, action, payload = str(frame[1]), str(frame[2]), frame[3]
            answer = self.csms.answers.get(unique_id)
            if answer is not None:  # processed before: the same answer again, nothing processed twice
                self.csms.resent.append(unique_id)
                await self.send(answer)
                continue
            if action in TRANSACTION_ACTIONS:
                self.csms.accepted.append(self.csms.frames[-1])
            hold = self.csms.hold_predicate
            if hold is not None and self.csms.held_id is None and hold(action, payload):
                self.csms.held_id = unique_id
            return raw

    async def send(self, raw: str) -> None:
        frame = json.loads(raw)
        if int(frame[0]) in (3, 4):
            unique_id = str(frame[1])
            self.csms.answers.setdefault(unique_id, raw)
            if unique_id == self.csms.held_id and not self.csms.held.is_set():
                self._record("out", raw)
                self.csms.held.set()
                return  # the answer is lost
        await super().send(raw)


class IdempotentCsms(TestCsms):
    __test__ = False
    connection_class = IdempotentConnection

    def __init__(self, version: str = "1.6", **kwargs: Any) -> None:
        super().__init__(version, **kwargs)
        self.answers: dict[str, str] = {}  # CALL id -> the raw CALLRESULT / CALLERROR it got
        self.accepted: list[RecordedFrame] = []  # transaction CALLs processed, once per message id
        self.resent: list[str] = []  # ids of CALLs received again after they were processed
        self.hold_predicate: HoldPredicate | None = None
        self.held_id: str | None = None
        self.held = asyncio.Event()

    def hold_answer(self, predicate: HoldPredicate) -> None:
        self.hold_predicate = predicate

    def accepted_payloads(self, action: str) -> list[dict[str, Any]]:
        return [frame.payload for frame in self.accepted if frame.action == action]

