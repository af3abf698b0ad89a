"""Viewer-wide limits on what peers can make it hold: connections and unfinished frames.

The viewer runs in-process on its own thread (``ViewerThread``, the serve sink's
server), with the limits lowered; peers are real loopback sockets.
"""

from __future__ import annotations

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


def records_frame(count: int) -> bytes:
    """An uncompressed frame of ``count`` records (big on the wire on purpose)."""
    return encode_frame(encode_records([
        Record(seq=i, time_ns=i, level=20, level_name="INFO", entity_path="a", logger="a", message=f"m{i}")
        for i in range(count)
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


def test_a_peer_beyond_the_connection_limit_is_refused_others_go_on(
    viewer: ViewerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 2)
    port = viewer.tcp_port
    assert port is not None
    first, second = peer(port), peer(port)
    third = peer(port)
    third.shutdown(socket.SHUT_WR)
    (refused,) = [m for m in replies(third) if isinstance(m, Refused)]
    assert "too many connections (the viewer takes 2 at once)" in refused.reason
    first.sendall(stream_header(info(1)) + records_frame(3))
    first.shutdown(socket.SHUT_WR)
    assert not any(isinstance(m, Refused) for m in replies(first))
    for sock in (first, second, third):
        sock.close()
    assert viewer.sync(TIMEOUT)
    assert any("refused" in line and "too many connections" in line for line in viewer.lines)  # type: ignore[attr-defined]


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
    wait_until(viewer, lambda v: sum(v._peers.values()) >= 60_000)
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
