"""The websocket as the ``ocpp`` package's ChargePoint sees it (``recv`` / ``send``), for ``OcppLink``: every
frame recorded in the ``FrameLog`` (direction, message type, unique id, action, payload; an answer is matched to
its CALL's action by the unique id), and every outgoing CALLRESULT checked against its schema with date-times
enforced (``date_time_check``): one that fails goes out as a CALLERROR InternalError instead. The CALLs the
station sends are checked earlier, in ``OcppLink.call``, before they reach the ChargePoint's lock.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ocpp.messages import MessageType
from websockets.asyncio.client import ClientConnection

from ccs_sim.ocpp.date_time_check import OutgoingPayloadRefused, check_outgoing
from ccs_sim.ocpp.frame_log import FrameLog

log = logging.getLogger(__name__)


class FramedConnection:
    """The websocket as the ChargePoint sees it (``recv``/``send``): each frame recorded, outgoing CALLRESULTs
    checked for date-times (the CALLs are checked in ``OcppLink.call`` before they reach the lock)."""

    def __init__(self, websocket: ClientConnection, version: str, frame_log: FrameLog) -> None:
        self.websocket = websocket
        self.version = version
        self.frame_log = frame_log
        self._actions: dict[str, str] = {}  # unique id -> action, both directions' CALLs (for the answers)

    def _describe(self, raw: str | bytes) -> tuple[int, str, str, Any] | None:
        try:
            frame = json.loads(raw)
            message_type_id, unique_id = int(frame[0]), str(frame[1])
        except (ValueError, TypeError, IndexError, KeyError):
            return None
        if message_type_id == MessageType.Call and len(frame) >= 4:
            self._actions[unique_id] = str(frame[2])
            return message_type_id, unique_id, str(frame[2]), frame[3]
        action = self._actions.pop(unique_id, "?")
        if message_type_id == MessageType.CallError and len(frame) >= 4:
            return message_type_id, unique_id, action, {"code": frame[2], "description": frame[3],
                                                        "details": frame[4] if len(frame) > 4 else {}}
        return message_type_id, unique_id, action, frame[2] if len(frame) > 2 else None

    async def recv(self) -> str | bytes:
        raw = await self.websocket.recv()
        described = self._describe(raw)
        if described is not None:
            self.frame_log.record("received", *described)
        return raw

    async def send(self, raw: str) -> None:
        described = self._describe(raw)
        if described is not None and described[0] == MessageType.CallResult:
            message_type_id, unique_id, action, payload = described
            try:
                check_outgoing(self.version, message_type_id, action, payload)
            except OutgoingPayloadRefused as refusal:
                log.error("OCPP: %s", refusal)
                self.frame_log.count_error("refused_payload")
                raw = json.dumps([MessageType.CallError, unique_id, "InternalError", str(refusal)[:255], {}])
                described = self._describe(raw)
        await self.websocket.send(raw)
        if described is not None:
            self.frame_log.record("sent", *described)
