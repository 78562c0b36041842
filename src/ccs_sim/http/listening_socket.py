"""The API's public listening socket, bound the same way wherever it is served (the front process, evse-main's
in-process API): the first address ``getaddrinfo`` gives for the host, ``SO_REUSEADDR`` (a restarted server
binds at once), and for ``::`` the system's default of accepting IPv4 as well (uvicorn's own binding, through
asyncio, makes ``::`` IPv6-only: a client of 127.0.0.1 would be refused)."""

from __future__ import annotations

import socket


def bind_listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening: the server calls ``listen``); ``OSError`` if it
    cannot be bound (the address in use, a name that does not resolve, ...)."""
    address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listener = socket.socket(address[0], socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address[4])
    except OSError:
        listener.close()
        raise
    return listener
