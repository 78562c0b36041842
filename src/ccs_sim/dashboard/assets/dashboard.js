// The live dashboard: subscribes to GET /stream (Server-Sent Events) and hands each snapshot to the parts
// that render it: the live numbers (live_view.js), the charts (session_charts.js), the controls (controls.js)
// and the session history (history.js). The OCPP panel (ocpp_panel.js) asks GET /ocpp itself.

import { loadFaults, renderInForce } from "./controls.js";
import { loadHistory, renderHistory } from "./history.js";
import { renderBanner, renderPanel, renderStatus } from "./live_view.js";
import { startOcppPanel } from "./ocpp_panel.js";
import { $, recorder, setClass, setText, state, STREAM_RATE_HZ } from "./page.js";
import { charts, refreshCharts } from "./session_charts.js";

$("follow-live").addEventListener("click", () => { state.viewId = null; refreshCharts(); renderHistory(); });

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
startOcppPanel();
