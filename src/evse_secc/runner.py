"""Run iso15118's SECC on the current asyncio loop until cancelled.

``SECCHandler.start()`` is meant to run forever; iso15118's ``wait_for_tasks`` logs and swallows an
exception from its UDP/TCP tasks and then returns, so a return is reported here as an error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from iso15118.secc import SECCHandler
from iso15118.secc.controller.interface import EVSEControllerInterface, ServiceStatus
from iso15118.shared.iexi_codec import IEXICodec

from evse_secc.errors import LaunchError
from evse_secc.secc_config import SeccSetup

logger = logging.getLogger(__name__)

READY_POLL_INTERVAL_S = 0.01
READY_TIMEOUT_S = 10.0  # iso15118's own server start-up timeout (comm_session_handler.check_status_task)


async def run_secc(setup: SeccSetup, controller: EVSEControllerInterface, codec: IEXICodec,
                   on_ready: Callable[[], None] = lambda: None) -> None:
    """Serve EVs on ``setup.config.iface`` until cancelled; ``on_ready`` runs once SDP is being served."""
    await controller.set_status(ServiceStatus.STARTING)
    handler = SECCHandler(exi_codec=codec, evse_controller=controller, config=setup.config)
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
    raise LaunchError("the SECC stopped on its own (its log above says why)")


async def _announce_ready(handler: SECCHandler, on_ready: Callable[[], None]) -> None:
    # The UDP (SDP) server registers its ready event in handler.status_event_list when it starts.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    while not (handler.udp_server is not None and handler.status_event_list and handler.check_events()):
        if loop.time() > deadline:
            logger.error("SECC not ready after %.0f s", READY_TIMEOUT_S)
            return
        await asyncio.sleep(READY_POLL_INTERVAL_S)
    on_ready()
