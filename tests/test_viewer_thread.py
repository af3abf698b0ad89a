"""The viewer in a daemon thread (``viewer/thread.py``), set up one way for its two hosts.

The serve sink and ``rerun-logging run`` both build it with ``page_config`` and
each says the viewer's events its own way; a real thread on free loopback ports
shows the events reach the host on the viewer's loop thread.
"""

from __future__ import annotations

import queue
import socket
import threading

import pytest

from rerun_logging.backoff import Backoff
from rerun_logging.format import Record, RecordingInfo, encode_frame, encode_records, stream_header
from rerun_logging.instrument.runner import RunServer
from rerun_logging.sinks.serve import WEB_HINT, ServeSink
from rerun_logging.viewer.events import (
    Listening, PeerConnected, PeerDisconnected, PeerRefused, Stopped, ViewerEvent, WebUINotStarted,
    WebUIStarted,
)
from rerun_logging.viewer.store import StoreSummary
from rerun_logging.viewer.thread import ViewerThread, page_config

TIMEOUT = 10.0
INFO = RecordingInfo("threaded", "rec-thread", 1, "host", 77, "3.11", "0")
SUMMARY = StoreSummary(1, 1, 0, 1, 3, 0, 0, 1, 100)


def test_the_page_is_served_where_asked_and_tcp_only_on_loopback() -> None:
    config = page_config("0.0.0.0", 9090, port_given=False)
    assert (config.bind, config.port, config.tcp_socket) == ("127.0.0.1", 0, None)
    assert (config.web_address, config.web_port, config.web_port_fallback) == ("0.0.0.0", 9090, True)
    assert not page_config("127.0.0.1", 8080).web_port_fallback  # a port given is kept
    assert not page_config("127.0.0.1", 8080, open_browser=False).open_browser


def test_the_serve_sink_and_the_runner_set_the_server_up_the_same_way() -> None:
    sink = ServeSink("127.0.0.1", 9090, 1 << 20, Backoff(), open_browser=True, port_given=False)
    assert sink.viewer_config() == page_config("127.0.0.1", 9090, port_given=False, memory_limit=1 << 20)
    run = RunServer("serve:127.0.0.1:8080")
    assert run._server.config == page_config("127.0.0.1", 8080, port_given=True)


def test_the_hosts_events_arrive_on_the_viewers_loop_thread() -> None:
    got: queue.Queue[tuple[ViewerEvent, str]] = queue.Queue()
    thread = ViewerThread(page_config("127.0.0.1", 0, open_browser=False), source_name="this test",
                          events=lambda event: got.put((event, threading.current_thread().name)))
    thread.start(TIMEOUT)
    try:
        listening, on = got.get(timeout=TIMEOUT)
        assert listening == Listening(f"127.0.0.1:{thread.tcp_port}") and on == "rerun-logging serve"
        web, _ = got.get(timeout=TIMEOUT)
        assert web == WebUIStarted(thread.url)  # type: ignore[arg-type]
        thread.feed(stream_header(INFO) + encode_frame(encode_records([
            Record(seq=0, time_ns=0, level=20, level_name="INFO", entity_path="a", logger="a", message="m"),
        ])))
        assert thread.sync(TIMEOUT)
        with socket.create_connection(("127.0.0.1", thread.tcp_port), timeout=TIMEOUT) as peer:  # type: ignore[arg-type]
            peer.sendall(b"nonsense, not a stream")
            refused, on = got.get(timeout=TIMEOUT)
            assert isinstance(refused, PeerRefused) and on == "rerun-logging serve"
    finally:
        thread.stop(TIMEOUT)
    stopped, _ = got.get(timeout=TIMEOUT)
    assert isinstance(stopped, Stopped) and stopped.summary.records == 1


# --- each host says the events its own way ------------------------------------------------


def test_the_serve_sink_says_the_events_but_not_its_childrens_port(capsys: pytest.CaptureFixture[str]) -> None:
    sink = ServeSink("127.0.0.1", 0, 1024, Backoff(0.1, 2.0, 1.0))
    sink._event(Listening("127.0.0.1:41234"))
    sink._event(WebUIStarted("http://127.0.0.1:9090/"))
    sink._event(WebUINotStarted("127.0.0.1:9090", "the address is in use"))
    assert capsys.readouterr().err.splitlines() == [
        "rerun-logging: serve:127.0.0.1:0: web UI on http://127.0.0.1:9090/",
        "rerun-logging: serve:127.0.0.1:0: web UI not started: cannot listen on 127.0.0.1:9090: "
        f"the address is in use; {WEB_HINT}",
    ]


def test_the_runner_keeps_a_streams_ordinary_life_off_the_programs_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    server = RunServer("serve:127.0.0.1:0")
    server.url = "http://127.0.0.1:9090/"
    for event in (Listening("127.0.0.1:1"), PeerConnected("127.0.0.1:2", "app[1] (recording r)", False),
                  PeerDisconnected("127.0.0.1:2", True, "127.0.0.1:2: ... disconnected: ended cleanly; 1 records"),
                  Stopped(SUMMARY)):
        server._event(event)
    server._event(WebUIStarted("http://127.0.0.1:9090/"))
    server._event(PeerDisconnected("127.0.0.1:3", False, "127.0.0.1:3: app[2] (recording r) disconnected: "
                                   "no END message (the app may reconnect); 0 records"))
    assert capsys.readouterr().err.splitlines() == [
        "rerun-logging run: web UI on http://127.0.0.1:9090/",
        "rerun-logging run: 127.0.0.1:3: app[2] (recording r) disconnected: no END message "
        "(the app may reconnect); 0 records",
    ]


def test_the_runner_says_why_there_is_no_page_once_and_counts_at_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    server = RunServer("serve:127.0.0.1:9090")
    server._event(WebUINotStarted("127.0.0.1:9090", "the address is in use"))
    assert server.web_error == "cannot listen on 127.0.0.1:9090: the address is in use"
    assert capsys.readouterr().err == ""  # the runner says it with what it does instead
    server._event(Stopped(SUMMARY))
    assert capsys.readouterr().err == f"rerun-logging run: not served (no page): {SUMMARY}\n"
