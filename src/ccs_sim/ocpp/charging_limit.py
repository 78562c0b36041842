"""The CSMS's charging profiles applied to the charger: the composite limit as the controller's "ocpp" limit.

``OcppChargingLimit`` keeps the installed profiles (``ProfileStore``), answers SetChargingProfile /
ClearChargingProfile / GetCompositeSchedule (version-neutral: the version's handlers translate), and applies
the composite limit (``smart_charging.composite_limit``) to the controller as one more limit source:
``controller.set_external_limit("ocpp", current_A=..., power_W=...)`` — the controller takes the minimum
of every source in force, shows it in ``/status`` (``limits_in_force``), tells the EV in ISO 15118 sessions
(its maxima are the limited ones) and the dashboard shows it. Applied at once on every change, and again
every ``APPLY_PERIOD_S`` of the controller's clock (a schedule's next period, a profile's validTo) from the
control loop's ticks: a limit is in force within 1 s.

The transaction the profiles see is the running one: its CSMS id (1.6 the StartTransaction.conf's
transactionId once known; 2.0.1 the station's transactionId) and its session's start. A TxProfile ends with
its transaction (1.6 §3.13.4, 2.0.1 K01.FR.19).

Every change of the installed profiles is told to ``on_profiles_changed`` (the owner stores them:
``persisted_settings.py``); ``restore`` installs the stored ones at the next start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ccs_sim.ocpp.charging_profiles import ProfileRefused, ProfileStore
from ccs_sim.ocpp.smart_charging import (
    ChargingProfile,
    CompositeLimit,
    CompositePeriod,
    Purpose,
    TransactionContext,
    composite_limit,
    composite_schedule,
)

if TYPE_CHECKING:
    from ccs_sim.controller import ChargerController
    from ccs_sim.ocpp.station_parts import StationTransactionParts

log = logging.getLogger(__name__)

#: The controller's limit source name for the CSMS's profiles.
LIMIT_SOURCE = "ocpp"
#: How often (controller clock) the composite limit is evaluated again, s: in force within 1 s.
APPLY_PERIOD_S = 0.5
#: GetCompositeSchedule converts W <-> A at the present output voltage, or at this one when no output is on, V.
NOMINAL_VOLTAGE_V = 400.0
#: Below this the output is taken as off (SAFE_DC_VOLTAGE is 60 V), V.
OUTPUT_ON_MIN_V = 60.0


class OcppChargingLimit:
    def __init__(self, controller: ChargerController, parts: StationTransactionParts, version: str,
                 connector_id: int = 1) -> None:
        self.controller = controller
        self.parts = parts
        self.version = version
        self.connector_id = connector_id
        self.store = ProfileStore(version)
        self.limit = CompositeLimit()
        self._applied: CompositeLimit | None = None
        self._last_apply_s: float | None = None
        #: A TxProfile given with a remote start: installed once its transaction opens.
        self.pending_tx_profile: ChargingProfile | None = None
        #: Told when the CSMS installed or cleared profiles (after the change).
        self.on_profiles_changed: Callable[[], None] | None = None

    def restore(self, profiles: list[ChargingProfile]) -> list[int]:
        """Install the profiles stored before a restart (their rules checked again); the ids installed."""
        installed = []
        for profile in profiles:
            try:
                self.store.install(profile, None)
            except ProfileRefused as refusal:
                log.warning("OCPP stored charging profile %s not restored: %s", profile.profile_id, refusal)
                continue
            installed.append(profile.profile_id)
        return installed

    def _profiles_changed(self) -> None:
        if self.on_profiles_changed is not None:
            self.on_profiles_changed()

    # --- the transaction the profiles see -----------------------------------------------------------------
    def transaction(self) -> TransactionContext | None:
        tx = self.parts.transactions.current
        session = self.controller.session
        if tx is None or session is None or not self.controller.session_active or session.session_id != tx.session_id:
            return None
        csms_id = self.parts.queue.csms_transaction_id(tx.local_ref) if self.version == "1.6" else tx.local_ref
        return TransactionContext(transaction_id=str(csms_id) if csms_id is not None else None,
                                  started_at=session.started_at)

    # --- applying ----------------------------------------------------------------------------------------
    def apply(self) -> CompositeLimit:
        """Evaluate the composite limit now and give it to the controller (its "ocpp" source)."""
        now = self.controller.clock.utcnow()
        self._last_apply_s = self.controller.clock.now()
        self.limit = composite_limit(self.store.for_connector(self.connector_id), now, self.transaction())
        if self.limit != self._applied or self.limit.profile_ids != (self._applied.profile_ids if self._applied else {}):
            if self.limit.limited:
                log.info("OCPP composite limit: %s A, %s W (profiles %s)", self.limit.current_A, self.limit.power_W,
                         self.limit.profile_ids)
            self.controller.set_external_limit(LIMIT_SOURCE, current_A=self.limit.current_A,
                                               power_W=self.limit.power_W)
            self._applied = self.limit
        return self.limit

    def on_tick(self) -> None:
        if self._last_apply_s is None or self.controller.clock.now() - self._last_apply_s >= APPLY_PERIOD_S:
            self.apply()

    def on_session_start(self) -> None:
        """A remote start's TxProfile is installed when its transaction opens."""
        profile, self.pending_tx_profile = self.pending_tx_profile, None
        if profile is not None:
            try:
                self.store.install(profile, self.transaction() or TransactionContext(None, self.controller.clock.utcnow()))
            except ProfileRefused as refusal:
                log.warning("OCPP remote start's TxProfile not installed: %s", refusal)
        self.apply()

    def on_session_end(self) -> None:
        self.store.end_transaction()
        self.apply()

    def release(self) -> None:
        """The client stops: the CSMS's limit no longer holds."""
        self.controller.set_external_limit(LIMIT_SOURCE, current_A=None, power_W=None)
        self._applied = None

    # --- the CSMS's requests ----------------------------------------------------------------------------
    def set_profile(self, profile: ChargingProfile) -> tuple[str, str | None]:
        """(Accepted | Rejected, the reason when rejected)."""
        try:
            self.store.install(profile, self.transaction())
        except ProfileRefused as refusal:
            log.warning("OCPP SetChargingProfile %s rejected: %s", profile.profile_id, refusal)
            return "Rejected", str(refusal)
        self._profiles_changed()
        self.apply()
        return "Accepted", None

    def clear_profiles(self, profile_id: int | None = None, connector_id: int | None = None,
                       purpose: Purpose | None = None, stack_level: int | None = None) -> str:
        """Accepted when a profile was removed, else Unknown."""
        removed = self.store.clear(profile_id, connector_id, purpose, stack_level)
        if removed:
            self._profiles_changed()
        self.apply()
        return "Accepted" if removed else "Unknown"

    def composite_schedule(self, duration_s: int, unit: str | None) -> tuple[Any, list[CompositePeriod], str]:
        """(schedule start, periods, unit) of the next ``duration_s`` seconds (A unless asked otherwise)."""
        unit = unit or "A"
        controller = self.controller
        start = controller.clock.utcnow().replace(microsecond=0) + timedelta(seconds=1)
        latest = controller.latest
        voltage_V = latest.output_voltage_V if latest is not None and latest.output_voltage_V > OUTPUT_ON_MIN_V \
            else NOMINAL_VOLTAGE_V
        rated = controller.limits
        periods = composite_schedule(self.store.for_connector(self.connector_id), start, duration_s, unit,
                                     voltage_V=voltage_V, rated_current_A=rated.rated_current_A,
                                     rated_power_W=rated.rated_power_W, transaction=self.transaction())
        return start, periods, unit

    # --- views -------------------------------------------------------------------------------------------
    def offered_current_A(self) -> float | None:
        """The station model's offered current: 0 when a profile allows no current or no power (SuspendedEVSE)."""
        if self.limit.power_W is not None and self.limit.power_W <= 0:
            return 0.0
        return self.limit.current_A

    def view(self) -> dict[str, Any] | None:
        """GET /ocpp's ``composite_limit`` (None while no profile is installed)."""
        if not self.store.profiles and not self.limit.limited:
            return None
        return {"current_A": self.limit.current_A, "power_W": self.limit.power_W,
                "profile_ids": dict(self.limit.profile_ids), "profiles": self.store.view()}
