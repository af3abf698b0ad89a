// The page's charts: the timeline and the plot of a numeric extra, on one shared time
// axis (charts.js). A drag on either zooms into a time range (the time filter and the
// axis's domain), a double-click zooms back out one step, the chip clears every zoom.
// The plot picks its extra by itself until the user picks one, and reads out the value
// and time of the point nearest the pointer. Also the theme colours they are drawn in.
// This module owns `view.colors`.

import { store, filter, view, dirty, schedule } from "./state.js";
import { $, el } from "./dom.js";
import { fmtTime, fmtCount } from "./format.js";
import { Timeline, drawPlot, drawPlotDrag, dragToZoom, nearestPoint, pickPlotKey, fmtValue, themeColors } from "./charts.js";
import { invalidateFilter } from "./filtering.js";

export const timeline = new Timeline($("timeline"));
const timelineClear = $("timeline-clear");
timelineClear.addEventListener("click", () => setTimeRange(null));

const plotSelect = $("plot-select"), plotCanvas = $("plot"), plotPanel = $("plot-panel");
const readout = $("plot-readout"), marker = $("plot-marker");
let plotKeysSeen = 0;
let plotChosen = false;  // the user picked the extra (no more automatic picks)
let lastPlot = null;     // what the plot drew last (drawPlot's result)
let zoomStack = [];      // the time ranges zoomed into, the current one last
let pointer = null;      // the pointer over the plot [x, y], or null
const plotDrag = { scale: timeline.scale, drag: null };

/** Filter to the time range `r` ([t0, t1] ms), zoomed there from nothing, or none (null). */
export function setTimeRange(r) {
  zoomStack = r === null ? [] : [r];
  applyRange();
}

/** Zoom into the time range `r` from the current one (a drag; a double-click comes back). */
export function zoomInto(r) {
  zoomStack = [...zoomStack, r];
  applyRange();
}

/** Zoom out one step (the range before the last one, or none). */
export function zoomOut() {
  zoomStack.pop();
  applyRange();
}

function applyRange() {
  const r = zoomStack.length ? zoomStack[zoomStack.length - 1] : null;
  filter.timeRange = r;
  showTimeRange(r);
  invalidateFilter();
}

/** Show the range `r` on the timeline and its chip, without running the filter (hooks). */
export function showTimeRange(r) {
  if (!r) zoomStack = [];
  else if (zoomStack[zoomStack.length - 1] !== r) zoomStack = [r];
  timeline.range = r;
  timelineClear.hidden = !r;
  if (r) timelineClear.textContent = "\u00d7 " + fmtTime(r[0]) + " \u2013 " + fmtTime(r[1]);
  dirty.timeline = dirty.plot = true;
  schedule();
}

dragToZoom($("timeline"), timeline, (a, b) => zoomInto([a, b]), zoomOut, () => timeline.draw());
dragToZoom(plotCanvas, plotDrag, (a, b) => zoomInto([a, b]), zoomOut, () => {
  drawCurrentPlot();
  drawPlotDrag(plotCanvas, plotDrag.drag, view.colors);
});

/** Redraw the timeline over the rows passing all filters but time (zoomed: over the range). */
export function renderTimeline() {
  timeline.compute(store, view.base, filter.timeRange, view.timeOrder);
  timeline.draw(view.colors);
  dirty.plot = true; // the plot shares the timeline's axis
}

/** Relist the numeric extras; pick the plotted one when the user has not. */
function refreshPlotKeys() {
  if (store.numericKeys.size === plotKeysSeen) return;
  plotKeysSeen = store.numericKeys.size;
  const cur = plotSelect.value;
  const keys = [...store.numericKeys].sort();
  plotSelect.textContent = "";
  const o = el("option", null, "(numeric extra)");
  o.value = "";
  plotSelect.appendChild(o);
  for (const k of keys) {
    const opt = el("option", null, k);
    opt.value = k;
    plotSelect.appendChild(opt);
  }
  if (plotChosen && (cur === "" || store.numericKeys.has(cur))) plotSelect.value = cur;
  else plotSelect.value = pickPlotKey(store, keys);
}

/** Refresh the list of numeric extras, then draw the plot when its panel is open. */
export function renderPlot() {
  refreshPlotKeys();
  if (!plotPanel.open) return;
  drawCurrentPlot();
  $("plot-info").textContent = plotSelect.value ? fmtCount(lastPlot.count) + " points" : "";
  if (pointer) showReadout(pointer[0], pointer[1]); else hideReadout();
}

function drawCurrentPlot() {
  lastPlot = drawPlot(plotCanvas, store, view.rows, plotSelect.value, view.colors, timeline.scale);
  lastPlot.auto = !plotChosen;
}

/** What the plot drew last (the test hooks): key, points, round ticks, the readout shown. */
export function plotState() {
  const p = lastPlot || { key: plotSelect.value, count: 0, yTicks: [], xTicks: [] };
  return {
    key: p.key, auto: !plotChosen, count: p.count, yTicks: p.yTicks, yStep: p.yStep ?? null,
    xTicks: p.xTicks, xStep: p.xStep ?? null, domain: [...timeline.scale.domain],
    readout: readout.hidden ? null : readout.textContent,
  };
}

/** The shared time axis (the test hooks): domain, collapsed gaps, ticks and their step,
 * and the bins holding records in each busy segment. */
export function timeAxisState() {
  const s = timeline.scale, tk = s.ticks();
  return {
    domain: [...s.domain], gaps: s.gaps.map((g) => [...g]), step: tk.step,
    ticks: tk.ticks.map((t) => ({ t: t.t, x: t.x, label: t.label })), zoomDepth: zoomStack.length,
    busyBins: timeline.bins ? timeline.busyBins() : [],
    segments: s.segs.map((g) => ({ t0: g.t0, t1: g.t1, x0: g.x0, x1: g.x1, gap: g.gap })),
  };
}

/** The readout of the point nearest the pointer at (x, y), CSS px in the plot canvas. */
function showReadout(x, y) {
  const pt = nearestPoint(lastPlot, x, y);
  if (!pt) { hideReadout(); return; }
  readout.textContent = lastPlot.key + " = " + fmtValue(pt.v) + " at " + fmtTime(pt.t);
  readout.hidden = false;
  marker.hidden = false;
  marker.style.left = pt.x - 4 + "px";
  marker.style.top = pt.y - 4 + "px";
}

function hideReadout() { readout.hidden = true; marker.hidden = true; }

/** A new connection: relist the numeric extras at the next draw, zoomed out. */
export function resetPlot() { plotKeysSeen = -1; zoomStack = []; }

plotSelect.addEventListener("change", () => { plotChosen = true; dirty.plot = true; schedule(); });
plotSelect.addEventListener("click", (e) => e.stopPropagation());
plotPanel.addEventListener("toggle", () => { dirty.plot = true; schedule(); });
plotCanvas.addEventListener("mousemove", (e) => {
  if (plotDrag.drag) { hideReadout(); return; }
  const r = plotCanvas.getBoundingClientRect();
  pointer = [e.clientX - r.left, e.clientY - r.top];
  showReadout(pointer[0], pointer[1]);
});
plotCanvas.addEventListener("mouseleave", () => { pointer = null; hideReadout(); });

/** Read the theme's colours (again: the colour scheme changed). */
export function refreshColors() {
  view.colors = themeColors();
  dirty.timeline = dirty.plot = true;
  schedule();
}
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", refreshColors);
