"""The front process: ``python -m ccs_sim.front --controller-socket PATH --settings-file FILE`` (started by
``ccs-sim serve --front-process``; see ``ccs_sim.front.process``). Serves ``settings.host:settings.port``, prints
``READY_LINE`` once it listens, and exits when its parent process does."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

import uvicorn

from ccs_sim.front.app import create_front_app
from ccs_sim.front.process import LISTEN_COMMAND, PARENT_CHECK_S, READY_LINE, lower_to_normal_priority
from ccs_sim.front.proxy import controller_client
from ccs_sim.http.listening_socket import bind_listening_socket
from ccs_sim.settings import ControllerSettings


async def run(socket_path: str, settings: ControllerSettings) -> None:
    client = controller_client(socket_path)
    app, front = create_front_app(settings, client)

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: object) -> None:
            front.fan_out.close()  # open streams end, so the shutdown does not wait on them
            super().handle_exit(sig, frame)  # type: ignore[arg-type]

    server = _Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                                    lifespan="off", timeout_graceful_shutdown=2))
    try:
        listener = bind_listening_socket(settings.host, settings.port)
    except OSError as error:
        print(f"ccs-sim-front: cannot listen on {settings.host}:{settings.port}: {error}", file=sys.stderr,
              flush=True)
        sys.exit(1)
    parent_pid = os.getppid()

    async def exit_with_parent() -> None:
        while not server.should_exit:
            if os.getppid() != parent_pid:  # the controller's process is gone: nothing to serve
                front.fan_out.close()
                server.should_exit = True
            await asyncio.sleep(PARENT_CHECK_S)

    async def announce() -> None:
        while not server.started and not server.should_exit:
            await asyncio.sleep(0.01)
        if server.started:
            print(READY_LINE, flush=True)

    watchers = [asyncio.create_task(exit_with_parent()), asyncio.create_task(announce())]
    try:
        await server.serve(sockets=[listener])
    finally:
        for watcher in watchers:
            watcher.cancel()
        await client.aclose()
    if not server.started:
        sys.exit(1)


#: prctl(2) option: the signal this process gets when its parent dies (Linux).
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A killed controller takes its front with it at once (the public port is free for its restart), not only at
    the next ``PARENT_CHECK_S`` check (which stays, for systems without prctl)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ccs_sim.front")
    parser.add_argument("--controller-socket", required=True, help="the controller app's private Unix socket")
    parser.add_argument("--settings-file", required=True, help="the controller's settings (JSON)")
    parser.add_argument("--listen-when-told", action="store_true",
                        help="load, then bind the public address only once the controller writes 'listen' on stdin "
                             "(its app answers by then); end without listening if stdin closes first")
    args = parser.parse_args()
    die_with_parent()
    lower_to_normal_priority()  # the controller's event loop outranks its front
    with open(args.settings_file, encoding="utf-8") as settings_file:
        settings = ControllerSettings.model_validate_json(settings_file.read())
    if args.listen_when_told and sys.stdin.buffer.readline() != LISTEN_COMMAND:
        return  # the controller's start-up was refused, or it is gone: nothing to serve
    asyncio.run(run(args.controller_socket, settings))


if __name__ == "__main__":
    main()
