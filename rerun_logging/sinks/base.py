"""The interface between the handler and a sink, and the accounting every sink shares.

A sink receives whole frames from the handler's flusher thread, one thread only,
so sinks need no locks of their own. The handler encodes each batch once and gives
the same bytes to every sink. A sink that cannot write counts the records it lost
and, once it can write again, puts a ``dropped`` message into its stream.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from .. import format


@dataclass(frozen=True)
class SinkStats:
    """Counters of one sink: records written (delivered), lost, held, bytes, last error."""

    name: str
    written: int
    dropped: int
    bytes: int
    error: str | None
    pending: int = 0


class Sink:
    """Base sink. Subclasses implement :meth:`_write` (and may override the rest).

    Life cycle, all on the flusher thread: :meth:`start` with the stream header
    once (a sink writes it before its first frame), :meth:`write` per frame,
    :meth:`poll` on every tick of the flusher (timers, replies), :meth:`flush` when
    the app asks, :meth:`close` with the END frame once. ``flush`` and ``close``
    return by their deadline (``time.monotonic()`` seconds).
    """

    name = "sink"
    stores_frames = True
    """Whether the frames' bytes are kept or sent on as they are (a file, a socket, a
    buffer, the otlp sink's backlog), so worth deflating. A sink that decodes each
    frame at once to map its records elsewhere (rerun) says False: a flusher whose
    sinks all do so skips zlib."""

    reads_columns = False
    """Whether the sink maps records rather than bytes (rerun): the flusher then hands
    it each batch as a reader reads it (:meth:`write_columns`), saving the decode of
    the frame, wherever the batch packed exactly; frames from elsewhere (a buffer's
    backlog, the END frame) still come to :meth:`write`."""

    def __init__(self) -> None:
        self.written = 0
        self.dropped = 0
        self.bytes = 0
        self.error: str | None = None
        self._unreported = 0
        self._header = b""

    def stats(self) -> SinkStats:
        """A snapshot of this sink's counters."""
        return SinkStats(
            self.name, self.written, self.dropped, self.bytes, self.error, self.pending
        )

    def start(self, header: bytes) -> None:
        """Begin the stream with ``header`` (magic, version, INFO frame)."""
        self._header = header

    def write(self, frame: bytes, records: int) -> None:
        """Write one frame holding ``records`` records; failures are counted, not raised."""
        if self._unreported and self._send(
            format.encode_frame(format.dropped_message(self._unreported, self._loss_reason())), 0
        ):
            self._unreported = 0
        self._send(frame, records)

    def write_columns(self, messages: list[format.RecordColumns | format.Dropped], records: int) -> None:
        """Write one frame's ``messages`` (as :func:`format.stored_columns` reads them),
        holding ``records`` records; only called where :attr:`reads_columns` is set."""
        raise NotImplementedError

    def poll(self, now: float) -> None:
        """Called on every flusher tick, with or without frames to write."""

    def flush(self, deadline: float) -> None:
        """Deliver what is held, trying until ``deadline`` at the latest."""

    def close(self, end_frame: bytes, deadline: float) -> None:
        """End the stream cleanly and release what the sink holds, by ``deadline``."""
        self.write(end_frame, 0)

    @property
    def pending(self) -> int:
        """Records held but neither delivered nor counted as dropped."""
        return 0

    def after_fork(self) -> Sink:
        """The sink a forked child uses instead of this one (never the same stream)."""
        return self

    @property
    def buffered_records(self) -> int:
        """Records held for the next sinks (the in-memory buffer's): none here."""
        return 0

    def take(self) -> tuple[int, list[tuple[bytes, int]]]:
        """Records evicted and the frames held for the next sinks, in order; empties them.

        Only a buffer holds any (:class:`~rerun_logging.sinks.memory.MemorySink`):
        when the sinks change, the handler replays them into the new ones."""
        return 0, []

    def _send(self, data: bytes, records: int) -> bool:
        try:
            self._write(data)
        except Exception as error:
            self._lost(records, error)
            return False
        self.written += records
        self.bytes += len(data)
        if self.error is not None:
            self.error = None
            self._say("writing again")
        return True

    def write_failed(self, records: int, error: BaseException) -> None:
        """``write`` raised ``error`` unexpectedly (a bug, not an I/O error it handles):
        the frame's ``records`` are counted lost by the sink itself, and it says so."""
        self.dropped += records
        self._say(f"unexpected error {error!r}")

    def _lost(self, records: int, error: BaseException) -> None:
        self.dropped += records
        self._unreported += records
        text = _describe(error)
        if text != self.error:
            self.error = text
            self._say(f"{text}; records are dropped (counted) until it can write again")

    def _loss_reason(self) -> str:
        return f"{self.name} failed: {self.error or 'write error'}"

    def _write(self, data: bytes) -> None:
        raise NotImplementedError

    def _say(self, text: str) -> None:
        sys.stderr.write(f"rerun-logging: {self.name}: {text}\n")
        sys.stderr.flush()


def protocol_counter(name: str) -> property:
    """A counter of a sink's sans-I/O ``protocol``, read and set as the sink's own (the
    ``Sink`` base sets and updates its counters by name)."""

    def get(sink: Any) -> int:
        return int(getattr(sink.protocol, name))

    def put(sink: Any, value: int) -> None:
        setattr(sink.protocol, name, value)

    return property(get, put, doc=f"The protocol's ``{name}`` count.")


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror}{where}"
    return f"{type(error).__name__}: {error}"
