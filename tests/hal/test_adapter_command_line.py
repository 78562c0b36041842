"""Adapters a builder can plug in: ``--adapter``, ``--adapter-options FILE`` (TOML) and repeated
``--adapter-option key=value`` on ``ccs-sim serve`` and ``evse-main``, handed to the adapter's factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import evse_main
from ccs_sim import cli
from ccs_sim.runtime import AdapterUnavailable, build_controller
from ccs_sim.settings import ControllerSettings
from evse_hal import registry
from evse_hal.adapters.sim import SimHardware
from evse_model.clock import ManualClock

RECORDER = "recorder"


class RecordingFactory:
    """A test adapter: records the clock and the options it was built with, and is a simulated charger."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, dict[str, Any]]] = []

    def __call__(self, clock: Any, serial_port: str, can_channel: str = "can0", baud: int = 9600,
                 verbose: bool = False, gain: float = 1.0) -> SimHardware:
        self.calls.append((clock, {"serial_port": serial_port, "can_channel": can_channel, "baud": baud,
                                   "verbose": verbose, "gain": gain}))
        return SimHardware(clock)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in ("CCS_SIM_ADAPTER", "CCS_SIM_ADAPTER_OPTIONS", "CCS_SIM_ADAPTER_OPTIONS_FILE", "CCS_SIM_SPEED"):
        monkeypatch.delenv(name, raising=False)
    factory = RecordingFactory()
    registry.register_adapter(RECORDER, factory)
    yield factory
    registry._registered.pop(RECORDER, None)


@pytest.fixture
def options_file(tmp_path: Path) -> Path:
    path = tmp_path / "acme.toml"
    path.write_text('# the bench charger\nserial_port = "/dev/ttyACM0"\ncan_channel = "can1"\nbaud = 115200\n')
    return path


# --- the value rule and the registry -----------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [
    ("true", True), ("False", False), ("42", 42), ("-7", -7), ("0.5", 0.5), ("1e3", 1000.0), ("+2.5E-1", 0.25),
    ('"42"', "42"), ('"true"', "true"), ("can0", "can0"), ("/dev/ttyACM0", "/dev/ttyACM0"), ("0x1F", "0x1F"),
    ("", ""), ("nan", "nan"),
])
def test_key_value_values_become_bool_int_float_or_text(text: str, value: object):
    parsed = registry.parse_option_value(text)
    assert parsed == value and type(parsed) is type(value)


@pytest.mark.parametrize(("assignment", "complaint"), [
    ("baud", "expected key=value"), ("=115200", "the key must be a name"), ("1baud=2", "the key must be a name"),
    ("serial-port=/dev/x", "the key must be a name"),
])
def test_a_malformed_assignment_is_refused_naming_it(assignment: str, complaint: str):
    with pytest.raises(registry.AdapterOptionError, match=complaint) as error:
        registry.parse_option_assignment(assignment)
    assert repr(assignment) in str(error.value)


def test_the_value_may_contain_an_equals_sign():
    assert registry.parse_option_assignment("filter=id=0x100") == ("filter", "id=0x100")


def test_options_file_is_toml_and_key_value_options_win(options_file: Path):
    merged = registry.merge_adapter_options(options_file, {"baud": 230400, "verbose": True})
    assert merged == {"serial_port": "/dev/ttyACM0", "can_channel": "can1", "baud": 230400, "verbose": True}


def test_an_unreadable_or_invalid_options_file_is_named(tmp_path: Path):
    with pytest.raises(registry.AdapterOptionError, match="missing.toml"):
        registry.load_options_file(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("serial_port = \n")
    with pytest.raises(registry.AdapterOptionError, match="broken.toml: not valid TOML"):
        registry.load_options_file(broken)


def test_an_option_the_factory_does_not_take_is_named_with_the_accepted_ones(recorder: RecordingFactory):
    with pytest.raises(registry.AdapterOptionError) as error:
        registry.check_adapter_options(RECORDER, {"serial_port": "/dev/x", "bitrate": 500_000})
    assert "'recorder' does not accept option(s) bitrate" in str(error.value)
    assert "accepts: baud, can_channel, gain, serial_port, verbose" in str(error.value)
    with pytest.raises(registry.AdapterOptionError, match="'recorder' needs option\\(s\\) serial_port"):
        registry.check_adapter_options(RECORDER, {})
    assert recorder.calls == []  # checked without building anything


def test_a_factory_passing_options_on_is_refused_when_called_naming_the_option():
    def factory(clock: Any, **options: Any) -> SimHardware:  # no adapter_option_names: checked at the call
        from sim_plant import PlantConfig

        return SimHardware(clock, PlantConfig(**options))

    registry.register_adapter("undeclared", factory)
    try:
        registry.check_adapter_options("undeclared", {"bogus": 1})  # cannot tell before the call
        with pytest.raises(registry.AdapterOptionError,
                           match="'undeclared' refused its options \\(bogus\\).*'bogus'"):
            registry.create_hardware("undeclared", ManualClock(), bogus=1)
    finally:
        registry._registered.pop("undeclared", None)


def test_the_sim_adapter_declares_the_plant_constants_as_its_options():
    with pytest.raises(registry.AdapterOptionError, match="'sim' does not accept option\\(s\\) bogus; it accepts: "
                                                          "ambient_temperature_C, "):
        registry.check_adapter_options("sim", {"bogus": 1})
    hardware = registry.create_hardware("sim", ManualClock(), max_current_A=200)
    assert hardware.supply.get_capabilities().max_current_A == 200


def test_a_factory_passing_options_on_can_declare_their_names():
    def factory(clock: Any, **options: Any) -> SimHardware:
        return SimHardware(clock)

    factory.adapter_option_names = ("port",)  # type: ignore[attr-defined]
    registry.register_adapter("declared", factory)
    try:
        registry.check_adapter_options("declared", {"port": "x"})
        with pytest.raises(registry.AdapterOptionError, match="does not accept option\\(s\\) speed"):
            registry.check_adapter_options("declared", {"speed": 1})
    finally:
        registry._registered.pop("declared", None)


# --- ccs-sim serve -------------------------------------------------------------------------------------

def serve_args(*argv: str):
    return cli.build_parser().parse_args(["serve", *argv])


def test_serve_hands_the_file_and_key_value_options_to_the_factory(recorder: RecordingFactory, options_file: Path):
    settings = cli.serve_settings(serve_args("--adapter", RECORDER, "--adapter-options", str(options_file),
                                             "--adapter-option", "baud=230400", "--adapter-option", "verbose=true",
                                             "--adapter-option", "gain=0.5"))
    assert settings.adapter == RECORDER and recorder.calls == []
    clock = ManualClock()
    controller = build_controller(settings, clock)
    assert recorder.calls == [(clock, {"serial_port": "/dev/ttyACM0", "can_channel": "can1", "baud": 230400,
                                       "verbose": True, "gain": 0.5})]
    assert controller.hw.name == "sim"


def test_serve_runs_the_server_with_those_settings(recorder: RecordingFactory, monkeypatch: pytest.MonkeyPatch):
    import uvicorn

    import ccs_sim.fastapi_app

    created: list[ControllerSettings] = []
    real_create_app = ccs_sim.fastapi_app.create_app
    monkeypatch.setattr(ccs_sim.fastapi_app, "create_app",
                        lambda settings: created.append(settings) or real_create_app(settings=settings))
    monkeypatch.setattr(uvicorn.Server, "run", lambda self: None)  # no socket: the parsing and the hand-over only
    monkeypatch.setattr(cli, "serve_with_front_process", lambda server_class, app, settings: 0)  # the default path
    assert cli.main(["serve", "--adapter", RECORDER, "--adapter-option", "serial_port=/dev/ttyUSB1"]) == 0
    build_controller(created[0], ManualClock())
    assert recorder.calls[0][1]["serial_port"] == "/dev/ttyUSB1"


def test_serve_reads_the_adapter_and_its_options_from_the_environment(recorder: RecordingFactory,
                                                                     options_file: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CCS_SIM_ADAPTER", RECORDER)
    monkeypatch.setenv("CCS_SIM_ADAPTER_OPTIONS_FILE", str(options_file))
    monkeypatch.setenv("CCS_SIM_ADAPTER_OPTIONS", '{"baud": 19200}')
    build_controller(cli.serve_settings(serve_args()), ManualClock())
    assert recorder.calls[-1][1] == {"serial_port": "/dev/ttyACM0", "can_channel": "can1", "baud": 19200,
                                     "verbose": False, "gain": 1.0}
    # a flag replaces its variable: the key=value options replace CCS_SIM_ADAPTER_OPTIONS, the file stays
    build_controller(cli.serve_settings(serve_args("--adapter-option", "gain=2")), ManualClock())
    assert recorder.calls[-1][1] == {"serial_port": "/dev/ttyACM0", "can_channel": "can1", "baud": 115200,
                                     "verbose": False, "gain": 2}


def test_serve_refuses_an_unknown_adapter_listing_the_registered_ones(recorder: RecordingFactory, capsys):
    assert cli.main(["serve", "--adapter", "acme"]) == 2
    assert capsys.readouterr().err.strip() == "ccs-sim: unknown HAL adapter 'acme'; known adapters: recorder, sim"


def test_serve_refuses_a_malformed_option_naming_it(recorder: RecordingFactory, capsys):
    with pytest.raises(SystemExit) as exit_status:
        cli.main(["serve", "--adapter", RECORDER, "--adapter-option", "serial_port"])
    assert exit_status.value.code == 2
    assert "argument --adapter-option: adapter option 'serial_port': expected key=value" in capsys.readouterr().err


def test_serve_refuses_an_option_the_factory_does_not_take_naming_it(recorder: RecordingFactory, capsys):
    assert cli.main(["serve", "--adapter", RECORDER, "--adapter-option", "serial_port=/dev/x",
                     "--adapter-option", "bitrate=500000"]) == 2
    assert "ccs-sim: adapter 'recorder' does not accept option(s) bitrate" in capsys.readouterr().err
    assert recorder.calls == []


def test_serve_refuses_a_bad_options_variable_and_speed_on_hardware(recorder: RecordingFactory, capsys,
                                                                   monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CCS_SIM_ADAPTER_OPTIONS", "[1, 2]")
    assert cli.main(["serve"]) == 2
    assert "adapter options must be a JSON object" in capsys.readouterr().err
    monkeypatch.delenv("CCS_SIM_ADAPTER_OPTIONS")
    assert cli.main(["serve", "--adapter", RECORDER, "--adapter-option", "serial_port=x", "--speed", "10"]) == 2
    assert "speed applies to the simulated adapter only" in capsys.readouterr().err


def test_build_controller_refuses_options_in_one_line(recorder: RecordingFactory):
    with pytest.raises(AdapterUnavailable, match="^adapter 'sim' does not accept option\\(s\\) bogus;"):
        build_controller(ControllerSettings(_env_file=None, adapter_options={"bogus": 1}), ManualClock())


# --- evse-main -----------------------------------------------------------------------------------------

def test_evse_main_hands_the_adapter_and_its_options_to_the_factory(recorder: RecordingFactory, options_file: Path):
    options = evse_main.parse_options(["--controller", "hal", "--adapter", RECORDER, "--adapter-options",
                                       str(options_file), "--adapter-option", "verbose=yes",
                                       "--adapter-option", "baud=57600"], environ={})
    assert (options.adapter, options.adapter_options_file) == (RECORDER, options_file)
    assert options.adapter_options == {"verbose": "yes", "baud": 57600}
    charger = evse_main._build_charger(options)  # not started: nothing runs
    clock, received = recorder.calls[-1]
    assert charger.clock is clock and charger.settings.adapter == RECORDER
    assert received == {"serial_port": "/dev/ttyACM0", "can_channel": "can1", "baud": 57600, "verbose": "yes",
                        "gain": 1.0}


def test_evse_main_without_adapter_flags_uses_the_environment(recorder: RecordingFactory,
                                                              monkeypatch: pytest.MonkeyPatch):
    options = evse_main.parse_options([], environ={})
    assert (options.adapter, options.adapter_options, options.adapter_options_file) == (None, None, None)
    monkeypatch.setenv("CCS_SIM_ADAPTER", RECORDER)
    monkeypatch.setenv("CCS_SIM_ADAPTER_OPTIONS", '{"serial_port": "/dev/ttyS3"}')
    evse_main._build_charger(options)
    assert recorder.calls[-1][1]["serial_port"] == "/dev/ttyS3"


@pytest.mark.parametrize(("argv", "complaint"), [
    (["--adapter", "acme"], "evse-main: error: unknown HAL adapter 'acme'; known adapters: recorder, sim"),
    (["--adapter", RECORDER, "--adapter-option", "serial_port"],
     "evse-main: error: argument --adapter-option: adapter option 'serial_port': expected key=value"),
    (["--adapter", RECORDER, "--adapter-option", "serial_port=x", "--adapter-option", "bitrate=1"],
     "evse-main: error: adapter 'recorder' does not accept option(s) bitrate"),
    (["--adapter", RECORDER], "evse-main: error: adapter 'recorder' needs option(s) serial_port"),
    (["--adapter-options", "missing.toml"], "evse-main: error: adapter options file missing.toml"),
])
def test_evse_main_refuses_bad_adapter_flags_with_status_2(recorder: RecordingFactory, capsys, argv, complaint):
    with pytest.raises(SystemExit) as exit_status:
        evse_main.parse_options(argv, environ={})
    assert exit_status.value.code == 2
    assert complaint in capsys.readouterr().err


def test_evse_main_reports_an_unknown_adapter_from_the_environment_as_a_launch_error(
        recorder: RecordingFactory, monkeypatch: pytest.MonkeyPatch):
    from evse_secc.errors import LaunchError

    monkeypatch.setenv("CCS_SIM_ADAPTER", "acme")
    with pytest.raises(LaunchError, match="unknown HAL adapter 'acme'; known adapters: recorder, sim"):
        evse_main._build_charger(evse_main.parse_options([], environ={}))
