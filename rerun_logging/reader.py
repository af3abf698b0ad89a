"""Reading recordings: the thin I/O shell around :class:`format.StreamDecoder`.

Files, ``-`` (standard input) and files still being written are read in chunks and
fed to the one decoder; nothing here parses bytes itself. Errors are the decoder's
(:class:`format.RecordingError` and its subclasses) plus ``OSError`` when a source
cannot be opened.

- :func:`read_batches` yields the messages of each chunk as a list, so a caller
  can flush its output once per chunk (what ``rerun-logging print`` does).
- :func:`read_messages` yields messages one by one.
- :func:`verify` reads a whole file and returns a :class:`VerifyReport`.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from typing import BinaryIO, Callable, Iterator

from .format import (
    Dropped,
    Message,
    Record,
    RecordingError,
    RecordingInfo,
    StreamDecoder,
    TruncatedStream,
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
        yield sys.stdin.buffer
        return
    with open(source, "rb") as stream:
        yield stream


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
    its END message arrives or the user interrupts (KeyboardInterrupt); standard
    input is a pipe, so there ``follow`` changes nothing: its end is the end.
    Everything yielded before an error is valid.
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
    decoder = StreamDecoder(name)
    read = _chunk_reader(stream)
    while True:
        try:
            chunk = read(chunk_size)
            if not chunk:
                if not follow:
                    decoder.close()
                    return
                sleep(poll_interval)
                continue
        except KeyboardInterrupt:
            if follow:
                return
            raise
        decoder.feed(chunk)
        yield from _decoded(decoder)
        if follow and decoder.ended:
            return


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
class VerifyReport:
    """What :func:`verify` found in a recording.

    ``version`` is the format version of the header (None when unreadable);
    ``records`` counts the records decoded and ``dropped`` the records the writer
    reported lost. ``ended`` says the END message was seen. ``error`` is the
    decoder's error: a ``TruncatedStream`` for a torn tail, another
    ``RecordingError`` for a corrupt stream; its ``offset`` is the first byte that
    could not be decoded and everything before it was counted.
    """

    source: str
    version: tuple[int, int] | None
    recordings: tuple[RecordingSummary, ...]
    records: int
    dropped: int
    ended: bool
    error: RecordingError | None = None

    @property
    def clean(self) -> bool:
        """The stream decoded to its END with no error."""
        return self.ended and self.error is None

    @property
    def torn(self) -> bool:
        """The stream stops inside a frame: the writer was cut off mid-write."""
        return isinstance(self.error, TruncatedStream)

    @property
    def corrupt(self) -> bool:
        """The stream holds bytes that are not a valid frame (checksum, size, magic, ...)."""
        return self.error is not None and not self.torn

    @property
    def offset(self) -> int | None:
        """Byte offset of the first bad or incomplete frame, None when there is none."""
        return None if self.error is None else self.error.offset


def verify(source: str, *, chunk_size: int = CHUNK_SIZE) -> VerifyReport:
    """Read all of ``source`` (a path or ``-``) and report on it; never raises for bad data.

    Raises ``OSError`` only when the source cannot be opened or read. Records are
    counted as they are yielded (not with ``StreamDecoder.records``, which also
    counts the records of a frame that then fails to decode).
    """
    decoder = StreamDecoder(source_name(source))
    recordings: list[RecordingSummary] = []
    records = dropped = 0
    error: RecordingError | None = None
    with open_source(source) as stream:
        read = _chunk_reader(stream)
        try:
            while chunk := read(chunk_size):
                decoder.feed(chunk)
                for message in decoder.messages():
                    if isinstance(message, Record):
                        records += 1
                    elif isinstance(message, RecordingInfo):
                        recordings.append(RecordingSummary.of(message))
                    elif isinstance(message, Dropped):
                        dropped += message.count
            decoder.close()
        except RecordingError as failure:
            error = failure
    return VerifyReport(
        source=decoder.source,
        version=decoder.version,
        recordings=tuple(recordings),
        records=records,
        dropped=dropped,
        ended=decoder.ended,
        error=error,
    )


__all__ = [
    "CHUNK_SIZE",
    "POLL_INTERVAL",
    "STDIN",
    "RecordingSummary",
    "VerifyReport",
    "open_source",
    "read_batches",
    "read_messages",
    "read_stream",
    "source_name",
    "verify",
]
