// The feed protocol (see rerun_logging/viewer/feed.py): what each message from the
// server does to the page. `records` batches are appended and filtered on arrival
// (only the new rows: filtering.js), `recordings` sets the list of streams (the
// first whole, then changes only); a new connection starts from scratch.
// Also keeps the tab under its record limit. This module owns `view.recordings`,
// `view.ready` and `view.maxRecords`.

import { store, filter, view, dirty, timings, api, schedule } from "./state.js";
import { fmtCount } from "./format.js";
import { notice, onMissed, showEvicted, resetNotices } from "./notices.js";
import { clearNew } from "./follow.js";
import { filterArrived, resetRows } from "./filtering.js";
import { orderAppend, orderEvict, orderReset } from "./order.js";
import { redrawEveryRow } from "./table.js";
import { clearSelection, evictSelection } from "./selection.js";
import { resetSidebar } from "./sidebar.js";
import { resetPlot } from "./panels.js";
import { onDownloadMeta, onDownloadError, onBinary, resetDownload } from "./download.js";
import { isBatch, readBatch } from "./batch.js";

/** Forget everything held: a new connection gets a fresh snapshot. */
export function resetAll() {
  store.clearAll();
  resetRows();
  orderReset();
  clearSelection();
  clearNew();
  resetNotices();
  view.recordings = [];
  resetSidebar();
  view.ready = false;
  api.ready = false;
  resetPlot();
  filter.prepare(store);
  redrawEveryRow();
  resetDownload();
  dirty.filter = true;
  dirty.side = dirty.detail = dirty.table = dirty.timeline = dirty.plot = true;
  schedule();
}

/** Handle one WebSocket message (text: a JSON message; binary: a records batch or a downloaded file). */
export function onMessage(ev) {
  const t0 = performance.now();
  if (typeof ev.data !== "string") {
    if (!isBatch(ev.data)) { onBinary(ev.data); return; }
    let msg;
    try { msg = readBatch(ev.data, store); } catch (e) {
      notice("Server: a records batch did not decode (" + String(e.message || e) + ")", "error", "server-error");
      return;
    }
    onRecords(msg, t0);
    return;
  }
  let msg;
  try { msg = JSON.parse(ev.data); } catch { return; }
  switch (msg.type) {
    case "records": onRecords(msg, t0); break;
    case "recordings":
      view.recordings = applyRecordings(view.recordings, msg);
      for (const r of view.recordings) {
        store.streams[store.streamOf(String(r.recording), r.pid)].application = r.application; // app:
      }
      view.ready = true;
      api.ready = true;
      dirty.side = true;
      schedule();
      break;
    case "missed": onMissed(msg); dirty.side = true; schedule(); break;
    case "download": onDownloadMeta(msg); break;
    case "error":
      onDownloadError(msg);
      notice("Server: " + String(msg.error), "error", "server-error");
      break;
    default: break;
  }
}

function recordingKey(r) { return String(r.recording) + "\u0000" + r.pid + "\u0000" + r.start_ns; }

/**
 * The streams after a `recordings` message: the first lists them all; an update
 * (`update: true`) lists new or changed entries (changed ones keep their place) and
 * the keys [recording, pid, start_ns] of those `removed`.
 */
export function applyRecordings(current, msg) {
  const entries = Array.isArray(msg.recordings) ? msg.recordings : [];
  if (!msg.update) return entries;
  const gone = new Set((Array.isArray(msg.removed) ? msg.removed : []).map(
    (k) => String(k[0]) + "\u0000" + k[1] + "\u0000" + k[2]));
  const changed = new Map(entries.map((r) => [recordingKey(r), r]));
  const out = [];
  for (const r of current) {
    const key = recordingKey(r);
    if (gone.has(key)) continue;
    const next = changed.get(key);
    if (next !== undefined) { out.push(next); changed.delete(key); } else out.push(r);
  }
  for (const r of changed.values()) out.push(r);
  return out;
}

/** Keep at most `n` records in the tab (at least 1000): the oldest go first, now if over. */
export function setMaxRecords(n) {
  view.maxRecords = Math.max(1000, n | 0);
  enforceLimit();
  schedule();
}

/** Past `view.maxRecords`, drop the oldest records (down to 80 % of it) and say so. */
function enforceLimit() {
  const maxRecords = view.maxRecords;
  if (store.n <= maxRecords) return;
  const k = store.n - Math.floor(maxRecords * 0.8);
  store.evict(k);
  orderEvict(k);
  evictSelection(k);
  dirty.filter = dirty.detail = dirty.side = true;
  showEvicted("The oldest " + fmtCount(store.evicted) + " records were dropped from this tab to keep it under " +
    fmtCount(maxRecords) + " records (the server may still hold them).");
}

function onRecords(msg, t0) {
  const [first, count] = store.appendBatch(msg);
  if (!count) return;
  orderAppend(first, count);
  if (store.n > view.maxRecords) {
    enforceLimit();
    timings.lastBatchParseMs = performance.now() - t0;
    schedule();
    return;
  }
  filterArrived(first, count);
  timings.lastBatchParseMs = performance.now() - t0;
  dirty.table = dirty.timeline = dirty.plot = dirty.side = true;
  schedule();
}
