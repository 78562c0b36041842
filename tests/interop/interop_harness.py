"""Reusable pieces of the interoperability tests: the stock iso15118 EVCC (the test EV, unmodified,
from .venv-evcc) against our launcher (``src/evse_main.py``) over a veth pair between two namespaces.

- ``InteropCase``: one protocol/TLS combination (SECC settings, EVCC settings, EVCC JSON config).
- ``LauncherProcess``: the launcher in the EVSE namespace; started, awaited ready, stopped by PID.
- ``run_evcc``: one EVCC session in the EV namespace, its exit status and log.
- ``generate_pki``: a test PKI from the package's own ``create_certs.sh`` in a temporary directory.
- ``run_session_on_fresh_launcher``: one EVCC session against a launcher started for it on a veth pair of its
  own, everything the tests look at kept (``SessionRun``), the launcher stopped and the namespaces removed.

The launcher writes one JSON line per SECC request/response exchange (``--message-log``); the tests
read it (``read_exchanges``) for SessionStopRes OK, the messages seen and the timings.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import psutil
import pytest

from evse_ev.demo_network import VethLink
from evse_main import READY_LINE_PREFIX
from evse_secc.exchange_log import MessageExchange, read_exchanges

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER_SCRIPT = REPO_ROOT / "src" / "evse_main.py"
EVCC_VENV = REPO_ROOT / ".venv-evcc"
EVCC_PYTHON = EVCC_VENV / "bin" / "python"
SETUP_EVCC_SCRIPT = REPO_ROOT / "scripts" / "setup-evcc.sh"
TLS_SERVER_LOG_LINE = "TLS server started"  # iso15118 secc/transport/tcp_server.py

LAUNCHER_READY_TIMEOUT_S = 30.0  # JVM start (~1.2 s) + imports; generous for a loaded 2-core CI box
LAUNCHER_STOP_TIMEOUT_S = 10.0
# EVCC: JVM start + session (~6-8 s cold) + its fixed 2 s + 3 s wait after SessionStopRes; a long charge
# loop (120 loops at up to ~250 ms on a loaded 2-core machine) and a slow setup under load (~20 s seen) fit.
# The stock EVCC hangs instead of exiting after SDPFailedError (e.g. after a CurrentDemandRes it timed out on).
EVCC_TIMEOUT_S = 90.0
EV_TIMED_OUT_ON_SECC = "TimeoutError occurred. Waited for Timeouts."  # iso15118 shared/comm_session.py
#: ``run_evcc_until``'s return code when the test ended the EVCC (SIGTERM) once it had seen enough.
EVCC_STOPPED_BY_TEST = -15
# The EVCC's loop counter is also decremented in PowerDelivery/ready_to_charge (iso15118 0.31.2), so
# this gives a couple of CurrentDemand/DC_ChargeLoop messages: enough to exercise the loop, short.
CHARGE_LOOP_CYCLES = 5

DIN_NAMESPACE = "urn:din:70121:2012:MsgDef"
ISO_2_NAMESPACE = "urn:iso:15118:2:2013:MsgDef"
ISO_20_NAMESPACE_PREFIX = "urn:iso:std:iso:15118:-20"


def ensure_evcc_venv() -> Path:
    """The EVCC's python, after scripts/setup-evcc.sh (idempotent, silent when done) made .venv-evcc."""
    subprocess.run(["bash", str(SETUP_EVCC_SCRIPT)], check=True, timeout=600)
    return EVCC_PYTHON


def package_pki_template() -> Path:
    """iso15118's shared/pki directory (create_certs.sh + configs), from the EVCC's installation."""
    result = subprocess.run(
        [str(EVCC_PYTHON), "-c", "import iso15118.shared, os; print(os.path.dirname(iso15118.shared.__file__))"],
        check=True, capture_output=True, text=True)
    return Path(result.stdout.strip()) / "pki"


def generate_pki(destination: Path) -> Path:
    """A fresh ISO 15118-2 test PKI (also used for -20 TLS 1.3) in ``destination`` (created)."""
    shutil.copytree(package_pki_template(), destination)
    result = subprocess.run(["bash", "create_certs.sh", "-v", "iso-2"], cwd=destination,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"create_certs.sh failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return destination


def write_env_file(path: Path, values: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()), encoding="utf-8")
    return path


@dataclass(frozen=True)
class InteropCase:
    """One protocol/TLS combination between the stock EVCC and our SECC."""

    id: str
    protocol: str  # iso15118 Protocol name, offered alone by the SECC (--protocols)
    namespace_prefix: str  # of the SessionStopRes
    evcc_config: dict
    secc_env: dict[str, str] = field(default_factory=dict)
    shared_env: dict[str, str] = field(default_factory=dict)  # both sides (ENABLE_TLS_1_3)
    needs_pki: bool = False  # TLS: the SECC must have started its TLS server
    expected_requests: tuple[str, ...] = ()


_DC_LOOP_2 = ("CableCheckReq", "PreChargeReq", "PowerDeliveryReq", "CurrentDemandReq", "WeldingDetectionReq")
_DC_LOOP_20 = ("DC_CableCheckReq", "DC_PreChargeReq", "PowerDeliveryReq", "DC_ChargeLoopReq",
               "DC_WeldingDetectionReq")

CASES: tuple[InteropCase, ...] = (
    InteropCase(
        id="din70121",
        protocol="DIN_SPEC_70121", namespace_prefix=DIN_NAMESPACE,
        evcc_config={"supportedProtocols": ["DIN_SPEC_70121"], "energyTransferMode": "DC_extended",
                     "isCertInstallNeeded": False, "useTls": False, "chargeLoopCycle": CHARGE_LOOP_CYCLES},
        expected_requests=_DC_LOOP_2),
    InteropCase(
        id="iso2-dc-eim",
        protocol="ISO_15118_2", namespace_prefix=ISO_2_NAMESPACE,
        evcc_config={"supportedProtocols": ["ISO_15118_2"], "supportedEnergyServices": ["DC"],
                     "energyTransferMode": "DC_extended", "isCertInstallNeeded": False, "useTls": False,
                     "chargeLoopCycle": CHARGE_LOOP_CYCLES},
        secc_env={"AUTH_MODES": "EIM"},
        expected_requests=("AuthorizationReq", *_DC_LOOP_2)),
    InteropCase(
        id="iso20-dc",
        protocol="ISO_15118_20_DC", namespace_prefix=ISO_20_NAMESPACE_PREFIX,
        evcc_config={"supportedProtocols": ["ISO_15118_20_DC"], "supportedEnergyServices": ["DC"],
                     "isCertInstallNeeded": False, "useTls": False, "chargeLoopCycle": CHARGE_LOOP_CYCLES},
        secc_env={"AUTH_MODES": "EIM"},
        expected_requests=("AuthorizationReq", "ScheduleExchangeReq", *_DC_LOOP_20)),
    InteropCase(
        id="iso2-dc-tls12-pnc",
        protocol="ISO_15118_2", namespace_prefix=ISO_2_NAMESPACE,
        evcc_config={"supportedProtocols": ["ISO_15118_2"], "supportedEnergyServices": ["DC"],
                     "energyTransferMode": "DC_extended", "isCertInstallNeeded": False,
                     "useTls": True, "enforceTls": True, "chargeLoopCycle": CHARGE_LOOP_CYCLES},
        secc_env={"SECC_ENFORCE_TLS": "True", "AUTH_MODES": "EIM,PNC"},
        shared_env={"ENABLE_TLS_1_3": "False"},
        needs_pki=True,
        expected_requests=("PaymentDetailsReq", "AuthorizationReq", *_DC_LOOP_2)),
    InteropCase(
        id="iso20-dc-tls13",
        protocol="ISO_15118_20_DC", namespace_prefix=ISO_20_NAMESPACE_PREFIX,
        evcc_config={"supportedProtocols": ["ISO_15118_20_DC"], "supportedEnergyServices": ["DC"],
                     "isCertInstallNeeded": False, "useTls": True, "enforceTls": True,
                     "chargeLoopCycle": CHARGE_LOOP_CYCLES},
        secc_env={"SECC_ENFORCE_TLS": "True", "AUTH_MODES": "EIM,PNC"},
        shared_env={"ENABLE_TLS_1_3": "True"},
        needs_pki=True,
        expected_requests=("AuthorizationReq", *_DC_LOOP_20)),
)


def interop_marks(namespace_prefix: str) -> list[pytest.MarkDecorator]:
    """A module's ``pytestmark``: root + namespaces, the stock EVCC, slow; its veth pair's namespaces are named
    ``namespace_prefix``-... (unique per module, so a leftover namespace shows which module left it)."""
    return [pytest.mark.netns, pytest.mark.hlc, pytest.mark.slow,
            pytest.mark.parametrize("veth_link", [namespace_prefix], indirect=True)]


def case_by_id(case_id: str) -> InteropCase:
    return next(case for case in CASES if case.id == case_id)


# --- a charging session of the stock EVCC against the HAL controller (test_hal_sessions, test_car_after_car_hlc)
#: DIN 70121 and ISO 15118-2: the stock EVCC ends its precharge after 5 PreChargeReq whatever the voltage (its
#: simulator's ``is_precharged``), asking 1 A towards its pack (500 V here): 1 A into the 3.2 mF output is 312 V/s,
#: so at round trips of 30-60 ms (a quiet machine, with the SECC's charge loop as fast as since issue 13) the output
#: is at ~100 V when it asks PowerDelivery and reaches the pack (whose contactor closes within 20 V of it) ~1.3 s
#: later. Its loop is counted, not timed: 12 loops could end first (COMPLETE with 0 A, seen in CI once the round
#: trips got faster); 80 last ≥ 2 s at 25 ms a loop and ≥ 4 s at the measured 50-80 ms, few enough to keep each
#: case ≈ 20 s.
HAL_CHARGE_LOOPS = 80
#: -20: the stock EVCC precharges to 20 kV (clamped to 1000 V) and then asks 200 V / 20 A, so the simulated
#: pack only appears at its first DC_ChargeLoopReq and no current flows until the output has slewed down to
#: it: 1.0-1.1 s after that request (measured). Its loop is counted, not timed (chargeLoopDelay is in whole
#: seconds, which our 1 s watchdog forbids), and runs as fast as a round trip: 25-70 ms on a quiet machine,
#: up to ~250 ms on a loaded one. 30 loops could end before the output reached the pack (COMPLETE with the
#: cable check's 0.03 Wh and 0 A: issue 10 item 10). 120 loops last ≥ 3 s even at 25 ms a loop: ≥ 1.9 s of
#: current.
HAL_CHARGE_LOOPS_20 = 120
#: What ≥ 1.9 s at the -20 EVCC's 200 V / 18 A (3.6 kW) delivers, with margin; the cable check and the
#: precharge alone give 0.03-0.04 Wh.
MIN_ENERGY_20_Wh = 1.0


def is_iso15118_20(case: InteropCase) -> bool:
    return case.protocol.startswith("ISO_15118_20")


def hal_charge_loops(case: InteropCase) -> int:
    """The EVCC's charge loop count for a session that completes with current flowing (see above)."""
    return HAL_CHARGE_LOOPS_20 if is_iso15118_20(case) else HAL_CHARGE_LOOPS


def with_charge_loops(case: InteropCase, loops: int) -> InteropCase:
    """``case`` with the EVCC's ``chargeLoopCycle`` set to ``loops``."""
    return replace(case, evcc_config={**case.evcc_config, "chargeLoopCycle": loops})


def launcher_case(*cases: InteropCase) -> InteropCase:
    """The settings of ONE launcher serving all of ``cases`` (plain TCP): their protocols offered together
    (``--protocols`` in the given order) and their SECC settings merged."""
    assert not any(case.needs_pki or case.shared_env for case in cases), "TLS cases need their own launcher"
    secc_env: dict[str, str] = {}
    for case in cases:
        secc_env.update(case.secc_env)
    return InteropCase(id="+".join(case.id for case in cases), protocol=",".join(case.protocol for case in cases),
                       namespace_prefix="", evcc_config={}, secc_env=secc_env)


@dataclass
class LauncherProcess:
    """``python src/evse_main.py`` in the EVSE namespace, its output in ``log_path``."""

    link: VethLink
    controller: str
    workdir: Path
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / f"launcher-{self.controller}.log"

    @property
    def message_log(self) -> Path:
        return self.workdir / f"exchanges-{self.controller}.jsonl"

    def start(self, case: InteropCase, pki: Path | None) -> "LauncherProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        secc_env = write_env_file(self.workdir / f"secc-{self.controller}.env", {
            "LOG_LEVEL": "INFO", "MESSAGE_LOG_JSON": "False", "FREE_CHARGING_SERVICE": "False",
            **case.secc_env, **case.shared_env})
        argv = [sys.executable, str(LAUNCHER_SCRIPT), "--controller", self.controller, "--no-slac",
                "--iface", self.link.evse_iface, "--secc-config", str(secc_env),
                "--protocols", case.protocol, "--message-log", str(self.message_log),
                "--evse-id", "DE*CCS*E0000001*1", *self.extra_args]
        if pki is not None:
            argv += ["--cert-store", str(pki)]
        environment = {key: value for key, value in os.environ.items()
                       if key not in ("PKI_PATH", "PROTOCOLS", "AUTH_MODES", "EVSE_CONTROLLER")}
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
                raise AssertionError(f"launcher exited ({self.process.returncode}) before ready:\n{self.log_text()}")
            time.sleep(0.05)
        raise AssertionError(f"launcher not ready after {LAUNCHER_READY_TIMEOUT_S} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def exchanges(self) -> list[MessageExchange]:
        return read_exchanges(self.message_log)

    def requests_so_far(self) -> list[str]:
        """The requests of the exchanges logged so far, while the launcher runs (complete lines only: the
        launcher may be writing one right now)."""
        if not self.message_log.exists():
            return []
        text = self.message_log.read_text(encoding="utf-8")
        return [MessageExchange.model_validate_json(line).request
                for line in text[:text.rfind("\n") + 1].splitlines() if line.strip()]

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


def _evcc_command(link: VethLink, case: InteropCase, workdir: Path, pki: Path | None
                  ) -> tuple[list[str], dict[str, str]]:
    """The stock EVCC's command line in the EV namespace and its environment; its $CWD/.env and JSON config
    written into ``workdir`` (created)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env_values = {"NETWORK_INTERFACE": link.ev_iface, "LOG_LEVEL": "INFO", **case.shared_env}
    if pki is not None:
        env_values["PKI_PATH"] = f"{pki}/"
    write_env_file(workdir / ".env", env_values)  # the EVCC reads $CWD/.env
    config_path = workdir / "evcc_config.json"
    config_path.write_text(json.dumps(case.evcc_config), encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if key not in ("PKI_PATH", "VIRTUAL_ENV")}
    return link.in_ev([str(EVCC_PYTHON), "-m", "iso15118.evcc.main", str(config_path)]), environment


def run_evcc(link: VethLink, case: InteropCase, workdir: Path, pki: Path | None) -> EvccResult:
    """One session of the stock EVCC (``python -m iso15118.evcc.main <config>``) in the EV namespace."""
    argv, environment = _evcc_command(link, case, workdir, pki)
    try:
        result = subprocess.run(argv, cwd=workdir, env=environment, capture_output=True, text=True,
                                timeout=EVCC_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout
        return EvccResult(returncode=-1, log=f"EVCC timed out after {EVCC_TIMEOUT_S} s\n{output or ''}")
    (workdir / "evcc.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    return EvccResult(returncode=result.returncode, log=result.stdout + result.stderr)


def run_evcc_until(link: VethLink, case: InteropCase, workdir: Path, pki: Path | None,
                   seen_enough: Callable[[], bool], poll_s: float = 0.05) -> EvccResult:
    """The stock EVCC as in ``run_evcc``, ended by the test (SIGTERM by its PID; ``ip netns exec`` execs) as soon
    as ``seen_enough()`` holds, e.g. once the SECC answered what the test looks at: the rest of its session and
    its fixed 2 s + 3 s after SessionStopRes are not waited for, nor a hang after a timeout (the stock EVCC does
    not exit after SDPFailedError). ``returncode`` is the EVCC's own if it exited first, else
    ``EVCC_STOPPED_BY_TEST`` (``EVCC_TIMEOUT_S`` without either: -1, as ``run_evcc``)."""
    argv, environment = _evcc_command(link, case, workdir, pki)
    log_path = workdir / "evcc.log"
    deadline = time.monotonic() + EVCC_TIMEOUT_S
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, cwd=workdir, env=environment, stdout=log, stderr=subprocess.STDOUT)
    try:
        while process.poll() is None and not seen_enough() and time.monotonic() < deadline:
            time.sleep(poll_s)
    finally:
        returncode = process.poll()
        if returncode is None:
            returncode = EVCC_STOPPED_BY_TEST if time.monotonic() < deadline else -1
            process.terminate()
            try:
                process.wait(timeout=LAUNCHER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=LAUNCHER_STOP_TIMEOUT_S)
    return EvccResult(returncode=returncode, log=log_path.read_text(encoding="utf-8", errors="replace"))


@dataclass(frozen=True)
class SessionRun:
    """One stock-EVCC session against a launcher started for it alone, as the tests see it afterwards."""

    case: InteropCase
    launcher_argv_extra: tuple[str, ...]
    launcher_children: list[str]  # process names under the launcher once it was ready
    evcc: EvccResult
    exchanges: list[MessageExchange]
    launcher_log: str
    launcher_stop_status: int | None  # the launcher's exit status after SIGTERM (0: it stopped cleanly)

    def context(self) -> str:
        return f"\n--- EVCC log tail ---\n{self.evcc.log[-3000:]}\n--- SECC log tail ---\n{self.launcher_log[-3000:]}"


def run_session_on_fresh_launcher(case: InteropCase, workdir: Path, pki: Path | None, namespace_prefix: str,
                                  controller: str = "sim", extra_args: tuple[str, ...] = ()) -> SessionRun:
    """A veth pair of its own (``namespace_prefix``-...), ``evse_main --controller <controller> <extra_args>``
    started in its EVSE namespace for ``case``, one EVCC session (``run_evcc``), then the launcher stopped (its
    exit status kept) and the namespaces removed."""
    with VethLink(prefix=namespace_prefix) as link:
        launcher = LauncherProcess(link=link, controller=controller, workdir=workdir / f"secc-{controller}",
                                   extra_args=extra_args)
        try:
            launcher.start(case, pki)
            children = [child.name() for child in psutil.Process(launcher.process.pid).children(recursive=True)]
            evcc = run_evcc(link, case, workdir / "evcc", pki)
            exchanges = launcher.exchanges()
            stop_status = launcher.stop()
        finally:
            launcher.stop()
        return SessionRun(case=case, launcher_argv_extra=extra_args, launcher_children=children, evcc=evcc,
                          exchanges=exchanges, launcher_log=launcher.log_text(), launcher_stop_status=stop_status)


# --- the Live Controller API of ``--controller hal --api-port``, inside the EVSE namespace ---------------
#: The API listens on 127.0.0.1 of the EVSE namespace (a fresh namespace: every port is free).
API_PORT = 8080
API_PATHS_MONITORED = ("/status", "/vehicle/bms", "/vehicle/iso15118")
_API_MONITOR_SCRIPT = r"""
import json, sys, time, urllib.request
base, out, period = sys.argv[1], sys.argv[2], float(sys.argv[3])
paths = sys.argv[4:]
with open(out, "a", encoding="utf-8") as sink:
    while True:
        sample = {"t": time.time()}
        for path in paths:
            try:
                with urllib.request.urlopen(base + path, timeout=2) as response:
                    sample[path] = json.load(response)
            except Exception as exc:
                sample[path] = {"error": repr(exc)}
        sink.write(json.dumps(sample) + "\n")
        sink.flush()
        time.sleep(period)
"""
_API_CALL_SCRIPT = r"""
import json, sys, urllib.request
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
data = body.encode() if body else None
request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=5) as response:
    print(response.read().decode())
"""


def api_call(link: VethLink, method: str, path: str, body: dict | None = None, port: int = API_PORT) -> dict:
    """One request to the launcher's API from inside the EVSE namespace; the JSON answer."""
    result = subprocess.run(link.in_evse([sys.executable, "-c", _API_CALL_SCRIPT, method,
                                          f"http://127.0.0.1:{port}{path}", json.dumps(body) if body else ""]),
                            capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise AssertionError(f"{method} {path} failed: {result.stderr[-1000:]}")
    return json.loads(result.stdout)


@dataclass
class ApiMonitor:
    """Samples the API's live views every ``period_s`` from inside the EVSE namespace into a JSON-lines
    file while a session runs (one helper process, stopped by PID)."""

    link: VethLink
    path: Path
    port: int = API_PORT
    period_s: float = 0.1
    process: subprocess.Popen | None = None

    def start(self) -> "ApiMonitor":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.link.in_evse(
            [sys.executable, "-c", _API_MONITOR_SCRIPT, f"http://127.0.0.1:{self.port}", str(self.path),
             str(self.period_s), *API_PATHS_MONITORED]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def stop(self) -> list[dict]:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        return self.samples()

    def samples(self) -> list[dict]:
        if not self.path.exists():
            return []
        text = self.path.read_text(encoding="utf-8")
        # The watcher may be writing a line right now: only complete (newline-terminated) lines are samples.
        complete = text[:text.rfind("\n") + 1]
        return [json.loads(line) for line in complete.splitlines() if line.strip()]

    def wait_for(self, predicate, timeout_s: float) -> dict:
        """The first sample (read as they arrive) for which ``predicate(sample)`` holds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for sample in self.samples():
                if predicate(sample):
                    return sample
            time.sleep(0.05)
        raise AssertionError(f"no API sample matched within {timeout_s} s (last: {self.samples()[-1:]})")


def phases_seen(samples: list[dict]) -> list[str]:
    """The /status phases in the order they appeared (consecutive repeats collapsed)."""
    phases: list[str] = []
    for sample in samples:
        phase = sample.get("/status", {}).get("phase")
        if phase and (not phases or phases[-1] != phase):
            phases.append(phase)
    return phases


# --- one EV session watched through the API (and an API action while it charges) ----------------------
def charging_with_current(sample: dict) -> bool:
    """/status of a sample shows energy transfer under way: phase CHARGING, contactor closed, current flowing
    (the DIN/-2 EVCC asks 1 A; the cable check's and precharge's currents are not in phase CHARGING)."""
    status = sample.get("/status", {})
    return status.get("phase") == "CHARGING" and bool(status.get("contactor_closed")) and \
        (status.get("current") or 0.0) >= 0.5


@dataclass
class WatchedSession:
    """One EVCC session against a running launcher, seen through the API."""

    evcc: EvccResult
    samples: list[dict]
    session_id: str
    summary: dict  # /status last_session_summary of this session
    answer: dict | None  # the API's answer to the action taken while it charged, if any

    def current_flowed(self) -> bool:
        return any(charging_with_current(s) for s in self.samples if s["/status"].get("session_id") == self.session_id)

    def sampled_energy_Wh(self) -> float:
        """∫V·I dt of this session's /status samples (trapezoids between sample times)."""
        points = [(s["t"], s["/status"].get("voltage") or 0.0, s["/status"].get("current") or 0.0)
                  for s in self.samples if s["/status"].get("session_id") == self.session_id]
        return sum((t1 - t0) * (v0 * i0 + v1 * i1) / 2.0 for (t0, v0, i0), (t1, v1, i1) in zip(points, points[1:])) \
            / 3600.0


def watch_session(link: VethLink, case: InteropCase, workdir: Path, known_session_ids: set[str],
                  action=None, charging_timeout_s: float = 60.0, end_timeout_s: float = 30.0) -> WatchedSession:
    """Run the stock EVCC once (``case``) while sampling the API; call ``action()`` (an API request) once
    current flows; return the session the controller ran for it (the first session id not in
    ``known_session_ids``) once its summary is out."""
    monitor = ApiMonitor(link, workdir / "api.jsonl").start()
    answer = None
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(run_evcc, link, case, workdir / "evcc", None)
            try:
                if action is not None:
                    monitor.wait_for(charging_with_current, timeout_s=charging_timeout_s)
                    answer = action()
            finally:
                evcc = running.result()
        started = monitor.wait_for(lambda s: s.get("/status", {}).get("session_id") not in (None, *known_session_ids),
                                   timeout_s=5.0)
        session_id = started["/status"]["session_id"]
        ended = monitor.wait_for(lambda s: (s.get("/status", {}).get("last_session_summary") or {})
                                 .get("session_id") == session_id, timeout_s=end_timeout_s)
    finally:
        samples = monitor.stop()
    return WatchedSession(evcc=evcc, samples=samples, session_id=session_id,
                          summary=ended["/status"]["last_session_summary"], answer=answer)
