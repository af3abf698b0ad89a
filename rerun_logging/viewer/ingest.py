"""The ingest state machine: one per source (TCP connection, file, stdin). Sans-I/O.

:class:`StreamIngest` takes the bytes a source delivers (``receive_data``) and
gives the bytes to send back (``data_to_send``), the convention of the connect
sink's :class:`~..sinks.delivery.DeliveryProtocol`; it touches no socket, file or
clock of its own. Its collaborators are
the :class:`~.store.RecordingStore`, and optionally a :class:`~.savedir.SaveDir`,
a :class:`RecordPrinter` and a ``report`` callable for one-line log messages.

What it does with a stream (the TCP protocol's viewer side)::

    header, INFO frame   decoded fully: the stream's identity (joins its recording)
    every later frame    peeked only (sequence numbers, counts, END), stored raw,
                         saved raw, acknowledged; printed only with --print
    after each chunk     ACK n, n = frames after INFO taken on this source,
                         when n changed
    any RecordingError   REFUSED reason, then the source is finished

A file (a source that is not ``network``) may hold several streams: each header +
INFO starts one, or resumes one this source fed already (two handlers interleaved
on one path), so each run in a file becomes its own stream in the store, as if two
apps had streamed. Its decoder resyncs: a torn frame before the next run is
reported (one line: where, what, how many bytes skipped) and the next run is read.
A network connection carries one stream: a second header there is refused.

What a peer may make the viewer hold or compute is bounded per frame, as the
handler bounds what it writes (``MAX_FIELD_CHARS``, ``MAX_EXTRAS_BYTES``):

- an INFO frame is at most :data:`MAX_INFO_FRAME_SIZE` bytes stored *and*
  inflated; its text fields are cut to :data:`MAX_INFO_CHARS` (a recording id
  keeps a hash of its whole text, so long ids stay distinct), and the INFO frame
  kept for the stream is then re-encoded from the cut fields;
- a frame inflates to at most :func:`payload_limit` of its record count (what
  the handler can write for that many records): a deflate bomb (one record of
  60 MiB in 61 KB) is refused before anything is stored or decoded; from a
  network peer, inflating stops at :data:`MAX_PEER_PAYLOAD_SIZE` whatever the
  count, so a bomb costs at most that much inflating;
- every record decoded for ``--print`` or the web feed passes
  :func:`bounded_messages`: a text field past ``MAX_FIELD_CHARS`` is cut (head and
  tail kept, marked ``…[truncated N chars]`` as the handler marks it), extras
  and arguments past ``MAX_EXTRAS_BYTES`` are cut the handler's way, and the
  ingest counts the records it cut (:attr:`StreamIngest.truncated`).

Frames are decoded in columns: each RECORDS message is one
:class:`~rerun_logging.format.RecordColumns`, bounded column by column
(:func:`bounded_columns`, the same cuts as :func:`bounded_record` makes per record,
a site's fields once per site), with no Python object per record. A printer that
says it takes columns (``columns = True``: the web fanout) is shown them as they
are; any other is shown :class:`~rerun_logging.format.Record` objects
(:func:`record_messages`), exactly as before.

A source that rejoins a stream already in the store (a reconnect resending what
was not acknowledged, a file loaded twice) is de-duplicated: a frame of records
whose first sequence number is behind the stream is acknowledged and not stored
again; a frame without records (DROPPED, END), which has no sequence number, is a
resend when its fingerprint matches one the stream stored recently, as long as
this source has not yet delivered a new frame of records.

:class:`ReadDeadline` turns the ingest's progress into read deadlines: the header
and INFO must arrive within the handshake timeout of the connection's start; a
frame that has started must complete within the frame timeout; between frames
there is none.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import operator
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from ..format import (
    CONTEXT,
    MAX_EXTRAS_BYTES,
    MAX_FIELD_CHARS,
    MAX_FRAME_SIZE,
    MAX_PAYLOAD_SIZE,
    SITE,
    TARGET_PAYLOAD_SIZE,
    CorruptFrame,
    Damage,
    Dropped,
    ExceptionInfo,
    Frame,
    FramePeek,
    Field,
    Message,
    Record,
    RecordColumns,
    RecordingError,
    RecordingInfo,
    StreamDecoder,
    TruncatedStream,
    ack_message,
    encode_frame,
    fit_extras,
    info_message,
    new_packer,
    packb,
    peek_frame,
    refused_message,
    sanitize,
    truncate_text,
)
from .savedir import SaveDir
from .store import RecordingStore, StreamKey, StreamState, frame_mark


MAX_INFO_FRAME_SIZE = 64 * 1024
"""An INFO frame is a few hundred bytes; it is kept per stream, so it is capped
(stored and inflated)."""
MAX_INFO_CHARS = 256
"""Longest text field of an INFO (application id, host, recording id, ...) the
viewer keeps; longer ones are cut (see :func:`bounded_info`)."""
MAX_RECORD_PAYLOAD = 2 * 1024 * 1024
"""Most inflated payload bytes one record may take: the handler's caps (six text
fields of MAX_FIELD_CHARS characters, extras and arguments of MAX_EXTRAS_BYTES)
come to about 1.8 MiB at four bytes a character."""
FRAME_PAYLOAD_SLACK = 1024 * 1024
"""Inflated payload bytes a frame may take beyond its records' share (its sites
and contexts tables, DROPPED and END messages)."""
MAX_PEER_PAYLOAD_SIZE = max(TARGET_PAYLOAD_SIZE, MAX_RECORD_PAYLOAD) + FRAME_PAYLOAD_SLACK
"""Most bytes a frame from a network peer may inflate to, whatever its record count:
writers split a batch whose payload passes TARGET_PAYLOAD_SIZE (a single record is
smaller), so an honest frame never comes near. The decoder stops inflating there,
which bounds the CPU a deflate bomb costs (the per-record check comes after)."""


class RecordPrinter(Protocol):
    """Receives the decoded messages of every stored frame (``--print``, the web UI).

    A printer that is false (``bool(printer)``, e.g. no web client connected, or
    every client's queue full) is skipped for that frame, which is then not decoded
    at all; it is told how many records it skipped.

    A printer with a true ``columns`` attribute is shown each RECORDS message as one
    :class:`~rerun_logging.format.RecordColumns` (no object per record); without
    it, as :class:`~rerun_logging.format.Record` objects.
    """

    def show(self, info: RecordingInfo, messages: Sequence[Message]) -> None:
        """Print ``messages`` of the stream ``info`` started."""

    def skipped(self, info: RecordingInfo, records: int) -> None:
        """A frame of ``records`` records was stored while the printer was false."""


def _ignore(text: str) -> None:
    """The default ``report``: say nothing."""


@dataclass
class FedStream:
    """One stream this source fed: its store key, INFO, records added, resend detection."""

    key: StreamKey
    info: RecordingInfo
    records: int = 0
    resent: Counter[bytes] | None = None


class StreamIngest:
    """One source's stream into the store: ``receive_data``, then send back ``data_to_send()``.

    ``source`` names the source in decoder errors (``tcp 127.0.0.1:5555``, a path);
    ``name`` names it in report lines (``127.0.0.1:5555``). ``network`` sources
    are refused (a REFUSED message) on errors; files are not answered. After an
    error, or :meth:`close`, :attr:`finished` is true and ``receive_data`` does
    nothing: the caller sends what :meth:`data_to_send` still returns and closes
    the source.
    """

    def __init__(
        self,
        source: str,
        store: RecordingStore,
        *,
        name: str | None = None,
        saver: SaveDir | None = None,
        printer: RecordPrinter | None = None,
        report: Callable[[str], None] = _ignore,
        network: bool = True,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> None:
        self.source = source
        self.name = name if name is not None else source
        self.store = store
        self.saver = saver
        self.printer = printer
        self.report = report
        self.network = network
        self.info: RecordingInfo | None = None
        self.key: StreamKey | None = None
        self.acked = 0
        """Frames after INFO taken (stored or recognised as duplicates)."""
        self.records = 0
        """Records this source added to the store."""
        self.duplicates = 0
        """Frames this source resent that the store already had."""
        self.truncated = 0
        """Records decoded from this source whose fields were cut to the caps."""
        self.error: RecordingError | None = None
        self.finished = False
        self._decoder = StreamDecoder(
            source, max_frame_size=max_frame_size, resync=not network,
            max_payload_size=MAX_PEER_PAYLOAD_SIZE if network else MAX_PAYLOAD_SIZE,
            columns=True,
        )
        self._streams: dict[StreamKey, FedStream] = {}
        self._current: FedStream | None = None
        self._headers = 0
        self._damage_told = 0
        self._closed = False
        self._acked_sent = 0
        self._refusal: list[bytes] = []

    # --- progress (for deadlines) -----------------------------------------------

    @property
    def handshaken(self) -> bool:
        """Whether the header and the INFO frame have arrived."""
        return self.info is not None

    @property
    def partial_frame_at(self) -> int | None:
        """Stream offset of a frame that has started to arrive, or None between frames."""
        return self._decoder.offset if self._decoder.pending else None

    @property
    def received(self) -> int:
        """Bytes received so far."""
        return self._decoder.offset + self._decoder.pending

    # --- input ------------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Take ``data`` from the source; then send back what :meth:`data_to_send` returns.

        On a RecordingError the frames before the fault stay taken (and
        acknowledged), a REFUSED message is due for a network source, one line
        is reported, and the ingest is finished (later data is ignored).
        """
        if self.finished:
            return
        self._decoder.feed(data)
        try:
            self._take_frames()
        except RecordingError as error:
            self._refusal = self._refuse(error)
        finally:
            self._report_damage()
            if self.saver is not None:
                self.saver.flush()

    def data_to_send(self) -> list[bytes]:
        """The replies due since the last call: ``ACK n`` when ``n`` changed, then a REFUSED.

        Replies not taken are coalesced (ACK is cumulative), so a caller that
        sends nothing back (a file, the serve sink's own stream) holds at most one
        ACK and one REFUSED here.
        """
        out: list[bytes] = []
        if self.acked != self._acked_sent:
            self._acked_sent = self.acked
            out.append(encode_frame(ack_message(self.acked)))
        if self._refusal:
            out += self._refusal
            self._refusal = []
        return out

    def feed(self, data: bytes) -> list[bytes]:
        """:meth:`receive_data` then :meth:`data_to_send`, in one call (for tests and scripts)."""
        self.receive_data(data)
        return self.data_to_send()

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished frame held for this source."""
        return self._decoder.pending

    def refuse(self, reason: str) -> list[bytes]:
        """Refuse the source for a reason of the caller's (a viewer-wide limit); as on an error.

        Returns the REFUSED reply itself (call :meth:`data_to_send` first: an ACK
        due goes before it)."""
        if self.finished:
            return []
        return self._refuse(RecordingError(reason, self.source, self.received))

    def close(self, *, quiet: bool = False) -> None:
        """The source ended (EOF, reset, timeout, shutdown): finish and say how it ended.

        A torn tail (the source stopped inside a frame) is reported as one line;
        the frames before it stay. ``quiet`` reports nothing (shutdown, a timeout
        the caller already reported).
        """
        if self._closed:
            return
        self._closed = True
        torn: RecordingError | None = None
        if not self.finished:
            try:
                self._decoder.close()
                self._take_frames()  # a file: the streams after a torn frame
            except TruncatedStream as error:
                torn = error
            except RecordingError as error:
                self._refuse(error)
            finally:
                self._report_damage()
                if self.saver is not None:
                    self.saver.flush()
        self.finished = True
        lines = [] if quiet or self.error is not None else self._closing_lines(torn)
        self._release_streams()
        for line in lines:
            self.report(line)

    # --- frames -----------------------------------------------------------------

    def _take_frames(self) -> None:
        """Every whole frame: the first after each stream header is its INFO."""
        decoder = self._decoder
        for frame in decoder.frames():
            if decoder.headers != self._headers:
                self._headers = decoder.headers
                self._start(frame)
            else:
                self._take(frame)

    def _take(self, frame: Frame) -> None:
        peek = self._peek(frame)
        limit = payload_limit(peek.records)
        if len(frame.payload) > limit:
            raise CorruptFrame(
                f"frame inflates to {len(frame.payload)} bytes for {peek.records} "
                f"record{'' if peek.records == 1 else 's'}, more than a writer within the "
                f"field caps can produce ({limit} bytes)",
                self.source, frame.offset,
            )
        assert self.key is not None
        if self._is_resent(frame, peek):
            self.duplicates += 1
        else:
            self._keep(frame, peek)
        self.acked += 1

    def _start(self, frame: Frame) -> None:
        """The first frame after a header: one INFO message, which opens (or rejoins) the stream."""
        if self.network and self._streams:
            raise CorruptFrame(
                "a second stream header on one connection (a connection carries one stream)",
                self.source, frame.offset,
            )
        size = max(len(frame.raw), len(frame.payload))
        if size > MAX_INFO_FRAME_SIZE:
            raise CorruptFrame(
                f"INFO frame of {size} bytes, the limit is {MAX_INFO_FRAME_SIZE}",
                self.source, frame.offset,
            )
        messages = list(self._decoder.decode_payload(frame))
        if len(messages) != 1 or not isinstance(messages[0], RecordingInfo):
            raise CorruptFrame(
                "the first frame must hold one INFO message", self.source, frame.offset
            )
        check_info(messages[0], self.source, frame.offset)
        info = bounded_info(messages[0])
        info_frame = frame.raw if info == messages[0] else encode_frame(info_message(info))
        stream = self.store.open_stream(info, info_frame)
        self.info, self.key = info, stream.key
        fed = self._streams.get(stream.key)
        if fed is not None:  # a stream this source fed resumes (another one wrote between)
            self._current = fed
            return
        fed = self._current = self._streams[stream.key] = FedStream(stream.key, info)
        self.store.attach(stream.key)
        rejoined = stream.frames_stored > 0
        if rejoined:
            fed.resent = Counter(self.store.recent_marks(stream.key))
        if self.saver is not None:
            self.saver.open_stream(stream.key, info, info_frame)
        if self.network:
            again = ", resuming its stream" if rejoined else ""
            self.report(f"{self.name}: {describe_stream(stream)} connected{again}")

    def _peek(self, frame: Frame) -> FramePeek:
        try:
            return peek_frame(frame.payload)
        except ValueError as error:
            raise CorruptFrame(
                f"frame payload does not decode: {error}", self.source, frame.offset
            ) from None

    def _is_resent(self, frame: Frame, peek: FramePeek) -> bool:
        """Whether ``frame`` is one the stream already stored (see the module docstring)."""
        assert self.key is not None and self._current is not None
        fed = self._current
        if peek.first_seq is not None:
            if self.store.is_duplicate(self.key, peek):
                return True
            fed.resent = None  # new records: whatever follows is new too
            return False
        if fed.resent is None:
            return False
        mark = frame_mark(frame.raw)
        if fed.resent[mark] > 0:
            fed.resent[mark] -= 1
            return True
        return False

    def _keep(self, frame: Frame, peek: FramePeek) -> None:
        assert self.key is not None and self.info is not None
        printer = self.printer
        wanted = printer is not None and bool(printer)
        messages = None
        if wanted:
            messages, cut = bounded_messages(
                list(self._decoder.decode_payload(frame)), len(frame.payload)
            )
            self.truncated += cut
            if not getattr(printer, "columns", False):
                messages = record_messages(messages)
        self.store.add_frame(self.key, frame.raw, peek)
        self.records += peek.records
        if self._current is not None:
            self._current.records += peek.records
        if self.saver is not None:
            self.saver.append(self.key, frame.raw)
            if peek.ended:
                self.saver.end(self.key)
        if printer is None:
            return
        if messages:
            printer.show(self.info, messages)
        elif not wanted and peek.records:
            printer.skipped(self.info, peek.records)

    # --- errors and reports -----------------------------------------------------

    def _release_streams(self) -> None:
        """Every stream this source fed is no longer fed (it shows as disconnected)."""
        for key in self._streams:
            if self.saver is not None:
                self.saver.release(key)
            self.store.detach(key)
        self._streams.clear()
        self._current = None
        self.key = None

    def _report_damage(self) -> None:
        """One line per span the decoder skipped to reach the next stream of a file."""
        damage = self._decoder.damage
        while self._damage_told < len(damage):
            d = damage[self._damage_told]
            self._damage_told += 1
            self.report(f"{self.name}: damaged at byte {d.offset}: {d.error.reason}; skipped "
                        f"{d.skipped} bytes, reading on with the stream at byte {d.resumed_at}")

    @property
    def damage(self) -> list[Damage]:
        """The spans of a file skipped to reach a later stream (torn or corrupt frames)."""
        return list(self._decoder.damage)

    def _refuse(self, error: RecordingError) -> list[bytes]:
        self.error = error
        self.finished = True
        self._release_streams()
        if self.network:
            self.report(f"refused {self.name}: at byte {error.offset}: {error.reason}")
            return [encode_frame(refused_message(str(error)))]
        self.report(
            f"{self.name}: at byte {error.offset}: {error.reason}; the frames before it are kept"
        )
        return []

    def _closing_lines(self, torn: RecordingError | None) -> list[str]:
        """How the source ended: one line, or for a file of several streams one per stream."""
        if self.info is None or self.key is None:
            if torn is None or self.received == 0:
                return []  # nothing sent at all: a port probe, not a stream
            return [f"{self.name}: closed before its stream started: at byte {torn.offset}: {torn.reason}"]
        if len(self._streams) < 2:
            return [self._closing_line(torn)]
        streams = list(self._streams.values())
        lines = [f"{self.name}: loaded {len(streams)} streams"]
        for fed in streams:
            last = fed is self._current
            lines.append(self._closing_line(torn if last else None, fed))
        return lines

    def _closing_line(self, torn: RecordingError | None, fed: FedStream | None = None) -> str:
        fed = fed if fed is not None else self._current
        assert fed is not None
        stream = self.store.stream(fed.key)
        if isinstance(torn, TruncatedStream):
            how = (f"closed inside a frame (torn tail at byte {torn.offset}: {torn.reason}); "
                   "the frames before it are kept")
        elif stream.ended:
            how = "ended cleanly"
        else:
            how = "no END message (the app may reconnect)" if self.network else "no END message"
        counts = f"{fed.records if len(self._streams) > 1 else self.records} records"
        if self.duplicates:
            counts += f", {self.duplicates} resent frames skipped"
        if self.truncated:
            counts += f", {self.truncated} records cut to the field caps"
        if self.network:
            return f"{self.name}: {describe_stream(stream)} disconnected: {how}; {counts}"
        return f"{self.name}: loaded {describe_stream(stream)}: {counts}; {how}"


def describe_stream(stream: StreamState) -> str:
    """``app[pid] (recording ID)`` for report lines, escaped to stay one line."""
    info = stream.info
    return f"{one_line(info.application_id)}[{info.pid}] (recording {one_line(info.recording_id)})"


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with control characters escaped and cut to ``limit``: a peer cannot forge lines."""
    if text.isprintable() and len(text) <= limit:
        return text
    escaped = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


def check_info(info: RecordingInfo, source: str, offset: int) -> None:
    """Refuse an INFO whose identity fields do not have the types the format states.

    The store keys streams by these values and the save directory names files
    after them, so a peer must not be able to put a list where a pid goes.
    """
    expected: tuple[tuple[str, type], ...] = (
        ("application_id", str), ("recording_id", str), ("pid", int),
        ("start_time_ns", int), ("host", str),
    )
    for field_name, kind in expected:
        value = getattr(info, field_name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CorruptFrame(
                f"INFO field {field_name} is a {type(value).__name__}, not a {kind.__name__}",
                source, offset,
            )
    if not info.recording_id:
        raise CorruptFrame("INFO has an empty recording id", source, offset)


def payload_limit(records: int) -> int:
    """Most bytes a frame of ``records`` records may inflate to (see the module docstring)."""
    return FRAME_PAYLOAD_SLACK + records * MAX_RECORD_PAYLOAD


def bounded_info(info: RecordingInfo) -> RecordingInfo:
    """``info`` with every text field cut to :data:`MAX_INFO_CHARS` (``info`` itself when none is longer).

    Text is cut as the handler cuts a field (head and tail kept, marked); a
    recording id, which keys the store, keeps its first characters and a hash of
    the whole id instead, so two long ids never merge.
    """
    changes: dict[str, Any] = {}
    for name in ("application_id", "host", "python_version", "package_version", "entity_prefix"):
        value = getattr(info, name)
        if isinstance(value, str) and len(value) > MAX_INFO_CHARS:
            changes[name] = truncate_text(value, MAX_INFO_CHARS)
    if not isinstance(info.python_version, str):
        changes["python_version"] = truncate_text(str(info.python_version), MAX_INFO_CHARS)
    if not isinstance(info.package_version, str):
        changes["package_version"] = truncate_text(str(info.package_version), MAX_INFO_CHARS)
    if not isinstance(info.entity_prefix, str):
        changes["entity_prefix"] = ""
    if len(info.recording_id) > MAX_INFO_CHARS:
        digest = hashlib.blake2b(
            info.recording_id.encode("utf-8", "surrogatepass"), digest_size=16
        ).hexdigest()
        changes["recording_id"] = f"{info.recording_id[:MAX_INFO_CHARS - 34]}…{digest}"
    return dataclasses.replace(info, **changes) if changes else info


_TEXT_FIELDS = (
    "message", "template", "stack_info", "logger", "entity_path", "level_name", "path",
    "function", "thread_name", "process_name", "task_name",
)


def bounded_messages(messages: list[Message], payload_size: int) -> tuple[list[Message], int]:
    """``messages`` of one frame with every record within the handler's caps, and how many were cut.

    Records may come one by one (:class:`Record`, :func:`bounded_record`) or in
    columns (:class:`RecordColumns`, :func:`bounded_columns`); the cuts are the same.
    ``payload_size`` is the frame's inflated size: a frame no larger than
    MAX_FIELD_CHARS bytes cannot hold a field past a cap, so it is returned as it
    is, unchecked (the common case costs nothing).
    """
    if payload_size <= MAX_FIELD_CHARS:
        return messages, 0
    out: list[Message] = []
    cut = 0
    for message in messages:
        if isinstance(message, Record):
            bounded = bounded_record(message)
            cut += bounded is not message
            message = bounded
        elif isinstance(message, RecordColumns):
            message, rows_cut = bounded_columns(message)
            cut += rows_cut
        elif isinstance(message, Dropped) and len(message.reason) > MAX_FIELD_CHARS:
            message = Dropped(message.count, truncate_text(message.reason))
        out.append(message)
    return out, cut


def bounded_record(record: Record) -> Record:
    """``record`` within the handler's caps: itself when it is, else a cut copy (see the module docstring)."""
    changes: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = getattr(record, name)
        if value is not None and len(value) > MAX_FIELD_CHARS:
            changes[name] = truncate_text(value)
    if record.exception is not None:
        exception = _bounded_exception(record.exception)
        if exception is not record.exception:
            changes["exception"] = exception
    extras = _bounded_extras(record.extras)
    if extras is not record.extras:
        changes["extras"] = extras
    args = _bounded_call_args(record.args)
    if args is not record.args:
        changes["args"] = args
    return dataclasses.replace(record, **changes) if changes else record


def record_messages(messages: Sequence[Message]) -> list[Message]:
    """``messages`` with each :class:`RecordColumns` replaced by its records: for the
    readers that want one :class:`Record` per record (``--print``, tests, tools)."""
    out: list[Message] = []
    for message in messages:
        if isinstance(message, RecordColumns):
            out.extend(message.records())
        else:
            out.append(message)
    return out


def bounded_columns(columns: RecordColumns) -> tuple[RecordColumns, int]:
    """``columns`` within the handler's caps, and how many of its rows were cut.

    Each row comes out as :func:`bounded_record` makes the record it stands for (the
    round-trip tests check it), but the work is per column: a site's or a context's
    fields are cut once for every row logged there, and a per-row column is only
    walked row by row when a cheap C-level bound (its longest text, its rows' packed
    size) says some row may be past a cap. Returns ``columns`` itself when nothing
    is cut.
    """
    count = len(columns)
    sites, cut_sites = _bounded_table(columns.sites, _SITE_TEXTS)
    ctxs, cut_ctxs = _bounded_table(columns.ctxs, _CONTEXT_TEXTS)
    messages, cut_messages = _bounded_texts(columns.messages)
    exceptions, cut_exceptions = _bounded_exceptions(columns.exceptions, count)
    stacks, cut_stacks = _bounded_stacks(columns.stacks, count)
    extras, cut_extras = _bounded_values(columns.extras, _bounded_extras)
    args, cut_args = _bounded_values(columns.args, _bounded_arg_row)
    cut_rows = {*cut_messages, *cut_exceptions, *cut_stacks, *cut_extras, *cut_args}
    for table_cut, rows in ((cut_sites, columns.site_rows), (cut_ctxs, columns.ctx_rows)):
        if table_cut:
            cut_rows.update(itertools.compress(range(count), map(table_cut.__contains__, rows)))
    if not cut_rows:
        return columns, 0
    bounded = dataclasses.replace(
        columns, sites=sites, ctxs=ctxs, messages=messages, exceptions=exceptions,
        stacks=stacks, extras=extras, args=args,
    )
    return bounded, len(cut_rows)


_PER_ROW_BUDGET = MAX_FIELD_CHARS // 9
"""Packed bytes below which a value cannot pass :func:`_size_over`'s budget: that walk
counts at most 9 for each packed byte (a text's character is at least one byte, a
number or nil at least one, a map or array header at least one)."""


def _text_fields(fields: tuple[Field, ...]) -> tuple[int, ...]:
    """Where the text fields of a ``sites`` or ``ctxs`` row are (text or nil on the wire)."""
    return tuple(
        at for at, f in enumerate(fields)
        if f.types is str or (isinstance(f.types, tuple) and str in f.types)
    )


_SITE_TEXTS = _text_fields(SITE)
_CONTEXT_TEXTS = _text_fields(CONTEXT)


def _bounded_table(rows: list[list[Any]], texts: tuple[int, ...]) -> tuple[list[list[Any]], set[int]]:
    """A ``sites`` or ``ctxs`` table with its text fields (at ``texts``) cut, and the
    rows cut. Fields after a row's schema fields are ignored (as readers ignore them).

    Only text (names, paths, the template, the function) can pass a cap there. A
    frame may hold a site per record, so the longest text is found first by one
    C-level pass; only a table that has one past the cap is walked row by row.
    """
    fields = itertools.chain.from_iterable(map(operator.itemgetter(*texts), rows))
    if max(map(len, filter(None, fields)), default=0) <= MAX_FIELD_CHARS:
        return rows, set()
    out = list(rows)
    cut: set[int] = set()
    for index, row in enumerate(rows):
        if any(row[at] is not None and len(row[at]) > MAX_FIELD_CHARS for at in texts):
            out[index] = [truncate_text(v) if at in texts and v is not None else v
                          for at, v in enumerate(row)]
            cut.add(index)
    return out, cut


def _bounded_texts(texts: list[str]) -> tuple[list[str], list[int]]:
    """A text column (the messages) with every text cut, and the rows cut."""
    if not texts or max(map(len, texts)) <= MAX_FIELD_CHARS:
        return texts, []
    rows = [row for row, text in enumerate(texts) if len(text) > MAX_FIELD_CHARS]
    out = list(texts)
    for row in rows:
        out[row] = truncate_text(out[row])
    return out, rows


def _bounded_exceptions(
    exceptions: dict[int, ExceptionInfo], count: int
) -> tuple[dict[int, ExceptionInfo], list[int]]:
    """The ``exc`` table with the exceptions of rows ``0 .. count-1`` cut, and those rows."""
    rows = [
        row for row, e in exceptions.items()
        if 0 <= row < count and _bounded_exception(e) is not e
    ]
    if not rows:
        return exceptions, []
    out = dict(exceptions)
    for row in rows:
        out[row] = _bounded_exception(out[row])
    return out, rows


def _bounded_exception(exception: ExceptionInfo) -> ExceptionInfo:
    """``exception`` with each text cut to the cap (itself when none is past it)."""
    e = exception
    if max(len(e.type), len(e.value), len(e.traceback)) <= MAX_FIELD_CHARS:
        return e
    return ExceptionInfo(truncate_text(e.type), truncate_text(e.value), truncate_text(e.traceback))


def _bounded_stacks(stacks: dict[int, str], count: int) -> tuple[dict[int, str], list[int]]:
    """The ``stack`` table with the stacks of rows ``0 .. count-1`` cut, and those rows."""
    rows = [row for row, text in stacks.items() if 0 <= row < count and len(text) > MAX_FIELD_CHARS]
    if not rows:
        return stacks, []
    out = dict(stacks)
    for row in rows:
        out[row] = truncate_text(out[row])
    return out, rows


def _bounded_values(
    values: list[Any], bound: Callable[[Any], Any]
) -> tuple[list[Any], list[int]]:
    """An ``extras`` or ``args`` column with each row that may be past the caps given to
    ``bound`` (which returns the row cut, or the row itself), and the rows it changed.

    Which rows may be: those whose packed size passes :data:`_PER_ROW_BUDGET`, measured
    in one C-level pass; a value that cannot be packed (never from a decoder) sends
    every row to ``bound``.
    """
    if not any(values):  # no row has any (a frame without arguments)
        return values, []
    pack = new_packer().pack
    try:
        sizes = list(map(len, map(pack, values)))
    except Exception:
        sizes = [_PER_ROW_BUDGET + 1] * len(values)
    if not sizes or max(sizes) <= _PER_ROW_BUDGET:
        return values, []
    out = values
    rows = []
    for row, size in enumerate(sizes):
        if size > _PER_ROW_BUDGET:
            value = values[row]
            bounded = bound(value)
            if bounded is not value:
                if out is values:
                    out = list(values)
                out[row] = bounded
                rows.append(row)
    return out, rows


def _bounded_extras(extras: dict[Any, Any] | None) -> dict[Any, Any] | None:
    """A row of the ``extra`` column as :func:`bounded_record` cuts a record's extras."""
    if extras and _size_over(extras, MAX_FIELD_CHARS):
        fitted = fit_extras(extras)
        if fitted != extras:
            return fitted
    return extras


def _bounded_arg_row(arg: Any) -> Any:
    """A row of the ``args`` column as :func:`bounded_record` cuts a record's arguments
    (the row as stored: a list or a map; cut arguments come back a list or a map)."""
    if not arg:
        return arg
    args = tuple(arg) if isinstance(arg, list) else arg
    bounded = _bounded_call_args(args)
    if bounded is args:
        return arg
    return list(bounded) if isinstance(bounded, tuple) else bounded


def _bounded_call_args(args: Any) -> Any:
    """A record's arguments (a tuple or a map) as :func:`bounded_record` cuts them:
    themselves when within the caps."""
    if args and _size_over(args, MAX_FIELD_CHARS):
        bounded = _bounded_args(args)
        if bounded != args:
            return bounded
    return args


def _size_over(value: Any, budget: int) -> bool:
    """Whether ``value`` (decoded msgpack) may pack to more than ``budget`` bytes: a rough, early-stopping walk."""
    stack = [value]
    size = 0
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            size += len(item) + 1
        elif isinstance(item, dict):
            size += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            size += 1
            stack.extend(item)
        else:
            size += 9
        if size > budget:
            return True
    return False


def _bounded_args(args: tuple[Any, ...] | dict[Any, Any]) -> tuple[Any, ...] | dict[Any, Any]:
    """Arguments cut the handler's way: each text cut; past MAX_EXTRAS_BYTES, one note instead."""
    clean = sanitize(args)
    if len(packb(clean)) <= MAX_EXTRAS_BYTES:
        return tuple(clean) if isinstance(clean, list) else clean
    return (f"…[{len(args)} arguments left out: record over {MAX_EXTRAS_BYTES} bytes]",)


@dataclass(frozen=True)
class Deadline:
    """The monotonic time by which the next read must return, and what it waits for."""

    at: float
    reason: str


class ReadDeadline:
    """When a connection's next read times out, from its ingest's progress. Pure.

    ``opened_at`` is when the connection was accepted. Call :meth:`next` before
    each read with the current monotonic time.
    """

    def __init__(self, handshake_timeout: float, frame_timeout: float, opened_at: float) -> None:
        self.handshake_timeout = handshake_timeout
        self.frame_timeout = frame_timeout
        self.opened_at = opened_at
        self._frame: tuple[int, float] | None = None

    def next(self, ingest: StreamIngest, now: float) -> Deadline | None:
        """The deadline of the next read, or None when the stream is between frames."""
        if not ingest.handshaken:
            return Deadline(
                self.opened_at + self.handshake_timeout,
                f"no stream header and INFO frame within {self.handshake_timeout:g}s",
            )
        offset = ingest.partial_frame_at
        if offset is None:
            self._frame = None
            return None
        if self._frame is None or self._frame[0] != offset:
            self._frame = (offset, now)
        return Deadline(
            self._frame[1] + self.frame_timeout,
            f"the frame at byte {offset} did not complete within {self.frame_timeout:g}s",
        )
