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
from typing import Any, Iterable, Sequence

from .. import format
from ..format import ExceptionInfo, Record
from . import RerunUnavailable

try:
    import numpy as np
    import pyarrow as pa
    import rerun as rr
except Exception as error:  # ImportError, or an SDK that does not load here
    raise RerunUnavailable(error) from error

__all__ = [
    "ARCHETYPE", "DROPPED_ENTITY", "EntityColumns", "ExtraKinds", "ROOT", "SEQ_TIMELINE",
    "TIME_TIMELINE", "columns_for", "dropped_columns", "entity_path", "send", "text_log_level",
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


def _values(values: Sequence[Any], kind: Any) -> Any:
    """A flat Arrow array of ``values`` (no None among them) of type ``kind``."""
    if kind == pa.string():
        try:
            return pa.array(values, pa.string())
        except (UnicodeEncodeError, pa.ArrowInvalid, pa.ArrowTypeError):
            return pa.array([_escaped(str(value)) for value in values], pa.string())
    return pa.array(values, kind)


def _list_column(descriptor: Any, values: Sequence[Any], kind: Any) -> _Column | None:
    """The column of ``values`` (None where a row has none); None when no row has one."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    rows = len(values)
    if len(present) == rows:
        offsets = pa.array(range(rows + 1), pa.int32())
        return _Column(descriptor, pa.ListArray.from_arrays(offsets, _values(present, kind)))
    offsets_list = [0] * (rows + 1)
    mask = [False] * rows
    end = 0
    for row, value in enumerate(values):
        if value is None:
            mask[row] = True
        else:
            end += 1
        offsets_list[row + 1] = end
    array = pa.ListArray.from_arrays(
        pa.array(offsets_list, pa.int32()), _values(present, kind), mask=pa.array(mask, pa.bool_())
    )
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
    types.discard(type(None))
    if types != {_PLAIN_TYPES[kind]}:
        return False
    if kind == "int":
        present = [value for value in values if value is not None]
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


def _extra_columns(records: Sequence[Record], kinds: ExtraKinds) -> list[_Column]:
    keys: dict[str, None] = {}
    for record in records:
        if record.extras:
            keys.update(dict.fromkeys(record.extras))
    columns = []
    for key in keys:
        name = key if isinstance(key, str) else format.safe_str(key)
        raw = [record.extras.get(key) if record.extras else None for record in records]
        kind = None
        for value in raw:
            if value is not None:
                kind = kinds.kind_of(name, value)
                break
        if kind is None:
            continue
        if _all_of_kind(raw, kind):
            values, spill = raw, [None] * len(raw)
        else:
            values = [None if value is None else _fits(kind, value) for value in raw]
            spill = [
                _text(value) if value is not None and fitted is None else None
                for value, fitted in zip(raw, values)
            ]
        arrow_kind = getattr(pa, _ARROW_KINDS[kind])()
        for column in (
            _list_column(rr.ComponentDescriptor(name), values, arrow_kind),
            _list_column(rr.ComponentDescriptor(f"{name}.text"), spill, pa.string()),
        ):
            if column is not None:
                columns.append(column)
    return columns


def _own_columns(records: Sequence[Record]) -> list[_Column]:
    """The record's own fields beside its text (see the table in the module docstring)."""
    string, int64 = pa.string(), pa.int64()
    fields: list[tuple[str, Any, list[Any]]] = [
        ("levelno", int64, _int64s([r.level for r in records])),
        ("logger", string, [r.logger for r in records]),
        ("template", string, [r.template for r in records]),
        ("pathname", string, [r.path or None for r in records]),
        ("lineno", int64, _int64s([r.line if r.path else None for r in records])),
        ("funcName", string, [r.function for r in records]),
        ("thread", pa.uint64(), _uint64s([r.thread for r in records])),
        ("threadName", string, [r.thread_name for r in records]),
        ("process", int64, _int64s([r.process for r in records])),
        ("processName", string, [r.process_name for r in records]),
        ("taskName", string, [r.task_name for r in records]),
    ]
    if any(r.exception is not None for r in records):
        fields += [
            ("exc_type", string, [r.exception.type if r.exception else None for r in records]),
            ("exc_value", string, [r.exception.value if r.exception else None for r in records]),
            ("exc_text", string, [r.exception.traceback if r.exception else None for r in records]),
        ]
    if any(r.stack_info is not None for r in records):
        fields.append(("stack_info", string, [r.stack_info for r in records]))
    if any(getattr(r, "trace_id", None) is not None for r in records):  # format 1.3 and later
        fields += [
            ("trace_id", string, [getattr(r, "trace_id", None) for r in records]),
            ("span_id", string, [getattr(r, "span_id", None) for r in records]),
            ("trace_flags", int64, _int64s([getattr(r, "trace_flags", None) for r in records])),
        ]
    columns = []
    for name, kind, values in fields:
        column = _list_column(_field(name), values, kind)
        if column is not None:
            columns.append(column)
    return columns


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


def _timestamps(times_ns: Sequence[int]) -> Any:
    return rr.TimeColumn(TIME_TIMELINE, timestamp=np.array(times_ns, dtype="datetime64[ns]"))


def _entity_columns(path: str, records: Sequence[Record], kinds: ExtraKinds) -> EntityColumns:
    string = pa.string()
    text = _list_column(rr.TextLog.descriptor_text(), [r.message for r in records], string)
    level = _list_column(
        rr.TextLog.descriptor_level(),
        [text_log_level(r.level, r.level_name) for r in records],
        string,
    )
    indexes = [
        _timestamps([max(r.time_ns, 0) for r in records]),
        rr.TimeColumn(SEQ_TIMELINE, sequence=np.array([r.seq for r in records], dtype=np.int64)),
    ]
    columns = [c for c in (text, level) if c is not None]
    columns += _own_columns(records)
    columns += _extra_columns(records, kinds)
    return EntityColumns(path, indexes, columns, len(records))


def columns_for(
    records: Iterable[Record], entity_prefix: str, kinds: ExtraKinds,
    paths: dict[str, str] | None = None,
) -> list[EntityColumns]:
    """The columns of ``records``: one :class:`EntityColumns` per entity path, in the
    order the paths first appear, rows in order. ``paths`` caches entity paths."""
    paths = {} if paths is None else paths
    groups: dict[str, list[Record]] = {}
    for record in records:
        path = paths.get(record.entity_path)
        if path is None:
            path = paths[record.entity_path] = entity_path(record.entity_path, entity_prefix)
        groups.setdefault(path, []).append(record)
    return [_entity_columns(path, group, kinds) for path, group in groups.items()]


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
