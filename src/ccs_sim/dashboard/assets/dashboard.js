// The live dashboard: subscribes to GET /stream (Server-Sent Events), renders the numbers, the charts,
// the vehicle panels and the session history, and sends the controls' commands to the API.

import { getJSON, postJSON, setApiToken, apiToken } from "./api.js";
import { TimeChart } from "./chart.js";
import { SessionRecorder } from "./recorder.js";
import { escapeHtml, fmt, fmtDuration, fmtEnergy, fmtOhm, fmtTime } from "./format.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const STREAM_RATE_HZ = Number(params.get("rate")) || 5;

const state = {
  snapshot: null,
  faultCatalogue: new Map(),
  asked: {},              // control name -> the value last asked for
  viewId: null,           // session shown in the charts (null: follow the live one)
  windowS: null,
  historyEndpoint: null,  // true / false once known
  lastEndedId: null,
};
const recorder = new SessionRecorder();

// --- small DOM helpers ----------------------------------------------------------------------------
function setText(el, text) {
  if (typeof el === "string") el = $(el);
  if (el && el.textContent !== text) el.textContent = text;
}
function setClass(el, className) {
  if (typeof el === "string") el = $(el);
  if (el && el.className !== className) el.className = className;
}

// --- charts -----------------------------------------------------------------------------------------
const EV = "#ffb020", GREY = "#7d8797";
const charts = {
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

function shownSession() {
  return state.viewId ? recorder.get(state.viewId) : recorder.live();
}

function refreshCharts() {
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
$("follow-live").addEventListener("click", () => { state.viewId = null; refreshCharts(); renderHistory(); });
$("chart-csv").addEventListener("click", () => { const s = shownSession(); if (s) downloadCsv(s.id); });

function downloadCsv(id) {
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

// --- live numbers -----------------------------------------------------------------------------------
function renderStatus(snapshot) {
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

function renderBanner(snapshot) {
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
function renderPanel(id, object) {
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

// --- controls: asked vs in force --------------------------------------------------------------------
function renderInForce(snapshot) {
  const s = snapshot.status, sim = snapshot.sim, session = snapshot.session;
  const pair = (askedId, inForceId, asked, inForce) => {
    setText(askedId, asked === undefined ? "—" : String(asked));
    setText(inForceId, inForce);
    $(askedId).classList.toggle("mismatch", asked !== undefined && String(asked) !== inForce);
  };
  pair("asked-contactor", "inforce-contactor", state.asked.contactor, s.contactor_closed ? "closed" : "open");
  pair("asked-pwm", "inforce-pwm", state.asked.pwm === undefined ? undefined : `${state.asked.pwm} %`,
    s.pwm_duty === null ? "—" : `${s.pwm_duty} %`);
  pair("asked-cp", "inforce-cp", state.asked.cp, s.cp_state);
  setText("asked-fault", state.asked.fault || "—");
  setText("inforce-fault", s.active_fault || "none");
  const sessionParams = session ? session.params : null;
  for (const em of document.querySelectorAll("#form-start .inforce")) {
    const value = sessionParams ? sessionParams[em.dataset.inforce] : null;
    const shown = value === null || value === undefined ? "default" : value;
    const text = sessionParams ? `${s.session_active ? "in force" : "last"} ${shown}` : "";
    setText(em, text);
  }
  if (sim) {
    setText("inforce-preset", `in force ${sim.car.preset}`);
    setText("inforce-start-soc", `in force ${sim.car.start_soc ?? "default"}`);
    setText("inforce-target-soc", `in force ${sim.car.target_soc ?? "default"}`);
    setText("inforce-isolation", `in force ${fmtOhm(sim.plant.isolation_resistance_ohm)}`);
    setText("inforce-ambient", `in force ${fmt(sim.plant.ambient_temperature_C, 1, "°C")}`);
    pair("asked-estop", "inforce-estop", state.asked.estop, sim.plant.estop_pressed ? "pressed" : "released");
  }
  $("sim-controls").classList.toggle("hidden", !sim);
}

function showResult(resultId, command, outcome, okText) {
  const el = $(resultId);
  if (outcome.ok) {
    el.textContent = `✓ ${okText || "done"}`;
    el.className = "result ok";
  } else {
    el.textContent = `✗ Refused: ${outcome.message}`;
    el.className = "result refused";
    if (outcome.authRequired) $("token-box").classList.remove("hidden");
  }
  const item = document.createElement("li");
  const when = new Date().toLocaleTimeString();
  item.innerHTML = `<span class="when">${when}</span><span>${escapeHtml(command)}</span>` +
    `<span class="${outcome.ok ? "ok" : "refused"}">${outcome.ok ? "ok" : "refused: " + escapeHtml(outcome.message)}</span>`;
  const log = $("command-log");
  log.prepend(item);
  while (log.children.length > 50) log.lastChild.remove();
}

function numberOrNull(text) {
  if (text === "" || text === null || text === undefined) return null;
  const n = Number(text);
  return Number.isNaN(n) ? text : n; // a non-number goes to the server as typed, which explains the refusal
}

function formValues(form) {
  const values = {};
  for (const [key, raw] of new FormData(form).entries()) {
    const element = form.elements[key];
    const value = element.type === "number" ? numberOrNull(raw) : (raw === "" ? null : raw);
    if (value !== null) values[key] = value;
  }
  return values;
}

$("form-start").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = formValues(event.target);
  const outcome = await postJSON("/start_session", body);
  showResult("result-session", `start_session ${JSON.stringify(body)}`, outcome,
    outcome.ok ? `started session ${outcome.body.session_id}` : "");
  if (outcome.ok) { state.viewId = null; refreshCharts(); renderHistory(); }
});
$("btn-stop").addEventListener("click", async () => {
  const outcome = await postJSON("/stop_session");
  showResult("result-session", "stop_session", outcome, "stopping: ramping down");
});
for (const button of document.querySelectorAll("[data-contactor]")) {
  button.addEventListener("click", async () => {
    const closed = button.dataset.contactor === "true";
    state.asked.contactor = closed ? "closed" : "open";
    const outcome = await postJSON("/control/contactor", { closed });
    showResult("result-contactor", `contactor ${state.asked.contactor}`, outcome,
      `contactor ${outcome.body && outcome.body.contactor_closed ? "closed" : "open"}`);
  });
}
$("form-pwm").addEventListener("submit", async (event) => {
  event.preventDefault();
  const duty = numberOrNull($("input-pwm").value);
  state.asked.pwm = duty;
  const outcome = await postJSON("/control/pwm", { duty });
  showResult("result-pwm", `pwm ${duty} %`, outcome, `duty ${duty} %`);
});
for (const button of document.querySelectorAll("[data-cp]")) {
  button.addEventListener("click", async () => {
    state.asked.cp = button.dataset.cp;
    const outcome = await postJSON("/control/cp_state", { state: button.dataset.cp });
    showResult("result-cp", `cp_state ${button.dataset.cp}`, outcome, `CP state ${button.dataset.cp} simulated`);
  });
}
$("fault-type").addEventListener("change", describeFault);
function describeFault() {
  const fault = state.faultCatalogue.get($("fault-type").value);
  setText("fault-description", fault ? `${fault.severity}: ${fault.description}` : "");
}
$("form-fault").addEventListener("submit", async (event) => {
  event.preventDefault();
  const type = $("fault-type").value;
  state.asked.fault = type;
  const outcome = await postJSON("/fault", { type });
  showResult("result-fault", `fault ${type}`, outcome,
    outcome.ok ? `${type} injected (${outcome.body.severity})` : "");
});
$("form-car").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = formValues(event.target);
  const outcome = await postJSON("/sim/car", body);
  showResult("result-car", `sim/car ${JSON.stringify(body)}`, outcome, "applies from the next session");
});
$("form-plant").addEventListener("submit", async (event) => {
  event.preventDefault();
  const values = formValues(event.target);
  const body = {};
  if (values.isolation_resistance_kohm !== undefined) {
    body.isolation_resistance_ohm = typeof values.isolation_resistance_kohm === "number" ?
      values.isolation_resistance_kohm * 1000 : values.isolation_resistance_kohm;
  }
  if (values.ambient_temperature_C !== undefined) body.ambient_temperature_C = values.ambient_temperature_C;
  const outcome = await postJSON("/sim/plant", body);
  showResult("result-plant", `sim/plant ${JSON.stringify(body)}`, outcome, "applied");
});
$("form-speed").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = formValues(event.target);
  const outcome = await postJSON("/sim/speed", body);
  showResult("result-speed", `sim/speed ${JSON.stringify(body)}`, outcome, "applied");
});
for (const button of document.querySelectorAll("[data-estop]")) {
  button.addEventListener("click", async () => {
    const pressed = button.dataset.estop === "true";
    state.asked.estop = pressed ? "pressed" : "released";
    const outcome = await postJSON("/sim/plant", { estop_pressed: pressed });
    showResult("result-plant", `e-stop ${state.asked.estop}`, outcome, `e-stop ${state.asked.estop}`);
  });
}
$("api-token").value = apiToken();
$("api-token").addEventListener("change", (event) => setApiToken(event.target.value.trim()));

async function loadFaults() {
  const answer = await getJSON("/faults");
  const select = $("fault-type");
  if (!answer.ok || !answer.body) return;
  for (const fault of answer.body.faults) {
    state.faultCatalogue.set(fault.type, fault);
    const option = document.createElement("option");
    option.value = fault.type;
    option.textContent = `${fault.type} (${fault.severity})`;
    select.append(option);
  }
  describeFault();
}

// --- session history ------------------------------------------------------------------------------------
async function historyEndpointExists() {
  if (state.historyEndpoint !== null) return state.historyEndpoint;
  // Ask the OpenAPI schema first, so a controller without records does not log a 404 in the console.
  const schema = await getJSON("/openapi.json");
  state.historyEndpoint = !schema.ok || !schema.body || !schema.body.paths || "/sessions" in schema.body.paths;
  return state.historyEndpoint;
}

const HISTORY_PAGE = 10;
let serverSessions = null;
let historyPage = { offset: 0, total: 0, nextOffset: null };
async function loadHistory() {
  if (await historyEndpointExists()) {
    const answer = await getJSON(`/sessions?limit=${HISTORY_PAGE}&offset=${historyPage.offset}`);
    if (answer.ok && answer.body && Array.isArray(answer.body.sessions)) {
      serverSessions = answer.body.sessions;
      historyPage.total = answer.body.total ?? serverSessions.length;
      historyPage.nextOffset = answer.body.next_offset ?? null;
    } else {
      serverSessions = null;
      state.historyEndpoint = false; // 404 (no records router) or 503 (records disabled): this run only
    }
  }
  renderHistory();
}
$("history-prev").addEventListener("click", () => {
  historyPage.offset = Math.max(0, historyPage.offset - HISTORY_PAGE);
  loadHistory();
});
$("history-next").addEventListener("click", () => {
  if (historyPage.nextOffset !== null) { historyPage.offset = historyPage.nextOffset; loadHistory(); }
});

function historyRows() {
  const rows = new Map();
  if (serverSessions) for (const record of serverSessions) rows.set(record.session_id, record);
  if (!serverSessions || historyPage.offset === 0) {
    // without durable records, or on the newest page: what this page knows too
    const snapshotSummary = state.snapshot && state.snapshot.status.last_session_summary;
    if (snapshotSummary && !rows.has(snapshotSummary.session_id)) rows.set(snapshotSummary.session_id, snapshotSummary);
    for (const session of recorder.sessions.values()) {
      const known = rows.get(session.id);
      if (!known) rows.set(session.id, session.summary || { session_id: session.id, started_at: session.startedAt,
        status: session.ended ? "ended" : "running" });
      else if (known.status === "running" && session.ended && session.summary) rows.set(session.id, session.summary);
    }
  }
  const live = state.snapshot && state.snapshot.status;
  if (live && live.session_active && rows.has(live.session_id)) {
    // the durable record of a running session is a checkpoint; show the live counts instead
    const meter = state.snapshot.meter;
    rows.set(live.session_id, { ...rows.get(live.session_id), status: "running", energy_Wh: live.energy_Wh,
      avg_voltage: meter.avg_voltage, avg_current: meter.avg_current, duration_s: live.time_s });
  }
  return [...rows.values()].sort((a, b) => String(b.started_at || "").localeCompare(String(a.started_at || "")));
}

function renderHistory() {
  setText("history-source", serverSessions ? `durable records · ${historyPage.total} session` +
    `${historyPage.total === 1 ? "" : "s"}` : "this run (durable records not available)");
  $("history-export").classList.toggle("hidden", !serverSessions);
  $("history-prev").disabled = !serverSessions || historyPage.offset === 0;
  $("history-next").disabled = !serverSessions || historyPage.nextOffset === null;
  const body = $("history").tBodies[0];
  const shown = shownSession();
  const html = historyRows().map((record) => {
    const recorded = recorder.get(record.session_id);
    const running = record.status === "running" && !(recorded && recorded.ended);
    const phase = running ? "running" : record.ended_phase || record.status || "—";
    const result = record.error ? `${phase} · ${record.error}` : phase;
    const hasSamples = recorded && recorded.samples.length;
    const id = escapeHtml(record.session_id);
    return `<tr data-id="${id}" class="${shown && shown.id === record.session_id ? "selected" : ""}">` +
      `<td>${escapeHtml(fmtTime(record.started_at))}</td><td><code>${id}</code></td>` +
      `<td class="result-${escapeHtml(running ? "running" : record.ended_phase || "")}">${escapeHtml(result)}</td>` +
      `<td>${escapeHtml((record.end_reason || "").replaceAll("_", " "))}</td>` +
      `<td>${record.energy_Wh === undefined ? "—" : fmtEnergy(record.energy_Wh)}</td>` +
      `<td>${fmt(record.avg_voltage, 0)}</td><td>${fmt(record.avg_current, 1)}</td>` +
      `<td>${fmtDuration(record.duration_s)}</td>` +
      `<td>${hasSamples ? `<button data-chart="${id}">Chart</button> <button data-csv="${id}">CSV</button>` : ""}</td></tr>`;
  }).join("");
  if (body.dataset.html !== html) { body.innerHTML = html; body.dataset.html = html; }
}

$("history").addEventListener("click", (event) => {
  const chartButton = event.target.closest("[data-chart]");
  const csvButton = event.target.closest("[data-csv]");
  if (chartButton) {
    const id = chartButton.dataset.chart;
    const s = state.snapshot && state.snapshot.status;
    state.viewId = s && s.session_id === id && s.session_active ? null : id;
    refreshCharts();
    renderHistory();
  } else if (csvButton) {
    downloadCsv(csvButton.dataset.csv);
  }
});
$("history-refresh").addEventListener("click", loadHistory);

// --- the stream -----------------------------------------------------------------------------------------
function onSnapshot(snapshot) {
  const previous = state.snapshot;
  state.snapshot = snapshot;
  const recorded = recorder.record(snapshot);
  renderStatus(snapshot);
  renderBanner(snapshot);
  renderInForce(snapshot);
  renderPanel("panel-bms", snapshot.bms);
  renderPanel("panel-slac", snapshot.slac);
  renderPanel("panel-iso15118", snapshot.iso15118);
  if (recorded || !previous) refreshCharts();
  if (snapshot.status.session_active && snapshot.seq % Math.max(1, Math.round(STREAM_RATE_HZ)) === 0) renderHistory(); // live row, ~1/s
  const summary = snapshot.status.last_session_summary;
  const endedId = summary ? summary.session_id : null;
  const sessionChanged = !previous || previous.status.session_id !== snapshot.status.session_id;
  // The summary appears when the session ends; its record is final only once the wind-down is over (stage
  // "ended"), so the history is loaded again then.
  const recordFinal = snapshot.status.stage === "ended" && (!previous || previous.status.stage !== "ended");
  if (endedId !== state.lastEndedId) {
    state.lastEndedId = endedId;
    refreshCharts();
    loadHistory();
  } else if (sessionChanged || recordFinal) {
    loadHistory();
  }
}

function connect() {
  const source = new EventSource(`/stream?rate=${STREAM_RATE_HZ}`);
  const indicator = $("stream-state");
  source.addEventListener("open", () => {
    setText(indicator, `live · ${STREAM_RATE_HZ}/s`);
    setClass(indicator, "stream-state live");
  });
  source.addEventListener("snapshot", (event) => onSnapshot(JSON.parse(event.data)));
  source.addEventListener("error", () => {
    setText(indicator, "reconnecting…");
    setClass(indicator, "stream-state reconnecting");
  });
}

// for tests and the curious: the page's state in the console
window.dashboard = { state, recorder, charts };
setText("stream-rate", String(STREAM_RATE_HZ));
loadFaults();
loadHistory();
connect();
