"""Records as text for people and as JSON objects for tools. Pure functions, no I/O.

- :func:`text_line` renders one record as a human line (plus its traceback and
  stack, indented), optionally coloured by level.
- :func:`json_fields` renders one record as the object python-json-logger's
  ``JsonFormatter`` would log for it, plus the recording's identity, so a JSON-lines
  pipeline reads a recording like the app's own JSON logs.
- :func:`dropped_line` and :func:`dropped_fields` render a ``Dropped`` message.

Text may hold lone surrogates (the format keeps them); :func:`text_line` passes
them through, so the writer must encode with ``errors="backslashreplace"``. JSON is
safe when dumped with ``ensure_ascii=True`` (the default).
"""

from __future__ import annotations

import logging
import math
import re
import reprlib
import time
from typing import Any

from pythonjsonlogger.defaults import bytes_default

from .format import (
    MAX_FIELD_CHARS, TRUNCATION_MARK, Dropped, Record, RecordingInfo, safe_repr, safe_str,
)

LEVEL_WIDTH = 5
"""Level names are padded to this width (``INFO `` lines up with ``ERROR``)."""
INDENT = "    "
"""Prefix of traceback and stack lines under their record."""
MAX_JSON_DEPTH = 64
"""Deepest nesting of lists and maps :func:`json_value` keeps as JSON (the viewer's feed
keeps as many); deeper values become text behind :data:`TOO_DEEP_MARK`."""
TOO_DEEP_MARK = "…[nested deeper than {} levels] "
"""What starts the text of a value nested too deep for JSON."""
_SHALLOW_REPR = reprlib.Repr()
_SHALLOW_REPR.maxlevel = 8
_SHALLOW_REPR.maxlist = _SHALLOW_REPR.maxtuple = _SHALLOW_REPR.maxdict = 100
_SHALLOW_REPR.maxstring = _SHALLOW_REPR.maxother = 1000

_RESET = "\x1b[0m"
_LEVEL_COLORS = (
    (logging.CRITICAL, "\x1b[1;31m"),  # bold red
    (logging.ERROR, "\x1b[31m"),  # red
    (logging.WARNING, "\x1b[33m"),  # yellow
    (logging.INFO, "\x1b[32m"),  # green
    (logging.NOTSET, "\x1b[2m"),  # dim: DEBUG and below
)
_PLAIN_TEXT = re.compile(r"[\w.:/@+\-]+")
"""Extra values matching this print bare (``user=alice``); others print as ``repr``."""


# --- text ---------------------------------------------------------------------------


def text_line(record: Record, info: RecordingInfo | None, color: bool = False) -> str:
    """One record as text, without a final newline.

    ``2026-11-25 09:12:01.123 INFO  app[4242] app.db: message key=value``, with
    ``trace=<hex> span=<hex>`` last when it was logged in an OpenTelemetry span,
    then the traceback and the stack, each line indented. Times are local, to the
    millisecond. With ``color``, the level is wrapped in an ANSI colour by
    severity (custom levels take the colour of the standard level below them).
    """
    level = record.level_name.ljust(LEVEL_WIDTH)
    if color:
        level = f"{level_color(record.level)}{level}{_RESET}"
    head = f"{local_time(record.time_ns)} {level} {origin(record, info)} {record.logger}:"
    line = f"{head} {record.message}" if record.message else head
    extras = extras_text(record.extras)
    if extras:
        line = f"{line} {extras}"
    trace = trace_text(record)
    if trace:
        line = f"{line} {trace}"
    return "\n".join([line, *detail_lines(record)])


def trace_text(record: Record) -> str:
    """``trace=<32 hex> span=<16 hex>`` for a record logged in a span, else empty."""
    if record.trace_id is None:
        return ""
    if record.span_id is None:
        return f"trace={record.trace_id}"
    return f"trace={record.trace_id} span={record.span_id}"


def local_time(time_ns: int) -> str:
    """``YYYY-MM-DD HH:MM:SS.mmm`` in local time (truncated, never rounded up)."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))
    return f"{stamp}.{nanos // 1_000_000:03d}"


def level_color(level: int) -> str:
    """The ANSI colour sequence for ``level``."""
    for threshold, sequence in _LEVEL_COLORS:
        if level >= threshold:
            return sequence
    return _LEVEL_COLORS[-1][1]


def origin(record: Record, info: RecordingInfo | None) -> str:
    """``app[pid]``: the application of the recording and the record's process."""
    app = info.application_id if info is not None else "?"
    pid = record.process if record.process is not None else (info.pid if info else "?")
    return f"{app}[{pid}]"


def extras_text(extras: dict[Any, Any]) -> str:
    """``key=value`` pairs on one line; values that are not plain words are ``repr``'d."""
    return " ".join(f"{_key_text(key)}={compact_value(value)}" for key, value in extras.items())


def compact_value(value: Any) -> str:
    """A value on one line: bare when it is a plain word or number, else its ``repr``.

    ``repr`` escapes newlines, control characters and lone surrogates, so the
    result never breaks the line.
    """
    if isinstance(value, str) and _PLAIN_TEXT.fullmatch(value):
        return value
    return safe_repr(value)


def detail_lines(record: Record) -> list[str]:
    """The traceback and the stack of ``record``, each line indented."""
    lines: list[str] = []
    if record.exception is not None and record.exception.traceback:
        lines.extend(INDENT + line for line in record.exception.traceback.splitlines())
    if record.stack_info:
        lines.extend(INDENT + line for line in record.stack_info.splitlines())
    return lines


def dropped_line(dropped: Dropped) -> str:
    """A visible line where records were lost: ``-- 12 records dropped: reason --``."""
    noun = "record" if dropped.count == 1 else "records"
    return f"-- {dropped.count} {noun} dropped: {dropped.reason} --"


def stream_line(info: RecordingInfo, number: int) -> str:
    """Where stream ``number`` of a file starts: ``-- stream 2: app[4242] recording R on host, started TIME --``."""
    return (f"-- stream {number}: {info.application_id}[{info.pid}] recording {info.recording_id} "
            f"on {info.host}, started {local_time(info.start_time_ns)} --")


def _key_text(key: Any) -> str:
    """A key bare when it is a plain word, else its ``repr``: a key holding a newline
    (``extra={"a\\nb": 1}``) must not forge a line of its own."""
    return key if isinstance(key, str) and _PLAIN_TEXT.fullmatch(key) else safe_repr(key)


# --- JSON ---------------------------------------------------------------------------


def json_fields(record: Record, info: RecordingInfo | None) -> dict[str, Any]:
    """One record as a JSON-ready dict, named as python-json-logger names it.

    The ``LogRecord`` attributes ``JsonFormatter`` would log (``message``, ``name``,
    ``levelname``, ...; ``exc_info`` holds the formatted traceback and is left out,
    like ``stack_info``, when there is none), then a record's trace context when it
    was logged in an OpenTelemetry span (:func:`trace_fields`: ``trace_id``,
    ``span_id``, ``trace_flags``), then the recording's ``seq``,
    ``entity_path``, ``application_id`` and ``recording_id``, then the extras under
    their own names: an extra wins a clash, and extras whose name starts with ``_``
    are left out, as ``JsonFormatter`` does. Values are made JSON-serializable as
    its ``JsonEncoder`` makes them (bytes as URL-safe base64, dict keys as text).
    """
    fields: dict[str, Any] = {
        "message": record.message,
        "name": record.logger,
        "levelname": record.level_name,
        "levelno": record.level,
        "created": record.time_ns / 1e9,
        "pathname": record.path,
        "lineno": record.line,
        "funcName": record.function,
        "thread": record.thread,
        "threadName": record.thread_name,
        "process": record.process,
        "processName": record.process_name,
    }
    if record.task_name is not None:
        fields["taskName"] = record.task_name
    if record.exception is not None:
        fields["exc_info"] = record.exception.traceback
    if record.stack_info is not None:
        fields["stack_info"] = record.stack_info
    if record.trace_id is not None:
        fields.update(trace_fields(record))
    fields["seq"] = record.seq
    fields["entity_path"] = record.entity_path
    fields["application_id"] = info.application_id if info is not None else None
    fields["recording_id"] = info.recording_id if info is not None else None
    for key, value in record.extras.items():
        name = json_key(key)
        if not name.startswith("_"):
            fields[name] = json_value(value)
    return fields


def trace_fields(record: Record) -> dict[str, Any]:
    """The trace context of a record logged in a span, named as OpenTelemetry names
    it for logs that are not OTLP ("Trace Context in non-OTLP Log Formats"):
    ``trace_id`` and ``span_id`` in lowercase hex, ``trace_flags`` as the W3C
    ``traceflags`` two hex digits (``"01"``: sampled); empty outside a span."""
    if record.trace_id is None:
        return {}
    fields: dict[str, Any] = {"trace_id": record.trace_id}
    if record.span_id is not None:
        fields["span_id"] = record.span_id
    fields["trace_flags"] = f"{record.trace_flags or 0:02x}"
    return fields


def stream_fields(info: RecordingInfo, number: int) -> dict[str, Any]:
    """Where stream ``number`` of a file starts, as a JSON-ready dict (``{"stream": 2, ...}``)."""
    return {
        "stream": number, "application_id": info.application_id,
        "recording_id": info.recording_id, "process": info.pid, "host": info.host,
        "created": info.start_time_ns / 1e9,
    }


def dropped_fields(dropped: Dropped) -> dict[str, Any]:
    """A ``Dropped`` message as a JSON-ready dict: ``{"dropped": N, "reason": ...}``."""
    return {"dropped": dropped.count, "reason": dropped.reason}


def json_value(value: Any, _depth: int = 0) -> Any:
    """``value`` as ``json.dumps`` with python-json-logger's ``JsonEncoder`` would write it.

    A decoded extra holds only msgpack types: bytes become URL-safe base64 text
    (``pythonjsonlogger.defaults.bytes_default``), tuples lists, dict keys text;
    anything else unexpected becomes its ``str``, as the encoder's fallback does.
    Lists and maps nested deeper than :data:`MAX_JSON_DEPTH` become their ``repr``
    behind :data:`TOO_DEEP_MARK` (a peer may send 1,000 levels; ``json.dumps`` would
    hit the recursion limit), so this never raises.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes_default(value)
    if isinstance(value, (dict, list, tuple)) and _depth >= MAX_JSON_DEPTH:
        return too_deep_text(value)
    if isinstance(value, dict):
        return {json_key(k): json_value(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v, _depth + 1) for v in value]
    return safe_str(value)


def too_deep_text(value: Any) -> str:
    """A list or map nested too deep for JSON, as marked text (its ``repr``, capped).

    A value too deep even for ``repr`` shows its first levels (``[[[...]]]``).
    """
    try:
        text = repr(value)
    except RecursionError:
        text = _SHALLOW_REPR.repr(value)
    if len(text) > MAX_FIELD_CHARS:
        text = text[:MAX_FIELD_CHARS] + TRUNCATION_MARK.format(len(text) - MAX_FIELD_CHARS)
    return TOO_DEEP_MARK.format(MAX_JSON_DEPTH) + text


def json_key(key: Any) -> str:
    """A dict key as ``json.dumps`` writes it: ``true``, ``null``, ``1.5``, ``7``, or text."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return _json_float(key)
    if isinstance(key, (bytes, bytearray)):
        return bytes_default(key)
    return safe_str(key)


def _json_float(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return float.__repr__(number)
