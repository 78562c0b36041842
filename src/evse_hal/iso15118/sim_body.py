"""The simulated body of an ISO 15118 EV stack (sim adapter only).

When the SECC talks to an EV stack under test (iso15118's EVCC, ``evse_ev``) on the simulated adapter, the
stack is the car's brain and the simulated plant holds its body: the CP resistor network, the EV contactor
and a battery. The body is put on the cable through the adapter's simulation controls
(``prepare_hlc_car``), never by writing into the simulated car: everything else the body does it takes from
the wire (the 5 % PWM offer closes S2, its contactor closes within 20 V of its pack and opens when the
output disappears).

- At the session's start the body arrives with its pack voltage not yet known: a pack above anything the
  charger can output (its maximum + ``UNKNOWN_PACK_MARGIN_V``), so its contactor stays open through the cable
  check (the insulation test must see the cable alone, and the output must discharge below 60 V after it).
- At the first credible precharge target (above 60 V, within the EV's and the charger's maxima) the body is
  the pack the EV stack asked to precharge to; an EV whose precharge target is not credible (the -20 EVCC
  asks 20 kV) gets its pack at its first charge-loop target instead.
"""

from __future__ import annotations

import logging

from evse_hal.simulation import SimulationControls, simulation_controls
from evse_model import standards

logger = logging.getLogger(__name__)

#: The "not yet known" pack sits this far above the charger's maximum output: twice the 20 V window in which
#: a contactor may close (IEC 61851-23 CC.5.2), so no output of the charger comes near it.
UNKNOWN_PACK_MARGIN_V = 2 * standards.CONTACTOR_CLOSE_MAX_DELTA_V


def is_credible_pack_voltage(voltage_V: float, evse_max_voltage_V: float, ev_max_voltage_V: float | None) -> bool:
    """A precharge target that can be a battery's voltage: above 60 V, within our and the EV's maximum."""
    return standards.SAFE_DC_VOLTAGE_V < voltage_V <= evse_max_voltage_V and \
        (ev_max_voltage_V is None or voltage_V <= ev_max_voltage_V)


class SimulatedEvStackBody:
    """Puts the EV stack's body on the simulated cable, once per session, through the simulation controls."""

    def __init__(self, controls: SimulationControls, evse_max_voltage_V: float, evse_max_current_A: float) -> None:
        self._controls = controls
        self._evse_max_voltage_V = evse_max_voltage_V
        self._evse_max_current_A = evse_max_current_A
        self.pack_known = False

    @classmethod
    def on(cls, hw: object, evse_max_voltage_V: float, evse_max_current_A: float) -> SimulatedEvStackBody | None:
        """The body on adapter ``hw``, or None when ``hw`` offers no simulation controls (real hardware)."""
        controls = simulation_controls(hw)
        if controls is None:
            return None
        return cls(controls, evse_max_voltage_V, evse_max_current_A)

    def arrive(self) -> None:
        """A new session: the body plugs in (CP B, C once the 5 % PWM is offered), its pack not yet known."""
        self.pack_known = False
        self._controls.prepare_hlc_car(self._evse_max_voltage_V + UNKNOWN_PACK_MARGIN_V, self._evse_max_current_A)

    def pack_at(self, pack_voltage_V: float, ev_max_current_A: float | None) -> None:
        """The EV stack named its battery's voltage: the body's pack sits there (once per session)."""
        if self.pack_known:
            return
        current_A = min(ev_max_current_A or self._evse_max_current_A, self._evse_max_current_A)
        self._controls.prepare_hlc_car(pack_voltage_V, current_A)
        self.pack_known = True
        logger.info("simulated car: pack at %.1f V behind the EV stack", pack_voltage_V)
