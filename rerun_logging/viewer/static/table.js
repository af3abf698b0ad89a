// The virtual table: a pool of row elements reused as the viewport scrolls over
// millions of rows (the spacer is capped, so scroll positions are scaled), the
// header with its extra-key columns, the row counts, scrolling to a row and
// selecting one. Cells are filled with text only. This module owns `view.extraCols`
// and `view.renderVersion`.
//
// Columns: the merged view (several recordings shown together) adds App and PID and a
// coloured mark per recording (`streamColor`, also beside it in the sidebar). Every
// column but Message is resized by dragging its header's right edge, and any is moved
// by dragging its header onto another; widths (CSS variables on the table, so a resize
// touches no row) and the order are kept in localStorage. Cut cells keep their full
// text in `title`. All of this is per drawn row (about 80), never per record.

import { ERROR_LEVEL, levelClass } from "./store.js";
import { store, filter, view, dirty, timings, api, schedule } from "./state.js";
import { $, el, setHighlighted } from "./dom.js";
import { fmtTime, fmtCount, extraText, firstLine } from "./format.js";
import { posOf } from "./order.js";
import { setFollow } from "./follow.js";
import { setSelected } from "./selection.js";

export const ROWH = 20;
const MAXH = 15_000_000; // spacer height cap (Chrome caps elements at 33,554,428 px)

export const viewport = $("viewport");
const spacer = $("spacer"), layer = $("layer"), inner = $("inner");
const thead = $("thead");
let pool = [];
let lastScrollSet = -1; // a scrollTop we set ourselves (its scroll event is not the user's)
let addColumnSelect = null, addColumnKeys = -1;
const tableBox = thead.parentElement;

// ---------------------------------------------------------------------------- columns

const COLUMNS = {
  time: { label: "Time", cls: "c-time", width: 104 },
  level: { label: "Level", cls: "c-level", width: 78 },
  app: { label: "App", cls: "c-app", width: 96 },
  pid: { label: "PID", cls: "c-pid", width: 64 },
  logger: { label: "Logger", cls: "c-logger", width: 150 },
  msg: { label: "Message", cls: "c-msg", width: 0 }, // takes the rest (not resizable)
};
const DEFAULT_ORDER = ["time", "level", "app", "pid", "logger", "msg"];
const EXTRA_WIDTH = 120, MIN_WIDTH = 36;
const COLUMNS_KEY = "rerun-logging.columns";
const cols = loadColumns(); // {order: [column id], widths: {id: px}}; extras are "x:" + key

/** Colours of the recordings (Tableau 10 without its red, which means "error" here). */
const STREAM_COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f"];

/** The colour of store stream `k` (store.streams[k]): the mark on its rows, its swatch. */
export function streamColor(k) { return STREAM_COLORS[k % STREAM_COLORS.length]; }

function loadColumns() {
  try {
    const saved = JSON.parse(localStorage.getItem(COLUMNS_KEY) || "null");
    if (saved && Array.isArray(saved.order) && saved.widths && typeof saved.widths === "object") {
      return { order: saved.order.filter((id) => typeof id === "string"), widths: saved.widths };
    }
  } catch { /* no storage, or not ours: the defaults */ }
  return { order: [...DEFAULT_ORDER], widths: {} };
}

function saveColumns() {
  try { localStorage.setItem(COLUMNS_KEY, JSON.stringify(cols)); } catch { /* storage off */ }
}

/** Several recordings shown together: rows carry their app, pid and colour. */
export function isMerged() { return filter.streamKey === null && store.heldStreams() > 1; }

/** The columns shown, in their order (ids missing from the saved order take their default place). */
export function shownColumns() {
  const ids = ["time", "level"];
  if (isMerged()) ids.push("app", "pid");
  ids.push("logger", ...view.extraCols.map((k) => "x:" + k), "msg");
  for (const id of ids) if (!cols.order.includes(id)) insertDefault(id);
  return cols.order.filter((id) => ids.includes(id));
}

/** Put column `id` into the saved order where it goes by default. */
function insertDefault(id) {
  const d = DEFAULT_ORDER.indexOf(id);
  let at = -1;
  if (d > 0) at = cols.order.indexOf(DEFAULT_ORDER[d - 1]) + 1; // after its default neighbour
  if (at <= 0) at = Math.max(0, cols.order.indexOf("msg")); // extras: before the message
  if (d === 0) at = 0;
  cols.order.splice(at, 0, id);
}

/** CSS variable holding the width of column `id` (extras by their place: names may be anything). */
function widthVar(id) {
  return id.startsWith("x:") ? "--cw-x" + view.extraCols.indexOf(id.slice(2)) : "--cw-" + id;
}

function widthOf(id) {
  const w = cols.widths[id];
  if (typeof w === "number" && w >= MIN_WIDTH) return w;
  return id.startsWith("x:") ? EXTRA_WIDTH : COLUMNS[id].width;
}

/** Set every column's width variable on the table (the cells read them). */
function applyWidths() {
  for (const id of shownColumns()) if (id !== "msg") tableBox.style.setProperty(widthVar(id), widthOf(id) + "px");
}

/** A cell (row or header) of column `id`: its class, and its width from the variable. */
function styleCell(cell, id) {
  if (id !== "msg") cell.style.width = "var(" + widthVar(id) + ")";
  return cell;
}

/** Resize column `id` to `w` px (kept when `save`). */
function setWidth(id, w, save) {
  cols.widths[id] = Math.max(MIN_WIDTH, Math.round(w));
  tableBox.style.setProperty(widthVar(id), cols.widths[id] + "px");
  if (save) saveColumns();
}

/** Move column `id` to where column `target` is (before it moving left, after it moving right). */
function moveColumn(id, target) {
  shownColumns();
  const order = cols.order;
  const from = order.indexOf(id), to = order.indexOf(target);
  if (from < 0 || to < 0 || from === to) return;
  order.splice(from, 1);
  order.splice(order.indexOf(target) + (from < to ? 1 : 0), 0, id);
  saveColumns();
  renderHead(); buildPool(); dirty.table = true; schedule();
}

/** The column layout (the test hooks): ids in order and their widths. */
export function columnState() {
  return shownColumns().map((id) => ({ id, width: id === "msg" ? null : widthOf(id) }));
}

/** Sizes of the virtual list: rows, spacer, scroll range and the scroll-to-virtual scale. */
export function geometry() {
  const n = view.rows.n;
  const viewH = viewport.clientHeight;
  const total = n * ROWH;
  const spacerH = Math.min(total, MAXH);
  const scrollMax = Math.max(0, spacerH - viewH);
  const virtMax = Math.max(0, total - viewH);
  const scale = scrollMax > 0 ? virtMax / scrollMax : 1;
  return { n, viewH, total, spacerH, scrollMax, virtMax, scale };
}

/** Position of the first row in view. */
export function firstVisiblePos() {
  const g = geometry();
  return Math.floor((Math.min(viewport.scrollTop, g.scrollMax) * g.scale) / ROWH);
}

/** (Re)build the pool of row elements when the height or the columns changed. */
export function buildPool() {
  const extraCols = view.extraCols;
  const need = Math.ceil((viewport.clientHeight || 800) / ROWH) + 2;
  const shown = shownColumns(), mark = store.heldStreams() > 1;
  const colsKey = shown.join("\u0000") + (mark ? "\u0000mark" : "");
  if (pool.length === need && pool.colsKey === colsKey) return;
  if (pool.colsKey !== colsKey) renderHead(); // the merged view came or went, or the columns changed
  inner.textContent = "";
  pool = [];
  pool.colsKey = colsKey;
  pool.shows = { app: shown.includes("app"), pid: shown.includes("pid"), mark };
  applyWidths();
  for (let k = 0; k < need; k++) {
    const r = el("div", "row");
    r.hidden = true;
    const cells = {
      time: el("span", "c c-time"), level: el("span", "c c-level"), logger: el("span", "c c-logger"),
      app: el("span", "c c-app"), pid: el("span", "c c-pid"), mark: el("span", "c-mark"),
      xs: extraCols.map(() => el("span", "c c-x")), msg: el("span", "c c-msg"),
    };
    if (mark) r.appendChild(cells.mark);
    for (const id of shown) {
      const cell = id.startsWith("x:") ? cells.xs[extraCols.indexOf(id.slice(2))] : cells[id];
      r.appendChild(styleCell(cell, id));
    }
    r._cells = cells;
    r._row = -1;
    r._key = "";
    inner.appendChild(r);
    pool.push(r);
  }
  redrawEveryRow();
}

/** Make the next draw refill every row element, not only those showing another record. */
export function redrawEveryRow() { view.renderVersion++; }

/** Show the extra key `key` as a column (after the others). */
function addColumn(key) {
  if (view.extraCols.includes(key)) return;
  view.extraCols.push(key);
  renderHead(); buildPool(); dirty.table = true; schedule();
}

/** Stop showing the extra key `key` as a column. */
function removeColumn(key) {
  view.extraCols = view.extraCols.filter((k) => k !== key);
  renderHead(); buildPool(); dirty.table = true; schedule();
}

/** The header: the columns in their order (extras removable), each resizable and movable
 * by dragging, and the "+ column" menu in the message's. */
export function renderHead() {
  thead.textContent = "";
  applyWidths();
  if (store.heldStreams() > 1) thead.appendChild(el("div", "c-mark"));
  for (const id of shownColumns()) {
    const h = id.startsWith("x:") ? extraHead(id.slice(2)) : id === "msg" ? messageHead() : el("div", "c " + COLUMNS[id].cls, COLUMNS[id].label);
    h.setAttribute("data-col", id);
    h.setAttribute("data-testid", "col-head");
    h.title = (id.startsWith("x:") ? id.slice(2) : COLUMNS[id].label) + ": drag onto another column to move it";
    if (id !== "msg") h.appendChild(resizeHandle(id));
    thead.appendChild(styleCell(h, id));
  }
}

function extraHead(key) {
  const h = el("div", "c c-x");
  const name = el("span", "name", key);
  name.title = key;
  const rm = el("button", "rm", "\u00d7");
  rm.type = "button";
  rm.title = "Remove column";
  rm.setAttribute("data-testid", "remove-column");
  rm.addEventListener("click", () => removeColumn(key));
  h.append(name, rm);
  return h;
}

/** The right edge of a header: drag it to resize column `id`. */
function resizeHandle(id) {
  const grip = el("span", "col-resize");
  grip.setAttribute("data-testid", "col-resize");
  grip.title = "Drag to resize (double-click: the default width)";
  grip.addEventListener("dblclick", (e) => {
    e.stopPropagation();
    delete cols.widths[id];
    saveColumns();
    applyWidths();
  });
  grip.addEventListener("mousedown", (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    e.stopPropagation();
    const x0 = e.clientX, w0 = grip.parentElement.getBoundingClientRect().width;
    drag(e, (ev) => setWidth(id, w0 + ev.clientX - x0, false), (ev) => setWidth(id, w0 + ev.clientX - x0, true));
  });
  return grip;
}

/** Follow the mouse from `e` until released: `move(ev)` on each move, `up(ev)` at the end. */
function drag(e, move, up) {
  const onUp = (ev) => {
    window.removeEventListener("mousemove", move);
    window.removeEventListener("mouseup", onUp);
    document.body.classList.remove("col-dragging");
    up(ev);
  };
  document.body.classList.add("col-dragging");
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", onUp);
}

/** Header under the pointer of `ev`, or null. */
function headAt(ev) {
  const t = document.elementFromPoint(ev.clientX, ev.clientY);
  return t && t.closest ? t.closest("#thead [data-col]") : null;
}

// a header dragged onto another moves its column there
thead.addEventListener("mousedown", (e) => {
  const h = e.target.closest("[data-col]");
  if (e.button !== 0 || !h || e.target.closest("button, select, .col-resize")) return;
  e.preventDefault();
  const id = h.getAttribute("data-col"), x0 = e.clientX;
  let over = null;
  const mark = (t) => {
    if (over) over.classList.remove("drop-target");
    over = t && t !== h ? t : null;
    if (over) over.classList.add("drop-target");
  };
  drag(e, (ev) => {
    if (Math.abs(ev.clientX - x0) < 4) return;
    h.classList.add("moving");
    mark(headAt(ev));
  }, (ev) => {
    h.classList.remove("moving");
    const target = Math.abs(ev.clientX - x0) >= 4 ? headAt(ev) : null;
    mark(null);
    if (target && target !== h) moveColumn(id, target.getAttribute("data-col"));
  });
});

function messageHead() {
  const m = el("div", "c c-msg");
  m.appendChild(el("span", null, "Message"));
  const add = el("select");
  add.setAttribute("data-testid", "add-column");
  add.title = "Add a column for an extra key";
  add.addEventListener("focus", () => fillAddColumn(add));
  add.addEventListener("mousedown", () => fillAddColumn(add));
  add.addEventListener("change", () => { if (add.value) addColumn(add.value); });
  fillAddColumn(add);
  addColumnSelect = add;
  m.appendChild(add);
  return m;
}

function fillAddColumn(sel) {
  addColumnKeys = store.extraKeys.size;
  const keys = [...store.extraKeys].filter((k) => !view.extraCols.includes(k)).sort();
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

/** Refill the "+ column" menu when new extra keys arrived (not while it is in use). */
export function refreshAddColumn() {
  if (addColumnSelect && addColumnKeys !== store.extraKeys.size && document.activeElement !== addColumnSelect) {
    fillAddColumn(addColumnSelect);
  }
}

/** "shown / held" in the toolbar. */
export function updateCounts() {
  const rows = view.rows;
  $("counts").textContent = fmtCount(rows.n) + " / " + fmtCount(store.n);
  $("counts").title = fmtCount(rows.n) + " rows shown of " + fmtCount(store.n) + " records held";
}

/** Draw the rows in view (only rows whose record or version changed are refilled). */
export function draw() {
  dirty.table = false;
  const t0 = performance.now();
  buildPool();
  const rows = view.rows, selected = view.selected, extraCols = view.extraCols;
  const g = geometry();
  spacer.style.height = g.spacerH + "px";
  layer.style.height = g.viewH + "px";
  if (view.follow && viewport.scrollTop !== g.scrollMax) {
    viewport.scrollTop = g.scrollMax;
    lastScrollSet = viewport.scrollTop;
  }
  const top = Math.min(viewport.scrollTop, g.scrollMax);
  const virtTop = top * g.scale;
  const first = Math.floor(virtTop / ROWH);
  const offset = virtTop - first * ROWH;
  inner.style.transform = "translateY(" + (-offset) + "px)";
  const q = filter.q || "";
  const S = store.strings;
  const shows = pool.shows;
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
    const key = i + ":" + view.renderVersion;
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
      if (shows.mark || shows.app || shows.pid) fillStream(c, store.stream[i], shows);
      const ex = store.extras[i];
      for (let x = 0; x < extraCols.length; x++) {
        const t = ex === undefined ? "" : extraText(ex[extraCols[x]]);
        setHighlighted(c.xs[x], t.length > 200 ? t.slice(0, 200) + "\u2026" : t, q);
        c.xs[x].title = t.length > 2000 ? t.slice(0, 2000) + "\u2026" : t;
      }
      const text = store.message[i];
      setHighlighted(c.msg, firstLine(text), q);
      c.msg.title = text.length > 2000 ? text.slice(0, 2000) + "\u2026" : text;
      let cls = "row";
      if (lv >= ERROR_LEVEL) cls += " e"; else if (lv >= 30) cls += " w";
      if (store.exception.has(i)) cls += " exc";
      if (i === selected) cls += " sel";
      if (view.context !== null && i === view.context.row) cls += " ctx"; // context.js: the record whose context this is
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
      view.connected ? "No records yet: waiting for apps to log." : "Not connected to the viewer.";
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

/** The recording cells of a row of stream `st`: its colour mark, app and pid. */
function fillStream(c, st, shows) {
  const s = store.streams[st];
  if (shows.mark) c.mark.style.background = streamColor(st);
  if (shows.app) {
    c.app.textContent = s && s.application !== undefined ? String(s.application) : "";
    c.app.title = s ? c.app.textContent + " (recording " + s.recording + ")" : "";
  }
  if (shows.pid) c.pid.textContent = s ? String(s.pid) : "";
}

// Scrolling by the user: at the bottom follows, above it stops following.
viewport.addEventListener("scroll", () => {
  const g = geometry();
  const top = viewport.scrollTop;
  if (top === lastScrollSet) { lastScrollSet = -1; dirty.table = true; schedule(); return; }
  lastScrollSet = -1;
  const atBottom = top >= g.scrollMax - 2;
  if (atBottom && !view.follow && g.n > 0 && view.context === null) setFollow(true); // the context view never follows
  else if (!atBottom && view.follow) setFollow(false);
  dirty.table = true;
  schedule();
}, { passive: true });

inner.addEventListener("click", (e) => {
  const r = e.target.closest(".row");
  if (r && r._row >= 0) select(r._row, false);
});

new ResizeObserver(() => {
  dirty.table = dirty.timeline = dirty.plot = true;
  schedule();
}).observe(viewport);

/** Scroll so that position `p` is in view ("nearest"), at the "top" or in the "center". */
export function scrollToPos(p, where = "nearest") {
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
  setVirtualTop(virt, g);
  const atBottom = viewport.scrollTop >= g.scrollMax - 2;
  if (!atBottom && view.follow) setFollow(false);
  dirty.table = true;
  schedule();
}

/** Set the scroll position to virtual pixel `virt` (ours: its scroll event will not toggle follow). */
function setVirtualTop(virt, g) {
  const st = Math.round(virt / g.scale);
  if (st !== viewport.scrollTop) {
    viewport.scrollTop = st;
    lastScrollSet = viewport.scrollTop;
  }
}

/** The row at the top of the view and how far into it, to keep it there (`restoreAnchor`). */
export function captureAnchor() {
  const g = geometry();
  if (!g.n) return null;
  const virtTop = Math.min(viewport.scrollTop, g.scrollMax) * g.scale;
  const p = Math.min(g.n - 1, Math.floor(virtTop / ROWH));
  return { row: view.rows.a[p], pos: p, offset: virtTop - p * ROWH };
}

/** Scroll back to an anchor of `captureAnchor` (context.js: back to the filtered view); false when its row is not shown. */
export function scrollToAnchor(anchor) {
  const p = posOf(anchor.row);
  if (p < 0) return false;
  const g = geometry();
  spacer.style.height = g.spacerH + "px";
  setVirtualTop(Math.max(0, Math.min(g.virtMax, p * ROWH + anchor.offset)), g);
  dirty.table = true;
  schedule();
  return true;
}

/** Scroll so that the anchor's row is at the top again (rows were inserted above it). */
export function restoreAnchor(anchor) {
  const p = posOf(anchor.row);
  if (p < 0 || p === anchor.pos) return;
  const g = geometry();
  spacer.style.height = g.spacerH + "px";
  setVirtualTop(Math.max(0, Math.min(g.virtMax, p * ROWH + anchor.offset)), g);
  dirty.table = true;
}

/** Select store row `i` (the detail pane shows it); `scroll` brings it into view. */
export function select(i, scroll = true) {
  setSelected(i);
  if (scroll) {
    const p = posOf(i);
    if (p >= 0) scrollToPos(p, "nearest");
  }
}
