"""The viewer's recording store, as plain state: no sockets, no event loop."""

from __future__ import annotations

import logging

import pytest

from rerun_logging.format import (
    HEADER,
    FramePeek,
    Record,
    RecordingInfo,
    StreamDecoder,
    dropped_message,
    encode_frame,
    encode_records,
    end_message,
    info_message,
    peek_frame,
)
from rerun_logging.viewer.store import (
    FRAME_OVERHEAD,
    MARK_COST,
    STREAM_OVERHEAD,
    RecordingStore,
    StreamKey,
    frame_cost,
    frame_mark,
    stream_cost,
)


def make_info(recording_id: str = "rec-1", pid: int = 100, start: int = 1, app: str = "app") -> RecordingInfo:
    return RecordingInfo(app, recording_id, start, "host", pid, "3.11.0", "0.1.0")


def record(seq: int, message: str = "") -> Record:
    return Record(
        seq=seq, time_ns=1_700_000_000_000_000_000 + seq, level=logging.INFO, level_name="INFO",
        entity_path="app", logger="app", message=message or f"message {seq}",
    )


def records_frame(first: int, count: int, message: str = "") -> tuple[bytes, FramePeek]:
    """A frame of ``count`` records numbered from ``first``, and its peek."""
    raw = encode_frame(encode_records([record(first + i, message) for i in range(count)]))
    return raw, peek(raw)


def peek(raw: bytes) -> FramePeek:
    decoder = StreamDecoder("test")
    decoder.feed(HEADER + raw)
    (frame,) = decoder.frames()
    return peek_frame(frame.payload)


def open_stream(store: RecordingStore, info: RecordingInfo) -> StreamKey:
    return store.open_stream(info, encode_frame(info_message(info))).key


# --- identity ---------------------------------------------------------------------------


def test_streams_with_one_recording_id_join_one_recording() -> None:
    store = RecordingStore()
    parent = open_stream(store, make_info(pid=100))
    child = open_stream(store, make_info(pid=101, start=2))
    other = open_stream(store, make_info(recording_id="rec-2", pid=100))
    assert list(store.recordings) == ["rec-1", "rec-2"]
    recording = store.recordings["rec-1"]
    assert set(recording.streams) == {parent, child}
    assert [s.key for s in recording.by_pid(101)] == [child]
    assert store.recordings["rec-2"].streams.keys() == {other}
    assert store.summary().streams == 3 and store.summary().recordings == 2


def test_a_reconnect_finds_its_stream_and_another_handler_gets_its_own() -> None:
    store = RecordingStore()
    first = store.open_stream(make_info(), b"info")
    store.add_frame(first.key, *records_frame(0, 3))
    again = store.open_stream(make_info(), b"info")
    assert again is first and again.frames_stored == 1
    second_handler = store.open_stream(make_info(start=99), b"info")
    assert second_handler is not first and second_handler.frames_stored == 0
    assert len(store.recordings["rec-1"].by_pid(100)) == 2


def test_attach_and_detach_say_whether_a_stream_is_connected() -> None:
    store = RecordingStore()
    key = open_stream(store, make_info())
    assert not store.stream(key).connected
    store.attach(key)
    store.attach(key)
    store.detach(key)
    assert store.stream(key).connected and store.summary().connected == 1
    store.detach(key)
    store.detach(key)
    assert not store.stream(key).connected and store.stream(key).connections == 0


# --- frames and duplicates ----------------------------------------------------------------


def test_frames_are_stored_raw_and_counted() -> None:
    store = RecordingStore()
    key = open_stream(store, make_info())
    first, second = records_frame(0, 3), records_frame(3, 2)
    drop = encode_frame(dropped_message(7, "queue full"))
    end = encode_frame(end_message())
    assert store.add_frame(key, *first)
    assert store.add_frame(key, drop, peek(drop))
    assert store.add_frame(key, *second)
    assert not store.stream(key).ended
    assert store.add_frame(key, end, peek(end))
    stream = store.stream(key)
    assert list(store.frames(key)) == [first[0], drop, second[0], end]
    assert (stream.records, stream.dropped, stream.next_seq, stream.ended) == (5, 7, 5, True)
    assert stream.frames_stored == 4 and stream.records_held == 5
    frames = sum(frame_cost(r) for r in (first[0], drop, second[0], end))
    assert stream.bytes == frames
    assert store.bytes == frames + stream.state_bytes
    assert stream.state_bytes == stream_cost(stream.info, stream.info_frame) + 2 * MARK_COST


def test_resent_frames_are_duplicates_and_change_nothing() -> None:
    store = RecordingStore()
    key = open_stream(store, make_info())
    store.add_frame(key, *records_frame(0, 4))
    store.add_frame(key, *records_frame(4, 4))
    before = (store.stream(key).records, store.bytes, list(store.frames(key)))
    for first in (0, 4):
        raw, seen = records_frame(first, 4)
        assert store.is_duplicate(key, seen)
        assert not store.add_frame(key, raw, seen)
    assert (store.stream(key).records, store.bytes, list(store.frames(key))) == before
    raw, seen = records_frame(8, 1)
    assert not store.is_duplicate(key, seen) and store.add_frame(key, raw, seen)
    assert store.stream(key).next_seq == 9


def test_duplicates_are_per_stream() -> None:
    store = RecordingStore()
    parent = open_stream(store, make_info(pid=1))
    child = open_stream(store, make_info(pid=2))
    store.add_frame(parent, *records_frame(0, 10))
    assert store.add_frame(child, *records_frame(0, 10)), "another pid numbers its own records"


def test_frames_without_records_are_remembered_by_fingerprint() -> None:
    store = RecordingStore()
    key = open_stream(store, make_info())
    drop = encode_frame(dropped_message(2, "backlog full"))
    end = encode_frame(end_message())
    store.add_frame(key, *records_frame(0, 1))
    store.add_frame(key, drop, peek(drop))
    store.add_frame(key, end, peek(end))
    assert store.recent_marks(key) == [frame_mark(drop), frame_mark(end)]
    assert frame_mark(drop) != frame_mark(encode_frame(dropped_message(3, "backlog full")))


# --- memory bound ---------------------------------------------------------------------------


def test_the_oldest_frames_across_recordings_are_evicted_and_counted_exactly() -> None:
    a_raw, a_peek = records_frame(0, 5)
    state = stream_cost(make_info(recording_id="A"), encode_frame(info_message(make_info(recording_id="A"))))
    limit = 3 * frame_cost(a_raw) + 2 * state + 10
    store = RecordingStore(memory_limit=limit)
    a = open_stream(store, make_info(recording_id="A"))
    b = open_stream(store, make_info(recording_id="B"))
    store.add_frame(a, a_raw, a_peek)              # A 0-4   (oldest)
    store.add_frame(b, *records_frame(0, 5))        # B 0-4
    store.add_frame(a, *records_frame(5, 5))        # A 5-9
    assert store.summary().evicted_records == 0
    store.add_frame(b, *records_frame(5, 5))        # B 5-9 pushes A 0-4 out
    sa, sb = store.stream(a), store.stream(b)
    assert (sa.evicted_frames, sa.evicted_records, sb.evicted_records) == (1, 5, 0)
    store.add_frame(b, *records_frame(10, 5))       # pushes B 0-4 out
    assert (sa.evicted_records, sb.evicted_records) == (5, 5)
    assert (sa.records, sa.records_held, sb.records, sb.records_held) == (10, 5, 15, 10)
    assert store.bytes <= limit
    assert store.bytes == sum(frame_cost(r) for s in (a, b) for r in store.frames(s)) + 2 * state
    assert store.summary().frames_held == 3
    # evicted frames still count as seen: a resend of them is a duplicate, not new
    assert not store.add_frame(a, *records_frame(0, 5))


def test_a_frame_larger_than_the_limit_is_counted_then_evicted() -> None:
    raw, seen = records_frame(0, 50, message="x" * 200)
    info = make_info()
    state = stream_cost(info, encode_frame(info_message(info)))
    store = RecordingStore(memory_limit=frame_cost(raw) + state - 1)
    key = open_stream(store, info)
    assert store.add_frame(key, raw, seen)
    stream = store.stream(key)
    assert (stream.records, stream.evicted_records, stream.evicted_frames) == (50, 50, 1)
    assert store.bytes == state and list(store.frames(key)) == []


def test_memory_stays_bounded_under_many_frames() -> None:
    store = RecordingStore(memory_limit=64 * 1024)
    keys = [open_stream(store, make_info(recording_id=f"r{i}")) for i in range(3)]
    seq = [0, 0, 0]
    for n in range(600):
        i = n % 3
        raw, seen = records_frame(seq[i], 4)
        seq[i] += 4
        store.add_frame(keys[i], raw, seen)
        assert store.bytes <= store.memory_limit
    total = store.summary()
    assert total.records == 2400
    held = sum(store.stream(k).records_held for k in keys)
    assert held + total.evicted_records == 2400 and 0 < held < 2400


def test_frame_cost_includes_the_overhead() -> None:
    assert frame_cost(b"12345") == 5 + FRAME_OVERHEAD


def test_memory_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RecordingStore(memory_limit=0)


def test_summary_reads_as_one_line() -> None:
    store = RecordingStore()
    key = open_stream(store, make_info())
    store.attach(key)
    store.add_frame(key, *records_frame(0, 3))
    text = str(store.summary())
    assert "\n" not in text
    assert text.startswith("1 recording, 1 stream (1 connected, 0 ended), 3 records")


# --- stream state and whole-stream eviction --------------------------------------------------


def test_stream_state_counts_against_the_limit() -> None:
    store = RecordingStore()
    info = make_info(app="a" * 200)
    raw = encode_frame(info_message(info))
    key = store.open_stream(info, raw).key
    assert store.bytes == store.stream(key).state_bytes == STREAM_OVERHEAD + len(raw) + sum(
        map(len, (info.application_id, info.recording_id, info.host, info.python_version,
                  info.package_version, info.entity_prefix)))
    assert "MiB held" in str(store.summary())


def attached(store: RecordingStore, info: RecordingInfo) -> StreamKey:
    key = open_stream(store, info)
    store.attach(key)
    return key


def test_idle_streams_without_frames_are_evicted_whole_oldest_first() -> None:
    one = stream_cost(make_info(recording_id="r0000"), encode_frame(info_message(make_info(recording_id="r0000"))))
    store = RecordingStore(memory_limit=10 * one)
    live = attached(store, make_info(recording_id="live"))
    store.add_frame(live, *records_frame(0, 3))
    for i in range(40):  # short connections: an INFO, then gone
        key = attached(store, make_info(recording_id=f"r{i:04d}"))
        store.detach(key)
        assert store.bytes <= store.memory_limit
    kept = [s.key.recording_id for s in store.streams()]
    assert kept[0] == "live" and store.stream(live).records_held == 3
    assert kept[1:] == [f"r{i:04d}" for i in range(40 - len(kept) + 1, 40)]  # the newest idle ones
    summary = store.summary()
    assert summary.streams_evicted == 40 - (len(kept) - 1) > 0
    assert f"{summary.streams_evicted} idle streams evicted" in str(summary)
    assert set(store.recordings) == set(kept)


def test_an_idle_stream_goes_whole_once_its_last_frame_is_evicted_and_counts_stay() -> None:
    raw, seen = records_frame(0, 5)
    info = make_info(recording_id="old")
    state = stream_cost(info, encode_frame(info_message(info)))
    store = RecordingStore(memory_limit=2 * state + frame_cost(raw) - 10)
    old = attached(store, info)
    store.add_frame(old, raw, seen)
    store.detach(old)
    assert store.stream(old).records_held == 5  # idle but holding a frame: kept
    new = attached(store, make_info(recording_id="new"))
    store.add_frame(new, *records_frame(0, 5))  # pushes the old frame out, then the old stream
    assert [s.key.recording_id for s in store.streams()] == ["new"]
    summary = store.summary()
    assert (summary.records, summary.evicted_records, summary.streams_evicted) == (10, 5, 1)
    assert store.bytes <= store.memory_limit


def test_a_connected_stream_is_never_evicted_whole() -> None:
    info = make_info()
    store = RecordingStore(memory_limit=100)  # less than one stream's state
    key = attached(store, info)
    store.add_frame(key, *records_frame(0, 2))
    assert store.stream(key).records == 2
    store.detach(key)
    assert key.recording_id not in store.recordings and store.bytes == 0
