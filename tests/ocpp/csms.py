"""A test CSMS on 127.0.0.1 for OCPP 1.6J and 2.0.1: the ``ocpp`` package's server side on ``websockets.serve``.

- Strict: every frame the station sends is validated against the OCA schema of its action, date-times included
  (``ccs_sim.ocpp.date_time_check.frame_violations``); violations are collected in ``violations`` (a test
  asserts it empty) and a CALL that breaks its schema is answered with a CALLERROR FormatViolation.
- Records every frame both ways (``frames``; ``calls_received(action)``).
- Scriptable: ``boot_responses`` (status, interval) answered in turn (the last one repeats), ``heartbeat_interval``
  in the Accepted answer, ``ignored_actions`` (CALLs never answered: call timeouts), ``password`` (Basic auth,
  profiles 1, 2), TLS (``ssl_context``) and ``require_client_cn`` (profile 3: the client certificate's CN must be
  the station id), ``drop()`` (close the station's connection), ``stop()`` (stay down), ``start()`` again (same
  port), ``call(station_id, request)`` (CSMS-initiated CALLs: remote start, profiles, reset ... for O2/O3).
- Handlers for what a station sends (1.6: Authorize, StartTransaction, StopTransaction, MeterValues, ...; 2.0.1:
  Authorize, TransactionEvent, MeterValues, NotifyEvent, ...). Subclass ``Csms16ChargePoint`` /
  ``Csms201ChargePoint`` and pass ``charge_point_classes`` for more.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call_result as result201
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ccs_sim.ocpp.date_time_check import format_date_time, frame_violations

FRAME_TYPES = {2: "CALL", 3: "CALLRESULT", 4: "CALLERROR"}


def now_text() -> str:
    return format_date_time(datetime.now(UTC))


@dataclass
class RecordedFrame:
    at_s: float  # time.monotonic()
    direction: str  # "in" (from the station) | "out"
    station_id: str
    type: str
    unique_id: str
    action: str
    payload: Any


class Csms16ChargePoint(ChargePoint16):
    csms: TestCsms

    @on("BootNotification")
    def on_boot(self, **_: Any) -> Any:
        status, interval = self.csms.next_boot_response()
        return result16.BootNotification(current_time=now_text(), interval=interval, status=status)

    @on("Heartbeat")
    def on_heartbeat(self) -> Any:
        return result16.Heartbeat(current_time=now_text())

    @on("StatusNotification")
    def on_status(self, **_: Any) -> Any:
        return result16.StatusNotification()

    @on("Authorize")
    def on_authorize(self, id_tag: str) -> Any:
        return result16.Authorize(id_tag_info={"status": self.csms.authorize_status})

    @on("StartTransaction")
    def on_start_transaction(self, **_: Any) -> Any:
        return result16.StartTransaction(transaction_id=next(self.csms.transaction_ids),
                                         id_tag_info={"status": "Accepted"})

    @on("StopTransaction")
    def on_stop_transaction(self, **_: Any) -> Any:
        return result16.StopTransaction()

    @on("MeterValues")
    def on_meter_values(self, **_: Any) -> Any:
        return result16.MeterValues()

    @on("DataTransfer")
    def on_data_transfer(self, **_: Any) -> Any:
        return result16.DataTransfer(status="Accepted")

    @on("DiagnosticsStatusNotification")
    def on_diagnostics_status(self, **_: Any) -> Any:
        return result16.DiagnosticsStatusNotification()

    @on("FirmwareStatusNotification")
    def on_firmware_status(self, **_: Any) -> Any:
        return result16.FirmwareStatusNotification()


class Csms201ChargePoint(ChargePoint201):
    csms: TestCsms

    @on("BootNotification")
    def on_boot(self, **_: Any) -> Any:
        status, interval = self.csms.next_boot_response()
        return result201.BootNotification(current_time=now_text(), interval=interval, status=status)

    @on("Heartbeat")
    def on_heartbeat(self) -> Any:
        return result201.Heartbeat(current_time=now_text())

    @on("StatusNotification")
    def on_status(self, **_: Any) -> Any:
        return result201.StatusNotification()

    @on("Authorize")
    def on_authorize(self, **_: Any) -> Any:
        return result201.Authorize(id_token_info={"status": self.csms.authorize_status})

    @on("TransactionEvent")
    def on_transaction_event(self, **_: Any) -> Any:
        return result201.TransactionEvent()

    @on("MeterValues")
    def on_meter_values(self, **_: Any) -> Any:
        return result201.MeterValues()

    @on("NotifyEvent")
    def on_notify_event(self, **_: Any) -> Any:
        return result201.NotifyEvent()

    @on("NotifyReport")
    def on_notify_report(self, **_: Any) -> Any:
        return result201.NotifyReport()

    @on("SecurityEventNotification")
    def on_security_event(self, **_: Any) -> Any:
        return result201.SecurityEventNotification()

    @on("FirmwareStatusNotification")
    def on_firmware_status(self, **_: Any) -> Any:
        return result201.FirmwareStatusNotification()


class RecordingConnection:
    """The server's websocket as the CSMS ChargePoint sees it: frames recorded and validated."""

    def __init__(self, csms: TestCsms, websocket: ServerConnection, station_id: str) -> None:
        self.csms = csms
        self.websocket = websocket
        self.station_id = station_id
        self.actions: dict[str, str] = {}  # CALL ids (both ways) -> action

    def _record(self, direction: str, raw: str | bytes) -> tuple[int, str, str, Any]:
        frame = json.loads(raw)
        kind, unique_id = int(frame[0]), str(frame[1])
        if kind == 2:  # both directions' CALLs: their answers are recorded with the action
            action, payload = str(frame[2]), frame[3]
            self.actions[unique_id] = action
        else:
            action = self.actions.pop(unique_id, "?")
            payload = frame[2] if kind == 3 else frame[2:]
        self.csms.frames.append(RecordedFrame(time.monotonic(), direction, self.station_id, FRAME_TYPES.get(kind, "?"),
                                              unique_id, action, payload))
        return kind, unique_id, action, payload

    async def recv(self) -> str | bytes:
        while True:
            raw = await self.websocket.recv()
            kind, unique_id, action, payload = self._record("in", raw)
            if kind in (2, 3) and action != "?":  # a CALLRESULT answers one of our CALLs
                problems = frame_violations(self.csms.version, kind, action, payload)
                self.csms.violations.extend(f"{action} {FRAME_TYPES[kind]}: {problem}" for problem in problems)
                if problems and kind == 2:
                    await self.send(json.dumps([4, unique_id, "FormatViolation", "; ".join(problems)[:255], {}]))
                    continue
            if kind == 2 and action in self.csms.ignored_actions:
                continue  # never answered: the station's call times out
            return raw

    async def send(self, raw: str) -> None:
        self._record("out", raw)
        await self.websocket.send(raw)


class TestCsms:
    __test__ = False  # not a pytest test class
    #: How each station's websocket is wrapped (a subclass may record or answer differently).
    connection_class: type[RecordingConnection] = RecordingConnection

    def __init__(self, version: str = "1.6", *, boot_responses: list[tuple[str, int]] | None = None,
                 heartbeat_interval: int = 60, password: str | None = None, ssl_context: ssl.SSLContext | None = None,
                 require_client_cn: bool = False, charge_point_classes: dict[str, type] | None = None) -> None:
        self.version = version
        self.boot_responses = list(boot_responses or [("Accepted", heartbeat_interval)])
        self.heartbeat_interval = heartbeat_interval
        self.password = password
        self.ssl_context = ssl_context
        self.require_client_cn = require_client_cn
        self.classes = {"1.6": Csms16ChargePoint, "2.0.1": Csms201ChargePoint, **(charge_point_classes or {})}
        self.ignored_actions: set[str] = set()
        self.authorize_status = "Accepted"
        self.transaction_ids = itertools.count(1)
        self.frames: list[RecordedFrame] = []
        self.violations: list[str] = []
        self.refusals: list[str] = []  # why a connection was refused (401/403)
        self.stations: dict[str, Any] = {}
        self.connections: list[ServerConnection] = []
        self.port = 0
        self._server: Server | None = None
        self._boot_index = 0

    @property
    def url(self) -> str:
        return f"{'wss' if self.ssl_context else 'ws'}://127.0.0.1:{self.port}/ocpp"

    def next_boot_response(self) -> tuple[str, int]:
        response = self.boot_responses[min(self._boot_index, len(self.boot_responses) - 1)]
        self._boot_index += 1
        return response

    async def start(self) -> TestCsms:
        self._server = await serve(self._serve_station, "127.0.0.1", self.port, ssl=self.ssl_context,
                                   subprotocols=["ocpp" + self.version],  # type: ignore[list-item]
                                   process_request=self._check_request, ping_interval=None)
        self.port = self._server.sockets[0].getsockname()[1] if not self.port else self.port
        return self

    async def stop(self) -> None:
        """Down (connections closed, nothing listening) until ``start()``."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def drop(self) -> None:
        """Close every station's connection (the server keeps listening)."""
        for connection in list(self.connections):
            await connection.close()

    async def __aenter__(self) -> TestCsms:
        return await self.start()

    async def __aexit__(self, *_: Any) -> None:
        await self.stop()

    def _check_request(self, connection: ServerConnection, request: Any) -> Any:
        station_id = request.path.rstrip("/").rsplit("/", 1)[-1]
        if self.password is not None:
            expected = "Basic " + base64.b64encode(f"{station_id}:{self.password}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                self.refusals.append("basic auth")
                return connection.respond(HTTPStatus.UNAUTHORIZED, "wrong station id or password\n")
        if self.require_client_cn:
            cert = connection.transport.get_extra_info("peercert") or {}
            names = [value for entry in cert.get("subject", ()) for key, value in entry if key == "commonName"]
            if names != [station_id]:
                self.refusals.append(f"client certificate CN {names}")
                return connection.respond(HTTPStatus.FORBIDDEN, "client certificate does not match the station\n")
        return None

    async def _serve_station(self, websocket: ServerConnection) -> None:
        station_id = websocket.request.path.rstrip("/").rsplit("/", 1)[-1]
        self.connections.append(websocket)
        charge_point = self.classes[self.version](station_id, self.connection_class(self, websocket, station_id))
        charge_point.csms = self
        self.stations[station_id] = charge_point
        try:
            await charge_point.start()
        except ConnectionClosed:
            pass
        finally:
            self.connections.remove(websocket)

    async def call(self, station_id: str, request: Any) -> Any:
        """A CSMS-initiated CALL to the station (its CALLRESULT dataclass)."""
        return await self.stations[station_id].call(request, suppress=False)

    # --- what was received -------------------------------------------------------------------------------
    def calls_received(self, action: str | None = None) -> list[RecordedFrame]:
        return [f for f in self.frames if f.direction == "in" and f.type == "CALL"
                and (action is None or f.action == action)]

    async def wait_for(self, predicate: Callable[[], Any], timeout_s: float = 5.0, poll_s: float = 0.005) -> Any:
        """Until ``predicate()`` is truthy (its value), else AssertionError after ``timeout_s`` wall seconds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            await asyncio.sleep(poll_s)
        raise AssertionError(f"not within {timeout_s} s; frames: {[(f.direction, f.type, f.action) for f in self.frames]}")


@dataclass
class Pki:
    """Certificates a test makes: a CA, a server certificate for 127.0.0.1/localhost, a client certificate whose
    CN is the station id, and another CA (untrusted) with its own server certificate."""

    directory: Any
    files: dict[str, str] = field(default_factory=dict)

    def server_context(self, *, untrusted: bool = False, client_ca: bool = False) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        prefix = "rogue_server" if untrusted else "server"
        context.load_cert_chain(self.files[prefix + "_cert"], self.files[prefix + "_key"])
        if client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(self.files["ca_cert"])
        return context


def make_pki(directory: Any, station_id: str) -> Pki:
    from datetime import timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki = Pki(directory)
    start = datetime.now(UTC) - timedelta(minutes=5)

    def write(name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        pki.files[name + "_cert"], pki.files[name + "_key"] = str(cert_path), str(key_path)

    def issue(common_name: str, issuer: tuple[x509.Certificate, Any] | None, *, ca: bool = False,
              server: bool = False) -> tuple[x509.Certificate, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(issuer[0].subject if issuer else subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(start)
                   .not_valid_after(start + timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if ca:
            builder = builder.add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                          content_commitment=False, key_encipherment=False,
                                                          data_encipherment=False, key_agreement=False,
                                                          encipher_only=False, decipher_only=False), critical=True)
        else:
            usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        if issuer is not None:
            builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer[0].public_key()), critical=False)  # type: ignore[arg-type]
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key

    ca = issue("Test CSMS CA", None, ca=True)
    write("ca", *ca)
    write("server", *issue("127.0.0.1", ca, server=True))
    write("client", *issue(station_id, ca))
    rogue_ca = issue("Rogue CA", None, ca=True)
    write("rogue_ca", *rogue_ca)
    write("rogue_server", *issue("127.0.0.1", rogue_ca, server=True))
    return pki
