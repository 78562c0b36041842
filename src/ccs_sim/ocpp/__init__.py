"""The OCPP client (1.6J and 2.0.1): the charger as a charging station of an operator's CSMS.

Off unless configured (``--ocpp-url``, ``CCS_SIM_OCPP_URL`` or an ``--ocpp-config`` file): importing this package
imports nothing else; the ``ocpp`` and ``websockets`` packages are imported only when a client is built.

Parts (each one job): ``config`` (OcppConfig from flags, environment, file), ``link`` (OcppLink: the websocket,
security profiles, reconnect, BootNotification, Heartbeat, one call at a time, timeouts), ``date_time_check``
(outgoing date-time fields checked against the schemas), ``frame_log`` (last frames, per-session file, counters),
``v16`` / ``v201`` (the version's ChargePoint and requests), ``client`` (OcppClient: everything for one controller),
``routes`` (GET /ocpp).
"""
