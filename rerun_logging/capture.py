"""Capture of ``LogRecord`` objects: what ``emit`` keeps, and how a batch becomes columns.

Two steps, both pure:

- :func:`capture` runs on the caller's thread inside ``emit``. It keeps what may
  change after ``emit`` returns: the rendered message (the args may be mutable), a
  shallow copy of the record's attributes (a later handler or formatter may set or
  change some), and the exception as text (the traceback holds live frames). This
  is the one place that decides what is captured at log time, like
  ``QueueHandler.prepare``.
- :func:`record_columns` runs on the handler's flusher thread. It turns a batch of
  captured records into the columns of one RECORDS message (see
  :mod:`rerun_logging.format`), with C-level passes over the whole batch where it
  can, because this is where the per-record cost of the whole package goes.

Extras are the attributes ``logging`` did not set, as python-json-logger finds them:
anything not in its ``RESERVED_ATTRS``. A ``dict`` ``record.msg`` contributes its
items as extras and an empty message, as ``JsonFormatter`` does.
"""

from __future__ import annotations

import logging
import traceback
from itertools import compress, islice, repeat
from operator import itemgetter, mul
from typing import Any, Sequence

from pythonjsonlogger.core import RESERVED_ATTRS as _JSON_LOGGER_RESERVED

from .format import MAX_FIELD_CHARS, ExceptionInfo, entity_path_for, truncate_text

RESERVED_ATTRS: frozenset[str] = frozenset(_JSON_LOGGER_RESERVED) | {"taskName"}
"""Attributes that are not extras: python-json-logger's list (copied, never mutated)."""

Captured = tuple[str, dict[str, Any]]
"""What :func:`capture` returns: the rendered message and the record's attributes."""

_STANDARD_COUNT = len(logging.LogRecord("n", 0, "p", 0, "m", (), None).__dict__)
"""How many attributes ``LogRecord.__init__`` sets: extras come after them."""

_CONTEXT_KEYS = ("thread", "threadName", "process", "processName", "taskName")
_FIELDS = itemgetter(
    "created", "name", "levelno", "levelname", "msg", "pathname", "lineno", "funcName",
    "exc_info", "stack_info",
)
_CONTEXT = itemgetter(*_CONTEXT_KEYS)


def capture(record: logging.LogRecord) -> Captured:
    """What ``emit`` keeps of ``record``; never raises for a bad message or exception."""
    state = record.__dict__.copy()
    msg = state["msg"]
    if msg.__class__ is str or not isinstance(msg, dict):
        try:
            message = record.getMessage()
        except Exception as error:
            message = _unformattable(record, error)
    else:
        state["msg"] = dict(msg)
        message = ""
    if state["exc_info"] or state["exc_text"]:
        state["exc_info"] = exception_info(record)
    return message, state


def _unformattable(record: logging.LogRecord, error: Exception) -> str:
    return truncate_text(
        f"<message could not be formatted: {type(error).__name__}: {error}> "
        f"msg={_safe_repr(record.msg)} args={_safe_repr(record.args)}"
    )


def exception_info(record: logging.LogRecord) -> ExceptionInfo | None:
    """The record's exception as text (type, value, traceback), or None."""
    info = record.exc_info
    if not info or info[0] is None:
        text = record.exc_text
        return ExceptionInfo("", "", truncate_text(text)) if text else None
    exc_type, value = info[0], info[1]
    try:
        text = "".join(traceback.format_exception(exc_type, value, info[2])).rstrip("\n")
    except Exception as error:
        text = f"<traceback could not be formatted: {error!r}>"
    module = getattr(exc_type, "__module__", "")
    name = getattr(exc_type, "__qualname__", str(exc_type))
    qualified = name if module in ("builtins", "", None) else f"{module}.{name}"
    return ExceptionInfo(qualified, truncate_text(_safe_str(value)), truncate_text(text))


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return _safe_repr(value)


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


class SiteTable:
    """Interns tuples into a per-frame table: values are indexes, the table is a list."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []

    def index(self, keys: Sequence[tuple[Any, ...]]) -> list[int]:
        """Indexes for ``keys``, adding unseen ones to :attr:`rows` in order."""
        unique = dict.fromkeys(keys)
        base = len(self.rows)
        where = {key: base + i for i, key in enumerate(unique)}
        self.rows.extend(unique)
        return list(map(where.__getitem__, keys))


def record_columns(
    batch: Sequence[Captured], first_seq: int, entity_prefix: str = ""
) -> tuple[dict[str, Any], list[dict[str, Any] | None]]:
    """Columns of one RECORDS message for ``batch``, numbered from ``first_seq``.

    Returns the columns except ``extra`` and the extras list (for
    ``format.pack_extras``), as ``format.columns_for`` does for ``Record`` objects.
    """
    messages, states = zip(*batch)
    try:
        fields = list(map(_FIELDS, states))
        contexts = list(map(_CONTEXT, states))
    except KeyError:
        fields = [_fields_of(s) for s in states]
        contexts = [tuple(s.get(k) for k in _CONTEXT_KEYS) for s in states]
    created, names, levels, level_names, msgs, paths, lines, functions, excs, stacks = zip(
        *fields
    )
    dict_msgs: list[int] = []
    if set(map(type, msgs)) != {str}:
        dict_msgs = [row for row, m in enumerate(msgs) if isinstance(m, dict)]
        msgs = tuple(m if isinstance(m, str) else None for m in msgs)
    if max(map(len, filter(None, msgs)), default=0) > MAX_FIELD_CHARS:
        msgs = tuple(truncate_text(m) if m else m for m in msgs)
    entities = {name: entity_path_for(name, entity_prefix) for name in set(names)}
    sites = SiteTable()
    site_index = sites.index(
        list(zip(names, map(entities.__getitem__, names), levels, level_names, msgs, paths, lines, functions))
    )
    ctxs = SiteTable()
    ctx_index = ctxs.index(contexts)
    times = list(map(int, map(mul, created, repeat(1e9))))
    columns = {
        "seq": [first_seq, *repeat(1, len(states) - 1)],
        "time": [times[0], *map(int.__sub__, times[1:], times)],
        "sites": [list(s) for s in sites.rows],
        "site": site_index,
        "ctxs": [list(c) for c in ctxs.rows],
        "ctx": ctx_index,
        "msg": _capped(messages),
        "exc": [[row, e.type, e.value, e.traceback] for row, e in _present(excs)],
        "stack": [[row, truncate_text(text)] for row, text in _present(stacks)],
    }
    return columns, _extras(states, dict_msgs)


def _present(column: Sequence[Any]) -> list[tuple[int, Any]]:
    """``(row, value)`` for the rows of a sparse column that hold a value."""
    rows = list(compress(range(len(column)), column))
    return [(row, column[row]) for row in rows]


def _fields_of(state: dict[str, Any]) -> tuple[Any, ...]:
    """The standard fields of a record whose factory left some out."""
    return (
        state.get("created", 0.0), str(state.get("name", "")), state.get("levelno", 0),
        str(state.get("levelname", "")), state.get("msg"), str(state.get("pathname", "")),
        state.get("lineno", 0), state.get("funcName"), state.get("exc_info"),
        state.get("stack_info"),
    )


def _capped(messages: Sequence[str]) -> list[str]:
    if max(map(len, messages)) <= MAX_FIELD_CHARS:
        return list(messages)
    return [truncate_text(m) for m in messages]


def _extras(
    states: Sequence[dict[str, Any]], dict_msgs: Sequence[int]
) -> list[dict[str, Any] | None]:
    """Per record: the attributes after the standard ones that are not reserved.

    Names starting with ``_`` are left out, as ``JsonFormatter`` leaves them out.

    ``dict_msgs`` are the rows whose ``msg`` is a dict: its items come first, then
    the record's own extras, which win on a clash (as in ``JsonFormatter``).
    """
    count = _STANDARD_COUNT
    extras = [dict(islice(s.items(), count, None)) if len(s) > count else None for s in states]
    seen_keys = set().union(*filter(None, extras))
    if not RESERVED_ATTRS.isdisjoint(seen_keys) or any(_private(k) for k in seen_keys):
        extras = [
            {k: v for k, v in x.items() if k not in RESERVED_ATTRS and not _private(k)}
            if x else None
            for x in extras
        ]
    for row in dict_msgs:
        extras[row] = {**states[row]["msg"], **(extras[row] or {})}
    return extras


def _private(key: object) -> bool:
    return isinstance(key, str) and key.startswith("_")
