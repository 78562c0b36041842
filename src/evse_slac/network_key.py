"""A fresh network membership key (NMK) and its network identifier (NID) for each plug-in.

ISO 15118-3 wants a new logical network after every unplug ([V2G3-M09-17]; CharIN DG: CM_SET_KEY after every
unplug); the NMK is random, the NID is derived from it as HomePlug AV 1.1 §4.4.3.1 does in practice
(Qualcomm open-plc-utils' HPAVKeyNID, which pyslac's ``generate_nid`` also follows): SHA-256 applied five times
to the NMK, the first 7 bytes kept, and the last of those shifted right by 4 so the two security-level bits
(the NID's MSBs) are 0b00.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from evse_slac.frames import NID_BYTES, NMK_BYTES

NID_HASH_ROUNDS = 5


def nid_from_nmk(nmk: bytes) -> bytes:
    if len(nmk) != NMK_BYTES:
        raise ValueError(f"NMK must be {NMK_BYTES} bytes, got {len(nmk)}")
    digest = nmk
    for _ in range(NID_HASH_ROUNDS):
        digest = hashlib.sha256(digest).digest()
    return digest[:NID_BYTES - 1] + bytes([digest[NID_BYTES - 1] >> 4])


@dataclass(frozen=True)
class NetworkKey:
    nmk: bytes
    nid: bytes

    @classmethod
    def generate(cls) -> NetworkKey:
        nmk = os.urandom(NMK_BYTES)
        return cls(nmk=nmk, nid=nid_from_nmk(nmk))
