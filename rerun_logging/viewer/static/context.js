// The context around a record: the N records before and after it in its own stream
// (its recording and process), whatever the query and the other filters say, with
// the record marked and scrolled into view; "back" (or Esc) returns to the filtered
// view at the same place (the same selected row, the same scroll position). A
// banner says the page is in the context view and sets N.
//
// Why a walk and not an index: a stream's rows are in store order, so its
// neighbours are found by walking the store's `stream` column (a Uint16Array)
// outwards from the record and stopping after N rows each way. On one stream that
// is 2N steps; a sparse stream among others costs at most one pass over the column
// (about 1 ms at 1M rows), with nothing to keep up to date as records arrive.
// This module owns `view.context`.

import { IntVec } from "./store.js";
import { store, view, timings } from "./state.js";
import { $, el } from "./dom.js";
import { fmtCount } from "./format.js";
import { showInstead, showFiltered } from "./filtering.js";
import { captureAnchor, scrollToAnchor, scrollToPos, draw } from "./table.js";
import { posOf } from "./order.js";
import { setFollow } from "./follow.js";
import { setSelected } from "./selection.js";

/** The sizes offered for N (records each side). */
export const CONTEXT_SIZES = [10, 25, 50, 100, 200, 500, 1000];
export const DEFAULT_SIZE = 50;

const banner = $("context-banner");
let size = DEFAULT_SIZE;
let saved = null; // the filtered view left: {selected, anchor, follow}

/**
 * The store rows of stream `s` around row `i`: up to `n` before it, it, up to `n`
 * after it, in store order. Returns {rows (IntVec), before, after}.
 */
export function rowsAround(s, i, n) {
  const stream = store.stream, total = store.n;
  const rows = new IntVec(2 * n + 1);
  const a = rows.a;
  let before = 0;
  for (let j = i - 1; j >= 0 && before < n; j--) {
    if (stream[j] === s) a[n - 1 - before++] = j; // filled from the middle down
  }
  a.copyWithin(0, n - before, n);
  let w = before;
  a[w++] = i;
  for (let j = i + 1; j < total && w - before - 1 < n; j++) {
    if (stream[j] === s) a[w++] = j;
  }
  rows.n = w;
  return { rows, before, after: w - before - 1 };
}

/**
 * Show the context of store row `i` (N = `n` records each side, or the last N used).
 * From the filtered view it remembers where that view was; from the context view it
 * moves the context to `i` (back still returns to the filtered view). `timings.contextMs`:
 * the time to find the rows and draw them.
 */
export function showContext(i, n = size) {
  if (!(i >= 0 && i < store.n)) return false;
  const t0 = performance.now();
  size = n;
  if (view.context === null) {
    saved = { selected: view.selected, anchor: view.follow ? null : captureAnchor(), follow: view.follow };
  }
  setFollow(false);
  const s = store.stream[i];
  const found = rowsAround(s, i, n);
  timings.contextFindMs = performance.now() - t0;
  view.context = { row: i, stream: s, size: n, before: found.before, after: found.after,
    rows: found.rows, evicted: store.evicted };
  showInstead(contextRows);
  if (view.selected !== i) setSelected(i); // (the detail pane is rebuilt only when it changes)
  scrollToPos(posOf(i), "center");
  renderBanner();
  draw(); // shown now, not at the next frame
  timings.contextMs = performance.now() - t0;
  return true;
}

/** Back to the filtered view as it was: its selected row, its scroll position (or following). */
export function leaveContext() {
  if (view.context === null) return false;
  const back = saved;
  view.context = null;
  saved = null;
  banner.hidden = true;
  banner.textContent = "";
  showFiltered();
  if (view.selected !== back.selected) setSelected(back.selected);
  setFollow(back.follow);
  if (back.follow) return true;
  if (!back.anchor || !scrollToAnchor(back.anchor)) {
    const p = back.selected >= 0 ? posOf(back.selected) : -1;
    if (p >= 0) scrollToPos(p, "center");
  }
  return true;
}

/** Forget the context view without restoring anything (a new connection starts afresh). */
export function dropContext() {
  view.context = null;
  saved = null;
  banner.hidden = true;
  banner.textContent = "";
  showFiltered();
}

/** The context's rows, for the table (renumbered first when the oldest records were dropped). */
function contextRows() {
  const c = view.context;
  const k = store.evicted - c.evicted;
  if (k > 0) {
    const a = c.rows.a;
    let w = 0;
    for (let r = 0; r < c.rows.n; r++) if (a[r] >= k) a[w++] = a[r] - k;
    c.rows.n = w;
    c.row = c.row >= k ? c.row - k : -1;
    c.evicted = store.evicted;
  }
  return c.rows;
}

/** The banner: what is shown, N, and the way back. Log strings go in as text. */
function renderBanner() {
  const c = view.context;
  const st = store.streams[c.stream] || {};
  banner.textContent = "";
  const text = el("span", "text");
  text.setAttribute("data-testid", "context-text");
  text.append(
    el("strong", null, "Context view"),
    ": " + fmtCount(c.before) + " before and " + fmtCount(c.after) + " after the marked record in " +
      (st.application ? st.application + " " : "") + "(recording " + st.recording + ", pid " + st.pid +
      "), ignoring the query and the filters.",
  );
  const pick = el("select");
  pick.setAttribute("data-testid", "context-size");
  pick.setAttribute("aria-label", "Records shown each side");
  pick.title = "Records shown before and after";
  for (const k of new Set([...CONTEXT_SIZES, c.size].sort((x, y) => x - y))) {
    const o = el("option", null, "\u00b1" + k);
    o.value = String(k);
    pick.appendChild(o);
  }
  pick.value = String(c.size);
  pick.addEventListener("change", () => {
    const cur = view.context;
    if (cur !== null && cur.row >= 0) showContext(cur.row, Number(pick.value) || DEFAULT_SIZE);
  });
  const back = el("button", null, "\u2190 Back to the filtered view (Esc)");
  back.type = "button";
  back.setAttribute("data-testid", "context-back");
  back.addEventListener("click", leaveContext);
  banner.append(text, pick, back);
  banner.hidden = false;
}
