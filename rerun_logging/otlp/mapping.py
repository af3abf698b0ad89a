"""Our records as OTLP logs: ``ExportLogsServiceRequest`` messages from frames. Pure.

Built with the official generated messages of ``opentelemetry-proto`` (this module
imports them, and is the only one that does), following the OpenTelemetry logs data
model and the current semantic conventions::

    Record / RecordingInfo            OTLP
    level                             severity_number (DEBUG 5, INFO 9, WARNING 13,
                                      ERROR 17, CRITICAL 21; +1 per level above, to +3)
    level_name                        severity_text (as the app named it: "WARNING")
    message (rendered)                body (string)
    time_ns                           time_unix_nano and observed_time_unix_nano
    logger                            the instrumentation scope's name (one ScopeLogs each)
    extras                            attributes, typed: int, double, bool, string, bytes,
                                      arrays, maps; None as an empty value; other as text
    path / line / function            code.file.path / code.line.number / code.function.name
    thread / thread_name              thread.id / thread.name
    exception type / value / text     exception.type / exception.message / exception.stacktrace
    stack_info                        code.stacktrace
    trace_id / span_id / trace_flags  trace_id (16 bytes) / span_id (8 bytes) / flags (the
                                      W3C trace flags in its low byte), when the record was
                                      logged in a span (format 1.3); empty otherwise
    application_id                    resource service.name (unless OTEL_SERVICE_NAME or
                                      OTEL_RESOURCE_ATTRIBUTES name one)
    recording_id                      resource service.instance.id
    host / pid / python_version       resource host.name / process.pid / process.runtime.version
    (the running interpreter)         resource process.runtime.name ("cpython")
    package_version                   resource telemetry.sdk.version (telemetry.sdk.name
                                      "rerun-logging", telemetry.sdk.language "python")
    dropped (N records, reason)       a WARN record of scope "rerun_logging", event_name
                                      "rerun_logging.dropped", attributes
                                      rerun_logging.dropped.count / .reason

An extra whose key is one of the attributes above is left out (the record's own field
wins) and counted in ``dropped_attributes_count``. Text that is not valid UTF-8 (the
decoder keeps lone surrogates) is sent with those characters escaped.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Sequence, Tuple

from .. import format
from ..format import Record, RecordingInfo
from . import OtlpUnavailable

try:
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
    from opentelemetry.proto.resource.v1.resource_pb2 import Resource
except Exception as error:  # ImportError, or a protobuf runtime that does not fit
    raise OtlpUnavailable(error) from error

__all__ = [
    "DROPPED_EVENT", "DROPPED_SCOPE", "ExportLogsServiceRequest", "Resource", "any_value",
    "dropped_note", "export_request", "log_record", "partial_success", "resource",
    "severity_number",
]

DROPPED_SCOPE = "rerun_logging"
"""The instrumentation scope of the records that say records were dropped."""
DROPPED_EVENT = "rerun_logging.dropped"
SEVERITY_WARN = 13
MAX_DEPTH = 32
"""Nesting deeper than this (arrays, maps) is sent as text."""
_INT64 = (-(2**63), 2**63 - 1)

Text = Callable[[str], str]


def severity_number(level: int) -> int:
    """The OTel severity number of a ``logging`` level: by range, each anchored at its level.

    DEBUG (10) is DEBUG (5), 11 DEBUG2, 12 DEBUG3, 13 to 19 DEBUG4; the same for INFO
    (20: 9), WARNING (30: 13), ERROR (40: 17) and CRITICAL (50: 21, up to FATAL4 24 at
    53 and above). Below DEBUG, 5 is TRACE (1) and 8 and 9 TRACE4; 1 to 4 are TRACE;
    NOTSET (0 and below) is UNSPECIFIED (0).
    """
    if level <= 0:
        return 0
    if level < 10:
        return 1 + min(max(level - 5, 0), 3)
    band = min(level // 10, 5)
    return 1 + band * 4 + min(level - band * 10, 3)


def _plain(text: str) -> str:
    return text


def _escaped(text: str) -> str:
    """``text`` with what UTF-8 cannot hold (lone surrogates) escaped as ``\\udc80``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def any_value(value: Any, text: Text = _plain) -> AnyValue:
    """``value`` as an ``AnyValue``: bool, int (int64, else its text), double, string,
    bytes, arrays (lists, tuples), maps (keys as text), None as the empty value; any
    other value, and nesting past :data:`MAX_DEPTH`, as its text."""
    target = AnyValue()
    _set_value(target, value, text, 0)
    return target


def _set_value(target: AnyValue, value: Any, text: Text, depth: int) -> None:
    """Fill ``target`` in place (building nested messages and copying them is 3x slower)."""
    if value is None:
        return
    if value is True or value is False:
        target.bool_value = value
    elif isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            target.int_value = value
        else:
            target.string_value = str(value)
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, str):
        target.string_value = text(value)
    elif isinstance(value, (bytes, bytearray)):
        target.bytes_value = bytes(value)
    elif depth < MAX_DEPTH and isinstance(value, (list, tuple)):
        array = target.array_value
        array.SetInParent()
        add = array.values.add
        for item in value:
            _set_value(add(), item, text, depth + 1)
    elif depth < MAX_DEPTH and isinstance(value, dict):
        kvlist = target.kvlist_value
        kvlist.SetInParent()
        add = kvlist.values.add
        for key, item in value.items():
            pair = add()
            pair.key = text(_key(key))
            _set_value(pair.value, item, text, depth + 1)
    else:
        target.string_value = text(format.safe_str(value))


def _key(key: Any) -> str:
    return key if isinstance(key, str) else format.safe_str(key)


OWN_ATTRIBUTES = frozenset((
    "code.file.path", "code.line.number", "code.function.name", "thread.id", "thread.name",
    "exception.type", "exception.message", "exception.stacktrace", "code.stacktrace",
))
"""The attributes a record's own fields set (an extra of the same name gives way)."""

Cache = Dict[Tuple[Any, ...], List[KeyValue]]
"""Attributes shared by the records of one request: by call site, by thread."""


def _pairs(items: Iterable[tuple[str, str, Any]]) -> list[KeyValue]:
    pairs = []
    for key, kind, value in items:
        pair = KeyValue(key=key)
        setattr(pair.value, kind, value)
        pairs.append(pair)
    return pairs


def _site(record: Record, text: Text, cache: Cache) -> list[KeyValue]:
    key = (text, record.path, record.line, record.function, record.thread, record.thread_name)
    found = cache.get(key)
    if found is None:
        items: list[tuple[str, str, Any]] = []
        if record.path:
            items.append(("code.file.path", "string_value", text(record.path)))
            if _INT64[0] <= record.line <= _INT64[1]:
                items.append(("code.line.number", "int_value", record.line))
        if record.function is not None:
            items.append(("code.function.name", "string_value", text(record.function)))
        if record.thread is not None and _INT64[0] <= record.thread <= _INT64[1]:
            items.append(("thread.id", "int_value", record.thread))
        if record.thread_name is not None:
            items.append(("thread.name", "string_value", text(record.thread_name)))
        found = cache[key] = _pairs(items)
    return found


def _own(record: Record, text: Text, cache: Cache) -> list[KeyValue]:
    """The attributes from the record's own fields: location, thread, exception, stack."""
    own = _site(record, text, cache)
    exception, stack = record.exception, record.stack_info
    if exception is None and stack is None:
        return own
    items: list[tuple[str, str, Any]] = []
    if exception is not None:
        items.append(("exception.type", "string_value", text(exception.type)))
        items.append(("exception.message", "string_value", text(exception.value)))
        items.append(("exception.stacktrace", "string_value", text(exception.traceback)))
    if stack is not None:
        items.append(("code.stacktrace", "string_value", text(stack)))
    return own + _pairs(items)


def _fill(log: LogRecord, record: Record, text: Text, cache: Cache) -> None:
    """Make ``log`` (empty) the OTLP form of ``record``."""
    time_ns = record.time_ns if record.time_ns > 0 else 0
    log.time_unix_nano = time_ns
    log.observed_time_unix_nano = time_ns
    log.severity_number = severity_number(record.level)  # type: ignore[assignment]
    log.severity_text = text(record.level_name)
    log.body.string_value = text(record.message)
    if record.trace_id is not None:
        _set_trace(log, record)
    own = _own(record, text, cache)
    attributes = log.attributes
    extras = record.extras
    if extras:
        taken = () if OWN_ATTRIBUTES.isdisjoint(extras) else {pair.key for pair in own}
        add = attributes.add
        for key, value in extras.items():
            name = text(_key(key))
            if name in taken:
                log.dropped_attributes_count += 1
                continue
            pair = add()
            pair.key = name
            _set_value(pair.value, value, text, 0)
    attributes.extend(own)


def _set_trace(log: LogRecord, record: Record) -> None:
    """The record's trace context on ``log``: the ids as bytes, the flags' low byte."""
    log.trace_id = bytes.fromhex(record.trace_id or "")
    if record.span_id is not None:
        log.span_id = bytes.fromhex(record.span_id)
    log.flags = (record.trace_flags or 0) & 0xFF


def log_record(record: Record, text: Text = _plain) -> LogRecord:
    """One record as an OTLP ``LogRecord`` (see the table in this module's docstring)."""
    log = LogRecord()
    _fill(log, record, text, {})
    return log


def _add_record(logs: Any, record: Record, cache: Cache) -> None:
    """Append ``record`` to the repeated ``logs``; text UTF-8 cannot hold is escaped."""
    try:
        _fill(logs.add(), record, _plain, cache)
    except UnicodeEncodeError:  # lone surrogates somewhere: escape them all
        del logs[-1]
        _fill(logs.add(), record, _escaped, cache)


def dropped_note(count: int, reason: str, time_ns: int) -> LogRecord:
    """The record that says ``count`` records were lost, for ``reason``, at ``time_ns``."""
    reason = _escaped(reason)
    return LogRecord(
        time_unix_nano=time_ns,
        observed_time_unix_nano=time_ns,
        severity_number=SEVERITY_WARN,  # type: ignore[arg-type]
        severity_text="WARNING",
        event_name=DROPPED_EVENT,
        body=AnyValue(string_value=f"rerun-logging dropped {count} records: {reason}"),
        attributes=[
            KeyValue(key="rerun_logging.dropped.count", value=AnyValue(int_value=count)),
            KeyValue(key="rerun_logging.dropped.reason", value=AnyValue(string_value=reason)),
        ],
    )


def resource(
    info: RecordingInfo, settings: Iterable[tuple[str, str]] = (), runtime_name: str = "cpython",
) -> Resource:
    """The resource of a recording: ``info``'s fields, then ``settings`` (they win).

    ``settings`` are the attributes from OTEL_RESOURCE_ATTRIBUTES and
    OTEL_SERVICE_NAME (:attr:`~.config.OtlpSettings.resource`); ``runtime_name`` is the
    running interpreter's (``sys.implementation.name``).
    """
    values: dict[str, AnyValue] = {
        "service.name": AnyValue(string_value=_escaped(info.application_id)),
        "service.instance.id": AnyValue(string_value=_escaped(info.recording_id)),
        "host.name": AnyValue(string_value=_escaped(info.host)),
        "process.pid": AnyValue(int_value=info.pid),
        "process.runtime.name": AnyValue(string_value=runtime_name),
        "process.runtime.version": AnyValue(string_value=_escaped(info.python_version)),
        "telemetry.sdk.name": AnyValue(string_value="rerun-logging"),
        "telemetry.sdk.language": AnyValue(string_value="python"),
        "telemetry.sdk.version": AnyValue(string_value=_escaped(info.package_version)),
    }
    for key, value in settings:
        values[key] = AnyValue(string_value=value)
    return Resource(attributes=[KeyValue(key=key, value=value) for key, value in values.items()])


def export_request(
    resource: Resource, records: Iterable[Record], notes: Sequence[LogRecord] = (),
) -> ExportLogsServiceRequest:
    """One request: ``records`` grouped by logger (one ``ScopeLogs`` each, in the order
    the loggers first appear, records in order), then ``notes`` (:func:`dropped_note`)."""
    by_logger: dict[str, list[Record]] = {}
    for record in records:
        by_logger.setdefault(record.logger, []).append(record)
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.CopyFrom(resource)
    cache: Cache = {}
    for name, group in by_logger.items():
        scope = resource_logs.scope_logs.add()
        scope.scope.name = _escaped(name)
        logs = scope.log_records
        for record in group:
            _add_record(logs, record, cache)
    if notes:
        scope = resource_logs.scope_logs.add()
        scope.scope.name = DROPPED_SCOPE
        scope.log_records.extend(notes)
    return request


def partial_success(body: bytes) -> tuple[int, str]:
    """Records a 2xx response says it rejected, and its message; (0, "") when it says none.

    A body that is not an ``ExportLogsServiceResponse`` (empty, JSON, garbage) rejects none.
    """
    response = ExportLogsServiceResponse()
    try:
        response.ParseFromString(body)
    except DecodeError:
        return 0, ""
    partial = response.partial_success
    return max(int(partial.rejected_log_records), 0), partial.error_message
