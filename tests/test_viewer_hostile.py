"""Hostile peers against a real viewer process, the way the attacks of issue 11 were made.

Real viewer subprocesses on free loopback ports, real sockets (every one closed by
the test), an honest app in a subprocess of its own (a ``connect`` handler): it
must deliver every record, counted exactly by its handler's stats and in what the
viewer saved. Conditions are waited for on the viewer's lines, with deadlines.
Each attack prints what it measured (``-s`` shows it): the honest app's count and
time, the viewer's descriptors, RSS and standard-error lines.
"""

from __future__ import annotations

import json
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from .conftest import Lines, child_env, read_messages
from rerun_logging.format import (
    VIEWER_HELLO, Record, RecordingInfo, encode_frame, encode_records, stream_header,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

RECORDS = 50_000
TIMEOUT = 15.0


class HostileViewer:
    """``rerun-logging viewer`` on free ports (TCP and web), optionally under a low RLIMIT_NOFILE."""

    def __init__(self, save_dir: Path, nofile: int | None = None) -> None:
        def limit() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.process = subprocess.Popen(
            [sys.executable, "-m", "rerun_logging", "viewer", "--port", "0", "--web-port", "0",
             "--no-browser", "--save-dir", str(save_dir)],
            env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, preexec_fn=limit,
        )
        assert self.process.stderr is not None
        self.err = Lines(self.process.stderr)
        self.save_dir = save_dir
        self.port = int(self.err.first("listening on").rsplit(":", 1)[1])
        self.web_port = int(re.search(r":(\d+)/", self.err.first("web UI on")).group(1))  # type: ignore[union-attr]

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def wait_fds(self, most: int) -> int:
        """The viewer's descriptor count once at most ``most`` (closing ones take a loop turn)."""
        deadline = time.monotonic() + TIMEOUT
        while (fds := self.fds()) > most:
            assert time.monotonic() < deadline, f"the viewer holds {fds} descriptors"
            time.sleep(0.05)
        return fds

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=TIMEOUT)

    def assert_no_traceback(self) -> None:
        assert not self.err.matching("Traceback"), "\n".join(self.err.lines[-40:])


@pytest.fixture
def start_viewer(tmp_path: Path) -> Iterator[Callable[..., HostileViewer]]:
    started: list[HostileViewer] = []

    def start(nofile: int | None = None) -> HostileViewer:
        viewer = HostileViewer(tmp_path / f"saved{len(started)}", nofile)
        started.append(viewer)
        return viewer

    try:
        yield start
    finally:
        for viewer in started:
            viewer.stop()


HONEST_APP = """
import json, logging, sys, time
from rerun_logging import RerunHandler
handler = RerunHandler("connect:127.0.0.1:%(port)d", application_id="honest",
                       recording_id="honest-run", flush_timeout=%(flush)r, open_browser=False)
log = logging.getLogger("honest")
log.propagate = False
log.setLevel(logging.INFO)
log.addHandler(handler)
start = time.monotonic()
for i in range(%(records)d):
    log.info("record %%d", i)
handler.close()
stats = handler.stats
print(json.dumps({"emitted": stats.emitted, "written": stats.written,
                  "seconds": round(time.monotonic() - start, 2)}))
"""


def run_honest_app(viewer: HostileViewer, records: int = RECORDS, flush: float = 30.0) -> dict[str, float]:
    """Run the honest app to its end; its stats, once checked against what the viewer saved."""
    done = subprocess.run(
        [sys.executable, "-c", HONEST_APP % {"port": viewer.port, "records": records, "flush": flush}],
        env=child_env(), capture_output=True, text=True, timeout=flush + 30,
    )
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout.splitlines()[-1])
    assert stats["emitted"] == stats["written"] == records, (stats, done.stderr[-2000:])
    seqs = [m.seq for path in viewer.save_dir.glob("honest-honest-run-*.rlg")
            for m in read_messages(path, strict=False) if isinstance(m, Record)]
    assert len(seqs) == records and set(seqs) == set(range(records))
    stats["app_stderr_lines"] = len(done.stderr.splitlines())
    return stats


def report(attack: str, stats: dict[str, float], viewer: HostileViewer, fds: int, rss: float) -> None:
    print(f"\n{attack}: honest app delivered {stats['written']}/{stats['emitted']} in "
          f"{stats['seconds']}s ({stats['app_stderr_lines']} lines on its stderr); viewer under "
          f"attack: {fds} fds, {rss:.0f} MiB RSS; viewer stderr: {len(viewer.err.lines)} lines")


def info(n: int) -> RecordingInfo:
    return RecordingInfo("hostile", f"hostile-{n}", 1, "host", 100_000 + n, "3.11", "0")


class Attackers:
    """``count`` TCP peers that send a valid stream start (header and INFO), then either
    nothing (silent) or a small frame every ``interval`` seconds (busy); one that is
    closed connects again at once, so the attack never lets go."""

    def __init__(self, port: int, count: int, busy: bool, interval: float = 0.1) -> None:
        self.port = port
        self.busy = busy
        self.interval = interval
        self.selector = selectors.DefaultSelector()
        self.seq: dict[int, int] = {}
        self.reconnects = 0
        self._stop = threading.Event()
        for n in range(count):
            self._connect(n)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _connect(self, n: int) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        data = b""
        while len(data) < len(VIEWER_HELLO):
            chunk = sock.recv(len(VIEWER_HELLO) - len(data))
            assert chunk, "the viewer closed before greeting"
            data += chunk
        sock.sendall(stream_header(info(n)))
        sock.setblocking(False)
        self.seq.setdefault(n, 0)
        self.selector.register(sock, selectors.EVENT_READ, n)

    def _frame(self, n: int) -> bytes:
        seq = self.seq[n]
        self.seq[n] = seq + 1
        return encode_frame(encode_records([Record(
            seq=seq, time_ns=seq, level=20, level_name="INFO", entity_path="x", logger="x", message="x",
        )]))

    def _run(self) -> None:
        next_send = time.monotonic()
        while not self._stop.is_set():
            for key, _ in self.selector.select(0.02):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    alive = bool(sock.recv(65536))
                except BlockingIOError:
                    continue
                except OSError:
                    alive = False
                if not alive and not self._stop.is_set():
                    self.selector.unregister(sock)
                    sock.close()
                    self.reconnects += 1
                    try:
                        self._connect(key.data)
                    except (OSError, AssertionError):
                        pass
            if self.busy and time.monotonic() >= next_send:
                next_send = time.monotonic() + self.interval
                for key in list(self.selector.get_map().values()):
                    try:
                        key.fileobj.send(self._frame(key.data))  # type: ignore[union-attr]
                    except OSError:
                        pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()


@pytest.mark.parametrize("busy", [False, True], ids=["256-silent", "300-busy"])
def test_peers_holding_every_slot_cannot_keep_an_app_out(
    start_viewer: Callable[..., HostileViewer], busy: bool
) -> None:
    viewer = start_viewer()
    count = 300 if busy else 256
    attackers = Attackers(viewer.port, count, busy)
    try:
        viewer.err.wait_for("hostile[", "connected", count=256 if not busy else count)
        stats = run_honest_app(viewer)
        fds, rss = viewer.fds(), viewer.rss_mib()
    finally:
        attackers.close()
    refused = viewer.err.matching("refused ")
    assert refused and all(re.fullmatch(
        r"rerun-logging viewer: refused 127\.0\.0\.1:\d+: at byte \d+: too many connections \(the "
        r"viewer takes 256 at once\): closed to make room for a new one, as (the one idle longest "
        r"\(\d+\.\ds without a byte\)|the oldest \(\d+\.\ds\) of the 256 from 127\.0\.0\.1, the "
        r"address holding the most; none was idle for 5s)", line) for line in refused), refused[:3]
    viewer.assert_no_traceback()
    report(f"{count} {'busy' if busy else 'silent'} peers ({attackers.reconnects} reconnects)",
           stats, viewer, fds, rss)


def test_a_flood_of_slow_web_connections_holds_few_descriptors_and_apps_get_in(
    start_viewer: Callable[..., HostileViewer],
) -> None:
    viewer = start_viewer(nofile=256)
    floods: list[socket.socket] = []
    try:
        flood(viewer.web_port, 1000, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n", floods)  # never the rest
        viewer.err.wait_for("web UI: 64 connections were waiting to send their request")
        fds = viewer.wait_fds(64 + 16)  # the waiting ones, and the viewer's own (8 here)
        page = http(viewer.web_port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{viewer.web_port}\r\n\r\n")
        assert page.startswith(b"HTTP/1.1 200"), page[:200]
        stats = run_honest_app(viewer)
        rss = viewer.rss_mib()
    finally:
        for sock in floods:
            sock.close()
    viewer.assert_no_traceback()
    assert len(viewer.err.lines) < 20, viewer.err.lines
    report("1,000 slow-header web connections, RLIMIT_NOFILE 256", stats, viewer, fds, rss)


def test_out_of_descriptors_is_one_line_and_apps_get_in_once_they_free(
    start_viewer: Callable[..., HostileViewer],
) -> None:
    viewer = start_viewer(nofile=48)  # fewer than the web port's 64 waiting connections
    floods: list[socket.socket] = []
    try:
        flood(viewer.web_port, 200, b"GET / HTTP/1.1\r\n", floods)
        viewer.err.wait_for("cannot accept connections on 127.0.0.1:", "Too many open files",
                            "(RLIMIT_NOFILE 48)")
        fds = viewer.fds()
    finally:
        for sock in floods:
            sock.close()
    stats = run_honest_app(viewer, records=5_000)
    viewer.assert_no_traceback()
    assert len(viewer.err.matching("cannot accept connections")) == 1, viewer.err.lines
    assert len(viewer.err.lines) < 20, viewer.err.lines
    report("EMFILE on the web port (RLIMIT_NOFILE 48, 200 slow connections)", stats, viewer, fds,
           viewer.rss_mib())


def flood(port: int, count: int, start: bytes, into: list[socket.socket], within: float = 3.0) -> None:
    """``count`` connections at once (non-blocking), each sending ``start`` once it is
    connected, for up to ``within`` seconds; every socket goes into ``into`` (the caller
    closes them). Those the viewer does not accept in time stay in the kernel's retries."""
    selector = selectors.DefaultSelector()
    try:
        for _ in range(count):
            sock = socket.socket()
            into.append(sock)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", port))
            selector.register(sock, selectors.EVENT_WRITE)
        deadline = time.monotonic() + within
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(0.1):
                sock = key.fileobj  # type: ignore[assignment]
                selector.unregister(sock)
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    try:
                        sock.send(start)
                    except OSError:
                        pass
    finally:
        selector.close()


def http(port: int, request: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request.encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize("header", ["Host", "Origin"])
def test_a_duplicate_host_or_origin_is_a_400_with_our_headers_and_one_line(
    start_viewer: Callable[..., HostileViewer], header: str
) -> None:
    viewer = start_viewer()
    host = f"127.0.0.1:{viewer.web_port}"
    value = host if header == "Host" else f"http://{host}"
    before = len(viewer.err.lines)
    for path in ("/", "/ws"):
        answer = http(viewer.web_port, f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{header}: {value}\r\n"
                      f"{header}: http://evil.example\r\nConnection: close\r\n\r\n"
                      if header == "Origin" else
                      f"GET {path} HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\n\r\n")
        head = answer.partition(b"\r\n\r\n")[0].decode("latin-1")
        assert head.startswith("HTTP/1.1 400 Bad Request"), head
        assert f"more than one {header} header".encode() in answer
        assert "Content-Security-Policy: default-src 'self'" in head
        assert "X-Content-Type-Options: nosniff" in head
    (line,) = viewer.err.wait_for(f"with 400: 2 {header} headers")
    assert line.startswith("rerun-logging viewer: web UI: answered 127.0.0.1:")
    page = http(viewer.web_port, f"GET / HTTP/1.1\r\nHost: {host}\r\n\r\n")
    assert page.startswith(b"HTTP/1.1 200")
    viewer.stop()
    viewer.assert_no_traceback()
    assert len(viewer.err.lines) - before == 2, viewer.err.lines[before:]  # the 400 line, "stopped"
