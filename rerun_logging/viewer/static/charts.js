// The timeline (record counts over time, stacked by level) and the numeric-extra plot.
// Canvas only: text drawn with fillText is never HTML.

import { BUCKETS } from "./store.js";

const BUCKET_VARS = ["--lv-debug", "--lv-info", "--lv-warning", "--lv-error", "--lv-critical", "--lv-trace"];

export function themeColors() {
  const cs = getComputedStyle(document.documentElement);
  const v = (n) => cs.getPropertyValue(n).trim();
  return {
    buckets: BUCKET_VARS.map(v),
    fg: v("--fg"), fg2: v("--fg2"), border: v("--border"), accent: v("--accent"),
    bg: v("--bg"), plot: v("--plot"), font: "10px " + (v("--sans") || "sans-serif"),
  };
}

function pad(n, w = 2) { return String(n).padStart(w, "0"); }

export function clockLabel(ms, withMs) {
  const d = new Date(ms);
  const s = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  return withMs ? s + "." + pad(d.getMilliseconds(), 3) : s;
}

/** Size a canvas to its CSS box times the device pixel ratio; returns [ctx, w, h] in CSS px. */
function fit(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return [ctx, w, h];
}

export class Timeline {
  /**
   * canvas: the element; onRange(t0, t1 | null): a time range chosen (null: cleared).
   */
  constructor(canvas, onRange) {
    this.canvas = canvas;
    this.onRange = onRange;
    this.domain = [0, 1];
    this.range = null;
    this.drag = null;
    this.padL = 6; this.padR = 6; this.axisH = 14;
    canvas.addEventListener("mousedown", (e) => {
      if (e.button !== 0) return;
      const x = this.x(e);
      this.drag = { x0: x, x1: x };
      const move = (ev) => { this.drag.x1 = this.x(ev); this.draw(); };
      const up = (ev) => {
        window.removeEventListener("mousemove", move);
        window.removeEventListener("mouseup", up);
        const d = this.drag;
        this.drag = null;
        d.x1 = this.x(ev);
        if (Math.abs(d.x1 - d.x0) >= 3) {
          const a = this.timeAt(Math.min(d.x0, d.x1)), b = this.timeAt(Math.max(d.x0, d.x1));
          this.onRange(a, b);
        } else this.draw();
      };
      window.addEventListener("mousemove", move);
      window.addEventListener("mouseup", up);
      e.preventDefault();
    });
    canvas.addEventListener("dblclick", () => this.onRange(null, null));
  }

  x(e) {
    const r = this.canvas.getBoundingClientRect();
    return Math.max(this.padL, Math.min(r.width - this.padR, e.clientX - r.left));
  }

  timeAt(x) {
    const w = this.canvas.clientWidth - this.padL - this.padR;
    const [a, b] = this.domain;
    return a + ((x - this.padL) / Math.max(1, w)) * (b - a);
  }

  xAt(t) {
    const w = this.canvas.clientWidth - this.padL - this.padR;
    const [a, b] = this.domain;
    return this.padL + ((t - a) / (b - a || 1)) * w;
  }

  /** Count the rows of `base` (row numbers passing the non-time filters) into bins. */
  compute(store, base) {
    const w = Math.max(10, this.canvas.clientWidth - this.padL - this.padR);
    const nb = Math.max(10, Math.floor(w / 3));
    let a = store.minTime, b = store.maxTime;
    if (!(b >= a)) { a = Date.now() - 60000; b = Date.now(); }
    if (b - a < 10) { const m = (a + b) / 2; a = m - 5; b = m + 5; }
    const span = b - a;
    a -= span * 0.01; b += span * 0.01;
    this.domain = [a, b];
    const bins = new Float64Array(nb * BUCKETS);
    const time = store.time, ns = store.ns, bucket = store.bucket, rows = base.a, n = base.n;
    const k = nb / (b - a);
    for (let j = 0; j < n; j++) {
      const i = rows[j];
      let bi = Math.floor((time[i] + ns[i] / 1e6 - a) * k);
      if (bi < 0) bi = 0; else if (bi >= nb) bi = nb - 1;
      bins[bi * BUCKETS + bucket[i]]++;
    }
    this.bins = bins;
    this.nb = nb;
  }

  draw(colors) {
    if (colors) this.colors = colors;
    const c = this.colors;
    if (!c || !this.bins) return;
    const [ctx, w, h] = fit(this.canvas);
    ctx.clearRect(0, 0, w, h);
    const { bins, nb } = this;
    const top = 13; // room for the label
    const plotH = h - this.axisH - 4 - top;
    let max = 0;
    for (let i = 0; i < nb; i++) {
      let s = 0;
      for (let b = 0; b < BUCKETS; b++) s += bins[i * BUCKETS + b];
      if (s > max) max = s;
    }
    const bw = (w - this.padL - this.padR) / nb;
    if (max > 0) {
      const order = [5, 0, 1, 2, 3, 4];
      for (let i = 0; i < nb; i++) {
        let y = top + plotH + 2;
        for (const b of order) {
          const v = bins[i * BUCKETS + b];
          if (!v) continue;
          const hh = Math.max(1, (v / max) * plotH);
          ctx.fillStyle = c.buckets[b];
          y -= hh;
          ctx.fillRect(this.padL + i * bw, y, Math.max(1, bw - 0.5), hh);
        }
      }
    }
    // axis
    ctx.fillStyle = c.border;
    ctx.fillRect(this.padL, top + plotH + 2, w - this.padL - this.padR, 1);
    ctx.fillStyle = c.fg2;
    ctx.font = c.font;
    ctx.textBaseline = "bottom";
    const [a, b] = this.domain;
    const ticks = Math.max(2, Math.floor(w / 140));
    for (let t = 0; t <= ticks; t++) {
      const tt = a + ((b - a) * t) / ticks;
      const label = clockLabel(tt, b - a < 20000);
      ctx.textAlign = t === 0 ? "left" : t === ticks ? "right" : "center";
      ctx.fillText(label, this.xAt(tt), h - 1);
    }
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(max ? "max " + String(max) + " / bin" : "no records", this.padL + 2, 2);
    // selection
    let sel = null;
    if (this.drag) sel = [Math.min(this.drag.x0, this.drag.x1), Math.max(this.drag.x0, this.drag.x1)];
    else if (this.range) sel = [this.xAt(this.range[0]), this.xAt(this.range[1])];
    if (sel) {
      ctx.globalAlpha = 0.18;
      ctx.fillStyle = c.accent;
      ctx.fillRect(sel[0], 0, Math.max(1, sel[1] - sel[0]), top + plotH + 2);
      ctx.globalAlpha = 1;
      ctx.fillStyle = c.accent;
      ctx.fillRect(sel[0], 0, 1, top + plotH + 2);
      ctx.fillRect(sel[1], 0, 1, top + plotH + 2);
    }
  }
}

/** Time (ms, with the ns fraction) and value of every shown row whose extra `key` is a
 * number: [times, values, count], read once for both passes of the plot. */
function numericPoints(store, rows, key) {
  const extras = store.extras, time = store.time, ns = store.ns, a = rows.a, n = rows.n;
  const ts = new Float64Array(n), vs = new Float64Array(n);
  let count = 0;
  for (let j = 0; j < n; j++) {
    const i = a[j];
    const ex = extras[i];
    if (ex === undefined) continue;
    const v = ex[key];
    if (typeof v !== "number") continue;
    ts[count] = time[i] + ns[i] / 1e6;
    vs[count++] = v;
  }
  return [ts, vs, count];
}

/** Plot of one numeric extra over time for the rows shown; min/max per pixel column. */
export function drawPlot(canvas, store, rows, key, colors) {
  const [ctx, w, h] = fit(canvas);
  ctx.clearRect(0, 0, w, h);
  ctx.font = colors.font;
  const padL = 52, padR = 10, padT = 8, padB = 18;
  const pw = w - padL - padR, ph = h - padT - padB;
  if (!key) {
    ctx.fillStyle = colors.fg2;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText("choose a numeric extra to plot", w / 2, h / 2);
    return 0;
  }
  const [ts, vs, count] = numericPoints(store, rows, key);
  let tMin = Infinity, tMax = -Infinity, vMin = Infinity, vMax = -Infinity;
  for (let j = 0; j < count; j++) {
    const t = ts[j], v = vs[j];
    if (t < tMin) tMin = t;
    if (t > tMax) tMax = t;
    if (v < vMin) vMin = v;
    if (v > vMax) vMax = v;
  }
  // axes
  ctx.fillStyle = colors.border;
  ctx.fillRect(padL, padT, 1, ph);
  ctx.fillRect(padL, padT + ph, pw, 1);
  if (!count) {
    ctx.fillStyle = colors.fg2;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText("no values of this key in the rows shown", padL + pw / 2, padT + ph / 2);
    return 0;
  }
  if (tMax === tMin) { tMin -= 500; tMax += 500; }
  if (vMax === vMin) { vMin -= 1; vMax += 1; }
  const cols = Math.max(1, Math.floor(pw));
  const lo = new Float64Array(cols).fill(Infinity), hi = new Float64Array(cols).fill(-Infinity);
  const kx = (cols - 1) / (tMax - tMin);
  for (let j = 0; j < count; j++) {
    const c = Math.round((ts[j] - tMin) * kx), v = vs[j];
    if (v < lo[c]) lo[c] = v;
    if (v > hi[c]) hi[c] = v;
  }
  const yAt = (v) => padT + ph - ((v - vMin) / (vMax - vMin)) * ph;
  ctx.fillStyle = colors.plot;
  ctx.strokeStyle = colors.plot;
  ctx.globalAlpha = 0.35;
  ctx.beginPath();
  let prev = -10;
  for (let c = 0; c < cols; c++) {
    if (lo[c] === Infinity) continue;
    const y = yAt((lo[c] + hi[c]) / 2);
    if (c - prev > 3) ctx.moveTo(padL + c, y); else ctx.lineTo(padL + c, y);
    prev = c;
  }
  ctx.stroke();
  ctx.globalAlpha = 1;
  const dot = count < 3000 ? 2 : 1;
  for (let c = 0; c < cols; c++) {
    if (lo[c] === Infinity) continue;
    const y1 = yAt(hi[c]), y0 = yAt(lo[c]);
    ctx.fillRect(padL + c - dot / 2, y1 - dot / 2, dot, Math.max(dot, y0 - y1 + dot));
  }
  // labels
  ctx.fillStyle = colors.fg2;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const fmt = (v) => (Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : String(+v.toPrecision(4)));
  for (let t = 0; t <= 4; t++) {
    const v = vMin + ((vMax - vMin) * t) / 4;
    const y = yAt(v);
    ctx.fillText(fmt(v), padL - 4, y);
    ctx.fillStyle = colors.border;
    ctx.fillRect(padL - 3, y, 3, 1);
    ctx.fillStyle = colors.fg2;
  }
  ctx.textBaseline = "bottom";
  const ticks = Math.max(2, Math.floor(pw / 150));
  for (let t = 0; t <= ticks; t++) {
    const tt = tMin + ((tMax - tMin) * t) / ticks;
    ctx.textAlign = t === 0 ? "left" : t === ticks ? "right" : "center";
    ctx.fillText(clockLabel(tt, tMax - tMin < 20000), padL + ((tt - tMin) / (tMax - tMin)) * pw, h - 1);
  }
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  const tw = ctx.measureText(key).width;
  ctx.fillStyle = colors.bg;
  ctx.globalAlpha = 0.8;
  ctx.fillRect(padL + 4, padT - 1, tw + 6, 13);
  ctx.globalAlpha = 1;
  ctx.fillStyle = colors.fg;
  ctx.fillText(key, padL + 7, padT);
  return count;
}
