"""The launcher's exchange timing (``evse_secc.message_timing.TimedEXICodec``) takes only clock readings while the
SECC handles a request: the messages are named (JSON parsed) and the exchange recorded on the event loop's next
turn, after the response has left, with the times read during the request (issue 13 item 4)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from evse_secc.codecs import start_codec
from evse_secc.exchange_log import MessageExchange, read_exchanges
from evse_secc.message_timing import TimedEXICodec
from fake_exi_codec import FakeCodec, v2g_json

DIN = "urn:din:70121:2012:MsgDef"


def test_on_a_running_loop_the_exchange_is_recorded_on_the_next_turn_with_the_times_of_the_request():
    ticks = iter([10.000, 10.004, 10.010, 10.013])  # decode start/end, encode start/end
    exchanges: list[MessageExchange] = []
    codec = TimedEXICodec(FakeCodec(v2g_json("CurrentDemandReq", {})), exchanges.append, clock=lambda: next(ticks))

    async def handle_one_request() -> int:
        codec.decode(b"req", DIN)
        codec.encode(v2g_json("CurrentDemandRes", {"ResponseCode": "OK"}), DIN)
        recorded_while_handling = len(exchanges)
        await asyncio.sleep(0)  # the loop's next turn
        return recorded_while_handling

    assert asyncio.run(handle_one_request()) == 0
    [exchange] = exchanges
    assert (exchange.request, exchange.response, exchange.response_code) == ("CurrentDemandReq", "CurrentDemandRes", "OK")
    assert exchange.duration_s == pytest.approx(0.013)
    assert exchange.decode_s == pytest.approx(0.004)
    assert exchange.encode_s == pytest.approx(0.003)


def test_deferred_calls_are_settled_in_order_fragments_do_not_close_an_exchange():
    exchanges: list[MessageExchange] = []
    codec = TimedEXICodec(FakeCodec(json.dumps({"AuthorizationReq": {}})), exchanges.append)
    ns = "urn:iso:std:iso:15118:-20:CommonMessages"

    async def two_requests() -> None:
        codec.decode(b"req", ns)
        codec.encode(json.dumps({"SignedInfo": {}}), ns)  # a signature fragment between request and response
        codec.encode(json.dumps({"AuthorizationRes": {"ResponseCode": "OK"}}), ns)
        await asyncio.sleep(0)
        codec.decode(b"req", ns)
        codec.encode(json.dumps({"AuthorizationRes": {"ResponseCode": "FAILED"}}), ns)

    asyncio.run(two_requests())  # the second request's exchange is settled by the loop's last turns
    assert [(e.request, e.response, e.response_code) for e in exchanges] == [
        ("AuthorizationReq", "AuthorizationRes", "OK"), ("AuthorizationReq", "AuthorizationRes", "FAILED")]


def test_closing_the_codec_writes_an_exchange_the_loop_did_not_settle(tmp_path: Path):
    log_path = tmp_path / "exchanges.jsonl"
    codec, close = start_codec("native", log_path)
    request = {"V2G_Message": {"Header": {"SessionID": "0A0B0C0D0E0F1011"}, "Body": {"SessionStopReq": {}}}}
    response = {"V2G_Message": {"Header": {"SessionID": "0A0B0C0D0E0F1011"},
                                "Body": {"SessionStopRes": {"ResponseCode": "OK"}}}}
    stream = codec.encode(json.dumps(request), DIN)  # an unmatched encode (no request decoded yet): no exchange

    async def last_request_then_stop() -> None:
        codec.decode(stream, DIN)
        codec.encode(json.dumps(response), DIN)
        close()  # before the loop's next turn

    asyncio.run(last_request_then_stop())
    [exchange] = read_exchanges(log_path)
    assert (exchange.request, exchange.response, exchange.response_code) == ("SessionStopReq", "SessionStopRes", "OK")
