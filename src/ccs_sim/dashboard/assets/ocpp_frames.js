// The OCPP panel's frame list: the last frames over the link, newest first (time, direction, type, action); a
// click (or Enter) on a row shows that frame's payload. Frames are the CSMS's input: every string goes into the
// page as text (textContent), never as HTML.

import { $ } from "./page.js";

const FRAMES_SHOWN = 10;
const DIRECTIONS = { sent: "→ to CSMS", received: "← from CSMS" };
let rows = [];              // [{ frame, key }] as shown, newest first
let selectedKey = null;
let shownSignature = "";

const keyOf = (frame) => `${frame.at}|${frame.direction}|${frame.type}|${frame.id}`;

/** Time of day with milliseconds, local time; the text itself when it is no date. */
export function clockTime(iso) {
  const moment = new Date(iso);
  if (!iso || Number.isNaN(moment.getTime())) return iso ? String(iso) : "—";
  return moment.toLocaleTimeString(undefined, { hour12: false }) + "." +
    String(moment.getMilliseconds()).padStart(3, "0");
}

function cell(text, className = "") {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function rowFor({ frame, key }) {
  const tr = document.createElement("tr");
  tr.tabIndex = 0;
  tr.append(cell(clockTime(frame.at)), cell(DIRECTIONS[frame.direction] || String(frame.direction), frame.direction),
    cell(String(frame.type), frame.type), cell(String(frame.action ?? "")));
  tr.classList.toggle("selected", key === selectedKey);
  return tr;
}

function showPayload(entry) {
  const pre = $("ocpp-payload");
  if (!entry || entry.key === selectedKey) {
    selectedKey = null;
    pre.classList.add("hidden");
    pre.textContent = "";
  } else {
    selectedKey = entry.key;
    const { frame } = entry;
    pre.textContent = `${frame.type} ${frame.action ?? ""} · ${DIRECTIONS[frame.direction] || frame.direction} · ` +
      `${clockTime(frame.at)} · id ${frame.id}\n` + JSON.stringify(frame.payload, null, 2);
    pre.classList.remove("hidden");
  }
  const body = $("ocpp-frames");
  rows.forEach((row, index) => body.children[index].classList.toggle("selected", row.key === selectedKey));
}

/** The newest frames of GET /ocpp's ``last_frames`` (oldest first there); the list is rebuilt only when it changed. */
export function renderFrames(frames) {
  rows = (frames || []).slice(-FRAMES_SHOWN).reverse().map((frame) => ({ frame, key: keyOf(frame) }));
  const signature = rows.map((row) => row.key).join("\n");
  if (signature === shownSignature) return;
  shownSignature = signature;
  $("ocpp-frames").replaceChildren(...rows.map(rowFor));
}

export function bindFrames() {
  const body = $("ocpp-frames");
  const pick = (event) => {
    const tr = event.target.closest("tr");
    const index = tr ? Array.prototype.indexOf.call(body.children, tr) : -1;
    if (index >= 0) showPayload(rows[index]);
  };
  body.addEventListener("click", pick);
  body.addEventListener("keydown", (event) => { if (event.key === "Enter") pick(event); });
}
