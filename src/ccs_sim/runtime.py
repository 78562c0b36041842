"""Wiring: settings → clock → hardware (registry) → controller (+ records, metrics), nothing done at import time."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ccs_sim.controller import ChargerController
from ccs_sim.observability.logs import SessionLogBinder
from ccs_sim.observability.metrics import ControllerMetrics
from ccs_sim.observability.records import AsyncSessionStore, SessionRecorder, default_database_path
from ccs_sim.orchestrator import SimSessionDriver
from ccs_sim.settings import ControllerSettings
from ccs_sim.startup_errors import StartupRefused
from evse_hal.registry import AdapterOptionError, UnknownAdapterError, check_adapter_options, create_hardware
from evse_model.clock import Clock, RealClock, ScaledClock

if TYPE_CHECKING:
    from ccs_sim.ocpp.client import OcppClient
    from ccs_sim.ocpp.config import OcppConfig


class AdapterUnavailable(StartupRefused, ValueError):
    """The adapter the settings name is unknown, its options file unreadable, or its factory refused an option:
    one line, no traceback (also a ``ValueError``, as a bad setting)."""


def check_adapter_settings(settings: ControllerSettings) -> None:
    """Before anything is built: the adapter exists and its factory takes the options (file + key=value) the
    settings give it; else ``AdapterUnavailable`` with one line (unknown → the known adapters; which option)."""
    try:
        check_adapter_options(settings.adapter, settings.resolved_adapter_options())
    except (UnknownAdapterError, AdapterOptionError) as error:
        raise AdapterUnavailable(str(error)) from error


def make_clock(settings: ControllerSettings) -> Clock:
    """Hardware runs on the real clock; the simulation on a scaled one whose speed can change at run time."""
    if settings.adapter != "sim":
        return RealClock()
    return ScaledClock(settings.speed)


def build_controller(settings: ControllerSettings, clock: Clock | None = None) -> ChargerController:
    """A controller on the adapter the settings name, its factory given the settings' adapter options
    (``settings.resolved_adapter_options()``); not started: call ``await controller.start()``.

    ``AdapterUnavailable`` (one line) for an unknown adapter, an unreadable options file or an option its factory
    does not take."""
    if settings.adapter != "sim" and settings.speed != 1.0:
        raise ValueError("speed applies to the simulated adapter only; hardware runs in real time")
    clock = clock or make_clock(settings)
    try:
        hardware = create_hardware(settings.adapter, clock, **settings.resolved_adapter_options())
    except (UnknownAdapterError, AdapterOptionError) as error:
        raise AdapterUnavailable(str(error)) from error
    controller = ChargerController(hardware, clock, settings)
    controller.register_sim_driver(SimSessionDriver)
    return controller


@dataclass
class Operations:
    """What runs beside a controller: durable session records, metrics, session ids in the logs."""

    store: AsyncSessionStore
    recorder: SessionRecorder
    metrics: ControllerMetrics
    log_binder: SessionLogBinder
    #: The OCPP client when one is configured (``start_ocpp``), else None.
    ocpp: OcppClient | None = None

    async def close(self) -> None:
        """The OCPP client stopped, the final checkpoint of an open session (closed as interrupted), then the
        database."""
        if self.ocpp is not None:
            await self.ocpp.stop()
            self.ocpp = None
        await self.recorder.close()
        self.metrics.detach()
        self.log_binder.detach()
        await self.store.close()


async def attach_operations(controller: ChargerController, database_path: Path | None = None) -> Operations:
    """Open the session database (``settings.data_dir``/sessions.db unless ``database_path``), close the
    sessions a dead process left running as interrupted, and attach records, metrics and log binding to
    ``controller``. Call before ``controller.start()``.

    The database is this process's until ``Operations.close()`` (a lock beside it): ``RecordsUnavailable``
    (one line) if another live process owns it, or it is damaged or cannot be written; nothing is written."""
    path = database_path or controller.settings.records_db or default_database_path(controller.settings.data_dir)
    store = await AsyncSessionStore(path).open()
    log_binder = SessionLogBinder(controller).attach()  # first: the recorder's own log lines carry the id
    recorder = SessionRecorder(store, controller)
    try:
        await recorder.recover()
    except BaseException:
        log_binder.detach()
        await store.close()  # and its lock
        raise
    recorder.attach()
    metrics = ControllerMetrics(controller).attach()
    metrics.recorder = recorder
    return Operations(store=store, recorder=recorder, metrics=metrics, log_binder=log_binder)


async def start_ocpp(controller: ChargerController, operations: Operations, config: OcppConfig | None) -> None:
    """With a config, the OCPP client for ``controller`` (``operations.ocpp``; its counters in ``/metrics``),
    started: it connects and boots in the background. Without one nothing OCPP is imported or run."""
    if config is None:
        return
    from ccs_sim.ocpp.client import OcppClient

    client = OcppClient(controller, config, database_path=operations.store.path)
    operations.ocpp = client
    operations.metrics.extra_families.append(client.write_metrics)
    await client.start()


def ocpp_config_from_environment() -> OcppConfig | None:
    """``CCS_SIM_OCPP_*`` (and the file ``CCS_SIM_OCPP_CONFIG`` names) for a server started without flags
    (``uvicorn ccs_sim.fastapi_app:app``); None, importing nothing OCPP, when none is set."""
    import os

    if not any(key.startswith("CCS_SIM_OCPP_") and value for key, value in os.environ.items()):
        return None
    from ccs_sim.ocpp.config import build_ocpp_config

    return build_ocpp_config({})
