"""The demo's network: the whole charger on one machine, for ``python -m evse_ev.demo``.

Two network namespaces joined by a veth pair (the charging cable): ``evse_main --controller hal`` (SLAC + SECC +
Live Controller API) runs in the EVSE namespace, the simulated EV tool (``python -m evse_ev``) in the EV namespace.
The EV reaches the API over the veth (the launcher listens on ``::`` inside the EVSE namespace, whose only
links are its loopback and the veth; the EV connects to the EVSE end's IPv6 link-local address). The
launcher's stdout is kept in a log (its ready lines and the CP-loss timelines).

The demo is its user; the full-flow, interop and SLAC tests and the benchmarks build on the same pieces.
Every namespace created here carries the caller's prefix and is removed by ``VethLink.remove()`` (or on leaving
the ``with`` block); every process is stopped by its PID; nothing outside the namespaces is touched.
Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2's ``ip``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from evse_main import SLAC_READY_LINE_PREFIX

API_PORT = 8015
EVSE_ID = "DE*CCS*E0000001*1"
LAUNCHER_READY_TIMEOUT_S = 45.0
STOP_TIMEOUT_S = 10.0


# --- two namespaces and the veth pair between them (the charging cable) ---------------------------------------
class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be created here (not root, no iproute2, or the kernel refuses)."""


def netns_unavailable_reason() -> str | None:
    """Why namespaces cannot be used on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (run the tests as root, as CI does)"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed (scripts/install-system-deps.sh netns)"
    probe = f"ccsprobe{uuid.uuid4().hex[:6]}"
    created = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if created.returncode != 0:
        return f"'ip netns add' failed: {created.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _sysctl(namespace: str, key: str, value: str) -> None:
    subprocess.run(["ip", "netns", "exec", namespace, "sysctl", "-qw", f"{key}={value}"],
                   capture_output=True)


@dataclass
class VethLink:
    """An EVSE namespace and an EV namespace, each with one end of a veth pair (up, IPv6 link-local)."""

    prefix: str
    evse_namespace: str = ""
    ev_namespace: str = ""
    evse_iface: str = "evse0"
    ev_iface: str = "ev0"
    evse_mac: str = "02:00:00:00:5e:01"
    ev_mac: str = "02:00:00:00:e0:01"
    _created: list[str] = field(default_factory=list)

    def create(self) -> VethLink:
        suffix = uuid.uuid4().hex[:6]
        self.evse_namespace = self.evse_namespace or f"{self.prefix}-evse-{suffix}"
        self.ev_namespace = self.ev_namespace or f"{self.prefix}-ev-{suffix}"
        try:
            for namespace in (self.evse_namespace, self.ev_namespace):
                _ip("netns", "add", namespace)
                self._created.append(namespace)
            _ip("link", "add", self.evse_iface, "netns", self.evse_namespace, "address", self.evse_mac,
                "type", "veth", "peer", "name", self.ev_iface, "netns", self.ev_namespace,
                "address", self.ev_mac)
            for namespace, iface in ((self.evse_namespace, self.evse_iface), (self.ev_namespace, self.ev_iface)):
                # No duplicate-address detection: the fe80:: address must be usable at once.
                _sysctl(namespace, "net.ipv6.conf.default.accept_dad", "0")
                _sysctl(namespace, f"net.ipv6.conf.{iface}.accept_dad", "0")
                _ip("-n", namespace, "link", "set", "lo", "up")
                _ip("-n", namespace, "link", "set", iface, "up")
        except Exception:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        while self._created:
            subprocess.run(["ip", "netns", "delete", self._created.pop()], capture_output=True)

    def in_evse(self, argv: list[str]) -> list[str]:
        """argv wrapped to run inside the EVSE namespace."""
        return ["ip", "netns", "exec", self.evse_namespace, *argv]

    def in_ev(self, argv: list[str]) -> list[str]:
        """argv wrapped to run inside the EV namespace."""
        return ["ip", "netns", "exec", self.ev_namespace, *argv]

    def __enter__(self) -> VethLink:
        return self.create()

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


# --- the launcher in the EVSE namespace, the simulated EV tool in the EV namespace ------------------------------
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
    exi_codec: str = "native"
    process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "launcher.log"

    def start(self) -> Launcher:
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
