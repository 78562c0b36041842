"""Requests the front process already checked (``ccs_sim.front``): how the controller's app recognises them.

With ``ccs-sim serve --front-process`` the public address belongs to a front process of its own, which applies
the access policy (Host, token, body size, cross-site guard) and the rate limiter itself, answers the readings
from a snapshot and forwards every other request to the controller's app over a private Unix socket (in a
directory only this user may enter). The controller's app serves that socket wrapped in ``FrontCheckedApp``:
its requests carry a scope key no client can set, so the access and rate-limit middlewares let them through
(checked once, at the front) and the client's own address, which the front sends in ``X-Forwarded-For``, is the
one the app sees. Requests reaching the app any other way are checked as always.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

#: ASGI scope key set only by ``FrontCheckedApp`` (a server puts only its own keys in a scope).
FRONT_CHECKED_SCOPE_KEY = "ccs_sim.checked_by_front"
#: The header in which the front names the client a forwarded request came from.
FORWARDED_FOR_HEADER = b"x-forwarded-for"


def checked_by_front(scope: Scope) -> bool:
    """Whether ``scope`` arrived through the front process, which applied the access policy and rate limit."""
    return bool(scope.get(FRONT_CHECKED_SCOPE_KEY))


class FrontCheckedApp:
    """The controller's app as served on the front's private socket: every request marked as checked, its
    client taken from ``X-Forwarded-For`` (the front sets it; the socket has no client address of its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = dict(scope)
            scope[FRONT_CHECKED_SCOPE_KEY] = True
            for key, value in scope["headers"]:
                if key == FORWARDED_FOR_HEADER:
                    scope["client"] = (value.decode("latin-1").split(",")[0].strip(), 0)
                    break
        await self.app(scope, receive, send)
