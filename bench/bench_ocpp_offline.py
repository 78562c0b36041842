"""Benchmark: after a CSMS comes back, how long until every transaction message queued while it was away is
delivered? One hour of offline charging (the session's start, a MeterValues every 10 s, its stop: 362 messages)
beside ten minutes (62 messages) as the baseline, in the same run.

The station runs in this process on the manual clock (an hour of charging in seconds of wall time) with the CSMS
down; then ``ocpp-csms`` (PyPI, a 1.6J central system we did not write; ``scripts/setup-csms.sh`` installs it in
``.venv-csms``) starts on a free loopback port and the time from its start to an empty durable queue is measured
(the reconnect backoff, the boot, then one call at a time, each acknowledged and removed from SQLite).

    .venv/bin/python bench/bench_ocpp_offline.py [--interval-s 10]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from ccs_sim.ocpp.client import OcppClient
from ccs_sim.ocpp.config import OcppConfig
from ccs_sim.runtime import attach_operations, build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock
from evse_model.session import SessionParams

ROOT = Path(__file__).resolve().parent.parent
CSMS = ROOT / ".venv-csms" / "bin" / "ocpp-csms"
DELIVERY_TIMEOUT_S = 600.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def offline_session_then_delivery(duration_s: float, interval_s: float) -> tuple[int, float]:
    """(messages queued, wall seconds from the CSMS's start to an empty queue)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        clock = ManualClock()
        controller = build_controller(ControllerSettings(_env_file=None, data_dir=Path(data_dir)),  # type: ignore[call-arg]
                                      clock)
        operations = await attach_operations(controller)
        await controller.start()
        config = OcppConfig(url=f"ws://127.0.0.1:{port}/", station_id="CS1", version="1.6",
                            meter_interval_s=interval_s, reconnect_min_s=0.05, reconnect_max_s=0.2).check()
        client = OcppClient(controller, config, database_path=operations.store.path)
        await client.start()
        csms: subprocess.Popen[bytes] | None = None
        try:
            session = controller.start_session(SessionParams(duration_s=duration_s, initial_current_A=100.0))
            await operations.recorder.record_start(session)
            while controller.last_session_summary is None or controller.shutting_down:
                await clock.advance(1.0)
                await operations.store.flush()
                await clock.settle()
            await asyncio.sleep(0.2)
            queued = client.queue_depth()
            started = time.perf_counter()
            csms = subprocess.Popen([str(CSMS), "--host", "127.0.0.1", "--port", str(port)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while client.queue_depth() > 0:
                if time.perf_counter() - started > DELIVERY_TIMEOUT_S:
                    raise SystemExit(f"{client.queue_depth()} messages still queued after {DELIVERY_TIMEOUT_S} s")
                await asyncio.sleep(0.01)
            return queued, time.perf_counter() - started
        finally:
            if csms is not None:
                csms.terminate()
                csms.wait(timeout=10)
            await client.stop()
            await controller.shutdown()
            await operations.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval-s", type=float, default=10.0, help="MeterValues interval (simulated s)")
    args = parser.parse_args()
    subprocess.run(["bash", str(ROOT / "scripts" / "setup-csms.sh")], check=True)
    rows = []
    for label, duration_s in (("10 min offline (baseline)", 600.0), ("1 h offline", 3600.0)):
        queued, seconds = asyncio.run(offline_session_then_delivery(duration_s, args.interval_s))
        rows.append((label, queued, seconds))
    print(f"reconnect -> last queued message delivered, ocpp-csms 0.1.0 on loopback, MeterValues every "
          f"{args.interval_s:g} s")
    for label, queued, seconds in rows:
        print(f"  {label:26s} {queued:4d} messages  {seconds:6.2f} s  ({1000 * seconds / queued:.1f} ms a message)")
    print(f"  ratio 1 h / 10 min: {rows[1][2] / rows[0][2]:.2f}x for {rows[1][1] / rows[0][1]:.2f}x the messages")


if __name__ == "__main__":
    main()
