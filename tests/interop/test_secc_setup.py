"""evse_secc without a network: protocol parsing, EVSE ID forms, SECC Config building, PKI checks,
pre-flight errors, exchange timing and the launcher's options."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import evse_main
from evse_secc import pki, preflight
from evse_secc.errors import LaunchError
from evse_secc.evse_id import check_evse_id, din_evse_id, iso_15118_2_evse_id
from evse_secc.exchange_log import MessageExchange
from evse_secc.message_timing import TimedEXICodec, message_name, response_code
from evse_secc.options import LaunchOptions
from evse_secc.protocols import DEFAULT_DC_PROTOCOLS, HlcProtocol, parse_protocols
from evse_secc.secc_config import build_secc_setup
from fake_exi_codec import FakeCodec, v2g_json


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch):
    """iso15118's load_envs exports the .env's keys into os.environ (and never overrides them): restore it."""
    saved = dict(os.environ)
    for key in ("PROTOCOLS", "AUTH_MODES", "PKI_PATH", "SECC_ENFORCE_TLS", "ENABLE_TLS_1_3", "NETWORK_INTERFACE"):
        monkeypatch.delenv(key, raising=False)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_protocols_keep_their_order_and_accept_aliases():
    assert parse_protocols("din, ISO_15118_2,iso20dc,din") == (
        HlcProtocol.DIN_SPEC_70121, HlcProtocol.ISO_15118_2, HlcProtocol.ISO_15118_20_DC)
    with pytest.raises(LaunchError, match="unknown protocol 'chademo'"):
        parse_protocols("chademo")


def test_din_evse_id_packs_din_spec_91286_ids_and_sends_00_otherwise():
    assert din_evse_id("49*89*6360") == "49A89A6360"
    assert din_evse_id("123") == "123F"
    assert din_evse_id("DE*ABC*E1234567*1") == "00"


def test_the_specs_short_evse_id_is_accepted_with_a_warning_and_sent_as_no_id_in_iso_15118_2():
    warnings = check_evse_id("EVSE-1", DEFAULT_DC_PROTOCOLS)
    assert any("ISO 15118-2 needs 7..37" in warning and "ZZ00000" in warning for warning in warnings)
    assert iso_15118_2_evse_id("EVSE-1") == "ZZ00000"
    assert iso_15118_2_evse_id("DE*ABC*E1234567*1") == "DE*ABC*E1234567*1"
    assert check_evse_id("DE*ABC*E1234567*1", (HlcProtocol.ISO_15118_2, HlcProtocol.ISO_15118_20_DC)) == []
    with pytest.raises(LaunchError, match="longer than 255"):
        check_evse_id("E" * 256, DEFAULT_DC_PROTOCOLS)


def test_config_from_env_file_keeps_written_protocol_order(tmp_path: Path, clean_environ):
    env_file = tmp_path / "secc.env"
    env_file.write_text("NETWORK_INTERFACE=veth9\nPROTOCOLS=DIN_SPEC_70121,ISO_15118_20_DC,ISO_15118_2\n"
                        "AUTH_MODES=PNC,EIM\n")
    setup = build_secc_setup(LaunchOptions(secc_config=env_file))
    assert setup.config.iface == "veth9"
    assert [p.name for p in setup.config.supported_protocols] == ["DIN_SPEC_70121", "ISO_15118_20_DC", "ISO_15118_2"]
    assert [a.name for a in setup.config.supported_auth_options] == ["PNC", "EIM"]


def test_command_line_wins_over_env_file_and_cert_store_sets_pki_path(tmp_path: Path, clean_environ):
    from iso15118.shared.settings import SettingKey, shared_settings

    env_file = tmp_path / "secc.env"
    env_file.write_text("NETWORK_INTERFACE=veth9\nPROTOCOLS=DIN_SPEC_70121\n")
    store = tmp_path / "pki"
    store.mkdir()
    setup = build_secc_setup(LaunchOptions(secc_config=env_file, iface="evse0", cert_store=store,
                                           protocols=(HlcProtocol.ISO_15118_2,)))
    assert setup.config.iface == "evse0"
    assert [p.name for p in setup.config.supported_protocols] == ["ISO_15118_2"]
    assert setup.cert_store == store.resolve()
    assert shared_settings[SettingKey.PKI_PATH] == f"{store.resolve()}/"


def test_default_protocols_are_the_dc_ones(tmp_path: Path, clean_environ):
    env_file = tmp_path / "secc.env"
    env_file.write_text("LOG_LEVEL=INFO\n")
    setup = build_secc_setup(LaunchOptions(secc_config=env_file))
    assert setup.protocols == DEFAULT_DC_PROTOCOLS


def test_bad_settings_are_launch_errors(tmp_path: Path, clean_environ):
    with pytest.raises(LaunchError, match="does not exist"):
        build_secc_setup(LaunchOptions(secc_config=tmp_path / "missing.env"))
    env_file = tmp_path / "secc.env"
    env_file.write_text("SECC_ENFORCE_TLS=maybe\n")
    with pytest.raises(LaunchError, match="SECC_ENFORCE_TLS"):
        build_secc_setup(LaunchOptions(secc_config=env_file))


def test_enforced_tls_without_certificates_is_a_launch_error(tmp_path: Path):
    with pytest.raises(LaunchError, match="lacks iso15118_2/certs/cpoCertChain.pem"):
        pki.check_cert_store(tmp_path, tls_enforced=True, tls_1_3=False)
    pki.check_cert_store(tmp_path, tls_enforced=False, tls_1_3=False)  # only a warning
    with pytest.raises(LaunchError, match="not a directory"):
        pki.check_cert_store(tmp_path / "nope", tls_enforced=False, tls_1_3=False)


def test_tls_1_3_also_needs_the_oem_root(tmp_path: Path):
    for name in pki.TLS_SERVER_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert pki.missing_tls_files(tmp_path, tls_1_3=False) == []
    assert pki.missing_tls_files(tmp_path, tls_1_3=True) == list(pki.TLS_1_3_EXTRA_FILES)


def test_preflight_names_the_missing_interface_and_the_missing_link_local_address():
    with pytest.raises(LaunchError, match="network interface 'nosuch0' not found"):
        preflight.ipv6_link_local_address("nosuch0")
    with pytest.raises(LaunchError, match="'lo' has no IPv6 link-local address"):
        preflight.ipv6_link_local_address("lo")


def test_preflight_without_java(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LaunchError, match="no 'java' on PATH"):
        preflight.check_java()


def test_unreadable_settings_file_is_a_permission_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    env_file = tmp_path / "secc.env"
    env_file.write_text("")
    monkeypatch.setattr(preflight.os, "access", lambda path, mode: False)
    with pytest.raises(LaunchError, match="permission denied"):
        preflight.check_readable_file(env_file, "SECC settings file")


def test_timed_codec_records_one_exchange_per_request_with_injected_time():
    ticks = iter([10.000, 10.004, 10.010, 10.013])  # decode start/end, encode start/end
    exchanges: list[MessageExchange] = []
    codec = TimedEXICodec(FakeCodec(v2g_json("CurrentDemandReq", {})), exchanges.append, clock=lambda: next(ticks))
    codec.decode(b"req", "urn:din:70121:2012:MsgDef")
    codec.encode(v2g_json("CurrentDemandRes", {"ResponseCode": "OK"}), "urn:din:70121:2012:MsgDef")
    [exchange] = exchanges
    assert (exchange.request, exchange.response, exchange.response_code) == ("CurrentDemandReq", "CurrentDemandRes", "OK")
    assert exchange.duration_s == pytest.approx(0.013)
    assert exchange.decode_s == pytest.approx(0.004)
    assert exchange.encode_s == pytest.approx(0.003)


def test_timed_codec_ignores_fragments_encoded_for_signatures():
    exchanges: list[MessageExchange] = []
    codec = TimedEXICodec(FakeCodec(json.dumps({"AuthorizationReq": {}})), exchanges.append)
    codec.decode(b"req", "urn:iso:std:iso:15118:-20:CommonMessages")
    codec.encode(json.dumps({"SignedInfo": {}}), "urn:iso:std:iso:15118:-20:CommonMessages")
    codec.encode(json.dumps({"AuthorizationRes": {"ResponseCode": "OK"}}), "urn:iso:std:iso:15118:-20:CommonMessages")
    assert [(e.request, e.response) for e in exchanges] == [("AuthorizationReq", "AuthorizationRes")]


def test_message_names_and_codes_for_every_protocol_shape():
    assert message_name({"supportedAppProtocolReq": {}}) == "supportedAppProtocolReq"
    assert response_code({"SessionStopRes": {"Header": {}, "ResponseCode": "OK"}}) == "OK"
    assert response_code(json.loads(v2g_json("SessionStopRes", {"ResponseCode": "OK"}))) == "OK"


def test_launcher_options_from_command_line_and_environment():
    options = evse_main.parse_options(["--evse-id", "DE*ABC*E1234567*1", "--iface", "evse0", "--no-slac",
                                       "--protocols", "iso2,din"], environ={"EVSE_CONTROLLER": "hal",
                                                                            "PKI_PATH": "/pki"})
    assert options.controller == "hal" and options.slac is False and options.cert_store == Path("/pki")
    assert options.protocols == (HlcProtocol.ISO_15118_2, HlcProtocol.DIN_SPEC_70121)
    assert evse_main.parse_options(["--controller", "sim"], environ={"EVSE_CONTROLLER": "hal"}).controller == "sim"
    assert evse_main.parse_options(["--cert-store", "/a"], environ={"PKI_PATH": "/b"}).cert_store == Path("/a")
    with pytest.raises(SystemExit):
        evse_main.parse_options([], environ={"EVSE_CONTROLLER": "plc"})


@pytest.mark.parametrize("argv, message", [
    (["--no-slac", "--iface", "lo", "--controller", "hal", "--api-host", "127.0.0.1"], "--api-port"),
    (["--no-slac", "--iface", "lo", "--controller", "hal", "--api-front-process"], "--api-front-process needs --api-port"),
    (["--no-slac", "--iface", "nosuch0", "--secc-config", "{empty_env_file}"], "'nosuch0' not found"),
])
def test_launcher_reports_errors_as_one_line(argv, message, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                             clean_environ):
    empty_env_file = tmp_path / "secc.env"
    empty_env_file.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        evse_main.main([arg.format(empty_env_file=empty_env_file) for arg in argv])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert error.startswith("evse-main: error: ") and message in error and "Traceback" not in error


@pytest.mark.parametrize("command", [["evse-main"], ["python", "src/evse_main.py"]])
def test_launcher_runs_as_console_script_and_as_the_spec_path(command):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    executable = [str(Path(sys.executable).with_name(command[0]))] if command[0] == "evse-main" else [sys.executable]
    result = subprocess.run([*executable, *command[1:], "--help"], cwd=repo, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--controller {sim,hal}" in result.stdout and "--no-slac" in result.stdout
