"""OTLP/HTTP log exports as our records and streams: the viewer's OTLP receiver. Pure.

The other half of :mod:`.mapping`: a request body as it arrived (bytes, its
``Content-Type`` and ``Content-Encoding``) becomes, per resource, a
:class:`~rerun_logging.format.RecordingInfo` and its records
(:func:`decode_request`); :class:`OtlpStreams` turns those into the bytes of our own
stream (header, then frames), one stream per resource with its sequence numbers
going on from request to request, for the viewer to feed to an ingest as it feeds a
TCP peer's bytes. The response bodies (:func:`success_body`, :func:`status_body`)
are built here too. No sockets, no clock (the caller passes the time).

Mapping (the inverse of :mod:`.mapping`, so records of our own ``otlp`` sink come
back as they left)::

    OTLP                                  Record / RecordingInfo
    resource service.name                 application_id ("unknown_service" if none)
    resource service.instance.id          recording_id (if none: "otlp-" and a hash of
                                          the resource's attributes, stable per resource)
    resource host.name / process.pid      host / pid (and each record's process)
    resource process.runtime.version      python_version
    resource telemetry.sdk.version        package_version (with telemetry.sdk.name
                                          before it unless it is "rerun-logging")
    severity_number                       level: TRACE 1-4 5-8, DEBUG 5-8 10-13, INFO 9-12
                                          20-23, WARN 13-16 30-33, ERROR 17-20 40-43,
                                          FATAL 21-24 50-53 (UNSPECIFIED 0: 0)
    severity_text                         level_name (if empty: DEBUG, INFO, WARNING,
                                          ERROR, CRITICAL, or the OTel name: TRACE, INFO2)
    body                                  message (a string as is; other values as JSON)
    time_unix_nano                        time_ns (else observed_time_unix_nano, else
                                          the time the request arrived)
    scope name                            logger ("root" if empty), and its entity path
    attributes                            extras, typed (string, bool, int, double,
                                          bytes, arrays as lists, maps as dicts; empty: None)
    code.file.path / code.line.number     path / line (also the older code.filepath,
    code.function.name                    function       code.lineno, code.function)
    thread.id / thread.name               thread / thread_name
    exception.type / .message / .stacktrace   exception (type, value, traceback)
    code.stacktrace                       stack_info
    trace_id / span_id / flags            trace_id / span_id (lowercase hex; all-zero
                                          or mis-sized ids: none) / trace_flags
    event_name                            extras event_name
    our sink's DROPPED_EVENT note         a DROPPED message (count, reason)

An attribute above whose value has another type than the field's stays an extra.
Every text is cut to ``MAX_FIELD_CHARS`` and the extras to ``MAX_EXTRAS_BYTES`` as
the handler cuts them. Bounds: :data:`MAX_BODY_SIZE` bytes as received,
:data:`MAX_INFLATED_SIZE` once inflated (checked while inflating, never inflated
whole), :data:`MAX_REQUEST_RECORDS` records per request and :data:`MAX_STREAMS`
resources held (records past either are rejected, as a partial success).

Errors, each a :class:`ReceiveError` (a ``ValueError``) with its HTTP status::

    ReceiveError
    ├── MalformedBody         400: the body does not decode (names what and where)
    ├── BodyTooLarge          413: over MAX_BODY_SIZE, or inflates past MAX_INFLATED_SIZE
    └── UnsupportedMediaType  415: another Content-Type or Content-Encoding
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, Sequence

from .. import format
from ..format import Dropped, ExceptionInfo, Record, RecordingInfo
from . import OtlpUnavailable
from .mapping import (  # the OpenTelemetry messages, as mapping imports them
    DROPPED_EVENT,
    DROPPED_SCOPE,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

try:
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError
except Exception as error:  # ImportError, or a protobuf runtime that does not fit
    raise OtlpUnavailable(error) from error

MAX_BODY_SIZE = 4 * 1024 * 1024
"""Most bytes a request body may have as sent (compressed or not)."""
MAX_INFLATED_SIZE = 8 * 1024 * 1024
"""Most bytes a gzip body may inflate to (checked as it inflates: a bomb costs at most this)."""
MAX_REQUEST_RECORDS = 16384
"""Most log records taken from one request (the SDKs send 512, our sink 2048); the rest
are rejected (partial success)."""
MAX_STREAMS = 256
"""Most resources (streams) the receiver holds; records of a new one past it are rejected."""
MAX_DEPTH = 32
"""Nesting of arrays and maps kept; deeper values become a note."""
MAX_TIME_NS = 2**63 - 1
"""Latest time kept (the format's times are int64 nanoseconds)."""

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
Kind = Literal["protobuf", "json"]
"""How a body is encoded: ``application/x-protobuf`` or ``application/json``."""

# google.rpc.Code values for the Status of an error response
CODE_INVALID_ARGUMENT = 3
CODE_NOT_FOUND = 5
CODE_PERMISSION_DENIED = 7
CODE_RESOURCE_EXHAUSTED = 8
CODE_UNIMPLEMENTED = 12
CODE_INTERNAL = 13
CODE_UNAVAILABLE = 14


class ReceiveError(ValueError):
    """A request the receiver refuses: ``status`` is the HTTP status to answer with."""

    status = 400
    code = CODE_INVALID_ARGUMENT

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MalformedBody(ReceiveError):
    """(Sans-I/O) The body does not decode as what its Content-Type says: 400."""


class BodyTooLarge(ReceiveError):
    """(Sans-I/O) The body is over MAX_BODY_SIZE, or inflates past MAX_INFLATED_SIZE: 413."""

    status = 413
    code = CODE_RESOURCE_EXHAUSTED


class UnsupportedMediaType(ReceiveError):
    """(Sans-I/O) A Content-Type or Content-Encoding the receiver does not read: 415."""

    status = 415


# --- the body ----------------------------------------------------------------------------


def body_kind(content_type: str | None) -> Kind:
    """The encoding ``content_type`` names (parameters such as charset ignored); 415 otherwise."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == PROTOBUF:
        return "protobuf"
    if media == JSON:
        return "json"
    shown = format.truncate_text(content_type or "", 80) if content_type else "none"
    raise UnsupportedMediaType(
        f"Content-Type {shown!r} is not read here: send {PROTOBUF} or {JSON}"
    )


def inflate(body: bytes, content_encoding: str | None, limit: int = MAX_INFLATED_SIZE) -> bytes:
    """``body`` decoded as its ``Content-Encoding`` says (none, ``identity`` or ``gzip``).

    A gzip body is inflated to at most ``limit`` bytes, in one bounded step: past it,
    :class:`BodyTooLarge`. One gzip member; anything after it is an error.
    """
    if len(body) > MAX_BODY_SIZE:
        raise BodyTooLarge(f"the body has {len(body)} bytes, the limit is {MAX_BODY_SIZE}")
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding != "gzip":
        raise UnsupportedMediaType(
            f"Content-Encoding {format.truncate_text(encoding, 40)!r} is not read here: "
            "send gzip or no encoding"
        )
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit)
    except zlib.error as error:
        raise MalformedBody(f"the gzip body does not inflate: {error}") from None
    if inflater.unconsumed_tail:
        raise BodyTooLarge(f"the gzip body inflates past {limit} bytes")
    if not inflater.eof:
        raise MalformedBody("the gzip body ends early")
    if inflater.unused_data:
        raise MalformedBody(f"{len(inflater.unused_data)} bytes after the gzip stream")
    return data


def parse_request(data: bytes, kind: Kind) -> ExportLogsServiceRequest:
    """``data`` (inflated) as an ``ExportLogsServiceRequest``; :class:`MalformedBody` naming what."""
    request = ExportLogsServiceRequest()
    if kind == "protobuf":
        try:
            request.ParseFromString(data)
        except (DecodeError, RecursionError, ValueError) as error:
            raise MalformedBody(
                f"the body is not an ExportLogsServiceRequest (protobuf): {error or 'does not decode'}"
            ) from None
        return request
    try:
        document = json.loads(data)
    except UnicodeDecodeError as error:
        raise MalformedBody(f"the JSON body is not UTF-8: {error}") from None
    except (ValueError, RecursionError) as error:
        raise MalformedBody(f"the body is not JSON: {error}") from None
    _hex_ids_to_base64(document)
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, TypeError, ValueError) as error:
        raise MalformedBody(f"the JSON body is not an ExportLogsServiceRequest: {error}") from None
    return request


_ID_KEYS = {"traceId": 16, "trace_id": 16, "spanId": 8, "span_id": 8}


def _hex_ids_to_base64(document: Any) -> None:
    """OTLP/JSON writes trace and span ids in hex, protobuf's JSON mapping reads base64:
    rewrite them in place (``resourceLogs[].scopeLogs[].logRecords[]``)."""
    for r, resource_logs in enumerate(_items(document, "resourceLogs", "resource_logs")):
        for s, scope_logs in enumerate(_items(resource_logs, "scopeLogs", "scope_logs")):
            for n, log in enumerate(_items(scope_logs, "logRecords", "log_records")):
                if not isinstance(log, dict):
                    continue
                for key, size in _ID_KEYS.items():
                    value = log.get(key)
                    if not isinstance(value, str):
                        continue
                    try:
                        raw = bytes.fromhex(value)
                    except ValueError:
                        raise MalformedBody(
                            f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{n}].{key} is not "
                            f"hex: {format.truncate_text(value, 40)!r}"
                        ) from None
                    if raw and len(raw) != size:
                        raise MalformedBody(
                            f"resourceLogs[{r}].scopeLogs[{s}].logRecords[{n}].{key} has "
                            f"{len(raw)} bytes, not {size}"
                        )
                    log[key] = base64.b64encode(raw).decode("ascii")


def _items(parent: Any, *keys: str) -> list[Any]:
    if not isinstance(parent, dict):
        return []
    for key in keys:
        value = parent.get(key)
        if isinstance(value, list):
            return value
    return []


# --- values ------------------------------------------------------------------------------


def python_value(value: Any, depth: int = 0) -> Any:
    """An ``AnyValue`` as a Python value: str, bool, int, float, bytes, list, dict, or None
    (the empty value); nesting past :data:`MAX_DEPTH` becomes a note."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind in ("array_value", "kvlist_value") and depth >= MAX_DEPTH:
        return f"…[nested deeper than {MAX_DEPTH} levels]"
    if kind == "array_value":
        return [python_value(item, depth + 1) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: python_value(pair.value, depth + 1) for pair in value.kvlist_value.values}
    return getattr(value, kind)


def level_of(severity: int) -> int:
    """The ``logging`` level of an OTel severity number: the inverse of
    :func:`.mapping.severity_number` (DEBUG 5 is 10, DEBUG2 6 is 11, ... FATAL4 24 is 53;
    TRACE 1-4 are 5-8; UNSPECIFIED and unknown numbers below are 0, above FATAL4 53)."""
    if severity <= 0:
        return 0
    severity = min(severity, 24)
    band, step = divmod(severity - 1, 4)
    return 5 + step if band == 0 else band * 10 + step


_PYTHON_NAMES = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}
_OTEL_NAMES = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def level_name_of(severity: int) -> str:
    """The name of a severity without a text: Python's for the five levels, else OTel's."""
    if severity <= 0:
        return "NOTSET"
    level = level_of(severity)
    if level in _PYTHON_NAMES:
        return _PYTHON_NAMES[level]
    band, step = divmod(min(severity, 24) - 1, 4)
    return _OTEL_NAMES[band] + (str(step + 1) if step else "")


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return format.safe_str(value)


def body_text(value: Any) -> str:
    """The message of a body: a string as it is, nothing as "", anything else as JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=_json_default)


# --- resources and records ------------------------------------------------------------


def _attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    return {pair.key: python_value(pair.value) for pair in pairs}


def recording_info(resource: Any) -> RecordingInfo:
    """The recording of a resource (see the table in this module's docstring).

    Its ``start_time_ns`` is 0: the stream's start is when :class:`OtlpStreams` first
    sees it. Equal resources give equal infos, so the info keys the stream.
    """
    attributes = _attributes(resource.attributes)

    def text(key: str, default: str = "") -> str:
        value = attributes.get(key)
        return value if isinstance(value, str) else default

    pid = attributes.get("process.pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        pid = 0
    recording = text("service.instance.id") or _stable_id(attributes)
    sdk, version = text("telemetry.sdk.name"), text("telemetry.sdk.version")
    package = version if sdk in ("", "rerun-logging") else f"{sdk} {version}".strip()
    return RecordingInfo(
        application_id=text("service.name") or "unknown_service",
        recording_id=recording,
        start_time_ns=0,
        host=text("host.name"),
        pid=pid,
        python_version=text("process.runtime.version"),
        package_version=package,
    )


def _stable_id(attributes: dict[str, Any]) -> str:
    """An id for a resource without ``service.instance.id``: a hash of its attributes."""
    canonical = json.dumps(sorted(attributes.items()), default=_json_default, ensure_ascii=False)
    return "otlp-" + hashlib.blake2b(
        canonical.encode("utf-8", "surrogatepass"), digest_size=8
    ).hexdigest()


_FIELD_ATTRIBUTES: tuple[tuple[str, str, type], ...] = (
    ("code.file.path", "path", str), ("code.filepath", "path", str),
    ("code.line.number", "line", int), ("code.lineno", "line", int),
    ("code.function.name", "function", str), ("code.function", "function", str),
    ("thread.id", "thread", int), ("thread.name", "thread_name", str),
    ("code.stacktrace", "stack_info", str),
)
"""Attributes that fill a record's own field (the first of a field that is present wins)."""
_EXCEPTION_ATTRIBUTES = ("exception.type", "exception.message", "exception.stacktrace")


def _typed(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def log_message(log: Any, scope: str, info: RecordingInfo, now_ns: int) -> Record | Dropped:
    """One ``LogRecord`` of scope ``scope`` as a :class:`Record` (its ``seq`` 0: the stream
    numbers it), or as a :class:`Dropped` when it is our sink's note of dropped records."""
    extras = _attributes(log.attributes)
    if scope == DROPPED_SCOPE and log.event_name == DROPPED_EVENT:
        count = extras.get("rerun_logging.dropped.count")
        reason = extras.get("rerun_logging.dropped.reason")
        if _typed(count, int) and count >= 0 and isinstance(reason, str):
            return Dropped(count, format.truncate_text(reason))
    fields: dict[str, Any] = {}
    for key, name, kind in _FIELD_ATTRIBUTES:
        if key in extras and _typed(extras[key], kind):
            value = extras.pop(key)
            fields.setdefault(name, value)
    exception = None
    if any(isinstance(extras.get(key), str) for key in _EXCEPTION_ATTRIBUTES):
        parts = [extras.pop(key) if isinstance(extras.get(key), str) else "" for key in _EXCEPTION_ATTRIBUTES]
        exception = ExceptionInfo(*(format.truncate_text(p) for p in parts))
    trace_id = log.trace_id.hex() if len(log.trace_id) == 16 and any(log.trace_id) else None
    span_id = log.span_id.hex() if len(log.span_id) == 8 and any(log.span_id) else None
    if log.event_name and "event_name" not in extras:
        extras["event_name"] = log.event_name
    time_ns = log.time_unix_nano or log.observed_time_unix_nano or now_ns
    severity = int(log.severity_number)
    logger = format.truncate_text(scope) if scope else "root"
    line = fields.get("line", 0)
    thread = fields.get("thread")
    return Record(
        seq=0,
        time_ns=min(time_ns, MAX_TIME_NS),
        level=level_of(severity),
        level_name=format.truncate_text(log.severity_text) if log.severity_text else level_name_of(severity),
        entity_path=format.entity_path_for(logger),
        logger=logger,
        message=format.truncate_text(body_text(python_value(log.body))),
        extras=_bounded_extras(extras),
        exception=exception,
        stack_info=_cut(fields.get("stack_info")),
        thread=thread if thread is not None and -(2**63) <= thread < 2**64 else None,
        thread_name=_cut(fields.get("thread_name")),
        process=info.pid or None,
        path=format.truncate_text(fields.get("path", "")),
        line=line if -(2**63) <= line < 2**63 else 0,
        function=_cut(fields.get("function")),
        trace_id=trace_id,
        span_id=span_id if trace_id is not None else None,
        trace_flags=(int(log.flags) & 0xFF) if trace_id is not None else None,
    )


def _cut(text: str | None) -> str | None:
    return None if text is None else format.truncate_text(text)


def _bounded_extras(extras: dict[str, Any]) -> dict[str, Any]:
    """``extras`` within the handler's caps (cheaply checked first: most are small)."""
    if not extras:
        return extras
    try:
        if len(format.packb(extras)) <= format.MAX_FIELD_CHARS:
            return extras
    except (ValueError, TypeError, OverflowError):
        pass
    return format.fit_extras(extras)


@dataclass
class ResourceBatch:
    """The messages of one resource in one request, in order."""

    info: RecordingInfo
    messages: list[Record | Dropped] = field(default_factory=list)


@dataclass
class ExportBatch:
    """What one request holds: per resource its messages, and what was rejected and why."""

    resources: list[ResourceBatch]
    records: int = 0
    """Log records taken (records and DROPPED notes)."""
    rejected: int = 0
    """Log records not taken."""
    reason: str = ""
    """Why (the partial success's ``error_message``)."""

    def reject(self, count: int, reason: str) -> None:
        """Count ``count`` records rejected for ``reason`` (the first reason is kept)."""
        if count <= 0:
            return
        self.rejected += count
        self.reason = self.reason or reason


def decode_logs(
    request: ExportLogsServiceRequest, now_ns: int, max_records: int = MAX_REQUEST_RECORDS,
) -> ExportBatch:
    """Every log record of ``request`` as our messages, grouped by resource, up to
    ``max_records`` (the rest rejected). ``now_ns`` is the time of records with none."""
    batch = ExportBatch([])
    by_info: dict[RecordingInfo, ResourceBatch] = {}
    for resource_logs in request.resource_logs:
        info = recording_info(resource_logs.resource)
        target = by_info.get(info)
        for scope_logs in resource_logs.scope_logs:
            logs = scope_logs.log_records
            if not logs:
                continue
            room = max_records - batch.records
            if len(logs) > room:
                batch.reject(len(logs) - room, f"more than {max_records} log records in one "
                             "request: the rest were not taken")
            if room <= 0:
                continue
            if target is None:
                target = by_info[info] = ResourceBatch(info)
                batch.resources.append(target)
            scope = scope_logs.scope.name
            for log in logs[:room] if len(logs) > room else logs:
                target.messages.append(log_message(log, scope, info, now_ns))
            batch.records += min(len(logs), room)
    return batch


def decode_request(
    body: bytes, content_type: str | None, content_encoding: str | None, now_ns: int,
    max_records: int = MAX_REQUEST_RECORDS,
) -> ExportBatch:
    """A request body as received, as our messages per resource; a :class:`ReceiveError` if not."""
    kind = body_kind(content_type)
    return decode_logs(parse_request(inflate(body, content_encoding), kind), now_ns, max_records)


# --- streams -----------------------------------------------------------------------------


@dataclass
class StreamBytes:
    """Bytes to feed to the ingest of one resource's stream (``key`` names it)."""

    key: RecordingInfo
    info: RecordingInfo
    """The stream's INFO (``key`` with its start time)."""
    data: bytes
    new: bool
    """The stream starts here (``data`` opens with its header)."""


@dataclass
class _Stream:
    info: RecordingInfo
    next_seq: int = 0


class OtlpStreams:
    """The streams of the resources received so far: their INFO and next sequence number.

    :meth:`frames` turns an :class:`ExportBatch` into stream bytes per resource: the
    first time a resource is seen, the stream header (its INFO starting then), then
    frames of its records numbered on from the last request (at most
    ``TARGET_PAYLOAD_SIZE`` packed bytes and ``MAX_RECORDS_PER_FRAME`` records each,
    as the handler writes them) and its DROPPED messages. At most ``max_streams``
    resources: the records of a new one past that are rejected in the batch.
    One owner: call it from one thread at a time.
    """

    def __init__(self, max_streams: int = MAX_STREAMS) -> None:
        self.max_streams = max_streams
        self._streams: dict[RecordingInfo, _Stream] = {}

    def __len__(self) -> int:
        return len(self._streams)

    def streams(self) -> list[tuple[RecordingInfo, RecordingInfo]]:
        """Each resource's key and its stream's INFO, in the order they were first seen."""
        return [(key, stream.info) for key, stream in self._streams.items()]

    def frames(self, batch: ExportBatch, now_ns: int) -> list[StreamBytes]:
        """The bytes of ``batch`` per resource, in order; rejects what does not fit."""
        out = []
        for resource in batch.resources:
            stream = self._streams.get(resource.info)
            new = stream is None
            if stream is None:
                if len(self._streams) >= self.max_streams:
                    count = len(resource.messages)
                    batch.records -= count
                    batch.reject(count, f"the viewer holds {self.max_streams} OTLP resources "
                                 "already: records of another one are not taken")
                    continue
                info = self._unique(dataclasses.replace(resource.info, start_time_ns=now_ns))
                stream = self._streams[resource.info] = _Stream(info)
            parts = [format.stream_header(stream.info)] if new else []
            parts += self._encode(stream, resource.messages)
            out.append(StreamBytes(resource.info, stream.info, b"".join(parts), new))
        return out

    def _unique(self, info: RecordingInfo) -> RecordingInfo:
        """``info``, its start moved on by nanoseconds until its stream identity is its own.

        Readers tell streams apart by recording id, pid and start time: two resources of
        one request (or one file) that share the first two (``service.name`` apart)
        would otherwise be read as one stream, the second's records as resent frames.
        """
        taken = {format.stream_id(s.info) for s in self._streams.values()}
        while format.stream_id(info) in taken:
            info = dataclasses.replace(info, start_time_ns=info.start_time_ns + 1)
        return info

    def _encode(self, stream: _Stream, messages: Sequence[Record | Dropped]) -> list[bytes]:
        frames: list[bytes] = []
        run: list[Record] = []
        for message in messages:
            if isinstance(message, Record):
                run.append(message)
                continue
            frames += self._records(stream, run)
            run = []
            frames.append(format.encode_frame(format.dropped_message(message.count, message.reason)))
        frames += self._records(stream, run)
        return frames

    def _records(self, stream: _Stream, records: list[Record]) -> list[bytes]:
        """Frames of ``records`` numbered from the stream's next sequence number."""
        out: list[bytes] = []
        pending = [records[i:i + format.MAX_RECORDS_PER_FRAME]
                   for i in range(0, len(records), format.MAX_RECORDS_PER_FRAME)]
        while pending:
            chunk = pending.pop(0)
            if not chunk:
                continue
            columns, extras = format.columns_for(chunk)
            columns["seq"] = format.delta_encode(range(stream.next_seq, stream.next_seq + len(chunk)))
            payload = format.records_message(columns, format.pack_extras(extras))
            if len(payload) > format.TARGET_PAYLOAD_SIZE and len(chunk) > 1:
                half = len(chunk) // 2
                pending[:0] = [chunk[:half], chunk[half:]]
                continue
            out.append(format.encode_frame(payload))
            stream.next_seq += len(chunk)
        return out


# --- responses ---------------------------------------------------------------------------


def content_type_of(kind: Kind) -> str:
    """The Content-Type of a response in ``kind``."""
    return PROTOBUF if kind == "protobuf" else JSON


def success_body(kind: Kind, rejected: int = 0, message: str = "") -> bytes:
    """An ``ExportLogsServiceResponse``: empty, or a partial success with ``rejected`` records."""
    response = ExportLogsServiceResponse()
    if rejected or message:
        response.partial_success.rejected_log_records = rejected
        response.partial_success.error_message = message
    if kind == "protobuf":
        return response.SerializeToString()
    return json.dumps(json_format.MessageToDict(response), separators=(",", ":")).encode()


def status_body(kind: Kind, code: int, message: str) -> bytes:
    """A ``google.rpc.Status`` (``code``, ``message``, no details), in protobuf or JSON."""
    if kind == "json":
        return json.dumps({"code": code, "message": message}, separators=(",", ":")).encode()
    text = message.encode("utf-8", "backslashreplace")
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


__all__ = [
    "BodyTooLarge", "ExportBatch", "JSON", "MAX_BODY_SIZE", "MAX_INFLATED_SIZE",
    "MAX_REQUEST_RECORDS", "MAX_STREAMS", "MalformedBody", "OtlpStreams", "PROTOBUF",
    "ReceiveError", "ResourceBatch", "StreamBytes", "UnsupportedMediaType", "body_kind",
    "body_text", "content_type_of", "decode_logs", "decode_request", "inflate", "level_name_of",
    "level_of", "log_message", "parse_request", "python_value", "recording_info", "status_body",
    "success_body",
]
