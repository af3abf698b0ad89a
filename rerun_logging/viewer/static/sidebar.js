// The sidebar: the recordings list (all merged, or one stream) and the logger tree
// (entity paths with counts per level; a click filters to a branch, the twisty folds
// it). Items are updated in place so a click is never lost to a rebuild while live.
// Each recording has its colour (table.js's `streamColor`, the mark on its rows). With
// one recording selected, the tree and the level buttons count that recording only:
// its counts are summed from the store's columns once, then over new records only.

import { BUCKETS, BUCKET_NAMES } from "./store.js";
import { store, filter, view, dirty, schedule } from "./state.js";
import { $, el } from "./dom.js";
import { fmtCount } from "./format.js";
import { clockLabel } from "./charts.js";
import { invalidateFilter } from "./filtering.js";
import { renderLevelCounts } from "./toolbar.js";
import { refreshAddColumn, streamColor } from "./table.js";

const recList = $("recordings"), treeBox = $("tree"), treeClear = $("tree-clear");
let treeNodes = new Map(); // path -> {path, row, cnt, counts}
let treeEntityVersion = -1;
const collapsed = new Set(); // tree paths folded by the user
let recItems = new Map(); // stream key -> {li, app, state, meta1, meta2, rec}
let recAll = null;
let streamCounts = null; // the selected stream's counts: {idx, upTo, evicted, buckets, entities}

/** Redraw the sidebar and the counts that change with the data. */
export function renderSide() {
  const counts = selectedCounts();
  renderLevelCounts(counts ? counts.buckets : store.bucketCounts);
  refreshAddColumn();
  renderRecordings();
  renderTree(counts ? counts.entities : store.entityCounts);
}

/**
 * The level and entity counts of the selected stream (null: all are shown), brought up
 * to date: a new selection (or evicted records) sums them afresh, else the rows that
 * arrived since are added.
 */
function selectedCounts() {
  if (filter.streamKey === null) { streamCounts = null; return null; }
  const idx = store.streamOf(filter.streamKey[0], filter.streamKey[1]);
  let sc = streamCounts;
  if (sc === null || sc.idx !== idx || sc.evicted !== store.evicted || sc.upTo > store.n) {
    sc = { idx, upTo: 0, evicted: store.evicted, buckets: new Float64Array(BUCKETS), entities: new Map() };
    streamCounts = sc;
  }
  const stream = store.stream, bucket = store.bucket, entity = store.entity, n = store.n;
  const { buckets, entities } = sc;
  let lastEnt = -2, lastCounts = null;
  for (let i = sc.upTo; i < n; i++) {
    if (stream[i] !== idx) continue;
    const b = bucket[i], ent = entity[i];
    buckets[b]++;
    if (ent !== lastEnt) {
      lastEnt = ent;
      lastCounts = entities.get(ent);
      if (lastCounts === undefined) { lastCounts = new Float64Array(BUCKETS); entities.set(ent, lastCounts); }
    }
    lastCounts[b]++;
  }
  sc.upTo = n;
  return sc;
}

/** A new connection: forget the recordings and the tree (folds are kept). */
export function resetSidebar() {
  for (const item of recItems.values()) item.li.remove();
  recItems = new Map();
  treeNodes = new Map();
  treeEntityVersion = -1;
  streamCounts = null;
}

function streamKeyOf(r) { return String(r.recording) + "\u0000" + r.pid; }

function renderRecordings() {
  const sel = filter.streamKey;
  const recordings = view.recordings;
  if (!recAll) {
    const li = el("li");
    li.setAttribute("data-testid", "recording-all");
    const a1 = el("div", "app");
    a1.append(el("span", null, "All recordings (merged)"));
    const a2 = el("div", "meta");
    li.append(a1, a2);
    li.addEventListener("click", () => selectStream(null));
    recAll = { li, meta: a2 };
    recList.appendChild(li);
  }
  recAll.li.setAttribute("aria-selected", sel === null ? "true" : "false");
  recAll.meta.textContent = recordings.length + " stream" + (recordings.length === 1 ? "" : "s") + ", " +
    fmtCount(store.n) + " records held";
  const seen = new Set();
  let prev = recAll.li;
  for (const r of recordings) {
    const key = streamKeyOf(r);
    seen.add(key);
    let item = recItems.get(key);
    if (!item) {
      const li = el("li");
      li.setAttribute("data-testid", "recording");
      const head = el("div", "app");
      const app = el("span", "appname"), state = el("span", "state");
      const swatch = el("span", "swatch");
      swatch.setAttribute("data-testid", "recording-color");
      head.append(swatch, app, state);
      const meta1 = el("div", "meta"), meta2 = el("div", "meta");
      li.append(head, meta1, meta2);
      item = { li, app, state, meta1, meta2, swatch, rec: r };
      li.addEventListener("click", () => {
        const cur = filter.streamKey;
        const isSel = cur !== null && cur[0] === item.rec.recording && cur[1] === item.rec.pid;
        selectStream(isSel ? null : [item.rec.recording, item.rec.pid]);
      });
      recItems.set(key, item);
    }
    item.rec = r;
    const isSel = sel !== null && sel[0] === r.recording && sel[1] === r.pid;
    item.li.setAttribute("aria-selected", isSel ? "true" : "false");
    item.li.title = "recording " + r.recording;
    item.app.textContent = r.application;
    const color = streamColor(store.streamOf(String(r.recording), r.pid));
    if (item.swatch.getAttribute("data-color") !== color) {
      item.swatch.style.background = color;
      item.swatch.setAttribute("data-color", color);
      item.swatch.title = "The colour of this recording's rows";
    }
    item.state.className = "state " + String(r.state).replace(/[^a-z]/g, "");
    item.state.textContent = r.state;
    const started = r.start ? new Date(r.start) : null;
    let when = "";
    if (started) {
      const today = new Date().toDateString() === started.toDateString();
      when = " \u00b7 " + (today ? "" : started.toLocaleDateString() + " ") + clockLabel(r.start);
      item.meta1.title = "started " + started.toString();
    }
    item.meta1.textContent = r.host + " \u00b7 pid " + r.pid + when;
    item.meta2.textContent = fmtCount(r.records) + " records";
    if (r.dropped) item.meta2.append(document.createTextNode(" \u00b7 "), el("span", "dropped", fmtCount(r.dropped) + " dropped"));
    if (prev.nextSibling !== item.li) prev.after(item.li);
    prev = item.li;
  }
  for (const [key, item] of recItems) {
    if (!seen.has(key)) { item.li.remove(); recItems.delete(key); }
  }
}

function selectStream(key) {
  filter.streamKey = key;
  dirty.side = true;
  invalidateFilter();
}

function entityPath(id) { return id >= 0 ? store.strings[id] : "/"; }

/** The tree with the counts `entityCounts` (entity string id -> counts per level bucket). */
function renderTree(entityCounts) {
  if (treeEntityVersion !== store.entityVersion || treeNodes.size === 0) {
    treeEntityVersion = store.entityVersion;
    buildTree();
  }
  // counts: aggregate from the leaves
  for (const node of treeNodes.values()) node.counts.fill(0);
  for (const [id, c] of entityCounts) {
    const parts = splitPath(entityPath(id));
    let path = "";
    const root = treeNodes.get("/");
    for (let b = 0; b < BUCKETS; b++) root.counts[b] += c[b];
    for (const part of parts) {
      path += "/" + part;
      const node = treeNodes.get(path);
      if (node) for (let b = 0; b < BUCKETS; b++) node.counts[b] += c[b];
    }
  }
  for (const node of treeNodes.values()) {
    node.cnt.textContent = "";
    const c = node.counts;
    let total = 0;
    for (let b = 0; b < BUCKETS; b++) total += c[b];
    node.cnt.append(el("span", "cnt", fmtCount(total)));
    const tips = [];
    for (let b = 0; b < BUCKETS; b++) if (c[b]) tips.push(BUCKET_NAMES[b] + " " + fmtCount(c[b]));
    for (const [b, cls] of [[2, "c-warning"], [3, "c-error"], [4, "c-critical"]]) {
      if (c[b]) node.cnt.append(el("span", "cnt " + cls, fmtCount(c[b]) + BUCKET_NAMES[b][0]));
    }
    node.row.title = node.path + "\n" + tips.join(", ");
    node.row.setAttribute("aria-selected", filter.entity === node.path ? "true" : "false");
    node.row.classList.toggle("none", total === 0);
    let hidden = false;
    for (const c of collapsed) if (node.path.startsWith(c + "/")) { hidden = true; break; }
    node.row.hidden = hidden;
  }
  treeClear.hidden = filter.entity === null;
}

function splitPath(p) { return p.split("/").filter((s) => s.length > 0); }

function buildTree() {
  treeBox.textContent = "";
  treeNodes = new Map();
  const paths = new Set(["/"]);
  for (const id of store.entityCounts.keys()) {
    const parts = splitPath(entityPath(id));
    let p = "";
    for (const part of parts) { p += "/" + part; paths.add(p); }
  }
  const sorted = [...paths].sort((a, b) => (a === "/" ? -1 : b === "/" ? 1 : a < b ? -1 : a > b ? 1 : 0));
  for (const path of sorted) {
    const depth = path === "/" ? 0 : splitPath(path).length;
    const row = el("div", "node");
    row.setAttribute("data-testid", "tree-node");
    row.setAttribute("data-path", path);
    row.style.paddingLeft = 2 + depth * 12 + "px";
    const name = el("span", "name", path === "/" ? "/ (all)" : splitPath(path).pop());
    const cnt = el("span", "cnts");
    const prefix = path === "/" ? "/" : path + "/";
    const hasChildren = path !== "/" && sorted.some((p) => p.startsWith(prefix));
    const twisty = el("span", "twisty", hasChildren ? (collapsed.has(path) ? "\u25b8" : "\u25be") : "");
    if (hasChildren) {
      twisty.setAttribute("data-testid", "tree-twisty");
      twisty.title = "Fold / unfold";
      twisty.addEventListener("click", (e) => {
        e.stopPropagation();
        if (collapsed.has(path)) collapsed.delete(path); else collapsed.add(path);
        twisty.textContent = collapsed.has(path) ? "\u25b8" : "\u25be";
        dirty.side = true;
        schedule();
      });
    }
    row.append(twisty, name, cnt);
    row.addEventListener("click", () => {
      filter.entity = filter.entity === path ? null : path;
      dirty.side = true;
      invalidateFilter();
    });
    treeBox.appendChild(row);
    treeNodes.set(path, { path, row, cnt, counts: new Float64Array(BUCKETS) });
  }
}

treeClear.addEventListener("click", () => {
  filter.entity = null;
  dirty.side = true;
  invalidateFilter();
});
