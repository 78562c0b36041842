"""Build iso15118's SECC ``Config`` from our ``LaunchOptions`` (the one conversion point).

Traps handled here (iso15118 0.31.2):
- ``Config.load_envs()`` must run even when everything is set in code: it also fills
  ``iso15118.shared.settings.shared_settings`` (PKI_PATH, MESSAGE_LOG_JSON, ENABLE_TLS_1_3), which
  the EXI and TLS layers read on every message/handshake.
- ``load_envs(None)`` reads ``$CWD/.env``; a path that does not exist is silently ignored (so we
  check it first); the file's keys are exported into ``os.environ`` and real environment variables
  win over the file.
- ``PROTOCOLS`` and ``AUTH_MODES`` go through ``set()`` (order lost, random per process), so we
  re-read the raw lists in their written order and assign ``supported_protocols`` /
  ``supported_auth_options`` explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import environs
from iso15118.secc.secc_settings import Config
from iso15118.shared.exceptions import NoSupportedAuthenticationModes, NoSupportedProtocols
from iso15118.shared.messages.enums import AuthEnum, Protocol
from iso15118.shared.settings import SettingKey, shared_settings

from evse_secc.errors import LaunchError
from evse_secc.options import LaunchOptions
from evse_secc.preflight import check_readable_file
from evse_secc.protocols import DEFAULT_DC_PROTOCOLS, HlcProtocol, parse_protocols


@dataclass(frozen=True)
class SeccSetup:
    """iso15118's Config plus what we resolved around it."""

    config: Config
    protocols: tuple[HlcProtocol, ...]
    cert_store: Path
    tls_enforced: bool
    tls_1_3: bool


def build_secc_setup(options: LaunchOptions) -> SeccSetup:
    if options.secc_config is not None:
        check_readable_file(options.secc_config, "SECC settings file (--secc-config)")
    config = Config()
    source = str(options.secc_config) if options.secc_config else "$CWD/.env and the environment"
    try:
        config.load_envs(str(options.secc_config) if options.secc_config else None)
    except environs.EnvError as exc:
        raise LaunchError(f"invalid SECC settings in {source}: {exc}") from exc
    except (NoSupportedProtocols, NoSupportedAuthenticationModes) as exc:
        raise LaunchError(f"invalid SECC settings in {source}: {exc}") from exc

    if options.iface:
        config.iface = options.iface
    protocols = _protocols(options, config)
    config.supported_protocols = [Protocol[protocol.value] for protocol in protocols]
    config.supported_auth_options = _auth_modes(config)

    if options.cert_store is not None:
        shared_settings[SettingKey.PKI_PATH] = str(options.cert_store.resolve()) + "/"
    cert_store = Path(shared_settings[SettingKey.PKI_PATH])
    tls_1_3 = bool(shared_settings[SettingKey.ENABLE_TLS_1_3])
    config.env_dump.update(shared_settings, NETWORK_INTERFACE=config.iface,
                           PROTOCOLS=[p.value for p in protocols],
                           AUTH_MODES=[a.value for a in config.supported_auth_options])
    return SeccSetup(config=config, protocols=protocols, cert_store=cert_store,
                     tls_enforced=bool(config.enforce_tls), tls_1_3=tls_1_3)


def _protocols(options: LaunchOptions, config: Config) -> tuple[HlcProtocol, ...]:
    if options.protocols:
        return options.protocols
    written = os.environ.get("PROTOCOLS")  # load_envs exported the file's value, if any
    return parse_protocols(written) if written else DEFAULT_DC_PROTOCOLS


def _auth_modes(config: Config) -> list[AuthEnum]:
    written = (config.env_dump or {}).get("AUTH_MODES") or Config.default_auth_modes
    modes: list[AuthEnum] = []
    for name in written:
        key = name.strip().upper()
        if key not in ("EIM", "PNC"):
            raise LaunchError(f"unknown AUTH_MODES entry {name!r} (known: EIM, PNC)")
        if AuthEnum[key] not in modes:
            modes.append(AuthEnum[key])
    return modes
