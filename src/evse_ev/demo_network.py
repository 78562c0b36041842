"""The whole charger on one machine: ``evse_main --controller hal`` (SLAC + SECC + Live Controller API) in the
EVSE namespace and the simulated EV tool (``python -m evse_ev``) in the EV namespace, joined by a veth pair.

The EV reaches the API over the veth (the launcher listens on ``::`` inside the EVSE namespace, whose only
links are its loopback and the veth; the EV connects to the EVSE end's IPv6 link-local address). The
launcher's stdout is kept in a log: its ready lines and the CP-loss timelines (``evse-main: CP loss {...}``).
Used by the full-flow tests (tests/fullflow), the benchmark (bench/bench_fullflow.py) and the demo
(``python -m evse_ev.demo``). Every process is stopped by its PID. Needs root.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ccs_sim.netns import VethLink
from evse_main import READY_LINE_PREFIX, SLAC_READY_LINE_PREFIX
from evse_secc.slac_link import CP_LOSS_LINE_PREFIX

API_PORT = 8015
EVSE_ID = "DE*CCS*E0000001*1"
LAUNCHER_READY_TIMEOUT_S = 45.0
STOP_TIMEOUT_S = 10.0


def link_local_from_mac(mac: str) -> str:
    """The EUI-64 IPv6 link-local address the kernel gives an interface with this MAC (RFC 4291 App. A)."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    eui = octets[:3] + [0xFF, 0xFE] + octets[3:]
    groups = [f"{(eui[i] << 8) | eui[i + 1]:x}" for i in range(0, 8, 2)]
    return "fe80::" + ":".join(groups)


def api_url(link: VethLink, port: int = API_PORT) -> str:
    """The launcher's API as the EV namespace reaches it (over the veth)."""
    return f"http://[{link_local_from_mac(link.evse_mac)}%{link.ev_iface}]:{port}"


def _environment() -> dict[str, str]:
    drop = ("PKI_PATH", "PROTOCOLS", "AUTH_MODES", "EVSE_CONTROLLER", "VIRTUAL_ENV", "CCS_SIM_SPEED")
    return {key: value for key, value in os.environ.items() if key not in drop}


@dataclass
class Launcher:
    """``evse_main --controller hal`` with SLAC and the API, in the EVSE namespace."""

    link: VethLink
    workdir: Path
    protocol: str = "ISO_15118_2"
    slac_init_timeout_s: float = 10.0
    exi_codec: str = "java"
    process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "launcher.log"

    def start(self) -> "Launcher":
        self.workdir.mkdir(parents=True, exist_ok=True)
        secc_env = self.workdir / "secc.env"
        secc_env.write_text("LOG_LEVEL=INFO\nMESSAGE_LOG_JSON=False\nFREE_CHARGING_SERVICE=False\nAUTH_MODES=EIM\n")
        slac_env = self.workdir / "slac.env"
        slac_env.write_text(f"SLAC_INIT_TIMEOUT={self.slac_init_timeout_s}\nLOG_LEVEL=WARNING\n")
        argv = [sys.executable, "-m", "evse_main", "--controller", "hal", "--iface", self.link.evse_iface,
                "--secc-config", str(secc_env), "--slac-config", str(slac_env), "--protocols", self.protocol,
                "--evse-id", EVSE_ID, "--api-host", "::", "--api-port", str(API_PORT),
                "--exi-codec", self.exi_codec, "--message-log", str(self.workdir / "exchanges.jsonl")]
        environment = _environment() | {"CCS_SIM_DATA_DIR": str(self.workdir / "data")}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.link.in_evse(argv), stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.workdir, env=environment)
        self.wait_for_line(SLAC_READY_LINE_PREFIX, LAUNCHER_READY_TIMEOUT_S)
        return self

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def wait_for_line(self, prefix: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in self.log_text().splitlines():
                if line.startswith(prefix):
                    return line
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"launcher exited ({self.process.returncode}):\n{self.log_text()[-4000:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} from the launcher within {timeout_s} s:\n{self.log_text()[-4000:]}")

    @property
    def secc_started(self) -> bool:
        return READY_LINE_PREFIX in self.log_text()

    def cp_loss_records(self) -> list[dict]:
        return [json.loads(line[len(CP_LOSS_LINE_PREFIX):]) for line in self.log_text().splitlines()
                if line.startswith(CP_LOSS_LINE_PREFIX)]

    def api_get(self, path: str) -> dict:
        """GET on the API from inside the EVSE namespace (loopback there)."""
        code = ("import json,sys,urllib.request;"
                f"print(urllib.request.urlopen('http://127.0.0.1:{API_PORT}{path}',timeout=5).read().decode())")
        result = subprocess.run(self.link.in_evse([sys.executable, "-c", code]), capture_output=True, text=True,
                                timeout=30)
        if result.returncode != 0:
            raise AssertionError(f"GET {path} failed: {result.stderr[-2000:]}")
        return json.loads(result.stdout)

    def stop(self) -> int | None:
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=STOP_TIMEOUT_S)


@dataclass
class EvRun:
    returncode: int
    events: list[dict] = field(default_factory=list)
    stderr: str = ""

    @property
    def plugins(self) -> list[dict]:
        return [event for event in self.events if event.get("event") == "plugin"]


def ev_argv(link: VethLink, *args: str) -> list[str]:
    return link.in_ev([sys.executable, "-m", "evse_ev", "--iface", link.ev_iface, "--api", api_url(link), *args])


def run_ev(link: VethLink, workdir: Path, *args: str, timeout_s: float = 120.0) -> EvRun:
    """The simulated EV tool in the EV namespace until it exits; its JSON lines parsed."""
    workdir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(ev_argv(link, *args), capture_output=True, text=True, timeout=timeout_s, cwd=workdir,
                            env=_environment())
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    (workdir / "ev.log").write_text(result.stdout + "\n" + result.stderr, encoding="utf-8")
    return EvRun(result.returncode, events, result.stderr)
