"""Fixtures for the session-record tests."""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest

from records_rig import RecordsRig, open_rig


@pytest.fixture
async def records_rig(tmp_path: Path) -> AsyncIterator[RecordsRig]:
    rig, close = await open_rig(tmp_path / "sessions.db")
    try:
        yield rig
    finally:
        await close()
