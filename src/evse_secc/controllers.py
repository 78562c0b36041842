"""The EVSE controller behind the SECC, chosen by name (``--controller sim|hal``)."""

from __future__ import annotations

import importlib.util

from iso15118.secc.controller.interface import EVSEControllerInterface
from iso15118.shared.messages.enums import Protocol
from iso15118.secc.controller.simulator import SimEVSEController

from evse_secc.errors import LaunchError
from evse_secc.evse_id import din_evse_id
from evse_secc.options import ControllerName

HAL_CONTROLLER_MODULE = "evse_hal.iso15118_hal_controller"


class SimEVSEControllerWithId(SimEVSEController):
    """iso15118's own SimEVSEController (the baseline), unchanged except that it reports our EVSE ID."""

    def __init__(self, evse_id: str) -> None:
        super().__init__()
        self._evse_id = evse_id

    async def get_evse_id(self, protocol: Protocol) -> str:
        if protocol == Protocol.DIN_SPEC_70121:
            return din_evse_id(self._evse_id)
        return self._evse_id


def build_controller(name: ControllerName, evse_id: str | None) -> EVSEControllerInterface:
    if name == "sim":
        return SimEVSEController() if evse_id is None else SimEVSEControllerWithId(evse_id)
    if name == "hal":
        return build_hal_controller(evse_id)
    raise LaunchError(f"unknown controller {name!r} (known: sim, hal)")


def build_hal_controller(evse_id: str | None) -> EVSEControllerInterface:
    """HOOK: construct our HalEVSEController (evse_hal.iso15118_hal_controller) on the shared HAL.

    To be wired when the HAL controller and the core session controller exist: build (or receive)
    the one HAL instance and session controller the API also uses, and return
    ``HalEVSEController(...)`` backed by them. Until then the launcher stops with a clear message.
    """
    if importlib.util.find_spec(HAL_CONTROLLER_MODULE) is None:
        raise LaunchError("--controller hal is not available yet: evse_hal/iso15118_hal_controller.py is "
                          "not written; use --controller sim (iso15118's SimEVSEController)")
    raise LaunchError("--controller hal is not wired into the launcher yet "
                      "(evse_secc.controllers.build_hal_controller); use --controller sim")
