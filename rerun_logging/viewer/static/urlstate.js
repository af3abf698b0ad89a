// The view in the page's URL, so a reload, back / forward, or a link sent to someone
// shows the same view: the fragment carries the query, the selected recording, the
// time range and the selected row, e.g.
//
//   #q=level>=warning&rec=4242:7f3c...&t=1732950000000,1732950060000&row=17:4242:7f3c...
//
// `rec` is `pid:recording`, `row` is `seq:pid:recording` (a record's sequence number
// in its stream: stable across reloads, unlike a store row), `t` is `from,to` in ms
// since the epoch. The fragment never goes to the server.
//
// The state is read back from the page after each frame (`syncUrl`, app.js), so
// every way of changing it (toolbar, sidebar, timeline, hooks) lands in the URL. A
// change of the recording, the time range or a query set at once is a new history
// entry; typing in the search box makes one entry for the whole typing, replaced as
// it goes; moving the selection replaces the current entry (back does not walk the
// rows). In-place changes are written at most every 300 ms: each history call costs
// milliseconds, and holding `j` down would otherwise make one per frame. On load and on back / forward the fragment is applied; a row that has not
// arrived yet is selected when it does (the newly arrived rows are scanned).

import { store, filter, view, dirty, schedule } from "./state.js";
import { searchInput, searchFor } from "./toolbar.js";
import { setTimeRange } from "./panels.js";
import { invalidateFilter } from "./filtering.js";
import { scrollToPos } from "./table.js";
import { posOf } from "./order.js";
import { setFollow } from "./follow.js";
import { setSelected, clearSelection } from "./selection.js";
import { leaveContext } from "./context.js";

let last = null;        // the view's fragment when last looked at (in the URL, or in `deferred`)
let deferred = null;    // a fragment waiting to replace the current entry
let deferTimer = 0;
const REPLACE_MS = 300; // in-place changes are written at most this often: a history call costs
                        // milliseconds, and Chrome ignores them past a rate
let typing = false;     // a typing session in the search box has its history entry
let pending = null;     // {seq, pid, recording} of a row to select once it arrives
let scanned = 0;        // store rows already searched for `pending`
let scannedAt = { version: 0, evicted: 0 }; // the store when `scanned` was taken

// ---------------------------------------------------------------------------- the fragment

/** A value for the fragment: `&`, `=`, `#`, `%` and the like escaped; `:` `,` kept. */
function enc(v) { return encodeURIComponent(v).replace(/%3A/gi, ":").replace(/%2C/gi, ","); }

function dec(v) {
  try { return decodeURIComponent(v.replace(/\+/g, " ")); } catch { return v; }
}

/** A pid as the server sends it: a number, or null ("null"). */
function pidOf(text) {
  if (text === "null") return null;
  return /^-?\d+$/.test(text) ? Number(text) : text;
}

/** "a:b:rest" split at its first `count` colons (the recording id may hold colons). */
function splitColons(text, count) {
  const out = [];
  let rest = text;
  for (let k = 0; k < count; k++) {
    const at = rest.indexOf(":");
    if (at < 0) return null;
    out.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  out.push(rest);
  return out;
}

/** The fragment `hash` (with or without "#") as {q, rec, t, row}; what is missing or wrong is null. */
export function parseFragment(hash) {
  const state = { q: "", rec: null, t: null, row: null };
  const text = hash.startsWith("#") ? hash.slice(1) : hash;
  for (const part of text.split("&")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const key = part.slice(0, eq), value = dec(part.slice(eq + 1));
    if (key === "q") state.q = value;
    else if (key === "rec") {
      const p = splitColons(value, 1);
      if (p) state.rec = [p[1], pidOf(p[0])];
    } else if (key === "t") {
      const [a, b] = value.split(",").map(Number);
      if (Number.isFinite(a) && Number.isFinite(b) && a <= b) state.t = [a, b];
    } else if (key === "row") {
      const p = splitColons(value, 2);
      if (p && /^\d+$/.test(p[0])) state.row = { seq: Number(p[0]), pid: pidOf(p[1]), recording: p[2] };
    }
  }
  return state;
}

/** The fragment of `state` ({q, rec, t, row}), without "#". */
export function fragmentOf(state) {
  const parts = [];
  if (state.q) parts.push("q=" + enc(state.q));
  if (state.rec) parts.push("rec=" + enc(String(state.rec[1]) + ":" + state.rec[0]));
  if (state.t) parts.push("t=" + enc(state.t[0] + "," + state.t[1]));
  if (state.row) parts.push("row=" + enc(state.row.seq + ":" + String(state.row.pid) + ":" + state.row.recording));
  return parts.join("&");
}

/** The selected row's stable name, {seq, pid, recording}, or null. */
function selectedName() {
  const i = view.selected;
  if (i < 0 || i >= store.n) return null;
  const st = store.streams[store.stream[i]];
  return st ? { seq: store.seq[i], pid: st.pid, recording: st.recording } : null;
}

/** The selected row's name, or the one still awaited, or null. */
function rowName() { return selectedName() ?? pending; }

/** The page's view now, as {q, rec, t, row}. */
function currentState() {
  return { q: searchInput.value, rec: filter.streamKey, t: filter.timeRange, row: rowName() };
}

// ---------------------------------------------------------------------------- page -> URL

function urlWith(fragment) {
  return location.pathname + location.search + (fragment ? "#" + fragment : "");
}

/** After each frame: write the view into the URL when it changed (a new entry or in place). */
export function syncUrl() {
  if (pending !== null) findPending();
  if (pending !== null && view.selected >= 0) pending = null; // the user picked another row
  const state = currentState();
  const fragment = fragmentOf(state);
  if (fragment === last) return;
  const before = parseFragment(last ?? "");
  last = fragment;
  const inBox = document.activeElement === searchInput && before.q !== state.q;
  if (sameButRow(before, state) || (inBox && typing)) { replaceSoon(fragment); return; }
  typing = inBox;
  flushReplace();
  history.pushState(null, "", urlWith(fragment));
}

/** Replace the current entry with `fragment` within REPLACE_MS (later calls before then: the latest). */
function replaceSoon(fragment) {
  deferred = fragment;
  if (!deferTimer) deferTimer = setTimeout(flushReplace, REPLACE_MS);
}

/** Write the waiting in-place change now (before a new entry, or when the page goes). */
function flushReplace() {
  if (deferTimer) { clearTimeout(deferTimer); deferTimer = 0; }
  if (deferred === null) return;
  history.replaceState(null, "", urlWith(deferred));
  deferred = null;
}

function sameKey(a, b) {
  if (a === null || b === null) return a === b;
  return String(a[0]) === String(b[0]) && String(a[1]) === String(b[1]);
}

/** Only the selected row differs between two states. */
function sameButRow(a, b) {
  return a.q === b.q && sameKey(a.rec, b.rec) && sameKey(a.t, b.t);
}

// ---------------------------------------------------------------------------- URL -> page

/** Apply the fragment `hash` to the page: query, recording, time range, row. */
export function applyFragment(hash) {
  const state = parseFragment(hash);
  leaveContext();
  if (searchInput.value !== state.q) searchFor(state.q);
  if (!sameKey(filter.streamKey, state.rec)) {
    filter.streamKey = state.rec;
    dirty.side = true;
    invalidateFilter();
  }
  if (!sameKey(filter.timeRange, state.t)) setTimeRange(state.t);
  scanned = 0;
  pending = state.row !== null && !sameRow(selectedName(), state.row) ? state.row : null;
  if (state.row === null || pending !== null) { if (view.selected >= 0) clearSelection(); }
  typing = false;
  deferred = null;
  flushReplace(); // (cancels the timer)
  last = fragmentOf(currentState());
  if ((hash.startsWith("#") ? hash.slice(1) : hash) !== last) history.replaceState(null, "", urlWith(last));
  schedule();
}

function sameRow(a, b) {
  return a !== null && b !== null && a.seq === b.seq && String(a.pid) === String(b.pid) && a.recording === b.recording;
}

/** Look for the awaited row among the rows arrived since the last look; select it when found. */
function findPending() {
  const s = store.streamIndex.get(pending.recording + "\u0000" + pending.pid);
  if (s === undefined) return;
  if (store.version < scannedAt.version || scanned > store.n) scanned = 0; // a new connection's store
  else scanned = Math.max(0, scanned - (store.evicted - scannedAt.evicted)); // the oldest were dropped
  const seq = store.seq, stream = store.stream, n = store.n, want = pending.seq;
  let found = -1;
  for (let j = scanned; j < n; j++) {
    if (seq[j] === want && stream[j] === s) { found = j; break; }
  }
  scanned = n;
  scannedAt = { version: store.version, evicted: store.evicted };
  if (found < 0) return;
  pending = null;
  setFollow(false);
  setSelected(found);
  const p = posOf(found);
  if (p >= 0) scrollToPos(p, "center");
}

/** Start: apply the URL's fragment, then follow back / forward and edits of the fragment. */
export function startUrlState() {
  applyFragment(location.hash);
  const onNavigate = () => {
    const fragment = location.hash.startsWith("#") ? location.hash.slice(1) : location.hash;
    if (fragment !== last) applyFragment(location.hash);
  };
  window.addEventListener("popstate", onNavigate);
  window.addEventListener("hashchange", onNavigate);
  window.addEventListener("pagehide", flushReplace);
  searchInput.addEventListener("input", schedule); // a query that does not parse runs no filter, but is in the URL
  searchInput.addEventListener("change", () => { typing = false; });
  searchInput.addEventListener("blur", () => { typing = false; });
}
