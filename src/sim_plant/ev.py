"""The simulated car: CP resistor network, its own DC contactor, its battery and its BMS requests."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from evse_model import standards
from sim_plant.battery import _TAPER_XS, TAPER_CURVE, Battery, BatteryPreset

CP_STATES_SETTABLE = ("A", "B", "C", "D", "E")


@dataclass
class SpecRequestProfile:
    """The spec's simulated request: ``initial_current`` for 5 s of charging, then a step down."""

    initial_current_A: float
    step_after_s: float = 5.0
    step_factor: float = 0.5

    def current_A(self, charging_time_s: float) -> float:
        if charging_time_s < self.step_after_s:
            return self.initial_current_A
        return self.initial_current_A * self.step_factor


class SimulatedEV:
    """A car on the cable. Its behaviour is the physical minimum a real car shows:

    - CP: no resistor when unplugged (A), 2.74 kΩ plugged (B), + 1.3 kΩ when S2 closes (C), 270 Ω for
      ventilation (D), a short for an error (E); a diode unless ``diode_fault``.
    - When ``auto_ready`` and the EVSE shows the 5 % HLC duty, it closes S2 (B → C).
    - Its contactor closes only when energy transfer is wanted (``energy_transfer_wanted``) and its inlet
      voltage is within 20 V of the pack (IEC 61851-23 CC.5.2, DG L981); it opens when transfer stops,
      when the CP leaves C/D, or when the EVSE output disappears under it.
    - Its requests follow its charge curve (presets) or the spec's stepped profile (``follow`` car).
    """

    #: The car notices a change of the PWM offer and moves S2 after this long.
    PWM_REACTION_S = 0.03
    #: With S2 open and current still flowing, the car opens its contactor under load after this long.
    OPEN_UNDER_LOAD_AFTER_S = 0.5

    def __init__(self, preset: BatteryPreset, soc_percent: float | None = None,
                 target_soc_percent: float | None = None) -> None:
        self.preset = preset
        self.battery = Battery(preset, preset.default_start_soc_percent if soc_percent is None else soc_percent)
        self.target_soc_percent = preset.default_target_soc_percent if target_soc_percent is None \
            else target_soc_percent
        self.plugged_in = False
        self.s2_closed = False
        self.ventilation_required = False
        self.cp_shorted = False
        self.diode_fault = False
        #: Close S2 by itself when the EVSE offers 5 % PWM (off once a CP state is forced through the API).
        self.auto_ready = True
        self.contactor_closed = False
        self.energy_transfer_wanted = False
        self.spec_profile: SpecRequestProfile | None = None
        #: The most a preset car asks for in a simulated session (the session's ``initial_current``).
        self.request_cap_A: float | None = None
        #: Set by the protocol side (HLC) when a real EV stack sends its targets; overrides the model.
        self.hlc_target_voltage_V: float | None = None
        self.hlc_target_current_A: float | None = None
        self.charging_time_s = 0.0
        self._pending_s2: tuple[float, bool] | None = None
        self._unready_since_s: float | None = None
        #: The taper curve's segment (x0, x1, y0, y1) the last request found (empty: x0 < soc <= x1 never).
        self._taper_segment: tuple[float, float, float, float] = (0.0, -1.0, 0.0, 0.0)

    # --- control pilot -------------------------------------------------------------------------
    def cp_resistance_ohm(self) -> float | None:
        """Resistance the car puts between CP and PE (None = open circuit, 0 = short)."""
        if not self.plugged_in:
            return None
        if self.cp_shorted:
            return 0.0
        if self.ventilation_required:
            return standards.CP_EV_R_STATE_D_OHM
        if self.s2_closed:
            return standards.CP_EV_R_STATE_C_OHM
        return standards.CP_EV_R_STATE_B_OHM

    def force_cp_state(self, state: str) -> None:
        """Put the car's resistor network into ``state`` (A..E); stops automatic S2 handling."""
        if state not in CP_STATES_SETTABLE:
            raise ValueError(f"CP state must be one of {', '.join(CP_STATES_SETTABLE)}, got {state!r}")
        self.auto_ready = False
        self._pending_s2 = None
        if state == "A" and self.plugged_in:
            self.contactor_closed = False  # the plug left the inlet: the circuit is broken, whatever the contactors
        self.plugged_in = state != "A"
        self.s2_closed = state in ("C", "D")
        self.ventilation_required = state == "D"
        self.cp_shorted = state == "E"

    def plug_in(self) -> None:
        """A car arrives: plugged, S2 open (B), automatic behaviour on."""
        self.plugged_in = True
        self.s2_closed = False
        self.ventilation_required = False
        self.cp_shorted = False
        self.auto_ready = True

    def unplug(self) -> None:
        self._pending_s2 = None
        self.plugged_in = False
        self.s2_closed = False
        self.contactor_closed = False
        self.energy_transfer_wanted = False

    def react_to_pwm(self, duty_percent: float, now_s: float | None = None) -> None:
        """S2 follows the EVSE's offer when the car handles it itself, after the car's reaction time
        (immediately when ``now_s`` is None, e.g. a car that plugs into an oscillating pilot)."""
        if not (self.auto_ready and self.plugged_in and not self.cp_shorted):
            self._pending_s2 = None
            return
        wanted = abs(duty_percent - standards.CP_HLC_DUTY_PERCENT) <= 2.0
        if wanted == self.s2_closed:
            self._pending_s2 = None
        elif now_s is None:
            self.s2_closed = wanted
            self._pending_s2 = None
        elif self._pending_s2 is None or self._pending_s2[1] != wanted:
            self._pending_s2 = (now_s + self.PWM_REACTION_S, wanted)

    def advance(self, now_s: float) -> None:
        """Apply what the car decided earlier once its reaction time has passed."""
        if self._pending_s2 is not None and now_s >= self._pending_s2[0]:
            self.s2_closed = self._pending_s2[1]
            self._pending_s2 = None

    # --- contactor ------------------------------------------------------------------------------
    def update_contactor(self, inlet_voltage_V: float, current_A: float, now_s: float = 0.0) -> None:
        ready = self.plugged_in and self.s2_closed and not self.cp_shorted
        if self.contactor_closed:
            if ready and (self.energy_transfer_wanted or abs(current_A) >= standards.CONTACTOR_OPEN_MAX_CURRENT_A):
                self._unready_since_s = None
                return
            if abs(current_A) < standards.CONTACTOR_OPEN_MAX_CURRENT_A:
                self.contactor_closed = False  # opens once the current is gone (DG L1388)
            elif not ready:
                # The car no longer wants energy but current still flows: it opens under load (its level-3
                # protection, DG L4123) only if the EVSE has not brought the current down in time.
                if self._unready_since_s is None:
                    self._unready_since_s = now_s
                elif now_s - self._unready_since_s >= self.OPEN_UNDER_LOAD_AFTER_S:
                    self.contactor_closed = False
            if not self.contactor_closed:
                self._unready_since_s = None
            return
        if ready and self.energy_transfer_wanted and inlet_voltage_V > 0.0 and \
                abs(inlet_voltage_V - self.battery.ocv_V()) < standards.CONTACTOR_CLOSE_MAX_DELTA_V:
            self.contactor_closed = True

    # --- BMS --------------------------------------------------------------------------------------
    def precharge_target_V(self) -> float:
        """What the car asks the EVSE to precharge to: its pack voltage."""
        return self.battery.ocv_V()

    def target_voltage_V(self) -> float:
        if self.hlc_target_voltage_V is not None:
            return self.hlc_target_voltage_V
        return self.preset.max_voltage_V

    def target_current_A(self) -> float:
        if self.hlc_target_current_A is not None:
            return self.hlc_target_current_A
        battery = self.battery
        if 100.0 * battery.soc_fraction >= self.target_soc_percent:  # charging_complete()
            return 0.0
        if self.spec_profile is not None:
            return self.spec_profile.current_A(self.charging_time_s)
        preset = self.preset
        # max(0.0, min(cap, max current, max power / max(1.0, OCV), taper)) spelled as comparisons that pick the
        # same float (the first on a tie, as the builtins do): the car's request, every 50 ms
        pack_V = battery.ocv_V()
        if not pack_V > 1.0:
            pack_V = 1.0
        current_A = preset.max_current_A if self.request_cap_A is None else self.request_cap_A
        soc = battery.soc_fraction
        x0, x1, y0, y1 = self._taper_segment
        if x0 < soc <= x1 and type(preset) is BatteryPreset:
            # preset.taper_current_A(soc) in the taper curve's segment (x0, x1] that bisect_left found for the
            # last request (and finds for this one): the same sums
            taper_A = preset.max_current_A * (y0 + (y1 - y0) * (soc - x0) / (x1 - x0))
        else:
            taper_A = preset.taper_current_A(soc)
            index = bisect_left(_TAPER_XS, soc)
            if 0 < index < len(TAPER_CURVE):
                (x0, y0), (x1, y1) = TAPER_CURVE[index - 1], TAPER_CURVE[index]
                self._taper_segment = (x0, x1, y0, y1)
        for limit_A in (preset.max_current_A, preset.max_power_W / pack_V, taper_A):
            if limit_A < current_A:
                current_A = limit_A
        return current_A if current_A > 0.0 else 0.0

    def charging_complete(self) -> bool:
        return self.battery.soc_percent >= self.target_soc_percent
