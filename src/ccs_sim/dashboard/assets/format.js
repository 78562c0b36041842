// Number and time formatting shared by the dashboard's panels.

export function fmt(value, digits = 1, unit = "") {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  if (typeof value !== "number") return String(value) + (unit ? " " + unit : "");
  return value.toFixed(digits) + (unit ? " " + unit : "");
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = String(m).padStart(h ? 2 : 1, "0"), ss = String(r).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export function fmtOhm(ohm) {
  if (ohm === null || ohm === undefined) return "—";
  if (ohm >= 1e6) return (ohm / 1e6).toFixed(ohm >= 1e7 ? 0 : 1) + " MΩ";
  if (ohm >= 1e3) return (ohm / 1e3).toFixed(0) + " kΩ";
  return ohm.toFixed(0) + " Ω";
}

export function fmtEnergy(wh) {
  if (wh === null || wh === undefined) return "—";
  return wh >= 1000 ? (wh / 1000).toFixed(2) + " kWh" : wh.toFixed(1) + " Wh";
}

export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit" });
}

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
    "'": "&#39;" }[c]));
}
