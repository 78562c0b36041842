"""One process per records database, and a database that cannot be used is refused in one line (issue 10, 7-8).

- A second ``ccs-sim serve`` / ``uvicorn ccs_sim.fastapi_app:app`` / ``evse-main --controller hal`` on a
  database another live process owns exits non-zero with one line naming the database and the owner's PID,
  and rewrites nothing: the owner's running session stays ``running`` and then completes normally.
- A damaged database (random bytes, a truncated file) or one that cannot be written (an immutable file, a
  read-only directory: both bind root too) is refused at start with one line (path, reason, what to do),
  no traceback, exit status != 0, and the file is left as it was.
- The store's lock: held from open to close, refused to a second opener (this process or another), dropped
  by the OS when the owner is SIGKILLed (crash recovery still closes its rows as interrupted).

The subprocess tests run on the wall clock (real processes on 127.0.0.1 free ports); the store tests do not.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from ccs_sim.observability.records import default_database_path
from ccs_sim.observability.session_store import DatabaseInUse, RecordsUnavailable, SessionStore
from served_process import free_port, stop_process, wait_until_serving

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER_SCRIPT = REPO_ROOT / "src" / "evse_main.py"
IN_CI = os.environ.get("CI") == "true"
#: A refused start must end this quickly: imports (~1-2 s on a loaded 2-core box) and one refusal.
REFUSAL_TIMEOUT_S = 20.0
SERVER_START_TIMEOUT_S = 20.0
#: Server A's session: ~2 s handshake + 1 s cable check + precharge + this, at SERVER_A_SPEED (~17 s wall),
#: long enough to still be running after two refused starts on a loaded machine.
SESSION_DURATION_S = 30.0
SERVER_A_SPEED = 2.0
#: Once both refusals are checked (the session still running), the rest of server A's session runs at this
#: speed (/sim/speed): it completes in about half a second of wall time instead of ~15 s.
SERVER_A_SPEED_TO_THE_END = 50.0
SESSION_END_TIMEOUT_S = 90.0
RANDOM_DATABASE_BYTES = 4096
#: A refusal is this line; uvicorn adds "Application startup failed. Exiting." (its INFO lines aside).
MAX_REFUSAL_LINES = 2


def clean_environ(**extra: str) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith("CCS_SIM_")}
    environ.update(extra)
    return environ


def serve_argv(data_dir: Path, port: int, speed: float = 1.0) -> list[str]:
    return [sys.executable, "-m", "ccs_sim.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--speed", str(speed), "--data-dir", str(data_dir)]


def uvicorn_argv(port: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "ccs_sim.fastapi_app:app", "--host", "127.0.0.1", "--port", str(port)]


def run_refused(argv: list[str], cwd: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    result = subprocess.run(argv, cwd=cwd, env=environ, capture_output=True, text=True, timeout=REFUSAL_TIMEOUT_S)
    assert time.monotonic() - started < REFUSAL_TIMEOUT_S
    return result


def refusal_line(result: subprocess.CompletedProcess[str], database: Path, *words: str) -> str:
    """The one stderr line naming ``database`` (and ``words``); no traceback, non-zero exit."""
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("INFO:")]
    assert len(lines) <= MAX_REFUSAL_LINES, result.stderr
    naming = [line for line in lines if str(database) in line]
    assert len(naming) == 1, result.stderr
    for word in words:
        assert word in naming[0], naming[0]
    return naming[0]


def require_or_skip(reason: str | None) -> None:
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI must run the read-only database tests, but: {reason}")
    pytest.skip(reason)


# --- read-only set-ups that bind root too --------------------------------------------------------------
def _read_only_mount_unavailable() -> str | None:
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        return f"cannot make a private mount namespace (unshare: {probe.stderr.decode().strip()})"
    return None


def read_only_directory(directory: Path) -> list[str]:
    """argv prefix: run in a private mount namespace where ``directory`` is a read-only bind mount (EROFS,
    which binds root as well; the mount vanishes with the process)."""
    require_or_skip(_read_only_mount_unavailable())
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(directory)]


@pytest.fixture
def immutable_file() -> Iterator[Callable[[Path], None]]:
    """Make a file unwritable for this user, root included: chattr +i as root, chmod 0444 otherwise."""
    made: list[Path] = []

    def make(path: Path) -> None:
        if os.geteuid() != 0:
            path.chmod(0o444)
            return
        result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        require_or_skip(None if result.returncode == 0 else f"chattr +i not supported here: {result.stderr.strip()}")
        made.append(path)

    yield make
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)


def make_database(path: Path) -> Path:
    store = SessionStore(path)
    store.insert_started("earlier", "sim", "2026-01-01T00:00:00+00:00", {}, {})
    store.close()
    return path


def damage(path: Path, how: str) -> Path:
    if how == "random-bytes":
        path.write_bytes(os.urandom(RANDOM_DATABASE_BYTES))
    else:  # a valid database cut in half (a copy interrupted, a full disk)
        make_database(path)
        raw = sqlite3.connect(path)
        raw.executemany("INSERT INTO sessions (session_id, source, status, started_at) VALUES (?, 'sim', 'ended', ?)",
                        [(f"s{index}", "2026-01-01T00:00:00+00:00") for index in range(500)])
        raw.commit()
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        raw.close()
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
    return path


# --- the store's lock (no subprocess server) ---------------------------------------------------------------
def test_a_second_store_on_an_owned_database_is_refused_naming_the_owner_and_writes_nothing(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    owner = SessionStore(database)
    try:
        owner.insert_started("live", "sim", "2026-01-01T00:00:00+00:00", {}, {})
        with pytest.raises(DatabaseInUse) as refused:
            SessionStore(database)
        message = str(refused.value)
        assert "\n" not in message
        assert str(database) in message and f"PID {os.getpid()}" in message
        assert refused.value.owner_pid == os.getpid()
        # the refused opener did not recover ("interrupt") the live session
        assert owner.get("live")["status"] == "running"  # type: ignore[index]
    finally:
        owner.close()
    reopened = SessionStore(database)  # released on close
    reopened.close()


def test_another_process_is_refused_while_the_owner_lives(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    owner = SessionStore(database)
    owner.insert_started("live", "sim", "2026-01-01T00:00:00+00:00", {}, {})
    try:
        opener = ("import sys\nfrom ccs_sim.observability.session_store import SessionStore, DatabaseInUse\n"
                  "try:\n    SessionStore(sys.argv[1])\nexcept DatabaseInUse as e:\n"
                  "    print(e.owner_pid)\n    raise SystemExit(3)\n")
        result = subprocess.run([sys.executable, "-c", opener, str(database)], capture_output=True, text=True,
                                timeout=REFUSAL_TIMEOUT_S)
        assert (result.returncode, result.stdout.strip()) == (3, str(os.getpid())), result.stderr
        assert owner.get("live")["status"] == "running"  # type: ignore[index]
    finally:
        owner.close()


def test_the_lock_dies_with_a_sigkilled_owner_and_its_rows_are_then_recovered(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    holder = ("import sys\nfrom ccs_sim.observability.session_store import SessionStore\n"
              "store = SessionStore(sys.argv[1])\n"
              "store.insert_started('crashed', 'sim', '2026-01-01T00:00:00+00:00', {}, {})\n"
              "print('ready', flush=True)\nsys.stdin.read()\n")
    process = subprocess.Popen([sys.executable, "-c", holder, str(database)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        with pytest.raises(DatabaseInUse, match=f"PID {process.pid}"):
            SessionStore(database)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    store = SessionStore(database)
    try:
        assert store.mark_interrupted() == ["crashed"]
    finally:
        store.close()


@pytest.mark.parametrize("how", ["random-bytes", "truncated"])
def test_a_damaged_database_is_refused_in_one_line_and_left_as_it_was(tmp_path: Path, how: str) -> None:
    database = damage(tmp_path / "sessions.db", how)
    before = database.read_bytes()
    with pytest.raises(RecordsUnavailable) as refused:
        SessionStore(database)
    message = str(refused.value)
    assert "\n" not in message and str(database) in message and "damaged" in message and "move it aside" in message
    assert database.read_bytes() == before
    # the refusal released the lock: the file can be moved aside and a new database started at once
    database.rename(tmp_path / "sessions.db.broken")
    SessionStore(database).close()


def test_a_database_this_process_cannot_write_is_refused_at_open(tmp_path: Path, immutable_file) -> None:
    database = make_database(tmp_path / "sessions.db")
    immutable_file(database)
    with pytest.raises(RecordsUnavailable) as refused:
        SessionStore(database)  # reading alone would succeed: the write transaction at open finds it
    message = str(refused.value)
    assert "\n" not in message and str(database) in message and "cannot be written" in message


def test_a_lock_file_that_cannot_be_created_is_a_one_line_refusal(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    with pytest.raises(RecordsUnavailable) as refused:
        SessionStore(not_a_directory / "sessions.db")
    assert "\n" not in str(refused.value) and str(not_a_directory / "sessions.db") in str(refused.value)


# --- real processes --------------------------------------------------------------------------------------
class ServerA:
    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(serve_argv(data_dir, self.port, SERVER_A_SPEED), stdout=log,
                                            stderr=subprocess.STDOUT, cwd=data_dir.parent, env=clean_environ())
        wait_until_serving(self.process, f"{self.base_url}/health", SERVER_START_TIMEOUT_S, log_path.read_text)

    def stop(self) -> None:
        stop_process(self.process)


@pytest.mark.slow
def test_a_second_server_on_the_same_data_dir_refuses_and_the_first_session_completes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = default_database_path(data_dir)
    server_a = ServerA(data_dir, tmp_path / "server-a.log")
    try:
        with httpx.Client(base_url=server_a.base_url, timeout=5.0) as client:
            started = client.post("/start_session", json={"duration_s": SESSION_DURATION_S}).json()
            assert started["status"] == "started", started
            session_id = started["session_id"]

            second_server = run_refused(serve_argv(data_dir, free_port()), tmp_path, clean_environ())
            line = refusal_line(second_server, database, "in use", f"PID {server_a.process.pid}")
            assert line.startswith("ERROR:")
            plain_uvicorn = run_refused(uvicorn_argv(free_port()), tmp_path,
                                        clean_environ(CCS_SIM_DATA_DIR=str(data_dir)))
            refusal_line(plain_uvicorn, database, "in use", f"PID {server_a.process.pid}")

            record = client.get(f"/sessions/{session_id}").json()
            assert record["status"] == "running", record  # not marked interrupted by the refused starts
            assert client.get("/status").json()["session_active"] is True
            sped_up = client.post("/sim/speed", json={"speed": SERVER_A_SPEED_TO_THE_END}).json()
            assert sped_up["status"] == "ok", sped_up
            deadline = time.monotonic() + SESSION_END_TIMEOUT_S
            while client.get("/status").json()["session_active"] and time.monotonic() < deadline:
                time.sleep(0.05)
            deadline = time.monotonic() + 5.0
            while (record := client.get(f"/sessions/{session_id}").json())["status"] == "running" \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (record["status"], record["ended_phase"]) == ("ended", "COMPLETE"), record
            assert record["energy_Wh"] > 0
            assert client.get("/sessions").json()["total"] == 1
    finally:
        server_a.stop()


@pytest.mark.slow
@pytest.mark.parametrize("entry_point", ["ccs-sim serve", "uvicorn"])
@pytest.mark.parametrize("problem", ["random-bytes", "truncated", "immutable-file", "read-only-directory"])
def test_a_server_refuses_a_damaged_or_unwritable_database_in_one_line(tmp_path: Path, entry_point: str,
                                                                       problem: str, immutable_file) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = default_database_path(data_dir)
    wrapper: list[str] = []
    if problem in ("random-bytes", "truncated"):
        damage(database, problem)
        words = ("damaged",)
    else:
        make_database(database)
        words = ("cannot be written",)
        if problem == "immutable-file":
            immutable_file(database)
        else:
            wrapper = read_only_directory(data_dir)
    before = database.read_bytes()
    port = free_port()
    if entry_point == "uvicorn":
        result = run_refused(wrapper + uvicorn_argv(port), tmp_path, clean_environ(CCS_SIM_DATA_DIR=str(data_dir)))
    else:
        result = run_refused(wrapper + serve_argv(data_dir, port), tmp_path, clean_environ())
    refusal_line(result, database, *words)
    assert database.read_bytes() == before


@pytest.mark.slow
@pytest.mark.netns
@pytest.mark.parametrize("problem", ["in-use", "random-bytes", "read-only-directory"])
def test_the_hal_launcher_refuses_an_owned_damaged_or_unwritable_database_in_one_line(
        tmp_path: Path, veth_link, problem: str) -> None:
    pytest.importorskip("iso15118", reason="the launcher needs the iso15118 package (scripts/setup.sh hlc)")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = default_database_path(data_dir)
    wrapper: list[str] = []
    owner = None
    if problem == "in-use":
        owner = SessionStore(database)
        owner.insert_started("live", "sim", "2026-01-01T00:00:00+00:00", {}, {})
        words: tuple[str, ...] = ("in use", f"PID {os.getpid()}")
    elif problem == "random-bytes":
        damage(database, problem)
        words = ("damaged",)
    else:
        make_database(database)
        wrapper = read_only_directory(data_dir)
        words = ("Read-only file system",)  # the first thing the launcher writes there may be the V2G log
    argv = [sys.executable, str(LAUNCHER_SCRIPT), "--controller", "hal", "--no-slac", "--iface",
            veth_link.evse_iface, "--evse-id", "DE*CCS*E0000001*1", "--api-port", str(free_port())]
    environ = {key: value for key, value in clean_environ(CCS_SIM_DATA_DIR=str(data_dir)).items()
               if key not in ("PKI_PATH", "PROTOCOLS", "AUTH_MODES", "EVSE_CONTROLLER")}
    try:
        result = run_refused(veth_link.in_evse(wrapper + argv), tmp_path, environ)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("evse-main: error:")]
        assert len(errors) == 1 and str(data_dir) in errors[0], result.stderr
        if problem != "read-only-directory":
            assert errors[0].startswith(f"evse-main: error: session records database {database} "), errors[0]
        assert all(word in errors[0] for word in words), errors[0]
        if owner is not None:
            assert owner.get("live")["status"] == "running"  # type: ignore[index]
    finally:
        if owner is not None:
            owner.close()
