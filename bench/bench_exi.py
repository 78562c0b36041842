"""EXI encode/decode time per message: native (pure Python) vs the package's Java codec, same run.

Messages: CurrentDemandReq/Res (DIN SPEC 70121, ISO 15118-2) and DC_ChargeLoopReq/Res
(ISO 15118-20 DC): the charge loop the SECC warms its codec with (``evse_secc.codecs.WARMUP_MESSAGES``, shapes
from recorded sessions), checked byte-identical between the two codecs first. The Java codec is the package's
(iso15118's EXICodec.jar over py4j), started as the launcher starts it (``evse_secc.codecs.start_codec``).

``--sessions`` (``--rounds R``: R alternating measurements of each tree, the best kept): also every message type of
the five recorded sessions (tests/exi/vectors/sessions.jsonl: DIN SPEC
70121, ISO 15118-2 with and without TLS/PnC, ISO 15118-20 DC; the first recorded instance of each type), native
only, in µs. ``--baseline-src DIR``: the same native figures for the codec of another source tree (e.g. a
``git worktree`` of the revision before a change), measured in a child process with ``PYTHONPATH=DIR`` in the same
run, printed side by side.

``--icount N``: CPU instructions (valgrind's callgrind; needs ``valgrind``) per charge-loop exchange, i.e. decoding
the recorded request and encoding the recorded response of DIN, ISO 15118-2 and ISO 15118-20 DC (JSON strings, as the
SECC calls the codec): a child process run with 0 and with N exchanges, the difference / N; for this tree and, with
``--baseline-src``, the other one. Unlike the times it does not depend on what else the machine runs.

Usage: python bench/bench_exi.py [--iterations N] [--no-java] [--sessions] [--baseline-src DIR] [--json-out FILE]
                                 [--icount N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

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
                   "urn:iso:std:iso:15118:-20:DC": "ISO-20 DC", "urn:iso:15118:2:2010:AppProtocol": "SAP",
                   "urn:iso:std:iso:15118:-20:CommonMessages": "ISO-20", "urn:iso:std:iso:15118:-20:AC": "ISO-20 AC",
                   "http://www.w3.org/2000/09/xmldsig#": "xmldsig"}
SESSION_VECTORS = Path(__file__).resolve().parents[1] / "tests" / "exi" / "vectors" / "sessions.jsonl"


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


@dataclass
class VectorTiming:
    """One recorded session message type: native encode and decode in CPU µs, best of 5 means (decode None for a
    fragment)."""

    message: str
    exi_bytes: int
    encode_us: float
    decode_us: float | None


def _best_mean_us(fn, iterations: int, repeats: int = 5) -> float:
    """The best of ``repeats`` mean CPU times (this thread's: time spent preempted by other processes is not
    counted) of ``iterations // repeats`` calls, in µs."""
    n = max(1, iterations // repeats)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.thread_time()
        for _ in range(n):
            fn()
        best = min(best, (time.thread_time() - t0) / n)
    return best * 1e6


def _session_messages() -> list[tuple[str, str, str, bytes]]:
    """(label, namespace, JSON, EXI) of the first recorded instance of each message type, in session order."""
    seen: set[tuple[str, str]] = set()
    out = []
    for line in SESSION_VECTORS.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        vector = json.loads(line)
        name = _element_name(vector["json"])
        if (vector["namespace"], name) in seen:
            continue
        seen.add((vector["namespace"], name))
        label = f"{PROTOCOL_LABELS.get(vector['namespace'], vector['namespace'])} {name}"
        out.append((label, vector["namespace"], json.dumps(vector["json"]), bytes.fromhex(vector["exi"])))
    return out


def measure_sessions(iterations: int) -> list[VectorTiming]:
    """Native encode/decode time of every recorded message type (decoded only where the codec decodes it: not the
    fragments encoded for signatures)."""
    native = NativeEXICodec()
    rows = []
    for label, namespace, message, exi in _session_messages():
        assert native.encode(message, namespace) == exi, f"{label}: not the recorded bytes"
        try:
            native.decode(exi, namespace)
            decodable = True
        except ValueError:
            decodable = False
        encode = _best_mean_us(lambda m=message, ns=namespace: native.encode(m, ns), iterations)
        decode = _best_mean_us(lambda e=exi, ns=namespace: native.decode(e, ns), iterations) if decodable else None
        rows.append(VectorTiming(label, len(exi), encode, decode))
    return rows


def baseline_figures(src: Path, iterations: int, sessions: bool) -> dict:
    """This script's native figures for the codec of the source tree ``src`` (a child process, PYTHONPATH=src)."""
    with tempfile.TemporaryDirectory(prefix="bench_exi-") as tmp:
        out = Path(tmp) / "baseline.json"
        argv = [sys.executable, __file__, "--no-java", "--iterations", str(iterations), "--json-out", str(out)]
        subprocess.run(argv + (["--sessions"] if sessions else []), check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONPATH": str(src)})
        return json.loads(out.read_text())


def _speedup(before: float | None, after: float | None) -> str:
    return f"{before / after:.1f}×" if before and after else ""


def markdown_compare(rows: list[MessageTiming], base_rows: list[dict]) -> str:
    """Charge-loop messages: native p50 / p99 in µs, baseline tree vs this one."""
    lines = ["| message | bytes | encode p50 / p99 µs before | after | decode p50 / p99 µs before | after | "
             "speed-up encode, decode (p50) |", "|---|---:|---:|---:|---:|---:|---:|"]
    base = {r["message"]: r for r in base_rows}
    for r in rows:
        b = base.get(r.message)
        if b is None:
            continue
        lines.append(
            f"| {r.message} | {r.exi_bytes} | {1e3 * b['native_encode'][0]:.0f} / {1e3 * b['native_encode'][1]:.0f} "
            f"| {1e3 * r.native_encode[0]:.0f} / {1e3 * r.native_encode[1]:.0f} "
            f"| {1e3 * b['native_decode'][0]:.0f} / {1e3 * b['native_decode'][1]:.0f} "
            f"| {1e3 * r.native_decode[0]:.0f} / {1e3 * r.native_decode[1]:.0f} "
            f"| {_speedup(b['native_encode'][0], r.native_encode[0])}, "
            f"{_speedup(b['native_decode'][0], r.native_decode[0])} |")
    return "\n".join(lines)


def markdown_sessions(rows: list[VectorTiming], base_rows: list[dict] | None) -> str:
    """Every recorded message type: native µs per call (and the baseline tree's, when measured)."""
    base = {r["message"]: r for r in base_rows or []}
    if base:
        lines = ["| message | bytes | encode µs before | after | decode µs before | after |",
                 "|---|---:|---:|---:|---:|---:|"]
    else:
        lines = ["| message | bytes | encode µs | decode µs |", "|---|---:|---:|---:|"]

    def us(value: float | None) -> str:
        return "—" if value is None else f"{value:.0f}"

    for r in rows:
        b = base.get(r.message)
        if base:
            lines.append(f"| {r.message} | {r.exi_bytes} | {us(b and b['encode_us'])} | {us(r.encode_us)} "
                         f"| {us(b and b['decode_us'])} | {us(r.decode_us)} |")
        else:
            lines.append(f"| {r.message} | {r.exi_bytes} | {us(r.encode_us)} | {us(r.decode_us)} |")
    return "\n".join(lines)


#: (namespace, request, response) of the charge loop, as recorded in the sessions (--icount).
ICOUNT_PAIRS = (("urn:din:70121:2012:MsgDef", "CurrentDemandReq", "CurrentDemandRes"),
                ("urn:iso:15118:2:2013:MsgDef", "CurrentDemandReq", "CurrentDemandRes"),
                ("urn:iso:std:iso:15118:-20:DC", "DC_ChargeLoopReq", "DC_ChargeLoopRes"))


def icount_child(namespace: str, request: str, response: str, exchanges: int) -> None:
    """Decode the recorded request and encode the recorded response ``exchanges`` times (after one untimed pair:
    grammars, plans)."""
    recorded = {(label.rsplit(" ", 1)[1], ns): (message, exi) for label, ns, message, exi in _session_messages()}
    request_exi = recorded[(request, namespace)][1]
    response_json = recorded[(response, namespace)][0]
    native = NativeEXICodec()
    native.decode(request_exi, namespace)
    native.encode(response_json, namespace)
    for _ in range(exchanges):
        native.decode(request_exi, namespace)
        native.encode(response_json, namespace)


def _instructions(src: Path | None, pair: tuple[str, str, str], exchanges: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(src)} if src is not None else dict(os.environ)
    argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
            "--icount-child", *pair, str(exchanges)]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    for line in result.stderr.splitlines():
        if "Collected :" in line:
            return int(line.rsplit(":", 1)[1])
    raise RuntimeError(f"no instruction count from callgrind: {result.stderr[-500:]}")


def measure_icount(exchanges: int, baseline_src: Path | None) -> list[tuple[str, int | None, int]]:
    """(label, baseline instructions or None, this tree's instructions) per charge-loop exchange."""
    rows = []
    for pair in ICOUNT_PAIRS:
        per_tree: list[int | None] = []
        for src in (baseline_src, None) if baseline_src else (None,):
            empty = _instructions(src, pair, 0)
            per_tree.append((_instructions(src, pair, exchanges) - empty) // exchanges)
        label = f"{PROTOCOL_LABELS[pair[0]]} {pair[1]} + {pair[2]}"
        rows.append((label, per_tree[0] if baseline_src else None, per_tree[-1] or 0))
    return rows


def markdown_icount(rows: list[tuple[str, int | None, int]]) -> str:
    lines = ["| exchange (decode request + encode response) | instructions before | after | before / after |",
             "|---|---:|---:|---:|"]
    for label, before, after in rows:
        if before is None:
            lines.append(f"| {label} | — | {after:,} | |")
        else:
            lines.append(f"| {label} | {before:,} | {after:,} | {before / after:.2f} |")
    return "\n".join(lines)


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
    parser.add_argument("--sessions", action="store_true", help="also every recorded session message type")
    parser.add_argument("--baseline-src", type=Path, help="a source tree whose codec is measured too, same run")
    parser.add_argument("--json-out", type=Path, help="write the native figures here (used for --baseline-src)")
    parser.add_argument("--icount", type=int, metavar="N", help="also instructions per charge-loop exchange")
    parser.add_argument("--rounds", type=int, default=1,
                        help="--sessions: measure the trees this many times, alternately, and keep the best")
    parser.add_argument("--icount-child", nargs=4, metavar=("NS", "REQ", "RES", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.icount_child:
        namespace, request, response, exchanges = args.icount_child
        icount_child(namespace, request, response, int(exchanges))
        return

    java = close_java = None
    if not args.no_java:
        java, close_java, start_s = start_java()
        print(f"Java codec start: {start_s:.2f} s")
    base = baseline_figures(args.baseline_src, args.iterations, args.sessions) if args.baseline_src else None
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
    session_rows = measure_sessions(args.iterations) if args.sessions else []
    for _ in range(args.rounds - 1):  # alternate the two trees; keep each message's best time of all rounds
        if base is not None and args.sessions:
            again = baseline_figures(args.baseline_src, args.iterations, True)["sessions"]
            for kept, new in zip(base["sessions"], again, strict=True):
                for key in ("encode_us", "decode_us"):
                    if kept[key] is not None:
                        kept[key] = min(kept[key], new[key])
        for kept_row, new_row in zip(session_rows, measure_sessions(args.iterations), strict=True):
            kept_row.encode_us = min(kept_row.encode_us, new_row.encode_us)
            if kept_row.decode_us is not None and new_row.decode_us is not None:
                kept_row.decode_us = min(kept_row.decode_us, new_row.decode_us)
    if args.json_out:
        args.json_out.write_text(json.dumps({"rows": [asdict(r) for r in rows],
                                             "sessions": [asdict(r) for r in session_rows]}))
    print(markdown(rows))
    print(f"\nTarget for CurrentDemandReq/Res: encode and decode <= {TARGET_MS} ms in-process.")
    if base is not None:
        print(f"\nNative, {args.baseline_src} (before) vs this tree (after), {args.iterations} runs each, "
              f"load average {os.getloadavg()[0]:.2f}:\n")
        print(markdown_compare(rows, base["rows"]))
    if args.icount:
        print(f"\nCPU instructions per charge-loop exchange (callgrind, {args.icount} exchanges; recorded session "
              "messages, JSON strings in and out):\n")
        print(markdown_icount(measure_icount(args.icount, args.baseline_src)))
    if args.sessions:
        print(f"\nEvery message type of the recorded sessions, native CPU µs per call, best of 5 means in each of "
              f"{args.rounds} round(s) (JSON string in, EXI out and back):\n")
        print(markdown_sessions(session_rows, base["sessions"] if base else None))


if __name__ == "__main__":
    main()
