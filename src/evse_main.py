"""EVSE launcher: SLAC + ISO 15118 SECC + EVSE controller (+ the Live Controller API), one asyncio loop.

    python src/evse_main.py --evse-id EVSE-1 --iface eth0               # the spec's default (see below)
    evse-main --evse-id DE*ABC*E1234567*1 --iface eth0 --api-port 8000  # + the Live Controller API
    evse-main --controller hal --evse-id DE*ABC*E1234567*1 --iface eth0 # our HAL-backed controller
    EVSE_CONTROLLER=hal python src/evse_main.py ...                      # same (package installed)
    evse-main --controller hal --adapter acme --adapter-options acme.toml --adapter-option can_channel=can1 ...
                                                                        # a third-party HAL adapter and its options
    evse-main --no-slac --iface veth0 --secc-config secc.env            # a link without a PLC modem
                                                                        # (--api-port: 127.0.0.1 unless --api-host)

The simulated HAL: one ChargerController on the HAL adapter named by the controller settings
(``CCS_SIM_ADAPTER``, default ``sim``; real time only) is built whenever SLAC runs, ``--api-port`` is given or
``--controller hal`` is chosen. Its CP measurements feed SLAC (a plug-in, CP B, starts matching; the SECC
starts on the first match) and, with ``--api-port``, the Live Controller API serves that same controller on
this loop (CP is driven through ``POST /control/cp_state``; the API's records are its session records).

* ``--controller sim`` (the default, as the spec says): the SECC answers the EV from the ``iso15118``
  package's ``SimEVSEController`` (its own simulated voltages and currents); the HAL's output is not
  used by the SECC, so ``/status`` shows CP, PWM and ``/vehicle/slac`` but no ISO 15118 session phases.
* ``--controller hal``: the SECC, the API and the session records share the HAL controller: the EV's
  session drives the HAL's output and shows up in ``/status``, ``/vehicle/bms`` and the records.

Either way the SECC and SLAC tasks run under a supervisor (``evse_secc.supervision``): a task that dies or
hangs is noticed within a second, the HAL's output is shut down through the controller (HLC_FAILURE /
SLAC_FAILURE, in the session record), an ``evse-main: supervisor {...}`` line is printed and the task is
restarted. With ``--no-slac``, no ``--api-port`` and ``--controller sim`` no HAL is built: the SECC alone.

Exit status: 0 after SIGINT/SIGTERM, 1 with one ``evse-main: error: ...`` line when the SECC cannot
start or stops (missing interface, no IPv6 link-local address, no java, permission, bad settings).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from evse_secc.codecs import DEFAULT_EXI_CODEC, EXI_CODEC_ENV, EXI_CODEC_NAMES, is_exi_codec, resolve_exi_codec
from evse_secc.errors import LaunchError
from evse_secc.options import LaunchOptions
from evse_secc.protocols import parse_protocols

logger = logging.getLogger("evse_main")

CONTROLLER_ENV = "EVSE_CONTROLLER"
CERT_STORE_ENV = "PKI_PATH"
READY_LINE_PREFIX = "evse-main: SECC ready"  # printed (stdout) once SDP requests are being served
SLAC_READY_LINE_PREFIX = "evse-main: SLAC listening"  # printed once SLAC waits for a plug-in (SECC starts on a match)
API_DEFAULT_HOST = "127.0.0.1"  # --api-port without --api-host
API_STOP_TIMEOUT_S = 5.0
HELP_EPILOG = """\
default (python src/evse_main.py --evse-id EVSE-1 --iface eth0, the spec's command):
  --controller sim with SLAC on: SLAC on --iface is fed by the CP of the simulated HAL (CCS_SIM_ADAPTER,
  default sim); a plug-in (CP B, e.g. POST /control/cp_state with --api-port) starts matching and the first
  match starts the SECC, which answers from iso15118's SimEVSEController. --api-port serves the Live
  Controller API of that same HAL on this process's loop. --controller hal: the SECC drives the HAL's output.
  Stops on SIGINT/SIGTERM (exit 0); a start-up problem is one 'evse-main: error: ...' line (exit 1)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evse-main", description=__doc__.split("\n\n")[0], epilog=HELP_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--controller", choices=("sim", "hal"), default=None,
                        help=f"EVSE controller behind the SECC (default: ${CONTROLLER_ENV} or sim): sim = the "
                             f"iso15118 package's SimEVSEController, hal = ours on the simulated HAL's output")
    parser.add_argument("--evse-id", help="EVSE ID sent to the EV (ISO 15118-2 needs 7..37 characters)")
    parser.add_argument("--iface", help="network interface to the EV (default: NETWORK_INTERFACE of the "
                                        "SECC settings, else eth0)")
    parser.add_argument("--cert-store", type=Path, default=None,
                        help=f"ISO 15118 certificate store (default: ${CERT_STORE_ENV})")
    parser.add_argument("--secc-config", type=Path, help="SECC .env file (iso15118 keys; default $CWD/.env)")
    parser.add_argument("--slac-config", type=Path, help="PySLAC .env file")
    parser.add_argument("--no-slac", action="store_true",
                        help="no SLAC: serve SDP/V2G directly on a link without a PLC modem (e.g. a veth) "
                             "(default: SLAC on, fed by the simulated HAL's CP, with either controller)")
    parser.add_argument("--protocols", help="comma-separated, e.g. ISO_15118_20_DC,ISO_15118_2,DIN_SPEC_70121 "
                                            "(default: PROTOCOLS of the SECC settings, else all DC protocols)")
    parser.add_argument("--api-host", help=f"host of the Live Controller API (default {API_DEFAULT_HOST})")
    parser.add_argument("--api-port", type=int, help="serve the Live Controller API of the simulated HAL (the one "
                                                     "SLAC listens to) in this process on this port, with either "
                                                     "controller")
    parser.add_argument("--api-front-process", action=argparse.BooleanOptionalAction, default=None,
                        help="serve the API's address from a process of its own (readings from a copy at most one "
                             "control period old, commands forwarded): API load cannot delay the control loop or "
                             "the SECC (default with --api-port; --no-api-front-process: the API in this process)")
    parser.add_argument("--exi-codec", choices=EXI_CODEC_NAMES, default=None,
                        help=f"EXI codec: native (pure Python, no Java runtime needed) or java (the iso15118 "
                             f"package's, in a JVM; warmed up before the ready line) (default: "
                             f"${EXI_CODEC_ENV} or {DEFAULT_EXI_CODEC})")
    parser.add_argument("--message-log", type=Path,
                        help="append one JSON line per request/response exchange (SECC timing, response codes)")
    from evse_hal.registry import add_adapter_arguments

    add_adapter_arguments(parser, default_hint="$CCS_SIM_ADAPTER or sim")  # the HAL behind SLAC, the API and hal
    from ccs_sim.ocpp.config import add_ocpp_arguments

    add_ocpp_arguments(parser)  # the HAL controller as a charging station of a CSMS
    return parser


def _adapter_overrides(options: LaunchOptions) -> dict:
    """The controller settings the adapter flags set (each replaces its CCS_SIM_* variable)."""
    return {key: value for key, value in {"adapter": options.adapter, "adapter_options": options.adapter_options,
                                          "adapter_options_file": options.adapter_options_file}.items()
            if value is not None}


def parse_options(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> LaunchOptions:
    """Command line + environment -> LaunchOptions (argparse exits with status 2 on a usage error)."""
    if environ is None:
        environ = os.environ
    parser = build_parser()
    args = parser.parse_args(argv)
    controller = args.controller or environ.get(CONTROLLER_ENV) or "sim"
    if controller not in ("sim", "hal"):
        parser.error(f"{CONTROLLER_ENV}={controller!r}: expected sim or hal")
    exi_codec = resolve_exi_codec(args.exi_codec, environ)
    if not is_exi_codec(exi_codec):
        parser.error(f"{EXI_CODEC_ENV}={exi_codec!r}: expected {' or '.join(EXI_CODEC_NAMES)}")
    cert_store = args.cert_store or (Path(environ[CERT_STORE_ENV]) if environ.get(CERT_STORE_ENV) else None)
    try:
        protocols = parse_protocols(args.protocols) if args.protocols else None
    except LaunchError as exc:
        parser.error(f"--protocols: {exc}")
    from ccs_sim.ocpp.config import OcppConfigError, ocpp_config_from_arguments
    from evse_hal.registry import options_from_arguments

    try:
        ocpp = ocpp_config_from_arguments(args, environ)
    except OcppConfigError as exc:
        parser.error(str(exc))
    options = LaunchOptions(controller=controller, evse_id=args.evse_id, iface=args.iface, cert_store=cert_store,
                            secc_config=args.secc_config, slac_config=args.slac_config, slac=not args.no_slac,
                            protocols=protocols, api_host=args.api_host, api_port=args.api_port,
                            api_front_process=args.api_front_process, message_log=args.message_log,
                            exi_codec=exi_codec, adapter=args.adapter,
                            adapter_options_file=args.adapter_options, adapter_options=options_from_arguments(args),
                            ocpp=ocpp)
    if _adapter_overrides(options):  # adapter flags given: unknown adapter or option -> usage error (status 2)
        from ccs_sim.runtime import AdapterUnavailable, check_adapter_settings
        from ccs_sim.settings import ControllerSettings

        try:
            check_adapter_settings(ControllerSettings(**_adapter_overrides(options)))
        except AdapterUnavailable as exc:
            parser.error(str(exc))
        except ValueError as exc:  # another CCS_SIM_* setting is invalid (pydantic names it)
            parser.error(f"controller settings (CCS_SIM_*): {exc}")
    return options


def needs_charger(options: LaunchOptions) -> bool:
    """Whether the launcher builds the simulated HAL's ChargerController: the SECC's controller with
    ``--controller hal``, the CP source of SLAC and what the API serves, whichever the SECC's controller."""
    return options.controller == "hal" or options.slac or options.api_port is not None or options.ocpp is not None


def _refuse_unavailable_features(options: LaunchOptions) -> None:
    if options.api_host is not None and options.api_port is None:
        raise LaunchError("--api-host needs --api-port")
    if options.api_front_process is not None and options.api_port is None:
        raise LaunchError("--api-front-process needs --api-port")
    if importlib.util.find_spec("iso15118") is None:
        raise LaunchError("the iso15118 package is not installed: scripts/setup.sh hlc")


async def launch(options: LaunchOptions) -> None:
    """Check everything, then run the SECC until cancelled."""
    _refuse_unavailable_features(options)
    if options.slac_config is not None:
        from evse_secc.preflight import check_readable_file
        check_readable_file(options.slac_config, "SLAC settings file (--slac-config)")

    # iso15118 is imported here, not at the top, so that --help and the checks above work without it.
    from evse_secc import pki, preflight
    from evse_secc.controllers import build_controller
    from evse_secc.evse_id import check_evse_id
    from evse_secc.runner import run_secc
    from evse_secc.secc_config import build_secc_setup

    setup = build_secc_setup(options)
    logging.getLogger().setLevel(setup.config.log_level or "INFO")
    # The simulated HAL (CP for SLAC, the API's controller) with either SECC controller; the SECC's own
    # controller is iso15118's SimEVSEController (sim) or ours on this same HAL (hal).
    charger = _build_charger(options) if needs_charger(options) else None
    controller = build_controller(options.controller, options.evse_id, charger)
    if options.evse_id is not None:
        for warning in check_evse_id(options.evse_id, setup.protocols):
            print(f"evse-main: warning: {warning}", file=sys.stderr, flush=True)
    if options.exi_codec == "java":
        preflight.check_java()
    iface = setup.config.iface
    link_local = preflight.ipv6_link_local_address(iface)
    preflight.check_sdp_port(iface)
    pki.check_cert_store(setup.cert_store, setup.tls_enforced, setup.tls_1_3)
    codec, close_codec = _start_codec(options.exi_codec, options.message_log, setup.protocols)
    if charger is not None and options.controller == "hal":  # sessions of the HAL's records: hal only
        codec, close_codec = _log_messages_per_session(codec, close_codec, charger)
    setup.config.print_settings()

    def announce_ready() -> None:
        print(f"{READY_LINE_PREFIX} on {iface} ({link_local}), controller {options.controller}, protocols "
              f"{','.join(p.value for p in setup.protocols)}", flush=True)

    try:
        if charger is None:
            await run_secc(setup, controller, codec, on_ready=announce_ready)
        else:
            async with _running_charger(charger, options):
                from evse_secc.supervision import build_launcher_supervisor

                # The SECC (and SLAC) under the supervisor: a death or hang -> fault, record, restart.
                serve_secc = lambda on_ready: run_secc(setup, controller, codec, on_ready=on_ready)  # noqa: E731
                make_slac_link = _slac_link_factory(charger, iface, options) if options.slac else None
                await build_launcher_supervisor(charger, controller, serve_secc, announce_ready,
                                                make_slac_link).run()
    finally:
        close_codec()


def _slac_link_factory(charger, iface: str, options: LaunchOptions):
    """SLAC on ``iface`` fed by the HAL's CP states; the SECC starts on the first match (evse_secc.slac_link)."""
    from evse_hal.simulation import simulation_controls
    from evse_secc.slac_link import SlacLink, build_slac_service

    try:
        factory = build_slac_service(iface, options.evse_id or "EVSE", options.slac_config,
                                     simulation=simulation_controls(charger.hw) is not None)
    except (OSError, ValueError) as exc:
        raise LaunchError(f"SLAC settings (--slac-config): {exc}") from exc
    print(f"{SLAC_READY_LINE_PREFIX} on {iface}: plug in (CP B) to match (CP from HAL adapter "
          f"{charger.settings.adapter!r}; SECC controller {options.controller})", flush=True)
    return lambda start_secc: SlacLink(charger, factory, start_secc)


def _build_charger(options: LaunchOptions):
    """The one ChargerController (HAL adapter from --adapter, else CCS_SIM_ADAPTER, default sim; its options from
    --adapter-options/--adapter-option, else CCS_SIM_ADAPTER_OPTIONS[_FILE]), not started: SLAC's CP, the API's
    controller and, with --controller hal, the SECC's."""
    from ccs_sim.runtime import build_controller as build_charger_controller
    from ccs_sim.settings import ControllerSettings

    try:
        settings = ControllerSettings(**_adapter_overrides(options))
    except ValueError as exc:  # e.g. CCS_SIM_ADAPTER_OPTIONS not a JSON object
        raise LaunchError(f"controller settings (CCS_SIM_*): {exc}") from None
    if settings.speed != 1.0:
        raise LaunchError(f"CCS_SIM_SPEED={settings.speed}: an ISO 15118 session runs in real time (speed 1)")
    from evse_model.clock import RealClock

    try:
        # The real clock: an ISO 15118 peer lives in real time, and it has no speed to change (/sim/speed refuses).
        return build_charger_controller(settings, clock=RealClock())
    except (KeyError, ValueError, ImportError) as exc:
        raise LaunchError(f"HAL adapter {settings.adapter!r} (CCS_SIM_ADAPTER): {exc}") from exc


@contextlib.asynccontextmanager
async def _running_charger(charger, options: LaunchOptions):
    """Session records attached, the control loop running and, with --api-port, the Live Controller API
    served on this loop (127.0.0.1 unless --api-host); all stopped again on the way out."""
    from ccs_sim.observability.session_store import RecordsUnavailable
    from ccs_sim.runtime import attach_operations

    try:
        operations = await attach_operations(charger)
    except RecordsUnavailable as exc:  # in use by another process, damaged, read-only: one line, exit 1
        raise LaunchError(str(exc)) from None
    await charger.start()
    api = None
    try:
        from ccs_sim.runtime import start_ocpp

        await start_ocpp(charger, operations, options.ocpp)  # stopped by operations.close()
        if options.api_port is not None:
            api = await _start_api(charger, operations, options.api_host or API_DEFAULT_HOST, options.api_port,
                                   options.api_front_process is not False)
        yield
    finally:
        if api is not None:
            server, task, front, app = api
            from ccs_sim.dashboard import close_streams

            if front is not None:
                await front.stop()
            close_streams(app)  # open /stream responses end, or the API waits for their clients
            server.should_exit = True
            await asyncio.wait({task}, timeout=API_STOP_TIMEOUT_S)
        await charger.shutdown()
        await operations.close()


def _embedded_server_class():
    """``uvicorn.Server`` for a server task of the launcher's loop: the signals stay the launcher's."""
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):  # SIGINT/SIGTERM stop the whole launcher, not only the API
            yield

    return EmbeddedServer


async def _start_api(charger, operations, host: str, port: int, front_process: bool = False):
    """``ccs_sim.fastapi_app.create_app(charger)`` under uvicorn as a task of this loop (signals stay ours);
    with ``front_process``, on a private Unix socket behind a front process on ``host:port`` (``ccs_sim.front``)."""
    if front_process:
        return await _start_api_behind_front(charger, operations, host, port)
    import uvicorn

    from ccs_sim.fastapi_app import create_app
    from ccs_sim.http.listening_socket import bind_listening_socket

    try:
        listener = bind_listening_socket(host, port)
    except OSError as exc:
        raise LaunchError(f"--api-host/--api-port: cannot listen on {host}:{port}: {exc}") from exc
    config = uvicorn.Config(create_app(charger, operations=operations), log_level="warning", lifespan="on")
    server = _embedded_server_class()(config)
    task = asyncio.create_task(server.serve(sockets=[listener]), name="live-controller-api")
    while not server.started:
        if task.done():
            raise LaunchError(f"the Live Controller API did not start on {host}:{port}")
        await asyncio.sleep(0.01)
    print(f"evse-main: Live Controller API on http://{host}:{port}", flush=True)
    return server, task, None, config.app


async def _start_api_behind_front(charger, operations, host: str, port: int):
    import shutil

    import uvicorn

    from ccs_sim.fastapi_app import create_app
    from ccs_sim.front.process import FrontFailed, private_socket_dir, start_front_for
    from ccs_sim.http.trusted_front import FrontCheckedApp

    private_dir = private_socket_dir()
    socket_path = os.path.join(private_dir, "controller.sock")
    app = create_app(charger, operations=operations)
    server = _embedded_server_class()(uvicorn.Config(FrontCheckedApp(app), uds=socket_path, log_level="warning",
                                            lifespan="on"))
    task = asyncio.create_task(server.serve(), name="live-controller-api")
    settings = charger.settings.model_copy(update={"host": host, "port": port})
    try:
        front = await start_front_for(server, task, settings, socket_path, private_dir)
    except FrontFailed as exc:
        server.should_exit = True
        await asyncio.wait({task}, timeout=API_STOP_TIMEOUT_S)
        shutil.rmtree(private_dir, ignore_errors=True)
        raise LaunchError(f"--api-host/--api-port: {exc}") from None
    if front is None:
        shutil.rmtree(private_dir, ignore_errors=True)
        raise LaunchError("the Live Controller API did not start on its private socket")
    watcher = asyncio.create_task(front.watch(), name="api-front-watch")

    def front_watch_ended(done: asyncio.Task) -> None:
        if not done.cancelled() and done.exception() is not None:  # the charger and the SECC go on without the API
            logger.error("the Live Controller API is down: %s", done.exception())
        shutil.rmtree(private_dir, ignore_errors=True)

    watcher.add_done_callback(front_watch_ended)
    print(f"evse-main: Live Controller API on http://{host}:{port} (front process {front.pid})", flush=True)
    return server, task, front, app


def _log_messages_per_session(codec, close_codec, charger):
    """Every decoded V2G message into <data_dir>/v2g/<session id>.jsonl (the controller's session id)."""
    from evse_secc.session_message_log import SessionMessageLog, SessionMessageLogCodec

    def session_id() -> str | None:
        session = charger.session
        active = charger.session_active and session is not None and session.source == "hlc"
        return session.session_id if active else None

    try:
        message_log = SessionMessageLog(charger.settings.data_dir / "v2g", session_id, now=charger.clock.utcnow)
    except OSError as exc:  # e.g. a read-only data directory: one line, like the session records' refusal
        close_codec()
        raise LaunchError(f"V2G message log directory {exc.filename or charger.settings.data_dir / 'v2g'} cannot "
                          f"be created ({exc.strerror}): make the data directory writable by this user or choose "
                          f"another (CCS_SIM_DATA_DIR)") from None

    def close() -> None:
        message_log.close()
        close_codec()

    return SessionMessageLogCodec(codec, message_log), close


def _start_codec(name: str, message_log: Path | None, protocols):
    """The EXI codec ``name`` (native, or java in a warmed-up JVM child), timed into ``message_log`` when given."""
    from evse_secc.codecs import start_codec

    return start_codec(name, message_log, [protocol.name for protocol in protocols])


async def _run_until_signalled(options: LaunchOptions) -> None:
    task = asyncio.current_task()
    assert task is not None  # called from asyncio.run
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await launch(options)
    except asyncio.CancelledError:
        logger.info("evse-main: stopped by signal")


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``evse-main``)."""
    options = parse_options(argv)
    try:
        asyncio.run(_run_until_signalled(options))
    except LaunchError as exc:
        print(f"evse-main: error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
