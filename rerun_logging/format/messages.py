"""The messages of a recording: their types, and their bodies to and from msgpack.

Each message kind is a small frozen dataclass (:class:`RecordingInfo`,
:class:`Record`, :class:`Dropped`, :class:`End`, :class:`Ack`, :class:`Refused`,
plus the decoder's own :class:`Damage`). The ``*_message`` functions pack a message
as ``[kind, body]``; :func:`records_message` packs a batch of records as the columns
of :data:`~rerun_logging.format.schema.RECORD_COLUMNS` (built by :func:`columns_for`
from :class:`Record` objects, or by ``rerun_logging.capture`` from ``LogRecord``
data), and :func:`decode_info` and :func:`decode_records` turn bodies back into
messages, checking every field against the schema. Framing is
:mod:`~rerun_logging.format.frames`'s job; no bytes are read or written here.
"""

from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence, Tuple, Union

import msgpack

from .errors import RecordingError
from .schema import (
    COLUMN_ITEMS,
    COLUMN_ROWS,
    CONTEXT_FIELDS,
    INFO_FIELDS,
    KIND_ACK,
    KIND_DROPPED,
    KIND_END,
    KIND_INFO,
    KIND_RECORDS,
    KIND_REFUSED,
    MAX_FIELD_CHARS,
    MAX_RECORDS_PER_FRAME,
    SITE_FIELDS,
    SPAN_ID_SIZE,
    TRACE_ID_SIZE,
)
from .values import (
    Packed,
    deferrable_template,
    new_packer,
    pack_args,
    pack_extras,
    packb,
    render,
    render_message,
)



@dataclass(frozen=True)
class RecordingInfo:
    """What starts every stream: which application run this is."""

    application_id: str
    recording_id: str
    start_time_ns: int
    host: str
    pid: int
    python_version: str
    package_version: str
    entity_prefix: str = ""


@dataclass(frozen=True)
class ExceptionInfo:
    """An exception as text: its type, its value and the formatted traceback."""

    type: str
    value: str
    traceback: str


@dataclass(frozen=True)
class Record:
    """One log record as stored. Field names follow the format, not ``LogRecord``."""

    seq: int
    time_ns: int
    level: int
    level_name: str
    entity_path: str
    logger: str
    message: str
    template: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    exception: ExceptionInfo | None = None
    stack_info: str | None = None
    thread: int | None = None
    thread_name: str | None = None
    process: int | None = None
    process_name: str | None = None
    task_name: str | None = None
    path: str = ""
    line: int = 0
    function: str | None = None
    args: tuple[Any, ...] | dict[Any, Any] | None = None
    """The arguments the message was rendered with (``logger.info("%s", x)``): a
    tuple, a mapping for ``%(name)s`` templates, None without any."""
    trace_id: str | None = None
    """The OpenTelemetry trace the record was logged in (format 1.3): 32 lowercase hex
    digits, as OTLP/JSON and the W3C ``traceparent`` write it; None outside a span."""
    span_id: str | None = None
    """The span it was logged in: 16 lowercase hex digits; None outside a span (or
    when only the trace is known)."""
    trace_flags: int | None = None
    """The span's W3C trace flags (a byte; bit 0: sampled); None outside a span."""


@dataclass(frozen=True)
class Dropped:
    """``count`` records were lost at this point of the stream, for ``reason``."""

    count: int
    reason: str


@dataclass(frozen=True)
class End:
    """The writer closed the stream cleanly."""


@dataclass(frozen=True)
class Ack:
    """Viewer to client: the first ``frames`` frames after the stream header are stored."""

    frames: int


@dataclass(frozen=True)
class Refused:
    """Viewer to client: the stream is refused, for ``reason``; the viewer closes it."""

    reason: str


@dataclass(frozen=True)
class Damage:
    """Not on the wire: what a resyncing decoder skipped to reach the next stream header.

    ``error`` says what was wrong, from which byte (``error.offset``): a torn frame
    (:class:`TruncatedStream`), a checksum, a size, a codec. ``skipped`` bytes were
    passed over; the header the decoder read on from is at :attr:`resumed_at`.
    """

    error: RecordingError
    skipped: int

    @property
    def offset(self) -> int:
        """The first damaged byte."""
        return self.error.offset

    @property
    def resumed_at(self) -> int:
        """Where the stream header after the damage starts."""
        return self.error.offset + self.skipped

    def __str__(self) -> str:
        return (
            f"{self.error.source}: damaged at byte {self.offset}: {self.error.reason}; "
            f"skipped {self.skipped} bytes to the stream header at byte {self.resumed_at}"
        )


Message = Union[RecordingInfo, Record, "RecordColumns", Dropped, End, Ack, Refused, Damage]
"""What a decoder yields: the messages on the wire, and its own :class:`Damage` reports."""

StreamId = Tuple[str, int, int]
"""Which writer a stream comes from: ``(recording_id, pid, start_time_ns)`` of its INFO."""


def stream_id(info: RecordingInfo) -> StreamId:
    """The identity of the stream ``info`` starts.

    Two runs of an app differ in recording id (new per run); two handlers of one
    process share recording id and pid but not the start time of their INFO.
    """
    return (info.recording_id, info.pid, info.start_time_ns)


# --- encoding -----------------------------------------------------------------------


def _message(kind: int, body: dict[str, Any]) -> bytes:
    return packb([kind, body])


def info_message(info: RecordingInfo) -> bytes:
    """A packed ``INFO`` message."""
    return _message(KIND_INFO, {f.key: getattr(info, f.name) for f in INFO_FIELDS})


def dropped_message(count: int, reason: str, serial: int | None = None) -> bytes:
    """A packed ``DROPPED`` message; ``serial`` tells apart reports that are otherwise equal."""
    body: dict[str, Any] = {"count": count, "reason": reason}
    if serial is not None:
        body["serial"] = serial
    return _message(KIND_DROPPED, body)


def end_message() -> bytes:
    """A packed ``END`` message."""
    return _message(KIND_END, {})


def ack_message(frames: int) -> bytes:
    """A packed ``ACK`` message (viewer to client)."""
    return _message(KIND_ACK, {"frames": frames})


def refused_message(reason: str) -> bytes:
    """A packed ``REFUSED`` message (viewer to client)."""
    return _message(KIND_REFUSED, {"reason": reason})


def pack_map(items: Iterable[tuple[str, bytes]]) -> bytes:
    """A msgpack map from keys and already-packed values (to reuse packed columns)."""
    items = list(items)
    packer = new_packer()
    out = [packer.pack_map_header(len(items))]
    for key, packed_value in items:
        out.append(packer.pack(key))
        out.append(packed_value)
    return b"".join(out)


def records_message(columns: dict[str, Any], packed_extras: bytes) -> bytes:
    """A packed ``RECORDS`` message from its columns (see :func:`columns_for`)."""
    body = [
        (key, value if isinstance(value, Packed) else packb(value)) for key, value in columns.items()
    ]
    body.append(("extra", packed_extras))
    return b"\x92" + packb(KIND_RECORDS) + pack_map(body)


def delta_encode(values: Sequence[int]) -> list[int]:
    """``[v0, v1 - v0, v2 - v1, ...]``: small numbers that deflate well."""
    if not values:
        return []
    return [values[0], *map(operator.sub, values[1:], values)]


def delta_decode(deltas: Sequence[int]) -> list[int]:
    """Inverse of :func:`delta_encode`."""
    return list(itertools.accumulate(deltas))


_SITE_OF = operator.attrgetter(*SITE_FIELDS)
"""A record's ``sites`` row (as a tuple), in the schema's order."""
_CONTEXT_OF = operator.attrgetter(*CONTEXT_FIELDS)
"""A record's ``ctxs`` row (as a tuple), in the schema's order."""


def columns_for(records: Sequence[Record]) -> tuple[dict[str, Any], list[dict[str, Any] | None]]:
    """The columns of a RECORDS message for ``records`` (the general, slower path).

    Returns the columns except ``extra``, and the extras list to give to
    :func:`pack_extras`. The handler builds the same columns straight from captured
    ``LogRecord`` data (``rerun_logging.capture``); this path serves tests, tools
    and re-encoding.
    """
    sites: dict[tuple[Any, ...], int] = {}
    ctxs: dict[tuple[Any, ...], int] = {}
    site_col: list[int] = []
    ctx_col: list[int] = []
    excs: list[list[Any]] = []
    stacks: list[list[Any]] = []
    traces: list[list[Any]] = []
    for row, r in enumerate(records):
        site = _SITE_OF(r)
        site_col.append(sites.setdefault(site, len(sites)))
        ctx = _CONTEXT_OF(r)
        ctx_col.append(ctxs.setdefault(ctx, len(ctxs)))
        if r.exception is not None:
            e = r.exception
            excs.append([row, e.type, e.value, e.traceback])
        if r.stack_info is not None:
            stacks.append([row, r.stack_info])
        if r.trace_id is not None:
            traces.append(_trace_row_of(row, r))
    columns = {
        "seq": delta_encode([r.seq for r in records]),
        "time": delta_encode([r.time_ns for r in records]),
        "sites": [list(s) for s in sites],
        "site": site_col,
        "ctxs": [list(c) for c in ctxs],
        "ctx": ctx_col,
        "msg": [r.message for r in records],
        "exc": excs,
        "stack": stacks,
    }
    if any(r.args for r in records):
        columns["args"] = pack_args([r.args or None for r in records])
    if traces:
        columns["trace"] = traces
    return columns, [r.extras or None for r in records]


def trace_row(row: int, trace_id: int, span_id: int, flags: int) -> list[Any]:
    """A row of the ``trace`` table from a ``SpanContext``'s numbers (ids as ints).

    Raises ValueError when an id is zero (OpenTelemetry's invalid id) or does not
    fit its size, or the flags are not a byte; TypeError when one is not an int.
    """
    if not (0 < trace_id < 1 << 8 * TRACE_ID_SIZE and 0 < span_id < 1 << 8 * SPAN_ID_SIZE
            and 0 <= flags <= 0xFF):
        raise ValueError(f"not a trace context: {trace_id!r:.40} {span_id!r:.20} {flags!r:.8}")
    return [row, int.to_bytes(trace_id, TRACE_ID_SIZE, "big"),
            int.to_bytes(span_id, SPAN_ID_SIZE, "big"), flags]


def _trace_row_of(row: int, record: Record) -> list[Any]:
    """The ``trace`` row of a :class:`Record` whose ``trace_id`` is set (hex text)."""
    try:
        trace_id = bytes.fromhex(record.trace_id or "")
        span_id = bytes.fromhex(record.span_id) if record.span_id is not None else b""
    except (TypeError, ValueError):
        trace_id = span_id = b"?"
    if len(trace_id) != TRACE_ID_SIZE or len(span_id) not in (0, SPAN_ID_SIZE):
        raise ValueError(f"record {record.seq}: not a trace id and span id: "
                         f"{record.trace_id!r:.40} {record.span_id!r:.20}")
    flags = record.trace_flags or 0
    if not 0 <= flags <= 0xFF:
        raise ValueError(f"record {record.seq}: trace flags {flags!r:.8} are not a byte")
    return [row, trace_id, span_id, flags]


def encode_records(records: Sequence[Record]) -> bytes:
    """A packed RECORDS message for ``records``."""
    columns, extras = columns_for(records)
    return records_message(columns, pack_extras(extras))


# --- decoding -----------------------------------------------------------------------


def _unpack_all(payload: bytes, **options: Any) -> list[Any]:
    """Every msgpack object in ``payload``; ValueError if it ends inside one."""
    unpacker = msgpack.Unpacker(
        raw=False,
        strict_map_key=False,
        unicode_errors="surrogatepass",
        max_buffer_size=max(len(payload), 1),
        **options,
    )
    unpacker.feed(payload)
    items = []
    end = 0
    for item in unpacker:
        items.append(item)
        end = unpacker.tell()
    if end != len(payload):
        raise ValueError(f"payload ends inside a message at byte {end}")
    return items


def _hashable_keys(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """A map whose keys were tuples in Python (packed as arrays): keys become tuples again."""
    return {_freeze(key): value for key, value in pairs}


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple((_freeze(k), _freeze(v)) for k, v in value.items())
    return value


def _typed_rows(rows: Any, types: tuple[Any, ...], what: str) -> list[list[Any]]:
    """``rows`` checked: a list of lists whose first fields have ``types``."""
    if not isinstance(rows, list):
        raise ValueError(f"{what} must be a list")
    for row in rows:
        if not isinstance(row, list) or len(row) < len(types) or not all(
            map(isinstance, row, types)
        ):
            raise ValueError(f"bad {what} entry {row!r:.80}")
    return rows


def _column(body: dict[str, Any], key: str, allowed: frozenset[type], count: int | None = None) -> list[Any]:
    """Column ``key`` checked: a list whose items' types are in ``allowed``."""
    column = body[key]
    if not isinstance(column, list) or not set(map(type, column)) <= allowed:
        raise ValueError(f"column {key!r} must be a list of {' or '.join(sorted(t.__name__ for t in allowed))}")
    if count is not None and len(column) != count:
        raise ValueError("RECORDS columns differ in length")
    return column


def decode_info(body: dict[str, Any]) -> RecordingInfo:
    """The :class:`RecordingInfo` of an INFO body; ValueError naming a field missing or mistyped.

    Every field has the type its annotation says (ints are never bools), so readers
    can print, hash and JSON-encode it whatever a peer sent. ``prefix`` is optional.
    """
    fields: dict[str, Any] = {}
    for key, name, kind, optional in INFO_FIELDS:
        if key in body:
            fields[name] = _info_field(body[key], key, name, kind)
        elif not optional:
            raise ValueError(f"INFO field {key!r} ({name}) is missing")
    return RecordingInfo(**fields)


def _info_field(value: Any, key: str, name: str, kind: type) -> Any:
    if type(value) is not kind:
        raise ValueError(f"INFO field {key!r} ({name}) is a {type(value).__name__}, not a {kind.__name__}")
    return value


class ExtraColumns(Sequence[Union[dict, None]]):
    """A batch's extras as columns, ``(key, values, kind)`` per key as
    ``_speedups.extra_columns`` makes them (a value per row, None where the row has
    none), read as rows (a dict, or None) where a reader asks for rows.

    The flusher's batches for the sinks in its own process carry their extras so
    (``capture.record_batch``): a batch's extras made straight from the captured
    records, without a dict per record, which the rerun mapping takes as they are."""

    __slots__ = ("columns", "_count")

    def __init__(self, columns: list[tuple[Any, list[Any], str | None]], count: int) -> None:
        self.columns = columns
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, row: Any) -> Any:
        if isinstance(row, slice):
            return [self[at] for at in range(*row.indices(self._count))]
        found = {key: values[row] for key, values, _ in self.columns if values[row] is not None}
        return found or None


@dataclass(frozen=True)
class RecordColumns:
    """The records of one RECORDS message as columns: what :func:`decode_columns`
    returns, checked as :func:`decode_records` checks, with no object per record.

    For the readers that map a batch elsewhere at once (the rerun sink, the page's
    feed): row ``i`` is logged at ``sites[site_rows[i]]`` (a row in
    :data:`~rerun_logging.format.schema.SITE_FIELDS` order) by
    ``ctxs[ctx_rows[i]]`` (:data:`~rerun_logging.format.schema.CONTEXT_FIELDS`),
    with ``messages[i]`` rendered; the sparse tables are keyed by row.
    """

    seqs: list[int]
    times: list[int]
    sites: list[list[Any]]
    site_rows: list[int]
    ctxs: list[list[Any]]
    ctx_rows: list[int]
    messages: list[str]
    extras: Sequence[dict[str, Any] | None]
    """The extras of each row (None or an empty map: none): a list, or for a batch read
    in the writer's process its :class:`ExtraColumns`."""
    args: list[Any]
    """The ``args`` column's rows (None: none), as stored (a list or a map)."""
    exceptions: dict[int, ExceptionInfo]
    stacks: dict[int, str]
    traces: dict[int, tuple[str, str | None, int]]
    """Row -> (trace id, span id or None, flags), as :class:`Record` holds them (hex)."""

    def __len__(self) -> int:
        return len(self.seqs)

    @classmethod
    def of(cls, records: Sequence[Record]) -> RecordColumns:
        """The columns of ``records``: records that share a site or a context share its
        row, as a writer's do, so readers make each once (for tools, tests and the page's
        snapshot, which hold records; not for a hot path)."""
        sites, site_rows = _shared_rows(map(_SITE_OF, records))
        ctxs, ctx_rows = _shared_rows(map(_CONTEXT_OF, records))
        return cls(
            seqs=[r.seq for r in records], times=[r.time_ns for r in records],
            sites=sites, site_rows=site_rows, ctxs=ctxs, ctx_rows=ctx_rows,
            messages=[r.message for r in records], extras=[r.extras or None for r in records],
            args=[r.args for r in records],
            exceptions={i: r.exception for i, r in enumerate(records) if r.exception is not None},
            stacks={i: r.stack_info for i, r in enumerate(records) if r.stack_info is not None},
            traces={
                i: (r.trace_id, r.span_id, r.trace_flags or 0)
                for i, r in enumerate(records) if r.trace_id is not None
            },
        )

    def records(self) -> list[Record]:
        """One :class:`Record` per row (the general path: printing, the page, tools)."""
        site_fields = [dict(zip(SITE_FIELDS, site)) for site in self.sites]
        ctx_fields = [dict(zip(CONTEXT_FIELDS, ctx)) for ctx in self.ctxs]
        excs, stacks, none = self.exceptions, self.stacks, None
        records = [
            _record({
                **site_fields[si], **ctx_fields[ci], "seq": seq, "time_ns": t, "message": msg,
                "extras": extra or {}, "exception": excs.get(row, none),
                "stack_info": stacks.get(row, none), "args": _args(arg) if arg else none,
                "trace_id": none, "span_id": none, "trace_flags": none,
            })
            for row, (seq, t, si, ci, msg, extra, arg) in enumerate(zip(
                self.seqs, self.times, self.site_rows, self.ctx_rows, self.messages,
                self.extras, self.args,
            ))
        ]
        for row, (trace_id, span_id, flags) in self.traces.items():
            fields = records[row].__dict__
            fields["trace_id"], fields["span_id"], fields["trace_flags"] = trace_id, span_id, flags
        return records


def _shared_rows(rows: Iterable[tuple[Any, ...]]) -> tuple[list[list[Any]], list[int]]:
    """The distinct ``rows`` (as lists) in the order they first come, and each row's
    index there; a row per row when a field cannot be hashed (a hand-made record)."""
    rows = list(rows)
    index: dict[tuple[Any, ...], int] = {}
    try:
        at = [index.setdefault(row, len(index)) for row in rows]
    except TypeError:
        return [list(row) for row in rows], list(range(len(rows)))
    return [list(row) for row in index], at


def decode_records(body: dict[str, Any]) -> list[Record]:
    """Records from the body of a RECORDS message; ValueError if any field has a wrong type.

    Every field of every :class:`Record` has the type its annotation says, so the
    readers (printing, the web feed) can trust them whatever a peer sent.
    """
    return decode_columns(body).records()


def decode_columns(body: dict[str, Any]) -> RecordColumns:
    """The columns of the body of a RECORDS message, every field checked (ValueError):
    the same checks as :func:`decode_records`, which builds on this."""
    items, rows = COLUMN_ITEMS, COLUMN_ROWS
    raw_seqs = _column(body, "seq", items["seq"])
    count = len(raw_seqs)
    if count > MAX_RECORDS_PER_FRAME:
        raise ValueError(f"{count} records in one frame, the limit is {MAX_RECORDS_PER_FRAME}")
    seqs = delta_decode(raw_seqs)
    times = delta_decode(_column(body, "time", items["time"], count))
    sites = _typed_rows(body["sites"], rows["sites"], "site")
    ctxs = _typed_rows(body["ctxs"], rows["ctxs"], "context")
    messages = _column(body, "msg", items["msg"], count)
    extras = _column(body, "extra", items["extra"], count) if body.get("extra") else [None] * count
    args = _column(body, "args", items["args"], count) if body.get("args") else [None] * count
    excs = {
        row: ExceptionInfo(t, v, tb)
        for row, t, v, tb, *_ in _typed_rows(body.get("exc", []), rows["exc"], "exception")
    }
    stacks = {row: text for row, text, *_ in _typed_rows(body.get("stack", []), rows["stack"], "stack")}
    site_rows = _indexes(_column(body, "site", items["site"], count), len(sites), "site")
    ctx_rows = _indexes(_column(body, "ctx", items["ctx"], count), len(ctxs), "ctx")
    traces = _traces(_typed_rows(body["trace"], rows["trace"], "trace"), count) if body.get("trace") else {}
    return _assembled(
        seqs, times, sites, site_rows, ctxs, ctx_rows, messages, extras, args, excs, stacks, traces,
    )


def columns_as_read(
    columns: dict[str, Any], args: list[Any], extras: list[dict[str, Any] | None],
    times: list[int] | None = None,
) -> RecordColumns:
    """What :func:`decode_columns` reads from ``records_message(columns, packed)``,
    without packing or unpacking: for a sink in the writer's own process.

    Only for columns that pack exactly: ``args`` (the unpacked ``args`` column, a
    record's args as captured) and ``extras`` packed with no row capped (see
    ``pack_args_exactly`` and ``pack_extras_exactly``). The rows are the writer's
    own, so only the site and context tables are checked (a few rows: a record
    made by hand may hold a site field of an odd type, which a reader refuses,
    ValueError); args are tuples where a reader has lists, which
    every reader of :class:`RecordColumns` takes alike (``records()`` gives both
    as tuples). The round trip is tested to give the same records. ``times``, when
    the writer has them, are the ``time`` column decoded.
    """
    count = len(columns["seq"])
    sites = _typed_rows(columns["sites"], COLUMN_ROWS["sites"], "site")  # a table per site:
    ctxs = _typed_rows(columns["ctxs"], COLUMN_ROWS["ctxs"], "context")  # checked as readers do
    excs = {row: ExceptionInfo(t, v, tb) for row, t, v, tb in columns["exc"]}
    stacks = {row: text for row, text in columns["stack"]}
    traces = _traces(columns["trace"], count) if columns.get("trace") else {}
    return _assembled(
        delta_decode(columns["seq"]), delta_decode(columns["time"]) if times is None else times, sites,
        columns["site"], ctxs, columns["ctx"], columns["msg"], extras,
        args if any(args) else [None] * count, excs, stacks, traces,
    )


def _assembled(
    seqs: list[int], times: list[int], sites: list[list[Any]], site_rows: list[int],
    ctxs: list[list[Any]], ctx_rows: list[int], messages: list[str | None],
    extras: list[dict[str, Any] | None], args: list[Any], excs: dict[int, ExceptionInfo],
    stacks: dict[int, str], traces: dict[int, tuple[str, str | None, int]],
) -> RecordColumns:
    """The :class:`RecordColumns` of checked columns, the deferred messages rendered."""
    if None in messages:
        messages = _rendered(messages, site_rows, [site[_TEMPLATE_AT] for site in sites], args)
    return RecordColumns(
        seqs, times, sites, site_rows, ctxs, ctx_rows, messages, extras, args, excs, stacks, traces,
    )


def _indexes(column: list[int], size: int, key: str) -> list[int]:
    """``column``, checked to index a table of ``size`` rows."""
    if column and (min(column) < 0 or max(column) >= size):
        raise ValueError(f"column {key!r} indexes past its table of {size}")
    return column


def _traces(rows: list[list[Any]], count: int) -> dict[int, tuple[str, str | None, int]]:
    """The trace context of the rows the ``trace`` entries name (1.3); ValueError for an
    id of the wrong size or flags that are not a byte. Like ``exc`` and ``stack`` rows,
    an entry naming no record is ignored."""
    found: dict[int, tuple[str, str | None, int]] = {}
    for row, trace_id, span_id, flags, *_ in rows:
        if (len(trace_id) != TRACE_ID_SIZE or len(span_id) not in (0, SPAN_ID_SIZE)
                or not 0 <= flags <= 0xFF):
            raise ValueError(f"bad trace entry {[row, trace_id, span_id, flags]!r:.80}")
        if 0 <= row < count:
            found[row] = (trace_id.hex(), span_id.hex() if span_id else None, int(flags))  # never a bool
    return found


def _rendered(
    messages: list[str | None], site_rows: list[int], templates: list[Any], args: list[Any]
) -> list[str]:
    """``messages`` with each nil row rendered from its site's template and its args.

    Whether a template may be rendered is decided once per site, not per record.
    A batch whose every template may be rendered is first rendered in one pass
    (``template % args``, no call per record); any failure there, or a message over
    the cap, and each row goes the careful way (:func:`render`: capped, never raises)."""
    renderable = [deferrable_template(t) for t in templates]
    if all(renderable):
        fast = _rendered_at_once(messages, site_rows, templates, args)
        if fast is not None:
            return fast
    return [
        message if message is not None
        else render(templates[site], _args(arg)) if renderable[site]
        else render_message(templates[site], _args(arg))
        for message, site, arg in zip(messages, site_rows, args)
    ]


def _rendered_at_once(
    messages: list[str | None], site_rows: list[int], templates: list[Any], args: list[Any]
) -> list[str] | None:
    """The rows rendered as :func:`render` renders them, or None when one would not be
    the same (a template that raises or is not text, a message over the cap)."""
    try:
        rendered = [
            message if message is not None
            else template % (tuple(arg) if arg.__class__ is list else arg) if arg
            else template
            for message, template, arg in zip(messages, map(templates.__getitem__, site_rows), args)
        ]
    except Exception:
        return None
    if set(map(type, rendered)) != {str} or max(map(len, rendered)) > MAX_FIELD_CHARS:
        return None
    return rendered


_TEMPLATE_AT = SITE_FIELDS.index("template")
_new = object.__new__
_set = object.__setattr__


def _record(fields: dict[str, Any]) -> Record:
    """A :class:`Record` from all its fields, without the frozen dataclass's ``__init__``.

    That ``__init__`` sets each of the 22 fields through ``object.__setattr__``, about
    5 µs a record, the largest cost of decoding; this sets the instance dict at once
    (about 0.7 µs). ``fields`` must hold every field: the round-trip tests check it.
    """
    record = _new(Record)
    _set(record, "__dict__", fields)
    return record


def _args(value: Any) -> tuple[Any, ...] | dict[Any, Any] | None:
    """A row of the ``args`` column as :attr:`Record.args` holds it (empty: None)."""
    if not value:
        return None
    return tuple(value) if isinstance(value, list) else value
