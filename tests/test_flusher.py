"""Tests of ``rerun_logging.flusher``: the :class:`Flusher`, a handler's background half.

Driven as ``rerun_logging.handler`` drives it, without a handler: records captured
with ``capture.capture`` go into a :class:`~rerun_logging.handoff.Handoff`, the
sinks come from ``spec.parse_sinks`` (``memory``, ``save:PATH``), and the caller's
requests (flush, switch, stop) are waited on through the flusher's own tickets and
its thread, with deadlines. The tick (``flush_interval``) is a minute, so anything
that happens sooner happened because it was asked for, not because time passed.
Sinks of the tests' own (one that raises, one that records) are handed in as a
forked child's inherited sinks, the flusher's one way to take sink objects.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from rerun_logging import own_threads
from rerun_logging.capture import Captured, capture
from rerun_logging.flusher import Flusher, FlusherSettings, sink_drop_reason
from rerun_logging.format import (
    CODEC_MSGPACK,
    CODEC_ZLIB,
    TARGET_PAYLOAD_SIZE,
    Dropped,
    End,
    Message,
    Record,
    RecordingInfo,
    StreamDecoder,
)
from rerun_logging.handoff import Handoff
from rerun_logging.sinks import FileSink, MemorySink, Sink, SinkOptions
from rerun_logging.spec import parse_sinks

from .conftest import read_messages

TIMEOUT = 20.0
TICK = 60.0


def settings(**changes: object) -> FlusherSettings:
    values: dict[str, object] = dict(
        application_id="flusher-test", recording_id="rec-flusher", entity_prefix="",
        flush_interval=TICK, batch_size=4096, flush_timeout=5.0,
        sink_options=SinkOptions(buffer_size=1 << 20),
    )
    values.update(changes)
    return FlusherSettings(**values)  # type: ignore[arg-type]


def captured(i: int, message: str = "event %d", **extra: object) -> Captured:
    record = logging.LogRecord("app.part", logging.INFO, __file__, 10 + i, message, (i,), None,
                               func="work")
    record.__dict__.update(extra)
    return capture(record)


def records(messages: list[Message]) -> list[Record]:
    return [m for m in messages if isinstance(m, Record)]


class Collector(Sink):
    """A sink that keeps every frame it is given (it stays itself after a fork)."""

    name = "collector"

    def __init__(self) -> None:
        super().__init__()
        self.data = bytearray()
        self.closed = threading.Event()

    def _write(self, data: bytes) -> None:
        if not self.data:
            self.data += self._header
        self.data += data

    def close(self, end_frame: bytes, deadline: float) -> None:
        super().close(end_frame, deadline)
        self.closed.set()

    def messages(self) -> list[Message]:
        decoder = StreamDecoder("collector")
        decoder.feed(bytes(self.data))
        return list(decoder.messages())


class Exploding(Sink):
    """A sink whose ``write`` raises: a bug in a sink, not an I/O error it handles."""

    name = "exploding"

    def write(self, frame: bytes, records: int) -> None:
        raise RuntimeError("sink bug")


class PollBug(Collector):
    """A sink whose ``poll`` raises, every tick."""

    name = "pollbug"

    def poll(self, now: float) -> None:
        raise ValueError("poll bug")


class Running:
    """A started flusher, stopped (and joined) by :meth:`stop`."""

    def __init__(self, flusher: Flusher) -> None:
        self.flusher = flusher
        self.thread = flusher.start("test-flusher", flusher.settings)

    def flush(self) -> bool:
        ticket = self.flusher.request_flush(time.monotonic() + TIMEOUT)
        return self.flusher.wait_flushed(ticket, TIMEOUT)

    def stop(self) -> None:
        self.flusher.request_stop(time.monotonic() + TIMEOUT)
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), "the flusher did not stop"


@pytest.fixture
def running() -> Iterator[list[Running]]:
    """Flushers a test starts; each is stopped after it, whatever happened."""
    started: list[Running] = []
    yield started
    for run in started:
        if run.thread.is_alive():
            run.stop()


def start(started: list[Running], sink: str | None, handoff: Handoff, **changes: object) -> Running:
    flusher = Flusher(settings(**changes), handoff, parse_sinks(sink))
    run = Running(flusher)
    started.append(run)
    return run


# --- flush and stop ----------------------------------------------------------------------------


def test_a_flush_request_delivers_what_was_queued_before_it(tmp_path: Path, running: list[Running]) -> None:
    path = tmp_path / "flush.rrd"
    handoff = Handoff()
    run = start(running, f"save:{path}", handoff)
    handoff.queue.extend(captured(i) for i in range(5))
    assert run.flush()  # within TIMEOUT, not at the minute's tick
    got = records(read_messages(path, strict=False))
    assert [r.message for r in got] == [f"event {i}" for i in range(5)]
    assert [r.seq for r in got] == [0, 1, 2, 3, 4]
    assert handoff.counts().taken == 5 and not handoff.queue
    # a second request gets a later ticket, and the sequence goes on
    handoff.queue.extend(captured(i) for i in range(5, 8))
    first = run.flusher.request_flush(time.monotonic() + TIMEOUT)
    second = run.flusher.request_flush(time.monotonic() + TIMEOUT)
    assert second == first + 1
    assert run.flusher.wait_flushed(second, TIMEOUT)
    assert [r.seq for r in records(read_messages(path, strict=False))] == list(range(8))


def test_the_first_stream_header_names_the_handlers_recording(tmp_path: Path, running: list[Running]) -> None:
    path = tmp_path / "info.rrd"
    handoff = Handoff()
    run = start(running, f"save:{path}", handoff, entity_prefix="svc")
    handoff.queue.append(captured(0))
    assert run.flush()
    info, record = read_messages(path, strict=False)
    assert isinstance(info, RecordingInfo) and isinstance(record, Record)
    assert (info.application_id, info.recording_id, info.pid, info.entity_prefix) == (
        "flusher-test", "rec-flusher", os.getpid(), "svc")
    assert record.entity_path == "svc/app/part"


def test_a_stop_request_delivers_the_rest_and_ends_the_stream(tmp_path: Path, running: list[Running]) -> None:
    path = tmp_path / "stop.rrd"
    handoff = Handoff()
    run = start(running, f"save:{path}", handoff)
    handoff.queue.extend(captured(i) for i in range(300))
    run.stop()
    messages = read_messages(path)  # strict: the stream is whole
    assert messages[-1] == End()
    assert [r.seq for r in records(messages)] == list(range(300))
    # a flush asked after the thread ended is answered at once (a timeout would be False)
    ticket = run.flusher.request_flush(time.monotonic() + TIMEOUT)
    assert run.flusher.wait_flushed(ticket, TIMEOUT)


def test_the_flusher_thread_is_one_of_the_packages_own_while_it_runs(running: list[Running]) -> None:
    run = start(running, "memory", Handoff())
    assert run.flush()
    assert run.flusher.ident == run.thread.ident and run.thread.ident in own_threads.OWN
    assert run.thread.daemon and run.thread.name == "test-flusher"
    run.stop()
    assert run.thread.ident not in own_threads.OWN


def test_finish_without_thread_writes_an_empty_valid_stream(tmp_path: Path) -> None:
    path = tmp_path / "empty.rrd"
    flusher = Flusher(settings(), Handoff(), parse_sinks(f"save:{path}"))
    flusher.finish_without_thread(settings(), time.monotonic() + TIMEOUT)
    assert flusher.thread is None
    info, end = read_messages(path)
    assert isinstance(info, RecordingInfo) and info.application_id == "flusher-test"
    assert end == End()
    assert isinstance(flusher.sinks[0], FileSink)


def test_finish_without_thread_still_writes_what_was_queued(tmp_path: Path) -> None:
    path = tmp_path / "late.rrd"
    handoff = Handoff()
    handoff.queue.extend(captured(i) for i in range(3))
    Flusher(settings(), handoff, parse_sinks(f"save:{path}")).finish_without_thread(
        settings(), time.monotonic() + TIMEOUT)
    messages = read_messages(path)
    assert [r.seq for r in records(messages)] == [0, 1, 2] and messages[-1] == End()


# --- switching sinks ---------------------------------------------------------------------------


def test_a_switch_replaces_the_sinks_tuple_whole_and_replays_the_buffer_first(
    tmp_path: Path, running: list[Running],
) -> None:
    path = tmp_path / "switched.rrd"
    handoff = Handoff()
    run = start(running, "memory", handoff)
    handoff.queue.extend(captured(i) for i in range(4))
    assert run.flush()
    before = run.flusher.sinks
    (buffer,) = before
    assert isinstance(buffer, MemorySink) and buffer.buffered_records == 4

    new_specs = parse_sinks(f"save:{path}")
    run.flusher.request_switch(new_specs)
    assert run.flusher.switching_to == new_specs
    handoff.queue.extend(captured(i) for i in range(4, 6))
    assert run.flush()
    after = run.flusher.sinks
    assert isinstance(after, tuple) and after is not before
    assert before == (buffer,)  # a snapshot taken before the switch is still whole
    (saver,) = after
    assert isinstance(saver, FileSink) and saver.written == 6
    assert run.flusher.specs == new_specs and run.flusher.switching_to is None
    assert buffer.buffered_records == 0  # handed on, not kept twice
    run.stop()
    messages = read_messages(path)
    assert [r.seq for r in records(messages)] == list(range(6))  # the buffer's, then the new
    assert messages[-1] == End()


def test_a_switch_reports_what_the_buffer_evicted_before_its_frames(
    tmp_path: Path, running: list[Running],
) -> None:
    path = tmp_path / "evicted.rrd"
    handoff = Handoff()
    run = start(running, "memory", handoff, sink_options=SinkOptions(buffer_size=2048))
    for i in range(40):  # one frame per flush: the buffer keeps the newest whole frames
        handoff.queue.append(captured(i, "padding %d " + "p" * 200))
        assert run.flush()
    (buffer,) = run.flusher.sinks
    evicted, held = buffer.dropped, buffer.buffered_records
    assert evicted > 0 and evicted + held == 40
    run.flusher.request_switch(parse_sinks(f"save:{path}"))
    assert run.flush()
    assert run.flusher.retired_drops == {sink_drop_reason("memory"): evicted}
    run.stop()
    messages = read_messages(path)
    first_record = next(i for i, m in enumerate(messages) if isinstance(m, Record))
    (dropped,) = [m for m in messages if isinstance(m, Dropped)]
    assert messages.index(dropped) < first_record
    assert dropped == Dropped(evicted, "buffer full: oldest records dropped")
    assert [r.seq for r in records(messages)] == list(range(evicted, 40))


# --- failures are contained ---------------------------------------------------------------------


def test_a_sink_whose_write_raises_counts_the_loss_and_the_others_still_get_the_frame(
    running: list[Running], capfd: pytest.CaptureFixture[str],
) -> None:
    handoff = Handoff()
    exploding, collector = Exploding(), Collector()
    flusher = Flusher(settings(), handoff, parse_sinks("memory"), inherited=[exploding, collector])
    assert flusher.inherits
    run = Running(flusher)
    running.append(run)
    handoff.queue.extend(captured(i) for i in range(7))
    assert run.flush()
    assert run.flusher.sinks == (exploding, collector)  # the inherited ones, not the spec's
    handoff.queue.extend(captured(i) for i in range(7, 10))
    assert run.flush()
    assert (exploding.dropped, exploding.written) == (10, 0)  # counted by the sink itself
    assert [r.seq for r in records(collector.messages())] == list(range(10))
    assert collector.written == 10 and collector.dropped == 0
    err = capfd.readouterr().err
    assert err.count("rerun-logging: exploding: unexpected error RuntimeError('sink bug')") == 2


def test_a_step_that_raises_is_reported_and_the_loop_goes_on(
    running: list[Running], capfd: pytest.CaptureFixture[str],
) -> None:
    handoff = Handoff()
    buggy = PollBug()
    run = Running(Flusher(settings(), handoff, (), inherited=[buggy]))
    running.append(run)
    for i in range(3):
        handoff.queue.append(captured(i))
        assert run.flush()  # every pass polls, fails, and still answers
    run.stop()
    assert [r.seq for r in records(buggy.messages())] == [0, 1, 2]
    assert buggy.messages()[-1] == End()
    err = capfd.readouterr().err
    assert err.count("rerun-logging: internal error in the flusher (pollbug poll): "
                     "ValueError('poll bug')") >= 3


def test_a_sink_that_raises_at_close_does_not_cost_the_others_their_end(running: list[Running]) -> None:
    handoff = Handoff()
    exploding, collector = Exploding(), Collector()
    run = Running(Flusher(settings(), handoff, (), inherited=[exploding, collector]))
    running.append(run)
    handoff.queue.extend(captured(i) for i in range(3))
    run.stop()
    assert [r.seq for r in records(collector.messages())] == [0, 1, 2]
    assert collector.closed.is_set() and collector.messages()[-1] == End()


def test_an_unencodable_record_is_dropped_and_counted_and_the_rest_of_its_batch_written(
    running: list[Running],
) -> None:
    handoff = Handoff()
    collector = Collector()
    run = Running(Flusher(settings(), handoff, (), inherited=[collector]))
    running.append(run)
    batch = [captured(i) for i in range(10)]
    batch[5]["created"] = "not a time"  # what no record_columns can turn into a time
    handoff.queue.extend(batch)
    assert run.flush()
    counts = handoff.counts()
    (reason,) = counts.dropped
    assert reason.startswith("record could not be encoded: TypeError(") and counts.dropped[reason] == 1
    assert counts.refused == 0 and counts.taken == 10
    messages = collector.messages()
    got = records(messages)
    assert [r.message for r in got] == [f"event {i}" for i in range(10) if i != 5]
    assert [r.seq for r in got] == list(range(9))  # the lost record takes no number
    (dropped,) = [m for m in messages if isinstance(m, Dropped)]
    assert dropped == Dropped(1, reason)
    assert messages.index(dropped) < messages.index(got[0])  # said in the first frame after
    assert handoff.take_reports() == {}  # reported once, in the stream


def test_a_batch_past_the_target_payload_is_split_into_several_frames(running: list[Running]) -> None:
    handoff = Handoff()
    collector = Collector()
    run = Running(Flusher(settings(), handoff, (), inherited=[collector]))
    running.append(run)
    text = os.urandom(24_000).hex()  # 48 KB that does not deflate away
    count = TARGET_PAYLOAD_SIZE // len(text) * 2 + 3
    handoff.queue.extend(captured(i, "%d " + text) for i in range(count))
    assert run.flush()
    decoder = StreamDecoder("collector")
    decoder.feed(bytes(collector.data))
    frames = list(decoder.frames())[1:]  # after the INFO
    assert len(frames) >= 3
    assert all(len(f.payload) <= TARGET_PAYLOAD_SIZE for f in frames)
    decoder = StreamDecoder("collector")
    decoder.feed(bytes(collector.data))
    assert [r.seq for r in records(list(decoder.messages()))] == list(range(count))


class Decoding(Collector):
    """A sink that decodes each frame at once (as the rerun sink does): no zlib for it."""

    name = "decoding"
    stores_frames = False

    def __init__(self) -> None:
        super().__init__()
        self.codecs: list[int] = []

    def write(self, frame: bytes, records: int) -> None:
        if records:
            self.codecs.append(frame[4])  # size (u32), then the codec byte
        super().write(frame, records)


@pytest.mark.parametrize("with_a_file", [False, True])
def test_frames_are_deflated_only_when_a_sink_keeps_their_bytes(
    running: list[Running], with_a_file: bool,
) -> None:
    handoff = Handoff()
    decoding = Decoding()
    sinks = [decoding, Collector()] if with_a_file else [decoding]
    run = Running(Flusher(settings(), handoff, (), inherited=sinks))
    running.append(run)
    handoff.queue.extend(captured(i, "the same long message that deflates well %d") for i in range(200))
    assert run.flush()
    assert decoding.codecs == [CODEC_ZLIB if with_a_file else CODEC_MSGPACK]
    assert [r.message for r in records(decoding.messages())] == [
        f"the same long message that deflates well {i}" for i in range(200)]
