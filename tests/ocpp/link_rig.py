"""A link (or a client) to the test CSMS with short intervals: one protocol second lasts ``PROTOCOL_SECOND_S``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from csms import TestCsms

from ccs_sim.ocpp import v16, v201
from ccs_sim.ocpp.config import OcppConfig
from ccs_sim.ocpp.link import OcppLink

#: The CSMS's whole-second intervals (Heartbeat, boot retry) last 10 ms on the tests' links.
PROTOCOL_SECOND_S = 0.01
VERSIONS = ("1.6", "2.0.1")
STATION_ID = "CS1"


def version_module(version: str) -> Any:
    return v16 if version == "1.6" else v201


def make_config(csms: TestCsms, version: str, **overrides: Any) -> OcppConfig:
    settings: dict[str, Any] = {"url": csms.url, "station_id": STATION_ID, "version": version,
                                "call_timeout_s": 2.0, "reconnect_min_s": 0.02, "reconnect_max_s": 0.08}
    settings.update(overrides)
    return OcppConfig(**settings).check()


def make_link(config: OcppConfig, mixins: tuple[type, ...] = ()) -> OcppLink:
    return OcppLink(config, version_module(config.version).build_protocol(mixins),
                    protocol_second_s=PROTOCOL_SECOND_S)


async def wait_booted(link: OcppLink, timeout_s: float = 5.0) -> None:
    await asyncio.wait_for(link.booted.wait(), timeout_s)


async def wait_state(link: OcppLink, predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate(link.state):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"link state not reached within {timeout_s} s: {link.state}")
        await asyncio.sleep(0.005)


def assert_one_outstanding_call(csms: TestCsms) -> None:
    """The station never sent a CALL while one of its CALLs was unanswered."""
    waiting: str | None = None
    for frame in csms.frames:
        if frame.direction == "in" and frame.type == "CALL":
            assert waiting is None, f"{frame.action} sent while {waiting} was unanswered"
            waiting = frame.unique_id
        elif frame.direction == "out" and frame.type in ("CALLRESULT", "CALLERROR") and frame.unique_id == waiting:
            waiting = None


def gaps_s(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


def controller_for(data_dir: Path) -> Any:
    """A controller (simulated adapter, manual clock, not started) whose records live in ``data_dir``."""
    from ccs_sim.runtime import build_controller
    from ccs_sim.settings import ControllerSettings
    from evse_model.clock import ManualClock

    return build_controller(ControllerSettings(data_dir=data_dir), clock=ManualClock())
