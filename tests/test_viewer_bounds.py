"""The viewer's memory and work are bounded per received byte (issue 11, items 1, 2, 5, 10).

Two layers: the sans-I/O pieces (ingest caps, store accounting, feed snapshot and
recordings updates) tested as plain state, then the attacks as they were made: a real
viewer process (``--port 0 --web-port 0``), raw TCP peers, a WebSocket page. Every
wait has a deadline; no sleep is a pass condition.

``RERUN_LOGGING_FLOOD_STREAMS`` sets how many short connections the stream flood
makes (default 1000; the issue's attack made 4000).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
import zlib
from typing import Any, Callable

import pytest
from websockets.asyncio.client import connect

from rerun_logging.format import (
    CODEC_ZLIB, FRAME_HEAD_SIZE, HEADER, MAX_FIELD_CHARS, TARGET_PAYLOAD_SIZE, TRUNCATION_MARK, Record, RecordingInfo,
    Refused, StreamDecoder, columns_for, encode_frame, packb, records_message, encode_records, end_message, info_message, stream_header,
)
from rerun_logging.viewer.feed import (
    FeedClient, StreamSummary, newest_records, queue_snapshot, read_message, stream_summaries,
)
from rerun_logging.viewer.ingest import (
    MAX_INFO_CHARS, MAX_PEER_PAYLOAD_SIZE, StreamIngest, bounded_info,
)
from rerun_logging.viewer.store import RecordingStore

from .test_viewer import TIMEOUT, Client, Viewer, start_viewer
from .test_viewer_webfeed import WEB_LINE, feed_url

__all__ = ["start_viewer"]  # the fixture, used by name

T0 = 1_764_000_000_000_000_000
BOMB_MESSAGE = 60 * 1024 * 1024
FLOOD_STREAMS = int(os.environ.get("RERUN_LOGGING_FLOOD_STREAMS", "1000"))


def info(recording_id: str, pid: int = 1, app: str = "app", host: str = "host") -> RecordingInfo:
    return RecordingInfo(app, recording_id, T0, host, pid, "3.11", "0")


def record(seq: int, message: str | None = None, logger: str = "app.web") -> Record:
    return Record(
        seq=seq, time_ns=T0 + seq * 1000, level=logging.INFO, level_name="INFO",
        entity_path=logger.replace(".", "/"), logger=logger,
        message=f"record {seq}" if message is None else message,
    )


def frame(first: int, count: int, **fields: Any) -> bytes:
    return encode_frame(encode_records([record(first + i, **fields) for i in range(count)]))


def deflated_frame(payload: bytes) -> bytes:
    """A frame deflated at level 9 (what the attack sent: 60 MiB in about 61 KB)."""
    data = zlib.compress(payload, 9)
    crc = zlib.crc32(data, zlib.crc32(bytes((CODEC_ZLIB,))))
    return struct.pack("<IBI", len(data), CODEC_ZLIB, crc) + data


def bomb_frame() -> bytes:
    return deflated_frame(encode_records([record(0, message="x" * BOMB_MESSAGE)]))


class Printer:
    """A RecordPrinter that keeps what it is shown."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def __bool__(self) -> bool:
        return True

    def show(self, info: RecordingInfo, messages: Any) -> None:
        self.records.extend(m for m in messages if isinstance(m, Record))

    def skipped(self, info: RecordingInfo, records: int) -> None:
        raise AssertionError("never skipped")


# --- the ingest's caps ---------------------------------------------------------------------


def test_a_deflate_bomb_is_refused_before_it_is_stored() -> None:
    """From a peer, inflating stops at MAX_PEER_PAYLOAD_SIZE (the bomb's CPU is bounded);
    from a file, the frame is refused by its record count once inflated."""
    bomb = bomb_frame()
    assert len(bomb) < 100_000
    from_file = StreamIngest("a file", RecordingStore(), network=False)
    from_file.feed(stream_header(info("bomb")) + frame(0, 3) + bomb)
    assert from_file.error is not None
    assert "inflates to" in from_file.error.reason and "for 1 record" in from_file.error.reason
    store = RecordingStore()
    ingest = StreamIngest("tcp peer", store)
    replies = ingest.feed(stream_header(info("bomb")) + frame(0, 3) + bomb)
    assert ingest.finished and ingest.error is not None
    assert f"payload inflates beyond {MAX_PEER_PAYLOAD_SIZE} bytes" in ingest.error.reason
    answers = StreamDecoder("replies")
    answers.feed(HEADER + b"".join(replies))
    assert isinstance(list(answers.messages())[-1], Refused)
    (stream,) = store.streams()
    assert stream.records == 3 and len(stream.frames) == 1  # the frames before it stay


def test_the_largest_frame_a_handler_writes_is_taken_from_a_peer() -> None:
    """The handler splits batches past TARGET_PAYLOAD_SIZE: a frame just under it, of
    records at the field caps, is far inside the peer's inflate limit."""
    text = "\u4e16" * MAX_FIELD_CHARS  # 3 bytes a character: the caps at their heaviest
    count = TARGET_PAYLOAD_SIZE // (len(text.encode()) + 64)
    payload = encode_records([record(i, message=text) for i in range(count)])
    assert TARGET_PAYLOAD_SIZE * 0.9 < len(payload) <= TARGET_PAYLOAD_SIZE
    store = RecordingStore()
    ingest = StreamIngest("tcp peer", store)
    ingest.feed(stream_header(info("big")) + deflated_frame(payload))
    assert ingest.error is None and ingest.records == count


def test_an_info_is_capped_in_size_and_in_its_fields() -> None:
    long = info("r" * 20_000 + "A", app="a" * 20_000, host="h" * 20_000)
    other = info("r" * 20_000 + "B", app="a" * 20_000)
    cut, cut_other = bounded_info(long), bounded_info(other)
    for value in (cut.application_id, cut.host, cut.recording_id):
        assert len(value) <= MAX_INFO_CHARS + len(TRUNCATION_MARK.format(10**6))
    assert TRUNCATION_MARK.format(20_000 - MAX_INFO_CHARS) in cut.application_id
    assert cut.recording_id != cut_other.recording_id  # long ids stay distinct
    assert bounded_info(info("short")) == info("short")
    store = RecordingStore()
    ingest = StreamIngest("tcp peer", store)
    ingest.feed(stream_header(long) + frame(0, 2))
    (stream,) = store.streams()
    assert stream.info == cut and len(stream.info_frame) < 2048
    assert stream.state_bytes < 8192
    # an INFO that inflates past the INFO limit is refused, whatever it stores as
    bomb = HEADER + deflated_frame(info_message(info("x", app="a" * 1_000_000)))
    refused = StreamIngest("tcp peer", RecordingStore())
    refused.feed(bomb)
    assert refused.error is not None and "INFO frame of" in refused.error.reason


def test_decoded_records_are_cut_to_the_field_caps_and_counted() -> None:
    printer = Printer()
    ingest = StreamIngest("file", RecordingStore(), printer=printer, network=False)
    long = "é" * (MAX_FIELD_CHARS * 3)
    columns, _ = columns_for([record(1)])  # extras past the cap, as no handler writes them
    big_extras = records_message(columns, packb([{f"k{i}": "v" * 60_000 for i in range(10)}]))
    data = (stream_header(info("cut")) + frame(0, 1, message=long)
            + encode_frame(big_extras) + frame(2, 1))
    ingest.feed(data)
    first, second, third = printer.records
    assert len(first.message) == MAX_FIELD_CHARS + len(TRUNCATION_MARK.format(2 * MAX_FIELD_CHARS))
    assert TRUNCATION_MARK.format(2 * MAX_FIELD_CHARS) in first.message
    assert "rerun.truncated" in second.extras and len(second.extras) < 10
    assert third == record(2)
    assert ingest.truncated == 2


# --- the snapshot of a page that joins -----------------------------------------------------


def interleaved_store(counts: dict[str, int], per_frame: int = 7) -> RecordingStore:
    """Streams fed frame by frame in turn, as apps streaming at once are."""
    store = RecordingStore()
    ingests = {rid: StreamIngest(rid, store, network=False) for rid in counts}
    sent = dict.fromkeys(counts, 0)
    for rid, ingest in ingests.items():
        ingest.feed(stream_header(info(rid)))
    while any(sent[rid] < counts[rid] for rid in counts):
        for rid, ingest in ingests.items():
            n = min(per_frame, counts[rid] - sent[rid])
            if n:
                ingest.feed(frame(sent[rid], n))
                sent[rid] += n
    return store


class Page:
    """What the page does with the feed's messages (see static/store.js, messages.js)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, int]] = []
        self.missed = 0
        self.older = 0
        self.recordings: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.recordings_bytes = 0

    def receive(self, texts: list[str]) -> None:
        for text in texts:
            message = read_message(text)
            kind = message["type"]
            if kind == "records":
                if "stream" in message:
                    streams = message["streams"]
                    self.rows += [(streams[i][0], seq) for i, seq in zip(message["stream"], message["seq"])]
                else:
                    self.rows += [(message["recording"], seq) for seq in message["seq"]]
            elif kind == "missed":
                self.missed += message["records"]
                self.older += message.get("older", 0)
            elif kind == "recordings":
                self.recordings_bytes += len(text)
                if not message.get("update"):
                    self.recordings.clear()
                for key in message.get("removed", ()):
                    del self.recordings[tuple(key)]
                for r in message["recordings"]:
                    self.recordings[(r["recording"], r["pid"], r["start_ns"])] = r


def test_a_late_page_gets_every_record_of_interleaved_streams_in_few_batches() -> None:
    counts = {"a": 2500, "b": 1500, "c": 800}
    store = interleaved_store(counts)
    feed, page = FeedClient(), Page()
    assert queue_snapshot(feed, store) == 4800
    texts = feed.data_to_send()
    assert len(texts) <= 1 + 4800 // 1000 + 1  # recordings + batches, not one per run
    page.receive(texts)
    assert page.missed == 0
    for rid, count in counts.items():
        assert [seq for r, seq in page.rows if r == rid] == list(range(count))
    assert len(page.rows) == 4800


def test_a_snapshot_that_must_choose_keeps_the_newest_and_says_exactly_what_it_left_out() -> None:
    store = interleaved_store({"a": 300, "b": 300})
    sources, records = newest_records(store, max_records=250, max_bytes=10**9)
    assert len(records) == 250
    assert records[-1].seq == 299 and sources[-1] == ("b", 1)  # the newest frame is b's
    feed, page = FeedClient(), Page()
    queue_snapshot(feed, store, max_records=250)
    page.receive(feed.data_to_send())
    assert (len(page.rows), page.missed, page.older) == (250, 350, 350)
    # bounded in bytes too: big records, a small byte budget
    big = RecordingStore()
    StreamIngest("big", big, network=False).feed(
        stream_header(info("big")) + b"".join(frame(i * 10, 10, message="m" * 50_000) for i in range(10)))
    feed, page = FeedClient(max_bytes=1_000_000), Page()
    sent = queue_snapshot(feed, big)
    texts = feed.data_to_send()
    assert sum(map(len, texts)) <= 1_100_000
    page.receive(texts)
    assert 0 < sent == len(page.rows) < 100 and page.missed == 100 - sent
    assert [seq for _, seq in page.rows] == list(range(100 - sent, 100))


def test_the_string_table_is_bounded_in_characters() -> None:
    feed = FeedClient(max_string_chars=200_000)
    for i in range(20):
        feed.records("r", [record(i, logger=f"{i}" + "l" * 60_000)])
        feed.data_to_send()
        assert sum(map(len, feed._strings)) <= 200_000 + 61_000


# --- the recordings list -------------------------------------------------------------------


def test_recordings_updates_carry_what_changed() -> None:
    store = RecordingStore()
    keys = [store.open_stream(bounded_info(info(f"r{i}", app="a" * 60_000)), b"").key
            for i in range(1000)]
    feed, page = FeedClient(), Page()
    feed.recordings(stream_summaries(store))
    page.receive(feed.data_to_send())
    first = page.recordings_bytes
    assert len(page.recordings) == 1000 and first < 1000 * 2 * MAX_INFO_CHARS
    for n in range(100):  # an app logging: one entry changes each time
        store.stream(keys[0]).records = n + 1
        feed.recordings(stream_summaries(store))
        page.receive(feed.data_to_send())
    assert page.recordings_bytes - first < 100 * 1000
    assert page.recordings[(f"r0", 1, T0)]["records"] == 100
    feed.recordings(stream_summaries(store))
    assert feed.data_to_send() == []  # nothing changed: nothing sent
    summaries = stream_summaries(store)
    feed.recordings(summaries[1:])  # one evicted whole
    page.receive(feed.data_to_send())
    assert len(page.recordings) == 999 and ("r0", 1, T0) not in page.recordings


def test_a_summary_entry_has_its_key() -> None:
    summary = StreamSummary("r", "app", "host", 7, T0 + 5, "live")
    assert summary.key == ("r", 7, T0 + 5) and summary.as_json()["start_ns"] == T0 + 5


# --- the attacks, against a real viewer process ----------------------------------------------


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def start_web(start_viewer: Callable[..., Viewer], *args: str) -> tuple[Viewer, int]:
    viewer = start_viewer("--web-port", "0", "--no-browser", *args)
    (line,) = viewer.err.wait_for("web UI on")
    match = WEB_LINE.fullmatch(line)
    assert match, line
    return viewer, int(match.group(1))


async def join_page(web_port: int, done: Callable[[Page], bool]) -> Page:
    """A page that joins and reads until ``done`` (with a deadline)."""
    url, origin = feed_url(web_port)
    page = Page()
    async with connect(url, origin=origin, max_size=None) as ws:  # type: ignore[arg-type]
        async def read() -> None:
            while not done(page):
                page.receive([await ws.recv()])  # type: ignore[list-item]
        try:
            await asyncio.wait_for(read(), TIMEOUT * 2)
        except asyncio.TimeoutError:
            pytest.fail(f"the page got {len(page.rows)} records, {page.missed} missed")
    return page


def send_bomb(port: int, n: int) -> str:
    client = Client(port)
    try:
        client.send(stream_header(info(f"bomb-{n}", pid=1000 + n)) + BOMB)
        client.sock.shutdown(socket.SHUT_WR)
        (refused,) = [m for m in client.read_to_end() if isinstance(m, Refused)]
        return refused.reason
    finally:
        client.close()


BOMB = bomb_frame()


def test_bombs_beside_an_honest_app(start_viewer: Callable[..., Viewer]) -> None:
    viewer, web_port = start_web(start_viewer, "--memory-limit", "64M")
    honest = Client(viewer.port)
    honest.send(stream_header(info("honest", pid=7)))
    started = time.monotonic()
    sent = 0
    try:
        for n in range(24):
            assert f"inflates beyond {MAX_PEER_PAYLOAD_SIZE}" in send_bomb(viewer.port, n)
            honest.send(frame(sent, 100))
            sent += 100
            honest.wait_ack(n + 1)
        delivered = time.monotonic() - started
        page = asyncio.run(join_page(web_port, lambda p: len(p.rows) >= sent and bool(p.recordings)))
        assert [seq for rid, seq in page.rows] == list(range(sent)) and page.missed == 0
        assert rss_mib(viewer.process.pid) < 4 * 64 + 100
        print(f"bombs: {sent} honest records in {delivered:.2f}s, "
              f"viewer RSS {rss_mib(viewer.process.pid):.0f} MiB")
    finally:
        honest.close()
    assert viewer.stop() == 0


def test_a_flood_of_short_streams_stays_within_the_memory_limit(
    start_viewer: Callable[..., Viewer],
) -> None:
    viewer = start_viewer("--memory-limit", "64M", "--web-port", "0", "--no-browser")
    app = "a" * 30_000
    for n in range(FLOOD_STREAMS):
        with socket.create_connection(("127.0.0.1", viewer.port), timeout=TIMEOUT) as sock:
            sock.sendall(stream_header(info(f"flood-{n}", pid=n, app=app, host="h" * 30_000))
                         + encode_frame(end_message()))
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
    honest = Client(viewer.port)
    try:
        honest.send(stream_header(info("honest", pid=7)) + frame(0, 50))
        honest.wait_ack(1)
    finally:
        honest.close()
    rss = rss_mib(viewer.process.pid)
    assert rss < 4 * 64 + 100
    assert viewer.stop() == 0
    (line,) = viewer.err.wait_for("stopped:")
    held = float(line.split(" MiB held")[0].rsplit(" ", 1)[1])
    assert 0.1 < held <= 64
    print(f"flood of {FLOOD_STREAMS} streams: viewer RSS {rss:.0f} MiB; {line}")


def test_a_page_open_during_many_long_named_streams_gets_a_bounded_recordings_list(
    start_viewer: Callable[..., Viewer],
) -> None:
    viewer, web_port = start_web(start_viewer)
    url, origin = feed_url(web_port)
    app = "n" * 60_000

    async def test() -> Page:
        page = Page()
        async with connect(url, origin=origin, max_size=None) as ws:  # type: ignore[arg-type]
            page.receive([await ws.recv()])  # type: ignore[list-item]
            clients = []
            for n in range(200):
                client = await asyncio.to_thread(Client, viewer.port)
                await asyncio.to_thread(client.send, stream_header(info(f"long-{n}", pid=n, app=app)))
                clients.append(client)
            honest = await asyncio.to_thread(Client, viewer.port)
            await asyncio.to_thread(honest.send, stream_header(info("honest", pid=7)))
            for i in range(50):
                await asyncio.to_thread(honest.send, frame(i * 10, 10))
                await asyncio.to_thread(honest.wait_ack, i + 1)

            async def read() -> None:
                while len(page.rows) < 500 or page.recordings.get(("honest", 7, T0), {}).get("records") != 500:
                    page.receive([await ws.recv()])  # type: ignore[list-item]
            await asyncio.wait_for(read(), TIMEOUT)
            for client in clients + [honest]:
                client.close()
        return page

    page = asyncio.run(test())
    assert len(page.recordings) == 201
    # every entry once (names cut to 256 characters), then one entry per update
    assert page.recordings_bytes < 201 * 4 * MAX_INFO_CHARS + 60 * 2000
    print(f"recordings messages: {page.recordings_bytes} bytes")
    assert viewer.stop() == 0


def test_three_interleaved_apps_then_a_late_page(start_viewer: Callable[..., Viewer]) -> None:
    viewer, web_port = start_web(start_viewer)
    counts = {"a": 2500, "b": 1500, "c": 800}
    clients = {rid: Client(viewer.port) for rid in counts}
    try:
        for pid, (rid, client) in enumerate(clients.items()):
            client.send(stream_header(info(rid, pid=pid)))
        sent = dict.fromkeys(counts, 0)
        frames = dict.fromkeys(counts, 0)
        while any(sent[r] < counts[r] for r in counts):
            for rid, client in clients.items():
                n = min(5, counts[rid] - sent[rid])
                if n:
                    client.send(frame(sent[rid], n))
                    sent[rid] += n
                    frames[rid] += 1
        for rid, client in clients.items():
            client.wait_ack(frames[rid])
        page = asyncio.run(join_page(web_port, lambda p: len(p.rows) >= 4800))
    finally:
        for client in clients.values():
            client.close()
    assert page.missed == 0 and len(page.rows) == 4800
    for rid, count in counts.items():
        assert [seq for r, seq in page.rows if r == rid] == list(range(count))
    assert viewer.stop() == 0
