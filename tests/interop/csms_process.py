"""The in-repository test CSMS (tests/ocpp/csms.py) as a process, for a launcher in a network namespace: it
listens on 127.0.0.1:<port> of the namespace it runs in and keeps every frame the station sent in a JSON file
(rewritten whole, atomically, as frames come).

    python tests/interop/csms_process.py <version> <port> <frames.json> [<Authorize status>]
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ocpp"))

from csms import TestCsms  # noqa: E402

READY_LINE = "test CSMS ready"
WRITE_PERIOD_S = 0.05


def write_frames(csms: TestCsms, path: Path) -> None:
    frames = [{"action": frame.action, "type": frame.type, "payload": frame.payload}
              for frame in csms.frames if frame.direction == "in"]
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"frames": frames, "violations": csms.violations}), encoding="utf-8")
    os.replace(temporary, path)


async def serve(version: str, port: int, path: Path, authorize_status: str) -> None:
    csms = TestCsms(version)
    csms.port = port
    csms.authorize_status = authorize_status
    await csms.start()
    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signal_number, stop.set)
    print(READY_LINE, flush=True)
    written = -1
    while not stop.is_set():
        if len(csms.frames) != written:
            written = len(csms.frames)
            write_frames(csms, path)
        try:
            await asyncio.wait_for(stop.wait(), WRITE_PERIOD_S)
        except TimeoutError:
            pass
    write_frames(csms, path)
    await csms.stop()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]),
                      sys.argv[4] if len(sys.argv) > 4 else "Accepted"))
