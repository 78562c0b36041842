"""EXI encode/decode time per message: native (pure Python) vs the package's Java codec, same run.

Messages: CurrentDemandReq/Res (DIN SPEC 70121, ISO 15118-2) and DC_ChargeLoopReq/Res
(ISO 15118-20 DC), drawn from iso15118's own models (fixed seeds), checked byte-identical first.
Usage: python bench/bench_exi.py [--iterations N] [--no-java]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import sys
import time
from pathlib import Path

from exi_codec import NativeEXICodec

_TEST_HELPERS = Path(__file__).resolve().parent.parent / "tests" / "exi"


def _load_test_helper(name: str):
    """Load a module of tests/exi by file (message generator, Java oracle) without touching sys.path."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", _TEST_HELPERS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module

BENCH_MESSAGES = {
    ("urn:din:70121:2012:MsgDef", "CurrentDemandReq"),
    ("urn:din:70121:2012:MsgDef", "CurrentDemandRes"),
    ("urn:iso:15118:2:2013:MsgDef", "CurrentDemandReq"),
    ("urn:iso:15118:2:2013:MsgDef", "CurrentDemandRes"),
    ("urn:iso:std:iso:15118:-20:DC", "DCChargeLoopReq"),
    ("urn:iso:std:iso:15118:-20:DC", "DCChargeLoopRes"),
}


def _time_ms(fn, iterations: int) -> tuple[float, float]:
    samples = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--no-java", action="store_true")
    args = parser.parse_args()

    all_message_kinds = _load_test_helper("exi_model_instances").all_message_kinds
    native = NativeEXICodec()
    java = None
    if not args.no_java:
        JavaOracle = _load_test_helper("conftest").JavaOracle  # noqa: N806

        t0 = time.perf_counter()
        java = JavaOracle()
        print(f"Java codec start: {time.perf_counter() - t0:.2f} s")
    t0 = time.perf_counter()
    for ns, _ in BENCH_MESSAGES:
        native.grammars(ns)
    print(f"native grammar load (3 schemas, from the jar): {time.perf_counter() - t0:.2f} s")

    kinds = [k for k in all_message_kinds() if (k.namespace, k.name) in BENCH_MESSAGES]
    print(f"{'message':40s} {'bytes':>5s}  {'native enc p50/p99 ms':>22s} {'native dec p50/p99 ms':>22s}"
          + ("  java enc p50/p99 ms   java dec p50/p99 ms" if java else ""))
    for kind in kinds:
        message = kind.build(random.Random(1))
        exi = native.encode(message, kind.namespace)
        if java is not None:
            assert java.encode(message, kind.namespace) == exi, "not byte-identical"
        enc = _time_ms(lambda: native.encode(message, kind.namespace), args.iterations)
        dec = _time_ms(lambda: native.decode(exi, kind.namespace), args.iterations)
        line = (f"{kind.namespace.rsplit(':', 2)[-2] + ':' + kind.name:40s} {len(exi):5d}  "
                f"{enc[0]:10.3f} / {enc[1]:8.3f}  {dec[0]:10.3f} / {dec[1]:8.3f}")
        if java is not None:
            n = max(200, args.iterations // 10)
            jenc = _time_ms(lambda: java.encode(message, kind.namespace), n)
            jdec = _time_ms(lambda: java.decode(exi, kind.namespace), n)
            line += f"  {jenc[0]:8.3f} / {jenc[1]:7.3f}  {jdec[0]:8.3f} / {jdec[1]:7.3f}"
        print(line, flush=True)
    if java is not None:
        java.close()


if __name__ == "__main__":
    main()
