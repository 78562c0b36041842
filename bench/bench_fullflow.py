"""Benchmark: the whole plug-in on one machine, wall clock, p50 over N sessions against one launcher.

``evse_main --controller hal`` (SLAC + SECC + Live Controller API, native EXI codec) in an EVSE namespace and the
simulated EV (``python -m evse_ev``, 800 V car, ISO 15118-2 DC) in an EV namespace, joined by a veth pair;
the EV tool runs N plug-ins one after another (CP B via the API -> SLAC -> EVCC -> CP A). Measured by the EV
tool, from its POST of CP B:

* plug-in -> SLAC matched (CM_SLAC_MATCH.CNF received by the EV);
* plug-in -> first CurrentDemandRes received (SDP, SessionSetup … CableCheck, PreCharge, PowerDelivery first).

Target in simulation (issue 4): SLAC matched <= 1 s after CP B. ``--baseline-java`` also runs the same sessions
with the Java codec (the iso15118 package's, a JVM on each side) in the same run and prints the ratios. Needs root.

    sudo .venv/bin/python bench/bench_fullflow.py [--sessions 10] [--baseline-java]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from evse_ev.demo_network import Launcher, VethLink, netns_unavailable_reason, run_ev

TARGET_MATCH_S = 1.0


PHASES = (("plug-in -> SLAC matched", "plugin_to_matched_s"),
          ("plug-in -> first CurrentDemandRes", "plugin_to_first_charge_loop_s"),
          ("plug-in -> unplug (whole plug-in)", "wall_s"))


def run_sessions(protocol: str, sessions: int, exi_codec: str) -> list[dict] | None:
    """One launcher, ``sessions`` plug-ins of the EV tool, both on ``exi_codec``; the plug-ins that ended ok."""
    with tempfile.TemporaryDirectory(prefix="bench-fullflow-") as tmp, VethLink(prefix="ccsbf") as link:
        launcher = Launcher(link, Path(tmp) / "launcher", protocol=protocol, exi_codec=exi_codec).start()
        try:
            run = run_ev(link, Path(tmp) / "ev", "--preset", "800V", "--start-soc", "40", "--target-soc", "80",
                         "--max-charge-loops", "3", "--protocol", protocol, "--sessions", str(sessions),
                         "--exi-codec", exi_codec, timeout_s=60.0 * sessions)
        finally:
            launcher.stop()
    ok = [p for p in run.plugins if p.get("outcome") == "session_ok"]
    if run.returncode != 0 or len(ok) != sessions:
        print(f"bench_fullflow ({exi_codec}): {len(ok)}/{sessions} sessions ok\n{run.stderr[-3000:]}", file=sys.stderr)
        return None
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--protocol", default="ISO_15118_2")
    parser.add_argument("--baseline-java", action="store_true",
                        help="also run the sessions on the Java codec (both sides) and print the ratios")
    args = parser.parse_args()
    reason = netns_unavailable_reason()
    if reason:
        print(f"bench_fullflow: cannot run: {reason}", file=sys.stderr)
        return 1
    codecs = ("native", "java") if args.baseline_java else ("native",)
    results: dict[str, list[dict]] = {}
    for codec in codecs:
        ok = run_sessions(args.protocol, args.sessions, codec)
        if ok is None:
            return 1
        results[codec] = ok
        print(f"sessions: {len(ok)} ({args.protocol}, 800 V car, {codec} EXI codec on both sides)")
        for name, key in PHASES:
            values = [p[key] for p in ok]
            print(f"  {name:36s} p50 {statistics.median(values):7.3f} s   min {min(values):7.3f}"
                  f"   max {max(values):7.3f}")
    if "java" in results:
        for name, key in PHASES:
            native_p50 = statistics.median(p[key] for p in results["native"])
            java_p50 = statistics.median(p[key] for p in results["java"])
            print(f"{name:36s} p50 native {native_p50:7.3f} s vs java {java_p50:7.3f} s: "
                  f"{java_p50 / native_p50:5.2f}x")
    matched_p50 = statistics.median(p["plugin_to_matched_s"] for p in results["native"])
    met = matched_p50 <= TARGET_MATCH_S
    print(f"target SLAC matched <= {TARGET_MATCH_S} s after CP B (p50, native): {'met' if met else 'NOT met'}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
