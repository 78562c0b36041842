"""Forwarding a request from the front to the controller's app over its private socket, and back, streamed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
from starlette.responses import StreamingResponse

from ccs_sim.http.access import Receive, Scope, Send, send_error
from ccs_sim.http.trusted_front import FORWARDED_FOR_HEADER

log = logging.getLogger(__name__)

#: RFC 9110 §7.6.1: connection-specific headers, not forwarded either way (the body is re-framed by each hop).
HOP_BY_HOP_HEADERS = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te",
                                b"trailer", b"upgrade", b"proxy-authenticate", b"proxy-authorization",
                                b"content-length", FORWARDED_FOR_HEADER})
#: RFC 9110 §15.6.4: what a client is told when the controller does not answer the front.
SERVICE_UNAVAILABLE = 503


def controller_client(socket_path: str) -> httpx.AsyncClient:
    """A client of the controller's app on its private Unix socket (no timeout on reading: streams are long)."""
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=socket_path), base_url="http://controller",
                             timeout=httpx.Timeout(None, connect=5.0))


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def forward(client: httpx.AsyncClient, scope: Scope, receive: Receive, send: Send) -> int:
    """Send the request of ``scope`` to the controller and stream its answer back; the answer's status code
    (503 when the controller cannot be reached)."""
    headers = [(key, value) for key, value in scope["headers"] if key.lower() not in HOP_BY_HOP_HEADERS]
    peer = scope.get("client")
    if peer:
        headers.append((FORWARDED_FOR_HEADER, str(peer[0]).encode("latin-1")))
    body = await read_body(receive)
    path = scope.get("raw_path") or scope["path"].encode()
    url = httpx.URL(path=path.decode("latin-1"), query=scope.get("query_string", b""))
    request = client.build_request(scope["method"], url, headers=headers, content=body)
    try:
        response = await client.send(request, stream=True)
    except httpx.TransportError as error:
        log.warning("the controller did not answer %s %s: %s", scope["method"], scope["path"], error)
        await send_error(send, SERVICE_UNAVAILABLE, "the controller is not reachable from the API front; retry")
        return SERVICE_UNAVAILABLE
    answer_headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in response.headers.raw
                      if key.lower() not in HOP_BY_HOP_HEADERS}
    length = response.headers.get("content-length")
    if length is not None:
        answer_headers["content-length"] = length

    async def chunks() -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_raw():
                yield chunk
        finally:
            await response.aclose()

    streamed = StreamingResponse(chunks(), status_code=response.status_code, headers=answer_headers)
    await streamed(scope, receive, send)
    return response.status_code
