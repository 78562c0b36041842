"""Readings the front answers from a copy: fetched from the controller at most once per ``max_age_s`` (one
control period, wall time), one fetch shared by every reader waiting for it, and dropped by every command the front
forwards (a command's effect shows in the next reading, as with the controller's own per-tick cache)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

#: The readings served from a copy (GET, no query string): their bodies change only with the control tick.
CACHED_READINGS = frozenset({"/status", "/meter", "/dashboard/snapshot"})


@dataclass(frozen=True)
class Reading:
    """One answer of the controller, as it gave it."""

    status_code: int
    content_type: bytes
    body: bytes
    fetched_s: float


Fetch = Callable[[str], Awaitable[Reading]]


class ViewCache:
    """The latest answer per path; ``fetch(path)`` asks the controller (only 200 answers are kept)."""

    def __init__(self, fetch: Fetch, max_age_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.fetch = fetch
        self.max_age_s = max_age_s
        self.monotonic = monotonic
        self._readings: dict[str, Reading] = {}
        self._in_flight: dict[str, asyncio.Future[Reading]] = {}
        #: Bumped by every forwarded command: a fetch begun before it is not kept.
        self.generation = 0
        #: Fetches made per path (tests and benchmarks count them).
        self.fetches: dict[str, int] = {}

    def invalidate(self) -> None:
        """A command went through: the next reading of every path is fetched anew."""
        self.generation += 1
        self._readings.clear()
        self._in_flight.clear()

    async def get(self, path: str) -> Reading:
        reading = self._readings.get(path)
        if reading is not None and self.monotonic() - reading.fetched_s < self.max_age_s:
            return reading
        in_flight = self._in_flight.get(path)
        if in_flight is not None:
            return await asyncio.shield(in_flight)
        future: asyncio.Future[Reading] = asyncio.get_running_loop().create_future()
        self._in_flight[path] = future
        generation = self.generation
        try:
            self.fetches[path] = self.fetches.get(path, 0) + 1
            reading = await self.fetch(path)
        except BaseException as error:
            if self._in_flight.get(path) is future:
                del self._in_flight[path]
            future.set_exception(error)
            future.exception()  # retrieved here: a fetch nobody else waited for must not warn
            raise
        if self._in_flight.get(path) is future:
            del self._in_flight[path]
        if generation == self.generation and reading.status_code == 200:
            self._readings[path] = reading
        future.set_result(reading)
        return reading
