// A small time-series line chart on <canvas>: several series over one time axis, per-pixel min/max
// decimation (so 30 minutes of 5 Hz samples draw as fast as 30 seconds), nice axis ticks, a crosshair
// read-out, HiDPI aware. No dependencies.

const FONT = "11px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const PAD = { left: 52, right: 12, top: 10, bottom: 22 };

function niceStep(span, targetTicks) {
  const raw = span / Math.max(1, targetTicks);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const fraction = raw / power;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
  return nice * power;
}

const TIME_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];

function timeStep(span, targetTicks) {
  const raw = span / Math.max(1, targetTicks);
  return TIME_STEPS_S.find((step) => step >= raw) || TIME_STEPS_S[TIME_STEPS_S.length - 1];
}

function timeLabel(seconds) {
  const s = Math.round(seconds);
  const m = Math.floor(s / 60), r = s % 60;
  return m ? `${m}:${String(r).padStart(2, "0")}` : `${r}s`;
}

/** Index of the first sample with t >= time (samples sorted by t). */
function lowerBound(samples, time) {
  let lo = 0, hi = samples.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (samples[mid].t_s < time) lo = mid + 1; else hi = mid;
  }
  return lo;
}

export class TimeChart {
  /**
   * @param canvas  the <canvas> to draw on (its CSS size decides the chart size)
   * @param options {unit, digits, minSpan, series: [{key, label, color, width?, dash?, fill?}], legend?: Element}
   */
  constructor(canvas, options) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.options = { digits: 1, minSpan: 1, ...options };
    this.samples = [];
    this.windowS = null;
    this.hoverX = null;
    this.pending = false;
    this.lastDrawMs = 0;
    this.legend = options.legend || null;
    this.legendValues = [];
    if (this.legend) this.buildLegend();
    new ResizeObserver(() => this.invalidate()).observe(canvas);
    canvas.addEventListener("mousemove", (event) => {
      const rect = canvas.getBoundingClientRect();
      this.hoverX = event.clientX - rect.left;
      this.invalidate();
    });
    canvas.addEventListener("mouseleave", () => { this.hoverX = null; this.invalidate(); });
  }

  buildLegend() {
    this.legend.textContent = "";
    for (const series of this.options.series) {
      const item = document.createElement("span");
      item.className = "legend-item";
      const swatch = document.createElement("i");
      swatch.className = "swatch" + (series.dash ? " dashed" : "");
      swatch.style.borderColor = series.color;
      const label = document.createElement("span");
      label.textContent = series.label + " ";
      const value = document.createElement("b");
      value.textContent = "—";
      item.append(swatch, label, value);
      this.legend.append(item);
      this.legendValues.push(value);
    }
  }

  setSamples(samples) {
    this.samples = samples;
    this.invalidate();
  }

  setWindow(seconds) {
    this.windowS = seconds;
    this.invalidate();
  }

  invalidate() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.draw(); });
  }

  visibleRange() {
    const samples = this.samples;
    const last = samples.length ? samples[samples.length - 1].t_s : 0;
    const xMax = Math.max(last, this.windowS || 10);
    const xMin = this.windowS ? Math.max(0, xMax - this.windowS) : 0;
    return { xMin, xMax: Math.max(xMax, xMin + 1), start: lowerBound(samples, xMin) };
  }

  draw() {
    const began = performance.now();
    const { canvas, ctx, options } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
    }
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const styles = getComputedStyle(canvas);
    const gridColor = styles.getPropertyValue("--chart-grid").trim() || "#2a3342";
    const textColor = styles.getPropertyValue("--chart-text").trim() || "#8b96a8";
    const plotW = width - PAD.left - PAD.right, plotH = height - PAD.top - PAD.bottom;
    const samples = this.samples;
    const { xMin, xMax, start } = this.visibleRange();

    // y range over the visible samples of every series
    let yLo = 0, yHi = -Infinity;
    for (let i = start; i < samples.length; i++) {
      for (const series of options.series) {
        const v = samples[i][series.key];
        if (v === null || v === undefined || !Number.isFinite(v)) continue;
        if (v > yHi) yHi = v;
        if (v < yLo) yLo = v;
      }
    }
    if (!Number.isFinite(yHi)) yHi = options.minSpan;
    if (options.yMax !== undefined) yHi = Math.max(yHi, options.yMax);
    yHi = Math.max(yHi, yLo + options.minSpan);
    const yStep = niceStep(yHi - yLo, 4);
    yHi = Math.ceil((yHi * 1.04) / yStep) * yStep;
    if (options.yCap !== undefined) yHi = Math.min(yHi, options.yCap);
    yLo = Math.floor(yLo / yStep) * yStep;
    const xOf = (t) => PAD.left + ((t - xMin) / (xMax - xMin)) * plotW;
    const yOf = (v) => PAD.top + plotH - ((v - yLo) / (yHi - yLo)) * plotH;

    // grid and axes
    ctx.font = FONT;
    ctx.lineWidth = 1;
    ctx.strokeStyle = gridColor;
    ctx.fillStyle = textColor;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    ctx.beginPath();
    for (let v = yLo; v <= yHi + yStep / 2; v += yStep) {
      const y = Math.round(yOf(v)) + 0.5;
      ctx.moveTo(PAD.left, y);
      ctx.lineTo(PAD.left + plotW, y);
      const label = v.toFixed(Number.isInteger(yStep) ? 0 : yStep < 0.1 ? 2 : 1);
      ctx.fillText(label, PAD.left - 6, y);
    }
    const tStep = timeStep(xMax - xMin, Math.max(2, Math.floor(plotW / 90)));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (let t = Math.ceil(xMin / tStep) * tStep; t <= xMax; t += tStep) {
      const x = Math.round(xOf(t)) + 0.5;
      ctx.moveTo(x, PAD.top);
      ctx.lineTo(x, PAD.top + plotH);
      ctx.fillText(timeLabel(t), x, PAD.top + plotH + 5);
    }
    ctx.stroke();
    ctx.save();
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(options.unit, 4, 2);
    ctx.restore();

    // series, decimated to one min/max pair per pixel column
    ctx.save();
    ctx.beginPath();
    ctx.rect(PAD.left, PAD.top - 1, plotW, plotH + 2);
    ctx.clip();
    let drawnPoints = 0;
    for (const series of options.series) {
      const points = this.decimate(series.key, start, xOf, yOf);
      drawnPoints += points.length;
      if (!points.length) continue;
      ctx.beginPath();
      ctx.lineWidth = series.width || 2;
      ctx.strokeStyle = series.color;
      ctx.setLineDash(series.dash || []);
      ctx.lineJoin = "round";
      let penDown = false;
      for (const [x, y] of points) {
        if (y === null) { penDown = false; continue; }
        if (penDown) ctx.lineTo(x, y); else ctx.moveTo(x, y);
        penDown = true;
      }
      ctx.stroke();
      if (series.fill && points.length > 1) {
        ctx.setLineDash([]);
        ctx.lineTo(points[points.length - 1][0], yOf(Math.max(yLo, 0)));
        ctx.lineTo(points[0][0], yOf(Math.max(yLo, 0)));
        ctx.globalAlpha = 0.12;
        ctx.fillStyle = series.color;
        ctx.fill();
        ctx.globalAlpha = 1;
      }
    }
    ctx.restore();
    ctx.setLineDash([]);

    this.drawHover(xOf, yOf, xMin, xMax, plotW, plotH, textColor);
    this.updateLegend();
    canvas.dataset.points = String(samples.length - start);
    canvas.dataset.drawn = String(drawnPoints);
    this.lastDrawMs = performance.now() - began;
  }

  /** [x, y] pairs: first, min, max, last of each pixel column (y null marks a gap). */
  decimate(key, start, xOf, yOf) {
    const samples = this.samples;
    const points = [];
    let column = null, first = 0, lo = 0, hi = 0, last = 0, count = 0;
    const flush = () => {
      if (!count) return;
      points.push([column, yOf(first)]);
      if (count > 2) { points.push([column, yOf(lo)]); points.push([column, yOf(hi)]); }
      if (count > 1) points.push([column, yOf(last)]);
    };
    for (let i = start; i < samples.length; i++) {
      const v = samples[i][key];
      const x = Math.round(xOf(samples[i].t_s));
      if (v === null || v === undefined || !Number.isFinite(v)) {
        flush(); count = 0; column = null; points.push([x, null]);
        continue;
      }
      if (x !== column) {
        flush();
        column = x; first = lo = hi = last = v; count = 1;
      } else {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        last = v; count++;
      }
    }
    flush();
    return points;
  }

  drawHover(xOf, yOf, xMin, xMax, plotW, plotH, textColor) {
    const { ctx, samples, options } = this;
    if (this.hoverX === null || !samples.length) return;
    const t = xMin + ((this.hoverX - PAD.left) / plotW) * (xMax - xMin);
    if (t < xMin || t > xMax) return;
    let index = Math.min(samples.length - 1, lowerBound(samples, t));
    if (index > 0 && Math.abs(samples[index - 1].t_s - t) < Math.abs(samples[index].t_s - t)) index--;
    const sample = samples[index];
    const x = Math.round(xOf(sample.t_s)) + 0.5;
    ctx.strokeStyle = textColor;
    ctx.beginPath();
    ctx.moveTo(x, PAD.top);
    ctx.lineTo(x, PAD.top + plotH);
    ctx.stroke();
    const lines = [timeLabel(sample.t_s)];
    for (const series of options.series) {
      const v = sample[series.key];
      lines.push(`${series.label}: ${v === null || v === undefined ? "—" : v.toFixed(options.digits)}`);
    }
    ctx.font = FONT;
    const boxW = Math.max(...lines.map((line) => ctx.measureText(line).width)) + 14;
    const boxH = lines.length * 15 + 8;
    const boxX = x + boxW + 10 > PAD.left + plotW ? x - boxW - 8 : x + 8;
    ctx.fillStyle = "rgba(12, 16, 24, 0.9)";
    ctx.fillRect(boxX, PAD.top + 4, boxW, boxH);
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    lines.forEach((line, i) => {
      ctx.fillStyle = i === 0 ? "#e6ebf2" : options.series[i - 1].color;
      ctx.fillText(line, boxX + 7, PAD.top + 8 + i * 15);
    });
  }

  updateLegend() {
    if (!this.legend) return;
    const last = this.samples[this.samples.length - 1];
    this.options.series.forEach((series, i) => {
      const v = last ? last[series.key] : null;
      const text = v === null || v === undefined ? "—" : v.toFixed(this.options.digits);
      if (this.legendValues[i].textContent !== text) this.legendValues[i].textContent = text;
    });
  }
}
