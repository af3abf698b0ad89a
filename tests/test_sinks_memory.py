"""Tests of ``rerun_logging.sinks.memory``: the in-memory buffer bounded by ``buffer_size`` bytes.

The sink is driven directly with frames from ``rerun_logging.format``, as the
flusher drives it. (``tests/test_handler.py`` covers the buffer through a handler:
replay into a save sink, in order, behind one ``dropped`` message.)
"""

from __future__ import annotations

import logging
import time

import pytest

from rerun_logging.format import Record, encode_frame, encode_records, end_message
from rerun_logging.sinks import MemorySink, SinkOptions, SinkStats, mode_of, open_sink
from rerun_logging.spec import parse_sinks


def frame(first: int, count: int, text: str = "") -> bytes:
    return encode_frame(encode_records([
        Record(seq=first + i, time_ns=i, level=logging.INFO, level_name="INFO", entity_path="a",
               logger="a", message=f"{first + i:04d} {text}")
        for i in range(count)
    ]), compress=False)


DEADLINE = float("inf")


def test_frames_are_held_in_order_with_their_counts() -> None:
    sink = MemorySink(buffer_size=1 << 20)
    frames = [(frame(0, 3), 3), (frame(3, 1), 1), (encode_frame(end_message()), 0)]
    for data, records in frames:
        sink.write(data, records)
    assert (sink.buffered_records, sink.buffered_bytes) == (4, sum(len(f) for f, _ in frames))
    assert sink.stats() == SinkStats("memory", written=4, dropped=0, bytes=sink.buffered_bytes, error=None)
    assert sink.take() == (0, frames)
    assert (sink.buffered_records, sink.buffered_bytes) == (0, 0)
    assert sink.take() == (0, [])  # taken once: the buffer is empty after


def test_an_empty_write_is_not_kept() -> None:
    sink = MemorySink(buffer_size=100)
    sink.write(b"", 0)
    assert sink.take() == (0, [])


def test_over_the_bound_the_oldest_whole_frames_go_and_are_counted_exactly() -> None:
    frames = [(frame(i * 10, 10, "x" * 40), 10) for i in range(6)]
    size = len(frames[0][0])
    assert all(len(f) == size for f, _ in frames)
    sink = MemorySink(buffer_size=size * 2 + size // 2)  # room for two frames and a half
    for data, records in frames:
        sink.write(data, records)
        assert sink.buffered_bytes <= sink.buffer_size
    assert (sink.evicted, sink.dropped, sink.buffered_records) == (40, 40, 20)
    evicted, held = sink.take()
    assert evicted == 40 and held == frames[4:]  # the newest two, whole and in order
    # take() hands the evictions on once; the sink's own loss counter stays
    assert (sink.evicted, sink.dropped) == (0, 40)
    sink.write(*frames[0])
    assert sink.take() == (0, [frames[0]])


def test_a_frame_larger_than_the_whole_buffer_is_itself_dropped_and_counted() -> None:
    sink = MemorySink(buffer_size=200)
    small, big = frame(0, 1), frame(1, 5, "y" * 100)
    assert len(small) <= 200 < len(big)
    sink.write(small, 1)
    sink.write(big, 5)
    assert (sink.buffered_records, sink.buffered_bytes, sink.dropped) == (0, 0, 6)
    assert sink.take() == (6, [])


def test_close_keeps_the_frames_for_the_next_sinks() -> None:
    sink = MemorySink(buffer_size=1 << 20)
    sink.write(frame(0, 2), 2)
    sink.close(encode_frame(end_message()), time.monotonic() + 1)
    sink.flush(time.monotonic() + 1)
    sink.poll(time.monotonic())
    assert sink.take() == (0, [(frame(0, 2), 2)])  # no END added: the buffer has no stream


def test_after_fork_the_child_starts_with_an_empty_buffer_of_the_same_size() -> None:
    sink = MemorySink(buffer_size=500)
    sink.write(frame(0, 2), 2)
    sink.write(frame(2, 30, "z" * 50), 30)
    child = sink.after_fork()
    assert isinstance(child, MemorySink) and child is not sink
    assert child.buffer_size == 500
    assert (child.buffered_records, child.written, child.dropped, child.take()) == (0, 0, 0, (0, []))
    assert sink.buffered_records + sink.dropped == 32  # the parent's buffer is untouched


def test_the_memory_mode_opens_a_buffer_of_the_handlers_buffer_size() -> None:
    (spec,) = parse_sinks("memory")
    sink = open_sink(spec, SinkOptions(buffer_size=12345))
    assert isinstance(sink, MemorySink) and sink.buffer_size == 12345
    assert not mode_of(spec).writes_here and not mode_of(spec).top_process_only


def test_each_record_is_counted_once_written_or_dropped() -> None:
    frames = [(frame(i * 10, 10, "x" * 40), 10) for i in range(6)]
    sink = MemorySink(buffer_size=len(frames[0][0]) * 2)
    for data, records in frames:
        sink.write(data, records)
    stats = sink.stats()
    assert stats.dropped == 40
    assert stats.written + stats.dropped + stats.pending == 60
