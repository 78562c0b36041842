"""The charger-side pieces of one ISO 15118 session that are not messages: the session driver the charger
records the session with, our own charge-loop watchdog, and ``HlcSessionLink``, the SECC glue's session
handling (start and end of the charger's session, the tick handler, the API's vehicle views)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from evse_hal.iso15118.charger_port import ChargerPort, ChargingSession
from evse_hal.iso15118.sim_body import SimulatedEvStackBody
from evse_hal.iso15118.views import bms_view_from_ev_data, energy_service_name, enum_value, iso15118_view
from evse_model import standards
from evse_model.faults import COMMUNICATION_TIMEOUT, HLC_FAILURE
from evse_model.session import EndReason, Phase, SessionParams, Stage
from evse_model.session_errors import CommandRefused

logger = logging.getLogger(__name__)

#: No request for this long during energy transfer → COMMUNICATION_TIMEOUT. IEC 61851-25 requires an error
#: shutdown after 1 s without valid data (standards.md §2.4); iso15118's own sequence timer is 60 s.
CHARGE_LOOP_WATCHDOG_S = 1.0
#: A control tick this much later than the one before means our own event loop did not run (CPU contention):
#: a request the EV sent meanwhile waits unread in the socket, so that time is not the EV's silence.
EVENT_LOOP_STALL_S = 0.1
#: How often the API's vehicle views are rebuilt while the EV repeats a request (charge loop, precharge).
VIEW_REFRESH_S = 0.1
#: Session stages in which energy transfer is under way (the contactor must be closed).
ENERGY_TRANSFER_STAGES = (Stage.CURRENT_RAMP, Stage.CHARGING)


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


class HlcSessionLink:
    """The charger's session behind one SECC communication session: the SECC glue's session handling.

    A new communication session (SupportedAppProtocol / SessionSetup) starts a session in the charger (source
    ``hlc``, phase HANDSHAKE, 5 % PWM, the simulated body plugged in on the sim adapter); a successful
    SessionStop ends it COMPLETE, anything abnormal raises HLC_FAILURE. Every control tick runs the
    charge-loop watchdog and ends the session when the output was opened under energy transfer. The API's
    ``/vehicle/bms`` and ``/vehicle/iso15118`` views are rebuilt from the EV's data as the messages come."""

    def __init__(self, charger: ChargerPort, watchdog_s: float = CHARGE_LOOP_WATCHDOG_S) -> None:
        self.charger = charger
        self.watchdog = ChargeLoopWatchdog(watchdog_s)
        self.comm_session: Any = None
        self.session: ChargingSession | None = None
        self.driver: HlcSessionDriver | None = None
        #: Why the charger refused to start the session (the EV is refused at cable check), else None.
        self.refusal: str | None = None
        self.energy_transfer = False
        self.ev_stopping = False
        self.authorized: bool | None = None
        self.started_at: datetime | None = None
        self.last_message_at: datetime | None = None
        self._views_built_s = float("-inf")
        self._background: set[asyncio.Task[Any]] = set()
        #: The EV stack's body on the simulated adapter (None on real hardware).
        self.sim_body = SimulatedEvStackBody.on(charger.hw, charger.evse_max_voltage_V, charger.evse_max_current_A)
        charger.tick_listeners.append(self.on_tick)

    def own_session_active(self) -> bool:
        charger = self.charger
        return self.session is not None and charger.session is self.session and charger.session_active

    async def begin(self, comm_session: Any, protocol_name: str | None) -> None:
        """A new SECC communication session: a new session in the controller (phase HANDSHAKE)."""
        self.comm_session = comm_session
        self.session, self.driver, self.refusal = None, None, None
        self.energy_transfer = self.ev_stopping = self.watchdog.armed = False
        self.authorized = None
        driver = HlcSessionDriver()
        charger = self.charger
        try:
            session = charger.start_session(SessionParams(target_voltage_V=0.0, initial_current_A=0.0,
                                                          duration_s=0.0), driver)
        except CommandRefused as refused:
            self.refusal = str(refused)
            logger.error("HLC session not started in the controller: %s; the EV will be refused at cable check",
                         refused)
            return
        self.session, self.driver = session, driver
        self.started_at = charger.clock.utcnow()
        session.ev_info = {"protocol": protocol_name}
        charger.set_stage(Stage.HANDSHAKE)
        if self.sim_body is not None:
            self.sim_body.arrive()  # plugged in (CP B → C at 5 %), its contactor open until its pack is known
        if charger.latest is None or charger.latest.duty_percent != standards.CP_HLC_DUTY_PERCENT:
            await charger.set_pwm_duty(standards.CP_HLC_DUTY_PERCENT)
        logger.info("HLC session %s started in the controller", session.session_id)

    def end_complete(self) -> None:
        """A successful SessionStop: the session ends COMPLETE (the EV asked to stop)."""
        if self.own_session_active():
            self.charger.end_session(Phase.COMPLETE, None, EndReason.EV_REQUESTED_STOP)
        self._finish_driver()

    async def end_abnormally(self, reason: str) -> None:
        """The SECC's session ended otherwise: HLC_FAILURE (the controller's fault shutdown winds down)."""
        self.watchdog.armed = False
        if self.own_session_active():
            logger.warning("HLC session ended abnormally: %s", reason)
            await self.charger.raise_fault(HLC_FAILURE, source="hlc", message=reason)
        self._finish_driver()

    def _finish_driver(self) -> None:
        if self.driver is not None:
            self.driver.finish()

    def note_request(self) -> None:
        """The EV sent a request (the watchdog's clock restarts)."""
        self.watchdog.note_request(self.charger.clock.now())

    def on_tick(self) -> None:
        """Every control tick: the charge-loop watchdog, and an output opened under the session."""
        charger = self.charger
        running = self.own_session_active()
        silence_s = self.watchdog.tick(charger.clock.now(), charger.settings.control_period_s, running)
        if not running:
            return
        if silence_s is not None:
            logger.error("no CurrentDemand/ChargeLoop request for %.2f s: COMMUNICATION_TIMEOUT", silence_s)
            self._spawn(charger.raise_fault(COMMUNICATION_TIMEOUT, source="hlc",
                                            message=f"no charge-loop request for {silence_s:.2f} s"))
            return
        m = charger.latest
        if self.energy_transfer and not self.ev_stopping and m is not None and not m.contactor_closed \
                and charger.stage in ENERGY_TRANSFER_STAGES:
            logger.warning("output contactor opened during energy transfer: stopping the HLC session")
            self.watchdog.armed = False
            charger.end_session(Phase.ABORTED, None, EndReason.STOP_REQUESTED)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def refresh_views(self, ev_data: Any, protocol_name: str | None, evse_id: str, force: bool = True) -> None:
        """/vehicle/bms and /vehicle/iso15118 from the SECC's data (``ev_data``: iso15118's EVDataContext). In
        the charge loop (``force`` False) the timestamp moves with every message and the views are rebuilt at
        most every VIEW_REFRESH_S, so the response path stays as short as the simulator's (bench/bench_secc.py)."""
        charger = self.charger
        if self.session is None or charger.session is not self.session:
            return
        self.last_message_at = charger.clock.utcnow()
        now_s = charger.clock.now()
        if not force and now_s - self._views_built_s < VIEW_REFRESH_S:
            charger.iso15118_view["timestamps"]["last_message_at"] = self.last_message_at.isoformat()
            return
        self._views_built_s = now_s
        comm = self.comm_session
        if ev_data.evcc_id is None and getattr(comm, "evcc_id", None):
            ev_data.evcc_id = comm.evcc_id  # -20 keeps it in the session only
        charger.bms_view_override = bms_view_from_ev_data(ev_data, protocol_name)
        charger.iso15118_view = iso15118_view(
            protocol=protocol_name, energy_service=energy_service_name(comm, ev_data),
            control_mode=enum_value(getattr(comm, "control_mode", None)) if comm is not None else None,
            authorized=self.authorized, evse_id=evse_id, session_id=getattr(comm, "session_id", None) or None,
            started_at=self.started_at, last_message_at=self.last_message_at)

    def clamp_voltage_V(self, voltage_V: float, ev_max_voltage_V: float | None) -> float:
        """An EV voltage target clamped to the EV's own maximum and ours (the -20 EVCC asks 20 kV)."""
        limit_V = self.charger.evse_max_voltage_V
        if ev_max_voltage_V is not None:
            limit_V = min(limit_V, ev_max_voltage_V)
        return min(max(0.0, voltage_V), limit_V)

    def sim_pack_at(self, pack_voltage_V: float, ev_max_current_A: float | None) -> None:
        """On the sim adapter: the body's pack at the voltage the EV stack named (once per session)."""
        if self.sim_body is not None:
            self.sim_body.pack_at(pack_voltage_V, ev_max_current_A)
