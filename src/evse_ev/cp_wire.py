"""The stand-in for the control-pilot wire: how the simulated EV shows B (plugged), C (ready) and A (unplugged).

* ``ApiCpWire``: the Live Controller API's POST /control/cp_state, which makes the simulated car of the sim
  adapter present that state (its simulation controls' CP wire); the charger measures it on its next
  control tick, as it would a wire. A controller whose adapter offers no simulation controls has no
  ``/sim`` routes and refuses that command: the CP is then a real wire, and this one drives nothing.
* ``NoCpWire``: nothing to drive (a real or foreign SECC whose CP is wired elsewhere): SLAC and the EVCC
  run on the interface alone.
"""

from __future__ import annotations

from typing import Protocol

from evse_ev.api_client import ApiClient, ApiError


class CpWire(Protocol):
    async def set_state(self, state: str) -> None: ...


class ApiCpWire:
    def __init__(self, client: ApiClient) -> None:
        self.client = client
        #: Whether the controller offers simulation controls (its ``GET /sim`` exists); asked once, at the first state.
        self.controller_simulates: bool | None = None

    async def set_state(self, state: str) -> None:
        if self.controller_simulates is None:
            self.controller_simulates = await self._controller_simulates()
        if self.controller_simulates:
            await self.client.apost("/control/cp_state", {"state": state})

    async def _controller_simulates(self) -> bool:
        try:
            await self.client.aget("/sim")
        except ApiError as error:
            if ": HTTP 404:" in str(error):  # no simulation controls on that adapter: no simulated CP to drive
                return False
            raise
        return True


class NoCpWire:
    async def set_state(self, state: str) -> None:
        return None
