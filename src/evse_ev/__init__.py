"""A simulated EV, as a tool of the project: plugs in (CP through the simulated HAL), matches SLAC, runs the
ISO 15118 EVCC with a battery that charges from what the EVSE actually delivered, unplugs.

Modules, one job each:

* ``battery``     the EV's pack: SOC from ∫ EVSE present voltage × present current dt; requests from a preset.
* ``cp_wire``     the stand-in for the CP wire: the Live Controller API's POST /control/cp_state (or nothing).
* ``api_client``  a tiny stdlib HTTP client for the Live Controller API (IPv6 link-local over the veth works).
* ``evcc``        the iso15118 EVCC with ``BatteryEVController`` (a ``SimEVController`` subclass) and a codec
                  wrapper that hands every CurrentDemandRes / DC_ChargeLoopRes to the battery.
* ``plugin``      one plug-in: B → SLAC (``evse_slac.ev_peer``) → C → EVCC session → B → A.
* ``cli``         ``python -m evse_ev``: the tool's command line, JSON lines on stdout.

Runs in the project's environment (.venv): ``iso15118`` is loaded through ``evse_hal.iso15118.compat``
(installed here, before any ``iso15118`` import), as ``evse_secc`` does.
"""

from evse_hal.iso15118 import compat

compat.install()
