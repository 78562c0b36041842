"""The HTTP front process: the API's public address served by a process of its own (``ccs-sim serve --front-process``).

Why: in one process, whatever the API, the dashboard streams and their clients cost runs on the same interpreter
as the control loop's thread, and a flood of readers delays its ticks by holding the interpreter lock (BENCHMARKS.md,
"Supervision under load"). With a front process the flood lands on another interpreter: the front checks access
and rate (``ccs_sim.http.access``, ``ccs_sim.http.rate_limit``), answers ``GET /status``, ``/meter`` and
``/dashboard/snapshot`` from a copy at most one control period old (``view_cache``), fans one upstream ``/stream``
out to every subscriber (``stream_fan_out``) and forwards every other request to the controller's own app
(``proxy``) over a private Unix socket, which the controller serves as checked (``ccs_sim.http.trusted_front``).
``process`` starts and watches the front from the controller's process; ``python -m ccs_sim.front`` is the front.
"""
