"""Access control for the HTTP API: API token on state-changing requests, request-size limit, CSRF guard.

Policy (README "Security"):

- The server binds to 127.0.0.1 by default; ``ccs-sim serve`` refuses a non-loopback address without a
  token unless ``--allow-insecure``.
- With ``api_token`` set, every request that can change state — any method other than GET, HEAD and
  OPTIONS, whatever its path — needs ``Authorization: Bearer <token>`` or ``X-API-Token: <token>``;
  otherwise 401 ``{"status": "error", "message": ...}``. Reads (status, meter, records, metrics, the
  dashboard) stay open: they expose no secret and let monitoring work without the token.
- A request body larger than ``max_body_bytes`` (64 KiB; the largest valid body is a few hundred bytes)
  is refused with 413 before it reaches a route, whether or not it declares a Content-Length.
- A browser request from another origin (``Origin`` that does not match ``Host``, or
  ``Sec-Fetch-Site: cross-site``) may not change state: 403. Without a token, a web page the operator
  visits could otherwise POST ``/stop_session`` to ``127.0.0.1`` (cross-site request forgery).

This is an ASGI middleware rather than a route dependency so that it covers every route, including
routers added later, and rejects oversized bodies before anything reads them.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections import Counter
from typing import Any, Awaitable, Callable, MutableMapping
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Largest request body accepted (bytes).
MAX_REQUEST_BODY_BYTES = 64 * 1024
#: Methods that only read.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_HEADER = "x-api-token"


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


class AccessPolicy:
    """What the middleware enforces, and what it has refused (for ``/metrics``)."""

    def __init__(self, token_provider: Callable[[], str | None],
                 max_body_bytes: int = MAX_REQUEST_BODY_BYTES) -> None:
        self.token_provider = token_provider
        self.max_body_bytes = max_body_bytes
        self.rejections: Counter[str] = Counter()

    def token(self) -> str | None:
        token = self.token_provider()
        return token or None

    def authorised(self, headers: dict[str, str]) -> bool:
        expected = self.token()
        if expected is None:
            return True
        presented = headers.get(TOKEN_HEADER)
        authorization = headers.get("authorization", "")
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            presented = credentials.strip()
        if presented is None:
            return False
        return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"),
                                   expected.encode("utf-8", "surrogateescape"))


def cross_site(headers: dict[str, str]) -> bool:
    """A browser told us this request comes from a page of another origin."""
    if headers.get("sec-fetch-site", "").lower() == "cross-site":
        return True
    origin = headers.get("origin")
    if origin is None:
        return False  # not a browser, or a same-origin GET-like request
    if origin == "null":
        return True  # sandboxed frames, file:// pages
    host = headers.get("host")
    if host is None:
        return True
    return urlsplit(origin).netloc.lower() != host.lower()


async def send_error(send: Send, status: int, message: str, extra_headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"status": "error", "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class AccessControlMiddleware:
    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        policy = self.policy
        if scope["method"].upper() not in READ_METHODS:
            if not policy.authorised(headers):
                policy.rejections["unauthorized"] += 1
                await send_error(send, 401, "this endpoint changes state: send 'Authorization: Bearer <token>' "
                                            "or 'X-API-Token: <token>'",
                                 ((b"www-authenticate", b'Bearer realm="ccs-sim"'),))
                return
            if cross_site(headers):
                policy.rejections["cross_origin"] += 1
                await send_error(send, 403, "state-changing requests from another origin are refused")
                return
        declared = headers.get("content-length")
        if declared is not None:
            try:
                declared_bytes = int(declared)
            except ValueError:
                policy.rejections["bad_request"] += 1
                await send_error(send, 400, "invalid Content-Length")
                return
            if declared_bytes > policy.max_body_bytes:
                policy.rejections["too_large"] += 1
                await send_error(send, 413, f"request body larger than {policy.max_body_bytes} bytes")
                return
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read up to the limit, then replay what was read.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # disconnect: let the app see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > policy.max_body_bytes:
                policy.rejections["too_large"] += 1
                await send_error(send, 413, f"request body larger than {policy.max_body_bytes} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return message
            return await receive()

        await self.app(scope, replay, send)


def document_access_control(app: Any, policy: AccessPolicy) -> None:
    """Add the token scheme and the 401/403/413 answers to the app's OpenAPI document."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {}).update({
            "bearerToken": {"type": "http", "scheme": "bearer",
                            "description": "the server's api_token (only when one is configured)"},
            "apiTokenHeader": {"type": "apiKey", "in": "header", "name": "X-API-Token"},
        })
        components.setdefault("schemas", {})["ErrorResponse"] = {
            "type": "object", "required": ["status", "message"],
            "properties": {"status": {"type": "string", "enum": ["error"]}, "message": {"type": "string"}},
        }
        error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
        for path_item in schema.get("paths", {}).values():
            for method, operation in path_item.items():
                responses = operation.setdefault("responses", {})
                responses.setdefault("400", {"description": "invalid Content-Length", **error})
                responses.setdefault("413", {"description": f"body over {policy.max_body_bytes} bytes", **error})
                if method.upper() not in READ_METHODS:
                    # optional: {} means "no credentials" is acceptable when no token is configured
                    operation["security"] = [{"bearerToken": []}, {"apiTokenHeader": []}, {}]
                    responses.setdefault("401", {"description": "api_token set and not presented", **error})
                    responses.setdefault("403", {"description": "cross-origin browser request", **error})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
