// The toolbar: the search box, the level buttons (with their counts), the minimum
// level and the error navigation buttons. Each change invalidates the filter.

import { LEVELS, BUCKETS, BUCKET_NAMES } from "./store.js";
import { store, filter } from "./state.js";
import { $, el } from "./dom.js";
import { fmtCount, fmtCompact } from "./format.js";
import { invalidateFilter } from "./filtering.js";
import { jumpError } from "./navigation.js";

export const searchInput = $("search");
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
  for (let b = 0; b < BUCKETS; b++) levelButtons[b].setAttribute("aria-pressed", filter.levels[b] ? "true" : "false");
}

/** The record count of each level on its button (the "other" button only when used). */
export function renderLevelCounts() {
  for (let b = 0; b < BUCKETS; b++) {
    levelButtons[b]._n.textContent = fmtCompact(store.bucketCounts[b]);
    levelButtons[b]._n.title = fmtCount(store.bucketCounts[b]) + " records held";
    levelButtons[b].hidden = b === BUCKETS - 1 && store.bucketCounts[b] === 0 && filter.levels[b];
  }
}

/** Search for `text` (the detail pane's "find" buttons): the box shows it, the filter runs. */
export function searchFor(text) {
  searchInput.value = text;
  filter.search = text;
  invalidateFilter();
}

searchInput.addEventListener("input", () => {
  filter.search = searchInput.value;
  invalidateFilter();
});

$("min-level").addEventListener("change", (e) => {
  filter.minLevel = Number(e.target.value) || 0;
  invalidateFilter();
});
$("next-error").addEventListener("click", () => jumpError(1));
$("prev-error").addEventListener("click", () => jumpError(-1));
