"""OTLP JSON lines files, as the OpenTelemetry file exporter writes them, both ways. Pure.

Such a file holds one ``ExportLogsServiceRequest`` per line in the OTLP/JSON
encoding (lowerCamelCase keys, enums as integers, trace and span ids in hex); the
Collector's ``otlpjsonfile`` receiver replays it. This module writes them from our
messages (:func:`json_lines`, for ``rerun-logging print --otlp-json``) and reads them
as our own stream bytes (:class:`OtlpJsonTranscoder`), so that every reader of
recordings (``print``, ``verify``, the viewer) reads them through the one decoder.

Reading: each resource (``service.name``, ``service.instance.id``) becomes a stream
of its own, numbered on from line to line (:class:`~.receive.OtlpStreams`); when
the lines switch between resources, the stream's header comes again, which readers
take as that stream resuming. A line that is not an OTLP logs request is not
fatal: it becomes a ``dropped`` message naming the line and what is wrong (in the
stream before it, or in the first one after it), so nothing else is lost. A file
with no request at all is an error naming its first line's problem.
"""

from __future__ import annotations

import base64
import io
from typing import BinaryIO, Iterable, Iterator

from .. import format
from ..format import Dropped, End, Message, Record, RecordingError, RecordingInfo
from . import mapping, receive

LINE_RECORDS = 4096
"""Log records per line written (one request each)."""
MAX_LINE_SIZE = receive.MAX_INFLATED_SIZE
"""The longest line read: a request the viewer's OTLP port would take."""


# --- writing ---------------------------------------------------------------------------


def json_line(request: object) -> str:
    """One request as one OTLP/JSON line (no newline)."""
    import json

    from google.protobuf import json_format

    document = json_format.MessageToDict(request, use_integers_for_enums=True)  # type: ignore[arg-type]
    for resource_logs in document.get("resourceLogs", ()):
        for scope_logs in resource_logs.get("scopeLogs", ()):
            for log in scope_logs.get("logRecords", ()):
                for key in ("traceId", "spanId"):
                    if key in log:
                        log[key] = base64.b64decode(log[key]).hex()
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def json_lines(messages: Iterable[Message], line_records: int = LINE_RECORDS) -> Iterator[str]:
    """OTLP/JSON lines for our ``messages`` (as a reader yields them): one request per
    at most ``line_records`` records of one stream; ``dropped`` messages as the sink's
    notes (the ``rerun_logging.dropped`` log records)."""
    info: RecordingInfo | None = None
    records: list[Record] = []
    notes: list[object] = []

    def line() -> Iterator[str]:
        if info is not None and (records or notes):
            yield json_line(mapping.export_request(mapping.resource(info), records, notes))  # type: ignore[arg-type]
        records.clear()
        notes.clear()

    for message in messages:
        if isinstance(message, RecordingInfo):
            yield from line()
            info = message
        elif isinstance(message, Record):
            records.append(message)
            if len(records) >= line_records:
                yield from line()
        elif isinstance(message, Dropped):
            last = records[-1].time_ns if records else (info.start_time_ns if info else 0)
            notes.append(mapping.dropped_note(message.count, message.reason, last))
        elif isinstance(message, End):
            yield from line()
    yield from line()


# --- reading ---------------------------------------------------------------------------


class OtlpJsonTranscoder:
    """OTLP JSON lines in, our stream bytes out: feed lines, take bytes. One per file.

    ``source`` names the file in the reasons of skipped lines. ``now_ns`` stands for
    the arrival time of records that carry none (the file's time, from the caller).
    """

    def __init__(self, source: str, now_ns: int = 0) -> None:
        self.source = source
        self.now_ns = now_ns
        self.lines = 0
        self.requests = 0
        self.first_problem: str | None = None
        self._streams = receive.OtlpStreams(max_streams=1 << 30)
        self._current: RecordingInfo | None = None
        self._held: list[bytes] = []
        """Dropped messages for bad lines seen before any stream started."""

    def line(self, text: bytes) -> bytes:
        """Our bytes for one line of the file (``b""`` for a blank line)."""
        self.lines += 1
        if not text.strip():
            return b""
        try:
            if len(text) > MAX_LINE_SIZE:
                raise receive.BodyTooLarge(f"{len(text)} bytes, more than {MAX_LINE_SIZE}")
            batch = receive.decode_logs(receive.parse_request(text, "json"), self.now_ns,
                                        max_records=1 << 62)
        except receive.ReceiveError as error:
            return self._bad_line(str(error))
        self.requests += 1
        out = []
        for part in self._streams.frames(batch, self.now_ns):
            if not part.new and part.key != self._current:
                out.append(format.stream_header(part.info))  # back to this stream: it resumes
            out.append(part.data)
            if part.new and self._held:
                out += self._held
                self._held = []
            self._current = part.key
        return b"".join(out)

    def _bad_line(self, problem: str) -> bytes:
        reason = f"{self.source} line {self.lines} is not an OTLP logs request: {problem}"
        if self.first_problem is None:
            self.first_problem = reason
        frame = format.encode_frame(format.dropped_message(0, reason))
        if self._current is None:
            self._held.append(frame)
            return b""
        return frame

    def finish(self) -> bytes:
        """The end of the file: every stream ends (END), as the file is whole; an error if
        it held no request at all."""
        if not self.requests:
            problem = self.first_problem or f"{self.source} holds no OTLP logs request"
            raise RecordingError(problem)
        out = []
        end = format.encode_frame(format.end_message())
        for key, info in self._streams.streams():
            if key != self._current:
                out.append(format.stream_header(info))
            out.append(end)
            self._current = key
        return b"".join(out)


def stream_bytes(lines: Iterable[bytes], source: str, now_ns: int = 0) -> Iterator[bytes]:
    """Our stream bytes for the OTLP JSON ``lines`` of ``source``, line by line."""
    transcoder = OtlpJsonTranscoder(source, now_ns)
    for text in lines:
        data = transcoder.line(text)
        if data:
            yield data
    yield transcoder.finish()



class TranscodedFile(io.RawIOBase):
    """An OTLP JSON lines file read as our stream bytes (what readers of recordings take).

    Lines are read one at a time, at most :data:`MAX_LINE_SIZE` bytes each (a longer
    one is skipped to its end and named in a ``dropped`` message); the error of a
    file with no request at all is raised at its end.
    """

    def __init__(self, raw: BinaryIO, source: str, now_ns: int) -> None:
        super().__init__()
        self._raw = raw
        self._transcoder = OtlpJsonTranscoder(source, now_ns)
        self._out = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        while not self._out and not self._done:
            self._out = self._next()
        count = min(len(buffer), len(self._out))
        buffer[:count] = self._out[:count]
        self._out = self._out[count:]
        return count

    def _next(self) -> bytes:
        line = self._raw.readline(MAX_LINE_SIZE + 1)
        if not line:
            self._done = True
            return self._transcoder.finish()
        if len(line) > MAX_LINE_SIZE and not line.endswith(b"\n"):
            while (rest := self._raw.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass  # the rest of a line too long to read
            return self._transcoder.line(b"x" * (MAX_LINE_SIZE + 1))
        return self._transcoder.line(line)
