"""A small device model: the station's configuration as 1.6 keys and 2.0.1 component/variable pairs at once.

One ``Setting`` per item, named both ways (1.6 GetConfiguration/ChangeConfiguration key; 2.0.1 component and
variable of Get/SetVariables), typed (integer, boolean, comma-separated list), read-only or writable, and
with an ``on_change`` hook that makes a change take effect (``OcppCommands`` wires them: the heartbeat
interval of the link, the meter interval of the transactions ...).

Answers (1.6 §5.3 ChangeConfiguration: Accepted, Rejected, RebootRequired, NotSupported; §5.8
GetConfiguration: unknown keys in ``unknownKey``. 2.0.1 B06/B05 GetVariables / SetVariables: Accepted,
Rejected, UnknownComponent, UnknownVariable, NotSupportedAttributeType): a read-only item, a value of the
wrong type, out of range or with an unknown list member is Rejected; a key no item has is NotSupported (1.6) /
UnknownComponent or UnknownVariable (2.0.1); only the Actual attribute exists (2.0.1).

The measurand lists (1.6 MeterValuesSampledData, StopTxnSampledData; 2.0.1 SampledDataCtrlr.TxUpdatedMeasurands,
TxStartedMeasurands, TxEndedMeasurands) choose what the transaction messages carry (``measurand_selection``);
a list naming a measurand this station does not sample is Rejected (1.6 §5.3 ChangeConfiguration: "Rejected"
when the value is not valid; 2.0.1 B05 SetVariables: Rejected for a value out of the variable's valuesList).

Every writable setting keeps what the CSMS wrote across a restart (1.6 §9 configuration keys are the Charge
Point's settings; 2.0.1 device model variables are persistent): ``on_written`` tells the owner (who stores
it: ``persisted_settings.py``), ``restore`` puts a stored value back at the next start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ccs_sim.ocpp.transaction_messages import BEGIN_END_MEASURANDS, MEASURANDS, MeasurandSelection, parse_measurands

log = logging.getLogger(__name__)

#: The periodic default: every measurand this station samples (the issue's list); begin / end: the register.
DEFAULT_MEASURANDS = ",".join(MEASURANDS)
DEFAULT_BEGIN_END_MEASURANDS = ",".join(BEGIN_END_MEASURANDS)


@dataclass
class Setting:
    key_16: str | None
    component: str | None
    variable: str | None
    kind: str  # "integer" | "boolean" | "csl" | "string"
    value: str
    read_only: bool = False
    minimum: int | None = None
    #: For "csl": the members a list may have.
    members: tuple[str, ...] = ()
    on_change: Callable[[str], None] | None = field(default=None, repr=False)

    def check(self, value: str) -> bool:
        """Is ``value`` a valid value of this setting?"""
        if self.kind == "integer":
            try:
                number = int(value)
            except ValueError:
                return False
            return self.minimum is None or number >= self.minimum
        if self.kind == "boolean":
            return value.lower() in ("true", "false")
        if self.kind == "csl":
            items = [item.strip() for item in value.split(",") if item.strip()]
            return all(item in self.members for item in items)
        return True

    def normalised(self, value: str) -> str:
        if self.kind == "boolean":
            return value.lower()
        if self.kind == "csl":
            return ",".join(item.strip() for item in value.split(",") if item.strip())
        return value


def default_settings(connectors: int, heartbeat_interval_s: int, meter_interval_s: int) -> list[Setting]:
    """The station's settings (1.6 Core / SmartCharging profile keys; 2.0.1 controllers' variables)."""
    return [
        Setting("HeartbeatInterval", "OCPPCommCtrlr", "HeartbeatInterval", "integer", str(heartbeat_interval_s),
                minimum=0),
        Setting("MeterValueSampleInterval", "SampledDataCtrlr", "TxUpdatedInterval", "integer",
                str(meter_interval_s), minimum=0),
        Setting("MeterValuesSampledData", "SampledDataCtrlr", "TxUpdatedMeasurands", "csl", DEFAULT_MEASURANDS,
                members=MEASURANDS),
        Setting(None, "SampledDataCtrlr", "TxStartedMeasurands", "csl", DEFAULT_BEGIN_END_MEASURANDS,
                members=MEASURANDS),
        Setting("StopTxnSampledData", "SampledDataCtrlr", "TxEndedMeasurands", "csl", DEFAULT_BEGIN_END_MEASURANDS,
                members=MEASURANDS),
        Setting("ClockAlignedDataInterval", "AlignedDataCtrlr", "Interval", "integer", "0", minimum=0),
        Setting("MeterValuesAlignedData", "AlignedDataCtrlr", "Measurands", "csl",
                "Energy.Active.Import.Register", members=MEASURANDS),
        Setting(None, "AlignedDataCtrlr", "Enabled", "boolean", "false", read_only=True),
        Setting("ConnectionTimeOut", "TxCtrlr", "EVConnectionTimeOut", "integer", "60", minimum=1),
        Setting("AuthorizeRemoteTxRequests", "AuthCtrlr", "AuthorizeRemoteStart", "boolean", "false"),
        Setting("StopTransactionOnInvalidId", "TxCtrlr", "StopTxOnInvalidId", "boolean", "true", read_only=True),
        Setting("NumberOfConnectors", None, None, "integer", str(connectors), read_only=True),
        Setting("SupportedFeatureProfiles", None, None, "csl", "Core,RemoteTrigger,SmartCharging", read_only=True),
        Setting("GetConfigurationMaxKeys", None, None, "integer", "50", read_only=True),
        Setting("ChargeProfileMaxStackLevel", "SmartChargingCtrlr", "ProfileStackLevel", "integer", "8",
                read_only=True),
        Setting("ChargingScheduleAllowedChargingRateUnit", "SmartChargingCtrlr", "RateUnit", "csl",
                "Current,Power" , read_only=True),
        Setting("ChargingScheduleMaxPeriods", "SmartChargingCtrlr", "PeriodsPerSchedule", "integer", "24",
                read_only=True),
        Setting("MaxChargingProfilesInstalled", "SmartChargingCtrlr", "Entries", "integer", "16", read_only=True),
        Setting(None, "SmartChargingCtrlr", "Enabled", "boolean", "true", read_only=True),
        Setting(None, "ChargingStation", "AvailabilityState", "string", "Available", read_only=True),
    ]


def setting_name(setting: Setting) -> str:
    """The name a setting is stored under: its 1.6 key, else ``Component/Variable``."""
    return setting.key_16 or f"{setting.component}/{setting.variable}"


class DeviceModel:
    def __init__(self, settings: list[Setting]) -> None:
        self.settings = settings
        #: Told of every value the CSMS wrote (after it took effect): the owner stores it.
        self.on_written: Callable[[Setting], None] | None = None
        self._by_key = {s.key_16: s for s in settings if s.key_16}
        self._by_variable: dict[tuple[str | None, str | None], Setting] = {
            (s.component, s.variable): s for s in settings if s.component}

    def setting(self, key_16: str | None = None, component: str | None = None,
                variable: str | None = None) -> Setting | None:
        if key_16 is not None:
            return self._by_key.get(key_16)
        return self._by_variable.get((component, variable))

    def on_change(self, key_16: str, hook: Callable[[str], None]) -> None:
        setting = self._by_key[key_16]
        setting.on_change = hook

    def force(self, setting: Setting, value: str) -> None:
        """The station itself changes a value (a read-only one too: e.g. AvailabilityState)."""
        setting.value = value

    def _write(self, setting: Setting, value: str) -> str:
        if setting.read_only:
            return "Rejected"
        if not setting.check(value):
            return "Rejected"
        self._apply(setting, setting.normalised(value))
        if self.on_written is not None:
            self.on_written(setting)
        return "Accepted"

    def _apply(self, setting: Setting, value: str) -> None:
        setting.value = value
        if setting.on_change is not None:
            try:
                setting.on_change(setting.value)
            except (ValueError, TypeError) as error:
                log.warning("OCPP setting %s = %s not applied: %s", setting_name(setting), value, error)

    def restore(self, values: dict[str, str]) -> list[str]:
        """Put back the values the CSMS wrote before a restart (by ``setting_name``; its effect too); the names
        restored. A name no writable setting has, or a value it no longer takes, is skipped (logged)."""
        by_name = {setting_name(s): s for s in self.settings}
        restored = []
        for name, value in values.items():
            setting = by_name.get(name)
            if setting is None or setting.read_only or not setting.check(value):
                log.warning("OCPP stored setting %s = %r not restored (unknown, read-only or invalid)", name, value)
                continue
            self._apply(setting, setting.normalised(value))
            restored.append(name)
        return restored

    def measurand_selection(self) -> MeasurandSelection:
        """The measurands the CSMS chose for each context of the transaction messages."""
        def chosen(variable: str) -> tuple[str, ...]:
            setting = self._by_variable[("SampledDataCtrlr", variable)]
            return parse_measurands(setting.value)
        return MeasurandSelection(periodic=chosen("TxUpdatedMeasurands"), begin=chosen("TxStartedMeasurands"),
                                  end=chosen("TxEndedMeasurands"))

    # --- 1.6 -----------------------------------------------------------------------------------------------
    def get_configuration(self, keys: list[str] | None) -> tuple[list[dict[str, Any]], list[str]]:
        """(configurationKey entries, unknownKey): every 1.6 key when ``keys`` is empty."""
        wanted = keys or list(self._by_key)
        known = [{"key": key, "readonly": self._by_key[key].read_only, "value": self._by_key[key].value}
                 for key in wanted if key in self._by_key]
        return known, [key for key in wanted if key not in self._by_key]

    def change_configuration(self, key: str, value: str) -> str:
        """Accepted, Rejected (read-only or invalid) or NotSupported (no such key)."""
        setting = self._by_key.get(key)
        return "NotSupported" if setting is None else self._write(setting, value)

    # --- 2.0.1 ---------------------------------------------------------------------------------------------
    def _find(self, component: str, variable: str) -> tuple[Setting | None, str]:
        setting = self._by_variable.get((component, variable))
        if setting is not None:
            return setting, "Accepted"
        if not any(c == component for c, _ in self._by_variable):
            return None, "UnknownComponent"
        return None, "UnknownVariable"

    def get_variable(self, component: str, variable: str, attribute_type: str | None) -> tuple[str, str | None]:
        """(attributeStatus, attributeValue)."""
        setting, status = self._find(component, variable)
        if setting is None:
            return status, None
        if attribute_type not in (None, "Actual"):
            return "NotSupportedAttributeType", None
        return "Accepted", setting.value

    def set_variable(self, component: str, variable: str, value: str, attribute_type: str | None) -> str:
        setting, status = self._find(component, variable)
        if setting is None:
            return status
        if attribute_type not in (None, "Actual"):
            return "NotSupportedAttributeType"
        return self._write(setting, value)
