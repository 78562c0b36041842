"""The SECC's CurrentDemandReq -> CurrentDemandRes path in-process, split by whose code runs (no network, no EV).

    .venv/bin/python bench/bench_secc_path.py                 # ISO 15118-2, 2000 requests
    .venv/bin/python bench/bench_secc_path.py --requests 500 --profile secc_path.pstats

Our ``HalEVSEController`` on a sim-adapter ``ChargerController`` (manual clock: one control tick between two
requests, not timed) is brought to the charge loop with the calls the package's SECC makes; then each request
runs the package's own ``CurrentDemand`` state (iso15118 0.31.2, ISO 15118-2) on a recorded-shape
CurrentDemandReq, exactly as ``V2GCommunicationSession.process_message`` does: EXI decode to the package's
pydantic model, the state (which calls our controller), EXI encode of the response; then the launcher's
per-session V2G message log of both messages and ``set_present_protocol_state`` (after the response).
Printed per part, per request: p50 / p99 / mean in µs, measured with ``time.perf_counter`` around each part:

- codec: the native EXI codec's decode + encode alone;
- package: ``EXI.from_exi``/``to_exi`` without the codec (JSON, pydantic) + the state without our calls;
- controller: our ``HalEVSEController`` methods the state awaits (by method, mean);
- message log: the launcher's per-session log (``SessionMessageLogCodec``) of the request and the response;
- after: ``set_present_protocol_state`` (runs after the response is sent).

The wall time of a request on a loaded machine includes other processes; the p50 shows the CPU cost.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import logging
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import evse_secc  # noqa: F401  (installs the pydantic.v1 hook before iso15118 is imported)

# isort: split
from iso15118.secc.states.iso15118_2_states import CurrentDemand
from iso15118.shared.exi_codec import EXI
from iso15118.shared.messages.enums import Namespace, Protocol
from iso15118.shared.settings import SettingKey, shared_settings

from ccs_sim.runtime import build_controller
from ccs_sim.settings import ControllerSettings
from evse_hal.iso15118_hal_controller import HalEVSEController
from evse_model.clock import ManualClock
from evse_secc.codecs import ISO2_NAMESPACE, WARMUP_MESSAGES
from evse_secc.session_message_log import SessionMessageLog, SessionMessageLogCodec

SESSION_ID = "0A0B0C0D0E0F1011"
CONTROL_PERIOD_S = 0.01


class TimedCodec:
    """The native codec, its time per request added up in ``spent``."""

    def __init__(self, inner: Any, spent: dict[str, float]) -> None:
        self._inner, self._spent = inner, spent

    def encode(self, message: str, namespace: str) -> bytes:
        started = time.perf_counter()
        try:
            return self._inner.encode(message, namespace)
        finally:
            self._spent["codec"] += time.perf_counter() - started

    def decode(self, stream: bytes, namespace: str) -> str:
        started = time.perf_counter()
        try:
            return self._inner.decode(stream, namespace)
        finally:
            self._spent["codec"] += time.perf_counter() - started

    def get_version(self) -> str:
        return self._inner.get_version()


class TimedMessageLog(SessionMessageLog):
    """The launcher's per-session message log, its time per request added up in ``spent["log"]``."""

    def __init__(self, directory: Path, spent: dict[str, float]) -> None:
        super().__init__(directory, lambda: "bench")
        self._spent = spent

    def append(self, direction: str, namespace: str, message_json: str) -> None:
        started = time.perf_counter()
        try:
            super().append(direction, namespace, message_json)
        finally:
            self._spent["log"] += time.perf_counter() - started


class Comm:
    """What the package's CurrentDemand state and our controller read of the SECC's communication session."""

    def __init__(self, controller: HalEVSEController) -> None:
        self.evse_controller = controller
        self.session_id = SESSION_ID
        self.selected_schedule = 1
        self.protocol = Protocol.ISO_15118_2
        self.stop_reason = None
        self.selected_energy_service = None
        self.control_mode = None
        self.evse_id = "DE*CCS*E0000001*1"
        self.failed_responses_isov2: dict = {}
        self.writer = None
        self.current_state: Any = None


def _state(name: str, comm: Comm) -> Any:
    state = type(name, (), {})()
    state.comm_session = comm
    return state


async def to_charge_loop(hal: HalEVSEController, comm: Comm, clock: ManualClock) -> None:
    """SupportedAppProtocol .. PowerDelivery(Start), as the package's SECC calls our controller."""
    async def advance(seconds: float) -> None:
        for _ in range(round(seconds / CONTROL_PERIOD_S)):
            await clock.advance(CONTROL_PERIOD_S)

    hal.set_selected_protocol(Protocol.ISO_15118_2)
    await hal.set_present_protocol_state(_state("SupportedAppProtocol", comm))
    ev = hal.ev_data_context
    limits = ev.rated_limits.dc_limits
    limits.max_voltage, limits.max_charge_current, limits.max_charge_power = 450.0, 200.0, 90000.0
    await hal.set_present_protocol_state(_state("ChargeParameterDiscovery", comm))
    await hal.start_cable_check()
    while await hal.is_contactor_closed() is None or await hal.get_cable_check_status() is None:
        await advance(0.05)
    for _ in range(6):
        await hal.send_charging_command(400.0, 1.0, is_precharge=True)
        await advance(0.15)
    await hal.set_hlc_charging(True)
    await advance(0.1)


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


async def run(requests: int, profile: Path | None) -> dict[str, dict[str, float]]:
    clock = ManualClock()
    charger = build_controller(ControllerSettings(_env_file=None), clock)
    await charger.start()
    spent: dict[str, float] = defaultdict(float)
    calls: dict[str, float] = defaultdict(float)
    from exi_codec import NativeEXICodec

    # As bench/evcc_rig.py runs the launcher: no JSON/EXI message dumps, logs at INFO (to a file here).
    shared_settings[SettingKey.MESSAGE_LOG_JSON] = False
    shared_settings[SettingKey.MESSAGE_LOG_EXI] = False
    with tempfile.TemporaryDirectory(prefix="secc_path-") as tmp:
        logging.basicConfig(level=logging.INFO, filename=str(Path(tmp) / "secc.log"), force=True,
                            format="%(levelname)s    %(asctime)s - %(name)s (%(lineno)d): %(message)s")
        message_log = TimedMessageLog(Path(tmp), spent)
        native = NativeEXICodec()
        native.grammars(ISO2_NAMESPACE)  # read from the jar before timing, as the launcher does at start
        logged_codec = SessionMessageLogCodec(TimedCodec(native, spent), message_log)
        exi = EXI()
        hal = HalEVSEController(charger, "DE*CCS*E0000001*1")  # type: ignore[arg-type]
        for name in [n for n in dir(HalEVSEController) if not n.startswith("_")]:
            method = getattr(hal, name)
            if asyncio.iscoroutinefunction(method):
                setattr(hal, name, _timed(method, name, calls))
        comm = Comm(hal)
        await to_charge_loop(hal, comm, clock)
        request_json = json.dumps(WARMUP_MESSAGES[ISO2_NAMESPACE][0]).replace("0A0B0C0D0E0F1011", SESSION_ID)
        request_exi = NativeEXICodec().encode(request_json, ISO2_NAMESPACE)
        rows: dict[str, list[float]] = defaultdict(list)
        profiler = cProfile.Profile() if profile else None
        for index in range(requests):
            await clock.advance(CONTROL_PERIOD_S)  # one control tick between two requests (not timed)
            spent.clear()
            calls.clear()
            exi.set_exi_codec(logged_codec)
            if profiler:
                profiler.enable()
            started = time.perf_counter()
            decoded = exi.from_exi(request_exi, Namespace.ISO_V2_MSG_DEF)
            state = CurrentDemand(comm)
            comm.current_state = state
            await state.process_message(decoded, request_exi)
            handled = time.perf_counter()
            await hal.set_present_protocol_state(state)
            ended = time.perf_counter()
            if profiler:
                profiler.disable()
            if state.next_v2gtp_msg is None:
                raise RuntimeError(f"request {index}: no response ({state.comm_session.stop_reason})")
            controller = sum(value for key, value in calls.items() if key != "set_present_protocol_state")
            # The log's own time: its codec wrapper's work minus the codec inside it.
            log = spent.get("log", 0.0)
            rows["whole request (to response)"].append(handled - started)
            rows["codec (native EXI)"].append(spent["codec"])
            rows["controller (ours)"].append(controller)
            rows["message log (ours)"].append(log)
            rows["package (pydantic, state)"].append(handled - started - spent["codec"] - controller - log)
            rows["after (ours, post-send)"].append(ended - handled)
            for key, value in calls.items():
                rows[f"  {key}"].append(value)
        message_log.close()
    if profiler and profile:
        profiler.dump_stats(str(profile))
    await charger.shutdown()
    return {name: {"p50_us": 1e6 * percentile(values, 0.5), "p99_us": 1e6 * percentile(values, 0.99),
                   "mean_us": 1e6 * statistics.fmean(values)} for name, values in rows.items()}


def _timed(method: Any, name: str, calls: dict[str, float]) -> Any:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            calls[name] += time.perf_counter() - started
    return timed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profile", type=Path, help="cProfile the timed part into this file")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.requests, args.profile))
    print(f"CurrentDemandReq -> Res in-process (ISO 15118-2, native codec), {args.requests} requests, µs")
    print(f"{'part':36} {'p50':>8} {'p99':>8} {'mean':>8}")
    for name, row in result.items():
        print(f"{name:36} {row['p50_us']:8.1f} {row['p99_us']:8.1f} {row['mean_us']:8.1f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
