// Text formatting of times, counts and cell values, shared by the table, the
// toolbar, the sidebar and the detail pane.

import { store } from "./state.js";

const MSG_CHARS = 400; // characters of a message drawn in the table

export function pad(n, w = 2) { return String(n).padStart(w, "0"); }

/** Local clock time of `ms` with milliseconds ("12:34:56.789"). */
export function fmtTime(ms) {
  const d = new Date(ms);
  return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3);
}

/** Local date and time of store row `i`, to the nanosecond, with the UTC offset. */
export function fmtFullTime(i) {
  const ms = store.time[i];
  const d = new Date(ms);
  const date = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
  const frac = pad(d.getMilliseconds(), 3) + pad(store.ns[i], 6);
  const off = -d.getTimezoneOffset();
  const tz = "UTC" + (off >= 0 ? "+" : "-") + pad(Math.floor(Math.abs(off) / 60)) + ":" + pad(Math.abs(off) % 60);
  return date + " " + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + frac + " " + tz;
}

export function fmtCount(n) { return n.toLocaleString("en-US"); }

/** A short count for tight places ("12.3k", "1.50M"). */
export function fmtCompact(n) {
  if (n < 10000) return String(n);
  if (n < 1e6) return (n / 1e3).toFixed(n < 1e5 ? 1 : 0) + "k";
  return (n / 1e6).toFixed(n < 1e7 ? 2 : 1) + "M";
}

/** An extra's value as cell text (strings as they are, the rest as JSON). */
export function extraText(v) {
  if (v === undefined) return "";
  if (typeof v === "string") return v;
  try { return JSON.stringify(v); } catch { return String(v); }
}

/** The first line of a message, marked when cut, at most MSG_CHARS characters. */
export function firstLine(s) {
  const nl = s.indexOf("\n");
  let t = nl >= 0 ? s.slice(0, nl) + " \u21b5" : s;
  if (t.length > MSG_CHARS) t = t.slice(0, MSG_CHARS) + "\u2026";
  return t;
}
