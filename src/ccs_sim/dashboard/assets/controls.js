// The controls: each form or button sends one command to the API and shows its answer (and a command log);
// what was asked is shown beside what is in force. Also the fault catalogue for the fault selector.

import { apiToken, getJSON, postJSON, setApiToken } from "./api.js";
import { escapeHtml, fmt, fmtOhm } from "./format.js";
import { renderHistory } from "./history.js";
import { $, setText, state } from "./page.js";
import { refreshCharts } from "./session_charts.js";

export function renderInForce(snapshot) {
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

export async function loadFaults() {
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
