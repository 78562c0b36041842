"""SLAC in the launcher: the controller's CP measurements feed ``SlacService``; a match starts the SECC.

    link = SlacLink(controller, service_factory, start_secc)
    await link.run()          # until cancelled, or until the SECC it started stops (the SECC's error)

* CP: the controller measures CP every control tick (``controller.latest.pilot.state``); every change of
  the state letter is passed, in order, to ``SlacService.on_cp_state`` (B/C/D start matching, A resets).
* PWM: on a plug-in (B/C/D) with no session running and the oscillator off, 5 % duty is switched on
  (IEC 61851-1 Annex A / ISO 15118-3 §7: HLC is requested by the nominal 5 % duty cycle; the EV starts
  SLAC when it sees it); on unplug (A) with no session running it goes back to X1 (100 %).
* ``/vehicle/slac``: every SLAC status change is written to ``controller.slac_view`` (what the API serves).
* SECC: started (``start_secc()``, a coroutine that serves until cancelled) on the first match and kept
  running for the next cars: an SDP server is only useful once an EV has joined the logical network.
* ``CpLossTimeline``: how fast the output was made safe after the cable was pulled during energy
  transfer, on the controller's clock (a launcher-side record the full-flow tests read).

Nothing here imports ``iso15118``; the launcher passes the SECC in as ``start_secc``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evse_model import standards
from evse_slac.status import SlacStatus

if TYPE_CHECKING:
    from ccs_sim.controller import ChargerController
    from evse_slac.evse_slac import SlacService

logger = logging.getLogger(__name__)

OSCILLATOR_OFF_DUTY_PERCENT = 100.0  # X1: constant +12 V, no PWM (IEC 61851-1 Annex A)
PLUGGED_STATES = "BCD"
CP_LOST_STATES = "AEF"
SLAC_SIM_SETTLE_TIME_S = 0.0  # no PLC modem in simulation: the new key is in use at once
SLAC_QCA_SETTLE_TIME_S = 10.0  # QCA7000 firmware needs ~10 s after CM_SET_KEY (pyslac-notes §5.3)
CP_LOSS_LINE_PREFIX = "evse-main: CP loss"  # printed with a JSON timeline after each cable pull under load

ServiceFactory = Callable[[Callable[[SlacStatus], None], Callable[[SlacStatus], Awaitable[None]]], "SlacService"]


def build_slac_service(iface: str, evse_id: str, slac_config: Path | None, *, simulation: bool) -> ServiceFactory:
    """A factory for the real ``SlacService`` on ``iface`` with the settings file of ``--slac-config``.

    In simulation the settle delay after CM_SET_KEY is 0 s and the set-key confirmation is awaited at most
    2 s (the simulated EV emulates the modem's CM_SET_KEY.CNF); with a modem, 10 s as a QCA7000 needs."""
    from evse_slac.evse_slac import SlacService
    from evse_slac.pyslac_loader import load_slac_config

    config = load_slac_config(slac_config)

    def factory(on_status: Callable[[SlacStatus], None],
                on_matched: Callable[[SlacStatus], Awaitable[None]]) -> SlacService:
        extra: dict[str, Any] = {"set_key_timeout_s": 2.0} if simulation else {}
        return SlacService(iface, evse_id, config,
                           settle_time_s=SLAC_SIM_SETTLE_TIME_S if simulation else SLAC_QCA_SETTLE_TIME_S,
                           on_status=on_status, on_matched=on_matched, **extra)

    return factory


class SlacLink:
    """One interface: CP changes → SLAC; SLAC status → ``controller.slac_view``; first match → SECC."""

    def __init__(self, controller: ChargerController, service_factory: ServiceFactory,
                 start_secc: Callable[[], Coroutine[Any, Any, None]], *, hlc_pwm: bool = True,
                 on_cp_loss: Callable[[CpLossRecord], None] | None = None) -> None:
        self.controller = controller
        self.service = service_factory(self._publish, self._matched)
        self._start_secc = start_secc
        self.hlc_pwm = hlc_pwm
        self._changes: asyncio.Queue[str] = asyncio.Queue()
        self._last_letter: str | None = None
        self._secc_task: asyncio.Task[None] | None = None
        self._secc_exit: asyncio.Future[None] | None = None
        self._feeder: asyncio.Task[None] | None = None
        #: Supervision (evse_secc.supervision): SLAC serves once its service started; the controller-clock
        #: time at which the CP change being handled now began (None when idle).
        self.started = False
        self.cp_change_since_s: float | None = None
        self.cp_loss_timeline = CpLossTimeline(controller, on_cp_loss or _print_cp_loss)

    @property
    def secc_started(self) -> bool:
        return self._secc_task is not None

    async def run(self) -> None:
        """Serve until cancelled; returns or raises only when the SECC started on a match stops."""
        self._secc_exit = asyncio.get_running_loop().create_future()
        await self.service.start()
        self.started = True
        self.controller.tick_listeners.append(self.on_tick)
        self.on_tick()  # the state right now (the control loop may not have ticked yet)
        feeder = self._feeder = asyncio.create_task(self._feed_changes(), name="SLAC CP feed")
        try:
            await self._secc_exit
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
            if self.on_tick in self.controller.tick_listeners:
                self.controller.tick_listeners.remove(self.on_tick)
            if self._secc_task is not None and not self._secc_task.done():
                self._secc_task.cancel()
                await asyncio.gather(self._secc_task, return_exceptions=True)
            await self.service.close()

    def on_tick(self) -> None:
        """Tick listener (sync, cheap): queue the CP letter when it changed."""
        self.cp_loss_timeline.on_tick()
        latest = self.controller.latest
        if latest is None:
            return
        letter = latest.pilot.state
        if letter != self._last_letter:
            self._last_letter = letter
            self._changes.put_nowait(letter)

    async def _feed_changes(self) -> None:
        while True:
            letter = await self._changes.get()
            self.cp_change_since_s = self.controller.clock.now()
            try:
                await self._apply(letter)
            except Exception:  # a failing step must not stop the feed for the next plug-in
                logger.exception("SLAC: handling CP %s failed", letter)
            finally:
                self.cp_change_since_s = None

    def hang_reason(self, budget_s: float) -> str | None:
        """Why SLAC no longer follows the CP (its supervisor's hang check), or None while it does."""
        if self._feeder is not None and self._feeder.done():
            return "the CP feed task ended"
        since_s = self.cp_change_since_s
        if since_s is not None and self.controller.clock.now() - since_s > budget_s:
            return f"a CP change has been in handling for {self.controller.clock.now() - since_s:.2f} s " \
                   f"(budget {budget_s:.2f} s)"
        return None

    async def _apply(self, letter: str) -> None:
        controller = self.controller
        duty = controller.latest.duty_percent if controller.latest is not None else OSCILLATOR_OFF_DUTY_PERCENT
        if self.hlc_pwm and not controller.session_active:
            if letter in PLUGGED_STATES and duty >= OSCILLATOR_OFF_DUTY_PERCENT:
                await controller.set_pwm_duty(standards.CP_HLC_DUTY_PERCENT)
            elif letter == "A" and duty < OSCILLATOR_OFF_DUTY_PERCENT:
                await controller.set_pwm_duty(OSCILLATOR_OFF_DUTY_PERCENT)
        await self.service.on_cp_state(letter)

    def _publish(self, status: SlacStatus) -> None:
        self.controller.slac_view = status.as_json()

    async def _matched(self, status: SlacStatus) -> None:
        if self._secc_task is not None:
            return  # the SECC serves every car from the first match on
        logger.info("SLAC matched (EV %s): starting the SECC on %s", status.ev_mac, self.service.iface)
        self._secc_task = asyncio.create_task(self._start_secc(), name="SECC")
        self._secc_task.add_done_callback(self._secc_done)

    def _secc_done(self, task: asyncio.Task[None]) -> None:
        exit_future = self._secc_exit
        if exit_future is None or exit_future.done():
            return
        if task.cancelled():
            exit_future.cancel()
        elif (failure := task.exception()) is not None:
            exit_future.set_exception(failure)
        else:
            exit_future.set_result(None)


@dataclass(frozen=True)
class CpLossRecord:
    """The output's shutdown after the CP left B/C/D while the contactor was closed, on the controller's
    clock. ``*_after_s`` are upper bounds: the first control-loop sample that showed the condition."""

    cp_state: str
    at_s: float
    current_before_loss_A: float  # the last sample before the CP left B/C/D
    current_below_5A_after_s: float | None
    contactor_open_after_s: float | None

    def as_json(self) -> dict:
        return asdict(self)


class CpLossTimeline:
    """Tick listener: after a CP loss under load, when did the current fall below 5 A and the contactor open
    (IEC 61851-23 emergency shutdown: < 5 A within 30 ms; DESIGN: contactor open within 100 ms)."""

    GIVE_UP_S = 1.0

    def __init__(self, controller: ChargerController, report: Callable[[CpLossRecord], None]) -> None:
        self.controller = controller
        self.report = report
        self.records: list[CpLossRecord] = []
        self._was_closed_in_plugged_state = False
        self._previous_current_A = 0.0
        self._pending: dict | None = None

    def on_tick(self) -> None:
        m = self.controller.latest
        if m is None:
            return
        if self._pending is None:
            if m.pilot.state in CP_LOST_STATES and self._was_closed_in_plugged_state:
                self._pending = {"cp_state": m.pilot.state, "at_s": m.time_s,
                                 "current_before_loss_A": round(self._previous_current_A, 3),
                                 "current_below_5A_after_s": None, "contactor_open_after_s": None}
            self._was_closed_in_plugged_state = m.contactor_closed and m.pilot.state in PLUGGED_STATES
            self._previous_current_A = m.output_current_A
        pending = self._pending
        if pending is None:
            return
        elapsed_s = m.time_s - pending["at_s"]
        if pending["current_below_5A_after_s"] is None and m.output_current_A < standards.EMERGENCY_CURRENT_A:
            pending["current_below_5A_after_s"] = round(elapsed_s, 6)
        if pending["contactor_open_after_s"] is None and not m.contactor_closed:
            pending["contactor_open_after_s"] = round(elapsed_s, 6)
        done = pending["current_below_5A_after_s"] is not None and pending["contactor_open_after_s"] is not None
        if done or elapsed_s > self.GIVE_UP_S:
            record = CpLossRecord(**pending)
            self._pending = None
            self._was_closed_in_plugged_state = False
            self.records.append(record)
            self.report(record)


def _print_cp_loss(record: CpLossRecord) -> None:
    print(f"{CP_LOSS_LINE_PREFIX} {json.dumps(record.as_json())}", flush=True)
