"""OcppClient: OCPP for one ChargerController — the link, the station's status, and the parts that plug in.

Built by ``ccs_sim.runtime.start_ocpp`` when an ``OcppConfig`` is given (``ccs-sim serve --ocpp-url ...`` or
``evse-main --ocpp-url ...``), stopped with the runtime's ``Operations``. What plugs in (see each hook):

- ``handler_mixins(version)``: the ChargePoint mixins that handle the CSMS's CALLs (O3's commands).
- ``status_requests``: () -> the StatusNotification requests describing every connector now; sent each time
  the link is booted. Until the station model (O2) replaces it: ``v16/v201.minimal_status_requests``.
- ``parts``: objects with optional ``async start()``, ``async stop()`` and ``view() -> dict`` (merged into
  GET /ocpp): the station model, the durable queue, transactions, smart charging (``build_station_parts``).
- ``queue_depth`` / ``composite_limit``: () -> the GET /ocpp values (0 and None until O2's queue and O3's
  smart charging set them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ccs_sim.ocpp import v16, v201
from ccs_sim.ocpp.config import OcppConfig
from ccs_sim.ocpp.date_time_check import OutgoingPayloadRefused
from ccs_sim.ocpp.frame_log import FrameLog
from ccs_sim.ocpp.link import OcppCallError, OcppLink, OcppNotReady
from ccs_sim.ocpp.station_parts import build_transaction_parts

if TYPE_CHECKING:
    from ccs_sim.controller import ChargerController
    from ccs_sim.observability.metrics import MetricWriter

log = logging.getLogger(__name__)

#: Frames GET /ocpp shows (newest last).
VIEW_FRAMES = 20


def version_module(version: str) -> ModuleType:
    return {"1.6": v16, "2.0.1": v201}[version]


def handler_mixins(version: str) -> tuple[type, ...]:
    """The ChargePoint mixins with the ``@on(...)`` handlers of the CSMS's CALLs for ``version``, first in the
    class's bases: the CSMS's commands (``v16_commands`` / ``v201_commands``)."""
    from ccs_sim.ocpp.v16_commands import V16Commands
    from ccs_sim.ocpp.v201_commands import V201Commands

    return (V16Commands,) if version == "1.6" else (V201Commands,)


def build_station_parts(client: OcppClient) -> list[Any]:
    """The parts beside the link, in start order (stopped in reverse): O2's station model, message queue and
    transactions, O3's smart charging. Each may set ``client.status_requests``, ``client.queue_depth``,
    ``client.composite_limit`` and register ``client.link.on_booted(...)``."""
    from ccs_sim.ocpp.station_commands import StationCommands

    transaction_parts = build_transaction_parts(client)
    client.commands = StationCommands(client, transaction_parts[0])
    return [*transaction_parts, client.commands]


class OcppClient:
    def __init__(self, controller: ChargerController, config: OcppConfig, *, frame_log_dir: Path | None = None,
                 protocol_second_s: float = 1.0, database_path: Path | None = None) -> None:
        self.controller = controller
        self.config = config
        #: The controller's records database (the durable queue's tables go beside the records); None: the
        #: settings' records database.
        self.database_path = database_path
        self.version = version_module(config.version)
        directory = frame_log_dir if frame_log_dir is not None else Path(controller.settings.data_dir) / "ocpp"
        self.frame_log = FrameLog(directory, self.current_session_id, now=controller.clock.utcnow)
        # the link's times (last heartbeat, last error) on the controller's clock, like the frame log's
        self.link = OcppLink(config, self.version.build_protocol(handler_mixins(config.version)),
                             frame_log=self.frame_log, context=self, protocol_second_s=protocol_second_s,
                             now=controller.clock.utcnow)
        self.status_requests: Callable[[], list[Any]] = self.placeholder_status_requests
        self.queue_depth: Callable[[], int] = lambda: 0
        self.composite_limit: Callable[[], dict[str, Any] | None] = lambda: None
        self.link.on_booted(self.send_status_notifications)
        #: The CSMS's commands' effects (``station_commands.StationCommands``), set by ``build_station_parts``.
        self.commands: Any = None
        self.parts: list[Any] = build_station_parts(self)

    def current_session_id(self) -> str | None:
        """The controller's running session (the frame log's file name), else None."""
        session = self.controller.session
        return session.session_id if self.controller.session_active and session is not None else None

    def placeholder_status_requests(self) -> list[Any]:
        """Until O2's station model: Available / Charging (1.6) or Available / Occupied (2.0.1)."""
        return self.version.minimal_status_requests(self.controller, self.config)

    async def send_status_notifications(self) -> None:
        """Every connector's status, as ``status_requests`` describes it (run each time the link is booted)."""
        for request in self.status_requests():
            try:
                await self.link.call(request)
            except (TimeoutError, OcppNotReady, OcppCallError, OutgoingPayloadRefused) as error:
                log.warning("OCPP StatusNotification not delivered: %s", error)

    async def start(self) -> None:
        for part in self.parts:
            if hasattr(part, "start"):
                await part.start()
        await self.link.start()

    async def stop(self) -> None:
        await self.link.stop()
        for part in reversed(self.parts):
            if hasattr(part, "stop"):
                await part.stop()
        self.frame_log.close()

    def view(self) -> dict[str, Any]:
        """GET /ocpp: configuration (no secrets), connection, boot, last frames, queue depth, composite limit."""
        state = self.link.state.to_dict()
        view: dict[str, Any] = {
            "enabled": True, "version": self.config.version, "url": self.config.connect_url,
            "station_id": self.config.station_id, "security_profile": self.config.security_profile,
            **state, "queue_depth": self.queue_depth(), "composite_limit": self.composite_limit(),
            "last_frames": list(self.frame_log.recent)[-VIEW_FRAMES:],
        }
        for part in self.parts:
            if hasattr(part, "view"):
                view.update(part.view())
        return view

    def write_metrics(self, writer: MetricWriter) -> None:
        self.frame_log.write_metrics(writer)
        for part in self.parts:  # the parts' own counters (the queue's dropped messages)
            if hasattr(part, "write_metrics"):
                part.write_metrics(writer)
