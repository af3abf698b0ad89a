// The test and benchmark hooks: `window.rerunLogging` (tests/test_browser_ui.py and
// tests/benchmarks/bench_browser.py drive and read the page through it).

import { BUCKETS, BUCKET_NAMES } from "./store.js";
import { store, filter, view, dirty, timings, api, schedule } from "./state.js";
import { $ } from "./dom.js";
import { refilter } from "./filtering.js";
import { draw, scrollToPos, select } from "./table.js";
import { setFollow } from "./follow.js";
import { searchFor, syncLevelButtons } from "./toolbar.js";
import { timeline, showTimeRange, plotState, timeAxisState } from "./panels.js";
import { columnState } from "./table.js";
import { requestDownload } from "./download.js";
import { onMessage, setMaxRecords } from "./messages.js";
import { showContext, leaveContext } from "./context.js";
import { showFacets, refreshFacets, lastFacets } from "./facets.js";
import { showPatterns, refreshPatterns, lastPatterns } from "./patterns.js";

// the facets and patterns panels (facets.js, patterns.js)
Object.assign(api, {
  showFacets,
  showPatterns,
  /** Compute and show the facets now; returns timings.facetsMs (counting and the panel). */
  refreshFacets: () => { refreshFacets(); return timings.facetsMs; },
  refreshPatterns: () => { refreshPatterns(); return timings.patternsMs; },
  /** The facets / patterns last shown (plain data), or null. */
  facets: () => lastFacets(),
  patterns: () => lastPatterns(),
});

Object.assign(api, {
  total: () => store.n,
  shown: () => view.rows.n,
  selected: () => view.selected,
  /** Set filters at once; fields left out keep their value. Returns filterMs. */
  setFilter(f = {}) {
    if ("search" in f) searchFor(f.search || "");
    if ("minLevel" in f) { filter.minLevel = f.minLevel || 0; $("min-level").value = String(filter.minLevel); }
    if ("levels" in f) {
      const lv = f.levels;
      for (let b = 0; b < BUCKETS; b++) {
        filter.levels[b] = !lv ? true : Array.isArray(lv) ? lv.includes(BUCKET_NAMES[b]) || lv.includes(b) : !!lv[BUCKET_NAMES[b]];
      }
      syncLevelButtons();
    }
    if ("entity" in f) filter.entity = f.entity || null;
    if ("recording" in f) filter.streamKey = f.recording || null;
    if ("timeRange" in f) { filter.timeRange = f.timeRange || null; showTimeRange(filter.timeRange); }
    refilter();
    dirty.side = true;
    schedule();
    return timings.filterMs;
  },
  /** Scroll so that shown row `i` is at the top (stops following). */
  scrollToRow(i) {
    setFollow(false);
    scrollToPos(Math.max(0, Math.min(view.rows.n - 1, i | 0)), "top");
    draw();
    return timings.redrawMs;
  },
  setFollow,
  select,
  shownRows: (from = 0, to = 100) => Array.from(view.rows.a.subarray(from, Math.min(to, view.rows.n))),
  message: (i) => store.message[i],
  /** Store row `i` as JSON text: its message, extras and arguments as the page holds them. */
  recordJSON: (i) => JSON.stringify({ message: store.message[i], extras: store.extras[i] ?? null, args: store.args[i] ?? null }),
  download: () => requestDownload(),
  redraw: () => { draw(); return timings.redrawMs; },
  /** CSS x (within the timeline canvas) of time `t` (ms since the epoch). */
  timelineX: (t) => timeline.xAt(t),
  timeOf: (i) => store.timeOf(i),
  /** Handle `msg` (an object) as if the server had sent it (tests). */
  inject: (msg) => onMessage({ data: JSON.stringify(msg) }),
  /** The plot as last drawn: {key, auto, count, yTicks, yStep, xTicks, xStep, domain, readout}. */
  plot: () => plotState(),
  /** The shared time axis: {domain, gaps, step, ticks, zoomDepth, segments}. */
  timeAxis: () => timeAxisState(),
  /** The table's columns in order: [{id, width}]. */
  columns: () => columnState(),
  /** The context view (context.js): show the records around store row `i`; returns timings.contextMs. */
  showContext: (i, n) => (showContext(i, n) ? timings.contextMs : null),
  leaveContext,
  /** null, or the context shown: {row, size, before, after}. */
  context: () => (view.context === null ? null
    : { row: view.context.row, size: view.context.size, before: view.context.before, after: view.context.after }),
  /** The store row of the record `seq` of recording `recording` (any pid unless given), or -1. */
  rowOf(recording, seq, pid) {
    for (let i = 0; i < store.n; i++) {
      const st = store.streams[store.stream[i]];
      if (store.seq[i] === seq && st.recording === recording && (pid === undefined || st.pid === pid)) return i;
    }
    return -1;
  },
});

/** Most records the tab keeps (default 2,000,000); the oldest are dropped past it. */
Object.defineProperty(api, "maxRecords", {
  get() { return view.maxRecords; },
  set: setMaxRecords,
  enumerable: true,
});

window.rerunLogging = api;
