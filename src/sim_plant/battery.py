"""Traction battery: OCV(SOC) + R·I, SOC counted from the charge that actually flowed.

Presets follow ../shared/reference/standards.md §4.2 (representative values, not normative).
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, replace

#: NMC cell open-circuit voltage over SOC (0…1), 3.0–4.2 V/cell (standards.md §4.2).
NMC_CELL_OCV_CURVE: tuple[tuple[float, float], ...] = (
    (0.00, 3.00), (0.05, 3.35), (0.10, 3.45), (0.20, 3.55), (0.30, 3.62), (0.40, 3.68),
    (0.50, 3.74), (0.60, 3.82), (0.70, 3.90), (0.80, 3.98), (0.90, 4.08), (1.00, 4.20),
)
NMC_CELL_NOMINAL_V = 3.7
#: Requested fraction of the maximum current over SOC: full to 50 %, 50 % at 80 %, 15 % at 95 % (standards.md §4.2).
TAPER_CURVE: tuple[tuple[float, float], ...] = ((0.0, 1.0), (0.50, 1.0), (0.80, 0.50), (0.95, 0.15), (1.0, 0.05))


def interpolate(curve: tuple[tuple[float, float], ...], x: float,
                xs: tuple[float, ...] | None = None) -> float:
    """Piecewise-linear lookup, clamped at both ends: the segment (x0, x1] that holds ``x``, found by bisection
    in ``xs`` (the curve's x values; pass them precomputed where the lookup runs every simulation step)."""
    index = bisect_left(xs if xs is not None else [point[0] for point in curve], x)
    if index == 0:
        return curve[0][1]
    if index == len(curve):
        return curve[-1][1]
    x0, y0 = curve[index - 1]
    x1, y1 = curve[index]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


_NMC_CELL_OCV_XS = tuple(soc for soc, _volts in NMC_CELL_OCV_CURVE)
_TAPER_XS = tuple(soc for soc, _fraction in TAPER_CURVE)


@dataclass(frozen=True)
class BatteryPreset:
    """A car's pack and charging limits."""

    name: str
    series_cells: int
    capacity_Wh: float
    internal_resistance_ohm: float
    #: EVMaximumVoltageLimit the car announces.
    max_voltage_V: float
    max_current_A: float
    max_power_W: float
    default_start_soc_percent: float = 30.0
    default_target_soc_percent: float = 80.0
    #: Scale on the cell OCV curve (1.0 for real cells; the "follow" car rescales its pack).
    cell_voltage_scale: float = 1.0

    @property
    def capacity_Ah(self) -> float:
        return self.capacity_Wh / (self.series_cells * NMC_CELL_NOMINAL_V * self.cell_voltage_scale)

    def ocv_V(self, soc_fraction: float) -> float:
        return self.series_cells * self.cell_voltage_scale * interpolate(NMC_CELL_OCV_CURVE, soc_fraction,
                                                                        _NMC_CELL_OCV_XS)

    def taper_current_A(self, soc_fraction: float) -> float:
        """Current the car asks for at this SOC: full to 50 %, 50 % at 80 %, 15 % at 95 % (standards.md §4.2)."""
        return self.max_current_A * interpolate(TAPER_CURVE, soc_fraction, _TAPER_XS)


BATTERY_PRESETS: dict[str, BatteryPreset] = {
    # 400 V class: 96s NMC, 288…403 V, 77 kWh, 350 A / 150 kW (standards.md §4.2).
    "ev400": BatteryPreset("ev400", 96, 77_000.0, 0.10, 420.0, 350.0, 150_000.0),
    # 800 V class, E-GMP-like: 192s NMC, 576…806 V, 77.4 kWh, 350 A / 235 kW.
    "ev800": BatteryPreset("ev800", 192, 77_400.0, 0.15, 835.0, 350.0, 235_000.0),
    # Small 400 V car: 40 kWh, 125 A / 50 kW.
    "ev_small": BatteryPreset("ev_small", 96, 40_000.0, 0.12, 420.0, 125.0, 50_000.0),
}


def follow_preset(target_voltage_V: float, initial_current_A: float) -> BatteryPreset:
    """A car whose pack sits just below the session's target voltage (the spec's quick sessions).

    The pack is an ev400 rescaled so that its OCV at 50 % SOC is 99.5 % of ``target_voltage_V``: precharge
    to the target then meets it within the 20 V contactor window, and the car's maximum voltage (110 % of
    the target) leaves room to drive ``initial_current_A`` through the internal resistance.
    """
    base = BATTERY_PRESETS["ev400"]
    scale = 0.995 * target_voltage_V / base.ocv_V(0.5)
    max_current_A = max(10.0, 2.0 * initial_current_A)
    return replace(
        base,
        name="follow",
        cell_voltage_scale=scale * base.cell_voltage_scale,
        internal_resistance_ohm=base.internal_resistance_ohm * scale,
        capacity_Wh=base.capacity_Wh * scale,
        max_voltage_V=1.10 * target_voltage_V,
        max_current_A=max_current_A,
        max_power_W=1.10 * target_voltage_V * max_current_A,
        default_start_soc_percent=50.0,
        default_target_soc_percent=100.0,
    )


class Battery:
    """State of one pack: SOC moves only with the charge that flowed through it."""

    def __init__(self, preset: BatteryPreset, soc_percent: float) -> None:
        if not 0.0 <= soc_percent <= 100.0:
            raise ValueError(f"soc_percent must be 0…100, got {soc_percent}")
        self.preset = preset
        self.soc_fraction = soc_percent / 100.0
        self.charged_Ah = 0.0
        self.charged_Wh = 0.0
        self._ocv_soc = -1.0
        self._ocv_preset: BatteryPreset | None = None
        self._ocv_V = 0.0
        #: The OCV curve's segment (x0, x1, y0, y1) the last lookup found (empty: x0 < soc <= x1 never).
        self._ocv_segment: tuple[float, float, float, float] = (0.0, -1.0, 0.0, 0.0)
        self._capacity_preset: BatteryPreset | None = None
        self._capacity_Ah = 0.0

    @property
    def soc_percent(self) -> float:
        return 100.0 * self.soc_fraction

    def ocv_V(self) -> float:
        # Cached per SOC: the plant asks several times per step, the SOC changes once.
        soc = self.soc_fraction
        preset = self.preset
        if self._ocv_soc != soc or self._ocv_preset is not preset:
            self._ocv_soc, self._ocv_preset = soc, preset
            x0, x1, y0, y1 = self._ocv_segment
            if x0 < soc <= x1 and type(preset) is BatteryPreset:
                # preset.ocv_V(soc) in the OCV curve's segment (x0, x1] that bisect_left found for the last SOC
                # asked (and finds for this one): the same sums
                self._ocv_V = preset.series_cells * preset.cell_voltage_scale * (y0 + (y1 - y0) * (soc - x0)
                                                                                  / (x1 - x0))
            else:
                self._ocv_V = preset.ocv_V(soc)
                index = bisect_left(_NMC_CELL_OCV_XS, soc)
                if 0 < index < len(NMC_CELL_OCV_CURVE):
                    (x0, y0), (x1, y1) = NMC_CELL_OCV_CURVE[index - 1], NMC_CELL_OCV_CURVE[index]
                    self._ocv_segment = (x0, x1, y0, y1)
        return self._ocv_V

    def terminal_voltage_V(self, current_A: float) -> float:
        return self.ocv_V() + current_A * self.preset.internal_resistance_ohm

    def capacity_Ah(self) -> float:
        """The preset's capacity in Ah, computed once per preset (the plant integrates every step)."""
        if self._capacity_preset is not self.preset:
            self._capacity_preset, self._capacity_Ah = self.preset, self.preset.capacity_Ah
        return self._capacity_Ah

    def integrate(self, current_A: float, terminal_voltage_V: float, dt_s: float) -> None:
        """Account ``current_A`` (positive = charging) flowing for ``dt_s`` at ``terminal_voltage_V``."""
        charge_Ah = current_A * dt_s / 3600.0
        self.charged_Ah += charge_Ah
        self.charged_Wh += terminal_voltage_V * current_A * dt_s / 3600.0
        soc = self.soc_fraction + charge_Ah / self.capacity_Ah()
        soc = soc if soc > 0.0 else 0.0  # max(0.0, soc) and min(1.0, soc) without the calls (the same floats)
        self.soc_fraction = soc if soc < 1.0 else 1.0
