// The live numbers: status, meter and vehicle figures, the banner (fault, abort, completion) and the vehicle's
// BMS / SLAC / ISO 15118 panels, each rendered from one stream snapshot.

import { escapeHtml, fmt, fmtDuration, fmtEnergy, fmtOhm } from "./format.js";
import { $, setClass, setText, state } from "./page.js";

export function renderStatus(snapshot) {
  const s = snapshot.status, m = snapshot.meter, bms = snapshot.bms || {}, sim = snapshot.sim;
  setText("adapter", s.adapter || "—");
  const speed = s.speed === null ? "manual" : `${s.speed}×`;
  setText("speed", speed);
  setText("speed-readonly", speed);
  setText("clock", fmtDuration(s.clock_s));
  setText("phase", s.phase);
  setClass("phase", `phase-badge phase-${s.phase}`);
  setText("stage", s.stage);
  setText("session-id", s.session_id || "—");
  setText("session-time", s.session_active ? fmtDuration(s.time_s) : "—");
  setText("cp-state", s.cp_sub_state || s.cp_state);
  setText("pwm-duty", fmt(s.pwm_duty, 0, "%"));
  setText("cp-voltage", fmt(s.cp_voltage, 1, "V"));
  setText("contactor", s.contactor_closed ? "CLOSED" : "OPEN");
  setClass("contactor", "contactor " + (s.contactor_closed ? "closed" : "open"));
  setText("ev-contactor", sim ? (sim.car.contactor_closed ? "closed" : "open") : "—");
  setText("voltage", fmt(s.voltage, 1));
  setText("current", fmt(s.current, 1));
  setText("power", fmt(s.power_W / 1000, 1));
  const energyWh = s.energy_Wh;
  setText("energy", energyWh >= 1000 ? (energyWh / 1000).toFixed(2) : energyWh.toFixed(1));
  setText("energy-unit", energyWh >= 1000 ? "kWh" : "Wh");
  setText("avg-voltage", fmt(m.avg_voltage, 0, "V"));
  setText("avg-current", fmt(m.avg_current, 1, "A"));
  setText("supply-voltage", fmt(s.supply_voltage, 0, "V"));
  setText("commanded-current", fmt(s.commanded_current, 1, "A"));
  setText("limit-in-force", limitInForce(s.limits_in_force));
  setText("ev-target-voltage", fmt(bms.target_voltage, 0, "V"));
  setText("ev-target-current", fmt(bms.target_current, 1, "A"));
  const limits = (bms.session_limits && bms.session_limits.dc) || {};
  setText("ev-max-power", limits.max_charge_power ? fmt(limits.max_charge_power / 1000, 0, "kW") : "—");
  const soc = sim && sim.car.plugged_in ? sim.car.soc : bms.present_soc;
  const targetSoc = bms.soc_limits ? bms.soc_limits.target_soc : null;
  setText("soc", soc === null || soc === undefined ? "—" : soc.toFixed(1));
  $("soc-fill").style.width = `${Math.max(0, Math.min(100, soc || 0))}%`;
  $("soc-target").style.display = targetSoc === null || targetSoc === undefined ? "none" : "block";
  $("soc-target").style.left = `${targetSoc || 0}%`;
  setText("target-soc", fmt(targetSoc, 0, "%"));
  setText("evcc-id", bms.evcc_id || "no EV data");
  setText("isolation", s.isolation_ohm === null ? "not measuring" : fmtOhm(s.isolation_ohm));
  setText("temperature", fmt(s.connector_temperature_C, 1, "°C"));
  setText("active-fault", s.active_fault || "none");
  setClass("active-fault", s.active_fault ? "fault-on" : "");
  setText("error", s.error || "—");
}

// The charger's current and power limits in force and who sets them (its rating, the CSMS's profiles: "ocpp").
function limitInForce(limits) {
  if (!limits) return "—";
  const sources = limits.current_source === limits.power_source ? limits.current_source
    : `${limits.current_source} / ${limits.power_source}`;
  return `${fmt(limits.current_A, 0, "A")} · ${fmt(limits.power_W / 1000, 0, "kW")} (${sources})` +
    (limits.available ? "" : " · unavailable");
}

function faultCause(snapshot, faultName) {
  const entries = snapshot.faults || [];
  const entry = [...entries].reverse().find((f) => f.type === faultName);
  const known = state.faultCatalogue.get(faultName);
  const parts = [];
  if (entry) parts.push(`${entry.severity} shutdown`);
  if (known) parts.push(known.description);
  if (entry && entry.message) parts.push(entry.message);
  if (entry) parts.push(`raised by ${entry.source}`);
  return parts.join(" · ");
}

export function renderBanner(snapshot) {
  const s = snapshot.status, summary = s.last_session_summary;
  const banner = $("banner");
  let kind = null, html = "";
  const fault = s.active_fault || (s.phase === "ABORTED" ? s.error : null);
  if (fault) {
    kind = "bad";
    html = `<b>${s.session_active ? "FAULT" : escapeHtml(s.phase)}</b> — <b>${escapeHtml(fault)}</b>` +
      `<span class="cause">: ${escapeHtml(faultCause(snapshot, fault))}</span>`;
  } else if (s.phase === "ABORTED") {
    kind = "warn";
    const reason = summary && summary.end_reason ? summary.end_reason.replaceAll("_", " ") : "stopped";
    html = `<b>ABORTED</b> — ${escapeHtml(reason)}` + (summary ? ` after ${fmtEnergy(summary.energy_Wh)} in ` +
      `${fmtDuration(summary.duration_s)}` : "");
  } else if (s.phase === "COMPLETE" && summary) {
    kind = "good";
    html = `<b>COMPLETE</b> — ${fmtEnergy(summary.energy_Wh)} delivered in ${fmtDuration(summary.duration_s)} ` +
      `(avg ${fmt(summary.avg_voltage, 0, "V")}, ${fmt(summary.avg_current, 1, "A")}; ` +
      `${escapeHtml(summary.end_reason.replaceAll("_", " "))})`;
  }
  if (!kind) { banner.classList.add("hidden"); return; }
  if (banner.innerHTML !== html) banner.innerHTML = html;
  setClass(banner, `banner ${kind}`);
}

// --- vehicle panels -----------------------------------------------------------------------------------
function flatten(object, prefix = "", rows = []) {
  for (const [key, value] of Object.entries(object || {})) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (value && typeof value === "object" && !Array.isArray(value)) flatten(value, name, rows);
    else rows.push([name, value]);
  }
  return rows;
}

function showValue(value) {
  if (typeof value === "number") return String(Math.round(value * 1000) / 1000);
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

/** A vehicle view as tables: top-level fields first, then one table per nested group; unreported fields counted. */
export function renderPanel(id, object) {
  const groups = [["", []]];
  const byName = new Map([["", groups[0][1]]]);
  for (const [name, value] of flatten(object)) {
    const parts = name.split(".");
    const group = parts.length > 1 ? parts.slice(0, -1).join(" · ") : "";
    if (!byName.has(group)) { const rows = []; byName.set(group, rows); groups.push([group, rows]); }
    byName.get(group).push([parts[parts.length - 1], value]);
  }
  let missing = 0, html = "";
  for (const [group, rows] of groups) {
    const known = rows.filter(([, v]) => v !== null && v !== undefined);
    missing += rows.length - known.length;
    if (!known.length) continue;
    html += `<table class="kv">` + (group ? `<thead><tr><th colspan="2">${escapeHtml(group.replaceAll("_", " "))}` +
      `</th></tr></thead>` : "") + "<tbody>" + known.map(([k, v]) => `<tr><td>${escapeHtml(k.replaceAll("_", " "))}` +
      `</td><td>${escapeHtml(showValue(v))}</td></tr>`).join("") + "</tbody></table>";
  }
  if (missing) html += `<table class="kv"><tr class="note"><td colspan="2">${missing} field${missing > 1 ? "s" : ""} ` +
    "not reported</td></tr></table>";
  const panel = $(id);
  if (panel.dataset.html !== html) { panel.innerHTML = html; panel.dataset.html = html; }
}
