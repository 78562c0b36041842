"""The benchmarks' SECC rig: our launcher against the stock iso15118 EVCC, each in its own network namespace.

``python src/evse_main.py --no-slac`` (with ``--message-log``: the SECC's time per request) runs in the EVSE
namespace of an ``evse_ev.demo_network.VethLink``, the stock EVCC (``python -m iso15118.evcc.main``, from
.venv-evcc) in its EV namespace, one session per ``run_evcc``. Plain TCP only (no PKI). Used by bench_secc.py and
bench_secc_codec.py, which run from bench/ and import it by name. Every process is stopped by its PID. Needs root.
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

from evse_ev.demo_network import VethLink
from evse_main import READY_LINE_PREFIX
from evse_secc.exchange_log import MessageExchange, read_exchanges

REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCHER_SCRIPT = REPO_ROOT / "src" / "evse_main.py"
EVCC_VENV = REPO_ROOT / ".venv-evcc"
EVCC_PYTHON = EVCC_VENV / "bin" / "python"
SETUP_EVCC_SCRIPT = REPO_ROOT / "scripts" / "setup-evcc.sh"

LAUNCHER_READY_TIMEOUT_S = 30.0  # JVM start (~1.2 s) + imports; generous for a loaded 2-core machine
LAUNCHER_STOP_TIMEOUT_S = 10.0
#: One EVCC session: JVM start + session (~6-8 s cold) + its fixed 2 s + 3 s wait after SessionStopRes, and a
#: long charge loop on a loaded machine. The stock EVCC hangs instead of exiting after SDPFailedError.
EVCC_TIMEOUT_S = 90.0
EV_TIMED_OUT_ON_SECC = "TimeoutError occurred. Waited for Timeouts."  # iso15118 shared/comm_session.py
#: The EVCC's charge-loop count of a case; the benchmarks replace it per session (``chargeLoopCycle``).
CHARGE_LOOP_CYCLES = 5
EVSE_ID = "DE*CCS*E0000001*1"


def ensure_evcc_venv() -> Path:
    """The EVCC's python, after scripts/setup-evcc.sh (idempotent, silent when done) made .venv-evcc."""
    subprocess.run(["bash", str(SETUP_EVCC_SCRIPT)], check=True, timeout=600)
    return EVCC_PYTHON


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()), encoding="utf-8")
    return path


@dataclass(frozen=True)
class BenchCase:
    """One protocol between the stock EVCC and our SECC, over plain TCP."""

    id: str
    protocol: str  # iso15118 Protocol name, offered alone by the SECC (--protocols)
    evcc_config: dict
    secc_env: dict[str, str] = field(default_factory=dict)


CASES: tuple[BenchCase, ...] = (
    BenchCase(
        id="din70121", protocol="DIN_SPEC_70121",
        evcc_config={"supportedProtocols": ["DIN_SPEC_70121"], "energyTransferMode": "DC_extended",
                     "isCertInstallNeeded": False, "useTls": False, "chargeLoopCycle": CHARGE_LOOP_CYCLES}),
    BenchCase(
        id="iso2-dc-eim", protocol="ISO_15118_2",
        evcc_config={"supportedProtocols": ["ISO_15118_2"], "supportedEnergyServices": ["DC"],
                     "energyTransferMode": "DC_extended", "isCertInstallNeeded": False, "useTls": False,
                     "chargeLoopCycle": CHARGE_LOOP_CYCLES},
        secc_env={"AUTH_MODES": "EIM"}),
    BenchCase(
        id="iso20-dc", protocol="ISO_15118_20_DC",
        evcc_config={"supportedProtocols": ["ISO_15118_20_DC"], "supportedEnergyServices": ["DC"],
                     "isCertInstallNeeded": False, "useTls": False, "chargeLoopCycle": CHARGE_LOOP_CYCLES},
        secc_env={"AUTH_MODES": "EIM"}),
)


@dataclass
class LauncherProcess:
    """``python src/evse_main.py --no-slac`` in the EVSE namespace, its output in ``log_path``."""

    link: VethLink
    controller: str
    workdir: Path
    extra_args: tuple[str, ...] = ()
    #: The script run instead of src/evse_main.py (bench/secc_probe.py: the launcher with probes) and its
    #: extra environment.
    script: Path = LAUNCHER_SCRIPT
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"launcher-{self.controller}.log"

    @property
    def message_log(self) -> Path:
        return self.workdir / f"exchanges-{self.controller}.jsonl"

    def start(self, case: BenchCase) -> LauncherProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        secc_env = write_env_file(self.workdir / f"secc-{self.controller}.env", {
            "LOG_LEVEL": "INFO", "MESSAGE_LOG_JSON": "False", "FREE_CHARGING_SERVICE": "False", **case.secc_env})
        argv = [sys.executable, str(self.script), "--controller", self.controller, "--no-slac",
                "--iface", self.link.evse_iface, "--secc-config", str(secc_env),
                "--protocols", case.protocol, "--message-log", str(self.message_log),
                "--evse-id", EVSE_ID, *self.extra_args]
        environment = {key: value for key, value in os.environ.items()
                       if key not in ("PKI_PATH", "PROTOCOLS", "AUTH_MODES", "EVSE_CONTROLLER")}
        environment.update(self.extra_env)
        with self.log_path.open("wb") as log:
            # cwd = workdir: iso15118 also reads $CWD/.env (LOG_LEVEL at import); keep it ours.
            self.process = subprocess.Popen(self.link.in_evse(argv), stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.workdir, env=environment)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + LAUNCHER_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if READY_LINE_PREFIX in self.log_text():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"launcher exited ({self.process.returncode}) before ready:\n{self.log_text()}")
            time.sleep(0.05)
        raise RuntimeError(f"launcher not ready after {LAUNCHER_READY_TIMEOUT_S} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def exchanges(self) -> list[MessageExchange]:
        return read_exchanges(self.message_log)

    def stop(self) -> int | None:
        """SIGTERM by PID (``ip netns exec`` execs, so the PID is the launcher's), then SIGKILL if needed."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=LAUNCHER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=LAUNCHER_STOP_TIMEOUT_S)


@dataclass(frozen=True)
class EvccResult:
    returncode: int
    log: str

    def diagnosis(self) -> str:
        """A one-line reason for a failed run, when the log shows a known one."""
        for line in self.log.splitlines():
            if EV_TIMED_OUT_ON_SECC in line:
                return ("the EV timed out waiting for the SECC (" + line.split("Waited for ")[1][:45] + "): the SECC "
                        "answered too slowly (EXI codec under CPU contention?)")
        return ""


def run_evcc(link: VethLink, case: BenchCase, workdir: Path) -> EvccResult:
    """One session of the stock EVCC (``python -m iso15118.evcc.main <config>``) in the EV namespace."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_env_file(workdir / ".env", {"NETWORK_INTERFACE": link.ev_iface, "LOG_LEVEL": "INFO"})  # read from $CWD
    config_path = workdir / "evcc_config.json"
    config_path.write_text(json.dumps(case.evcc_config), encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if key not in ("PKI_PATH", "VIRTUAL_ENV")}
    try:
        result = subprocess.run(link.in_ev([str(EVCC_PYTHON), "-m", "iso15118.evcc.main", str(config_path)]),
                                cwd=workdir, env=environment, capture_output=True, text=True,
                                timeout=EVCC_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        return EvccResult(returncode=-1, log=f"EVCC timed out after {EVCC_TIMEOUT_S} s\n{output or ''}")
    (workdir / "evcc.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    return EvccResult(returncode=result.returncode, log=result.stdout + result.stderr)
