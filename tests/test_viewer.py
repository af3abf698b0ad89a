"""The viewer: its sans-I/O ingest first, then a real viewer process on real sockets.

Process tests start ``python -m rerun_logging --port 0 ...``, read the port from
its ``listening on`` line, talk to it with raw sockets on 127.0.0.1, and always
stop it (fixtures with ``finally``). They wait on events (lines, acknowledgements,
files) with deadlines; no sleep is ever a pass condition.
"""

from __future__ import annotations

import logging
import re
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from rerun_logging import cli, format
from rerun_logging.format import (
    HEADER,
    MAGIC,
    VIEWER_HELLO,
    VIEWER_MAGIC,
    Ack,
    Record,
    RecordingInfo,
    Refused,
    StreamDecoder,
    dropped_message,
    encode_frame,
    encode_records,
    end_message,
    info_message,
    stream_header,
)
from rerun_logging.reader import verify
from rerun_logging.viewer.ingest import ReadDeadline, StreamIngest
from rerun_logging.viewer.savedir import SaveDir, safe_name, stream_file_name
from rerun_logging.viewer.store import RecordingStore

from .conftest import Lines, child_env

TIMEOUT = 15.0
START = 1_700_000_000_000_000_000
SAFE_FILE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*-[A-Za-z0-9._-]+-\d+(-\d+)?\.rlg")


# --- stream material ---------------------------------------------------------------------


def make_info(pid: int = 4242, app: str = "viewer-test", recording_id: str = "rec-viewer") -> RecordingInfo:
    return RecordingInfo(app, recording_id, START, "testhost", pid, "3.11.0", "0.1.0")


def make_record(seq: int, pid: int = 4242, logger: str = "app.db", message: str = "") -> Record:
    return Record(
        seq=seq, time_ns=START + seq * 1_000_000, level=logging.INFO, level_name="INFO",
        entity_path=logger.replace(".", "/"), logger=logger,
        message=message or f"message {seq}", process=pid,
    )


def records_frame(first: int, count: int, pid: int = 4242, **fields: Any) -> bytes:
    return encode_frame(encode_records([make_record(first + i, pid, **fields) for i in range(count)]))


def drop_frame(count: int, reason: str = "backlog full") -> bytes:
    return encode_frame(dropped_message(count, reason))


END = encode_frame(end_message())


def saved_records(path: Path) -> list[Record]:
    decoder = StreamDecoder(str(path))
    decoder.feed(path.read_bytes())
    messages = list(decoder.messages())
    decoder.close()
    return [m for m in messages if isinstance(m, Record)]


# --- sans-I/O: ingest, deadlines, save dir -------------------------------------------------


class Harness:
    """One store and save dir; ingests made on it report into ``lines``."""

    def __init__(self, directory: Path) -> None:
        self.store = RecordingStore()
        self.lines: list[str] = []
        self.saver = SaveDir(str(directory), self.lines.append)

    def ingest(self, name: str = "peer:1") -> StreamIngest:
        return StreamIngest(f"tcp {name}", self.store, name=name, saver=self.saver,
                            report=self.lines.append)


def acks(replies: list[bytes]) -> list[int]:
    decoder = StreamDecoder("replies", magic=VIEWER_MAGIC)
    decoder.feed(VIEWER_HELLO + b"".join(replies))
    return [m.frames for m in decoder.messages() if isinstance(m, Ack)]


def test_ingest_at_every_split_point_stores_the_same(tmp_path: Path) -> None:
    frames = [records_frame(0, 3), drop_frame(2), records_frame(3, 2), END]
    data = stream_header(make_info()) + b"".join(frames)
    for cut in range(len(data) + 1):
        harness = Harness(tmp_path)
        harness.saver = None  # type: ignore[assignment]
        ingest = StreamIngest("t", harness.store)
        replies = ingest.feed(data[:cut]) + ingest.feed(data[cut:])
        stream = next(harness.store.streams())
        assert (stream.records, stream.dropped, stream.ended) == (5, 2, True), cut
        assert list(harness.store.frames(stream.key)) == frames
        assert acks(replies)[-1] == 4 and ingest.error is None


def test_ingest_acks_only_when_the_count_changes(tmp_path: Path) -> None:
    ingest = Harness(tmp_path).ingest()
    assert ingest.feed(stream_header(make_info())) == []  # INFO is not counted
    frame = records_frame(0, 1)
    assert ingest.feed(frame[:5]) == []
    assert acks(ingest.feed(frame[5:] + records_frame(1, 1))) == [2]


def test_a_reconnect_skips_what_it_resends(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    first = harness.ingest("peer:1")
    header = stream_header(make_info())
    sent = [records_frame(0, 10), drop_frame(5), records_frame(10, 10)]
    first.feed(header + b"".join(sent))
    first.close()
    # the client did not get the acks: it resends everything, then goes on; a new
    # drop report goes first (the connect sink puts it in front of its backlog)
    second = harness.ingest("peer:2")
    news = [drop_frame(7), records_frame(20, 5), END]
    replies = second.feed(header + news[0] + b"".join(sent) + b"".join(news[1:]))
    second.close()
    assert acks(replies) == [6]
    stream = next(harness.store.streams())
    assert list(harness.store.frames(stream.key)) == [*sent, *news]
    assert (stream.records, stream.dropped, stream.next_seq, stream.ended) == (25, 12, 25, True)
    assert second.duplicates == 3 and second.records == 5
    path = Path(harness.saver.paths[0])
    assert path.read_bytes() == HEADER + encode_frame(info_message(make_info())) + b"".join([*sent, *news])
    # once more, after the END: everything is known already
    third = harness.ingest("peer:3")
    assert acks(third.feed(header + b"".join([*sent, *news]))) == [6]
    assert third.duplicates == 6 and path.stat().st_size == len(HEADER) + len(
        encode_frame(info_message(make_info()))) + sum(map(len, [*sent, *news]))
    assert "resuming its stream" in harness.lines[2]


def test_another_handler_of_the_same_process_is_not_a_duplicate(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.ingest().feed(stream_header(make_info()) + records_frame(0, 5))
    other = RecordingInfo("other-handler", "rec-viewer", START + 1, "testhost", 4242, "3.11.0", "0.1.0")
    ingest = harness.ingest()
    ingest.feed(stream_header(other) + records_frame(0, 5))
    assert ingest.records == 5 and ingest.duplicates == 0
    assert len(harness.store.recordings["rec-viewer"].streams) == 2


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "not a rerun-logging recording"),
        (MAGIC + bytes((2, 0)), f"written with format version 2.0; this reader supports 1.{format.FORMAT_MINOR}"),
        (HEADER + struct.pack("<IBI", 1 << 30, 0, 0), "frame declares 1073741824 bytes"),
        (HEADER + encode_frame(end_message()), "the first frame must hold one INFO message"),
        (stream_header(make_info()) + b"\x05\x00\x00\x00\x00\x00\x00\x00\x00abcde", "checksum"),
        (HEADER + encode_frame(format.packb([format.KIND_INFO, {
            "app": "a", "rec": "r", "start": 1, "host": "h", "pid": [1, 2],
            "python": "3", "version": "0"}])), "INFO field 'pid' (pid) is a list"),
    ],
)
def test_ingest_refuses_bad_input_with_one_line(tmp_path: Path, data: bytes, says: str) -> None:
    harness = Harness(tmp_path)
    ingest = harness.ingest("10.0.0.1:5555")
    replies = ingest.feed(data)
    ingest.close()
    decoder = StreamDecoder("replies", magic=VIEWER_MAGIC)
    decoder.feed(VIEWER_HELLO + b"".join(replies))
    (refused,) = [m for m in decoder.messages() if isinstance(m, Refused)]
    assert says in refused.reason and ingest.finished
    *connected, line = harness.lines  # a refusal after INFO follows its "connected" line
    assert line.startswith("refused 10.0.0.1:5555: at byte ") and says in line
    assert all(text.endswith("connected") for text in connected) and len(connected) <= 1
    assert ingest.feed(b"more") == []


def test_ingest_reports_a_torn_tail_and_keeps_the_frames_before(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    ingest = harness.ingest()
    head = stream_header(make_info()) + records_frame(0, 3)
    ingest.feed(head + records_frame(3, 3)[:-4])
    ingest.close()
    assert "torn tail at byte" in harness.lines[-1] and "kept" in harness.lines[-1]
    assert saved_records(Path(harness.saver.paths[0]))[-1].seq == 2


def test_a_peer_that_sends_nothing_is_closed_silently(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    harness.ingest().close()
    assert harness.lines == []


def test_read_deadlines() -> None:
    ingest = StreamIngest("t", RecordingStore())
    deadlines = ReadDeadline(handshake_timeout=10, frame_timeout=30, opened_at=100.0)
    assert deadlines.next(ingest, 101.0).at == 110.0  # type: ignore[union-attr]
    ingest.feed(stream_header(make_info())[:-1])
    assert deadlines.next(ingest, 105.0).at == 110.0  # type: ignore[union-attr]
    ingest.feed(stream_header(make_info())[-1:])
    assert deadlines.next(ingest, 106.0) is None  # between frames: no limit
    frame = records_frame(0, 1)
    ingest.feed(frame[:3])
    due = deadlines.next(ingest, 200.0)
    assert due is not None and due.at == 230.0 and "did not complete within 30s" in due.reason
    assert deadlines.next(ingest, 220.0).at == 230.0  # type: ignore[union-attr]
    ingest.feed(frame[3:] + frame[:2])  # the next frame starts: its own clock
    assert deadlines.next(ingest, 225.0).at == 255.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "app", ["../../etc/passwd", "/abs/x", "..", ".", "", "a/../../b", "\x00\n", "é" * 100, "-rf *"]
)
def test_file_names_never_leave_the_save_dir(app: str) -> None:
    name = stream_file_name(make_info(app=app, recording_id="../" + app))
    assert SAFE_FILE.fullmatch(name), name
    assert safe_name(app) not in ("", ".", "..") and len(safe_name(app)) <= 64


def test_save_dir_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / stream_file_name(make_info())).symlink_to(outside)
    harness = Harness(saved)
    harness.ingest().feed(stream_header(make_info()) + records_frame(0, 1))
    harness.saver.close_all()
    assert not outside.exists()
    assert harness.saver.paths == [str(saved / stream_file_name(make_info(), 2))]


# --- a real viewer process -------------------------------------------------------------------


class Viewer:
    """``python -m rerun_logging --port 0 ARGS``; the port read from its stderr line."""

    def __init__(self, *args: str, save_dir: Path | None = None, stdin: Any = subprocess.DEVNULL,
                 cwd: Path | None = None) -> None:
        command = [sys.executable, "-m", "rerun_logging", "--port", "0", *args]
        if save_dir is not None:
            command += ["--save-dir", str(save_dir)]
        self.save_dir = save_dir
        self.process = subprocess.Popen(
            command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=child_env(), cwd=cwd,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.out = Lines(self.process.stdout)
        self.err = Lines(self.process.stderr)
        (line,) = self.err.wait_for("listening on")
        assert re.fullmatch(r"rerun-logging viewer: listening on 127\.0\.0\.1:\d+", line), line
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=TIMEOUT)

    def saved(self, info: RecordingInfo) -> Path:
        assert self.save_dir is not None
        return self.save_dir / stream_file_name(info)


@pytest.fixture
def start_viewer() -> Iterator[Callable[..., Viewer]]:
    """Starts viewers; each one is stopped at the end of the test, whatever happened."""
    started: list[Viewer] = []

    def start(*args: str, **kwargs: Any) -> Viewer:
        viewer = Viewer(*args, **kwargs)
        started.append(viewer)
        return viewer

    try:
        yield start
    finally:
        for viewer in started:
            viewer.stop(signal.SIGKILL)


class Client:
    """A raw socket client: checks the hello, sends bytes, reads ACK and REFUSED."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.name = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.hello = self._recv_exactly(len(VIEWER_HELLO))
        self.replies = StreamDecoder("replies", magic=VIEWER_MAGIC)
        self.replies.feed(self.hello)
        self.messages: list[Any] = []

    def _recv_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read_until(self, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not done():
            self.sock.settimeout(max(deadline - time.monotonic(), 0.01))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                pytest.fail(f"{self.name}: no reply in time; got {self.messages}")
            except ConnectionResetError:
                return
            if not chunk:
                return
            self.replies.feed(chunk)
            self.messages.extend(self.replies.messages())

    def wait_ack(self, frames: int) -> None:
        self._read_until(lambda: any(isinstance(m, Ack) and m.frames >= frames for m in self.messages))
        assert max(m.frames for m in self.messages if isinstance(m, Ack)) == frames

    def read_to_end(self) -> list[Any]:
        self._read_until(lambda: False)
        return self.messages

    def close(self) -> None:
        self.sock.close()


def send_stream(viewer: Viewer, info: RecordingInfo, frames: list[bytes]) -> Client:
    client = Client(viewer.port)
    client.send(stream_header(info) + b"".join(frames))
    client.wait_ack(len(frames))
    return client


def expected_file(info: RecordingInfo, frames: list[bytes]) -> bytes:
    return stream_header(info) + b"".join(frames)


def test_a_stream_arrives_and_is_saved_byte_for_byte(start_viewer: Callable[..., Viewer], tmp_path: Path) -> None:
    viewer = start_viewer(save_dir=tmp_path / "saved")
    info = make_info()
    frames = [records_frame(0, 50), drop_frame(3, "queue full"), records_frame(50, 50), END]
    client = send_stream(viewer, info, frames)
    assert client.hello == VIEWER_HELLO
    client.close()
    viewer.err.wait_for(client.name, "disconnected: ended cleanly; 100 records")
    path = viewer.saved(info)
    assert path.read_bytes() == expected_file(info, frames)
    report = verify(str(path))
    assert report.clean and report.records == 100 and report.dropped == 3
    assert [r.seq for r in saved_records(path)] == list(range(100))
    (connected,) = viewer.err.matching(client.name, ") connected")
    assert "viewer-test[4242] (recording rec-viewer) connected" in connected


def test_acks_arrive_as_frames_are_stored(start_viewer: Callable[..., Viewer]) -> None:
    viewer = start_viewer()
    client = Client(viewer.port)
    try:
        client.send(stream_header(make_info()))
        for n in range(1, 4):
            client.send(records_frame((n - 1) * 10, 10))
            client.wait_ack(n)
    finally:
        client.close()


def test_two_concurrent_clients(start_viewer: Callable[..., Viewer], tmp_path: Path) -> None:
    viewer = start_viewer(save_dir=tmp_path / "saved")
    infos = [make_info(pid=100), make_info(pid=101)]
    clients = [Client(viewer.port) for _ in infos]
    frames: dict[int, list[bytes]] = {100: [], 101: []}
    for client, info in zip(clients, infos):
        client.send(stream_header(info))
    for batch in range(20):  # interleaved, frame by frame
        for client, info in zip(clients, infos):
            frame = records_frame(batch * 25, 25, pid=info.pid)
            frames[info.pid].append(frame)
            client.send(frame)
    for client, info in zip(clients, infos):
        frames[info.pid].append(END)
        client.send(END)
        client.wait_ack(21)
        client.close()
    for info in infos:
        assert viewer.saved(info).read_bytes() == expected_file(info, frames[info.pid])
    viewer.stop()
    assert "1 recording, 2 streams (0 connected, 2 ended), 1000 records" in viewer.err.lines[-1]


def test_a_reconnect_resending_frames_is_deduplicated(start_viewer: Callable[..., Viewer], tmp_path: Path) -> None:
    viewer = start_viewer(save_dir=tmp_path / "saved")
    info = make_info()
    sent = [records_frame(0, 10), records_frame(10, 10), drop_frame(4), records_frame(20, 10)]
    first = send_stream(viewer, info, sent)
    first.close()  # no END: the app lost its connection
    viewer.err.wait_for(first.name, "disconnected: no END message")
    second = Client(viewer.port)
    rest = [records_frame(30, 10), END]
    second.send(stream_header(info) + b"".join(sent[1:]) + b"".join(rest))  # 3 resent, 2 new
    second.wait_ack(5)
    second.close()
    (line,) = viewer.err.wait_for(second.name, "disconnected")
    assert "ended cleanly; 10 records, 3 resent frames skipped" in line
    path = viewer.saved(info)
    assert path.read_bytes() == expected_file(info, sent + rest)
    assert [r.seq for r in saved_records(path)] == list(range(40))
    assert verify(str(path)).dropped == 4


# --- hostile peers, each beside a good client ------------------------------------------------


@pytest.fixture(scope="module")
def strict_viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Viewer]:
    viewer = Viewer("--handshake-timeout", "1", "--frame-timeout", "1",
                    save_dir=tmp_path_factory.mktemp("strict"))
    try:
        yield viewer
    finally:
        viewer.stop(signal.SIGKILL)


def hostile_garbage(client: Client) -> None:
    client.send(b"\x00\xffgarbage that is no recording at all" * 100)


def hostile_wrong_magic(client: Client) -> None:
    client.send(b"\x89RLX\r\n\x1a\n\x01\x00")


def hostile_newer_version(client: Client) -> None:
    client.send(MAGIC + bytes((2, 0)) + b"whatever a 2.0 stream holds")


def hostile_huge_frame(client: Client) -> None:
    client.send(stream_header(make_info(pid=7)) + struct.pack("<IBI", 0xFFFF_FFFF, 0, 0))


def hostile_flipped_bit(client: Client) -> None:
    bad = bytearray(records_frame(0, 5, pid=8))
    bad[-1] ^= 0x01
    client.send(stream_header(make_info(pid=8)) + bytes(bad))


def hostile_torn_frame(client: Client) -> None:
    client.send(stream_header(make_info(pid=9)) + records_frame(0, 5, pid=9) + records_frame(5, 5, pid=9)[:-3])
    client.wait_ack(1)
    client.sock.shutdown(socket.SHUT_WR)


def hostile_trickle(client: Client) -> None:
    for byte in HEADER[:5]:  # one byte per 0.3 s: each read is "on time", the handshake is not
        try:
            client.send(bytes([byte]))
        except OSError:  # the viewer has hung up already
            return
        time.sleep(0.3)


def hostile_silent(client: Client) -> None:
    """Connects and never sends."""


def hostile_stalled_frame(client: Client) -> None:
    client.send(stream_header(make_info(pid=10)) + records_frame(0, 5, pid=10)[:10])


HOSTILE = {
    "garbage": (hostile_garbage, "refused", "not a rerun-logging recording"),
    "wrong magic": (hostile_wrong_magic, "refused", "not a rerun-logging recording"),
    "newer version": (hostile_newer_version, "refused", f"format version 2.0; this reader supports 1.{format.FORMAT_MINOR}"),
    "huge frame": (hostile_huge_frame, "refused", "frame declares 4294967295 bytes, the limit is"),
    "flipped bit": (hostile_flipped_bit, "refused", "frame checksum does not match"),
    "torn frame": (hostile_torn_frame, "disconnected", "torn tail at byte"),
    "trickle": (hostile_trickle, "timed out", "no stream header and INFO frame within 1s"),
    "silent": (hostile_silent, "timed out", "no stream header and INFO frame within 1s"),
    "stalled frame": (hostile_stalled_frame, "timed out", "did not complete within 1s"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_peer_is_refused_and_others_are_undisturbed(strict_viewer: Viewer, case: str) -> None:
    act, verb, reason = HOSTILE[case]
    good_info = make_info(pid=1000 + list(HOSTILE).index(case))
    good = Client(strict_viewer.port)
    hostile = Client(strict_viewer.port)
    try:
        good.send(stream_header(good_info) + records_frame(0, 100, pid=good_info.pid))
        good.wait_ack(1)
        act(hostile)
        (line,) = strict_viewer.err.wait_for(hostile.name, reason)
        assert verb in line and "Traceback" not in "\n".join(strict_viewer.err.lines)
        replies = hostile.read_to_end()  # the viewer closes the connection
        about = [text for text in strict_viewer.err.matching(hostile.name)
                 if not text.endswith(") connected")]
        assert about == [line], "one line names the peer and the reason"
        refusals = [m for m in replies if isinstance(m, Refused)]
        if verb == "refused":
            (refused,) = refusals
            assert reason in refused.reason and f"tcp {hostile.name}" in refused.reason
        else:
            assert refusals == []
        frames = [records_frame(0, 100, pid=good_info.pid), records_frame(100, 100, pid=good_info.pid), END]
        good.send(b"".join(frames[1:]))
        good.wait_ack(3)
        assert strict_viewer.saved(good_info).read_bytes() == expected_file(good_info, frames)
        assert strict_viewer.process.poll() is None
    finally:
        good.close()
        hostile.close()


def test_the_torn_peer_keeps_its_whole_frames(strict_viewer: Viewer) -> None:
    hostile = Client(strict_viewer.port)
    try:
        hostile_torn_frame(hostile)
        hostile.read_to_end()
        strict_viewer.err.wait_for(hostile.name, "torn tail")
        path = strict_viewer.saved(make_info(pid=9))
        assert [r.seq for r in saved_records(path)] == [0, 1, 2, 3, 4]
    finally:
        hostile.close()


# --- output, sources, lifecycle --------------------------------------------------------------


def test_print_shows_one_line_per_record(start_viewer: Callable[..., Viewer]) -> None:
    viewer = start_viewer("--print")
    info = make_info(app="printed")
    frames = [records_frame(0, 3), drop_frame(2, "queue full"), records_frame(3, 1, message="last one"), END]
    send_stream(viewer, info, frames).close()
    lines = viewer.out.wait_for("printed[4242]", count=5)
    assert [line.split(" INFO  ", 1)[1] for line in lines if " INFO " in line] == [
        "printed[4242] app.db: message 0", "printed[4242] app.db: message 1",
        "printed[4242] app.db: message 2", "printed[4242] app.db: last one",
    ]
    assert "printed[4242] -- 2 records dropped: queue full --" in lines
    assert all("\x1b[" not in line for line in lines)


def test_a_printed_record_stays_on_one_line() -> None:
    from rerun_logging.format import ExceptionInfo
    from rerun_logging.viewer.printing import record_lines

    record = make_record(0, message="first\nsecond")
    failed = Record(**{**record.__dict__, "exception": ExceptionInfo("KeyError", "'k'", "Traceback\nKeyError: 'k'")})
    lines = record_lines(make_info(app="two\nlines"), [failed], color=False)
    (line,) = lines
    assert "\n" not in line
    assert line.endswith("two\\nlines[4242] app.db: first\\nsecond exception=KeyError: 'k'")


def test_report_lines_cannot_be_forged_by_an_application_id(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    ingest = harness.ingest()
    ingest.feed(stream_header(make_info(app="x\nrefused 10.9.9.9:1: fake")))
    (line,) = harness.lines
    assert "\n" not in line and "x\\nrefused" in line


def test_a_file_and_stdin_are_loaded(start_viewer: Callable[..., Viewer], tmp_path: Path) -> None:
    from_file = make_info(pid=1, app="from-file")
    path = tmp_path / "run.rrd"
    path.write_bytes(expected_file(from_file, [records_frame(0, 2, pid=1), END]))
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(
        """
        import logging
        from rerun_logging import RerunHandler

        logging.basicConfig(level=logging.INFO, handlers=[RerunHandler("stdout", application_id="piped")])
        logging.getLogger("pipe.app").info("through %s", "stdin")
        """
    ))
    producer = subprocess.Popen([sys.executable, str(app)], stdout=subprocess.PIPE, env=child_env())
    try:
        viewer = start_viewer("--print", str(path), "-", stdin=producer.stdout, save_dir=tmp_path / "saved")
        assert producer.stdout is not None
        producer.stdout.close()
        assert producer.wait(timeout=TIMEOUT) == 0
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait(timeout=TIMEOUT)
    (line,) = viewer.out.wait_for(f"piped[{producer.pid}] pipe.app: through stdin")
    assert len(viewer.out.wait_for("from-file[1] app.db: message", count=2)) == 2
    viewer.err.wait_for(str(path), "loaded from-file[1]", "2 records; ended cleanly")
    viewer.err.wait_for("<stdin>", f"loaded piped[{producer.pid}]", "1 records; ended cleanly")
    assert viewer.saved(from_file).read_bytes() == path.read_bytes()
    (piped,) = (tmp_path / "saved").glob("piped-*.rlg")
    assert verify(str(piped)).clean and [r.message for r in saved_records(piped)] == ["through stdin"]


def test_sigterm_exits_0_and_saved_files_end_cleanly(start_viewer: Callable[..., Viewer], tmp_path: Path) -> None:
    viewer = start_viewer(save_dir=tmp_path / "saved")
    ended, live = make_info(pid=1), make_info(pid=2)
    send_stream(viewer, ended, [records_frame(0, 10, pid=1), END]).close()
    still_connected = send_stream(viewer, live, [records_frame(0, 10, pid=2)])
    still_connected.send(records_frame(10, 10, pid=2)[:7])  # a frame half sent at shutdown
    try:
        viewer.err.wait_for(still_connected.name, ") connected")
        assert viewer.stop(signal.SIGTERM) == 0
    finally:
        still_connected.close()
    summary = viewer.err.lines[-1]
    assert summary.startswith("rerun-logging viewer: stopped: 1 recording, 2 streams") and "2 files in" in summary
    assert not viewer.err.matching("Traceback") and not viewer.err.matching("torn")
    clean, open_ = verify(str(viewer.saved(ended))), verify(str(viewer.saved(live)))
    assert clean.clean and clean.records == 10
    assert open_.error is None and not open_.ended and open_.records == 10


def test_sigint_stops_it_too(start_viewer: Callable[..., Viewer]) -> None:
    viewer = start_viewer()
    assert viewer.stop(signal.SIGINT) == 0
    assert "stopped:" in viewer.err.lines[-1]


def test_a_taken_port_exits_3_with_one_clear_line(start_viewer: Callable[..., Viewer]) -> None:
    viewer = start_viewer()
    loser = subprocess.run(
        [sys.executable, "-m", "rerun_logging", "viewer", "--port", str(viewer.port)],
        capture_output=True, text=True, env=child_env(), timeout=TIMEOUT, stdin=subprocess.DEVNULL,
    )
    assert loser.returncode == 3
    (line,) = loser.stderr.splitlines()
    assert f"cannot listen on 127.0.0.1:{viewer.port}: the address is in use" in line
    assert viewer.process.poll() is None


def test_hostile_application_ids_stay_in_the_save_dir(start_viewer: Callable[..., Viewer], tmp_path: Path) -> None:
    saved = tmp_path / "inside" / "saved"
    viewer = start_viewer(save_dir=saved)
    apps = ["../../etc/passwd", "/abs/x", "..", "", "a/../../b", "../" * 30 + "x"]
    for pid, app in enumerate(apps, start=1):
        info = make_info(pid=pid, app=app, recording_id=f"../{pid}")
        send_stream(viewer, info, [records_frame(0, 1, pid=pid), END]).close()
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == len(apps) and all(p.parent == saved for p in files), files
    assert all(SAFE_FILE.fullmatch(p.name) for p in files), files
    assert all(verify(str(p)).clean for p in files)


def test_web_options_are_accepted(start_viewer: Callable[..., Viewer]) -> None:
    viewer = start_viewer("--web-port", "0", "--no-browser", "--memory-limit", "64M")
    assert viewer.process.poll() is None


# --- the command line ----------------------------------------------------------------------


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rerun_logging", *args], capture_output=True, text=True,
        env=child_env(), timeout=TIMEOUT, cwd=cwd, stdin=subprocess.DEVNULL,
    )


def test_a_mistyped_command_gets_a_hint(tmp_path: Path) -> None:
    result = run_cli("prnt", "run.rrd", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "prnt: no such file" in line and "did you mean 'rerun-logging print'" in line


def test_a_file_named_like_a_command_is_a_file(start_viewer: Callable[..., Viewer], tmp_path: Path) -> None:
    info = make_info(app="typo-file")
    (tmp_path / "prnt").write_bytes(expected_file(info, [records_frame(0, 1), END]))
    viewer = start_viewer("prnt", "--print", cwd=tmp_path)
    viewer.out.wait_for("typo-file[4242] app.db: message 0")


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli(str(tmp_path / "missing.rrd"), "--port", "0")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "missing.rrd: cannot read: No such file" in line


@pytest.mark.parametrize("args", [("--port", "99999"), ("--frame-timeout", "0"), ("--memory-limit", "lots")])
def test_bad_viewer_options_are_usage_errors(args: tuple[str, ...]) -> None:
    result = run_cli("viewer", *args)
    assert result.returncode == 2 and "error" in result.stderr


def test_option_parsers() -> None:
    assert cli.parse_size("512M") == 512 * 1024**2 and cli.parse_size("2GiB") == 2 * 1024**3
    assert cli.parse_size("1000") == 1000 and cli.parse_size("1.5k") == 1536
    assert cli.wants_viewer([]) and cli.wants_viewer(["viewer"]) and cli.wants_viewer(["x.rrd"])
    assert cli.wants_viewer(["--port", "1"]) and not cli.wants_viewer(["print", "x.rrd"])
    assert cli.mistyped_command(["verfy"]) is not None and cli.mistyped_command(["-"]) is None
    assert cli.mistyped_command(["run.rrd"]) is None


def test_main_runs_the_viewer_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``cli.main`` starts the viewer (here: it loses the port and returns 3)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        assert cli.main(["--port", str(holder.getsockname()[1])]) == 3
    finally:
        holder.close()
    assert "the address is in use" in capsys.readouterr().err


def test_uuid_recording_ids_name_files_as_they_are() -> None:
    rec = str(uuid.uuid4())
    assert stream_file_name(make_info(app="shop", recording_id=rec)) == f"shop-{rec}-4242.rlg"


# --- files holding several streams ---------------------------------------------------------


def file_ingest(harness: Harness, name: str = "runs.rrd") -> StreamIngest:
    return StreamIngest(name, harness.store, name=name, saver=harness.saver,
                        report=harness.lines.append, network=False)


def test_each_run_in_a_file_becomes_its_own_recording(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    one, two = make_info(pid=1, recording_id="run-1"), make_info(pid=2, recording_id="run-2")
    data = (expected_file(one, [records_frame(0, 3, pid=1), END])
            + expected_file(two, [records_frame(0, 2, pid=2), drop_frame(1), END]))
    for cut in (0, 1, len(data) // 2, len(data) - 1):
        store = harness.store = RecordingStore()
        harness.lines.clear()
        ingest = file_ingest(harness)
        ingest.feed(data[:cut])
        ingest.feed(data[cut:])
        ingest.close()
        assert list(store.recordings) == ["run-1", "run-2"]
        streams = list(store.streams())
        assert [(s.records, s.dropped, s.ended, s.connected) for s in streams] == [
            (3, 0, True, False), (2, 1, True, False)]
        assert harness.lines[0] == "runs.rrd: loaded 2 streams"
        assert "viewer-test[1] (recording run-1): 3 records; ended cleanly" in harness.lines[1]
        assert "viewer-test[2] (recording run-2): 2 records; ended cleanly" in harness.lines[2]
    assert verify(str(harness.saver.paths[0])).clean and verify(str(harness.saver.paths[1])).clean


def test_a_torn_run_then_an_appended_one_are_both_loaded(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    one, two = make_info(pid=1, recording_id="run-1"), make_info(pid=2, recording_id="run-2")
    head = expected_file(one, [records_frame(0, 3, pid=1)])
    data = head + records_frame(3, 40, pid=1)[:-9] + expected_file(two, [records_frame(0, 2, pid=2), END])
    ingest = file_ingest(harness)
    ingest.feed(data)
    ingest.close()
    assert [(s.records, s.ended) for s in harness.store.streams()] == [(3, False), (2, True)]
    (damage,) = ingest.damage
    assert damage.offset == len(head) and ingest.error is None
    (line,) = [line for line in harness.lines if "damaged" in line]
    assert f"damaged at byte {len(head)}" in line and "skipped" in line


def test_interleaved_streams_of_one_file_resume_and_keep_every_frame(tmp_path: Path) -> None:
    """Two handlers of one process on one path: equal DROPPED frames are not resends."""
    harness = Harness(tmp_path)
    a, b = make_info(), RecordingInfo(**{**make_info().__dict__, "start_time_ns": START + 1})
    ha, hb = stream_header(a), stream_header(b)
    data = (ha + records_frame(0, 2) + drop_frame(1) + hb + records_frame(0, 1) + ha + drop_frame(1)
            + records_frame(2, 2) + hb + records_frame(1, 1) + END + ha + END)
    ingest = file_ingest(harness)
    ingest.feed(data)
    ingest.close()
    (recording,) = harness.store.recordings.values()
    assert [(s.records, s.dropped, s.ended) for s in recording.streams.values()] == [
        (4, 2, True), (2, 0, True)]
    assert ingest.duplicates == 0 and ingest.records == 6


def test_a_second_stream_header_on_a_connection_is_refused(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    ingest = harness.ingest()
    replies = ingest.feed(expected_file(make_info(), [records_frame(0, 1)])
                          + expected_file(make_info(pid=9), [records_frame(0, 1)]))
    decoder = StreamDecoder("replies", magic=VIEWER_MAGIC)
    decoder.feed(VIEWER_HELLO + b"".join(replies))
    (refused,) = [m for m in decoder.messages() if isinstance(m, Refused)]
    assert "carries one stream" in refused.reason and ingest.finished


def test_the_viewer_opens_a_file_of_two_runs(start_viewer: Callable[..., Viewer], tmp_path: Path) -> None:
    one, two = make_info(pid=1, app="first"), make_info(pid=2, app="second", recording_id="rec-2")
    path = tmp_path / "runs.rrd"
    path.write_bytes(expected_file(one, [records_frame(0, 2, pid=1), END])
                     + expected_file(two, [records_frame(0, 3, pid=2), END]))
    viewer = start_viewer("--print", str(path), save_dir=tmp_path / "saved")
    assert len(viewer.out.wait_for("first[1] app.db: message", count=2)) == 2
    assert len(viewer.out.wait_for("second[2] app.db: message", count=3)) == 3
    viewer.err.wait_for(str(path), "loaded 2 streams")
    assert [r.seq for r in saved_records(viewer.saved(one))] == [0, 1]
    assert [r.seq for r in saved_records(viewer.saved(two))] == [0, 1, 2]
