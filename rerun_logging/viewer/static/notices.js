// Notices under the toolbar: errors, the "records missed" and "records dropped"
// notices (updated in place, one of each), and short flashes that go away alone.

import { store } from "./state.js";
import { $, el } from "./dom.js";
import { fmtCount } from "./format.js";

const notices = $("notices");
let missedNotice = null, missedTotal = 0, olderTotal = 0;
let evictNotice = null;

/** Show a notice with a dismiss button; returns its element (`_text` holds the text). */
export function notice(text, kind = "", testid = "notice") {
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

/** A notice that goes away after 2.5 s. */
export function flash(text) {
  const n = notice(text, "", "flash");
  setTimeout(() => n.remove(), 2500);
}

/**
 * A `missed` message: apply its strings, and count what this tab fell behind by and
 * the older records the viewer holds that its snapshot left out (`older`).
 */
export function onMissed(msg) {
  store.applyStrings(msg);
  const older = msg.older || 0;
  olderTotal += older;
  missedTotal += (msg.records || 0) - older;
  const parts = [];
  if (missedTotal > 0) parts.push(fmtCount(missedTotal) + " records missed: this tab fell behind");
  if (olderTotal > 0) {
    parts.push(fmtCount(olderTotal) + " older records held by the viewer were not sent to this tab " +
      "(a tab that joins gets the newest)");
  }
  const text = parts.join("; ");
  if (!missedNotice) missedNotice = notice(text, "", "missed");
  else missedNotice._text.textContent = text;
}

/** Say (in one notice, updated) that the oldest records were dropped from the tab. */
export function showEvicted(text) {
  if (!evictNotice || !evictNotice.isConnected) evictNotice = notice(text, "", "evicted");
  else evictNotice._text.textContent = text;
}

/** A new connection: the missed and dropped notices no longer apply. */
export function resetNotices() {
  missedTotal = 0;
  olderTotal = 0;
  if (missedNotice) { missedNotice.remove(); missedNotice = null; }
  if (evictNotice) { evictNotice.remove(); evictNotice = null; }
}
