"""HalEVSEController against a ManualClock and the simulated hardware: the SECC's calls, replayed in the
order iso15118 makes them, without a network or an EV stack (see hlc_rig.py)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator

import pytest

IN_CI = os.environ.get("CI") == "true"

if importlib.util.find_spec("iso15118") is None and not IN_CI:
    collect_ignore_glob = ["test_*.py"]  # core-only checkout; under CI a missing iso15118 is an import error
else:
    from evse_hal.iso15118 import compat

    compat.install()  # before the test modules import iso15118 (pydantic.v1 hook)


@pytest.fixture
async def rig() -> AsyncIterator[HlcRig]:  # noqa: F821
    from hlc_rig import HlcRig

    rig_ = await HlcRig.create()
    try:
        yield rig_
    finally:
        await rig_.close()
