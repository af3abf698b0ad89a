"""The in-memory buffer: frames kept until a real sink is enabled, bounded in bytes."""

from __future__ import annotations

from collections import deque

from typing import TYPE_CHECKING

from .base import Sink
from .mode import Mode

if TYPE_CHECKING:
    from ..spec import SinkSpec
    from . import SinkOptions


class MemorySink(Sink):
    """Keeps frames in order up to ``buffer_size`` bytes; over it, drops the oldest whole frames.

    Dropped records are counted exactly, and once: an evicted record leaves
    ``written`` for ``dropped``. :meth:`take` hands the frames and the count to the
    flusher, which replays them into the next sinks behind a ``dropped`` message.
    """

    name = "memory"

    def __init__(self, buffer_size: int) -> None:
        super().__init__()
        self.buffer_size = buffer_size
        self._frames: deque[tuple[bytes, int]] = deque()
        self._size = 0
        self._records = 0
        self.evicted = 0

    @property
    def buffered_records(self) -> int:
        """Records held now."""
        return self._records

    @property
    def buffered_bytes(self) -> int:
        """Bytes held now."""
        return self._size

    def write(self, frame: bytes, records: int) -> None:
        if records == 0 and not frame:
            return
        self._frames.append((frame, records))
        self._size += len(frame)
        self._records += records
        self.written += records
        self.bytes += len(frame)
        while self._size > self.buffer_size and self._frames:
            old, count = self._frames.popleft()
            self._size -= len(old)
            self._records -= count
            self.evicted += count
            self.written -= count  # counted once: no longer written, now dropped
            self.bytes -= len(old)
            self.dropped += count

    def close(self, end_frame: bytes, deadline: float) -> None:
        """The buffer has no stream to end; its frames stay until taken or discarded."""

    def take(self) -> tuple[int, list[tuple[bytes, int]]]:
        """Records evicted so far and the frames held, in order; empties the buffer."""
        frames = list(self._frames)
        evicted = self.evicted
        self._frames.clear()
        self._size = 0
        self._records = 0
        self.evicted = 0
        return evicted, frames

    def after_fork(self) -> Sink:
        """A child starts with an empty buffer: the parent's frames are the parent's."""
        return MemorySink(self.buffer_size)


class MemoryMode(Mode):
    """``memory`` (and no sink at all): frames buffered until a real sink is enabled."""

    name = "memory"

    def open(self, spec: SinkSpec, options: SinkOptions) -> Sink:
        return MemorySink(options.buffer_size)
