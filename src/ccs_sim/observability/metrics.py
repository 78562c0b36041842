"""Prometheus metrics at ``GET /metrics``, written by ``prometheus_client`` in the text format 0.0.4.

Every app has a ``CollectorRegistry`` of its own (never the library's global one: a process may build many
apps, the tests do). Counters fed by the controller's listeners are the library's ``Counter``/``Histogram``;
what the controller and its parts already count is read from them when scraped (``ScrapeTimeFamilies``).
Counters count since the process started (Prometheus handles resets); no ``_created`` series are written
(``disable_created_metrics``), so the exposition is the one scrapers saw before. Label values that come from
outside are bounded: a fault type not in the catalogue is counted as ``UNKNOWN``, SECC message names beyond
``MAX_MESSAGE_LABELS`` as ``other``, so a client cannot grow the label set without limit.

Metrics (all prefixed ``ccs_``):

- ``sessions_started_total{source}``, ``sessions_ended_total{phase,end_reason}``, ``session_active``
- ``energy_delivered_watt_hours_total`` (the final meter count of every ended session)
- ``faults_total{type,severity}``
- ``control_loop_late_ticks_total``, ``control_loop_max_lateness_seconds``
- ``control_tick_lateness_seconds`` histogram (how late each control tick started, fed at scrape time from
  ``controller.tick_lateness_s_recent``), ``control_tick_lateness_recent_max_seconds`` (the largest of the window)
- ``command_refusals_total`` (commands the safety rules refused)
- ``api_rejected_requests_total{reason}`` (401 unauthorized, 413 too large, 403 cross-origin)
- ``records_writes_total``, ``records_write_errors_total``, ``records_interrupted_at_startup``
- ``secc_response_seconds{message}`` histogram (observed by the SECC integration through
  ``ControllerMetrics.observe_secc_response``)
- whatever the sources in ``ControllerMetrics.extra_families`` add (the OCPP client's ``ccs_ocpp_*``)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from evse_model.faults import Fault
from evse_model.session import SessionSummary

if TYPE_CHECKING:
    from ccs_sim.controller import ActiveSession, ChargerController
    from ccs_sim.http.access import AccessPolicy
    from ccs_sim.observability.records import SessionRecorder

#: The text format ``generate_latest`` writes (its default escaping keeps names 0.0.4-legal); the library's
#: ``CONTENT_TYPE_LATEST`` announces 1.0.0 since 0.23, which scrapers of this endpoint have not been offered.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: SECC response-time buckets (s): ISO 15118-2 allows the SECC 2 s for most messages, 5 s for some
#: (V2G_SECC_Sequence_Performance_Time table 109); resolution is finer where good stacks answer.
SECC_RESPONSE_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
#: Control-tick start-lateness buckets (s), 0.25 ms to 100 ms: fine around issue 13's bound (no tick more than
#: 5 ms late) and the 30 ms emergency deadline (IEC 61851-23 CC.5.4, ``standards.EMERGENCY_CURRENT_DEADLINE_S``).
TICK_LATENESS_BUCKETS_S = (0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1)
#: Most distinct SECC message names kept as labels (the rest go to "other").
MAX_MESSAGE_LABELS = 64
#: What a source in ``ControllerMetrics.extra_families`` is handed at scrape time: the list it appends its
#: metric families to.
FamilySink = list[Metric]
#: The sink's former name, which the OCPP client's ``write_metrics`` annotation imports.
MetricWriter = FamilySink

# The library writes a ``<name>_created`` series beside every counter and histogram unless told not to; this
# endpoint never had them. (A process-wide switch of the library: nothing else here exposes metrics.)
disable_created_metrics()


class ScrapeTimeFamilies(Collector):
    """A collector whose families ``produce`` builds each time the registry is scraped."""

    def __init__(self, produce: Callable[[], Iterable[Metric]]) -> None:
        self._produce = produce

    def collect(self) -> Iterable[Metric]:
        return self._produce()


def _counter(name: str, help_text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, help_text, value=value)


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


class TickLateness(Collector):
    """``ccs_control_tick_lateness_seconds``: a histogram of how late each control tick started, fed when scraped.

    At each scrape the ticks run since the last one (``controller.tick_sequence`` counts them) are taken from the
    end of ``controller.tick_lateness_s_recent`` and observed, so the control tick itself does no extra work.
    Scrapes more than the window apart (6000 ticks: one minute at 100 Hz) observe the window only. Beside it,
    ``ccs_control_tick_lateness_recent_max_seconds``: the largest lateness in the window.
    """

    def __init__(self, controller: ChargerController) -> None:
        self.controller = controller
        self.histogram = Histogram("ccs_control_tick_lateness_seconds",
                                   "How late each control tick started after its schedule (simulated s).",
                                   buckets=TICK_LATENESS_BUCKETS_S, registry=None)
        self._seen_sequence = 0
        self._recent_max_s = 0.0

    def observe_new_ticks(self) -> None:
        recent = getattr(self.controller, "tick_lateness_s_recent", None)  # absent on a test's stub controller
        if recent is None:
            return
        sequence = self.controller.tick_sequence
        while True:
            try:
                window = list(recent)  # the control thread may append meanwhile: copy again if it did
                break
            except RuntimeError:
                continue
        new = min(len(window), sequence - self._seen_sequence)
        for lateness_s in window[len(window) - new:] if new > 0 else ():
            self.histogram.observe(lateness_s)
        self._seen_sequence = sequence
        self._recent_max_s = max(window, default=0.0)

    def collect(self) -> Iterable[Metric]:
        self.observe_new_ticks()
        yield from self.histogram.collect()
        yield _gauge("ccs_control_tick_lateness_recent_max_seconds",
                     "Largest control-tick start lateness among the recent ticks (simulated s).", self._recent_max_s)


class ControllerMetrics:
    """Counts what the controller reports through its listeners; reads the rest at scrape time."""

    def __init__(self, controller: ChargerController) -> None:
        self.controller = controller
        self.registry = CollectorRegistry()
        self.sessions_started = Counter("ccs_sessions_started_total", "Charging sessions started.", ["source"],
                                        registry=self.registry)
        self.sessions_ended = Counter("ccs_sessions_ended_total", "Charging sessions ended, by final phase and reason.",
                                      ["phase", "end_reason"], registry=self.registry)
        self.energy_delivered_Wh = Counter("ccs_energy_delivered_watt_hours_total",
                                           "Energy delivered in ended sessions (final meter counts), Wh.",
                                           registry=self.registry)
        self.faults = Counter("ccs_faults_total", "Faults raised, by type (UNKNOWN: not in the catalogue).",
                              ["type", "severity"], registry=self.registry)
        self.registry.register(ScrapeTimeFamilies(self.controller_families))
        self.tick_lateness = TickLateness(controller)
        self.registry.register(self.tick_lateness)
        self.secc_response = Histogram("ccs_secc_response_seconds", "SECC response time per V2G message type.",
                                       ["message"], buckets=SECC_RESPONSE_BUCKETS_S, registry=self.registry)
        self._secc_messages: set[str] = set()
        self.registry.register(ScrapeTimeFamilies(self.added_families))
        self.recorder: SessionRecorder | None = None
        self.access: AccessPolicy | None = None
        #: More families written after these (e.g. the OCPP client's ``ccs_ocpp_*`` counters): each source is
        #: called at scrape time with a ``FamilySink`` to append its families to.
        self.extra_families: list[Callable[[FamilySink], None]] = []

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
        self.sessions_started.labels(source=session.source).inc()

    def on_session_end(self, summary: SessionSummary) -> None:
        self.sessions_ended.labels(phase=summary.ended_phase, end_reason=summary.end_reason).inc()
        if math.isfinite(summary.energy_Wh) and summary.energy_Wh > 0:
            self.energy_delivered_Wh.inc(summary.energy_Wh)

    def on_fault(self, fault: Fault) -> None:
        self.faults.labels(type=fault.name if fault.known else "UNKNOWN", severity=fault.severity.value).inc()

    def observe_secc_response(self, message: str, seconds: float) -> None:
        """Time the SECC took to answer one V2G request (called by the SECC integration)."""
        if not math.isfinite(seconds) or seconds < 0:
            return
        if message not in self._secc_messages:
            if len(self._secc_messages) >= MAX_MESSAGE_LABELS:
                message = "other"
            else:
                self._secc_messages.add(message)
        self.secc_response.labels(message=message).observe(seconds)

    # --- read at scrape time ----------------------------------------------------------------------------------
    def controller_families(self) -> Iterator[Metric]:
        c = self.controller
        yield _gauge("ccs_session_active", "1 while a session runs.", 1.0 if c.session_active else 0.0)
        yield _gauge("ccs_meter_energy_watt_hours", "Energy of the running session so far, Wh.",
                     c.meter_reading.energy_Wh)
        yield _counter("ccs_control_loop_late_ticks_total", "Control ticks that started more than one period late.",
                       c.late_ticks)
        yield _gauge("ccs_control_loop_max_lateness_seconds", "Largest control-tick lateness seen (simulated s).",
                     c.max_tick_lateness_s)
        yield _counter("ccs_command_refusals_total", "Commands refused by the safety rules.", c.refusals)
        if self.access is not None:
            rejected = CounterMetricFamily("ccs_api_rejected_requests_total",
                                           "API requests rejected before reaching a route.", labels=["reason"])
            for reason, count in sorted(self.access.rejections.items()):
                rejected.add_metric([reason], count)
            yield rejected
        if self.recorder is not None:
            yield _counter("ccs_records_writes_total", "Session-record writes committed.", self.recorder.writes)
            yield _counter("ccs_records_write_errors_total", "Session-record writes that failed.",
                           self.recorder.write_errors)
            yield _gauge("ccs_records_interrupted_at_startup",
                         "Sessions found running at start-up (the previous process died) and closed as interrupted.",
                         len(self.recorder.recovered_interrupted))

    def added_families(self) -> FamilySink:
        families: FamilySink = []
        for add_families in self.extra_families:
            add_families(families)
        return families

    def render(self) -> str:
        """The text exposition of every family, as ``GET /metrics`` serves it."""
        return generate_latest(self.registry).decode("utf-8")


router = APIRouter()


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
                             "description": "Prometheus text exposition format 0.0.4"}})
async def metrics(request: Request) -> Any:
    """Prometheus metrics (text format): sessions, energy, faults, control-loop timing, refusals."""
    collector: ControllerMetrics | None = getattr(request.app.state, "metrics", None)
    if collector is None:
        collector = ControllerMetrics(request.app.state.controller)
    return PlainTextResponse(generate_latest(collector.registry), media_type=CONTENT_TYPE)
