// The OCPP panel: what the charger's OCPP client shows the operator (GET /ocpp): the central system and how the
// link stands, the transaction, the durable queue, the CSMS's composite limit and the last frames.
// Served hidden unless an OCPP client runs (data-ocpp="present"). GET /ocpp is asked every 2 s, and only while
// the panel is on screen and the page visible: the view (frames with their payloads) is too big for the 5/s
// stream, and nothing in it changes faster than the link's own calls. Everything from the CSMS is set as text.

import { getJSON } from "./api.js";
import { fmt, fmtEnergy } from "./format.js";
import { bindFrames, clockTime, renderFrames } from "./ocpp_frames.js";
import { $, setClass, setText, state } from "./page.js";

const POLL_MS = 2000;
// The security profiles of OCPP 2.0.1 Part 2 §A (Security) and the OCPP 1.6 Security Whitepaper.
const SECURITY_PROFILES = { 0: "0 · none (plain)", 1: "1 · Basic auth", 2: "2 · TLS + Basic auth",
  3: "3 · TLS + client certificate" };
let onScreen = false, timer = null, inFlight = false;

const active = () => onScreen && document.visibilityState === "visible";

// The panel's own record of its refresh (data-polling on/off, data-polls = requests started): what it does, readable.
function schedule(delayMs) {
  clearTimeout(timer);
  timer = null;
  $("ocpp-panel").dataset.polling = active() ? "on" : "off";
  if (active() && !inFlight) timer = setTimeout(poll, delayMs);
}

async function poll() {
  timer = null;
  inFlight = true;
  const panel = $("ocpp-panel");
  panel.dataset.polls = String(Number(panel.dataset.polls || 0) + 1);
  try {
    const answer = await getJSON("/ocpp");
    if (answer.ok && answer.body) render(answer.body);
    else showState(`GET /ocpp: HTTP ${answer.status}`, "bad");
  } catch (error) {
    showState(`no answer from the controller (${error.message})`, "bad");
  } finally {
    inFlight = false;
  }
  schedule(POLL_MS);
}

function showState(text, kind) {
  setText("ocpp-state", text);
  setClass("ocpp-state", `ocpp-state ${kind}`);
}

function nextAttempt(view) {
  if (view.next_reconnect_s === null || view.next_reconnect_s === undefined) return "soon";
  const failedAt = view.last_error ? Date.parse(view.last_error.at) : NaN;
  if (Number.isNaN(failedAt)) return `${view.next_reconnect_s.toFixed(1)} s after the failure`;
  return `at ${clockTime(new Date(failedAt + view.next_reconnect_s * 1000).toISOString())}`;
}

function renderLink(view) {
  const connection = {
    booted: ["connected · booted", "good"],
    connected: [`connected · booting (${view.boot_status || "BootNotification sent"})`, "warn"],
    connecting: ["connecting…", "warn"],
    disconnected: [`reconnecting · next attempt ${nextAttempt(view)}`, "bad"],
  }[view.connection] || [String(view.connection ?? "—"), ""];
  showState(...connection);
  setText("ocpp-url", String(view.url ?? "—"));
  setText("ocpp-version", `OCPP ${view.version}`);
  setText("ocpp-station-id", String(view.station_id ?? "—"));
  setText("ocpp-security", SECURITY_PROFILES[view.security_profile] ?? String(view.security_profile));
  const interval = view.heartbeat_interval_s ? ` · heartbeat every ${view.heartbeat_interval_s} s` : "";
  setText("ocpp-boot", `${view.boot_status || "not yet"}${interval}`);
  setText("ocpp-heartbeat", view.last_heartbeat_at ? clockTime(view.last_heartbeat_at) : "none yet");
  const error = view.last_error;
  setText("ocpp-error", error ? `${error.kind}: ${error.message} (${clockTime(error.at)})` : "none");
}

function renderTransaction(view) {
  const connector = view.connector_status;
  const parts = connector ? [connector.status, connector.charging_state,
    connector.error_code && connector.error_code !== "NoError" ? connector.error_code : null] : ["—"];
  if (view.operative === false) parts.push("inoperative");
  setText("ocpp-connector", parts.filter(Boolean).join(" · "));
  const tx = view.transaction;
  setText("ocpp-tx-id", !tx ? "none" : String(tx.csms_transaction_id ?? "awaiting the CSMS's id"));
  setText("ocpp-id-token", !tx ? "—" : String(tx.id_tag ?? "none"));
  setText("ocpp-tx-energy", !tx || tx.energy_Wh === null || tx.energy_Wh === undefined ? "—"
    : `${fmtEnergy(tx.energy_Wh)} (meter start ${fmt(tx.meter_start_Wh, 0, "Wh")})`);
  const cap = view.queue_max_messages === undefined || view.queue_max_messages === null ? ""
    : ` of max ${view.queue_max_messages}`;
  const delivered = view.queue_delivered === undefined ? "" : ` · ${view.queue_delivered} delivered`;
  setText("ocpp-queue-depth", `${view.queue_depth}${cap}${delivered}`);
  // the dropped counts, each only where the view has it (given up after the last attempt; past the queue's cap)
  const givenUp = "dropped" in view ? view.dropped : view.queue_dropped;
  const dropped = [givenUp === undefined ? null : `${givenUp} given up`,
    view.queue_dropped_full === undefined ? null : `${view.queue_dropped_full} past the cap`].filter(Boolean);
  $("ocpp-dropped-row").classList.toggle("hidden", !dropped.length);
  setText("ocpp-dropped", dropped.join(" · ") || "—");
}

function renderLimit(view) {
  const limit = view.composite_limit;
  const kw = (watts) => `${fmt(watts, 0, "W")} (${fmt(watts / 1000, 1, "kW")})`;
  setText("ocpp-limit-current", !limit ? "none (no charging profile)" : limit.current_A === null ? "no limit"
    : fmt(limit.current_A, 1, "A"));
  setText("ocpp-limit-power", !limit ? "—" : limit.power_W === null ? "no limit" : kw(limit.power_W));
  const ids = (limit && limit.profile_ids) || {};
  // the station's maximum profile by its name in the version (smart_charging.Purpose names it for both)
  const purpose = (name) => name !== "StationMax" ? name
    : view.version === "1.6" ? "ChargePointMaxProfile" : "ChargingStationMaxProfile";
  const profiles = ((limit && limit.profiles) || []).map((p) => `#${p.id} ${purpose(p.purpose)} ` +
    `(stack ${p.stack_level}, ${p.unit}${ids.current_A === p.id ? ", sets current" : ""}` +
    `${ids.power_W === p.id ? ", sets power" : ""})`);
  setText("ocpp-limit-profiles", profiles.length ? profiles.join("; ") : "none");
  const inForce = state.snapshot && state.snapshot.status.limits_in_force;
  setText("ocpp-limit-in-force", !inForce ? "—" : `${fmt(inForce.current_A, 1, "A")} (${inForce.current_source}) · ` +
    `${kw(inForce.power_W)} (${inForce.power_source})`);
}

function render(view) {
  if (!view.enabled) { $("ocpp-panel").classList.add("hidden"); onScreen = false; return; }
  renderLink(view);
  renderTransaction(view);
  renderLimit(view);
  renderFrames(view.last_frames);
}

/** Starts the panel's refresh when the page was served with an OCPP client; otherwise it asks nothing. */
export function startOcppPanel() {
  const panel = $("ocpp-panel");
  if (!panel || panel.dataset.ocpp !== "present") return;
  bindFrames();
  new IntersectionObserver((entries) => {
    onScreen = entries[entries.length - 1].isIntersecting;
    schedule(0);
  }).observe(panel);
  document.addEventListener("visibilitychange", () => schedule(0));
}
