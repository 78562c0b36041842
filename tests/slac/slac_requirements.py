"""Skip rule shared by the SLAC tests: pyslac comes with the 'hlc' extra (scripts/setup.sh hlc)."""

from __future__ import annotations

import importlib.util
import os

import pytest


def skip_without_pyslac() -> None:
    """Skip the calling test module when pyslac is missing, except in CI, where the import error must show."""
    if importlib.util.find_spec("pyslac") is None and os.environ.get("CI") != "true":
        pytest.skip("pyslac is not installed (scripts/setup.sh hlc, or CCS_SIM_TEST_HLC=1 scripts/test.sh)",
                    allow_module_level=True)
