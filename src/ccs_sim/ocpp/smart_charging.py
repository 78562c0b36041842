"""Smart charging maths for OCPP 1.6 and 2.0.1: charging profiles -> the composite limit, a pure function.

A ``ChargingProfile`` is version-neutral (``profile_wire`` reads the two versions' payloads into it). The
composite limit at a moment (``composite_limit``) follows OCPP 1.6 §3.13 (Smart Charging) and 2.0.1 K
(SmartCharging, "Combining profiles"):

- Each purpose separately: of the profiles in force (``valid_from <= now < valid_to``; a TxProfile only for
  the running transaction) the one with the HIGHEST stack level whose schedule has a period at ``now`` gives
  the purpose's limit; when its schedule has ended (``duration``) or not begun, the next lower level applies.
- A TxProfile of the running transaction overrides the TxDefaultProfile (1.6 §3.13.2 / 2.0.1 K01).
- The station maximum (1.6 ChargePointMaxProfile / 2.0.1 ChargingStationMaxProfile) caps the result.
- A limit in A caps the current, one in W the power: the composite is ``CompositeLimit(current_A, power_W)``,
  each None when nothing limits it. On this DC charger "A" is the DC output current (1.6 speaks of AC
  phase current; a DC station has one current).

Schedule start (``schedule_start``): Absolute at ``startSchedule``; Recurring at the latest ``startSchedule +
k x 24 h`` (Daily) or ``k x 7 d`` (Weekly) not after ``now``; Relative at the transaction's start (no
transaction: from ``now``, i.e. the first period). A period runs from its ``start_period_s`` until the next
one's, the last one until the schedule's ``duration_s`` (None: open-ended).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

#: Highest stack level accepted (1.6 ChargeProfileMaxStackLevel / 2.0.1 SmartChargingCtrlr.ProfileStackLevel).
MAX_STACK_LEVEL = 8
#: Periods per schedule accepted (1.6 ChargingScheduleMaxPeriods / 2.0.1 SmartChargingCtrlr.PeriodsPerSchedule).
MAX_PERIODS_PER_SCHEDULE = 24
#: Profiles installed at once (1.6 MaxChargingProfilesInstalled / 2.0.1 SmartChargingCtrlr.Entries).
MAX_PROFILES_INSTALLED = 16
RECURRENCE = {"Daily": timedelta(days=1), "Weekly": timedelta(days=7)}


class Purpose(str, enum.Enum):
    STATION_MAX = "StationMax"  # 1.6 ChargePointMaxProfile / 2.0.1 ChargingStationMaxProfile
    TX_DEFAULT = "TxDefaultProfile"
    TX = "TxProfile"


class Kind(str, enum.Enum):
    ABSOLUTE = "Absolute"
    RECURRING = "Recurring"
    RELATIVE = "Relative"


@dataclass(frozen=True)
class SchedulePeriod:
    start_period_s: int
    limit: float
    number_phases: int | None = None


@dataclass(frozen=True)
class ChargingSchedule:
    rate_unit: str  # "A" | "W"
    periods: tuple[SchedulePeriod, ...]
    duration_s: int | None = None
    start_schedule: datetime | None = None
    min_charging_rate: float | None = None


@dataclass(frozen=True)
class ChargingProfile:
    profile_id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    schedule: ChargingSchedule
    recurrency: str | None = None  # "Daily" | "Weekly" (Recurring)
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    #: The CSMS's transaction id a TxProfile belongs to (1.6 an int, 2.0.1 a string; None: the running one).
    transaction_id: str | None = None
    #: 1.6 connectorId / 2.0.1 evseId the profile was set on (0: the whole station).
    connector_id: int = 0
    #: When the station received it (an Absolute profile without startSchedule starts there, 1.6).
    received_at: datetime | None = None


@dataclass(frozen=True)
class CompositeLimit:
    current_A: float | None = None
    power_W: float | None = None
    #: Which profile gave each limit (for GET /ocpp and /status): {"current_A": id, "power_W": id}.
    profile_ids: dict[str, int] = field(default_factory=dict, compare=False)

    @property
    def limited(self) -> bool:
        return self.current_A is not None or self.power_W is not None


@dataclass(frozen=True)
class TransactionContext:
    """The running transaction as the profiles see it: its CSMS id (if known) and its start."""

    transaction_id: str | None
    started_at: datetime


def schedule_start(profile: ChargingProfile, now: datetime, transaction: TransactionContext | None) -> datetime:
    """When ``profile``'s schedule (its period 0) starts, as seen at ``now``."""
    schedule = profile.schedule
    if profile.kind is Kind.RELATIVE:
        return transaction.started_at if transaction is not None else now
    start = schedule.start_schedule or profile.valid_from or profile.received_at or now
    if profile.kind is Kind.RECURRING and profile.recurrency in RECURRENCE and start <= now:
        step = RECURRENCE[profile.recurrency]
        start += step * ((now - start) // step)
    return start


def period_at(profile: ChargingProfile, now: datetime,
              transaction: TransactionContext | None) -> SchedulePeriod | None:
    """The period of ``profile``'s schedule in force at ``now``, or None (not begun, ended, or not valid)."""
    if profile.valid_from is not None and now < profile.valid_from:
        return None
    if profile.valid_to is not None and now >= profile.valid_to:
        return None
    elapsed_s = (now - schedule_start(profile, now, transaction)).total_seconds()
    duration_s = profile.schedule.duration_s
    if elapsed_s < 0 or (duration_s is not None and elapsed_s >= duration_s):
        return None
    in_force = None
    for period in profile.schedule.periods:
        if period.start_period_s <= elapsed_s:
            in_force = period
    return in_force


def applies_to_transaction(profile: ChargingProfile, transaction: TransactionContext | None) -> bool:
    """A TxProfile counts only during a transaction, and only for its own (when it names one)."""
    if profile.purpose is not Purpose.TX:
        return True
    if transaction is None:
        return False
    return profile.transaction_id is None or profile.transaction_id == transaction.transaction_id


def purpose_limit(profiles: Iterable[ChargingProfile], purpose: Purpose, now: datetime,
                  transaction: TransactionContext | None) -> tuple[ChargingProfile, SchedulePeriod] | None:
    """The purpose's profile in force (highest stack level with a period at ``now``) and its period."""
    candidates = sorted((p for p in profiles if p.purpose is purpose and applies_to_transaction(p, transaction)),
                        key=lambda p: p.stack_level, reverse=True)
    for profile in candidates:
        period = period_at(profile, now, transaction)
        if period is not None:
            return profile, period
    return None


def composite_limit(profiles: Iterable[ChargingProfile], now: datetime,
                    transaction: TransactionContext | None = None) -> CompositeLimit:
    """The limit in force at ``now`` from every installed profile (see the module's description)."""
    profiles = list(profiles)
    in_force = [purpose_limit(profiles, Purpose.STATION_MAX, now, transaction)]
    tx_limit = purpose_limit(profiles, Purpose.TX, now, transaction)
    in_force.append(tx_limit if tx_limit is not None else purpose_limit(profiles, Purpose.TX_DEFAULT, now,
                                                                        transaction))
    current_A: float | None = None
    power_W: float | None = None
    ids: dict[str, int] = {}
    for found in in_force:
        if found is None:
            continue
        profile, period = found
        if profile.schedule.rate_unit == "W":
            if power_W is None or period.limit < power_W:
                power_W, ids["power_W"] = period.limit, profile.profile_id
        elif current_A is None or period.limit < current_A:
            current_A, ids["current_A"] = period.limit, profile.profile_id
    return CompositeLimit(current_A, power_W, ids)


def limit_in_unit(limit: CompositeLimit, unit: str, voltage_V: float, rated_current_A: float,
                  rated_power_W: float) -> float:
    """``limit`` as one number in ``unit`` ("A" or "W") at ``voltage_V`` (the other unit converted through
    it); no limit at all: the station's rating."""
    current_A = min(rated_current_A, limit.current_A if limit.current_A is not None else rated_current_A)
    power_W = min(rated_power_W, limit.power_W if limit.power_W is not None else rated_power_W)
    if unit == "W":
        return round(min(power_W, current_A * voltage_V), 1)
    return round(min(current_A, power_W / voltage_V if voltage_V > 0 else current_A), 1)


def change_points(profile: ChargingProfile, start: datetime, end: datetime,
                  transaction: TransactionContext | None) -> set[datetime]:
    """Moments in [start, end) where ``profile``'s period in force may change."""
    points = {moment for moment in (profile.valid_from, profile.valid_to) if moment is not None}
    step = RECURRENCE.get(profile.recurrency or "") if profile.kind is Kind.RECURRING else None
    first = schedule_start(profile, start, transaction)
    starts = [first]
    if step is not None:
        moment = first + step
        while moment < end:
            starts.append(moment)
            moment += step
    for schedule_begins in starts:
        points.update(schedule_begins + timedelta(seconds=p.start_period_s) for p in profile.schedule.periods)
        if profile.schedule.duration_s is not None:
            points.add(schedule_begins + timedelta(seconds=profile.schedule.duration_s))
    return {point for point in points if start < point < end}


@dataclass(frozen=True)
class CompositePeriod:
    start_period_s: int
    limit: float


def composite_schedule(profiles: Iterable[ChargingProfile], start: datetime, duration_s: int, unit: str, *,
                       voltage_V: float, rated_current_A: float, rated_power_W: float,
                       transaction: TransactionContext | None = None) -> list[CompositePeriod]:
    """GetCompositeSchedule: the composite limit over [start, start + duration_s) as periods in ``unit``
    (consecutive equal limits merged; whole seconds, as the messages carry them)."""
    profiles = list(profiles)
    end = start + timedelta(seconds=duration_s)
    moments = {start}
    for profile in profiles:
        moments |= change_points(profile, start, end, transaction)
    periods: list[CompositePeriod] = []
    for moment in sorted(moments):
        offset_s = int((moment - start).total_seconds())
        value = limit_in_unit(composite_limit(profiles, moment, transaction), unit, voltage_V, rated_current_A,
                              rated_power_W)
        if periods and periods[-1].limit == value:
            continue
        if periods and periods[-1].start_period_s == offset_s:
            periods[-1] = CompositePeriod(offset_s, value)
        else:
            periods.append(CompositePeriod(offset_s, value))
    return periods
