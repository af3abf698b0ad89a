"""The viewer's web UI, wired: a real viewer process, raw TCP producers, a WebSocket client.

The viewer runs with ``--port 0 --web-port 0 --no-browser``; both ports are read
from its stderr lines. Records sent over TCP must reach a connected web client
live, and a client that joins later gets them in its snapshot. Every wait has a
deadline; no sleep is a pass condition; every process is stopped.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import socket
import sys
from typing import Any, Callable

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from rerun_logging.format import Record, encode_frame, encode_records, stream_header
from rerun_logging.viewer import server
from rerun_logging.viewer.feed import SNAPSHOT_RECORDS, newest_records, read_message
from rerun_logging.viewer.ingest import StreamIngest
from rerun_logging.viewer.server import can_open_browser
from rerun_logging.viewer.store import RecordingStore

from .test_viewer import END, START, TIMEOUT, Client, Viewer, make_info, start_viewer

__all__ = ["start_viewer"]  # the fixture, used by name

WEB_LINE = re.compile(r"rerun-logging viewer: web UI on http://127\.0\.0\.1:(\d+)/")


def web_record(seq: int) -> Record:
    return Record(
        seq=seq, time_ns=START + seq * 1_000_000, level=logging.WARNING, level_name="WARNING",
        entity_path="app/web", logger="app.web", message=f"web message {seq}",
        extras={"user": f"u{seq}", "n": seq, "nested": {"ok": True}}, process=4242,
    )


def web_frame(first: int, count: int) -> bytes:
    return encode_frame(encode_records([web_record(first + i) for i in range(count)]))


def start_web_viewer(start_viewer: Callable[..., Viewer]) -> tuple[Viewer, int]:
    viewer = start_viewer("--web-port", "0", "--no-browser")
    (line,) = viewer.err.wait_for("web UI on")
    match = WEB_LINE.fullmatch(line)
    assert match, line
    return viewer, int(match.group(1))


class FeedReader:
    """A WebSocket client of the feed that rebuilds records from the column schema."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.strings: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.recordings: list[dict[str, Any]] = []

    def _apply(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "recordings":
            self.recordings = message["recordings"]
            return
        assert kind == "records", message  # nothing overflows in these tests
        if message.get("reset"):
            self.strings.clear()
        self.strings.extend(message.get("strings", ()))
        table = self.strings if "strings" in message else None  # a binary batch names its strings

        def text(column: str, row: int) -> str:
            value = message[column][row]
            return value if table is None else table[value]

        for row in range(len(message["seq"])):
            self.records.append({
                "recording": message["recording"], "pid": message["pid"],
                "seq": message["seq"][row], "message": message["message"][row],
                "extras": message["extras"][row], "logger": text("logger", row),
                "level_name": text("level_name", row), "entity": text("entity", row),
                "time_ns": message["time"][row] * 1_000_000 + message["ns"][row],
            })

    async def until(self, done: Callable[[], bool]) -> None:
        async def read() -> None:
            while not done():
                self._apply(read_message(await self.connection.recv()))

        try:
            await asyncio.wait_for(read(), TIMEOUT)
        except asyncio.TimeoutError:
            pytest.fail(f"the feed did not deliver in time: {len(self.records)} records, "
                        f"recordings {self.recordings}")


def feed_url(port: int) -> tuple[str, str]:
    return f"ws://127.0.0.1:{port}/ws", f"http://127.0.0.1:{port}"


def check_records(records: list[dict[str, Any]], count: int, recording: str) -> None:
    assert [r["seq"] for r in records] == list(range(count))
    for r in records:
        seq = r["seq"]
        assert r["message"] == f"web message {seq}"
        assert r["extras"] == {"user": f"u{seq}", "n": seq, "nested": {"ok": True}}
        assert (r["logger"], r["level_name"], r["entity"]) == ("app.web", "WARNING", "app/web")
        assert r["time_ns"] == START + seq * 1_000_000
        assert (r["recording"], r["pid"]) == (recording, 4242)


def test_records_reach_web_clients_live_and_in_the_snapshot(
    start_viewer: Callable[..., Viewer],
) -> None:
    viewer, web_port = start_web_viewer(start_viewer)
    assert len(viewer.err.matching("web UI on")) == 1
    info = make_info(app="web-app", recording_id="rec-web")
    url, origin = feed_url(web_port)

    async def test() -> None:
        async with connect(url, origin=origin, max_size=None) as live:  # type: ignore[arg-type]
            reader = FeedReader(live)
            client = await asyncio.to_thread(Client, viewer.port)
            try:
                await asyncio.to_thread(client.send, stream_header(info) + web_frame(0, 30))
                await asyncio.to_thread(client.wait_ack, 1)
                await reader.until(lambda: len(reader.records) >= 30 and any(
                    r["recording"] == "rec-web" and r["state"] == "live" and r["records"] == 30
                    for r in reader.recordings))
                await asyncio.to_thread(client.send, web_frame(30, 20) + END)
                await asyncio.to_thread(client.wait_ack, 3)
                await reader.until(lambda: len(reader.records) >= 50 and any(
                    r["state"] == "ended" for r in reader.recordings))
            finally:
                client.close()
            check_records(reader.records, 50, "rec-web")
            (summary,) = reader.recordings
            assert summary["application"] == "web-app" and summary["records"] == 50

        async with connect(url, origin=origin, max_size=None) as late:  # type: ignore[arg-type]
            reader = FeedReader(late)
            await reader.until(lambda: len(reader.records) >= 50 and bool(reader.recordings))
            check_records(reader.records, 50, "rec-web")
            assert [r["state"] for r in reader.recordings] == ["ended"]

    asyncio.run(test())
    assert viewer.stop() == 0


def test_a_late_client_gets_records_sent_before_any_client(
    start_viewer: Callable[..., Viewer],
) -> None:
    viewer, web_port = start_web_viewer(start_viewer)
    info = make_info(app="early-app", recording_id="rec-early")
    client = Client(viewer.port)
    try:
        client.send(stream_header(info) + web_frame(0, 40) + web_frame(40, 25))
        client.wait_ack(2)
        url, origin = feed_url(web_port)

        async def test() -> None:
            async with connect(url, origin=origin, max_size=None) as late:  # type: ignore[arg-type]
                reader = FeedReader(late)
                await reader.until(lambda: len(reader.records) >= 65 and bool(reader.recordings))
                check_records(reader.records, 65, "rec-early")
                (summary,) = reader.recordings
                assert (summary["state"], summary["records"]) == ("live", 65)

        asyncio.run(test())
    finally:
        client.close()
    assert viewer.stop() == 0


def test_a_foreign_origin_is_refused(start_viewer: Callable[..., Viewer]) -> None:
    viewer, web_port = start_web_viewer(start_viewer)
    url, _ = feed_url(web_port)

    async def test() -> None:
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url, origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        assert refused.value.response.status_code == 403

    asyncio.run(test())
    assert viewer.process.poll() is None
    assert viewer.stop() == 0


def test_a_taken_web_port_leaves_the_tcp_viewer_running(
    start_viewer: Callable[..., Viewer],
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        viewer = start_viewer("--web-port", str(taken), "--no-browser")
        (line,) = viewer.err.wait_for("web UI not started")
        assert f"127.0.0.1:{taken}" in line and "in use" in line
        client = Client(viewer.port)
        try:
            client.send(stream_header(make_info()) + web_frame(0, 5))
            client.wait_ack(1)
        finally:
            client.close()
        assert viewer.process.poll() is None
        assert not viewer.err.matching("web UI on http")
        assert viewer.stop() == 0


def test_a_browser_is_opened_only_with_a_display_and_never_in_ci() -> None:
    assert not can_open_browser(False, {"DISPLAY": ":0"})
    assert not can_open_browser(True, {"DISPLAY": ":0", "CI": "true"})
    assert can_open_browser(True, {"DISPLAY": ":0"})
    assert can_open_browser(True, {"WAYLAND_DISPLAY": "wayland-0"})
    if sys.platform.startswith("linux"):
        assert not can_open_browser(True, {})


def test_nothing_is_decoded_for_the_web_without_a_client() -> None:
    viewer = server.Viewer(server.ViewerConfig())
    assert viewer.web is None and not viewer.feed
    printing = server.Viewer(server.ViewerConfig(print_records=True), out=io.StringIO())
    assert printing.feed


def test_the_snapshot_holds_the_newest_records_within_its_bound() -> None:
    store = RecordingStore()
    ingest = StreamIngest("test", store, network=False)
    ingest.feed(stream_header(make_info()) + b"".join(web_frame(i * 10, 10) for i in range(5)) + END)
    sources, records = newest_records(store, max_records=25, max_bytes=10**9)
    assert set(sources) == {("rec-viewer", 4242)}
    assert [r.seq for r in records] == list(range(25, 50))
    assert newest_records(store, max_records=0, max_bytes=10**9) == ([], [])
    _, everything = newest_records(store, SNAPSHOT_RECORDS, 10**9)
    assert [r.seq for r in everything] == list(range(50))
