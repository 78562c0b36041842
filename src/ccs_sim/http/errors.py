"""The API's error shape, ``{"status": "error", "message": ..., **extra}``, for route refusals and for the
framework's own errors (unparsable body, unknown path, wrong method, invalid body) alike."""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    """A refusal as the API answers it (HTTP 200 from a route, or the status of a framework error)."""
    return {"status": "error", "message": message, **extra}


def install_error_handlers(app: FastAPI) -> None:
    """Answer framework errors and validation errors in the API's error shape."""
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, validation_error)  # type: ignore[arg-type]


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Framework errors (unparsable body, unknown path, wrong method) in the API's error shape."""
    return JSONResponse(status_code=exc.status_code, content=error_body(str(exc.detail)),
                        headers=getattr(exc, "headers", None))


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one readable line per problem, and the problems themselves as strict JSON."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(_strict_json(f"{where or 'body'}: {error.get('msg')}"))
    return JSONResponse(status_code=422, content=error_body("invalid request: " + "; ".join(problems),
                                                            detail=jsonable_errors(exc)))


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
