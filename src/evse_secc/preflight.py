"""Checks run before the SECC starts, each turning a known failure into one clear LaunchError.

iso15118 reports these deep inside its tasks (a missing interface is a ``KeyError`` in psutil's
table, a bind failure is logged and swallowed by ``wait_for_tasks``, a missing ``java`` is a py4j
traceback), so the launcher looks first.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import shutil
import socket
from pathlib import Path

import psutil

from evse_secc.errors import LaunchError

#: ISO 15118-2 / DIN SPEC 70121: the SECC listens for SDP requests on UDP port 15118.
SDP_SERVER_PORT = 15118


def check_readable_file(path: Path, what: str) -> None:
    """``path`` exists, is a file and this process may read it."""
    if not path.exists():
        raise LaunchError(f"{what} {path} does not exist")
    if not path.is_file():
        raise LaunchError(f"{what} {path} is not a file")
    if not os.access(path, os.R_OK):
        raise LaunchError(f"{what} {path} is not readable by this user (permission denied)")


def check_java() -> str:
    """The path of ``java`` (the EXI codec runs in a JVM); LaunchError when there is none."""
    java = shutil.which("java")
    if java is None:
        raise LaunchError("no 'java' on PATH: the ISO 15118 EXI codec runs in a Java VM (JRE 11 or newer); "
                          "install one (scripts/install-system-deps.sh java)")
    return java


def ipv6_link_local_address(iface: str) -> ipaddress.IPv6Address:
    """The interface's IPv6 link-local (fe80::/10) address; LaunchError when the interface or it is missing."""
    addresses = psutil.net_if_addrs()
    if iface not in addresses:
        known = ", ".join(sorted(addresses)) or "none"
        raise LaunchError(f"network interface {iface!r} not found (interfaces here: {known}); "
                          "pass --iface or NETWORK_INTERFACE in the --secc-config file")
    for entry in addresses[iface]:
        if entry.family == socket.AF_INET6:
            address = ipaddress.IPv6Address(entry.address.split("%")[0])
            if address.is_link_local:
                return address
    raise LaunchError(f"interface {iface!r} has no IPv6 link-local address (fe80::); SDP and the V2G TCP "
                      f"server need one. Bring it up ('ip link set {iface} up'), make sure IPv6 is enabled "
                      f"on it, and wait for duplicate-address detection to finish")


def check_sdp_port(iface: str) -> None:
    """Bind UDP ``SDP_SERVER_PORT`` on ``iface`` as the SECC will, then release it."""
    probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, iface.encode("ascii") + b"\0")
        probe.bind(("", SDP_SERVER_PORT))
    except PermissionError as exc:
        raise LaunchError(f"permission denied binding UDP port {SDP_SERVER_PORT} to {iface!r} ({exc.strerror}); "
                          "run as root or grant CAP_NET_RAW (SO_BINDTODEVICE needs it on kernels < 5.7)") from exc
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise LaunchError(f"UDP port {SDP_SERVER_PORT} is already in use here: another SECC is running "
                              "in this network namespace") from exc
        raise LaunchError(f"cannot bind UDP port {SDP_SERVER_PORT} on {iface!r}: {exc}") from exc
    finally:
        probe.close()
