"""EXI encode/decode time per message: native (pure Python) vs the package's Java codec, same run.

Messages: CurrentDemandReq/Res (DIN SPEC 70121, ISO 15118-2) and DC_ChargeLoopReq/Res
(ISO 15118-20 DC): the charge loop the SECC warms its codec with (``evse_secc.codecs.WARMUP_MESSAGES``, shapes
from recorded sessions), checked byte-identical between the two codecs first. The Java codec is the package's
(iso15118's EXICodec.jar over py4j), started as the launcher starts it (``evse_secc.codecs.start_codec``).
Usage: python bench/bench_exi.py [--iterations N] [--no-java] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass

from evse_secc.codecs import WARMUP_MESSAGES, start_codec
from exi_codec import NativeEXICodec

#: Target for CurrentDemandReq/Res in-process encode and decode (issue 7).
TARGET_MS = 0.5


BENCH_MESSAGES = (
    ("urn:din:70121:2012:MsgDef", "CurrentDemandReq"),
    ("urn:din:70121:2012:MsgDef", "CurrentDemandRes"),
    ("urn:iso:15118:2:2013:MsgDef", "CurrentDemandReq"),
    ("urn:iso:15118:2:2013:MsgDef", "CurrentDemandRes"),
    ("urn:iso:std:iso:15118:-20:DC", "DCChargeLoopReq"),
    ("urn:iso:std:iso:15118:-20:DC", "DCChargeLoopRes"),
)

PROTOCOL_LABELS = {"urn:din:70121:2012:MsgDef": "DIN", "urn:iso:15118:2:2013:MsgDef": "ISO-2",
                   "urn:iso:std:iso:15118:-20:DC": "ISO-20 DC"}


@dataclass
class MessageTiming:
    """p50/p99 in ms of one message's encode and decode, per codec (java None when not measured)."""

    message: str
    exi_bytes: int
    native_encode: tuple[float, float]
    native_decode: tuple[float, float]
    java_encode: tuple[float, float] | None = None
    java_decode: tuple[float, float] | None = None


def _time_ms(fn, iterations: int) -> tuple[float, float]:
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


def start_java():
    """``(codec, close, start_s)``: the package's Java codec (EXICodec.jar over py4j), not warmed up, and the
    seconds its start took."""
    t0 = time.perf_counter()
    java, close = start_codec("java", None)
    return java, close, time.perf_counter() - t0


def _element_name(message: dict) -> str:
    """The message's element: the body's one child for DIN/-2 (``V2G_Message``), the root element for -20."""
    if "V2G_Message" in message:
        (name,) = message["V2G_Message"]["Body"]
        return name
    (name,) = message
    return name


def bench_message(namespace: str, name: str) -> str:
    """The JSON of one of BENCH_MESSAGES, as the codecs take it (underscores in ``name`` are ignored)."""
    for message in WARMUP_MESSAGES[namespace]:
        if _element_name(message).replace("_", "") == name.replace("_", ""):
            return json.dumps(message)
    raise KeyError(f"no {name} among the warm-up messages of {namespace}")


def measure(iterations: int, java=None) -> list[MessageTiming]:
    """Encode/decode timings of BENCH_MESSAGES (Java, when given, gets max(200, iterations/10) runs)."""
    native = NativeEXICodec()
    rows = []
    for namespace, name in BENCH_MESSAGES:
        message = bench_message(namespace, name)
        exi = native.encode(message, namespace)
        if java is not None:
            assert java.encode(message, namespace) == exi, "not byte-identical"
        row = MessageTiming(
            message=f"{PROTOCOL_LABELS[namespace]} {name}", exi_bytes=len(exi),
            native_encode=_time_ms(lambda m=message, ns=namespace: native.encode(m, ns), iterations),
            native_decode=_time_ms(lambda e=exi, ns=namespace: native.decode(e, ns), iterations))
        if java is not None:
            n = max(200, iterations // 10)
            row.java_encode = _time_ms(lambda m=message, ns=namespace: java.encode(m, ns), n)
            row.java_decode = _time_ms(lambda e=exi, ns=namespace: java.decode(e, ns), n)
        rows.append(row)
    return rows


def markdown(rows: list[MessageTiming]) -> str:
    with_java = any(r.java_encode for r in rows)
    head = "| message | bytes | native encode p50 / p99 ms | native decode p50 / p99 ms |"
    rule = "|---|---:|---:|---:|"
    if with_java:
        head += " java encode p50 / p99 ms | java decode p50 / p99 ms |"
        rule += "---:|---:|"
    lines = [head, rule]
    for r in rows:
        line = (f"| {r.message} | {r.exi_bytes} | {r.native_encode[0]:.3f} / {r.native_encode[1]:.3f} "
                f"| {r.native_decode[0]:.3f} / {r.native_decode[1]:.3f} |")
        if with_java and r.java_encode:
            line += (f" {r.java_encode[0]:.3f} / {r.java_encode[1]:.3f} "
                     f"| {r.java_decode[0]:.3f} / {r.java_decode[1]:.3f} |")
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--no-java", action="store_true")
    args = parser.parse_args()

    java = close_java = None
    if not args.no_java:
        java, close_java, start_s = start_java()
        print(f"Java codec start: {start_s:.2f} s")
    t0 = time.perf_counter()
    native = NativeEXICodec()
    for ns in {ns for ns, _ in BENCH_MESSAGES}:
        native.grammars(ns)
    print(f"native grammar load (3 schemas, from the jar): {time.perf_counter() - t0:.2f} s\n")
    try:
        rows = measure(args.iterations, java)
    finally:
        if close_java is not None:
            close_java()
    print(markdown(rows))
    print(f"\nTarget for CurrentDemandReq/Res: encode and decode <= {TARGET_MS} ms in-process.")


if __name__ == "__main__":
    main()
