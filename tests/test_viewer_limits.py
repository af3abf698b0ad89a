"""Viewer-wide limits on what peers can make it hold: connections and unfinished frames.

The viewer runs in-process on its own thread (``ViewerThread``, the serve sink's
server), with the limits lowered; peers are real loopback sockets.
"""

from __future__ import annotations

import re
import socket
import time
from typing import Callable, Iterator

import pytest

from rerun_logging.format import (
    HEADER, VIEWER_HELLO, Record, RecordingInfo, Refused, StreamDecoder, encode_frame,
    encode_records, stream_header,
)
from rerun_logging.viewer import server
from rerun_logging.viewer.server import ViewerConfig
from rerun_logging.viewer.thread import ViewerThread

TIMEOUT = 10.0


@pytest.fixture
def viewer() -> Iterator[ViewerThread]:
    lines: list[str] = []
    thread = ViewerThread(ViewerConfig(port=0, web=False), lines.append, "limits test")
    thread.start(TIMEOUT)
    thread.lines = lines  # type: ignore[attr-defined]
    yield thread
    thread.stop(TIMEOUT)


def info(pid: int) -> RecordingInfo:
    return RecordingInfo("limits", f"rec-{pid}", 1, "host", pid, "3.11", "0")


def records_frame(count: int, start: int = 0) -> bytes:
    """An uncompressed frame of ``count`` records from seq ``start`` (big on the wire on purpose)."""
    return encode_frame(encode_records([
        Record(seq=i, time_ns=i, level=20, level_name="INFO", entity_path="a", logger="a", message=f"m{i}")
        for i in range(start, start + count)
    ]), compress=False)


def peer(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    assert recv_exactly(sock, len(VIEWER_HELLO)) == VIEWER_HELLO
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "closed early"
        data += chunk
    return data


def wait_until(viewer: ViewerThread, condition: Callable[[server.Viewer], bool]) -> None:
    """Wait (on the viewer's own loop, through ``sync``) until ``condition`` holds."""
    deadline = time.monotonic() + TIMEOUT
    while not (viewer.sync(TIMEOUT) and viewer.viewer and condition(viewer.viewer)):
        assert time.monotonic() < deadline, "condition not reached"


def replies(sock: socket.socket) -> list[object]:
    """Every message the viewer sends until it closes the connection."""
    decoder = StreamDecoder("viewer replies")
    decoder.feed(HEADER)
    while chunk := sock.recv(65536):
        decoder.feed(chunk)
    return list(decoder.messages())


def test_a_full_table_evicts_the_peer_idle_longest_and_takes_the_new_one(
    viewer: ViewerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 2)
    assert viewer.viewer is not None
    monkeypatch.setattr(viewer.viewer.peers, "idle_after", 0.0)
    port = viewer.tcp_port
    assert port is not None
    busy, silent = peer(port), peer(port)
    busy.sendall(stream_header(info(1)) + records_frame(3))
    silent.sendall(stream_header(info(2)))
    wait_until(viewer, lambda v: len(list(v.store.streams())) == 2)
    busy.sendall(records_frame(3, start=3))  # the older one, but it spoke last
    wait_until(viewer, lambda v: sum(s.records for s in v.store.streams()) == 6)
    newcomer = peer(port)
    silent.shutdown(socket.SHUT_WR)
    (refused,) = [m for m in replies(silent) if isinstance(m, Refused)]
    assert re.fullmatch(
        r".*too many connections \(the viewer takes 2 at once\): closed to make room for a new "
        r"one, as the one idle longest \(\d+\.\ds without a byte\)", refused.reason
    ), refused.reason
    newcomer.sendall(stream_header(info(3)) + records_frame(3))
    newcomer.shutdown(socket.SHUT_WR)
    busy.shutdown(socket.SHUT_WR)
    assert not any(isinstance(m, Refused) for m in replies(newcomer))
    assert not any(isinstance(m, Refused) for m in replies(busy))
    for sock in (busy, silent, newcomer):
        sock.close()
    assert viewer.sync(TIMEOUT)
    held = {s.key.pid: s.records for s in viewer.viewer.store.streams()}
    assert held == {1: 6, 2: 0, 3: 3}
    lines = viewer.lines  # type: ignore[attr-defined]
    assert len([line for line in lines if line.startswith("refused ")]) == 1


def test_when_every_peer_is_busy_the_oldest_makes_room(
    viewer: ViewerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 2)
    port = viewer.tcp_port
    assert port is not None
    first, second = peer(port), peer(port)
    first.sendall(stream_header(info(1)))
    second.sendall(stream_header(info(2)))
    wait_until(viewer, lambda v: len(list(v.store.streams())) == 2)
    third = peer(port)
    third.sendall(stream_header(info(3)))
    first.shutdown(socket.SHUT_WR)
    (refused,) = [m for m in replies(first) if isinstance(m, Refused)]
    assert re.fullmatch(
        r".*too many connections \(the viewer takes 2 at once\): closed to make room for a new "
        r"one, as the oldest \(\d+\.\ds\) of the 2 from 127\.0\.0\.1, the address holding "
        r"the most; none was idle for 5s", refused.reason
    ), refused.reason
    for sock in (second, third):
        sock.sendall(records_frame(2))
        sock.shutdown(socket.SHUT_WR)
        assert not any(isinstance(m, Refused) for m in replies(sock))
    for sock in (first, second, third):
        sock.close()


def slot(host: str, at: float) -> server.PeerSlot:
    return server.PeerSlot(None, f"{host}:1", host, at, at)  # type: ignore[arg-type]


def test_peer_table_policy() -> None:
    """Who makes room, without sockets: idle longest first; else the oldest of the biggest host."""
    table = server.PeerTable(idle_after=5.0)
    b1, a1, a2 = slot("10.0.0.2", 0.0), slot("10.0.0.1", 1.0), slot("10.0.0.1", 2.0)
    for s in (b1, a1, a2):
        assert table.admit(s, s.connected_at, capacity=3) is None
        table.received(s, 3.0, 0)
    newcomer = slot("10.0.0.3", 4.0)
    assert table.admit(newcomer, 4.0, capacity=3) is a1  # b1 is older, but 10.0.0.1 holds 2
    assert a1.evicted is not None and a1.evicted.endswith(
        "as the oldest (3.0s) of the 2 from 10.0.0.1, the address holding the most; "
        "none was idle for 5s"
    )
    assert list(table) == [b1, a2, newcomer] and b1.evicted is None


def test_peer_table_evicts_the_idle_first_and_counts_buffered_bytes() -> None:
    table = server.PeerTable(idle_after=5.0)
    old, quiet = slot("h", 0.0), slot("h", 1.0)
    table.admit(old, 0.0, 2)
    table.admit(quiet, 1.0, 2)
    table.received(old, 9.0, 700)
    table.received(quiet, 2.0, 300)
    assert table.buffered == 1000
    victim = table.admit(slot("h", 10.0), 10.0, 2)
    assert victim is quiet and quiet.evicted is not None
    assert quiet.evicted.endswith("as the one idle longest (8.0s without a byte)")
    assert table.buffered == 700 and len(table) == 2
    table.remove(old)
    table.remove(old)
    assert table.buffered == 0 and len(table) == 1


def test_burst_report_says_the_first_of_each_burst() -> None:
    from rerun_logging.viewer.bursts import BurstReport

    bursts = BurstReport(quiet=10.0)
    assert [bursts.note(t) for t in (0.0, 1.0, 5.0, 14.0)] == [True, False, False, False]
    assert bursts.note(30.0) and bursts.suffix() == " (the previous burst had 3 more)"
    assert bursts.total == 5


def test_unfinished_frames_of_all_peers_are_capped_together(
    viewer: ViewerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "MAX_BUFFERED_BYTES", 100_000)
    port = viewer.tcp_port
    assert port is not None
    big = records_frame(8_000)
    assert 60_000 < len(big) < 100_000  # one peer alone stays under the limit
    a, b = peer(port), peer(port)
    a.sendall(stream_header(info(1)) + big[:60_000])
    wait_until(viewer, lambda v: v.peers.buffered >= 60_000)
    b.sendall(stream_header(info(2)) + big[:60_000])
    b.shutdown(socket.SHUT_WR)
    (refused,) = [m for m in replies(b) if isinstance(m, Refused)]
    assert "MiB of unfinished frames from all peers (limit 0.1 MiB)" in refused.reason
    a.sendall(big[60_000:])
    a.shutdown(socket.SHUT_WR)
    assert not any(isinstance(m, Refused) for m in replies(a))
    a.close()
    b.close()
    assert viewer.viewer is not None and viewer.sync(TIMEOUT)
    held = {s.key.pid: s.records for s in viewer.viewer.store.streams()}
    assert held.get(1) == 8_000 and not held.get(2)
