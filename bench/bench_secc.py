"""SECC response time per message type, measured from the SECC's side, for one or more controllers.

    sudo .venv/bin/python bench/bench_secc.py                          # --controller sim
    sudo .venv/bin/python bench/bench_secc.py --controller hal --controller sim --loops 300

For each controller, in turn and in the same run: our launcher (``src/evse_main.py --no-slac``) in
one network namespace, the stock iso15118 EVCC (.venv-evcc) in another, a veth pair between them.
One short warm-up session (JVM start-up and JIT; not counted), then ``--sessions`` measured sessions
of ``--loops`` charge loops each. The launcher's ``--message-log`` records, per request, the time from
the start of EXI-decoding the request to the end of EXI-encoding the response
(``evse_secc.message_timing``): decode + state machine + controller + encode.

Printed per message type: n, p50, p99, max, and the share within ISO 15118-2's 25 ms
V2G_SECC_Msg_Performance_Time for CurrentDemandRes (the other responses have 1.5 s; the 25 ms
column is shown for all to compare); with several controllers, the p50/p99 ratio to the first.
Needs root (namespaces), java, and .venv-evcc (created by scripts/setup-evcc.sh when missing).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import evcc_rig  # bench/evcc_rig.py: this script's directory is on sys.path
from evse_ev.demo_network import VethLink, netns_unavailable_reason
from evse_secc.exchange_log import CURRENT_DEMAND_RES_PERFORMANCE_TIME_S, MessageExchange

NAMESPACE_PREFIX = "bsecc"
WARMUP_LOOPS = 20
KEY_MESSAGES = ("CableCheckReq", "PreChargeReq", "CurrentDemandReq",
                "DC_CableCheckReq", "DC_PreChargeReq", "DC_ChargeLoopReq")


def percentile(values: list[float], fraction: float) -> float:
    """Linear-interpolated percentile (``statistics.quantiles`` inclusive method)."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(fraction * 100) - 1]


def measure_controller(controller: str, case: evcc_rig.BenchCase, loops: int, sessions: int,
                       workdir: Path) -> list[MessageExchange]:
    """The exchanges of ``sessions`` measured sessions (after one warm-up session) against one launcher."""
    with VethLink(prefix=NAMESPACE_PREFIX) as link:
        launcher = evcc_rig.LauncherProcess(link=link, controller=controller, workdir=workdir / controller)
        launcher.start(case)
        try:
            runs = [("warmup", WARMUP_LOOPS)] + [(f"session{i + 1}", loops) for i in range(sessions)]
            counted_from = 0
            for name, run_loops in runs:
                run_case = replace(case, evcc_config={**case.evcc_config, "chargeLoopCycle": run_loops})
                result = evcc_rig.run_evcc(link, run_case, workdir / controller / f"evcc-{name}")
                if result.returncode != 0:
                    raise RuntimeError(f"{controller} {name}: EVCC exited {result.returncode}\n{result.log[-2000:]}")
                if name == "warmup":
                    counted_from = len(launcher.exchanges())
                print(f"  {controller}: {name} done ({run_loops} loops)", file=sys.stderr, flush=True)
            return launcher.exchanges()[counted_from:]
        finally:
            launcher.stop()


def summarise(exchanges: list[MessageExchange]) -> dict[str, dict[str, float]]:
    by_request: dict[str, list[float]] = defaultdict(list)
    for exchange in exchanges:
        by_request[exchange.request].append(exchange.duration_s)
    limit = CURRENT_DEMAND_RES_PERFORMANCE_TIME_S
    return {request: {"n": len(durations), "p50_ms": 1000 * percentile(durations, 0.50),
                      "p99_ms": 1000 * percentile(durations, 0.99), "max_ms": 1000 * max(durations),
                      "within_25ms": sum(d <= limit for d in durations) / len(durations)}
            for request, durations in by_request.items()}


def print_report(results: dict[str, dict[str, dict[str, float]]], protocol: str) -> None:
    controllers = list(results)
    baseline = controllers[0]
    print(f"SECC response time per request ({protocol}); decode start -> encode end, from the SECC's side")
    print(f"ISO 15118-2 V2G_SECC_Msg_Performance_Time: CurrentDemandRes {CURRENT_DEMAND_RES_PERFORMANCE_TIME_S * 1000:.0f} ms "
          "(others 1.5 s)")
    order = list(results[baseline])
    for controller in controllers[1:]:
        order += [request for request in results[controller] if request not in order]
    header = f"{'request':32} {'controller':10} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'<=25ms':>7}"
    if len(controllers) > 1:
        header += f" {'p50 ratio':>9} {'p99 ratio':>9}"
    print(header)
    for request in order:
        marker = " *" if request in KEY_MESSAGES else ""
        for controller in controllers:
            row = results[controller].get(request)
            if row is None:
                continue
            line = (f"{request + marker:32} {controller:10} {row['n']:5d} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} "
                    f"{row['max_ms']:8.1f} {row['within_25ms']:7.0%}")
            base = results[baseline].get(request)
            if len(controllers) > 1 and base is not None:
                line += f" {row['p50_ms'] / base['p50_ms']:9.2f} {row['p99_ms'] / base['p99_ms']:9.2f}"
            print(line)
    print("* key messages; ratios are relative to the first controller")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--controller", action="append", choices=("sim", "hal"),
                        help="repeatable; measured in the given order in this run (default: sim)")
    parser.add_argument("--protocol", default="iso2-dc-eim",
                        help="interop case id: din70121, iso2-dc-eim (default), iso20-dc")
    parser.add_argument("--loops", type=int, default=200, help="charge loops per measured session")
    parser.add_argument("--sessions", type=int, default=2, help="measured sessions per controller")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    reason = netns_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"bench_secc: {reason}")
    evcc_rig.ensure_evcc_venv()
    cases = {case.id: case for case in evcc_rig.CASES}
    if args.protocol not in cases:
        raise SystemExit(f"bench_secc: --protocol must be one of {', '.join(cases)}")
    case = cases[args.protocol]
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_secc-") as tmp:
        for controller in args.controller or ["sim"]:
            exchanges = measure_controller(controller, case, args.loops, args.sessions, Path(tmp))
            results[controller] = summarise(exchanges)
    print_report(results, case.id)
    if args.json:
        args.json.write_text(json.dumps({"protocol": case.id, "loops": args.loops, "sessions": args.sessions,
                                         "results": results}, indent=2))


if __name__ == "__main__":
    main()
