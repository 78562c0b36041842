// Calls to the Live Controller API. A refusal comes back either as an HTTP error (422 for invalid input,
// 401/403 when a token is required) or as HTTP 200 with {"status": "error", "message"}; both become
// {ok: false, message} so the page can show the server's reason verbatim.

const TOKEN_KEY = "ccs-sim.api-token";

export function apiToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setApiToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function messageOf(body, response) {
  if (body && typeof body.message === "string") return body.message;
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) return body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  return `HTTP ${response.status} ${response.statusText}`;
}

export async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  return { ok: response.ok, status: response.status, body };
}

export async function postJSON(path, payload) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  const token = apiToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method: "POST", headers, body: payload === undefined ? undefined :
      JSON.stringify(payload) });
  } catch (error) {
    return { ok: false, status: 0, body: null, message: `no answer from the controller (${error.message})` };
  }
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  const refused = !response.ok || (body && body.status === "error");
  return { ok: !refused, status: response.status, body, message: refused ? messageOf(body, response) : "",
    authRequired: response.status === 401 || response.status === 403 };
}
