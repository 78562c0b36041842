"""A fake CSMS behind the queue's ``send``: records every call, and fails, times out or is offline on cue."""

from __future__ import annotations

import asyncio
from typing import Any

from ocpp.messages import MessageType

from ccs_sim.ocpp.date_time_check import frame_violations
from ccs_sim.ocpp.message_queue import DeliveryOffline, DeliveryRejected
from evse_model.clock import ManualClock


class FakeCsms:
    """``send``: records every call; a script of outcomes per call ('ok', 'error', 'timeout', 'offline')."""

    def __init__(self, script: list[str] | None = None, first_transaction_id: int = 100,
                 version: str | None = None, id_tag_status: str = "Accepted") -> None:
        self.script = list(script or [])
        #: With a version: every payload is checked against its OCA schema, date-times included.
        self.version = version
        self.violations: list[str] = []
        self.id_tag_status = id_tag_status
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.message_ids: list[str | None] = []  # each call's OCPP-J message id
        self.accepted: list[tuple[str, dict[str, Any]]] = []
        self.next_transaction_id = first_transaction_id

    async def send(self, action: str, payload: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
        self.calls.append((action, payload))
        self.message_ids.append(message_id)
        if self.version is not None:
            self.violations += [f"{action}: {line}" for line in
                                frame_violations(self.version, MessageType.Call, action, payload)]
        outcome = self.script.pop(0) if self.script else "ok"
        if outcome == "offline":
            raise DeliveryOffline("not connected")
        if outcome == "error":
            raise DeliveryRejected("InternalError")
        if outcome == "timeout":
            raise TimeoutError()
        self.accepted.append((action, payload))
        if action == "StartTransaction":
            self.next_transaction_id += 1
            return {"transactionId": self.next_transaction_id, "idTagInfo": {"status": self.id_tag_status}}
        if action == "Authorize":
            return {"idTagInfo": {"status": self.id_tag_status}, "idTokenInfo": {"status": self.id_tag_status}}
        return {}

    def sent(self, action: str) -> list[dict[str, Any]]:
        return [payload for name, payload in self.accepted if name == action]


async def settle(clock: ManualClock, rounds: int = 20) -> None:
    """Let the queue's task and its database thread run (no simulated time passes)."""
    for _ in range(rounds):
        await clock.settle()
        await asyncio.sleep(0.002)


async def eventually(check: Any, timeout_s: float = 5.0) -> None:
    """Wall-clock wait for the database thread only (simulated time does not move)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)
