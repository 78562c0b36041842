"""``SlacService`` on an interface, fed with control-pilot states from stdin; JSON lines on stdout.

For tests, the benchmark and trying SLAC by hand inside the EVSE's network namespace::

    ip netns exec <evse-ns> python -m evse_slac.evse_runner --iface evse0 --settle-time-s 0
    B            <- plug-in: matching starts (C, D, E, F, "B2"... are accepted too)
    A            <- unplug
    status       <- print the current status
    quit

Output, one JSON object per line: ``{"event": "ready"}``; ``{"event": "status", ...}`` at every state change
(the fields of SlacStatus); ``{"event": "matched", ..., "nmk": hex, "cp_to_matched_s": s}`` where
cp_to_matched_s is the wall time from reading the plug-in line to the match.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

from evse_slac.evse_slac import DEFAULT_MAX_ATTEMPTS, SlacService
from evse_slac.modem_key import DEFAULT_CNF_TIMEOUT_S, QCA_SETTLE_TIME_S
from evse_slac.pyslac_loader import load_slac_config
from evse_slac.status import SlacState, SlacStatus


def _emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def run(args: argparse.Namespace) -> int:
    plugged_at: list[float] = []
    service: SlacService

    def on_status(status: SlacStatus) -> None:
        _emit("status", **status.as_json())

    def on_matched(status: SlacStatus) -> None:
        elapsed_s = time.monotonic() - plugged_at[-1] if plugged_at else None
        nmk = service.nmk
        _emit("matched", **status.as_json(), nmk=nmk.hex() if nmk else None, cp_to_matched_s=elapsed_s)

    service = SlacService(args.iface, args.evse_id, load_slac_config(args.slac_config),
                          settle_time_s=args.settle_time_s, set_key_timeout_s=args.set_key_timeout_s,
                          modem_set_key=not args.no_set_key, max_attempts=args.max_attempts,
                          on_matched=on_matched, on_status=on_status)
    await service.start()
    _emit("ready", iface=args.iface)
    try:
        while True:
            line = await asyncio.to_thread(sys.stdin.readline)
            if not line:
                return 0
            command = line.strip()
            if not command:
                continue
            if command == "quit":
                return 0
            if command == "status":
                _emit("status", **service.status().as_json())
                continue
            if command[:1].upper() in "BCD" and service.status().state == SlacState.IDLE:
                plugged_at.append(time.monotonic())
            try:
                await service.on_cp_state(command)
            except ValueError as error:
                _emit("error", message=str(error))
    finally:
        await service.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evse_slac.evse_runner", description=__doc__.split("\n\n")[0])
    parser.add_argument("--iface", required=True)
    parser.add_argument("--evse-id", default="DE*SIM*E0001")
    parser.add_argument("--slac-config", type=Path, default=None, help="pyslac .env settings file")
    parser.add_argument("--settle-time-s", type=float, default=QCA_SETTLE_TIME_S)
    parser.add_argument("--set-key-timeout-s", type=float, default=DEFAULT_CNF_TIMEOUT_S)
    parser.add_argument("--no-set-key", action="store_true", help="no PLC modem on the link: skip CM_SET_KEY")
    parser.add_argument("--max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
