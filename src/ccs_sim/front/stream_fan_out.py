"""One upstream ``GET /stream`` per pace, fanned out to every subscriber of the front.

The controller's ``/stream`` (``ccs_sim.dashboard.sse``) sends a snapshot event ``rate`` times per wall second.
Fifty dashboards through the front cost the controller one stream, not fifty: the front reads one upstream stream
per ``rate``, and each subscriber gets every event from it with its own sequence (``id:`` and ``"seq"`` count
from 1 per subscriber, the first event carries ``retry:``, as the controller's own stream writes them), the
newest one at once when it subscribes, and at most ``limit`` events. A slow subscriber gets the newest event,
never a backlog. The upstream stream ends when its last subscriber leaves; when it ends by itself (the controller
shuts down), every subscriber's stream ends too (EventSource clients reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable

from ccs_sim.dashboard.sse import RECONNECT_MS, format_event

log = logging.getLogger(__name__)

#: The sequence a ``data:`` line of the controller's stream begins with (``SnapshotCache.event_data``).
_SEQUENCE_PREFIX = re.compile(r'^\{"seq":\d+')

#: Opens the controller's ``/stream?rate=...`` and yields its body in chunks.
OpenUpstream = Callable[[float], AsyncIterator[bytes]]


def event_data_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """The ``data:`` of each ``snapshot`` event of an SSE body (events end with a blank line)."""

    async def lines() -> AsyncIterator[str]:
        pending = b""
        async for chunk in chunks:
            pending += chunk
            while b"\n\n" in pending:
                event, pending = pending.split(b"\n\n", 1)
                data = [line[6:] for line in event.split(b"\n") if line.startswith(b"data: ")]
                kind = [line[7:] for line in event.split(b"\n") if line.startswith(b"event: ")]
                if data and (not kind or kind[0] == b"snapshot"):
                    yield b"\n".join(data).decode()

    return lines()


class Upstream:
    """One upstream stream at one pace and its subscribers' newest-event slots."""

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = rate_hz
        self.latest: str | None = None
        self.version = 0
        self.ended = False
        self.changed = asyncio.Condition()
        self.subscribers = 0
        self.task: asyncio.Task[None] | None = None


class StreamFanOut:
    """The upstream streams by pace; ``subscribe(rate, limit)`` yields one subscriber's SSE text."""

    def __init__(self, open_upstream: OpenUpstream) -> None:
        self.open_upstream = open_upstream
        self.upstreams: dict[float, Upstream] = {}
        #: Upstream streams opened so far (tests and benchmarks count them).
        self.opened = 0
        self.closing = False

    async def _pump(self, upstream: Upstream) -> None:
        try:
            async for data in event_data_lines(self.open_upstream(upstream.rate_hz)):
                async with upstream.changed:
                    upstream.latest = data
                    upstream.version += 1
                    upstream.changed.notify_all()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the controller went away: its subscribers' streams end
            log.info("upstream /stream at %g/s ended: %s", upstream.rate_hz, error)
        finally:
            upstream.ended = True
            if self.upstreams.get(upstream.rate_hz) is upstream:
                del self.upstreams[upstream.rate_hz]
            async with upstream.changed:
                upstream.changed.notify_all()

    def _join(self, rate_hz: float) -> Upstream:
        upstream = self.upstreams.get(rate_hz)
        if upstream is None:
            upstream = self.upstreams[rate_hz] = Upstream(rate_hz)
            upstream.task = asyncio.get_running_loop().create_task(self._pump(upstream))
            self.opened += 1
        upstream.subscribers += 1
        return upstream

    def _leave(self, upstream: Upstream) -> None:
        upstream.subscribers -= 1
        if upstream.subscribers == 0 and upstream.task is not None and not upstream.ended:
            if self.upstreams.get(upstream.rate_hz) is upstream:
                del self.upstreams[upstream.rate_hz]
            upstream.task.cancel()

    def close(self) -> None:
        """End every subscriber's stream (the front shuts down)."""
        self.closing = True
        for upstream in list(self.upstreams.values()):
            if upstream.task is not None:
                upstream.task.cancel()

    async def subscribe(self, rate_hz: float, limit: int | None) -> AsyncIterator[str]:
        upstream = self._join(rate_hz)
        try:
            sent = 0
            seen_version = 0
            while limit is None or sent < limit:
                async with upstream.changed:
                    while upstream.version == seen_version and not upstream.ended:
                        await upstream.changed.wait()
                    if upstream.version == seen_version:
                        return  # ended, nothing newer
                    seen_version, data = upstream.version, upstream.latest
                assert data is not None
                sent += 1
                yield format_event(_SEQUENCE_PREFIX.sub(f'{{"seq":{sent}', data, count=1), event_id=sent,
                                   retry_ms=RECONNECT_MS if sent == 1 else None)
        finally:
            with contextlib.suppress(Exception):
                self._leave(upstream)
