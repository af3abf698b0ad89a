// rerun-logging web viewer: the page's wiring and start-up. Each part has its module
// (table, toolbar, sidebar, detail, panels, download, connection, messages,
// keyboard, hooks, context, urlstate; shared state in state.js); this one runs the frame loop that
// redraws what is dirty, then connects. Every string from a log is rendered as
// text (textContent / createTextNode), never as HTML.

import { store, dirty, onFrame, schedule } from "./state.js";
import { refilter } from "./filtering.js";
import { draw, renderHead } from "./table.js";
import { renderSide } from "./sidebar.js";
import { renderDetail } from "./detail.js";
import { renderTimeline, renderPlot, refreshColors } from "./panels.js";
import { connect } from "./connection.js";
import { onMessage, resetAll } from "./messages.js";
import "./toolbar.js";
import "./keyboard.js";
import "./hooks.js";
import { facetsFrame } from "./facets.js";
import { patternsFrame } from "./patterns.js";
import { startUrlState, syncUrl } from "./urlstate.js";
import { dropContext } from "./context.js";

const SLOW_MS = 250; // the sidebar and the charts redraw at most this often on big data
const SLOW_SHARE = 4; // ...and at most a quarter of the time: their cost grows with the records
let lastSlow = 0;
let slowGap = SLOW_MS; // the wait before the next slow redraw: SLOW_MS, or SLOW_SHARE x its last cost

const BULK_RATE = 50000; // records/s appended since the last frame: a bulk load, not a live tail
const BULK_MS = 100;     // ...during which the page draws at most this often
let lastFrame = 0;
let lastTotal = 0;       // records ever appended (store.n + store.evicted) at the last frame

/**
 * Whether this frame waits: records arrive in bulk (a snapshot, a file, a burst past
 * BULK_RATE) and the last frame is less than BULK_MS old. Layout, paint and the table
 * cost 7 ms a frame at 60 frames/s: a quarter of the page's thread while 1M records
 * arrived, time taken from reading them. A live tail (10k records/s) never waits.
 */
function bulkWait(now) {
  const total = store.n + store.evicted;
  const since = now - lastFrame;
  if (total >= lastTotal && since < BULK_MS && (total - lastTotal) * 1000 > BULK_RATE * Math.max(since, 1)) {
    setTimeout(schedule, BULK_MS - since);
    return true;
  }
  lastFrame = now;
  lastTotal = total;
  return false;
}

/** One animation frame: filter, table and detail now; sidebar and charts throttled. */
function frame() {
  if (bulkWait(performance.now())) return;
  if (dirty.filter) refilter();
  if (dirty.table) draw();
  const now = performance.now();
  const slowDue = now - lastSlow > slowGap;
  if (dirty.detail) { dirty.detail = false; renderDetail(); }
  if ((dirty.timeline || dirty.plot || dirty.side) && (slowDue || store.n < 50000)) {
    lastSlow = now;
    if (dirty.side) { dirty.side = false; renderSide(); }
    if (dirty.timeline) { dirty.timeline = false; renderTimeline(); }
    if (dirty.plot) { dirty.plot = false; renderPlot(); }
    // At 1M records these take 100-200 ms: every 250 ms, they held the page's thread most of
    // the time, and records arriving fast waited for it (1M took 18.6 s to load, 14.9 s with
    // them every 3 s). A quarter of the time at most keeps the charts live and the feed read.
    slowGap = Math.max(SLOW_MS, SLOW_SHARE * (performance.now() - now));
  }
  syncUrl(); // the view into the URL (urlstate.js)
  facetsFrame(); patternsFrame(); // recomputed after this frame when the rows changed and they are open
  if (dirty.table || dirty.timeline || dirty.plot || dirty.side || dirty.filter || dirty.detail) schedule();
}

onFrame(frame);
renderHead();
refreshColors();
resetAll();
startUrlState(); // the view from the URL (urlstate.js)
connect({ onOpen: () => { dropContext(); resetAll(); }, onMessage });
