// Facets: the values of each field in the rows shown, with their counts, and a click
// on any value (here, in the detail pane, in the table) adding `field:value` to the
// query (Alt-click or the "−" button: `-field:value`). The built-in fields level,
// logger and app are counted from the store's columns; the extras from an index this
// module keeps (per key: the rows carrying it and a value id per row, typed arrays,
// extended as records arrive), so counting the rows shown is a mask over the store's
// rows and one pass over each key's arrays: exact, and tens of milliseconds at 1M
// records. Nothing is computed while the panel is closed; when open, it recomputes
// after the frame that changed the rows, at most every THROTTLE_MS on big data (the
// index catches up CHUNK records per task, so opening it at 1M never freezes the page).

import { IntVec } from "./store.js";
import { store, filter, view, timings } from "./state.js";
import { $, el } from "./dom.js";
import { fmtCount, extraText } from "./format.js";
import { formatTerm, quoteValue, BUILTIN_FIELDS, HAS_BUILTINS } from "./query.js";
import { addQueryTerm } from "./toolbar.js";
import { flatText } from "./predicates.js";

const TOP = 8;              // values listed per field
const MAX_FIELDS = 40;      // extra keys listed: the most common in the rows shown
const MAX_KEYS = 2000;      // extra keys indexed
const MAX_VALUES = 20000;   // distinct values indexed per key; the later new ones count as "other"
const OTHER = 0;            // value id of objects, arrays and values past MAX_VALUES
export const THROTTLE_MS = 250;
const CHUNK = 100_000;      // records indexed per task while the panel catches up (it stays responsive)

const panel = $("facets"), list = $("facets-list"), toggle = $("facets-toggle"), info = $("facets-info");

// ---------------------------------------------------------------------------- terms

/**
 * The query term that finds `value` in `field` (without "-"), or null when the query
 * cannot say it: an extra shadowed by a built-in field, an object, a line break (the
 * search box is one line).
 */
export function termFor(field, value, extra = true) {
  if (field === "" || (extra && Object.hasOwn(BUILTIN_FIELDS, field))) return null;
  if (value !== null && typeof value === "object") return null;
  const text = value === null ? "null" : String(value);
  if (/[\r\n]/.test(text)) return null;
  return formatTerm(field, text);
}

/** Add `term` to the query: negated on Alt-click (or `negate`). */
export function applyTerm(term, e, negate = false) {
  if (term === null) return;
  if (e) e.preventDefault();
  addQueryTerm(term, negate || !!(e && e.altKey));
}

/** The `has:key` term of an extra (null when `has:` means a built-in of that name). */
export function hasTerm(key) {
  return key === "" || HAS_BUILTINS.includes(key) ? null : "has:" + quoteValue(key);
}

/**
 * Make `node` (showing a value) add `term` on click, Alt-click its exclusion; with
 * `minus`, a small "−" button after it excludes too. Returns a fragment of the node
 * (and its button) to append; no term: the node left as it is.
 */
export function makeFilterable(node, term, minus = true) {
  const frag = document.createDocumentFragment();
  frag.appendChild(node);
  if (term === null) return frag;
  node.classList.add("filterable");
  node.setAttribute("data-term", term);
  node.title = "Click: add " + term + " to the search; Alt-click: leave it out (-" + term + ")";
  node.addEventListener("click", (e) => applyTerm(term, e));
  if (!minus) return frag;
  const neg = el("button", "facet-neg");
  neg.type = "button";
  neg.title = "Leave out: add -" + term + " to the search";
  neg.setAttribute("aria-label", "Leave out " + term);
  neg.setAttribute("data-testid", "exclude");
  neg.addEventListener("click", (e) => { e.stopPropagation(); applyTerm(term, e, true); });
  frag.appendChild(neg);
  return frag;
}

/** The term of a table cell of store row `i`: level, app, pid, logger, an extra, the message's template. */
function cellTerm(i, cell) {
  const S = store.strings;
  if (cell.classList.contains("c-level")) return levelTerm(store.level[i], S[store.levelName[i]]);
  if (cell.classList.contains("c-logger")) return store.logger[i] >= 0 ? termFor("logger", S[store.logger[i]], false) : null;
  if (cell.classList.contains("c-msg")) return templateTerm(i);
  const st = store.streams[store.stream[i]];
  if (cell.classList.contains("c-app")) return st ? termFor("app", st.application ?? st.recording, false) : null;
  if (cell.classList.contains("c-pid")) return Number.isNaN(store.process[i]) ? null : "pid:" + store.process[i];
  if (cell.classList.contains("c-x")) {
    const cells = cell.parentNode._cells;
    const k = cells && cells.xs ? cells.xs.indexOf(cell) : -1; // table.js: xs in view.extraCols order
    const key = view.extraCols[k], ex = store.extras[i];
    return key === undefined || ex === undefined || ex[key] === undefined ? null : termFor(key, ex[key]);
  }
  return null;
}

function levelTerm(level, name) {
  return name ? termFor("level", name.toLowerCase(), false) : "level:" + level;
}

/** The `template:` term of store row `i` (its message when it has no template). */
function templateTerm(i) {
  const t = store.template[i];
  return termFor("template", flatText(t >= 0 ? store.strings[t] : store.message[i]), false);
}

/**
 * The term of a field of store row `i` as the detail pane names it (level, logger,
 * template, thread, process, task, source, application, recording), or null.
 */
export function rowTerm(i, name) {
  const S = store.strings, id = (col) => (store[col][i] >= 0 ? S[store[col][i]] : null);
  const st = store.streams[store.stream[i]];
  const str = (field, v) => (v === null || v === undefined ? null : termFor(field, v, false));
  switch (name) {
    case "level": return levelTerm(store.level[i], id("levelName"));
    case "logger": return str("logger", id("logger"));
    case "template": return templateTerm(i);
    case "thread": return Number.isNaN(store.thread[i]) ? str("thread", id("threadName")) : "thread:" + store.thread[i];
    case "process": return Number.isNaN(store.process[i]) ? null : "pid:" + store.process[i];
    case "task": return str("task", id("task"));
    case "source": return str("file", id("path"));
    case "application": return st ? str("app", st.application) : null;
    case "recording": return st ? str("app", st.recording) : null;
    default: return null;
  }
}

// Shift-click on a table cell: filter to its value (Shift+Alt: leave it out). Capture
// phase: before the table's own click (which selects the row).
$("inner").addEventListener("click", (e) => {
  if (!e.shiftKey) return;
  const cell = e.target.closest(".c"), r = e.target.closest(".row");
  if (!cell || !r || !(r._row >= 0)) return;
  const term = cellTerm(r._row, cell);
  if (term !== null) { window.getSelection()?.removeAllRanges(); applyTerm(term, e); }
}, true);

// ---------------------------------------------------------------------------- the extras index

class KeyIndex {
  constructor(key) {
    this.key = key;
    this.rows = new IntVec(256); // absolute row (store row + store.evicted) of each record carrying the key
    this.vals = new IntVec(256); // its value id (OTHER: not tracked)
    this.ids = new Map();        // value -> id (numbers, strings, booleans, null apart)
    this.values = [undefined];   // id -> value
    this.start = 0;              // first entry not evicted
  }

  add(abs, v) {
    let id = OTHER;
    if (v === null || typeof v !== "object") {
      id = this.ids.get(v);
      if (id === undefined) {
        id = this.values.length < MAX_VALUES ? this.values.length : OTHER;
        if (id !== OTHER) { this.ids.set(v, id); this.values.push(v); }
      }
    }
    this.rows.push(abs);
    this.vals.push(id);
  }

  /** Skip the entries of evicted rows (and drop them once they are half). */
  dropBefore(abs) {
    const r = this.rows.a;
    while (this.start < this.rows.n && r[this.start] < abs) this.start++;
    if (this.start > 4096 && this.start * 2 > this.rows.n) {
      const n = this.rows.n - this.start;
      this.rows.a.copyWithin(0, this.start, this.rows.n);
      this.vals.a.copyWithin(0, this.start, this.vals.n);
      this.rows.n = this.vals.n = n;
      this.start = 0;
    }
  }
}

const index = { gen: null, done: 0, keys: new Map() };

/**
 * Bring the index up to the records held (all of them again after a new connection),
 * at most `limit` records now; says whether it is up to date.
 */
function syncIndex(limit = Infinity) {
  if (index.gen !== store.bucketCounts || store.evicted + store.n < index.done) {
    index.gen = store.bucketCounts; // replaced only when the store is cleared
    index.done = 0;
    index.keys = new Map();
  }
  const ev = store.evicted, extras = store.extras, keys = index.keys;
  const from = Math.max(index.done, ev), end = Math.min(ev + store.n, from + limit);
  for (let abs = from; abs < end; abs++) {
    const ex = extras[abs - ev];
    if (ex === undefined) continue;
    for (const k in ex) {
      let kx = keys.get(k);
      if (kx === undefined) {
        if (keys.size >= MAX_KEYS) continue;
        kx = new KeyIndex(k);
        keys.set(k, kx);
      }
      kx.add(abs, ex[k]);
    }
  }
  index.done = end;
  return end === ev + store.n;
}

// ---------------------------------------------------------------------------- counting

let mask = new Uint8Array(0);
let levelCounts = new Uint32Array(65536), levelRow = new Int32Array(65536);

/** The `n` values of `counts` (id -> count) with the highest counts, best first. */
function top(counts, n, skip = -1) {
  const best = [];
  for (let id = 0; id < counts.length; id++) {
    const c = counts[id];
    if (c === 0 || id === skip) continue;
    if (best.length === n && c <= best[n - 1][1]) continue;
    let k = best.length === n ? n - 1 : best.length;
    while (k > 0 && best[k - 1][1] < c) k--;
    best.splice(k, 0, [id, c]);
    if (best.length > n) best.pop();
  }
  return best;
}

/** A facet: `{field, rows (records carrying it), distinct, values: [{text, count, term}], other}`. */
function facet(field, counts, n, valueOf, skip = -1) {
  let rows = 0, distinct = 0;
  for (let id = 0; id < counts.length; id++) if (counts[id] > 0) { rows += counts[id]; if (id !== skip) distinct++; }
  const values = top(counts, n, skip).map(([id, count]) => ({ count, ...valueOf(id) }));
  return { field, rows, distinct, values, other: skip >= 0 ? counts[skip] : 0 };
}

/** Every facet of the rows shown (exact counts). */
export function computeFacets() {
  const t0 = performance.now();
  syncIndex();
  const rows = view.rows, a = rows.a, n = rows.n, S = store.strings;
  const all = n === store.n; // every row shown: no mask needed
  if (!all) {
    if (mask.length < store.n) mask = new Uint8Array(Math.max(store.n, mask.length * 2));
    mask.fill(0, 0, store.n);
    for (let k = 0; k < n; k++) mask[a[k]] = 1;
  }
  const level = store.level, logger = store.logger, stream = store.stream;
  const loggers = new Uint32Array(S.length + 1), streams = new Uint32Array(store.streams.length);
  levelCounts.fill(0);
  for (let k = 0; k < n; k++) {
    const i = a[k], lv = level[i];
    levelCounts[lv]++;
    levelRow[lv] = i;
    loggers[logger[i] + 1]++;
    streams[stream[i]]++;
  }
  const out = [];
  out.push(facet("level", levelCounts, TOP, (lv) => {
    const name = S[store.levelName[levelRow[lv]]];
    return { text: name ? name : String(lv), term: levelTerm(lv, name) };
  }));
  out.push(facet("logger", loggers, TOP, (id) => ({
    text: id === 0 ? "(none)" : S[id - 1], term: id === 0 ? null : termFor("logger", S[id - 1], false),
  })));
  out.push(appFacet(streams));
  const ev = store.evicted, extras = [];
  for (const kx of index.keys.values()) {
    kx.dropBefore(ev);
    const counts = new Uint32Array(kx.values.length);
    const pr = kx.rows.a, pv = kx.vals.a, m = kx.rows.n;
    if (all) for (let j = kx.start; j < m; j++) counts[pv[j]]++;
    else for (let j = kx.start; j < m; j++) if (mask[pr[j] - ev] === 1) counts[pv[j]]++;
    const f = facet(kx.key, counts, TOP, (id) => {
      const v = kx.values[id];
      return { text: typeof v === "string" ? v : extraText(v), term: termFor(kx.key, v) };
    }, OTHER);
    f.extra = true;
    f.capped = kx.values.length >= MAX_VALUES;
    if (f.rows > 0) extras.push(f);
  }
  extras.sort((x, y) => y.rows - x.rows || (x.field < y.field ? -1 : 1));
  const result = { shown: n, facets: out.filter((f) => f.rows > 0).concat(extras.slice(0, MAX_FIELDS)),
    moreFields: Math.max(0, extras.length - MAX_FIELDS) };
  timings.facetsComputeMs = performance.now() - t0;
  return result;
}

/** The app facet: streams counted, merged by application name (what `app:` matches). */
function appFacet(streams) {
  const byName = new Map();
  for (let s = 0; s < streams.length; s++) {
    if (streams[s] === 0) continue;
    const st = store.streams[s];
    const name = String(st.application ?? st.recording);
    byName.set(name, (byName.get(name) || 0) + streams[s]);
  }
  const names = [...byName.keys()];
  const counts = Uint32Array.from(names, (x) => byName.get(x));
  return facet("app", counts, TOP, (id) => ({ text: names[id], term: termFor("app", names[id], false) }));
}

// ---------------------------------------------------------------------------- the panel

let last = null; // the last result shown

/** Fill the panel with `result`. */
function renderFacets(result) {
  list.textContent = "";
  info.textContent = fmtCount(result.shown) + " rows" + (result.moreFields ? ", " + result.moreFields + " more keys" : "");
  for (const f of result.facets) {
    const box = el("div", "facet");
    box.setAttribute("data-testid", "facet");
    box.setAttribute("data-field", f.field);
    const head = el("div", "facet-head");
    const name = el("span", "facet-name", f.field);
    head.append(f.extra ? makeFilterable(name, hasTerm(f.field), false) : name, el("span", "facet-meta", fmtCount(f.rows) + " \u00b7 " + fmtCount(f.distinct)
      + (f.capped ? "+" : "") + " value" + (f.distinct === 1 ? "" : "s")));
    box.appendChild(head);
    const ul = el("ul", "facet-values");
    for (const v of f.values) {
      const li = el("li", "facet-value");
      li.setAttribute("data-testid", "facet-value");
      li.setAttribute("data-count", String(v.count));
      const text = el("span", "facet-text", v.text === "" ? "\"\"" : v.text.length > 120 ? v.text.slice(0, 120) + "\u2026" : v.text);
      const bar = el("span", "facet-count", fmtCount(v.count));
      li.append(makeFilterable(text, v.term), bar);
      if (v.term === null) li.title = "This value cannot be written as a search term";
      ul.appendChild(li);
    }
    const rest = f.rows - f.values.reduce((s, v) => s + v.count, 0);
    if (rest > 0) {
      const more = f.distinct - f.values.length;
      const li = el("li", "facet-rest", "+ " + fmtCount(rest) + " in " + (more > 0 ? fmtCount(more) + " more value" + (more === 1 ? "" : "s") : "")
        + (f.other ? (more > 0 ? ", " : "") + "objects or values past " + fmtCount(MAX_VALUES) : ""));
      li.setAttribute("data-testid", "facet-rest");
      ul.appendChild(li);
    }
    box.appendChild(ul);
    list.appendChild(box);
  }
  if (!result.facets.length) list.appendChild(el("div", "facet-empty", "No rows shown."));
}

/** Compute and show the facets now (the panel open or not); returns the result. */
export function refreshFacets() {
  const t0 = performance.now();
  last = computeFacets();
  renderFacets(last);
  timings.facetsMs = performance.now() - t0;
  sched.seen = rowsSignature();
  return last;
}

/** The last facets shown (tests). */
export function lastFacets() { return last; }

// ---------------------------------------------------------------------------- scheduling

/** What the rows shown depend on: when it changes, the panels recompute. */
export function rowsSignature() {
  const r = view.rows;
  return [store.version, store.evicted, store.n, r.n, r.n ? r.a[0] : -1, r.n ? r.a[r.n - 1] : -1, timings.filterMs,
    filter.search, filter.minLevel, filter.levels.join(), filter.entity, String(filter.streamKey),
    String(filter.timeRange)].join("|");
}

/**
 * A panel's recompute, off the frame that changed the rows: `frame()` (called every
 * frame) starts a timer when the rows changed since the last run; on big data the run
 * waits THROTTLE_MS since the previous one, or four times what that one cost (records
 * streaming in never keep the page busy with a panel more than a fifth of the time).
 */
export class Deferred {
  constructor(run) {
    this.run = run; this.seen = ""; this.timer = 0; this.lastRun = -Infinity; this.cost = 0; this.open = false;
  }

  frame() {
    if (!this.open || this.timer || rowsSignature() === this.seen) return;
    const gap = Math.max(THROTTLE_MS, 4 * this.cost);
    const wait = store.n < 50000 ? 0 : Math.max(0, gap - (performance.now() - this.lastRun));
    this.timer = setTimeout(() => {
      this.timer = 0;
      const t0 = performance.now();
      this.lastRun = t0;
      this.run();
      this.cost = performance.now() - t0;
    }, wait);
  }
}

/** The deferred run: index a chunk more while behind (saying so), else count and show. */
function runFacets() {
  if (!sched.open) return;
  if (!syncIndex(CHUNK)) {
    info.textContent = "indexing the extras: " + Math.floor((100 * (index.done - store.evicted)) / Math.max(1, store.n)) + " %";
    sched.timer = setTimeout(() => { sched.timer = 0; runFacets(); }, 0);
    return;
  }
  refreshFacets();
}

const sched = new Deferred(runFacets);

/** Called by the frame loop: recompute later when the rows changed and the panel is open. */
export function facetsFrame() { sched.frame(); }

/** Open or close the facets panel. */
export function showFacets(on) {
  sched.open = !!on;
  panel.hidden = !on;
  toggle.setAttribute("aria-pressed", on ? "true" : "false");
  if (on && !sched.timer) runFacets();
}

toggle.addEventListener("click", () => showFacets(panel.hidden));
