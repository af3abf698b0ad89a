"""RerunHandler: buffering, save, flush and close, drops, fork, environment, failures."""

from __future__ import annotations

import json
import re
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from rerun_logging import Dropped, End, Record, RecordingInfo, RerunHandler
from rerun_logging.format import RecordingError, StreamDecoder

from .conftest import child_env, read_messages, run_python


def records_of(messages: list) -> list[Record]:
    return [m for m in messages if isinstance(m, Record)]


def test_init_does_no_io(tmp_path: Path) -> None:
    path = tmp_path / "run.rrd"
    before = threading.active_count()
    handler = RerunHandler(f"save:{path}")
    assert not path.exists()
    assert threading.active_count() == before
    handler.close()
    assert [type(m) for m in read_messages(path)] == [RecordingInfo, End]


def test_save_round_trip(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "run.rrd"
    handler = RerunHandler(f"save:{path}", application_id="roundtrip", entity_prefix="svc")
    logger.addHandler(handler)
    for i in range(1000):
        logger.info("request %d done", i, extra={"user": "u", "n": i})
    handler.close()
    messages = read_messages(path)
    info = messages[0]
    assert isinstance(info, RecordingInfo)
    assert (info.application_id, info.pid, info.entity_prefix) == ("roundtrip", os.getpid(), "svc")
    records = records_of(messages)
    assert [r.seq for r in records] == list(range(1000))
    assert [r.extras for r in records] == [{"user": "u", "n": i} for i in range(1000)]
    assert records[7].message == "request 7 done"
    assert records[7].template == "request %d done"
    assert records[7].entity_path == "svc/" + logger.name.replace(".", "/")
    assert isinstance(messages[-1], End)
    assert handler.stats.sinks[0].written == 1000


def test_flush_writes_everything_before_it(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "run.rrd"
    handler = RerunHandler(f"save:{path}", flush_interval=60)
    logger.addHandler(handler)
    for i in range(10):
        logger.warning("w%d", i)
    assert handler.flush(timeout=10)
    assert [r.message for r in records_of(read_messages(path, strict=False))] == [
        f"w{i}" for i in range(10)
    ]


def test_while_the_app_logs_fast_the_flusher_takes_full_batches(tmp_path: Path, logger: logging.Logger) -> None:
    """Woken by a full batch, the flusher takes the full batches only and leaves the rest
    to the next one (or its timer, at most ``flush_interval``): a flusher faster than the
    app must not cut a small batch, each costing a batch's fixed work, at every wake.
    (No timer here: the flush interval is longer than the test.)"""
    path = tmp_path / "full.rrd"
    handler = RerunHandler(f"save:{path}", batch_size=500, flush_interval=600)
    logger.addHandler(handler)
    for n in range(20_000):  # the flusher's writes release the GIL: the app logs meanwhile
        logger.info("n %d", n)
    handler.close()
    decoder = StreamDecoder("full")
    decoder.feed(path.read_bytes())
    batches = list(decoder.frames())[1:-1]  # after INFO, before END
    assert len(batches) <= 20_000 // 500 + 2  # the first record's own wake-up, and what close takes
    assert [r.message for r in read_messages(path) if isinstance(r, Record)] == [f"n {n}" for n in range(20_000)]


def test_a_flusher_that_cannot_start_yet_loses_no_record(
    tmp_path: Path, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No thread to be had at the first record (the process is at its limit): the error
    is reported, the record waits in the queue, and the next record starts the flusher."""
    path = tmp_path / "run.rrd"
    handler = RerunHandler(f"save:{path}")
    logger.addHandler(handler)
    start = threading.Thread.start

    def exhausted(thread: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", exhausted)
    logger.info("first, while no thread starts")
    monkeypatch.setattr(threading.Thread, "start", start)
    assert "can't start new thread" in capsys.readouterr().err
    logger.info("second")
    handler.close()
    assert [r.message for r in records_of(read_messages(path))] == [
        "first, while no thread starts", "second",
    ]


def test_buffer_then_save_in_order(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "late.rrd"
    handler = RerunHandler()
    logger.addHandler(handler)
    for i in range(300):
        logger.info("early %d", i)
    handler.set_sink(f"save:{path}")
    for i in range(300):
        logger.info("late %d", i)
    handler.close()
    records = records_of(read_messages(path))
    assert [r.message for r in records] == [f"early {i}" for i in range(300)] + [
        f"late {i}" for i in range(300)
    ]
    assert [r.seq for r in records] == list(range(600))


def test_buffer_overflow_drops_oldest_counted_exactly(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "overflow.rrd"
    handler = RerunHandler(buffer_size=4096)
    logger.addHandler(handler)
    total = 2000
    for i in range(total):
        logger.info("filler %d %s", i, "x" * 50)
        if i % 20 == 19:
            assert handler.flush(timeout=10)
    buffered = handler.stats.sinks[0]
    assert buffered.dropped > 0
    handler.set_sink(f"save:{path}")
    handler.close()
    messages = read_messages(path)
    dropped = [m for m in messages if isinstance(m, Dropped)]
    records = records_of(messages)
    assert len(dropped) == 1 and dropped[0].count == buffered.dropped
    assert "buffer full" in dropped[0].reason
    assert messages.index(dropped[0]) < messages.index(records[0])
    assert dropped[0].count + len(records) == total
    first = total - len(records)
    assert [r.message for r in records] == [f"filler {i} {'x' * 50}" for i in range(first, total)]


def test_several_sinks_get_the_same_stream(tmp_path: Path, logger: logging.Logger) -> None:
    a, b = tmp_path / "a.rrd", tmp_path / "b.rrd"
    handler = RerunHandler([f"save:{a}", f"save:{b}"])
    logger.addHandler(handler)
    for i in range(50):
        logger.error("e%d", i, extra={"i": i})
    handler.close()
    assert records_of(read_messages(a)) == records_of(read_messages(b))
    assert len(records_of(read_messages(a))) == 50


def test_close_twice_and_logging_after_close(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "closed.rrd"
    handler = RerunHandler(f"save:{path}")
    logger.addHandler(handler)
    logger.info("before")
    handler.close()
    handler.close()
    logger.info("after 1")
    logger.info("after 2")
    stats = handler.stats
    assert stats.dropped_by_reason == {"logged after close": 2}
    assert stats.emitted == 3
    assert [r.message for r in records_of(read_messages(path))] == ["before"]


def test_off_does_nothing(tmp_path: Path, logger: logging.Logger) -> None:
    handler = RerunHandler("off")
    logger.addHandler(handler)
    before = threading.active_count()
    logger.info("nothing")
    assert threading.active_count() == before
    assert handler.stats.emitted == 0


def test_queue_bound_drops_are_counted(tmp_path: Path, logger: logging.Logger) -> None:
    """A sink that blocks (a FIFO nobody opened yet) never blocks the app; drops are exact."""
    fifo = tmp_path / "slow.fifo"
    os.mkfifo(fifo)
    handler = RerunHandler(f"save:{fifo}", queue_size=100, batch_size=50)
    logger.addHandler(handler)
    for i in range(5000):
        logger.info("burst %d", i)
    received = bytearray()

    def read_all() -> None:
        with open(fifo, "rb") as reader:
            while chunk := reader.read(65536):
                received.extend(chunk)

    reader = threading.Thread(target=read_all)
    reader.start()
    handler.close()
    reader.join(timeout=30)
    stats = handler.stats
    decoder = StreamDecoder(str(fifo))
    decoder.feed(bytes(received))
    messages = list(decoder.messages())
    decoder.close()
    records = records_of(messages)
    reported = sum(m.count for m in messages if isinstance(m, Dropped))
    assert stats.emitted == 5000
    assert reported == stats.dropped >= 5000 - 150
    assert len(records) + reported == 5000
    assert records[-1].message == "burst 4999"


def test_disk_full_is_reported_and_counted(logger: logging.Logger, capfd: pytest.CaptureFixture[str]) -> None:
    handler = RerunHandler("save:/dev/full")
    logger.addHandler(handler)
    for i in range(100):
        logger.info("lost %d", i)
    assert handler.flush(timeout=10)
    logger.info("still running")
    handler.close()
    sink = handler.stats.sinks[0]
    assert sink.written == 0 and sink.dropped == 101
    err = capfd.readouterr().err
    assert err.count("No space left on device") == 1, err


def test_missing_directory_is_reported(tmp_path: Path, logger: logging.Logger, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "no" / "such" / "dir" / "run.rrd"
    handler = RerunHandler(f"save:{path}")
    logger.addHandler(handler)
    logger.info("x")
    handler.close()
    err = capfd.readouterr().err
    assert "No such file or directory" in err and str(path) in err
    assert handler.stats.sinks[0].dropped == 1
    assert not path.exists()


def test_disk_clears_then_dropped_message_precedes_new_frames(tmp_path: Path, logger: logging.Logger) -> None:
    """A file that could not be written at first gets a dropped message, then records."""
    directory = tmp_path / "later"
    path = directory / "run.rrd"
    handler = RerunHandler(f"save:{path}", flush_interval=60)
    logger.addHandler(handler)
    logger.info("lost")
    assert handler.flush(timeout=10)
    directory.mkdir()
    logger.info("kept")
    handler.close()
    messages = read_messages(path)
    assert [type(m) for m in messages] == [RecordingInfo, Dropped, Record, End]
    assert messages[1].count == 1 and "No such file" in messages[1].reason


def test_bad_spec_raises_clearly() -> None:
    with pytest.raises(ValueError, match="unknown sink 'bogus'"):
        RerunHandler("bogus")
    with pytest.raises(ValueError, match="port 70000 out of range in 'serve:127.0.0.1:70000'"):
        RerunHandler("serve:127.0.0.1:70000")
    with pytest.raises(ValueError, match="flush_timeout must be positive"):
        RerunHandler(flush_timeout=0)


def test_environment_overrides_configured_sink(tmp_path: Path) -> None:
    path = tmp_path / "env.rrd"
    code = textwrap.dedent(
        """
        import logging, rerun_logging
        logging.getLogger().addHandler(rerun_logging.RerunHandler("save:configured.rrd"))
        logging.getLogger().warning("hello from env")
        """
    )
    result = run_python(code, cwd=tmp_path, env={"RERUN_LOGGING_SINK": f"save:{path}"})
    assert result.returncode == 0, result.stderr
    assert [r.message for r in records_of(read_messages(path))] == ["hello from env"]
    assert not (tmp_path / "configured.rrd").exists()


@pytest.mark.parametrize(
    "value, reason",
    [("bogus", "unknown sink 'bogus'"), ("serve:x", "expected HOST:PORT"), ("save:", "needs a path")],
)
def test_bad_environment_value_keeps_configured_sink(tmp_path: Path, value: str, reason: str) -> None:
    code = textwrap.dedent(
        """
        import logging, rerun_logging
        for _ in range(2):
            logging.getLogger().addHandler(rerun_logging.RerunHandler("save:configured.rrd"))
        logging.getLogger().warning("kept")
        """
    )
    result = run_python(code, cwd=tmp_path, env={"RERUN_LOGGING_SINK": value})
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "RERUN_LOGGING_SINK" in lines[0] and repr(value) in lines[0] and reason in lines[0]
    # two handlers on one path: both streams are in the file (it is appended to, never cut)
    assert [r.message for r in records_of(read_messages(tmp_path / "configured.rrd"))] == ["kept"] * 2


def test_normal_exit_ends_the_stream(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import logging, rerun_logging
        logging.basicConfig(level=logging.INFO, handlers=[rerun_logging.RerunHandler("save:exit.rrd")])
        for i in range(20000):
            logging.info("n=%d", i)
        """
    )
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    messages = read_messages(tmp_path / "exit.rrd")
    assert len(records_of(messages)) == 20000 and isinstance(messages[-1], End)


def test_fork_child_writes_its_own_stream(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import logging, os, sys, rerun_logging
        log = logging.getLogger("app")
        log.setLevel(logging.INFO)
        log.addHandler(rerun_logging.RerunHandler("save:run.rrd"))
        for i in range(10):
            log.info("parent before %d", i)
        pid = os.fork()
        if pid == 0:
            for i in range(10):
                log.info("child %d", i)
            sys.exit(0)
        os.waitpid(pid, 0)
        for i in range(10):
            log.info("parent after %d", i)
        print(pid)
        """
    )
    result = run_python(code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    child_pid = int(result.stdout)
    parent = read_messages(tmp_path / "run.rrd")
    child = read_messages(tmp_path / f"run.{child_pid}.rrd")
    assert [r.message for r in records_of(parent)] == [f"parent before {i}" for i in range(10)] + [
        f"parent after {i}" for i in range(10)
    ]
    assert [r.message for r in records_of(child)] == [f"child {i}" for i in range(10)]
    assert child[0].pid == child_pid and child[0].recording_id == parent[0].recording_id
    assert {r.process for r in records_of(child)} == {child_pid}
    assert isinstance(parent[-1], End) and isinstance(child[-1], End)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing_workers_end_their_streams(tmp_path: Path, method: str) -> None:
    code = textwrap.dedent(
        f"""
        import logging, multiprocessing, os, rerun_logging

        def setup():
            log = logging.getLogger("worker")
            if not log.handlers:
                log.addHandler(rerun_logging.RerunHandler("save:run.rrd" if os.getpid() == MAIN else f"save:run.{{os.getpid()}}.rrd"))
            log.setLevel(logging.INFO)
            return log

        def work(n):
            setup().info("work %d in %d", n, os.getpid())

        if __name__ == "__main__":
            MAIN = os.getpid()
            setup().info("main")
            ctx = multiprocessing.get_context("{method}")
            procs = [ctx.Process(target=work, args=(n,)) for n in range(3)]
            for p in procs: p.start()
            for p in procs: p.join()
            print(" ".join(str(p.pid) for p in procs))
        else:
            MAIN = None
        """
    )
    script = tmp_path / "mp.py"
    script.write_text(code)
    env = child_env()
    result = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    for pid in map(int, result.stdout.split()):
        messages = read_messages(tmp_path / f"run.{pid}.rrd")
        assert isinstance(messages[-1], End), f"worker {pid} did not end its stream"
        assert [r.message for r in records_of(messages)] == [f"work {n} in {pid}" for n in [
            int(records_of(messages)[0].message.split()[1])
        ]]
        assert records_of(messages)[0].process == pid


def test_kill_9_leaves_a_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "killed.rrd"
    code = textwrap.dedent(
        f"""
        import logging, itertools, rerun_logging
        log = logging.getLogger("victim")
        log.setLevel(logging.INFO)
        log.addHandler(rerun_logging.RerunHandler("save:{path}", flush_interval=0.01))
        for i in itertools.count():
            log.info("line %d", i, extra={{"i": i}})
        """
    )
    env = child_env()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.monotonic() + 30
        while not (path.exists() and path.stat().st_size > 200_000):
            assert time.monotonic() < deadline, "the writer never wrote 200 kB"
            assert proc.poll() is None, "the writer died"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    decoder = StreamDecoder(str(path))
    decoder.feed(path.read_bytes())
    records = records_of(list(decoder.messages()))
    assert len(records) > 1000
    assert [r.extras["i"] for r in records] == list(range(len(records)))
    try:
        decoder.close()
    except RecordingError as error:
        assert "stream ends inside a frame" in str(error)
    assert not decoder.ended


def test_app_is_not_blocked_by_a_reader_that_never_reads(tmp_path: Path) -> None:
    """stdout into a pipe nobody reads: the app finishes, bounded, and says what it lost."""
    code = textwrap.dedent(
        """
        import json, logging, sys, time, rerun_logging
        handler = rerun_logging.RerunHandler("stdout", queue_size=5000, flush_timeout=1.0)
        log = logging.getLogger("blocked")
        log.setLevel(logging.INFO)
        log.addHandler(handler)
        start = time.monotonic()
        for i in range(200000):
            log.info("payload %d %s", i, "y" * 40)
        stats = handler.stats
        sys.stderr.write(json.dumps({"loop": time.monotonic() - start, "emitted": stats.emitted,
                                     "dropped": stats.dropped, "pending_max": 5000}) + "\\n")
        """
    )
    env = child_env()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    start = time.monotonic()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the app blocked on a pipe nobody reads")
    elapsed = time.monotonic() - start
    stream = proc.stdout.read()
    err = proc.stderr.read().decode().splitlines()
    proc.stdout.close()
    proc.stderr.close()
    stats = json.loads(err[0])
    assert stats["emitted"] == 200000 and stats["dropped"] > 0
    assert "not delivered" in err[-1]
    undelivered = int(re.search(r"(\d+) records? not delivered", err[-1]).group(1))
    decoder = StreamDecoder("<pipe>")
    decoder.feed(stream)
    messages = list(decoder.messages())
    received = len(records_of(messages))
    reported = sum(m.count for m in messages if isinstance(m, Dropped))
    assert received + stats["dropped"] + undelivered == 200000, (received, stats, undelivered)
    assert reported <= stats["dropped"]
    assert elapsed < 30


def test_a_handler_that_failed_to_build_is_not_flushed_at_exit() -> None:
    code = (
        "import rerun_logging\n"
        "try:\n"
        "    rerun_logging.RerunHandler('bogus')\n"
        "except ValueError as error:\n"
        "    kept = error  # the traceback keeps the half-built handler alive until exit\n"
    )
    result = run_python(code)
    assert result.returncode == 0
    assert result.stderr == ""


def test_stats_dropped_counts_what_a_sink_lost(tmp_path: Path, logger: logging.Logger) -> None:
    handler = RerunHandler(f"save:{tmp_path / 'missing' / 'x.rrd'}")
    logger.addHandler(handler)
    for i in range(10):
        logger.info("lost %d", i)
    handler.flush()
    stats = handler.stats
    assert stats.sinks[0].dropped == 10 and stats.sinks[0].written == 0
    assert stats.dropped == 10 and stats.dropped_before_sinks == 0
    assert stats.dropped_by_reason == {f"save:{tmp_path / 'missing' / 'x.rrd'} could not deliver them": 10}
    assert stats.emitted == stats.written + stats.dropped + stats.pending
    handler.close()


def test_a_record_after_a_quiet_while_is_written_at_once(tmp_path: Path, logger: logging.Logger) -> None:
    """The flusher ticks every flush_interval (here a minute); a record that comes after
    the handler had nothing to write wakes it: what a hard exit can lose stays small."""
    path = tmp_path / "quiet.rrd"
    handler = RerunHandler(f"save:{path}", flush_interval=60.0)
    logger.addHandler(handler)
    logger.info("first after quiet")
    deadline = time.monotonic() + 20
    while not (path.exists() and records_of(read_messages(path, strict=False))):
        assert time.monotonic() < deadline, "the record waited for the flusher's tick"
        time.sleep(0.01)
    handler.close()


def test_mode_is_a_or_w() -> None:
    with pytest.raises(ValueError, match="mode must be 'a'.*got 'x'"):
        RerunHandler("stdout", mode="x")
