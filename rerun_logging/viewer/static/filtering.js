// Running the filter into the rows shown, `view.base` and `view.rows` (this module
// owns them, and `view.timeRows` and `view.timeOrder`): the full run over every
// record held after a filter change (at most once a frame), and on arrival a run
// over the new records only, merged into place when the view is in time order. The
// merged view of several streams runs over the rows in time order (order.js), so
// its output is in time order too.

import { IntVec } from "./store.js";
import { store, filter, view, dirty, timings, schedule } from "./state.js";
import { posOf, wantTimeOrder, timeOrderOfAll, mergeTail } from "./order.js";
import { scrollToPos, captureAnchor, restoreAnchor, redrawEveryRow } from "./table.js";
import { markNew, clearNew } from "./follow.js";

let instead = null;        // () => IntVec: rows shown instead of the filtered ones (context.js), or null
let insteadMissed = false; // records arrived meanwhile: the filtered rows miss them
let filteredTimeOrder = false; // view.timeOrder of the filtered rows while `instead` shows

/** The filter changed: run it at the next frame. */
export function invalidateFilter() { dirty.filter = true; schedule(); }

/** Run the filter over every record held, now. */
export function refilter() {
  dirty.filter = false;
  const t0 = performance.now();
  filter.prepare(store);
  const base = view.base;
  base.clear();
  if (base.a.length < store.n) base.grow(store.n);
  if (filter.timeRange) {
    view.rows = view.timeRows;
    view.rows.clear();
    if (view.rows.a.length < store.n) view.rows.grow(store.n);
  } else view.rows = base;
  view.timeOrder = wantTimeOrder();
  if (view.timeOrder) {
    const all = timeOrderOfAll();
    filter.runIndexed(store, all.a, 0, all.n, base, view.rows);
  } else filter.run(store, 0, store.n, base, view.rows);
  timings.filterMs = performance.now() - t0;
  if (instead !== null) { filteredTimeOrder = view.timeOrder; pointAtInstead(); }
  redrawEveryRow();
  dirty.table = dirty.timeline = dirty.plot = true;
  clearNew();
  if (!view.follow && view.selected >= 0) {
    // keep the selected record in view when it still passes
    const p = posOf(view.selected);
    if (p >= 0) scrollToPos(p, "center");
  }
}

/**
 * The store rows [first, first + count) just arrived: add those passing to the rows
 * shown (nothing when a full run is pending anyway). Counts them on the "N new" badge
 * when not following.
 */
export function filterArrived(first, count) {
  if (instead !== null) { insteadMissed = true; return; }
  if (dirty.filter) return;
  if (wantTimeOrder() !== view.timeOrder) regroup();
  else appendRows(first, count);
}

/** A second stream started: every row shown changes place (time order), so run it all. */
function regroup() {
  const before = view.rows.n, kept = view.newCount;
  const anchor = !view.follow && view.selected < 0 ? captureAnchor() : null; // else: the selection stays in view
  refilter();
  if (anchor) restoreAnchor(anchor);
  markNew(kept + Math.max(0, view.rows.n - before));
}

/** Filter the new store rows [first, first + count) into the rows shown, in place. */
function appendRows(first, count) {
  const base = view.base;
  filter.extend(store);
  if (base.a.length < store.n) base.grow(Math.max(store.n, base.a.length * 2));
  if (view.rows !== base && view.rows.a.length < store.n) view.rows.grow(Math.max(store.n, view.rows.a.length * 2));
  const anchor = view.timeOrder && !view.follow ? captureAnchor() : null;
  const before = view.rows.n, baseBefore = base.n;
  filter.run(store, first, first + count, base, view.rows);
  if (view.timeOrder) {
    // rows earlier than the last shown land in the middle; the view stays on the rows it showed
    mergeTail(base, baseBefore);
    if (view.rows !== base) mergeTail(view.rows, before);
    if (anchor) restoreAnchor(anchor);
  }
  markNew(view.rows.n - before);
}

/**
 * Show the rows `rowsOf()` returns (store rows in store order: the context view,
 * context.js) instead of the filtered rows, until `showFiltered`. The filter still
 * runs on filter changes; records arriving meanwhile are filtered on the way back.
 */
export function showInstead(rowsOf) {
  if (instead === null) filteredTimeOrder = view.timeOrder;
  instead = rowsOf;
  pointAtInstead();
  redrawEveryRow();
  dirty.table = dirty.plot = true; // the timeline shows view.base, which stays
  schedule();
}

function pointAtInstead() {
  view.rows = instead();
  view.timeOrder = false;
}

/** Show the filtered rows again (after `showInstead`). */
export function showFiltered() {
  if (instead === null) return;
  instead = null;
  view.rows = filter.timeRange ? view.timeRows : view.base;
  view.timeOrder = filteredTimeOrder;
  if (insteadMissed) { insteadMissed = false; refilter(); return; }
  redrawEveryRow();
  dirty.table = dirty.plot = true;
  schedule();
}

/** Forget the rows shown (a new connection): none, in store order. */
export function resetRows() {
  instead = null;
  insteadMissed = false;
  view.base = new IntVec(1 << 16);
  view.rows = view.base;
  view.timeRows.clear();
  view.timeOrder = false;
}
