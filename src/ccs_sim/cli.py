"""``ccs-sim``: command-line entry points (serve the API; run a session faster than real time)."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from typing import Any

from ccs_sim.settings import ControllerSettings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ServeRefused(Exception):
    """``ccs-sim serve`` cannot start: the message is printed as one line and the exit status is 2."""


def serve_settings(args: argparse.Namespace) -> ControllerSettings:
    """``ccs-sim serve``'s flags over the environment (``CCS_SIM_*``), the adapter and its options checked
    against the adapter's factory (nothing built yet). ``ServeRefused`` (one line) for a bad setting, an
    unknown adapter (listing the known ones), an unreadable options file or an option the factory does not take."""
    from ccs_sim.runtime import AdapterUnavailable, check_adapter_settings
    from evse_hal.registry import options_from_arguments

    overrides = {key: value for key, value in {
        "host": args.host, "port": args.port, "speed": args.speed, "adapter": args.adapter,
        "adapter_options_file": args.adapter_options, "adapter_options": options_from_arguments(args),
        "api_token": args.api_token, "data_dir": args.data_dir, "log_format": args.log_format,
        "allowed_hosts": args.allowed_hosts, "rate_limit_per_s": args.rate_limit,
        "rate_limit_burst": args.rate_limit_burst, "max_streams_per_client": args.max_streams_per_client,
        "api_front_process": args.front_process,
    }.items() if value is not None}
    try:
        settings = ControllerSettings(**overrides)
    except Exception as error:  # pydantic's message names the bad setting
        raise ServeRefused(f"invalid setting: {error}") from None
    try:
        check_adapter_settings(settings)
    except AdapterUnavailable as error:
        raise ServeRefused(str(error)) from None
    if settings.adapter != "sim" and settings.speed != 1.0:
        raise ServeRefused(f"--speed {settings.speed}: speed applies to the simulated adapter only; adapter "
                           f"{settings.adapter!r} runs in real time")
    return settings


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ccs_sim.fastapi_app import create_app
    from ccs_sim.ocpp.config import OcppConfigError, ocpp_config_from_arguments

    try:
        settings = serve_settings(args)
        ocpp_config = ocpp_config_from_arguments(args)
    except (ServeRefused, OcppConfigError) as refusal:
        print(f"ccs-sim: {refusal}", file=sys.stderr)
        return 2
    if not _is_loopback(settings.host) and not settings.api_token and not (args.allow_insecure
                                                                          or settings.allow_insecure_bind):
        print(f"ccs-sim: refusing to listen on {settings.host} without an API token: anyone on the network could "
              "switch the charger. Set CCS_SIM_API_TOKEN (or --api-token), or pass --allow-insecure.", file=sys.stderr)
        return 2
    from ccs_sim.observability.logs import configure_logging

    configure_logging(settings.log_format)
    print(f"ccs-sim: Live Controller on http://{settings.host}:{settings.port}/ "
          f"(adapter {settings.adapter}, speed {settings.speed}x)", flush=True)
    if ocpp_config is not None:
        print(f"ccs-sim: OCPP {ocpp_config.version} to {ocpp_config.connect_url} "
              f"(security profile {ocpp_config.security_profile})", flush=True)
    from ccs_sim.dashboard import close_streams

    app = (create_app(settings=settings) if ocpp_config is None
           else create_app(settings=settings, ocpp_config=ocpp_config))

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            close_streams(app)  # open dashboards' /stream responses end, so shutdown does not wait on them
            super().handle_exit(sig, frame)  # type: ignore[arg-type]
            if settings.api_front_process:
                self._captured_signals.clear()  # the front is stopped first; then this process ends normally

    if settings.api_front_process:
        return serve_with_front_process(_Server, app, settings)
    _Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                           timeout_graceful_shutdown=5)).run()
    return 0


def serve_with_front_process(server_class: type[Any], app: Any, settings: ControllerSettings) -> int:
    """The controller's app on a private socket, the public address served by a front process of its own."""
    import asyncio

    import uvicorn

    from ccs_sim.front.process import private_socket_dir, serve_behind_front
    from ccs_sim.http.trusted_front import FrontCheckedApp

    private_dir = private_socket_dir()
    socket_path = os.path.join(private_dir, "controller.sock")
    server = server_class(uvicorn.Config(FrontCheckedApp(app), uds=socket_path, log_level="warning",
                                         timeout_graceful_shutdown=5))

    def ready(front: Any) -> None:
        print(f"ccs-sim: API front process {front.pid} on http://{settings.host}:{settings.port}/", flush=True)

    return asyncio.run(serve_behind_front(server, settings, socket_path, private_dir, on_ready=ready))


def simulate(args: argparse.Namespace) -> int:
    """One session on a manual clock, as fast as it computes; prints the summary as JSON."""
    import asyncio
    import json
    import time

    from ccs_sim.batch import simulate_session
    from evse_model.session import SessionParams

    params = SessionParams(target_voltage_V=args.target_voltage, initial_current_A=args.current,
                           duration_s=args.duration, ev_preset=args.preset, start_soc_percent=args.start_soc,
                           target_soc_percent=args.target_soc)
    if args.batch > 1:
        from ccs_sim.batch import simulate_sessions

        started_s = time.perf_counter()
        runs = simulate_sessions([params] * args.batch)
        wall_s = time.perf_counter() - started_s
        print(json.dumps([run.summary.to_dict() for run in runs], indent=2))
        simulated_s = sum(run.simulated_s for run in runs)
        print(f"ccs-sim: {args.batch} sessions, {simulated_s:.0f} simulated s in {wall_s:.2f} wall s "
              f"({simulated_s / wall_s:.0f}x real time)", file=sys.stderr)
        return 0 if all(run.summary.ended_phase == "COMPLETE" for run in runs) else 1
    result = asyncio.run(simulate_session(params))
    print(json.dumps(result.summary.to_dict(), indent=2))
    print(f"ccs-sim: {result.simulated_s:.0f} simulated s in {result.wall_s:.2f} wall s "
          f"({result.speedup:.0f}x real time)", file=sys.stderr)
    return 0 if result.summary.ended_phase == "COMPLETE" else 1


def build_parser() -> argparse.ArgumentParser:
    from evse_hal.registry import add_adapter_arguments

    parser = argparse.ArgumentParser(prog="ccs-sim", description="CCS DC charger controller and simulator")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve the Live Controller API (default 127.0.0.1:8000)")
    serve_parser.add_argument("--host")
    serve_parser.add_argument("--port", type=int)
    serve_parser.add_argument("--speed", type=float, help="simulated seconds per wall second (sim adapter)")
    add_adapter_arguments(serve_parser)
    serve_parser.add_argument("--api-token", help="token required by state-changing endpoints")
    serve_parser.add_argument("--data-dir", help="directory for the session database")
    serve_parser.add_argument("--log-format", choices=("text", "json"), help="log lines as text (default) or JSON")
    serve_parser.add_argument("--allowed-host", action="append", dest="allowed_hosts", metavar="NAME",
                              help="a name clients use in Host, besides localhost and the bound address (repeatable; "
                                   "others are refused against DNS rebinding)")
    serve_parser.add_argument("--rate-limit", type=float, metavar="PER_S",
                              help="requests per second each client address may sustain, 429 beyond "
                                   "(default 500; 0: no rate limit and no stream cap)")
    serve_parser.add_argument("--rate-limit-burst", type=int, metavar="N",
                              help="requests a client may send at once before the rate applies (default 2000)")
    serve_parser.add_argument("--max-streams-per-client", type=int, metavar="N",
                              help="open GET /stream connections per client address (default 16; 0: no cap)")
    serve_parser.add_argument("--front-process", action=argparse.BooleanOptionalAction, default=None,
                              help="serve HTTP from a process of its own (readings from a copy at most one control "
                                   "period old, commands forwarded): API load cannot delay the control loop "
                                   "(default; --no-front-process: the API in the controller's process; "
                                   "CCS_SIM_API_FRONT_PROCESS)")
    serve_parser.add_argument("--allow-insecure", action="store_true",
                              help="allow a non-loopback address without an API token")
    from ccs_sim.ocpp.config import add_ocpp_arguments

    add_ocpp_arguments(serve_parser)
    serve_parser.set_defaults(handler=serve)
    simulate_parser = commands.add_parser("simulate", help="run one simulated session faster than real time")
    simulate_parser.add_argument("--preset", choices=("follow", "ev400", "ev800", "ev_small"), default="follow")
    simulate_parser.add_argument("--start-soc", type=float, help="SOC at plug-in, %%")
    simulate_parser.add_argument("--target-soc", type=float, help="SOC at which the car stops, %%")
    simulate_parser.add_argument("--target-voltage", type=float, default=400.0)
    simulate_parser.add_argument("--current", type=float, default=50.0, help="initial current / request cap, A")
    simulate_parser.add_argument("--duration", type=float, default=10.0, help="charging duration limit, s")
    simulate_parser.add_argument("--batch", type=int, default=1, metavar="N",
                                 help="run N copies of the session in parallel on the cores available")
    simulate_parser.set_defaults(handler=simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    raise SystemExit(main())
