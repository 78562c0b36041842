"""Loading ``pyslac`` without its side effects, and its settings file.

* ``pyslac.session``, ``pyslac.utils`` and ``pyslac.sockets.async_linux_socket`` call
  ``logging.basicConfig(level=DEBUG)`` at import, which takes over the host application's root logger.
  ``import_pyslac_session()`` imports them and puts the root logger's level and handlers back.
* pyslac parses ``LOG_LEVEL`` but never applies it; ``apply_pyslac_log_level()`` does.
* ``Config.load_envs()`` reads ``$CWD/.env`` or, failing that, the first ``.env`` of any parent directory, and
  copies the file into ``os.environ`` (so a second file cannot change a value). ``load_slac_config()`` reads
  only the file it is given, leaves ``os.environ`` alone, and validates as pyslac does.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from types import ModuleType

from dotenv import dotenv_values
from pyslac.enums import Timers
from pyslac.environment import Config

# The loggers pyslac creates (by name, not under "pyslac").
PYSLAC_LOGGER_NAMES = ("slac_session", "slac_utils", "async_linux_socket", "pyslac.environment")
SETTING_NAMES = ("SLAC_INIT_TIMEOUT", "ATTEN_RESULTS_TIMEOUT", "LOG_LEVEL")
# pyslac's limit: the EVSE must answer before the EV's TT_EV_atten_results (1200 ms) runs out [V2G3-A09-31].
MAX_ATTEN_RESULTS_TIMEOUT_MS = 1050


def import_pyslac_session() -> ModuleType:
    """``pyslac.session``, imported with the root logger's level and handlers left as they were."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        return importlib.import_module("pyslac.session")
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


def apply_pyslac_log_level(level: str | int | None) -> None:
    """Set pyslac's own loggers to ``level`` (its LOG_LEVEL setting; "INFO" when None)."""
    resolved = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(resolved, int):
        raise ValueError(f"unknown log level {level!r}")
    for name in PYSLAC_LOGGER_NAMES:
        logging.getLogger(name).setLevel(resolved)


def default_slac_config() -> Config:
    """pyslac's defaults (TT_EVSE_SLAC_init 50 s, the EV's sounding window, LOG_LEVEL INFO); no file read."""
    return Config(slac_init_timeout=float(Timers.SLAC_INIT_TIMEOUT), slac_atten_results_timeout=None,
                  log_level="INFO")


class SlacConfigError(ValueError):
    """A value in the SLAC settings is invalid."""


def load_slac_config(path: Path | str | None) -> Config:
    """pyslac's settings from a .env file: SLAC_INIT_TIMEOUT (s, > 0; TT_EVSE_SLAC_init, the wait for the EV's
    first CM_SLAC_PARM.REQ), ATTEN_RESULTS_TIMEOUT (ms, 1..1050; overrides the EV's sounding window) and
    LOG_LEVEL (applied to pyslac's loggers by SlacService).

    None gives the defaults. Environment variables of the same names take precedence over the file, as in
    pyslac. Raises FileNotFoundError for a missing file and SlacConfigError for a bad value."""
    values: dict[str, str | None] = {}
    if path is not None:
        env_file = Path(path)
        if not env_file.is_file():
            raise FileNotFoundError(f"SLAC settings file not found: {env_file}")
        values.update(dotenv_values(env_file))
    values.update({name: os.environ[name] for name in SETTING_NAMES if name in os.environ})
    config = default_slac_config()
    if values.get("SLAC_INIT_TIMEOUT"):
        config.slac_init_timeout = _parse_number(values["SLAC_INIT_TIMEOUT"], "SLAC_INIT_TIMEOUT", float)
        if config.slac_init_timeout <= 0:
            raise SlacConfigError(f"SLAC_INIT_TIMEOUT must be > 0 s, got {config.slac_init_timeout}")
    if values.get("ATTEN_RESULTS_TIMEOUT"):
        timeout_ms = _parse_number(values["ATTEN_RESULTS_TIMEOUT"], "ATTEN_RESULTS_TIMEOUT", int)
        if not 0 < timeout_ms <= MAX_ATTEN_RESULTS_TIMEOUT_MS:
            raise SlacConfigError(f"ATTEN_RESULTS_TIMEOUT must be 1..{MAX_ATTEN_RESULTS_TIMEOUT_MS} ms, "
                                  f"got {timeout_ms}")
        config.slac_atten_results_timeout = timeout_ms
    if values.get("LOG_LEVEL"):
        level = str(values["LOG_LEVEL"]).strip().upper()
        if not isinstance(logging.getLevelName(level), int):
            raise SlacConfigError(f"LOG_LEVEL must be a logging level name, got {values['LOG_LEVEL']!r}")
        config.log_level = level
    return config


def _parse_number(text: str | None, name: str, kind: type):
    try:
        return kind(str(text).strip())
    except ValueError:
        raise SlacConfigError(f"{name} must be a{'n integer' if kind is int else ' number'}, got {text!r}") from None
