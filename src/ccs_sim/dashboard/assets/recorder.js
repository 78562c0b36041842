// Records the streamed snapshots of each session client-side, for the charts and the CSV download.
// Memory is bounded: at most MAX_SESSIONS sessions, each at most MAX_SAMPLES samples; when a session
// outgrows that, its older half is thinned by two (recent data keeps full resolution), so a 30-minute
// session at 5 samples/s (9000 samples) is kept whole and a longer one degrades gracefully.

export const MAX_SESSIONS = 8;
export const MAX_SAMPLES = 15000;

/** The columns of a sample, in CSV order, with their header names. */
export const COLUMNS = [
  ["t_s", "time_s"], ["phase", "phase"], ["stage", "stage"], ["cp_state", "cp_state"],
  ["pwm_duty", "pwm_duty_percent"], ["contactor_closed", "contactor_closed"], ["voltage_V", "voltage_V"],
  ["current_A", "current_A"], ["power_kW", "power_kW"], ["energy_Wh", "energy_Wh"], ["supply_V", "supply_voltage_V"],
  ["commanded_A", "commanded_current_A"], ["ev_target_V", "ev_target_voltage_V"],
  ["ev_target_A", "ev_target_current_A"], ["ev_max_power_kW", "ev_max_power_kW"], ["soc_pct", "soc_percent"],
  ["target_soc_pct", "target_soc_percent"], ["isolation_ohm", "isolation_ohm"],
  ["connector_temperature_C", "connector_temperature_C"],
];

function num(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** One chart/CSV row from a stream snapshot, ``t_s`` seconds into its session. */
export function sampleOf(snapshot, t_s) {
  const s = snapshot.status, bms = snapshot.bms || {};
  const limits = (bms.session_limits && bms.session_limits.dc) || {};
  const car = snapshot.sim && snapshot.sim.car;
  const maxPower = num(limits.max_charge_power);
  return {
    t_s,
    phase: s.phase, stage: s.stage, cp_state: s.cp_sub_state || s.cp_state, pwm_duty: num(s.pwm_duty),
    contactor_closed: s.contactor_closed, voltage_V: num(s.voltage), current_A: num(s.current),
    power_kW: num(s.power_W) === null ? null : s.power_W / 1000, energy_Wh: num(s.energy_Wh),
    supply_V: num(s.supply_voltage), commanded_A: num(s.commanded_current),
    ev_target_V: num(bms.target_voltage), ev_target_A: num(bms.target_current),
    ev_max_power_kW: maxPower === null ? null : maxPower / 1000,
    soc_pct: car && num(car.soc) !== null ? car.soc : num(bms.present_soc),
    target_soc_pct: num(bms.soc_limits && bms.soc_limits.target_soc),
    isolation_ohm: num(s.isolation_ohm), connector_temperature_C: num(s.connector_temperature_C),
  };
}

export class SessionRecorder {
  constructor({ maxSessions = MAX_SESSIONS, maxSamples = MAX_SAMPLES } = {}) {
    this.maxSessions = maxSessions;
    this.maxSamples = maxSamples;
    this.sessions = new Map(); // session_id -> {id, startClockS, samples, ended, summary, thinned}
    this.liveId = null;
  }

  /** Feed one snapshot; returns the session it was recorded into, or null. */
  record(snapshot) {
    const s = snapshot.status;
    const id = s.session_id;
    const running = id && (s.session_active || !["idle", "ended"].includes(s.stage));
    let session = id ? this.sessions.get(id) : undefined;
    if (session && s.last_session_summary && s.last_session_summary.session_id === id) {
      session.summary = s.last_session_summary;
    }
    if (!running) {
      if (session && !session.ended) session.ended = true;
      return null;
    }
    if (!session) {
      const startClockS = s.session_active ? s.clock_s - s.time_s : s.clock_s;
      session = { id, startClockS, samples: [], ended: false, summary: null, thinned: 0,
        startedAt: snapshot.session ? snapshot.session.started_at : null };
      this.sessions.set(id, session);
      this.evict();
    }
    this.liveId = id;
    const t = Math.max(0, s.clock_s - session.startClockS);
    const samples = session.samples;
    if (samples.length && t <= samples[samples.length - 1].t_s) return session; // no time passed
    samples.push(sampleOf(snapshot, t));
    if (samples.length > this.maxSamples) this.thin(session);
    return session;
  }

  thin(session) {
    const samples = session.samples;
    const half = Math.floor(samples.length / 2);
    const kept = [];
    for (let i = 0; i < half; i += 2) kept.push(samples[i]);
    session.samples = kept.concat(samples.slice(half));
    session.thinned += 1;
  }

  evict() {
    while (this.sessions.size > this.maxSessions) {
      const oldest = this.sessions.keys().next().value;
      this.sessions.delete(oldest);
    }
  }

  get(id) {
    return this.sessions.get(id) || null;
  }

  live() {
    return this.liveId ? this.sessions.get(this.liveId) || null : null;
  }

  csv(id) {
    const session = this.sessions.get(id);
    if (!session) return "";
    const header = COLUMNS.map(([, name]) => name).join(",");
    const rows = session.samples.map((sample) => COLUMNS.map(([key]) => {
      const v = sample[key];
      if (v === null || v === undefined) return "";
      if (typeof v === "number") return String(Math.round(v * 1000) / 1000);
      return String(v);
    }).join(","));
    return [header, ...rows].join("\n") + "\n";
  }
}
