"""The SECC's EXI codec, chosen by a setting: ``native`` (pure Python, no JRE) or ``java`` (the package's
EXIficient jar over py4j, one JVM child process).

    evse-main --exi-codec native ...   # default; HLC mode needs no Java runtime
    EXI_CODEC=java evse-main ...       # the package's own codec, warmed up before the ready line

Both are ``IEXICodec``s and encode byte-identically on the messages real sessions exchange (tests/exi).
``start_codec`` wraps the chosen one in ``TimedEXICodec`` when a message log is asked for, and, for
``java``, runs sample messages of each configured protocol through it first: a cold JVM interprets
its first messages (tens of ms each), which can make the first CurrentDemandRes miss the EV's
timeout on a busy machine; a few hundred round trips let the JIT compile the codec's hot paths.

``EXI_CODEC_TRACE=<file>`` (diagnostics) appends every encode/decode as one JSON line
``{"op", "namespace", "json", "exi"}``: the source of tests/exi's recorded-session vectors.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import IO, Literal

logger = logging.getLogger(__name__)

ExiCodecName = Literal["native", "java"]
EXI_CODEC_NAMES: tuple[ExiCodecName, ...] = ("native", "java")
DEFAULT_EXI_CODEC: ExiCodecName = "native"
EXI_CODEC_ENV = "EXI_CODEC"
EXI_CODEC_TRACE_ENV = "EXI_CODEC_TRACE"

#: Java warm-up: round trips (encode + decode) of each sample message. Measured on a 2-core box under
#: load (DIN CurrentDemandReq decode + CurrentDemandRes encode): ~600 ms for the first round trip,
#: ~130 ms median over the next 10, ~60 ms by the 50th-100th, ~38 ms from the 100th on.
JAVA_WARMUP_ROUND_TRIPS = 300
#: Upper bound on the warm-up (a slow machine still starts promptly; the cold first calls are the
#: ones that exceed the EV's timeouts, and they are over within the first second or two).
JAVA_WARMUP_BUDGET_S = 5.0

SAP_NAMESPACE = "urn:iso:15118:2:2010:AppProtocol"
DIN_NAMESPACE = "urn:din:70121:2012:MsgDef"
ISO2_NAMESPACE = "urn:iso:15118:2:2013:MsgDef"
ISO20_DC_NAMESPACE = "urn:iso:std:iso:15118:-20:DC"

_SESSION_ID = "0A0B0C0D0E0F1011"


def _pv(value: int, unit: str, multiplier: int = 0) -> dict:
    return {"Value": value, "Multiplier": multiplier, "Unit": unit}


def _rv(value: int, exponent: int = 0) -> dict:
    return {"Value": value, "Exponent": exponent}


_DIN_EV_STATUS = {"EVReady": True, "EVCabinConditioning": False, "EVRESSConditioning": False,
                  "EVErrorCode": "NO_ERROR", "EVRESSSOC": 55}
_ISO2_EV_STATUS = {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": 55}
_EVSE_STATUS = {"EVSEIsolationStatus": "Valid", "EVSEStatusCode": "EVSE_Ready", "NotificationMaxDelay": 0,
                "EVSENotification": "None"}
_ISO20_HEADER = {"SessionID": _SESSION_ID, "TimeStamp": 1700000000}

def _current_demand_pair(ev_status: dict, res_extra: dict | None = None) -> tuple[dict, dict]:
    """CurrentDemandReq/Res as DIN SPEC 70121 and ISO 15118-2 send them (same shape; -2 adds two fields)."""
    request = {"V2G_Message": {"Header": {"SessionID": _SESSION_ID}, "Body": {"CurrentDemandReq": {
        "DC_EVStatus": ev_status, "EVTargetCurrent": _pv(100, "A"), "EVMaximumVoltageLimit": _pv(450, "V"),
        "EVMaximumCurrentLimit": _pv(200, "A"), "EVMaximumPowerLimit": _pv(900, "W", 2),
        "BulkChargingComplete": False, "ChargingComplete": False, "RemainingTimeToFullSoC": _pv(600, "s"),
        "RemainingTimeToBulkSoC": _pv(300, "s"), "EVTargetVoltage": _pv(400, "V")}}}}
    response = {"V2G_Message": {"Header": {"SessionID": _SESSION_ID}, "Body": {"CurrentDemandRes": {
        "ResponseCode": "OK", "DC_EVSEStatus": _EVSE_STATUS, "EVSEPresentVoltage": _pv(400, "V"),
        "EVSEPresentCurrent": _pv(100, "A"), "EVSECurrentLimitAchieved": False,
        "EVSEVoltageLimitAchieved": False, "EVSEPowerLimitAchieved": False,
        "EVSEMaximumVoltageLimit": _pv(500, "V"), "EVSEMaximumCurrentLimit": _pv(200, "A"),
        "EVSEMaximumPowerLimit": _pv(1500, "W", 2), **(res_extra or {})}}}}
    return request, response


#: Warm-up messages per protocol namespace: the charge loop the 25 ms limit is about, as the SECC and
#: the package's EVCC send it (shapes from recorded sessions; tests/exi checks Java accepts them).
WARMUP_MESSAGES: dict[str, tuple[dict, ...]] = {
    SAP_NAMESPACE: (
        {"supportedAppProtocolReq": {"AppProtocol": [{"ProtocolNamespace": DIN_NAMESPACE, "VersionNumberMajor": 2,
                                                      "VersionNumberMinor": 0, "SchemaID": 1, "Priority": 1}]}},
        {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}},
    ),
    DIN_NAMESPACE: _current_demand_pair(_DIN_EV_STATUS),
    ISO2_NAMESPACE: _current_demand_pair(_ISO2_EV_STATUS,
                                         {"EVSEID": "DE*CCS*E0000001*1", "SAScheduleTupleID": 1}),
    ISO20_DC_NAMESPACE: (
        {"DC_ChargeLoopReq": {"Header": _ISO20_HEADER, "MeterInfoRequested": False,
                              "DisplayParameters": {"PresentSOC": 55}, "EVPresentVoltage": _rv(400),
                              "Scheduled_DC_CLReqControlMode": {"EVTargetCurrent": _rv(100),
                                                                "EVTargetVoltage": _rv(400)}}},
        {"DC_ChargeLoopRes": {"Header": _ISO20_HEADER, "ResponseCode": "OK", "EVSEPresentCurrent": _rv(100),
                              "EVSEPresentVoltage": _rv(400), "EVSEPowerLimitAchieved": False,
                              "EVSECurrentLimitAchieved": False, "EVSEVoltageLimitAchieved": False,
                              "Scheduled_DC_CLResControlMode": {}}},
    ),
}

#: iso15118 Protocol name -> the namespaces its session uses (every session starts with the SAP handshake).
PROTOCOL_NAMESPACES: dict[str, tuple[str, ...]] = {
    "DIN_SPEC_70121": (SAP_NAMESPACE, DIN_NAMESPACE),
    "ISO_15118_2": (SAP_NAMESPACE, ISO2_NAMESPACE),
    "ISO_15118_20_DC": (SAP_NAMESPACE, ISO20_DC_NAMESPACE),
}


def resolve_exi_codec(choice: str | None, environ: Mapping[str, str]) -> str:
    """Command line wins, then ``$EXI_CODEC``, then the default (not validated here: see ``is_exi_codec``)."""
    return choice or environ.get(EXI_CODEC_ENV) or DEFAULT_EXI_CODEC


def is_exi_codec(name: str) -> bool:
    return name in EXI_CODEC_NAMES


def start_codec(name: str, message_log: Path | None, protocols: Iterable[str] = (),
                environ: Mapping[str, str] | None = None):
    """``(codec, close)``: the named codec, ready (Java warmed for ``protocols``), timed into ``message_log``."""
    from evse_secc.errors import LaunchError

    environ = os.environ if environ is None else environ
    if name == "native":
        inner, close_inner = _start_native()
    elif name == "java":
        inner, close_inner = _start_java()
        warm_up(inner, protocols)
    else:
        raise LaunchError(f"unknown EXI codec {name!r}: expected one of {', '.join(EXI_CODEC_NAMES)}")
    codec = inner
    closers: list[Callable[[], None]] = [close_inner]
    if environ.get(EXI_CODEC_TRACE_ENV):
        trace = CodecTrace(Path(environ[EXI_CODEC_TRACE_ENV]))
        codec = TracingEXICodec(codec, trace)
        closers.insert(0, trace.close)
    if message_log is not None:
        from evse_secc.exchange_log import JsonLinesExchangeLog
        from evse_secc.message_timing import TimedEXICodec

        exchange_log = JsonLinesExchangeLog(message_log)
        timed = TimedEXICodec(codec, exchange_log)
        codec = timed

        def close_exchange_log() -> None:
            timed.flush()  # the exchanges not settled yet (the loop's next turn may not come)
            exchange_log.close()

        closers.insert(0, close_exchange_log)

    def close() -> None:
        for closer in closers:
            closer()

    return codec, close


def _start_native():
    from exi_codec import NativeEXICodec

    codec = NativeEXICodec()
    for namespace in WARMUP_MESSAGES:  # read the grammars from the jar now, not on the EV's first message
        codec.grammars(namespace)
    return codec, lambda: None


def _start_java():
    from iso15118.shared.exificient_exi_codec import ExificientEXICodec
    from py4j.protocol import Py4JError

    from evse_secc import preflight
    from evse_secc.errors import LaunchError

    preflight.check_java()
    try:
        java_codec = ExificientEXICodec()
    except (Py4JError, OSError) as exc:
        raise LaunchError(f"the Java EXI codec did not start: {exc}") from exc
    return java_codec, java_codec.gateway.shutdown


def warm_up(codec, protocols: Iterable[str], round_trips: int = JAVA_WARMUP_ROUND_TRIPS,
            budget_s: float = JAVA_WARMUP_BUDGET_S, clock: Callable[[], float] = time.monotonic) -> int:
    """Encode and decode each protocol's sample messages ``round_trips`` times (within ``budget_s``);
    returns the number of round trips done."""
    namespaces: list[str] = []
    for protocol in protocols:
        for namespace in PROTOCOL_NAMESPACES.get(str(getattr(protocol, "name", protocol)), ()):
            if namespace not in namespaces:
                namespaces.append(namespace)
    samples = [(json.dumps(message), namespace) for namespace in namespaces for message in WARMUP_MESSAGES[namespace]]
    if not samples:
        return 0
    deadline = clock() + budget_s
    done = 0
    for _ in range(round_trips):
        for message, namespace in samples:
            codec.decode(codec.encode(message, namespace), namespace)
            done += 1
        if clock() > deadline:
            logger.warning("EXI codec warm-up stopped after %d round trips (budget %.0f s)", done, budget_s)
            break
    return done


class CodecTrace:
    """JSON lines of every encode/decode: ``{"op": "encode"|"decode", "namespace", "json", "exi"}``."""

    def __init__(self, path: Path) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def __call__(self, op: str, namespace: str, message: str, exi: bytes) -> None:
        self._file.write(json.dumps({"op": op, "namespace": namespace, "json": json.loads(message),
                                     "exi": bytes(exi).hex()}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TracingEXICodec:
    """An ``IEXICodec`` that hands every call's JSON and EXI to ``trace`` (diagnostics only)."""

    def __init__(self, inner, trace: Callable[[str, str, str, bytes], None]) -> None:
        self._inner = inner
        self._trace = trace

    def encode(self, message: str, namespace: str) -> bytes:
        exi = self._inner.encode(message, namespace)
        self._trace("encode", namespace, message, exi)
        return exi

    def decode(self, stream: bytes, namespace: str) -> str:
        message = self._inner.decode(stream, namespace)
        self._trace("decode", namespace, message, stream)
        return message

    def get_version(self) -> str:
        return self._inner.get_version()
