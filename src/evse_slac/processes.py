"""Drive ``evse_runner`` and ``ev_peer`` as child processes (tests, the benchmark, demos).

Each child is started with a command prefix, typically ``VethLink.in_evse([])`` / ``in_ev([])`` from
``evse_ev.demo_network`` (``ip netns exec <ns>``), so both sides of a SLAC link run in their own network namespace.
Only the processes started here are stopped, by their PID.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

STOP_TIMEOUT_S = 5.0


class ChildReportError(RuntimeError):
    """A child did not report what was expected in time; the message carries its stderr tail."""


class _LineProcess:
    """A child whose stdout lines are read by a thread into a queue; stderr is kept for diagnostics."""

    def __init__(self, argv: Sequence[str], *, with_stdin: bool) -> None:
        self.argv = list(argv)
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        self.process = subprocess.Popen(self.argv, stdin=subprocess.PIPE if with_stdin else subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None  # opened with stdout=PIPE
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)  # end of output

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None  # opened with stderr=PIPE
        for line in self.process.stderr:
            self._stderr.append(line.rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self._stderr)

    def next_line(self, wanted: Callable[[str], bool], timeout_s: float) -> str:
        """The next stdout line for which ``wanted`` is true (earlier lines are dropped)."""
        try:
            while True:
                line = self._lines.get(timeout=timeout_s)
                if line is None:
                    raise ChildReportError(f"{self.argv[-6:]} exited ({self.process.wait()}):\n{self.stderr[-3000:]}")
                if wanted(line):
                    return line
        except queue.Empty:
            raise ChildReportError(f"nothing expected from {self.argv[-6:]} within {timeout_s} s;"
                                     f" stderr:\n{self.stderr[-3000:]}") from None

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self) -> int | None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT_S)
        return self.process.returncode


class EvseRunnerProcess(_LineProcess):
    """``python -m evse_slac.evse_runner`` (SlacService fed from stdin)."""

    def __init__(self, prefix: Sequence[str], iface: str, *, settle_time_s: float = 0.0,
                 slac_config: Path | None = None, set_key_timeout_s: float = 2.0, max_attempts: int = 3,
                 log_level: str = "WARNING", ready_timeout_s: float = 20.0) -> None:
        argv = [*prefix, sys.executable, "-m", "evse_slac.evse_runner", "--iface", iface,
                "--settle-time-s", str(settle_time_s), "--set-key-timeout-s", str(set_key_timeout_s),
                "--max-attempts", str(max_attempts), "--log-level", log_level]
        if slac_config is not None:
            argv += ["--slac-config", str(slac_config)]
        super().__init__(argv, with_stdin=True)
        self.next_event(lambda event: event["event"] == "ready", ready_timeout_s)

    def next_event(self, wanted: Callable[[dict], bool], timeout_s: float) -> dict:
        return json.loads(self.next_line(lambda line: line.startswith("{") and wanted(json.loads(line)), timeout_s))

    def cp(self, state: str) -> None:
        """Feed a control-pilot state ("A".."F")."""
        self.send(state)

    def wait_state(self, state: str, timeout_s: float) -> dict:
        return self.next_event(lambda event: event["event"] == "status" and event["state"] == state, timeout_s)

    def wait_matched(self, timeout_s: float) -> dict:
        """The "matched" event: status fields plus "nmk" and "cp_to_matched_s"."""
        return self.next_event(lambda event: event["event"] == "matched", timeout_s)

    def stop(self) -> int | None:
        if self.process.poll() is None:
            try:
                self.send("quit")
                self.process.wait(STOP_TIMEOUT_S)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                pass
        return super().stop()


class EvPeerProcess(_LineProcess):
    """``python -m evse_slac.ev_peer`` (simulated EV + the EVSE modem's frames)."""

    def __init__(self, prefix: Sequence[str], iface: str, *, runs: int = 1, silent: bool = False,
                 extra_args: Sequence[str] = (), ready_timeout_s: float = 20.0) -> None:
        argv = [*prefix, sys.executable, "-m", "evse_slac.ev_peer", "--iface", iface, "--runs", str(runs),
                *(["--silent"] if silent else []), *extra_args]
        super().__init__(argv, with_stdin=False)
        self.ready = json.loads(self.next_line(lambda line: line.startswith("READY "), ready_timeout_s)[6:])

    def next_result(self, timeout_s: float) -> dict:
        """The next run's result: matched, reason, run_id, evse_mac, nid, nmk, attenuation_db."""
        return json.loads(self.next_line(lambda line: line.startswith("RESULT "), timeout_s)[7:])
