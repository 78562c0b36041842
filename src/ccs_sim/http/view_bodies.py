"""Views served as JSON encoded once: every reader of the same view dict gets the same bytes.

The controller hands out the same ``/status`` (or ``/meter``, dashboard snapshot) dict until what it shows
may have changed (``ccs_sim.core.views``): its JSON is encoded once per such dict, not once per request.
The bytes are FastAPI's own for that dict (``pydantic_core.to_json`` with NaN/inf as null, as FastAPI's
response serialisation writes them), so a client cannot tell a cached answer from a fresh one.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic_core import to_json

#: ``request.app.state`` attribute holding the app's ``EncodedViews``.
STATE_ATTRIBUTE = "encoded_views"


def json_bytes(view: Any) -> bytes:
    """``view`` as FastAPI writes a route's dict answer."""
    return to_json(view, inf_nan_mode="null")


class EncodedViews:
    """The JSON of the last dict served under each name, encoded again only for another dict."""

    def __init__(self) -> None:
        self._bodies: dict[str, tuple[Any, bytes]] = {}
        #: How many times each name's body was encoded (tests count them).
        self.encodings: dict[str, int] = {}

    def body(self, name: str, view: Any) -> bytes:
        entry = self._bodies.get(name)
        if entry is not None and entry[0] is view:
            return entry[1]
        body = json_bytes(view)
        self._bodies[name] = (view, body)  # the dict is kept: its id cannot be reused while it is here
        self.encodings[name] = self.encodings.get(name, 0) + 1
        return body


def encoded_views_of(request: Request) -> EncodedViews:
    state = request.app.state
    views: EncodedViews | None = getattr(state, STATE_ATTRIBUTE, None)
    if views is None:
        views = EncodedViews()
        setattr(state, STATE_ATTRIBUTE, views)
    return views


def json_response(request: Request, name: str, view: Any) -> Response:
    """``view`` as the route's answer, its body encoded once per view dict."""
    return Response(content=encoded_views_of(request).body(name, view), media_type="application/json")
