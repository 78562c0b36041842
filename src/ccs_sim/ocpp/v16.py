"""OCPP 1.6J: the station's ChargePoint class and the requests of the link and the station model.

The ChargePoint is assembled from mixins (``build_protocol(mixins)``): the handlers of the CSMS's CALLs
(O3's ``v16_commands``) and anything else that needs the live connection come first, the ``ocpp`` package's
``ocpp.v16.ChargePoint`` last. Each instance gets ``link`` (the OcppLink) and ``context`` (the OcppClient).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ocpp.v16 import ChargePoint as PackageChargePoint
from ocpp.v16 import call

from ccs_sim import __version__
from ccs_sim.ocpp.config import OcppConfig
from ccs_sim.ocpp.date_time_check import format_date_time
from ccs_sim.ocpp.link import OcppProtocol
from evse_model.session import Phase

VERSION = "1.6"


def boot_request(config: OcppConfig) -> call.BootNotification:
    return call.BootNotification(charge_point_model=config.model[:20], charge_point_vendor=config.vendor[:20],
                                 firmware_version=__version__[:50])


def heartbeat_request() -> call.Heartbeat:
    return call.Heartbeat()


def status_notification_request(connector_id: int, status: str, timestamp: datetime | None = None,
                                error_code: str = "NoError", info: str | None = None) -> call.StatusNotification:
    """1.6 §6.48: ``status`` a ChargePointStatus (Available, Preparing, Charging, SuspendedEV, SuspendedEVSE,
    Finishing, Reserved, Unavailable, Faulted), ``error_code`` a ChargePointErrorCode."""
    return call.StatusNotification(connector_id=connector_id, error_code=error_code, status=status,
                                   timestamp=format_date_time(timestamp) if timestamp else None, info=info)


def minimal_connector_status(phase: Phase) -> str:
    """Placeholder until the station model (O2's ``station_model``) owns the status: Charging in a session's
    CHARGING phase, else Available."""
    return "Charging" if phase == Phase.CHARGING else "Available"


def minimal_status_requests(controller: Any, config: OcppConfig) -> list[call.StatusNotification]:
    """The StatusNotifications the station sends once booted: its one connector (placeholder mapping)."""
    return [status_notification_request(config.connector_id, minimal_connector_status(controller.phase),
                                        controller.clock.utcnow())]


def build_protocol(mixins: Sequence[type] = ()) -> OcppProtocol:
    """1.6J for the link, its ChargePoint class built from ``mixins`` + the package's 1.6 ChargePoint."""
    charge_point_class = type("StationChargePoint16", (*mixins, PackageChargePoint), {})
    return OcppProtocol(version=VERSION, charge_point_class=charge_point_class, boot_request=boot_request,
                        heartbeat_request=heartbeat_request)
