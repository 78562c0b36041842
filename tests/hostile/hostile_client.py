"""A raw V2GTP client for the EV namespace: SDP for the SECC's address, then one TCP connection per hostile
case; prints one JSON line per case (what came back, when the SECC closed the connection).

    python hostile_client.py --iface ev0 [--case NAME ...]

Run by test_hostile_v2gtp.py with ``ip netns exec``; a script, not a module of the package.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import struct
import time

from exi_codec import NativeEXICodec

SDP_PORT = 15118  # ISO 15118-2 §7.10.1.1 / DIN SPEC 70121 §8.7.3: V2G_UDP_SDP_SERVER
SDP_REQ_NO_TLS_TCP = bytes([0x10, 0x00])
SAP_NAMESPACE = "urn:iso:15118:2:2010:AppProtocol"
ISO2_NAMESPACE = "urn:iso:15118:2:2013:MsgDef"
EXI = 0x8001
#: Between two chunks of a case: each chunk its own TCP segment(s) and its own read on the SECC. (Not after the
#: last one: ``closed_after_s`` counts from the moment the last chunk went out.)
CHUNK_GAP_S = 0.3
#: How long a case waits for the SECC to close the connection (the package's own stop takes 5 s).
CLOSE_WAIT_S = 8.0


def v2gtp(payload: bytes, payload_type: int = EXI, version: int = 0x01, inverse: int = 0xFE,
          length: int | None = None) -> bytes:
    return struct.pack(">BBHI", version, inverse, payload_type, len(payload) if length is None else length) + payload


def sap_req() -> bytes:
    return v2gtp(NativeEXICodec().encode_dict({"supportedAppProtocolReq": {"AppProtocol": [
        {"ProtocolNamespace": ISO2_NAMESPACE, "VersionNumberMajor": 2, "VersionNumberMinor": 0, "SchemaID": 1,
         "Priority": 1}]}}, SAP_NAMESPACE))


def session_setup_req() -> bytes:
    return v2gtp(NativeEXICodec().encode_dict({"V2G_Message": {"Header": {"SessionID": "00"}, "Body": {
        "SessionSetupReq": {"EVCCID": "020000000001"}}}}, ISO2_NAMESPACE))


def cases() -> dict[str, list[bytes]]:
    """Case name -> the chunks sent (each its own send)."""
    rng = random.Random(15118)
    return {
        "bad_version": [v2gtp(b"\x80\x00", version=0x02, inverse=0xFD)],
        "bad_inverse_version": [v2gtp(b"\x80\x00", inverse=0x00)],
        "wrong_payload_type": [v2gtp(SDP_REQ_NO_TLS_TCP, payload_type=0x9000)],
        "unknown_payload_type": [v2gtp(b"\x80\x00", payload_type=0x1234)],
        "length_larger_than_data": [v2gtp(b"\x80" * 10, length=100)],
        "length_zero": [v2gtp(b"")],
        "oversized_64KiB_plus": [v2gtp(bytes(70 * 1024))],
        "truncated_header": [bytes([0x01, 0xFE, 0x80])],
        "random_bytes": [bytes(rng.getrandbits(8) for _ in range(512))],
        "valid_header_garbage_exi": [v2gtp(bytes([0xFF] * 40))],
        "session_setup": [sap_req(), session_setup_req()],  # a well-behaved start (expects two answers)
        "session_setup_then_garbage": [sap_req(), session_setup_req(), v2gtp(bytes(rng.getrandbits(8)
                                                                                   for _ in range(64)))],
    }


def sdp(iface: str, timeout_s: float) -> tuple[str, int]:
    """SDP request until answered (the SECC pauses SDP while a TCP session runs); (address, port)."""
    scope = socket.if_nametoindex(iface)
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
        udp.settimeout(0.25)
        while time.monotonic() < deadline:
            udp.sendto(v2gtp(SDP_REQ_NO_TLS_TCP, payload_type=0x9000), ("ff02::1", SDP_PORT, 0, scope))
            try:
                data, _ = udp.recvfrom(256)
            except socket.timeout:
                continue
            if len(data) >= 8 + 20 and data[2:4] == b"\x90\x01":
                address = socket.inet_ntop(socket.AF_INET6, data[8:24])
                return address, int.from_bytes(data[24:26], "big")
    raise SystemExit(f"no SDP response within {timeout_s} s")


def frames(data: bytes) -> list[int]:
    """Payload types of the complete V2GTP frames in ``data``."""
    found, offset = [], 0
    while len(data) - offset >= 8:
        payload_type, length = struct.unpack(">HI", data[offset + 2:offset + 8])
        if len(data) - offset - 8 < length:
            break
        found.append(payload_type)
        offset += 8 + length
    return found


def run_case(name: str, chunks: list[bytes], iface: str, sdp_timeout_s: float,
             close_wait_s: float = CLOSE_WAIT_S) -> dict:
    address, port = sdp(iface, sdp_timeout_s)
    scope = socket.if_nametoindex(iface)
    received = b""
    send_error = None
    with socket.create_connection((f"{address}%{iface}", port), timeout=5) as tcp:
        for number, chunk in enumerate(chunks):
            if number:
                time.sleep(CHUNK_GAP_S)
            try:
                tcp.sendall(chunk)
            except OSError as exc:  # the SECC closed on us mid-send (an oversized frame)
                send_error = type(exc).__name__
                break
        sent_at = time.monotonic()
        tcp.settimeout(0.2)
        closed_after_s = None
        while time.monotonic() - sent_at < close_wait_s:
            try:
                data = tcp.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                closed_after_s = time.monotonic() - sent_at
                break
            if not data:
                closed_after_s = time.monotonic() - sent_at
                break
            received += data
    del scope
    return {"case": name, "closed_after_s": None if closed_after_s is None else round(closed_after_s, 3),
            "response_frames": [f"0x{t:04x}" for t in frames(received)], "received_bytes": len(received),
            "send_error": send_error}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iface", required=True)
    parser.add_argument("--case", action="append", help="only these cases (default: all)")
    parser.add_argument("--sdp-timeout-s", type=float, default=15.0)
    parser.add_argument("--close-wait-s", type=float, default=CLOSE_WAIT_S,
                        help="how long to wait for the SECC to close each connection")
    parser.add_argument("--no-sdp-after", action="store_true", help="skip the final SDP probe")
    args = parser.parse_args()
    table = cases()
    for name in args.case or [name for name in table if name != "session_setup"]:
        print(json.dumps(run_case(name, table[name], args.iface, args.sdp_timeout_s, args.close_wait_s)), flush=True)
    if args.no_sdp_after:
        return
    address, port = sdp(args.iface, args.sdp_timeout_s)  # SDP answers again: the next EV can start
    print(json.dumps({"case": "sdp_after", "address": address, "port": port}), flush=True)


if __name__ == "__main__":
    main()
