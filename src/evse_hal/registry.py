"""Adapter name → factory. Built-in adapters are imported only when chosen; third-party packages add
theirs through the ``evse_hal.adapters`` entry-point group (see docs/writing-an-adapter.md).

A factory is called as ``factory(clock, **options)`` and returns an ``EVSEHardware``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Callable

from evse_hal.interfaces import EVSEHardware

ENTRY_POINT_GROUP = "evse_hal.adapters"

#: Built-in adapters: name → (module, factory attribute), imported on first use.
BUILTIN_ADAPTERS: dict[str, tuple[str, str]] = {
    "sim": ("evse_hal.adapters.sim", "create_sim_hardware"),
}

AdapterFactory = Callable[..., EVSEHardware]
_registered: dict[str, AdapterFactory] = {}


class UnknownAdapterError(LookupError):
    pass


def register_adapter(name: str, factory: AdapterFactory) -> None:
    """Register an adapter in-process (tests, or an application embedding the controller)."""
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"adapter name must be alphanumeric (with - or _), got {name!r}")
    _registered[name] = factory


def _entry_point_adapters() -> dict[str, Any]:
    return {entry_point.name: entry_point for entry_point in entry_points(group=ENTRY_POINT_GROUP)}


def known_adapters() -> list[str]:
    return sorted({*BUILTIN_ADAPTERS, *_registered, *_entry_point_adapters()})


def resolve_adapter(name: str) -> AdapterFactory:
    if name in _registered:
        return _registered[name]
    if name in BUILTIN_ADAPTERS:
        module_name, attribute = BUILTIN_ADAPTERS[name]
        return getattr(importlib.import_module(module_name), attribute)
    entry_point = _entry_point_adapters().get(name)
    if entry_point is not None:
        return entry_point.load()
    raise UnknownAdapterError(f"unknown HAL adapter {name!r}; known adapters: {', '.join(known_adapters())}")


def create_hardware(name: str, clock: Any, **options: Any) -> EVSEHardware:
    """Build the hardware for adapter ``name``. Nothing is touched before this call."""
    hardware = resolve_adapter(name)(clock, **options)
    if not isinstance(hardware, EVSEHardware):
        raise TypeError(f"adapter {name!r} returned {type(hardware).__name__}, not an EVSEHardware")
    return hardware
