// What the dashboard's modules share: the page's state, the session recorder and small DOM helpers.

import { SessionRecorder } from "./recorder.js";

export const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
export const STREAM_RATE_HZ = Number(params.get("rate")) || 5;

export const state = {
  snapshot: null,
  faultCatalogue: new Map(),
  asked: {},              // control name -> the value last asked for
  viewId: null,           // session shown in the charts (null: follow the live one)
  windowS: null,
  historyEndpoint: null,  // true / false once known
  lastEndedId: null,
};
export const recorder = new SessionRecorder();

export function setText(el, text) {
  if (typeof el === "string") el = $(el);
  if (el && el.textContent !== text) el.textContent = text;
}
export function setClass(el, className) {
  if (typeof el === "string") el = $(el);
  if (el && el.className !== className) el.className = className;
}
