// The search query's terms (query.js) compiled over a Store's columns. Compiled once
// per filter run: field names resolve to columns, string values to tables over the
// interned string ids (so most per-row work is an array lookup or a number compare);
// `bind` then makes the row test over the store's current arrays (they are replaced
// as the store grows), and `extend` covers strings interned since. The terms are
// tested cheapest first (columns, then extras, then text), stopping at the first miss.
//
// Matching: "text" as the search box always did (substring of message, extras and
// logger, case-insensitive); `field:value` the whole value, case-insensitive, or its
// start with `value*` (`logger:shop.*` is shop and its children; `template:` the
// message's template, patterns.js); comparisons on
// numbers only (an extra holding a string never compares); `has:` an extra present.

import { BUILTIN_FIELDS, HAS_BUILTINS } from "./query.js";

/** Terms -> a compiled query: `{texts, extend(store), bind(store) -> (row) => bool}`. */
export function compileQuery(terms, store) {
  // cheap checks first: a row failing one skips the dearer (text search last)
  const checks = terms.map((t) => compileTerm(t)).sort((a, b) => a.cost - b.cost);
  for (const c of checks) if (c.strings) c.strings.reset(store);
  return {
    /** The lowercase text of the terms to find (the table highlights them). */
    texts: terms.filter((t) => t.kind === "text" && !t.negate).map((t) => t.value.toLowerCase()),
    extend(s) { for (const c of checks) if (c.strings) c.strings.extend(s); },
    bind(s) {
      const tests = checks.map((c) => c.bind(s));
      const negate = checks.map((c) => c.negate);
      const n = tests.length;
      if (n === 0) return null;
      if (n === 1) { const f = tests[0]; return negate[0] ? (i) => !f(i) : f; }
      return (i) => {
        for (let k = 0; k < n; k++) if (tests[k](i) === negate[k]) return false;
        return true;
      };
    },
  };
}

function compileTerm(t) {
  const c = t.kind === "text" ? textCheck(t.value)
    : t.kind === "has" ? hasCheck(t.field)
      : t.kind === "compare" ? compareCheck(t)
        : fieldCheck(t);
  c.negate = t.negate;
  c.cost = t.kind === "text" ? 3 : t.kind === "field" && (t.field === "trace_id" || t.field === "span_id") ? 2
    : t.kind === "has" && HAS_BUILTINS.includes(t.field) ? 0
      : (t.kind === "field" || t.kind === "compare") && Object.hasOwn(BUILTIN_FIELDS, t.field) ? 0 : 1;
  return c;
}

// ---------------------------------------------------------------- string-id tables

/** A Uint8Array over the store's string ids: 1 where `match(string)` holds. */
function stringTable(match) {
  return {
    ok: new Uint8Array(64),
    done: 0,
    reset(store) { this.ok = new Uint8Array(store.strings.length + 64); this.done = 0; this.extend(store); },
    extend(store) {
      const S = store.strings;
      if (this.done > S.length) return this.reset(store);
      if (this.ok.length <= S.length) {
        const b = new Uint8Array(S.length * 2 + 64);
        b.set(this.ok);
        this.ok = b;
      }
      for (let id = this.done; id < S.length; id++) if (match(S[id])) this.ok[id] = 1;
      this.done = S.length;
    },
  };
}

/** A value matcher on strings: whole value or (prefix) its start, case-insensitive. */
function stringMatch(value, prefix) {
  const v = value.toLowerCase();
  if (!prefix) return (s) => s.length === v.length && s.toLowerCase() === v;
  // `shop.*`: shop itself too, the branch of the logger tree
  const self = v.endsWith(".") ? v.slice(0, -1) : null;
  return (s) => { const l = s.toLowerCase(); return l.startsWith(v) || l === self; };
}

/** A check testing a string-id column through a table of the strings that match. */
function idColumnCheck(column, match) {
  const strings = stringTable(match);
  return { strings, bind: (s) => { const col = s[column], ok = strings.ok; return (i) => ok[col[i]] === 1; } };
}

// ---------------------------------------------------------------- the terms

function textCheck(value) {
  const q = value.toLowerCase();
  const strings = stringTable((s) => s.toLowerCase().includes(q));
  return {
    strings,
    bind(s) {
      const logger = s.logger, lower = s.lower, m = strings.ok;
      return (i) => m[logger[i]] === 1 || lower[i].indexOf(q) >= 0;
    },
  };
}

function hasCheck(field) {
  if (HAS_BUILTINS.includes(field)) {
    if (field === "task") return { bind: (s) => { const task = s.task; return (i) => task[i] >= 0; } };
    if (field === "span_id") return { bind: (s) => { const m = s.trace; return (i) => { const t = m.get(i); return t !== undefined && t[1] !== null; }; } };
    const map = field === "trace_id" ? "trace" : field;
    return { bind: (s) => { const m = s[map]; return (i) => m.has(i); } };
  }
  return { bind: (s) => { const ex = s.extras; return (i) => { const e = ex[i]; return e !== undefined && e[field] !== undefined; }; } };
}

const CMP = {
  ">": (a, b) => a > b, ">=": (a, b) => a >= b, "<": (a, b) => a < b, "<=": (a, b) => a <= b,
};

function compareCheck(t) {
  const cmp = CMP[t.op], v = t.value;
  if (t.field === "level") {
    const ok = new Uint8Array(65536);
    for (let l = 0; l < 65536; l++) ok[l] = cmp(l, v) ? 1 : 0;
    return { bind: (s) => { const level = s.level; return (i) => ok[level[i]] === 1; } };
  }
  if (t.field === "pid" || t.field === "thread") {
    const column = t.field === "pid" ? "process" : "thread";
    return { bind: (s) => { const col = s[column]; return (i) => cmp(col[i], v); } };
  }
  const key = t.field;
  return {
    bind: (s) => {
      const ex = s.extras;
      return (i) => { const e = ex[i]; if (e === undefined) return false; const x = e[key]; return typeof x === "number" && cmp(x, v); };
    },
  };
}

function fieldCheck(t) {
  const { field, value, prefix } = t;
  const match = stringMatch(value, prefix);
  const num = !prefix && value.trim() !== "" && Number.isFinite(Number(value)) ? Number(value) : null;
  switch (field) {
    case "logger": return idColumnCheck("logger", match);
    case "task": return idColumnCheck("task", match);
    case "template": return templateCheck(match);
    case "file": return idColumnCheck("path", (s) => match(s) || match(s.slice(Math.max(s.lastIndexOf("/"), s.lastIndexOf("\\")) + 1)));
    case "level": {
      if (num !== null) return { bind: (s) => { const level = s.level; return (i) => level[i] === num; } };
      const lv = value.toLowerCase();
      const names = new Set([lv, lv === "warn" ? "warning" : lv === "fatal" ? "critical" : lv]);
      return idColumnCheck("levelName", prefix ? match : (s) => names.has(s.toLowerCase()));
    }
    case "pid": return { bind: (s) => { const col = s.process; return (i) => col[i] === num; } };
    case "thread": {
      const names = stringTable(match);
      return {
        strings: names,
        bind: (s) => {
          const th = s.thread, tn = s.threadName, ok = names.ok;
          return (i) => th[i] === num || ok[tn[i]] === 1;
        },
      };
    }
    case "app": return {
      bind: (s) => {
        const ok = s.streams.map((st) => match(String(st.recording)) || (st.application != null && match(String(st.application))));
        const stream = s.stream;
        return (i) => ok[stream[i]];
      },
    };
    case "trace_id":
    case "span_id": {
      const k = field === "trace_id" ? 0 : 1;
      return { bind: (s) => { const m = s.trace; return (i) => { const tr = m.get(i); return tr !== undefined && tr[k] !== null && match(tr[k]); }; } };
    }
    default: return extraCheck(field, value, match, num);
  }
}

/** Text with each line break as one space (a template matched from the one-line search box). */
export function flatText(s) {
  return s.indexOf("\n") < 0 && s.indexOf("\r") < 0 ? s : s.replace(/\r\n|[\r\n]/g, " ");
}

/** `template:value`: the record's message template (`msg` before its % args), or its
 * message when it has none; a line break counts as a space. */
function templateCheck(match) {
  const strings = stringTable((s) => match(flatText(s)));
  return {
    strings,
    bind: (s) => {
      const tpl = s.template, msg = s.message, ok = strings.ok;
      return (i) => { const t = tpl[i]; return t >= 0 ? ok[t] === 1 : match(flatText(msg[i])); };
    },
  };
}

/** `key:value` on an extra: numbers by value, strings as `match`, booleans and null by name. */
function extraCheck(key, value, match, num) {
  const lv = value.toLowerCase();
  return {
    bind: (s) => {
      const ex = s.extras;
      return (i) => {
        const e = ex[i];
        if (e === undefined) return false;
        const x = e[key];
        switch (typeof x) {
          case "string": return match(x);
          case "number": return x === num;
          case "boolean": return (x ? "true" : "false") === lv;
          case "object": return x === null && lv === "null";
          default: return false;
        }
      };
    },
  };
}
