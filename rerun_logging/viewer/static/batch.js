// Binary `records` batches (feed.py: binary_batch): the tag, then one msgpack map
// holding the frame's own sites and contexts tables with a row index into each per
// record (uint32 arrays), seq and time as float64 arrays, ns as uint32, and the
// messages, extras and arguments as the JSON batch's own JSON text. Read here into the
// columns of a JSON batch, with the tab's own string ids in place of the server's
// (`ids: true`), so store.appendBatch takes either. A site's strings are interned once
// per batch.

import { decode, DecodeError } from "./msgpack.js";

const TAG = [0x00, 0x52, 0x4c, 0x42]; // "\0RLB"

/** Whether the binary message `buffer` (an ArrayBuffer) is a records batch. */
export function isBatch(buffer) {
  if (buffer.byteLength < TAG.length) return false;
  const head = new Uint8Array(buffer, 0, TAG.length);
  return TAG.every((b, i) => head[i] === b);
}

/** A column sent as the bytes of a little-endian typed array (`T`), copied to be aligned. */
function typed(value, T, what) {
  if (!(value instanceof Uint8Array) || value.length % T.BYTES_PER_ELEMENT !== 0) {
    throw new DecodeError("batch: " + what + " is not a " + T.name);
  }
  return new T(value.slice().buffer);
}

function list(value, what) {
  if (!Array.isArray(value)) throw new DecodeError("batch: " + what + " is not a list");
  return value;
}

function parsed(value, count, what) {
  if (typeof value !== "string") throw new DecodeError("batch: " + what + " is not JSON text");
  const out = JSON.parse(value);
  if (!Array.isArray(out) || out.length !== count) throw new DecodeError("batch: " + what + " does not hold one entry per record");
  return out;
}

/**
 * The batch in `buffer` as a JSON batch's columns (see the module comment), or a
 * DecodeError naming what was wrong. `store` interns the strings.
 */
export function readBatch(buffer, store) {
  const body = decode(new Uint8Array(buffer), TAG.length);
  if (body === null || typeof body !== "object" || Array.isArray(body)) throw new DecodeError("batch: not a map");
  const seq = typed(body.seq, Float64Array, "seq");
  const count = seq.length;
  const sites = list(body.sites, "sites"), ctxs = list(body.ctxs, "ctxs");
  const siteRow = typed(body.site, Uint32Array, "site"), ctxRow = typed(body.ctx, Uint32Array, "ctx");
  const time = typed(body.time, Float64Array, "time"), ns = typed(body.ns, Uint32Array, "ns");
  if ([siteRow, ctxRow, time, ns].some((c) => c.length !== count)) throw new DecodeError("batch: columns of unequal length");
  const id = (v) => (typeof v === "string" ? store.intern(v) : -1);
  // a site: logger, entity_path, level, level_name, template, path, line, function
  const S = sites.map((s) => (Array.isArray(s) ? s : [])).map((s) => ({
    level: typeof s[2] === "number" ? s[2] : 0, levelName: id(s[3]), logger: id(s[0]),
    entity: id(s[1]), template: id(s[4]), path: id(s[5]),
    line: typeof s[6] === "number" ? s[6] : 0, func: id(s[7]),
  }));
  // a context: thread, thread_name, process, process_name, task_name
  const C = ctxs.map((c) => (Array.isArray(c) ? c : [])).map((c) => ({
    thread: c[0] ?? null, threadName: id(c[1]), process: c[2] ?? null, processName: id(c[3]), task: id(c[4]),
  }));
  const noSite = { level: 0, levelName: -1, logger: -1, entity: -1, template: -1, path: -1, line: 0, func: -1 };
  const noCtx = { thread: null, threadName: -1, process: null, processName: -1, task: -1 };
  const level = new Array(count), line = new Array(count), thread = new Array(count), process = new Array(count);
  const levelName = new Int32Array(count), logger = new Int32Array(count), entity = new Int32Array(count);
  const template = new Int32Array(count), path = new Int32Array(count), func = new Int32Array(count);
  const threadName = new Int32Array(count), processName = new Int32Array(count), task = new Int32Array(count);
  for (let j = 0; j < count; j++) {
    const s = S[siteRow[j]] ?? noSite;
    level[j] = s.level; levelName[j] = s.levelName; logger[j] = s.logger; entity[j] = s.entity;
    template[j] = s.template; path[j] = s.path; line[j] = s.line; func[j] = s.func;
    const c = C[ctxRow[j]] ?? noCtx;
    thread[j] = c.thread; threadName[j] = c.threadName; process[j] = c.process;
    processName[j] = c.processName; task[j] = c.task;
  }
  const extras = parsed(body.extras, count, "extras");
  return {
    type: "records", ids: true, recording: body.recording, pid: body.pid,
    streams: body.streams, stream: body.stream,
    seq, time, ns, level, level_name: levelName, logger, entity, template, thread, thread_name: threadName,
    process, process_name: processName, task, path, line, function: func,
    message: parsed(body.message, count, "message"), extras,
    args: body.args === undefined ? null : parsed(body.args, count, "args"),
    exception: body.exception ?? [], stack: body.stack ?? [], trace: body.trace ?? [],
  };
}
