"""The web feed: columns, string interning, overflow accounting, safe JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rerun_logging.format import (
    ExceptionInfo, Record, RecordingInfo, StreamDecoder, encode_stream, peek_frame,
)
from rerun_logging.viewer.feed import FeedClient, StreamSummary, json_value, stream_summaries
from rerun_logging.viewer.store import RecordingStore

T0 = 1_764_000_000_123_456_789


def make_record(seq: int, **changes: Any) -> Record:
    fields: dict[str, Any] = dict(
        seq=seq, time_ns=T0 + seq * 1_000_001, level=20, level_name="INFO",
        entity_path="app/db", logger="app.db", message=f"message {seq}",
        template="message %d", extras={}, thread=140_000_000_000_001, thread_name="MainThread",
        process=4242, process_name="MainProcess", task_name=None, path="/src/app.py",
        line=10 + seq % 3, function="work",
    )
    fields.update(changes)
    return Record(**fields)


class BrowserModel:
    """What the UI will do: keep the string table, rebuild records from columns."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self.records: list[Record] = []
        self.missed: list[dict[str, Any]] = []
        self.recordings: list[dict[str, Any]] = []

    def receive(self, texts: list[str]) -> None:
        for text in texts:
            assert text.isascii()
            message = json.loads(text)
            if message.get("reset"):
                self.strings.clear()
            self.strings.extend(message.get("strings", ()))
            kind = message["type"]
            if kind == "records":
                self.records.extend(self._rebuild(message))
            elif kind == "missed":
                self.missed.append(message)
            elif kind == "recordings":
                self.recordings = message["recordings"]

    def _s(self, sid: int | None) -> str | None:
        return None if sid is None else self.strings[sid]

    def _rebuild(self, m: dict[str, Any]) -> list[Record]:
        excs = {row: ExceptionInfo(t, v, tb) for row, t, v, tb in m["exception"]}
        stacks = dict((row, text) for row, text in m["stack"])
        n = len(m["seq"])
        for key, column in m.items():
            if isinstance(column, list) and key not in ("strings", "exception", "stack"):
                assert len(column) == n, key
        s = self._s
        args = m.get("args") or [None] * n
        return [
            Record(
                seq=m["seq"][i], time_ns=m["time"][i] * 1_000_000 + m["ns"][i],
                level=m["level"][i], level_name=s(m["level_name"][i]),
                entity_path=s(m["entity"][i]), logger=s(m["logger"][i]),
                message=m["message"][i], template=s(m["template"][i]),
                extras=m["extras"][i] or {}, exception=excs.get(i), stack_info=stacks.get(i),
                thread=m["thread"][i], thread_name=s(m["thread_name"][i]),
                process=m["process"][i], process_name=s(m["process_name"][i]),
                task_name=s(m["task"][i]), path=s(m["path"][i]), line=m["line"][i],
                function=s(m["function"][i]),
                args=tuple(args[i]) if isinstance(args[i], list) else args[i],
            )
            for i in range(n)
        ]


def test_columns_and_interning_round_trip() -> None:
    records = [
        make_record(0, extras={"user": "ada", "n": 3, "nested": {"a": [1, 2.5, None, True]}}),
        make_record(1, exception=ExceptionInfo("ValueError", "bad", "Traceback ...\n")),
        make_record(2, template=None, function=None, thread_name=None, task_name="Task-7"),
        make_record(3, stack_info="Stack (most recent call last):\n", logger="", entity_path="root"),
        make_record(4, message="<script>alert(1)</script> & \u00e9\u4e2d\U0001f600"),
    ]
    client, browser = FeedClient(), BrowserModel()
    client.records("rec-1", records[:3], pid=4242)
    client.records("rec-1", records[3:], pid=4242)
    texts = client.data_to_send()
    assert len(texts) == 2
    first = json.loads(texts[0])
    assert first["type"] == "records" and first["recording"] == "rec-1" and first["pid"] == 4242
    # Interned: each repeated string is sent once, and ids repeat instead.
    assert first["strings"].count("app.db") == 1
    assert first["logger"] == [first["logger"][0]] * 3
    assert first["exception"] == [[1, "ValueError", "bad", "Traceback ...\n"]]
    assert "app.db" not in json.loads(texts[1])["strings"]  # known from the first batch
    browser.receive(texts)
    assert browser.records == records
    assert client.data_to_send() == []


def test_args_travel_as_a_column_only_when_some_record_has_them() -> None:
    feed = FeedClient()
    feed.records("rec", [make_record(0), make_record(1, args=(1, "GET", [2])), make_record(2, args={"k": 2**60})])
    feed.records("rec", [make_record(3)])
    with_args, without = (json.loads(t) for t in feed.data_to_send())
    assert with_args["args"] == [None, [1, "GET", [2]], {"k": str(2**60)}]
    assert "args" not in without
    model = BrowserModel()
    model.receive([json.dumps(with_args)])
    assert [r.args for r in model.records] == [None, (1, "GET", [2]), {"k": str(2**60)}]


def test_time_is_exact_milliseconds_plus_nanoseconds() -> None:
    client = FeedClient()
    client.records("r", [make_record(0)])
    message = json.loads(client.data_to_send()[0])
    assert message["time"][0] == T0 // 1_000_000
    assert message["time"][0] < 2**53
    assert message["time"][0] * 1_000_000 + message["ns"][0] == T0


def test_extras_become_json_values_the_browser_reads_exactly() -> None:
    value = {
        "big": 2**64 - 1, "neg": -(2**60), "ok": 2**53 - 1, "nan": float("nan"),
        "inf": float("-inf"), "raw": b"\x00\xff", 1: "int key", (1, 2): "tuple key",
    }
    converted = json_value(value)
    assert converted == {
        "big": str(2**64 - 1), "neg": str(-(2**60)), "ok": 2**53 - 1, "nan": "nan",
        "inf": "-inf", "raw": str(b"\x00\xff"), "1": "int key", "(1, 2)": "tuple key",
    }
    client = FeedClient()
    client.records("r", [make_record(0, extras=value)])
    (text,) = client.data_to_send()
    assert json.loads(text)["extras"] == [converted]


def test_lone_surrogates_are_escaped_not_fatal() -> None:
    lone = "bad \udcff and \ud800 end"
    record = make_record(0, message=lone, logger="log\udc80", extras={"k\udfff": lone})
    client, browser = FeedClient(), BrowserModel()
    client.records("r\ud801", [record])
    texts = client.data_to_send()
    assert all(text.isascii() for text in texts)
    text = texts[0]
    text.encode("utf-8")  # a valid WebSocket text message
    assert "\\udcff" in text
    browser.receive(texts)
    assert browser.records == [record]
    assert json.loads(text)["recording"] == "r\ud801"


def test_a_full_queue_counts_new_batches_missed_without_encoding_them() -> None:
    client, browser = FeedClient(max_batches=3), BrowserModel()
    sent: list[Record] = []
    for batch in range(10):
        records = [make_record(batch * 10 + i, logger=f"logger.{batch}") for i in range(batch + 1)]
        sent.extend(records)
        client.records("r", records)
        assert client.full == (batch >= 2)
    texts = client.data_to_send()
    kinds = [json.loads(t)["type"] for t in texts]
    assert kinds == ["missed", "records", "records", "records"]
    browser.receive(texts)
    (missed,) = browser.missed
    assert missed["batches"] == 7
    assert missed["records"] == sum(range(4, 11)) == client.missed_records
    assert missed["records"] + len(browser.records) == len(sent)
    # The queued batches arrive whole, and the skipped ones never touched the string table.
    assert browser.records == sent[:len(browser.records)]
    assert browser.strings == list(client._strings)
    assert not any(s == "logger.9" for s in client._strings)
    # The count restarts after it was reported; with room again, batches flow.
    client.records("r", [make_record(999)])
    browser.receive(client.data_to_send())
    assert len(browser.missed) == 1 and browser.records[-1] == make_record(999)


def test_overflow_by_bytes_including_a_batch_larger_than_the_bound() -> None:
    client, browser = FeedClient(max_bytes=5000), BrowserModel()
    small = [make_record(i) for i in range(3)]
    client.records("r", small)
    huge = [make_record(10, message="x" * 10_000)]
    client.records("r", huge)  # alone over the bound: everything goes, itself too
    assert client.queued_bytes == 0
    skipped = [make_record(20)]
    client.records("r", skipped)  # behind: counted, not even encoded, until it reads
    browser.receive(client.data_to_send())
    assert browser.missed[0]["records"] == 5 and browser.missed[0]["batches"] == 3
    assert browser.records == []
    after = [make_record(30)]
    client.records("r", after)
    browser.receive(client.data_to_send())
    assert browser.records == after and browser.strings == list(client._strings)


def test_string_table_is_bounded_by_resets() -> None:
    client, browser = FeedClient(max_strings=20, max_batches=2), BrowserModel()
    sent, resets = [], 0
    for batch in range(20):
        records = [make_record(batch, logger=f"unique.{batch}", task_name=f"Task-{batch}")]
        sent.extend(records)
        client.records("r", records)
        assert client.string_count <= 20
        if batch % 3 == 0:  # sometimes drained, sometimes overflowing
            texts = client.data_to_send()
            resets += sum('"reset":true' in text for text in texts)
            browser.receive(texts)
    browser.receive(client.data_to_send())
    assert resets >= 2
    assert sum(m["records"] for m in browser.missed) + len(browser.records) == len(sent)
    assert browser.records == [r for r in sent if r in browser.records]
    assert browser.strings == list(client._strings)
    assert len(browser.strings) <= 20


def test_recordings_snapshot_is_sent_first_and_replaced() -> None:
    client = FeedClient(max_batches=1)
    client.records("r", [make_record(0)])
    summary = StreamSummary("r", "app <b>", "host", 7, T0, "live", records=1, dropped=2)
    client.recordings([])
    client.recordings([summary])
    texts = client.data_to_send()
    assert json.loads(texts[0]) == {
        "type": "recordings",
        "recordings": [{
            "recording": "r", "application": "app <b>", "host": "host", "pid": 7,
            "start": T0 // 1_000_000, "start_ns": T0, "state": "live", "records": 1,
            "dropped": 2,
        }],
    }
    assert [json.loads(t)["type"] for t in texts] == ["recordings", "records"]
    assert not client.pending


def test_stream_summaries_from_the_store() -> None:
    info = RecordingInfo("app", "rec", T0, "host", 11, "3.12", "0.1")
    stream = encode_stream(info, [make_record(0), make_record(1)])
    decoder = StreamDecoder()
    decoder.feed(stream)
    frames = list(decoder.frames())
    store = RecordingStore()
    key = store.open_stream(info, frames[0].raw).key
    for frame in frames[1:]:
        store.add_frame(key, frame.raw, peek_frame(frame.payload))
    (lost,) = stream_summaries(store)
    assert lost.state == "lost" and lost.records == 2 and lost.pid == 11
    store.attach(key)
    assert stream_summaries(store)[0].state == "live"


@pytest.mark.parametrize("bad", [dict(max_batches=0), dict(max_bytes=0), dict(max_strings=0)])
def test_bounds_must_be_positive(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        FeedClient(**bad)


def test_a_dropped_reset_travels_in_the_missed_message() -> None:
    # 8 strings for the first record, 2 more per record after: the third batch resets
    # the table, and it alone is over the byte bound: it goes, with all before it.
    batches = [[make_record(i, logger=f"l{i}", path=f"/p{i}.py")] for i in range(4)]
    batches[2] = [make_record(2, logger="l2", path="/p2.py", message="x" * 20_000)]
    client, browser = FeedClient(max_strings=17, max_bytes=10_000), BrowserModel()
    for records in batches[:3]:
        client.records("r", records)
    texts = client.data_to_send()
    missed = json.loads(texts[0])
    assert missed["type"] == "missed" and missed["reset"] is True
    assert missed["batches"] == 3 and missed["records"] == 3
    browser.receive(texts)
    assert browser.records == []
    client.records("r", batches[3])
    browser.receive(client.data_to_send())
    assert browser.records[-1] == batches[3][0]
    assert browser.strings == list(client._strings)
