"""The spec's default launcher command runs (live_controller_api.md, "Run Modes": ``python src/evse_main.py
--evse-id EVSE-1 --iface eth0``): ``--controller sim`` with SLAC on, SLAC fed by the simulated HAL's CP, and
``--api-port`` serving the Live Controller API of that same HAL, with either controller.

* fast: the option handling accepts the default (sim + SLAC) and sim + ``--api-port`` and gets as far as the
  interface check (no network);
* netns (root; runs under CI=true): the exact command, from the repository root with this venv's python, in a
  namespace whose veth end is renamed ``eth0`` (the machine's own interfaces are never touched), plus
  ``--api-port`` on the namespace's loopback: it stays up, ``/status`` answers, SLAC waits on eth0, a plug-in
  (CP B through the API) with the simulated EV's SLAC peer on the other end matches and starts the SECC, and
  SIGTERM to the launcher's PID ends it with status 0.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import evse_main
from evse_ev.demo_network import Launcher

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_ARGS = ("--evse-id", "EVSE-1", "--iface", "eth0")  # live_controller_api.md, Run Modes, "Sim controller (default)"
API_PORT = 8000  # the namespace is new: its loopback has no other listener
LAUNCHER_READY_TIMEOUT_S = 45.0
SLAC_MATCH_TIMEOUT_S = 30.0
STAY_UP_S = 2.0
STOP_TIMEOUT_S = 10.0
IN_CI = os.environ.get("CI") == "true"


def _skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI must run the launcher-default tests, but: {reason}")
    pytest.skip(reason)


def _require_iso15118() -> None:
    missing = [name for name in ("iso15118", "pyslac") if importlib.util.find_spec(name) is None]
    if missing:
        _skip_or_fail(f"{', '.join(missing)} not installed (scripts/setup.sh hlc)")


# --- fast: the option handling -------------------------------------------------------------------------------

def test_the_specs_default_is_sim_with_slac_and_builds_the_simulated_hal():
    default = evse_main.parse_options(list(SPEC_ARGS), environ={})
    assert default.controller == "sim" and default.slac is True and default.api_port is None
    assert evse_main.needs_charger(default), "SLAC is fed by the simulated HAL's CP, so the HAL is built"
    with_api = evse_main.parse_options(["--controller", "sim", "--no-slac", "--iface", "eth0", "--api-port",
                                        "8000"], environ={})
    assert with_api.api_port == 8000 and evse_main.needs_charger(with_api), "the API serves the simulated HAL"
    bare = evse_main.parse_options(["--controller", "sim", "--no-slac", "--iface", "eth0"], environ={})
    assert not evse_main.needs_charger(bare), "the sim SECC alone, as before"


@pytest.mark.parametrize("argv", [
    [*SPEC_ARGS],
    [*SPEC_ARGS, "--api-port", "8000"],
    ["--controller", "sim", "--no-slac", "--evse-id", "EVSE-1", "--iface", "eth0", "--api-port", "8000"],
], ids=["spec-default", "spec-default+api", "sim-no-slac+api"])
def test_sim_with_slac_or_api_port_passes_the_option_checks(argv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]):
    """Accepted options, so the launcher gets to the interface check: the one error is the missing interface."""
    _require_iso15118()
    saved = dict(os.environ)  # iso15118's load_envs exports the .env's keys into os.environ
    for key in ("EVSE_CONTROLLER", "PKI_PATH", "PROTOCOLS", "AUTH_MODES", "NETWORK_INTERFACE", "CCS_SIM_SPEED"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("CCS_SIM_DATA_DIR", str(tmp_path / "data"))
    empty_env_file = tmp_path / "secc.env"
    empty_env_file.write_text("")
    missing_iface = [("nosuch0" if arg == "eth0" else arg) for arg in argv]
    try:
        with pytest.raises(SystemExit) as exit_info:
            evse_main.main([*missing_iface, "--secc-config", str(empty_env_file)])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert exit_info.value.code == 1
    error_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("evse-main: error: ")]
    assert len(error_lines) == 1 and "'nosuch0' not found" in error_lines[0], error_lines


# --- netns: the spec's command runs -----------------------------------------------------------------------------

def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def eth0_link():
    """An EVSE/EV namespace pair whose EVSE end is renamed eth0 inside its namespace (never the host's)."""
    from evse_ev.demo_network import VethLink, netns_unavailable_reason

    reason = netns_unavailable_reason()
    if reason is not None:
        _skip_or_fail(reason)
    _require_iso15118()
    with VethLink(prefix="ccsld") as link:
        namespace = link.evse_namespace
        _ip("-n", namespace, "link", "set", link.evse_iface, "down")
        _ip("-n", namespace, "link", "set", link.evse_iface, "name", "eth0")
        link.evse_iface = "eth0"
        _ip("-n", namespace, "link", "set", "eth0", "up")
        deadline = time.monotonic() + 10.0
        while "fe80::" not in subprocess.run(["ip", "-n", namespace, "-6", "addr", "show", "dev", "eth0"],
                                             capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, "no IPv6 link-local address on the renamed eth0"
            time.sleep(0.05)
        yield link


class SpecLauncher(Launcher):
    """``python src/evse_main.py`` (the spec's path) from the repository root, in the EVSE namespace; its log
    (``workdir/launcher.log``) is read as the full-flow rig's launcher reads its own."""

    def __init__(self, link, workdir: Path, *args: str) -> None:
        super().__init__(link, workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        environment = {key: value for key, value in os.environ.items()
                       if key not in ("EVSE_CONTROLLER", "PKI_PATH", "PROTOCOLS", "AUTH_MODES", "NETWORK_INTERFACE",
                                      "CCS_SIM_SPEED", "CCS_SIM_ADAPTER", "VIRTUAL_ENV")}
        environment["CCS_SIM_DATA_DIR"] = str(workdir / "data")  # the records database, not the repository's
        argv = [sys.executable, "src/evse_main.py", *args]
        with self.log_path.open("wb") as log:
            # `ip netns exec` execs the command: this PID is the launcher's.
            self.process = subprocess.Popen(link.in_evse(argv), stdout=log, stderr=subprocess.STDOUT,
                                            cwd=REPO_ROOT, env=environment)

    def api(self, path: str, body: dict | None = None) -> dict:
        """GET (or POST ``body``) on the API over the EVSE namespace's loopback."""
        code = ("import json,sys,urllib.request;"
                "body=sys.argv[2].encode() if len(sys.argv)>2 else None;"
                "request=urllib.request.Request(sys.argv[1],data=body,headers={'content-type':'application/json'});"
                "print(urllib.request.urlopen(request,timeout=5).read().decode())")
        argv = [sys.executable, "-c", code, f"http://127.0.0.1:{API_PORT}{path}"]
        if body is not None:
            argv.append(json.dumps(body))
        result = subprocess.run(self.link.in_evse(argv), capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{path}: {result.stderr[-2000:]}\n{self.log_text()[-3000:]}"
        return json.loads(result.stdout)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT_S)

    def kill_if_running(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)


@pytest.mark.netns
@pytest.mark.hlc
def test_the_specs_default_command_runs_slac_on_the_simulated_hal_with_the_api(eth0_link, tmp_path: Path):
    link = eth0_link
    launcher = SpecLauncher(link, tmp_path / "launcher", *SPEC_ARGS, "--api-port", str(API_PORT))
    peer = None
    try:
        slac_line = launcher.wait_for_line(evse_main.SLAC_READY_LINE_PREFIX, LAUNCHER_READY_TIMEOUT_S)
        assert "on eth0" in slac_line and "SECC controller sim" in slac_line, slac_line
        time.sleep(STAY_UP_S)  # wall clock on purpose: a real process that must not exit on its own
        assert launcher.process.poll() is None, launcher.log_text()[-4000:]

        status = launcher.api("/status")
        assert status["adapter"] == "sim" and status["cp_state"] == "A" and not status["session_active"]
        assert launcher.api("/vehicle/slac")["state"] == "IDLE", "SLAC waits on eth0 for a plug-in"

        # Plug-in: the simulated EV's SLAC peer on the EV end, CP B through the API (the simulated HAL's CP).
        peer = subprocess.Popen(link.in_ev([sys.executable, "-m", "evse_slac.ev_peer", "--iface", link.ev_iface,
                                            "--runs", "1"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=tmp_path)
        ready = peer.stdout.readline()
        assert ready.startswith("READY "), (ready, peer.stderr.read() if peer.poll() is not None else "")
        launcher.api("/control/cp_state", {"state": "B"})
        output, errors = peer.communicate(timeout=SLAC_MATCH_TIMEOUT_S)
        results = [json.loads(line[len("RESULT "):]) for line in output.splitlines() if line.startswith("RESULT ")]
        assert peer.returncode == 0 and results and results[0]["matched"], \
            f"{output}\n{errors[-2000:]}\n{launcher.log_text()[-3000:]}"

        evse_side = launcher.api("/vehicle/slac")
        assert evse_side["state"] == "MATCHED" and evse_side["ev_mac"] == link.ev_mac.upper()
        assert evse_side["run_id"] == results[0]["run_id"]
        ready_line = launcher.wait_for_line(evse_main.READY_LINE_PREFIX, LAUNCHER_READY_TIMEOUT_S)
        assert "on eth0" in ready_line and "controller sim" in ready_line, "the SECC starts on the match"
        status = launcher.api("/status")
        assert status["cp_state"] == "B" and status["pwm_duty"] == 5.0, "5 % PWM (HLC) on the plug-in"

        assert launcher.terminate() == 0, launcher.log_text()[-4000:]
    finally:
        if peer is not None and peer.poll() is None:
            peer.kill()
            peer.wait(timeout=STOP_TIMEOUT_S)
        launcher.kill_if_running()
