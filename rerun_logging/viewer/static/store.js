// Columnar record store: typed arrays grown by doubling, a global string table,
// and the filter that turns it into an Int32Array of matching row numbers.
// Pure data: no DOM here.

import { parseQuery } from "./query.js";
import { compileQuery } from "./predicates.js";

export const LEVELS = [
  { name: "DEBUG", level: 10 },
  { name: "INFO", level: 20 },
  { name: "WARNING", level: 30 },
  { name: "ERROR", level: 40 },
  { name: "CRITICAL", level: 50 },
];
export const OTHER = 5; // bucket of non-standard numeric levels
export const BUCKETS = 6;
export const BUCKET_NAMES = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "OTHER"];
export const ERROR_LEVEL = 40;

/** An entity path as "/a/b" (leading slash, no empty segments). */
export function normPath(p) {
  return "/" + String(p).split("/").filter((x) => x.length > 0).join("/");
}

/** Bucket index (0..5) of a numeric level. */
export function bucketOf(level) {
  switch (level) {
    case 10: return 0;
    case 20: return 1;
    case 30: return 2;
    case 40: return 3;
    case 50: return 4;
    default: return OTHER;
  }
}

/** Colour class (by range) of a numeric level: debug/info/warning/error/critical/trace. */
export function levelClass(level) {
  if (level >= 50) return "lv-critical";
  if (level >= 40) return "lv-error";
  if (level >= 30) return "lv-warning";
  if (level >= 20) return "lv-info";
  if (level >= 10) return "lv-debug";
  return "lv-trace";
}

/** A growable Int32Array. */
export class IntVec {
  constructor(cap = 1024) { this.a = new Int32Array(cap); this.n = 0; }
  push(v) {
    if (this.n === this.a.length) this.grow(this.n * 2);
    this.a[this.n++] = v;
  }
  grow(cap) {
    const b = new Int32Array(Math.max(cap, 16));
    b.set(this.a.subarray(0, this.n));
    this.a = b;
  }
  clear() { this.n = 0; }
  view() { return this.a.subarray(0, this.n); }
}

const NUM_COLS = {
  time: Float64Array,   // whole ms since the epoch
  ns: Uint32Array,      // ns within the ms
  seq: Float64Array,
  level: Uint16Array,
  bucket: Uint8Array,
  levelName: Int32Array,
  logger: Int32Array,
  entity: Int32Array,
  template: Int32Array, // -1: none
  thread: Float64Array, // NaN: none or not a number (see threadText)
  threadName: Int32Array,
  process: Float64Array,
  processName: Int32Array,
  task: Int32Array,
  path: Int32Array,
  line: Int32Array,
  func: Int32Array,
  stream: Uint16Array,  // index into store.streams
};

export class Store {
  constructor() {
    this.strings = [];          // global string table (ours; ids stay valid across resets)
    this.stringIds = new Map(); // string -> global id
    this.cap = 0;
    this.clear();
  }

  clear() {
    this.generation = (this.generation || 0) + 1; // rows renumbered: caches of rows start over
    this.n = 0;
    this.cap = 1024;
    for (const [name, T] of Object.entries(NUM_COLS)) this[name] = new T(this.cap);
    this.message = [];
    this.lower = [];            // lowercase message + extras text, for search
    this.extras = [];           // sparse
    this.args = [];             // sparse: the arguments of a %-style message
    this.odd = new Map();       // row -> {thread, process} when not plain numbers
    this.exception = new Map(); // row -> [type, value, traceback]
    this.stack = new Map();     // row -> text
    this.trace = new Map();     // row -> [trace_id, span_id, flags] (OpenTelemetry, hex ids)
    this.sidMap = [];           // the server's string ids -> ours (per connection)
    this.streams = [];          // {key, recording, pid}
    this.streamIndex = new Map();
    this.streamRows = [];       // rows held per stream
    this.bucketCounts = new Float64Array(BUCKETS);
    this.entityCounts = new Map(); // entity string id -> Float64Array(BUCKETS)
    this.extraKeys = new Set();
    this.numericKeys = new Set();
    this.minTime = Infinity;
    this.maxTime = -Infinity;   // ms (float, ns included)
    this.newest = NaN;          // time of the newest record held (float ms, ns included)
    this.version = 0;           // bumped on every append
    this.evicted = 0;           // oldest rows dropped to stay under the limit
    this.entityVersion = 0;     // bumped when a new entity appears
  }

  /** Forget everything, the string table too (a new connection's fresh snapshot). */
  clearAll() {
    this.strings = [];
    this.stringIds = new Map();
    this.clear();
  }

  /** Start a new connection: its string table starts empty. */
  resetServerStrings() { this.sidMap = []; }

  intern(s) {
    let id = this.stringIds.get(s);
    if (id === undefined) {
      id = this.strings.length;
      this.strings.push(s);
      this.stringIds.set(s, id);
    }
    return id;
  }

  /** Apply a message's `reset` and `strings` to the server string table. */
  applyStrings(msg) {
    if (msg.reset) this.sidMap = [];
    const list = msg.strings;
    if (list) for (let i = 0; i < list.length; i++) this.sidMap.push(this.intern(String(list[i])));
  }

  str(id) { return id >= 0 ? this.strings[id] : null; }

  streamOf(recording, pid) {
    const key = recording + "\u0000" + pid;
    let i = this.streamIndex.get(key);
    if (i === undefined) {
      i = this.streams.length;
      this.streams.push({ key, recording, pid });
      this.streamIndex.set(key, i);
    }
    return i;
  }

  grow(need) {
    let cap = this.cap;
    while (cap < need) cap *= 2;
    if (cap === this.cap) return;
    for (const [name, T] of Object.entries(NUM_COLS)) {
      const b = new T(cap);
      b.set(this[name].subarray(0, this.n));
      this[name] = b;
    }
    this.cap = cap;
  }

  /** Append a `records` batch (columns: JSON, or binary as batch.js reads it); returns [first row, count]. */
  appendBatch(msg) {
    this.applyStrings(msg);
    const count = msg.seq.length;
    const first = this.n;
    if (count === 0) return [first, 0];
    this.grow(first + count);
    const sid = this.sidMap;
    // a binary batch (batch.js) holds the tab's own ids already; a JSON one the server's
    const mapS = msg.ids ? (v) => v : (v) => (v === null || v === undefined ? -1 : (sid[v] ?? -1));
    const stream = this.streamOf(String(msg.recording), msg.pid);
    // a batch of several streams (a snapshot) names each row's: streams[stream[row]]
    const rowStream = Array.isArray(msg.stream) && Array.isArray(msg.streams) ? msg.stream : null;
    const rowStreams = rowStream === null ? null
      : msg.streams.map((s) => this.streamOf(String(s[0]), s[1]));
    if (rowStream === null) this.streamRows[stream] = (this.streamRows[stream] || 0) + count;
    const { time, ns, seq, level, bucket, levelName, logger, entity, template, thread, threadName,
      process, processName, task, path, line, func } = this;
    const streams = this.stream;
    const mTime = msg.time, mNs = msg.ns, mLevel = msg.level, mExtras = msg.extras;
    const mArgs = msg.args || null;
    const bucketCounts = this.bucketCounts;
    let maxT = this.maxTime, minT = this.minTime;
    let lastEnt = -2, lastCounts;
    for (let j = 0; j < count; j++) {
      const i = first + j;
      const t = mTime[j], tns = mNs[j];
      time[i] = t; ns[i] = tns;
      const tf = t + tns / 1e6;
      if (tf > maxT) maxT = tf;
      if (tf < minT) minT = tf;
      seq[i] = msg.seq[j];
      const lv = mLevel[j];
      level[i] = lv < 0 ? 0 : lv > 65535 ? 65535 : lv;
      const b = bucketOf(lv);
      bucket[i] = b;
      bucketCounts[b]++;
      levelName[i] = mapS(msg.level_name[j]);
      logger[i] = mapS(msg.logger[j]);
      const ent = mapS(msg.entity[j]);
      entity[i] = ent;
      let ec = ent === lastEnt ? lastCounts : this.entityCounts.get(ent);
      if (ec === undefined) {
        ec = new Float64Array(BUCKETS);
        this.entityCounts.set(ent, ec);
        this.entityVersion++;
      }
      ec[b]++;
      lastEnt = ent; lastCounts = ec;
      template[i] = mapS(msg.template[j]);
      const th = msg.thread[j], pr = msg.process[j];
      thread[i] = typeof th === "number" ? th : NaN;
      process[i] = typeof pr === "number" ? pr : NaN;
      if ((th !== null && typeof th !== "number") || (pr !== null && typeof pr !== "number")) {
        this.odd.set(i, { thread: th, process: pr });
      }
      threadName[i] = mapS(msg.thread_name[j]);
      processName[i] = mapS(msg.process_name[j]);
      task[i] = mapS(msg.task[j]);
      path[i] = mapS(msg.path[j]);
      line[i] = msg.line[j] | 0;
      func[i] = mapS(msg.function[j]);
      let st = stream;
      if (rowStream !== null) {
        st = rowStreams[rowStream[j]] ?? stream;
        this.streamRows[st] = (this.streamRows[st] || 0) + 1;
      }
      streams[i] = st;
      const text = String(msg.message[j]);
      this.message[i] = text;
      if (mArgs !== null && mArgs[j] !== null && mArgs[j] !== undefined) this.args[i] = mArgs[j];
      const ex = mExtras[j];
      if (ex !== null && ex !== undefined && typeof ex === "object") {
        this.extras[i] = ex;
        let keys = "";
        for (const k in ex) {
          if (this.extraKeys.size < 2000) this.extraKeys.add(k);
          if (typeof ex[k] === "number" && this.numericKeys.size < 2000) this.numericKeys.add(k);
          const v = ex[k], t = typeof v;
          keys += "\n" + k + "=" + (t === "string" ? v : t === "number" ? String(v) : JSON.stringify(v));
        }
        this.lower[i] = (text + keys).toLowerCase();
      } else {
        this.lower[i] = text.toLowerCase();
      }
    }
    for (const e of msg.exception || []) this.exception.set(first + e[0], [e[1], e[2], e[3]]);
    for (const s of msg.stack || []) this.stack.set(first + s[0], s[1]);
    for (const t of msg.trace || []) this.addTrace(first, count, t);
    this.n = first + count;
    this.maxTime = maxT;
    this.minTime = minT;
    this.newest = maxT;
    this.version++;
    return [first, count];
  }

  /** A `trace` row [row, trace_id, span_id, flags] of a batch starting at row `first`:
   * kept for the detail pane, and its ids made searchable (the search text of the row). */
  addTrace(first, count, t) {
    const j = Array.isArray(t) ? t[0] : -1;
    if (!Number.isInteger(j) || j < 0 || j >= count || typeof t[1] !== "string") return;
    const span = typeof t[2] === "string" ? t[2] : null;
    const i = first + j;
    this.trace.set(i, [t[1], span, typeof t[3] === "number" ? t[3] : 0]);
    this.lower[i] += ("\ntrace_id=" + t[1] + (span === null ? "" : "\nspan_id=" + span)).toLowerCase();
  }

  timeOf(i) { return this.time[i] + this.ns[i] / 1e6; }

  /** How many streams hold at least one row. */
  heldStreams() {
    let k = 0;
    for (const c of this.streamRows) if (c > 0) k++;
    return k;
  }

  /** Drop the oldest `k` rows (row i becomes i - k); counts follow. */
  evict(k) {
    k = Math.min(k, this.n);
    if (k <= 0) return 0;
    const n = this.n;
    const bucket = this.bucket, entity = this.entity, stream = this.stream;
    for (let i = 0; i < k; i++) {
      this.bucketCounts[bucket[i]]--;
      this.streamRows[stream[i]]--;
      const ec = this.entityCounts.get(entity[i]);
      if (ec) ec[bucket[i]]--;
    }
    for (const name of Object.keys(NUM_COLS)) this[name].copyWithin(0, k, n);
    this.message = this.message.slice(k);
    this.lower = this.lower.slice(k);
    const sparseShift = (a) => {
      const out = [];
      a.forEach((v, i) => { if (i >= k) out[i - k] = v; });
      return out;
    };
    this.extras = sparseShift(this.extras);
    this.args = sparseShift(this.args);
    const shift = (m) => {
      const out = new Map();
      for (const [i, v] of m) if (i >= k) out.set(i - k, v);
      return out;
    };
    this.exception = shift(this.exception);
    this.stack = shift(this.stack);
    this.trace = shift(this.trace);
    this.odd = shift(this.odd);
    this.n = n - k;
    let minT = Infinity;
    const time = this.time, ns = this.ns;
    for (let i = 0; i < this.n; i++) {
      const t = time[i] + ns[i] / 1e6;
      if (t < minT) minT = t;
    }
    this.minTime = minT;
    if (this.n === 0) { this.maxTime = -Infinity; this.newest = NaN; }
    this.evicted += k;
    this.generation++;
    this.version++;
    return k;
  }
}

/**
 * Filter state -> predicate tables; `run(store, from, to, base, rows)` appends the
 * matching row numbers of [from, to) to `base` (all but time) and `rows` (time too).
 */
export class Filter {
  constructor() {
    this.search = "";        // the search box's query (query.js), always one that parses
    this.terms = [];         // its terms
    this.minLevel = 0;
    this.levels = [true, true, true, true, true, true];
    this.entity = null;      // selected path (a branch), or null
    this.streamKey = null;   // selected stream [recording, pid], or null (all)
    this.streamIdx = null;
    this.timeRange = null;   // [t0, t1] ms, or null
    this.levelOk = new Uint8Array(65536);
    this.entityOk = null;    // Uint8Array over string ids, or null (all)
    this.query = null;       // the terms compiled over the store (predicates.js), or null
    this.prepared = -1;
  }

  /**
   * Search with the query `text`: returns null, or its error `{message, pos}` and then
   * keeps the query it had (the rows shown stay those of the last good one).
   */
  setSearch(text) {
    const parsed = parseQuery(text);
    if (!parsed.ok) return parsed.error;
    this.search = text;
    this.terms = parsed.terms;
    return null;
  }

  /** Rebuild the lookup tables from the state (cheap; string-table sized). */
  prepare(store) {
    const lv = this.levelOk;
    for (let l = 0; l < 65536; l++) {
      lv[l] = l >= this.minLevel && this.levels[bucketOf(l)] ? 1 : 0;
    }
    this.query = this.terms.length ? compileQuery(this.terms, store) : null;
    this.q = this.query ? this.query.texts[0] || "" : ""; // highlighted in the table
    this.streamIdx = this.streamKey === null || this.streamKey === undefined
      ? null : store.streamOf(this.streamKey[0], this.streamKey[1]);
    this.entityOk = this.entity === null ? null : new Uint8Array(store.strings.length + 64);
    this.preparedStrings = 0;
    this.extend(store);
  }

  /** Extend the string-indexed tables to strings added since the last call. */
  extend(store) {
    const S = store.strings;
    const from = this.preparedStrings;
    if (from === S.length) return;
    const grow = (a) => {
      if (a === null || a.length > S.length) return a;
      const b = new Uint8Array(S.length * 2 + 64);
      b.set(a);
      return b;
    };
    this.entityOk = grow(this.entityOk);
    if (this.entityOk !== null) {
      const p = this.entity;
      const prefix = p.endsWith("/") ? p : p + "/";
      const ok = this.entityOk;
      for (let id = from; id < S.length; id++) {
        const s = normPath(S[id]);
        if (s === p || s.startsWith(prefix)) ok[id] = 1;
      }
    }
    if (this.query !== null) this.query.extend(store);
    this.preparedStrings = S.length;
  }

  /** Append the matching store rows of [from, to), in store order. */
  run(store, from, to, base, rows) { this.scan(store, null, from, to, base, rows); }

  /** Like `run`, over the store rows idx[from, to) in that order (the merged time order). */
  runIndexed(store, idx, from, to, base, rows) { this.scan(store, idx, from, to, base, rows); }

  /** The one filter loop: over rows from..to, or idx[from..to) when `idx` is given. */
  scan(store, idx, from, to, base, rows) {
    const { levelOk, entityOk } = this;
    const matches = this.query === null ? null : this.query.bind(store);
    const level = store.level, entity = store.entity;
    const stream = store.stream;
    const sel = this.streamIdx;
    const hasStream = sel !== null;
    const tr = this.timeRange;
    const time = store.time, ns = store.ns;
    const t0 = tr ? tr[0] : 0, t1 = tr ? tr[1] : 0;
    for (let k = from; k < to; k++) {
      const i = idx === null ? k : idx[k];
      if (!levelOk[level[i]]) continue;
      if (hasStream && stream[i] !== sel) continue;
      if (entityOk !== null && !entityOk[entity[i]]) continue;
      if (matches !== null && !matches(i)) continue;
      base.push(i);
      if (tr !== null) {
        const t = time[i] + ns[i] / 1e6;
        if (t < t0 || t > t1) continue;
        rows.push(i);
      }
    }
  }

  /** The rows of `base` inside the time range, into `rows`. */
  runTime(store, base, rows) {
    rows.clear();
    const tr = this.timeRange;
    if (!tr) return;
    const time = store.time, ns = store.ns, a = base.a, n = base.n;
    if (rows.a.length < n) rows.grow(n);
    for (let k = 0; k < n; k++) {
      const i = a[k];
      const t = time[i] + ns[i] / 1e6;
      if (t >= tr[0] && t <= tr[1]) rows.push(i);
    }
  }
}
