"""One plug-in of the simulated EV, start to end, reported as JSON-ready dicts.

    CP B (plugged) → SLAC as the EV (evse_slac.ev_peer, with the EVSE modem's frames) → CP C (S2 closed)
    → ISO 15118 EVCC session (SDP … CurrentDemand … SessionStop) → CP B → CP A (unplugged)

Variants for tests: an EV that stays silent on SLAC (``silent_s``), one that stops after a number of charge
loops (``max_charge_loops``), and one whose cable is pulled during the charge loop (``pull_cable_after_loops``:
CP A at once, then the EVCC is dropped, as when the plug leaves the inlet).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from evse_ev.api_client import ApiClient, ApiError
from evse_ev.battery import EvBattery
from evse_ev.cp_wire import CpWire
from evse_ev.evcc import BatteryEVController, ObservingEXICodec, run_evcc_session
from evse_slac.ev_peer import EvSlacPeer

Report = Callable[[dict], None]
PROGRESS_INTERVAL_S = 1.0
STATE_SETTLE_S = 0.05  # let the charger's control loop (10 ms) see a CP change before the next step


@dataclass
class PluginOptions:
    slac: bool = True
    silent_s: float | None = None  # stay silent on SLAC this long, then unplug
    max_charge_loops: int | None = None  # the EV ends charging after this many charge-loop responses
    pull_cable_after_loops: int | None = None
    session_timeout_s: float = 600.0
    progress_interval_s: float = PROGRESS_INTERVAL_S


class ChargeLoopWatch:
    """Fed by the codec: the battery integrates, loops are counted, progress is reported."""

    def __init__(self, battery: EvBattery, controller: BatteryEVController, options: PluginOptions,
                 report: Report, t0: float) -> None:
        self.battery, self.controller, self.options, self.report, self.t0 = battery, controller, options, report, t0
        self.loops = 0
        self.first_loop_s: float | None = None
        self.pull_cable = asyncio.Event()
        self._last_progress_s = 0.0
        self.last_present: tuple[float, float] = (0.0, 0.0)

    def on_present(self, voltage_V: float, current_A: float, wall_s: float) -> None:
        if self.controller.stopped:
            return
        self.loops += 1
        if self.first_loop_s is None:
            self.first_loop_s = wall_s - self.t0
        self.battery.observe(voltage_V, current_A, wall_s)
        self.last_present = (voltage_V, current_A)
        if self.options.max_charge_loops is not None and self.loops >= self.options.max_charge_loops:
            self.controller.stopped = True
        if self.options.pull_cable_after_loops is not None and self.loops >= self.options.pull_cable_after_loops:
            self.pull_cable.set()
        if wall_s - self._last_progress_s >= self.options.progress_interval_s:
            self._last_progress_s = wall_s
            self.report({"event": "progress", "t_s": round(wall_s - self.t0, 3), "loops": self.loops,
                         "voltage_V": round(voltage_V, 1), "current_A": round(current_A, 1),
                         "power_kW": round(voltage_V * current_A / 1000.0, 2), **self.battery.as_json()})


class SimulatedEV:
    """The EV: a SLAC peer on ``iface`` (open for the tool's lifetime), its CP wire, battery and EVCC."""

    def __init__(self, iface: str, cp: CpWire, battery: EvBattery, evcc_config, codec, report: Report,
                 peer: EvSlacPeer, api: ApiClient | None = None, precharge_loops_limit: int | None = None) -> None:
        self.iface, self.cp, self.battery, self.report, self.peer, self.api = iface, cp, battery, report, peer, api
        self.config = evcc_config
        self.controller = BatteryEVController(evcc_config, battery, precharge_loops_limit)
        self.inner_codec = codec
        self.plugins = 0

    async def _set_cp(self, state: str) -> None:
        await self.cp.set_state(state)
        await asyncio.sleep(STATE_SETTLE_S)

    async def _evse_slac_view(self) -> dict | None:
        if self.api is None:
            return None
        try:
            return await self.api.aget("/vehicle/slac")
        except ApiError as exc:
            return {"error": str(exc)}

    async def plug_in(self, options: PluginOptions) -> dict:
        self.plugins += 1
        result: dict = {"event": "plugin", "index": self.plugins, "soc_start": round(self.battery.soc_percent, 3)}
        t0 = time.monotonic()
        await self._set_cp("B")
        try:
            if options.silent_s is not None:
                await asyncio.sleep(options.silent_s)
                result.update(outcome="silent", evse_slac=await self._evse_slac_view())
                return result
            if options.slac:
                slac = await self.peer.run_once()
                result["slac"] = slac.as_json() | {"nmk": None}  # the key is a secret: never printed
                result["plugin_to_matched_s"] = round(time.monotonic() - t0, 4)
                if not slac.matched:
                    result.update(outcome="slac_failed", evse_slac=await self._evse_slac_view())
                    return result
                result["evse_slac"] = await self._evse_slac_view()
                self.report({"event": "slac_matched", "index": self.plugins,
                             "plugin_to_matched_s": result["plugin_to_matched_s"]})
            await self._set_cp("C")
            await self._charge(options, result, t0)
            return result
        finally:
            if result.get("outcome") != "cable_pulled":
                await self._set_cp("B")
            await self._set_cp("A")
            result["soc_end"] = round(self.battery.soc_percent, 3)
            result["wall_s"] = round(time.monotonic() - t0, 3)

    async def _charge(self, options: PluginOptions, result: dict, t0: float) -> None:
        watch = ChargeLoopWatch(self.battery, self.controller, options, self.report, t0)
        codec = ObservingEXICodec(self.inner_codec, watch.on_present)
        delivered_before_Wh = self.battery.delivered_Wh
        session = asyncio.create_task(run_evcc_session(self.iface, self.config, self.controller, codec,
                                                       options.session_timeout_s), name="EVCC session")
        pulled = asyncio.create_task(watch.pull_cable.wait())
        try:
            done, _ = await asyncio.wait({session, pulled}, return_when=asyncio.FIRST_COMPLETED)
            if session in done:
                error = session.exception()
                result["outcome"] = "session_ok" if error is None and codec.session_stopped else "session_error"
                if error is not None:
                    result["error"] = repr(error)
                elif not codec.session_stopped:
                    result["error"] = "the EVCC ended without SessionStopRes (its log on stderr says why)"
            else:
                await self.cp.set_state("A")  # the plug leaves the inlet mid-charge
                result["cable_pulled_at_s"] = round(time.monotonic() - t0, 4)
                result["current_at_pull_A"] = round(watch.last_present[1], 1)
                result["outcome"] = "cable_pulled"
                session.cancel()
                await asyncio.gather(session, return_exceptions=True)
        finally:
            pulled.cancel()
            if not session.done():
                session.cancel()
                await asyncio.gather(session, return_exceptions=True)
        result.update(charge_loops=watch.loops, plugin_to_first_charge_loop_s=(
            round(watch.first_loop_s, 4) if watch.first_loop_s is not None else None),
            delivered_Wh=round(self.battery.delivered_Wh - delivered_before_Wh, 3))
