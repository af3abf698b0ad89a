"""Capture of ``LogRecord`` objects: what ``emit`` keeps, and how a batch becomes columns.

Two steps, both pure:

- :func:`capture` runs on the caller's thread inside ``emit`` (the common record's
  steps in C where ``rerun_logging._speedups`` is built: see :func:`_speedups`). It
  keeps what may change after ``emit`` returns: the rendered message (the args may
  be mutable), a shallow copy of the record's attributes (a later handler or
  formatter may set or change some), every extra and argument that is not an
  immutable scalar turned into a plain value (a dict or list the app changes
  later, an object whose ``str()`` only works on the app's thread, such as a
  Django ``QuerySet``), and the exception as text (the traceback holds live
  frames), and the OpenTelemetry span it was logged in (:func:`trace_context`),
  when the app uses OpenTelemetry. So what a record says is what was true when it was logged, and no code of the
  app runs on a thread of ours. This is the one place that decides what is
  captured at log time, like ``QueueHandler.prepare``.
- :func:`record_columns` runs on the handler's flusher thread. It turns a batch of
  captured records into the columns of one RECORDS message (their keys, order and
  types are :mod:`rerun_logging.format.schema`'s, and so are the ``LogRecord``
  attributes read for them), with C-level passes over the whole batch where it
  can, because this is where the per-record cost of the whole package goes.

The trace context is read only once the app has imported ``opentelemetry.trace``
itself (this module never imports it): an app without OpenTelemetry pays the look
at one module-level flag per record, and one that imports it late gets the trace
context of every record logged after (an inert ``sys.meta_path`` entry notes the
import). It is the context of the thread (and ``contextvars`` context) that calls
``emit``.

Extras are the attributes ``logging`` did not set, as python-json-logger finds them:
anything not in its ``RESERVED_ATTRS``. A ``dict`` ``record.msg`` contributes its
items as extras and an empty message, as ``JsonFormatter`` does.
"""

from __future__ import annotations

import logging
import sys
import traceback
from itertools import chain, compress, islice, repeat
from operator import itemgetter, mul, ne, sub
from typing import Any, Callable, NamedTuple, Sequence

import pythonjsonlogger.json  # noqa: F401  (format.plain_value's encoder: imported here, not on a flusher)
from pythonjsonlogger.core import RESERVED_ATTRS as _JSON_LOGGER_RESERVED

from .format import (
    CONTEXT,
    MAX_FIELD_CHARS,
    SITE,
    SITE_FIELDS,
    ExceptionInfo,
    ExtraColumns,
    _hashable_keys,
    _unpack_all,
    delta_encode,
    entity_path_for,
    deferrable_template,
    pack_args_capped,
    pack_args_exactly,
    packb,
    render,
    safe_repr,
    sanitize,
    safe_str,
    trace_row,
    truncate_text,
    unformattable,
)
from .speedups import SPEEDUPS

RESERVED_ATTRS: frozenset[str] = frozenset(_JSON_LOGGER_RESERVED) | {"taskName"}
"""Attributes that are not extras: python-json-logger's list (copied, never mutated)."""

MESSAGE_KEY = "\x00message"
"""Where :func:`capture` puts the rendered message: last, under a name no attribute has."""
TRACE_KEY = "\x00trace"
"""Where :func:`capture` puts a record's trace context (just before :data:`MESSAGE_KEY`),
under a name no attribute has; only records logged in a span have it."""
OTEL_TRACE_MODULE = "opentelemetry.trace"
"""The module whose current span a record is logged in, once the app has imported it."""

Captured = dict[str, Any]
"""What :func:`capture` returns: the record's attributes, the rendered message added last.

One dict per record, not a tuple around it: every container kept until the flusher
runs costs the cyclic GC, which is a large part of the per-record cost."""

_STANDARD_ATTRS = tuple(logging.LogRecord("n", 0, "p", 0, "m", (), None).__dict__)
"""The attributes ``LogRecord.__init__`` sets, in order."""
_STANDARD_COUNT = len(_STANDARD_ATTRS)
"""How many attributes ``LogRecord.__init__`` sets: extras come after them."""

_SITE_KEYS = tuple(f.log_record for f in SITE if f.log_record is not None)
"""The attributes a ``sites`` row is captured from, in the schema's order (the derived
entity path left out: :func:`_site_row` puts it in)."""
_CONTEXT_KEYS = tuple(f.log_record for f in CONTEXT if f.log_record in _STANDARD_ATTRS)
"""The attributes a ``ctxs`` row is captured from, in the schema's order: those this
Python's ``LogRecord`` has (``taskName`` is 3.12 and later)."""
_ABSENT_CONTEXT = (None,) * (len(CONTEXT) - len(_CONTEXT_KEYS))
"""What a ``ctxs`` row holds for the fields this Python does not have (they come last)."""
_KEY_NAMES = _SITE_KEYS + _CONTEXT_KEYS
_KEY = itemgetter(*_KEY_NAMES)
"""Site and context of a record in one tuple: one allocation and one hash per record."""
_SITE_END = len(_SITE_KEYS)
"""Where the site part of a key ends and its context starts."""
_NAME_AT = _SITE_KEYS.index("name")
_MSG_AT = _SITE_KEYS.index("msg")
_ENTITY_PATH_AT = SITE_FIELDS.index("entity_path")
_CREATED = itemgetter("created")
_EXC_INFO = itemgetter("exc_info")
_STACK_INFO = itemgetter("stack_info")
_MSG = itemgetter(_MSG_AT)
_MESSAGE = itemgetter(MESSAGE_KEY)
_ARGS = itemgetter("args")
_LOG_RECORD = logging.LogRecord
_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Types whose values cannot change after ``emit``: kept as they are, not copied."""
_MODULES = sys.modules
"""The interpreter's module table (the import system's own dict: replacing
``sys.modules`` does not change what is imported)."""


def _speedups() -> Any:
    """The C half of :func:`capture`'s fast path and of the flusher's batch steps
    (:data:`speedups.SPEEDUPS`, configured for this Python's ``LogRecord``), or None.

    For a plain record (a ``LogRecord``, a ``str`` message, scalar args and extras, no
    exception) it returns what :func:`capture` would, and leaves the copy out of the
    cyclic GC (see the C file); for any other it returns None and the Python steps
    below run. Measured on one thread: 0.32 µs a benchmark record instead of 0.58.
    """
    if SPEEDUPS is not None:
        SPEEDUPS.configure(logging.LogRecord, MESSAGE_KEY, _STANDARD_ATTRS, _KEY_NAMES)
    return SPEEDUPS


class _TraceImportWatch:
    """An entry of ``sys.meta_path`` that finds nothing: it notes that the app is
    importing ``opentelemetry.trace``, so :func:`capture` starts asking for the
    current span. It never imports anything, and every other import passes through
    it with one comparison; it stays in place (taking a finder out of
    ``sys.meta_path`` while an import walks it would skip the next one)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        global _trace_imported
        if name == OTEL_TRACE_MODULE:
            _trace_imported = True
        return None


_trace_imported = OTEL_TRACE_MODULE in _MODULES
"""Whether the app has imported (or is importing) ``opentelemetry.trace``: the one
flag :func:`capture` reads per record. Set by :class:`_TraceImportWatch`, and by
:func:`record_columns` on the flusher for a module put in ``sys.modules`` another
way (then from the next batch on). Process-wide, as the import table is."""
if not _trace_imported and not any(type(f).__name__ == "_TraceImportWatch" for f in sys.meta_path):
    sys.meta_path.insert(0, _TraceImportWatch())

_SPEEDUPS = _speedups()
_plain_capture: Callable[[logging.LogRecord], Captured | None] | None = (
    _SPEEDUPS.plain_capture if _SPEEDUPS is not None else None
)
_middles: Callable[[Sequence[Captured]], list[dict[str, Any] | None] | None] | None = (
    _SPEEDUPS.middles if _SPEEDUPS is not None else None
)
_batch_rows: Callable[[Sequence[Captured]], Any] | None = (
    _SPEEDUPS.batch_rows if _SPEEDUPS is not None else None
)
_rows_fit: Callable[[list[Any], int], bool] | None = (
    _SPEEDUPS.rows_fit if _SPEEDUPS is not None else None
)
_extra_columns_of: Callable[[list[Any], frozenset[str], int], list[Any] | None] | None = (
    _SPEEDUPS.extra_columns_of if _SPEEDUPS is not None else None
)
_render_rows: Callable[[list[Any], list[int], list[Any], list[Any], int], list[str] | None] | None = (
    _SPEEDUPS.render_rows if _SPEEDUPS is not None else None
)


def rows_fit(rows: list[Any]) -> bool:
    """Whether a column of rows (the ``extra`` column's dicts, the ``args`` column's
    tuples) certainly packs as it is within the caps (what ``format.pack_extras_exactly``
    and ``format.pack_args_exactly`` would pack), told without packing it: str keys and
    scalar values, counted at their largest. False where that is not certain, or
    without the C half: then the packer decides."""
    return _rows_fit is not None and _rows_fit(rows, MAX_FIELD_CHARS)


def capture(record: logging.LogRecord, formatter: logging.Formatter | None = None) -> Captured:
    """What ``emit`` keeps of ``record``; never raises for a bad message or exception.

    With a ``formatter`` (the handler's, as every stdlib handler has), the message is
    what it returns; the structured fields are kept beside it as they are.

    A plain ``LogRecord`` whose ``msg`` is a ``str`` and whose args are immutable
    scalars gets no message (None): its template and args are kept, and the reader
    renders ``msg % args`` (``format.render_message``), the text the app would have
    seen. Rendering is most of what a message costs, and the record is smaller. The
    flusher renders the few that readers may not (see :func:`record_columns`).

    ``RerunHandler.emit`` takes the first step below itself (the C half, where it
    applies): a Python call less per record.
    """
    if formatter is None and not _trace_imported and _plain_capture is not None:
        state = _plain_capture(record)
        if state is not None:
            return state
    if formatter is not None:
        message = _formatted(record, formatter)
        state = record.__dict__.copy()  # after format(): it may have cached exc_text
        msg, args = state["msg"], state["args"]
    else:
        state = record.__dict__.copy()
        msg, args = state["msg"], state["args"]
        # A subclass may override getMessage(): only a plain LogRecord's is deferred.
        message = None if msg.__class__ is str and record.__class__ is _LOG_RECORD else (
            _message_of(record, msg)
        )
    if msg.__class__ is not str:
        state["msg"] = _template(msg)
    if args:
        plain = args.__class__ is tuple
        if plain:
            for arg in args:
                if arg.__class__ not in _SCALARS:
                    plain = False
                    break
        if not plain:  # rendered now, from the objects as they are at log time
            if message is None:
                message = render(msg, args)
            state["args"] = _snapshot(args)
    extras = len(state) - _STANDARD_COUNT
    if extras > 0:  # the extras are the last attributes: checked from the end
        scalars = _SCALARS
        for value in reversed(state.values()):
            if value.__class__ not in scalars:
                _plain_extras(state)
                break
            extras -= 1
            if not extras:
                break
    if state["exc_info"] or state["exc_text"]:
        state["exc_info"] = exception_info(state)
    if _trace_imported:  # the one look an app without OpenTelemetry pays
        _add_trace_context(state)
    state[MESSAGE_KEY] = message
    return state


def _add_trace_context(state: Captured) -> None:
    """Put the current span's trace context in ``state``, when one is current."""
    trace = trace_context()
    if trace is not None:
        state[TRACE_KEY] = trace


def trace_context() -> tuple[int, int, int] | None:
    """The current OpenTelemetry span's ``(trace_id, span_id, trace_flags)``, or None.

    None when ``opentelemetry.trace`` is not imported (it is never imported here),
    when no valid span is current, and when asking fails (a module still being
    imported, a broken context): logging never fails for it.
    """
    try:
        context = _MODULES[OTEL_TRACE_MODULE].get_current_span().get_span_context()  # KeyError: not yet
        if context.is_valid:
            return (context.trace_id, context.span_id, int(context.trace_flags))
    except Exception:
        pass
    return None


def _formatted(record: logging.LogRecord, formatter: logging.Formatter) -> str:
    """The message as ``formatter`` renders ``record`` (capped), or why it could not."""
    try:
        return truncate_text(safe_str(formatter.format(record)))
    except Exception as error:
        return unformattable(record.msg, record.args, error)


def _message_of(record: logging.LogRecord, msg: Any) -> str:
    """The message of a record whose ``msg`` is not a plain ``str`` (or of a subclass):
    none for a ``dict`` (its items become extras), else ``getMessage()`` (capped)."""
    if isinstance(msg, dict):
        return ""
    try:
        return truncate_text(safe_str(record.getMessage()))
    except Exception as error:
        return unformattable(record.msg, record.args, error)


def _plain_extras(state: Captured) -> None:
    """Every extra of ``state`` that is not an immutable scalar, as a plain value now."""
    for key, value in list(islice(state.items(), _STANDARD_COUNT, None)):
        if value.__class__ not in _SCALARS and key not in RESERVED_ATTRS and not _private(key):
            state[key] = _plain(value)


def _template(msg: Any) -> Any:
    """What a ``msg`` that is not a plain ``str`` keeps: a dict's items as plain values,
    a ``str`` subclass as text, anything else nothing (its text is the message)."""
    if isinstance(msg, dict):
        return _plain_dict(msg)
    if isinstance(msg, str):
        return safe_str(msg)
    return None


def _plain_dict(msg: dict[Any, Any]) -> dict[Any, Any]:
    """A ``dict`` message's items (they become extras), each a plain value now."""
    try:
        return {k: v if v.__class__ in _SCALARS else _plain(v) for k, v in msg.items()}
    except Exception:
        return {"msg": safe_repr(msg)}


def _plain(value: Any) -> Any:
    """``value`` as the plain data a reader will see (objects as ``JsonFormatter``
    renders them); never raises.

    Packed and unpacked with the format's own packer, so it is exactly what the
    flusher would have written; a value the packer refuses (a cycle, a key that
    does not unpack) goes through :func:`sanitize`, as the flusher's fallback does.
    """
    try:
        (plain,) = _unpack_all(packb(value))
        return plain
    except TypeError:  # a map with tuple keys: read back as the decoder reads it
        try:
            (plain,) = _unpack_all(packb(value), object_pairs_hook=_hashable_keys)
            return plain
        except Exception:
            pass
    except Exception:
        pass
    try:
        return sanitize(value)
    except Exception:
        return safe_repr(value)


def _snapshot(args: Any) -> Any:
    """``args`` copied into plain values now: the app may change a list or dict after emit."""
    try:
        if isinstance(args, tuple):
            return tuple(sanitize(a) for a in args)
        return sanitize(dict(args))
    except Exception:
        return (safe_repr(args),)


def exception_info(state: logging.LogRecord | dict[str, Any]) -> ExceptionInfo | None:
    """A record's exception as text (type, value, traceback), or None.

    ``state`` is a record or its attributes. Where ``exc_text`` is set already, it is
    the traceback, as for the stdlib's ``Formatter``: a formatter cached it, or the
    caller rendered the traceback elsewhere (loguru sets it to a newline because its
    message holds the traceback), so it is never written twice.
    """
    fields = state if isinstance(state, dict) else state.__dict__
    info = fields.get("exc_info")
    cached = fields.get("exc_text")
    if not info or info[0] is None:
        return ExceptionInfo("", "", truncate_text(cached)) if cached else None
    exc_type, value = info[0], info[1]
    if cached:
        text = str(cached).strip("\n")
    else:
        try:
            text = "".join(traceback.format_exception(exc_type, value, info[2])).rstrip("\n")
        except Exception as error:
            text = f"<traceback could not be formatted: {error!r}>"
    module = getattr(exc_type, "__module__", "")
    name = getattr(exc_type, "__qualname__", str(exc_type))
    qualified = name if module in ("builtins", "", None) else f"{module}.{name}"
    return ExceptionInfo(qualified, truncate_text(safe_str(value)), truncate_text(text))


class Columns(NamedTuple):
    """A batch as :func:`record_batch` makes it: what one RECORDS message is packed
    from, and what a sink in this process reads without unpacking it
    (``format.columns_as_read``)."""

    columns: dict[str, Any]
    """The message's columns except ``extra`` (``args`` already packed)."""
    extras: Sequence[dict[str, Any] | None]
    """The ``extra`` column unpacked, for ``format.pack_extras`` (a list; with
    ``framed=False``, where it could, the batch's :class:`~rerun_logging.format.ExtraColumns`)."""
    args: list[Any]
    """The ``args`` column unpacked: each record's args as captured."""
    args_exact: bool
    """Whether ``args`` was packed as it is (no row capped): then a reader reads
    back exactly :attr:`args`."""
    times: list[int]
    """Each record's time in ns (the ``time`` column is their deltas)."""
    framed: bool = True
    """Whether :attr:`columns` and :attr:`extras` hold all a RECORDS message is packed
    from: False where ``record_batch(framed=False)`` left the args unpacked or made the
    extras as columns (:class:`~rerun_logging.format.ExtraColumns`)."""


def record_columns(
    batch: Sequence[Captured], first_seq: int, entity_prefix: str = ""
) -> tuple[dict[str, Any], list[dict[str, Any] | None]]:
    """Columns of one RECORDS message for ``batch``, numbered from ``first_seq``.

    Returns the columns except ``extra`` and the extras list (for
    ``format.pack_extras``), as ``format.columns_for`` does for ``Record`` objects.
    """
    encoded = record_batch(batch, first_seq, entity_prefix)
    return encoded.columns, encoded.extras


def record_batch(
    batch: Sequence[Captured], first_seq: int, entity_prefix: str = "", *, framed: bool = True
) -> Columns:
    """As :func:`record_columns`, with the unpacked ``args`` column beside the packed one.

    Each record's site and context are read as one tuple; the per-site work
    (entity path, template cap) runs once per distinct tuple, not per record.

    With ``framed=False`` (no sink takes frames), args that certainly pack as they are
    (:func:`rows_fit`) are not packed: the columns then lack them
    (:attr:`Columns.framed` is False), and are only read in the process
    (``format.columns_as_read``).
    """
    global _trace_imported
    states = batch
    if not _trace_imported and OTEL_TRACE_MODULE in _MODULES:
        _trace_imported = True  # imported without our watch seeing it (put in sys.modules)
    rows = _batch_rows(states) if _batch_rows is not None else None
    rows = _rows(states) if rows is None else (*rows, [])  # the C half: no dict messages
    messages, times, time_deltas, starts, heads, exc_rows, stack_rows, args, dict_msgs = rows
    site_index, ctx_index, sites, ctxs, deferrable = _intern_keys(
        starts, heads, len(states), entity_prefix
    )
    columns = {
        "seq": [first_seq, *repeat(1, len(states) - 1)],
        "time": time_deltas,
        "sites": sites,
        "site": site_index,
        "ctxs": ctxs,
        "ctx": ctx_index,
        "msg": messages,
        "exc": [[row, e.type, e.value, e.traceback] for row, e in _at(states, exc_rows, "exc_info")],
        "stack": [[row, truncate_text(text)] for row, text in _at(states, stack_rows, "stack_info")],
    }
    exact = complete = True
    if any(args):
        if not framed and rows_fit(args):
            complete = False  # exact; packed only if a frame is made after all
        else:
            packed = pack_args_exactly(args)
            exact = packed is not None
            columns["args"] = packed if packed is not None else pack_args_capped(args)
    if not (exact and all(deferrable)) and None in messages:
        columns["msg"] = _rendered_where_needed(states, messages, site_index, deferrable, exact)
    extras = None if framed or dict_msgs else _extras_as_columns(states)
    if extras is not None:
        complete = False  # a frame needs the extras as rows: made afresh if one is
    else:
        extras, traces = _extras(states, dict_msgs)
        if traces:
            columns["trace"] = traces
    return Columns(columns, extras, args, exact, times, complete)


def _extras_as_columns(states: Sequence[Captured]) -> ExtraColumns | None:
    """The batch's extras as columns, made in one C pass without a dict per record
    (``_speedups.extra_columns_of``), for a batch only read in this process; None where
    they need :func:`_extras`' steps (a reserved or private name, a trace context, a
    None value) or may not pack as they are, or without the C half."""
    if _extra_columns_of is None or not isinstance(states, list):
        return None
    found = _extra_columns_of(states, RESERVED_ATTRS, MAX_FIELD_CHARS)
    return None if found is None else ExtraColumns(found, len(states))


def extras_fit(encoded: Columns) -> bool:
    """Whether ``encoded``'s extras certainly pack as they are (see :func:`rows_fit`):
    always so for extras made as columns, which were checked as they were made."""
    return isinstance(encoded.extras, ExtraColumns) or rows_fit(encoded.extras)  # type: ignore[arg-type]


_TEMPLATE_AT = SITE_FIELDS.index("template")


def messages_as_read(encoded: Columns) -> list[str | None]:
    """The batch's ``msg`` column as a reader in this process reads it: the deferred
    messages rendered (``template % args``) in one C pass (``_speedups.render_rows``)
    where every template may be (``format.deferrable_template``) and every row renders
    so; else the column as it is, whose rows ``format.columns_as_read`` renders one by
    one, the same text. About 90 ns a record less than that Python pass."""
    columns = encoded.columns
    messages = columns["msg"]
    if _render_rows is None or None not in messages:
        return messages  # type: ignore[no-any-return]
    templates = [site[_TEMPLATE_AT] for site in columns["sites"]]
    if not all(map(deferrable_template, templates)):
        return messages  # type: ignore[no-any-return]
    rendered = _render_rows(messages, columns["site"], templates, encoded.args, MAX_FIELD_CHARS)
    return messages if rendered is None else rendered  # type: ignore[return-value]


def _rows(states: Sequence[Captured]) -> tuple[Any, ...]:
    """What :func:`record_batch` reads of each record, as ``_speedups.batch_rows``
    reads it, plus the rows whose ``msg`` is a dict (the C half leaves those batches,
    and any record missing an attribute, to these steps)::

        (messages, times, time_deltas, starts, heads, exc_rows, stack_rows, args, dict_msgs)

    ``starts`` are the rows whose key (site and context) differs from the row
    before, ``heads`` their keys; records come in runs from one call site and thread.
    """
    messages = list(map(_MESSAGE, states))
    try:
        keys = list(map(_KEY, states))
        created = list(map(_CREATED, states))
        excs = list(map(_EXC_INFO, states))
        stacks = list(map(_STACK_INFO, states))
        args = list(map(_ARGS, states))
    except KeyError:
        keys = [tuple(s.get(k) for k in _KEY_NAMES) for s in states]
        created = [s.get("created", 0.0) for s in states]
        excs = [s.get("exc_info") for s in states]
        stacks = [s.get("stack_info") for s in states]
        args = [s.get("args") for s in states]
    dict_msgs: list[int] = []
    if set(map(type, map(_MSG, keys))) != {str}:
        dict_msgs = [row for row, key in enumerate(keys) if isinstance(key[_MSG_AT], dict)]
        keys = [_plain_template(key) for key in keys]
    times = list(map(int, map(mul, created, repeat(1e9))))
    starts = list(compress(range(len(keys)), [True, *map(ne, keys[1:], keys)]))
    return (
        messages, times, delta_encode(times), starts, [keys[i] for i in starts],
        list(compress(range(len(excs)), excs)), list(compress(range(len(stacks)), stacks)),
        args, dict_msgs,
    )


def _rendered_where_needed(
    states: Sequence[Captured], messages: list[str | None], site_index: list[int],
    deferrable: list[bool], args_exact: bool,
) -> list[str | None]:
    """``messages`` with the deferred ones rendered where a reader could not render
    them as the app would have: a template that ``format.deferrable_template``
    refuses (too long, a ``*`` width), or args that did not pack as they are."""
    return [
        render(state["msg"], state["args"])
        if message is None and not (args_exact and deferrable[site]) else message
        for state, message, site in zip(states, messages, site_index)
    ]


def _plain_template(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """``key`` with a non-text ``msg`` replaced by None (it has no template)."""
    return key if isinstance(key[_MSG_AT], str) else (*key[:_MSG_AT], None, *key[_MSG_AT + 1 :])


def _intern_keys(
    starts: list[int], heads: list[tuple[Any, ...]], count: int, entity_prefix: str
) -> tuple[list[int], list[int], list[list[Any]], list[list[Any]], list[bool]]:
    """Per-row site and context indexes, the two tables, and per site whether readers
    may render its messages (``format.deferrable_template``), from the runs of equal
    keys (site and context) of ``count`` rows: each run's first row and its key.

    Only the first key of each run is interned; the index columns are the runs'
    indexes repeated.
    """
    combos: dict[tuple[Any, ...], tuple[int, int]] = dict.fromkeys(heads)  # type: ignore[assignment]
    sites: dict[tuple[Any, ...], int] = {}
    ctxs: dict[tuple[Any, ...], int] = {}
    deferrable: list[bool] = []
    for key in combos:
        site = _site_row(key, entity_prefix)
        ctx = key[_SITE_END:] + _ABSENT_CONTEXT
        if site not in sites:
            sites[site] = len(sites)
            deferrable.append(deferrable_template(key[_MSG_AT]))
        combos[key] = (sites[site], ctxs.setdefault(ctx, len(ctxs)))
    head_sites, head_ctxs = zip(*map(combos.__getitem__, heads))
    lengths = list(map(sub, [*starts[1:], count], starts))
    site_index = list(chain.from_iterable(map(repeat, head_sites, lengths)))
    ctx_index = list(chain.from_iterable(map(repeat, head_ctxs, lengths)))
    return site_index, ctx_index, [list(s) for s in sites], [list(c) for c in ctxs], deferrable


def _site_row(key: tuple[Any, ...], entity_prefix: str) -> tuple[Any, ...]:
    """The ``sites`` row of a combined key, in the schema's order: its site attributes,
    the template capped, and the entity path derived from the logger name."""
    row = list(key[:_SITE_END])
    if row[_MSG_AT] is not None:
        row[_MSG_AT] = truncate_text(row[_MSG_AT])
    row.insert(_ENTITY_PATH_AT, entity_path_for(str(row[_NAME_AT]), entity_prefix))
    return tuple(row)


def _at(states: Sequence[Captured], rows: list[int], key: str) -> list[tuple[int, Any]]:
    """``(row, value)`` of attribute ``key`` for the ``rows`` of a sparse column that
    hold a value."""
    return [(row, states[row][key]) for row in rows]


def _extras(
    states: Sequence[dict[str, Any]], dict_msgs: Sequence[int]
) -> tuple[list[dict[str, Any] | None], list[list[Any]]]:
    """Per record: the attributes after the standard ones that are not reserved; and
    the rows of the ``trace`` table (format 1.3), for the records that have one.

    Names starting with ``_`` are left out, as ``JsonFormatter`` leaves them out.

    ``dict_msgs`` are the rows whose ``msg`` is a dict: its items come first, then
    the record's own extras, which win on a clash (as in ``JsonFormatter``).

    The trace context (:data:`TRACE_KEY`) comes just before the message, so the pass
    over the extras takes it too: a batch without any costs no look of its own.
    """
    # The attributes, then the extras, then MESSAGE_KEY: one C-level pass (a record
    # without extras gets an empty dict, which packs as small as None).
    extras: list[dict[str, Any] | None] | None = _middles(states) if _middles is not None else None
    if extras is None:
        ends = map(sub, map(len, states), repeat(1))
        extras = list(map(dict, map(islice, map(dict.items, states), repeat(_STANDARD_COUNT), ends)))
    seen_keys = set().union(*filter(None, extras))
    traces = _take_traces(extras) if TRACE_KEY in seen_keys else []
    if not RESERVED_ATTRS.isdisjoint(seen_keys) or any(_private(k) for k in seen_keys):
        extras = [
            {k: v for k, v in x.items() if k not in RESERVED_ATTRS and not _private(k)}
            if x else None
            for x in extras
        ]
    for row in dict_msgs:
        extras[row] = {**states[row]["msg"], **(extras[row] or {})}
    return extras, traces


def _take_traces(extras: list[dict[str, Any]]) -> list[list[Any]]:
    """The ``trace`` rows of the records whose attributes hold a trace context, taken
    out of them (each record's own fresh dict). Found with a C-level pass; each
    distinct context (the records of one span share it) is converted once. One that
    is not a valid context (never expected: :func:`trace_context` made it) is left out.
    """
    rows: list[list[Any]] = []
    known: dict[Any, list[Any]] = {}
    for row in compress(range(len(extras)), map(dict.__contains__, extras, repeat(TRACE_KEY))):
        trace = extras[row].pop(TRACE_KEY)
        try:
            fields = known.get(trace)
            if fields is None:
                fields = known[trace] = trace_row(row, *trace)[1:]
        except (TypeError, ValueError):
            continue
        rows.append([row, *fields])
    return rows


def _private(key: object) -> bool:
    return isinstance(key, str) and key.startswith("_")
