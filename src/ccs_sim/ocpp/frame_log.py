"""What went over the OCPP link: the last frames (for GET /ocpp), a JSON-lines file per charging session beside
the V2G log (``<data_dir>/ocpp/<session id>.jsonl``; frames outside a session in ``no-session.jsonl``) and the
Prometheus counters (frames sent/received by type and action, errors by kind).

Each line / entry: ``{"at": ISO-8601 UTC, "direction": "sent" | "received", "type": "CALL" | "CALLRESULT" |
"CALLERROR", "id": unique id, "action": …, "payload": {…}}`` (a CALLERROR's payload: code, description, details).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

FRAME_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}
#: Frames kept in memory for GET /ocpp.
RECENT_FRAMES = 50
#: Most distinct action labels in the counters (the CSMS chooses action names; the rest count as "other").
MAX_ACTION_LABELS = 64
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class FrameLog:
    """Records every frame: memory (last ``RECENT_FRAMES``), the session's file (when a directory is given),
    counters. Writing never raises: a full disk must not stop the link."""

    def __init__(self, directory: Path | None = None, current_session_id: Callable[[], str | None] = lambda: None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.directory = directory
        self._current_session_id = current_session_id
        self._now = now
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT_FRAMES)
        self.sent: Counter[tuple[str, str]] = Counter()
        self.received: Counter[tuple[str, str]] = Counter()
        self.errors: Counter[str] = Counter()
        self._actions: set[str] = set()
        self._files: dict[str, IO[str]] = {}
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, session_id: str | None) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{_SAFE_NAME.sub('_', session_id or 'no-session')}.jsonl"

    def _label(self, action: str) -> str:
        if action in self._actions or len(self._actions) < MAX_ACTION_LABELS:
            self._actions.add(action)
            return action
        return "other"

    def record(self, direction: str, message_type_id: int, unique_id: str, action: str, payload: Any) -> None:
        kind = FRAME_TYPES.get(message_type_id, str(message_type_id))
        entry = {"at": self._now().isoformat(), "direction": direction, "type": kind, "id": unique_id,
                 "action": action, "payload": payload}
        self.recent.append(entry)
        (self.sent if direction == "sent" else self.received)[(kind, self._label(action))] += 1
        if kind == "CALLERROR":
            self.count_error("callerror_" + direction)
        self._write(entry)

    def count_error(self, kind: str) -> None:
        """``kind``: a fixed name chosen by the link (timeout, refused_payload, connect_failed, ...)."""
        self.errors[kind] += 1

    def _write(self, entry: dict[str, Any]) -> None:
        if self.directory is None:
            return
        try:
            session_id = self._current_session_id()
            key = session_id or "no-session"
            file = self._files.get(key)
            if file is None:
                if len(self._files) > 16:  # keep few handles: older sessions are done
                    for old in list(self._files)[:-8]:
                        self._files.pop(old).close()
                path = self.path_for(session_id)
                assert path is not None
                file = self._files[key] = path.open("a", encoding="utf-8")
            file.write(json.dumps(entry, separators=(",", ":"), default=str) + "\n")
            file.flush()
        except (OSError, ValueError) as error:
            log.warning("OCPP frame log: %s", error)

    def close(self) -> None:
        for file in self._files.values():
            file.close()
        self._files.clear()

    def write_metrics(self, families: list[Metric]) -> None:
        """Appends the OCPP families for ``/metrics`` (``ccs_ocpp_*``), built from the counts now."""
        sent = CounterMetricFamily("ccs_ocpp_frames_sent_total", "OCPP frames sent, by type and action.",
                                   labels=["type", "action"])
        for (kind, action), count in sorted(self.sent.items()):
            sent.add_metric([kind, action], count)
        received = CounterMetricFamily("ccs_ocpp_frames_received_total", "OCPP frames received, by type and action.",
                                       labels=["type", "action"])
        for (kind, action), count in sorted(self.received.items()):
            received.add_metric([kind, action], count)
        errors = CounterMetricFamily(
            "ccs_ocpp_errors_total",
            "OCPP link errors: CALLERRORs, call timeouts, refused outgoing payloads, failed connects.", labels=["kind"])
        for kind, count in sorted(self.errors.items()):
            errors.add_metric([kind], count)
        families.extend((sent, received, errors))
