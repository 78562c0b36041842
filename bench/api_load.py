"""Load on a Live Controller API from its own process: keep-alive clients hammering ``GET /status`` and
Server-Sent-Event subscribers on ``/stream``, until SIGTERM/SIGINT; counts on stdout at the end.

    python bench/api_load.py http://127.0.0.1:8015 --clients 20 --subscribers 50
    python bench/api_load.py URL --source-addresses 20      # client i from 127.0.0.(2 + i % 20)

Used by bench_secc.py (``--load``) in the launcher's network namespace: the API, the control loop and the
SECC share that process, so this is the load the SECC's response times are measured under. Each /status
client has its own connection (HTTP/1.1 keep-alive) and sends its next request as soon as the answer
came. With ``--source-addresses N`` the clients come from N loopback addresses (a per-address rate limiter
then sees N clients, not one); 0 = the default address. Prints one JSON line: requests answered per HTTP
status, errors, SSE events received, seconds run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections import Counter

import httpx

SSE_RATE_HZ = 5.0  # the dashboard's default event rate (/stream's ``rate``)
#: A 429 answer's client waits this long before asking again (or the Retry-After it was given, if shorter).
RATE_LIMITED_BACKOFF_S = 0.05
CONNECT_TIMEOUT_S = 5.0


def source_address(index: int, addresses: int) -> str | None:
    """127.0.0.2, 127.0.0.3, ... (the Linux loopback answers the whole 127/8); None = the kernel's choice."""
    return None if addresses <= 0 else f"127.0.0.{2 + index % addresses}"


def client_for(index: int, addresses: int, base_url: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source_address(index, addresses), retries=0)
    return httpx.AsyncClient(base_url=base_url, transport=transport,
                             timeout=httpx.Timeout(None, connect=CONNECT_TIMEOUT_S))


async def hammer_status(client: httpx.AsyncClient, statuses: Counter, errors: Counter) -> None:
    while True:
        try:
            response = await client.get("/status")
            statuses[response.status_code] += 1
            if response.status_code == 429:
                retry_s = float(response.headers.get("Retry-After", RATE_LIMITED_BACKOFF_S) or 0)
                await asyncio.sleep(min(retry_s, RATE_LIMITED_BACKOFF_S))
        except httpx.HTTPError as error:
            errors[type(error).__name__] += 1
            await asyncio.sleep(0.05)


async def subscribe(client: httpx.AsyncClient, events: Counter, errors: Counter) -> None:
    while True:
        try:
            async with client.stream("GET", "/stream", params={"rate": SSE_RATE_HZ}) as response:
                events[f"http{response.status_code}"] += 1
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        events["events"] += 1
        except httpx.HTTPError as error:
            errors[type(error).__name__] += 1
        await asyncio.sleep(0.1)


async def run(base_url: str, clients: int, subscribers: int, addresses: int) -> dict:
    statuses: Counter = Counter()
    events: Counter = Counter()
    errors: Counter = Counter()
    http_clients = [client_for(i, addresses, base_url) for i in range(clients + subscribers)]
    tasks = [asyncio.create_task(hammer_status(http_clients[i], statuses, errors)) for i in range(clients)]
    tasks += [asyncio.create_task(subscribe(http_clients[clients + i], events, errors)) for i in range(subscribers)]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    started = time.monotonic()
    print("api_load: running", flush=True)
    await stop.wait()
    elapsed_s = time.monotonic() - started
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in http_clients:
        await client.aclose()
    return {"seconds": round(elapsed_s, 2), "status": {str(k): v for k, v in statuses.items()},
            "status_per_s": round(sum(statuses.values()) / elapsed_s, 1) if elapsed_s else 0.0,
            "sse": dict(events), "errors": dict(errors)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url")
    parser.add_argument("--clients", type=int, default=20, help="keep-alive clients on GET /status")
    parser.add_argument("--subscribers", type=int, default=50, help="SSE subscribers on /stream")
    parser.add_argument("--source-addresses", type=int, default=0,
                        help="spread the clients over this many loopback addresses (0: one)")
    args = parser.parse_args(argv)
    print(json.dumps(asyncio.run(run(args.base_url, args.clients, args.subscribers, args.source_addresses))),
          flush=True)


if __name__ == "__main__":
    main()
