"""``sink="serve"``: the app serves the web viewer itself; a real WebSocket client reads it.

Each test's handler serves on 127.0.0.1 port 0 (any free port) and is closed at
the end, which stops its server. Every wait has a deadline.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import socket
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from rerun_logging import RerunHandler
from rerun_logging.format import Record
from rerun_logging.viewer.feed import read_message

from .conftest import feed_of, read_messages, run_python

TIMEOUT = 10.0
QUIET = logging.Logger("tests.websockets-client", logging.CRITICAL + 1)
"""The test's own WebSocket client logs nowhere: it runs in the app's process, and its
lines on the root logger would be records of the app."""


def open_feed(page_url: str, **options: Any) -> ClientConnection:
    """A WebSocket client of the page's feed, from the page's own origin unless given."""
    url, origin = feed_of(page_url)
    return connect(url, **{"origin": origin, **options})


@pytest.fixture
def served(logger: logging.Logger) -> Iterator[tuple[RerunHandler, str]]:
    """A handler serving on a free port of 127.0.0.1, on the test's logger; its page URL."""
    handler = RerunHandler("serve:127.0.0.1:0", application_id="served", open_browser=False)
    logger.addHandler(handler)
    logger.info("started")
    assert handler.flush()
    url = handler._flusher.sinks[0].url  # type: ignore[attr-defined]
    assert url and url.startswith("http://127.0.0.1:")
    yield handler, url
    logger.removeHandler(handler)
    handler.close()


def receive_until(ws: ClientConnection, wanted: int, kinds: tuple[str, ...] = ("records",)) -> list[dict[str, Any]]:
    """Messages of ``kinds`` until ``wanted`` records arrived (the string table applied)."""
    out, count, deadline = [], 0, time.monotonic() + TIMEOUT
    while count < wanted:
        message = read_message(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if message["type"] in kinds:
            out.append(message)
            count += len(message.get("seq", ()))
    return out


def next_of_type(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """The next message of type ``kind`` (others skipped)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        message = read_message(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if message["type"] == kind:
            return message


def messages_of(batches: list[dict[str, Any]]) -> list[str]:
    return [text for batch in batches for text in batch["message"]]


def test_served_page_shows_snapshot_then_live_records(served: tuple[RerunHandler, str], logger: logging.Logger) -> None:
    handler, url = served
    with open_feed(url) as ws:
        assert messages_of(receive_until(ws, 1)) == ["started"]
        for i in range(500):
            logger.warning("live %d", i, extra={"latency_ms": i})
        batches = receive_until(ws, 500)
    assert messages_of(batches) == [f"live {i}" for i in range(500)]
    assert [e["latency_ms"] for b in batches for e in b["extras"]] == list(range(500))
    assert handler.stats.dropped == 0


def test_page_and_files_are_served_with_the_policy(served: tuple[RerunHandler, str]) -> None:
    _, url = served
    import urllib.request

    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        body = response.read().decode()
        assert response.status == 200
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "<html" in body.lower()


def test_foreign_origin_is_refused(served: tuple[RerunHandler, str]) -> None:
    _, url = served
    with pytest.raises(InvalidStatus) as refused:
        with open_feed(url, origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403


def test_download_returns_a_recording_of_the_selected_records(
    served: tuple[RerunHandler, str], logger: logging.Logger, tmp_path: Path
) -> None:
    handler, url = served
    for i in range(100):
        logger.info("row %d", i, extra={"i": i})
    assert handler.flush()
    with open_feed(url) as ws:
        batches = receive_until(ws, 101)
        recording, pid = batches[0]["recording"], batches[0]["pid"]
        seqs = [s for b in batches for s in b["seq"]]
        # rows 10..19 and 50: runs of (first, count)
        select = [{"recording": recording, "pid": pid, "seqs": [seqs[11], 10, seqs[51], 1]}]
        ws.send(json.dumps({"type": "download", "id": 7, "select": select}))
        meta = next_of_type(ws, "download")
        data = ws.recv(timeout=TIMEOUT)
    assert meta == {"type": "download", "id": 7, "name": meta["name"], "records": 11, "missing": 0}
    assert meta["name"].startswith("served-") and meta["name"].endswith(".rlg")
    assert isinstance(data, bytes)
    path = tmp_path / meta["name"]
    path.write_bytes(data)
    records = [m for m in read_messages(path) if isinstance(m, Record)]
    assert [r.message for r in records] == [f"row {i}" for i in range(10, 20)] + ["row 50"]
    assert records[0].extras == {"i": 10}


def test_bad_download_request_is_answered_with_what_was_wrong(served: tuple[RerunHandler, str]) -> None:
    _, url = served
    with open_feed(url) as ws:
        ws.send(json.dumps({"type": "download", "id": 3, "select": [{"recording": "r", "pid": 1, "seqs": [1]}]}))
        ws.send("not json")
        errors = [next_of_type(ws, "error"), next_of_type(ws, "error")]
    assert errors[0] == {"type": "error", "id": 3,
                         "error": "download 3: select[0].seqs must be pairs of non-negative integers [first, count, ...]"}
    assert errors[1]["error"] == "a request must be JSON text"


def test_records_of_websockets_itself_never_loop_back(served: tuple[RerunHandler, str], logger: logging.Logger) -> None:
    """The app's root logger at DEBUG with the serve handler on it: websockets' own
    per-frame debug lines must not become records (each would be sent, and log again)."""
    handler, url = served
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        with open_feed(url, logger=QUIET) as ws:
            receive_until(ws, 1)
            logger.info("one more")
            batches = receive_until(ws, 1)
            assert handler.flush()
    finally:
        root.removeHandler(handler)
    assert messages_of(batches) == ["one more"]
    assert handler.stats.emitted == 2


def test_taken_port_is_reported_and_the_app_goes_on(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code = (
            "import logging, rerun_logging\n"
            f"h = rerun_logging.RerunHandler('serve:127.0.0.1:{port}', open_browser=False)\n"
            "logging.getLogger().addHandler(h)\n"
            "logging.getLogger().warning('still logging')\n"
            "print('app finished')\n"
        )
        result = run_python(code, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "app finished\n"
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in result.stderr
    assert "serve on another port: serve:HOST:PORT" in result.stderr
    assert "Traceback" not in result.stderr


def _child_logs(count: int) -> None:
    log = logging.getLogger("tests.served.child")
    for i in range(count):
        log.warning("child %d", i)


def test_forked_children_stream_into_the_parents_page(served: tuple[RerunHandler, str]) -> None:
    handler, url = served
    child_logger = logging.getLogger("tests.served.child")
    child_logger.addHandler(handler)
    child_logger.propagate = False
    try:
        with open_feed(url) as ws:
            receive_until(ws, 1)
            process = multiprocessing.get_context("fork").Process(target=_child_logs, args=(50,))
            process.start()
            process.join(TIMEOUT)
            assert process.exitcode == 0
            batches = receive_until(ws, 50)
    finally:
        child_logger.removeHandler(handler)
    assert messages_of(batches) == [f"child {i}" for i in range(50)]
    assert {b["pid"] for b in batches} == {process.pid}


def test_a_taken_default_port_gives_way_to_a_free_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], logger: logging.Logger,
) -> None:
    import urllib.request

    from rerun_logging.sinks import MODES

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        monkeypatch.setattr(MODES["serve"], "default_port", taken)  # what "serve" defaults to
        handler = RerunHandler("serve", application_id="fallback", open_browser=False)
        logger.addHandler(handler)
        try:
            logger.info("hello")
            assert handler.flush()
            url = handler.url
            assert url and url.startswith("http://127.0.0.1:") and f":{taken}/" not in url
            said = [line for line in capsys.readouterr().err.splitlines() if "is taken" in line]
            assert len(said) == 1 and said[0].endswith(f"port {taken} is taken; web UI on {url}")
            with urllib.request.urlopen(url, timeout=TIMEOUT) as page:
                assert page.status == 200
        finally:
            logger.removeHandler(handler)
            handler.close()
