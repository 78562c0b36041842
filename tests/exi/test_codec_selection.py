"""The launcher's EXI codec setting (--exi-codec / EXI_CODEC), start-up without a JRE for native, the
Java warm-up (fake codec, injected clock) and its sample messages (checked against both codecs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import evse_main
from evse_secc import codecs
from evse_secc.codecs import WARMUP_MESSAGES, start_codec, warm_up


def test_native_is_the_default_and_the_setting_is_read_from_cli_then_env():
    assert codecs.DEFAULT_EXI_CODEC == "native"
    assert evse_main.parse_options([], environ={}).exi_codec == "native"
    assert evse_main.parse_options([], environ={"EXI_CODEC": "java"}).exi_codec == "java"
    assert evse_main.parse_options(["--exi-codec", "native"], environ={"EXI_CODEC": "java"}).exi_codec == "native"
    with pytest.raises(SystemExit):
        evse_main.parse_options([], environ={"EXI_CODEC": "jaxb"})
    with pytest.raises(SystemExit):
        evse_main.parse_options(["--exi-codec", "jaxb"], environ={})


def test_help_names_the_choices_and_the_default(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        evse_main.parse_options(["--help"], environ={})
    out = " ".join(capsys.readouterr().out.split())
    assert "--exi-codec {native,java}" in out and "$EXI_CODEC or native" in out


def test_native_codec_starts_without_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", "/nonexistent")
    codec, close = start_codec("native", tmp_path / "exchanges.jsonl", ["DIN_SPEC_70121"], environ={})
    try:
        message = json.dumps(WARMUP_MESSAGES[codecs.DIN_NAMESPACE][1])
        assert codec.decode(codec.encode(message, codecs.DIN_NAMESPACE), codecs.DIN_NAMESPACE)
    finally:
        close()


def test_trace_records_every_call(tmp_path: Path):
    trace = tmp_path / "trace.jsonl"
    codec, close = start_codec("native", None, [], environ={"EXI_CODEC_TRACE": str(trace)})
    message = WARMUP_MESSAGES[codecs.SAP_NAMESPACE][1]
    exi = codec.encode(json.dumps(message), codecs.SAP_NAMESPACE)
    codec.decode(exi, codecs.SAP_NAMESPACE)
    close()
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [(r["op"], r["json"], r["exi"]) for r in records] == [("encode", message, exi.hex()),
                                                                 ("decode", message, exi.hex())]


class _CountingCodec:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def encode(self, message: str, namespace: str) -> bytes:
        self.calls.append(("encode", namespace))
        return b"exi"

    def decode(self, stream: bytes, namespace: str) -> str:
        self.calls.append(("decode", namespace))
        return "{}"


def test_warm_up_runs_each_protocols_samples_round_trips_times():
    codec = _CountingCodec()
    done = warm_up(codec, ["DIN_SPEC_70121", "ISO_15118_20_DC"], round_trips=3, budget_s=10, clock=lambda: 0.0)
    namespaces = {ns for _, ns in codec.calls}
    assert namespaces == {codecs.SAP_NAMESPACE, codecs.DIN_NAMESPACE, codecs.ISO20_DC_NAMESPACE}
    assert done == 3 * 6 and len(codec.calls) == 2 * done


def test_warm_up_stops_at_its_time_budget():
    ticks = iter(range(100))
    codec = _CountingCodec()
    done = warm_up(codec, ["ISO_15118_2"], round_trips=50, budget_s=2.5, clock=lambda: float(next(ticks)))
    assert done == 3 * 4  # deadline 2.5 set at tick 0; checked after each pass at ticks 1, 2, 3


def test_unknown_codec_is_a_launch_error():
    from evse_secc.errors import LaunchError

    with pytest.raises(LaunchError, match="unknown EXI codec"):
        start_codec("jaxb", None, [], environ={})


@pytest.mark.parametrize("namespace, message", [(ns, m) for ns, ms in WARMUP_MESSAGES.items() for m in ms],
                         ids=[f"{ns.rsplit(':', 1)[-1]}-{i}" for ns, ms in WARMUP_MESSAGES.items()
                              for i in range(len(ms))])
def test_warm_up_samples_are_valid_messages(native_codec, namespace, message):
    exi = native_codec.encode(json.dumps(message), namespace)
    assert json.loads(native_codec.decode(exi, namespace)) == message


@pytest.mark.hlc
def test_java_accepts_the_warm_up_samples_byte_identically(native_codec, java_codec):
    for namespace, messages in WARMUP_MESSAGES.items():
        for message in messages:
            assert java_codec.encode(json.dumps(message), namespace) == native_codec.encode(json.dumps(message),
                                                                                            namespace)


@pytest.mark.parametrize("codec, message", [("native", "'nosuch0' not found"), ("java", "no 'java' on PATH")])
def test_launcher_needs_java_only_for_the_java_codec(codec, message, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]):
    import os

    saved = dict(os.environ)  # iso15118's load_envs exports the .env's keys into os.environ
    monkeypatch.setenv("PATH", "/nonexistent")
    env_file = tmp_path / "secc.env"
    env_file.write_text("")
    try:
        with pytest.raises(SystemExit):
            evse_main.main(["--no-slac", "--iface", "nosuch0", "--secc-config", str(env_file), "--exi-codec", codec])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    error = capsys.readouterr().err
    assert error.startswith("evse-main: error: ") and message in error
