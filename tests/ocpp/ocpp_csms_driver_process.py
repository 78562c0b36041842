"""The ``ocpp-csms`` driver (tests/ocpp/ocpp_csms_driver.py) as a process of a test: started by the peer's own
interpreter (``.venv-csms``, installed by ``scripts/setup-csms.sh`` through ``ensure_csms``), optionally inside
a network namespace (``command_prefix``), its JSON-line events read from a file, commands written to its stdin,
stopped by its PID. Real processes: waits are on the wall clock, each with a bound."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from test_ocpp_csms_peer import ensure_csms

from served_process import stop_process

DRIVER_SCRIPT = Path(__file__).resolve().parent / "ocpp_csms_driver.py"
READY_TIMEOUT_S = 30.0
POLL_S = 0.05

Event = dict[str, Any]


class CsmsDriverProcess:
    """``ocpp_csms_driver.py`` listening on 127.0.0.1:``port`` (of the namespace it runs in)."""

    def __init__(self, port: int, workdir: Path, command_prefix: Sequence[str] = ()) -> None:
        csms_python = ensure_csms().parent / "python"
        workdir.mkdir(parents=True, exist_ok=True)
        self.events_path = workdir / "ocpp-csms-events.jsonl"
        self.stderr_path = workdir / "ocpp-csms-stderr.log"
        with self.events_path.open("wb") as events, self.stderr_path.open("wb") as errors:
            self.process = subprocess.Popen(
                [*command_prefix, str(csms_python), str(DRIVER_SCRIPT), "--host", "127.0.0.1", "--port", str(port)],
                stdin=subprocess.PIPE, stdout=events, stderr=errors)
        try:
            self.wait_for(lambda e: e["event"] == "listening", READY_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise

    def events(self) -> list[Event]:
        """Every whole line printed so far (a line still being written is left for the next read)."""
        text = self.events_path.read_text(encoding="utf-8", errors="replace")
        return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]

    def of(self, kind: str) -> list[Event]:
        return [event for event in self.events() if event["event"] == kind]

    def calls(self, action: str) -> list[dict[str, Any]]:
        """The payloads of the requests the station sent with ``action``, in order."""
        return [event["payload"] for event in self.of("call") if event["action"] == action]

    def statuses(self) -> list[str]:
        return [event["status"] for event in self.of("status") if event["connector_id"] != 0]

    def describe(self) -> str:
        text = self.events_path.read_text(errors="replace")[-4000:]
        return f"--- ocpp-csms events ---\n{text}\n--- ocpp-csms stderr ---\n{self.stderr_path.read_text()[-2000:]}"

    def wait_for(self, predicate: Callable[[Event], bool], timeout_s: float,
                 context: Callable[[], str] = lambda: "") -> Event:
        """The first event satisfying ``predicate``, waiting up to ``timeout_s``; fails if the driver exits."""
        return self.wait_until(lambda events: next((event for event in events if predicate(event)), None),
                               timeout_s, context)

    def wait_until(self, found_in: Callable[[list[Event]], Event | None], timeout_s: float,
                   context: Callable[[], str] = lambda: "") -> Event:
        """What ``found_in`` finds in the events so far, waiting up to ``timeout_s``; fails if the driver exits."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = found_in(self.events())
            if found is not None:
                return found
            if self.process.poll() is not None:
                raise AssertionError(f"the ocpp-csms driver exited ({self.process.returncode})\n{self.describe()}")
            if time.monotonic() >= deadline:
                raise AssertionError(f"not found within {timeout_s} s\n{self.describe()}\n{context()}")
            time.sleep(POLL_S)

    def command(self, command: dict[str, Any], timeout_s: float) -> Event:
        """Send one command; its ``command_result`` (a ``command_error`` fails)."""
        def answers(events: list[Event]) -> list[Event]:
            return [event for event in events if event["event"] in ("command_result", "command_error")]

        answered = len(answers(self.events()))
        assert self.process.stdin is not None
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        self.process.stdin.flush()
        answer = self.wait_until(lambda events: next(iter(answers(events)[answered:]), None), timeout_s)
        assert answer["event"] == "command_result", f"{command} failed: {answer}"
        return answer

    def stop(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass
        stop_process(self.process)
