"""Fixtures for the car-after-car soak tests."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest

from soak_rig import SoakRig

#: The soak charger: 1000 V, limited to 300 A (the issue's "800 V / 300 A" site), default timings.
SOAK_CHARGER_MAX_CURRENT_A = 300.0


@pytest.fixture
async def soak_rig(tmp_path: Path) -> AsyncIterator[SoakRig]:
    rig = await SoakRig.open(tmp_path / "sessions.db", evse_max_current_A=SOAK_CHARGER_MAX_CURRENT_A)
    try:
        yield rig
    finally:
        await rig.close()
