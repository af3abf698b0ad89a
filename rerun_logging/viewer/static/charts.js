// The timeline (record counts over time, stacked by level) and the numeric-extra plot,
// drawn on canvases that share one time axis (`TimeScale`): the same margins, the same
// time-to-x mapping, the same round time ticks. Both zoom: a drag picks a time range
// (panels.js turns it into the time filter and the domain), a double-click zooms out.
//
// Recordings hours apart would squash each into an edge of a linear axis. We chose to
// collapse the long empty gaps of the time axis: a stretch with no record longer than
// GAP_FRACTION of the domain and GAP_MIN_MS is drawn as a narrow break (GAP_PX, labelled with its
// length), and the busy spans share the width at one scale, so ticks stay round and
// the two canvases stay aligned. (A recording selected in the sidebar also narrows the
// domain to its own span, since the domain is that of the rows passing the filters.)
// Canvas only: text drawn with fillText is never HTML.

import { BUCKETS } from "./store.js";

const BUCKET_VARS = ["--lv-debug", "--lv-info", "--lv-warning", "--lv-error", "--lv-critical", "--lv-trace"];

/** Left and right margins shared by the timeline and the plot (the plot's value labels). */
export const PAD_L = 46, PAD_R = 10;
const GAP_PX = 22;          // drawn width of a collapsed gap
const GAP_FRACTION = 0.05;  // a gap at least this part of the domain ...
const GAP_MIN_MS = 30e3;    // ... and at least this long is collapsed
const MAX_GAPS = 8;
const FINE = 8192;          // buckets of the fine histogram (gaps, and the bins from it)
const TICK_PX = 90;         // least room between two time ticks
const TIME_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 10e3, 15e3, 30e3,
  60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3, 43200e3,
  86400e3, 172800e3, 604800e3];

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

/** A tick label of time `ms` for ticks `step` ms apart (as precise as the step needs). */
export function tickLabel(ms, step) {
  const d = new Date(ms);
  if (step >= 86400e3) return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  if (step >= 60e3) return pad(d.getHours()) + ":" + pad(d.getMinutes());
  return clockLabel(ms, step < 1000);
}

/** A length of time in words ("3h 02m", "45 s", "2.5 d"). */
export function spanLabel(ms) {
  if (ms < 60e3) return (ms / 1000).toFixed(ms < 10e3 ? 1 : 0) + " s";
  if (ms < 3600e3) return Math.floor(ms / 60e3) + "m " + pad(Math.floor((ms % 60e3) / 1000)) + "s";
  if (ms < 86400e3) return Math.floor(ms / 3600e3) + "h " + pad(Math.floor((ms % 3600e3) / 60e3)) + "m";
  return (ms / 86400e3).toFixed(1) + " d";
}

/** A round step (1, 2 or 5 × 10^k) for about `count` steps over `span`. */
export function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

/** Round ticks covering [lo, hi]: the bounds widened to whole steps, and every tick. */
export function niceTicks(lo, hi, count) {
  const step = niceStep(hi - lo, count);
  const a = Math.floor(lo / step + 1e-9) * step, b = Math.ceil(hi / step - 1e-9) * step;
  const ticks = [];
  for (let k = 0; a + k * step <= b + step * 1e-9 && k < 100; k++) ticks.push(+(a + k * step).toPrecision(12));
  return { lo: a, hi: b === a ? a + step : b, step, ticks };
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

// ---------------------------------------------------------------------------- the time axis

/**
 * Time to x over [PAD_L, width - PAD_R]: busy segments at one scale `k` (px per ms),
 * collapsed gaps GAP_PX wide. `segs`: {t0, t1, x0, x1, gap}, in time order.
 */
export class TimeScale {
  constructor() { this.fit(0, 1, 200, []); }

  /** Fit [a, b] into a canvas `w` px wide, collapsing `gaps` ([t0, t1], sorted, inside). */
  fit(a, b, w, gaps) {
    this.domain = [a, b];
    this.width = w;
    this.gaps = gaps;
    let busy = b - a;
    for (const g of gaps) busy -= g[1] - g[0];
    const room = Math.max(10, w - PAD_L - PAD_R - gaps.length * GAP_PX);
    const k = room / Math.max(busy, 1e-9);
    this.k = k;
    const segs = [];
    let t = a, x = PAD_L;
    for (const g of gaps) {
      segs.push({ t0: t, t1: g[0], x0: x, x1: x + (g[0] - t) * k, gap: false });
      x += (g[0] - t) * k;
      segs.push({ t0: g[0], t1: g[1], x0: x, x1: x + GAP_PX, gap: true });
      x += GAP_PX;
      t = g[1];
    }
    segs.push({ t0: t, t1: b, x0: x, x1: x + (b - t) * k, gap: false });
    this.segs = segs;
    this.last = 0;
  }

  segOfTime(t) {
    const segs = this.segs;
    const s = segs[this.last];
    if (s && t >= s.t0 && t <= s.t1) return s;
    for (let j = 0; j < segs.length; j++) {
      if (t <= segs[j].t1 || j === segs.length - 1) { this.last = j; return segs[j]; }
    }
    return segs[segs.length - 1];
  }

  /** CSS x of time `t` (outside the domain: extrapolated at the busy scale). */
  xAt(t) {
    const s = this.segOfTime(t);
    if (s.gap) return s.x0 + ((t - s.t0) / (s.t1 - s.t0 || 1)) * (s.x1 - s.x0);
    return s.x0 + (t - s.t0) * this.k;
  }

  /** Time at CSS x `x`. */
  timeAt(x) {
    const segs = this.segs;
    let s = segs[segs.length - 1];
    for (const seg of segs) if (x <= seg.x1) { s = seg; break; }
    if (s.gap) return s.t0 + ((x - s.x0) / (s.x1 - s.x0 || 1)) * (s.t1 - s.t0);
    return s.t0 + (x - s.x0) / this.k;
  }

  /** Round time ticks (local clock) on the busy segments: [{t, x, label}], and the step. */
  ticks() {
    let step = TIME_STEPS[TIME_STEPS.length - 1];
    for (const s of TIME_STEPS) if (s * this.k >= TICK_PX) { step = s; break; }
    const out = [];
    let lastRight = -Infinity;
    for (const s of this.segs) {
      if (s.gap) continue;
      const off = step >= 3600e3 ? -new Date(s.t0).getTimezoneOffset() * 60e3 : 0; // local hours
      for (let t = Math.ceil((s.t0 + off) / step) * step - off; t <= s.t1 && out.length < 200; t += step) {
        const x = this.xAt(t);
        const label = tickLabel(t, step);
        const half = label.length * 3;
        if (x - half < lastRight + 8 || x - half < 0 || x + half > this.width) continue; // no label cut at the edges
        out.push({ t, x, label });
        lastRight = x + half;
      }
    }
    return { step, ticks: out };
  }
}

/**
 * Extent [min, max] of the times of `rows` (row numbers), or null when empty: the
 * store's own when every row is there, the ends when the rows are in time order,
 * else one pass.
 */
function extentOf(store, rows, inTimeOrder) {
  const time = store.time, ns = store.ns, a = rows.a, n = rows.n;
  if (!n) return null;
  if (n === store.n && store.maxTime >= store.minTime) return [store.minTime, store.maxTime];
  if (inTimeOrder) return [time[a[0]] + ns[a[0]] / 1e6, time[a[n - 1]] + ns[a[n - 1]] / 1e6];
  let lo = Infinity, hi = -Infinity;
  for (let j = 0; j < n; j++) {
    const t = time[a[j]] + ns[a[j]] / 1e6;
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  return [lo, hi];
}

/** A fine histogram of times over [a, b]: counts per bucket and level, in one lean pass. */
class Histogram {
  constructor() {
    this.counts = new Uint32Array(FINE * BUCKETS);
    this.total = new Uint32Array(FINE);
  }

  /** Count the rows of `rows` within [a, b]. */
  fill(store, rows, a, b) {
    const { counts, total } = this;
    counts.fill(0);
    this.a = a; this.b = b;
    const time = store.time, ns = store.ns, bucket = store.bucket, ra = rows.a, n = rows.n;
    const kf = FINE / (b - a || 1);
    this.kf = kf;
    for (let j = 0; j < n; j++) {
      const i = ra[j];
      const t = time[i] + ns[i] / 1e6;
      if (t < a || t > b) continue;
      const f = Math.floor((t - a) * kf);
      counts[(f < FINE ? f : FINE - 1) * BUCKETS + bucket[i]]++;
    }
    for (let f = 0; f < FINE; f++) {
      let sum = 0;
      for (let k = 0; k < BUCKETS; k++) sum += counts[f * BUCKETS + k];
      total[f] = sum;
    }
  }

  /** Time of the start of fine bucket `f`. */
  at(f) { return this.a + f / this.kf; }

  /** The runs of empty buckets long enough to be gaps: [first empty, first busy after]. */
  emptyRuns() {
    const total = this.total, minRun = Math.max(3, Math.ceil(FINE * GAP_FRACTION));
    const runs = [];
    let start = -1;
    for (let f = 0; f <= FINE; f++) {
      const empty = f < FINE && total[f] === 0;
      if (empty && start < 0) start = f;
      else if (!empty && start >= 0) {
        // only gaps between records: not the margins before the first or after the last
        if (start > 0 && f < FINE && f - start >= minRun && this.at(f) - this.at(start) >= GAP_MIN_MS) runs.push([start, f]);
        start = -1;
      }
    }
    runs.sort((x, y) => (y[1] - y[0]) - (x[1] - x[0]));
    return runs.slice(0, MAX_GAPS).sort((x, y) => x[0] - y[0]);
  }
}

/**
 * The long empty stretches of the histogram `hist` of `rows` (sorted), bounded by the
 * records' own times on either side, so that the busy segments are the records' spans:
 * found by binary search when the rows are in time order, else in one pass over the rows
 * of the buckets next to a gap. Then a margin inside each, as at the domain's ends.
 */
function gapsOf(store, rows, hist, inTimeOrder) {
  const runs = hist.emptyRuns();
  if (!runs.length) return [];
  const time = store.time, ns = store.ns, ra = rows.a, n = rows.n;
  const tOf = (j) => time[ra[j]] + ns[ra[j]] / 1e6;
  const gaps = runs.map(() => [-Infinity, Infinity]); // [last before, first after]
  if (inTimeOrder) {
    runs.forEach((r, g) => {
      const edge = hist.at(r[0]);
      let lo = 0, hi = n;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (tOf(mid) < edge) lo = mid + 1; else hi = mid; }
      gaps[g] = [lo > 0 ? tOf(lo - 1) : edge, lo < n ? tOf(lo) : hist.at(r[1])];
    });
  } else {
    const edgeOf = new Int16Array(FINE + 1).fill(-1); // fine bucket -> gap whose edge it is (x2, +1 after)
    runs.forEach((r, g) => { edgeOf[r[0] - 1] = 2 * g; edgeOf[r[1]] = 2 * g + 1; });
    const a = hist.a, b = hist.b, kf = hist.kf;
    for (let j = 0; j < n; j++) {
      const t = tOf(j);
      if (t < a || t > b) continue;
      const f = Math.min(FINE - 1, Math.floor((t - a) * kf));
      const e = edgeOf[f];
      if (e < 0) continue;
      const g = gaps[e >> 1];
      if (e & 1) { if (t < g[1]) g[1] = t; } else if (t > g[0]) g[0] = t;
    }
  }
  let busy = hist.b - hist.a;
  for (const g of gaps) busy -= g[1] - g[0];
  const m = Math.max(busy * 0.01, 1);
  return gaps.map((g) => [g[0] + m, g[1] - m]).filter((g) => g[1] > g[0]);
}

// ---------------------------------------------------------------------------- drag to zoom

/**
 * Drag on `canvas` to pick a time range (`onRange(t0, t1)`), double-click to zoom out
 * (`onZoomOut()`); `owner.scale` maps x to time and `owner.drag` holds the drag [x0, x1]
 * while it lasts (`redraw()` shows it).
 */
export function dragToZoom(canvas, owner, onRange, onZoomOut, redraw) {
  const xOf = (e) => {
    const r = canvas.getBoundingClientRect();
    return Math.max(PAD_L, Math.min(r.width - PAD_R, e.clientX - r.left));
  };
  canvas.addEventListener("mousedown", (e) => {
    if (e.button !== 0) return;
    const x = xOf(e);
    owner.drag = { x0: x, x1: x };
    const move = (ev) => { owner.drag.x1 = xOf(ev); redraw(); };
    const up = (ev) => {
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", up);
      const d = owner.drag;
      owner.drag = null;
      d.x1 = xOf(ev);
      if (Math.abs(d.x1 - d.x0) >= 3) {
        onRange(owner.scale.timeAt(Math.min(d.x0, d.x1)), owner.scale.timeAt(Math.max(d.x0, d.x1)));
      } else redraw();
    };
    window.addEventListener("mousemove", move);
    window.addEventListener("mouseup", up);
    e.preventDefault();
  });
  canvas.addEventListener("dblclick", () => onZoomOut());
}

/** The drag rectangle of `drag` ({x0, x1}) over the height `h`. */
function drawDrag(ctx, drag, h, c) {
  if (!drag) return;
  const x0 = Math.min(drag.x0, drag.x1), x1 = Math.max(drag.x0, drag.x1);
  ctx.globalAlpha = 0.18;
  ctx.fillStyle = c.accent;
  ctx.fillRect(x0, 0, Math.max(1, x1 - x0), h);
  ctx.globalAlpha = 1;
  ctx.fillRect(x0, 0, 1, h);
  ctx.fillRect(x1, 0, 1, h);
}

/** The collapsed gaps of `scale`: a shaded break with its length, from y0 to y1. */
function drawGaps(ctx, scale, y0, y1, c) {
  for (const s of scale.segs) {
    if (!s.gap) continue;
    ctx.fillStyle = c.bg;
    ctx.fillRect(s.x0 + 1, y0, s.x1 - s.x0 - 2, y1 - y0);
    ctx.fillStyle = c.border;
    for (let y = y0; y < y1; y += 6) {
      ctx.fillRect(s.x0 + 3, y, 1, 3);
      ctx.fillRect(s.x1 - 4, y + 3, 1, 3);
    }
    ctx.save();
    ctx.translate((s.x0 + s.x1) / 2, (y0 + y1) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillStyle = c.fg2;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.fillText("\u2248 " + spanLabel(s.t1 - s.t0), 0, 0);
    ctx.restore();
  }
}

/** The time ticks of `scale` along y `axisY`, labels at the bottom `h`. */
function drawTimeTicks(ctx, scale, axisY, h, c) {
  const { ticks } = scale.ticks();
  ctx.fillStyle = c.fg2;
  ctx.font = c.font;
  ctx.textBaseline = "bottom";
  ctx.textAlign = "center";
  for (const tk of ticks) {
    ctx.fillStyle = c.border;
    ctx.fillRect(Math.round(tk.x), axisY, 1, 3);
    ctx.fillStyle = c.fg2;
    ctx.fillText(tk.label, tk.x, h - 1);
  }
}

// ---------------------------------------------------------------------------- the timeline

export class Timeline {
  constructor(canvas) {
    this.canvas = canvas;
    this.scale = new TimeScale();
    this.drag = null;
    this.axisH = 14;
  }

  xAt(t) { return this.scale.xAt(t); }

  /** How many bins hold records in each busy segment (the test hooks: nothing squashed). */
  busyBins() {
    return this.scale.segs.filter((sg) => !sg.gap).map((sg) => {
      let k = 0;
      for (let i = Math.floor((sg.x0 - PAD_L) / 3); i < Math.min(this.nb, Math.ceil((sg.x1 - PAD_L) / 3)); i++) {
        let sum = 0;
        for (let b = 0; b < BUCKETS; b++) sum += this.bins[i * BUCKETS + b];
        if (sum) k++;
      }
      return k;
    });
  }
  timeAt(x) { return this.scale.timeAt(x); }
  get domain() { return this.scale.domain; }

  /**
   * Fit the axis (to `range` when zoomed, else to the rows of `base`: the rows passing
   * the filters but time, with their long gaps collapsed), then count them into bins of
   * 3 px: from the fine histogram (one pass over the rows), or, when collapsed gaps
   * magnify the busy spans past its resolution, in a second pass.
   */
  compute(store, base, range, inTimeOrder = false) {
    const w = Math.max(PAD_L + PAD_R + 20, this.canvas.clientWidth);
    let a, b;
    if (range) [a, b] = range;
    else {
      const ext = extentOf(store, base, inTimeOrder) || (store.maxTime >= store.minTime ? [store.minTime, store.maxTime] : null);
      if (ext) [a, b] = ext; else { b = Date.now(); a = b - 60000; }
      if (b - a < 10) { const m = (a + b) / 2; a = m - 5; b = m + 5; }
    }
    const hist = this.hist || (this.hist = new Histogram());
    hist.fill(store, base, a, b);
    const gaps = gapsOf(store, base, hist, inTimeOrder);
    let lo = a, hi = b;
    if (!range) {
      // a margin on each side, of the busy time (not of the gaps)
      let busy = b - a;
      for (const g of gaps) busy -= g[1] - g[0];
      lo -= busy * 0.01; hi += busy * 0.01;
    }
    this.scale.fit(lo, hi, w, gaps);
    const nb = Math.max(10, Math.ceil((w - PAD_L - PAD_R) / 3));
    if (!this.bins || this.bins.length !== nb * BUCKETS) this.bins = new Float64Array(nb * BUCKETS);
    const bins = this.bins;
    bins.fill(0);
    const binOf = (t) => {
      const bi = Math.floor((this.scale.xAt(t) - PAD_L) / 3);
      return bi < 0 ? 0 : bi >= nb ? nb - 1 : bi;
    };
    if ((b - a) / FINE * this.scale.k <= 1.5) {
      const counts = hist.counts;
      for (let f = 0; f < FINE; f++) {
        if (hist.total[f] === 0) continue;
        const o = binOf(hist.at(f + 0.5)) * BUCKETS;
        for (let k = 0; k < BUCKETS; k++) bins[o + k] += counts[f * BUCKETS + k];
      }
    } else {
      // each fine bucket's rows lie in one busy segment (gaps are bounded by records' times)
      const segs = this.scale.segs, k3 = this.scale.k / 3;
      const segOf = new Uint8Array(FINE);
      // the busy segment of each bucket, by its middle; a bucket a gap starts in holds
      // records before it only, one a gap ends in records after it only
      for (let f = 0; f < FINE; f++) {
        if (!hist.total[f]) continue;
        const t = hist.at(f + 0.5);
        let sj = -1; // segments alternate: busy 0, gap 0, busy 1, ...
        gaps.forEach((g, gi) => { if (t >= g[0] && t <= g[1]) sj = hist.at(f) < g[0] ? 2 * gi : 2 * gi + 2; });
        if (sj < 0) sj = segs.indexOf(this.scale.segOfTime(t));
        if (segs[sj].gap) sj++;
        segOf[f] = sj;
      }
      const bx = new Float64Array(segs.length); // bin (fractional) of each segment's start
      segs.forEach((sg, j) => { bx[j] = (sg.x0 - PAD_L) / 3 - sg.t0 * k3; });
      const time = store.time, ns = store.ns, bucket = store.bucket, rows = base.a, n = base.n, kf = hist.kf;
      for (let j = 0; j < n; j++) {
        const i = rows[j];
        const t = time[i] + ns[i] / 1e6;
        if (t < a || t > b) continue;
        let f = Math.floor((t - a) * kf);
        if (f >= FINE) f = FINE - 1;
        let bi = Math.floor(bx[segOf[f]] + t * k3);
        if (bi < 0) bi = 0; else if (bi >= nb) bi = nb - 1;
        bins[bi * BUCKETS + bucket[i]]++;
      }
    }
    this.nb = nb;
  }

  draw(colors) {
    if (colors) this.colors = colors;
    const c = this.colors;
    if (!c || !this.bins) return;
    const [ctx, w, h] = fit(this.canvas);
    ctx.clearRect(0, 0, w, h);
    const { bins, nb } = this;
    const top = 4;
    const plotH = h - this.axisH - 4 - top;
    let max = 0;
    for (let i = 0; i < nb; i++) {
      let s = 0;
      for (let b = 0; b < BUCKETS; b++) s += bins[i * BUCKETS + b];
      if (s > max) max = s;
    }
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
          ctx.fillRect(PAD_L + i * 3, y, 2.5, hh);
        }
      }
    }
    drawGaps(ctx, this.scale, top, top + plotH + 2, c);
    ctx.fillStyle = c.border;
    ctx.fillRect(PAD_L, top + plotH + 2, w - PAD_L - PAD_R, 1);
    drawTimeTicks(ctx, this.scale, top + plotH + 2, h, c);
    ctx.fillStyle = c.fg2;
    ctx.textAlign = "right";
    ctx.textBaseline = "top";
    ctx.fillText(max ? String(max) : "none", PAD_L - 4, top);
    ctx.fillText(max ? "/ bin" : "", PAD_L - 4, top + 11);
    drawDrag(ctx, this.drag, top + plotH + 2, c);
  }
}

// ---------------------------------------------------------------------------- the plot

const NAME_HINTS = ["latency", "duration", "elapsed", "ms", "time", "size", "bytes"];

/** Rank of the best name hint in `key` (lower is better), or -1 for none. */
function hintRank(key) {
  const words = key.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase().split(/[^a-z0-9]+/);
  let best = -1;
  NAME_HINTS.forEach((hint, r) => {
    const hit = words.some((w) => w === hint || (hint.length > 4 && w.startsWith(hint)));
    if (hit && best < 0) best = r;
  });
  return best;
}

/**
 * The most useful numeric extra to plot among `keys`: the best name hint (latency,
 * duration, elapsed, ms, time, size, bytes), else the largest relative spread (standard
 * deviation over the mean's size) among the newest SAMPLE records, leaving out counters
 * (values that only ever grow) and constants.
 */
export function pickPlotKey(store, keys) {
  if (!keys.length) return "";
  const ranked = keys.map((k) => [hintRank(k), k]).filter((x) => x[0] >= 0).sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : 1));
  if (ranked.length) return ranked[0][1];
  const SAMPLE = 20000;
  const stats = new Map(keys.map((k) => [k, { n: 0, mean: 0, m2: 0, last: -Infinity, grows: true }]));
  for (let i = Math.max(0, store.n - SAMPLE); i < store.n; i++) {
    const ex = store.extras[i];
    if (ex === undefined) continue;
    for (const k in ex) {
      const s = stats.get(k), v = ex[k];
      if (s === undefined || typeof v !== "number" || !Number.isFinite(v)) continue;
      s.n++;
      const d = v - s.mean;
      s.mean += d / s.n;
      s.m2 += d * (v - s.mean);
      if (v <= s.last) s.grows = false;
      s.last = v;
    }
  }
  let best = "", bestScore = -1;
  for (const [k, s] of stats) {
    if (s.n < 2 || s.m2 <= 0) continue;
    const spread = Math.sqrt(s.m2 / (s.n - 1)) / (Math.abs(s.mean) || 1);
    const score = s.grows ? spread * 1e-6 : spread;
    if (score > bestScore) { bestScore = score; best = k; }
  }
  return best || [...keys].sort()[0];
}

/** The value of extra `key` of every row held (NaN: none, or not a number), kept
 * between redraws and extended by the rows appended since: at 1M records, reading the
 * extras objects of every row on each redraw cost the plot 100 ms, most of a load's
 * redraw time. A new key, or a store cleared or evicted from (its `generation`), starts over. */
const plotValues = { key: null, generation: -1, n: 0, v: new Float64Array(0) };

function valuesOf(store, key) {
  const c = plotValues;
  if (c.key !== key || c.generation !== store.generation || c.n > store.n) {
    c.key = key; c.generation = store.generation; c.n = 0;
  }
  if (c.v.length < store.n) {
    const grown = new Float64Array(Math.max(store.n, c.v.length * 2, 1024));
    grown.set(c.v.subarray(0, c.n));
    c.v = grown;
  }
  const extras = store.extras, v = c.v;
  for (let i = c.n; i < store.n; i++) {
    const ex = extras[i];
    const x = ex === undefined || ex === null ? undefined : ex[key];
    v[i] = typeof x === "number" ? x : NaN;
  }
  c.n = store.n;
  return v;
}

/** A value as an axis label or readout ("12.5", "1.2e+6"). */
export function fmtValue(v) {
  return Math.abs(v) >= 1e6 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : String(+v.toPrecision(6));
}

function plotMessage(ctx, text, x, y, colors) {
  ctx.fillStyle = colors.fg2;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, x, y);
}

/**
 * Plot of one numeric extra over time for the rows shown, on the timeline's `scale`
 * (min/max per pixel column). Returns what it drew: {key, count, yTicks, xTicks, cols}
 * (cols: per pixel column the points of its min and max, for the hover readout).
 */
export function drawPlot(canvas, store, rows, key, colors, scale) {
  const [ctx, w, h] = fit(canvas);
  ctx.clearRect(0, 0, w, h);
  ctx.font = colors.font;
  const padT = 8, padB = 18;
  const pw = w - PAD_L - PAD_R, ph = h - padT - padB;
  const out = { key, count: 0, yTicks: [], xTicks: [], padT, ph };
  if (!key) { plotMessage(ctx, "choose a numeric extra to plot", w / 2, h / 2, colors); return out; }
  // one pass over the rows shown: per pixel column the lowest and highest value, with their times
  const cols = Math.max(1, Math.ceil(pw) + 1);
  const lo = new Float64Array(cols).fill(Infinity), hi = new Float64Array(cols).fill(-Infinity);
  const loT = new Float64Array(cols), hiT = new Float64Array(cols);
  const linear = scale.segs.length === 1, t0 = scale.domain[0], k = scale.k; // no gap: inline x
  const values = valuesOf(store, key), time = store.time, ns = store.ns, ra = rows.a, n = rows.n;
  let vMin = Infinity, vMax = -Infinity, count = 0;
  for (let j = 0; j < n; j++) {
    const i = ra[j];
    const v = values[i];
    if (v !== v) continue;
    count++;
    const t = time[i] + ns[i] / 1e6;
    let c = Math.round(linear ? (t - t0) * k : scale.xAt(t) - PAD_L);
    if (c < 0) c = 0; else if (c >= cols) c = cols - 1;
    if (v < lo[c]) { lo[c] = v; loT[c] = t; }
    if (v > hi[c]) { hi[c] = v; hiT[c] = t; }
    if (v < vMin) vMin = v;
    if (v > vMax) vMax = v;
  }
  ctx.fillStyle = colors.border;
  ctx.fillRect(PAD_L, padT, 1, ph);
  ctx.fillRect(PAD_L, padT + ph, pw, 1);
  if (!count) { plotMessage(ctx, "no values of this key in the rows shown", PAD_L + pw / 2, padT + ph / 2, colors); return out; }
  if (vMax === vMin) { vMin -= 1; vMax += 1; }
  const nice = niceTicks(vMin, vMax, Math.max(2, Math.floor(ph / 28)));
  vMin = nice.lo; vMax = nice.hi;
  const yAt = (v) => padT + ph - ((v - vMin) / (vMax - vMin)) * ph;
  // grid and value labels (round ticks)
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of nice.ticks) {
    const y = Math.round(yAt(v));
    ctx.fillStyle = colors.border;
    ctx.globalAlpha = 0.5;
    ctx.fillRect(PAD_L, y, pw, 1);
    ctx.globalAlpha = 1;
    ctx.fillStyle = colors.fg2;
    ctx.fillText(fmtValue(v), PAD_L - 4, y);
  }
  drawGaps(ctx, scale, padT, padT + ph, colors);
  ctx.fillStyle = colors.plot;
  ctx.strokeStyle = colors.plot;
  ctx.globalAlpha = 0.35;
  ctx.beginPath();
  let prev = -10;
  for (let c = 0; c < cols; c++) {
    if (lo[c] === Infinity) continue;
    const y = yAt((lo[c] + hi[c]) / 2);
    if (c - prev > 3) ctx.moveTo(PAD_L + c, y); else ctx.lineTo(PAD_L + c, y);
    prev = c;
  }
  ctx.stroke();
  ctx.globalAlpha = 1;
  const dot = count < 3000 ? 2 : 1;
  for (let c = 0; c < cols; c++) {
    if (lo[c] === Infinity) continue;
    const y1 = yAt(hi[c]), y0 = yAt(lo[c]);
    ctx.fillRect(PAD_L + c - dot / 2, y1 - dot / 2, dot, Math.max(dot, y0 - y1 + dot));
  }
  const xt = scale.ticks();
  drawTimeTicks(ctx, scale, padT + ph, h, colors);
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  const tw = ctx.measureText(key).width;
  ctx.fillStyle = colors.bg;
  ctx.globalAlpha = 0.8;
  ctx.fillRect(PAD_L + 4, padT - 1, tw + 6, 13);
  ctx.globalAlpha = 1;
  ctx.fillStyle = colors.fg;
  ctx.fillText(key, PAD_L + 7, padT);
  Object.assign(out, { count, yTicks: nice.ticks, yStep: nice.step, xTicks: xt.ticks.map((t) => t.t), xStep: xt.step,
    vMin, vMax, lo, hi, loT, hiT, cols, yAt });
  return out;
}

/** The point of the last plot `p` nearest to CSS (x, y), within 24 px across: {t, v, x, y} or null. */
export function nearestPoint(p, x, y) {
  if (!p || !p.count) return null;
  const c0 = Math.round(x - PAD_L);
  let best = null, bestD = Infinity;
  for (let c = Math.max(0, c0 - 24); c <= Math.min(p.cols - 1, c0 + 24); c++) {
    if (p.lo[c] === Infinity) continue;
    for (const [t, v] of [[p.loT[c], p.lo[c]], [p.hiT[c], p.hi[c]]]) {
      const px = PAD_L + c, py = p.yAt(v);
      const d = (px - x) * (px - x) + (py - y) * (py - y) * 0.25;
      if (d < bestD) { bestD = d; best = { t, v, x: px, y: py }; }
    }
  }
  return best;
}

/** The drag rectangle on the plot while zooming (drawn over what drawPlot drew). */
export function drawPlotDrag(canvas, drag, colors) {
  if (!drag) return;
  const ctx = canvas.getContext("2d");
  drawDrag(ctx, drag, canvas.clientHeight - 18, colors);
}
