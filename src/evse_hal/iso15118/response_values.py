"""The charge loop's response values, built once and reused while what they are built from is unchanged.

An EV repeats CurrentDemandReq / DC_ChargeLoopReq every 50-250 ms, and most values of the response (the DC status,
our maxima, a present reading that did not move) are the same as last time. Building each anew costs a pydantic v1
model validation, and the package's own limit getters also write two INFO log records per call. The package's
response models copy a model field on validation (pydantic v1 ``copy_on_model_validation``), so one object can
serve many responses. Nothing here imports iso15118 (the values come from the caller's ``build``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


class ResponseValues:
    """One value per slot, rebuilt only when the slot's key changes."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[Any, Any]] = {}

    async def reuse(self, slot: str, key: Any, build: Callable[[], Awaitable[Any]]) -> Any:
        """The value last built for ``slot`` while ``key`` is unchanged, else ``build()``'s (then kept)."""
        cached = self._values.get(slot)
        if cached is not None and cached[0] == key:
            return cached[1]
        value = await build()
        self._values[slot] = (key, value)
        return value


def dc_limits_key(evse_data_context: Any, is_dc: bool) -> tuple[Any, ...] | None:
    """What the package's DC maximum-limit getters read of iso15118's ``EVSEDataContext`` (its session limits);
    None for AC, whose current limit also depends on the present voltage (not reused)."""
    if not is_dc:
        return None
    dc = evse_data_context.session_limits.dc_limits
    return (dc.max_voltage, dc.max_charge_current, dc.max_discharge_current, dc.max_charge_power,
            dc.max_discharge_power)
