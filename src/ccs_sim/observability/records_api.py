"""Session records API: list (newest first, paginated), one record, export as CSV or JSON.

Reads only (open without the API token). The store is ``app.state.session_store`` (an
``AsyncSessionStore``); without one these endpoints answer 503.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from ccs_sim.observability.records import AsyncSessionStore
from ccs_sim.observability.session_store import RECORD_FIELDS

router = APIRouter(tags=["session records"])

MAX_PAGE = 500
#: Spreadsheet programs run a cell that starts with one of these as a formula (CSV injection).
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class SessionRecord(BaseModel):
    session_id: str
    status: Literal["running", "ended", "interrupted"] = Field(
        description="running: in progress (or the process died and has not restarted yet); interrupted: the "
                    "process ended while it ran, energy is the last checkpoint")
    source: str = Field(description="sim (simulated car) or hlc (ISO 15118 SECC)")
    started_at: str
    ended_at: str | None
    checkpoint_at: str | None = Field(description="time of the last durable write of the counts")
    ended_phase: str | None
    end_reason: str | None
    error: str | None
    energy_Wh: float
    avg_voltage: float
    avg_current: float
    duration_s: float
    charging_time_s: float
    params: dict[str, Any]
    ev: dict[str, Any]


class SessionPage(BaseModel):
    status: Literal["ok"] = "ok"
    sessions: list[SessionRecord]
    total: int
    limit: int
    offset: int
    next_offset: int | None = Field(description="offset of the next page, null on the last one")


class RecordsError(BaseModel):
    status: Literal["error"] = "error"
    message: str


_UNAVAILABLE: dict[int | str, dict[str, Any]] = {503: {"model": RecordsError, "description": "session records are not enabled"}}


def _store(request: Request) -> AsyncSessionStore | None:
    return getattr(request.app.state, "session_store", None)


def _unavailable() -> JSONResponse:
    return JSONResponse(status_code=503, content={"status": "error", "message": "session records are not enabled"})


@router.get("/sessions", response_model=SessionPage, responses=_UNAVAILABLE)
async def list_sessions(request: Request, limit: int = Query(50, ge=1, le=MAX_PAGE),
                        offset: int = Query(0, ge=0, le=2**62)) -> Any:
    """Recorded sessions, newest first."""
    store = _store(request)
    if store is None:
        return _unavailable()
    records, total = await store.call("page", limit, offset)
    next_offset = offset + len(records) if offset + len(records) < total else None
    return {"status": "ok", "sessions": records, "total": total, "limit": limit, "offset": offset,
            "next_offset": next_offset}


def csv_cell(value: Any) -> Any:
    """A CSV cell: nested values as JSON; text that a spreadsheet would run as a formula gets a leading '."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


async def _export_batches(store: AsyncSessionStore) -> AsyncIterator[list[dict[str, Any]]]:
    iterator = await store.call("iter_all")
    while True:
        batch = await store.call_iterator_next(iterator)
        if batch is None:
            return
        yield batch


@router.get("/sessions/export", responses={
    200: {"content": {"text/csv": {"schema": {"type": "string"}},
                      "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/"
                                                                                         "SessionRecord"}}}},
          "description": "every record, newest first"},
    **_UNAVAILABLE})
async def export_sessions(request: Request, format: Literal["csv", "json"] = Query("csv")) -> Any:
    """Every record, newest first, as CSV (one row per session; params and ev as JSON) or a JSON array."""
    store = _store(request)
    if store is None:
        return _unavailable()
    filename = f"sessions.{format}"
    headers = {"content-disposition": f'attachment; filename="{filename}"'}

    if format == "json":
        async def json_body() -> AsyncIterator[bytes]:
            first = True
            yield b"["
            async for batch in _export_batches(store):
                for record in batch:
                    yield (b"" if first else b",") + json.dumps(record, default=str).encode()
                    first = False
            yield b"]"

        return StreamingResponse(json_body(), media_type="application/json", headers=headers)

    async def csv_body() -> AsyncIterator[bytes]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(RECORD_FIELDS)
        async for batch in _export_batches(store):
            for record in batch:
                writer.writerow([csv_cell(record[name]) for name in RECORD_FIELDS])
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()

    return StreamingResponse(csv_body(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/sessions/{session_id}", response_model=SessionRecord,
            responses={404: {"model": RecordsError, "description": "no such session"}, **_UNAVAILABLE})
async def get_session(request: Request, session_id: str) -> Any:
    """One recorded session."""
    store = _store(request)
    if store is None:
        return _unavailable()
    record = await store.call("get", session_id)
    if record is None:
        return JSONResponse(status_code=404, content={"status": "error", "message": f"no session {session_id!r}"})
    return record
