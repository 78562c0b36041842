"""How the station model, the durable queue and the transactions plug into the OcppClient (O1's ``client.py``).

``build_transaction_parts(client)`` returns one part, ``StationTransactionParts``, with ``start`` / ``stop`` /
``view`` as the client expects, and sets the client's hooks: ``status_requests`` (the station model's
StatusNotification, sent by the client at every boot), ``queue_depth``, and ``link.on_booted`` (the queue
delivers, Authorize goes out). The link has no "lost" callback: a call the link cannot carry raises
``OcppNotReady``, which ``link_sender`` turns into ``DeliveryOffline`` (the queue pauses until the next boot).

For the commands (O3): ``parts.model.available`` (a callable: ChangeAvailability) and
``parts.model.offered_current_A`` / ``parts.transactions.offered_current_A`` / ``offered_power_W`` (smart
charging's composite limit) can be replaced; ``parts.transactions.note_remote_start(id_tag, remote_start_id)``
before a remote ``start_session`` and ``note_remote_stop()`` before a remote ``request_stop``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from prometheus_client.core import CounterMetricFamily

from ccs_sim.core.events import Topic
from ccs_sim.observability.records import default_database_path
from ccs_sim.ocpp.date_time_check import OutgoingPayloadRefused, format_date_time
from ccs_sim.ocpp.link import OcppCallError, OcppNotReady
from ccs_sim.ocpp.message_queue import DeliveryOffline, DeliveryRejected, Sender, TransactionMessageQueue
from ccs_sim.ocpp.station_model import ConnectorState, StationModel
from ccs_sim.ocpp.store import OcppDatabase
from ccs_sim.ocpp.transaction_messages import request_from_wire, to_wire
from ccs_sim.ocpp.transactions import Transactions

if TYPE_CHECKING:
    from ccs_sim.ocpp.link import OcppLink
    from ccs_sim.ocpp.station_context import StationContext

log = logging.getLogger(__name__)


def link_sender(link: OcppLink, version: str) -> Sender:
    """``async send(action, payload) -> response`` over the link (wire dicts in and out), its failures in the
    queue's terms: not booted / closed -> DeliveryOffline; CALLERROR or a refused payload -> DeliveryRejected;
    a timeout while the link went down -> DeliveryOffline, else the TimeoutError itself."""
    async def send(action: str, payload: dict[str, Any], message_id: str | None = None) -> dict[str, Any]:
        try:
            response = await link.call(request_from_wire(version, action, payload), message_id)
        except OcppNotReady as error:
            raise DeliveryOffline(str(error)) from None
        except OcppCallError as error:
            raise DeliveryRejected(f"CALLERROR {error}") from None
        except OutgoingPayloadRefused as error:
            raise DeliveryRejected(str(error)) from None
        except TimeoutError:
            if not link.booted.is_set():
                raise DeliveryOffline("the link went down during the call") from None
            raise
        return to_wire(response) if response is not None else {}
    return send


def status_notification(version: str, state: ConnectorState, *, connector_id: int, evse_id: int,
                        timestamp: Any) -> Any:
    """The StatusNotification request of ``state`` (1.6 with error code; 2.0.1 ConnectorStatus)."""
    if version == "1.6":
        return call16.StatusNotification(
            connector_id=connector_id, error_code=state.error_code, status=state.status_16.value,
            timestamp=format_date_time(timestamp), info=state.info, vendor_error_code=state.vendor_error_code)
    return call201.StatusNotification(timestamp=format_date_time(timestamp), connector_status=state.status_201,
                                      evse_id=evse_id, connector_id=connector_id)


class StationTransactionParts:
    """The station model (StatusNotification on change), the durable queue and the transactions of one client."""

    def __init__(self, client: StationContext) -> None:
        controller, config = client.controller, client.config
        self.client = client
        self.version = config.version
        self.connector_id, self.evse_id = config.connector_id, config.evse_id
        self.database = OcppDatabase(self.database_path())
        self.send = link_sender(client.link, config.version)
        second_s = client.link.protocol_second_s
        self.queue = TransactionMessageQueue(self.database, self.send, attempts=config.queue_attempts,
                                             retry_interval_s=config.queue_retry_interval_s,
                                             max_messages=config.queue_max_messages,
                                             sleep=lambda seconds: asyncio.sleep(seconds * second_s))
        self.model = StationModel(controller)
        self.transactions = Transactions(controller, self.queue, config.version,
                                         meter_interval_s=config.meter_interval_s,
                                         connector_id=config.connector_id, evse_id=config.evse_id, send=self.send,
                                         charging_state=lambda: self.model.current().charging_state,
                                         offered_current_A=lambda: self.model.offered_current_A(),
                                         eim_id_token=config.eim_id_token,
                                         eim_id_token_type=config.eim_id_token_type)
        self._notifications: asyncio.Queue[ConnectorState] = asyncio.Queue()
        self._notifier: asyncio.Task[None] | None = None
        self._tick_listener: Any = self._on_tick
        client.status_requests = self.status_requests
        client.queue_depth = lambda: self.queue.depth
        client.link.on_booted(self.queue.link_up)

    def database_path(self) -> Path:
        """The controller's records database: ``client.database_path`` when the runtime set it (the records'
        own path, ``operations.store.path``), else the settings' (``records_db`` or data_dir/sessions.db)."""
        settings = self.client.controller.settings
        chosen = self.client.database_path
        return Path(chosen or settings.records_db or default_database_path(settings.data_dir))

    async def start(self) -> None:
        self.database.path = self.database_path()
        await self.database.open()
        await self.queue.start()
        await self.transactions.start()
        self._notifier = asyncio.create_task(self._notify_forever(), name="ocpp-status-notifications")
        self.client.controller.events.listeners(Topic.TICK).append(self._tick_listener)

    async def stop(self) -> None:
        listeners = self.client.controller.events.listeners(Topic.TICK)
        if self._tick_listener in listeners:
            listeners.remove(self._tick_listener)
        if self._notifier is not None:
            self._notifier.cancel()
            await asyncio.gather(self._notifier, return_exceptions=True)
        await self.transactions.stop()
        await self.queue.stop()
        await self.database.close()

    def view(self) -> dict[str, Any]:
        state = self.model.detector.last
        return {"connector_status": None if state is None else
                {"status": state.status_16.value if self.version == "1.6" else state.status_201,
                 "error_code": state.error_code, "charging_state": state.charging_state},
                "queue_delivered": self.queue.delivered, "queue_dropped": self.queue.dropped,
                "queue_dropped_full": self.queue.dropped_queue_full, "queue_max_messages": self.queue.max_messages,
                **self.transactions.view(), "transaction": self.transaction_view()}

    def transaction_view(self) -> dict[str, Any] | None:
        """The running transaction for GET /ocpp (the dashboard's panel): its ids, id token and energy so far."""
        tx, base = self.transactions.current, self.transactions.view()["transaction"]
        session = self.client.controller.session
        if tx is None or base is None:
            return base
        energy_Wh = (self.client.controller.session_meter_reading(session).energy_Wh
                     if session is not None and session.session_id == tx.session_id else None)
        return {**base, "id_tag": tx.id_tag, "meter_start_Wh": round(tx.register_start_Wh, 3),
                "energy_Wh": None if energy_Wh is None else round(energy_Wh, 3)}

    def write_metrics(self, families: list[Any]) -> None:
        """``ccs_ocpp_queue_dropped_messages_total{reason}``: transaction messages the queue dropped since start."""
        dropped = CounterMetricFamily("ccs_ocpp_queue_dropped_messages_total",
                                      "OCPP transaction messages dropped: queue_full (an intermediate sample past "
                                      "the queue's cap), given_up (after the last attempt).", labels=["reason"])
        dropped.add_metric(["queue_full"], self.queue.dropped_queue_full)
        dropped.add_metric(["given_up"], self.queue.dropped)
        families.append(dropped)

    def status_requests(self) -> list[Any]:
        """The connector's status now (the client sends it at every boot); it counts as notified."""
        state = self.model.current()
        self.model.detector.changed(state)
        return [self._request(state)]

    def _request(self, state: ConnectorState) -> Any:
        return status_notification(self.version, state, connector_id=self.connector_id, evse_id=self.evse_id,
                                   timestamp=self.client.controller.clock.utcnow())

    def _on_tick(self) -> None:
        if not self.client.link.booted.is_set():
            return  # told at the next boot (status_requests)
        state = self.model.poll()
        if state is not None:
            self._notifications.put_nowait(state)

    async def _notify_forever(self) -> None:
        while True:
            state = await self._notifications.get()
            try:
                await self.client.link.call(self._request(state))
            except (TimeoutError, OcppNotReady, OcppCallError, OutgoingPayloadRefused) as error:
                log.warning("OCPP StatusNotification %s not delivered: %s", state.status_16.value, error)


def build_transaction_parts(client: StationContext) -> list[Any]:
    return [StationTransactionParts(client)]
