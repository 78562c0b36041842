"""Load generators for bench_supervision.py, each run in a process of its own (never in the server's).

    python bench/supervision_load.py status URL --clients 10 --duration-s 20
    python bench/supervision_load.py stream URL --subscribers 50 --duration-s 20

``status``: ``clients`` keep-alive httpx connections, each asking ``GET /status`` again as soon as the last
answer arrived (as fast as the server lets them). ``stream``: ``subscribers`` ``GET /stream`` connections
reading Server-Sent Events at the server's default pace. Each prints one ``ready`` line once every
connection answered once, then, at the end (``duration_s`` or SIGTERM), one JSON line of counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter

import httpx

READY_LINE = "ready"


async def hammer_status(url: str, clients: int, stop: asyncio.Event, ready: asyncio.Event) -> dict[str, float]:
    codes: Counter[int] = Counter()
    errors = 0
    answered_once = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=10.0, limits=limits) as client:

        async def one_client() -> None:
            nonlocal errors, answered_once
            first = True
            while not stop.is_set():
                try:
                    response = await client.get("/status")
                    await response.aread()
                    codes[response.status_code] += 1
                except httpx.HTTPError:
                    errors += 1
                    await asyncio.sleep(0.01)
                if first:
                    first = False
                    answered_once += 1
                    if answered_once == clients:
                        ready.set()

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed_s = time.perf_counter() - started
    total = sum(codes.values())
    return {"requests": total, "elapsed_s": elapsed_s, "ok": codes.get(200, 0), "too_many": codes.get(429, 0),
            "other_status": total - codes.get(200, 0) - codes.get(429, 0), "errors": errors}


async def subscribe_stream(url: str, subscribers: int, stop: asyncio.Event, ready: asyncio.Event) -> dict[str, float]:
    events = 0
    errors = 0
    subscribed = 0
    limits = httpx.Limits(max_connections=subscribers, max_keepalive_connections=subscribers)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10.0, read=30.0), limits=limits) as client:

        async def one_subscriber() -> None:
            nonlocal events, errors, subscribed
            first = True
            while not stop.is_set():
                try:
                    async with client.stream("GET", "/stream") as response:
                        async for line in response.aiter_lines():
                            if line.startswith("data:"):
                                events += 1
                                if first:
                                    first = False
                                    subscribed += 1
                                    if subscribed == subscribers:
                                        ready.set()
                            if stop.is_set():
                                return
                except httpx.HTTPError:
                    errors += 1
                    await asyncio.sleep(0.1)

        started = time.perf_counter()
        tasks = [asyncio.create_task(one_subscriber()) for _ in range(subscribers)]
        await stop.wait()
        await asyncio.wait(tasks, timeout=2.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        elapsed_s = time.perf_counter() - started
    return {"events": events, "elapsed_s": elapsed_s, "errors": errors}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("status", "stream"))
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--duration-s", type=float, default=600.0)
    args = parser.parse_args()
    stop = asyncio.Event()
    ready = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.call_later(args.duration_s, stop.set)

    async def announce() -> None:
        await ready.wait()
        print(READY_LINE, flush=True)

    announcer = asyncio.create_task(announce())
    if args.kind == "status":
        result = await hammer_status(args.url, args.clients, stop, ready)
    else:
        result = await subscribe_stream(args.url, args.subscribers, stop, ready)
    announcer.cancel()
    print(json.dumps({"kind": args.kind, **result}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
