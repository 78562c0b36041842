"""The launcher (``src/evse_main.py``) with per-message probes on the SECC's path (bench/diagnostics only).

    SECC_PROBE_OUT=probe.jsonl [SECC_PROBE_PROFILE=secc.pstats] python bench/secc_probe.py <evse_main arguments>

Runs ``evse_main.main`` unchanged, after wrapping (in this process only) the points of iso15118's SECC a
request passes, and writes one JSON line per request to ``$SECC_PROBE_OUT`` when the launcher stops:

- ``queue_ms``: the request's bytes in the kernel (``SO_TIMESTAMPNS``, the socket's newest segment) ->
  the event loop reading them (time the loop spent on other work: the API, the streams, the control tick);
- ``wake_ms``: bytes read -> the SECC's ``process_message`` starts (the session task's turn on the loop);
- ``handle_ms``: ``process_message`` (EXI decode + the package's pydantic models + its state machine + our
  controller calls + EXI encode), split into ``codec_ms`` (the EXI codec alone), ``exi_ms`` (the package's
  ``EXI.from_exi``/``to_exi`` around it: JSON and pydantic), ``controller_ms`` (``HalEVSEController``'s
  methods, by name in ``calls``), ``log_ms`` (log records handled), ``state_ms`` (the rest: the package);
- ``cpu_ms``: the CPU time this thread spent in ``process_message`` (``handle_ms`` minus it: the thread was
  not running: other processes on the cores, or another thread of ours holding the GIL);
- ``send_ms`` (write to the socket) and ``after_ms`` (``set_present_protocol_state``: our views, after the
  response left).

``$SECC_PROBE_SRC``: the source tree to run (default this repository's src/).
``$SECC_PROBE_PROFILE``: cProfile of every ``process_message`` + send + state update, written there at the end.
"""

from __future__ import annotations

import cProfile
import functools
import inspect
import json
import logging
import os
import runpy
import socket
import struct
import sys
import time
from asyncio import selector_events
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux asm-generic/socket.h (SCM_TIMESTAMPNS equal)
_TIMESPEC = struct.Struct("@qq")

records: list[dict[str, Any]] = []
_current: dict[str, Any] | None = None
_last: dict[str, Any] | None = None
_timestamped_fds: set[int] = set()
_last_rx: dict[str, float] = {}
_profiler = cProfile.Profile() if os.environ.get("SECC_PROBE_PROFILE") else None
_depth = 0


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 4)


def _add(key: str, seconds: float) -> None:
    if _current is not None:
        _current[key] = _current.get(key, 0.0) + seconds


def _install() -> None:
    import evse_secc  # noqa: F401  (installs the pydantic.v1 import hook before iso15118 is imported)

    # isort: split
    from iso15118.shared import comm_session as cs
    from iso15118.shared.exi_codec import EXI

    from evse_hal.iso15118_hal_controller import HalEVSEController
    from evse_secc.v2gtp_guard import GuardedTCPServer

    original_call = GuardedTCPServer.__call__

    async def call(self: Any, reader: Any, writer: Any) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            _timestamped_fds.add(sock.fileno())
        await original_call(self, reader, writer)

    GuardedTCPServer.__call__ = call  # type: ignore[method-assign]

    transport_class: Any = getattr(selector_events, "_SelectorSocketTransport")  # noqa: B009 (private)
    original_ready = transport_class._read_ready__data_received

    def read_ready(self: Any) -> None:
        sock = self._sock
        if sock is not None and sock.fileno() in _timestamped_fds:
            now_wall, now = time.time(), time.perf_counter()
            try:
                _data, ancillary, _flags, _addr = sock.recvmsg(1, 256, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                for level, kind, data in ancillary:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
                        seconds, nanoseconds = _TIMESPEC.unpack_from(data)
                        _last_rx["queue_s"] = now_wall - (seconds + nanoseconds / 1e9)
                        _last_rx["read_at"] = now
            except OSError:
                pass
        original_ready(self)

    transport_class._read_ready__data_received = read_ready

    original_process = cs.V2GCommunicationSession.process_message

    async def process_message(self: Any, message: bytes) -> None:
        global _current, _last
        started, started_cpu = time.perf_counter(), time.thread_time()
        record: dict[str, Any] = {"at": time.time(), "calls": {}}
        if "read_at" in _last_rx:
            record["queue_ms"] = _ms(_last_rx.pop("queue_s"))
            record["wake_ms"] = _ms(started - _last_rx.pop("read_at"))
        _current = record
        if _profiler is not None:
            _profiler.enable()
        try:
            await original_process(self, message)
        finally:
            if _profiler is not None:
                _profiler.disable()
            record["handle_s"] = time.perf_counter() - started
            record["cpu_s"] = time.thread_time() - started_cpu
            _current, _last = None, record
            records.append(record)

    cs.V2GCommunicationSession.process_message = process_message

    def after(name: str, original: Any) -> Any:
        async def timed(self: Any, *args: Any) -> Any:
            global _current
            started = time.perf_counter()
            record, _current = _last, _last
            if _profiler is not None:
                _profiler.enable()
            try:
                return await original(self, *args)
            finally:
                if _profiler is not None:
                    _profiler.disable()
                _current = None
                if record is not None:
                    record[name] = record.get(name, 0.0) + time.perf_counter() - started
        return timed

    cs.V2GCommunicationSession.send = after("send_s", cs.V2GCommunicationSession.send)
    cs.V2GCommunicationSession._update_state_info = after("after_s", cs.V2GCommunicationSession._update_state_info)

    original_from, original_to = EXI.from_exi, EXI.to_exi

    def timed_codec(codec: Any) -> Any:
        if getattr(codec, "_probe", False):
            return codec

        class Timed:
            _probe = True

            def encode(self, message: str, namespace: str) -> bytes:
                started = time.perf_counter()
                try:
                    return codec.encode(message, namespace)
                finally:
                    _add("codec_s", time.perf_counter() - started)

            def decode(self, stream: bytes, namespace: str) -> str:
                started = time.perf_counter()
                try:
                    result = codec.decode(stream, namespace)
                finally:
                    _add("codec_s", time.perf_counter() - started)
                if _current is not None:
                    body = json.loads(result)
                    body = body.get("V2G_Message", {}).get("Body", body)
                    _current["request"] = next(iter(body), "?")
                return result

            def get_version(self) -> str:
                return codec.get_version()

        return Timed()

    def from_exi(self: Any, exi_message: bytes, namespace: str) -> Any:
        self.exi_codec = timed_codec(self.exi_codec)
        started = time.perf_counter()
        try:
            return original_from(self, exi_message, namespace)
        finally:
            _add("exi_s", time.perf_counter() - started)

    def to_exi(self: Any, msg_element: Any, protocol_ns: str) -> bytes:
        self.exi_codec = timed_codec(self.exi_codec)
        started = time.perf_counter()
        try:
            return original_to(self, msg_element, protocol_ns)
        finally:
            _add("exi_s", time.perf_counter() - started)

    EXI.from_exi, EXI.to_exi = from_exi, to_exi

    def controller_method(name: str, original: Any) -> Any:
        @functools.wraps(original)
        async def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            global _depth
            _depth += 1
            started = time.perf_counter()
            try:
                return await original(self, *args, **kwargs)
            finally:
                _depth -= 1
                if _depth == 0 and _current is not None:
                    spent = time.perf_counter() - started
                    _add("controller_s", spent)
                    calls = _current["calls"]
                    calls[name] = round(calls.get(name, 0.0) + spent * 1000, 4)
        return timed

    for name, member in list(vars(HalEVSEController).items()):
        if inspect.iscoroutinefunction(member):
            setattr(HalEVSEController, name, controller_method(name, member))

    original_handle = logging.Logger.handle

    def handle(self: logging.Logger, record: logging.LogRecord) -> None:
        started = time.perf_counter()
        try:
            original_handle(self, record)
        finally:
            _add("log_s", time.perf_counter() - started)

    logging.Logger.handle = handle  # type: ignore[method-assign]


def _finish(record: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in record.items() if not key.endswith("_s")}
    for key, value in record.items():
        if key.endswith("_s"):
            out[key[:-2] + "_ms"] = _ms(value)
    # Nested: the codec runs inside EXI.from_exi/to_exi, which (with the controller calls and logging) run
    # inside process_message; each share is reported without what it contains.
    handle, exi, codec = record.get("handle_s", 0.0), record.get("exi_s", 0.0), record.get("codec_s", 0.0)
    out["exi_ms"] = _ms(exi - codec)
    out["state_ms"] = _ms(handle - exi - record.get("controller_s", 0.0) - record.get("log_s", 0.0))
    return out


def main() -> None:
    out_path = os.environ.get("SECC_PROBE_OUT")
    src = Path(os.environ.get("SECC_PROBE_SRC") or REPO_ROOT / "src")  # another revision's tree (bench_secc)
    sys.path.insert(0, str(src))
    _install()
    sys.argv = [str(src / "evse_main.py"), *sys.argv[1:]]
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        if out_path:
            with open(out_path, "w", encoding="utf-8") as file:
                for record in records:
                    file.write(json.dumps(_finish(record)) + "\n")
        if _profiler is not None:
            _profiler.dump_stats(os.environ["SECC_PROBE_PROFILE"])


if __name__ == "__main__":
    main()
