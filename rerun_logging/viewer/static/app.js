// rerun-logging web viewer: the page. Every string from a log is rendered as text
// (textContent / createTextNode), never as HTML.

import {
  Store, Filter, IntVec, LEVELS, BUCKETS, BUCKET_NAMES, ERROR_LEVEL, levelClass,
} from "./store.js";
import { Timeline, drawPlot, themeColors, clockLabel } from "./charts.js";

const ROWH = 20;
const MAXH = 15_000_000; // spacer height cap (Chrome caps elements at 33,554,428 px)
const MAX_SEQ_NUMBERS = 1_000_000;
const MSG_CHARS = 400;   // characters of a message drawn in the table

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
};

// ---------------------------------------------------------------------------- state

const store = new Store();
const filter = new Filter();
let base = new IntVec(1 << 16); // rows passing all filters but time
let rows = base;                // rows shown (base, or base within the time range)
const timeRows = new IntVec(1024);
let selected = -1;              // store row of the selected record
let follow = true;
let newCount = 0;
let extraCols = [];
let recordings = [];
let ready = false;
let connected = false;
let renderVersion = 0;
let colors = null;
const timings = { filterMs: 0, redrawMs: 0, lastBatchParseMs: 0 };

const dirty = { filter: false, table: true, timeline: true, plot: true, side: true, detail: false };
let lastSlow = 0;

// ---------------------------------------------------------------------------- helpers

function pad(n, w = 2) { return String(n).padStart(w, "0"); }

function fmtTime(ms) {
  const d = new Date(ms);
  return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3);
}

function fmtFullTime(i) {
  const ms = store.time[i];
  const d = new Date(ms);
  const date = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  const frac = pad(d.getMilliseconds(), 3) + pad(store.ns[i], 6);
  const off = -d.getTimezoneOffset();
  const tz = "UTC" + (off >= 0 ? "+" : "-") + pad(Math.floor(Math.abs(off) / 60)) + ":" + pad(Math.abs(off) % 60);
  return date + " " + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + frac + " " + tz;
}

function fmtCount(n) { return n.toLocaleString("en-US"); }

function fmtCompact(n) {
  if (n < 10000) return String(n);
  if (n < 1e6) return (n / 1e3).toFixed(n < 1e5 ? 1 : 0) + "k";
  return (n / 1e6).toFixed(n < 1e7 ? 2 : 1) + "M";
}

function extraText(v) {
  if (v === undefined) return "";
  if (typeof v === "string") return v;
  try { return JSON.stringify(v); } catch { return String(v); }
}

/** Put `text` into `node` with every case-insensitive match of `q` in a <mark>. */
function setHighlighted(node, text, q) {
  if (!q) { node.textContent = text; return; }
  const lower = text.toLowerCase();
  let at = lower.indexOf(q);
  if (at < 0 || lower.length !== text.length) { node.textContent = text; return; }
  node.textContent = "";
  let from = 0;
  while (at >= 0) {
    if (at > from) node.appendChild(document.createTextNode(text.slice(from, at)));
    const m = document.createElement("mark");
    m.textContent = text.slice(at, at + q.length);
    node.appendChild(m);
    from = at + q.length;
    at = lower.indexOf(q, from);
  }
  if (from < text.length) node.appendChild(document.createTextNode(text.slice(from)));
}

function firstLine(s) {
  const nl = s.indexOf("\n");
  let t = nl >= 0 ? s.slice(0, nl) + " \u21b5" : s;
  if (t.length > MSG_CHARS) t = t.slice(0, MSG_CHARS) + "\u2026";
  return t;
}

/** Position of store row `i` in `rows` (sorted ascending), or -1. */
function posOf(i) {
  const a = rows.a;
  let lo = 0, hi = rows.n - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = a[mid];
    if (v === i) return mid;
    if (v < i) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}

/** First position in `rows` whose store row is >= i. */
function lowerBound(i) {
  const a = rows.a;
  let lo = 0, hi = rows.n;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid] < i) lo = mid + 1; else hi = mid;
  }
  return lo;
}

// ---------------------------------------------------------------------------- scheduling

let frameRequested = false;
function schedule() {
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(frame);
  }
}

function frame() {
  frameRequested = false;
  if (dirty.filter) refilter();
  if (dirty.table) draw();
  const now = performance.now();
  const slowDue = now - lastSlow > 250;
  if (dirty.detail) { dirty.detail = false; renderDetail(); }
  if ((dirty.timeline || dirty.plot || dirty.side) && (slowDue || store.n < 50000)) {
    lastSlow = now;
    if (dirty.side) { dirty.side = false; renderSide(); }
    if (dirty.timeline) { dirty.timeline = false; timeline.compute(store, base); timeline.draw(colors); }
    if (dirty.plot) { dirty.plot = false; renderPlot(); }
  }
  if (dirty.table || dirty.timeline || dirty.plot || dirty.side || dirty.filter || dirty.detail) schedule();
}

function invalidateFilter() { dirty.filter = true; schedule(); }

function refilter() {
  dirty.filter = false;
  const t0 = performance.now();
  filter.prepare(store);
  base.clear();
  if (base.a.length < store.n) base.grow(store.n);
  if (filter.timeRange) {
    rows = timeRows;
    rows.clear();
    if (rows.a.length < store.n) rows.grow(store.n);
  } else rows = base;
  filter.run(store, 0, store.n, base, rows);
  timings.filterMs = performance.now() - t0;
  renderVersion++;
  dirty.table = dirty.timeline = dirty.plot = true;
  newCount = 0;
  updateBadge();
  if (follow) scrollBottomPending = true;
  else if (selected >= 0) {
    // keep the selected record in view when it still passes
    const p = posOf(selected);
    if (p >= 0) scrollToPos(p, "center");
  }
}

// ---------------------------------------------------------------------------- table

const viewport = $("viewport"), spacer = $("spacer"), layer = $("layer"), inner = $("inner");
const thead = $("thead");
let pool = [];
let scrollBottomPending = true;
let lastScrollSet = -1;

function geometry() {
  const n = rows.n;
  const viewH = viewport.clientHeight;
  const total = n * ROWH;
  const spacerH = Math.min(total, MAXH);
  const scrollMax = Math.max(0, spacerH - viewH);
  const virtMax = Math.max(0, total - viewH);
  const scale = scrollMax > 0 ? virtMax / scrollMax : 1;
  return { n, viewH, total, spacerH, scrollMax, virtMax, scale };
}

function buildPool() {
  const need = Math.ceil((viewport.clientHeight || 800) / ROWH) + 2;
  if (pool.length === need && pool.colsKey === extraCols.join("\u0000")) return;
  inner.textContent = "";
  pool = [];
  pool.colsKey = extraCols.join("\u0000");
  for (let k = 0; k < need; k++) {
    const r = el("div", "row");
    r.hidden = true;
    const cells = {
      time: el("span", "c c-time"), level: el("span", "c c-level"), logger: el("span", "c c-logger"),
      xs: extraCols.map(() => el("span", "c c-x")), msg: el("span", "c c-msg"),
    };
    r.append(cells.time, cells.level, cells.logger, ...cells.xs, cells.msg);
    r._cells = cells;
    r._row = -1;
    r._key = "";
    inner.appendChild(r);
    pool.push(r);
  }
  renderVersion++;
}

function renderHead() {
  thead.textContent = "";
  thead.append(el("div", "c c-time", "Time"), el("div", "c c-level", "Level"), el("div", "c c-logger", "Logger"));
  for (const key of extraCols) {
    const h = el("div", "c c-x");
    const name = el("span", null, key);
    name.title = key;
    const rm = el("button", "rm", "\u00d7");
    rm.type = "button";
    rm.title = "Remove column";
    rm.setAttribute("data-testid", "remove-column");
    rm.addEventListener("click", () => {
      extraCols = extraCols.filter((k) => k !== key);
      renderHead(); buildPool(); dirty.table = true; schedule();
    });
    h.append(name, rm);
    thead.appendChild(h);
  }
  const m = el("div", "c c-msg");
  m.appendChild(el("span", null, "Message"));
  const add = el("select");
  add.setAttribute("data-testid", "add-column");
  add.title = "Add a column for an extra key";
  add.addEventListener("focus", () => fillAddColumn(add));
  add.addEventListener("mousedown", () => fillAddColumn(add));
  add.addEventListener("change", () => {
    const key = add.value;
    if (key && !extraCols.includes(key)) {
      extraCols.push(key);
      renderHead(); buildPool(); dirty.table = true; schedule();
    }
  });
  fillAddColumn(add);
  addColumnSelect = add;
  m.appendChild(add);
  thead.appendChild(m);
}

let addColumnSelect = null, addColumnKeys = -1;

function fillAddColumn(sel) {
  addColumnKeys = store.extraKeys.size;
  const keys = [...store.extraKeys].filter((k) => !extraCols.includes(k)).sort();
  sel.textContent = "";
  const o = el("option", null, "+ column");
  o.value = "";
  sel.appendChild(o);
  for (const k of keys) {
    const opt = el("option", null, k);
    opt.value = k;
    sel.appendChild(opt);
  }
}

function draw() {
  dirty.table = false;
  const t0 = performance.now();
  buildPool();
  const g = geometry();
  spacer.style.height = g.spacerH + "px";
  layer.style.height = g.viewH + "px";
  if (follow || scrollBottomPending) {
    scrollBottomPending = false;
    if (follow && viewport.scrollTop !== g.scrollMax) {
      viewport.scrollTop = g.scrollMax;
      lastScrollSet = viewport.scrollTop;
    }
  }
  const top = Math.min(viewport.scrollTop, g.scrollMax);
  const virtTop = top * g.scale;
  const first = Math.floor(virtTop / ROWH);
  const offset = virtTop - first * ROWH;
  inner.style.transform = "translateY(" + (-offset) + "px)";
  const q = filter.q || "";
  const S = store.strings;
  for (let k = 0; k < pool.length; k++) {
    const r = pool[k];
    const p = first + k;
    if (p >= g.n) {
      if (r._row !== -1 || !r.hidden) {
        r.hidden = true; r._row = -1; r._key = "";
        r.removeAttribute("data-testid");
        r.removeAttribute("data-row");
      }
      continue;
    }
    const i = rows.a[p];
    const key = i + ":" + renderVersion;
    if (r._key !== key) {
      r._key = key;
      r._row = i;
      r.hidden = false;
      r.setAttribute("data-testid", "row");
      r.setAttribute("data-row", String(i));
      const c = r._cells;
      const lv = store.level[i];
      c.time.textContent = fmtTime(store.time[i]);
      c.level.textContent = S[store.levelName[i]] ?? String(lv);
      c.level.className = "c c-level " + levelClass(lv);
      const lg = S[store.logger[i]] ?? "";
      setHighlighted(c.logger, lg, q);
      c.logger.title = lg;
      const ex = store.extras[i];
      for (let x = 0; x < extraCols.length; x++) {
        const t = ex === undefined ? "" : extraText(ex[extraCols[x]]);
        setHighlighted(c.xs[x], t.length > 200 ? t.slice(0, 200) + "\u2026" : t, q);
      }
      const text = store.message[i];
      setHighlighted(c.msg, firstLine(text), q);
      c.msg.title = text.length > 2000 ? text.slice(0, 2000) + "\u2026" : text;
      let cls = "row";
      if (lv >= ERROR_LEVEL) cls += " e"; else if (lv >= 30) cls += " w";
      if (store.exception.has(i)) cls += " exc";
      if (i === selected) cls += " sel";
      r.className = cls;
    } else {
      const want = i === selected;
      if (r.classList.contains("sel") !== want) r.classList.toggle("sel", want);
    }
  }
  const empty = $("empty");
  empty.hidden = g.n > 0;
  if (!g.n) {
    empty.textContent = store.n ? "No records match the filters." :
      connected ? "No records yet: waiting for apps to log." : "Not connected to the viewer.";
  }
  timings.redrawMs = performance.now() - t0;
  updateCounts();
  const hook = api.onDraw;
  if (typeof hook === "function") {
    try {
      hook({ now: performance.timeOrigin + performance.now(), newestTime: store.newest, shown: rows.n, total: store.n });
    } catch (e) { console.error(e); }
  }
}

viewport.addEventListener("scroll", () => {
  const g = geometry();
  const top = viewport.scrollTop;
  if (top === lastScrollSet) { lastScrollSet = -1; dirty.table = true; schedule(); return; }
  lastScrollSet = -1;
  const atBottom = top >= g.scrollMax - 2;
  if (atBottom && !follow && g.n > 0) setFollow(true);
  else if (!atBottom && follow) setFollow(false);
  dirty.table = true;
  schedule();
}, { passive: true });

inner.addEventListener("click", (e) => {
  const r = e.target.closest(".row");
  if (r && r._row >= 0) select(r._row, false);
});

new ResizeObserver(() => {
  dirty.table = dirty.timeline = dirty.plot = true;
  if (follow) scrollBottomPending = true;
  schedule();
}).observe(viewport);

function scrollToPos(p, where = "nearest") {
  const g = geometry();
  if (p < 0 || p >= g.n) return;
  spacer.style.height = g.spacerH + "px"; // the rows may have changed since the last draw
  const cur = Math.min(viewport.scrollTop, g.scrollMax) * g.scale;
  let virt = cur;
  const rowTop = p * ROWH;
  if (where === "top") virt = rowTop;
  else if (where === "center") virt = rowTop - g.viewH / 2 + ROWH / 2;
  else if (rowTop < cur) virt = rowTop;
  else if (rowTop + ROWH > cur + g.viewH) virt = rowTop + ROWH - g.viewH;
  virt = Math.max(0, Math.min(g.virtMax, virt));
  const st = Math.round(virt / g.scale);
  if (st !== viewport.scrollTop) {
    viewport.scrollTop = st;
    lastScrollSet = viewport.scrollTop; // ours: the scroll event must not turn follow back on
  }
  const atBottom = viewport.scrollTop >= g.scrollMax - 2;
  if (!atBottom && follow) setFollow(false);
  dirty.table = true;
  schedule();
}

function select(i, scroll = true) {
  selected = i;
  dirty.table = true;
  dirty.detail = true;
  if (scroll) {
    const p = posOf(i);
    if (p >= 0) scrollToPos(p, "nearest");
  }
  schedule();
}

function moveSelection(d) {
  if (rows.n === 0) return;
  let p = selected >= 0 ? posOf(selected) : -1;
  if (p < 0) {
    const g = geometry();
    p = Math.floor((Math.min(viewport.scrollTop, g.scrollMax) * g.scale) / ROWH);
    if (selected >= 0) p = Math.min(rows.n - 1, lowerBound(selected));
    else if (d < 0) p += 1;
    else p -= 1;
  }
  p = Math.max(0, Math.min(rows.n - 1, p + d));
  select(rows.a[p]);
}

function jumpError(dir) {
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
      if (follow) setFollow(false);
      selected = a[k];
      dirty.detail = true;
      dirty.table = true;
      scrollToPos(k, "center");
      if ((dir > 0 && k <= p) || (dir < 0 && k >= p)) flash("Search wrapped around.");
      return true;
    }
  }
  flash("No error in the rows shown.");
  return false;
}

// ---------------------------------------------------------------------------- follow

const followBtn = $("follow"), badge = $("new-badge");

function setFollow(on) {
  follow = on;
  followBtn.setAttribute("aria-pressed", on ? "true" : "false");
  if (on) {
    newCount = 0;
    scrollBottomPending = true;
    dirty.table = true;
    schedule();
  }
  updateBadge();
}

function updateBadge() {
  const show = !follow && newCount > 0;
  badge.hidden = !show;
  if (show) badge.textContent = fmtCount(newCount) + " new \u2193";
}

followBtn.addEventListener("click", () => setFollow(!follow));
badge.addEventListener("click", () => setFollow(true));

// ---------------------------------------------------------------------------- toolbar

const searchInput = $("search");
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

function syncLevelButtons() {
  for (let b = 0; b < BUCKETS; b++) levelButtons[b].setAttribute("aria-pressed", filter.levels[b] ? "true" : "false");
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

function updateCounts() {
  $("counts").textContent = fmtCount(rows.n) + " / " + fmtCount(store.n);
  $("counts").title = fmtCount(rows.n) + " rows shown of " + fmtCount(store.n) + " records held";
}

function renderLevelCounts() {
  for (let b = 0; b < BUCKETS; b++) {
    levelButtons[b]._n.textContent = fmtCompact(store.bucketCounts[b]);
    levelButtons[b]._n.title = fmtCount(store.bucketCounts[b]) + " records held";
    levelButtons[b].hidden = b === BUCKETS - 1 && store.bucketCounts[b] === 0 && filter.levels[b];
  }
}

// ---------------------------------------------------------------------------- notices

const notices = $("notices");
let missedNotice = null, missedTotal = 0;

function notice(text, kind = "", testid = "notice") {
  const n = el("div", "notice " + kind);
  n.setAttribute("data-testid", testid);
  const t = el("span", "text", text);
  const x = el("button", "link", "dismiss");
  x.type = "button";
  x.addEventListener("click", () => { n.remove(); if (n === missedNotice) missedNotice = null; });
  n.append(t, x);
  n._text = t;
  notices.appendChild(n);
  return n;
}

function flash(text) {
  const n = notice(text, "", "flash");
  setTimeout(() => n.remove(), 2500);
}

function onMissed(msg) {
  store.applyStrings(msg);
  missedTotal += msg.records || 0;
  const text = fmtCount(missedTotal) + " records missed: this tab fell behind";
  if (!missedNotice) missedNotice = notice(text, "", "missed");
  else missedNotice._text.textContent = text;
}

// ---------------------------------------------------------------------------- sidebar

const recList = $("recordings"), treeBox = $("tree"), treeClear = $("tree-clear");
let treeNodes = new Map(); // path -> {el, counts, children}
let treeEntityVersion = -1;
const collapsed = new Set(); // tree paths folded by the user

function renderSide() {
  renderLevelCounts();
  if (addColumnSelect && addColumnKeys !== store.extraKeys.size && document.activeElement !== addColumnSelect) {
    fillAddColumn(addColumnSelect);
  }
  renderRecordings();
  renderTree();
}

// Items persist (updated in place) so a click is never lost to a rebuild while live.
let recItems = new Map(); // stream key -> {li, fill(r, sel)}
let recAll = null;

function streamKeyOf(r) { return String(r.recording) + "\u0000" + r.pid; }

function renderRecordings() {
  const sel = filter.streamKey;
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
      head.append(app, state);
      const meta1 = el("div", "meta"), meta2 = el("div", "meta");
      li.append(head, meta1, meta2);
      item = { li, app, state, meta1, meta2, rec: r };
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

function renderTree() {
  if (treeEntityVersion !== store.entityVersion || treeNodes.size === 0) {
    treeEntityVersion = store.entityVersion;
    buildTree();
  }
  // counts: aggregate from the leaves
  for (const node of treeNodes.values()) node.counts.fill(0);
  for (const [id, c] of store.entityCounts) {
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

// ---------------------------------------------------------------------------- detail

const detail = $("detail");

/** Every field of row `i` as a plain object (for "copy as JSON"). */
function recordJson(i) {
  const s = (id) => (id >= 0 ? store.strings[id] : null);
  const st = store.streams[store.stream[i]] || {};
  const odd = store.odd.get(i);
  const exc = store.exception.get(i);
  return {
    time_ns: String(BigInt(store.time[i]) * 1000000n + BigInt(store.ns[i])),
    time: fmtFullTime(i), level: store.level[i], level_name: s(store.levelName[i]),
    logger: s(store.logger[i]), entity: s(store.entity[i]), message: store.message[i],
    template: s(store.template[i]),
    thread: odd && odd.thread !== null && typeof odd.thread !== "number" ? odd.thread : (Number.isNaN(store.thread[i]) ? null : store.thread[i]),
    thread_name: s(store.threadName[i]),
    process: odd && odd.process !== null && typeof odd.process !== "number" ? odd.process : (Number.isNaN(store.process[i]) ? null : store.process[i]),
    process_name: s(store.processName[i]), task: s(store.task[i]),
    path: s(store.path[i]), line: store.line[i], function: s(store.func[i]),
    extras: store.extras[i] ?? null,
    exception: exc ? { type: exc[0], value: exc[1], traceback: exc[2] } : null,
    stack_info: store.stack.get(i) ?? null,
    recording: st.recording ?? null, pid: st.pid ?? null, seq: store.seq[i],
  };
}

function renderDetail() {
  detail.textContent = "";
  const i = selected;
  if (i < 0 || i >= store.n) {
    detail.appendChild(el("div", "detail-empty", "Select a row to see every field."));
    const keys = el("dl", "shortcuts");
    for (const [k, v] of [["/", "search"], ["Esc", "leave the search box"], ["\u2191 \u2193", "move the selection"],
      ["e / E", "next / previous error"], ["f", "follow new records"], ["Home / End", "first row / follow"],
      ["drag", "on the timeline: a time range (double-click clears)"]]) {
      keys.append(el("dt", null, k), el("dd", null, v));
    }
    detail.appendChild(keys);
    return;
  }
  const S = store.strings;
  const s = (id) => (id >= 0 ? S[id] : null);
  const lv = store.level[i];
  const head = el("div", "detail-head");
  const badge = el("span", "badge " + levelClass(lv), s(store.levelName[i]) ?? String(lv));
  const copy = el("button", "link", "copy as JSON");
  copy.type = "button";
  copy.setAttribute("data-testid", "copy-json");
  copy.addEventListener("click", () => {
    const text = JSON.stringify(recordJson(i), null, 2);
    const done = () => flash("Copied the record as JSON.");
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, () => flash("Could not copy."));
  });
  head.append(badge, el("span", "when", fmtFullTime(i)), copy);
  detail.appendChild(head);
  const msg = el("div", "msg", store.message[i]);
  msg.setAttribute("data-testid", "detail-message");
  detail.appendChild(msg);

  const dl = el("dl");
  const add = (k, v) => {
    if (v === null || v === undefined || v === "") return;
    const dt = el("dt", null, k), dd = el("dd", null, v);
    dd.setAttribute("data-field", k);
    dl.append(dt, dd);
  };
  const odd = store.odd.get(i);
  const thread = odd && odd.thread !== null && typeof odd.thread !== "number" ? String(odd.thread)
    : Number.isNaN(store.thread[i]) ? null : String(store.thread[i]);
  const proc = odd && odd.process !== null && typeof odd.process !== "number" ? String(odd.process)
    : Number.isNaN(store.process[i]) ? null : String(store.process[i]);
  add("time", fmtFullTime(i));
  add("epoch ns", BigInt(store.time[i]) * 1000000n + BigInt(store.ns[i]) + "");
  add("level", (s(store.levelName[i]) ?? "") + " (" + lv + ")");
  add("logger", s(store.logger[i]));
  add("entity", s(store.entity[i]));
  add("template", s(store.template[i]));
  if (store.args[i] !== undefined) add("args", JSON.stringify(store.args[i]));
  add("thread", thread === null ? s(store.threadName[i]) : thread + (s(store.threadName[i]) ? " (" + s(store.threadName[i]) + ")" : ""));
  add("process", proc === null ? s(store.processName[i]) : proc + (s(store.processName[i]) ? " (" + s(store.processName[i]) + ")" : ""));
  add("task", s(store.task[i]));
  const src = (s(store.path[i]) ?? "?") + ":" + store.line[i];
  add("source", src + (s(store.func[i]) ? " in " + s(store.func[i]) + "()" : ""));
  const st = store.streams[store.stream[i]];
  const rec = st ? recordings.find((r) => r.recording === st.recording && r.pid === st.pid) : null;
  if (rec) add("application", rec.application + " @ " + rec.host);
  if (st) add("recording", st.recording + " (pid " + st.pid + ")");
  add("seq", String(store.seq[i]));
  detail.appendChild(el("h3", null, "Fields"));
  detail.appendChild(dl);

  const ex = store.extras[i];
  if (ex !== undefined) {
    detail.appendChild(el("h3", null, "Extras"));
    const edl = el("dl", "extras");
    edl.setAttribute("data-testid", "detail-extras");
    for (const k of Object.keys(ex)) {
      const dd = el("dd");
      let text;
      try { text = JSON.stringify(ex[k], null, 2); } catch { text = String(ex[k]); }
      dd.appendChild(el("pre", null, text));
      edl.append(el("dt", null, k), dd);
    }
    detail.appendChild(edl);
  }
  const exc = store.exception.get(i);
  if (exc) {
    detail.appendChild(el("h3", null, "Exception"));
    const d = el("details", "exc");
    d.open = true;
    d.setAttribute("data-testid", "detail-exception");
    d.append(el("summary", null, (exc[0] ?? "") + (exc[1] ? ": " + exc[1] : "")), el("pre", null, exc[2] ?? ""));
    detail.appendChild(d);
  }
  const stack = store.stack.get(i);
  if (stack) {
    detail.appendChild(el("h3", null, "Stack"));
    const d = el("details");
    d.setAttribute("data-testid", "detail-stack");
    d.append(el("summary", null, "stack_info"), el("pre", null, stack));
    detail.appendChild(d);
  }
}

// ---------------------------------------------------------------------------- charts

const timeline = new Timeline($("timeline"), (a, b) => setTimeRange(a === null ? null : [a, b]));
const timelineClear = $("timeline-clear");
timelineClear.addEventListener("click", () => setTimeRange(null));

function setTimeRange(r) {
  filter.timeRange = r;
  timeline.range = r;
  timelineClear.hidden = r === null;
  if (r) timelineClear.textContent = "\u00d7 " + fmtTime(r[0]) + " \u2013 " + fmtTime(r[1]);
  invalidateFilter();
}

const plotSelect = $("plot-select"), plotCanvas = $("plot"), plotPanel = $("plot-panel");
let plotKeysSeen = 0;

function renderPlot() {
  if (store.numericKeys.size !== plotKeysSeen) {
    plotKeysSeen = store.numericKeys.size;
    const cur = plotSelect.value;
    plotSelect.textContent = "";
    const o = el("option", null, "(numeric extra)");
    o.value = "";
    plotSelect.appendChild(o);
    for (const k of [...store.numericKeys].sort()) {
      const opt = el("option", null, k);
      opt.value = k;
      plotSelect.appendChild(opt);
    }
    if (cur && store.numericKeys.has(cur)) plotSelect.value = cur;
    else if (!cur && store.numericKeys.size) plotSelect.value = [...store.numericKeys].sort()[0];
  }
  if (!plotPanel.open) return;
  const count = drawPlot(plotCanvas, store, rows, plotSelect.value, colors);
  $("plot-info").textContent = plotSelect.value ? fmtCount(count) + " points" : "";
}

plotSelect.addEventListener("change", () => { dirty.plot = true; schedule(); });
plotSelect.addEventListener("click", (e) => e.stopPropagation());
plotPanel.addEventListener("toggle", () => { dirty.plot = true; schedule(); });

function refreshColors() {
  colors = themeColors();
  dirty.timeline = dirty.plot = true;
  schedule();
}
window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", refreshColors);

// ---------------------------------------------------------------------------- download

let downloadId = 0;
let pendingDownload = null; // {id, meta}

function requestDownload() {
  if (!connected || !ws || ws.readyState !== WebSocket.OPEN) {
    notice("Not connected: cannot download now.", "error", "download-error");
    return null;
  }
  if (rows.n === 0) { flash("No rows to download."); return null; }
  const groups = new Map();
  const order = [];
  let numbers = 0;
  const a = rows.a, n = rows.n, stream = store.stream, seq = store.seq;
  for (let k = 0; k < n; k++) {
    const i = a[k];
    const s = stream[i], q = seq[i];
    let g = groups.get(s);
    if (g === undefined) {
      g = { seqs: [], first: q, count: 1 };
      groups.set(s, g);
      order.push(s);
      numbers += 2;
      continue;
    }
    if (q === g.first + g.count) g.count++;
    else {
      g.seqs.push(g.first, g.count);
      g.first = q; g.count = 1;
      numbers += 2;
      if (numbers > MAX_SEQ_NUMBERS) {
        notice("The selection is too fragmented to download (more than " + fmtCount(MAX_SEQ_NUMBERS / 2) +
          " runs of records): narrow it (a logger, a level, a recording or a time range) and try again.", "error", "download-error");
        return null;
      }
    }
  }
  const select = order.map((s) => {
    const g = groups.get(s);
    g.seqs.push(g.first, g.count);
    const st = store.streams[s];
    return { recording: st.recording, pid: st.pid, seqs: g.seqs };
  });
  const id = ++downloadId;
  const req = { type: "download", id, select };
  pendingDownload = { id, meta: null };
  ws.send(JSON.stringify(req));
  $("download").disabled = true;
  setTimeout(() => { $("download").disabled = false; }, 1000);
  return req;
}

function onDownloadMeta(msg) {
  if (!pendingDownload || msg.id !== pendingDownload.id) {
    pendingDownload = { id: msg.id, meta: msg };
  } else pendingDownload.meta = msg;
  if (msg.missing > 0) {
    notice(fmtCount(msg.missing) + " records not held by the server any more (the download has " +
      fmtCount(msg.records) + ")", "", "download-missing");
  }
}

function onBinary(data) {
  const meta = pendingDownload && pendingDownload.meta;
  pendingDownload = null;
  const name = meta && typeof meta.name === "string" && meta.name ? meta.name : "rerun-logging.rrd";
  const blob = new Blob([data], { type: "application/octet-stream" });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  a.hidden = true;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  api.lastDownload = { name, bytes: data.byteLength, records: meta ? meta.records : null, missing: meta ? meta.missing : null };
}

$("download").addEventListener("click", () => requestDownload());

// ---------------------------------------------------------------------------- connection

const statusEl = $("status");
let ws = null;
let attempts = 0;
let retryTimer = null, countdownTimer = null;

function setStatus(state, text) {
  statusEl.setAttribute("data-state", state);
  statusEl.textContent = text;
  dirty.table = true;
  schedule();
}

function wsUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  return proto + "//" + location.host + "/ws" + location.search;
}

function connect() {
  clearTimeout(retryTimer);
  clearInterval(countdownTimer);
  setStatus("connecting", "connecting\u2026");
  let sock;
  try {
    sock = new WebSocket(wsUrl());
  } catch (e) {
    scheduleReconnect();
    return;
  }
  ws = sock;
  sock.binaryType = "arraybuffer";
  sock.onopen = () => {
    if (ws !== sock) return;
    attempts = 0;
    connected = true;
    api.connected = true;
    resetAll();
    setStatus("live", "live");
  };
  sock.onmessage = (ev) => { if (ws === sock) onMessage(ev); };
  sock.onclose = () => {
    if (ws !== sock) return;
    connected = false;
    api.connected = false;
    ws = null;
    scheduleReconnect();
  };
  sock.onerror = () => {};
}

function scheduleReconnect() {
  const delay = Math.min(10000, 500 * 2 ** Math.min(attempts, 5));
  attempts++;
  const until = performance.now() + delay;
  const tick = () => {
    const s = Math.max(0, Math.ceil((until - performance.now()) / 1000));
    setStatus("disconnected", "disconnected \u00b7 reconnecting in " + s + "s");
  };
  tick();
  countdownTimer = setInterval(tick, 250);
  retryTimer = setTimeout(connect, delay);
}

function resetAll() {
  store.clearAll();
  base = new IntVec(1 << 16);
  rows = base;
  timeRows.clear();
  selected = -1;
  newCount = 0;
  missedTotal = 0;
  if (missedNotice) { missedNotice.remove(); missedNotice = null; }
  if (evictNotice) { evictNotice.remove(); evictNotice = null; }
  recordings = [];
  for (const item of recItems.values()) item.li.remove();
  recItems = new Map();
  ready = false;
  api.ready = false;
  plotKeysSeen = -1;
  treeNodes = new Map();
  treeEntityVersion = -1;
  filter.prepare(store);
  renderVersion++;
  pendingDownload = null;
  dirty.filter = true;
  dirty.side = dirty.detail = dirty.table = dirty.timeline = dirty.plot = true;
  updateBadge();
  schedule();
}

function onMessage(ev) {
  if (typeof ev.data !== "string") { onBinary(ev.data); return; }
  const t0 = performance.now();
  let msg;
  try { msg = JSON.parse(ev.data); } catch { return; }
  switch (msg.type) {
    case "records": onRecords(msg, t0); break;
    case "recordings":
      recordings = Array.isArray(msg.recordings) ? msg.recordings : [];
      for (const r of recordings) store.streamOf(String(r.recording), r.pid);
      ready = true;
      api.ready = true;
      dirty.side = true;
      schedule();
      break;
    case "missed": onMissed(msg); dirty.side = true; schedule(); break;
    case "download": onDownloadMeta(msg); break;
    case "error":
      if (pendingDownload && msg.id === pendingDownload.id) pendingDownload = null;
      notice("Server: " + String(msg.error), "error", "server-error");
      break;
    default: break;
  }
}

let maxRecords = 2_000_000; // the tab keeps at most this many; the oldest go first
let evictNotice = null;

function enforceLimit() {
  if (store.n <= maxRecords) return;
  const k = store.n - Math.floor(maxRecords * 0.8);
  store.evict(k);
  if (selected >= 0) selected = selected >= k ? selected - k : -1;
  dirty.filter = dirty.detail = dirty.side = true;
  const text = "The oldest " + fmtCount(store.evicted) + " records were dropped from this tab to keep it under " +
    fmtCount(maxRecords) + " records (the server may still hold them).";
  if (!evictNotice || !evictNotice.isConnected) evictNotice = notice(text, "", "evicted");
  else evictNotice._text.textContent = text;
}

function onRecords(msg, t0) {
  const [first, count] = store.appendBatch(msg);
  if (!count) return;
  if (store.n > maxRecords) {
    enforceLimit();
    timings.lastBatchParseMs = performance.now() - t0;
    schedule();
    return;
  }
  if (dirty.filter) {
    // a full run is pending anyway
  } else {
    filter.extend(store);
    if (base.a.length < store.n) base.grow(Math.max(store.n, base.a.length * 2));
    if (rows !== base && rows.a.length < store.n) rows.grow(Math.max(store.n, rows.a.length * 2));
    const before = rows.n;
    filter.run(store, first, first + count, base, rows);
    const added = rows.n - before;
    if (!follow) { newCount += added; updateBadge(); }
  }
  timings.lastBatchParseMs = performance.now() - t0;
  dirty.table = dirty.timeline = dirty.plot = dirty.side = true;
  schedule();
}

// ---------------------------------------------------------------------------- keyboard

document.addEventListener("keydown", (e) => {
  const t = e.target;
  const typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  if (typing) {
    if (e.key === "Escape") { e.preventDefault(); t.blur(); viewport.focus(); } // keeps the text
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  switch (e.key) {
    case "/": e.preventDefault(); searchInput.focus(); searchInput.select(); break;
    case "f": setFollow(!follow); break;
    case "e": jumpError(1); break;
    case "E": jumpError(-1); break;
    case "ArrowDown": e.preventDefault(); moveSelection(1); break;
    case "ArrowUp": e.preventDefault(); moveSelection(-1); break;
    case "End": e.preventDefault(); setFollow(true); break;
    case "Home": e.preventDefault(); if (follow) setFollow(false); scrollToPos(0, "top"); break;
    case "Escape": if (selected >= 0) { selected = -1; dirty.table = dirty.detail = true; schedule(); } break;
    default: break;
  }
});

// ---------------------------------------------------------------------------- test hooks

const api = {
  total: () => store.n,
  shown: () => rows.n,
  ready: false,
  connected: false,
  timings,
  onDraw: null,
  lastDownload: null,
  selected: () => selected,
  /** Set filters at once; fields left out keep their value. Returns filterMs. */
  setFilter(f = {}) {
    if ("search" in f) { filter.search = f.search || ""; searchInput.value = filter.search; }
    if ("minLevel" in f) { filter.minLevel = f.minLevel || 0; $("min-level").value = String(filter.minLevel); }
    if ("levels" in f) {
      const lv = f.levels;
      for (let b = 0; b < BUCKETS; b++) {
        filter.levels[b] = !lv ? true : Array.isArray(lv) ? lv.includes(BUCKET_NAMES[b]) || lv.includes(b) : !!lv[BUCKET_NAMES[b]];
      }
      syncLevelButtons();
    }
    if ("entity" in f) filter.entity = f.entity || null;
    if ("recording" in f) filter.streamKey = f.recording || null;
    if ("timeRange" in f) { filter.timeRange = f.timeRange || null; timeline.range = filter.timeRange; timelineClear.hidden = !filter.timeRange; }
    refilter();
    dirty.side = true;
    schedule();
    return timings.filterMs;
  },
  /** Scroll so that shown row `i` is at the top (stops following). */
  scrollToRow(i) {
    setFollow(false);
    scrollToPos(Math.max(0, Math.min(rows.n - 1, i | 0)), "top");
    draw();
    return timings.redrawMs;
  },
  setFollow,
  select,
  shownRows: (from = 0, to = 100) => Array.from(rows.a.subarray(from, Math.min(to, rows.n))),
  message: (i) => store.message[i],
  download: () => requestDownload(),
  redraw: () => { draw(); return timings.redrawMs; },
  /** CSS x (within the timeline canvas) of time `t` (ms since the epoch). */
  timelineX: (t) => timeline.xAt(t),
  /** Most records the tab keeps (default 2,000,000); the oldest are dropped past it. */
  get maxRecords() { return maxRecords; },
  set maxRecords(v) { maxRecords = Math.max(1000, v | 0); enforceLimit(); schedule(); },
  timeOf: (i) => store.timeOf(i),
  /** Handle `msg` (an object) as if the server had sent it (tests). */
  inject: (msg) => onMessage({ data: JSON.stringify(msg) }),
};
window.rerunLogging = api;

// ---------------------------------------------------------------------------- start

renderHead();
refreshColors();
resetAll();
connect();
