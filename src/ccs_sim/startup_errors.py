"""Start-up refusals as one line, however the API is served (``ccs-sim serve`` or plain ``uvicorn``).

A start-up that cannot go on for a reason the operator can fix (the session database is in use by another
process, damaged, read-only, ...) raises a ``StartupRefused`` whose ``str()`` is one line: what, why, what
to do. Under uvicorn the app's lifespan runs inside Starlette, which reports any start-up exception by
sending ``lifespan.startup.failed`` with the whole formatted traceback, and uvicorn logs that text (some
40 lines for a locked database). ``StartupErrorReporting`` replaces that text with the refusal's one line;
any other exception keeps its traceback (it is a bug, and the traceback is what finds it).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class StartupRefused(RuntimeError):
    """The process must not start; ``str()`` is the one line to show (no traceback)."""


class StartupErrorReporting:
    """ASGI middleware: ``lifespan.startup.failed`` caused by a ``StartupRefused`` carries its one line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_startup_failure(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                held.append(message)  # sent below, once the exception that caused it is known
                return
            await send(message)

        try:
            await self.app(scope, receive, hold_startup_failure)
        except BaseException as exc:
            for message in held:
                await send(_one_line(message, exc))
            raise
        for message in held:
            await send(message)


def _one_line(message: Message, exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, StartupRefused):
        return {**message, "message": str(exc)}
    return dict(message)
