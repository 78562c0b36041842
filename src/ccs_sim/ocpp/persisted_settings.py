"""What the CSMS set that survives a restart, in the OCPP tables of the controller's records database.

- Availability (``ocpp_availability``): OCPP 1.6 §5.2 ChangeAvailability ("Persistent states: for example:
  Connector set to Unavailable shall persist a reboot"); 2.0.1 G03 / G04 (Change Availability EVSE / Charging
  Station: the operational status is kept across a reboot). Stored when the CSMS's request is Accepted or
  Scheduled: after a restart no transaction runs, so a Scheduled change is due.
- Charging profiles (``ocpp_charging_profiles``): the station keeps its installed profiles across a reboot (as
  libocpp keeps them in its database) — ChargePointMaxProfile / ChargingStationMaxProfile and TxDefaultProfile.
  A TxProfile is not kept: it lives as long as its transaction (1.6 §3.13.4 / 2.0.1 K01.FR.19), and a restart
  ends the transaction (``transactions.recover``: PowerLoss). A profile whose validTo has passed is dropped
  when loaded (it can never be in force again).
- Configuration (``ocpp_settings``): the values the CSMS wrote with 1.6 ChangeConfiguration / 2.0.1
  SetVariables (``device_model.DeviceModel.on_written``), by ``device_model.setting_name``.

Loaded by ``StationCommands.start`` before the link starts (so before the BootNotification): an Inoperative
station refuses ``start_session`` and the composite limit is in force from the first second. Written on the
OCPP database's worker thread, in order, each write one database transaction (the session store's
``Transaction``); a write is queued when the change is made, and the CSMS's answer to the request that made it
waits until it is on disk (``stored_before_answer``): an Accepted the CSMS saw is never lost in a crash.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from ccs_sim.observability.session_store import Transaction
from ccs_sim.ocpp.charging_profiles import parse_date_time
from ccs_sim.ocpp.smart_charging import ChargingProfile, ChargingSchedule, Kind, Purpose, SchedulePeriod
from ccs_sim.ocpp.store import OcppDatabase

log = logging.getLogger(__name__)


def _moment(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def profile_to_json(profile: ChargingProfile) -> str:
    schedule = profile.schedule
    return json.dumps({
        "profile_id": profile.profile_id, "stack_level": profile.stack_level, "purpose": profile.purpose.value,
        "kind": profile.kind.value, "recurrency": profile.recurrency, "valid_from": _moment(profile.valid_from),
        "valid_to": _moment(profile.valid_to), "transaction_id": profile.transaction_id,
        "connector_id": profile.connector_id, "received_at": _moment(profile.received_at),
        "schedule": {"rate_unit": schedule.rate_unit, "duration_s": schedule.duration_s,
                     "start_schedule": _moment(schedule.start_schedule),
                     "min_charging_rate": schedule.min_charging_rate,
                     "periods": [[p.start_period_s, p.limit, p.number_phases] for p in schedule.periods]}})


def profile_from_json(text: str) -> ChargingProfile:
    data = json.loads(text)
    schedule = data["schedule"]
    return ChargingProfile(
        profile_id=int(data["profile_id"]), stack_level=int(data["stack_level"]), purpose=Purpose(data["purpose"]),
        kind=Kind(data["kind"]), recurrency=data["recurrency"], valid_from=parse_date_time(data["valid_from"]),
        valid_to=parse_date_time(data["valid_to"]), transaction_id=data["transaction_id"],
        connector_id=int(data["connector_id"]), received_at=parse_date_time(data["received_at"]),
        schedule=ChargingSchedule(
            rate_unit=schedule["rate_unit"], duration_s=schedule["duration_s"],
            start_schedule=parse_date_time(schedule["start_schedule"]),
            min_charging_rate=schedule["min_charging_rate"],
            periods=tuple(SchedulePeriod(int(start), float(limit), phases)
                          for start, limit, phases in schedule["periods"])))


@dataclass
class StoredSettings:
    """What a start finds: the availability (None: never changed), the profiles in force or to come, the
    configuration values the CSMS wrote, and the ids of the profiles dropped as expired."""

    operative: bool | None = None
    profiles: list[ChargingProfile] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    expired_profile_ids: list[int] = field(default_factory=list)


# --- database functions (run on the OCPP database's worker thread) -------------------------------------------------
def _load(db: sqlite3.Connection, version: str, now: datetime) -> StoredSettings:
    stored = StoredSettings()
    row = db.execute("SELECT operative FROM ocpp_availability WHERE id=1").fetchone()
    stored.operative = None if row is None else bool(row[0])
    for row in db.execute("SELECT profile_id, profile FROM ocpp_charging_profiles WHERE version=? "
                          "ORDER BY profile_id", (version,)):
        try:
            profile = profile_from_json(row["profile"])
        except (ValueError, KeyError, TypeError) as error:
            log.warning("OCPP stored charging profile %s unreadable, dropped: %s", row["profile_id"], error)
            stored.expired_profile_ids.append(int(row["profile_id"]))
            continue
        if profile.purpose is Purpose.TX or (profile.valid_to is not None and profile.valid_to <= now):
            stored.expired_profile_ids.append(profile.profile_id)
        else:
            stored.profiles.append(profile)
    if stored.expired_profile_ids:
        with Transaction(db):
            db.executemany("DELETE FROM ocpp_charging_profiles WHERE profile_id=?",
                           [(profile_id,) for profile_id in stored.expired_profile_ids])
    stored.settings = {row["name"]: row["value"] for row in db.execute("SELECT name, value FROM ocpp_settings")}
    return stored


def _save_availability(db: sqlite3.Connection, operative: bool, at: str) -> None:
    with Transaction(db):
        db.execute("INSERT OR REPLACE INTO ocpp_availability (id, operative, changed_at) VALUES (1, ?, ?)",
                   (1 if operative else 0, at))


def _replace_profiles(db: sqlite3.Connection, version: str, rows: list[tuple[Any, ...]]) -> None:
    with Transaction(db):
        db.execute("DELETE FROM ocpp_charging_profiles WHERE version=?", (version,))
        db.executemany("INSERT OR REPLACE INTO ocpp_charging_profiles (profile_id, version, connector_id, purpose, "
                       "valid_to, profile, installed_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)


def _save_setting(db: sqlite3.Connection, name: str, value: str, at: str) -> None:
    with Transaction(db):
        db.execute("INSERT OR REPLACE INTO ocpp_settings (name, value, changed_at) VALUES (?, ?, ?)",
                   (name, value, at))


class PersistedSettings:
    """The stored settings of one station of ``version`` (profiles are kept per version; availability and
    configuration values are the station's)."""

    def __init__(self, database: OcppDatabase, version: str) -> None:
        self.database = database
        self.version = version
        self.writes = 0
        self._last_write: asyncio.Future[Any] | None = None

    async def load(self, now: datetime) -> StoredSettings:
        stored = await self.database.call(_load, self.version, now)
        if stored.expired_profile_ids:
            log.info("OCPP stored charging profiles dropped at start (expired, TxProfile or unreadable): %s",
                     stored.expired_profile_ids)
        return stored

    def save_availability(self, operative: bool, at: datetime) -> None:
        self._submit(_save_availability, operative, at.isoformat())

    def save_profiles(self, profiles: list[ChargingProfile], at: datetime) -> None:
        """The installed profiles now (all but TxProfiles) replace the stored ones."""
        rows = [(p.profile_id, self.version, p.connector_id, p.purpose.value, _moment(p.valid_to),
                 profile_to_json(p), at.isoformat()) for p in profiles if p.purpose is not Purpose.TX]
        self._submit(_replace_profiles, self.version, rows)

    def save_setting(self, name: str, value: str, at: datetime) -> None:
        self._submit(_save_setting, name, value, at.isoformat())

    def _submit(self, function: Any, *args: Any) -> None:
        self.writes += 1
        future = self.database.submit(function, *args)
        future.add_done_callback(_log_failure)
        self._last_write = future

    async def written(self) -> None:
        """Return once every write queued so far is on disk (the worker runs them in order: the last one)."""
        last = self._last_write
        if last is not None and not last.done():
            await asyncio.wait([last])


Handler = TypeVar("Handler", bound=Any)


def stored_before_answer(handler: Handler) -> Handler:
    """A CSMS request handler (``self.commands.persisted`` reachable) whose answer is sent only once what it
    changed is stored: the ``ocpp`` package awaits an awaitable answer before sending it."""

    @functools.wraps(handler)
    async def answer_when_stored(self: Any, *args: Any, **kwargs: Any) -> Any:
        answer = handler(self, *args, **kwargs)
        await self.commands.persisted.written()
        return answer

    return answer_when_stored  # type: ignore[return-value]


def _log_failure(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("OCPP setting not stored: %r", future.exception())
