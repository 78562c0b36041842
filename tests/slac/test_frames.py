"""SLAC MME layouts: round trips, frame sizes, and byte-for-byte agreement with pyslac.messages."""

from __future__ import annotations

from slac_requirements import skip_without_pyslac

skip_without_pyslac()

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyslac import messages as pyslac_messages
from pyslac.layer_2_headers import EthernetHeader, HomePlugHeader

from evse_slac import frames
from evse_slac.frames import (BROADCAST_MAC, QCA_LOCAL_MAC, AttenCharInd, AttenCharRsp, AttenProfileInd, FrameError,
                              MnbcSoundInd, SetKeyCnf, SetKeyReq, SlacMatchCnf, SlacMatchReq, SlacParmCnf,
                              SlacParmReq, StartAttenCharInd, build_frame, mac_from_str, mac_to_str, parse_frame)
from evse_slac.network_key import NetworkKey, nid_from_nmk
from evse_slac.pyslac_loader import import_pyslac_session

EV_MAC = bytes.fromhex("02000000e001")
EVSE_MAC = bytes.fromhex("020000005e01")
RUN_ID = EV_MAC + b"\x00\x01"
NMK = bytes(range(16))
NID = nid_from_nmk(NMK)
PROFILE = tuple(20 + group % 11 for group in range(58))

macs = st.binary(min_size=6, max_size=6)
run_ids = st.binary(min_size=8, max_size=8)
ids = st.binary(min_size=17, max_size=17)
byte = st.integers(0, 255)
profiles = st.lists(byte, min_size=1, max_size=58).map(tuple)

ALL_MESSAGES = [
    SetKeyReq(nid=NID, nmk=NMK),
    SetKeyCnf(result=0),
    SlacParmReq(run_id=RUN_ID),
    SlacParmCnf(forwarding_sta=EV_MAC, run_id=RUN_ID),
    StartAttenCharInd(forwarding_sta=EV_MAC, run_id=RUN_ID),
    MnbcSoundInd(run_id=RUN_ID, count=9),
    AttenProfileInd(pev_mac=EV_MAC, attenuation_dB=PROFILE),
    AttenCharInd(source_address=EV_MAC, run_id=RUN_ID, num_sounds=10, attenuation_dB=PROFILE),
    AttenCharRsp(source_address=EV_MAC, run_id=RUN_ID),
    SlacMatchReq(pev_mac=EV_MAC, evse_mac=EVSE_MAC, run_id=RUN_ID),
    SlacMatchCnf(pev_mac=EV_MAC, evse_mac=EVSE_MAC, run_id=RUN_ID, nid=NID, nmk=NMK),
]

# Frame sizes on the wire (shared/reference/pyslac-notes.md §8, captured from a real match).
EXPECTED_FRAME_BYTES = {
    SetKeyReq: 60, SetKeyCnf: 60, SlacParmReq: 60, SlacParmCnf: 60, StartAttenCharInd: 60, MnbcSoundInd: 71,
    AttenProfileInd: 85, AttenCharInd: 129, AttenCharRsp: 70, SlacMatchReq: 85, SlacMatchCnf: 109,
}
EXPECTED_MMTYPES = {
    SetKeyReq: 0x6008, SetKeyCnf: 0x6009, SlacParmReq: 0x6064, SlacParmCnf: 0x6065, StartAttenCharInd: 0x606A,
    MnbcSoundInd: 0x6076, AttenProfileInd: 0x6086, AttenCharInd: 0x606E, AttenCharRsp: 0x606F,
    SlacMatchReq: 0x607C, SlacMatchCnf: 0x607D,
}


@pytest.mark.parametrize("message", ALL_MESSAGES, ids=lambda message: type(message).__name__)
def test_every_message_round_trips_with_its_size_and_mmtype(message):
    frame = build_frame(EVSE_MAC, EV_MAC, message)
    assert len(frame) == EXPECTED_FRAME_BYTES[type(message)]
    assert type(message).MMTYPE == EXPECTED_MMTYPES[type(message)]
    assert frame[12:14] == b"\x88\xe1" and frame[14] == 0x01
    assert int.from_bytes(frame[15:17], "little") == EXPECTED_MMTYPES[type(message)]
    parsed = parse_frame(frame)
    assert (parsed.dst, parsed.src, parsed.mmtype, parsed.message) == (EVSE_MAC, EV_MAC, type(message).MMTYPE,
                                                                         message)


@given(dst=macs, src=macs, run_id=run_ids, forwarding=macs, sounds=byte, time_out=byte)
def test_slac_parm_and_start_atten_round_trip(dst, src, run_id, forwarding, sounds, time_out):
    for message in (SlacParmReq(run_id=run_id),
                    SlacParmCnf(forwarding_sta=forwarding, run_id=run_id, num_sounds=sounds, time_out_100ms=time_out),
                    StartAttenCharInd(forwarding_sta=forwarding, run_id=run_id, num_sounds=sounds,
                                      time_out_100ms=time_out)):
        parsed = parse_frame(build_frame(dst, src, message))
        assert (parsed.dst, parsed.src, parsed.message) == (dst, src, message)


@given(pev=macs, evse=macs, run_id=run_ids, pev_id=ids, evse_id=ids, nmk=st.binary(min_size=16, max_size=16),
       profile=profiles, sounds=byte)
def test_match_and_atten_messages_round_trip(pev, evse, run_id, pev_id, evse_id, nmk, profile, sounds):
    nid = nid_from_nmk(nmk)
    for message in (SlacMatchReq(pev_mac=pev, evse_mac=evse, run_id=run_id, pev_id=pev_id, evse_id=evse_id),
                    SlacMatchCnf(pev_mac=pev, evse_mac=evse, run_id=run_id, nid=nid, nmk=nmk, pev_id=pev_id,
                                 evse_id=evse_id),
                    AttenCharInd(source_address=pev, run_id=run_id, num_sounds=sounds, attenuation_dB=profile),
                    AttenProfileInd(pev_mac=pev, attenuation_dB=profile),
                    AttenCharRsp(source_address=pev, run_id=run_id, result=sounds % 2)):
        assert parse_frame(build_frame(evse, pev, message)).message == message


def _pyslac_frame(dst: bytes, src: bytes, mmtype: int, payload) -> bytes:
    frame = EthernetHeader(dst_mac=dst, src_mac=src).pack_big() + HomePlugHeader(mmtype).pack_big() + bytes(
        payload.pack_big())
    return frame.ljust(60, b"\x00")


def test_frames_pyslac_sends_are_byte_identical_to_ours():
    cases = [
        (QCA_LOCAL_MAC, EVSE_MAC, 0x6008, pyslac_messages.SetKeyReq(nid=NID, new_key=NMK),
         SetKeyReq(nid=NID, nmk=NMK, my_nonce=b"\xaa" * 4)),  # pyslac's MyNonce is 0xAAAAAAAA, ISO's 0
        (EV_MAC, EVSE_MAC, 0x6065, pyslac_messages.SlacParmCnf(forwarding_sta=EV_MAC, run_id=RUN_ID),
         SlacParmCnf(forwarding_sta=EV_MAC, run_id=RUN_ID)),
        (EV_MAC, EVSE_MAC, 0x606E, pyslac_messages.AtennChar(source_address=EV_MAC, run_id=RUN_ID, num_sounds=10,
                                                            num_groups=58, aag=list(PROFILE)),
         AttenCharInd(source_address=EV_MAC, run_id=RUN_ID, num_sounds=10, attenuation_dB=PROFILE)),
        (EV_MAC, EVSE_MAC, 0x607D, pyslac_messages.MatchCnf(pev_mac=EV_MAC, evse_mac=EVSE_MAC, run_id=RUN_ID,
                                                           nid=NID, nmk=NMK),
         SlacMatchCnf(pev_mac=EV_MAC, evse_mac=EVSE_MAC, run_id=RUN_ID, nid=NID, nmk=NMK)),
    ]
    for dst, src, mmtype, theirs, ours in cases:
        assert build_frame(dst, src, ours) == _pyslac_frame(dst, src, mmtype, theirs), type(ours).__name__


def test_pyslac_reads_the_frames_our_ev_sends():
    parm = pyslac_messages.SlacParmReq.from_bytes(build_frame(BROADCAST_MAC, EV_MAC, SlacParmReq(run_id=RUN_ID)))
    assert (parm.run_id, parm.application_type, parm.security_type) == (RUN_ID, 0, 0)

    start = pyslac_messages.StartAtennChar.from_bytes(
        build_frame(BROADCAST_MAC, EV_MAC, StartAttenCharInd(forwarding_sta=EV_MAC, run_id=RUN_ID)))
    assert (start.num_sounds, start.time_out, start.resp_type, start.forwarding_sta, start.run_id) == (
        10, 6, 1, EV_MAC, RUN_ID)

    sound = pyslac_messages.MnbcSound.from_bytes(
        build_frame(BROADCAST_MAC, EV_MAC, MnbcSoundInd(run_id=RUN_ID, count=7, random=b"\x01" * 16)))
    assert (sound.cnt, sound.run_id, sound.rnd) == (7, RUN_ID, int.from_bytes(b"\x01" * 16, "big"))

    profile = pyslac_messages.AttenProfile.from_bytes(
        build_frame(EVSE_MAC, QCA_LOCAL_MAC, AttenProfileInd(pev_mac=EV_MAC, attenuation_dB=PROFILE)))
    assert (profile.pev_mac, profile.num_groups, list(profile.aag)) == (EV_MAC, 58, list(PROFILE))

    rsp = pyslac_messages.AtennCharRsp.from_bytes(
        build_frame(EVSE_MAC, EV_MAC, AttenCharRsp(source_address=EV_MAC, run_id=RUN_ID, result=0)))
    assert (rsp.source_address, rsp.run_id, rsp.result) == (EV_MAC, RUN_ID, 0)

    match = pyslac_messages.MatchReq.from_bytes(
        build_frame(EVSE_MAC, EV_MAC, SlacMatchReq(pev_mac=EV_MAC, evse_mac=EVSE_MAC, run_id=RUN_ID)))
    assert (match.pev_mac, match.evse_mac, match.run_id) == (EV_MAC, EVSE_MAC, RUN_ID)

    cnf = pyslac_messages.SetKeyCnf.from_bytes(build_frame(EVSE_MAC, QCA_LOCAL_MAC, SetKeyCnf(result=1)))
    assert cnf.result == 1


def test_slac_match_mvf_length_is_little_endian():
    frame = build_frame(EVSE_MAC, EV_MAC, SlacMatchReq(pev_mac=EV_MAC, evse_mac=EVSE_MAC, run_id=RUN_ID))
    assert frame[21:23] == b"\x3e\x00"
    cnf = build_frame(EV_MAC, EVSE_MAC, SlacMatchCnf(pev_mac=EV_MAC, evse_mac=EVSE_MAC, run_id=RUN_ID, nid=NID,
                                                     nmk=NMK))
    assert cnf[21:23] == b"\x56\x00" and cnf[85:92] == NID and cnf[93:109] == NMK


def test_parse_rejects_what_is_not_a_complete_homeplug_mme():
    good = build_frame(EVSE_MAC, EV_MAC, SlacMatchReq(pev_mac=EV_MAC, evse_mac=EVSE_MAC, run_id=RUN_ID))
    with pytest.raises(FrameError, match="too short"):
        parse_frame(good[:18])
    with pytest.raises(FrameError, match="ethertype"):
        parse_frame(good[:12] + b"\x08\x00" + good[14:])
    with pytest.raises(FrameError, match="MMV"):
        parse_frame(good[:14] + b"\x00" + good[15:])
    with pytest.raises(FrameError, match="CM_SLAC_MATCH.REQ"):
        parse_frame(good[:70])
    unknown = good[:15] + (0xA0B8).to_bytes(2, "little") + good[17:]  # vendor LINK_STATUS.REQ
    parsed = parse_frame(unknown)
    assert parsed.message is None and parsed.mmtype == 0xA0B8


def test_padding_is_ignored_and_builders_check_lengths():
    assert parse_frame(build_frame(EV_MAC, EVSE_MAC, SetKeyCnf()) + b"\x00" * 20).message == SetKeyCnf()
    with pytest.raises(ValueError, match="RunID"):
        build_frame(EV_MAC, EVSE_MAC, SlacParmReq(run_id=b"\x01"))
    with pytest.raises(ValueError, match="NMK"):
        build_frame(EV_MAC, EVSE_MAC, SetKeyReq(nid=NID, nmk=b"\x00"))
    with pytest.raises(ValueError, match="MAC"):
        build_frame(b"\x01", EVSE_MAC, SetKeyCnf())


def test_mac_text_round_trip():
    assert mac_to_str(EV_MAC) == "02:00:00:00:E0:01"
    assert mac_from_str("02:00:00:00:e0:01") == EV_MAC
    with pytest.raises(ValueError):
        mac_from_str("02:00")


@given(nmk=st.binary(min_size=16, max_size=16))
def test_nid_matches_pyslac_and_has_security_level_zero(nmk):
    generate_nid = import_pyslac_session().generate_nid
    nid = nid_from_nmk(nmk)
    assert nid == generate_nid(nmk)
    assert len(nid) == frames.NID_BYTES and nid[-1] >> 6 == 0


def test_each_generated_key_is_fresh():
    keys = {NetworkKey.generate() for _ in range(20)}
    assert len({key.nmk for key in keys}) == 20
    assert all(key.nid == nid_from_nmk(key.nmk) for key in keys)
