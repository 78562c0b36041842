"""The Live Controller HTTP API (the spec's endpoints, plus additive ones). Routes only: the logic is in
``ChargerController``. The simulation's ``/sim`` routes (``sim_routes``) are there only when the hardware
adapter offers simulation controls.

``create_app(controller)`` serves a controller you built (tests, the launcher); the module-level ``app``
(for ``uvicorn ccs_sim.fastapi_app:app``) builds its controller from settings when it starts, never at import.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ccs_sim import __version__
from ccs_sim.access import AccessControlMiddleware, AccessPolicy, document_access_control
from ccs_sim.api_models import (
    ContactorRequest,
    CPStateRequest,
    FaultRequest,
    PWMRequest,
    StartSessionRequest,
)
from ccs_sim.controller import ChargerController, CommandRefused
from ccs_sim.observability.metrics import ControllerMetrics
from ccs_sim.settings import ControllerSettings
from ccs_sim.sim_routes import include_simulation_routes
from ccs_sim.startup_errors import StartupErrorReporting
from evse_model.faults import FAULT_CATALOGUE
from evse_model.session import SessionParams

if TYPE_CHECKING:
    from ccs_sim.runtime import Operations


def _error(message: str, **extra: Any) -> dict[str, Any]:
    return {"status": "error", "message": message, **extra}


def create_app(controller: ChargerController | None = None, settings: ControllerSettings | None = None,
               operations: Operations | None = None) -> FastAPI:
    """The API for ``controller``; without one, a controller is built from ``settings`` at start-up, with
    its session records (``settings.data_dir``), metrics and log binding (``runtime.attach_operations``).
    With a controller, pass the ``operations`` you attached to it, if any (records then appear under
    ``/sessions``; without them ``/sessions`` answers 503 and ``/metrics`` counts from now on)."""

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
        from ccs_sim.runtime import attach_operations, build_controller

        owned = build_controller(settings or ControllerSettings())
        ops = await attach_operations(owned)  # before start: a dead process's sessions are closed first
        install(app, ops)
        include_simulation_routes(app, owned)  # /sim only where the adapter offers simulation controls
        await owned.start()
        app.state.controller = owned
        try:
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
    app.add_middleware(StartupErrorReporting)  # a refused start-up (e.g. records database in use): one line
    document_access_control(app, access_policy)
    app.state.access = access_policy
    if controller is not None:
        app.state.controller = controller
        if operations is not None:
            install(app, operations)
        else:
            app.state.metrics = ControllerMetrics(controller).attach()
            app.state.metrics.access = access_policy

    def ctl(request: Request) -> ChargerController:
        return request.app.state.controller

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Framework errors (unparsable body, unknown path, wrong method) in the API's error shape."""
        return JSONResponse(status_code=exc.status_code, content=_error(str(exc.detail)),
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            problems.append(_strict_json(f"{where or 'body'}: {error.get('msg')}"))
        return JSONResponse(status_code=422, content=_error("invalid request: " + "; ".join(problems),
                                                            detail=jsonable_errors(exc)))

    @app.post("/start_session")
    async def start_session(request: Request,
                            body: Annotated[StartSessionRequest | None, Body()] = None) -> dict[str, Any]:
        body = body or StartSessionRequest()
        controller_ = ctl(request)
        if body.target_voltage > controller_.evse_max_voltage_V:
            return _error(f"target_voltage {body.target_voltage} V is above this charger's maximum "
                          f"{controller_.evse_max_voltage_V} V")
        params = SessionParams(target_voltage_V=body.target_voltage, initial_current_A=body.initial_current,
                               duration_s=body.duration_s, ev_preset=body.ev_preset,
                               start_soc_percent=body.start_soc, target_soc_percent=body.target_soc,
                               precharge_timeout_s=body.precharge_timeout_s)
        try:
            session = controller_.start_session(params)
        except CommandRefused as refused:
            return _error(str(refused))
        operations = getattr(request.app.state, "operations", None)
        if operations is not None:
            await operations.recorder.record_start(session)  # durable before it is acknowledged
        return {"status": "started", "session_id": session.session_id}

    @app.post("/stop_session")
    async def stop_session(request: Request) -> dict[str, Any]:
        if not ctl(request).request_stop():
            return _error("No session in progress")
        return {"status": "stopping"}

    @app.get("/status")
    async def status(request: Request) -> dict[str, Any]:
        return ctl(request).status_view()

    @app.get("/meter")
    async def meter(request: Request) -> dict[str, Any]:
        return ctl(request).meter_view()

    @app.get("/vehicle/bms")
    async def vehicle_bms(request: Request) -> dict[str, Any]:
        return ctl(request).bms_view()

    @app.get("/vehicle/slac")
    async def vehicle_slac(request: Request) -> dict[str, Any]:
        return ctl(request).slac_view

    @app.get("/vehicle/iso15118")
    async def vehicle_iso15118(request: Request) -> dict[str, Any]:
        return ctl(request).iso15118_view

    @app.post("/control/contactor")
    async def control_contactor(request: Request, body: ContactorRequest) -> dict[str, Any]:
        controller_ = ctl(request)
        try:
            result = await controller_.set_contactor(body.closed)
        except CommandRefused as refused:
            closed = bool(controller_.latest and controller_.latest.contactor_closed)
            return _error(str(refused), contactor_closed=closed)
        closed = bool(controller_.latest and controller_.latest.contactor_closed)
        answer: dict[str, Any] = {"status": "ok", "contactor_closed": closed}
        if result.shutdown_first:  # additive: the open came under load and went through a shutdown
            answer.update(shutdown_first=True, current_at_command_A=round(result.current_at_command_A, 3),
                          current_at_open_A=None if result.current_at_open_A is None
                          else round(result.current_at_open_A, 3),
                          emergency=result.emergency, message=result.describe())
        return answer

    @app.post("/control/pwm")
    async def control_pwm(request: Request, body: PWMRequest) -> dict[str, Any]:
        try:
            await ctl(request).set_pwm_duty(body.duty)
        except CommandRefused as refused:
            return _error(str(refused))
        return {"status": "ok", "duty": body.duty}

    @app.post("/control/cp_state")
    async def control_cp_state(request: Request, body: CPStateRequest) -> dict[str, Any]:
        try:
            await ctl(request).set_cp_state(body.state)
        except CommandRefused as refused:  # real hardware: no simulated car, the CP is what the wire measures
            return _error(str(refused), state=body.state)
        return {"status": "ok", "state": body.state}

    @app.post("/fault")
    async def fault(request: Request, body: FaultRequest) -> dict[str, Any]:
        fault_type, known = await ctl(request).raise_fault(body.type, source="api")
        return {"status": "fault_injected", "type": body.type, "known": known,
                "severity": fault_type.severity.value}

    # --- additive endpoints -------------------------------------------------------------------------
    @app.get("/faults")
    async def faults() -> dict[str, Any]:
        """The documented fault types, their severity and meaning; unknown types act as emergencies."""
        return {"faults": [{"type": f.name, "severity": f.severity.value, "description": f.description}
                           for f in FAULT_CATALOGUE.values()],
                "unknown_type_policy": "accepted and handled as an emergency shutdown (known: false)"}

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        controller_ = ctl(request)
        return {"status": "ok", "adapter": controller_.hw.name, "late_ticks": controller_.late_ticks,
                "max_tick_lateness_s": controller_.max_tick_lateness_s}

    if controller is not None:  # a controller built at start-up gets them in the lifespan
        include_simulation_routes(app, controller)

    from ccs_sim.dashboard import router as dashboard_router
    from ccs_sim.observability.metrics import router as metrics_router
    from ccs_sim.observability.records_api import router as records_router

    app.include_router(records_router)
    app.include_router(metrics_router)
    app.include_router(dashboard_router)
    return app


def jsonable_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """Validation errors as strict JSON (no NaN/inf, no bytes, no exception objects)."""
    return [{key: _strict_json(value) for key, value in error.items() if key != "ctx"} for error in exc.errors()]


def _strict_json(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):  # an unpaired surrogate as its escape: UTF-8 cannot encode it (the middleware
        return value.encode("utf-8", "backslashreplace").decode("utf-8")  # refuses those bodies before this)
    if isinstance(value, (int, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_strict_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _strict_json(item) for key, item in value.items()}
    return str(value)


#: For ``uvicorn ccs_sim.fastapi_app:app``: settings from the environment (CCS_SIM_*), hardware built at start-up.
app = create_app()
