"""The composite limit as a pure function of (profiles, now, transaction start): stacks of profiles and the
composite limits and schedules they give (OCPP 1.6 §3.13, 2.0.1 K), and the installation rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ccs_sim.ocpp.charging_profiles import ProfileRefused, ProfileStore, profile_from_16, profile_from_201
from ccs_sim.ocpp.smart_charging import (
    ChargingProfile,
    ChargingSchedule,
    CompositeLimit,
    CompositePeriod,
    Kind,
    Purpose,
    SchedulePeriod,
    TransactionContext,
    composite_limit,
    composite_schedule,
)

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def profile(profile_id: int, purpose: Purpose, stack_level: int, periods: list[tuple[int, float]], *,
            unit: str = "A", kind: Kind = Kind.ABSOLUTE, start: datetime | None = T0, duration_s: int | None = None,
            recurrency: str | None = None, valid_from: datetime | None = None, valid_to: datetime | None = None,
            transaction_id: str | None = None, connector_id: int = 1) -> ChargingProfile:
    schedule = ChargingSchedule(unit, tuple(SchedulePeriod(s, limit) for s, limit in periods), duration_s,
                                start if kind is not Kind.RELATIVE else None)
    return ChargingProfile(profile_id, stack_level, purpose, kind, schedule, recurrency, valid_from, valid_to,
                           transaction_id, 0 if purpose is Purpose.STATION_MAX else connector_id)


TX = TransactionContext(transaction_id="7", started_at=at(600))


def test_no_profile_no_limit() -> None:
    assert composite_limit([], at(0)) == CompositeLimit(None, None)


def test_tx_profile_overrides_tx_default_and_station_max_caps_both() -> None:
    profiles = [profile(1, Purpose.TX_DEFAULT, 0, [(0, 100.0)]),
                profile(2, Purpose.TX, 0, [(0, 150.0)], kind=Kind.RELATIVE),
                profile(3, Purpose.STATION_MAX, 0, [(0, 120.0)])]
    # no transaction: the TxProfile does not count -> min(TxDefault 100, max 120)
    assert composite_limit(profiles, at(700)).current_A == 100.0
    # during the transaction the TxProfile (150) replaces the default; the station maximum caps it: 120
    limit = composite_limit(profiles, at(700), TX)
    assert limit.current_A == 120.0 and limit.profile_ids == {"current_A": 3}


def test_highest_stack_level_wins_and_the_lower_one_returns_when_its_schedule_ends() -> None:
    profiles = [profile(1, Purpose.TX_DEFAULT, 0, [(0, 200.0)]),
                profile(2, Purpose.TX_DEFAULT, 3, [(0, 60.0), (300, 90.0)], duration_s=900)]
    assert composite_limit(profiles, at(10)).current_A == 60.0
    assert composite_limit(profiles, at(300)).current_A == 90.0
    assert composite_limit(profiles, at(899)).current_A == 90.0
    assert composite_limit(profiles, at(900)).current_A == 200.0  # level 3's schedule has ended
    assert composite_limit(profiles, at(-1)).current_A is None  # neither has begun


def test_valid_from_and_valid_to_bound_a_profile() -> None:
    profiles = [profile(1, Purpose.STATION_MAX, 0, [(0, 300.0)]),
                profile(2, Purpose.STATION_MAX, 1, [(0, 50.0)], valid_from=at(100), valid_to=at(200))]
    assert [composite_limit(profiles, at(s)).current_A for s in (99, 100, 199, 200)] == [300.0, 50.0, 50.0, 300.0]


def test_relative_profile_counts_from_the_transaction_start() -> None:
    profiles = [profile(1, Purpose.TX, 0, [(0, 32.0), (3600, 16.0)], kind=Kind.RELATIVE, transaction_id="7")]
    assert composite_limit(profiles, at(600 + 3599), TX).current_A == 32.0
    assert composite_limit(profiles, at(600 + 3600), TX).current_A == 16.0
    other = TransactionContext(transaction_id="8", started_at=at(600))
    assert composite_limit(profiles, at(700), other).current_A is None  # another transaction's profile


def test_daily_recurring_profile_repeats_every_day() -> None:
    evening = T0.replace(hour=18)  # 18:00 .. 22:00 at 40 kW, else 150 kW, every day
    profiles = [profile(1, Purpose.STATION_MAX, 0, [(0, 40_000.0), (4 * 3600, 150_000.0)], unit="W",
                        kind=Kind.RECURRING, recurrency="Daily", start=evening, duration_s=86_400)]
    assert composite_limit(profiles, evening + timedelta(days=2, hours=1)).power_W == 40_000.0
    assert composite_limit(profiles, evening + timedelta(days=2, hours=5)).power_W == 150_000.0
    assert composite_limit(profiles, evening - timedelta(hours=1)).power_W is None  # before its first start


def test_weekly_recurring_profile() -> None:
    profiles = [profile(1, Purpose.TX_DEFAULT, 0, [(0, 10.0), (86_400, 80.0)], kind=Kind.RECURRING,
                        recurrency="Weekly", duration_s=7 * 86_400)]
    assert composite_limit(profiles, T0 + timedelta(days=14, hours=3)).current_A == 10.0
    assert composite_limit(profiles, T0 + timedelta(days=15, hours=3)).current_A == 80.0


def test_current_and_power_limits_are_kept_apart() -> None:
    profiles = [profile(1, Purpose.STATION_MAX, 0, [(0, 100_000.0)], unit="W"),
                profile(2, Purpose.TX, 0, [(0, 50.0)], kind=Kind.RELATIVE)]
    assert composite_limit(profiles, at(700), TX) == CompositeLimit(50.0, 100_000.0)


def test_composite_schedule_merges_the_stack_into_periods() -> None:
    profiles = [profile(1, Purpose.STATION_MAX, 0, [(0, 200.0)]),
                profile(2, Purpose.TX_DEFAULT, 1, [(0, 150.0), (600, 50.0)], duration_s=1200),
                profile(3, Purpose.TX_DEFAULT, 0, [(0, 250.0)])]
    periods = composite_schedule(profiles, at(300), 1800, "A", voltage_V=400.0, rated_current_A=400.0,
                                 rated_power_W=350_000.0)
    assert periods == [CompositePeriod(0, 150.0), CompositePeriod(300, 50.0), CompositePeriod(900, 200.0)]
    in_watts = composite_schedule(profiles, at(300), 1800, "W", voltage_V=400.0, rated_current_A=400.0,
                                  rated_power_W=350_000.0)
    assert in_watts == [CompositePeriod(0, 60_000.0), CompositePeriod(300, 20_000.0), CompositePeriod(900, 80_000.0)]


def test_composite_schedule_without_profiles_is_the_rating() -> None:
    assert composite_schedule([], at(0), 60, "A", voltage_V=400.0, rated_current_A=400.0,
                              rated_power_W=100_000.0) == [CompositePeriod(0, 250.0)]


# --- installation rules ------------------------------------------------------------------------------------
def wire_16(profile_id: int, purpose: str, stack_level: int = 0, limit: float = 50.0, **extra: object) -> dict:
    return {"charging_profile_id": profile_id, "stack_level": stack_level, "charging_profile_purpose": purpose,
            "charging_profile_kind": "Relative", **extra,
            "charging_schedule": {"charging_rate_unit": "A",
                                  "charging_schedule_period": [{"start_period": 0, "limit": limit}]}}


def test_tx_profile_needs_a_transaction_and_takes_its_id() -> None:
    store = ProfileStore("1.6")
    with pytest.raises(ProfileRefused, match="no transaction"):
        store.install(profile_from_16(1, wire_16(1, "TxProfile"), T0), None)
    installed = store.install(profile_from_16(1, wire_16(1, "TxProfile"), T0), TX)
    assert installed.transaction_id == "7"
    with pytest.raises(ProfileRefused, match="not the running one"):
        store.install(profile_from_16(1, wire_16(2, "TxProfile", transaction_id=9), T0), TX)
    assert store.end_transaction() == 1 and store.profiles == {}


def test_station_max_only_on_connector_zero_and_stack_levels_bounded() -> None:
    store = ProfileStore("1.6")
    with pytest.raises(ProfileRefused, match="connector / EVSE 0"):
        store.install(profile_from_16(1, wire_16(1, "ChargePointMaxProfile"), T0), None)
    with pytest.raises(ProfileRefused, match="stackLevel"):
        store.install(profile_from_16(0, wire_16(1, "ChargePointMaxProfile", stack_level=99), T0), None)


def test_same_purpose_and_stack_level_replaces_in_1_6_and_is_refused_in_2_0_1() -> None:
    store = ProfileStore("1.6")
    store.install(profile_from_16(1, wire_16(1, "TxDefaultProfile"), T0), None)
    store.install(profile_from_16(1, wire_16(2, "TxDefaultProfile", limit=80.0), T0), None)
    assert list(store.profiles) == [2]
    store201 = ProfileStore("2.0.1")
    data = {"id": 1, "stack_level": 0, "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Relative",
            "charging_schedule": [{"id": 1, "charging_rate_unit": "W",
                                   "charging_schedule_period": [{"start_period": 0, "limit": 11000.0}]}]}
    store201.install(profile_from_201(1, data, T0), None)
    with pytest.raises(ProfileRefused, match="same purpose and stack level"):
        store201.install(profile_from_201(1, {**data, "id": 2}, T0), None)
    store201.install(profile_from_201(1, {**data, "stack_level": 1, "id": 2}, T0), None)
    assert store201.clear(purpose=Purpose.TX_DEFAULT, stack_level=1) == 1 and list(store201.profiles) == [1]


def test_absolute_profile_without_start_schedule_is_refused_in_2_0_1() -> None:
    data = {"id": 1, "stack_level": 0, "charging_profile_purpose": "ChargingStationMaxProfile",
            "charging_profile_kind": "Absolute",
            "charging_schedule": [{"id": 1, "charging_rate_unit": "A",
                                   "charging_schedule_period": [{"start_period": 0, "limit": 10.0}]}]}
    with pytest.raises(ProfileRefused, match="startSchedule"):
        ProfileStore("2.0.1").install(profile_from_201(0, data, T0), None)
