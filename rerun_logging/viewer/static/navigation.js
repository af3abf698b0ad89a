// Moving the selection through the rows shown: one row up or down (arrow keys) and
// to the next or previous error (e / E, the toolbar buttons), wrapping around.

import { ERROR_LEVEL } from "./store.js";
import { store, view } from "./state.js";
import { posOf, lowerBound } from "./order.js";
import { ROWH, viewport, geometry, firstVisiblePos, scrollToPos, select } from "./table.js";
import { setFollow } from "./follow.js";
import { setSelected } from "./selection.js";
import { flash } from "./notices.js";

/** Move the selection `d` rows (from the rows in view when nothing shown is selected). */
export function moveSelection(d) {
  const rows = view.rows, selected = view.selected;
  if (rows.n === 0) return;
  let p = selected >= 0 ? posOf(selected) : -1;
  if (p < 0) {
    p = firstVisiblePos();
    if (selected >= 0) p = Math.min(rows.n - 1, lowerBound(selected));
    else if (d < 0) p += 1;
    else p -= 1;
  }
  p = Math.max(0, Math.min(rows.n - 1, p + d));
  select(rows.a[p]);
}

/** Select the next (`dir` 1) or previous (-1) error row; false when there is none. */
export function jumpError(dir) {
  const rows = view.rows, selected = view.selected;
  const n = rows.n, a = rows.a, level = store.level;
  if (!n) return false;
  let p;
  if (selected >= 0) {
    p = posOf(selected);
    if (p < 0) p = lowerBound(selected) - (dir > 0 ? 1 : 0);
  } else {
    // from the rows in view
    const g = geometry();
    const first = Math.floor((Math.min(viewport.scrollTop, g.scrollMax) * g.scale) / ROWH);
    p = dir > 0 ? first - 1 : Math.min(n, first + Math.ceil(g.viewH / ROWH));
  }
  for (let step = 1; step <= n; step++) {
    const k = (((p + dir * step) % n) + n) % n; // wraps around
    if (level[a[k]] >= ERROR_LEVEL) {
      if (view.follow) setFollow(false);
      setSelected(a[k]);
      scrollToPos(k, "center");
      if ((dir > 0 && k <= p) || (dir < 0 && k >= p)) flash("Search wrapped around.");
      return true;
    }
  }
  flash("No error in the rows shown.");
  return false;
}
