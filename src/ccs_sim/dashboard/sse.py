"""Server-Sent Events for ``GET /stream``: the wire format and the paced snapshot generator.

Wire format (https://html.spec.whatwg.org/multipage/server-sent-events.html), one event per snapshot::

    retry: 2000                  (first event only: reconnect after 2 s)
    id: 17
    event: snapshot
    data: {"seq": 17, "status": {...}, "meter": {...}, "bms": {...}, ...}
    <blank line>

The pacing is in wall time (``rate_hz`` events per wall second whatever the simulation speed), on
fixed deadlines so it does not drift; a slow client gets the newest state, never a backlog.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

#: Default events per second: above the issue's floor of 4/s, light enough for many open pages.
DEFAULT_RATE_HZ = 5.0
MIN_RATE_HZ = 0.2
MAX_RATE_HZ = 20.0
RECONNECT_MS = 2000
#: Longest single wait, so a stream notices ``should_stop`` (server shutting down) quickly at any rate.
STOP_POLL_S = 0.25


def format_event(data: dict[str, Any] | str, event: str = "snapshot", event_id: int | None = None,
                 retry_ms: int | None = None) -> str:
    """One SSE event; ``data`` as compact JSON on a single ``data:`` line (JSON has no raw newlines). A ``str``
    is JSON already encoded that way (``SnapshotCache.event_data``: one encoding shared by every subscriber)."""
    lines = []
    if retry_ms is not None:
        lines.append(f"retry: {retry_ms}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    if not isinstance(data, str):
        data = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
    lines.append("data: " + data)
    return "\n".join(lines) + "\n\n"


async def snapshot_events(snapshot: Callable[[int], dict[str, Any] | str], rate_hz: float,
                          sleep: Callable[[float], Awaitable[None]],
                          monotonic: Callable[[], float] = time.monotonic,
                          limit: int | None = None,
                          should_stop: Callable[[], bool] = lambda: False) -> AsyncIterator[str]:
    """Yield ``limit`` events (forever if None), the first at once, then one every ``1 / rate_hz`` seconds;
    end early once ``should_stop()`` is true (checked at least every ``STOP_POLL_S``)."""
    period_s = 1.0 / rate_hz
    sequence = 0
    next_at_s = monotonic()
    while (limit is None or sequence < limit) and not should_stop():
        sequence += 1
        yield format_event(snapshot(sequence), event_id=sequence, retry_ms=RECONNECT_MS if sequence == 1 else None)
        if limit is not None and sequence >= limit:
            return
        next_at_s += period_s
        now_s = monotonic()
        if next_at_s < now_s:  # fell behind (slow client or busy loop): start a new schedule, no burst
            next_at_s = now_s + period_s
        while now_s < next_at_s:
            if should_stop():
                return
            await sleep(min(next_at_s - now_s, STOP_POLL_S))
            now_s = monotonic()
