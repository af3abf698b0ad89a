"""Tests of ``rerun_logging.sinks.stdout``: the framed stream on a file descriptor (1 by default).

The sink writes into real pipes (``os.pipe``) and a real terminal (``pty.openpty``);
what arrives is read back with the one decoder. One subprocess checks that the mode
writes to its process's own standard output. (``tests/test_cli.py`` pipes a handler's
``stdout`` sink into ``rerun-logging print -``; ``tests/test_handler.py`` a reader that
never reads.)
"""

from __future__ import annotations

import errno
import logging
import os
import pty
import select
import subprocess
import sys
import time
from typing import Iterator

import pytest

from rerun_logging.format import (
    Dropped,
    End,
    Message,
    Record,
    RecordingInfo,
    StreamDecoder,
    encode_frame,
    encode_records,
    end_message,
    stream_header,
)
from rerun_logging.sinks import SinkOptions, SinkStats, StdoutSink, mode_of, open_sink
from rerun_logging.spec import parse_sinks

from .conftest import child_env

INFO = RecordingInfo("piped", "rec-stdout", 1_765_000_000_000_000_000, "host", 99, "3.11", "0.1")
HEADER = stream_header(INFO)
END = encode_frame(end_message())


def records_frame(first: int, count: int, text: str = "") -> bytes:
    return encode_frame(encode_records([
        Record(seq=first + i, time_ns=i, level=logging.INFO, level_name="INFO", entity_path="p",
               logger="p", message=f"line {first + i}{text}")
        for i in range(count)
    ]))


def read_available(fd: int) -> bytes:
    """Everything that can be read from ``fd`` now, without blocking."""
    out = bytearray()
    while select.select([fd], [], [], 0)[0]:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError as error:  # a pty's master reads EIO once the slave is closed
            if error.errno == errno.EIO:
                break
            raise
        if not chunk:
            break
        out += chunk
    return bytes(out)


def decoded(data: bytes) -> list[Message]:
    decoder = StreamDecoder("<pipe>")
    decoder.feed(data)
    messages = list(decoder.messages())
    decoder.close()
    return messages


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A real pipe (read end, write end); both closed after the test."""
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def test_a_stream_written_to_a_pipe_is_header_frames_then_end(pipe: tuple[int, int]) -> None:
    r, w = pipe
    sink = StdoutSink(fd=w)
    sink.start(HEADER)
    assert read_available(r) == b""  # start writes nothing: the header goes with the first frame
    frames = [records_frame(0, 3), records_frame(3, 2)]
    for data, count in zip(frames, (3, 2)):
        sink.write(data, count)
    sink.close(END, time.monotonic() + 5)
    data = read_available(r)
    assert data == HEADER + b"".join(frames) + END  # the header once, frames unchanged
    messages = decoded(data)
    assert messages[0] == INFO and messages[-1] == End()
    assert [m.seq for m in messages if isinstance(m, Record)] == [0, 1, 2, 3, 4]
    # counters: the records written, the bytes of the frames (the header is not counted)
    assert sink.stats() == SinkStats("stdout", 5, 0, sum(map(len, frames)) + len(END), None, 0)


def test_a_frame_larger_than_the_pipe_arrives_whole(pipe: tuple[int, int]) -> None:
    """``os.write`` may take part of a frame: the sink writes the rest (a reader drains)."""
    import threading

    r, w = pipe
    received = bytearray()
    done = threading.Event()

    def drain() -> None:
        while chunk := os.read(r, 1 << 16):
            received.extend(chunk)
        done.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    big = encode_frame(os.urandom(3 << 20), compress=False)  # far past a pipe's 64 KiB
    sink = StdoutSink(fd=w)
    sink.start(HEADER)
    sink.write(big, 1)
    sink.close(END, time.monotonic() + 5)
    os.close(w)
    assert done.wait(30)
    assert bytes(received) == HEADER + big + END
    assert sink.written == 1 and sink.dropped == 0


def test_a_terminal_is_refused_once_and_its_records_are_counted(capsys: pytest.CaptureFixture[str]) -> None:
    master, slave = pty.openpty()
    try:
        sink = StdoutSink(fd=slave)
        sink.start(HEADER)
        for first in (0, 4, 8):
            sink.write(records_frame(first, 4), 4)
        sink.close(END, time.monotonic() + 1)
        assert read_available(master) == b""  # nothing binary reached the terminal
    finally:
        os.close(slave)
        os.close(master)
    assert (sink.written, sink.dropped) == (0, 12)
    assert sink.error is not None and sink.error.startswith(
        "RuntimeError: standard output is a terminal; pipe it instead: python ")
    assert sink.error.endswith(" | rerun-logging print -")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("rerun-logging: stdout: RuntimeError: standard output is a terminal")


def test_after_fork_the_child_writes_nothing_and_counts_its_records(
    pipe: tuple[int, int], capsys: pytest.CaptureFixture[str],
) -> None:
    r, w = pipe
    parent = StdoutSink(fd=w)
    child = parent.after_fork()
    assert isinstance(child, StdoutSink) and child is not parent
    child.start(HEADER)
    child.write(records_frame(0, 5), 5)
    child.close(END, time.monotonic() + 1)
    assert read_available(r) == b""  # the parent's pipe carries only the parent's stream
    assert (child.written, child.dropped) == (0, 5)
    assert child.error == (f"RuntimeError: process {os.getpid()} is a forked child; standard output "
                           "carries the parent's stream")
    assert "forked child" in capsys.readouterr().err
    # the parent is unaffected: its stream still goes through
    parent.start(HEADER)
    parent.write(records_frame(0, 1), 1)
    assert decoded(read_available(r))[1:] == decoded(HEADER + records_frame(0, 1))[1:]


def test_a_pipe_whose_reader_is_gone_counts_the_loss(pipe: tuple[int, int], capsys: pytest.CaptureFixture[str]) -> None:
    r, w = pipe
    os.close(r)  # Python ignores SIGPIPE: the write fails with EPIPE
    sink = StdoutSink(fd=w)
    sink.start(HEADER)
    sink.write(records_frame(0, 3), 3)
    sink.write(records_frame(3, 3), 3)
    assert (sink.written, sink.dropped, sink.error) == (0, 6, "Broken pipe")
    (line,) = capsys.readouterr().err.splitlines()  # said once, not per frame
    assert line == "rerun-logging: stdout: Broken pipe; records are dropped (counted) until it can write again"


def test_the_mode_refuses_in_a_forked_child_handler_and_writes_nowhere() -> None:
    (spec,) = parse_sinks("stdout")
    mode = mode_of(spec)
    assert mode.writes_here and mode.top_process_only
    sink = open_sink(spec, SinkOptions(buffer_size=1024, forked=True))
    assert isinstance(sink, StdoutSink)
    sink.start(HEADER)
    sink.write(records_frame(0, 2), 2)  # refused before any write: fd 1 is not touched
    assert (sink.written, sink.dropped) == (0, 2) and "forked child" in (sink.error or "")


def test_the_mode_writes_a_valid_stream_to_the_processes_own_standard_output() -> None:
    """The default descriptor is the process's standard output, here a pipe to this test."""
    code = (
        "import sys, time\n"
        "from rerun_logging.sinks import SinkOptions, open_sink\n"
        "from rerun_logging.spec import parse_sinks\n"
        "header, frame, end = (bytes.fromhex(a) for a in sys.argv[1:])\n"
        "sink = open_sink(parse_sinks('stdout')[0], SinkOptions(buffer_size=1024))\n"
        "sink.start(header)\n"
        "sink.write(frame, 4)\n"
        "sink.close(end, time.monotonic() + 5)\n"
        "sys.stderr.write(f'{sink.written} {sink.dropped} {sink.error}')\n"
    )
    frame = records_frame(0, 4)
    done = subprocess.run(
        [sys.executable, "-c", code, HEADER.hex(), frame.hex(), END.hex()], env=child_env(),
        stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b"4 0 None"
    assert done.stdout == HEADER + frame + END
    assert [m.seq for m in decoded(done.stdout) if isinstance(m, Record)] == [0, 1, 2, 3]


def test_a_frame_begun_on_a_full_non_blocking_pipe_is_finished_before_anything_else(
    pipe: tuple[int, int],
) -> None:
    """Stopping half-way would tear the stream: the frame the pipe took part of is
    finished on the next ticks, once the reader drains; nothing is lost."""
    r, w = pipe
    os.set_blocking(w, False)
    sink = StdoutSink(fd=w)
    sink.start(HEADER)
    sink.write(records_frame(0, 2), 2)
    big = records_frame(2, 50, os.urandom(50_000).hex())  # about 5 MB, larger than the pipe
    sink.write(big, 50)
    assert (sink.written, sink.dropped) == (52, 0)  # begun: it will be finished
    received = drain_while_ticking(r, sink)
    sink.write(records_frame(52, 2), 2)
    sink.close(END, time.monotonic() + 5)
    received += read_available(r)
    messages = decoded(bytes(received))
    assert [m.seq for m in messages if isinstance(m, Record)] == list(range(54))
    assert messages[-1] == End()


def test_a_frame_that_finds_the_pipe_full_is_dropped_whole_and_reported(
    pipe: tuple[int, int],
) -> None:
    """While a begun frame waits for the reader, the next is dropped (counted), and the
    stream says so once the pipe drains; the reader's stream is never torn."""
    r, w = pipe
    os.set_blocking(w, False)
    sink = StdoutSink(fd=w)
    sink.start(HEADER)
    sink.write(records_frame(0, 50, os.urandom(50_000).hex()), 50)
    sink.write(records_frame(50, 2), 2)  # the big one is still half written: no room
    assert (sink.written, sink.dropped) == (50, 2)
    received = drain_while_ticking(r, sink)
    sink.write(records_frame(52, 2), 2)
    sink.close(END, time.monotonic() + 5)
    received += read_available(r)
    messages = decoded(bytes(received))
    assert [m.seq for m in messages if isinstance(m, Record)] == [*range(50), 52, 53]
    (dropped,) = [m for m in messages if isinstance(m, Dropped)]
    assert dropped.count == 2 and messages[-1] == End()


def drain_while_ticking(r: int, sink: StdoutSink) -> bytearray:
    """Read what the pipe holds while the sink ticks, until its begun frame is written."""
    received = bytearray()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        select.select([r], [], [], 1.0)
        received += read_available(r)
        sink.poll(time.monotonic())
        if not sink._rest:
            return received
    raise AssertionError("the begun frame was never finished")
