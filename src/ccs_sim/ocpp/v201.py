"""OCPP 2.0.1: the station's ChargePoint class and the requests of the link and the station model.

The ChargePoint is assembled from mixins (``build_protocol(mixins)``): the handlers of the CSMS's CALLs
(O3's ``v201_commands``) and anything else that needs the live connection come first, the ``ocpp`` package's
``ocpp.v201.ChargePoint`` last. Each instance gets ``link`` (the OcppLink) and ``context`` (the OcppClient).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ocpp.v201 import ChargePoint as PackageChargePoint
from ocpp.v201 import call, datatypes

from ccs_sim import __version__
from ccs_sim.ocpp.config import OcppConfig
from ccs_sim.ocpp.date_time_check import format_date_time
from ccs_sim.ocpp.link import OcppProtocol

VERSION = "2.0.1"


def boot_request(config: OcppConfig, reason: str = "PowerUp") -> call.BootNotification:
    """B01: ``reason`` a BootReasonEnumType (PowerUp at start-up; RemoteReset, ScheduledReset, ... after one)."""
    station = datatypes.ChargingStationType(vendor_name=config.vendor[:50], model=config.model[:20],
                                            firmware_version=__version__[:50])
    return call.BootNotification(charging_station=station, reason=reason)


def heartbeat_request() -> call.Heartbeat:
    return call.Heartbeat()


def status_notification_request(evse_id: int, connector_id: int, status: str,
                                timestamp: datetime) -> call.StatusNotification:
    """G01: ``status`` a ConnectorStatusEnumType (Available, Occupied, Reserved, Unavailable, Faulted)."""
    return call.StatusNotification(timestamp=format_date_time(timestamp), connector_status=status,
                                   evse_id=evse_id, connector_id=connector_id)


def minimal_connector_status(session_active: bool) -> str:
    """Placeholder until the station model (O2's ``station_model``) owns the status: Occupied during a session,
    else Available."""
    return "Occupied" if session_active else "Available"


def minimal_status_requests(controller: Any, config: OcppConfig) -> list[call.StatusNotification]:
    """The StatusNotifications the station sends once booted: its one EVSE's connector (placeholder mapping)."""
    return [status_notification_request(config.evse_id, config.connector_id,
                                        minimal_connector_status(controller.session_active),
                                        controller.clock.utcnow())]


def build_protocol(mixins: Sequence[type] = ()) -> OcppProtocol:
    """2.0.1 for the link, its ChargePoint class built from ``mixins`` + the package's 2.0.1 ChargePoint."""
    charge_point_class = type("StationChargePoint201", (*mixins, PackageChargePoint), {})
    return OcppProtocol(version=VERSION, charge_point_class=charge_point_class, boot_request=boot_request,
                        heartbeat_request=heartbeat_request)
