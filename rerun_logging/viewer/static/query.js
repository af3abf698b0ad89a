// The search box's query language: text -> a list of terms, or an error with its
// position. Pure: no DOM, no store (predicates.js compiles the terms over a store).
//
//   query   := term (whitespace term)*          all terms must match (AND)
//   term    := ["-"] (phrase | has | field | word)    "-": the term must not match
//   phrase  := '"' (char | '\"' | '\\')* '"'    substring of message, logger, extras
//   has     := "has:" name                      the record carries that extra (or field)
//   field   := name ":" value                   exact (case-insensitive); value "x*": prefix
//            | name (">" | ">=" | "<" | "<=") number-or-level-name
//   word    := a run of non-space characters ("\" escapes the next one)
//   name    := [A-Za-z_][A-Za-z0-9_.]* (or a phrase)
//
// Bare words next to each other (only spaces between) form one phrase, as typed:
// `slow request` finds the text "slow request", as the search box always did; quote
// the words apart ("slow" "request") to ask for each anywhere.

/** Numbers of the standard level names (and their aliases), lowercase. */
export const LEVEL_NUMBERS = Object.freeze({
  notset: 0, debug: 10, info: 20, warn: 30, warning: 30, error: 40, fatal: 50, critical: 50,
});

/** Built-in fields (not extras): what `name:value` and comparisons mean on each. */
export const BUILTIN_FIELDS = Object.freeze({
  logger: { numeric: false },
  level: { numeric: true },
  app: { numeric: false },
  pid: { numeric: true },
  thread: { numeric: true },
  task: { numeric: false },
  file: { numeric: false },
  trace_id: { numeric: false },
  span_id: { numeric: false },
  template: { numeric: false }, // the message's template (`msg` before its % args), else the message
});

/** Built-in names `has:` accepts besides extras. */
export const HAS_BUILTINS = Object.freeze(["trace_id", "span_id", "exception", "stack", "task"]);

const OPS = [">=", "<=", ">", "<"];
const NAME = /^[A-Za-z_][A-Za-z0-9_.]*/;
const NUMBER = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/** A query error: what is wrong and where (0-based index into the text). */
export class QueryError extends Error {
  constructor(message, pos) {
    super(message);
    this.name = "QueryError";
    this.pos = pos;
  }
}

/**
 * Parse `text` into `{ok: true, terms}` or `{ok: false, error: {message, pos}}`.
 * Each term: `{kind, negate, start, end, ...}` with kind
 *   "text"    value (the phrase, as typed)
 *   "field"   field, value, prefix (value ended with an unquoted "*", removed)
 *   "compare" field, op (">", ">=", "<", "<="), value (a number; level names resolved)
 *   "has"     field
 */
export function parseQuery(text) {
  try {
    const s = String(text);
    return { ok: true, terms: joinWords(new Parser(s).terms(), s) };
  } catch (e) {
    if (e instanceof QueryError) return { ok: false, error: { message: e.message, pos: e.pos } };
    throw e;
  }
}

class Parser {
  constructor(s) { this.s = s; this.i = 0; }

  terms() {
    const out = [];
    for (;;) {
      this.skipSpace();
      if (this.i >= this.s.length) return out;
      out.push(this.term());
    }
  }

  skipSpace() {
    while (this.i < this.s.length && /\s/.test(this.s[this.i])) this.i++;
  }

  atEnd(i = this.i) { return i >= this.s.length || /\s/.test(this.s[i]); }

  term() {
    const start = this.i;
    let negate = false;
    if (this.s[this.i] === "-" && !this.atEnd(this.i + 1)) { negate = true; this.i++; }
    const t = this.s[this.i] === "\"" ? this.phraseTerm() : this.fieldOrWord();
    if (!this.atEnd()) throw new QueryError("expected a space after " + quoteIt(this.s.slice(start, this.i)), this.i);
    return { ...t, negate, start, end: this.i };
  }

  phraseTerm() {
    const at = this.i;
    const value = this.quoted();
    const named = this.quotedName(value);
    if (named !== null) return named;
    if (value === "") throw new QueryError("empty phrase", at);
    return { kind: "text", value, quoted: true };
  }

  /** A quoted name followed by ":" or an operator: a field not spelled as a plain name
   * (`"request-id":abc`, `"odd key">3`); else null (a phrase). */
  quotedName(field) {
    const rest = this.s.slice(this.i);
    const op = rest[0] === ":" ? ":" : OPS.find((o) => rest.startsWith(o));
    if (!op || field === "") return null;
    const opAt = this.i;
    this.i += op.length;
    return op === ":" ? this.fieldTerm(field) : this.compareTerm(field, op, opAt);
  }

  /** A quoted string at this.i (escapes \" and \\), without its quotes. */
  quoted() {
    const open = this.i++;
    let out = "";
    while (this.i < this.s.length) {
      const c = this.s[this.i++];
      if (c === "\"") return out;
      if (c === "\\" && this.i < this.s.length) out += this.s[this.i++];
      else out += c;
    }
    throw new QueryError("unclosed quote", open);
  }

  fieldOrWord() {
    const m = NAME.exec(this.s.slice(this.i));
    if (m) {
      const after = this.i + m[0].length;
      const rest = this.s.slice(after);
      const op = rest[0] === ":" ? ":" : OPS.find((o) => rest.startsWith(o));
      if (op) {
        const field = m[0];
        this.i = after + op.length;
        if (op === ":" && field === "has") return this.hasTerm();
        return op === ":" ? this.fieldTerm(field) : this.compareTerm(field, op, after);
      }
    }
    return { kind: "text", value: this.word(), quoted: false };
  }

  /** A bare run of non-space characters ("\" escapes the next one). */
  word() {
    let out = "";
    while (!this.atEnd()) {
      const c = this.s[this.i++];
      if (c === "\\" && this.i < this.s.length) out += this.s[this.i++];
      else out += c;
    }
    return out;
  }

  /** The value after `field:` or an operator: a phrase or a word; raw tells a trailing "*". */
  value(what) {
    const at = this.i;
    if (this.atEnd()) throw new QueryError("expected a value after " + quoteIt(what), at);
    if (this.s[this.i] === "\"") return { text: this.quoted(), quoted: true, at };
    const raw = this.s.slice(at).match(/^\S*/)[0];
    return { text: this.word(), quoted: false, at, raw };
  }

  hasTerm() {
    const v = this.value("has:");
    if (v.text === "") throw new QueryError("expected a field name after \"has:\"", v.at);
    return { kind: "has", field: v.text };
  }

  fieldTerm(field) {
    const v = this.value(field + ":");
    let value = v.text, prefix = false;
    if (!v.quoted && v.raw.endsWith("*") && !v.raw.endsWith("\\*")) {
      prefix = true;
      value = value.slice(0, -1);
    }
    if (field === "pid" && !prefix && !NUMBER.test(value)) {
      throw new QueryError("pid: expects a number", v.at);
    }
    return { kind: "field", field, value, prefix };
  }

  compareTerm(field, op, opAt) {
    const builtin = BUILTIN_FIELDS[field];
    if (builtin && !builtin.numeric) {
      throw new QueryError(field + " cannot be compared with " + op + " (use " + field + ":value)", opAt);
    }
    const v = this.value(field + op);
    let value;
    if (field === "level" && Object.hasOwn(LEVEL_NUMBERS, v.text.toLowerCase())) {
      value = LEVEL_NUMBERS[v.text.toLowerCase()];
    } else if (NUMBER.test(v.text)) {
      value = Number(v.text);
    } else {
      const want = field === "level" ? "a level (debug, info, warning, error, critical) or a number" : "a number";
      throw new QueryError("expected " + want + " after " + quoteIt(field + op), v.at);
    }
    return { kind: "compare", field, op, value };
  }
}

/**
 * `value` written so that the parser reads it back as that one whole value: as it is
 * when it is a plain run of characters, else quoted with `"` and `\` escaped (quoted,
 * a trailing `*` is no prefix). Used by the facets and patterns to add terms.
 */
export function quoteValue(value) {
  const v = String(value);
  if (v !== "" && !/[\s"\\*:]/.test(v)) return v;
  return "\"" + v.replace(/[\\"]/g, "\\$&") + "\"";
}

/** The term `field:value` (`-field:value` when `negate`); a name that is not plain is quoted. */
export function formatTerm(field, value, negate = false) {
  const plain = /^[A-Za-z_][A-Za-z0-9_.]*$/.test(field) && field !== "has";
  const name = plain ? field : "\"" + String(field).replace(/[\\"]/g, "\\$&") + "\"";
  return (negate ? "-" : "") + name + ":" + quoteValue(value);
}

function quoteIt(s) { return "\"" + s + "\""; }

/** Merge runs of bare, non-excluded words into one phrase with the spaces as typed. */
function joinWords(terms, s) {
  const out = [];
  for (const t of terms) {
    const prev = out[out.length - 1];
    if (prev && isBareWord(prev) && isBareWord(t)) {
      out[out.length - 1] = { ...prev, value: prev.value + s.slice(prev.end, t.start) + t.value, end: t.end };
    } else out.push(t);
  }
  return out.map(({ quoted, ...t }) => t);
}

function isBareWord(t) { return t.kind === "text" && !t.quoted && !t.negate; }
