"""The charger-side pieces of one ISO 15118 session that are not messages: the session driver the charger
records the session with, and our own charge-loop watchdog."""

from __future__ import annotations

import asyncio
from typing import Any

#: No request for this long during energy transfer → COMMUNICATION_TIMEOUT. IEC 61851-25 requires an error
#: shutdown after 1 s without valid data (standards.md §2.4); iso15118's own sequence timer is 60 s.
CHARGE_LOOP_WATCHDOG_S = 1.0
#: A control tick this much later than the one before means our own event loop did not run (CPU contention):
#: a request the EV sent meanwhile waits unread in the socket, so that time is not the EV's silence.
EVENT_LOOP_STALL_S = 0.1


class HlcSessionDriver:
    """The charger-side driver of a session whose flow is the SECC's (source ``hlc``).

    The SECC runs the protocol and ``HalEVSEController`` turns its callbacks into charger primitives; the
    charger still needs a driver for the session it records. This one does nothing by itself: it waits until
    the SECC's side ends the session (the charger's ``end_session`` / ``raise_fault`` cancel it), like the
    simulated car's script waits for its duration. ``finish`` releases it when nothing else ended it."""

    source = "hlc"

    def __init__(self) -> None:
        self._done = asyncio.Event()

    async def run(self, charger: Any, session: Any) -> None:
        await self._done.wait()

    def finish(self) -> None:
        self._done.set()


class ChargeLoopWatchdog:
    """No CurrentDemand/ChargeLoop request for ``timeout_s`` during energy transfer → the EV is silent.

    Checked every control tick; a tick that came late because our own event loop stalled does not count
    as the EV's silence (its request may be waiting unread in the socket)."""

    def __init__(self, timeout_s: float = CHARGE_LOOP_WATCHDOG_S) -> None:
        self.timeout_s = timeout_s
        self.armed = False
        self.last_request_s = 0.0
        self._last_tick_s: float | None = None

    def note_request(self, now_s: float) -> None:
        self.last_request_s = now_s

    def tick(self, now_s: float, control_period_s: float, session_running: bool = True) -> float | None:
        """Called every control tick; the EV's silence in seconds when it is over the limit (then disarmed)."""
        previous_tick_s, self._last_tick_s = self._last_tick_s, now_s
        if not (self.armed and session_running):
            return None
        if previous_tick_s is not None and now_s - previous_tick_s > EVENT_LOOP_STALL_S:
            self.last_request_s += now_s - previous_tick_s - control_period_s
        silence_s = now_s - self.last_request_s
        if silence_s > self.timeout_s:
            self.armed = False
            return silence_s
        return None
