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
from dataclasses import dataclass
from itertools import chain, compress, repeat
from operator import is_not
from typing import Any, Sequence

from .. import format
from ..format import ExceptionInfo, Record, RecordColumns
from ..speedups import SPEEDUPS as _SPEEDUPS
from . import RerunUnavailable

try:
    import numpy as np
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


class _Column:
    """A component column as ``rr.send_columns`` takes it: a descriptor and a list array.

    The array has one entry per row: a one-element list, or null where the row has
    no value (what ``rr.ComponentColumn`` cannot say: it gives empty lists)."""

    __slots__ = ("descriptor", "array")

    def __init__(self, descriptor: Any, array: Any) -> None:
        self.descriptor = descriptor
        self.array = array

    def component_descriptor(self) -> Any:
        return self.descriptor

    def as_arrow_array(self) -> Any:
        return self.array


def _escaped(text: str) -> str:
    """``text`` with what UTF-8 cannot hold (lone surrogates) escaped as ``\\udc80``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _array(values: Sequence[Any], kind: Any) -> Any:
    """An Arrow array of ``values`` (None: null) of type ``kind``; text that UTF-8
    cannot hold is escaped."""
    try:
        return pa.array(values, kind)
    except (UnicodeEncodeError, pa.ArrowInvalid, pa.ArrowTypeError):
        if kind != pa.string():
            raise
        return pa.array([None if v is None else _escaped(str(v)) for v in values], kind)


def _list_of(descriptor: Any, array: Any) -> _Column | None:
    """The component column of ``array``: one value per row, none where it is null;
    None when no row has one. Built with Arrow's and numpy's own loops."""
    rows, nulls = len(array), array.null_count
    if nulls == rows:
        return None
    if nulls == 0:
        offsets = pa.array(np.arange(rows + 1, dtype=np.int32))
        return _Column(descriptor, pa.ListArray.from_arrays(offsets, array))
    valid = array.is_valid()
    present = np.asarray(valid.to_numpy(zero_copy_only=False))
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(present, out=offsets[1:])
    list_array = pa.ListArray.from_arrays(
        pa.array(offsets), array.filter(valid), mask=pa.array(~present)
    )
    return _Column(descriptor, list_array)


def _list_column(descriptor: Any, values: Sequence[Any], kind: Any) -> _Column | None:
    """The column of ``values`` (None where a row has none); None when no row has one."""
    return _list_of(descriptor, _array(values, kind))


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


def _extra_arrays(extras: Sequence[dict[str, Any] | None], kinds: ExtraKinds) -> list[tuple[Any, Any]]:
    """(descriptor, array) of each extra key of the batch, a row per record, and of its
    ``<key>.text`` sibling where values of another kind went (see :class:`ExtraKinds`)."""
    arrays = []
    for key, raw, common in _extra_columns(extras):
        if common is None:
            continue
        name = key if isinstance(key, str) else format.safe_str(key)
        kind = kinds.kind_of(name, next(value for value in raw if value is not None))
        arrow_kind = getattr(pa, _ARROW_KINDS[kind])()
        if common == kind:
            arrays.append((_descriptor(name), _array(raw, arrow_kind)))
            continue
        values = [None if value is None else _fits(kind, value) for value in raw]
        spill = [
            _text(value) if value is not None and fitted is None else None
            for value, fitted in zip(raw, values)
        ]
        arrays.append((_descriptor(name), _array(values, arrow_kind)))
        if any(text is not None for text in spill):
            arrays.append((_descriptor(f"{name}.text"), _array(spill, pa.string())))
    return arrays


_SITE = {name: at for at, name in enumerate(format.SITE_FIELDS)}
_CONTEXT = {name: at for at, name in enumerate(format.CONTEXT_FIELDS)}


def _site_arrays(batch: RecordColumns) -> list[tuple[Any, Any]]:
    """The fields of each record's site (level, logger, source...): one value per site,
    spread to the rows by the batch's ``site_rows`` in one Arrow ``take``."""
    sites, at = batch.sites, _SITE
    level, name, path, line = at["level"], at["level_name"], at["path"], at["line"]
    string, int64 = pa.string(), pa.int64()
    per_site: list[tuple[Any, Any, list[Any]]] = [
        (rr.TextLog.descriptor_level(), string, [text_log_level(s[level], s[name]) for s in sites]),
        (_field("levelno"), int64, _int64s([s[level] for s in sites])),
        (_field("logger"), string, [s[at["logger"]] for s in sites]),
        (_field("template"), string, [s[at["template"]] for s in sites]),
        (_field("pathname"), string, [s[path] or None for s in sites]),
        (_field("lineno"), int64, _int64s([s[line] if s[path] else None for s in sites])),
        (_field("funcName"), string, [s[at["function"]] for s in sites]),
    ]
    rows = _indices(batch.site_rows, len(sites))
    return [(d, _spread(_array(values, kind), rows, len(batch))) for d, kind, values in per_site]


def _context_arrays(batch: RecordColumns) -> list[tuple[Any, Any]]:
    """The thread, process and task of each record, from the context table (as sites)."""
    ctxs, at = batch.ctxs, _CONTEXT
    string = pa.string()
    per_ctx: list[tuple[str, Any, list[Any]]] = [
        ("thread", pa.uint64(), _uint64s([c[at["thread"]] for c in ctxs])),
        ("threadName", string, [c[at["thread_name"]] for c in ctxs]),
        ("process", pa.int64(), _int64s([c[at["process"]] for c in ctxs])),
        ("processName", string, [c[at["process_name"]] for c in ctxs]),
        ("taskName", string, [c[at["task_name"]] for c in ctxs]),
    ]
    rows = _indices(batch.ctx_rows, len(ctxs))
    return [(_field(n), _spread(_array(values, kind), rows, len(batch))) for n, kind, values in per_ctx]


def _indices(rows: list[int], tables: int) -> Any:
    """The rows' indexes into a table of ``tables`` entries, as Arrow wants them for a
    ``take`` (None for a table of one: nothing to look up)."""
    return None if tables == 1 else pa.array(_int_array(rows, np.int32))


def _spread(table: Any, rows: Any, count: int) -> Any:
    """``table`` (one value per site or context) spread to the ``count`` rows."""
    return pa.repeat(table[0], count) if rows is None else table.take(rows)


def _sparse_arrays(batch: RecordColumns) -> list[tuple[Any, Any]]:
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
    arrays = []
    for name, kind, by_row in fields:
        values = [None] * count
        for row, value in by_row.items():
            values[row] = value
        arrays.append((_field(name), _array(values, kind)))
    return arrays


def _int64s(values: list[int | None]) -> list[int | None]:
    """``values``, with None for any that int64 cannot hold (checked once for all)."""
    return _in_range(values, *_INT64)


def _uint64s(values: list[int | None]) -> list[int | None]:
    return _in_range(values, 0, 2**64 - 1)


def _in_range(values: list[int | None], low: int, high: int) -> list[int | None]:
    present = [value for value in values if value is not None]
    if not present or (low <= min(present) and max(present) <= high):
        return values
    return [value if value is not None and low <= value <= high else None for value in values]


def _int_array(values: Sequence[int], dtype: Any) -> Any:
    """``values`` (Python ints) as a numpy array: ``fromiter`` makes it in about half
    ``asarray``'s time (95 µs for 4,096 timestamps instead of 170); an int past
    ``dtype`` raises OverflowError in both."""
    return np.fromiter(values, dtype=dtype, count=len(values))


def _timestamps(times_ns: Any) -> Any:
    return rr.TimeColumn(TIME_TIMELINE, timestamp=np.asarray(times_ns, dtype=np.int64).view("datetime64[ns]"))


def _groups(batch: RecordColumns, paths: list[str]) -> list[tuple[str, Any]]:
    """(entity path, rows) for each entity path of the batch, in the order of their first
    row; rows is None for a batch that is all one path (the common case)."""
    if len(set(paths)) <= 1:
        return [(paths[0], None)] if paths else []
    ids: dict[str, int] = {}
    site_group = np.asarray([ids.setdefault(path, len(ids)) for path in paths], dtype=np.int64)
    per_row = site_group[_int_array(batch.site_rows, np.int64)]
    found = [(path, np.flatnonzero(per_row == group)) for path, group in ids.items()]
    return sorted((item for item in found if len(item[1])), key=lambda item: item[1][0])


def batch_columns(
    batch: RecordColumns, entity_prefix: str, kinds: ExtraKinds,
    paths: dict[str, str] | None = None,
) -> list[EntityColumns]:
    """The columns of a decoded batch: one :class:`EntityColumns` per entity path, in
    the order the paths first appear, rows in order. ``paths`` caches entity paths.

    Each field is made into one Arrow array for the whole batch (a site's fields once
    per site), then taken per entity path: no object per record."""
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
    arrays = [
        (rr.TextLog.descriptor_text(), _array(batch.messages, pa.string())),
        *_site_arrays(batch), *_context_arrays(batch), *_sparse_arrays(batch),
        *_extra_arrays(batch.extras, kinds),
    ]
    times = np.maximum(_int_array(batch.times, np.int64), 0)
    seqs = _int_array(batch.seqs, np.int64)
    found = []
    for path, rows in _groups(batch, site_paths):
        taken = arrays if rows is None else [(d, array.take(rows)) for d, array in arrays]
        columns = [c for c in (_list_of(d, array) for d, array in taken) if c is not None]
        indexes = [
            _timestamps(times if rows is None else times[rows]),
            rr.TimeColumn(SEQ_TIMELINE, sequence=seqs if rows is None else seqs[rows]),
        ]
        found.append(EntityColumns(path, indexes, columns, len(seqs) if rows is None else len(rows)))
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
    return EntityColumns(path, [_timestamps([time_ns])], [c for c in columns if c], 1)


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
        sum(column.array.nbytes for column in columns.columns)
    dropped_columns(1, "warm-up", 0, "")


_warm_up()
