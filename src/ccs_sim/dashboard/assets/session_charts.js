// The four time charts (voltage, current, power, SOC) of the session shown: the live one, or one picked in
// the history; the time window and the CSV download.

import { TimeChart } from "./chart.js";
import { $, recorder, setText, state } from "./page.js";

const EV = "#ffb020", GREY = "#7d8797";
export const charts = {
  voltage: new TimeChart($("chart-voltage"), { unit: "V", digits: 1, minSpan: 10, legend: $("legend-voltage"), series: [
    { key: "voltage_V", label: "EVSE output", color: "#4ea1ff", width: 2.2 },
    { key: "ev_target_V", label: "EV target", color: EV, dash: [6, 4], width: 1.6 },
    { key: "supply_V", label: "supply", color: GREY, width: 1.2 },
  ] }),
  current: new TimeChart($("chart-current"), { unit: "A", digits: 1, minSpan: 5, legend: $("legend-current"), series: [
    { key: "current_A", label: "EVSE output", color: "#34d399", width: 2.2, fill: true },
    { key: "ev_target_A", label: "EV target", color: EV, dash: [6, 4], width: 1.6 },
    { key: "commanded_A", label: "commanded", color: GREY, width: 1.2 },
  ] }),
  power: new TimeChart($("chart-power"), { unit: "kW", digits: 1, minSpan: 1, legend: $("legend-power"), series: [
    { key: "power_kW", label: "EVSE output", color: "#b388ff", width: 2.2, fill: true },
    { key: "ev_max_power_kW", label: "EV max", color: EV, dash: [6, 4], width: 1.6 },
  ] }),
  soc: new TimeChart($("chart-soc"), { unit: "%", digits: 1, minSpan: 10, yMax: 100, yCap: 100, legend: $("legend-soc"), series: [
    { key: "soc_pct", label: "SOC", color: "#2dd4bf", width: 2.2 },
    { key: "target_soc_pct", label: "EV target", color: EV, dash: [6, 4], width: 1.6 },
  ] }),
};

export function shownSession() {
  return state.viewId ? recorder.get(state.viewId) : recorder.live();
}

export function refreshCharts() {
  const session = shownSession();
  const samples = session ? session.samples : [];
  for (const chart of Object.values(charts)) chart.setSamples(samples);
  $("chart-csv").disabled = !session || !session.samples.length;
  $("follow-live").classList.toggle("hidden", !state.viewId);
  if (!session) {
    setText("chart-session", "— no session yet: start one on the right");
    return;
  }
  const s = state.snapshot && state.snapshot.status;
  const live = !session.ended && s && s.session_id === session.id;
  const result = session.summary ? ` · ${session.summary.ended_phase}` : "";
  setText("chart-session", `${session.id} · ${live ? "live" : "recorded"}${live ? "" : result} · ` +
    `${session.samples.length} samples`);
}

$("window-select").addEventListener("click", (event) => {
  const button = event.target.closest("button");
  if (!button) return;
  for (const other of $("window-select").querySelectorAll("button")) other.classList.toggle("active", other === button);
  state.windowS = button.dataset.window ? Number(button.dataset.window) : null;
  for (const chart of Object.values(charts)) chart.setWindow(state.windowS);
});
$("chart-csv").addEventListener("click", () => { const s = shownSession(); if (s) downloadCsv(s.id); });

export function downloadCsv(id) {
  const text = recorder.csv(id);
  if (!text) return;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
  link.download = `session-${id}.csv`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}
