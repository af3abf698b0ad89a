// The order of the rows shown. One stream (or one recording selected) shows its rows
// in arrival order, which is store row order. "All recordings (merged)" with more
// than one stream holding records shows them in time order (`time` ms, then `ns`),
// equal times in arrival order: so two recording files opened together interleave
// by time instead of showing one file after the other.
//
// For the merged view this module keeps `order`, every store row in time order,
// up to date as batches arrive (a batch already in order is appended, one out of
// order is sorted and merged in from where it lands), so the filter runs over it
// and its output is already in order: no sort per filter change. The rows shown,
// `view.base` and `view.rows`, are kept in order the same way on arrival.
// Positions are found by binary search with the same comparison.

import { store, filter, view } from "./state.js";

let order = new Int32Array(0); // store rows in time order (valid only when `orderValid`)
let orderN = 0;
let orderValid = false;

/** True when the rows shown must be in time order (merged view, several streams held). */
export function wantTimeOrder() {
  return filter.streamKey === null && store.heldStreams() > 1;
}

/** `before(x, y)`: store row x comes before store row y in time order (ties: arrival). */
function timeBefore() {
  const time = store.time, ns = store.ns; // taken now: the store swaps its arrays as it grows
  return (x, y) => {
    const tx = time[x], ty = time[y];
    if (tx !== ty) return tx < ty;
    const nx = ns[x], ny = ns[y];
    if (nx !== ny) return nx < ny;
    return x < y;
  };
}

/** Position of store row `i` in the rows shown, or -1. */
export function posOf(i) {
  const p = lowerBound(i);
  return p < view.rows.n && view.rows.a[p] === i ? p : -1;
}

/** First position in the rows shown whose row does not come before store row `i`. */
export function lowerBound(i) {
  const rows = view.rows;
  const a = rows.a;
  if (!view.timeOrder) {
    let lo = 0, hi = rows.n;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid] < i) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  const before = timeBefore();
  let lo = 0, hi = rows.n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(a[mid], i)) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// ---------------------------------------------------------------------------- sorting

/**
 * Sort a[from, to) into time order: a natural merge sort (the ascending runs already
 * there are merged pairwise), so data in order costs one O(n) pass and two sorted
 * runs (two files) one merge. Returns false when it was already in order.
 */
export function sortRange(a, from, to) {
  const before = timeBefore();
  let bounds = [0];
  for (let k = from + 1; k < to; k++) if (before(a[k], a[k - 1])) bounds.push(k - from);
  if (bounds.length === 1) return false;
  bounds.push(to - from);
  let src = a.slice(from, to), dst = new Int32Array(to - from);
  while (bounds.length > 2) {
    const next = [0];
    for (let r = 0; r + 1 < bounds.length; r += 2) {
      const l = bounds[r], m = bounds[r + 1];
      const e = r + 2 < bounds.length ? bounds[r + 2] : m;
      mergeRuns(src, l, m, e, dst, before);
      next.push(e);
    }
    bounds = next;
    const t = src; src = dst; dst = t;
  }
  a.set(src, from);
  return true;
}

/** Merge the sorted runs x[l, m) and x[m, e) into y[l, e) (stable: left first on ties). */
function mergeRuns(x, l, m, e, y, before) {
  let i = l, j = m, w = l;
  while (i < m && j < e) {
    if (before(x[j], x[i])) y[w++] = x[j++]; else y[w++] = x[i++];
  }
  if (i < m) y.set(x.subarray(i, m), w);
  else if (j < e) y.set(x.subarray(j, e), w);
}

/**
 * vec[0, from) is in time order and rows were appended after it: put the whole in
 * time order. The new rows are sorted, then merged in from the first position they
 * land at (appending when they all come after: the usual case, O(new rows)).
 * Returns the first position that changed other than by appending (vec.n: none).
 */
export function mergeTail(vec, from) {
  const a = vec.a, n = vec.n;
  if (from >= n) return n;
  sortRange(a, from, n);
  const before = timeBefore();
  if (from === 0 || !before(a[from], a[from - 1])) return n;
  // first position of the old rows that comes after the first new row
  let lo = 0, hi = from;
  const first = a[from];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (before(first, a[mid])) hi = mid; else lo = mid + 1;
  }
  const old = a.slice(lo, from); // merge old[...] and a[from, n) into a[lo, n)
  let i = 0, j = from, w = lo;
  const m = old.length;
  while (i < m && j < n) {
    if (before(a[j], old[i])) a[w++] = a[j++]; else a[w++] = old[i++];
  }
  if (i < m) a.set(old.subarray(i, m), w);
  return lo;
}

// ---------------------------------------------------------------------------- every row in time order

/** Every store row in time order (built on first use, then kept up to date). */
export function timeOrderOfAll() {
  if (!orderValid) {
    if (order.length < store.n) order = new Int32Array(Math.max(1024, store.n * 2));
    for (let i = 0; i < store.n; i++) order[i] = i;
    orderN = store.n;
    sortRange(order, 0, orderN);
    orderValid = true;
  }
  return { a: order, n: orderN };
}

/** Rows [first, first + count) were appended to the store. */
export function orderAppend(first, count) {
  if (!orderValid) return;
  if (order.length < orderN + count) {
    const b = new Int32Array(Math.max(orderN + count, order.length * 2));
    b.set(order.subarray(0, orderN));
    order = b;
  }
  for (let j = 0; j < count; j++) order[orderN + j] = first + j;
  const vec = { a: order, n: orderN + count };
  mergeTail(vec, orderN);
  orderN = vec.n;
}

/** The store dropped its oldest `k` rows (row i became i - k). */
export function orderEvict(k) {
  if (!orderValid) return;
  let w = 0;
  for (let r = 0; r < orderN; r++) {
    const i = order[r];
    if (i >= k) order[w++] = i - k;
  }
  orderN = w;
}

/** Forget the order (a new connection). */
export function orderReset() {
  orderValid = false;
  orderN = 0;
}
