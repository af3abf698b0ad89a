// The detail pane: every field of the selected record (extras, exception, stack, its
// OpenTelemetry trace and span with a button finding the records of each), "copy as
// JSON", "show context" (context.js), and the keyboard shortcuts when nothing is selected.

import { levelClass } from "./store.js";
import { store, view } from "./state.js";
import { $, el } from "./dom.js";
import { fmtFullTime } from "./format.js";
import { flash } from "./notices.js";
import { searchFor } from "./toolbar.js";
import { showContext } from "./context.js";
import { shortcutList } from "./keyboard.js";
import { makeFilterable, rowTerm, termFor, hasTerm } from "./facets.js";

const detail = $("detail");

/** Every field of row `i` as a plain object (for "copy as JSON"). */
export function recordJson(i) {
  const s = (id) => (id >= 0 ? store.strings[id] : null);
  const st = store.streams[store.stream[i]] || {};
  const odd = store.odd.get(i);
  const exc = store.exception.get(i);
  const trace = store.trace.get(i);
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
    trace_id: trace ? trace[0] : null, span_id: trace ? trace[1] : null,
    trace_flags: trace ? trace[2] : null,
    recording: st.recording ?? null, pid: st.pid ?? null, seq: store.seq[i],
  };
}

/** The trace and span rows of the fields list, each with a button that searches for it. */
function addTrace(dl, trace) {
  if (!trace) return;
  const row = (name, id, what) => {
    const dd = el("dd", null);
    dd.setAttribute("data-field", name);
    const find = el("button", "link", "find");
    find.type = "button";
    find.title = "Show the records of this " + what;
    find.setAttribute("data-testid", "find-" + what);
    find.addEventListener("click", () => searchFor(id));
    dd.append(el("code", null, id), " ", find);
    dl.append(el("dt", null, name), dd);
  };
  row("trace id", trace[0], "trace");
  if (trace[1] !== null) row("span id", trace[1], "span");
  const flags = el("dd", null, trace[2].toString(16).padStart(2, "0") + ((trace[2] & 1) ? " (sampled)" : ""));
  flags.setAttribute("data-field", "trace flags");
  dl.append(el("dt", null, "trace flags"), flags);
}

/** Fill the pane for the selected row (or the shortcuts when none). */
export function renderDetail() {
  detail.textContent = "";
  const i = view.selected;
  if (i < 0 || i >= store.n) {
    detail.appendChild(el("div", "detail-empty", "Select a row to see every field."));
    detail.appendChild(shortcutList()); // keyboard.js
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
  const context = el("button", "link", "show context");
  context.type = "button";
  context.title = "The records around this one in its stream, ignoring the filters (c)";
  context.setAttribute("data-testid", "show-context");
  context.addEventListener("click", () => showContext(i));
  head.append(badge, el("span", "when", fmtFullTime(i)), copy, context);
  detail.appendChild(head);
  const msg = el("div", "msg", store.message[i]);
  msg.setAttribute("data-testid", "detail-message");
  detail.appendChild(msg);

  const dl = el("dl");
  const add = (k, v) => {
    if (v === null || v === undefined || v === "") return;
    const dt = el("dt", null, k), dd = el("dd");
    dd.setAttribute("data-field", k);
    const term = rowTerm(i, k); // a click adds it to the search (facets.js)
    dd.appendChild(term === null ? document.createTextNode(v) : makeFilterable(el("span", null, v), term));
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
  const rec = st ? view.recordings.find((r) => r.recording === st.recording && r.pid === st.pid) : null;
  if (rec) add("application", rec.application + " @ " + rec.host);
  if (st) add("recording", st.recording + " (pid " + st.pid + ")");
  add("seq", String(store.seq[i]));
  addTrace(dl, store.trace.get(i));
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
      dd.appendChild(makeFilterable(el("pre", null, text), termFor(k, ex[k]))); // a click: k:value (facets.js)
      edl.append(makeFilterable(el("dt", null, k), hasTerm(k), false), dd); // a click: has:k
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
