"""``read_frame`` returns a frame already in the buffer on the reading task's own turn of the event loop: on a
busy loop (the API, the streams) every extra turn waits behind everything else that is ready."""

from __future__ import annotations

import asyncio

import pytest

from evse_secc.v2gtp_guard import HEADER_BYTES, V2GTPFrameError, read_frame

PAYLOAD = bytes(range(40))
FRAME = bytes([0x01, 0xFE, 0x80, 0x01]) + len(PAYLOAD).to_bytes(4, "big") + PAYLOAD


async def _turns_until_done(task: asyncio.Task) -> int:
    turns = 0
    while not task.done():
        await asyncio.sleep(0)
        turns += 1
    return turns


async def test_a_buffered_frame_is_read_in_one_turn():
    reader = asyncio.StreamReader()
    reader.feed_data(FRAME + FRAME[:3])  # a whole frame and the start of the next
    task = asyncio.get_running_loop().create_task(read_frame(reader))
    assert await _turns_until_done(task) == 1
    assert task.result() == FRAME and len(task.result()) == HEADER_BYTES + len(PAYLOAD)


async def test_a_frame_arriving_in_pieces_is_still_read_whole():
    reader = asyncio.StreamReader()
    task = asyncio.get_running_loop().create_task(read_frame(reader))
    for start in range(0, len(FRAME), 5):
        await asyncio.sleep(0)
        reader.feed_data(FRAME[start:start + 5])
    await _turns_until_done(task)
    assert task.result() == FRAME


async def test_a_bad_header_is_refused_before_its_payload():
    reader = asyncio.StreamReader()
    reader.feed_data(bytes([0x02, 0xFD, 0x80, 0x01, 0, 0, 0, 4]))
    with pytest.raises(V2GTPFrameError, match="protocol version"):
        await read_frame(reader)
