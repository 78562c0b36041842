"""The Live Controller HTTP API (the spec's endpoints, plus additive ones): the app and where it comes from.

``create_app`` builds the app from the HTTP service's parts in ``ccs_sim.http``: the rate limit (429 per client
address, ``app.state.rate_limiter``) and access-control middlewares,
the API's error shape and one router per job (session, readings, control, faults; ``/sim`` only when the hardware
adapter offers simulation controls), then the records, metrics and dashboard routers. The logic is in
``ChargerController``; routes reach it through ``request.app.state.controller``.

``create_app(controller)`` serves a controller you built (tests, the launcher); the module-level ``app``
(for ``uvicorn ccs_sim.fastapi_app:app``) builds its controller from settings when it starts, never at import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from ccs_sim import __version__
from ccs_sim.controller import ChargerController
from ccs_sim.http import control_routes, fault_routes, readings_routes, session_routes
from ccs_sim.http.access import AccessControlMiddleware, AccessPolicy, document_access_control
from ccs_sim.http.errors import install_error_handlers
from ccs_sim.http.rate_limit import RateLimiter, RateLimitMiddleware, document_rate_limit
from ccs_sim.http.routing import add_router_routes
from ccs_sim.http.sim_routes import include_simulation_routes
from ccs_sim.observability.metrics import ControllerMetrics
from ccs_sim.settings import ControllerSettings
from ccs_sim.startup_errors import StartupErrorReporting

if TYPE_CHECKING:
    from ccs_sim.ocpp.config import OcppConfig
    from ccs_sim.runtime import Operations

#: The spec's routers (and their additive routes), in the order the app matches and documents them.
API_ROUTERS = (session_routes.router, readings_routes.router, control_routes.router, fault_routes.router)


def create_app(controller: ChargerController | None = None, settings: ControllerSettings | None = None,
               operations: Operations | None = None, ocpp_config: OcppConfig | None = None) -> FastAPI:
    """The API for ``controller``; without one, a controller is built from ``settings`` at start-up, with
    its session records (``settings.data_dir``), metrics and log binding (``runtime.attach_operations``).
    With a controller, pass the ``operations`` you attached to it, if any (records then appear under
    ``/sessions``; without them ``/sessions`` answers 503 and ``/metrics`` counts from now on).
    A controller built here gets the OCPP client of ``ocpp_config`` (else of ``CCS_SIM_OCPP_*``, if set);
    with yours, start it yourself (``runtime.start_ocpp``) on the ``operations`` you pass."""

    def install(app: FastAPI, ops: Operations) -> None:
        app.state.operations = ops
        app.state.session_store = ops.store
        app.state.metrics = ops.metrics
        ops.metrics.access = access_policy

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if controller is not None:
            app.state.controller = controller
            yield
            return
        from ccs_sim.runtime import attach_operations, build_controller, ocpp_config_from_environment, start_ocpp

        owned = build_controller(settings or ControllerSettings())
        ops = await attach_operations(owned)  # before start: a dead process's sessions are closed first
        install(app, ops)
        include_simulation_routes(app, owned)  # /sim only where the adapter offers simulation controls
        await owned.start()
        app.state.controller = owned
        try:
            await start_ocpp(owned, ops, ocpp_config if ocpp_config is not None else ocpp_config_from_environment())
            yield
        finally:
            await owned.shutdown()
            await ops.close()

    app = FastAPI(title="CCS DC Live Controller", version=__version__, lifespan=lifespan,
                  description="Start/stop charging sessions, control contactor/PWM/CP, inject faults, "
                              "read status, metering and the vehicle's BMS/SLAC/ISO 15118 views.")

    def current_settings() -> ControllerSettings:
        serving = getattr(app.state, "controller", None)
        return serving.settings if serving is not None else settings or ControllerSettings()

    def current_token() -> str | None:
        return current_settings().api_token

    def allowed_hosts() -> list[str]:
        return current_settings().allowed_hosts

    access_policy = AccessPolicy(current_token, allowed_hosts_provider=allowed_hosts)
    app.add_middleware(AccessControlMiddleware, policy=access_policy)
    # Outside access control: a flood is answered 429 before anything else reads it; refusals are counted
    # with the access policy's (``ccs_api_rejected_requests_total{reason="rate_limited"|"too_many_streams"}``).
    rate_limiter = RateLimiter(current_settings, rejections=access_policy.rejections)
    app.add_middleware(RateLimitMiddleware, limiter=rate_limiter)
    app.add_middleware(StartupErrorReporting)  # a refused start-up (e.g. records database in use): one line
    document_access_control(app, access_policy)
    document_rate_limit(app)
    app.state.access = access_policy
    app.state.rate_limiter = rate_limiter
    if controller is not None:
        app.state.controller = controller
        if operations is not None:
            install(app, operations)
        else:
            app.state.metrics = ControllerMetrics(controller).attach()
            app.state.metrics.access = access_policy

    install_error_handlers(app)
    for router in API_ROUTERS:
        add_router_routes(app, router)
    if controller is not None:  # a controller built at start-up gets them in the lifespan
        include_simulation_routes(app, controller)

    from ccs_sim.dashboard import router as dashboard_router
    from ccs_sim.observability.metrics import router as metrics_router
    from ccs_sim.observability.records_api import router as records_router
    from ccs_sim.ocpp.routes import router as ocpp_router

    app.include_router(records_router)
    app.include_router(metrics_router)
    app.include_router(dashboard_router)
    app.include_router(ocpp_router)
    return app


#: For ``uvicorn ccs_sim.fastapi_app:app``: settings from the environment (CCS_SIM_*), hardware built at start-up.
app = create_app()
