"""Shared pytest fixtures and skip rules."""

from __future__ import annotations

import os

import pytest

from evse_ev.demo_network import VethLink, netns_unavailable_reason

IN_CI = os.environ.get("CI") == "true"


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
