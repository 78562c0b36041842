"""The cable check an ISO 15118 EV asks for (DIN / -2 CableCheckReq, -20 DC_CableCheckReq), run on the charger.

``start`` runs ``ChargerPort.cable_check`` (contactor closed, IEC 61851-23 CC.1 test voltage at ≤ 2 A, a real
IMD reading, then the supply off until the output is below 60 V) as a background task, because the EV keeps
asking while it runs; ``status`` answers None while it measures and discharges, then the isolation level
(VALID / WARNING / FAULT). A failed check raises its fault in the charger while the session is still ours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from evse_hal.iso15118 import compat

compat.install()  # before the first iso15118 import (pydantic.v1 hook; see that module)

from iso15118.shared.messages.enums import IsolationLevel  # noqa: E402

from evse_hal.iso15118.charger_port import ChargerPort  # noqa: E402
from evse_model.faults import CABLE_CHECK_FAILED  # noqa: E402
from evse_model.session_errors import CommandRefused, SessionAbort  # noqa: E402

logger = logging.getLogger(__name__)


class CableCheckRun:
    """The cable check of the present session; ``session_is_ours`` says whether a fault may still be raised
    for it (the charger's session is the SECC's)."""

    def __init__(self, charger: ChargerPort, session_is_ours: Callable[[], bool]) -> None:
        self.charger = charger
        self._session_is_ours = session_is_ours
        self._task: asyncio.Task[None] | None = None
        #: The result (None: not measured yet).
        self.isolation: IsolationLevel | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def reset(self) -> None:
        """A new session: the previous session's check must not command this one's supply."""
        if self.running:
            assert self._task is not None
            self._task.cancel()
        self._task, self.isolation = None, None

    def start(self, ev_max_voltage_V: float | None) -> None:
        self.isolation = None
        self._task = asyncio.get_running_loop().create_task(self._run(ev_max_voltage_V), name="hlc-cable-check")

    def status(self) -> IsolationLevel | None:
        """INVALID before a check started, None while it runs, then its isolation level."""
        if self._task is None:
            return IsolationLevel.INVALID
        if not self._task.done():
            return None
        return self.isolation

    async def _run(self, ev_max_voltage_V: float | None) -> None:
        try:
            level = await self.charger.cable_check(ev_max_voltage_V)
            self.isolation = IsolationLevel.WARNING if level == "WARNING" else IsolationLevel.VALID
        except (SessionAbort, CommandRefused) as failed:
            self.isolation = IsolationLevel.FAULT
            name = failed.fault if isinstance(failed, SessionAbort) else CABLE_CHECK_FAILED
            if self._session_is_ours():
                await self.charger.raise_fault(name, source="hlc", message=str(failed))
        except asyncio.CancelledError:
            self.isolation = IsolationLevel.INVALID
            raise
        except Exception as error:  # the session must end safely whatever went wrong
            logger.exception("cable check failed")
            self.isolation = IsolationLevel.FAULT
            if self._session_is_ours():
                await self.charger.raise_fault(CABLE_CHECK_FAILED, source="hlc", message=repr(error))
