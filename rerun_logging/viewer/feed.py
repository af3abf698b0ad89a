"""The web feed: decoded messages to JSON batches for one browser connection.

Sans-I/O, like :mod:`rerun_logging.format`: no sockets, no asyncio, no threads.
A :class:`FeedClient` is the state of one WebSocket client. The shell
(:mod:`.web`) calls :meth:`FeedClient.records` and :meth:`FeedClient.recordings`
as data arrives, then sends what :meth:`FeedClient.data_to_send` returns, each
item one WebSocket text message. One owner (the event loop); not thread-safe.

Records come in columns (:class:`~rerun_logging.format.RecordColumns`, one per
RECORDS message, as the ingest decodes them) and the batch's JSON columns are made
from them without a Python object per record: a site's fields (logger, level,
path, template, ...) and a context's (thread, process, task) are interned once per
site or context and spread over the rows by C-level loops. :class:`Record` objects
(the snapshot, tests) are turned into columns first (``RecordColumns.of``); the
JSON is the same either way.

Messages (JSON objects, one per WebSocket text message)
-------------------------------------------------------

``records`` — a batch of records, in **columns**: every list below has one entry
per record, in order::

    {"type": "records",
     "recording": str,            recording id
     "pid": int | null,           process of the stream the batch comes from
     "streams": [[str, int | null], ...],  only in a batch of several streams (a
     "stream": [int],             snapshot): each row's [recording, pid] is
                                  streams[stream[row]]; "recording" and "pid" are
                                  then those of the first row
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
     "args": [array | object | null],     the message's arguments; absent when no row has any
     "trace": [[row, trace_id, span_id | null, flags], ...]}  sparse: the rows logged in an
                                  OpenTelemetry span (ids lowercase hex, flags an int);
                                  absent when no row has one

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

Binary ``records`` batches (pages)
---------------------------------

A page's feed (``FeedClient(binary=True)``, what :mod:`.web` makes) sends each batch
as one WebSocket **binary** message instead: :data:`BATCH_TAG`, then one msgpack map
(see :func:`binary_batch`). It carries the frame's own ``sites`` and ``ctxs`` tables
with a row index per record instead of a column per field spread over the rows, the
numeric columns as the bytes of typed arrays (the page views them, no work per
value), and the messages, extras and arguments as the JSON text the JSON batch
holds (``JSON.parse`` makes them exactly as before, and its strings and objects are
the smallest the page's heap holds). No string table: a batch names its own strings
(a site's, a few per batch). Making one costs about half of the JSON batch, which is
what brings 1M records into an open page within issue 14's budget. The page
(``static/msgpack.js``, ``batch.js``) reads it into the same rows as a JSON batch;
:func:`read_batch` is its reference here. A batch that cannot be packed exactly (a
lone surrogate in a site's name, a number past the typed columns) goes as JSON.

``missed`` — sent before the next batch after the client's outgoing queue
overflowed (its oldest batches were dropped)::

    {"type": "missed", "records": int, "batches": int,
     "reset": true (optional), "strings": [str, ...]}

``records`` and ``batches`` count exactly what was dropped since the last
``missed``. ``strings`` (and ``reset``) are those the dropped batches carried: the
client applies them like a batch's, so its string table stays in step. A client
that joins and is not sent every record the viewer holds (its snapshot is bounded,
see :func:`queue_snapshot`) gets a ``missed`` whose ``older`` (counted in
``records`` too) says exactly how many older records it was not sent.

``recordings`` — the streams. The first one a client gets lists them all; a later
one lists them all again only when most changed, else (``"update": true``) only the
entries that are new or changed since the last, and the keys of those the viewer
no longer holds (evicted whole).
Never dropped; pending changes are merged and sent as one message::

    {"type": "recordings", "update": true (absent in the first),
     "recordings": [
        {"recording": str, "application": str, "host": str, "pid": int,
         "start": int (ms since the epoch), "start_ns": int,
         "state": "live" | "ended" | "lost", "records": int, "dropped": int}, ...],
     "removed": [[recording, pid, start_ns], ...] (only in an update)}

An entry's key is ``(recording, pid, start_ns)``. ``lost`` is a stream whose source
went away without an END (a crash). The viewer cuts the text of INFO fields to
256 characters, so an entry is at most a few KiB of JSON and an update costs what
changed, not the whole list.

Encoding: ``json.dumps(..., ensure_ascii=True, allow_nan=False)``. Every string
from a log stays JSON data (the UI renders it as text, never as HTML), and
``ensure_ascii`` writes any non-ASCII character, lone surrogates included, as a
``\\uXXXX`` escape: the output is always ASCII (a valid UTF-8 WebSocket text
message), never raises, and ``json.loads``/``JSON.parse`` give back the exact string.
"""

from __future__ import annotations

import json
import math
import operator
import re
import sys
from array import array
from collections import deque
from dataclasses import dataclass
from itertools import repeat
from typing import TYPE_CHECKING, Any, Iterable, Sequence, Tuple, Union

import msgpack

from ..format import (
    CONTEXT_FIELDS, SITE_FIELDS, Record, RecordColumns, RecordingError, stored_decoder,
)
from .ingest import bounded_messages

if TYPE_CHECKING:
    from .store import RecordingStore, StoredFrame

DEFAULT_MAX_BATCHES = 512
"""Batches a client's outgoing queue holds before the oldest are dropped."""
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
"""Bytes of JSON a client's outgoing queue holds before the oldest are dropped.

64 MiB since the feed went columnar (issue 14): the viewer now makes a page's JSON
about three times faster than Chromium on two cores takes it in, so a burst of 1M
records sent at full speed (``bench_browser.py``) left 32 MiB behind and the tab
missed records; 64 MiB holds that burst. At most 32 pages (``MAX_CLIENTS``) bound the
viewer's worst case at 2 GiB of queued JSON, reached only by 32 tabs that all stall."""
DEFAULT_MAX_STRINGS = 65536
"""Entries of a client's string table before it is reset (``"reset": true``)."""
DEFAULT_MAX_STRING_CHARS = 8 * 1024 * 1024
"""Characters of a client's string table past which it is reset before the next batch."""
SNAPSHOT_RECORDS = 100_000
"""Most records a client that joins gets from what the store holds (the newest)."""
SNAPSHOT_BATCH = 1000
"""Most records in one ``records`` batch of a snapshot."""
MAX_SAFE_INTEGER = 2**53 - 1
"""Largest integer a JavaScript number holds exactly."""
_INTERNED_FIELDS = 9
"""Most new strings one record can add to a table."""

BATCH_TAG = b"\x00RLB"
"""What starts a binary ``records`` batch. A downloaded file (the other binary
message a page gets, :mod:`.export`) starts with the format's magic, never NUL."""

Source = Tuple[str, "int | None"]
"""Which stream a record of a batch comes from: ``(recording id, pid)``."""


class RawJSON(str):
    """A value already encoded as JSON text: :func:`to_json` writes it as it is, after
    the other values of its message."""


class InlineJSON(str):
    """A value already encoded as JSON text that :func:`to_json` writes as it is, in its
    place (a batch's columns spread from its sites: see :meth:`FeedClient._spread`)."""


def to_json(message: dict[str, Any]) -> str:
    """``message`` as JSON text: ASCII only, never NaN; see the module docstring.

    Top-level values that are :class:`RawJSON` are spliced in as they are, after the
    others; :class:`InlineJSON` values are spliced in where they are. The text is
    what ``json.dumps`` gives for the decoded values in that order.
    """
    raw = {k: v for k, v in message.items() if isinstance(v, RawJSON)}
    rest = {k: v for k, v in message.items() if k not in raw} if raw else message
    if any(isinstance(v, InlineJSON) for v in rest.values()):
        text = "{" + ",".join(
            f"{_dumps(k)}:{v if isinstance(v, InlineJSON) else _dumps(v)}" for k, v in rest.items()
        ) + "}"
    else:
        text = _dumps(rest)
    if not raw:
        return text
    tail = "".join(f",{_dumps(k)}:{v}" for k, v in raw.items())
    return f"{text[:-1]}{tail}}}" if len(text) > 2 else f"{{{tail[1:]}}}"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


_LONG_NUMBER = re.compile(r"\d{16}")
"""16 digits in a row: maybe an integer a JavaScript number cannot hold exactly."""
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_SIXTEEN_DIGITS = b"0" * 16


def _has_long_number(text: str) -> bool:
    """Whether the ASCII JSON ``text`` holds 16 digits in a row (:data:`_LONG_NUMBER`).

    The same test as ``_LONG_NUMBER.search(text)``, by C loops: every digit made
    ``0``, then one substring search; about twenty times faster than the regex,
    which tries a match at each position of a column of thousands of rows."""
    return _SIXTEEN_DIGITS in text.encode("ascii").translate(_DIGITS_AS_ZERO)


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
    if _has_long_number(text):
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

    @property
    def key(self) -> tuple[str, int, int]:
        """Which stream this entry describes: ``(recording, pid, start_ns)``."""
        return (self.recording_id, self.pid, self.start_time_ns)

    def as_json(self) -> dict[str, Any]:
        """The JSON object the ``recordings`` message lists."""
        return {
            "recording": self.recording_id,
            "application": self.application_id,
            "host": self.host,
            "pid": self.pid,
            "start": self.start_time_ns // 1_000_000,
            "start_ns": self.start_time_ns,
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

    text: Union[str, bytes]
    """The message: JSON text, or a binary batch (:func:`binary_batch`)."""
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
    could overflow it resets it first; so does the batch after one that took it
    past ``max_string_chars`` characters. The recordings list costs what changed
    (:meth:`recordings`).
    """

    def __init__(
        self,
        max_batches: int = DEFAULT_MAX_BATCHES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_strings: int = DEFAULT_MAX_STRINGS,
        max_string_chars: int = DEFAULT_MAX_STRING_CHARS,
        binary: bool = False,
    ) -> None:
        if min(max_batches, max_bytes, max_strings, max_string_chars) < 1:
            raise ValueError("feed bounds must be positive")
        self.binary = binary
        """Whether batches go as binary messages (:func:`binary_batch`): a page's do."""
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self.max_strings = max_strings
        self.max_string_chars = max_string_chars
        self.missed_records = 0
        """Records dropped from this client's queue, ever."""
        self._strings: dict[str, int] = {}
        self._string_chars = 0
        self._reset_pending = False
        self._queue: deque[_Queued] = deque()
        self._queued_bytes = 0
        self._recordings: list[StreamSummary] | None = None
        self._listed: dict[tuple[str, int, int], StreamSummary] | None = None
        self._older = 0
        self._missed_records = 0
        self._missed_batches = 0
        self._carried_reset = False
        self._carried_strings: list[str] = []

    # --- input --------------------------------------------------------------------

    def records(
        self, recording_id: str, records: RecordColumns | Sequence[Record], pid: int | None = None
    ) -> None:
        """Queue one ``records`` batch for ``records`` of one stream (none: no batch).

        ``records`` is one RECORDS message's :class:`RecordColumns` (the fast path) or
        a list of :class:`Record` (turned into columns first)."""
        self._batch(_as_columns(records), (recording_id, pid), None)

    def mixed_records(
        self, records: RecordColumns | Sequence[Record], sources: Sequence[Source]
    ) -> None:
        """Queue one batch of records of several streams: ``sources[i]`` is ``records[i]``'s."""
        if len(sources) != len(records):
            raise ValueError("one source per record")
        if not records:
            return
        columns = _as_columns(records)
        distinct = list(dict.fromkeys(sources))
        if len(distinct) == 1:
            self._batch(columns, distinct[0], None)
            return
        index = {source: i for i, source in enumerate(distinct)}
        self._batch(columns, distinct[0], {
            "streams": [list(source) for source in distinct],
            "stream": list(map(index.__getitem__, sources)),
        })

    def left_out(self, records: int) -> None:
        """Say (in the next ``missed``) that ``records`` older records were not sent at all.

        Unlike :meth:`skipped`, this does not make the queue :attr:`full`.
        """
        if records > 0:
            self._older += records
            self.missed_records += records

    def _batch(self, records: RecordColumns, source: Source, streams: dict[str, Any] | None) -> None:
        if not records:
            return
        if self.full:
            self.skipped(len(records))
            return
        if self.binary:
            data = binary_batch(records, source, streams)
            if data is not None:
                self._enqueue(_Queued(data, len(records), False, ()))
                return
        if (len(self._strings) + _INTERNED_FIELDS * len(records) > self.max_strings
                or self._string_chars > self.max_string_chars):
            self._strings.clear()
            self._string_chars = 0
            self._reset_pending = True
        reset, self._reset_pending = self._reset_pending, False
        new: list[str] = []
        message = self._columns(records, new)
        self._string_chars += sum(map(len, new))
        head: dict[str, Any] = {"type": "records", "recording": source[0], "pid": source[1]}
        if streams is not None:
            head.update(streams)
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
        """Set the streams as they are now (replaces a pending list; cheap: nothing is encoded).

        :meth:`data_to_send` sends the first list whole, and after it only what
        changed since the list sent last (or nothing, when nothing did).
        """
        self._recordings = list(summaries)

    def _recordings_message(self) -> str | None:
        """The pending ``recordings`` message: the whole list first, then changes only."""
        summaries, self._recordings = self._recordings, None
        if summaries is None:
            return None
        listed = {s.key: s for s in summaries}
        previous, self._listed = self._listed, listed
        if previous is not None:
            changed = [s for key, s in listed.items() if previous.get(key) != s]
            removed = [list(key) for key in previous if key not in listed]
            if not changed and not removed:
                return None
            if len(changed) + len(removed) < len(listed):
                return to_json({"type": "recordings", "update": True,
                                "recordings": [s.as_json() for s in changed], "removed": removed})
        return to_json({"type": "recordings", "recordings": [s.as_json() for s in summaries]})

    # --- output -------------------------------------------------------------------

    def data_to_send(self) -> list[str | bytes]:
        """Take every pending message, in order: recordings, missed, batches.

        The caller sends each as one WebSocket message: text (JSON) or binary (a
        binary batch).
        """
        out: list[str | bytes] = []
        recordings = self._recordings_message()
        if recordings is not None:
            out.append(recordings)
        if self._missed_batches or self._older:
            missed: dict[str, Any] = {
                "type": "missed",
                "records": self._missed_records + self._older,
                "batches": self._missed_batches,
            }
            if self._older:
                missed["older"] = self._older
            if self._carried_reset:
                missed["reset"] = True
            missed["strings"] = self._carried_strings
            out.append(to_json(missed))
            self._missed_records = self._missed_batches = self._older = 0
            self._carried_reset, self._carried_strings = False, []
        out.extend(item.text for item in self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        return out

    @property
    def pending(self) -> bool:
        """Whether :meth:`data_to_send` has something to give."""
        return bool(
            self._queue or self._recordings is not None or self._missed_batches or self._older
        )

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
        """Bytes of the batches waiting to be sent (JSON, or binary batches)."""
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

    def _columns(self, records: RecordColumns, new: list[str]) -> dict[str, Any]:
        """Every column of a batch; ``extras`` and ``args`` already as JSON text.

        Per-row columns are taken as they are; the fields of the ``sites`` and
        ``ctxs`` tables are made JSON once per site and context (:meth:`_spread`),
        strings interned in the order the rows first use them; the sparse tables
        keep the rows of the batch, in order.
        """
        spread = self._spread(records, new)
        ms, ns = _split_times(records.times)
        columns: dict[str, Any] = {
            "seq": records.seqs,
            "time": ms,
            "ns": ns,
            "level": spread["level"],
            "level_name": spread["level_name"],
            "logger": spread["logger"],
            "entity": spread["entity"],
            "message": records.messages,
            "template": spread["template"],
            "thread": spread["thread"],
            "thread_name": spread["thread_name"],
            "process": spread["process"],
            "process_name": spread["process_name"],
            "task": spread["task"],
            "path": spread["path"],
            "line": spread["line"],
            "function": spread["function"],
            **_sparse_columns(records),
        }
        columns.update((key, RawJSON(text)) for key, text in _data_json(records).items())
        return columns

    def _spread(self, records: RecordColumns, new: list[str]) -> dict[str, Any]:
        """The batch columns that come from the ``sites`` and ``ctxs`` tables
        (:data:`_SPREAD`), one entry per row, as :class:`InlineJSON` text.

        Each field is made JSON once per site or context: ``"sid"`` interns the text
        (None stays None), ``"int"`` makes numbers exact for JavaScript
        (:func:`json_values`), ``"raw"`` takes the value as it is; the JSON texts of
        those values are then spread over the rows by C-level ``map`` and ``join``
        (:func:`_spread_json`): no number is encoded per row. Only the table rows the
        batch uses count, in the order it first uses them, and the columns are
        interned in :data:`_SPREAD` order: the string table grows exactly as a
        record-by-record walk of the batch would grow it.
        """
        tables = {
            "site": _used_fields(records.sites, records.site_rows),
            "ctx": _used_fields(records.ctxs, records.ctx_rows),
        }
        out: dict[str, list[Any]] = {}
        for column, table_name, at, how in _SPREAD:
            used, fields, rows = tables[table_name]
            values: list[Any] = list(fields[at]) if fields else []
            if how == "sid":
                values = self._interned(values, new)
            elif how == "int":
                values = json_values(values)
            out[column] = _spread_json(values, used, rows)
        return out

    def _interned(self, values: list[str | None], new: list[str]) -> list[int | None]:
        """``values`` as string-table ids (None stays None); each distinct value looked up once."""
        table = {v: None if v is None else self._sid(v, new) for v in dict.fromkeys(values)}
        return list(map(table.__getitem__, values))


# --- binary batches ------------------------------------------------------------------

_pack = msgpack.Packer(use_bin_type=True, autoreset=True).pack
"""Strict: a text that is not valid UTF-8 (a lone surrogate in a name or a traceback)
raises, and the batch goes as JSON, which carries it exactly."""
_SITE_WIDTH = len(SITE_FIELDS)
_CONTEXT_WIDTH = len(CONTEXT_FIELDS)


def binary_batch(records: RecordColumns, source: Source, streams: dict[str, Any] | None) -> bytes | None:
    """The binary ``records`` batch of ``records`` (:data:`BATCH_TAG` + a msgpack map),
    or None when it cannot be packed exactly (the JSON batch then goes instead).

    The map: ``recording``, ``pid`` (and ``streams``/``stream`` as in a JSON batch of
    several streams); ``seq`` and ``time`` (ms) as float64 arrays, ``ns`` as uint32;
    ``sites`` (rows in ``SITE_FIELDS`` order) with ``site``, each record's row, and
    ``ctxs`` (``CONTEXT_FIELDS``) with ``ctx``, both uint32 arrays; ``message``,
    ``extras`` and ``args`` (only when a row has any): JSON text, the JSON batch's
    columns; ``exception``, ``stack`` and ``trace`` as in JSON. No Python work per
    record but the time split: C loops make every column.
    """
    try:
        return BATCH_TAG + _pack(_binary_body(records, source, streams))
    except (ValueError, TypeError, OverflowError):  # UnicodeEncodeError is a ValueError
        return None


def _binary_body(records: RecordColumns, source: Source, streams: dict[str, Any] | None) -> dict[str, Any]:
    """The map of :func:`binary_batch`; OverflowError for a number past its typed column."""
    ms, ns = _split_times(records.times)
    body: dict[str, Any] = {"recording": source[0], "pid": source[1]}
    if streams is not None:
        body.update(streams)
    body.update({
        "seq": _typed("d", records.seqs),
        "time": _typed("d", ms),
        "ns": _typed("I", ns),
        "sites": [site[:_SITE_WIDTH] for site in records.sites],
        "site": _typed("I", records.site_rows),
        "ctxs": [ctx[:_CONTEXT_WIDTH] for ctx in records.ctxs],
        "ctx": _typed("I", records.ctx_rows),
        "message": json_text(records.messages),
        **_data_json(records),
        **_sparse_columns(records),
    })
    return body


def _split_times(times: list[int]) -> tuple[list[int], list[int]]:
    """Times in ns as whole ms and the ns within each (both batches' ``time`` and ``ns``)."""
    return (list(map(operator.floordiv, times, repeat(1_000_000))),
            list(map(operator.mod, times, repeat(1_000_000))))


def _sparse_columns(records: RecordColumns) -> dict[str, Any]:
    """A batch's ``exception`` and ``stack`` tables, and ``trace`` when a row has one:
    the rows that have one, in order (both batches hold them alike)."""
    count = len(records)
    out: dict[str, Any] = {
        "exception": [
            [row, e.type, e.value, e.traceback] for row, e in _sparse(records.exceptions, count)
        ],
        "stack": [[row, text] for row, text in _sparse(records.stacks, count)],
    }
    traces = [[row, *trace] for row, trace in _sparse(records.traces, count)]
    if traces:
        out["trace"] = traces
    return out


def _data_json(records: RecordColumns) -> dict[str, str]:
    """A batch's ``extras``, and ``args`` when a row has any, as JSON text (both batches')."""
    out = {"extras": json_text(_or_none(records.extras))}
    if any(records.args):
        out["args"] = json_text(_or_none(records.args))
    return out


def _typed(code: str, values: Iterable[int]) -> bytes:
    """A column as the bytes of a little-endian typed array (``d``: float64, ``I``:
    uint32), which the page views with no work per value. OverflowError for a value
    the type cannot hold (the batch then goes as JSON)."""
    column = array(code, values)
    if sys.byteorder == "big":
        column.byteswap()
    return column.tobytes()


def _untyped(code: str, data: bytes) -> list[int]:
    """A column made by :func:`_typed`, back as integers."""
    column = array(code)
    column.frombytes(data)
    if sys.byteorder == "big":
        column.byteswap()
    return [int(v) for v in column]


def read_message(data: str | bytes) -> dict[str, Any]:
    """One message of the feed as the page reads it: JSON text, or a binary batch
    (:func:`read_batch`). ValueError for a binary message that is not a batch (a
    downloaded file: see :mod:`.export`)."""
    return json.loads(data) if isinstance(data, str) else read_batch(data)


def read_batch(data: bytes) -> dict[str, Any]:
    """A binary batch as the page reads it (``static/msgpack.js`` and ``store.js``):
    the reference the tests hold the page to, and a reader for tools.

    Returns the JSON batch's columns with strings in place of string-table ids
    (``logger``, ``level_name``, ``entity``, ``template``, ``thread_name``,
    ``process_name``, ``task``, ``path``, ``function``), one entry per record, and
    numbers past what JavaScript holds exactly as their text (as in JSON). ValueError
    if ``data`` is not one.
    """
    if not data.startswith(BATCH_TAG):
        raise ValueError("not a binary records batch")
    body = msgpack.unpackb(data[len(BATCH_TAG):], raw=False, strict_map_key=False)
    if not isinstance(body, dict) or body.get("recording") is None:
        raise ValueError("not a binary records batch")
    messages = json.loads(body["message"])
    sites, ctxs = body["sites"], body["ctxs"]
    out: dict[str, Any] = {"type": "records", "recording": body["recording"], "pid": body["pid"]}
    for key in ("streams", "stream"):
        if key in body:
            out[key] = body[key]
    out.update({"seq": _untyped("d", body["seq"]), "time": _untyped("d", body["time"]),
                "ns": _untyped("I", body["ns"]), "message": messages})
    site_rows, ctx_rows = _untyped("I", body["site"]), _untyped("I", body["ctx"])
    for column, table, at, _ in _SPREAD:
        rows, index = (sites, site_rows) if table == "site" else (ctxs, ctx_rows)
        out[column] = [json_value(rows[i][at]) for i in index]
    out["extras"] = json.loads(body["extras"])
    if "args" in body:
        out["args"] = json.loads(body["args"])
    out["exception"] = body["exception"]
    out["stack"] = body["stack"]
    if "trace" in body:
        out["trace"] = body["trace"]
    return out


def _as_columns(records: RecordColumns | Sequence[Record]) -> RecordColumns:
    """``records`` as columns (:class:`Record` objects through ``RecordColumns.of``,
    whose records share their sites and contexts: each is made JSON once)."""
    return records if isinstance(records, RecordColumns) else RecordColumns.of(records)


def _used_fields(
    table: list[list[Any]], rows: list[int]
) -> tuple[list[int] | None, list[tuple[Any, ...]], list[int]]:
    """The table rows that ``rows`` use, in the order they are first used, transposed
    (``fields[at]``: field ``at`` of each), and ``rows``. The first item is those table
    rows' indexes, or None when they are ``0, 1, 2, ...`` (a writer's usual order:
    ``fields[at]`` is then indexed by the table row itself)."""
    used = list(dict.fromkeys(rows))
    fields = list(zip(*map(table.__getitem__, used)))
    return (None if used == list(range(len(used))) else used), fields, rows


def _spread_json(values: list[Any], used: list[int] | None, rows: list[int]) -> Any:
    """The JSON column of ``rows``, ``values`` being the field of each table row used
    (``used``: their indexes; None: ``0, 1, 2, ...``), as :class:`InlineJSON`.

    The values are numbers, None, or the text of big integers (ids, levels, lines
    made exact), whose JSON holds no comma: one ``json.dumps`` of them, split at the
    commas, gives each value's text, joined per row in C. Anything else (never from a
    decoder) is spread as values, for ``json.dumps`` to encode per row."""
    texts = _dumps(values)[1:-1].split(",") if values else []
    if len(texts) != len(values):
        texts = values  # a comma inside a value: spread the values themselves
    lookup = texts if used is None else dict(zip(used, texts))
    spread = list(map(lookup.__getitem__, rows))
    return InlineJSON(f"[{','.join(spread)}]") if texts is not values else spread


def _sparse(table: dict[int, Any], count: int) -> list[tuple[int, Any]]:
    """The entries of a sparse table (``exc``, ``stack``, ``trace``) of rows
    ``0 .. count-1``, by row: a row outside the batch names no record."""
    rows = sorted(int(row) for row in table if 0 <= row < count)
    return [(row, table[row]) for row in rows]


def _or_none(values: list[Any]) -> list[Any]:
    """A column of maps or lists with its empty ones as None (as the page reads "none")."""
    return [value or None for value in values]


def _spread_field(column: str, field: str, how: str) -> tuple[str, str, int, str]:
    """One entry of :data:`_SPREAD`: where the record field ``field`` is in its table."""
    if field in SITE_FIELDS:
        return (column, "site", SITE_FIELDS.index(field), how)
    return (column, "ctx", CONTEXT_FIELDS.index(field), how)


_SPREAD: tuple[tuple[str, str, int, str], ...] = tuple(
    _spread_field(*entry) for entry in (
        ("level", "level", "raw"),
        ("level_name", "level_name", "sid"),
        ("logger", "logger", "sid"),
        ("entity", "entity_path", "sid"),
        ("template", "template", "sid"),
        ("thread", "thread", "int"),
        ("thread_name", "thread_name", "sid"),
        ("process", "process", "int"),
        ("process_name", "process_name", "sid"),
        ("task", "task_name", "sid"),
        ("path", "path", "sid"),
        ("line", "line", "raw"),
        ("function", "function", "sid"),
    )
)
"""The batch columns that come from a site or a context: ``(column, table, field
index, how)``, in the order the strings are interned (the order the batch's
columns were always interned in: the string table depends on it)."""


# --- the snapshot of a client that joins ------------------------------------------------


def queue_snapshot(
    feed: FeedClient, store: RecordingStore, max_records: int = SNAPSHOT_RECORDS,
    max_bytes: int | None = None,
) -> int:
    """Queue what a client that joins starts with; return how many records it was sent.

    The recordings list, then the newest records the store holds, at most
    ``max_records`` and about ``max_bytes`` bytes of JSON (default: the feed's
    queue bound), oldest first in arrival order, in batches of
    :data:`SNAPSHOT_BATCH` that mix streams as they arrived (so interleaved
    streams cost no more batches than one). Every record held and not sent is
    counted: :meth:`FeedClient.left_out`, reported in the client's next
    ``missed`` as ``older``; a batch the queue drops past its bound is counted as
    missed, as always. The newest are kept whenever something must go.
    """
    feed.recordings(stream_summaries(store))
    budget = feed.max_bytes if max_bytes is None else max_bytes
    sources, records = newest_records(store, max_records, budget)
    for start in range(0, len(records), SNAPSHOT_BATCH):
        end = start + SNAPSHOT_BATCH
        feed.mixed_records(records[start:end], sources[start:end])
    held = sum(stream.records_held for stream in store.streams())
    feed.left_out(held - len(records))
    return len(records)


def newest_records(
    store: RecordingStore, max_records: int, max_bytes: int
) -> tuple[list[Source], list[Record]]:
    """The newest records held, at most ``max_records`` and about ``max_bytes`` of JSON, oldest first.

    Walks the frames newest first, decoding each (within the field caps, see
    :func:`.ingest.bounded_messages`) and keeping its newest records while both
    budgets last. Returns each record's source beside the records. A frame that
    does not decode (never expected: frames are checked on the way in) is skipped.
    """
    segments: list[tuple[Source, list[Record]]] = []
    count = size = 0
    seen: set[str] = set()
    for frame in store.newest_frames():
        if not frame.records:
            continue
        if count >= max_records or size >= max_bytes:
            break
        taken: list[Record] = []
        full = False
        for record in reversed(_frame_records(frame)):
            cost = estimated_json_size(record, seen)
            if count + 1 > max_records or size + cost > max_bytes:
                full = True
                break
            taken.append(record)
            count += 1
            size += cost
        if taken:
            taken.reverse()
            segments.append(((frame.key.recording_id, frame.key.pid), taken))
        if full:
            break
    segments.reverse()
    sources: list[Source] = []
    records: list[Record] = []
    for source, rows in segments:
        sources.extend([source] * len(rows))
        records.extend(rows)
    return sources, records


def _frame_records(frame: StoredFrame) -> list[Record]:
    decoder = stored_decoder("<snapshot>", frame.raw)
    try:
        (whole,) = decoder.frames()
        messages, _ = bounded_messages(list(decoder.decode_payload(whole)), len(whole.payload))
    except (RecordingError, ValueError):
        return []
    return [m for m in messages if isinstance(m, Record)]


_INTERNED = ("level_name", "logger", "entity_path", "template", "thread_name",
             "process_name", "task_name", "path", "function")


def estimated_json_size(record: Record, seen: set[str] | None = None) -> int:
    """About how many bytes of batch JSON ``record`` takes (ASCII text; an estimate, cheap).

    Its interned strings count once per ``seen`` set (the string table sends each once).
    """
    size = 150 + len(record.message)
    if seen is not None:
        for name in _INTERNED:
            text = getattr(record, name)
            if text is not None and text not in seen:
                seen.add(text)
                size += len(text) + 3
    if record.exception is not None:
        e = record.exception
        size += 20 + len(e.type) + len(e.value) + len(e.traceback)
    if record.stack_info is not None:
        size += 12 + len(record.stack_info)
    if record.trace_id is not None:
        size += 70
    if record.extras:
        size += _json_size(record.extras)
    if record.args:
        size += _json_size(record.args)
    return size


def _json_size(value: Any) -> int:
    """About the bytes of ``value`` as JSON (decoded msgpack: no cycles)."""
    size = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            size += len(item) + 3
        elif isinstance(item, dict):
            size += 2 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            size += 2 + len(item)
            stack.extend(item)
        else:
            size += 8
    return size
