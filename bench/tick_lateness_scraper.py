"""How late the launcher's control ticks start while a phase runs, read from its own ``/metrics``.

    python bench/tick_lateness_scraper.py http://127.0.0.1:8000 [--every-s 5]

Run by bench_secc.py in the launcher's network namespace for each phase. The controller keeps the lateness of its
last minute of ticks and feeds ``ccs_control_tick_lateness_seconds`` (a histogram) from it at each scrape, so
scraping every few seconds sees every tick once. Until SIGTERM/SIGINT; then one JSON line on stdout: the ticks
of the phase, how many started more than 5 ms late (the histogram's 5 ms bucket), and the bound of the highest
histogram bucket any of them fell in (the largest lateness is at most that).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import threading

import httpx
from prometheus_client.parser import text_string_to_metric_families

#: Issue 13's bound on a control tick's lateness (s); a bucket bound of the controller's histogram.
LATE_BOUND_S = 0.005


def tick_buckets(metrics_text: str) -> dict[float, float]:
    """The lateness histogram's cumulative buckets: upper bound s (inf for all) -> ticks observed so far."""
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "ccs_control_tick_lateness_seconds_bucket":
                buckets[float(sample.labels["le"])] = sample.value
    return buckets


def phase_summary(first: dict[float, float], last: dict[float, float]) -> dict[str, object]:
    """Ticks between two scrapes, how many more than ``LATE_BOUND_S`` late, the bound of the highest bucket hit."""
    delta = {bound: last.get(bound, 0.0) - first.get(bound, 0.0) for bound in sorted(last)}
    ticks = delta.get(math.inf, 0.0)
    highest_bound_s = next((bound for bound in sorted(delta) if delta[bound] >= ticks), math.inf)
    return {"ticks": int(ticks), "late_over_5ms": int(ticks - delta.get(LATE_BOUND_S, 0.0)),
            "max_at_most_ms": None if ticks == 0 or math.isinf(highest_bound_s) else round(1000 * highest_bound_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("--every-s", type=float, default=5.0, help="seconds between scrapes (< 60)")
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    scrapes: list[dict[float, float]] = []
    errors = 0
    with httpx.Client(base_url=args.base_url, timeout=10.0) as client:
        while True:
            try:
                scrapes.append(tick_buckets(client.get("/metrics").text))
            except httpx.HTTPError:
                errors += 1
            if stop.wait(args.every_s):
                try:  # the phase's last ticks
                    scrapes.append(tick_buckets(client.get("/metrics").text))
                except httpx.HTTPError:
                    errors += 1
                break
    summary = phase_summary(scrapes[0], scrapes[-1]) if len(scrapes) >= 2 else {"ticks": 0}
    print(json.dumps({**summary, "scrapes": len(scrapes), "scrape_errors": errors}), flush=True)

if __name__ == "__main__":
    main()
