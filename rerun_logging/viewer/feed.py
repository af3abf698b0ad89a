"""The web feed: decoded messages to JSON batches for one browser connection.

Sans-I/O, like :mod:`rerun_logging.format`: no sockets, no asyncio, no threads.
A :class:`FeedClient` is the state of one WebSocket client. The shell
(:mod:`.web`) calls :meth:`FeedClient.records` and :meth:`FeedClient.recordings`
as data arrives, then sends what :meth:`FeedClient.data_to_send` returns, each
item one WebSocket text message. One owner (the event loop); not thread-safe.

Messages (JSON objects, one per WebSocket text message)
-------------------------------------------------------

``records`` — a batch of records of one stream, in **columns**: every list below
has one entry per record, in order::

    {"type": "records",
     "recording": str,            recording id
     "pid": int | null,           process of the stream the batch comes from
     "reset": true,               only present when the client must clear its string
                                  table before appending "strings" (table bound hit)
     "strings": [str, ...],       strings to append to the client's string table
     "seq": [int], "time": [int], "ns": [int],
     "level": [int], "level_name": [sid], "logger": [sid], "entity": [sid],
     "message": [str], "template": [sid | null], "extras": [object | null],
     "thread": [int | null], "thread_name": [sid | null],
     "process": [int | null], "process_name": [sid | null], "task": [sid | null],
     "path": [sid], "line": [int], "function": [sid | null],
     "exception": [[row, type, value, traceback], ...],   sparse: rows that have one
     "stack": [[row, text], ...],                         sparse: rows that have one
     "args": [array | object | null]}     the message's arguments; absent when no row has any

- ``time`` is whole milliseconds since the epoch (exact as a JavaScript number,
  ready for ``new Date(time)``) and ``ns`` the nanoseconds within that millisecond,
  so ``time_ns == time * 1_000_000 + ns`` exactly.
- ``sid`` is an index into the client's **string table**. Each client starts with
  an empty table; a message's ``strings`` are appended to it *before* its columns
  are read. Interned are the short, repeating fields (names, paths, templates); the
  message text, extras and tracebacks are sent as they are.
- ``extras`` are JSON values: integers beyond ±(2**53 - 1) (not exact in
  JavaScript), NaN and infinities, bytes and anything else JSON cannot carry are
  sent as their text; map keys are text.

``missed`` — sent before the next batch after the client's outgoing queue
overflowed (its oldest batches were dropped)::

    {"type": "missed", "records": int, "batches": int,
     "reset": true (optional), "strings": [str, ...]}

``records`` and ``batches`` count exactly what was dropped since the last
``missed``. ``strings`` (and ``reset``) are those the dropped batches carried: the
client applies them like a batch's, so its string table stays in step.

``recordings`` — the full list of streams, a snapshot that replaces the last one
(never dropped; only the newest pending snapshot is sent)::

    {"type": "recordings", "recordings": [
        {"recording": str, "application": str, "host": str, "pid": int,
         "start": int (ms since the epoch), "state": "live" | "ended" | "lost",
         "records": int, "dropped": int}, ...]}

``lost`` is a stream whose source went away without an END (a crash).

Encoding: ``json.dumps(..., ensure_ascii=True, allow_nan=False)``. Every string
from a log stays JSON data (the UI renders it as text, never as HTML), and
``ensure_ascii`` writes any non-ASCII character, lone surrogates included, as a
``\\uXXXX`` escape: the output is always ASCII (a valid UTF-8 WebSocket text
message), never raises, and ``json.loads``/``JSON.parse`` give back the exact string.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ..format import Record

if TYPE_CHECKING:
    from .store import RecordingStore

DEFAULT_MAX_BATCHES = 256
"""Batches a client's outgoing queue holds before the oldest are dropped."""
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
"""Bytes of JSON a client's outgoing queue holds before the oldest are dropped."""
DEFAULT_MAX_STRINGS = 65536
"""Entries of a client's string table before it is reset (``"reset": true``)."""
MAX_SAFE_INTEGER = 2**53 - 1
_INTERNED_FIELDS = 9
"""Most new strings one record can add to a table."""
"""Largest integer a JavaScript number holds exactly."""


class RawJSON(str):
    """A value already encoded as JSON text: :func:`to_json` writes it as it is."""


def to_json(message: dict[str, Any]) -> str:
    """``message`` as JSON text: ASCII only, never NaN; see the module docstring.

    Top-level values that are :class:`RawJSON` are spliced in as they are.
    """
    raw = {k: v for k, v in message.items() if isinstance(v, RawJSON)}
    text = _dumps({k: v for k, v in message.items() if k not in raw} if raw else message)
    if not raw:
        return text
    tail = "".join(f",{_dumps(k)}:{v}" for k, v in raw.items())
    return f"{text[:-1]}{tail}}}" if len(text) > 2 else f"{{{tail[1:]}}}"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


_LONG_NUMBER = re.compile(r"\d{16}")
"""16 digits in a row: maybe an integer a JavaScript number cannot hold exactly."""


def json_text(values: list[Any]) -> str:
    """``values`` as JSON text, as :func:`json_value` would make them, fast.

    The common case (plain JSON data, no integer past 2**53) is encoded by the C
    encoder in one call; anything else (bytes, NaN, big integers, odd keys) takes
    the exact path through :func:`json_value`.
    """
    try:
        text = _dumps(values)
    except (TypeError, ValueError, RecursionError):
        return _dumps(json_value(values))
    if _LONG_NUMBER.search(text):
        return _dumps(json_value(values))
    return text


def json_values(values: list[Any]) -> list[Any]:
    """A column of numbers (thread, process ids) made exact for JavaScript."""
    if all(type(v) is int and -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER or v is None for v in values):
        return values
    return [json_value(v) for v in values]


def json_value(value: Any, _depth: int = 0) -> Any:
    """``value`` (as decoded from msgpack) made a JSON value the browser reads exactly.

    Big integers, non-finite floats, bytes and unknown objects become text; map
    keys become text; nesting beyond 64 levels becomes text. Never raises.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth < 64:
        if isinstance(value, dict):
            return {_json_key(k): json_value(v, _depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [json_value(v, _depth + 1) for v in value]
    return _text(value)


def _json_key(key: Any) -> str:
    return key if isinstance(key, str) else _text(key)


def _text(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"


@dataclass(frozen=True)
class StreamSummary:
    """One line of the ``recordings`` message: a stream and its state."""

    recording_id: str
    application_id: str
    host: str
    pid: int
    start_time_ns: int
    state: str
    records: int = 0
    dropped: int = 0

    def as_json(self) -> dict[str, Any]:
        """The JSON object the ``recordings`` message lists."""
        return {
            "recording": self.recording_id,
            "application": self.application_id,
            "host": self.host,
            "pid": self.pid,
            "start": self.start_time_ns // 1_000_000,
            "state": self.state,
            "records": self.records,
            "dropped": self.dropped,
        }


def stream_summaries(store: RecordingStore) -> list[StreamSummary]:
    """The summary of every stream in ``store``, recordings in arrival order."""
    out = []
    for stream in store.streams():
        info = stream.info
        state = "ended" if stream.ended else "live" if stream.connected else "lost"
        out.append(
            StreamSummary(
                info.recording_id, info.application_id, info.host, info.pid,
                info.start_time_ns, state, stream.records, stream.dropped,
            )
        )
    return out


@dataclass(frozen=True)
class _Queued:
    """A batch waiting to be sent, with what dropping it would lose."""

    text: str
    records: int
    reset: bool
    strings: tuple[str, ...]


class FeedClient:
    """One browser connection's feed: its string table and bounded outgoing queue.

    Bounds: at most ``max_batches`` batches and ``max_bytes`` bytes of JSON wait to
    be sent; past either, the oldest are dropped (the newest too, when it alone is
    larger than ``max_bytes``) and counted exactly, and the next
    :meth:`data_to_send` starts with a ``missed`` message. Once the queue is full,
    new records are counted as missed without being encoded (:meth:`skipped`). The string table holds
    at most ``max_strings`` entries (or those of one batch, if more); a batch that
    could overflow it resets it first.
    """

    def __init__(
        self,
        max_batches: int = DEFAULT_MAX_BATCHES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_strings: int = DEFAULT_MAX_STRINGS,
    ) -> None:
        if max_batches < 1 or max_bytes < 1 or max_strings < 1:
            raise ValueError("feed bounds must be positive")
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self.max_strings = max_strings
        self.missed_records = 0
        """Records dropped from this client's queue, ever."""
        self._strings: dict[str, int] = {}
        self._reset_pending = False
        self._queue: deque[_Queued] = deque()
        self._queued_bytes = 0
        self._recordings: str | None = None
        self._missed_records = 0
        self._missed_batches = 0
        self._carried_reset = False
        self._carried_strings: list[str] = []

    # --- input --------------------------------------------------------------------

    def records(self, recording_id: str, records: Sequence[Record], pid: int | None = None) -> None:
        """Queue one ``records`` batch for ``records`` of one stream (none: no batch)."""
        if not records:
            return
        if self.full:
            self.skipped(len(records))
            return
        if len(self._strings) + _INTERNED_FIELDS * len(records) > self.max_strings:
            self._strings.clear()
            self._reset_pending = True
        reset, self._reset_pending = self._reset_pending, False
        new: list[str] = []
        message = self._columns(records, new)
        head: dict[str, Any] = {"type": "records", "recording": recording_id, "pid": pid}
        if reset:
            head["reset"] = True
        head["strings"] = new
        text = to_json({**head, **message})
        self._enqueue(_Queued(text, len(records), reset, tuple(new)))

    def skipped(self, records: int) -> None:
        """Count ``records`` as missed without queueing them (the queue is full).

        A client that does not read costs the server nothing more per record
        than this count: its batches are neither encoded nor queued.
        """
        self._missed_records += records
        self._missed_batches += 1
        self.missed_records += records

    def recordings(self, summaries: Iterable[StreamSummary]) -> None:
        """Set the ``recordings`` snapshot to send next (replaces a pending one)."""
        self._recordings = to_json(
            {"type": "recordings", "recordings": [s.as_json() for s in summaries]}
        )

    # --- output -------------------------------------------------------------------

    def data_to_send(self) -> list[str]:
        """Take every pending message, in order: recordings, missed, batches.

        The caller sends each as one WebSocket text message.
        """
        out = []
        if self._recordings is not None:
            out.append(self._recordings)
            self._recordings = None
        if self._missed_batches:
            missed: dict[str, Any] = {
                "type": "missed",
                "records": self._missed_records,
                "batches": self._missed_batches,
            }
            if self._carried_reset:
                missed["reset"] = True
            missed["strings"] = self._carried_strings
            out.append(to_json(missed))
            self._missed_records = self._missed_batches = 0
            self._carried_reset, self._carried_strings = False, []
        out.extend(item.text for item in self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        return out

    @property
    def pending(self) -> bool:
        """Whether :meth:`data_to_send` has something to give."""
        return bool(self._queue or self._recordings is not None or self._missed_batches)

    @property
    def full(self) -> bool:
        """Whether new batches would only push out old ones: the queue is at its bound,
        or it already dropped batches that the client has not been told about (it has
        not read since)."""
        return (
            self._missed_batches > 0
            or len(self._queue) >= self.max_batches
            or self._queued_bytes >= self.max_bytes
        )

    @property
    def queued_bytes(self) -> int:
        """Bytes of JSON of the batches waiting to be sent."""
        return self._queued_bytes

    @property
    def string_count(self) -> int:
        """Entries in the string table (as the client holds it once all is sent)."""
        return len(self._strings)

    # --- internals ----------------------------------------------------------------

    def _enqueue(self, item: _Queued) -> None:
        self._queue.append(item)
        self._queued_bytes += len(item.text)
        while self._queue and (
            len(self._queue) > self.max_batches or self._queued_bytes > self.max_bytes
        ):
            self._drop(self._queue.popleft())

    def _drop(self, item: _Queued) -> None:
        self._queued_bytes -= len(item.text)
        self._missed_records += item.records
        self._missed_batches += 1
        self.missed_records += item.records
        if item.reset:
            self._carried_reset, self._carried_strings = True, []
        self._carried_strings.extend(item.strings)

    def _sid(self, text: str, new: list[str]) -> int:
        sid = self._strings.get(text)
        if sid is None:
            sid = self._strings[text] = len(self._strings)
            new.append(text)
        return sid

    def _columns(self, records: Sequence[Record], new: list[str]) -> dict[str, Any]:
        """Every column of a batch; ``extras`` and ``args`` already as JSON text."""
        ids = functools.partial(self._interned, new=new)
        times = [r.time_ns for r in records]
        columns: dict[str, Any] = {
            "seq": [r.seq for r in records],
            "time": [t // 1_000_000 for t in times],
            "ns": [t % 1_000_000 for t in times],
            "level": [r.level for r in records],
            "level_name": ids([r.level_name for r in records]),
            "logger": ids([r.logger for r in records]),
            "entity": ids([r.entity_path for r in records]),
            "message": [r.message for r in records],
            "template": ids([r.template for r in records]),
            "thread": json_values([r.thread for r in records]),
            "thread_name": ids([r.thread_name for r in records]),
            "process": json_values([r.process for r in records]),
            "process_name": ids([r.process_name for r in records]),
            "task": ids([r.task_name for r in records]),
            "path": ids([r.path for r in records]),
            "line": [r.line for r in records],
            "function": ids([r.function for r in records]),
            "exception": [
                [row, r.exception.type, r.exception.value, r.exception.traceback]
                for row, r in enumerate(records)
                if r.exception is not None
            ],
            "stack": [[row, r.stack_info] for row, r in enumerate(records) if r.stack_info is not None],
            "extras": RawJSON(json_text([r.extras or None for r in records])),
        }
        if any(r.args for r in records):
            columns["args"] = RawJSON(json_text([r.args or None for r in records]))
        return columns

    def _interned(self, values: list[str | None], new: list[str]) -> list[int | None]:
        """``values`` as string-table ids (None stays None); each distinct value looked up once."""
        table = {v: None if v is None else self._sid(v, new) for v in dict.fromkeys(values)}
        return list(map(table.__getitem__, values))
