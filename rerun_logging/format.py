"""The recording format: messages, framing and the one incremental decoder.

This module is sans-I/O, like ``websockets.protocol``: it turns messages into bytes
and bytes into messages, and touches no file, socket or thread. Every reader (files,
pipes, sockets, tests) feeds bytes to :class:`StreamDecoder`; every writer uses
:func:`stream_header`, :func:`encode_frame` and the message encoders below.

Stream layout::

    header   MAGIC (8 bytes) | major (u8) | minor (u8)
    frame*   size (u32 LE) | codec (u8) | crc32 (u32 LE) | payload (size bytes)

The CRC covers the codec byte and the payload. ``codec`` 0 is plain msgpack, 1 is
zlib-deflated msgpack. A payload is a sequence of msgpack messages, each an array
``[kind, body]`` where ``body`` is a map; readers skip kinds and keys they do not
know, which is how minor versions add things. A stream starts with a header and a
frame holding one ``INFO`` message, and a clean one ends with an ``END`` message.

Several streams in one file: a reused save path holds one stream per run (each
appended after the last), and two handlers writing one path interleave their
frames. The rule: **a header starts or resumes a stream; the INFO frame after it
says which.** A stream is identified by :func:`stream_id` of its INFO (recording id,
pid, start time), so a header + INFO already seen resumes that stream (its records
and sequence numbers continue) instead of starting another. No frame can start with
``MAGIC``: its first four bytes, read as a frame size, are far above MAX_FRAME_SIZE,
so the decoder never mistakes a header after frames for a frame.

A writer killed mid-write leaves a torn frame, and the next run appends its header
after it. A decoder made with ``resync=True`` (the file readers) skips from a torn
or corrupt frame to the next ``MAGIC``, reports what it skipped as a :class:`Damage`
event and reads on; with no header after the damage, it fails as it always did.

Records travel in columns (one ``RECORDS`` message per batch): repeated values such
as the logger, level and source line are interned per frame in a ``sites`` table and
thread/process details in a ``ctxs`` table, times and sequence numbers are delta-coded,
and the frame is deflated. That is what keeps a typical record under 20 bytes.

Versions: 1.1 added the ``args`` column (the arguments of a ``%``-style message);
a 1.0 reader skips it, a 1.1 reader reads 1.0 streams without it. 1.2 lets a row of
the ``msg`` column be nil: the message is then its site's template with the row's
``args`` applied (``template % args``), rendered by the reader
(:func:`render_message`). Writers leave a message out only where that gives exactly
the text the application would have seen (see :func:`deferrable_template`), so
readers render and writers do not: a 1.1 reader refuses those frames.

Exceptions (all are also ``ValueError``)::

    RecordingError          base; names the source and the byte offset
    ├── NotARecording       bad magic (and says so when it is a Rerun SDK file)
    ├── UnsupportedVersion  a newer major version
    ├── FrameTooLarge       a declared size above MAX_FRAME_SIZE
    ├── ChecksumMismatch    the CRC does not match
    ├── CorruptFrame        the payload does not decode
    └── TruncatedStream     the stream ended inside a header or a frame, or a frame
                            was cut short by the header of the next run
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence, Tuple, Union

import msgpack

MAGIC = b"\x89RLG\r\n\x1a\n"
"""Our magic. PNG-style: a high byte and CR LF catch text-mode mangling."""
RERUN_SDK_MAGIC = b"RRF"
FORMAT_MAJOR = 1
FORMAT_MINOR = 2
HEADER = MAGIC + bytes((FORMAT_MAJOR, FORMAT_MINOR))
HEADER_SIZE = len(HEADER)

_FRAME_HEAD = struct.Struct("<IBI")
FRAME_HEAD_SIZE = _FRAME_HEAD.size
MAX_FRAME_SIZE = 16 * 1024 * 1024
"""Largest payload a frame may declare, as stored (compressed)."""
MAX_PAYLOAD_SIZE = 64 * 1024 * 1024
"""Largest payload once inflated; guards against deflate bombs."""
TARGET_PAYLOAD_SIZE = 4 * 1024 * 1024
"""Writers split batches whose packed payload is larger than this."""

MAX_FIELD_CHARS = 64 * 1024
"""Cap for one text field (message, template, traceback, stack, an extra's text)."""
MAX_EXTRAS_BYTES = 256 * 1024
"""Cap for the packed extras of one record."""
TRUNCATION_MARK = "…[truncated {} chars]"
MAX_RECORDS_PER_FRAME = 65536
"""Most records one frame may hold; writers batch fewer (the handler at most 65536)."""

CODEC_MSGPACK = 0
CODEC_ZLIB = 1

KIND_INFO = 1
KIND_RECORDS = 2
KIND_DROPPED = 3
KIND_END = 4
KIND_ACK = 5
KIND_REFUSED = 6

VIEWER_MAGIC = b"\x89RLV\r\n\x1a\n"
"""What a viewer sends first on every TCP connection, so a client knows it is one."""
VIEWER_HELLO = VIEWER_MAGIC + bytes((FORMAT_MAJOR, FORMAT_MINOR))


# --- errors -------------------------------------------------------------------------


class RecordingError(ValueError):
    """A stream that cannot be read further. Names its source and byte offset."""

    def __init__(self, reason: str, source: str = "<stream>", offset: int = 0) -> None:
        self.reason = reason
        self.source = source
        self.offset = offset
        super().__init__(f"{source}: at byte {offset}: {reason}")


class NotARecording(RecordingError):
    """The stream does not start with our magic."""


class UnsupportedVersion(RecordingError):
    """The stream was written by a newer major version of the format."""


class FrameTooLarge(RecordingError):
    """A frame declares a size above the limit."""


class ChecksumMismatch(RecordingError):
    """A frame's payload does not match its CRC."""


class CorruptFrame(RecordingError):
    """A frame's payload passed its CRC but does not decode."""


class TruncatedStream(RecordingError):
    """The stream ended inside the header or a frame (a torn tail)."""


# --- messages -----------------------------------------------------------------------


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


Message = Union[RecordingInfo, Record, Dropped, End, Ack, Refused, Damage]
"""What a decoder yields: the messages on the wire, and its own :class:`Damage` reports."""

StreamId = Tuple[str, int, int]
"""Which writer a stream comes from: ``(recording_id, pid, start_time_ns)`` of its INFO."""


def stream_id(info: RecordingInfo) -> StreamId:
    """The identity of the stream ``info`` starts.

    Two runs of an app differ in recording id (new per run); two handlers of one
    process share recording id and pid but not the start time of their INFO.
    """
    return (info.recording_id, info.pid, info.start_time_ns)


@dataclass
class DecodedStream:
    """One stream a decoder has read: its INFO, its header's version, whether it ended.

    ``index`` numbers the streams from 0 in the order they first appear. The
    decoder owns it and keeps ``ended`` up to date; callers only read it.
    """

    info: RecordingInfo
    version: tuple[int, int]
    index: int
    ended: bool = False


# --- encoding -----------------------------------------------------------------------


def new_packer() -> msgpack.Packer:
    """A packer that keeps lone surrogates and turns unknown types into text."""
    return msgpack.Packer(default=plain_value, unicode_errors="surrogatepass")


def packb(value: Any) -> bytes:
    """Pack one value with the format's conventions. Not thread-safe per packer."""
    return new_packer().pack(value)


def plain_value(value: Any) -> Any:
    """A value msgpack can carry, made from any Python object; never raises.

    Follows python-json-logger's ``JsonEncoder.default`` (datetimes as ISO text,
    enums as their value, dataclasses as dicts, everything else as ``str``), so a
    field reads the same here as in a user's JSON logs. Integers beyond 64 bits
    become their decimal text.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    try:
        converted = _json_encoder().default(value)
    except Exception:
        converted = None
    if converted is not None and converted is not value:
        return converted
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


@functools.lru_cache(maxsize=1)
def _json_encoder() -> Any:
    from pythonjsonlogger.json import JsonEncoder

    return JsonEncoder()


def truncate_text(text: str, limit: int = MAX_FIELD_CHARS) -> str:
    """``text`` cut to ``limit`` characters, keeping head and tail, marked visibly."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    mark = TRUNCATION_MARK.format(cut)
    head = (limit * 2) // 3
    return text[:head] + mark + text[len(text) - (limit - head) :]


def sanitize(value: Any, _depth: int = 0, _seen: frozenset[int] = frozenset()) -> Any:
    """``value`` made packable and within the field caps, recursively.

    Cycles become ``"[...]"`` / ``"{...}"`` as ``repr`` shows them; nesting deeper than
    32 levels becomes text; strings and bytes longer than MAX_FIELD_CHARS are cut.
    """
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**64 else str(value)
    if isinstance(value, str):
        return truncate_text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return data if len(data) <= MAX_FIELD_CHARS else truncate_text(repr(data))
    if _depth >= 32:
        return truncate_text(safe_repr(value))
    if isinstance(value, (list, tuple, dict)):
        if id(value) in _seen:
            return "{...}" if isinstance(value, dict) else "[...]"
        seen = _seen | {id(value)}
        if isinstance(value, dict):
            return {
                _sanitize_key(k): sanitize(v, _depth + 1, seen) for k, v in value.items()
            }
        return [sanitize(v, _depth + 1, seen) for v in value]
    return sanitize(plain_value(value), _depth + 1, _seen)


def _sanitize_key(key: Any) -> Any:
    if isinstance(key, str):
        return truncate_text(key)
    if isinstance(key, (int, float, bool)) and sanitize(key) is key:
        return key
    return truncate_text(safe_repr(key))


_CONVERSION = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.?)")
MAX_DEFERRED_CONVERSIONS = 64
"""Most ``%`` conversions a template may hold for its records to be rendered by readers."""
MAX_DEFERRED_WIDTH = 99
"""Widest field width or precision a template may ask for, for the same reason."""


def deferrable_template(template: Any) -> bool:
    """Whether readers may render the messages of ``template`` from their args.

    The rule that bounds a reader's work per byte received: a ``str`` template within
    MAX_FIELD_CHARS, with at most MAX_DEFERRED_CONVERSIONS conversions, no ``*``
    width or precision and none above MAX_DEFERRED_WIDTH. Then a rendered message is
    at most a few times the size of its template and args, so a crafted template
    (``%999999999d``) cannot make a reader build a huge string. Writers render any
    other message themselves.
    """
    if type(template) is not str or len(template) > MAX_FIELD_CHARS:
        return False
    if "%" not in template:
        return True
    specs = _CONVERSION.findall(template)
    if len(specs) > MAX_DEFERRED_CONVERSIONS:
        return False
    for width, precision, _ in specs:
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_DEFERRED_WIDTH):
                return False
    return True


def render_message(template: str | None, args: Any) -> str:
    """The message of a record stored without one: ``template % args``, as
    ``LogRecord.getMessage`` makes it (capped at MAX_FIELD_CHARS); never raises.

    A template that :func:`deferrable_template` refuses (only a crafted stream has
    one) is not rendered: the text says so and shows the template and args.
    """
    if template is None:
        return ""
    if args and not deferrable_template(template):
        return truncate_text(
            f"<message not rendered: its template is not one a writer defers> "
            f"msg={safe_repr(template)} args={safe_repr(args)}"
        )
    return render(template, args)


def render(template: str, args: Any) -> str:
    """``template % args`` as ``LogRecord.getMessage`` makes it (capped), or why it could
    not; never raises. The one rendering of writers (for what they do not defer) and readers."""
    try:
        return truncate_text(template % args if args else template)
    except Exception as error:
        return unformattable(template, args, error)


def unformattable(msg: Any, args: Any, error: Exception) -> str:
    """The message of a record whose ``msg % args`` raised ``error``: what went wrong,
    with the template and args (capped)."""
    return truncate_text(
        f"<message could not be formatted: {type(error).__name__}: {error}> "
        f"msg={safe_repr(msg)} args={safe_repr(args)}"
    )


def safe_repr(value: Any) -> str:
    """``repr(value)``, or a placeholder naming the type when ``__repr__`` raises."""
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


def safe_str(value: Any) -> str:
    """``str(value)``, falling back to :func:`safe_repr` when ``__str__`` raises."""
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


def pack_extras(extras: Sequence[dict[str, Any] | None]) -> bytes:
    """The packed ``extra`` column, every value packable and within the caps.

    Fast path: pack the whole column at once; when that fails (a value msgpack
    refuses, a cycle) or the column is large enough that one record might exceed
    a cap, check record by record.
    """
    try:
        packed = packb(list(extras))
        if len(packed) <= MAX_FIELD_CHARS:
            return packed
    except (ValueError, TypeError, OverflowError, UnicodeError):
        pass
    return packb([_capped_extras(x) for x in extras])


class Packed(bytes):
    """A column that is already packed: :func:`records_message` writes it as it is."""


def pack_args(args: Sequence[tuple[Any, ...] | dict[Any, Any] | None]) -> Packed:
    """The packed ``args`` column, each row packable and within the caps (like extras)."""
    exact = pack_args_exactly(args)
    return exact if exact is not None else pack_args_capped(args)


def pack_args_exactly(args: Sequence[tuple[Any, ...] | dict[Any, Any] | None]) -> Packed | None:
    """The packed ``args`` column when every row reads back as it is (nothing capped or
    made plain), else None: only then may a writer leave messages for readers to render."""
    try:
        packed = packb(list(args))
        if len(packed) <= MAX_FIELD_CHARS:
            return Packed(packed)
    except (ValueError, TypeError, OverflowError, UnicodeError):
        pass
    return None


def pack_args_capped(args: Sequence[tuple[Any, ...] | dict[Any, Any] | None]) -> Packed:
    """The packed ``args`` column row by row, each row cut to the caps where it must be."""
    return Packed(packb([_capped_args(a) for a in args]))


def _capped_args(args: tuple[Any, ...] | dict[Any, Any] | None) -> Any:
    if not args:
        return None
    try:
        if len(packb(args)) <= MAX_FIELD_CHARS:
            return args
    except (ValueError, TypeError, OverflowError, UnicodeError):
        pass
    clean = sanitize(args)
    if len(packb(clean)) <= MAX_EXTRAS_BYTES:
        return clean
    return [truncate_text(safe_repr(args))]


def _capped_extras(extras: dict[str, Any] | None) -> dict[str, Any] | None:
    if not extras:
        return extras
    try:
        if len(packb(extras)) <= MAX_FIELD_CHARS:
            return extras
    except (ValueError, TypeError, OverflowError, UnicodeError):
        pass
    return fit_extras(extras)


def fit_extras(extras: dict[Any, Any]) -> dict[Any, Any]:
    """``extras`` within the caps: each entry sanitized, entries kept in order while the
    packed total fits MAX_EXTRAS_BYTES, then a ``rerun.truncated`` note saying how many
    were left out. The one rule for writers (the handler) and readers (the viewer)."""
    clean: dict[Any, Any] = {}
    size = 0
    items = list(extras.items())
    for index, (key, value) in enumerate(items):
        entry = {_sanitize_key(key): sanitize(value)}
        entry_size = len(packb(entry))
        if size + entry_size > MAX_EXTRAS_BYTES:
            clean["rerun.truncated"] = (
                f"{len(items) - index} of {len(items)} extras left out: "
                f"record over {MAX_EXTRAS_BYTES} bytes"
            )
            break
        clean.update(entry)
        size += entry_size
    return clean


def entity_path_for(logger_name: str, prefix: str = "") -> str:
    """The entity path of a logger: dots become slashes, under ``prefix``.

    The root logger is ``root`` (its name in ``logging``), so it keeps one stable
    path whatever the prefix.
    """
    path = logger_name.replace(".", "/") if logger_name else "root"
    return f"{prefix.strip('/')}/{path}" if prefix.strip("/") else path


def _message(kind: int, body: dict[str, Any]) -> bytes:
    return packb([kind, body])


def info_message(info: RecordingInfo) -> bytes:
    """A packed ``INFO`` message."""
    return _message(
        KIND_INFO,
        {
            "app": info.application_id,
            "rec": info.recording_id,
            "start": info.start_time_ns,
            "host": info.host,
            "pid": info.pid,
            "python": info.python_version,
            "version": info.package_version,
            "prefix": info.entity_prefix,
        },
    )


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


@dataclass(frozen=True)
class FramePeek:
    """What a frame holds, read without decoding its records.

    ``first_seq`` and ``records`` describe its RECORDS message (None and 0 when it
    has none); ``dropped`` sums its DROPPED messages; ``info`` and ``ended`` say
    whether it holds INFO or END.
    """

    first_seq: int | None
    records: int
    dropped: int
    info: bool
    ended: bool


def peek_frame(payload: bytes) -> FramePeek:
    """Walk the messages of a frame payload, reading of RECORDS only its ``seq`` column.

    Lets a viewer count, order and de-duplicate frames without building a Python
    object per record. Raises ValueError on a payload that does not decode.
    """
    unpacker = msgpack.Unpacker(
        raw=False, strict_map_key=False, max_buffer_size=max(len(payload), 1)
    )
    unpacker.feed(payload)
    first_seq, records, dropped, info, ended = None, 0, 0, False, False
    end = 0
    while end < len(payload):
        try:
            if unpacker.read_array_header() < 2:
                raise ValueError("a message must be [kind, map]")
            kind = unpacker.unpack()
            if kind == KIND_RECORDS:
                first_seq, records = _peek_seq(unpacker)
            elif kind == KIND_DROPPED:
                dropped += int(unpacker.unpack().get("count", 0))
            else:
                info = info or kind == KIND_INFO
                ended = ended or kind == KIND_END
                unpacker.skip()
        except msgpack.OutOfData:
            raise ValueError(f"payload ends inside a message at byte {end}") from None
        except (TypeError, AttributeError, IndexError) as error:
            raise ValueError(f"malformed message at byte {end}: {error!r}") from None
        end = unpacker.tell()
    return FramePeek(first_seq, records, dropped, info, ended)


def _peek_seq(unpacker: msgpack.Unpacker) -> tuple[int | None, int]:
    first_seq, count = None, 0
    for _ in range(unpacker.read_map_header()):
        if unpacker.unpack() == "seq":
            count = unpacker.read_array_header()
            if count > MAX_RECORDS_PER_FRAME:
                raise ValueError(f"{count} records in one frame, the limit is {MAX_RECORDS_PER_FRAME}")
            if count:
                first_seq = int(unpacker.unpack())
                for _ in range(count - 1):
                    unpacker.skip()
        else:
            unpacker.skip()
    return first_seq, count


def encode_frame(payload: bytes, compress: bool = True) -> bytes:
    """One frame around ``payload`` (concatenated packed messages).

    Deflates (zlib level 1) when asked and when it pays. Raises ValueError when the
    result would exceed MAX_FRAME_SIZE: writers split their batches before that.
    """
    codec = CODEC_MSGPACK
    if compress and len(payload) > 64:
        deflated = zlib.compress(payload, 1)
        if len(deflated) < len(payload):
            payload, codec = deflated, CODEC_ZLIB
    if len(payload) > MAX_FRAME_SIZE:
        raise ValueError(f"frame payload of {len(payload)} bytes exceeds {MAX_FRAME_SIZE}")
    crc = zlib.crc32(payload, _CODEC_CRC[codec])
    return _FRAME_HEAD.pack(len(payload), codec, crc) + payload


_CODEC_CRC = {c: zlib.crc32(bytes((c,))) for c in (CODEC_MSGPACK, CODEC_ZLIB)}


def stream_header(info: RecordingInfo) -> bytes:
    """The bytes every stream starts with: magic, version, and the INFO frame."""
    return HEADER + encode_frame(info_message(info))


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
    for row, r in enumerate(records):
        site = (
            r.logger, r.entity_path, r.level, r.level_name,
            r.template, r.path, r.line, r.function,
        )
        site_col.append(sites.setdefault(site, len(sites)))
        ctx = (r.thread, r.thread_name, r.process, r.process_name, r.task_name)
        ctx_col.append(ctxs.setdefault(ctx, len(ctxs)))
        if r.exception is not None:
            e = r.exception
            excs.append([row, e.type, e.value, e.traceback])
        if r.stack_info is not None:
            stacks.append([row, r.stack_info])
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
    return columns, [r.extras or None for r in records]


def encode_records(records: Sequence[Record]) -> bytes:
    """A packed RECORDS message for ``records``."""
    columns, extras = columns_for(records)
    return records_message(columns, pack_extras(extras))


# --- decoding -----------------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """One checked frame as read: where it started, its bytes as stored, its payload inflated.

    ``raw`` is the whole frame (head and stored payload), ready to be forwarded or
    appended to another stream unchanged.
    """

    offset: int
    raw: bytes
    payload: bytes

    @property
    def size(self) -> int:
        """Bytes the frame takes in the stream."""
        return len(self.raw)


class StreamDecoder:
    """The incremental decoder: feed it bytes, take messages out.

    ``feed(data)`` buffers bytes; ``messages()`` yields every message that whole
    frames make available; ``close()`` says the input ended and raises
    :class:`TruncatedStream` if it ended inside a header or a frame. Errors are
    raised once and leave the decoder failed: everything yielded before them stays
    valid. ``offset`` is the stream position of the next unread byte.

    A header after frames starts or resumes a stream (see the module docstring):
    ``version``, ``info`` and ``ended`` describe the current stream, ``stream`` is
    its :class:`DecodedStream` (None until its INFO), ``streams`` holds every stream
    seen by :func:`stream_id`, and ``headers`` counts the headers read (a frame read
    while it went up is the first of a stream: its INFO).

    ``resync=True`` is for files, where a run killed mid-write is followed by the
    next run: a frame that is torn, too large or fails its checksum is skipped up to
    the next ``MAGIC``, reported as a :class:`Damage` (yielded by ``messages()``,
    kept in ``damage``), and reading goes on there. With no header after it, the
    error is raised at ``close()`` (or by the reads after it), as without resync:
    a file holding one stream reads exactly as before. Costs nothing on the hot
    path: a header is looked for only where a frame size is out of range.
    """

    def __init__(
        self, source: str = "<stream>", max_frame_size: int = MAX_FRAME_SIZE,
        magic: bytes = MAGIC, resync: bool = False, max_payload_size: int = MAX_PAYLOAD_SIZE,
    ) -> None:
        if max_frame_size >= _frame_size_of(magic):
            raise ValueError(f"max_frame_size {max_frame_size} would read a stream header as a frame")
        self.source = source
        self.magic = magic
        self.max_frame_size = max_frame_size
        self.max_payload_size = max_payload_size
        self.resync = resync
        self.version: tuple[int, int] | None = None
        self.info: RecordingInfo | None = None
        self.ended = False
        self.records = 0
        self.offset = 0
        self.headers = 0
        self.stream: DecodedStream | None = None
        self.streams: dict[StreamId, DecodedStream] = {}
        self.damage: list[Damage] = []
        self._buffer = bytearray()
        self._error: RecordingError | None = None
        self._closed = False
        self._awaiting_info = False
        self._lost: RecordingError | None = None
        """While resyncing: the failure whose bytes are being skipped."""
        self._lost_end = 0
        """Stream offset where the failed frame claimed to end."""
        self._damage_told = 0

    def feed(self, data: bytes) -> None:
        """Add bytes read from the source."""
        self._buffer += data


    def frames(self) -> Iterator[Frame]:
        """Yield each whole, checked frame; stream headers are read (and checked) on the way.

        In the loop, ``self.offset`` is always the stream position of ``buffer[start]``.
        """
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        start = 0
        limit = self.max_frame_size
        try:
            if self.version is None and not self._read_header():
                return
            while True:
                if self._lost is not None:
                    start = self._skip_to_magic(buffer, start)
                    if self._lost is not None:
                        if self._closed:
                            raise self._lost
                        return
                available = len(buffer) - start
                if available < FRAME_HEAD_SIZE:
                    if available and self._closed:
                        start = self._torn(buffer, start)
                        continue
                    return
                size, codec, crc = _FRAME_HEAD.unpack_from(buffer, start)
                if size > limit:
                    if not self._is_header(buffer, start):
                        error = self._fail(
                            FrameTooLarge, f"frame declares {size} bytes, the limit is {limit}"
                        )
                        start = self._lose(error, start, FRAME_HEAD_SIZE)
                    elif available >= len(self.magic) + 2:
                        start = self._next_header(buffer, start)
                    elif self._closed:
                        start = self._torn(buffer, start)
                    else:
                        return
                    continue
                end = start + FRAME_HEAD_SIZE + size
                if len(buffer) < end:
                    if self._closed:
                        start = self._torn(buffer, start)
                        continue
                    return
                raw = bytes(buffer[start:end])
                try:
                    payload = self._check(codec, crc, memoryview(raw)[FRAME_HEAD_SIZE:])
                except RecordingError as error:
                    start = self._lose(error, start, len(raw))
                    continue
                frame = Frame(self.offset, raw, payload)
                start = end
                self.offset += len(raw)
                yield frame
        except RecordingError as error:
            self._error = error
            raise
        finally:
            del buffer[:start]

    def messages(self) -> Iterator[Message]:
        """Yield every message available so far, records one by one, damage where it was."""
        try:
            for frame in self.frames():
                if self._damage_told < len(self.damage):
                    yield from self._untold_damage()
                yield from self.decode_payload(frame)
        except RecordingError:
            yield from self._untold_damage()
            raise
        yield from self._untold_damage()

    def close(self) -> None:
        """Declare the end of input; raise TruncatedStream on a torn tail.

        With ``resync``, the bytes left may hold another stream after a torn frame:
        then close() returns and the next ``messages()`` (or ``frames()``) reads
        them, raising there if the input ends torn again. Call it once more after
        close() whenever ``resync`` is on.
        """
        if self._error is not None:
            raise self._error
        self._closed = True
        if self.version is None:
            self._error = self._fail(
                TruncatedStream,
                f"stream ends inside the stream header ({len(self._buffer)} bytes left over)",
            )
            raise self._error
        if not self._buffer and self._lost is None:
            return
        if self.resync and self._buffer.find(self.magic, 0 if self._lost else 1) >= 0:
            return
        self._error = self._lost or self._fail(
            TruncatedStream,
            f"stream ends inside {self._torn_what(self._buffer, 0)} "
            f"({len(self._buffer)} bytes left over)",
        )
        raise self._error

    @property
    def pending(self) -> int:
        """Bytes fed but not yet part of a whole frame."""
        return len(self._buffer)

    def _fail(self, kind: type[RecordingError], reason: str) -> RecordingError:
        return kind(reason, self.source, self.offset)

    # --- framing ----------------------------------------------------------------

    def _read_header(self) -> bool:
        """The first header; a stream that does not start with one is not a recording."""
        buf = self._buffer
        magic = self.magic
        probe = bytes(buf[: len(magic)])
        if not magic.startswith(probe):
            if probe.startswith(RERUN_SDK_MAGIC):
                raise self._fail(
                    NotARecording,
                    "this is a Rerun SDK recording (it starts with 'RRF'), not a "
                    "rerun-logging one; open it with the Rerun viewer",
                )
            raise self._fail(NotARecording, f"not a rerun-logging recording (starts with {probe!r})")
        if len(buf) < len(magic) + 2:
            return False
        del buf[: self._next_header(buf, 0)]
        return True

    def _is_header(self, buffer: bytearray, start: int) -> bool:
        return buffer[start : start + len(self.magic)] == self.magic

    def _next_header(self, buffer: bytearray, start: int) -> int:
        """Read the header at ``start`` (whole): a stream starts, its INFO comes next."""
        at = start + len(self.magic)
        major, minor = buffer[at], buffer[at + 1]
        if major != FORMAT_MAJOR:
            raise self._fail(
                UnsupportedVersion,
                f"written with format version {major}.{minor}; this reader supports "
                f"{FORMAT_MAJOR}.{FORMAT_MINOR} (upgrade rerun-logging to read it)"
                if major > FORMAT_MAJOR
                else f"format version {major}.{minor} is not supported by this reader "
                f"({FORMAT_MAJOR}.{FORMAT_MINOR})",
            )
        self.version = (major, minor)
        self.info = None
        self.ended = False
        self.stream = None
        self.headers += 1
        self._awaiting_info = True
        self.offset += at + 2 - start
        return at + 2

    def _check(self, codec: int, crc: int, payload: memoryview) -> bytes:
        if codec not in _CODEC_CRC:
            raise self._fail(CorruptFrame, f"unknown codec {codec}")
        if zlib.crc32(payload, _CODEC_CRC[codec]) != crc:
            raise self._fail(ChecksumMismatch, "frame checksum does not match (corrupt data)")
        if codec == CODEC_MSGPACK:
            return bytes(payload)
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(payload, self.max_payload_size)
        except zlib.error as error:
            raise self._fail(CorruptFrame, f"payload does not inflate: {error}") from None
        if inflater.unconsumed_tail:
            raise self._fail(CorruptFrame, f"payload inflates beyond {self.max_payload_size} bytes")
        if not inflater.eof:
            raise self._fail(CorruptFrame, "deflated payload ends early")
        return data

    # --- damage and resync ------------------------------------------------------

    def _torn(self, buffer: bytearray, start: int) -> int:
        """The input ended inside the header or frame at ``start``."""
        left = len(buffer) - start
        error = self._fail(
            TruncatedStream,
            f"stream ends inside {self._torn_what(buffer, start)} ({left} bytes left over)",
        )
        return self._lose(error, start, left)

    def _torn_what(self, buffer: bytearray, start: int) -> str:
        head = bytes(buffer[start : start + len(self.magic)])
        return "a stream header" if head and self.magic.startswith(head) else "a frame"

    def _lose(self, error: RecordingError, start: int, claimed: int) -> int:
        """A frame at ``start`` that cannot be read: raise, or (resync) start skipping it.

        ``claimed`` is how many bytes the frame said it takes. Its first byte is
        skipped at once, so the search for the next header starts past it.
        """
        if not self.resync:
            raise error
        self._lost = error
        self._lost_end = self.offset + claimed
        self.offset += 1
        return start + 1

    def _skip_to_magic(self, buffer: bytearray, start: int) -> int:
        """Skip to the next header; without one yet, keep only what could begin it."""
        found = buffer.find(self.magic, start)
        if found < 0:
            keep = max(start, len(buffer) - len(self.magic) + 1)
            self.offset += keep - start
            return keep
        self.offset += found - start
        self._found_header_after_damage()
        return found

    def _found_header_after_damage(self) -> None:
        lost = self._lost
        assert lost is not None
        self._lost = None
        if self.offset < self._lost_end:  # the header is inside what the frame claimed
            why = "" if isinstance(lost, TruncatedStream) else f"; {lost.reason}"
            lost = TruncatedStream(
                f"frame cut short after {self.offset - lost.offset} bytes by the header of "
                f"another stream (its writer stopped mid-frame{why})",
                self.source, lost.offset,
            )
        self.damage.append(Damage(lost, self.offset - lost.offset))

    def _untold_damage(self) -> Iterator[Damage]:
        while self._damage_told < len(self.damage):
            self._damage_told += 1
            yield self.damage[self._damage_told - 1]

    # --- messages ---------------------------------------------------------------

    def decode_payload(self, frame: Frame) -> Iterator[Message]:
        """The messages of one frame (unknown kinds skipped)."""
        try:
            try:
                decoded = _unpack_all(frame.payload)
            except TypeError:
                decoded = _unpack_all(frame.payload, object_pairs_hook=_hashable_keys)
            messages = [self._message(item) for item in decoded]
        except Exception as error:
            self._error = CorruptFrame(
                f"frame payload does not decode: {error!r}", self.source, frame.offset
            )
            raise self._error from None
        for batch in messages:
            self.records += sum(isinstance(m, Record) for m in batch)
            yield from batch

    def _message(self, item: Any) -> list[Message]:
        if not isinstance(item, list) or len(item) < 2 or not isinstance(item[1], dict):
            raise ValueError(f"a message must be [kind, map], got {type(item).__name__}")
        kind, body = item[0], item[1]
        if kind == KIND_RECORDS:
            return list(decode_records(body))
        if kind == KIND_INFO:
            info = decode_info(body)
            if self._awaiting_info:
                self._enter(info)
            self.info = info
            return [info]
        if kind == KIND_DROPPED:
            return [Dropped(int(body["count"]), str(body["reason"]))]
        if kind == KIND_END:
            self.ended = True
            if self.stream is not None:
                self.stream.ended = True
            return [End()]
        if kind == KIND_ACK:
            return [Ack(int(body["frames"]))]
        if kind == KIND_REFUSED:
            return [Refused(str(body["reason"]))]
        return []

    def _enter(self, info: RecordingInfo) -> None:
        """The INFO after a header: start that stream, or resume it if it was seen."""
        self._awaiting_info = False
        assert self.version is not None
        key = stream_id(info)
        try:
            stream = self.streams.get(key)
        except TypeError:  # an identity field is a list or map: a stream of its own, untracked
            self.stream = DecodedStream(info, self.version, len(self.streams))
            self.ended = False
            return
        if stream is None:
            stream = DecodedStream(info, self.version, len(self.streams))
            self.streams[key] = stream
        self.stream = stream
        self.ended = stream.ended


def _frame_size_of(magic: bytes) -> int:
    """The frame size a header's first bytes would declare (far above any limit)."""
    return int(_FRAME_HEAD.unpack_from(magic.ljust(FRAME_HEAD_SIZE, b"\0"))[0])


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


_NONE = type(None)
_SITE_TYPES = (str, str, int, str, (str, _NONE), str, int, (str, _NONE))
"""logger, entity path, level, level name, template, path, line, function."""
_CTX_TYPES = ((int, _NONE), (str, _NONE), (int, _NONE), (str, _NONE), (str, _NONE))
"""thread, thread name, process, process name, task name."""


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


def _column(body: dict[str, Any], key: str, allowed: set[type], count: int | None = None) -> list[Any]:
    """Column ``key`` checked: a list whose items' types are in ``allowed``."""
    column = body[key]
    if not isinstance(column, list) or not set(map(type, column)) <= allowed:
        raise ValueError(f"column {key!r} must be a list of {' or '.join(sorted(t.__name__ for t in allowed))}")
    if count is not None and len(column) != count:
        raise ValueError("RECORDS columns differ in length")
    return column


_INFO_FIELDS = (
    ("app", "application_id", str), ("rec", "recording_id", str), ("start", "start_time_ns", int),
    ("host", "host", str), ("pid", "pid", int), ("python", "python_version", str),
    ("version", "package_version", str),
)
"""The INFO keys, the :class:`RecordingInfo` field each fills, and the type it must have."""


def decode_info(body: dict[str, Any]) -> RecordingInfo:
    """The :class:`RecordingInfo` of an INFO body; ValueError naming a field missing or mistyped.

    Every field has the type its annotation says (ints are never bools), so readers
    can print, hash and JSON-encode it whatever a peer sent. ``prefix`` is optional.
    """
    fields: dict[str, Any] = {}
    for key, name, kind in _INFO_FIELDS:
        if key not in body:
            raise ValueError(f"INFO field {key!r} ({name}) is missing")
        fields[name] = _info_field(body[key], key, name, kind)
    if "prefix" in body:
        fields["entity_prefix"] = _info_field(body["prefix"], "prefix", "entity_prefix", str)
    return RecordingInfo(**fields)


def _info_field(value: Any, key: str, name: str, kind: type) -> Any:
    if type(value) is not kind:
        raise ValueError(f"INFO field {key!r} ({name}) is a {type(value).__name__}, not a {kind.__name__}")
    return value


def decode_records(body: dict[str, Any]) -> list[Record]:
    """Records from the body of a RECORDS message; ValueError if any field has a wrong type.

    Every field of every :class:`Record` has the type its annotation says, so the
    readers (printing, the web feed) can trust them whatever a peer sent.
    """
    raw_seqs = _column(body, "seq", {int})
    count = len(raw_seqs)
    if count > MAX_RECORDS_PER_FRAME:
        raise ValueError(f"{count} records in one frame, the limit is {MAX_RECORDS_PER_FRAME}")
    seqs = delta_decode(raw_seqs)
    times = delta_decode(_column(body, "time", {int}, count))
    sites = _typed_rows(body["sites"], _SITE_TYPES, "site")
    ctxs = _typed_rows(body["ctxs"], _CTX_TYPES, "context")
    messages = _column(body, "msg", {str, _NONE}, count)
    extras = _column(body, "extra", {dict, _NONE}, count) if body.get("extra") else [None] * count
    args = _column(body, "args", {list, dict, _NONE}, count) if body.get("args") else [None] * count
    excs = {
        row: ExceptionInfo(t, v, tb)
        for row, t, v, tb in _typed_rows(body.get("exc", []), (int, str, str, str), "exception")
    }
    stacks = {row: text for row, text in _typed_rows(body.get("stack", []), (int, str), "stack")}
    site_rows = _column(body, "site", {int}, count)
    ctx_rows = _column(body, "ctx", {int}, count)
    if None in messages:
        messages = _rendered(messages, site_rows, [site[4] for site in sites], args)
    site_fields = [dict(zip(_SITE_FIELDS, site)) for site in sites]
    ctx_fields = [dict(zip(_CTX_FIELDS, ctx)) for ctx in ctxs]
    none = None
    return [
        _record({
            **site_fields[si], **ctx_fields[ci], "seq": seq, "time_ns": t, "message": msg,
            "extras": extra or {}, "exception": excs.get(row, none),
            "stack_info": stacks.get(row, none), "args": _args(arg) if arg else none,
        })
        for row, (seq, t, si, ci, msg, extra, arg) in enumerate(
            zip(seqs, times, site_rows, ctx_rows, messages, extras, args)
        )
    ]


def _rendered(
    messages: list[str | None], site_rows: list[int], templates: list[Any], args: list[Any]
) -> list[str]:
    """``messages`` with each nil row rendered from its site's template and its args.

    Whether a template may be rendered is decided once per site, not per record."""
    renderable = [deferrable_template(t) for t in templates]
    return [
        message if message is not None
        else render(templates[site], _args(arg)) if renderable[site]
        else render_message(templates[site], _args(arg))
        for message, site, arg in zip(messages, site_rows, args)
    ]


_SITE_FIELDS = ("logger", "entity_path", "level", "level_name", "template", "path", "line", "function")
_CTX_FIELDS = ("thread", "thread_name", "process", "process_name", "task_name")
_new = object.__new__
_set = object.__setattr__


def _record(fields: dict[str, Any]) -> Record:
    """A :class:`Record` from all its fields, without the frozen dataclass's ``__init__``.

    That ``__init__`` sets each of the 19 fields through ``object.__setattr__``, about
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


def encode_stream(info: RecordingInfo, messages: Iterable[Message]) -> bytes:
    """A whole stream for ``info`` and ``messages``, one frame per run of records.

    Convenience for tests and tools; the handler writes frames as it goes.
    """
    out = [stream_header(info)]
    pending: list[Record] = []

    def flush_records() -> None:
        if pending:
            out.append(encode_frame(encode_records(pending)))
            pending.clear()

    for message in messages:
        if isinstance(message, Record):
            pending.append(message)
            continue
        flush_records()
        if isinstance(message, Dropped):
            out.append(encode_frame(dropped_message(message.count, message.reason)))
        elif isinstance(message, End):
            out.append(encode_frame(end_message()))
        elif isinstance(message, RecordingInfo):
            out.append(encode_frame(info_message(message)))
    flush_records()
    return b"".join(out)
