"""Reading recordings: the thin I/O shell around :class:`format.StreamDecoder`.

Files, ``-`` (standard input) and files still being written are read in chunks and
fed to the one decoder; nothing here parses bytes itself. Errors are the decoder's
(:class:`format.RecordingError` and its subclasses) plus ``OSError`` when a source
cannot be opened.

- :func:`read_batches` yields the messages of each chunk as a list, so a caller
  can flush its output once per chunk (what ``rerun-logging print`` does).
- :func:`read_messages` yields messages one by one.
- :func:`verify` reads a whole file and returns a :class:`VerifyReport`.

A file may hold several streams (one per run appended to a reused save path, or
interleaved ones of two handlers): the decoder resumes each by its INFO. Readers
here decode with ``resync``, so a run killed mid-frame does not hide the run
appended after it: the skipped bytes come out as a :class:`format.Damage` message
and reading goes on.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

from .format import (
    Damage,
    DecodedStream,
    Dropped,
    Message,
    Record,
    RecordingError,
    RecordingInfo,
    StreamDecoder,
    TruncatedStream,
    stream_id,
)

STDIN = "-"
"""The source name that means standard input."""
STDIN_NAME = "<stdin>"
"""How standard input is named in errors and reports."""
CHUNK_SIZE = 256 * 1024
"""Bytes read per call: large enough to be cheap, small enough to show progress."""
POLL_INTERVAL = 0.1
"""Seconds between checks for growth when following a file."""


def source_name(source: str) -> str:
    """The name errors use for ``source``: the path, or ``<stdin>`` for ``-``."""
    return STDIN_NAME if source == STDIN else source


@contextlib.contextmanager
def open_source(source: str) -> Iterator[BinaryIO]:
    """``source`` opened for binary reading: a path, or ``-`` for standard input.

    Standard input is not closed on exit. Raises ``OSError`` when a path cannot be
    opened (missing, a directory, no permission).
    """
    if source == STDIN:
        yield _transcoded(sys.stdin.buffer, STDIN_NAME, time.time_ns())
        return
    with open(source, "rb") as stream:
        yield _transcoded(stream, source, os.stat(stream.fileno()).st_mtime_ns)


def is_otlp_json(head: bytes) -> bool:
    """Whether a file starting with ``head`` is OTLP JSON lines (ours start with magic bytes)."""
    return head.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] == b"{"


def _transcoded(stream: BinaryIO, name: str, now_ns: int) -> BinaryIO:
    """``stream``, or our stream bytes for it when it is an OTLP JSON lines file
    (:mod:`rerun_logging.otlp.files`: the OpenTelemetry file exporter's format).

    Told by its first byte (``{``; ours start with magic bytes). Reading one needs
    the ``rerun-logging[otlp]`` extra, imported only then: :class:`RecordingError`
    naming it when it is missing.
    """
    peek = getattr(stream, "peek", None)
    if peek is None or not is_otlp_json(peek(64)[:64]):
        return stream
    try:
        from .otlp import files
    except ImportError as error:
        raise RecordingError(f"{name}: an OTLP JSON file; reading one needs the "
                             f"rerun-logging[otlp] extra ({error})") from None
    return io.BufferedReader(files.TranscodedFile(stream, name, now_ns), 1 << 20)  # type: ignore[return-value]


def read_batches(
    source: str,
    *,
    follow: bool = False,
    chunk_size: int = CHUNK_SIZE,
    poll_interval: float = POLL_INTERVAL,
) -> Iterator[list[Message]]:
    """The messages of ``source`` (a path or ``-``), one list per chunk read.

    Without ``follow``, reads to the end of input and raises ``TruncatedStream`` if
    it ends inside a frame. With ``follow``, a file that stops growing is polled
    every ``poll_interval`` seconds (partial frames stay buffered meanwhile) until
    its END message arrives (see :func:`follow_done`) or the user interrupts
    (KeyboardInterrupt); standard input is a pipe, so there ``follow`` changes
    nothing: its end is the end. Everything yielded before an error is valid;
    damage that a later stream's header ends is yielded as a ``Damage`` message.
    """
    with open_source(source) as stream:
        yield from read_stream(
            stream,
            source_name(source),
            follow=follow and source != STDIN,
            chunk_size=chunk_size,
            poll_interval=poll_interval,
        )


def read_messages(
    source: str,
    *,
    follow: bool = False,
    chunk_size: int = CHUNK_SIZE,
    poll_interval: float = POLL_INTERVAL,
) -> Iterator[Message]:
    """The messages of ``source`` one by one; see :func:`read_batches`."""
    for batch in read_batches(
        source, follow=follow, chunk_size=chunk_size, poll_interval=poll_interval
    ):
        yield from batch


def read_stream(
    stream: BinaryIO,
    name: str,
    *,
    follow: bool = False,
    chunk_size: int = CHUNK_SIZE,
    poll_interval: float = POLL_INTERVAL,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[list[Message]]:
    """The messages of an open binary ``stream``, one list per chunk that made some.

    ``name`` names the stream in errors. An empty read is the end of input, unless
    ``follow``: then it means "not written yet", and the reader sleeps and tries
    again until END or KeyboardInterrupt. ``sleep`` is there for tests.
    """
    decoder = StreamDecoder(name, resync=True)
    read = _chunk_reader(stream)
    while True:
        try:
            chunk = read(chunk_size)
            if not chunk:
                if not follow:
                    decoder.close()
                    yield from _decoded(decoder)  # what follows a torn last frame
                    return
                sleep(poll_interval)
                continue
        except KeyboardInterrupt:
            if follow:
                return
            raise
        decoder.feed(chunk)
        yield from _decoded(decoder)
        if follow and follow_done(decoder):
            return


def follow_done(decoder: StreamDecoder) -> bool:
    """Whether following can stop: the stream written last has ended, nothing is pending,
    and every other stream of that process (its other handlers) has ended too.

    Earlier runs in the file (other recording ids) do not count: a run that was
    killed never writes its END.
    """
    if not decoder.ended or decoder.pending:
        return False
    current = decoder.stream
    if current is None:
        return True
    rec, pid, _ = stream_id(current.info)
    return all(s.ended for key, s in decoder.streams.items() if key[:2] == (rec, pid))


def _decoded(decoder: StreamDecoder) -> Iterator[list[Message]]:
    """At most one list: every message the decoder can give now.

    When the decoder fails part-way, the messages before the failure are yielded
    first and the error is raised after them, so a reader shows all that is valid.
    """
    batch: list[Message] = []
    try:
        for message in decoder.messages():
            batch.append(message)
    except RecordingError:
        if batch:
            yield batch
        raise
    if batch:
        yield batch


def _chunk_reader(stream: BinaryIO) -> Callable[[int], bytes]:
    """``read1`` when the stream has it: it returns what a pipe holds without waiting to fill."""
    read1 = getattr(stream, "read1", None)
    return read1 if callable(read1) else stream.read


# --- verify -------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordingSummary:
    """Which run a recording came from, as its INFO message says."""

    application_id: str
    recording_id: str
    pid: int
    host: str

    @classmethod
    def of(cls, info: RecordingInfo) -> RecordingSummary:
        """The summary of one INFO message."""
        return cls(info.application_id, info.recording_id, info.pid, info.host)


@dataclass(frozen=True)
class StreamReport:
    """One stream of a recording as :func:`verify` found it (all its segments together)."""

    recording: RecordingSummary
    version: tuple[int, int]
    records: int
    dropped: int
    ended: bool


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found in a recording.

    ``version`` is the format version of the first header (None when unreadable);
    ``records`` counts the records decoded and ``dropped`` the records the writers
    reported lost, over every stream. ``streams`` has one entry per stream (a file
    a save path was reused for holds one per run) and ``recordings`` one per INFO
    identity seen. ``ended`` says every stream's END was seen. ``damage`` lists the
    torn or corrupt spans that a later stream header ended (their records are lost,
    the records after them counted). ``error`` is the decoder's error: a
    ``TruncatedStream`` for a torn tail, another ``RecordingError`` for a corrupt
    stream; its ``offset`` is the first byte that could not be decoded and
    everything before it was counted.
    """

    source: str
    version: tuple[int, int] | None
    recordings: tuple[RecordingSummary, ...]
    records: int
    dropped: int
    ended: bool
    error: RecordingError | None = None
    streams: tuple[StreamReport, ...] = ()
    damage: tuple[Damage, ...] = ()

    @property
    def clean(self) -> bool:
        """Every stream decoded to its END, with no error and no damage."""
        return self.ended and self.error is None and not self.damage

    @property
    def torn(self) -> bool:
        """The stream stops inside a frame: the writer was cut off mid-write."""
        return isinstance(self.error, TruncatedStream)

    @property
    def corrupt(self) -> bool:
        """The stream holds bytes that are not a valid frame (checksum, size, magic, ...)."""
        return self.error is not None and not self.torn

    @property
    def damaged(self) -> bool:
        """Some bytes were skipped to reach a later stream (see ``damage``)."""
        return bool(self.damage)

    @property
    def offset(self) -> int | None:
        """Byte offset of the first bad or incomplete frame, None when there is none."""
        offsets = [d.offset for d in self.damage]
        if self.error is not None:
            offsets.append(self.error.offset)
        return min(offsets, default=None)


class _Tally:
    """verify's counters, per stream of the decoder (records before any INFO count only in the total)."""

    def __init__(self) -> None:
        self.records = 0
        self.dropped = 0
        self.per_stream: dict[int, list[int]] = {}

    def count(self, message: Message, stream: DecodedStream | None) -> None:
        if isinstance(message, Record):
            self.records += 1
            if stream is not None:
                self.per_stream.setdefault(stream.index, [0, 0])[0] += 1
        elif isinstance(message, Dropped):
            self.dropped += message.count
            if stream is not None:
                self.per_stream.setdefault(stream.index, [0, 0])[1] += message.count

    def streams(self, decoder: StreamDecoder) -> tuple[StreamReport, ...]:
        return tuple(
            StreamReport(RecordingSummary.of(s.info), s.version,
                         *self.per_stream.get(s.index, (0, 0)), ended=s.ended)
            for s in decoder.streams.values()
        )


def _identity(info: RecordingInfo) -> object:
    """The stream id of ``info``, or a key of its own when a field is not hashable."""
    key = stream_id(info)
    try:
        hash(key)
    except TypeError:
        return id(info)
    return key


def verify(source: str, *, chunk_size: int = CHUNK_SIZE) -> VerifyReport:
    """Read all of ``source`` (a path or ``-``) and report on it; never raises for bad data.

    Raises ``OSError`` only when the source cannot be opened or read. Records are
    counted as they are yielded (not with ``StreamDecoder.records``, which also
    counts the records of a frame that then fails to decode).
    """
    decoder = StreamDecoder(source_name(source), resync=True)
    recordings: dict[object, RecordingSummary] = {}
    tally = _Tally()
    error: RecordingError | None = None

    def take() -> None:
        for message in decoder.messages():
            tally.count(message, decoder.stream)
            if isinstance(message, RecordingInfo):
                recordings.setdefault(_identity(message), RecordingSummary.of(message))

    with open_source(source) as stream:
        read = _chunk_reader(stream)
        try:
            while chunk := read(chunk_size):
                decoder.feed(chunk)
                take()
            decoder.close()
            take()
        except RecordingError as failure:
            error = failure
    streams = tally.streams(decoder)
    return VerifyReport(
        source=decoder.source,
        version=streams[0].version if streams else decoder.version,
        recordings=tuple(recordings.values()),
        records=tally.records,
        dropped=tally.dropped,
        ended=decoder.ended and all(s.ended for s in streams),
        error=error,
        streams=streams,
        damage=tuple(decoder.damage),
    )


__all__ = [
    "CHUNK_SIZE",
    "POLL_INTERVAL",
    "STDIN",
    "RecordingSummary",
    "StreamReport",
    "VerifyReport",
    "follow_done",
    "open_source",
    "read_batches",
    "read_messages",
    "read_stream",
    "source_name",
    "verify",
]
