"""The page's binary batches (issue 14's load budget): what ``FeedClient(binary=True)``
sends reads back (:func:`~rerun_logging.viewer.feed.read_batch`, the page's reference)
as the JSON batch of the same records reads, string ids resolved; numbers go as typed
arrays and the log's data as the JSON batch's own text; what cannot be packed exactly
goes as JSON; the queue bounds count binary batches as they count JSON.
The page's own decoder is held to ``read_batch`` in ``test_page_batch.py``.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Sequence

import msgpack
import pytest

from rerun_logging.format import ExceptionInfo, Record, RecordColumns, RecordingInfo, encode_stream
from rerun_logging.viewer.feed import (
    _SPREAD, BATCH_TAG, FeedClient, binary_batch, read_batch, read_message,
)

from .test_viewer_columns import SPAN, TRACE, decoded, record, varied_records

ODD_EXTRAS: list[dict[Any, Any]] = [
    {"user": "ada", "n": 3, "nested": {"a": [1, 2.5, None, True]}},
    {"big": 2**64 - 1, "neg": -(2**63), "edge": 2**53 - 1, "past": 2**53, "small": -(2**53) + 1},
    {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf"), "f": 0.1, "whole": 2.0},
    {"raw": b"\x00\xff'\"\\\t\n\r ok", "quote": b"it's", "both": b"'\"", "empty": b""},
    {7: "int key", 1.5: "float key", True: "bool key", 2**60: "big key", 1e16: "big float key",
     1e-05: "small float key", -0.0: "negative zero"},
    {"__proto__": {"polluted": True}, "constructor": 1, "": "empty key"},
    {"ünïcödé": "short ü", "long": "ß" * 40, "emoji": "🙂" * 3, "mixed": "abc\u00e9" * 9},
    {"list": [b"x", 2**63, float("nan"), {"deep": [[[]]]}]},
]


def odd_records() -> list[Record]:
    """Records with every kind of value a writer can send (no lone surrogate: those go as JSON)."""
    out = [record(i, extras=extras) for i, extras in enumerate(ODD_EXTRAS)]
    n = len(out)
    out += [
        record(n, exception=ExceptionInfo("ValueError", "bad", "Traceback ...\n"), extras={}),
        record(n + 1, template=None, function=None, thread_name=None, task_name="Task-7",
               level=35, level_name="Level 35", thread=2**62, process=None, process_name=None),
        record(n + 2, stack_info="Stack:\n", logger="", entity_path="root", message=""),
        record(n + 3, message="GET 3", template="GET %s", args=(3, "x", [1, 2**60], b"b"),
               trace_id=TRACE, span_id=SPAN, trace_flags=1),
        record(n + 4, message="hi ada", template="hi %(who)s", args={"who": "ada", "n": 2**63},
               trace_id=TRACE, span_id=None, trace_flags=0),
        record(n + 5, time_ns=-1_500_001, path="/other.py", line=99, thread=7, thread_name="w-1"),
    ]
    return out


def resolved(text: str) -> dict[str, Any]:
    """A JSON batch from a fresh feed, its string ids replaced by the strings."""
    message = json.loads(text)
    table = message.pop("strings")
    message.pop("reset", None)
    for column, _, _, how in _SPREAD:
        if how == "sid":
            message[column] = [None if v is None else table[v] for v in message[column]]
    return message


def sent(records: RecordColumns | Sequence[Record], binary: bool) -> str | bytes:
    feed = FeedClient(binary=binary)
    feed.records("rec", records, 4242)
    (message,) = feed.data_to_send()
    return message


@pytest.mark.parametrize("layout", ["decoded", "of records"])
def test_a_binary_batch_reads_back_as_the_json_batch_of_its_records(layout: str) -> None:
    records = odd_records()
    columns = decoded(records) if layout == "decoded" else RecordColumns.of(records)
    binary, text = sent(columns, True), sent(columns, False)
    assert isinstance(binary, bytes) and binary.startswith(BATCH_TAG)
    assert read_message(binary) == read_batch(binary) == resolved(text)


def test_values_past_what_javascript_holds_become_text_as_in_json() -> None:
    batch = read_batch(sent(decoded(odd_records()), True))
    extras = batch["extras"]
    assert extras[1] == {"big": str(2**64 - 1), "neg": str(-(2**63)), "edge": 2**53 - 1,
                         "past": str(2**53), "small": -(2**53) + 1}
    assert extras[2]["nan"] == "nan" and extras[2]["-inf"] == "-inf" and extras[2]["whole"] == 2.0
    assert extras[3]["raw"] == str(b"\x00\xff'\"\\\t\n\r ok") and extras[3]["quote"] == '''b"it's"'''
    assert set(extras[4]) == {"7", "1.5", "True", str(2**60), "1e+16", "1e-05", "-0.0"}
    assert batch["thread"][len(ODD_EXTRAS) + 1] == str(2**62)
    assert batch["trace"] == [[len(ODD_EXTRAS) + 3, TRACE, SPAN, 1], [len(ODD_EXTRAS) + 4, TRACE, None, 0]]


def test_numbers_go_as_typed_arrays_and_the_logs_data_as_the_json_batchs_text() -> None:
    records = odd_records()
    data = sent(decoded(records), True)
    body = msgpack.unpackb(data[len(BATCH_TAG):], raw=False, strict_map_key=False)
    count = len(records)
    assert {k: len(body[k]) for k in ("seq", "time", "ns", "site", "ctx")} == {
        "seq": 8 * count, "time": 8 * count, "ns": 4 * count, "site": 4 * count, "ctx": 4 * count}
    text = json.loads(sent(decoded(records), False))
    assert json.loads(body["message"]) == text["message"] == [r.message for r in records]
    assert json.loads(body["extras"]) == text["extras"]
    assert json.loads(body["args"]) == text["args"]
    assert body["extras"].isascii() and body["message"].isascii()


def test_a_number_past_the_typed_columns_sends_the_batch_as_json() -> None:
    """A crafted sequence number past float64 (a writer's fits in 64 bits)."""
    columns = dataclasses.replace(decoded([record(0), record(1)]), seqs=[0, 10**400])
    assert binary_batch(columns, ("rec", 1), None) is None
    assert isinstance(sent(columns, True), str)


def test_a_batch_that_cannot_be_packed_exactly_goes_as_json() -> None:
    """A lone surrogate (kept by the decoder) is no UTF-8: the JSON batch carries it
    exactly, escaped, and is what a binary feed sends instead."""
    columns = decoded(varied_records())
    assert binary_batch(columns, ("rec", 4242), None) is None
    text = sent(columns, True)
    assert isinstance(text, str) and text == sent(columns, False)
    assert "bad \udcff and \ud800 end" in json.loads(text)["message"]


def test_a_snapshot_of_several_streams_is_one_binary_batch_naming_each_rows_stream() -> None:
    records = odd_records()[:6]
    sources = [("a", 1), ("b", 2), ("a", 1), ("c", None), ("b", 2), ("a", 1)]
    binary, text = FeedClient(binary=True), FeedClient()
    for feed in (binary, text):
        feed.mixed_records(records, sources)
    (data,), (json_text,) = binary.data_to_send(), text.data_to_send()
    batch = read_batch(data)
    assert batch == resolved(json_text)
    assert [batch["streams"][i] for i in batch["stream"]] == [list(s) for s in sources]


def test_binary_batches_are_bounded_and_counted_like_json() -> None:
    batch = decoded([record(i, message="x" * 500) for i in range(100)])
    size = len(binary_batch(batch, ("rec", 1), None) or b"")
    feed = FeedClient(max_batches=3, max_bytes=size * 10, binary=True)
    for _ in range(5):
        feed.records("rec", batch, 1)
    assert feed.queued_bytes == 3 * size and feed.full  # the last two were counted, not made
    missed, *batches = feed.data_to_send()
    assert json.loads(missed) == {"type": "missed", "records": 200, "batches": 2, "strings": []}
    assert [len(read_batch(b)["seq"]) for b in batches] == [100, 100, 100]
    feed.records("rec", batch, 1)
    assert [len(read_batch(b)["seq"]) for b in feed.data_to_send()] == [100]


def test_a_downloaded_file_is_not_read_as_a_batch() -> None:
    info = RecordingInfo("app", "rec", 1, "host", 1, "3", "0")
    with pytest.raises(ValueError, match="not a binary records batch"):
        read_message(encode_stream(info, [record(0)]))
    with pytest.raises(ValueError, match="not a binary records batch"):
        read_batch(BATCH_TAG + msgpack.packb([1, 2]))
