"""The one incremental decoder of recordings: feed it bytes, take messages out.

Like ``websockets.protocol``, :class:`StreamDecoder` touches no file, socket or
thread: every reader (files, pipes, sockets, tests) feeds it the bytes it got.
It reads stream headers and frames (:mod:`~rerun_logging.format.frames`), turns
their payloads into messages (:mod:`~rerun_logging.format.messages`), and keeps
track of the streams it has seen. :func:`stored_decoder` reads frames kept apart
from their stream (a viewer's store, a sink's backlog).

Several streams in one file: a reused save path holds one stream per run (each
appended after the last), and two handlers writing one path interleave their
frames. The rule: **a header starts or resumes a stream; the INFO frame after it
says which.** A stream is identified by :func:`~rerun_logging.format.stream_id` of
its INFO (recording id, pid, start time), so a header + INFO already seen resumes
that stream (its records and sequence numbers continue) instead of starting
another. No frame can start with ``MAGIC``: its first four bytes, read as a frame
size, are far above MAX_FRAME_SIZE, so the decoder never mistakes a header after
frames for a frame.

A writer killed mid-write leaves a torn frame, and the next run appends its header
after it. A decoder made with ``resync=True`` (the file readers) skips from a torn
or corrupt frame to the next ``MAGIC``, reports what it skipped as a :class:`Damage`
event and reads on; with no header after the damage, it fails as it always did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from .errors import (
    CorruptFrame,
    FrameTooLarge,
    NotARecording,
    RecordingError,
    TruncatedStream,
    UnsupportedVersion,
)
from .frames import FRAME_HEAD, FRAME_HEAD_SIZE, Frame, frame_payload, peek_frame
from .messages import (
    Ack,
    Damage,
    Dropped,
    End,
    Message,
    Record,
    RecordColumns,
    RecordingInfo,
    Refused,
    StreamId,
    _unpack_all,
    _hashable_keys,
    decode_columns,
    decode_info,
    decode_records,
    stream_id,
)
from .schema import (
    FORMAT_MAJOR,
    FORMAT_MINOR,
    HEADER,
    KIND_ACK,
    KIND_DROPPED,
    KIND_END,
    KIND_INFO,
    KIND_RECORDS,
    KIND_REFUSED,
    MAGIC,
    MAX_FRAME_SIZE,
    MAX_PAYLOAD_SIZE,
    RERUN_SDK_MAGIC,
)


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


class StreamDecoder:
    """The incremental decoder: feed it bytes, take messages out.

    ``feed(data)`` buffers bytes; ``messages()`` yields every message that whole
    frames make available; ``close()`` says the input ended and raises
    :class:`TruncatedStream` if it ended inside a header or a frame. Errors are
    raised once and leave the decoder failed: everything yielded before them stays
    valid. ``offset`` is the stream position of the next unread byte.

    A header after frames starts or resumes a stream (see this module's docstring):
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
        columns: bool = False,
    ) -> None:
        if max_frame_size >= _frame_size_of(magic):
            raise ValueError(f"max_frame_size {max_frame_size} would read a stream header as a frame")
        self.source = source
        self.magic = magic
        self.max_frame_size = max_frame_size
        self.max_payload_size = max_payload_size
        self.resync = resync
        self.columns = columns
        """Whether a RECORDS message is yielded as one :class:`RecordColumns` (its
        records in columns, no object per record) rather than as its records."""
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
                size, codec, crc = FRAME_HEAD.unpack_from(buffer, start)
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
                    payload = frame_payload(
                        codec, crc, memoryview(raw)[FRAME_HEAD_SIZE:],
                        max_payload_size=self.max_payload_size, source=self.source,
                        offset=self.offset,
                    )
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
                    "rerun-logging one; the Rerun viewer opens it: rerun FILE",
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
            self.records += sum(
                len(m) if isinstance(m, RecordColumns) else isinstance(m, Record) for m in batch
            )
            yield from batch

    def _message(self, item: Any) -> list[Message]:
        if not isinstance(item, list) or len(item) < 2 or not isinstance(item[1], dict):
            raise ValueError(f"a message must be [kind, map], got {type(item).__name__}")
        kind, body = item[0], item[1]
        if kind == KIND_RECORDS:
            return [decode_columns(body)] if self.columns else decode_records(body)
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
    return int(FRAME_HEAD.unpack_from(magic.ljust(FRAME_HEAD_SIZE, b"\0"))[0])


def stored_decoder(source: str = "<stored>", frames: bytes = b"", columns: bool = False) -> StreamDecoder:
    """A decoder of frames kept apart from their stream: a viewer's store, a sink's
    backlog, the frames an export reads again.

    Such frames are :attr:`Frame.raw` bytes without the stream header before them;
    the decoder is given a header of this version first, then ``frames``. Feed it
    more with ``feed()``; take the frames with ``frames()`` and their messages with
    ``decode_payload()`` (or both with ``messages()``). Errors are the decoder's,
    named after ``source``.
    """
    decoder = StreamDecoder(source, columns=columns)
    decoder.feed(HEADER + frames)
    return decoder


def reported_drops(frame: bytes) -> int:
    """Records that the ``dropped`` messages inside the stored ``frame`` report (0 if it
    does not decode): what a backlog that drops the frame must carry into its own report,
    so that no loss goes unreported."""
    decoder = stored_decoder("backlog", frame)
    try:
        return sum(peek_frame(f.payload).dropped for f in decoder.frames())
    except ValueError:
        return 0


def header_info(header: bytes, source: str = "<header>") -> RecordingInfo:
    """The :class:`RecordingInfo` of a stream header (magic, version, INFO frame): what a
    sink that maps records elsewhere (otlp, rerun) takes from ``Sink.start``."""
    decoder = StreamDecoder(source)
    decoder.feed(header)
    for message in decoder.messages():
        if isinstance(message, RecordingInfo):
            return message
    raise CorruptFrame("the stream header holds no INFO message", source, 0)


def stored_records(frames: Iterable[bytes], source: str = "<stored>") -> Iterator[Record | Dropped]:
    """The records and drop reports of frames held apart from their stream, in order.

    Raises a :class:`RecordingError` (a ``ValueError``) on a frame that does not
    decode, a frame cut short included.
    """
    decoder = stored_decoder(source, b"".join(frames))
    for message in decoder.messages():
        if isinstance(message, (Record, Dropped)):
            yield message
    decoder.close()


def stored_columns(
    frames: Iterable[bytes], source: str = "<stored>"
) -> Iterator[RecordColumns | Dropped]:
    """As :func:`stored_records`, with each RECORDS message as one
    :class:`RecordColumns`: for the readers that map whole batches (no object per record)."""
    decoder = stored_decoder(source, b"".join(frames), columns=True)
    for message in decoder.messages():
        if isinstance(message, (RecordColumns, Dropped)):
            yield message
    decoder.close()
