// The virtual table: a pool of row elements reused as the viewport scrolls over
// millions of rows (the spacer is capped, so scroll positions are scaled), the
// header with its extra-key columns, the row counts, scrolling to a row and
// selecting one. Cells are filled with text only. This module owns `view.extraCols`
// and `view.renderVersion`.

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

/** The header: fixed columns, one per extra key (removable), and the "+ column" menu. */
export function renderHead() {
  thead.textContent = "";
  thead.append(el("div", "c c-time", "Time"), el("div", "c c-level", "Level"), el("div", "c c-logger", "Logger"));
  for (const key of view.extraCols) {
    const h = el("div", "c c-x");
    const name = el("span", null, key);
    name.title = key;
    const rm = el("button", "rm", "\u00d7");
    rm.type = "button";
    rm.title = "Remove column";
    rm.setAttribute("data-testid", "remove-column");
    rm.addEventListener("click", () => removeColumn(key));
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
  add.addEventListener("change", () => { if (add.value) addColumn(add.value); });
  fillAddColumn(add);
  addColumnSelect = add;
  m.appendChild(add);
  thead.appendChild(m);
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

// Scrolling by the user: at the bottom follows, above it stops following.
viewport.addEventListener("scroll", () => {
  const g = geometry();
  const top = viewport.scrollTop;
  if (top === lastScrollSet) { lastScrollSet = -1; dirty.table = true; schedule(); return; }
  lastScrollSet = -1;
  const atBottom = top >= g.scrollMax - 2;
  if (atBottom && !view.follow && g.n > 0) setFollow(true);
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
