"""Prometheus metrics at ``GET /metrics``, in the text exposition format (version 0.0.4), written here.

No client library: the format is a few lines per metric (``# HELP``, ``# TYPE``, ``name{labels} value``).
Counters count since the process started (Prometheus handles resets). Label values that come from
outside (fault types) are bounded: a fault type not in the catalogue is counted as ``UNKNOWN``, so a
client cannot grow the label set without limit.

Metrics (all prefixed ``ccs_``):

- ``sessions_started_total{source}``, ``sessions_ended_total{phase,end_reason}``, ``session_active``
- ``energy_delivered_watt_hours_total`` (the final meter count of every ended session)
- ``faults_total{type,severity}``
- ``control_loop_late_ticks_total``, ``control_loop_max_lateness_seconds``
- ``command_refusals_total`` (commands the safety rules refused)
- ``api_rejected_requests_total{reason}`` (401 unauthorized, 413 too large, 403 cross-origin)
- ``records_writes_total``, ``records_write_errors_total``, ``records_interrupted_at_startup``
- ``secc_response_seconds{message}`` histogram (observed by the SECC integration through
  ``ControllerMetrics.observe_secc_response``)
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from evse_model.faults import Fault
from evse_model.session import SessionSummary

if TYPE_CHECKING:
    from ccs_sim.controller import ActiveSession, ChargerController
    from ccs_sim.http.access import AccessPolicy
    from ccs_sim.observability.records import SessionRecorder

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: SECC response-time buckets (s): ISO 15118-2 allows the SECC 2 s for most messages, 5 s for some
#: (V2G_SECC_Sequence_Performance_Time table 109); resolution is finer where good stacks answer.
SECC_RESPONSE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
#: Most distinct SECC message names kept as labels (the rest go to "other").
MAX_MESSAGE_LABELS = 64


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def format_sample(name: str, labels: dict[str, str], value: float) -> str:
    if labels:
        inner = ",".join(f'{key}="{escape_label_value(str(val))}"' for key, val in labels.items())
        return f"{name}{{{inner}}} {format_value(value)}"
    return f"{name} {format_value(value)}"


class MetricWriter:
    """Accumulates exposition text: one ``family()`` per metric, then its samples."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def header(self, name: str, kind: str, help_text: str) -> None:
        escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")
        self._lines.append(f"# HELP {name} {escaped}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: dict[str, str], value: float) -> None:
        self._lines.append(format_sample(name, labels, value))

    def family(self, name: str, kind: str, help_text: str,
               samples: Iterable[tuple[dict[str, str], float]]) -> None:
        self.header(name, kind, help_text)
        for labels, value in samples:
            self.sample(name, labels, value)

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


class Histogram:
    """Cumulative-bucket histogram per label value."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}

    def observe(self, label: str, value: float) -> None:
        counts = self._counts.setdefault(label, [0] * (len(self.buckets) + 1))
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self._sums[label] = self._sums.get(label, 0.0) + value

    def labels(self) -> list[str]:
        return sorted(self._counts)

    def write(self, writer: MetricWriter, name: str, help_text: str, label_name: str) -> None:
        writer.header(name, "histogram", help_text)
        for label in self.labels():
            running = 0
            for bound, count in zip(self.buckets + (math.inf,), self._counts[label], strict=True):
                running += count
                writer.sample(f"{name}_bucket", {label_name: label, "le": format_value(bound)}, running)
            writer.sample(f"{name}_sum", {label_name: label}, self._sums[label])
            writer.sample(f"{name}_count", {label_name: label}, running)


class ControllerMetrics:
    """Counts what the controller reports through its listeners; reads the rest at scrape time."""

    def __init__(self, controller: ChargerController) -> None:
        self.controller = controller
        self.sessions_started: Counter[str] = Counter()
        self.sessions_ended: Counter[tuple[str, str]] = Counter()
        self.energy_delivered_Wh = 0.0
        self.faults: Counter[tuple[str, str]] = Counter()
        self.secc_response = Histogram(SECC_RESPONSE_BUCKETS_S)
        self.recorder: SessionRecorder | None = None
        self.access: AccessPolicy | None = None
        #: More families written after these (e.g. the OCPP client's ``ccs_ocpp_*`` counters).
        self.extra_families: list[Callable[[MetricWriter], None]] = []

    def attach(self) -> ControllerMetrics:
        self.controller.session_start_listeners.append(self.on_session_start)
        self.controller.session_end_listeners.append(self.on_session_end)
        self.controller.fault_listeners.append(self.on_fault)
        return self

    def detach(self) -> None:
        for listeners, listener in ((self.controller.session_start_listeners, self.on_session_start),
                                    (self.controller.session_end_listeners, self.on_session_end),
                                    (self.controller.fault_listeners, self.on_fault)):
            if listener in listeners:
                listeners.remove(listener)

    # --- listeners ------------------------------------------------------------------------------------------
    def on_session_start(self, session: ActiveSession) -> None:
        self.sessions_started[session.source] += 1

    def on_session_end(self, summary: SessionSummary) -> None:
        self.sessions_ended[(summary.ended_phase, summary.end_reason)] += 1
        if math.isfinite(summary.energy_Wh) and summary.energy_Wh > 0:
            self.energy_delivered_Wh += summary.energy_Wh

    def on_fault(self, fault: Fault) -> None:
        self.faults[(fault.name if fault.known else "UNKNOWN", fault.severity.value)] += 1

    def observe_secc_response(self, message: str, seconds: float) -> None:
        """Time the SECC took to answer one V2G request (called by the SECC integration)."""
        if not math.isfinite(seconds) or seconds < 0:
            return
        if message not in self.secc_response.labels() and len(self.secc_response.labels()) >= MAX_MESSAGE_LABELS:
            message = "other"
        self.secc_response.observe(message, seconds)

    # --- exposition ---------------------------------------------------------------------------------------------
    def render(self) -> str:
        c = self.controller
        w = MetricWriter()
        w.family("ccs_sessions_started_total", "counter", "Charging sessions started.",
                 [({"source": source}, count) for source, count in sorted(self.sessions_started.items())])
        w.family("ccs_sessions_ended_total", "counter", "Charging sessions ended, by final phase and reason.",
                 [({"phase": phase, "end_reason": reason}, count)
                  for (phase, reason), count in sorted(self.sessions_ended.items())])
        w.family("ccs_session_active", "gauge", "1 while a session runs.", [({}, 1.0 if c.session_active else 0.0)])
        w.family("ccs_energy_delivered_watt_hours_total", "counter",
                 "Energy delivered in ended sessions (final meter counts), Wh.", [({}, self.energy_delivered_Wh)])
        w.family("ccs_meter_energy_watt_hours", "gauge", "Energy of the running session so far, Wh.",
                 [({}, c.meter_reading.energy_Wh)])
        w.family("ccs_faults_total", "counter", "Faults raised, by type (UNKNOWN: not in the catalogue).",
                 [({"type": name, "severity": severity}, count)
                  for (name, severity), count in sorted(self.faults.items())])
        w.family("ccs_control_loop_late_ticks_total", "counter",
                 "Control ticks that started more than one period late.", [({}, c.late_ticks)])
        w.family("ccs_control_loop_max_lateness_seconds", "gauge",
                 "Largest control-tick lateness seen (simulated s).", [({}, c.max_tick_lateness_s)])
        w.family("ccs_command_refusals_total", "counter", "Commands refused by the safety rules.",
                 [({}, c.refusals)])
        if self.access is not None:
            w.family("ccs_api_rejected_requests_total", "counter", "API requests rejected before reaching a route.",
                     [({"reason": reason}, count) for reason, count in sorted(self.access.rejections.items())])
        if self.recorder is not None:
            w.family("ccs_records_writes_total", "counter", "Session-record writes committed.",
                     [({}, self.recorder.writes)])
            w.family("ccs_records_write_errors_total", "counter", "Session-record writes that failed.",
                     [({}, self.recorder.write_errors)])
            w.family("ccs_records_interrupted_at_startup", "gauge",
                     "Sessions found running at start-up (the previous process died) and closed as interrupted.",
                     [({}, len(self.recorder.recovered_interrupted))])
        self.secc_response.write(w, "ccs_secc_response_seconds", "SECC response time per V2G message type.",
                                 "message")
        for write_family in self.extra_families:
            write_family(w)
        return w.text()


router = APIRouter()


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format 0.0.4"}})
async def metrics(request: Request) -> Any:
    """Prometheus metrics (text format): sessions, energy, faults, control-loop timing, refusals."""
    collector: ControllerMetrics | None = getattr(request.app.state, "metrics", None)
    if collector is None:
        collector = ControllerMetrics(request.app.state.controller)
    return PlainTextResponse(collector.render(), media_type=CONTENT_TYPE)
