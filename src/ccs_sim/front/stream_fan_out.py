"""One upstream ``GET /stream`` for every ``/stream`` subscriber of the front.

The controller's ``/stream`` (``ccs_sim.dashboard.sse``) sends a snapshot event ``rate`` times per wall second.
Fifty dashboards through the front cost the controller one stream, not fifty: the front reads one upstream stream
at the highest pace (``MAX_RATE_HZ``: the newest snapshot is at most 50 ms old) and paces each subscriber itself
with the controller's own generator (``sse.snapshot_events``): the first event at once (with ``retry:``), then one
every ``1 / rate`` wall seconds, each the newest snapshot with the subscriber's own sequence in ``id:`` and
``"seq"``, at most ``limit`` events, never a backlog. The upstream stream opens with the first subscriber and
closes with the last; when it ends by itself (the controller shuts down), every subscriber's stream ends too
(EventSource clients reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from ccs_sim.dashboard.sse import MAX_RATE_HZ, STOP_POLL_S, snapshot_events

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


class StreamFanOut:
    """The one upstream stream and its newest snapshot; ``subscribe(rate, limit)`` yields one subscriber's SSE."""

    def __init__(self, open_upstream: OpenUpstream, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.open_upstream = open_upstream
        self.sleep = sleep
        self.monotonic = monotonic
        self.latest: str | None = None
        self.ended = False
        self.first_arrived = asyncio.Event()
        self.subscribers = 0
        self.task: asyncio.Task[None] | None = None
        #: Upstream streams opened so far (tests and benchmarks count them).
        self.opened = 0
        self.closing = False

    @property
    def upstream_open(self) -> bool:
        return self.task is not None and not self.task.done()

    async def _pump(self) -> None:
        try:
            async for data in event_data_lines(self.open_upstream(MAX_RATE_HZ)):
                self.latest = data
                self.first_arrived.set()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the controller went away: its subscribers' streams end
            log.info("upstream /stream ended: %s", error)
        finally:
            self.ended = True
            self.first_arrived.set()  # a subscriber waiting for the first snapshot learns it will not come

    def _join(self) -> None:
        if not self.upstream_open:
            self.latest, self.ended = None, False
            self.first_arrived = asyncio.Event()
            self.task = asyncio.get_running_loop().create_task(self._pump())
            self.opened += 1
        self.subscribers += 1

    def _leave(self) -> None:
        self.subscribers -= 1
        if self.subscribers == 0 and self.task is not None:
            self.task.cancel()

    def close(self) -> None:
        """End every subscriber's stream (the front shuts down)."""
        self.closing = True
        if self.task is not None:
            self.task.cancel()

    def _event_data(self, sequence: int) -> str:
        assert self.latest is not None
        return _SEQUENCE_PREFIX.sub(f'{{"seq":{int(sequence)}', self.latest, count=1)

    async def subscribe(self, rate_hz: float, limit: int | None) -> AsyncIterator[str]:
        self._join()
        try:
            while not self.first_arrived.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.first_arrived.wait(), STOP_POLL_S)
                if self.closing:
                    return
            if self.latest is None:
                return  # the upstream ended before its first event
            async for event in snapshot_events(self._event_data, rate_hz, self.sleep, self.monotonic, limit=limit,
                                               should_stop=lambda: self.closing or self.ended):
                yield event
        finally:
            self._leave()
