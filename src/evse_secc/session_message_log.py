"""A per-session log of the decoded V2G messages, one JSON-lines file per charging session.

``SessionMessageLogCodec`` wraps the SECC's EXI codec (the package's pluggable ``IEXICodec``, so iso15118
is not patched): every message the SECC decodes (from the EV) or encodes (to the EV) is appended, decoded,
to ``<directory>/<session id>.jsonl``, where the session id is the controller's (the one in
``/status.session_id``, the session records and ``GET /sessions``). Messages outside a controller
session (SDP-less handshakes that never start one) go to ``no-session.jsonl``.

Each line: ``{"at": ISO-8601 UTC, "direction": "ev_to_evse" | "evse_to_ev", "namespace": …,
"message": "CurrentDemandReq", "body": {decoded JSON}}``.

On the SECC's event loop a message's time and session are taken when it passes the codec, and its line is
written on the loop's next turn (after the response has been sent: the SECC handles a request without
yielding), so the log costs the EV no response time; ``close`` writes what is still pending.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from iso15118.shared.iexi_codec import IEXICodec

from evse_secc.message_timing import message_name

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class SessionMessageLog:
    """Appends decoded messages to one file per session id (files opened lazily, flushed per line)."""

    def __init__(self, directory: Path, current_session_id: Callable[[], str | None],
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.directory = directory
        self._current_session_id = current_session_id
        self._now = now
        self._files: dict[str, IO[str]] = {}
        #: Messages not written yet: (time, direction, namespace, decoded JSON, session id).
        self._pending: list[tuple[datetime, str, str, str, str | None]] = []
        directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, session_id: str | None) -> Path:
        return self.directory / f"{_SAFE_NAME.sub('_', session_id or 'no-session')}.jsonl"

    def append(self, direction: str, namespace: str, message_json: str) -> None:
        """Log a message now (no event loop running) or on the running loop's next turn."""
        entry = (self._now(), direction, namespace, message_json, self._current_session_id())
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._pending.append(entry)
            self.flush()
            return
        if not self._pending:
            loop.call_soon(self.flush)
        self._pending.append(entry)

    def flush(self) -> None:
        """Write the pending messages, oldest first, and flush each file they went to once (a request and its
        response: one write to the disk, not two)."""
        pending, self._pending = self._pending, []
        written: dict[int, IO[str]] = {}
        for entry in pending:
            file = self._write(*entry)
            if file is not None:
                written[id(file)] = file
        for file in written.values():
            if file.closed:  # rotated out by a later line of this batch (closing flushed it)
                continue
            try:
                file.flush()
            except (OSError, ValueError) as error:  # a full disk must not stop the charging session
                log.warning("V2G message log: %s", error)

    def _write(self, at: datetime, direction: str, namespace: str, message_json: str,
               session_id: str | None) -> IO[str] | None:
        """Write one line (not flushed); the file it went to, or None when it could not be written."""
        try:
            body = json.loads(message_json)
            key = session_id or "no-session"
            file = self._files.get(key)
            if file is None:
                if len(self._files) > 16:  # keep few handles: older sessions are done
                    for old in list(self._files)[:-8]:
                        self._files.pop(old).close()
                file = self._files[key] = self.path_for(session_id).open("a", encoding="utf-8")
            file.write(json.dumps({"at": at.isoformat(), "direction": direction, "namespace": namespace,
                                   "message": message_name(body), "body": body}, separators=(",", ":")) + "\n")
            return file
        except (OSError, ValueError) as error:  # a full disk must not stop the charging session
            log.warning("V2G message log: %s", error)
            return None

    def close(self) -> None:
        self.flush()
        for file in self._files.values():
            file.close()
        self._files.clear()


class SessionMessageLogCodec(IEXICodec):
    """An ``IEXICodec`` that writes every decoded/encoded message into the session's log."""

    def __init__(self, inner: IEXICodec, message_log: SessionMessageLog) -> None:
        self._inner = inner
        self._log = message_log

    def decode(self, stream: bytes, namespace: str) -> str:
        decoded = self._inner.decode(stream, namespace)
        self._log.append("ev_to_evse", namespace, decoded)
        return decoded

    def encode(self, message: str, namespace: str) -> bytes:
        encoded = self._inner.encode(message, namespace)
        self._log.append("evse_to_ev", namespace, message)
        return encoded

    def get_version(self) -> str:
        return self._inner.get_version()
