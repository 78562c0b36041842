"""The OCPP client's configuration: flags over environment (``CCS_SIM_OCPP_*``) over a TOML file, checked once.

``ocpp_config_from_arguments(args)`` gives ``None`` when nothing configures OCPP (no URL anywhere and no other
OCPP setting): the client stays off. Anything wrong is an ``OcppConfigError`` whose ``str()`` is one line naming
the setting, the value and what would do.

The station connects to ``url`` + ``/`` + ``station_id`` (OCPP-J: the charging station's identity is the last
path segment), unless the URL already ends with ``/<station_id>``.

File (``--ocpp-config FILE`` / ``CCS_SIM_OCPP_CONFIG``): TOML, top-level keys named as the fields below, e.g.::

    url = "wss://csms.example/ocpp"
    station_id = "CS1"
    version = "2.0.1"
    security_profile = 2
    password = "0123456789abcdef"
    ca_file = "csms-ca.pem"
    eim_id_token = "04A2B3C4D5E6F7"
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ccs_sim.startup_errors import StartupRefused

ENV_PREFIX = "CCS_SIM_OCPP_"
CONFIG_FILE_ENV = ENV_PREFIX + "CONFIG"
VERSIONS = ("1.6", "2.0.1")
#: Accepted spellings of the versions.
VERSION_ALIASES = {"1.6": "1.6", "1.6j": "1.6", "16": "1.6", "ocpp1.6": "1.6",
                   "2.0.1": "2.0.1", "201": "2.0.1", "ocpp2.0.1": "2.0.1"}
#: Security profiles (OCPP 1.6 Security Whitepaper ed. 3 §2; OCPP 2.0.1 Part 2 A00 Security):
#: 0 none (not in the standards: tests and closed networks), 1 Basic auth over ws, 2 TLS + Basic, 3 mutual TLS.
SECURITY_PROFILES = (0, 1, 2, 3)
#: The kinds of id token (OCPP 2.0.1 Part 2, data type IdTokenEnumType).
ID_TOKEN_TYPES_201 = ("Central", "eMAID", "ISO14443", "ISO15693", "KeyCode", "Local", "MacAddress",
                      "NoAuthorization")
#: An RFID card's UID (IdTokenEnumType ISO14443), the usual external identification means.
DEFAULT_EIM_ID_TOKEN_TYPE = "ISO14443"
#: The longest id token: 1.6 IdToken is CiString20Type; 2.0.1 IdTokenType.idToken has maxLength 36.
ID_TOKEN_MAX_LENGTH = {"1.6": 20, "2.0.1": 36}


class OcppConfigError(StartupRefused, ValueError):
    """An OCPP setting is missing or wrong: one line, no traceback."""


@dataclass(frozen=True)
class OcppConfig:
    url: str
    station_id: str
    version: str = "1.6"
    security_profile: int = 0
    password: str | None = None
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    call_timeout_s: float = 30.0
    meter_interval_s: float = 60.0
    queue_attempts: int = 3
    queue_retry_interval_s: float = 30.0
    #: Transaction messages the durable queue holds before it drops intermediate samples (libocpp's default
    #: 500; the rule: ``queue_cap.py``).
    queue_max_messages: int = 500
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    #: 1.6: the connector id; 2.0.1: the connector id within ``evse_id``.
    connector_id: int = 1
    evse_id: int = 1
    #: The station's external identification means (EIM: OCPP 2.0.1 C08, e.g. an RFID reader): the id token it
    #: presents for an ISO 15118 EIM session, sent in Authorize (``authorization.py``). None: such a session
    #: charges without authorisation (1.6 idTag NoAuthorization, 2.0.1 IdToken type NoAuthorization).
    eim_id_token: str | None = None
    #: Its 2.0.1 IdTokenEnumType (1.6 sends the token alone, as idTag).
    eim_id_token_type: str = DEFAULT_EIM_ID_TOKEN_TYPE
    #: Sent in BootNotification.
    vendor: str = "ccs-sim"
    model: str = "ccs-sim DC"

    @property
    def subprotocol(self) -> str:
        """The websocket subprotocol of the version (OCPP-J 1.6 §3.1.2; OCPP 2.0.1 Part 4 §3.1.2)."""
        return "ocpp" + self.version

    @property
    def connect_url(self) -> str:
        """Where the station connects: ``url`` with the station id as the last path segment."""
        base = self.url.rstrip("/")
        return base if base.endswith("/" + self.station_id) else f"{base}/{self.station_id}"

    def check(self) -> OcppConfig:
        """The settings together make sense; else ``OcppConfigError``. Returns self."""
        scheme = urlsplit(self.url).scheme
        if scheme not in ("ws", "wss") or not urlsplit(self.url).hostname:
            raise OcppConfigError(f"OCPP url {self.url!r}: expected ws://host[:port]/path or wss://...")
        if not self.station_id or any(c in self.station_id for c in ":/?#% ") or len(self.station_id) > 48:
            raise OcppConfigError(f"OCPP station id {self.station_id!r}: 1..48 characters, none of ': /?#%' "
                                  "(it is a URL path segment and the Basic auth user name)")
        if self.version not in VERSIONS:
            raise OcppConfigError(f"OCPP version {self.version!r}: expected one of {', '.join(VERSIONS)}")
        if self.security_profile not in SECURITY_PROFILES:
            raise OcppConfigError(f"OCPP security profile {self.security_profile!r}: expected 0, 1, 2 or 3")
        if self.security_profile in (1, 2) and not self.password:
            raise OcppConfigError(f"OCPP security profile {self.security_profile} uses HTTP Basic auth: give the "
                                  "password (--ocpp-password or CCS_SIM_OCPP_PASSWORD)")
        if self.security_profile >= 2 and scheme != "wss":
            raise OcppConfigError(f"OCPP security profile {self.security_profile} runs over TLS: the url must "
                                  f"start with wss://, not {scheme}://")
        if self.security_profile == 3 and (self.client_cert_file is None or self.client_key_file is None):
            raise OcppConfigError("OCPP security profile 3 (mutual TLS) needs the station's certificate and key: "
                                  "--ocpp-client-cert and --ocpp-client-key")
        for name in ("ca_file", "client_cert_file", "client_key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise OcppConfigError(f"OCPP {name.replace('_', ' ')} {str(path)!r}: no such file")
        for name in ("call_timeout_s", "meter_interval_s", "queue_retry_interval_s", "reconnect_min_s",
                     "reconnect_max_s"):
            if not getattr(self, name) > 0:
                raise OcppConfigError(f"OCPP {name} must be > 0, not {getattr(self, name)!r}")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise OcppConfigError(f"OCPP reconnect_max_s ({self.reconnect_max_s}) is below reconnect_min_s "
                                  f"({self.reconnect_min_s})")
        if self.queue_attempts < 1 or self.connector_id < 1 or self.evse_id < 1:
            raise OcppConfigError("OCPP queue_attempts, connector_id and evse_id must be >= 1")
        if self.queue_max_messages < 3:
            raise OcppConfigError(f"OCPP queue_max_messages must be >= 3 (a start, a sample and a stop), not "
                                  f"{self.queue_max_messages!r}")
        if self.eim_id_token_type not in ID_TOKEN_TYPES_201:
            raise OcppConfigError(f"OCPP eim_id_token_type {self.eim_id_token_type!r} (--ocpp-eim-id-token-type): "
                                  f"expected one of "
                                  f"{', '.join(ID_TOKEN_TYPES_201)}")
        longest = ID_TOKEN_MAX_LENGTH[self.version]
        if self.eim_id_token is not None and not 0 < len(self.eim_id_token) <= longest:
            raise OcppConfigError(f"OCPP eim_id_token {self.eim_id_token!r} (--ocpp-eim-id-token): 1..{longest} "
                                  f"characters in OCPP {self.version}")
        return self


_FIELD_TYPES: dict[str, str] = {field.name: str(field.type) for field in fields(OcppConfig)}


def _convert(name: str, value: Any, origin: str) -> Any:
    kind = _FIELD_TYPES[name]
    try:
        if kind == "int":
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "Path | None":
            return Path(value)
        if name == "version":
            version = VERSION_ALIASES.get(str(value).strip().lower())
            if version is None:
                raise ValueError
            return version
        if name == "eim_id_token_type":  # IdTokenEnumType, in any case (iso14443 -> ISO14443)
            return {kind.lower(): kind for kind in ID_TOKEN_TYPES_201}.get(str(value).strip().lower(), str(value))
        return str(value)
    except (TypeError, ValueError):
        expected = {"int": "an integer", "float": "a number", "str": "text"}.get(kind, "")
        if name == "version":
            expected = " or ".join(VERSIONS)
        raise OcppConfigError(f"OCPP {name} from {origin}: {value!r} is not {expected or 'valid'}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """The TOML file's settings (its top-level keys must be OcppConfig fields)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise OcppConfigError(f"OCPP config file {str(path)!r}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise OcppConfigError(f"OCPP config file {str(path)!r}: not TOML: {error}") from None
    unknown = sorted(set(data) - set(_FIELD_TYPES))
    if unknown:
        raise OcppConfigError(f"OCPP config file {str(path)!r}: unknown key(s) {', '.join(unknown)} (known: "
                              f"{', '.join(_FIELD_TYPES)})")
    base = Path(path).parent
    settings = {name: _convert(name, value, str(path)) for name, value in data.items()}
    for name in ("ca_file", "client_cert_file", "client_key_file"):  # relative to the file
        if name in settings and not settings[name].is_absolute():
            settings[name] = base / settings[name]
    return settings


def environment_settings(environ: Mapping[str, str]) -> dict[str, Any]:
    """``CCS_SIM_OCPP_<FIELD>`` variables (e.g. ``CCS_SIM_OCPP_URL``, ``CCS_SIM_OCPP_SECURITY_PROFILE``)."""
    settings = {}
    for name in _FIELD_TYPES:
        value = environ.get(ENV_PREFIX + name.upper())
        if value is not None and value != "":
            settings[name] = _convert(name, value, ENV_PREFIX + name.upper())
    return settings


def build_ocpp_config(flags: Mapping[str, Any], environ: Mapping[str, str] | None = None,
                      config_file: Path | None = None) -> OcppConfig | None:
    """Flags over environment over file; ``None`` when nothing sets OCPP up. ``OcppConfigError`` if wrong."""
    environ = os.environ if environ is None else environ
    file_path = config_file or (Path(environ[CONFIG_FILE_ENV]) if environ.get(CONFIG_FILE_ENV) else None)
    merged: dict[str, Any] = read_config_file(file_path) if file_path is not None else {}
    merged.update(environment_settings(environ))
    merged.update({name: _convert(name, value, "--ocpp-" + name.replace("_", "-"))
                   for name, value in flags.items() if value is not None})
    if not merged:
        return None
    if not merged.get("url"):
        given = ", ".join(sorted(merged))
        raise OcppConfigError(f"OCPP settings given ({given}) but no CSMS url: add --ocpp-url ws://host/path "
                              "(or CCS_SIM_OCPP_URL)")
    if not merged.get("station_id"):
        raise OcppConfigError("OCPP needs the station id: --ocpp-station-id (or CCS_SIM_OCPP_STATION_ID)")
    return OcppConfig(**merged).check()


#: flag -> OcppConfig field
FLAGS = {"--ocpp-url": "url", "--ocpp-station-id": "station_id", "--ocpp-version": "version",
         "--ocpp-security-profile": "security_profile", "--ocpp-password": "password", "--ocpp-ca": "ca_file",
         "--ocpp-client-cert": "client_cert_file", "--ocpp-client-key": "client_key_file",
         "--ocpp-meter-interval": "meter_interval_s", "--ocpp-queue-max-messages": "queue_max_messages",
         "--ocpp-eim-id-token": "eim_id_token", "--ocpp-eim-id-token-type": "eim_id_token_type"}


def add_ocpp_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--ocpp-*`` flags (each over its ``CCS_SIM_OCPP_*`` variable and the ``--ocpp-config`` file)."""
    group = parser.add_argument_group("OCPP (off unless --ocpp-url, CCS_SIM_OCPP_URL or --ocpp-config is given)")
    group.add_argument("--ocpp-url", metavar="URL", help="the CSMS, ws://host:port/path or wss://...; the station "
                                                         "id is appended as the last path segment")
    group.add_argument("--ocpp-station-id", metavar="ID", help="the charging station's identity at the CSMS")
    group.add_argument("--ocpp-version", metavar="VERSION", help="1.6 (default) or 2.0.1")
    group.add_argument("--ocpp-security-profile", metavar="N",
                       help="0 none (default), 1 Basic auth, 2 TLS + Basic auth, 3 mutual TLS")
    group.add_argument("--ocpp-password", metavar="KEY", help="Basic auth password (profiles 1 and 2)")
    group.add_argument("--ocpp-ca", metavar="FILE", help="CA certificates (PEM) the CSMS's certificate must chain "
                                                        "to (profiles 2, 3; default: the system's)")
    group.add_argument("--ocpp-client-cert", metavar="FILE", help="the station's certificate (PEM, profile 3)")
    group.add_argument("--ocpp-client-key", metavar="FILE", help="the station's private key (PEM, profile 3)")
    group.add_argument("--ocpp-meter-interval", metavar="S", help="seconds between MeterValues (default 60)")
    group.add_argument("--ocpp-queue-max-messages", metavar="N",
                       help="transaction messages kept while the CSMS is unreachable before intermediate meter "
                            "values are dropped (never a start or stop; default 500)")
    group.add_argument("--ocpp-eim-id-token", metavar="TOKEN",
                       help="the id token the station's own identification means (EIM, e.g. an RFID card's UID) "
                            "presents for an ISO 15118 EIM session, authorised at the CSMS; default none: such a "
                            "session charges with NoAuthorization")
    group.add_argument("--ocpp-eim-id-token-type", metavar="TYPE",
                       help=f"its OCPP 2.0.1 IdTokenEnumType: {', '.join(ID_TOKEN_TYPES_201)} (default "
                            f"{DEFAULT_EIM_ID_TOKEN_TYPE})")
    group.add_argument("--ocpp-config", metavar="FILE", type=Path, help="TOML file of OCPP settings")


def ocpp_config_from_arguments(args: argparse.Namespace,
                               environ: Mapping[str, str] | None = None) -> OcppConfig | None:
    """The parsed ``--ocpp-*`` flags over ``CCS_SIM_OCPP_*`` over the file: the config, or ``None`` (off)."""
    flags = {name: getattr(args, flag[2:].replace("-", "_"), None) for flag, name in FLAGS.items()}
    return build_ocpp_config(flags, environ, getattr(args, "ocpp_config", None))


def ocpp_configured_in_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Whether any ``CCS_SIM_OCPP_*`` variable is set (the server then builds the config)."""
    environ = os.environ if environ is None else environ
    return any(key.startswith(ENV_PREFIX) and value for key, value in environ.items())
