"""Skip rule of the full-flow tests, and the launcher log's CP-loss timelines they check."""

from __future__ import annotations

import importlib.util
import json
import os


def require_fullflow() -> None:
    """Skip (outside CI) or fail (CI=true) when the full flow cannot run here."""
    from evse_ev.demo_network import netns_unavailable_reason

    reason = netns_unavailable_reason()
    missing = [name for name in ("iso15118", "pyslac") if importlib.util.find_spec(name) is None]
    if reason is None and missing:
        reason = f"{', '.join(missing)} not installed (scripts/setup.sh hlc)"
    if reason is None:
        return
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the full-flow tests, but: {reason}")
    pytest.skip(reason)


def cp_loss_records(launcher) -> list[dict]:
    """The CP-loss timelines (``evse-main: CP loss {...}`` lines) in the log of a ``demo_network.Launcher``."""
    from evse_secc.slac_link import CP_LOSS_LINE_PREFIX

    return [json.loads(line[len(CP_LOSS_LINE_PREFIX):]) for line in launcher.log_text().splitlines()
            if line.startswith(CP_LOSS_LINE_PREFIX)]
