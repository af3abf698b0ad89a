// Patterns: the rows shown grouped by their message template (the `msg` of the
// record's logging call, before its % args; a record without one groups by its
// message), with per pattern its count, its counts per level and a sparkline of when
// it happened, sorted by count. A click adds `template:"..."` to the query (Alt-click:
// `-template:"..."`). Groups are case-insensitive, a line break counting as a space,
// exactly as `template:` matches (predicates.js), so a pattern's count is the rows its
// click shows. Two passes over the rows shown, typed arrays only (a group id per
// template string id, cached); recomputed like the facets (facets.js: Deferred).

import { BUCKETS, BUCKET_NAMES, levelClass } from "./store.js";
import { store, view, timings } from "./state.js";
import { $, el } from "./dom.js";
import { fmtCount, fmtCompact, fmtTime } from "./format.js";
import { flatText } from "./predicates.js";
import { Deferred, termFor, applyTerm, rowsSignature } from "./facets.js";

const TOP = 50;       // patterns listed
const SPARK = 40;     // time buckets of a sparkline
const SVG = "http://www.w3.org/2000/svg";
const LEVEL_OF_BUCKET = [10, 20, 30, 40, 50, 5];

const panel = $("patterns"), list = $("patterns-list"), toggle = $("patterns-toggle"), info = $("patterns-info");

// ---------------------------------------------------------------------------- groups

const groups = {
  strings: null,              // the store's string table they were made for
  ofString: new Int32Array(0), // template string id -> group id + 1 (0: not yet)
  byKey: new Map(),           // lowercase flat text -> group id
  text: [],                   // group id -> its text (the first seen, line breaks as spaces)
};

function resetGroups() {
  groups.strings = store.strings;
  groups.ofString = new Int32Array(store.strings.length + 1024);
  groups.byKey = new Map();
  groups.text = [];
}

/** The group of the text `s` (made when new). */
function groupOfText(s) {
  const flat = flatText(s);
  const key = flat.toLowerCase();
  let g = groups.byKey.get(key);
  if (g === undefined) {
    g = groups.text.length;
    groups.byKey.set(key, g);
    groups.text.push(flat);
  }
  return g;
}

/** The group of store row `i` when it is not cached yet (the slow path). */
function groupOfRow(i) {
  const t = store.template[i];
  if (t < 0) return groupOfText(store.message[i]);
  if (groups.ofString.length <= t) {
    const b = new Int32Array(Math.max(t + 1, store.strings.length) + 1024);
    b.set(groups.ofString);
    groups.ofString = b;
  }
  const g = groupOfText(store.strings[t]);
  groups.ofString[t] = g + 1;
  return g;
}

// ---------------------------------------------------------------------------- computing

/**
 * The patterns of the rows shown: `{shown, total (patterns), t0, t1, patterns: [{text,
 * count, levels: [per bucket], spark: [per time bucket], term}]}`, by count.
 */
export function computePatterns() {
  const start = performance.now();
  if (groups.strings !== store.strings) resetGroups();
  const rows = view.rows, a = rows.a, n = rows.n;
  const tpl = store.template, time = store.time, bucket = store.bucket;
  let counts = new Uint32Array(groups.text.length + 1024);
  let t0 = Infinity, t1 = -Infinity;
  for (let k = 0; k < n; k++) {
    const i = a[k];
    const t = tpl[i];
    const c = t >= 0 ? groups.ofString[t] : 0;
    const g = c > 0 ? c - 1 : groupOfRow(i);
    if (g >= counts.length) { const b = new Uint32Array(groups.text.length * 2 + 1024); b.set(counts); counts = b; }
    counts[g]++;
    const tm = time[i];
    if (tm < t0) t0 = tm;
    if (tm > t1) t1 = tm;
  }
  const best = topGroups(counts, TOP);
  const slot = new Int32Array(counts.length).fill(-1);
  best.forEach((g, s) => { slot[g] = s; });
  const levels = new Uint32Array(best.length * BUCKETS), spark = new Uint32Array(best.length * SPARK);
  const scale = t1 > t0 ? SPARK / (t1 - t0) : 0;
  for (let k = 0; k < n; k++) {
    const i = a[k];
    const t = tpl[i];
    const g = t >= 0 ? groups.ofString[t] - 1 : groups.byKey.get(flatText(store.message[i]).toLowerCase());
    const s = slot[g];
    if (s < 0) continue;
    levels[s * BUCKETS + bucket[i]]++;
    spark[s * SPARK + Math.min(SPARK - 1, ((time[i] - t0) * scale) | 0)]++;
  }
  let total = 0;
  for (let g = 0; g < counts.length; g++) if (counts[g] > 0) total++;
  const patterns = best.map((g, s) => ({
    text: groups.text[g], count: counts[g],
    levels: Array.from(levels.subarray(s * BUCKETS, (s + 1) * BUCKETS)),
    spark: Array.from(spark.subarray(s * SPARK, (s + 1) * SPARK)),
    term: termFor("template", groups.text[g], false),
  }));
  timings.patternsComputeMs = performance.now() - start;
  return { shown: n, total, t0, t1, patterns };
}

/** The `n` group ids with the highest counts, best first (ties: the earlier group). */
function topGroups(counts, n) {
  const best = [];
  for (let g = 0; g < counts.length; g++) {
    const c = counts[g];
    if (c === 0 || (best.length === n && c <= counts[best[n - 1]])) continue;
    let k = best.length === n ? n - 1 : best.length;
    while (k > 0 && counts[best[k - 1]] < c) k--;
    best.splice(k, 0, g);
    if (best.length > n) best.pop();
  }
  return best;
}

// ---------------------------------------------------------------------------- the panel

let last = null;

/** A sparkline of `counts` (one per time bucket) as an inline SVG path. */
function sparkline(counts) {
  const w = 80, h = 16;
  const max = Math.max(1, ...counts);
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", String(w));
  svg.setAttribute("height", String(h));
  svg.setAttribute("viewBox", "0 0 " + w + " " + h);
  svg.setAttribute("aria-hidden", "true");
  let d = "";
  const bw = w / counts.length;
  for (let b = 0; b < counts.length; b++) {
    if (counts[b] === 0) continue;
    const y = h - Math.max(1, Math.round((counts[b] / max) * h));
    d += "M" + (b * bw).toFixed(1) + " " + h + "V" + y + "h" + Math.max(1, bw - 0.5).toFixed(1) + "V" + h + "Z";
  }
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", d);
  svg.appendChild(path);
  return svg;
}

/** Fill the panel with `result`. */
function renderPatterns(result) {
  list.textContent = "";
  info.textContent = fmtCount(result.total) + " pattern" + (result.total === 1 ? "" : "s") + " in "
    + fmtCount(result.shown) + " rows" + (result.total > result.patterns.length ? ", the " + result.patterns.length + " most frequent" : "")
    + (result.shown ? " \u00b7 " + fmtTime(result.t0) + " \u2013 " + fmtTime(result.t1) : "");
  for (const p of result.patterns) {
    const li = el("li", "pattern");
    li.setAttribute("data-testid", "pattern");
    li.setAttribute("data-count", String(p.count));
    const text = el("span", "pattern-text", p.text.length > 300 ? p.text.slice(0, 300) + "\u2026" : p.text);
    text.setAttribute("data-testid", "pattern-text");
    const count = el("span", "pattern-count", fmtCount(p.count));
    count.setAttribute("data-testid", "pattern-count");
    const lv = el("span", "pattern-levels");
    for (let b = 0; b < BUCKETS; b++) {
      if (!p.levels[b]) continue;
      const chip = el("span", "pattern-level " + levelClass(LEVEL_OF_BUCKET[b]), fmtCompact(p.levels[b]));
      chip.setAttribute("data-level", BUCKET_NAMES[b]);
      chip.title = fmtCount(p.levels[b]) + " " + BUCKET_NAMES[b];
      lv.appendChild(chip);
    }
    li.append(count, lv, sparkline(p.spark), text);
    if (p.term === null) li.title = "This pattern cannot be written as a search term";
    else {
      li.classList.add("filterable");
      li.title = "Click: add " + p.term + " to the search; Alt-click: leave it out; full text: " + p.text.slice(0, 500);
      li.addEventListener("click", (e) => applyTerm(p.term, e));
      const neg = el("button", "facet-neg");
      neg.type = "button";
      neg.title = "Leave out: add -" + p.term + " to the search";
      neg.setAttribute("data-testid", "exclude");
      neg.addEventListener("click", (e) => { e.stopPropagation(); applyTerm(p.term, e, true); });
      li.appendChild(neg);
    }
    list.appendChild(li);
  }
  if (!result.patterns.length) list.appendChild(el("li", "facet-empty", "No rows shown."));
}

/** Compute and show the patterns now; returns the result. */
export function refreshPatterns() {
  const t0 = performance.now();
  last = computePatterns();
  renderPatterns(last);
  timings.patternsMs = performance.now() - t0;
  sched.seen = rowsSignature();
  return last;
}

/** The last patterns shown (tests). */
export function lastPatterns() { return last; }

const sched = new Deferred(refreshPatterns);

/** Called by the frame loop: recompute later when the rows changed and the panel is open. */
export function patternsFrame() { sched.frame(); }

/** Open or close the patterns panel. */
export function showPatterns(on) {
  sched.open = !!on;
  panel.hidden = !on;
  toggle.setAttribute("aria-pressed", on ? "true" : "false");
  if (on) refreshPatterns();
}

toggle.addEventListener("click", () => showPatterns(panel.hidden));
