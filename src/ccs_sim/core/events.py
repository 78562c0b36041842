"""One event bus for the controller: session start, session end, fault, and every control tick.

Listeners (records, metrics, logs, the dashboard stream, the SECC glue) register on a topic's list; a
listener may be a plain function or a coroutine function. One loop notifies them all, in registration
order. A topic that ``contains_errors`` logs a failing listener and goes on (a session's end must reach
every listener: the records); elsewhere the error propagates to the code that published the event.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Listener = Callable[..., Awaitable[None] | None]  # TICK listeners take no argument


class Topic(str, enum.Enum):
    SESSION_START = "session_start"  # payload: the ActiveSession, once it owns the output
    SESSION_END = "session_end"      # payload: the final SessionSummary, once the output is off
    FAULT = "fault"                  # payload: the Fault (evse_model.faults), once the supply is off
    TICK = "tick"                    # no payload: a control step's measurements are in


#: Topics whose listeners' errors are logged, not raised: a session's record must be written whatever else fails.
ERROR_CONTAINED_TOPICS = frozenset({Topic.SESSION_END})


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[Topic, list[Listener]] = {topic: [] for topic in Topic}

    def listeners(self, topic: Topic) -> list[Listener]:
        """The topic's listener list (append to subscribe, remove to unsubscribe)."""
        return self._listeners[topic]

    async def publish(self, topic: Topic, *payload: Any) -> None:
        """Notify every listener of ``topic`` with ``payload`` (awaiting those that return a coroutine)."""
        contained = topic in ERROR_CONTAINED_TOPICS
        for listener in self._listeners[topic]:
            try:
                result = listener(*payload)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                if not contained:
                    raise
                log.exception("%s listener %r failed", topic.value, listener)
