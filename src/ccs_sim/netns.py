"""Two network namespaces joined by a veth pair: the EVSE's and the EV's side of the charging cable.

Used by the interoperability tests, the SLAC tests and the demo. Every namespace this module creates
carries the caller's prefix and is removed by ``VethLink.remove()`` (or on leaving the ``with`` block),
so nothing is left behind and nothing outside the namespaces is touched.

Needs root (CAP_SYS_ADMIN + CAP_NET_ADMIN) and iproute2's ``ip``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be created here (not root, no iproute2, or the kernel refuses)."""


def netns_unavailable_reason() -> str | None:
    """Why namespaces cannot be used on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (run the tests as root, as CI does)"
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed (scripts/install-system-deps.sh netns)"
    probe = f"ccsprobe{uuid.uuid4().hex[:6]}"
    created = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if created.returncode != 0:
        return f"'ip netns add' failed: {created.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise NetnsUnavailable(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _sysctl(namespace: str, key: str, value: str) -> None:
    subprocess.run(["ip", "netns", "exec", namespace, "sysctl", "-qw", f"{key}={value}"],
                   capture_output=True)


@dataclass
class VethLink:
    """An EVSE namespace and an EV namespace, each with one end of a veth pair (up, IPv6 link-local)."""

    prefix: str
    evse_namespace: str = ""
    ev_namespace: str = ""
    evse_iface: str = "evse0"
    ev_iface: str = "ev0"
    evse_mac: str = "02:00:00:00:5e:01"
    ev_mac: str = "02:00:00:00:e0:01"
    _created: list[str] = field(default_factory=list)

    def create(self) -> "VethLink":
        suffix = uuid.uuid4().hex[:6]
        self.evse_namespace = self.evse_namespace or f"{self.prefix}-evse-{suffix}"
        self.ev_namespace = self.ev_namespace or f"{self.prefix}-ev-{suffix}"
        try:
            for namespace in (self.evse_namespace, self.ev_namespace):
                _ip("netns", "add", namespace)
                self._created.append(namespace)
            _ip("link", "add", self.evse_iface, "netns", self.evse_namespace, "address", self.evse_mac,
                "type", "veth", "peer", "name", self.ev_iface, "netns", self.ev_namespace,
                "address", self.ev_mac)
            for namespace, iface in ((self.evse_namespace, self.evse_iface), (self.ev_namespace, self.ev_iface)):
                # No duplicate-address detection: the fe80:: address must be usable at once.
                _sysctl(namespace, "net.ipv6.conf.default.accept_dad", "0")
                _sysctl(namespace, f"net.ipv6.conf.{iface}.accept_dad", "0")
                _ip("-n", namespace, "link", "set", "lo", "up")
                _ip("-n", namespace, "link", "set", iface, "up")
        except Exception:
            self.remove()
            raise
        return self

    def remove(self) -> None:
        while self._created:
            subprocess.run(["ip", "netns", "delete", self._created.pop()], capture_output=True)

    def in_evse(self, argv: list[str]) -> list[str]:
        """argv wrapped to run inside the EVSE namespace."""
        return ["ip", "netns", "exec", self.evse_namespace, *argv]

    def in_ev(self, argv: list[str]) -> list[str]:
        """argv wrapped to run inside the EV namespace."""
        return ["ip", "netns", "exec", self.ev_namespace, *argv]

    def __enter__(self) -> "VethLink":
        return self.create()

    def __exit__(self, *exc_info: object) -> None:
        self.remove()
