// Running the filter: the full run over every record held (after a filter change)
// into `view.base` and `view.rows`, done at most once a frame. The merged view of
// several streams runs over the rows in time order (order.js), so its output is in
// time order too.

import { store, filter, view, dirty, timings, schedule } from "./state.js";
import { posOf, wantTimeOrder, timeOrderOfAll } from "./order.js";
import { scrollToPos } from "./table.js";
import { updateBadge } from "./follow.js";

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
  view.renderVersion++;
  dirty.table = dirty.timeline = dirty.plot = true;
  view.newCount = 0;
  updateBadge();
  if (view.follow) view.scrollBottomPending = true;
  else if (view.selected >= 0) {
    // keep the selected record in view when it still passes
    const p = posOf(view.selected);
    if (p >= 0) scrollToPos(p, "center");
  }
}
