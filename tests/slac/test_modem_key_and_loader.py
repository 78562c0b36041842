"""The CM_SET_KEY step (with a fake socket) and the pyslac loader: settings file, logging, import side effects."""

from __future__ import annotations

from slac_requirements import skip_without_pyslac

skip_without_pyslac()

import asyncio
import logging
import subprocess
import sys

import pytest

from evse_slac import modem_key, raw_socket
from evse_slac.frames import QCA_LOCAL_MAC, SetKeyCnf, SetKeyReq, SlacParmReq, build_frame, parse_frame
from evse_slac.modem_key import ModemKeySetter
from evse_slac.network_key import NetworkKey
from evse_slac.pyslac_loader import (PYSLAC_LOGGER_NAMES, SlacConfigError, apply_pyslac_log_level,
                                     load_slac_config)

HOST_MAC = bytes.fromhex("020000005e01")
EV_MAC = bytes.fromhex("02000000e001")


class FakeWire:
    """Replaces raw_socket's functions: records what is sent, replays scripted received frames."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, received: list[bytes]) -> None:
        self.sent: list[bytes] = []
        self.closed = False
        self.received = list(received)
        wire = self

        class Sock:
            def close(self) -> None:
                wire.closed = True

        async def receive_frame(sock) -> bytes:
            if wire.received:
                return wire.received.pop(0)
            await asyncio.Event().wait()  # nothing more arrives

        async def send_frame(sock, frame: bytes) -> None:
            wire.sent.append(frame)

        monkeypatch.setattr(raw_socket, "open_homeplug_socket", lambda iface: Sock())
        monkeypatch.setattr(raw_socket, "socket_mac", lambda sock: HOST_MAC)
        monkeypatch.setattr(raw_socket, "receive_frame", receive_frame)
        monkeypatch.setattr(raw_socket, "send_frame", send_frame)


class RecordingSleep:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def test_set_key_sends_the_key_to_the_modem_waits_for_its_cnf_then_settles(monkeypatch):
    # Only a CM_SET_KEY.CNF counts (pyslac took the EV's CM_SLAC_PARM.REQ as its confirmation).
    wire = FakeWire(monkeypatch, [build_frame(HOST_MAC, EV_MAC, SlacParmReq(run_id=bytes(8))), b"junk",
                                  build_frame(HOST_MAC, QCA_LOCAL_MAC, SetKeyCnf(result=0))])
    sleep = RecordingSleep()
    key = NetworkKey.generate()
    confirmed = await ModemKeySetter("evse0", cnf_timeout_s=5.0, settle_time_s=0.25, sleep=sleep)(key)
    assert confirmed and sleep.calls == [0.25] and wire.closed and not wire.received
    request = parse_frame(wire.sent[0])
    assert (request.dst, request.src) == (QCA_LOCAL_MAC, HOST_MAC)
    assert request.message == SetKeyReq(nid=key.nid, nmk=key.nmk)


async def test_set_key_failure_result_and_missing_cnf_are_reported_but_not_fatal(monkeypatch):
    FakeWire(monkeypatch, [build_frame(HOST_MAC, QCA_LOCAL_MAC, SetKeyCnf(result=1))])
    sleep = RecordingSleep()
    assert await ModemKeySetter("evse0", settle_time_s=0.0, sleep=sleep)(NetworkKey.generate()) is False
    assert sleep.calls == [], "no settle delay when settle_time_s is 0"

    wire = FakeWire(monkeypatch, [])
    assert await ModemKeySetter("evse0", cnf_timeout_s=0.0, settle_time_s=0.0)(NetworkKey.generate()) is False
    assert wire.closed and len(wire.sent) == 1


def test_default_settle_time_is_qualcomms_ten_seconds():
    assert ModemKeySetter("evse0").settle_time_s == modem_key.QCA_SETTLE_TIME_S == 10.0


def test_slac_config_from_file_with_environment_precedence(tmp_path, monkeypatch):
    for name in ("SLAC_INIT_TIMEOUT", "ATTEN_RESULTS_TIMEOUT", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / "slac.env"
    env_file.write_text("SLAC_INIT_TIMEOUT=1.5\nATTEN_RESULTS_TIMEOUT=900\nLOG_LEVEL=debug\n")
    config = load_slac_config(env_file)
    assert (config.slac_init_timeout, config.slac_atten_results_timeout, config.log_level) == (1.5, 900, "DEBUG")

    other = tmp_path / "other.env"
    other.write_text("SLAC_INIT_TIMEOUT=7\n")
    assert load_slac_config(other).slac_init_timeout == 7.0, "a second file is read afresh (unlike pyslac)"

    monkeypatch.setenv("SLAC_INIT_TIMEOUT", "3")
    assert load_slac_config(env_file).slac_init_timeout == 3.0


def test_no_file_means_defaults_even_with_a_dot_env_around(tmp_path, monkeypatch):
    for name in ("SLAC_INIT_TIMEOUT", "ATTEN_RESULTS_TIMEOUT", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text("SLAC_INIT_TIMEOUT=33\n")
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    config = load_slac_config(None)
    assert (config.slac_init_timeout, config.slac_atten_results_timeout, config.log_level) == (50.0, None, "INFO")


@pytest.mark.parametrize("content, message", [
    ("SLAC_INIT_TIMEOUT=abc", "SLAC_INIT_TIMEOUT must be a number"),
    ("SLAC_INIT_TIMEOUT=0", "SLAC_INIT_TIMEOUT must be > 0"),
    ("ATTEN_RESULTS_TIMEOUT=2000", "1..1050"),
    ("ATTEN_RESULTS_TIMEOUT=1.5", "must be an integer"),
    ("LOG_LEVEL=LOUD", "LOG_LEVEL"),
])
def test_bad_settings_are_refused_with_the_setting_named(tmp_path, monkeypatch, content, message):
    for name in ("SLAC_INIT_TIMEOUT", "ATTEN_RESULTS_TIMEOUT", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    env_file = tmp_path / "slac.env"
    env_file.write_text(content + "\n")
    with pytest.raises(SlacConfigError, match=message):
        load_slac_config(env_file)


def test_missing_settings_file_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="SLAC settings file"):
        load_slac_config(tmp_path / "nope.env")


def test_log_level_is_applied_to_pyslacs_loggers():
    before = {name: logging.getLogger(name).level for name in PYSLAC_LOGGER_NAMES}
    try:
        apply_pyslac_log_level("WARNING")
        assert all(logging.getLogger(name).level == logging.WARNING for name in PYSLAC_LOGGER_NAMES)
        with pytest.raises(ValueError):
            apply_pyslac_log_level("LOUD")
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_importing_our_modules_has_no_side_effects():
    result = _run_python(
        "import logging, sys\n"
        "import evse_slac, evse_slac.evse_slac, evse_slac.ev_peer, evse_slac.evse_runner\n"
        "root = logging.getLogger()\n"
        "assert 'pyslac.session' not in sys.modules, 'pyslac.session imported at import time'\n"
        "assert root.level == logging.WARNING and root.handlers == [], (root.level, root.handlers)\n")
    assert result.returncode == 0, result.stderr


def test_pyslac_no_longer_takes_over_the_root_logger():
    result = _run_python(
        "import logging\n"
        "from evse_slac.pyslac_loader import import_pyslac_session\n"
        "handler = logging.NullHandler(); root = logging.getLogger()\n"
        "session = import_pyslac_session()\n"
        "assert hasattr(session, 'SlacEvseSession')\n"
        "assert root.level == logging.WARNING and root.handlers == [], (root.level, root.handlers)\n")
    assert result.returncode == 0, result.stderr
    # Control: a plain import does take it over (if pyslac ever stops doing that, the workaround can go).
    plain = _run_python("import logging, pyslac.session; assert logging.getLogger().level == logging.DEBUG")
    assert plain.returncode == 0, plain.stderr
