// Download of the rows shown as a .rlg recording: the request lists, per stream,
// runs of consecutive seq numbers; the server answers with a `download` message
// (name, counts) and then the file as one binary message, saved by the browser.

import { store, view, api } from "./state.js";
import { $ } from "./dom.js";
import { fmtCount } from "./format.js";
import { notice, flash } from "./notices.js";
import { isOpen, send } from "./connection.js";

const MAX_SEQ_NUMBERS = 1_000_000; // most numbers in one request (the server bounds its size)
let downloadId = 0;
let pendingDownload = null; // {id, meta}

/** Ask the server for the rows shown; returns the request sent, or null. */
export function requestDownload() {
  if (!isOpen()) {
    notice("Not connected: cannot download now.", "error", "download-error");
    return null;
  }
  const rows = view.rows;
  if (rows.n === 0) { flash("No rows to download."); return null; }
  const groups = new Map();
  const order = [];
  let numbers = 0;
  // in store order (runs of seq per stream), whatever the order shown
  const a = view.timeOrder ? rows.view().slice().sort() : rows.a;
  const n = rows.n, stream = store.stream, seq = store.seq;
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
  send(JSON.stringify(req));
  $("download").disabled = true;
  setTimeout(() => { $("download").disabled = false; }, 1000);
  return req;
}

/** The server's `download` message: the file's name and counts (the file follows). */
export function onDownloadMeta(msg) {
  if (!pendingDownload || msg.id !== pendingDownload.id) {
    pendingDownload = { id: msg.id, meta: msg };
  } else pendingDownload.meta = msg;
  if (msg.missing > 0) {
    notice(fmtCount(msg.missing) + " records not held by the server any more (the download has " +
      fmtCount(msg.records) + ")", "", "download-missing");
  }
}

/** An `error` message: when it answers the pending download, that download is over. */
export function onDownloadError(msg) {
  if (pendingDownload && msg.id === pendingDownload.id) pendingDownload = null;
}

/** The file itself (a binary message): save it under the name the server gave. */
export function onBinary(data) {
  const meta = pendingDownload && pendingDownload.meta;
  pendingDownload = null;
  const name = meta && typeof meta.name === "string" && meta.name ? meta.name : "rerun-logging.rlg";
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

/** A new connection: no download is pending any more. */
export function resetDownload() { pendingDownload = null; }

$("download").addEventListener("click", () => requestDownload());
