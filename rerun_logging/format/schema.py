"""What the bytes of a recording mean: the one definition writers and readers share.

Versions, magic, codecs, message kinds, limits, and the fields of the tables a
RECORDS message carries. Nothing here packs or reads bytes; the other modules of
:mod:`rerun_logging.format` and the handler's capture step build on these tables,
so a field is named, ordered and typed once.

Stream layout::

    header   MAGIC (8 bytes) | major (u8) | minor (u8)
    frame*   size (u32 LE) | codec (u8) | crc32 (u32 LE) | payload (size bytes)

The CRC covers the codec byte and the payload. ``codec`` 0 is plain msgpack, 1 is
zlib-deflated msgpack. A payload is a sequence of msgpack messages, each an array
``[kind, body]`` where ``body`` is a map; readers skip kinds and keys they do not
know, which is how minor versions add things. A stream starts with a header and a
frame holding one ``INFO`` message (its keys: :data:`INFO_FIELDS`), and a clean one
ends with an ``END`` message.

Records travel in columns (one ``RECORDS`` message per batch, its keys in
:data:`RECORD_COLUMNS` order): repeated values such as the logger, level and source
line are interned per frame in a ``sites`` table (each row :data:`SITE`) and
thread/process details in a ``ctxs`` table (each row :data:`CONTEXT`), times and
sequence numbers are delta-coded, and the frame is deflated. That is what keeps a
typical record under 20 bytes.

Versions: 1.1 added the ``args`` column (the arguments of a ``%``-style message);
a 1.0 reader skips it, a 1.1 reader reads 1.0 streams without it. 1.2 lets a row of
the ``msg`` column be nil: the message is then its site's template with the row's
``args`` applied (``template % args``), rendered by the reader
(:func:`~rerun_logging.format.render_message`). Writers leave a message out only
where that gives exactly the text the application would have seen (see
:func:`~rerun_logging.format.deferrable_template`), so readers render and writers
do not: a 1.1 reader refuses those frames. 1.3 added the ``trace`` table: the
OpenTelemetry trace context a record was logged in (trace id, span id, trace flags),
one row per record that has one (:data:`TRACE_ROW`), left out when none has; a 1.2
reader skips it and reads the records without their trace context.
"""

from __future__ import annotations

from typing import Any, NamedTuple

MAGIC = b"\x89RLG\r\n\x1a\n"
"""Our magic. PNG-style: a high byte and CR LF catch text-mode mangling."""
RERUN_SDK_MAGIC = b"RRF"
FORMAT_MAJOR = 1
FORMAT_MINOR = 3
HEADER = MAGIC + bytes((FORMAT_MAJOR, FORMAT_MINOR))
HEADER_SIZE = len(HEADER)

VIEWER_MAGIC = b"\x89RLV\r\n\x1a\n"
"""What a viewer sends first on every TCP connection, so a client knows it is one."""
VIEWER_HELLO = VIEWER_MAGIC + bytes((FORMAT_MAJOR, FORMAT_MINOR))

CODEC_MSGPACK = 0
CODEC_ZLIB = 1

KIND_INFO = 1
KIND_RECORDS = 2
KIND_DROPPED = 3
KIND_END = 4
KIND_ACK = 5
KIND_REFUSED = 6

# --- limits -------------------------------------------------------------------------

MAX_FRAME_SIZE = 16 * 1024 * 1024
"""Largest payload a frame may declare, as stored (compressed)."""
MAX_PAYLOAD_SIZE = 64 * 1024 * 1024
"""Largest payload once inflated; guards against deflate bombs."""
TARGET_PAYLOAD_SIZE = 4 * 1024 * 1024
"""Writers split batches whose packed payload is larger than this."""
MAX_RECORDS_PER_FRAME = 65536
"""Most records one frame may hold; writers batch fewer (the handler at most 65536)."""

MAX_FIELD_CHARS = 64 * 1024
"""Cap for one text field (message, template, traceback, stack, an extra's text)."""
MAX_EXTRAS_BYTES = 256 * 1024
"""Cap for the packed extras of one record."""
TRUNCATION_MARK = "…[truncated {} chars]"

MAX_DEFERRED_CONVERSIONS = 64
"""Most ``%`` conversions a template may hold for its records to be rendered by readers."""
MAX_DEFERRED_WIDTH = 99
"""Widest field width or precision a template may ask for, for the same reason."""

# --- the tables of a RECORDS message ------------------------------------------------

_NONE = type(None)


class Field(NamedTuple):
    """One field of a ``sites`` or ``ctxs`` row.

    ``name`` is the :class:`~rerun_logging.format.Record` attribute it fills,
    ``types`` what ``isinstance`` must accept of it on the wire, and ``log_record``
    the ``logging.LogRecord`` attribute a writer captures it from (None for a field
    the writer derives: the entity path, from the logger name).
    """

    name: str
    types: type | tuple[type, ...]
    log_record: str | None


SITE: tuple[Field, ...] = (
    Field("logger", str, "name"),
    Field("entity_path", str, None),
    Field("level", int, "levelno"),
    Field("level_name", str, "levelname"),
    Field("template", (str, _NONE), "msg"),
    Field("path", str, "pathname"),
    Field("line", int, "lineno"),
    Field("function", (str, _NONE), "funcName"),
)
"""A row of the ``sites`` table: where a record was logged, in this order."""

CONTEXT: tuple[Field, ...] = (
    Field("thread", (int, _NONE), "thread"),
    Field("thread_name", (str, _NONE), "threadName"),
    Field("process", (int, _NONE), "process"),
    Field("process_name", (str, _NONE), "processName"),
    Field("task_name", (str, _NONE), "taskName"),
)
"""A row of the ``ctxs`` table: which thread, process and task logged, in this order.
``taskName`` exists on Python 3.12 and later; writers before that send None."""

SITE_FIELDS: tuple[str, ...] = tuple(f.name for f in SITE)
SITE_TYPES: tuple[Any, ...] = tuple(f.types for f in SITE)
CONTEXT_FIELDS: tuple[str, ...] = tuple(f.name for f in CONTEXT)
CONTEXT_TYPES: tuple[Any, ...] = tuple(f.types for f in CONTEXT)
EXCEPTION_ROW: tuple[type, ...] = (int, str, str, str)
"""A row of the ``exc`` table: record row, exception type, value, traceback."""
STACK_ROW: tuple[type, ...] = (int, str)
"""A row of the ``stack`` table: record row, stack text."""
TRACE_ROW: tuple[type, ...] = (int, bytes, bytes, int)
"""A row of the ``trace`` table (1.3): record row, trace id (:data:`TRACE_ID_SIZE`
bytes), span id (:data:`SPAN_ID_SIZE` bytes), trace flags (a byte: W3C ``traceflags``),
all as OpenTelemetry's ``SpanContext`` holds them (ids big-endian)."""
TRACE_ID_SIZE = 16
"""Bytes of a trace id (W3C Trace Context, OpenTelemetry): 32 hex digits as text."""
SPAN_ID_SIZE = 8
"""Bytes of a span id: 16 hex digits as text."""


class Column(NamedTuple):
    """One key of a RECORDS body.

    A flat column has one item per record, each of a type in ``items``; a table
    (``sites``, ``ctxs``, ``exc``, ``stack``, ``trace``) is a list of rows whose
    leading fields have the types in ``row``. ``optional`` columns may be missing (or empty).
    """

    key: str
    items: frozenset[type] = frozenset()
    row: tuple[Any, ...] = ()
    optional: bool = False


RECORD_COLUMNS: tuple[Column, ...] = (
    Column("seq", frozenset({int})),
    Column("time", frozenset({int})),
    Column("sites", row=SITE_TYPES),
    Column("site", frozenset({int})),
    Column("ctxs", row=CONTEXT_TYPES),
    Column("ctx", frozenset({int})),
    Column("msg", frozenset({str, _NONE})),
    Column("exc", row=EXCEPTION_ROW, optional=True),
    Column("stack", row=STACK_ROW, optional=True),
    Column("args", frozenset({list, dict, _NONE}), optional=True),
    Column("trace", row=TRACE_ROW, optional=True),
    Column("extra", frozenset({dict, _NONE}), optional=True),
)
"""The keys of a RECORDS body in the order writers put them. ``seq`` and ``time``
are delta-coded; ``site`` and ``ctx`` index the ``sites`` and ``ctxs`` tables;
``exc``, ``stack`` and ``trace`` hold only the rows that have one; ``args`` (1.1)
and ``trace`` (1.3) are left out when no record has any; ``extra`` always comes last."""

COLUMN_ITEMS: dict[str, frozenset[type]] = {c.key: c.items for c in RECORD_COLUMNS if c.items}
"""The item types of each flat column, by key."""
COLUMN_ROWS: dict[str, tuple[Any, ...]] = {c.key: c.row for c in RECORD_COLUMNS if c.row}
"""The leading field types of each table's rows, by key."""


class InfoField(NamedTuple):
    """One key of an INFO body: the :class:`~rerun_logging.format.RecordingInfo`
    attribute it fills and the exact type it must have."""

    key: str
    name: str
    type: type
    optional: bool = False


INFO_FIELDS: tuple[InfoField, ...] = (
    InfoField("app", "application_id", str),
    InfoField("rec", "recording_id", str),
    InfoField("start", "start_time_ns", int),
    InfoField("host", "host", str),
    InfoField("pid", "pid", int),
    InfoField("python", "python_version", str),
    InfoField("version", "package_version", str),
    InfoField("prefix", "entity_prefix", str, optional=True),
)
"""The keys of an INFO body in the order writers put them."""
