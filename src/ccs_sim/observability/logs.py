"""Structured logging: every record carries the id of the session it belongs to; text or JSON lines.

The session id lives in a context variable. ``SessionLogBinder`` sets it where the work happens:

- in the session's own task, from a session-start listener (the listener runs inside that task, so the
  value stays with the task and with every task it creates, e.g. a wind-down it starts);
- in the control-loop task, from a tick listener (the loop serves whichever session is open; it is
  cleared again once the session's record is final).

``SessionContextFilter`` copies the variable into each ``LogRecord`` as ``session_id`` (None outside a
session); ``JsonFormatter`` writes one JSON object per line with time, level, logger, message,
session_id, the exception if any, and any ``extra={...}`` fields.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TextIO

from evse_model.session import SessionSummary

if TYPE_CHECKING:
    from ccs_sim.controller import ActiveSession, ChargerController

session_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("ccs_session_id", default=None)

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [session %(session_id)s]: %(message)s"
#: Attributes every LogRecord has; anything else on a record came from ``extra=`` and goes into the JSON.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "session_id", "taskName"}


class SessionContextFilter(logging.Filter):
    """Adds ``record.session_id`` (unless the caller passed one in ``extra``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "session_id"):
            record.session_id = session_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "session_id": getattr(record, "session_id", session_id_var.get()),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and key not in entry:
                entry[key] = value
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(log_format: LogFormat = "text", level: int | str = logging.INFO,
                      stream: TextIO | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one that writes ``log_format`` to ``stream`` (stderr)."""
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', got {log_format!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(SessionContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


class SessionLogBinder:
    """Keeps ``session_id_var`` set to the open session in the session task and the control loop."""

    def __init__(self, controller: ChargerController) -> None:
        self.controller = controller
        self._open_id: str | None = None

    def attach(self) -> SessionLogBinder:
        self.controller.session_start_listeners.append(self.on_session_start)
        self.controller.tick_listeners.append(self.on_tick)
        self.controller.session_end_listeners.append(self.on_session_end)
        return self

    def detach(self) -> None:
        for listeners, listener in ((self.controller.session_start_listeners, self.on_session_start),
                                    (self.controller.tick_listeners, self.on_tick),
                                    (self.controller.session_end_listeners, self.on_session_end)):
            if listener in listeners:
                listeners.remove(listener)

    def on_session_start(self, session: ActiveSession) -> None:
        self._open_id = session.session_id
        session_id_var.set(session.session_id)

    def on_tick(self) -> None:
        if session_id_var.get() != self._open_id:
            session_id_var.set(self._open_id)

    def on_session_end(self, summary: SessionSummary) -> None:
        if self._open_id == summary.session_id:
            self._open_id = None
