"""Tests of ``rerun_logging.handoff``: the queue between a handler's two halves and its counters.

The :class:`Handoff` is driven directly: plain dicts stand for captured records
(the hand-off never looks inside them). The threaded test runs real threads that
append and take at once, and waits on them with deadlines.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from rerun_logging.handoff import NEVER, Handoff, HandoffCounts

JOIN_TIMEOUT = 60.0


def filled(count: int) -> Handoff:
    handoff = Handoff()
    handoff.queue.extend({"n": i} for i in range(count))
    return handoff


def numbers(batch: list[dict[str, Any]]) -> list[int]:
    return [captured["n"] for captured in batch]


def test_a_new_handoff_is_empty_and_quiet() -> None:
    handoff = Handoff()
    assert handoff.counts() == HandoffCounts(taken=0, queued=0, refused=0, dropped={})
    assert handoff.take(10) == [] and handoff.take_reports() == {}
    assert not handoff.wake.is_set()
    assert handoff.quiet_until == 0.0 < NEVER  # the first record wakes the flusher


def test_take_hands_out_the_oldest_first_up_to_the_limit_and_counts_them() -> None:
    handoff = filled(10)
    assert numbers(handoff.take(4)) == [0, 1, 2, 3]
    assert numbers(handoff.take(100)) == [4, 5, 6, 7, 8, 9]
    assert handoff.take(5) == []
    assert handoff.counts() == HandoffCounts(taken=10, queued=0, refused=0, dropped={})


def test_count_drop_counts_by_reason_and_refused_only_when_told() -> None:
    handoff = Handoff()
    handoff.count_drop("record could not be encoded", 2)
    handoff.count_drop("logged after close", 3, refused=True)
    handoff.count_drop("logged after close", 1, refused=True)
    handoff.count_drop("nothing", 0)
    handoff.count_drop("negative", -4, refused=True)
    counts = handoff.counts()
    assert counts.refused == 4  # the encoding loss was taken first: it is not "refused"
    assert counts.dropped == {"record could not be encoded": 2, "logged after close": 4}


def test_reports_are_handed_out_once_and_the_totals_stay() -> None:
    handoff = Handoff()
    handoff.count_drop("queue full", 5, refused=True)
    handoff.count_drop("sink down", 1)
    assert handoff.take_reports() == {"queue full": 5, "sink down": 1}
    assert handoff.take_reports() == {}
    handoff.count_drop("queue full", 2, refused=True)
    assert handoff.take_reports() == {"queue full": 2}
    assert handoff.counts().dropped == {"queue full": 7, "sink down": 1}


def test_trim_drops_the_oldest_beyond_the_limit_counted_as_refused() -> None:
    handoff = filled(10)
    handoff.trim(3, "queue full")
    assert numbers(list(handoff.queue)) == [7, 8, 9]  # the newest stay, in order
    assert handoff.counts() == HandoffCounts(taken=0, queued=3, refused=7, dropped={"queue full": 7})
    handoff.trim(3, "queue full")  # within the limit: nothing
    assert handoff.take_reports() == {"queue full": 7}


def test_strand_counts_what_is_left_as_lost() -> None:
    handoff = filled(5)
    handoff.take(2)
    handoff.strand("logged after close")
    assert not handoff.queue
    assert handoff.counts() == HandoffCounts(taken=2, queued=0, refused=3,
                                             dropped={"logged after close": 3})


def test_a_snapshot_is_a_copy() -> None:
    handoff = Handoff()
    handoff.count_drop("a", 1)
    counts = handoff.counts()
    counts.dropped["a"] = 100
    counts.dropped["b"] = 1
    assert handoff.counts().dropped == {"a": 1}


def test_threads_appending_trimming_and_taking_account_for_every_record() -> None:
    """Four threads append (trimming as ``emit`` does when the queue is over its bound),
    one takes in batches: every record is taken, still queued, or counted refused, each
    once, and each thread's records keep their order."""
    handoff = Handoff()
    appenders, per_thread, bound = 4, 20_000, 500
    start = threading.Barrier(appenders + 1)
    appended = threading.Event()
    taken: list[dict[str, Any]] = []

    def append(thread: int) -> None:
        start.wait(JOIN_TIMEOUT)
        queue = handoff.queue
        for i in range(per_thread):
            queue.append({"t": thread, "n": i})
            if len(queue) > bound:
                handoff.trim(bound, "queue full: the flusher fell behind")
                handoff.wake.set()

    def take() -> None:
        start.wait(JOIN_TIMEOUT)
        while True:
            done = appended.is_set()  # read before the take: nothing is appended after it
            taken.extend(handoff.take(64))
            if done and not handoff.queue:
                return

    threads = [threading.Thread(target=append, args=(t,)) for t in range(appenders)]
    taker = threading.Thread(target=take)
    for thread in [*threads, taker]:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive()
    appended.set()
    taker.join(JOIN_TIMEOUT)
    assert not taker.is_alive()

    counts = handoff.counts()
    total = appenders * per_thread
    assert counts.taken == len(taken) and counts.queued == 0
    assert counts.taken + counts.queued + counts.refused == total
    assert counts.dropped == ({"queue full: the flusher fell behind": counts.refused}
                              if counts.refused else {})
    assert len({(c["t"], c["n"]) for c in taken}) == len(taken)  # none taken twice
    for thread in range(appenders):
        mine = [c["n"] for c in taken if c["t"] == thread]
        assert mine == sorted(mine)  # FIFO per producer


class SnapshotOnRelease:
    """A stand-in for the hand-off's lock that takes a snapshot from another thread each
    time the trimming thread lets the lock go (what any thread calling ``counts()`` at
    that instant sees). Deterministic: the snapshot runs while that thread waits."""

    def __init__(self, handoff: Handoff) -> None:
        self.handoff = handoff
        self.lock = threading.RLock()
        self.depth = 0
        self.watched: int | None = None
        self.snapshots: list[HandoffCounts] = []

    def __enter__(self) -> None:
        self.lock.acquire()
        self.depth += 1

    def __exit__(self, *exc_info: object) -> None:
        self.depth -= 1
        outermost = self.depth == 0
        self.lock.release()
        if outermost and threading.get_ident() == self.watched:
            other = threading.Thread(target=lambda: self.snapshots.append(self.handoff.counts()))
            other.start()
            other.join(JOIN_TIMEOUT)


def test_every_snapshot_during_a_trim_accounts_for_every_record() -> None:
    handoff = filled(10)
    lock = SnapshotOnRelease(handoff)
    handoff._lock = lock  # type: ignore[assignment]  # only to see the instant between two steps
    lock.watched = threading.get_ident()
    handoff.trim(4, "queue full")
    lock.watched = None
    assert lock.snapshots, "no snapshot was taken"
    assert [c.taken + c.queued + c.refused for c in lock.snapshots] == [10] * len(lock.snapshots)
