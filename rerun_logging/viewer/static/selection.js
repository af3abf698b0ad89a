// The selected record: a store row (the table marks it, the detail pane shows it) or
// -1 for none. This module owns `view.selected`; the others change it through these
// functions (table.js's `select` also scrolls the row into view).

import { view, dirty, schedule } from "./state.js";

/** Select store row `i` (-1: none); the table and the detail pane redraw. */
export function setSelected(i) {
  view.selected = i;
  dirty.table = dirty.detail = true;
  schedule();
}

/** Select nothing. */
export function clearSelection() { setSelected(-1); }

/** The `k` oldest records were dropped: renumber the selected row, or clear it when it went too. */
export function evictSelection(k) {
  if (view.selected >= 0) setSelected(view.selected >= k ? view.selected - k : -1);
}
