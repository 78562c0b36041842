"""The front's own counters, appended to the controller's ``GET /metrics`` as the front serves it: what the front
refused (it checks access and rate before anything reaches the controller, so the controller's
``ccs_api_rejected_requests_total`` counts none of it), what it forwarded, what its readings and streams cost."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class FrontCounts:
    """What ``FrontMetrics`` reports, read at each scrape."""

    def __init__(self, rejections: Counter[str], forwarded: Callable[[], int], fetches: Callable[[], int],
                 upstream_streams: Callable[[], int]) -> None:
        self.rejections = rejections
        self.forwarded = forwarded
        self.fetches = fetches
        self.upstream_streams = upstream_streams


class _FrontCollector(Collector):
    def __init__(self, counts: FrontCounts) -> None:
        self.counts = counts

    def collect(self) -> Iterable[Metric]:
        rejected = CounterMetricFamily("ccs_api_front_rejected_requests", "Requests the API front refused, by reason",
                                       labels=["reason"])
        for reason, count in sorted(self.counts.rejections.items()):
            rejected.add_metric([reason], count)
        yield rejected
        yield CounterMetricFamily("ccs_api_front_forwarded_requests", "Requests the API front forwarded to the "
                                  "controller", value=self.counts.forwarded())
        yield CounterMetricFamily("ccs_api_front_reading_fetches", "Readings (/status, /meter, /dashboard/snapshot) "
                                  "the API front fetched from the controller", value=self.counts.fetches())
        yield GaugeMetricFamily("ccs_api_front_upstream_streams", "/stream connections the API front holds to the "
                                "controller (at most one)", value=self.counts.upstream_streams())


class FrontMetrics:
    def __init__(self, counts: FrontCounts) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_FrontCollector(counts))

    def render(self) -> bytes:
        return generate_latest(self.registry)
