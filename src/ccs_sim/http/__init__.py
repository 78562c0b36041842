"""The Live Controller's HTTP service: access control, request bodies, error shape and the routers.

``ccs_sim.fastapi_app.create_app`` builds the app from these parts (bottom to top):

- ``rate_limit``: the ASGI per-client rate limit and cap on open ``/stream`` responses (429, ``Retry-After``);
- ``access``: the ASGI access-control middleware (token, body size, CSRF, Host) and its OpenAPI notes;
- ``api_models``: the request bodies (the spec's fields; extras are additive);
- ``errors``: the API's error shape (``{"status": "error", "message": ...}``) and the framework's errors in it;
- ``view_bodies``: the read views' JSON, encoded once per view dict for every reader;
- ``routing``: how a route reaches the controller, and how a router's routes join the app;
- one router per job: ``session_routes`` (start/stop), ``readings_routes`` (status, meter, vehicle views,
  health), ``control_routes`` (contactor, PWM, CP state), ``fault_routes`` (inject a fault, the catalogue),
  and ``sim_routes`` (``/sim``, only where the hardware adapter offers simulation controls).

Routes hold no logic: they turn a request into one ``ChargerController`` call and its answer into JSON.
"""
