"""Per-message SECC response times, measured from the SECC's side, by wrapping the EXI codec.

The SECC handles one request at a time per session: it decodes the request (EXI -> JSON), runs its
state machine and the controller, and encodes the response (JSON -> EXI). ``TimedEXICodec`` wraps
any ``IEXICodec`` (the package's pluggable codec interface, so iso15118 is not patched) and records
one ``MessageExchange`` per decode -> encode pair: the time from the start of decoding the request
to the end of encoding its response, which is the SECC's whole processing time except the TCP
read/write around it. ISO 15118-2's V2G_SECC_Msg_Performance_Time for CurrentDemandRes is 25 ms.

The same records serve the interoperability tests (SessionStopRes with ResponseCode OK) and the
benchmark; ``evse_secc.exchange_log`` holds the record type and writes/reads them as JSON lines.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from iso15118.shared.iexi_codec import IEXICodec

from evse_secc.exchange_log import MessageExchange


def message_name(decoded: dict[str, Any]) -> str:
    """``CurrentDemandReq`` from a decoded message (V2G_Message/Body for DIN and -2, top level for -20/SAP)."""
    if "V2G_Message" in decoded:
        body = decoded["V2G_Message"].get("Body", {})
        return next(iter(body), "Body")
    return next(iter(decoded), "?")


def response_code(decoded: dict[str, Any]) -> str | None:
    """The ResponseCode of a response message, wherever the protocol puts it."""
    if "V2G_Message" in decoded:
        decoded = decoded["V2G_Message"].get("Body", {})
    content = next(iter(decoded.values()), None)
    return content.get("ResponseCode") if isinstance(content, dict) else None


class TimedEXICodec(IEXICodec):
    """An ``IEXICodec`` that times each request/response exchange and hands it to ``on_exchange``.

    Only the clock is read while the SECC handles a request; naming the messages (JSON parsing) and
    ``on_exchange`` run on the event loop's next turn, after the response has been sent (at once when no loop
    runs; ``flush`` runs what is still pending)."""

    def __init__(self, inner: IEXICodec, on_exchange: Callable[[MessageExchange], None],
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._inner = inner
        self._on_exchange = on_exchange
        self._clock = clock
        #: The request (decoded JSON), its decode start and decode time, until its response is settled.
        self._pending: tuple[str, float, float] | None = None
        #: Calls not yet settled, in order: ("decode", (request, started, decode_s)) or
        #: ("encode", (namespace, response, started, ended)).
        self._calls: list[tuple[str, tuple]] = []

    def decode(self, stream: bytes, namespace: str) -> str:
        started = self._clock()
        decoded = self._inner.decode(stream, namespace)
        self._later("decode", (decoded, started, self._clock() - started))
        return decoded

    def encode(self, message: str, namespace: str) -> bytes:
        started = self._clock()
        encoded = self._inner.encode(message, namespace)
        self._later("encode", (namespace, message, started, self._clock()))
        return encoded

    def _later(self, kind: str, call: tuple) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._calls.append((kind, call))
            self.flush()
            return
        if not self._calls:
            loop.call_soon(self.flush)
        self._calls.append((kind, call))

    def flush(self) -> None:
        """Settle the calls still pending, oldest first: each ...Res encoded after a decode closes an exchange."""
        calls, self._calls = self._calls, []
        for kind, call in calls:
            if kind == "decode":
                self._pending = call
                continue
            namespace, message, started, ended = call
            content = json.loads(message)
            name = message_name(content)
            # Signature checks (PnC) EXI-encode message fragments between request and response: only a
            # ...Res closes the exchange.
            if self._pending is not None and name.endswith("Res"):
                (request, request_started, decode_s), self._pending = self._pending, None
                self._on_exchange(MessageExchange(
                    namespace=namespace, request=message_name(json.loads(request)), response=name,
                    response_code=response_code(content), duration_s=ended - request_started,
                    decode_s=decode_s, encode_s=ended - started))

    def get_version(self) -> str:
        return self._inner.get_version()
