"""The SECC with the native EXI codec vs the Java one, in the same run; Markdown on stdout.

    sudo .venv/bin/python bench/bench_secc_codec.py                       # DIN + ISO 15118-2, native and java
    sudo .venv/bin/python bench/bench_secc_codec.py --protocol iso20-dc --loops 300 --sessions 2

Per codec and protocol: our launcher (``src/evse_main.py --no-slac --exi-codec X``) in one network
namespace, the stock iso15118 EVCC (.venv-evcc, its own Java codec) in another, a veth pair between
them (bench/evcc_rig.py). Measured:

- start: launcher process start -> its ready line (imports, grammars or JVM + warm-up, SECC servers);
- memory: RSS of the launcher and all its children (the JVM for java) when ready and after the sessions;
- the first charge-loop response of the first session (cold for an unwarmed JVM), then one warm-up
  session is dropped and ``--sessions`` of ``--loops`` charge loops are measured: the SECC's time from
  the start of decoding the request to the end of encoding the response (``evse_secc.message_timing``)
  for every request, p50/p99/max, against ISO 15118-2's 25 ms V2G_SECC_Msg_Performance_Time;
- in-process encode/decode per charge-loop message (bench_exi.py), native vs java.

Needs root (namespaces), java (for the java rows), and .venv-evcc (created by scripts/setup-evcc.sh).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil

import bench_secc  # siblings in bench/: this script's directory is on sys.path
import evcc_rig
from evse_ev.demo_network import VethLink, netns_unavailable_reason
from evse_secc.exchange_log import CURRENT_DEMAND_RES_PERFORMANCE_TIME_S, MessageExchange

NAMESPACE_PREFIX = "bxcod"
CHARGE_LOOP_REQUESTS = ("CurrentDemandReq", "DC_ChargeLoopReq")
SHOWN_REQUESTS = ("CableCheckReq", "PreChargeReq", "DC_CableCheckReq", "DC_PreChargeReq", *CHARGE_LOOP_REQUESTS)


def tree_rss_bytes(pid: int) -> int:
    """RSS of a process and all its descendants (the launcher + its JVM child, if any)."""
    process = psutil.Process(pid)
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


@dataclass
class CodecRun:
    codec: str
    protocol: str
    start_s: float = 0.0
    rss_ready_MB: float = 0.0
    rss_after_MB: float = 0.0
    first_loop_ms: float = 0.0
    exchanges: list[MessageExchange] = field(default_factory=list)


def measure_codec(codec: str, case: evcc_rig.BenchCase, loops: int, sessions: int, workdir: Path) -> CodecRun:
    run = CodecRun(codec=codec, protocol=case.id)
    with VethLink(prefix=NAMESPACE_PREFIX) as link:
        launcher = evcc_rig.LauncherProcess(link=link, controller="sim", workdir=workdir / f"{codec}-{case.id}",
                                            extra_args=("--exi-codec", codec))
        started = time.monotonic()
        launcher.start(case)
        run.start_s = time.monotonic() - started
        run.rss_ready_MB = tree_rss_bytes(launcher.process.pid) / 1e6
        try:
            counted_from = 0
            runs = [("warmup", bench_secc.WARMUP_LOOPS)] + [(f"session{i + 1}", loops) for i in range(sessions)]
            for name, run_loops in runs:
                run_case = replace(case, evcc_config={**case.evcc_config, "chargeLoopCycle": run_loops})
                result = evcc_rig.run_evcc(link, run_case, workdir / f"{codec}-{case.id}" / f"evcc-{name}")
                if result.returncode != 0:
                    raise RuntimeError(f"{codec} {case.id} {name}: EVCC exited {result.returncode}: "
                                       f"{result.diagnosis()}\n{result.log[-2000:]}")
                if name == "warmup":
                    first = launcher.exchanges()
                    run.first_loop_ms = 1000 * next(e.duration_s for e in first
                                                    if e.request in CHARGE_LOOP_REQUESTS)
                    counted_from = len(first)
                print(f"  {codec} {case.id}: {name} done ({run_loops} loops)", file=sys.stderr, flush=True)
            run.rss_after_MB = tree_rss_bytes(launcher.process.pid) / 1e6
            run.exchanges = launcher.exchanges()[counted_from:]
        finally:
            launcher.stop()
    return run


def markdown_secc(runs: list[CodecRun]) -> str:
    lines = ["| protocol | codec | start s | RSS ready MB | RSS after MB | first charge-loop res ms |",
             "|---|---|---:|---:|---:|---:|"]
    for r in runs:
        lines.append(f"| {r.protocol} | {r.codec} | {r.start_s:.2f} | {r.rss_ready_MB:.0f} | {r.rss_after_MB:.0f} "
                     f"| {r.first_loop_ms:.1f} |")
    lines += ["", "| protocol | request | codec | n | p50 ms | p99 ms | max ms | within 25 ms |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in runs:
        summary = bench_secc.summarise(r.exchanges)
        for request in SHOWN_REQUESTS:
            row = summary.get(request)
            if row is None:
                continue
            lines.append(f"| {r.protocol} | {request} | {r.codec} | {row['n']} | {row['p50_ms']:.2f} "
                         f"| {row['p99_ms']:.2f} | {row['max_ms']:.2f} | {row['within_25ms']:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--codec", action="append", choices=("native", "java"),
                        help="repeatable, measured in this order (default: native, java)")
    parser.add_argument("--protocol", action="append",
                        help="interop case id, repeatable: din70121, iso2-dc-eim, iso20-dc "
                             "(default: din70121 and iso2-dc-eim)")
    parser.add_argument("--loops", type=int, default=200, help="charge loops per measured session")
    parser.add_argument("--sessions", type=int, default=2, help="measured sessions per codec and protocol")
    parser.add_argument("--iterations", type=int, default=2000, help="bench_exi iterations per message")
    parser.add_argument("--no-exi", action="store_true", help="skip the in-process encode/decode table")
    args = parser.parse_args(argv)
    reason = netns_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"bench_secc_codec: {reason}")
    evcc_rig.ensure_evcc_venv()
    cases = {case.id: case for case in evcc_rig.CASES}
    protocols = args.protocol or ["din70121", "iso2-dc-eim"]
    unknown = [p for p in protocols if p not in cases]
    if unknown:
        raise SystemExit(f"bench_secc_codec: unknown --protocol {unknown}; one of {', '.join(cases)}")
    codecs = args.codec or ["native", "java"]
    runs: list[CodecRun] = []
    with tempfile.TemporaryDirectory(prefix="bench_secc_codec-") as tmp:
        for protocol in protocols:
            for codec in codecs:
                runs.append(measure_codec(codec, cases[protocol], args.loops, args.sessions, Path(tmp)))
    print("## SECC with the native vs the Java EXI codec\n")
    print(f"{args.sessions} sessions x {args.loops} charge loops per codec and protocol, after one warm-up "
          f"session; SECC time = request decode start -> response encode end. ISO 15118-2 "
          f"V2G_SECC_Msg_Performance_Time for CurrentDemandRes: {CURRENT_DEMAND_RES_PERFORMANCE_TIME_S * 1e3:.0f} ms."
          f" Start = process start -> ready line; RSS includes the JVM child for java.\n")
    print(markdown_secc(runs))
    if not args.no_exi:
        import bench_exi  # in-process codec timing (a sibling)

        java = close_java = None
        if "java" in codecs:
            java, close_java, _java_start_s = bench_exi.start_java()
        try:
            rows = bench_exi.measure(args.iterations, java)
        finally:
            if close_java is not None:
                close_java()
        print(f"\n## In-process encode/decode per message ({args.iterations} native runs, "
              f"{max(200, args.iterations // 10)} java runs; target <= {bench_exi.TARGET_MS} ms)\n")
        print(bench_exi.markdown(rows))


if __name__ == "__main__":
    main()
