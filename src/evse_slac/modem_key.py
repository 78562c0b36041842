"""The EVSE host's CM_SET_KEY step: give its PLC modem the NMK/NID of the next logical network.

Replaces pyslac's ``evse_set_key()``, which waits a hard-coded 50 s for *any* HomePlug frame as the
confirmation and then sleeps a fixed 10 s (``SLAC_SETTLE_TIME``). Here only a CM_SET_KEY.CNF counts, the
wait is ``cnf_timeout_s`` and the settle delay is ``settle_time_s`` (10 s on a real QCA7000 as Qualcomm's
example does; 0 in simulation, where the "modem" is the simulated EV's emulation).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from evse_slac import raw_socket
from evse_slac.frames import QCA_LOCAL_MAC, FrameError, SetKeyCnf, SetKeyReq, build_frame, parse_frame
from evse_slac.network_key import NetworkKey

logger = logging.getLogger(__name__)

QCA_SETTLE_TIME_S = 10.0  # Qualcomm open-plc-utils example / pyslac SLAC_SETTLE_TIME
DEFAULT_CNF_TIMEOUT_S = 2.0


@dataclass
class ModemKeySetter:
    """Callable ``await setter(key) -> bool``: True when the modem confirmed (Result 0)."""

    iface: str
    cnf_timeout_s: float = DEFAULT_CNF_TIMEOUT_S
    settle_time_s: float = QCA_SETTLE_TIME_S
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def __call__(self, key: NetworkKey) -> bool:
        confirmed = await self._exchange(key)
        if self.settle_time_s > 0:
            await self.sleep(self.settle_time_s)
        return confirmed

    async def _exchange(self, key: NetworkKey) -> bool:
        sock = raw_socket.open_homeplug_socket(self.iface)
        try:
            host_mac = raw_socket.socket_mac(sock)
            await raw_socket.send_frame(sock, build_frame(QCA_LOCAL_MAC, host_mac, SetKeyReq(nid=key.nid, nmk=key.nmk)))
            deadline = time.monotonic() + self.cnf_timeout_s
            while (remaining_s := deadline - time.monotonic()) > 0:
                try:
                    data = await asyncio.wait_for(raw_socket.receive_frame(sock), remaining_s)
                except TimeoutError:
                    break
                try:
                    frame = parse_frame(data)
                except FrameError:
                    continue
                if isinstance(frame.message, SetKeyCnf):
                    if frame.message.result != 0:
                        # Some QCA firmware reports a failure code although the key was taken (pyslac's note).
                        logger.warning("CM_SET_KEY.CNF on %s has Result %d; using the new key anyway",
                                       self.iface, frame.message.result)
                    return frame.message.result == 0
            logger.warning("no CM_SET_KEY.CNF on %s within %.1f s (is the PLC modem there?); "
                           "using the new key anyway", self.iface, self.cnf_timeout_s)
            return False
        finally:
            sock.close()
