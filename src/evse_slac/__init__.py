"""ISO 15118-3 SLAC for the EVSE (a wrapper around ``pyslac``) and a simulated EV SLAC peer.

Modules, one job each:

* ``frames``        HomePlug Green PHY / SLAC management-message (MME) layouts: build and parse frames.
* ``network_key``   a fresh NMK and the NID derived from it.
* ``raw_socket``    AF_PACKET sockets bound to the HomePlug ethertype (asyncio helpers).
* ``modem_key``     the EVSE host's CM_SET_KEY step towards its PLC modem (replaces pyslac's fixed 50 s / 10 s).
* ``pyslac_loader`` imports ``pyslac.session`` without letting it reconfigure the root logger; loads its Config.
* ``status``        the snapshot returned by ``SlacService.status()``.
* ``evse_slac``     ``SlacService``: the EVSE side, fed with control-pilot states.
* ``ev_peer``       a simulated EV (plus the EVSE modem's frames a veth cannot produce); CLI.
* ``evse_runner``   ``SlacService`` driven from stdin, reporting JSON lines (tests, benchmarks, manual use).
* ``processes``     runs ``evse_runner`` / ``ev_peer`` as child processes (e.g. inside network namespaces).

Importing this package has no side effects (``pyslac.session`` is imported on first use).
"""
