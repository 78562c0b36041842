"""How a route reaches the controller, and how the API's routers join the app.

A route finds the controller the app serves in ``request.app.state.controller``: ``create_app`` puts it there,
or its lifespan does for a controller built at start-up. Routes keep no reference of their own, so one router
serves every app built from it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute

from ccs_sim.controller import ChargerController


def controller_of(request: Request) -> ChargerController:
    """The controller the app that received ``request`` serves."""
    controller: ChargerController = request.app.state.controller
    return controller


def add_router_routes(app: FastAPI, router: APIRouter) -> None:
    """Add ``router``'s routes to ``app`` as the app's own routes (``app.add_api_route``), in their order.

    ``app.include_router(router)`` would serve the same paths with the same OpenAPI document, but FastAPI (since
    the 0.16x releases) keeps an included router as a single ``_IncludedRouter`` entry of ``app.routes``: its
    routes would vanish from the flat list of ``APIRoute`` objects that callers enumerate (every POST route of
    the API, in tests/security/test_bad_input.py; the ``/sim`` routes, in tests/core/test_simulation_controls.py).
    Earlier FastAPI releases copied an included router's routes into the app in this same way.
    """
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"{route!r}: only API routes are added this way")
        options: dict[str, Any] = {}
        if not isinstance(route.generate_unique_id_function, DefaultPlaceholder):  # else the app's default
            options["generate_unique_id_function"] = route.generate_unique_id_function
        app.add_api_route(
            route.path, route.endpoint, methods=sorted(route.methods or ()), name=route.name,
            response_model=route.response_model, status_code=route.status_code, tags=route.tags,
            dependencies=route.dependencies, summary=route.summary, description=route.description,
            response_description=route.response_description, responses=route.responses,
            deprecated=route.deprecated, operation_id=route.operation_id,
            response_model_include=route.response_model_include, response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema, response_class=route.response_class,
            openapi_extra=route.openapi_extra, **options)
