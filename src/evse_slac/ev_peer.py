"""A simulated EV for ISO 15118-3 SLAC, which also plays the EVSE's PLC modem.

On a real cable the EVSE's QCA7000 modem answers the EVSE host's CM_SET_KEY.REQ and turns every sound the
EV sends into a CM_ATTEN_PROFILE.IND for the EVSE host. A veth pair has no modem, so this peer sends those
frames too (``emulate_modem``); without them pyslac can never match (pyslac counts sounds only through
CM_ATTEN_PROFILE.IND).

EV host behaviour (ISO 15118-3 §9, timings from shared/reference/standards.md §3):

1. CM_SLAC_PARM.REQ (broadcast), repeated every ``parm_interval_s`` until a CM_SLAC_PARM.CNF with our RunID
   arrives or ``parm_deadline_s`` passes.
2. C_EV_start_atten_char_inds = 3 × CM_START_ATTEN_CHAR.IND, TP_EV_batch_msg_interval apart.
3. NUM_SOUNDS × CM_MNBC_SOUND.IND (CNT counting down), each followed by the emulated modem's
   CM_ATTEN_PROFILE.IND (every group at ``attenuation_dB``).
4. CM_ATTEN_CHAR.IND awaited until TT_EV_atten_results (1.2 s) after the first START_ATTEN_CHAR; answered with
   CM_ATTEN_CHAR.RSP; matched only if its average attenuation is <= ``threshold_dB``.
5. CM_SLAC_MATCH.REQ, up to 1 + C_EV_match_retry times, TT_match_response apart; NID and NMK from the CNF.

CLI (root, inside the EV's network namespace)::

    python -m evse_slac.ev_peer --iface ev0 [--runs 3] [--sounds 10] [--threshold-db 40]
                                [--attenuation-db 25] [--silent] [--no-modem] [--parm-deadline-s 30]

prints ``READY {json}`` once listening, then ``RESULT {json}`` per run; exit status 0 when every run
matched, 2 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from evse_slac import raw_socket
from evse_slac.frames import (
    BROADCAST_MAC,
    QCA_LOCAL_MAC,
    SLAC_GROUPS,
    AttenCharInd,
    AttenCharRsp,
    AttenProfileInd,
    Frame,
    FrameError,
    MnbcSoundInd,
    SetKeyCnf,
    SetKeyReq,
    SlacMatchCnf,
    SlacMatchReq,
    SlacParmCnf,
    SlacParmReq,
    StartAttenCharInd,
    build_frame,
    mac_to_str,
    parse_frame,
)

logger = logging.getLogger(__name__)

EV_ATTENUATION_LIMIT_DB = 40.0  # pyslac's EV-side SLAC_LIMIT; ISO 15118-3 leaves the threshold to the EV
TP_EV_BATCH_MSG_INTERVAL_S = 0.02  # ISO 15118-3: 20..50 ms
TT_MATCH_RESPONSE_S = 0.2  # ISO 15118-3 Table A.1
TT_EV_ATTEN_RESULTS_S = 1.2  # ISO 15118-3 Table A.1
C_EV_START_ATTEN_CHAR_INDS = 3
C_EV_MATCH_RETRY = 2


@dataclass
class EvPeerOptions:
    num_sounds: int | None = None  # None: as many as the EVSE asks for in CM_SLAC_PARM.CNF (10)
    time_out_100ms: int | None = None  # sounding window announced in START_ATTEN_CHAR; None: the EVSE's
    threshold_dB: float = EV_ATTENUATION_LIMIT_DB
    attenuation_dB: float = 25.0  # what the emulated modem measures for every group
    silent: bool = False  # an EV that never starts SLAC (the modem emulation still answers)
    emulate_modem: bool = True
    batch_interval_s: float = TP_EV_BATCH_MSG_INTERVAL_S
    parm_interval_s: float = TT_MATCH_RESPONSE_S
    parm_deadline_s: float = 30.0
    atten_results_timeout_s: float = TT_EV_ATTEN_RESULTS_S
    match_response_timeout_s: float = TT_MATCH_RESPONSE_S
    match_retries: int = C_EV_MATCH_RETRY


@dataclass
class EvSlacResult:
    matched: bool
    reason: str
    run_id: bytes
    evse_mac: bytes | None = None
    nid: bytes | None = None
    nmk: bytes | None = None
    attenuation_dB: float | None = None  # average of the EVSE's CM_ATTEN_CHAR.IND

    def as_json(self) -> dict:
        return {"matched": self.matched, "reason": self.reason, "run_id": self.run_id.hex(),
                "evse_mac": mac_to_str(self.evse_mac) if self.evse_mac else None,
                "nid": self.nid.hex() if self.nid else None, "nmk": self.nmk.hex() if self.nmk else None,
                "attenuation_db": self.attenuation_dB}


class EvSlacPeer:
    """``async with EvSlacPeer(iface, options) as peer: result = await peer.run_once()``."""

    def __init__(self, iface: str, options: EvPeerOptions | None = None) -> None:
        self.iface = iface
        self.options = options or EvPeerOptions()
        self.mac = b""
        self.modem_keys_set = 0  # CM_SET_KEY.REQs the emulated modem confirmed
        self._sock: socket.socket | None = None
        self._inbox: asyncio.Queue[Frame] = asyncio.Queue()
        self._receiver: asyncio.Task | None = None
        self._runs = 0

    async def __aenter__(self) -> EvSlacPeer:
        self._sock = raw_socket.open_homeplug_socket(self.iface)
        self.mac = raw_socket.socket_mac(self._sock)
        self._receiver = asyncio.create_task(self._receive_loop(), name=f"EV SLAC receiver on {self.iface}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._receiver is not None:
            self._receiver.cancel()
            await asyncio.gather(self._receiver, return_exceptions=True)
        if self._sock is not None:
            self._sock.close()

    async def run_once(self) -> EvSlacResult:
        """One plug-in's matching, from the first CM_SLAC_PARM.REQ to CM_SLAC_MATCH.CNF."""
        self._runs += 1
        run_id = self.mac + (self._runs % 0x10000).to_bytes(2, "big")  # unique per run, as real EVs use the MAC
        while not self._inbox.empty():
            self._inbox.get_nowait()
        if self.options.silent:
            await asyncio.sleep(self.options.parm_deadline_s)
            return EvSlacResult(False, "silent EV: sent no SLAC request", run_id)

        parm_cnf = await self._slac_parm(run_id)
        if parm_cnf is None:
            return EvSlacResult(False, f"no CM_SLAC_PARM.CNF within {self.options.parm_deadline_s} s", run_id)
        evse_mac = parm_cnf.src
        cnf: SlacParmCnf = parm_cnf.message  # type: ignore[assignment]
        num_sounds = self.options.num_sounds if self.options.num_sounds is not None else cnf.num_sounds
        time_out = self.options.time_out_100ms if self.options.time_out_100ms is not None else cnf.time_out_100ms

        started = time.monotonic()
        await self._sounding(run_id, evse_mac, num_sounds, time_out)
        atten = await self._wait_for(lambda m: isinstance(m, AttenCharInd) and m.run_id == run_id,
                                     started + self.options.atten_results_timeout_s - time.monotonic())
        if atten is None:
            return EvSlacResult(False, "no CM_ATTEN_CHAR.IND within TT_EV_atten_results", run_id, evse_mac)
        profile = atten.message.attenuation_dB  # type: ignore[union-attr]
        average_dB = sum(profile) / len(profile) if profile else float("inf")
        await self._send(evse_mac, AttenCharRsp(source_address=self.mac, run_id=run_id, result=0))
        if average_dB > self.options.threshold_dB:
            return EvSlacResult(False, f"attenuation {average_dB:.1f} dB above {self.options.threshold_dB} dB",
                                run_id, evse_mac, attenuation_dB=average_dB)

        for _ in range(1 + self.options.match_retries):
            await self._send(evse_mac, SlacMatchReq(pev_mac=self.mac, evse_mac=evse_mac, run_id=run_id))
            match = await self._wait_for(lambda m: isinstance(m, SlacMatchCnf) and m.run_id == run_id,
                                         self.options.match_response_timeout_s)
            if match is not None:
                match_cnf: SlacMatchCnf = match.message  # type: ignore[assignment]
                return EvSlacResult(True, "matched", run_id, evse_mac, match_cnf.nid, match_cnf.nmk, average_dB)
        return EvSlacResult(False, "no CM_SLAC_MATCH.CNF", run_id, evse_mac, attenuation_dB=average_dB)

    async def _slac_parm(self, run_id: bytes) -> Frame | None:
        deadline = time.monotonic() + self.options.parm_deadline_s
        while (remaining_s := deadline - time.monotonic()) > 0:
            await self._send(BROADCAST_MAC, SlacParmReq(run_id=run_id))
            cnf = await self._wait_for(lambda m: isinstance(m, SlacParmCnf) and m.run_id == run_id,
                                       min(self.options.parm_interval_s, remaining_s))
            if cnf is not None:
                return cnf
        return None

    async def _sounding(self, run_id: bytes, evse_mac: bytes, num_sounds: int, time_out_100ms: int) -> None:
        interval_s = self.options.batch_interval_s
        for _ in range(C_EV_START_ATTEN_CHAR_INDS):
            await self._send(BROADCAST_MAC, StartAttenCharInd(forwarding_sta=self.mac, run_id=run_id,
                                                              num_sounds=num_sounds, time_out_100ms=time_out_100ms))
            await asyncio.sleep(interval_s)
        group_dB = max(0, min(255, round(self.options.attenuation_dB)))
        for remaining in range(num_sounds - 1, -1, -1):
            await self._send(BROADCAST_MAC, MnbcSoundInd(run_id=run_id, count=remaining, random=os.urandom(16)))
            if self.options.emulate_modem:
                # What the EVSE's modem reports to its host for the sound it just received.
                await self._send(evse_mac, AttenProfileInd(pev_mac=self.mac, attenuation_dB=(group_dB,) * SLAC_GROUPS),
                                 src=QCA_LOCAL_MAC)
            await asyncio.sleep(interval_s)

    async def _wait_for(self, wanted: Callable[[object], bool], timeout_s: float) -> Frame | None:
        deadline = time.monotonic() + timeout_s
        while (remaining_s := deadline - time.monotonic()) > 0:
            try:
                frame = await asyncio.wait_for(self._inbox.get(), remaining_s)
            except TimeoutError:
                return None
            if wanted(frame.message):
                return frame
        return None

    async def _send(self, dst: bytes, message, src: bytes | None = None) -> None:
        assert self._sock is not None, "use EvSlacPeer in 'async with'"
        await raw_socket.send_frame(self._sock, build_frame(dst, src or self.mac, message))

    async def _receive_loop(self) -> None:
        assert self._sock is not None
        while True:
            data = await raw_socket.receive_frame(self._sock)
            try:
                frame = parse_frame(data)
            except FrameError:
                continue
            if frame.src == self.mac:
                continue
            if isinstance(frame.message, SetKeyReq):
                if self.options.emulate_modem and frame.dst == QCA_LOCAL_MAC:
                    self.modem_keys_set += 1
                    await self._send(frame.src, SetKeyCnf(result=0), src=QCA_LOCAL_MAC)
            elif frame.dst in (self.mac, BROADCAST_MAC):
                self._inbox.put_nowait(frame)


async def run_peer(iface: str, options: EvPeerOptions, runs: int,
                   report: Callable[[EvSlacResult], None] = lambda result: None,
                   ready: Callable[[EvSlacPeer], None] = lambda peer: None) -> list[EvSlacResult]:
    """``runs`` plug-ins one after another on ``iface``; ``ready`` is called once the socket is open (the modem
    emulation answers from then on), each result goes to ``report`` as it comes."""
    results = []
    async with EvSlacPeer(iface, options) as peer:
        ready(peer)
        for _ in range(runs):
            result = await peer.run_once()
            report(result)
            results.append(result)
    return results


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m evse_slac.ev_peer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--iface", required=True, help="the EV end of the link (e.g. a veth end)")
    parser.add_argument("--runs", type=int, default=1, help="plug-ins to match one after another")
    parser.add_argument("--sounds", type=int, default=None, help="M-sounds to send (default: as the EVSE asks)")
    parser.add_argument("--threshold-db", type=float, default=EV_ATTENUATION_LIMIT_DB,
                        help="highest average attenuation the EV accepts")
    parser.add_argument("--attenuation-db", type=float, default=25.0,
                        help="attenuation the emulated EVSE modem reports for every group")
    parser.add_argument("--silent", action="store_true", help="never send a SLAC request (modem emulation only)")
    parser.add_argument("--no-modem", action="store_true", help="do not emulate the EVSE's modem")
    parser.add_argument("--parm-deadline-s", type=float, default=30.0,
                        help="how long to repeat CM_SLAC_PARM.REQ per run")
    parser.add_argument("--log-level", default="WARNING")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = EvPeerOptions(num_sounds=args.sounds, threshold_dB=args.threshold_db,
                            attenuation_dB=args.attenuation_db, silent=args.silent, emulate_modem=not args.no_modem,
                            parm_deadline_s=args.parm_deadline_s)

    def report(result: EvSlacResult) -> None:
        print("RESULT " + json.dumps(result.as_json()), flush=True)

    def ready(peer: EvSlacPeer) -> None:
        print("READY " + json.dumps({"iface": peer.iface, "mac": mac_to_str(peer.mac)}), flush=True)

    try:
        results = asyncio.run(run_peer(args.iface, options, args.runs, report, ready))
    except KeyboardInterrupt:
        return 130
    return 0 if results and all(result.matched for result in results) else 2


if __name__ == "__main__":
    raise SystemExit(main())
