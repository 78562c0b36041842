"""OcppConfig from flags over CCS_SIM_OCPP_* over a TOML file; off when nothing sets it; one-line errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ccs_sim.ocpp.config import OcppConfigError, add_ocpp_arguments, build_ocpp_config, ocpp_config_from_arguments


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_ocpp_arguments(parser)
    return parser.parse_args(argv)


def test_nothing_configured_means_off() -> None:
    assert ocpp_config_from_arguments(parse(), environ={}) is None


def test_flags_over_environment_over_file(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    file = tmp_path / "ocpp.toml"
    file.write_text('url = "ws://file.example/ocpp"\nstation_id = "FILE"\nversion = "2.0.1"\n'
                    'meter_interval_s = 15\nca_file = "ca.pem"\n')
    environ = {"CCS_SIM_OCPP_CONFIG": str(file), "CCS_SIM_OCPP_STATION_ID": "ENV", "CCS_SIM_OCPP_CALL_TIMEOUT_S": "5"}
    config = ocpp_config_from_arguments(parse("--ocpp-url", "ws://127.0.0.1:9000/ocpp/"), environ=environ)
    assert config is not None
    assert config.url == "ws://127.0.0.1:9000/ocpp/" and config.station_id == "ENV" and config.version == "2.0.1"
    assert config.call_timeout_s == 5.0 and config.meter_interval_s == 15.0
    assert config.ca_file == tmp_path / "ca.pem"  # relative to the file
    assert config.connect_url == "ws://127.0.0.1:9000/ocpp/ENV" and config.subprotocol == "ocpp2.0.1"


def test_station_id_already_in_the_url_is_not_appended_twice() -> None:
    config = build_ocpp_config({"url": "ws://h/ocpp/CS1", "station_id": "CS1"}, environ={})
    assert config is not None and config.connect_url == "ws://h/ocpp/CS1" and config.version == "1.6"


@pytest.mark.parametrize(("flags", "message"), [
    ({"station_id": "CS1"}, "no CSMS url: add --ocpp-url"),
    ({"url": "ws://h/ocpp"}, "--ocpp-station-id"),
    ({"url": "http://h/ocpp", "station_id": "CS1"}, "expected ws://"),
    ({"url": "ws://h/ocpp", "station_id": "CS1", "version": "2.1"}, "1.6 or 2.0.1"),
    ({"url": "ws://h/ocpp", "station_id": "CS1", "security_profile": "4"}, "expected 0, 1, 2 or 3"),
    ({"url": "ws://h/ocpp", "station_id": "CS1", "security_profile": "1"}, "--ocpp-password"),
    ({"url": "ws://h/ocpp", "station_id": "CS1", "security_profile": "2", "password": "p"}, "wss://"),
    ({"url": "wss://h/ocpp", "station_id": "CS1", "security_profile": "2", "password": "p", "ca_file": "/nope.pem"},
     "no such file"),
    ({"url": "ws://h/ocpp", "station_id": "C:S1"}, "station id"),
    ({"url": "ws://h/ocpp", "station_id": "CS1", "meter_interval_s": "soon"}, "--ocpp-meter-interval"),
])
def test_wrong_settings_are_one_line_errors(flags: dict, message: str) -> None:
    with pytest.raises(OcppConfigError) as refusal:
        build_ocpp_config(flags, environ={})
    assert message in str(refusal.value) and "\n" not in str(refusal.value)


def test_unknown_key_in_the_file(tmp_path: Path) -> None:
    file = tmp_path / "ocpp.toml"
    file.write_text('url = "ws://h/ocpp"\nstationid = "CS1"\n')
    with pytest.raises(OcppConfigError, match="unknown key\\(s\\) stationid"):
        build_ocpp_config({}, environ={}, config_file=file)
