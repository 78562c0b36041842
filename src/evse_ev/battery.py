"""The simulated EV's traction battery, as its BMS sees it from the charging session.

SOC rises with the energy the EVSE actually delivered: each CurrentDemandRes (DIN/-2) or DC_ChargeLoopRes
(-20) carries EVSEPresentVoltage and EVSEPresentCurrent; the power V·I is held from one response to the next
(the EV's own sampling) and integrated over the time between them. Nothing moves per message: a loop that
runs twice as often adds half the energy per message. ``time_scale`` is simulated seconds per wall
second, the Live Controller's clock speed, so the EV and a sped-up simulated plant integrate the same time.

Pack data and the charging curve come from ``sim_plant.battery`` (the presets of the simulated plant).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evse_model import standards
from sim_plant.battery import BATTERY_PRESETS, BatteryPreset

#: EV presets of this tool → the plant's battery presets (ev400: 96s NMC 77 kWh; ev800: 192s NMC 77.4 kWh).
EV_PRESETS: dict[str, str] = {"400V": "ev400", "800V": "ev800", "ev400": "ev400", "ev800": "ev800",
                              "ev_small": "ev_small"}
#: The EV's contactor may close when the EVSE's precharge voltage is this close to its pack (DIN 70121 /
#: ISO 15118-2 precharge: EVSE within 20 V of the EV's request, DESIGN "Safety supervisor").
PRECHARGE_TOLERANCE_V = standards.CONTACTOR_CLOSE_MAX_DELTA_V
SECONDS_PER_HOUR = 3600.0


def preset_named(name: str) -> BatteryPreset:
    try:
        return BATTERY_PRESETS[EV_PRESETS[name]]
    except KeyError:
        raise ValueError(f"unknown EV preset {name!r}; known: {', '.join(EV_PRESETS)}") from None


@dataclass
class EvBattery:
    preset: BatteryPreset
    soc_percent: float
    target_soc_percent: float = 80.0
    time_scale: float = 1.0  # simulated seconds per wall second (the Live Controller's speed)
    delivered_Wh: float = 0.0  # this session, from the EVSE's present values
    samples: int = 0
    _last: tuple[float, float, float] | None = field(default=None, repr=False)  # (wall s, V, A)

    def __post_init__(self) -> None:
        if not 0.0 <= self.soc_percent <= 100.0:
            raise ValueError(f"soc_percent must be 0..100, got {self.soc_percent}")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be > 0")

    # --- what the EVSE reported -------------------------------------------------------------------------
    def observe(self, voltage_V: float, current_A: float, wall_s: float) -> None:
        """The EVSE's present voltage and current at ``wall_s`` (monotonic seconds of this process)."""
        if self._last is not None:
            last_s, last_V, last_A = self._last
            dt_s = max(0.0, wall_s - last_s) * self.time_scale
            self._add_energy(last_V * max(0.0, last_A) * dt_s / SECONDS_PER_HOUR)
        self._last = (wall_s, voltage_V, current_A)
        self.samples += 1

    def stop_observing(self) -> None:
        """The charge loop ended (or the cable was pulled): nothing flows until the next report."""
        self._last = None

    def _add_energy(self, energy_Wh: float) -> None:
        self.delivered_Wh += energy_Wh
        self.soc_percent = min(100.0, self.soc_percent + 100.0 * energy_Wh / self.preset.capacity_Wh)

    # --- what the EV asks for ---------------------------------------------------------------------------
    @property
    def ocv_V(self) -> float:
        return self.preset.ocv_V(self.soc_percent / 100.0)

    def charging_complete(self) -> bool:
        return self.soc_percent >= self.target_soc_percent

    def target_current_A(self) -> float:
        """The charging curve of the preset: full current to 50 %, tapering above; limited by max power."""
        if self.charging_complete():
            return 0.0
        return max(0.0, min(self.preset.max_current_A, self.preset.max_power_W / max(1.0, self.ocv_V),
                            self.preset.taper_current_A(self.soc_percent / 100.0)))

    def target_voltage_V(self) -> float:
        """The EV's target voltage in current control: its maximum voltage (the EVSE limits the current)."""
        return self.preset.max_voltage_V

    def precharged(self, evse_voltage_V: float) -> bool:
        return abs(evse_voltage_V - self.ocv_V) < PRECHARGE_TOLERANCE_V

    def remaining_time_s(self, to_soc_percent: float) -> int:
        """A rough estimate at the present request (what the EV reports as RemainingTimeTo*SOC)."""
        current_A = self.target_current_A()
        if current_A <= 0 or self.soc_percent >= to_soc_percent:
            return 0
        energy_Wh = (to_soc_percent - self.soc_percent) / 100.0 * self.preset.capacity_Wh
        return int(min(172_800, energy_Wh / (current_A * self.ocv_V) * SECONDS_PER_HOUR))

    def as_json(self) -> dict:
        return {"preset": self.preset.name, "soc": round(self.soc_percent, 3),
                "target_soc": self.target_soc_percent, "delivered_Wh": round(self.delivered_Wh, 3),
                "ocv_V": round(self.ocv_V, 1), "target_current_A": round(self.target_current_A(), 1)}
