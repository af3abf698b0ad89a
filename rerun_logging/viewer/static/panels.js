// The page's charts: the timeline (a drag picks a time range filter, a double-click
// or the chip clears it) and the plot of a numeric extra over the rows shown, with
// the theme colours they are drawn in. Drawing itself is in charts.js.

import { store, filter, view, dirty, schedule } from "./state.js";
import { $, el } from "./dom.js";
import { fmtTime, fmtCount } from "./format.js";
import { Timeline, drawPlot, themeColors } from "./charts.js";
import { invalidateFilter } from "./filtering.js";

export const timeline = new Timeline($("timeline"), (a, b) => setTimeRange(a === null ? null : [a, b]));
const timelineClear = $("timeline-clear");
timelineClear.addEventListener("click", () => setTimeRange(null));

const plotSelect = $("plot-select"), plotCanvas = $("plot"), plotPanel = $("plot-panel");
let plotKeysSeen = 0;

/** Filter to the time range `r` ([t0, t1] ms) or none (null). */
export function setTimeRange(r) {
  filter.timeRange = r;
  timeline.range = r;
  timelineClear.hidden = r === null;
  if (r) timelineClear.textContent = "\u00d7 " + fmtTime(r[0]) + " \u2013 " + fmtTime(r[1]);
  invalidateFilter();
}

/** Show the range `r` on the timeline and its chip, without running the filter (hooks). */
export function showTimeRange(r) {
  timeline.range = r;
  timelineClear.hidden = !r;
}

/** Redraw the timeline over the rows passing all filters but time. */
export function renderTimeline() {
  timeline.compute(store, view.base);
  timeline.draw(view.colors);
}

/** Refresh the list of numeric extras, then draw the plot when its panel is open. */
export function renderPlot() {
  if (store.numericKeys.size !== plotKeysSeen) {
    plotKeysSeen = store.numericKeys.size;
    const cur = plotSelect.value;
    plotSelect.textContent = "";
    const o = el("option", null, "(numeric extra)");
    o.value = "";
    plotSelect.appendChild(o);
    for (const k of [...store.numericKeys].sort()) {
      const opt = el("option", null, k);
      opt.value = k;
      plotSelect.appendChild(opt);
    }
    if (cur && store.numericKeys.has(cur)) plotSelect.value = cur;
    else if (!cur && store.numericKeys.size) plotSelect.value = [...store.numericKeys].sort()[0];
  }
  if (!plotPanel.open) return;
  const count = drawPlot(plotCanvas, store, view.rows, plotSelect.value, view.colors);
  $("plot-info").textContent = plotSelect.value ? fmtCount(count) + " points" : "";
}

/** A new connection: relist the numeric extras at the next draw. */
export function resetPlot() { plotKeysSeen = -1; }

plotSelect.addEventListener("change", () => { dirty.plot = true; schedule(); });
plotSelect.addEventListener("click", (e) => e.stopPropagation());
plotPanel.addEventListener("toggle", () => { dirty.plot = true; schedule(); });

/** Read the theme's colours (again: the colour scheme changed). */
export function refreshColors() {
  view.colors = themeColors();
  dirty.timeline = dirty.plot = true;
  schedule();
}
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", refreshColors);
