"""Benchmark: the dashboard chart's redraw time for a long session, beside a short one in the same run.

A served API (``ccs-sim serve`` on a free loopback port, simulated charger) gives the page; headless Chromium
loads it and redraws the voltage chart (3 series) from 30 minutes of samples at 5 samples/s (9000) and, as the
baseline, from 3 minutes (900). The chart decimates to at most 4 points per pixel column, so the long session
should cost about what the short one does: the ratio is the figure to watch (software rendering, no GPU).

    .venv/bin/python bench/bench_dashboard_chart.py [--redraws 15]

Needs Chromium (``scripts/install-system-deps.sh chromium`` as root; another binary: ``CCS_SIM_CHROMIUM``).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
SERVE_TIMEOUT_S = 30.0
CHROMIUM = os.environ.get("CCS_SIM_CHROMIUM", "/usr/bin/chromium")  # the Debian package
DRAW_SCRIPT = """async ([count, redraws]) => {
    const { charts } = window.dashboard;
    const samples = [];
    for (let i = 0; i < count; i++) {
        const t = i * 0.2;
        samples.push({ t_s: t, voltage_V: 400 + 10 * Math.sin(t / 60), ev_target_V: 420, supply_V: 401 });
    }
    const chart = charts.voltage;
    chart.setSamples(samples);
    chart.setWindow(null);
    const times = [];
    for (let k = 0; k < redraws; k++) { chart.draw(); times.push(chart.lastDrawMs); }
    return { times, drawn: Number(chart.canvas.dataset.drawn), width: chart.canvas.clientWidth };
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "ccs_sim.cli", "serve", "--host", "127.0.0.1",
                                "--port", str(port), "--data-dir", str(data_dir)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + SERVE_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"ccs-sim serve did not answer on port {port} within {SERVE_TIMEOUT_S} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redraws", type=int, default=15)
    args = parser.parse_args()
    port = free_port()
    data_dir = Path(subprocess.check_output(["mktemp", "-d"], text=True).strip())
    server = serve(port, data_dir)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("window.dashboard && window.dashboard.charts")
            rows = []
            for label, count in (("3 min (900 samples), baseline", 900), ("30 min (9000 samples)", 9000)):
                result = page.evaluate(DRAW_SCRIPT, [count, args.redraws])
                times = sorted(result["times"])
                rows.append((label, statistics.median(times), times[-1], result["drawn"], result["width"]))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(f"chart redraw, voltage chart (3 series), {args.redraws} redraws each")
    for label, median_ms, worst_ms, drawn, width in rows:
        print(f"  {label:32s} median {median_ms:6.1f} ms  max {worst_ms:6.1f} ms  points drawn {drawn} "
              f"({drawn / max(width, 1):.1f} per pixel column)")
    print(f"  ratio long/short (median): {rows[1][1] / max(rows[0][1], 1e-9):.2f}x")


if __name__ == "__main__":
    main()
