"""``python -m evse_ev``: the simulated EV against our launcher or any SECC on an interface (root: raw sockets).

    # against evse-main with its Live Controller API in the EVSE namespace (CP through the simulated HAL):
    python -m evse_ev --iface ev0 --api 'http://[fe80::ff:fe00:5e01%ev0]:8000' --preset 800V \
                      --start-soc 10 --target-soc 80 --protocol ISO_15118_2
    # against another SECC (CP wired elsewhere): SLAC + EVCC only
    python -m evse_ev --iface eth1 --preset 400V --protocol DIN_SPEC_70121

One JSON object per line on stdout: {"event": "ready"}, "slac_matched", "progress" (SOC, V, A, kW), and one
"plugin" per plug-in with its outcome and timings. Exit status 0 when every plug-in ended as asked
(session_ok, or cable_pulled / silent when asked for), 2 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from dataclasses import replace

from evse_ev.api_client import ApiClient, ApiError
from evse_ev.battery import EV_PRESETS, EvBattery, preset_named
from evse_ev.cp_wire import ApiCpWire, NoCpWire
from evse_ev.evcc import (
    DC_PROTOCOLS,
    DEFAULT_CHARGE_LOOP_INTERVAL_S,
    evcc_config,
    load_package_settings,
    start_exi_codec,
)
from evse_ev.plugin import PluginOptions, SimulatedEV
from evse_secc.codecs import DEFAULT_EXI_CODEC, EXI_CODEC_ENV, EXI_CODEC_NAMES, is_exi_codec, resolve_exi_codec
from evse_slac.ev_peer import EvPeerOptions, EvSlacPeer
from evse_slac.frames import mac_to_str

EXPECTED_OUTCOMES = {"normal": "session_ok", "pull": "cable_pulled", "silent": "silent"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evse_ev", description=__doc__.split("\n\n")[0])
    parser.add_argument("--iface", required=True, help="the EV's end of the link")
    parser.add_argument("--api", help="Live Controller API base URL: CP B/C/A through POST /control/cp_state "
                                      "(without it nothing drives CP)")
    parser.add_argument("--api-token", help="bearer token of the API, if it requires one")
    parser.add_argument("--preset", default="800V", choices=sorted(EV_PRESETS), help="the car's battery")
    parser.add_argument("--start-soc", type=float, default=None, help="SOC at the first plug-in, %% "
                                                                      "(default: the preset's)")
    parser.add_argument("--target-soc", type=float, default=None, help="the EV stops charging here, %%")
    parser.add_argument("--capacity-scale", type=float, default=1.0,
                        help="scale the pack's capacity (same voltages and currents; e.g. 0.05 for a demo that "
                             "goes 10 -> 80 %% in about a minute of real charging)")
    parser.add_argument("--protocol", default="ISO_15118_2", choices=DC_PROTOCOLS)
    parser.add_argument("--exi-codec", default=None, choices=EXI_CODEC_NAMES,
                        help=f"EXI codec: native (pure Python) or java (the iso15118 package's, in a JVM; the "
                             f"reference, for differential runs) (default: ${EXI_CODEC_ENV} or {DEFAULT_EXI_CODEC})")
    parser.add_argument("--charge-loop-interval-s", type=float, default=DEFAULT_CHARGE_LOOP_INTERVAL_S,
                        help="shortest time between two charge-loop requests, wall s (default: %(default)s; "
                             "0: back to back)")
    parser.add_argument("--sessions", type=int, default=1, help="plug-ins one after another")
    parser.add_argument("--mode", default="normal", choices=sorted(EXPECTED_OUTCOMES),
                        help="normal; pull: pull the cable during the charge loop; silent: never answer SLAC")
    parser.add_argument("--max-charge-loops", type=int, help="end charging after this many charge loops")
    parser.add_argument("--pull-after-loops", type=int, default=3, help="with --mode pull")
    parser.add_argument("--silent-s", type=float, default=5.0, help="with --mode silent: plugged in this long")
    parser.add_argument("--no-slac", action="store_true", help="skip SLAC (a link without PLC, e.g. --no-slac SECC)")
    parser.add_argument("--time-scale", type=float, default=None,
                        help="simulated s per wall s for the battery (default: the API's clock speed, else 1)")
    parser.add_argument("--precharge-loops-limit", type=int, default=None,
                        help="also accept precharge after this many PreChargeRes (for an SECC whose output "
                             "voltage never follows, e.g. iso15118's SimEVSEController); default: only within 20 V")
    parser.add_argument("--session-timeout-s", type=float, default=600.0)
    parser.add_argument("--progress-interval-s", type=float, default=1.0)
    parser.add_argument("--log-level", default="WARNING")
    return parser


def _emit(event: dict) -> None:
    print(json.dumps(event), flush=True)


def _time_scale(api: ApiClient | None, asked: float | None) -> float:
    if asked is not None:
        return asked
    if api is None:
        return 1.0
    speed = api.get("/status").get("speed")
    return float(speed) if speed else 1.0


async def run(args: argparse.Namespace) -> int:
    api = ApiClient.from_url(args.api, args.api_token) if args.api else None
    preset = preset_named(args.preset)
    if args.capacity_scale != 1.0:
        preset = replace(preset, name=f"{preset.name}x{args.capacity_scale:g}",
                         capacity_Wh=preset.capacity_Wh * args.capacity_scale)
    battery = EvBattery(preset, args.start_soc if args.start_soc is not None else preset.default_start_soc_percent,
                        args.target_soc if args.target_soc is not None else preset.default_target_soc_percent,
                        time_scale=await asyncio.to_thread(_time_scale, api, args.time_scale))
    load_package_settings()
    exi_codec = resolve_exi_codec(args.exi_codec, os.environ)
    if not is_exi_codec(exi_codec):
        raise SystemExit(f"{EXI_CODEC_ENV}={exi_codec!r}: expected {' or '.join(EXI_CODEC_NAMES)}")
    codec, close_codec = start_exi_codec(exi_codec)
    options = PluginOptions(
        slac=not args.no_slac, silent_s=args.silent_s if args.mode == "silent" else None,
        max_charge_loops=args.max_charge_loops,
        pull_cable_after_loops=args.pull_after_loops if args.mode == "pull" else None,
        session_timeout_s=args.session_timeout_s, progress_interval_s=args.progress_interval_s)
    expected = EXPECTED_OUTCOMES[args.mode]
    outcomes = []
    try:
        async with EvSlacPeer(args.iface, EvPeerOptions()) as peer:
            ev = SimulatedEV(args.iface, ApiCpWire(api) if api else NoCpWire(), battery,
                             evcc_config(args.protocol), codec, _emit, peer, api, args.precharge_loops_limit)
            ev.controller.charge_loop_interval_s = args.charge_loop_interval_s
            _emit({"event": "ready", "iface": args.iface, "mac": mac_to_str(peer.mac), "protocol": args.protocol,
                   "time_scale": battery.time_scale, **battery.as_json()})
            for _ in range(args.sessions):
                result = await ev.plug_in(options)
                _emit(result)
                outcomes.append(result.get("outcome"))
    finally:
        close_codec()
    return 0 if outcomes and all(outcome == expected for outcome in outcomes) else 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr, force=True,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130
    except (ApiError, ValueError, OSError) as exc:
        print(f"evse_ev: error: {exc}", file=sys.stderr, flush=True)
        return 1
