"""The EVSE controller behind the SECC, chosen by name (``--controller sim|hal``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from iso15118.secc.controller.interface import EVSEControllerInterface
from iso15118.secc.controller.simulator import SimEVSEController
from iso15118.shared.messages.enums import Protocol

from evse_hal.iso15118.evse_id import din_evse_id, iso_15118_2_evse_id
from evse_secc.errors import LaunchError
from evse_secc.options import ControllerName

if TYPE_CHECKING:
    from evse_hal.iso15118.charger_port import ChargerPort


class SimEVSEControllerWithId(SimEVSEController):
    """iso15118's own SimEVSEController (the baseline), unchanged except that it reports our EVSE ID."""

    def __init__(self, evse_id: str) -> None:
        super().__init__()
        self._evse_id = evse_id

    async def get_evse_id(self, protocol: Protocol) -> str:
        if protocol == Protocol.DIN_SPEC_70121:
            return din_evse_id(self._evse_id)
        if protocol == Protocol.ISO_15118_2:
            return iso_15118_2_evse_id(self._evse_id)
        return self._evse_id


def build_controller(name: ControllerName, evse_id: str | None,
                     charger: ChargerPort | None = None) -> EVSEControllerInterface:
    """The SECC's EVSE controller; ``hal`` needs the ``charger`` (the one ChargerController the API uses, as the
    glue's ``ChargerPort``)."""
    if name == "sim":
        return SimEVSEController() if evse_id is None else SimEVSEControllerWithId(evse_id)
    if name == "hal":
        if charger is None:
            raise LaunchError("--controller hal needs the charger controller (evse_main builds it)")
        return build_hal_controller(evse_id, charger)
    raise LaunchError(f"unknown controller {name!r} (known: sim, hal)")


def build_hal_controller(evse_id: str | None, charger: ChargerPort) -> EVSEControllerInterface:
    """Our HalEVSEController on ``charger`` (the shared HAL, session state and safety supervisor)."""
    from evse_hal.iso15118_hal_controller import HalEVSEController

    return HalEVSEController(charger, evse_id)
