"""The viewer's asyncio app (``viewer/server.py``): the events it reports, in order.

Real viewers on their own loop (``ViewerThread``), real loopback sockets on free
ports of 127.0.0.1; every wait is on an event, with a timeout.
"""

from __future__ import annotations

import queue
import socket
from pathlib import Path
from typing import Iterator, TypeVar

import pytest

from rerun_logging.format import (
    HEADER, VIEWER_HELLO, Record, RecordingInfo, Refused, StreamDecoder, encode_frame,
    encode_records, end_message, stream_header,
)
from rerun_logging.viewer.events import (
    CannotListen, Listening, Note, NotStarted, PeerConnected, PeerDisconnected, PeerRefused,
    PeerTimedOut, PortTaken, SourceEmpty, Stopped, ViewerEvent, WebUINotStarted, WebUIStarted,
)
from rerun_logging.viewer.ingest import StreamIngest
from rerun_logging.viewer.report import event_line
from rerun_logging.viewer.server import PeerReport, ViewerConfig
from rerun_logging.viewer.store import RecordingStore
from rerun_logging.viewer.thread import ViewerThread

TIMEOUT = 10.0
E = TypeVar("E", bound=ViewerEvent)
INFO = RecordingInfo("events-app", "rec-events", 1, "host", 4242, "3.11", "0")
END = encode_frame(end_message())


def records_frame(count: int, start: int = 0) -> bytes:
    return encode_frame(encode_records([
        Record(seq=i, time_ns=i, level=20, level_name="INFO", entity_path="a", logger="a",
               message=f"m{i}")
        for i in range(start, start + count)
    ]))


class Events:
    """What a viewer reported, taken one at a time with a timeout."""

    def __init__(self) -> None:
        self.queue: queue.Queue[ViewerEvent] = queue.Queue()
        self.seen: list[ViewerEvent] = []

    def put(self, event: ViewerEvent) -> None:
        self.queue.put(event)

    def next(self, kind: type[E]) -> E:
        """The next event, which must be a ``kind``."""
        event = self.queue.get(timeout=TIMEOUT)
        self.seen.append(event)
        assert isinstance(event, kind), (event, self.seen)
        return event


def started(events: Events, **options: object) -> ViewerThread:
    config = ViewerConfig(**{"port": 0, "web_port": 0, "open_browser": False, **options})  # type: ignore[arg-type]
    thread = ViewerThread(config, events=events.put)
    thread.start(TIMEOUT)
    return thread


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port of 127.0.0.1 that a socket of the test listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


class Peer:
    """A raw TCP client of the viewer: checks the hello, sends bytes, reads the replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.name = f"127.0.0.1:{self.sock.getsockname()[1]}"
        hello = b""
        while len(hello) < len(VIEWER_HELLO):
            chunk = self.sock.recv(len(VIEWER_HELLO) - len(hello))
            assert chunk, "closed before the hello"
            hello += chunk
        assert hello == VIEWER_HELLO

    def replies(self) -> list[object]:
        """Every message the viewer sends until it closes the connection."""
        decoder = StreamDecoder("viewer replies")
        decoder.feed(HEADER)
        while chunk := self.sock.recv(65536):
            decoder.feed(chunk)
        return list(decoder.messages())

    def close(self) -> None:
        self.sock.close()


# --- a real run, in order ---------------------------------------------------------------


def test_a_run_reports_start_a_peer_connecting_a_peer_refused_and_the_stop_in_order(events: Events) -> None:
    viewer = started(events)
    try:
        listening = events.next(Listening)
        assert listening.address == f"127.0.0.1:{viewer.tcp_port}"
        web = events.next(WebUIStarted)
        assert web.url == viewer.url and web.taken_port is None

        app = Peer(viewer.tcp_port)  # type: ignore[arg-type]
        app.sock.sendall(stream_header(INFO) + records_frame(3))
        connected = events.next(PeerConnected)
        assert connected == PeerConnected(app.name, "events-app[4242] (recording rec-events)", False)

        stranger = Peer(viewer.tcp_port)  # type: ignore[arg-type]
        stranger.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        refused = events.next(PeerRefused)
        assert (refused.peer, refused.offset) == (stranger.name, 0)
        (reply,) = stranger.replies()
        assert isinstance(reply, Refused) and refused.reason in reply.reason
        stranger.close()

        app.sock.sendall(END)
        app.close()
        gone = events.next(PeerDisconnected)
        assert (gone.peer, gone.clean) == (app.name, True)
        assert gone.line.endswith("disconnected: ended cleanly; 3 records")
    finally:
        viewer.stop(TIMEOUT)
    stopped = events.next(Stopped)
    assert (stopped.summary.records, stopped.summary.ended, stopped.saved_files) == (3, 1, None)
    assert events.queue.empty()
    assert [type(e) for e in events.seen] == [
        Listening, WebUIStarted, PeerConnected, PeerRefused, PeerDisconnected, Stopped,
    ]
    assert viewer.status == 0


def test_a_peer_that_comes_back_resumes_and_one_that_left_without_end_is_not_clean(events: Events) -> None:
    viewer = started(events, web=False)
    try:
        events.next(Listening)
        first = Peer(viewer.tcp_port)  # type: ignore[arg-type]
        first.sock.sendall(stream_header(INFO) + records_frame(2))
        assert not events.next(PeerConnected).resumed
        first.close()
        left = events.next(PeerDisconnected)
        assert not left.clean and "no END message" in left.line
        again = Peer(viewer.tcp_port)  # type: ignore[arg-type]
        again.sock.sendall(stream_header(INFO) + records_frame(2, start=2) + END)
        assert events.next(PeerConnected) == PeerConnected(
            again.name, "events-app[4242] (recording rec-events)", True
        )
        again.close()
        assert events.next(PeerDisconnected).clean
    finally:
        viewer.stop(TIMEOUT)
    assert events.next(Stopped).summary.records == 4


def test_a_silent_peer_times_out(events: Events) -> None:
    viewer = started(events, web=False, handshake_timeout=0.2)
    try:
        events.next(Listening)
        silent = Peer(viewer.tcp_port)  # type: ignore[arg-type]
        timed_out = events.next(PeerTimedOut)
        assert timed_out.peer == silent.name and "header" in timed_out.reason
        assert silent.sock.recv(1) == b""  # closed by the viewer
        silent.close()
    finally:
        viewer.stop(TIMEOUT)
    events.next(Stopped)


# --- starting -------------------------------------------------------------------------------


def test_a_taken_web_port_costs_the_web_ui_only(events: Events, taken_port: int) -> None:
    viewer = started(events, web_port=taken_port)
    try:
        events.next(Listening)
        assert events.next(WebUINotStarted) == WebUINotStarted(
            f"127.0.0.1:{taken_port}", "the address is in use"
        )
        assert viewer.url is None and viewer.tcp_port is not None
    finally:
        viewer.stop(TIMEOUT)
    events.next(Stopped)


def test_a_taken_default_web_port_gives_way_and_says_which(events: Events, taken_port: int) -> None:
    viewer = started(events, web_port=taken_port, web_port_fallback=True)
    try:
        events.next(Listening)
        web = events.next(WebUIStarted)
        assert web.taken_port == taken_port and web.url == viewer.url
        assert f":{taken_port}/" not in web.url
    finally:
        viewer.stop(TIMEOUT)
    events.next(Stopped)


def test_a_taken_default_tcp_port_gives_way_and_a_named_one_does_not(events: Events, taken_port: int) -> None:
    viewer = started(events, web=False, port=taken_port, port_fallback=True)
    try:
        moved = events.next(PortTaken)
        assert moved.port == taken_port and moved.instead == viewer.tcp_port != taken_port
        assert events.next(Listening).address == f"127.0.0.1:{viewer.tcp_port}"
    finally:
        viewer.stop(TIMEOUT)
    events.next(Stopped)

    refused = ViewerThread(ViewerConfig(web=False, port=taken_port), events=events.put)
    with pytest.raises(OSError):
        refused.start(TIMEOUT)
    refused.join(TIMEOUT)
    assert events.next(CannotListen) == CannotListen(
        f"127.0.0.1:{taken_port}", "Address already in use", True
    )
    assert refused.status == 3


def test_a_source_that_cannot_be_read_stops_the_start(events: Events, tmp_path: Path) -> None:
    missing = tmp_path / "missing.rrd"
    viewer = ViewerThread(ViewerConfig(sources=(str(missing),), web=False), events=events.put)
    with pytest.raises(OSError):
        viewer.start(TIMEOUT)
    viewer.join(TIMEOUT)
    problem = events.next(NotStarted).problem
    assert problem.startswith(f"{missing}: cannot read: ")
    assert viewer.status == 2


def test_files_are_loaded_and_the_save_directory_counted(events: Events, tmp_path: Path) -> None:
    empty, recording = tmp_path / "empty.rrd", tmp_path / "run.rrd"
    empty.write_bytes(b"")
    recording.write_bytes(stream_header(INFO) + records_frame(2) + END)
    saved = tmp_path / "saved"
    viewer = started(events, web=False, sources=(str(empty), str(recording)), save_dir=str(saved))
    try:
        events.next(Listening)
        later = [events.queue.get(timeout=TIMEOUT) for _ in range(2)]  # the two files, either order
        assert SourceEmpty(str(empty)) in later
        (loaded,) = [e for e in later if isinstance(e, Note)]
        assert loaded.text == (f"{recording}: loaded events-app[4242] (recording rec-events): "
                               "2 records; ended cleanly")
    finally:
        viewer.stop(TIMEOUT)
    stopped = events.next(Stopped)
    assert (stopped.saved_files, stopped.save_dir) == (1, str(saved))


# --- what a peer's ingest says, as events -------------------------------------------------


def told(*chunks: bytes, store: RecordingStore | None = None, close: bool = True) -> tuple[list[str], list[ViewerEvent]]:
    """What a peer's ingest says for ``chunks`` (its own words), and the events made of them."""
    words: list[str] = []
    events: list[ViewerEvent] = []
    said = PeerReport(events.append, "127.0.0.1:5555")

    def report(text: str) -> None:
        words.append(text)
        said(text)

    ingest = said.ingest = StreamIngest("tcp 127.0.0.1:5555", store or RecordingStore(),
                                        name="127.0.0.1:5555", report=report)
    for chunk in chunks:
        ingest.feed(chunk)
    if close:
        said.closing()
        ingest.close()
    return words, events


@pytest.mark.parametrize("chunks, kinds", [
    ((stream_header(INFO), records_frame(2), END), [PeerConnected, PeerDisconnected]),
    ((stream_header(INFO), records_frame(2)), [PeerConnected, PeerDisconnected]),
    ((stream_header(INFO), records_frame(2)[:-3]), [PeerConnected, PeerDisconnected]),
    ((b"not a recording at all",), [PeerRefused]),
    ((stream_header(INFO), b"\x00" * 64), [PeerConnected, PeerRefused]),
    ((stream_header(INFO), stream_header(INFO)), [PeerConnected, PeerRefused]),
    ((stream_header(INFO)[:-3],), [PeerDisconnected]),  # closed before its stream started
])
def test_each_event_of_a_peer_reads_as_the_ingest_words_it(
    chunks: tuple[bytes, ...], kinds: list[type[ViewerEvent]]
) -> None:
    words, events = told(*chunks)
    assert [type(e) for e in events] == kinds
    assert [event_line(e) for e in events] == words


def test_only_a_clean_end_is_a_clean_disconnection() -> None:
    _, clean = told(stream_header(INFO), records_frame(1), END)
    _, open_ = told(stream_header(INFO), records_frame(1))
    _, torn = told(stream_header(INFO), END[:-2])
    assert [e.clean for e in clean + open_ + torn if isinstance(e, PeerDisconnected)] == [True, False, False]


def test_a_resumed_stream_reads_as_the_ingest_words_it() -> None:
    store = RecordingStore()
    told(stream_header(INFO), records_frame(2), store=store)
    words, events = told(stream_header(INFO), records_frame(2, start=2), store=store, close=False)
    assert events == [PeerConnected("127.0.0.1:5555", "events-app[4242] (recording rec-events)", True)]
    assert [event_line(e) for e in events] == words


def test_a_peer_closed_quietly_says_nothing() -> None:
    events: list[ViewerEvent] = []
    said = PeerReport(events.append, "127.0.0.1:5555")
    ingest = said.ingest = StreamIngest("tcp 127.0.0.1:5555", RecordingStore(), name="127.0.0.1:5555",
                                        report=said)
    ingest.feed(stream_header(INFO))
    said.closing()
    ingest.close(quiet=True)  # shutdown
    assert [type(e) for e in events] == [PeerConnected]
