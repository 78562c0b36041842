"""Run iso15118's SECC on the current asyncio loop until cancelled.

``SECCHandler.start()`` is meant to run forever; iso15118's ``wait_for_tasks`` logs and swallows an
exception from its UDP/TCP tasks and then returns, so a return is reported here as an error.

The SECC is ``evse_secc.v2gtp_guard.GuardedSECCHandler`` (whole V2GTP frames per read, bad frames refused).
When ``run_secc`` ends (cancelled by the launcher's supervisor, or failed), nothing of that SECC keeps
running: its communication sessions, TCP server and SDP socket are stopped too, so a new one can start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from iso15118.secc.controller.interface import EVSEControllerInterface, ServiceStatus
from iso15118.shared.iexi_codec import IEXICodec

from evse_secc.errors import LaunchError
from evse_secc.secc_config import SeccSetup
from evse_secc.v2gtp_guard import GuardedSECCHandler

logger = logging.getLogger(__name__)

READY_POLL_INTERVAL_S = 0.01
READY_TIMEOUT_S = 10.0  # iso15118's own server start-up timeout (comm_session_handler.check_status_task)
STOP_TIMEOUT_S = 2.0  # for the tasks of a SECC being stopped to finish once cancelled


async def run_secc(setup: SeccSetup, controller: EVSEControllerInterface, codec: IEXICodec,
                   on_ready: Callable[[], None] = lambda: None) -> None:
    """Serve EVs on ``setup.config.iface`` until cancelled; ``on_ready`` runs once SDP is being served."""
    await controller.set_status(ServiceStatus.STARTING)
    handler = GuardedSECCHandler(exi_codec=codec, evse_controller=controller, config=setup.config)
    serving = asyncio.create_task(handler.start(setup.config.iface), name="iso15118-secc")
    watcher = asyncio.create_task(_announce_ready(handler, on_ready), name="iso15118-secc-ready")
    try:
        await serving
    except PermissionError as exc:
        raise LaunchError(f"permission denied in the SECC ({exc}); run as root or with CAP_NET_RAW") from exc
    except OSError as exc:
        raise LaunchError(f"the SECC stopped: {exc}") from exc
    finally:
        watcher.cancel()
        serving.cancel()
        await _stop_handler(handler)
    raise LaunchError("the SECC stopped on its own (its log above says why)")


async def _stop_handler(handler: GuardedSECCHandler) -> None:
    """Stop what the package started beside ``handler.start()`` (it cancels only its own gathered tasks):
    the communication sessions' tasks and connections, the TCP server task and socket, the SDP socket."""
    tasks = [task for _session, task in handler.comm_sessions.values()]
    if handler.tcp_server_handler is not None:
        tasks.append(handler.tcp_server_handler)
    for task in tasks:
        task.cancel()
    for comm_session, _task in handler.comm_sessions.values():
        writer = getattr(comm_session, "writer", None)
        if writer is not None:
            writer.close()
    tcp_server = getattr(handler.tcp_server, "server", None)
    if tcp_server is not None:
        tcp_server.close()
    udp_transport = getattr(handler.udp_server, "_transport", None)
    if udp_transport is not None:
        udp_transport.close()
    pending = [task for task in tasks if not task.done()]
    if pending:
        _done, still_running = await asyncio.wait(pending, timeout=STOP_TIMEOUT_S)
        if still_running:
            logger.error("%d SECC task(s) still running %.0f s after being cancelled", len(still_running),
                         STOP_TIMEOUT_S)


async def _announce_ready(handler: GuardedSECCHandler, on_ready: Callable[[], None]) -> None:
    # The UDP (SDP) server registers its ready event in handler.status_event_list when it starts.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    while not (handler.udp_server is not None and handler.status_event_list and handler.check_events()):
        if loop.time() > deadline:
            logger.error("SECC not ready after %.0f s", READY_TIMEOUT_S)
            return
        await asyncio.sleep(READY_POLL_INTERVAL_S)
    on_ready()
