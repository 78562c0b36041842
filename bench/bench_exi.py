"""EXI encode/decode time per message: native (pure Python) vs the package's Java codec, same run.

Messages: CurrentDemandReq/Res (DIN SPEC 70121, ISO 15118-2) and DC_ChargeLoopReq/Res
(ISO 15118-20 DC), drawn from iso15118's own models (fixed seeds), checked byte-identical first.
Usage: python bench/bench_exi.py [--iterations N] [--no-java] [--markdown]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from exi_codec import NativeEXICodec

_TEST_HELPERS = Path(__file__).resolve().parent.parent / "tests" / "exi"

#: Target for CurrentDemandReq/Res in-process encode and decode (issue 7).
TARGET_MS = 0.5


def _load_test_helper(name: str):
    """Load a module of tests/exi by file (message generator, Java oracle) without touching sys.path."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", _TEST_HELPERS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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
    """The tests' Java oracle (the package's EXICodec.jar over py4j) and its start time in s."""
    java_oracle = _load_test_helper("conftest").JavaOracle
    t0 = time.perf_counter()
    java = java_oracle()
    return java, time.perf_counter() - t0


def measure(iterations: int, java=None) -> list[MessageTiming]:
    """Encode/decode timings of BENCH_MESSAGES (Java, when given, gets max(200, iterations/10) runs)."""
    all_message_kinds = _load_test_helper("exi_model_instances").all_message_kinds
    native = NativeEXICodec()
    by_key = {(k.namespace, k.name): k for k in all_message_kinds()}
    rows = []
    for key in BENCH_MESSAGES:
        kind = by_key[key]
        message = kind.build(random.Random(1))
        exi = native.encode(message, kind.namespace)
        if java is not None:
            assert java.encode(message, kind.namespace) == exi, "not byte-identical"
        row = MessageTiming(
            message=f"{PROTOCOL_LABELS[kind.namespace]} {kind.name}", exi_bytes=len(exi),
            native_encode=_time_ms(lambda: native.encode(message, kind.namespace), iterations),
            native_decode=_time_ms(lambda: native.decode(exi, kind.namespace), iterations))
        if java is not None:
            n = max(200, iterations // 10)
            row.java_encode = _time_ms(lambda: java.encode(message, kind.namespace), n)
            row.java_decode = _time_ms(lambda: java.decode(exi, kind.namespace), n)
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

    java = None
    if not args.no_java:
        java, start_s = start_java()
        print(f"Java codec start: {start_s:.2f} s")
    t0 = time.perf_counter()
    native = NativeEXICodec()
    for ns in {ns for ns, _ in BENCH_MESSAGES}:
        native.grammars(ns)
    print(f"native grammar load (3 schemas, from the jar): {time.perf_counter() - t0:.2f} s\n")
    try:
        rows = measure(args.iterations, java)
    finally:
        if java is not None:
            java.close()
    print(markdown(rows))
    print(f"\nTarget for CurrentDemandReq/Res: encode and decode <= {TARGET_MS} ms in-process.")


if __name__ == "__main__":
    main()
