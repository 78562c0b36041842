"""SECC response time per message type, measured from the SECC's side, for one or more controllers.

    sudo .venv/bin/python bench/bench_secc.py                          # --controller sim
    sudo .venv/bin/python bench/bench_secc.py --controller hal --controller sim --loops 300

For each controller, in turn and in the same run: our launcher (``src/evse_main.py --no-slac``) in
one network namespace, the stock iso15118 EVCC (.venv-evcc) in another, a veth pair between them.
One short warm-up session (JVM start-up and JIT; not counted), then ``--sessions`` measured sessions
of ``--loops`` charge loops each. The launcher's ``--message-log`` records, per request, the time from
the start of EXI-decoding the request to the end of EXI-encoding the response
(``evse_secc.message_timing``): decode + state machine + controller + encode.

``--load``: the launcher also serves its API (``--api-port``) and, after the quiet sessions, the same number of
sessions runs while bench/api_load.py (in the launcher's namespace) hammers it: 20 keep-alive ``GET /status``
clients and 50 ``/stream`` subscribers, from ``--source-addresses`` loopback addresses; ``--rate-limit off`` turns
the API's per-client limiter off. ``--probe`` runs the launcher under bench/secc_probe.py: per request, kernel
arrival -> loop read -> handler start, the handler by part, its CPU time. With ``--load`` every phase also reports
its control ticks from the launcher's own ``/metrics`` (bench/tick_lateness_scraper.py): how many, how many started
more than 5 ms late, the bound of the highest lateness bucket hit — the supervisor's timing while an ISO 15118
session and the API load run at once. ``--baseline-src DIR`` measures each
controller with DIR's launcher first (``git archive <rev> src``), in the same run.

Printed per message type: n, p50, p99, max, and the share within ISO 15118-2's 25 ms
V2G_SECC_Msg_Performance_Time for CurrentDemandRes (the other responses have 1.5 s; the 25 ms
column is shown for all to compare); with several controllers, the p50/p99 ratio to the first.
Needs root (namespaces), java, and .venv-evcc (created by scripts/setup-evcc.sh when missing).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import evcc_rig  # bench/evcc_rig.py: this script's directory is on sys.path
from evse_ev.demo_network import API_PORT, VethLink, netns_unavailable_reason
from evse_secc.exchange_log import CURRENT_DEMAND_RES_PERFORMANCE_TIME_S, MessageExchange

NAMESPACE_PREFIX = "bsecc"
WARMUP_LOOPS = 20
PROBE_SCRIPT = Path(__file__).with_name("secc_probe.py")
LOAD_SETTLE_S = 2.0
KEY_MESSAGES = ("CableCheckReq", "PreChargeReq", "CurrentDemandReq",
                "DC_CableCheckReq", "DC_PreChargeReq", "DC_ChargeLoopReq")


def percentile(values: list[float], fraction: float) -> float:
    """Linear-interpolated percentile (``statistics.quantiles`` inclusive method)."""
    if len(values) == 1:
        return values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(fraction * 100) - 1]


@dataclass(frozen=True)
class LoadSpec:
    """The API load of a loaded phase (bench/api_load.py in the launcher's namespace)."""

    clients: int = 20
    subscribers: int = 50
    source_addresses: int = 20
    api_port: int = API_PORT


@dataclass
class PhaseResult:
    exchanges: list[MessageExchange]
    probes: list[dict] = field(default_factory=list)
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_counts: dict | None = None
    control_ticks: dict | None = None  # bench/tick_lateness_scraper.py's summary of the phase (API served only)


def start_api_load(link: VethLink, spec: LoadSpec, workdir: Path) -> subprocess.Popen:
    argv = [sys.executable, str(Path(__file__).with_name("api_load.py")), f"http://127.0.0.1:{spec.api_port}",
            "--clients", str(spec.clients), "--subscribers", str(spec.subscribers),
            "--source-addresses", str(spec.source_addresses)]
    log = (workdir / "api_load.out").open("wb")
    process = subprocess.Popen(link.in_evse(argv), stdout=log, stderr=subprocess.STDOUT)
    time.sleep(LOAD_SETTLE_S)  # connections up, streams subscribed
    if process.poll() is not None:
        raise RuntimeError(f"api_load exited {process.returncode}: {(workdir / 'api_load.out').read_text()}")
    return process


def start_tick_scraper(link: VethLink, spec: LoadSpec, workdir: Path, phase: str) -> subprocess.Popen:
    """bench/tick_lateness_scraper.py on the launcher's API for one phase (its summary in <phase>-ticks.out)."""
    argv = [sys.executable, str(Path(__file__).with_name("tick_lateness_scraper.py")),
            f"http://127.0.0.1:{spec.api_port}"]
    return subprocess.Popen(link.in_evse(argv), stdout=(workdir / f"{phase}-ticks.out").open("wb"),
                            stderr=subprocess.STDOUT)


def stop_api_load(process: subprocess.Popen, workdir: Path, output_name: str = "api_load.out") -> dict | None:
    """SIGTERM a helper process of the bench (load or scraper) and read the JSON line it printed last."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    lines = (workdir / output_name).read_text(errors="replace").strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return None


def _knows_the_flag(src: Path | None, flag: str) -> bool:
    """Whether the launcher of ``src`` (None: this tree) takes ``flag`` (a baseline revision may predate it)."""
    launcher = (src if src is not None else Path(__file__).resolve().parents[1] / "src") / "evse_main.py"
    return flag in launcher.read_text(encoding="utf-8")


def measure_controller(controller: str, case: evcc_rig.BenchCase, loops: int, sessions: int,
                       workdir: Path, load: LoadSpec | None = None,
                       probe: bool = False, profile: bool = False, src: Path | None = None,
                       launcher_env: dict[str, str] | None = None, label: str | None = None,
                       front_process: bool = False) -> dict[str, PhaseResult]:
    """Per phase (``quiet``, then ``loaded`` when ``load`` is given): the exchanges of ``sessions`` measured
    sessions (after one warm-up session) against one launcher, and its probes (``probe``). ``src``: run the
    launcher of that source tree (a baseline revision's ``git archive``) instead of this one's."""
    label = label or controller
    controller_dir = workdir / label
    controller_dir.mkdir(parents=True, exist_ok=True)
    probe_out = controller_dir / "probe.jsonl"
    extra_args: tuple[str, ...] = ("--api-port", str(load.api_port)) if load is not None else ()
    if front_process and load is not None:
        extra_args += ("--api-front-process",)
    elif load is not None and _knows_the_flag(src, "--no-api-front-process"):
        extra_args += ("--no-api-front-process",)  # the API in the launcher's process (trees before it: always)
    with VethLink(prefix=NAMESPACE_PREFIX) as link:
        env = dict(launcher_env or {})
        if src is not None:
            env.update(PYTHONPATH=str(src), SECC_PROBE_SRC=str(src))
        if probe:
            env["SECC_PROBE_OUT"] = str(probe_out)
            if profile:
                env["SECC_PROBE_PROFILE"] = str(controller_dir / "secc.pstats")
        launcher = evcc_rig.LauncherProcess(
            link=link, controller=controller, workdir=controller_dir, extra_args=extra_args,
            script=PROBE_SCRIPT if probe else (src / "evse_main.py" if src else evcc_rig.LAUNCHER_SCRIPT),
            extra_env=env)
        launcher.start(case)
        phases: dict[str, tuple[int, int, float, float]] = {}
        load_counts: dict[str, dict | None] = {}
        control_ticks: dict[str, dict | None] = {}
        load_averages: dict[str, tuple[float, float, float]] = {}
        failures: list[str] = []
        try:
            def run_session(name: str, run_loops: int) -> None:
                run_case = replace(case, evcc_config={**case.evcc_config, "chargeLoopCycle": run_loops})
                result = evcc_rig.run_evcc(link, run_case, controller_dir / f"evcc-{name}")
                if result.returncode != 0:
                    # A measured session cut short (e.g. the EV's own timeout on an overloaded machine) still
                    # counts the requests it answered; the warm-up must succeed.
                    message = f"{label} {name}: EVCC exited {result.returncode} {result.diagnosis()}"
                    if name == "warmup":
                        raise RuntimeError(f"{message}\n{result.log[-2000:]}")
                    failures.append(message)
                    print(f"  {message}", file=sys.stderr, flush=True)
                    return
                print(f"  {label}: {name} done ({run_loops} loops)", file=sys.stderr, flush=True)

            run_session("warmup", WARMUP_LOOPS)
            for phase in ("quiet", "loaded") if load is not None else ("quiet",):
                load_process = start_api_load(link, load, controller_dir) if phase == "loaded" and load else None
                scraper = start_tick_scraper(link, load, controller_dir, phase) if load is not None else None
                first, started_at = len(launcher.exchanges()), time.time()
                try:
                    for i in range(sessions):
                        run_session(f"{phase}{i + 1}", loops)
                finally:
                    load_averages[phase] = os.getloadavg()
                    if scraper is not None:
                        control_ticks[phase] = stop_api_load(scraper, controller_dir, f"{phase}-ticks.out")
                    if load_process is not None:
                        load_counts[phase] = stop_api_load(load_process, controller_dir)
                phases[phase] = (first, len(launcher.exchanges()), started_at, time.time())
            exchanges = launcher.exchanges()
        finally:
            launcher.stop()
    probes = [json.loads(line) for line in probe_out.read_text().splitlines()] if probe and probe_out.exists() \
        else []
    return {phase: PhaseResult(exchanges=exchanges[first:last],
                               probes=[p for p in probes if started_at <= p["at"] <= ended_at],
                               load_average=load_averages[phase], load_counts=load_counts.get(phase),
                               control_ticks=control_ticks.get(phase))
            for phase, (first, last, started_at, ended_at) in phases.items()}


def summarise(exchanges: list[MessageExchange]) -> dict[str, dict[str, float]]:
    by_request: dict[str, list[float]] = defaultdict(list)
    for exchange in exchanges:
        by_request[exchange.request].append(exchange.duration_s)
    limit = CURRENT_DEMAND_RES_PERFORMANCE_TIME_S
    return {request: {"n": len(durations), "p50_ms": 1000 * percentile(durations, 0.50),
                      "p99_ms": 1000 * percentile(durations, 0.99), "max_ms": 1000 * max(durations),
                      "within_25ms": sum(d <= limit for d in durations) / len(durations)}
            for request, durations in by_request.items()}


PROBE_FIELDS = ("queue_ms", "wake_ms", "handle_ms", "cpu_ms", "codec_ms", "exi_ms", "state_ms", "controller_ms", "log_ms",
                "send_ms", "after_ms")


def summarise_probes(probes: list[dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Per request and probe field (secc_probe.py): p50 / p99 / max / mean in ms; and the mean per controller
    method (``calls.<name>``)."""
    by_request: dict[str, list[dict]] = defaultdict(list)
    for record in probes:
        by_request[record.get("request", "?")].append(record)
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for request, records in by_request.items():
        fields: dict[str, dict[str, float]] = {}
        for name in PROBE_FIELDS:
            values = [record.get(name, 0.0) for record in records]
            if any(values):
                fields[name] = {"p50": percentile(values, 0.5), "p99": percentile(values, 0.99), "max": max(values),
                                "mean": statistics.fmean(values)}
        calls: dict[str, list[float]] = defaultdict(list)
        for record in records:
            for method, spent_ms in record.get("calls", {}).items():
                calls[method].append(spent_ms)
        for method, values in calls.items():
            fields[f"calls.{method}"] = {"mean": sum(values) / len(records), "max": max(values)}
        summary[request] = fields
    return summary


def print_probes(label: str, summary: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"probe {label}: where a request's time goes, ms (secc_probe.py; queue = bytes in the kernel -> loop "
          "reads them)")
    for request in ("CurrentDemandReq", "DC_ChargeLoopReq", "PreChargeReq", "CableCheckReq"):
        fields = summary.get(request)
        if not fields:
            continue
        print(f"  {request}")
        for name, row in fields.items():
            if name.startswith("calls."):
                continue
            print(f"    {name:14} p50 {row['p50']:7.3f}  p99 {row['p99']:7.3f}  max {row['max']:7.3f}  "
                  f"mean {row['mean']:7.3f}")
        calls = sorted(((name, row) for name, row in fields.items() if name.startswith("calls.")),
                       key=lambda item: -item[1]["mean"])
        print("    controller calls (mean per request): " +
              ", ".join(f"{name[6:]} {row['mean']:.3f}" for name, row in calls))


def print_report(results: dict[str, dict[str, dict[str, float]]], protocol: str) -> None:
    controllers = list(results)
    baseline = controllers[0]
    print(f"SECC response time per request ({protocol}); decode start -> encode end, from the SECC's side")
    print(f"ISO 15118-2 V2G_SECC_Msg_Performance_Time: CurrentDemandRes {CURRENT_DEMAND_RES_PERFORMANCE_TIME_S * 1000:.0f} ms "
          "(others 1.5 s)")
    order = list(results[baseline])
    for controller in controllers[1:]:
        order += [request for request in results[controller] if request not in order]
    header = f"{'request':32} {'controller':16} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'<=25ms':>7}"
    if len(controllers) > 1:
        header += f" {'p50 ratio':>9} {'p99 ratio':>9}"
    print(header)
    for request in order:
        marker = " *" if request in KEY_MESSAGES else ""
        for controller in controllers:
            row = results[controller].get(request)
            if row is None:
                continue
            line = (f"{request + marker:32} {controller:16} {row['n']:5d} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} "
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
    parser.add_argument("--load", action="store_true",
                        help="also measure under API load in the same run: the launcher serves its API "
                             "(--api-port) and bench/api_load.py hammers it (quiet sessions first, then loaded)")
    parser.add_argument("--clients", type=int, default=20, help="--load: keep-alive clients on GET /status")
    parser.add_argument("--subscribers", type=int, default=50, help="--load: SSE subscribers on /stream")
    parser.add_argument("--source-addresses", type=int, default=20,
                        help="--load: the clients' loopback addresses (0: one address, what a per-client "
                             "rate limiter sees as a single client)")
    parser.add_argument("--probe", action="store_true",
                        help="run the launcher with bench/secc_probe.py: where each request's time goes")
    parser.add_argument("--profile", action="store_true",
                        help="with --probe: cProfile the SECC's message handling into <workdir>/<controller>/"
                             "secc.pstats (slows it: not for the timings)")
    parser.add_argument("--baseline-src", type=Path,
                        help="also measure each controller with the launcher of this source tree first (e.g. "
                             "`git archive <rev> src | tar -x -C DIR`, then DIR/src), in the same run")
    parser.add_argument("--rate-limit", choices=("default", "off"), default="default",
                        help="the API's per-client rate limiter in the launcher (off: CCS_SIM_RATE_LIMIT_PER_S=0)")
    parser.add_argument("--api-front-process", action="store_true",
                        help="with --load: also measure each controller with the launcher's API served by a front "
                             "process of its own (evse-main --api-front-process), in the same run, after it in-process")
    parser.add_argument("--workdir", type=Path, help="keep logs, probes and profiles here (default: a temporary "
                                                     "directory, removed)")
    args = parser.parse_args(argv)
    reason = netns_unavailable_reason()
    if reason is not None:
        raise SystemExit(f"bench_secc: {reason}")
    evcc_rig.ensure_evcc_venv()
    cases = {case.id: case for case in evcc_rig.CASES}
    if args.protocol not in cases:
        raise SystemExit(f"bench_secc: --protocol must be one of {', '.join(cases)}")
    case = cases[args.protocol]
    load = LoadSpec(clients=args.clients, subscribers=args.subscribers,
                    source_addresses=args.source_addresses) if args.load else None
    results: dict[str, dict[str, dict[str, float]]] = {}
    probes: dict[str, dict] = {}
    extra: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bench_secc-") as tmp:
        launcher_env = {"CCS_SIM_RATE_LIMIT_PER_S": "0"} if args.rate_limit == "off" else {}
        runs = [(f"{controller}@base", controller, args.baseline_src.resolve(), False) for controller in
                args.controller or ["sim"] if args.baseline_src] + \
            [(controller, controller, None, False) for controller in args.controller or ["sim"]] + \
            [(f"{controller}+front", controller, None, True) for controller in args.controller or ["sim"]
             if args.api_front_process and load is not None]
        for name, controller, src, front_process in runs:
            phases = measure_controller(controller, case, args.loops, args.sessions, args.workdir or Path(tmp), load,
                                        args.probe, args.profile, src, launcher_env,
                                        name.replace("@", "-").replace("+", "-"), front_process)
            for phase, result in phases.items():
                label = name if load is None else f"{name}/{phase}"
                results[label] = summarise(result.exchanges)
                extra[label] = {"load_average": result.load_average, "api_load": result.load_counts,
                                "control_ticks": result.control_ticks}
                if args.probe:
                    probes[label] = summarise_probes(result.probes)
    print_report(results, case.id)
    for label, info in extra.items():
        print(f"{label}: load average {' '.join(f'{v:.2f}' for v in info['load_average'])}"
              + (f"; api load {json.dumps(info['api_load'])}" if info["api_load"] else "")
              + (f"; control ticks {json.dumps(info['control_ticks'])}" if info["control_ticks"] else ""))
    for label, summary in probes.items():
        print_probes(label, summary)
    if args.json:
        args.json.write_text(json.dumps({"protocol": case.id, "loops": args.loops, "sessions": args.sessions,
                                         "results": results, "runs": extra, "probes": probes}, indent=2))


if __name__ == "__main__":
    main()
