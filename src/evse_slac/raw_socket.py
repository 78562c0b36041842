"""AF_PACKET sockets that carry only HomePlug MMEs (ethertype 0x88E1), used through asyncio.

A socket bound to one ethertype (not ETH_P_ALL, unlike pyslac's) does not see the frames its own host sends,
so a peer never reads back its own requests. Needs root or CAP_NET_RAW.
"""

from __future__ import annotations

import asyncio
import socket

from evse_slac.frames import ETHERTYPE_HOMEPLUG

RECEIVE_BUFFER_BYTES = 1514  # one Ethernet frame without FCS


def open_homeplug_socket(iface: str) -> socket.socket:
    """A non-blocking raw socket on ``iface`` that receives and sends HomePlug MMEs."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE_HOMEPLUG))
    try:
        sock.bind((iface, ETHERTYPE_HOMEPLUG))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def socket_mac(sock: socket.socket) -> bytes:
    """The MAC address of the interface a bound AF_PACKET socket is on."""
    return bytes(sock.getsockname()[4][:6])


async def receive_frame(sock: socket.socket) -> bytes:
    return await asyncio.get_running_loop().sock_recv(sock, RECEIVE_BUFFER_BYTES)


async def send_frame(sock: socket.socket, frame: bytes) -> None:
    await asyncio.get_running_loop().sock_sendall(sock, frame)
