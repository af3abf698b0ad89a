// The toolbar: the search box (a query, query.js: a wrong one is shown under the box
// and the filter keeps the last good one), the level buttons (with their counts), the
// minimum level and the error navigation buttons. Each change invalidates the filter.

import { LEVELS, BUCKETS, BUCKET_NAMES } from "./store.js";
import { store, filter } from "./state.js";
import { $, el } from "./dom.js";
import { fmtCount, fmtCompact } from "./format.js";
import { invalidateFilter } from "./filtering.js";
import { jumpError } from "./navigation.js";
import { parseQuery } from "./query.js";

export const searchInput = $("search");
const queryError = $("query-error");
const levelButtons = [];
const levelsBox = $("levels");
const LEVEL_VARS = ["lv-debug", "lv-info", "lv-warning", "lv-error", "lv-critical", "lv-trace"];

for (let b = 0; b < BUCKETS; b++) {
  const name = BUCKET_NAMES[b];
  const btn = el("button");
  btn.type = "button";
  btn.setAttribute("data-testid", "level-" + name);
  btn.setAttribute("aria-pressed", "true");
  btn.title = b < LEVELS.length ? "Show " + name + " records" : "Show records of other (custom) levels";
  const label = el("span", "name " + LEVEL_VARS[b], b < LEVELS.length ? name : "other");
  const n = el("span", "n", "0");
  btn.append(label, n);
  btn._n = n;
  btn.addEventListener("click", (e) => {
    if (e.altKey || e.metaKey) {
      // solo this level
      for (let k = 0; k < BUCKETS; k++) filter.levels[k] = k === b;
    } else filter.levels[b] = !filter.levels[b];
    syncLevelButtons();
    invalidateFilter();
  });
  levelButtons.push(btn);
  levelsBox.appendChild(btn);
}

/** Show each level button pressed or not, as the filter says. */
export function syncLevelButtons() {
  for (let b = 0; b < BUCKETS; b++) {
    levelButtons[b].setAttribute("aria-pressed", filter.levels[b] ? "true" : "false");
    levelButtons[b].title = levelTitle(b);
  }
}

/** The record count of each level on its button (the "other" button only when used):
 * `counts` per level bucket (sidebar.js: of the recording selected), else of all held. */
export function renderLevelCounts(counts = store.bucketCounts) {
  for (let b = 0; b < BUCKETS; b++) {
    levelButtons[b]._n.textContent = fmtCompact(counts[b]);
    levelButtons[b]._n.title = fmtCount(counts[b]) + (counts === store.bucketCounts ? " records held" : " records of the recording selected");
    levelButtons[b].hidden = b === BUCKETS - 1 && store.bucketCounts[b] === 0 && filter.levels[b];
    levelButtons[b].title = levelTitle(b);
  }
}

/** A level button's tooltip: what a click does now (off levels are struck through). */
function levelTitle(b) {
  const name = b < LEVELS.length ? BUCKET_NAMES[b] + " records" : "records of other (custom) levels";
  return filter.levels[b] ? "Showing " + name + ": click to hide (Alt+click: only these)" : "Hiding " + name + ": click to show";
}

/**
 * Search with the query in the box: the filter runs it, or, when it does not parse,
 * the error shows under the box and the filter keeps its last good query.
 */
export function applySearch() {
  const error = filter.setSearch(searchInput.value);
  showQueryError(error);
  if (error === null) invalidateFilter();
  return error;
}

/** Search for `text` (the detail pane's "find" buttons, the test hooks): the box shows it. */
export function searchFor(text) {
  searchInput.value = text;
  return applySearch();
}

/**
 * Add the term `term` (one `field:value`; `-field:value` when `negate`) to the query in
 * the box: the facets, the patterns, the detail pane's and the table's values. Kept once
 * when there; the opposite term is replaced in place. Built on the box's text when it
 * parses, else on the last good query. Returns the error, or null.
 */
export function addQueryTerm(term, negate = false) {
  const want = parseQuery(term);
  if (!want.ok || want.terms.length !== 1) return want.ok ? null : want.error;
  const t = want.terms[0];
  const base = parseQuery(searchInput.value).ok ? searchInput.value : filter.search;
  const old = parseQuery(base).terms.find((u) => u.kind === t.kind && u.field === t.field && u.prefix === t.prefix
    && String(u.value).toLowerCase() === String(t.value).toLowerCase());
  const text = (negate ? "-" : "") + term;
  if (old && old.negate === negate) return searchFor(base);
  if (old) return searchFor(base.slice(0, old.start) + text + base.slice(old.end));
  return searchFor(base.trim() === "" ? text : base.replace(/\s+$/, "") + " " + text);
}

function showQueryError(error) {
  queryError.hidden = error === null;
  searchInput.setAttribute("aria-invalid", error === null ? "false" : "true");
  if (error === null) { queryError.textContent = ""; return; }
  const text = searchInput.value;
  queryError.textContent = "";
  queryError.append(
    error.message + " (at " + (error.pos + 1) + "): ",
    el("code", null, text.slice(0, error.pos)),
    el("code", "at", text.slice(error.pos, error.pos + 1) || " "),
    el("code", null, text.slice(error.pos + 1)),
  );
  queryError.setAttribute("data-pos", String(error.pos));
}

searchInput.addEventListener("input", applySearch);

const queryHelp = $("query-help");

/** Close the query help if it is open; says whether it was (Escape closes it first). */
export function closeQueryHelp() {
  if (!queryHelp.matches(":popover-open")) return false;
  queryHelp.hidePopover();
  return true;
}

$("min-level").addEventListener("change", (e) => {
  filter.minLevel = Number(e.target.value) || 0;
  invalidateFilter();
});
$("next-error").addEventListener("click", () => jumpError(1));
$("prev-error").addEventListener("click", () => jumpError(-1));
