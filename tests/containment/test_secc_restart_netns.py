"""The real restart path: the launcher (``--controller hal --no-slac``, native codec) in an EVSE namespace, its
supervised SECC task cancelled twice (secc_kill_driver.py), the first time while a TCP session is open; each time
the supervisor records the containment (HLC_FAILURE), the package's SDP socket, TCP server and sessions are
stopped (run_secc), a new SECC binds the same ports and a raw client in the EV namespace gets SDP, the
SupportedAppProtocolRes and the SessionSetupRes from it (tests/hostile/hostile_client.py).

Needs root and iproute2; runs (never skips) under CI=true. About 10 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evse_ev.demo_network import netns_unavailable_reason

pytestmark = [pytest.mark.netns, pytest.mark.hlc]

DRIVER = Path(__file__).with_name("secc_kill_driver.py")
CLIENT = Path(__file__).parents[1] / "hostile" / "hostile_client.py"


def _wait_line(process: subprocess.Popen, log: list[str], prefix: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        log.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no {prefix!r} within {timeout_s} s:\n{''.join(log)[-4000:]}")


def _session_setup(link, iface: str) -> dict:  # type: ignore[no-untyped-def]
    result = subprocess.run(link.in_ev([sys.executable, str(CLIENT), "--iface", iface, "--case", "session_setup",
                                        "--close-wait-s", "1", "--no-sdp-after", "--sdp-timeout-s", "20"]),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[0])


def test_killed_secc_is_restarted_and_serves(tmp_path: Path) -> None:
    reason = netns_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the namespace tests, but: {reason}")
        pytest.skip(reason)
    from evse_ev.demo_network import VethLink

    secc_env = tmp_path / "secc.env"
    secc_env.write_text("LOG_LEVEL=INFO\nMESSAGE_LOG_JSON=False\nFREE_CHARGING_SERVICE=False\nAUTH_MODES=EIM\n")
    environment = {key: value for key, value in os.environ.items() if key not in ("PKI_PATH", "PROTOCOLS",
                                                                                 "EVSE_CONTROLLER", "CCS_SIM_SPEED")}
    environment["CCS_SIM_DATA_DIR"] = str(tmp_path / "data")
    log: list[str] = []
    with VethLink(prefix="ccsrs") as link:
        argv = [sys.executable, "-u", str(DRIVER), "--controller", "hal", "--no-slac", "--iface", link.evse_iface,
                "--secc-config", str(secc_env), "--protocols", "ISO_15118_2", "--exi-codec", "native",
                "--evse-id", "DE*CCS*E0000001*1"]
        process = subprocess.Popen(link.in_evse(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=environment)
        try:
            _wait_line(process, log, "driver: SECC ready 1", 30)
            first = _session_setup(link, link.ev_iface)
            assert first["response_frames"] == ["0x8001", "0x8001"], first
            for generation in (2, 3):
                process.stdin.write("kill\n")
                process.stdin.flush()
                contained = json.loads(_wait_line(process, log, "driver: contained", 10).split(" ", 2)[2])
                assert contained["component"] == "SECC" and contained["fault"] == "HLC_FAILURE"
                assert contained["reason"] == "task was cancelled"
                _wait_line(process, log, f"driver: SECC ready {generation}", 15)
                again = _session_setup(link, link.ev_iface)
                assert again["response_frames"] == ["0x8001", "0x8001"], (again, "".join(log)[-3000:])
            assert process.poll() is None, "the launcher kept running"
        finally:
            process.stdin.close()
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
            (tmp_path / "launcher.log").write_text("".join(log) + (process.stdout.read() or ""))
