"""The launcher (``evse_main.launch``) in this process, plus a hand on its supervisor: each ``kill`` line on stdin
cancels the supervised SECC task, as a crash would end it. Prints ``driver: SECC ready <n>`` each time the
(re)started SECC serves and ``driver: contained {json}`` for each containment. A script for
test_secc_restart_netns.py, run in the EVSE namespace with ``evse_main``'s arguments."""

from __future__ import annotations

import asyncio
import json
import sys

import evse_main
import evse_secc.supervision as supervision

supervisors: list[supervision.LauncherSupervisor] = []
_build = supervision.build_launcher_supervisor


def _capture(*args, **kwargs):  # type: ignore[no-untyped-def]
    supervisors.append(_build(*args, **kwargs))
    return supervisors[-1]


supervision.build_launcher_supervisor = _capture


async def _hand() -> None:
    loop = asyncio.get_running_loop()
    while not supervisors:
        await asyncio.sleep(0.05)
    secc = supervisors[0].components["SECC"]
    for generation in range(1, 100):
        while not (secc.ready and secc.starts == generation and secc.task is not None):
            await asyncio.sleep(0.05)
        print(f"driver: SECC ready {generation}", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if line.strip() != "kill":
            return
        secc.ready = False
        secc.task.cancel()
        while len(supervisors[0].containments) < generation:
            await asyncio.sleep(0.01)
        print(f"driver: contained {json.dumps(supervisors[0].containments[-1].as_json())}", flush=True)


async def _main() -> None:
    options = evse_main.parse_options(sys.argv[1:])
    hand = asyncio.create_task(_hand())
    try:
        await evse_main.launch(options)
    finally:
        hand.cancel()


if __name__ == "__main__":
    asyncio.run(_main())
