"""Drive ``ocpp-csms`` (PyPI 0.1.0, OCPP 1.6J), a central system we did not write, as a library: serve its
``CentralSystem``, print what the charge points send as JSON lines, and send the commands a test asks for.

Run by the peer's own interpreter (``.venv-csms/bin/python``, ``scripts/setup-csms.sh``); it imports only
``ocpp_csms`` and the standard library, never this project. Every answer the charge point gets (registration,
authorisation, transaction ids, schema validation) is the library's own: this script only watches and commands.

    .venv-csms/bin/python tests/ocpp/ocpp_csms_driver.py --host 127.0.0.1 --port 9321

stdout, one JSON object a line, each with ``"event"``:
  listening {port} · connected / disconnected {charge_point_id} · boot {vendor, model} ·
  status {connector_id, status, error_code} · call {action, payload: the frame as the station sent it} ·
  answer {action, payload: what the library answered} · authorize {id_tag} (a received Authorize) ·
  transaction_started {transaction_id, connector_id, id_tag, meter_start, id_tag_status} ·
  transaction_stopped {... meter_stop, stop_reason, energy_Wh} · meter_values {connector_id, transaction_id,
  readings: [{measurand, value, unit, context, phase, location}]} · command_result {command, status} ·
  command_error {command, error}.

stdin, one JSON command a line (answered by ``command_result`` or ``command_error``):
  {"command": "remote_start", "charge_point_id": "CS1", "id_tag": "CARD", "connector_id": 1}
  {"command": "remote_stop", "charge_point_id": "CS1", "transaction_id": 17}   (omitted: the one running on
                                                                                connector_id, default 1)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
import threading
from typing import Any

from ocpp_csms import (
    BootEvent,
    CentralSystem,
    ChargePointEvent,
    ConnectedEvent,
    CsmsError,
    DisconnectedEvent,
    MeterValuesEvent,
    StatusEvent,
    Transaction,
    TransactionStartedEvent,
    TransactionStoppedEvent,
)

#: The library logs every frame, in full, at debug level on this logger, and only when asked for by name
#: (ocpp_csms/charge_point.py ``_WIRE_LOGGER``).
WIRE_LOGGER_NAME = "ocpp_csms.wire"
#: OCPP-J message type ids (OCPP 1.6J §4.1.3): a request and its answer.
CALL_MESSAGE_TYPE = 2
CALL_RESULT_MESSAGE_TYPE = 3
DEFAULT_CONNECTOR_ID = 1


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}, default=str) + "\n")  # one write: one whole line
    sys.stdout.flush()


def transaction_fields(transaction: Transaction) -> dict[str, Any]:
    return {"transaction_id": transaction.transaction_id, "connector_id": transaction.connector_id,
            "id_tag": transaction.id_tag, "meter_start": transaction.meter_start,
            "id_tag_status": str(transaction.id_tag_status)}


def on_event(event: ChargePointEvent) -> None:
    """The library's events, as JSON lines (a listener must not block: it only prints)."""
    station = event.charge_point_id
    if isinstance(event, ConnectedEvent):
        emit("connected", charge_point_id=station)
    elif isinstance(event, DisconnectedEvent):
        emit("disconnected", charge_point_id=station)
    elif isinstance(event, BootEvent):
        emit("boot", charge_point_id=station, vendor=event.info.vendor, model=event.info.model)
    elif isinstance(event, StatusEvent):
        emit("status", charge_point_id=station, connector_id=event.connector.connector_id,
             status=str(event.connector.status), error_code=str(event.connector.error_code))
    elif isinstance(event, MeterValuesEvent):
        readings = [{"measurand": r.measurand, "value": r.value, "unit": r.unit, "context": r.context,
                     "phase": r.phase, "location": r.location} for r in event.readings]
        emit("meter_values", charge_point_id=station, connector_id=event.connector_id,
             transaction_id=event.transaction_id, readings=readings)
    elif isinstance(event, TransactionStartedEvent):
        emit("transaction_started", charge_point_id=station, **transaction_fields(event.transaction))
    elif isinstance(event, TransactionStoppedEvent):
        transaction = event.transaction
        emit("transaction_stopped", charge_point_id=station, **transaction_fields(transaction),
             meter_stop=transaction.meter_stop, stop_reason=transaction.stop_reason, energy_Wh=transaction.energy_wh)


class FrameWatcher(logging.Handler):
    """Every request a station sends (``call``; ``authorize`` for Authorize, which has no library event) and the
    library's answer to it (``answer``), from the library's wire log."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.pending_actions: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.args, tuple) or len(record.args) != 2 or not isinstance(record.msg, str):
            return
        station, text = record.args
        try:
            frame = json.loads(str(text))
        except ValueError:
            return
        if not isinstance(frame, list) or len(frame) < 3:
            return
        if "receive message" in record.msg and frame[0] == CALL_MESSAGE_TYPE and len(frame) == 4:
            self.pending_actions[frame[1]] = frame[2]
            emit("call", charge_point_id=station, action=frame[2], payload=frame[3])
            if frame[2] == "Authorize":
                emit("authorize", charge_point_id=station, id_tag=frame[3].get("idTag"))
        elif "send" in record.msg and frame[0] == CALL_RESULT_MESSAGE_TYPE and frame[1] in self.pending_actions:
            emit("answer", charge_point_id=station, action=self.pending_actions.pop(frame[1]), payload=frame[2])


async def run_command(central_system: CentralSystem, command: dict[str, Any]) -> None:
    name = command.get("command")
    try:
        charge_point = central_system.charge_points[command["charge_point_id"]]
        if name == "remote_start":
            status = await charge_point.async_remote_start_transaction(command["id_tag"], command.get("connector_id"))
            emit("command_result", command=name, status=status)
        elif name == "remote_stop":
            transaction_id = command.get("transaction_id")
            if transaction_id is None:
                running = charge_point.get_transaction(command.get("connector_id", DEFAULT_CONNECTOR_ID))
                if running is None:
                    raise CsmsError("no transaction runs on that connector")
                transaction_id = running.transaction_id
            status = await charge_point.async_remote_stop_transaction(int(transaction_id))
            emit("command_result", command=name, status=status, transaction_id=transaction_id)
        else:
            emit("command_error", command=name, error="unknown command")
    except (CsmsError, KeyError, ValueError) as error:
        emit("command_error", command=name, error=f"{type(error).__name__}: {error}")


def read_commands(loop: asyncio.AbstractEventLoop, central_system: CentralSystem,
                  tasks: set[asyncio.Task[None]]) -> None:
    """Commands from stdin until it closes, on a daemon thread (a blocked readline must not keep the process
    alive); each runs as a task on ``loop``. The server keeps serving after stdin closes."""
    def start(command: dict[str, Any]) -> None:
        task = loop.create_task(run_command(central_system, command))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            command = json.loads(line)
        except ValueError as error:
            emit("command_error", command=None, error=f"not JSON: {error}")
            continue
        loop.call_soon_threadsafe(start, command)


async def serve(host: str, port: int) -> None:
    wire = logging.getLogger(WIRE_LOGGER_NAME)
    wire.setLevel(logging.DEBUG)
    wire.propagate = False
    wire.addHandler(FrameWatcher())
    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signal_number, stop.set)
    tasks: set[asyncio.Task[None]] = set()
    async with CentralSystem(host=host, port=port) as central_system:
        central_system.add_listener(on_event)
        emit("listening", port=central_system.port)
        threading.Thread(target=read_commands, args=(asyncio.get_running_loop(), central_system, tasks),
                         name="commands", daemon=True).start()
        await stop.wait()
        for task in list(tasks):
            task.cancel()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
