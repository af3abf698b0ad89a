"""The hand-off between a handler's two halves: the record queue and its accounting.

The caller's side (:class:`~rerun_logging.handler.RerunHandler`, as the stdlib's
``QueueHandler``) appends captured records; the flusher
(:class:`~rerun_logging.flusher.Flusher`, as ``QueueListener``) takes them in
batches. Both count records lost on their side here. This object owns every field
both halves touch, behind one lock, so that a snapshot (:meth:`Handoff.counts`)
sees ``taken + queued + refused`` consistently and no half writes the other's state.

The queue itself is a ``collections.deque``: ``append`` and ``popleft`` are atomic,
so the caller appends without the lock (the hot path). The lock guards the counters
and the flusher's pops, never any I/O.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from itertools import islice

from .capture import Captured

NEVER = float("inf")


@dataclass(frozen=True)
class HandoffCounts:
    """A consistent snapshot of the hand-off's counters."""

    taken: int
    """Records the flusher took from the queue."""
    queued: int
    """Records waiting in the queue."""
    refused: int
    """Records that never reached the queue (logged after close, pushed out when full)."""
    dropped: dict[str, int]
    """Records lost before any sink saw them, by reason."""


class Handoff:
    """The queue of captured records, the flusher's wake-up, and the drops before sinks."""

    def __init__(self) -> None:
        self.queue: deque[Captured] = deque()
        self.wake = threading.Event()
        """Set to wake the flusher: a batch is ready, a flush or a stop is asked for."""
        self.quiet_until = 0.0
        """A record created after this time (``time.time()``) wakes the flusher at once:
        it wrote nothing for a whole ``flush_interval``. The flusher sets it after each
        drain; the ``emit`` that wakes it sets it to :data:`NEVER` (a hint: a race costs
        one extra or one late wake-up, never a record)."""
        self.batch_ready = False
        """Set with :attr:`wake` when a full batch is queued: the flusher then takes the
        full batches only, and leaves the rest to the next batch or its timer (at most
        ``flush_interval``; see ``Flusher._drain``)."""
        # Reentrant: a signal handler (rerun_logging.exits) may close the handler on the
        # main thread while that thread is inside a block holding it.
        self._lock = threading.RLock()
        self._taken = 0
        self._refused = 0
        self._dropped: dict[str, int] = {}
        self._unreported: dict[str, int] = {}

    def count_drop(self, reason: str, count: int, refused: bool = False) -> None:
        """Count ``count`` records lost for ``reason``; ``refused`` ones never reached the queue."""
        if count <= 0:
            return
        with self._lock:
            if refused:
                self._refused += count
            self._dropped[reason] = self._dropped.get(reason, 0) + count
            self._unreported[reason] = self._unreported.get(reason, 0) + count

    def trim(self, limit: int, reason: str) -> None:
        """Drop the oldest records while more than ``limit`` wait (counted as refused)."""
        queue = self.queue
        with self._lock:  # popped and counted in one step: a snapshot sees one or the other
            lost = 0
            while len(queue) > limit:
                try:
                    queue.popleft()
                except IndexError:
                    break
                lost += 1
            self.count_drop(reason, lost, refused=True)

    def take(self, limit: int) -> list[Captured]:
        """Up to ``limit`` of the oldest records, counted as taken (the flusher's side)."""
        queue = self.queue
        batch: list[Captured] = []
        with self._lock:
            try:
                batch.extend(islice(iter(queue.popleft, None), min(len(queue), limit)))
            except IndexError:  # a C-level loop: popleft raises once the queue is empty
                pass
            self._taken += len(batch)
        return batch

    def strand(self, reason: str) -> None:
        """Count as lost what threads appended after the flusher ended (and let it go)."""
        self.trim(0, reason)

    def take_reports(self) -> dict[str, int]:
        """The drops counted since the last call, by reason: due in the stream as ``dropped``."""
        with self._lock:
            reports, self._unreported = self._unreported, {}
        return reports

    def counts(self) -> HandoffCounts:
        """A consistent snapshot of the counters."""
        with self._lock:
            return HandoffCounts(self._taken, len(self.queue), self._refused, dict(self._dropped))
