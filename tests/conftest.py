"""Shared pytest fixtures and skip rules."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from evse_ev.demo_network import VethLink, netns_unavailable_reason

IN_CI = os.environ.get("CI") == "true"

# httpx's ASGITransport (the in-process test client of every API test) runs `import sniffio` on each request
# (httpx/_transports/asgi.py, is_running_trio) to see whether trio runs. sniffio is not installed (anyio >= 4.x no
# longer needs it) and a failed import is not cached: each request searched every sys.path entry again, ~15 % of
# an API test's time (cProfile of tests/core/test_faults.py). None in sys.modules makes that import fail at once,
# with the same ImportError: the answer ("not trio") is unchanged. Only when sniffio is really absent.
if importlib.util.find_spec("sniffio") is None:
    sys.modules["sniffio"] = None  # type: ignore[assignment]


def require_netns() -> None:
    """Skip (outside CI) or fail (in CI) when network namespaces cannot be created."""
    reason = netns_unavailable_reason()
    if reason is None:
        return
    if IN_CI:
        pytest.fail(f"CI must run the namespace tests, but: {reason}")
    pytest.skip(reason)


@pytest.fixture
def veth_link(request: pytest.FixtureRequest):
    """A fresh EVSE/EV namespace pair joined by a veth, removed after the test."""
    require_netns()
    prefix = getattr(request, "param", "ccst")
    with VethLink(prefix=prefix) as link:
        yield link
