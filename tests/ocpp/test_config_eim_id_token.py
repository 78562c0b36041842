"""The station's EIM identification token is an OCPP option like the others: ``--ocpp-eim-id-token`` /
``--ocpp-eim-id-token-type`` over ``CCS_SIM_OCPP_EIM_ID_TOKEN`` / ``_TYPE`` over the TOML file, checked (2.0.1
IdTokenEnumType, the version's id token length) with one-line errors, on ``ccs-sim serve`` and ``evse-main``, and
it is the token the controller's authoriser presents while the client runs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import evse_main
from ccs_sim.cli import build_parser
from ccs_sim.ocpp.authorization import CsmsAuthorizer
from ccs_sim.ocpp.client import OcppClient
from ccs_sim.ocpp.config import (
    OcppConfig,
    OcppConfigError,
    add_ocpp_arguments,
    build_ocpp_config,
    ocpp_config_from_arguments,
)
from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_model.clock import ManualClock

BASE = {"url": "ws://127.0.0.1:9000/ocpp", "station_id": "CS1"}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_ocpp_arguments(parser)
    return parser.parse_args(argv)


def test_default_is_no_token_and_type_iso14443() -> None:
    config = build_ocpp_config(BASE, environ={})
    assert config is not None and config.eim_id_token is None and config.eim_id_token_type == "ISO14443"


def test_flag_over_environment_over_file(tmp_path: Path) -> None:
    file = tmp_path / "ocpp.toml"
    file.write_text('url = "ws://127.0.0.1:9000/ocpp"\nstation_id = "CS1"\nversion = "2.0.1"\n'
                    'eim_id_token = "FILE0001"\neim_id_token_type = "ISO15693"\n')
    from_file = ocpp_config_from_arguments(parse("--ocpp-config", str(file)), environ={})
    assert from_file is not None
    assert (from_file.eim_id_token, from_file.eim_id_token_type) == ("FILE0001", "ISO15693")

    environ = {"CCS_SIM_OCPP_EIM_ID_TOKEN": "ENV0002", "CCS_SIM_OCPP_EIM_ID_TOKEN_TYPE": "KeyCode"}
    from_env = ocpp_config_from_arguments(parse("--ocpp-config", str(file)), environ=environ)
    assert from_env is not None and (from_env.eim_id_token, from_env.eim_id_token_type) == ("ENV0002", "KeyCode")

    flagged = ocpp_config_from_arguments(parse("--ocpp-config", str(file), "--ocpp-eim-id-token", "FLAG0003",
                                               "--ocpp-eim-id-token-type", "Local"), environ=environ)
    assert flagged is not None and (flagged.eim_id_token, flagged.eim_id_token_type) == ("FLAG0003", "Local")

    token_flag_only = ocpp_config_from_arguments(parse("--ocpp-config", str(file), "--ocpp-eim-id-token", "F4"),
                                                 environ=environ)
    assert token_flag_only is not None  # each setting on its own: the type still from the environment
    assert (token_flag_only.eim_id_token, token_flag_only.eim_id_token_type) == ("F4", "KeyCode")


def test_the_environment_names_alone_set_it() -> None:
    environ = {"CCS_SIM_OCPP_URL": "ws://127.0.0.1:9000/ocpp", "CCS_SIM_OCPP_STATION_ID": "CS1",
               "CCS_SIM_OCPP_EIM_ID_TOKEN": "04A1B2C3D4E5F6", "CCS_SIM_OCPP_EIM_ID_TOKEN_TYPE": "iso14443"}
    config = ocpp_config_from_arguments(parse(), environ=environ)
    assert config is not None and config.eim_id_token == "04A1B2C3D4E5F6"
    assert config.eim_id_token_type == "ISO14443"  # IdTokenEnumType in any case, stored as the standard spells it


@pytest.mark.parametrize(("settings", "message"), [
    ({"eim_id_token_type": "RFID"}, "'RFID' (--ocpp-eim-id-token-type): expected one of Central, eMAID, ISO14443, "
                                    "ISO15693, KeyCode, Local, MacAddress, NoAuthorization"),
    ({"eim_id_token": "X" * 21}, "(--ocpp-eim-id-token): 1..20 characters in OCPP 1.6"),
    ({"eim_id_token": "X" * 37, "version": "2.0.1"}, "(--ocpp-eim-id-token): 1..36 characters in OCPP 2.0.1"),
    ({"eim_id_token": "04A1"}, None),
    ({"eim_id_token": "X" * 20}, None),  # 1.6 CiString20Type: 20 fit
    ({"eim_id_token": "X" * 36, "version": "2.0.1"}, None),  # 2.0.1 idToken maxLength 36: 36 fit
])
def test_checked_with_one_line_errors(settings: dict[str, str], message: str | None) -> None:
    if message is None:
        assert build_ocpp_config({**BASE, **settings}, environ={}) is not None
        return
    with pytest.raises(OcppConfigError) as refusal:
        build_ocpp_config({**BASE, **settings}, environ={})
    assert message in str(refusal.value) and "\n" not in str(refusal.value)


def test_an_unknown_type_from_the_environment_is_refused() -> None:
    with pytest.raises(OcppConfigError, match="'RFID' \\(--ocpp-eim-id-token-type\\)"):
        build_ocpp_config(BASE, environ={"CCS_SIM_OCPP_EIM_ID_TOKEN_TYPE": "RFID"})


def test_ccs_sim_serve_and_evse_main_take_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["--ocpp-url", "ws://127.0.0.1:9000/ocpp", "--ocpp-station-id", "CS1", "--ocpp-version", "2.0.1",
             "--ocpp-eim-id-token", "04A1B2C3D4E5F6", "--ocpp-eim-id-token-type", "ISO15693"]
    served = ocpp_config_from_arguments(build_parser().parse_args(["serve", *flags]), environ={})
    launched = evse_main.parse_options(flags, environ={}).ocpp
    for config in (served, launched):
        assert isinstance(config, OcppConfig)
        assert (config.eim_id_token, config.eim_id_token_type) == ("04A1B2C3D4E5F6", "ISO15693")
    for show_help in (lambda: build_parser().parse_args(["serve", "--help"]),
                      lambda: evse_main.build_parser().parse_args(["--help"])):
        with pytest.raises(SystemExit):
            show_help()
        help_text = capsys.readouterr().out
        assert "--ocpp-eim-id-token TOKEN" in help_text and "--ocpp-eim-id-token-type TYPE" in help_text


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_the_configured_token_is_what_the_authoriser_presents(tmp_path: Path, version: str) -> None:
    controller = build_controller(ControllerSettings(_env_file=None, data_dir=tmp_path),  # type: ignore[call-arg]
                                  clock=ManualClock())
    own_authorizer = controller.authorizer
    config = OcppConfig(**BASE, version=version, eim_id_token="04A1B2C3D4E5F6",  # type: ignore[arg-type]
                        eim_id_token_type="ISO15693").check()
    client = OcppClient(controller, config)
    transactions = client.parts[0].transactions
    transactions.install_authorizer()  # what Transactions.start does once the database is open
    authorizer = controller.authorizer
    assert isinstance(authorizer, CsmsAuthorizer)
    assert (authorizer.eim_id_token, authorizer.eim_id_token_type) == ("04A1B2C3D4E5F6", "ISO15693")
    transactions.remove_authorizer()
    assert controller.authorizer is own_authorizer
