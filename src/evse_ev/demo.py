"""One-command demo: the charger and a simulated 800 V car on this machine, charging 10 % → 80 %.

    sudo scripts/demo.sh                 # or: sudo .venv/bin/python -m evse_ev.demo [--full-pack]

What runs: two network namespaces joined by a veth pair (the charging cable); in the EVSE namespace the
launcher ``evse_main --controller hal`` (simulated HAL and plant, SLAC, ISO 15118 SECC, Live Controller API);
in the EV namespace the simulated EV tool (``python -m evse_ev``): CP B, SLAC, ISO 15118-2 DC, CP A.

Time, honestly: an ISO 15118 session runs in real time (the launcher refuses a sped-up clock with HLC), so
energy flows at the real rate: ~250 kW. A real 77.4 kWh pack needs ~15 minutes for 10 → 80 %. By default
the demo's car has the same 800 V pack voltages and currents with its capacity scaled to 5 % (3.9 kWh), so
10 → 80 % takes about a minute of real charging; ``--full-pack`` charges the real 77.4 kWh pack. The energy
shown is what the charger delivered (EVSE present V × I, integrated by the EV).

Everything started here is stopped by PID and the namespaces are removed, also on Ctrl+C.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evse_ev.demo_network import Launcher, VethLink, ev_argv, netns_unavailable_reason

DEMO_CAPACITY_SCALE = 0.05
BAR_WIDTH = 40


def _bar(soc: float, start: float, target: float) -> str:
    done = max(0.0, min(1.0, (soc - start) / max(1e-9, target - start)))
    filled = int(round(done * BAR_WIDTH))
    return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"


def _show(event: dict, start_soc: float, target_soc: float) -> None:
    kind = event.get("event")
    if kind == "ready":
        print(f"EV ready on {event['iface']} ({event['mac']}): {event['preset']}, SOC {event['soc']:.0f} %, "
              f"target {event['target_soc']:.0f} %, protocol {event['protocol']}", flush=True)
    elif kind == "slac_matched":
        print(f"plug-in → SLAC matched in {event['plugin_to_matched_s']:.2f} s; ISO 15118 session starting …",
              flush=True)
    elif kind == "progress":
        line = (f"\r{_bar(event['soc'], start_soc, target_soc)} SOC {event['soc']:5.1f} %  "
                f"{event['voltage_V']:6.1f} V {event['current_A']:6.1f} A {event['power_kW']:6.1f} kW  "
                f"{event['delivered_Wh'] / 1000:6.3f} kWh  t={event['t_s']:6.1f} s")
        print(line, end="", flush=True)


def _summary(plugin: dict, status: dict | None) -> None:
    print("\n\nSession summary")
    print(f"  outcome                     {plugin.get('outcome')}")
    print(f"  SOC                         {plugin.get('soc_start'):.1f} % → {plugin.get('soc_end'):.1f} %")
    print(f"  energy delivered (EV side)  {plugin.get('delivered_Wh', 0) / 1000:.3f} kWh")
    print(f"  charge loops                {plugin.get('charge_loops')}")
    print(f"  plug-in → SLAC matched      {plugin.get('plugin_to_matched_s')} s")
    print(f"  plug-in → first CurrentDemand {plugin.get('plugin_to_first_charge_loop_s')} s")
    print(f"  plug-in → unplug            {plugin.get('wall_s')} s")
    summary = (status or {}).get("last_session_summary")
    if summary:
        print("  charger's record (GET /status last_session_summary):")
        for key, value in summary.items():
            print(f"    {key:26s}{value}")


def run(args: argparse.Namespace) -> int:
    reason = netns_unavailable_reason()
    if reason:
        print(f"demo: cannot run: {reason}.\n"
              "The demo creates two network namespaces and a veth pair (the charging cable); run it as root:\n"
              "    sudo scripts/demo.sh", file=sys.stderr)
        return 2
    scale = 1.0 if args.full_pack else DEMO_CAPACITY_SCALE
    print("Setting up: namespaces + veth, launcher (SLAC + SECC + API), simulated EV …", flush=True)
    if scale != 1.0:
        print(f"(real-time charging; the car's pack capacity is scaled to {scale:.0%} so 10 → 80 % takes about a "
              "minute — --full-pack for the real 77.4 kWh)", flush=True)
    ev: subprocess.Popen | None = None
    with tempfile.TemporaryDirectory(prefix="ccs-demo-") as tmp, VethLink(prefix="ccsdemo") as link:
        launcher = Launcher(link, Path(tmp) / "launcher")
        try:
            launcher.start()
            print(f"launcher up: SLAC listening on {link.evse_iface}, API in the EVSE namespace", flush=True)
            argv = ev_argv(link, "--preset", "800V", "--start-soc", str(args.start_soc), "--target-soc",
                           str(args.target_soc), "--capacity-scale", str(scale), "--progress-interval-s", "0.5",
                           "--protocol", args.protocol)
            ev = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=open(Path(tmp) / "ev.stderr", "w"),
                                  text=True, cwd=tmp)
            plugin = None
            assert ev.stdout is not None  # stdout=PIPE
            for line in ev.stdout:
                if not line.startswith("{"):
                    continue
                event = json.loads(line)
                if event.get("event") == "plugin":
                    plugin = event
                else:
                    _show(event, args.start_soc, args.target_soc)
            ev.wait()
            if plugin is None:
                print(f"\ndemo: the EV ended without a session:\n{(Path(tmp) / 'ev.stderr').read_text()[-2000:]}",
                      file=sys.stderr)
                return 1
            time.sleep(0.5)
            _summary(plugin, launcher.api_get("/status"))
            return 0 if plugin.get("outcome") == "session_ok" else 1
        except KeyboardInterrupt:
            print("\ndemo: interrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            if ev is not None and ev.poll() is None:
                ev.send_signal(signal.SIGINT)
                try:
                    ev.wait(5)
                except subprocess.TimeoutExpired:
                    ev.kill()
                    ev.wait(5)
            launcher.stop()
            print("cleaned up: processes stopped, namespaces removed", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evse_ev.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--full-pack", action="store_true", help="the real 77.4 kWh pack (~15 min)")
    parser.add_argument("--start-soc", type=float, default=10.0)
    parser.add_argument("--target-soc", type=float, default=80.0)
    parser.add_argument("--protocol", default="ISO_15118_2",
                        choices=("ISO_15118_2", "DIN_SPEC_70121", "ISO_15118_20_DC"))
    args = parser.parse_args(argv)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
