"""Adapter name → factory, and the options a builder hands to it.

Built-in adapters are imported only when chosen; third-party packages add theirs through the
``evse_hal.adapters`` entry-point group (see docs/writing-an-adapter.md).

A factory is called as ``factory(clock, **options)`` and returns an ``EVSEHardware``. Options come from a TOML
file (``--adapter-options FILE``: its top-level keys) and from repeated ``--adapter-option key=value`` (which win
over the file's). A ``key=value`` value is read by ``parse_option_value``: ``true``/``false`` → bool, an integer
→ int, a decimal number → float, anything else (or anything in double quotes) → the text itself.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
import tomllib
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from evse_hal.interfaces import EVSEHardware

ENTRY_POINT_GROUP = "evse_hal.adapters"

#: Built-in adapters: name → (module, factory attribute), imported on first use.
BUILTIN_ADAPTERS: dict[str, tuple[str, str]] = {
    "sim": ("evse_hal.adapters.sim", "create_sim_hardware"),
}

AdapterFactory = Callable[..., EVSEHardware]
_registered: dict[str, AdapterFactory] = {}

_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_OPTION_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class UnknownAdapterError(LookupError):
    pass


class AdapterOptionError(ValueError):
    """An adapter option that is malformed, unreadable, or not accepted by the adapter's factory."""


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


# --- options -------------------------------------------------------------------------------------------

def parse_option_value(text: str) -> bool | int | float | str:
    """``true``/``false`` (any case) → bool; ``42``, ``-7`` → int; ``0.5``, ``1e3`` → float; ``"42"`` (in double
    quotes) → the string ``42``; anything else → the text as written (``can0``, ``/dev/ttyACM0``, ``0x1F``)."""
    if len(text) >= 2 and text.startswith('"') and text.endswith('"'):
        return text[1:-1]
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return text


def parse_option_assignment(text: str) -> tuple[str, bool | int | float | str]:
    """One ``key=value`` (the key a Python identifier, the value read by ``parse_option_value``)."""
    key, separator, value = text.partition("=")
    key = key.strip()
    if not separator:
        raise AdapterOptionError(f"adapter option {text!r}: expected key=value")
    if not _OPTION_KEY.fullmatch(key):
        raise AdapterOptionError(f"adapter option {text!r}: the key must be a name (letters, digits, _), "
                                 f"got {key!r}")
    return key, parse_option_value(value.strip())


def parse_option_assignments(assignments: list[str] | None) -> dict[str, Any]:
    """Repeated ``key=value`` → options (a later key wins)."""
    return dict(parse_option_assignment(text) for text in assignments or [])


def load_options_file(path: Path) -> dict[str, Any]:
    """A TOML file of adapter options: its top-level keys are the factory's keyword arguments."""
    try:
        with open(path, "rb") as file:
            options = tomllib.load(file)
    except OSError as error:
        raise AdapterOptionError(f"adapter options file {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise AdapterOptionError(f"adapter options file {path}: not valid TOML: {error}") from None
    for key in options:
        if not _OPTION_KEY.fullmatch(key):
            raise AdapterOptionError(f"adapter options file {path}: key {key!r} is not a name (letters, digits, _)")
    return options


def merge_adapter_options(options_file: Path | None, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The file's options (if any), then ``options`` on top (a key in both: ``options`` wins)."""
    merged = load_options_file(options_file) if options_file is not None else {}
    merged.update(options or {})
    return merged


def check_adapter_options(name: str, options: Mapping[str, Any]) -> AdapterFactory:
    """Resolve adapter ``name`` and check ``options`` against its factory's signature (without calling it).

    ``UnknownAdapterError`` for an unknown name (listing the known ones); ``AdapterOptionError`` naming an option
    the factory does not take, or an option it requires and did not get. A factory taking ``**options`` is
    checked against its ``adapter_option_names`` attribute (an iterable of names) when it has one, else only
    when it is called (``create_hardware``)."""
    factory = resolve_adapter(name)
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # a builtin or C callable: checked at the call
        return factory
    parameters = list(signature.parameters.values())[1:]  # the first one is the clock
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = {parameter.name for parameter in parameters if parameter.kind in keyword_kinds}
    takes_any = any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters)
    declared = getattr(factory, "adapter_option_names", None)
    if takes_any and declared is not None:  # a factory passing **options on declares the names it takes
        accepted, takes_any = accepted | set(declared), False
    unknown = sorted(set(options) - accepted)
    if unknown and not takes_any:
        raise AdapterOptionError(f"adapter {name!r} does not accept option(s) {', '.join(unknown)}; "
                                 f"it accepts: {', '.join(sorted(accepted)) or 'none'}")
    missing = [parameter.name for parameter in parameters if parameter.kind in keyword_kinds
               and parameter.default is inspect.Parameter.empty and parameter.name not in options]
    if missing:
        raise AdapterOptionError(f"adapter {name!r} needs option(s) {', '.join(missing)}")
    return factory


def create_hardware(name: str, clock: Any, **options: Any) -> EVSEHardware:
    """Build the hardware for adapter ``name``. Nothing is touched before this call."""
    factory = check_adapter_options(name, options)
    try:
        hardware = factory(clock, **options)
    except TypeError as error:
        # A factory passing **options on (e.g. to a config class) refuses an unknown one only here.
        if options and "unexpected keyword argument" in str(error):
            raise AdapterOptionError(f"adapter {name!r} refused its options ({', '.join(sorted(options))}): "
                                     f"{error}") from error
        raise
    if not isinstance(hardware, EVSEHardware):
        raise TypeError(f"adapter {name!r} returned {type(hardware).__name__}, not an EVSEHardware")
    return hardware


# --- command line --------------------------------------------------------------------------------------

def _assignment_argument(text: str) -> tuple[str, Any]:
    try:
        return parse_option_assignment(text)
    except AdapterOptionError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_adapter_arguments(parser: argparse.ArgumentParser, default_hint: str = "sim", with_name: bool = True) -> None:
    """The same flags on every command that builds hardware (``ccs-sim serve``, ``evse-main``; the conformance
    suite takes the name as its argument: ``with_name=False``). ``args.adapter_option`` holds (key, value) pairs;
    see ``options_from_arguments``."""
    if with_name:
        parser.add_argument("--adapter", metavar="NAME",
                            help=f"HAL adapter name, registered in-process or under the {ENTRY_POINT_GROUP!r} "
                                 f"entry-point group (default {default_hint})")
    parser.add_argument("--adapter-options", type=Path, metavar="FILE",
                        help="TOML file of adapter options (top-level keys = the factory's keyword arguments)")
    parser.add_argument("--adapter-option", action="append", type=_assignment_argument, metavar="KEY=VALUE",
                        help="one adapter option, repeatable, wins over the file: true/false -> bool, 42 -> int, "
                             "0.5 or 1e3 -> float, anything else (or \"in quotes\") -> text")


def options_from_arguments(args: argparse.Namespace) -> dict[str, Any] | None:
    """The ``--adapter-option`` pairs as a dict (a later key wins), or None when none was given."""
    pairs = getattr(args, "adapter_option", None)
    return dict(pairs) if pairs else None
