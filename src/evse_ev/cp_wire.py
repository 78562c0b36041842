"""The stand-in for the control-pilot wire: how the simulated EV shows B (plugged), C (ready) and A (unplugged).

* ``ApiCpWire``: the Live Controller API's POST /control/cp_state, which puts the simulated HAL's car
  resistor network into that state; the charger measures it on its next control tick, as it would a wire.
* ``NoCpWire``: nothing to drive (a real or foreign SECC whose CP is wired elsewhere): SLAC and the EVCC
  run on the interface alone.
"""

from __future__ import annotations

from typing import Protocol

from evse_ev.api_client import ApiClient


class CpWire(Protocol):
    async def set_state(self, state: str) -> None: ...


class ApiCpWire:
    def __init__(self, client: ApiClient) -> None:
        self.client = client

    async def set_state(self, state: str) -> None:
        await self.client.apost("/control/cp_state", {"state": state})


class NoCpWire:
    async def set_state(self, state: str) -> None:
        return None
