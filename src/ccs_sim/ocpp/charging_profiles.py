"""The installed charging profiles: read from the two versions' payloads, checked, installed, cleared.

The ``ocpp`` package hands a handler the payload with snake_case keys (``cs_charging_profiles`` in 1.6,
``charging_profile`` in 2.0.1); ``profile_from_16`` / ``profile_from_201`` make a ``smart_charging.ChargingProfile``
of it. ``ProfileStore.install`` applies the rules a station checks before accepting one (else Rejected, with
the reason for 2.0.1's statusInfo):

- the station maximum only on connector / EVSE 0 (1.6 §5.16.3 / 2.0.1 K01.FR.03 and FR.04);
- a TxProfile only on a connector with a running transaction, and of that transaction when it names one
  (1.6 §3.13.2: "the Charge Point SHALL reject" otherwise / 2.0.1 K01.FR.09, FR.16);
- stack level 0..MAX_STACK_LEVEL, 1..MAX_PERIODS_PER_SCHEDULE periods starting at 0 in increasing order,
  Recurring with a recurrencyKind, 2.0.1 Absolute/Recurring with a startSchedule (K01.FR.40);
- an installed profile with the same id is replaced (1.6 §5.16.3, 2.0.1 K01.FR.05); 1.6 also replaces one of
  the same purpose and stack level on the same connector; 2.0.1 rejects that when their validity overlaps
  (K01.FR.39).

A TxProfile lives as long as its transaction (``end_transaction``, 1.6 §3.13.4 / 2.0.1 K01.FR.19).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from ccs_sim.ocpp.smart_charging import (
    MAX_PERIODS_PER_SCHEDULE,
    MAX_PROFILES_INSTALLED,
    MAX_STACK_LEVEL,
    ChargingProfile,
    ChargingSchedule,
    Kind,
    Purpose,
    SchedulePeriod,
    TransactionContext,
)

PURPOSE_16 = {"ChargePointMaxProfile": Purpose.STATION_MAX, "TxDefaultProfile": Purpose.TX_DEFAULT,
              "TxProfile": Purpose.TX}
PURPOSE_201 = {"ChargingStationMaxProfile": Purpose.STATION_MAX, "TxDefaultProfile": Purpose.TX_DEFAULT,
               "TxProfile": Purpose.TX}


class ProfileRefused(ValueError):
    """The profile breaks a rule: answered Rejected (the message is 2.0.1's statusInfo additionalInfo)."""


def parse_date_time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _schedule(data: dict[str, Any]) -> ChargingSchedule:
    periods = tuple(SchedulePeriod(int(p["start_period"]), float(p["limit"]), p.get("number_phases"))
                    for p in data.get("charging_schedule_period", []))
    return ChargingSchedule(rate_unit=str(data["charging_rate_unit"]), periods=periods,
                            duration_s=data.get("duration"), start_schedule=parse_date_time(data.get("start_schedule")),
                            min_charging_rate=data.get("min_charging_rate"))


def profile_from_16(connector_id: int, data: dict[str, Any], received_at: datetime) -> ChargingProfile:
    """1.6 SetChargingProfile.req's ``csChargingProfiles`` (snake_case keys) on ``connector_id``."""
    transaction_id = data.get("transaction_id")
    return ChargingProfile(
        profile_id=int(data["charging_profile_id"]), stack_level=int(data["stack_level"]),
        purpose=PURPOSE_16[data["charging_profile_purpose"]], kind=Kind(data["charging_profile_kind"]),
        schedule=_schedule(data["charging_schedule"]), recurrency=data.get("recurrency_kind"),
        valid_from=parse_date_time(data.get("valid_from")), valid_to=parse_date_time(data.get("valid_to")),
        transaction_id=str(transaction_id) if transaction_id is not None else None, connector_id=connector_id,
        received_at=received_at)


def profile_from_201(evse_id: int, data: dict[str, Any], received_at: datetime) -> ChargingProfile:
    """2.0.1 SetChargingProfileRequest's ``chargingProfile`` (snake_case keys) on ``evse_id``; of its 1..3
    schedules the first is used (more are for ISO 15118 offers)."""
    schedules = data["charging_schedule"]
    if len(schedules) != 1:
        raise ProfileRefused("one chargingSchedule per profile is supported")
    return ChargingProfile(
        profile_id=int(data["id"]), stack_level=int(data["stack_level"]),
        purpose=PURPOSE_201[data["charging_profile_purpose"]], kind=Kind(data["charging_profile_kind"]),
        schedule=_schedule(schedules[0]), recurrency=data.get("recurrency_kind"),
        valid_from=parse_date_time(data.get("valid_from")), valid_to=parse_date_time(data.get("valid_to")),
        transaction_id=data.get("transaction_id"), connector_id=evse_id, received_at=received_at)


def check_profile(profile: ChargingProfile, version: str) -> None:
    """The profile's own rules (ProfileRefused when broken)."""
    if not 0 <= profile.stack_level <= MAX_STACK_LEVEL:
        raise ProfileRefused(f"stackLevel {profile.stack_level} outside 0..{MAX_STACK_LEVEL}")
    periods = profile.schedule.periods
    if not 1 <= len(periods) <= MAX_PERIODS_PER_SCHEDULE:
        raise ProfileRefused(f"{len(periods)} schedule periods (1..{MAX_PERIODS_PER_SCHEDULE} accepted)")
    starts = [p.start_period_s for p in periods]
    if starts[0] != 0 or any(later <= earlier for earlier, later in zip(starts, starts[1:], strict=False)):
        raise ProfileRefused("schedule periods must start at 0 and increase")
    if any(p.limit < 0 for p in periods):
        raise ProfileRefused("a negative limit")
    if profile.schedule.rate_unit not in ("A", "W"):
        raise ProfileRefused(f"chargingRateUnit {profile.schedule.rate_unit}")
    if profile.kind is Kind.RECURRING and profile.recurrency is None:
        raise ProfileRefused("a Recurring profile needs a recurrencyKind")
    if version == "2.0.1" and profile.kind is not Kind.RELATIVE and profile.schedule.start_schedule is None:
        raise ProfileRefused(f"an {profile.kind.value} profile needs a startSchedule")
    if profile.valid_from and profile.valid_to and profile.valid_to <= profile.valid_from:
        raise ProfileRefused("validTo is not after validFrom")


def _overlap(a: ChargingProfile, b: ChargingProfile) -> bool:
    a_from, b_from = a.valid_from or datetime.min.replace(tzinfo=UTC), b.valid_from or datetime.min.replace(tzinfo=UTC)
    a_to, b_to = a.valid_to or datetime.max.replace(tzinfo=UTC), b.valid_to or datetime.max.replace(tzinfo=UTC)
    return a_from < b_to and b_from < a_to


class ProfileStore:
    """The profiles installed on one station of ``version`` with ``connectors`` connectors / EVSEs."""

    def __init__(self, version: str, connectors: int = 1) -> None:
        self.version = version
        self.connectors = connectors
        self.profiles: dict[int, ChargingProfile] = {}

    def install(self, profile: ChargingProfile, transaction: TransactionContext | None) -> ChargingProfile:
        """Install ``profile`` (a TxProfile without a transaction id takes the running one's); ProfileRefused
        when a rule forbids it."""
        check_profile(profile, self.version)
        if not 0 <= profile.connector_id <= self.connectors:
            raise ProfileRefused(f"unknown connector / EVSE {profile.connector_id}")
        if profile.purpose is Purpose.STATION_MAX and profile.connector_id != 0:
            raise ProfileRefused("a station maximum profile belongs on connector / EVSE 0")
        if profile.purpose is Purpose.TX:
            if profile.connector_id == 0:
                raise ProfileRefused("a TxProfile belongs on a connector / EVSE, not 0")
            if transaction is None:
                raise ProfileRefused("no transaction is running for the TxProfile")
            if profile.transaction_id is not None and transaction.transaction_id is not None \
                    and profile.transaction_id != transaction.transaction_id:
                raise ProfileRefused(f"transaction {profile.transaction_id} is not the running one")
            profile = replace(profile, transaction_id=profile.transaction_id or transaction.transaction_id)
        for other in list(self.profiles.values()):
            same_slot = (other.profile_id != profile.profile_id and other.purpose is profile.purpose
                         and other.stack_level == profile.stack_level
                         and other.connector_id == profile.connector_id)
            if same_slot and self.version == "1.6":
                del self.profiles[other.profile_id]
            elif same_slot and _overlap(other, profile):
                raise ProfileRefused(f"profile {other.profile_id} has the same purpose and stack level")
        if profile.profile_id not in self.profiles and len(self.profiles) >= MAX_PROFILES_INSTALLED:
            raise ProfileRefused(f"{MAX_PROFILES_INSTALLED} profiles installed already")
        self.profiles[profile.profile_id] = profile
        return profile

    def clear(self, profile_id: int | None = None, connector_id: int | None = None, purpose: Purpose | None = None,
              stack_level: int | None = None) -> int:
        """Remove the profiles matching every criterion given (by id: that one); how many were removed."""
        if profile_id is not None:
            return 1 if self.profiles.pop(profile_id, None) is not None else 0
        matching = [p.profile_id for p in self.profiles.values()
                    if (connector_id is None or p.connector_id == connector_id)
                    and (purpose is None or p.purpose is purpose)
                    and (stack_level is None or p.stack_level == stack_level)]
        for key in matching:
            del self.profiles[key]
        return len(matching)

    def end_transaction(self) -> int:
        """The transaction ended: its TxProfiles go."""
        return self.clear(purpose=Purpose.TX)

    def for_connector(self, connector_id: int) -> list[ChargingProfile]:
        """The profiles that bear on ``connector_id``: the station's (0) and its own."""
        return [p for p in self.profiles.values() if p.connector_id in (0, connector_id)]

    def view(self) -> list[dict[str, Any]]:
        return [{"id": p.profile_id, "purpose": p.purpose.value, "stack_level": p.stack_level, "kind": p.kind.value,
                 "unit": p.schedule.rate_unit, "connector_id": p.connector_id, "transaction_id": p.transaction_id}
                for p in sorted(self.profiles.values(), key=lambda p: (p.purpose.value, -p.stack_level))]
