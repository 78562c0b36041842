"""The OCPP link: one websocket to the CSMS, kept up, booted and beating; calls through it one at a time.

- Connect to ``config.connect_url`` offering the version's subprotocol only (``ocpp1.6`` / ``ocpp2.0.1``); a CSMS
  that does not select it is refused. Security profiles: 1 Basic auth header ``station_id:password``; 2 TLS
  (server certificate verified against ``ca_file`` or the system's CAs) + Basic; 3 mutual TLS (no Basic).
- Reconnect after any loss with exponential backoff + jitter, between ``reconnect_min_s`` and ``reconnect_max_s``
  (reset once a BootNotification is Accepted).
- BootNotification first, retried until Accepted: Pending/Rejected → again after the response's ``interval``
  (OCPP 1.6 §4.2 / 2.0.1 B02, B03). Until Accepted, ``call()`` raises ``OcppNotReady``: nothing else goes out.
- Heartbeat every ``interval`` of the accepted BootNotification (``set_heartbeat_interval`` changes it).
- One outstanding CALL at a time (the ``ocpp`` package's ChargePoint holds a lock), answered within
  ``call_timeout_s`` or ``asyncio.TimeoutError``; a CALLERROR raises ``OcppCallError``.
- Every outgoing payload is checked against its schema with date-times enforced (``date_time_check``) before it
  goes out: ``OutgoingPayloadRefused``; a handler's CALLRESULT that fails is replaced by a CALLERROR.
- Every frame is recorded by the ``FrameLog`` (last frames, per-session file, counters), through the
  ``FramedConnection`` the ChargePoint reads and writes (``framed_connection.py``).

``protocol_second_s`` is how long one second of the CSMS's intervals (Heartbeat, boot retry) lasts on this link:
1.0 in service; tests shorten it, since the protocol's intervals are whole seconds.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.charge_point import remove_nones, serialize_as_dict, snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.messages import MessageType
from websockets.asyncio.client import connect

from ccs_sim.ocpp.config import OcppConfig, OcppConfigError
from ccs_sim.ocpp.date_time_check import OutgoingPayloadRefused, frame_violations
from ccs_sim.ocpp.frame_log import FrameLog
from ccs_sim.ocpp.framed_connection import FramedConnection

log = logging.getLogger(__name__)

#: Heartbeat interval when the CSMS answers 0 (OCPP leaves it to the station), seconds.
DEFAULT_HEARTBEAT_INTERVAL_S = 60
#: BootNotification retry when a Pending/Rejected answer gives interval 0, or the call failed, seconds.
DEFAULT_BOOT_RETRY_S = 30
#: Backoff jitter: each delay is drawn from [1 - JITTER, 1] x the exponential step (never below the minimum).
BACKOFF_JITTER = 0.25


class OcppNotReady(RuntimeError):
    """The link is not connected or its BootNotification is not (yet) Accepted: nothing may be sent."""


class OcppCallError(RuntimeError):
    """The CSMS answered a CALL with a CALLERROR (or with a response that breaks the schema)."""

    def __init__(self, code: str, description: str, details: Any = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details


class SubprotocolRefused(ConnectionError):
    """The CSMS accepted the websocket but not the OCPP version's subprotocol."""


@dataclass(frozen=True)
class OcppProtocol:
    """What differs between versions, as the version module (``v16`` / ``v201``) gives it."""

    version: str
    charge_point_class: type
    boot_request: Callable[[OcppConfig], Any]
    heartbeat_request: Callable[[], Any]


@dataclass
class LinkState:
    """The link as GET /ocpp shows it."""

    #: idle, connecting, connected (booting), booted, disconnected (waiting to reconnect), stopped
    connection: str = "idle"
    boot_status: str | None = None
    heartbeat_interval_s: float | None = None
    #: The last failure: {"kind", "message", "at"}; kinds: auth_rejected, server_untrusted, tls_failed,
    #: subprotocol_refused, unreachable, connect_timeout, handshake_failed, closed, boot_rejected
    last_error: dict[str, Any] | None = None
    #: BootNotifications Accepted (1 after the first boot; a reconnect does not boot again)
    boots_accepted: int = 0
    next_reconnect_s: float | None = None
    #: When the last Heartbeat was answered (ISO-8601 UTC), None before the first.
    last_heartbeat_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reconnect_delay_s(attempt: int, min_s: float, max_s: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: about ``min_s * 2**attempt``, capped at ``max_s``, never below ``min_s``."""
    step_s = min(max_s, min_s * 2 ** min(attempt, 30))
    return max(min_s, step_s * rng.uniform(1 - BACKOFF_JITTER, 1.0))


def basic_auth_header(station_id: str, password: str) -> dict[str, str]:
    """Security profiles 1 and 2: HTTP Basic with the station id as user (RFC 7617)."""
    token = base64.b64encode(f"{station_id}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def client_ssl_context(config: OcppConfig) -> ssl.SSLContext | None:
    """For wss://: the CSMS's certificate verified (``ca_file`` or the system's CAs), TLS 1.2 at least
    (OCPP 1.6 Security Whitepaper §2.3 / 2.0.1 A00.FR.309); profile 3 presents the station's certificate."""
    if not config.url.startswith("wss:"):
        return None
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=str(config.ca_file) if config.ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if config.security_profile == 3 and config.client_cert_file and config.client_key_file:
            context.load_cert_chain(str(config.client_cert_file), str(config.client_key_file))
    except (ssl.SSLError, OSError) as error:
        raise OcppConfigError(f"OCPP TLS files (--ocpp-ca / --ocpp-client-cert / --ocpp-client-key) cannot be "
                              f"used: {error}") from None
    return context


async def cancel_and_wait(tasks: set[asyncio.Task[Any]] | set[asyncio.Future[Any]],
                          recancel_s: float = 1.0) -> None:
    """Cancel ``tasks`` and wait until every one has ended, cancelling again while one goes on: on Python 3.11
    ``asyncio.wait_for`` (used inside the ``ocpp`` package's ``call``) can swallow a cancellation that arrives
    just as its wait ends, and a single cancel would then leave the task running and its awaiter hanging. The
    second cancel comes only after ``recancel_s``, time for a normal clean-up (the websocket close) to finish."""
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=recancel_s)
    for task in tasks:
        if not task.cancelled() and task.exception() is not None:
            log.debug("OCPP task %r ended with %r", task, task.exception())


def classify_failure(error: BaseException, tls: bool = False) -> tuple[str, str]:
    """(kind, one-line message) for a failed or lost connection (``tls``: over wss://)."""
    chain: list[BaseException] = []
    cause: BaseException | None = error
    while cause is not None and len(chain) < 8:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return "server_untrusted", f"the CSMS's certificate is not trusted: {item.verify_message or item}"
        if isinstance(item, ssl.SSLError):
            reason = getattr(item, "reason", None) or str(item)
            if "CERTIFICATE_REQUIRED" in str(reason).upper():
                return "tls_failed", "the CSMS requires a client certificate (security profile 3) and got none"
            return "tls_failed", f"TLS handshake failed: {reason}"
    if tls and isinstance(error, websockets.exceptions.InvalidMessage) and any(
            isinstance(item, EOFError) for item in chain):  # asyncio's TLS layer drops the alert: only EOF shows
        return "tls_failed", ("the CSMS closed the TLS connection before answering the websocket upgrade: it may "
                              "require a client certificate (security profile 3) or refuse this one")
    if isinstance(error, websockets.exceptions.InvalidStatus):
        code = error.response.status_code
        if code in (401, 403):
            return "auth_rejected", (f"the CSMS refused the station (HTTP {code}): wrong station id or password, "
                                     "or a client certificate it does not accept")
        return "handshake_failed", f"the CSMS answered the websocket upgrade with HTTP {code}"
    if isinstance(error, SubprotocolRefused):
        return "subprotocol_refused", str(error)
    if isinstance(error, websockets.exceptions.ConnectionClosed):
        return "closed", f"the connection closed ({error})"
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "connect_timeout", "no answer to the websocket upgrade in time"
    if isinstance(error, OSError):
        return "unreachable", f"cannot reach the CSMS: {error.strerror or error}"
    return "handshake_failed", f"{type(error).__name__}: {error}"


class OcppLink:
    """The link to the CSMS (see the module's description). ``charge_point`` is the version's ChargePoint while
    connected (handlers of the CSMS's CALLs live on it; its ``link`` and ``context`` attributes lead back)."""

    def __init__(self, config: OcppConfig, protocol: OcppProtocol, *, frame_log: FrameLog | None = None,
                 context: Any = None, protocol_second_s: float = 1.0, rng: random.Random | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.config = config
        self.protocol = protocol
        self.frame_log = frame_log or FrameLog()
        self.context = context
        self.protocol_second_s = protocol_second_s
        self.state = LinkState()
        self.booted = asyncio.Event()
        self.charge_point: Any = None
        self._rng = rng or random.Random()
        self._now = now
        self._ssl = client_ssl_context(config)
        self._booted_callbacks: list[Callable[[], Any]] = []
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self._task: asyncio.Task[None] | None = None
        self._connected_and_booted = False
        self._heartbeat_changed = asyncio.Event()

    # --- public ---------------------------------------------------------------------------------------------
    def on_booted(self, callback: Callable[[], Any]) -> None:
        """``callback()`` (sync or async) each time a BootNotification is Accepted (after every reconnect)."""
        self._booted_callbacks.append(callback)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"ocpp-link-{self.config.station_id}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait({task})
        await cancel_and_wait(set(self._callback_tasks))
        self.booted.clear()
        self.state.connection = "stopped"

    async def call(self, request: Any, message_id: str | None = None) -> Any:
        """Send one CALL (a ``ocpp.v16.call`` / ``ocpp.v201.call`` dataclass), return the CALLRESULT dataclass.
        ``message_id``: the OCPP-J message id to send it with (the durable queue's, kept across a resend), else a
        new one.
        ``OcppNotReady`` before the BootNotification is Accepted or while disconnected; ``OcppCallError`` on
        a CALLERROR; ``asyncio.TimeoutError`` after ``call_timeout_s``; ``OutgoingPayloadRefused`` (nothing
        sent) if the payload breaks its schema."""
        charge_point = self.charge_point
        if charge_point is None or not self.booted.is_set():
            raise OcppNotReady(f"OCPP link {self.state.connection}, boot {self.state.boot_status or 'not sent'}: "
                               f"{type(request).__name__} not sent")
        return await self._call(charge_point, request, message_id)

    def set_heartbeat_interval(self, seconds: float) -> None:
        """A new Heartbeat interval (1.6 ChangeConfiguration HeartbeatInterval / 2.0.1 SetVariables)."""
        self.state.heartbeat_interval_s = seconds if seconds > 0 else DEFAULT_HEARTBEAT_INTERVAL_S
        self._heartbeat_changed.set()  # the next Heartbeat one new interval from now

    # --- calls ----------------------------------------------------------------------------------------------
    async def _call(self, charge_point: Any, request: Any, message_id: str | None = None) -> Any:
        action = type(request).__name__
        payload = remove_nones(snake_to_camel_case(serialize_as_dict(request)))
        violations = frame_violations(self.protocol.version, MessageType.Call, action, payload)
        if violations:
            self.frame_log.count_error("refused_payload")
            raise OutgoingPayloadRefused(f"{action} CALL not sent: {'; '.join(violations)}")
        try:
            return await charge_point.call(request, suppress=False, unique_id=message_id)
        except TimeoutError:
            self.frame_log.count_error("call_timeout")
            raise
        except OCPPError as error:
            raise OcppCallError(error.code, error.description, error.details) from None

    # --- connection life ------------------------------------------------------------------------------------
    async def _run(self) -> None:
        attempt = 0
        while True:
            self.state.connection = "connecting"
            self.state.next_reconnect_s = None
            self._connected_and_booted = False
            try:
                await self._serve_connection()
                kind, message = "closed", "the connection ended"
            except asyncio.CancelledError:
                raise
            except Exception as error:  # every failure: recorded, then reconnect
                kind, message = classify_failure(error, tls=self._ssl is not None)
            if self._connected_and_booted:
                attempt = 0
            self.state.last_error = {"kind": kind, "message": message, "at": self._now().isoformat()}
            self.frame_log.count_error(kind)
            log.warning("OCPP %s: %s", kind, message)
            delay_s = reconnect_delay_s(attempt, self.config.reconnect_min_s, self.config.reconnect_max_s, self._rng)
            attempt += 1
            self.state.connection = "disconnected"
            self.state.next_reconnect_s = delay_s
            await asyncio.sleep(delay_s)

    async def _serve_connection(self) -> None:
        headers = (basic_auth_header(self.config.station_id, self.config.password or "")
                   if self.config.security_profile in (1, 2) else None)
        async with connect(self.config.connect_url, subprotocols=[self.config.subprotocol],  # type: ignore[list-item]
                           additional_headers=headers, ssl=self._ssl, open_timeout=self.config.call_timeout_s,
                           ping_interval=None) as websocket:
            if websocket.subprotocol != self.config.subprotocol:
                raise SubprotocolRefused(f"the CSMS did not accept the subprotocol {self.config.subprotocol} "
                                         f"(it selected {websocket.subprotocol or 'none'})")
            self.state.connection = "connected"
            connection = FramedConnection(websocket, self.protocol.version, self.frame_log)
            charge_point = self.protocol.charge_point_class(self.config.station_id, connection,
                                                            response_timeout=self.config.call_timeout_s)
            charge_point.link = self
            charge_point.context = self.context
            self.charge_point = charge_point
            receiver = asyncio.create_task(charge_point.start(), name="ocpp-receive")
            booter = asyncio.create_task(self._boot_then_heartbeat(charge_point), name="ocpp-boot-heartbeat")
            try:
                done, _ = await asyncio.wait({receiver, booter}, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                self.booted.clear()
                self.charge_point = None
                await cancel_and_wait({receiver, booter})

    async def _boot_then_heartbeat(self, charge_point: Any) -> None:
        """BootNotification until Accepted (once per process: a reconnect does not boot again, OCPP 1.6 §4.2 /
        2.0.1 B01 send it after start-up), then Heartbeats."""
        while self.state.boots_accepted == 0:
            try:
                response = await self._call(charge_point, self.protocol.boot_request(self.config))
                status, interval_s = str(response.status), int(response.interval)
            except (TimeoutError, OcppCallError) as error:
                log.warning("OCPP BootNotification failed (%s): again in %s s", error, DEFAULT_BOOT_RETRY_S)
                status, interval_s = "failed", 0
            self.state.boot_status = status
            if status == "Accepted":
                self.set_heartbeat_interval(interval_s)
                self.state.boots_accepted += 1
                break
            if status == "Rejected":
                self.state.last_error = {"kind": "boot_rejected", "message": "the CSMS rejected the "
                                         "BootNotification", "at": self._now().isoformat()}
            await asyncio.sleep((interval_s if interval_s > 0 else DEFAULT_BOOT_RETRY_S) * self.protocol_second_s)
        self.state.connection = "booted"
        self._connected_and_booted = True
        self.booted.set()
        self._run_booted_callbacks()
        while True:
            self._heartbeat_changed.clear()
            try:  # a changed interval (ChangeConfiguration / SetVariables) starts a new wait
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that arrives as
                # the wait ends, and stop() would then wait for this loop forever
                async with asyncio.timeout((self.state.heartbeat_interval_s or DEFAULT_HEARTBEAT_INTERVAL_S)
                                           * self.protocol_second_s):
                    await self._heartbeat_changed.wait()
                continue
            except TimeoutError:
                pass
            try:
                await self._call(charge_point, self.protocol.heartbeat_request())
                self.state.last_heartbeat_at = self._now().isoformat()
            except (TimeoutError, OcppCallError) as error:
                log.warning("OCPP Heartbeat failed: %s", error)

    def _run_booted_callbacks(self) -> None:
        for callback in self._booted_callbacks:
            try:
                result = callback()
            except Exception:
                log.exception("OCPP on_booted callback failed")
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Future[Any]) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("OCPP on_booted callback failed: %r", task.exception())
