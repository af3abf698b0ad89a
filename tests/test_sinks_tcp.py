"""connect and spawn: real viewers, real loopback sockets, real processes."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from rerun_logging import Record, RerunHandler, format
from rerun_logging.backoff import Backoff
from rerun_logging.sinks import spawn

from .conftest import ViewerProcess, child_env, cleaned_up, free_port, read_messages, viewer_pids


@pytest.fixture
def viewer(tmp_path: Path) -> Iterator[ViewerProcess]:
    process = ViewerProcess(save_dir=tmp_path / "saved")
    try:
        yield process
    finally:
        process.stop()


def saved_records(directory: Path) -> dict[int, list[Record]]:
    """Records saved by a viewer, by the pid of the process that logged them."""
    found: dict[int, list[Record]] = {}
    for path in sorted(directory.glob("*.rlg")):
        messages = read_messages(path, strict=False)
        pid = messages[0].pid
        found.setdefault(pid, []).extend(m for m in messages if isinstance(m, Record))
    return found


def first_sink_error(handler: RerunHandler) -> str:
    """The last error of the handler's first sink, or "" (also before sinks exist)."""
    sinks = handler.stats.sinks
    return (sinks[0].error or "") if sinks else ""


class PlainServer:
    """A TCP listener on 127.0.0.1 that is not a viewer: it says ``greeting`` and never reads."""

    def __init__(self, greeting: bytes = b"") -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = cleaned_up(self.sock.getsockname()[1])
        self.greeting = greeting
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            if self.greeting:
                conn.sendall(self.greeting)
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


def test_a_port_held_by_something_else_is_reported_and_records_stay(
    logger: logging.Logger, capfd: pytest.CaptureFixture[str]
) -> None:
    server = PlainServer(greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n")
    try:
        handler = RerunHandler(f"connect:127.0.0.1:{server.port}", flush_timeout=0.5)
        logger.addHandler(handler)
        for i in range(100):
            logger.info("kept %d", i)
        handler.flush(timeout=2)
        sink = handler.stats.sinks[0]
        assert (sink.written, sink.dropped, sink.pending) == (0, 0, 100)
        handler.close()
    finally:
        server.close()
    err = capfd.readouterr().err
    assert f"127.0.0.1:{server.port} is not a rerun-logging viewer (it answered b'HTTP/1.1" in err
    assert "100 records not delivered" in err


def test_a_viewer_that_never_reads_never_blocks_the_app(logger: logging.Logger) -> None:
    server = PlainServer(greeting=format.VIEWER_HELLO)
    try:
        handler = RerunHandler(
            f"connect:127.0.0.1:{server.port}", buffer_size=256 * 1024, flush_timeout=0.5
        )
        logger.addHandler(handler)
        started = time.monotonic()
        for i in range(100_000):
            logger.info("never read %d %s", i, "z" * 30)
        loop_time = time.monotonic() - started
        handler.flush(timeout=0.5)
        stats = handler.stats
        sink = stats.sinks[0]
        assert sink.written == 0 and sink.dropped > 0
        assert stats.emitted == 100_000
        assert stats.dropped >= sink.dropped  # the handler's count includes the sink's
        assert stats.dropped + sink.pending + stats.pending == 100_000
        connect = handler._flusher.sinks[0]
        unsent = sum(len(frame) for frame, _ in connect._pending)
        sent = sum(len(frame) for frame, _ in connect._unacked)
        assert unsent <= 256 * 1024
        if connect._sock is not None:  # sent, unacknowledged: bounded by the socket's buffers
            sndbuf = connect._sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
            assert sent <= 2 * sndbuf + 256 * 1024
        handler.close()
    finally:
        server.close()
    assert loop_time < 60


def test_no_viewer_at_exit_the_app_leaves_within_flush_timeout(tmp_path: Path) -> None:
    port = free_port()
    code = textwrap.dedent(
        f"""
        import logging, rerun_logging
        logging.basicConfig(level=logging.INFO, handlers=[
            rerun_logging.RerunHandler("connect:127.0.0.1:{port}", flush_timeout=1.0)])
        for i in range(500):
            logging.info("lost %d", i)
        """
    )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=30
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0
    lines = [line for line in result.stderr.splitlines() if "not delivered" in line]
    assert len(lines) == 1 and "500 records not delivered" in lines[0], result.stderr
    assert f"connect:127.0.0.1:{port}" in lines[0]
    assert elapsed < 1.0 + 3.0  # flush_timeout plus interpreter start and exit


def test_connect_delivers_everything_in_order(viewer: ViewerProcess, tmp_path: Path, logger: logging.Logger) -> None:
    handler = RerunHandler(f"connect:127.0.0.1:{viewer.port}", application_id="connected")
    logger.addHandler(handler)
    for i in range(20_000):
        logger.info("record %d", i, extra={"i": i})
    handler.close()
    assert handler.stats.sinks[0].written == 20_000
    viewer.stop()
    records = saved_records(tmp_path / "saved")[os.getpid()]
    assert [r.extras["i"] for r in records] == list(range(20_000))


APP = textwrap.dedent(
    """
    import json, logging, sys, time, rerun_logging
    sink, count, pace = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    handler = rerun_logging.RerunHandler(sink, flush_timeout=20, retryStart=0.05, retryMax=0.2,
                                         application_id="load")
    log = logging.getLogger("load")
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    for i in range(count):
        log.info("n %d", i, extra={"i": i})
        if pace and i % 1000 == 999:
            time.sleep(pace)
    handler.close()
    stats = handler.stats
    print(json.dumps({"written": stats.sinks[0].written, "dropped": stats.dropped}))
    """
)


def start_app(sink: str, count: int, pace: float = 0.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", APP, sink, str(count), str(pace)],
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(app: subprocess.Popen[str]) -> dict[str, int]:
    out, err = app.communicate(timeout=120)
    assert app.returncode == 0, err
    return json.loads(out)


@pytest.mark.slow
def test_four_apps_into_one_viewer(viewer: ViewerProcess, tmp_path: Path) -> None:
    apps = [start_app(f"connect:127.0.0.1:{viewer.port}", 50_000) for _ in range(4)]
    results = [finish(app) for app in apps]
    assert all(r == {"written": 50_000, "dropped": 0} for r in results), results
    viewer.stop()
    saved = saved_records(tmp_path / "saved")
    assert sorted(saved) == sorted(app.pid for app in apps)
    for records in saved.values():
        assert [r.extras["i"] for r in records] == list(range(50_000))
        assert [r.seq for r in records] == list(range(50_000))


@pytest.mark.slow
def test_viewer_restarted_mid_stream_loses_nothing(tmp_path: Path) -> None:
    first = ViewerProcess(save_dir=tmp_path / "first")
    port = first.port
    app = start_app(f"connect:127.0.0.1:{port}", 30_000, pace=0.02)
    try:
        deadline = time.monotonic() + 30
        while not any(p.stat().st_size > 20_000 for p in (tmp_path / "first").glob("*.rlg")):
            assert time.monotonic() < deadline, "the first viewer received nothing"
            time.sleep(0.02)
        first.stop(signal.SIGKILL)
        second = ViewerProcess(port=port, save_dir=tmp_path / "second")
        try:
            result = finish(app)
        finally:
            second.stop()
    finally:
        first.stop()
        if app.poll() is None:
            app.kill()
    assert result == {"written": 30_000, "dropped": 0}
    seen = [r.extras["i"] for d in ("first", "second") for r in saved_records(tmp_path / d).get(app.pid, [])]
    assert set(seen) == set(range(30_000))
    assert saved_records(tmp_path / "second")[app.pid], "nothing went to the restarted viewer"


def test_spawn_uses_a_viewer_already_listening(viewer: ViewerProcess, tmp_path: Path, logger: logging.Logger) -> None:
    handler = RerunHandler(f"spawn:127.0.0.1:{viewer.port}")
    logger.addHandler(handler)
    for i in range(100):
        logger.info("to the existing viewer %d", i)
    handler.close()
    assert handler._flusher.sinks[0].spawned is None
    assert handler.stats.sinks[0].written == 100
    viewer.stop()
    assert len(saved_records(tmp_path / "saved")[os.getpid()]) == 100


@pytest.fixture
def spawn_port() -> Iterator[int]:
    port = free_port()
    yield port
    for pid in viewer_pids(port):
        os.kill(pid, signal.SIGTERM)


def test_spawn_starts_a_viewer_that_outlives_the_app(spawn_port: int, logger: logging.Logger) -> None:
    handler = RerunHandler(f"spawn:127.0.0.1:{spawn_port}")
    logger.addHandler(handler)
    for i in range(100):
        logger.info("spawned %d", i)
    handler.close()
    assert handler.stats.sinks[0].written == 100
    spawned = handler._flusher.sinks[0].spawned
    assert spawned is not None and spawned.poll() is None
    assert viewer_pids(spawn_port) == [spawned.pid]
    second = RerunHandler(f"spawn:127.0.0.1:{spawn_port}")
    logger.addHandler(second)
    logger.info("reused")
    second.close()
    assert second._flusher.sinks[0].spawned is None and second.stats.sinks[0].written == 1


def test_two_apps_spawning_at_once_end_with_one_viewer(spawn_port: int) -> None:
    apps = [start_app(f"spawn:127.0.0.1:{spawn_port}", 2000) for _ in range(2)]
    results = [finish(app) for app in apps]
    assert results == [{"written": 2000, "dropped": 0}] * 2
    deadline = time.monotonic() + 10  # the losing viewer may still be finding the port taken
    while len(viewer_pids(spawn_port)) != 1:
        assert time.monotonic() < deadline, f"viewers on the port: {viewer_pids(spawn_port)}"
        time.sleep(0.05)


def test_a_child_forked_while_its_parent_spawns_waits_for_that_viewer(spawn_port: int) -> None:
    """The fork stress's race: the parent's flusher had begun spawning when the app
    forked. The child spawns no second viewer (that cost seconds of its close deadline)
    and retries every STARTING_RETRY, not with the growing backoff, until the parent's
    viewer answers."""
    parent = spawn.SpawnSink("127.0.0.1", spawn_port, 1 << 20, Backoff())
    parent.may_spawn = False  # what _open_connection sets before it spawns
    parent._starting_until = time.monotonic() + spawn.SPAWN_TIMEOUT
    child = parent.after_fork()
    assert isinstance(child, spawn.SpawnSink)
    info = format.RecordingInfo(application_id="child", recording_id="rec", start_time_ns=0,
                                host="test", pid=os.getpid(), python_version="3", package_version="0")
    child.start(format.stream_header(info))
    child.write(format.encode_frame(format.encode_records([])), 0)  # refused: nobody listens
    assert child.spawned is None and viewer_pids(spawn_port) == []
    assert child.error == "no viewer is listening (connection refused)"
    assert child.backoff.next_attempt <= time.monotonic() + spawn.STARTING_RETRY
    viewer = ViewerProcess(port=spawn_port)  # the parent's viewer comes up
    try:
        child.close(format.encode_frame(format.end_message()), time.monotonic() + 10)
        assert child.pending == 0 and child.error is None and child.bytes > 0
    finally:
        viewer.stop()
    assert child.spawned is None


def test_spawn_with_the_port_held_by_a_plain_socket(logger: logging.Logger, capfd: pytest.CaptureFixture[str]) -> None:
    server = PlainServer()
    try:
        handler = RerunHandler(f"spawn:127.0.0.1:{server.port}", flush_timeout=0.5)
        logger.addHandler(handler)
        logger.info("waiting")
        handler.flush(timeout=3)
        assert handler.stats.sinks[0].pending == 1
        assert handler._flusher.sinks[0].spawned is None
        handler.close()
    finally:
        server.close()
    assert "is not a rerun-logging viewer (it said nothing within 1s" in capfd.readouterr().err


def test_spawned_viewer_does_not_inherit_the_sink_variable(spawn_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERUN_LOGGING_SINK", f"spawn:127.0.0.1:{spawn_port}")
    process = spawn.spawn_viewer("127.0.0.1", spawn_port)
    environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
    assert not any(item.startswith(b"RERUN_LOGGING_SINK=") for item in environ)


def test_a_garbled_reply_costs_no_other_sink_anything(tmp_path: Path, logger: logging.Logger) -> None:
    server = PlainServer(greeting=format.VIEWER_HELLO + b"\xff" * 64)
    path = tmp_path / "beside.rrd"
    try:
        handler = RerunHandler([f"connect:127.0.0.1:{server.port}", f"save:{path}"], flush_timeout=0.5)
        logger.addHandler(handler)
        for i in range(5000):
            logger.info("both %d", i)
        handler.close()
    finally:
        server.close()
    assert len([m for m in read_messages(path) if isinstance(m, Record)]) == 5000
    connect = handler.stats.sinks[0]
    assert connect.written == 0 and connect.pending == 5000


def test_flush_says_false_when_nothing_was_delivered(logger: logging.Logger) -> None:
    handler = RerunHandler(f"connect:127.0.0.1:{free_port()}", flush_timeout=0.3)
    logger.addHandler(handler)
    logger.info("nowhere")
    assert handler.flush(timeout=0.3) is False
    handler.close()


def test_a_newer_minor_viewer_is_a_viewer(logger: logging.Logger, capfd: pytest.CaptureFixture[str]) -> None:
    newer = format.VIEWER_MAGIC + bytes((format.FORMAT_MAJOR, format.FORMAT_MINOR + 1))
    server = PlainServer(greeting=newer)
    try:
        handler = RerunHandler(f"connect:127.0.0.1:{server.port}", flush_timeout=0.3)
        logger.addHandler(handler)
        logger.info("sent")
        handler.flush(timeout=0.3)
        handler.close()
    finally:
        server.close()
    assert "not a rerun-logging viewer" not in capfd.readouterr().err
    assert handler._flusher.sinks[0]._header_sent is False  # closed after sending: back to a fresh start


def test_close_of_a_silent_spawn_handler_starts_nothing(spawn_port: int) -> None:
    handler = RerunHandler(f"spawn:127.0.0.1:{spawn_port}", flush_timeout=0.5)
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 0.5
    assert viewer_pids(spawn_port) == []


def test_a_spawned_viewer_that_cannot_start_is_reported_at_once(logger: logging.Logger, capfd: pytest.CaptureFixture[str]) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused, binding fails
    port = cleaned_up(holder.getsockname()[1])
    try:
        handler = RerunHandler(f"spawn:127.0.0.1:{port}", flush_timeout=0.5)
        logger.addHandler(handler)
        deadline = time.monotonic() + 8
        logger.info("no viewer can start")
        while "exited with status" not in first_sink_error(handler):
            assert time.monotonic() < deadline, "the failed spawn was not noticed"
            time.sleep(0.02)
        handler.close()
    finally:
        holder.close()
    assert f"the viewer spawned on 127.0.0.1:{port} exited with status" in capfd.readouterr().err


def test_retry_knobs_come_from_dict_config(logger: logging.Logger) -> None:
    import logging.config

    port = free_port()
    logging.config.dictConfig({
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"rerun": {
            "class": "rerun_logging.RerunHandler", "sink": f"connect:127.0.0.1:{port}",
            "retryStart": 0.25, "flush_timeout": 0.3, ".": {"retryFactor": 3.0, "retryMax": 2.0},
        }},
        "loggers": {logger.name: {"handlers": ["rerun"], "level": "INFO"}},
    })
    handler = logger.handlers[-1]
    assert (handler.retryStart, handler.retryFactor, handler.retryMax) == (0.25, 3.0, 2.0)
    logger.info("sets the knobs of the sink")
    handler.flush(timeout=0.3)
    backoff = handler._flusher.sinks[0].backoff
    assert (backoff.retryStart, backoff.retryFactor, backoff.retryMax) == (0.25, 3.0, 2.0)


class SwallowingViewer:
    """Greets like a viewer, reads everything, never acknowledges; ``die()`` closes it all."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))
        self.received = 0
        self.got_data = threading.Event()
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        self.conns.append(conn)
        try:
            conn.sendall(format.VIEWER_HELLO)
            while chunk := conn.recv(65536):
                self.received += len(chunk)
                self.got_data.set()
        except OSError:  # die() closed it
            pass

    def die(self) -> None:
        for sock in (self.sock, *self.conns):
            sock.close()


def test_frames_sent_to_a_viewer_that_died_are_resent_never_counted_dropped(
    tmp_path: Path, logger: logging.Logger
) -> None:
    """Records sent but not acknowledged when the viewer died may be stored there: the
    backlog bound drops only never-sent frames, so delivered + dropped stays exact."""
    port = free_port()
    swallow = SwallowingViewer(port)
    handler = RerunHandler(f"connect:127.0.0.1:{port}", buffer_size=16 * 1024, retryStart=0.05,
                           retryMax=0.1, flush_timeout=10)
    logger.addHandler(handler)
    for i in range(300):
        logger.info("before the death %d", i)
    assert not handler.flush(timeout=0.5) and swallow.got_data.wait(10)
    swallow.die()
    for i in range(20_000):  # overflows the 16 KiB backlog while nobody listens
        logger.info("while dead %d %s", i, "x" * 20)
    handler.flush(timeout=0.3)
    viewer = ViewerProcess(port=port, save_dir=tmp_path / "saved")
    try:
        assert handler.flush(timeout=10)
        handler.close()
    finally:
        viewer.stop()
    (records,) = saved_records(tmp_path / "saved").values()
    messages = [r.message for r in records]
    assert messages[:300] == [f"before the death {i}" for i in range(300)]
    sink = handler.stats.sinks[0]
    assert sink.dropped > 0 and sink.written == len(records) == len(set(messages))
    assert sink.written + sink.dropped == 20_300
