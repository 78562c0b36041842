// The session history: the durable records (GET /sessions, page by page) merged with what this page saw,
// the live row of a running session, and the buttons that chart a session or download its CSV.

import { getJSON } from "./api.js";
import { escapeHtml, fmt, fmtDuration, fmtEnergy, fmtTime } from "./format.js";
import { $, recorder, setText, state } from "./page.js";
import { downloadCsv, refreshCharts, shownSession } from "./session_charts.js";

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
export async function loadHistory() {
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

export function renderHistory() {
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
