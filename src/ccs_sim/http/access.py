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
- Every request, reads included, must name this server in ``Host``: ``localhost``, a loopback address, the
  address the connection arrived on (the ASGI ``server``: the listening socket's address under uvicorn), or a
  name in ``allowed_hosts`` (``CCS_SIM_ALLOWED_HOSTS``); otherwise 421 Misdirected Request (RFC 9110
  §15.5.20). This stops DNS rebinding: a page on ``evil.example`` whose name is re-pointed to 127.0.0.1 is
  "same origin" with itself, so the cross-origin check cannot see it, but its requests carry
  ``Host: evil.example``. (Starlette's ``TrustedHostMiddleware`` takes a fixed list and answers 400 in plain
  text; the address a connection arrived on, the API's error shape and the metrics need this check.)
- A state-changing JSON body whose strings (or keys) hold an unpaired UTF-16 surrogate — ``"\\ud800"`` is a
  valid JSON escape, but half a character that no UTF-8 encoder (responses, logs, sqlite) accepts — is
  refused with 422 before it reaches a route. Query strings, paths and headers cannot carry one: they are
  decoded with replacement (percent-encoding) or as latin-1.

This is an ASGI middleware rather than a route dependency so that it covers every route, including
routers added later, and rejects oversized bodies before anything reads them.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from ccs_sim.http.trusted_front import checked_by_front

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
#: RFC 9110 §15.5.20: the request was directed at a server that is not able to produce a response for it.
MISDIRECTED_REQUEST = 421
#: Longest Host value quoted back in an error message.
MAX_QUOTED_HOST_CHARS = 100


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
                 max_body_bytes: int = MAX_REQUEST_BODY_BYTES,
                 allowed_hosts_provider: Callable[[], Iterable[str]] = tuple) -> None:
        self.token_provider = token_provider
        self.max_body_bytes = max_body_bytes
        self.allowed_hosts_provider = allowed_hosts_provider
        self.rejections: Counter[str] = Counter()

    def host_allowed(self, name: str, server: Any) -> bool:
        """``name`` (from ``host_name``) is localhost, a loopback address, the address the request arrived on
        (ASGI ``server``), or a configured name."""
        if is_loopback_host(name):
            return True
        if server and isinstance(server[0], str) and _address_key(server[0]) == _address_key(name):
            return True
        return any(_address_key(allowed) == _address_key(name) for allowed in self.allowed_hosts_provider())

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


def host_name(host_header: str | None) -> str | None:
    """The name in a ``Host`` header: lower case, without port or IPv6 brackets; None if missing or malformed."""
    if host_header is None:
        return None
    text = host_header.strip()
    if not text or any(character in text for character in "/?#@\\ \t"):
        return None
    try:
        parts = urlsplit("//" + text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return None
    return parts.hostname or None


def _address_key(name: str) -> Any:
    """An IP address as an address (``::ffff:10.0.0.2`` is ``10.0.0.2``, ``[::1]`` is ``::1``), else the name."""
    text = name.strip().lower()
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return text
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def _has_unpaired_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # UTF-8 encodes every code point except the surrogates U+D800..U+DFFF
        return True
    return False


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def unpaired_surrogate_location(body: bytes) -> list[str | int] | None:
    """Where (as a validation ``loc`` below ``body``) a JSON body holds an unpaired surrogate in a string or a
    key; None when it holds none or is not JSON (the route answers that). Parsed as FastAPI parses it
    (``json.loads`` on the bytes, which also turns UTF-8-encoded surrogates into lone ones)."""
    if not body:
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    pending: list[tuple[tuple[str | int, ...], Any]] = [((), document)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            if _has_unpaired_surrogate(value):
                return list(path)
        elif isinstance(value, dict):
            for key, item in value.items():
                if _has_unpaired_surrogate(key):
                    return [*path, _printable(key)]
                pending.append(((*path, key), item))
        elif isinstance(value, list):
            pending.extend(((*path, index), item) for index, item in enumerate(value))
    return None


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


async def send_error(send: Send, status: int, message: str, extra_headers: tuple[tuple[bytes, bytes], ...] = (),
                     **extra: Any) -> None:
    body = json.dumps({"status": "error", "message": message, **extra}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *extra_headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class AccessControlMiddleware:
    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or checked_by_front(scope):
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        policy = self.policy
        name = host_name(headers.get("host"))
        if name is None or not policy.host_allowed(name, scope.get("server")):
            if scope["type"] == "websocket":
                policy.rejections["misdirected"] += 1
                await send({"type": "websocket.close", "code": 1008})  # before accept: the server answers 403
            elif name is None:
                policy.rejections["bad_request"] += 1
                await send_error(send, 400, "missing or malformed Host header")
            else:
                policy.rejections["misdirected"] += 1
                await send_error(send, MISDIRECTED_REQUEST,
                                 f"Host {name[:MAX_QUOTED_HOST_CHARS]!r} is not a name of this server (refused "
                                 "against DNS rebinding): use localhost, a loopback address or the server's "
                                 "address, or add the name to CCS_SIM_ALLOWED_HOSTS (ccs-sim serve --allowed-host)")
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state_changing = scope["method"].upper() not in READ_METHODS
        if state_changing:
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
            if not state_changing:
                await self.app(scope, receive, send)
                return
        # No Content-Length (chunked), or a body a route may parse: read up to the limit, check, replay.
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
        if state_changing and message["type"] == "http.request":
            location = unpaired_surrogate_location(message["body"])
            if location is not None:
                policy.rejections["invalid_text"] += 1
                where = ".".join(str(part) for part in location) or "body"
                problem = "text holds an unpaired UTF-16 surrogate (U+D800..U+DFFF), which is not a character"
                await send_error(send, 422, f"invalid request: {where}: {problem}",
                                 detail=[{"type": "string_unicode", "loc": ["body", *location], "msg": problem}])
                return
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
                responses.setdefault("421", {"description": "Host is not a name of this server", **error})
                if method.upper() not in READ_METHODS:
                    responses.setdefault("422", {"description": "invalid body (e.g. an unpaired surrogate)", **error})
                    # optional: {} means "no credentials" is acceptable when no token is configured
                    operation["security"] = [{"bearerToken": []}, {"apiTokenHeader": []}, {}]
                    responses.setdefault("401", {"description": "api_token set and not presented", **error})
                    responses.setdefault("403", {"description": "cross-origin browser request", **error})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
