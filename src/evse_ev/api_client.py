"""A small client for the Live Controller API, standard library only (``http.client``).

``http.client`` resolves a scoped IPv6 link-local host (``fe80::1%ev0``) through ``getaddrinfo``, so the
EV namespace reaches an API that listens in the EVSE namespace over the veth, with no IPv4 set up.
"""

from __future__ import annotations

import asyncio
import http.client
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_S = 5.0


class ApiError(RuntimeError):
    """The API answered with an error or could not be reached."""


@dataclass(frozen=True)
class ApiClient:
    host: str  # "fe80::200:ff:fe00:5e01%ev0", "127.0.0.1", ...
    port: int
    token: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S

    @classmethod
    def from_url(cls, url: str, token: str | None = None) -> ApiClient:
        """``http://[fe80::1%ev0]:8000`` or ``http://127.0.0.1:8000`` (a ``%25`` zone separator works too)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.netloc:
            raise ValueError(f"expected http://host:port, got {url!r}")
        netloc = parts.netloc.replace("%25", "%")
        if netloc.startswith("["):
            host, _, rest = netloc[1:].partition("]")
            port = int(rest.lstrip(":") or 80)
        else:
            host, _, port_text = netloc.partition(":")
            port = int(port_text or 80)
        return cls(host, port, token)

    def request(self, method: str, path: str, body: dict | None = None) -> dict:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout_s)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except OSError as exc:
            raise ApiError(f"{method} {path} on [{self.host}]:{self.port}: {exc}") from exc
        finally:
            connection.close()
        try:
            data = json.loads(payload or b"{}")
        except ValueError:
            raise ApiError(f"{method} {path}: not JSON (HTTP {response.status})") from None
        if response.status >= 400 or (isinstance(data, dict) and data.get("status") == "error"):
            raise ApiError(f"{method} {path}: HTTP {response.status}: {data}")
        return data

    def get(self, path: str) -> dict:
        return self.request("GET", path)

    def post(self, path: str, body: dict) -> dict:
        return self.request("POST", path, body)

    async def aget(self, path: str) -> dict:
        return await asyncio.to_thread(self.get, path)

    async def apost(self, path: str, body: dict) -> dict:
        return await asyncio.to_thread(self.post, path, body)
