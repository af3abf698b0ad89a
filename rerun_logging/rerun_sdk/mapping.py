"""Our records as Rerun columns: one :class:`EntityColumns` per entity path. Pure.

Built with ``pyarrow`` arrays and the Rerun SDK's own descriptors (this module
imports ``rerun``, and is the only one of ours that does with the sink), following
what ``rr.TextLog`` and ``rr.AnyValues`` log, so that the viewer shows our rows as
its own text logs::

    Record / RecordingInfo        Rerun (per row of the entity's columns)
    entity_path                   the entity path ``logs/<logger path>`` (``shop.db``:
                                  ``logs/shop/db``); with an ``entity_prefix``, that
                                  prefix replaces ``logs`` (``robot/shop/db``)
    message (rendered)            TextLog:text
    level                         TextLog:level: CRITICAL, ERROR, WARN, INFO, DEBUG for
                                  the standard levels, the level's name for the others
    time_ns                       the ``log_time`` timeline (timestamp, ns): the one
                                  ``rr.log`` stamps, so app data and logs line up
    seq                           the ``log_seq`` timeline (sequence)
    level (number)                LogRecord:levelno (int64)
    logger                        LogRecord:logger
    template                      LogRecord:template
    path / line / function        LogRecord:pathname / LogRecord:lineno / LogRecord:funcName
    thread / thread_name          LogRecord:thread (uint64) / LogRecord:threadName
    process / process_name        LogRecord:process / LogRecord:processName
    task_name                     LogRecord:taskName
    exception type/value/text     LogRecord:exc_type / LogRecord:exc_value / LogRecord:exc_text
    stack_info                    LogRecord:stack_info
    trace_id / span_id / flags    LogRecord:trace_id / LogRecord:span_id / LogRecord:trace_flags
                                  (the OpenTelemetry span the record was logged in)
    extras                        one component per key, named by the key (as
                                  ``rr.AnyValues`` names them): bool, int64, float64
                                  or text (see :class:`ExtraKinds`)
    dropped (N records, reason)   a WARN TextLog row on ``<root>/rerun_logging`` with
                                  rerun_logging:dropped_count / :dropped_reason

A row without a field (no exception, no such extra) holds null there; a column no
row of the batch has is not sent. The ``LogRecord:`` fields are components of the
archetype ``LogRecord`` (grouped in the selection panel), named after the
``logging.LogRecord`` attributes they come from.

Text that is not valid UTF-8 (the decoder keeps lone surrogates) is sent with those
characters escaped (``\\udc80``).
"""

from __future__ import annotations

import json
from array import array as _typed_array
from dataclasses import dataclass
from itertools import accumulate, chain, compress, repeat
from operator import is_not
from typing import Any, Sequence

from .. import format
from ..format import ExceptionInfo, Record, RecordColumns
from ..speedups import SPEEDUPS as _SPEEDUPS
from . import RerunUnavailable

try:
    import pyarrow as pa
    import rerun as rr
except Exception as error:  # ImportError, or an SDK that does not load here
    raise RerunUnavailable(error) from error

__all__ = [
    "ARCHETYPE", "DROPPED_ENTITY", "EntityColumns", "ExtraKinds", "ROOT", "SEQ_TIMELINE",
    "TIME_TIMELINE", "batch_columns", "columns_for", "dropped_columns", "entity_path", "send", "text_log_level",
]

ROOT = "logs"
"""Where records go without an ``entity_prefix``: ``logs/<logger path>``."""
TIME_TIMELINE = "log_time"
SEQ_TIMELINE = "log_seq"
ARCHETYPE = "LogRecord"
"""The archetype of the record's own fields (``LogRecord:thread``...)."""
DROPPED_ENTITY = "rerun_logging"
"""The entity (under the root) of the rows that say records were dropped."""
_INT64 = (-(2**63), 2**63 - 1)

_LEVELS = {50: "CRITICAL", 40: "ERROR", 30: "WARN", 20: "INFO", 10: "DEBUG"}
"""``logging``'s levels as ``rr.TextLogLevel`` names (``rr.LoggingHandler``'s table)."""


def text_log_level(level: int, level_name: str) -> str:
    """The ``TextLog:level`` of a record: Rerun's name of a standard level, else ours."""
    return _LEVELS.get(level, level_name)


def entity_path(record_path: str, entity_prefix: str) -> str:
    """The Rerun entity path of a record whose (our) entity path is ``record_path``.

    ``record_path`` already carries the handler's ``entity_prefix``; without one the
    records go under :data:`ROOT`. Each part is escaped as Rerun's parser wants it.
    """
    parts = [part for part in record_path.split("/") if part]
    if not entity_prefix.strip("/"):
        parts.insert(0, ROOT)
    return str(rr.new_entity_path(parts or [ROOT]))


def root_of(entity_prefix: str) -> str:
    """The entity under which a recording's records go (the prefix, or :data:`ROOT`)."""
    return entity_prefix.strip("/") or ROOT


@dataclass(frozen=True)
class EntityColumns:
    """What one ``rr.send_columns`` call sends: an entity path, its timelines, its columns."""

    entity_path: str
    indexes: list[Any]
    """``rr.TimeColumn`` objects, one per timeline, each ``rows`` long."""
    columns: list[Any]
    """Component columns (:class:`_Column`), each ``rows`` long."""
    rows: int

    @property
    def nbytes(self) -> int:
        """The bytes of the columns' Arrow buffers."""
        return sum(column.nbytes for column in self.columns)


class _Column:
    """A component column as ``rr.send_columns`` takes it: a descriptor and a list array.

    The array has one entry per row: a one-element list, or null where the row has
    no value (what ``rr.ComponentColumn`` cannot say: it gives empty lists). It is a
    ``_speedups.ArrowColumn`` (an Arrow array by the PyCapsule interface, which
    ``rr.send_columns`` and ``pa.array`` take) or a ``pyarrow`` array."""

    __slots__ = ("descriptor", "array")

    def __init__(self, descriptor: Any, array: Any) -> None:
        self.descriptor = descriptor
        self.array = array

    def component_descriptor(self) -> Any:
        return self.descriptor

    def as_arrow_array(self) -> Any:
        return self.array

    @property
    def nbytes(self) -> int:
        """The bytes of the array's buffers (summed here for a ``pyarrow`` array: its
        ``nbytes`` gives up the GIL, see :func:`batch_columns`)."""
        if isinstance(self.array, pa.Array):
            return sum(buffer.size for buffer in self.array.buffers() if buffer is not None)
        return int(self.array.nbytes)


def _escaped(text: str) -> str:
    """``text`` with what UTF-8 cannot hold (lone surrogates) escaped as ``\\udc80``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _bits(flags: Sequence[bool]) -> bytes:
    """``flags`` as an Arrow bitmap (the first flag in the lowest bit of the first byte)."""
    digits = "".join(["1" if flag else "0" for flag in reversed(flags)]) or "0"
    return int(digits, 2).to_bytes((len(flags) + 7) // 8, "little")


_ARRAY_CODES = {pa.int64(): "q", pa.uint64(): "Q", pa.float64(): "d", pa.timestamp("ns"): "q"}


def _array(values: Sequence[Any], kind: Any) -> Any:
    """An Arrow array (no nulls) of ``values`` of type ``kind``, made from buffers by
    Python's own loops (``pa.array`` gives up the GIL, see :func:`batch_columns`); text
    that UTF-8 cannot hold is escaped, any other value as its ``str``."""
    if kind == pa.string():
        encoded = [
            (value if type(value) is str else str(value)).encode("utf-8", "backslashreplace")
            for value in values
        ]
        offsets = _typed_array("i", accumulate(map(len, encoded), initial=0))
        buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    elif kind == pa.bool_():
        buffers = [None, pa.py_buffer(_bits([bool(value) for value in values]))]
    else:
        buffers = [None, pa.py_buffer(_typed_array(_ARRAY_CODES[kind], values))]
    return pa.Array.from_buffers(kind, len(values), buffers, null_count=0)


_IDENTITY: list[Any] = [pa.py_buffer(_typed_array("i", range(4097)))]
"""The list offsets 0, 1, 2...: one value a row (grown as a batch needs, and sliced)."""


def _identity_offsets(rows: int) -> Any:
    buffer = _IDENTITY[0]
    if buffer.size < (rows + 1) * 4:
        buffer = _IDENTITY[0] = pa.py_buffer(_typed_array("i", range(2 * rows + 1)))
    return buffer.slice(0, (rows + 1) * 4)


_LIST_TYPES: dict[Any, Any] = {}
_C_KINDS = {pa.string(): 0, pa.int64(): 1, pa.uint64(): 2, pa.float64(): 4, pa.bool_(): 5}
"""The Arrow types ``_speedups.arrow_columns`` makes, by its number for each."""
_C_TIMESTAMP = 3


def _list_type(kind: Any) -> Any:
    found = _LIST_TYPES.get(kind)
    if found is None:
        found = _LIST_TYPES[kind] = pa.list_(kind)
    return found


def _picked(values: Sequence[Any], index: Sequence[int] | None, rows: Sequence[int] | None) -> list[Any]:
    """``values[index[rows[i]]]`` for each row ``i`` (see :func:`_list_column`)."""
    if index is not None:
        index = index if rows is None else list(map(index.__getitem__, rows))
        return list(map(values.__getitem__, index))
    return list(values) if rows is None else list(map(values.__getitem__, rows))


def _list_columns(
    fields: Sequence[Field], index: Sequence[int] | None = None, rows: Sequence[int] | None = None,
) -> list[_Column | None]:
    """The component column of each field, whose row ``i`` is ``values[index[rows[i]]]``
    (no ``index``: ``values[rows[i]]``; no ``rows``: every row in order), one value a row,
    null where it is None; None for a field no row has a value of.

    Made from buffers (``_speedups.arrow_columns`` where it is built, else Python's own
    loops), never with ``pa.array``, Arrow's compute kernels or numpy's loops: those give
    up the GIL (see :func:`batch_columns`)."""
    made = None
    if _SPEEDUPS is not None:
        made = _SPEEDUPS.arrow_columns([(values, _C_KINDS[kind], True) for _, values, kind in fields], index, rows)
    columns = []
    for at, (descriptor, values, kind) in enumerate(fields):
        column = made[at] if made is not None else None
        if column is None:
            columns.append(_python_list_column(descriptor, _picked(values, index, rows), kind))
        elif column.null_count < len(column):
            columns.append(_Column(descriptor, column))
        else:
            columns.append(None)
    return columns


def _list_column(descriptor: Any, values: Sequence[Any], kind: Any) -> _Column | None:
    """The column of one field (see :func:`_list_columns`), a value per row."""
    return _list_columns([(descriptor, values, kind)])[0]


def _python_list_column(descriptor: Any, values: list[Any], kind: Any) -> _Column | None:
    """:func:`_list_column` of the rows' values, by Python's own loops."""
    if kind in _INT_RANGES:
        values = _in_range(values, *_INT_RANGES[kind])
    count, present = len(values), [value is not None for value in values]
    if not any(present):
        return None
    nulls = count - sum(present)
    if nulls:
        child = _array([value for value in values if value is not None], kind)
        offsets = pa.py_buffer(_typed_array("i", accumulate(present, initial=0)))
        bits = pa.py_buffer(_bits(present))
    else:
        child, offsets, bits = _array(values, kind), _identity_offsets(count), None
    array = pa.Array.from_buffers(_list_type(kind), count, [bits, offsets], null_count=nulls, children=[child])
    return _Column(descriptor, array)


_DESCRIPTORS: dict[str, Any] = {}


def _field(name: str) -> Any:
    """The descriptor of the record's own field ``name`` (``LogRecord:name``)."""
    found = _DESCRIPTORS.get(name)
    if found is None:
        found = _DESCRIPTORS[name] = rr.ComponentDescriptor(f"{ARCHETYPE}:{name}", archetype=ARCHETYPE)
    return found


class ExtraKinds:
    """The Arrow type of each extra's component, fixed by the first value of that key.

    Rerun wants one type per component. A key's first non-None value decides: bool,
    int (int64), float, or text (str, and anything else as its JSON text: lists,
    maps as JSON, bytes and ints past int64 as their text). A later value of another kind
    is converted where nothing is lost (an int into a float component, anything
    into a text one); otherwise it goes, as text, into the sibling component
    ``<key>.text``, so no value is ever lost or mistyped. One per sink.
    """

    def __init__(self) -> None:
        self.kinds: dict[str, str] = {}

    def kind_of(self, key: str, value: Any) -> str:
        """The kind of ``key``'s component (fixed by ``value`` when the key is new)."""
        kind = self.kinds.get(key)
        if kind is None:
            kind = self.kinds[key] = _kind(value)
        return kind


def _kind(value: Any) -> str:
    if value is True or value is False:
        return "bool"
    if isinstance(value, int) and _INT64[0] <= value <= _INT64[1]:
        return "int"
    if isinstance(value, float):
        return "float"
    return "text"


_ARROW_KINDS = {"bool": "bool_", "int": "int64", "float": "float64", "text": "string"}


def _fits(kind: str, value: Any) -> Any:
    """``value`` as a value of a ``kind`` component, or None when it is not one."""
    actual = _kind(value)
    if actual == kind:
        return value if kind != "text" else _text(value)
    if kind == "float" and actual == "int":
        return float(value)
    if kind == "text":
        return _text(value)
    return None


_PLAIN_TYPES = {"bool": bool, "int": int, "float": float, "text": str}


def _all_of_kind(values: list[Any], kind: str) -> bool:
    """Whether every value of ``values`` (None aside) is already one of a ``kind``
    component's (the common case, checked without a call per value)."""
    types = set(map(type, values))
    nulls = type(None) in types
    types.discard(type(None))
    if types != {_PLAIN_TYPES[kind]}:
        return False
    if kind == "int":
        present = list(compress(values, map(is_not, values, repeat(None)))) if nulls else values
        return _INT64[0] <= min(present) and max(present) <= _INT64[1]
    return True


def _text(value: Any) -> str:
    """An extra as text: a str as it is, lists and maps as JSON, other values as their text."""
    if isinstance(value, str):
        return value
    if not isinstance(value, (list, tuple, dict)):
        return format.safe_str(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=format.safe_str)
    except (TypeError, ValueError, RecursionError):
        return format.safe_str(value)


def _descriptor(name: str) -> Any:
    """The descriptor of the extra ``name``'s component (named by the key, as
    ``rr.AnyValues`` names them)."""
    found = _EXTRA_DESCRIPTORS.get(name)
    if found is None:
        found = _EXTRA_DESCRIPTORS[name] = rr.ComponentDescriptor(name)
    return found


_EXTRA_DESCRIPTORS: dict[str, Any] = {}
_NO_EXTRAS: dict[str, Any] = {}
"""What a row without extras reads as (never changed)."""


def _extra_columns(extras: Sequence[dict[str, Any] | None]) -> list[tuple[Any, list[Any], str | None]]:
    """``(key, values, kind)`` for each extra key of the batch, in the order keys first
    come: a value per row (None where a row has none), and the kind every value that is
    not None already is (``"int"`` within int64), ``""`` when they are not all one,
    None when there is none. One C pass (``_speedups.extra_columns``) where it is built."""
    if isinstance(extras, format.ExtraColumns):
        return extras.columns  # made so by the flusher
    found = _SPEEDUPS.extra_columns(extras) if _SPEEDUPS is not None else None
    if found is not None:
        return found  # type: ignore[no-any-return]
    rows = [extra or _NO_EXTRAS for extra in extras] if None in extras else extras
    columns = []
    for key in dict.fromkeys(chain.from_iterable(rows)):
        values = list(map(dict.get, rows, repeat(key)))  # type: ignore[arg-type]
        kind = next((_kind(value) for value in values if value is not None), None)
        common = kind if kind is None or _all_of_kind(values, kind) else ""
        columns.append((key, values, common))
    return columns


Field = tuple[Any, Sequence[Any], Any]
"""A field of a batch as :func:`_list_columns` makes its column: (descriptor, values,
Arrow type), the values one per row, or one per site or context (with the batch's
``site_rows`` or ``ctx_rows`` as the index)."""


def _extra_fields(extras: Sequence[dict[str, Any] | None], kinds: ExtraKinds) -> list[Field]:
    """Each extra key of the batch, a value per row, and its ``<key>.text`` sibling where
    values of another kind went (see :class:`ExtraKinds`)."""
    fields: list[Field] = []
    for key, raw, common in _extra_columns(extras):
        if common is None:
            continue
        name = key if isinstance(key, str) else format.safe_str(key)
        kind = kinds.kind_of(name, next(value for value in raw if value is not None))
        arrow_kind = getattr(pa, _ARROW_KINDS[kind])()
        if common == kind:
            fields.append((_descriptor(name), raw, arrow_kind))
            continue
        values = [None if value is None else _fits(kind, value) for value in raw]
        spill = [
            _text(value) if value is not None and fitted is None else None
            for value, fitted in zip(raw, values)
        ]
        fields.append((_descriptor(name), values, arrow_kind))
        if any(text is not None for text in spill):
            fields.append((_descriptor(f"{name}.text"), spill, pa.string()))
    return fields


_SITE = {name: at for at, name in enumerate(format.SITE_FIELDS)}
_CONTEXT = {name: at for at, name in enumerate(format.CONTEXT_FIELDS)}


def _site_fields(batch: RecordColumns) -> list[Field]:
    """The fields of each record's site (level, logger, source...): one value per site,
    each row's given by the batch's ``site_rows``."""
    sites, at = batch.sites, _SITE
    level, name, path, line = at["level"], at["level_name"], at["path"], at["line"]
    string, int64 = pa.string(), pa.int64()
    return [
        (rr.TextLog.descriptor_level(), [text_log_level(s[level], s[name]) for s in sites], string),
        (_field("levelno"), [s[level] for s in sites], int64),
        (_field("logger"), [s[at["logger"]] for s in sites], string),
        (_field("template"), [s[at["template"]] for s in sites], string),
        (_field("pathname"), [s[path] or None for s in sites], string),
        (_field("lineno"), [s[line] if s[path] else None for s in sites], int64),
        (_field("funcName"), [s[at["function"]] for s in sites], string),
    ]


def _context_fields(batch: RecordColumns) -> list[Field]:
    """The thread, process and task of each record, from the context table (as sites)."""
    ctxs, at = batch.ctxs, _CONTEXT
    string = pa.string()
    return [
        (_field("thread"), [c[at["thread"]] for c in ctxs], pa.uint64()),
        (_field("threadName"), [c[at["thread_name"]] for c in ctxs], string),
        (_field("process"), [c[at["process"]] for c in ctxs], pa.int64()),
        (_field("processName"), [c[at["process_name"]] for c in ctxs], string),
        (_field("taskName"), [c[at["task_name"]] for c in ctxs], string),
    ]


def _sparse_fields(batch: RecordColumns) -> list[Field]:
    """The exception, stack and trace fields, for the few rows that have them."""
    count, string = len(batch), pa.string()
    fields: list[tuple[str, Any, dict[int, Any]]] = []
    if batch.exceptions:
        excs = batch.exceptions
        fields += [
            ("exc_type", string, {row: e.type for row, e in excs.items()}),
            ("exc_value", string, {row: e.value for row, e in excs.items()}),
            ("exc_text", string, {row: e.traceback for row, e in excs.items()}),
        ]
    if batch.stacks:
        fields.append(("stack_info", string, batch.stacks))
    if batch.traces:
        traces = batch.traces
        fields += [
            ("trace_id", string, {row: t[0] for row, t in traces.items()}),
            ("span_id", string, {row: t[1] for row, t in traces.items()}),
            ("trace_flags", pa.int64(), {row: t[2] for row, t in traces.items()}),
        ]
    found: list[Field] = []
    for name, kind, by_row in fields:
        values = [None] * count
        for row, value in by_row.items():
            values[row] = value
        found.append((_field(name), values, kind))
    return found


_INT_RANGES = {pa.int64(): _INT64, pa.uint64(): (0, 2**64 - 1)}
"""What each integer type holds: a value past it is null, as in the C half."""


def _in_range(values: list[int | None], low: int, high: int) -> list[int | None]:
    """``values``, with None for any past ``low``..``high`` (checked once for all)."""
    present = [value for value in values if value is not None]
    if not present or (low <= min(present) and max(present) <= high):
        return values
    return [value if value is not None and low <= value <= high else None for value in values]


class _Index:
    """A timeline's column as ``rr.send_columns`` takes it (``rr.TimeColumn``'s two
    methods), made from buffers: ``rr.TimeColumn`` copies with numpy."""

    __slots__ = ("name", "array")

    def __init__(self, name: str, array: Any) -> None:
        self.name = name
        self.array = array

    def timeline_name(self) -> str:
        return self.name

    def as_arrow_array(self) -> Any:
        return self.array


_TIMESTAMP = pa.timestamp("ns")


def _index(name: str, values: Sequence[int], rows: Sequence[int] | None, timestamp: bool) -> _Index:
    """The timeline ``name`` of the rows (``values[rows[i]]``; all of them when ``rows``
    is None): ns since the epoch (a time before it: the epoch), or a sequence."""
    kind = _TIMESTAMP if timestamp else pa.int64()
    if _SPEEDUPS is not None:
        code = _C_TIMESTAMP if timestamp else _C_KINDS[kind]
        (made,) = _SPEEDUPS.arrow_columns([(values, code, False)], None, rows)
        if made is not None:
            return _Index(name, made)
    picked = _picked(values, None, rows)
    if timestamp and picked and min(picked) < 0:
        picked = [max(value, 0) for value in picked]
    return _Index(name, _array(picked, kind))


def _groups(batch: RecordColumns, paths: list[str]) -> list[tuple[str, list[int] | None]]:
    """(entity path, rows) for each entity path of the batch, in the order of their first
    row; rows is None for a batch that is all one path (the common case)."""
    if len(set(paths)) <= 1:
        return [(paths[0], None)] if paths else []
    ids: dict[str, int] = {}
    site_groups = [ids.setdefault(path, len(ids)) for path in paths]
    if _SPEEDUPS is not None:
        rows = _SPEEDUPS.group_rows(list(batch.site_rows), site_groups, len(ids))
    else:
        rows = [[] for _ in ids]
        for row, site in enumerate(batch.site_rows):
            rows[site_groups[site]].append(row)
    found = [(path, rows[group]) for path, group in ids.items() if rows[group]]
    return sorted(found, key=lambda item: item[1][0])


def batch_columns(
    batch: RecordColumns, entity_prefix: str, kinds: ExtraKinds,
    paths: dict[str, str] | None = None,
) -> list[EntityColumns]:
    """The columns of a decoded batch: one :class:`EntityColumns` per entity path, in
    the order the paths first appear, rows in order. ``paths`` caches entity paths.

    Each column is made from the batch's own rows and tables (a site's fields once per
    site) in one pass, with no object per record, and without giving up the GIL:
    pyarrow's compute kernels (``take``, ``filter``, ``is_valid``, ``nbytes``) and numpy's
    loops release it while they run, and the flusher then waits for the app's logging
    thread to let go of it, up to the switch interval (5 ms) each time. Forty such waits
    a batch made the ``rerun`` sinks fall behind an app logging from one thread, and
    drop records once its queue was full."""
    if not len(batch):
        return []
    paths = {} if paths is None else paths
    entity_at = _SITE["entity_path"]
    site_paths = []
    for site in batch.sites:
        path = paths.get(site[entity_at])
        if path is None:
            path = paths[site[entity_at]] = entity_path(site[entity_at], entity_prefix)
        site_paths.append(path)
    per_row: list[Field] = [
        (rr.TextLog.descriptor_text(), batch.messages, pa.string()),
        *_sparse_fields(batch), *_extra_fields(batch.extras, kinds),
    ]
    per_site, per_ctx = _site_fields(batch), _context_fields(batch)
    found = []
    for path, rows in _groups(batch, site_paths):
        columns = [
            *_list_columns(per_row[:1], None, rows), *_list_columns(per_site, batch.site_rows, rows),
            *_list_columns(per_ctx, batch.ctx_rows, rows), *_list_columns(per_row[1:], None, rows),
        ]
        indexes = [_index(TIME_TIMELINE, batch.times, rows, True), _index(SEQ_TIMELINE, batch.seqs, rows, False)]
        found.append(EntityColumns(path, indexes, [c for c in columns if c is not None], len(indexes[1].array)))
    return found


def columns_for(
    records: Sequence[Record], entity_prefix: str, kinds: ExtraKinds,
    paths: dict[str, str] | None = None,
) -> list[EntityColumns]:
    """As :func:`batch_columns`, for :class:`Record` objects (tests and tools)."""
    return batch_columns(RecordColumns.of(list(records)), entity_prefix, kinds, paths)


def dropped_columns(count: int, reason: str, time_ns: int, entity_prefix: str) -> EntityColumns:
    """The row that says ``count`` records were lost, for ``reason``, at ``time_ns``."""
    reason = _escaped(reason)
    path = str(rr.new_entity_path([*root_of(entity_prefix).split("/"), DROPPED_ENTITY]))
    columns = [
        _list_column(
            rr.TextLog.descriptor_text(), [f"rerun-logging dropped {count} records: {reason}"],
            pa.string(),
        ),
        _list_column(rr.TextLog.descriptor_level(), ["WARN"], pa.string()),
        _list_column(
            rr.ComponentDescriptor("rerun_logging:dropped_count", archetype="rerun_logging"),
            [count], pa.int64(),
        ),
        _list_column(
            rr.ComponentDescriptor("rerun_logging:dropped_reason", archetype="rerun_logging"),
            [reason], pa.string(),
        ),
    ]
    return EntityColumns(path, [_index(TIME_TIMELINE, [time_ns], None, True)], [c for c in columns if c], 1)


def send(columns: EntityColumns, recording: Any) -> None:
    """Send ``columns`` into ``recording`` (an ``rr.RecordingStream``) in one call.

    Raises what the SDK raises (``strict``: a bad batch is an error here, never a
    warning the SDK logs from the flusher thread)."""
    rr.send_columns(
        columns.entity_path, indexes=columns.indexes, columns=columns.columns,
        recording=recording, strict=True,
    )


def _warm_up() -> None:
    """Build one batch through every branch, once, where this module is imported.

    ``pyarrow`` and ``numpy`` import parts of themselves on first use (``numpy.ma``,
    ``pyarrow.compute``, a probe for ``pandas``): that must happen on the thread that
    configures the handler, never on the flusher (see :mod:`rerun_logging.sinks`)."""
    full = Record(
        seq=0, time_ns=0, level=25, level_name="NOTICE", entity_path="warm/up", logger="warm.up",
        message="\udc80", template="t", extras={"b": True, "i": 1, "f": 1.5, "s": "s", "l": [1]},
        exception=ExceptionInfo("E", "v", "tb"), stack_info="stack", thread=1, thread_name="t",
        process=1, process_name="p", task_name="task", path="p.py", line=1, function="f",
    )
    bare = Record(
        seq=1, time_ns=1, level=20, level_name="INFO", entity_path="warm/up", logger="warm.up",
        message="m", extras={"i": "text"},
    )
    for columns in columns_for([full, bare], "", ExtraKinds()):
        columns.nbytes
    dropped_columns(1, "warm-up", 0, "")


_warm_up()
