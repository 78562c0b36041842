"""V2GTP framing in front of iso15118's SECC: one whole, well-formed V2GTP message per read, bad frames refused.

iso15118 0.31.2 reads its TCP stream with ``reader.read(7000)`` and treats whatever arrives as one message
(iso15118-notes §6.6): a message split over TCP segments, two coalesced, or one larger than 7000 bytes is
misparsed, and a malformed frame is only noticed after the session has started (the SDP server paused, a
session in the controller, and the package's 5 s stop sequence before the next car is served). Here:

* ``read_frame`` reads exactly one message by its header (ISO 15118-2 §7.8.3 / -20 §8.6: version 0x01,
  inverse version 0xFE, a V2G payload type, a 4-byte payload length) and checks the header first: wrong
  version or inverse, an SDP or unknown payload type, a length of 0 or above ``MAX_PAYLOAD_BYTES``, or a
  payload that does not arrive within ``FRAME_COMPLETION_TIMEOUT_S`` of its header raise ``V2GTPFrameError``.
* ``GuardedTCPServer`` (the package's ``TCPServer`` with a different connection callback) reads the
  connection's first frame itself: a connection whose first frame is bad, or that sends nothing within the
  package's communication-setup timeout, is closed without ever reaching the package (no session, SDP keeps
  answering). A good first frame is handed over with a ``FramedReader``.
* ``FramedReader`` is the StreamReader the package then reads from: ``read()`` returns one whole frame;
  after a bad frame it closes the connection and reports end of stream, so the package ends that session
  the way it ends one whose peer went away (its ``session_ended`` → the controller's HLC_FAILURE record).
* ``GuardedSECCHandler`` is ``SECCHandler`` with that TCP server.

What is inside a well-framed payload (garbage EXI, a message out of sequence) is the package's to judge.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from iso15118.secc import SECCHandler
from iso15118.secc.transport.tcp_server import TCPServer
from iso15118.shared.messages.timeouts import Timeouts
from iso15118.shared.notifications import TCPClientNotification

logger = logging.getLogger(__name__)

HEADER_BYTES = 8
PROTOCOL_VERSION = 0x01
INVERSE_PROTOCOL_VERSION = 0xFE
#: Payload types a V2G message on TCP may carry: 0x8001 EXI (DIN SPEC 70121 Table 16, ISO 15118-2 Table 10,
#: -20 SAP), 0x8002-0x8006 (-20 mainstream, AC, DC, ACDP, WPT), 0x8101-0x8104 (-20 schedule renegotiation,
#: metering confirmation, ACDP system status, parking status). 0x9000/0x9001 (SDP) belong on UDP.
V2G_PAYLOAD_TYPES = frozenset({*range(0x8001, 0x8007), *range(0x8101, 0x8105)})
#: Largest payload accepted: over four times the largest message the package is built for (its receive path
#: reads 7000 bytes, sized for a 5-6 kB CertificateInstallationRes); anything bigger is refused unread.
MAX_PAYLOAD_BYTES = 32 * 1024
#: A frame is written in one go by the EV: its payload must follow its first byte within this time.
FRAME_COMPLETION_TIMEOUT_S = 2.0
#: The first frame (SupportedAppProtocolReq) must arrive within the package's own setup timeout (20 s).
FIRST_FRAME_TIMEOUT_S = float(Timeouts.V2G_EVCC_COMMUNICATION_SETUP_TIMEOUT)


class V2GTPFrameError(ValueError):
    """A V2GTP frame that must not be passed on; the message says what is wrong with it."""


def payload_length(header: bytes, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> int:
    """Check an 8-byte V2GTP header; returns the payload length it announces."""
    if len(header) != HEADER_BYTES:
        raise V2GTPFrameError(f"header of {len(header)} bytes (expected {HEADER_BYTES})")
    if header[0] != PROTOCOL_VERSION or header[1] != INVERSE_PROTOCOL_VERSION:
        raise V2GTPFrameError(f"protocol version 0x{header[0]:02x}/inverse 0x{header[1]:02x} "
                              f"(expected 0x{PROTOCOL_VERSION:02x}/0x{INVERSE_PROTOCOL_VERSION:02x})")
    payload_type = int.from_bytes(header[2:4], "big")
    if payload_type not in V2G_PAYLOAD_TYPES:
        raise V2GTPFrameError(f"payload type 0x{payload_type:04x} is not a V2G message type")
    length = int.from_bytes(header[4:8], "big")
    if length == 0:
        raise V2GTPFrameError("payload length 0")
    if length > max_payload_bytes:
        raise V2GTPFrameError(f"payload length {length} bytes above the {max_payload_bytes}-byte limit")
    return length


async def read_frame(reader: asyncio.StreamReader, completion_timeout_s: float = FRAME_COMPLETION_TIMEOUT_S,
                     max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> bytes:
    """One whole V2GTP message (header + payload). Raises ``V2GTPFrameError`` for a bad or incomplete frame
    and ``asyncio.IncompleteReadError`` when the stream ends between frames."""
    first = await reader.readexactly(1)  # waits as long as the caller lets it for a frame to begin
    try:
        # One deadline for the rest of the frame, in this task: a frame already in the buffer is returned without
        # another turn of the event loop (``wait_for`` would run each read as a task of its own, and each turn
        # waits behind everything else ready on a busy loop: the API, the streams).
        async with asyncio.timeout(completion_timeout_s):
            header = first + await reader.readexactly(HEADER_BYTES - 1)
            length = payload_length(header, max_payload_bytes)
            payload = await reader.readexactly(length)
    except TimeoutError:
        raise V2GTPFrameError(f"frame incomplete {completion_timeout_s:.1f} s after its first byte "
                              "(length field larger than the data sent)") from None
    except asyncio.IncompleteReadError as incomplete:
        raise V2GTPFrameError(f"connection closed inside a frame ({len(incomplete.partial)} bytes of the "
                              f"{incomplete.expected} announced)") from None
    return header + payload


class FramedReader:
    """The StreamReader face iso15118's session reads: ``read()`` returns exactly one V2GTP frame."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first_frame: bytes | None = None,
                 peer: Any = None) -> None:
        self._reader = reader
        self._writer = writer
        self._pending = first_frame
        self._eof = False
        self.peer = peer
        self.rejected: str | None = None

    async def read(self, n: int = -1) -> bytes:  # noqa: ARG002 (a frame is returned whole, whatever n)
        if self._pending is not None:
            frame, self._pending = self._pending, None
            return frame
        if self._eof:
            return b""
        try:
            return await read_frame(self._reader)
        except asyncio.IncompleteReadError:
            self._eof = True
            return b""
        except V2GTPFrameError as bad:
            self.rejected = str(bad)
            logger.warning("V2GTP frame from %s refused: %s; closing the connection", self.peer, bad)
            self._eof = True
            self._writer.close()
            return b""

    def at_eof(self) -> bool:
        return self._pending is None and (self._eof or self._reader.at_eof())

    def feed_eof(self) -> None:
        self._eof = True
        self._reader.feed_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reader, name)


class GuardedTCPServer(TCPServer):
    """iso15118's TCP server whose connections reach the SECC only with a well-formed first V2GTP frame."""

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            first = await asyncio.wait_for(read_frame(reader), FIRST_FRAME_TIMEOUT_S)
        except (TimeoutError, V2GTPFrameError, asyncio.IncompleteReadError, ConnectionError) as refused:
            reason = str(refused) or type(refused).__name__
            logger.warning("TCP connection from %s refused before its session: %s", peer, reason)
            writer.close()
            return
        framed: Any = FramedReader(reader, writer, first, peer)
        self._session_handler_queue.put_nowait(TCPClientNotification(framed, writer))


class GuardedSECCHandler(SECCHandler):
    """``SECCHandler`` whose TCP server is a ``GuardedTCPServer`` (same port, same queue)."""

    async def start_tcp_server(self, with_tls: bool) -> None:
        server: TCPServer | None = self.tcp_server  # type: ignore[has-type]  # (set by the untyped package)
        if server is not None and not isinstance(server, GuardedTCPServer):
            guarded = GuardedTCPServer(self._rcv_queue, server.iface)
            guarded.port = server.port  # the port SDP announces
            self.tcp_server = guarded
        await super().start_tcp_server(with_tls)
