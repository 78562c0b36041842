"""HomePlug Green PHY management messages (MMEs) used by ISO 15118-3 SLAC: layouts, build, parse.

Frame = Ethernet header (dst, src, ethertype 0x88E1) + HomePlug header (MMV, MMTYPE little-endian, FMSN,
FMID) + payload, zero-padded to the 60-byte Ethernet minimum. Payload layouts follow ISO 15118-3 Annex A
(Tables A.2-A.8) and HomePlug GP 1.1 §11.5; every offset below was checked against ``pyslac.messages``
(see tests/slac/test_frames.py). Multi-byte numbers are big-endian except MMTYPE and the SLAC_MATCH MVFLength,
which HomePlug sends little-endian.

Messages carry only bytes and ints; MAC addresses are 6-byte ``bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Protocol

ETHERTYPE_HOMEPLUG = 0x88E1  # IEEE ethertype of HomePlug AV/GP management messages
HOMEPLUG_MMV = 0x01  # management message version, HomePlug GP 1.1 §11.1.3
ETHERNET_HEADER_BYTES = 14
HOMEPLUG_HEADER_BYTES = 5
HEADER_BYTES = ETHERNET_HEADER_BYTES + HOMEPLUG_HEADER_BYTES  # payload starts at frame offset 19
MIN_FRAME_BYTES = 60  # Ethernet minimum frame without FCS; shorter frames are zero-padded

BROADCAST_MAC = b"\xff" * 6
# Local management address of a Qualcomm (QCA7000/7005) PLC modem: where the host sends CM_SET_KEY.REQ.
QCA_LOCAL_MAC = bytes.fromhex("00b052000001")

SLAC_APPLICATION_TYPE = 0x00  # ISO 15118-3 Table A.2: PEV-EVSE matching
SLAC_SECURITY_TYPE = 0x00  # ISO 15118-3 Table A.2: no security
SLAC_RESP_TYPE = 0x01  # ISO 15118-3 Table A.4: send the sounding results to another GP station (the EVSE host)
SLAC_GROUPS = 58  # number of attenuation groups in HomePlug GP (ISO 15118-3 Table A.5, NumGroups = 0x3A)
RUN_ID_BYTES = 8
NID_BYTES = 7
NMK_BYTES = 16
ID_BYTES = 17  # PEV_ID, EVSE_ID, SOURCE_ID, RESP_ID, SenderID
SLAC_MATCH_REQ_MVF_LENGTH = 0x3E  # ISO 15118-3 Table A.7
SLAC_MATCH_CNF_MVF_LENGTH = 0x56  # ISO 15118-3 Table A.8


class MmBase(IntEnum):
    """MMTYPE base codes (HomePlug GP 1.1 Table 11-5); add an ``MmKind`` to get the MMTYPE."""

    CM_SET_KEY = 0x6008
    CM_SLAC_PARM = 0x6064
    CM_START_ATTEN_CHAR = 0x6068
    CM_ATTEN_CHAR = 0x606C
    CM_MNBC_SOUND = 0x6074
    CM_SLAC_MATCH = 0x607C
    CM_ATTEN_PROFILE = 0x6084


class MmKind(IntEnum):
    """The two least significant bits of MMTYPE."""

    REQ = 0
    CNF = 1
    IND = 2
    RSP = 3


class FrameError(ValueError):
    """The bytes are not a (complete) HomePlug MME of a known layout."""


class Message(Protocol):
    MMTYPE: ClassVar[int]

    def encode_payload(self) -> bytes: ...


def _take(payload: bytes, start: int, length: int, name: str) -> bytes:
    if len(payload) < start + length:
        raise FrameError(f"payload too short for {name}: {len(payload)} B, need {start + length}")
    return payload[start:start + length]


def _need(payload: bytes, length: int, name: str) -> None:
    if len(payload) < length:
        raise FrameError(f"payload too short for {name}: {len(payload)} B, need {length}")


def _check_len(value: bytes, length: int, name: str) -> None:
    if len(value) != length:
        raise ValueError(f"{name} must be {length} bytes, got {len(value)}")


@dataclass(frozen=True)
class SetKeyReq:
    """CM_SET_KEY.REQ, host -> its own modem (ISO 15118-3 Table A.8, HomePlug GP §11.5.4). Payload 38 B."""

    MMTYPE: ClassVar[int] = MmBase.CM_SET_KEY + MmKind.REQ
    nid: bytes
    nmk: bytes
    key_type: int = 0x01  # NMK
    my_nonce: bytes = b"\x00" * 4
    your_nonce: bytes = b"\x00" * 4
    pid: int = 0x04  # HLE protocol
    prn: bytes = b"\x00\x00"
    pmn: int = 0x00
    cco_capability: int = 0x00
    new_eks: int = 0x01  # NMK

    def encode_payload(self) -> bytes:
        _check_len(self.nid, NID_BYTES, "NID")
        _check_len(self.nmk, NMK_BYTES, "NMK")
        return (bytes([self.key_type]) + self.my_nonce + self.your_nonce + bytes([self.pid]) + self.prn
                + bytes([self.pmn, self.cco_capability]) + self.nid + bytes([self.new_eks]) + self.nmk)

    @classmethod
    def decode_payload(cls, payload: bytes) -> SetKeyReq:
        _need(payload, 38, "CM_SET_KEY.REQ")
        return cls(key_type=payload[0], my_nonce=payload[1:5], your_nonce=payload[5:9], pid=payload[9],
                   prn=payload[10:12], pmn=payload[12], cco_capability=payload[13], nid=payload[14:21],
                   new_eks=payload[21], nmk=payload[22:38])


@dataclass(frozen=True)
class SetKeyCnf:
    """CM_SET_KEY.CNF, modem -> host. Result 0 = success. Payload 14 B."""

    MMTYPE: ClassVar[int] = MmBase.CM_SET_KEY + MmKind.CNF
    result: int = 0x00
    my_nonce: bytes = b"\x00" * 4
    your_nonce: bytes = b"\x00" * 4
    pid: int = 0x04
    prn: bytes = b"\x00\x00"
    pmn: int = 0x00
    cco_capability: int = 0x00

    def encode_payload(self) -> bytes:
        return (bytes([self.result]) + self.my_nonce + self.your_nonce + bytes([self.pid]) + self.prn
                + bytes([self.pmn, self.cco_capability]))

    @classmethod
    def decode_payload(cls, payload: bytes) -> SetKeyCnf:
        _need(payload, 14, "CM_SET_KEY.CNF")
        return cls(result=payload[0], my_nonce=payload[1:5], your_nonce=payload[5:9], pid=payload[9],
                   prn=payload[10:12], pmn=payload[12], cco_capability=payload[13])


@dataclass(frozen=True)
class SlacParmReq:
    """CM_SLAC_PARM.REQ, EV -> broadcast (ISO 15118-3 Table A.3). Payload 10 B."""

    MMTYPE: ClassVar[int] = MmBase.CM_SLAC_PARM + MmKind.REQ
    run_id: bytes
    application_type: int = SLAC_APPLICATION_TYPE
    security_type: int = SLAC_SECURITY_TYPE

    def encode_payload(self) -> bytes:
        _check_len(self.run_id, RUN_ID_BYTES, "RunID")
        return bytes([self.application_type, self.security_type]) + self.run_id

    @classmethod
    def decode_payload(cls, payload: bytes) -> SlacParmReq:
        _need(payload, 10, "CM_SLAC_PARM.REQ")
        return cls(application_type=payload[0], security_type=payload[1], run_id=payload[2:10])


@dataclass(frozen=True)
class SlacParmCnf:
    """CM_SLAC_PARM.CNF, EVSE -> EV (ISO 15118-3 Table A.3). Payload 25 B."""

    MMTYPE: ClassVar[int] = MmBase.CM_SLAC_PARM + MmKind.CNF
    forwarding_sta: bytes
    run_id: bytes
    msound_target: bytes = BROADCAST_MAC
    num_sounds: int = 10  # C_EV_match_MNBC
    time_out_100ms: int = 6  # TT_EVSE_match_MNBC = 600 ms
    resp_type: int = SLAC_RESP_TYPE
    application_type: int = SLAC_APPLICATION_TYPE
    security_type: int = SLAC_SECURITY_TYPE

    def encode_payload(self) -> bytes:
        _check_len(self.run_id, RUN_ID_BYTES, "RunID")
        return (self.msound_target + bytes([self.num_sounds, self.time_out_100ms, self.resp_type])
                + self.forwarding_sta + bytes([self.application_type, self.security_type]) + self.run_id)

    @classmethod
    def decode_payload(cls, payload: bytes) -> SlacParmCnf:
        _need(payload, 25, "CM_SLAC_PARM.CNF")
        return cls(msound_target=payload[0:6], num_sounds=payload[6], time_out_100ms=payload[7],
                   resp_type=payload[8], forwarding_sta=payload[9:15], application_type=payload[15],
                   security_type=payload[16], run_id=payload[17:25])


@dataclass(frozen=True)
class StartAttenCharInd:
    """CM_START_ATTEN_CHAR.IND, EV -> broadcast, sent 3 times (ISO 15118-3 Table A.4). Payload 19 B."""

    MMTYPE: ClassVar[int] = MmBase.CM_START_ATTEN_CHAR + MmKind.IND
    forwarding_sta: bytes
    run_id: bytes
    num_sounds: int = 10
    time_out_100ms: int = 6
    resp_type: int = SLAC_RESP_TYPE
    application_type: int = SLAC_APPLICATION_TYPE
    security_type: int = SLAC_SECURITY_TYPE

    def encode_payload(self) -> bytes:
        return (bytes([self.application_type, self.security_type, self.num_sounds, self.time_out_100ms,
                       self.resp_type]) + self.forwarding_sta + self.run_id)

    @classmethod
    def decode_payload(cls, payload: bytes) -> StartAttenCharInd:
        _need(payload, 19, "CM_START_ATTEN_CHAR.IND")
        return cls(application_type=payload[0], security_type=payload[1], num_sounds=payload[2],
                   time_out_100ms=payload[3], resp_type=payload[4], forwarding_sta=payload[5:11],
                   run_id=payload[11:19])


@dataclass(frozen=True)
class MnbcSoundInd:
    """CM_MNBC_SOUND.IND, EV -> broadcast, one per sound; CNT counts down (ISO 15118-3 Table A.4). Payload 52 B."""

    MMTYPE: ClassVar[int] = MmBase.CM_MNBC_SOUND + MmKind.IND
    run_id: bytes
    count: int
    sender_id: bytes = b"\x00" * ID_BYTES
    reserved: bytes = b"\x00" * 8
    random: bytes = b"\x00" * 16
    application_type: int = SLAC_APPLICATION_TYPE
    security_type: int = SLAC_SECURITY_TYPE

    def encode_payload(self) -> bytes:
        return (bytes([self.application_type, self.security_type]) + self.sender_id + bytes([self.count])
                + self.run_id + self.reserved + self.random)

    @classmethod
    def decode_payload(cls, payload: bytes) -> MnbcSoundInd:
        _need(payload, 52, "CM_MNBC_SOUND.IND")
        return cls(application_type=payload[0], security_type=payload[1], sender_id=payload[2:19],
                   count=payload[19], run_id=payload[20:28], reserved=payload[28:36], random=payload[36:52])


@dataclass(frozen=True)
class AttenProfileInd:
    """CM_ATTEN_PROFILE.IND, the EVSE's modem -> EVSE host, one per received sound (HomePlug GP §11.5.x).

    ``attenuation_dB`` holds one attenuation per group (AAG). Payload 8 + NumGroups B."""

    MMTYPE: ClassVar[int] = MmBase.CM_ATTEN_PROFILE + MmKind.IND
    pev_mac: bytes
    attenuation_dB: tuple[int, ...]
    reserved: int = 0

    def encode_payload(self) -> bytes:
        return self.pev_mac + bytes([len(self.attenuation_dB), self.reserved]) + bytes(self.attenuation_dB)

    @classmethod
    def decode_payload(cls, payload: bytes) -> AttenProfileInd:
        _need(payload, 8, "CM_ATTEN_PROFILE.IND")
        groups = _take(payload, 8, payload[6], "CM_ATTEN_PROFILE.IND AAG")
        return cls(pev_mac=payload[0:6], reserved=payload[7], attenuation_dB=tuple(groups))


@dataclass(frozen=True)
class AttenCharInd:
    """CM_ATTEN_CHAR.IND, EVSE -> EV: the averaged attenuation profile (ISO 15118-3 Table A.5).

    Payload 52 + NumGroups B (110 B for 58 groups: a 129-byte frame)."""

    MMTYPE: ClassVar[int] = MmBase.CM_ATTEN_CHAR + MmKind.IND
    source_address: bytes  # the EV's MAC
    run_id: bytes
    num_sounds: int
    attenuation_dB: tuple[int, ...]
    source_id: bytes = b"\x00" * ID_BYTES
    resp_id: bytes = b"\x00" * ID_BYTES
    application_type: int = SLAC_APPLICATION_TYPE
    security_type: int = SLAC_SECURITY_TYPE

    def encode_payload(self) -> bytes:
        return (bytes([self.application_type, self.security_type]) + self.source_address + self.run_id
                + self.source_id + self.resp_id + bytes([self.num_sounds, len(self.attenuation_dB)])
                + bytes(self.attenuation_dB))

    @classmethod
    def decode_payload(cls, payload: bytes) -> AttenCharInd:
        _need(payload, 52, "CM_ATTEN_CHAR.IND")
        groups = _take(payload, 52, payload[51], "CM_ATTEN_CHAR.IND ATTEN_PROFILE")
        return cls(application_type=payload[0], security_type=payload[1], source_address=payload[2:8],
                   run_id=payload[8:16], source_id=payload[16:33], resp_id=payload[33:50],
                   num_sounds=payload[50], attenuation_dB=tuple(groups))


@dataclass(frozen=True)
class AttenCharRsp:
    """CM_ATTEN_CHAR.RSP, EV -> EVSE; Result 0 = success (ISO 15118-3 Table A.5). Payload 51 B."""

    MMTYPE: ClassVar[int] = MmBase.CM_ATTEN_CHAR + MmKind.RSP
    source_address: bytes
    run_id: bytes
    result: int = 0
    source_id: bytes = b"\x00" * ID_BYTES
    resp_id: bytes = b"\x00" * ID_BYTES
    application_type: int = SLAC_APPLICATION_TYPE
    security_type: int = SLAC_SECURITY_TYPE

    def encode_payload(self) -> bytes:
        return (bytes([self.application_type, self.security_type]) + self.source_address + self.run_id
                + self.source_id + self.resp_id + bytes([self.result]))

    @classmethod
    def decode_payload(cls, payload: bytes) -> AttenCharRsp:
        _need(payload, 51, "CM_ATTEN_CHAR.RSP")
        return cls(application_type=payload[0], security_type=payload[1], source_address=payload[2:8],
                   run_id=payload[8:16], source_id=payload[16:33], resp_id=payload[33:50], result=payload[50])


@dataclass(frozen=True)
class SlacMatchReq:
    """CM_SLAC_MATCH.REQ, EV -> EVSE (ISO 15118-3 Table A.7). Payload 66 B."""

    MMTYPE: ClassVar[int] = MmBase.CM_SLAC_MATCH + MmKind.REQ
    pev_mac: bytes
    evse_mac: bytes
    run_id: bytes
    pev_id: bytes = b"\x00" * ID_BYTES
    evse_id: bytes = b"\x00" * ID_BYTES
    reserved: bytes = b"\x00" * 8
    mvf_length: int = SLAC_MATCH_REQ_MVF_LENGTH
    application_type: int = SLAC_APPLICATION_TYPE
    security_type: int = SLAC_SECURITY_TYPE

    def encode_payload(self) -> bytes:
        return (bytes([self.application_type, self.security_type]) + self.mvf_length.to_bytes(2, "little")
                + self.pev_id + self.pev_mac + self.evse_id + self.evse_mac + self.run_id + self.reserved)

    @classmethod
    def decode_payload(cls, payload: bytes) -> SlacMatchReq:
        _need(payload, 66, "CM_SLAC_MATCH.REQ")
        return cls(application_type=payload[0], security_type=payload[1],
                   mvf_length=int.from_bytes(payload[2:4], "little"), pev_id=payload[4:21],
                   pev_mac=payload[21:27], evse_id=payload[27:44], evse_mac=payload[44:50],
                   run_id=payload[50:58], reserved=payload[58:66])


@dataclass(frozen=True)
class SlacMatchCnf:
    """CM_SLAC_MATCH.CNF, EVSE -> EV: the logical network to join (ISO 15118-3 Table A.8). Payload 90 B."""

    MMTYPE: ClassVar[int] = MmBase.CM_SLAC_MATCH + MmKind.CNF
    pev_mac: bytes
    evse_mac: bytes
    run_id: bytes
    nid: bytes
    nmk: bytes
    pev_id: bytes = b"\x00" * ID_BYTES
    evse_id: bytes = b"\x00" * ID_BYTES
    reserved_1: bytes = b"\x00" * 8
    reserved_2: int = 0
    mvf_length: int = SLAC_MATCH_CNF_MVF_LENGTH
    application_type: int = SLAC_APPLICATION_TYPE
    security_type: int = SLAC_SECURITY_TYPE

    def encode_payload(self) -> bytes:
        _check_len(self.nid, NID_BYTES, "NID")
        _check_len(self.nmk, NMK_BYTES, "NMK")
        return (bytes([self.application_type, self.security_type]) + self.mvf_length.to_bytes(2, "little")
                + self.pev_id + self.pev_mac + self.evse_id + self.evse_mac + self.run_id + self.reserved_1
                + self.nid + bytes([self.reserved_2]) + self.nmk)

    @classmethod
    def decode_payload(cls, payload: bytes) -> SlacMatchCnf:
        _need(payload, 90, "CM_SLAC_MATCH.CNF")
        return cls(application_type=payload[0], security_type=payload[1],
                   mvf_length=int.from_bytes(payload[2:4], "little"), pev_id=payload[4:21],
                   pev_mac=payload[21:27], evse_id=payload[27:44], evse_mac=payload[44:50],
                   run_id=payload[50:58], reserved_1=payload[58:66], nid=payload[66:73],
                   reserved_2=payload[73], nmk=payload[74:90])


MESSAGE_TYPES: dict[int, Any] = {cls.MMTYPE: cls for cls in (
    SetKeyReq, SetKeyCnf, SlacParmReq, SlacParmCnf, StartAttenCharInd, MnbcSoundInd, AttenProfileInd,
    AttenCharInd, AttenCharRsp, SlacMatchReq, SlacMatchCnf)}


@dataclass(frozen=True)
class Frame:
    """A parsed HomePlug MME. ``message`` is None for an MMTYPE this module has no layout for."""

    dst: bytes
    src: bytes
    mmtype: int
    payload: bytes = field(repr=False)
    message: object | None


def mac_to_str(mac: bytes) -> str:
    """b'\\x02\\x00...' -> '02:00:...' (upper case, as the status API shows it)."""
    return mac.hex(":").upper()


def mac_from_str(text: str) -> bytes:
    """'02:00:00:00:e0:01' -> 6 bytes."""
    mac = bytes.fromhex(text.replace(":", "").replace("-", ""))
    if len(mac) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    return mac


def build_frame(dst: bytes, src: bytes, message: Message) -> bytes:
    """Ethernet + HomePlug header + the message's payload, zero-padded to 60 bytes."""
    _check_len(dst, 6, "destination MAC")
    _check_len(src, 6, "source MAC")
    header = (dst + src + ETHERTYPE_HOMEPLUG.to_bytes(2, "big") + bytes([HOMEPLUG_MMV])
              + int(message.MMTYPE).to_bytes(2, "little") + b"\x00\x00")  # FMSN, FMID: not fragmented
    frame = header + message.encode_payload()
    return frame.ljust(MIN_FRAME_BYTES, b"\x00")


def parse_frame(data: bytes) -> Frame:
    """Parse one received Ethernet frame. Raises FrameError if it is not a HomePlug MME or is truncated."""
    if len(data) < HEADER_BYTES:
        raise FrameError(f"frame too short: {len(data)} B")
    ethertype = int.from_bytes(data[12:14], "big")
    if ethertype != ETHERTYPE_HOMEPLUG:
        raise FrameError(f"not a HomePlug frame: ethertype 0x{ethertype:04X}")
    if data[14] != HOMEPLUG_MMV:
        raise FrameError(f"unsupported MMV 0x{data[14]:02X}")
    mmtype = int.from_bytes(data[15:17], "little")
    payload = bytes(data[HEADER_BYTES:])
    message_type = MESSAGE_TYPES.get(mmtype)
    message = message_type.decode_payload(payload) if message_type is not None else None
    return Frame(dst=bytes(data[0:6]), src=bytes(data[6:12]), mmtype=mmtype, payload=payload, message=message)
