"""The OCPP link against the test CSMS on loopback, both versions: boot, heartbeat, reconnect, timeouts, date-times.

Wall-clock tests with short intervals: one protocol second of the CSMS's intervals lasts 10 ms on these links.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from csms import TestCsms
from link_rig import (
    PROTOCOL_SECOND_S,
    VERSIONS,
    assert_one_outstanding_call,
    gaps_s,
    make_config,
    make_link,
    version_module,
    wait_booted,
    wait_state,
)
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16

from ccs_sim.ocpp.date_time_check import OutgoingPayloadRefused
from ccs_sim.ocpp.link import OcppNotReady, reconnect_delay_s


@pytest.mark.parametrize("version", VERSIONS)
async def test_boot_pending_and_rejected_are_retried_at_the_csms_interval_until_accepted(version: str) -> None:
    async with TestCsms(version, boot_responses=[("Pending", 6), ("Rejected", 3), ("Accepted", 500)]) as csms:
        link = make_link(make_config(csms, version))
        await link.start()
        try:
            await csms.wait_for(lambda: csms.calls_received("BootNotification"))
            await wait_state(link, lambda state: state.boot_status == "Pending")
            with pytest.raises(OcppNotReady):  # nothing but BootNotification before Accepted
                await link.call(version_module(version).heartbeat_request())
            await wait_booted(link)
            boots = csms.calls_received("BootNotification")
            assert len(boots) == 3
            first_gap_s, second_gap_s = gaps_s([frame.at_s for frame in boots])
            assert 6 * PROTOCOL_SECOND_S <= first_gap_s < 6 * PROTOCOL_SECOND_S + 0.2  # Pending: interval 6
            assert 3 * PROTOCOL_SECOND_S <= second_gap_s < 3 * PROTOCOL_SECOND_S + 0.2  # Rejected: interval 3
            assert [frame.action for frame in csms.calls_received()] == ["BootNotification"] * 3
            assert link.state.boot_status == "Accepted" and link.state.connection == "booted"
            assert link.state.heartbeat_interval_s == 500
            assert csms.violations == []
        finally:
            await link.stop()


@pytest.mark.parametrize("version", VERSIONS)
async def test_heartbeat_comes_at_the_interval_the_csms_gives(version: str) -> None:
    async with TestCsms(version, boot_responses=[("Accepted", 4)]) as csms:
        link = make_link(make_config(csms, version))
        await link.start()
        try:
            await csms.wait_for(lambda: len(csms.calls_received("Heartbeat")) >= 5)
            times = [frame.at_s for frame in csms.calls_received("BootNotification")[-1:]
                     + csms.calls_received("Heartbeat")[:5]]
            gaps = gaps_s(times)
            assert min(gaps) >= 4 * PROTOCOL_SECOND_S - 0.002  # 40 ms: the CSMS's interval 4
            assert sum(gaps) / len(gaps) < 4 * PROTOCOL_SECOND_S + 0.05  # slack for a loaded machine
            link.set_heartbeat_interval(9)  # as ChangeConfiguration / SetVariables would
            count = len(csms.calls_received("Heartbeat"))
            await csms.wait_for(lambda: len(csms.calls_received("Heartbeat")) >= count + 3)
            slower = gaps_s([frame.at_s for frame in csms.calls_received("Heartbeat")[count:count + 3]])
            assert min(slower) >= 9 * PROTOCOL_SECOND_S - 0.002
            assert_one_outstanding_call(csms)
            assert csms.violations == []
        finally:
            await link.stop()


def test_reconnect_delays_grow_exponentially_within_the_bounds() -> None:
    rng = random.Random(7)
    for attempt in range(40):
        for _ in range(20):
            delay_s = reconnect_delay_s(attempt, 1.0, 60.0, rng)
            assert 1.0 <= delay_s <= 60.0
            assert delay_s >= min(60.0, 2.0 ** attempt) * 0.75 or delay_s == 1.0
            assert delay_s <= min(60.0, 2.0 ** attempt)


@pytest.mark.parametrize("version", VERSIONS)
async def test_reconnects_with_backoff_after_the_csms_drops_and_stays_down(version: str) -> None:
    async with TestCsms(version, boot_responses=[("Accepted", 3)]) as csms:
        config = make_config(csms, version, reconnect_min_s=0.02, reconnect_max_s=0.08)
        link = make_link(config)
        booted_count = 0

        def count_boot() -> None:
            nonlocal booted_count
            booted_count += 1

        link.on_booted(count_boot)
        await link.start()
        try:
            await wait_booted(link)
            await csms.drop()  # the connection goes; the station reconnects at once (no new BootNotification)
            await wait_state(link, lambda state: (state.last_error or {}).get("kind") == "closed")
            await csms.wait_for(lambda: booted_count == 2)
            await csms.stop()  # now down for a while: every attempt fails, spaced by the backoff
            await wait_state(link, lambda state: state.connection == "disconnected")
            failed_before = link.frame_log.errors["unreachable"]
            await asyncio.sleep(0.6)
            failed = link.frame_log.errors["unreachable"] - failed_before
            assert 0.6 / 0.08 - 2 <= failed <= 0.6 / 0.02 + 1  # between every max_s and every min_s
            # the delay before the next attempt (None while an attempt is under way)
            await wait_state(link, lambda state: state.next_reconnect_s is not None)
            assert config.reconnect_min_s <= link.state.next_reconnect_s <= config.reconnect_max_s
            assert link.state.last_error["kind"] == "unreachable"
            heartbeats = len(csms.calls_received("Heartbeat"))
            await csms.start()  # back on the same port
            await csms.wait_for(lambda: booted_count == 3 and len(csms.calls_received("Heartbeat")) > heartbeats)
            assert len(csms.calls_received("BootNotification")) == 1  # booted once per process
            assert link.state.connection == "booted"
            assert csms.violations == []
        finally:
            await link.stop()


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_call_the_csms_does_not_answer_times_out_and_frees_the_link(version: str) -> None:
    async with TestCsms(version, boot_responses=[("Accepted", 1000)]) as csms:
        link = make_link(make_config(csms, version, call_timeout_s=0.1))
        await link.start()
        try:
            await wait_booted(link)
            csms.ignored_actions.add("Heartbeat")
            # a BootNotification answered later than 0.1 s on a loaded machine timed out too (and was sent again):
            # the count is this call's
            timeouts_before = link.frame_log.errors["call_timeout"]
            loop = asyncio.get_running_loop()
            started_s = loop.time()
            with pytest.raises(TimeoutError):
                await link.call(version_module(version).heartbeat_request())
            assert 0.1 <= loop.time() - started_s < 1.0
            assert link.frame_log.errors["call_timeout"] - timeouts_before == 1
            csms.ignored_actions.clear()
            answer = await link.call(version_module(version).heartbeat_request())  # the lock was released
            assert answer.current_time
        finally:
            await link.stop()


def bad_status_request(version: str) -> Any:
    from ocpp.v201 import call as call201

    if version == "1.6":
        return call16.StatusNotification(connector_id=1, error_code="NoError", status="Available",
                                         timestamp="not-a-date")
    return call201.StatusNotification(timestamp="2025-13-01T00:00:00Z", connector_status="Available", evse_id=1,
                                      connector_id=1)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_bad_date_time_is_refused_before_it_goes_out(version: str) -> None:
    async with TestCsms(version, boot_responses=[("Accepted", 1000)]) as csms:
        link = make_link(make_config(csms, version))
        await link.start()
        try:
            await wait_booted(link)
            with pytest.raises(OutgoingPayloadRefused, match="timestamp"):
                await link.call(bad_status_request(version))
            assert csms.calls_received("StatusNotification") == []
            assert link.frame_log.errors["refused_payload"] == 1
            assert csms.violations == []
        finally:
            await link.stop()


class BadScheduleAnswer:
    """A handler (as O3's would be) whose CALLRESULT carries a bad date-time."""

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(self, **_: Any) -> Any:
        return result16.GetCompositeSchedule(status="Accepted", connector_id=1, schedule_start="yesterday")


async def test_a_handler_answer_with_a_bad_date_time_becomes_a_callerror() -> None:
    async with TestCsms("1.6", boot_responses=[("Accepted", 1000)]) as csms:
        link = make_link(make_config(csms, "1.6"), mixins=(BadScheduleAnswer,))
        await link.start()
        try:
            await wait_booted(link)
            from ocpp.exceptions import InternalError

            with pytest.raises(InternalError):
                await csms.call("CS1", call16.GetCompositeSchedule(connector_id=1, duration=60))
            assert [frame.type for frame in csms.frames if frame.direction == "in"][-1] == "CALLERROR"
            assert link.frame_log.errors["refused_payload"] == 1
            assert csms.violations == []
        finally:
            await link.stop()
