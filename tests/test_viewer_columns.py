"""The columnar path from frames to the page (issue 14): decoded frames stay in
columns (:class:`~rerun_logging.format.RecordColumns`), are cut to the caps column
by column, and become the page's JSON with no object per record.

Two promises, checked against the per-record path they replace:

- the JSON a batch of columns makes is byte for byte what the same records made as
  :class:`Record` objects (:func:`record_path_columns` is that old path, kept here
  as the reference), string table and its resets included;
- :func:`~rerun_logging.viewer.ingest.bounded_columns` cuts every row as
  :func:`~rerun_logging.viewer.ingest.bounded_record` cuts the record, and counts
  the same rows.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from typing import Any, Sequence
from unittest import mock

import msgpack
import pytest

from rerun_logging.format import (
    KIND_RECORDS,
    MAX_EXTRAS_BYTES,
    MAX_FIELD_CHARS,
    ExceptionInfo,
    Message,
    Record,
    RecordColumns,
    RecordingInfo,
    decode_columns,
    encode_frame,
    encode_records,
    stream_header,
)
from rerun_logging.viewer import feed as feed_module
from rerun_logging.viewer.feed import FeedClient, RawJSON, json_text, json_values
from rerun_logging.viewer.ingest import (
    StreamIngest,
    bounded_columns,
    bounded_messages,
    bounded_record,
    record_messages,
)
from rerun_logging.viewer.store import RecordingStore

T0 = 1_765_432_100_123_456_789
TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "b7ad6b7169203331"


def record(seq: int, **fields: Any) -> Record:
    base: dict[str, Any] = dict(
        seq=seq, time_ns=T0 + seq * 1_234_567, level=logging.INFO, level_name="INFO",
        entity_path="app/db", logger="app.db", message=f"message {seq}", template="message %d",
        thread=140_000_000_000_001, thread_name="MainThread", process=4242,
        process_name="MainProcess", path="/src/app.py", line=10 + seq % 3, function="work",
    )
    base.update(fields)
    return Record(**base)


def varied_records() -> list[Record]:
    """Records that take every branch of the JSON: shared and distinct sites and
    contexts, extras JSON cannot carry as they are, the sparse tables, arguments."""
    lone = "bad \udcff and \ud800 end"
    return [
        record(0, extras={"user": "ada", "n": 3, "nested": {"a": [1, 2.5, None, True]}}),
        record(1, exception=ExceptionInfo("ValueError", "bad", "Traceback ...\n"),
               extras={"big": 2**64 - 1, "neg": -(2**60), "nan": float("nan"),
                       "inf": float("-inf"), "raw": b"\x00\xff", 7: "int key"}),
        record(2, template=None, function=None, thread_name=None, task_name="Task-7",
               level=logging.WARNING, level_name="WARNING"),
        record(3, stack_info="Stack (most recent call last):\n", logger="", entity_path="root"),
        record(4, message=lone, logger="log\udc80", extras={"k\udfff": lone}, thread=2**62,
               process=None, process_name=None),
        record(5, message="GET 3", template="GET %s", args=(3, "x", [1, 2**60]),
               trace_id=TRACE, span_id=SPAN, trace_flags=1),
        record(6, message="hi ada", template="hi %(who)s", args={"who": "ada", "n": 2**63},
               trace_id=TRACE, span_id=None, trace_flags=0, stack_info="s\n"),
        record(7, exception=ExceptionInfo("KeyError", "'k\udc80'", "Traceback\nKeyError\n"),
               path="/other.py", line=99, thread=7, thread_name="worker-1"),
        record(8),  # the same site and context as record 0 again
        record(9, time_ns=-1_500_001, extras={}),
    ]


def decoded(records: Sequence[Record]) -> RecordColumns:
    """``records`` through the wire: one RECORDS message, decoded to columns (shared
    sites and contexts, as a writer makes them)."""
    return decode_columns(wire_body(records))


def wire_body(records: Sequence[Record]) -> dict[str, Any]:
    """The decoded body of the RECORDS message of ``records`` (for tests that edit it)."""
    kind, body = msgpack.unpackb(
        encode_records(records), raw=False, strict_map_key=False, unicode_errors="surrogatepass"
    )
    assert kind == KIND_RECORDS
    return body


# --- the reference: the per-record path the columns replace -------------------------


def record_path_columns(feed: FeedClient, records: Sequence[Record], new: list[str]) -> dict[str, Any]:
    """``FeedClient._columns`` as it was, from :class:`Record` objects (the reference)."""
    ids = functools.partial(feed._interned, new=new)
    times = [r.time_ns for r in records]
    columns: dict[str, Any] = {
        "seq": [r.seq for r in records],
        "time": [t // 1_000_000 for t in times],
        "ns": [t % 1_000_000 for t in times],
        "level": [r.level for r in records],
        "level_name": ids([r.level_name for r in records]),
        "logger": ids([r.logger for r in records]),
        "entity": ids([r.entity_path for r in records]),
        "message": [r.message for r in records],
        "template": ids([r.template for r in records]),
        "thread": json_values([r.thread for r in records]),
        "thread_name": ids([r.thread_name for r in records]),
        "process": json_values([r.process for r in records]),
        "process_name": ids([r.process_name for r in records]),
        "task": ids([r.task_name for r in records]),
        "path": ids([r.path for r in records]),
        "line": [r.line for r in records],
        "function": ids([r.function for r in records]),
        "exception": [
            [row, r.exception.type, r.exception.value, r.exception.traceback]
            for row, r in enumerate(records) if r.exception is not None
        ],
        "stack": [[row, r.stack_info] for row, r in enumerate(records) if r.stack_info is not None],
        "extras": RawJSON(json_text([r.extras or None for r in records])),
    }
    if any(r.args for r in records):
        columns["args"] = RawJSON(json_text([r.args or None for r in records]))
    traces = [[row, r.trace_id, r.span_id, r.trace_flags]
              for row, r in enumerate(records) if r.trace_id is not None]
    if traces:
        columns["trace"] = traces
    return columns


def record_path_to_json(message: dict[str, Any]) -> str:
    """``feed.to_json`` as it was (the reference): lists encoded by ``json.dumps``."""
    dumps = functools.partial(json.dumps, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    raw = {k: v for k, v in message.items() if isinstance(v, RawJSON)}
    text = dumps({k: v for k, v in message.items() if k not in raw} if raw else message)
    if not raw:
        return text
    tail = "".join(f",{dumps(k)}:{v}" for k, v in raw.items())
    return f"{text[:-1]}{tail}}}" if len(text) > 2 else f"{{{tail[1:]}}}"


class RecordPathFeed(FeedClient):
    """A feed that makes its JSON the old way: one :class:`Record` per row, every
    column a list that ``json.dumps`` encodes."""

    def _columns(self, records: RecordColumns, new: list[str]) -> dict[str, Any]:
        return record_path_columns(self, records.records(), new)

    def _batch(self, *args: Any) -> None:
        with mock.patch.object(feed_module, "to_json", record_path_to_json):
            super()._batch(*args)


def both_ways(batches: Sequence[RecordColumns], **bounds: Any) -> tuple[list[str], list[str]]:
    """What a feed sends for ``batches``, by columns and by the reference."""
    columnar, reference = FeedClient(**bounds), RecordPathFeed(**bounds)
    for batch in batches:
        columnar.records("rec", batch, 4242)
        reference.records("rec", batch, 4242)
    return columnar.data_to_send(), reference.data_to_send()


# --- the page's JSON ------------------------------------------------------------------


def test_a_batch_of_columns_makes_the_json_its_records_made() -> None:
    records = varied_records()
    columnar, reference = both_ways([decoded(records), decoded(records[3:]), decoded(records[:1])])
    assert columnar == reference
    assert all(text.isascii() for text in columnar)
    first = json.loads(columnar[0])
    assert first["trace"] == [[5, TRACE, SPAN, 1], [6, TRACE, None, 0]]
    assert first["extras"][1]["big"] == str(2**64 - 1) and first["extras"][1]["nan"] == "nan"
    assert first["time"][9] * 1_000_000 + first["ns"][9] == -1_500_001
    assert first["thread"][4] == str(2**62)
    spread = FeedClient()._columns(decoded(records), [])
    assert isinstance(spread["logger"], feed_module.InlineJSON)  # the fast path was taken


def test_columns_from_records_make_the_same_json_as_decoded_columns() -> None:
    """``RecordColumns.of`` (a site per record) and a decoded frame (shared sites) give
    one JSON: the string table grows in the same order whatever the table layout."""
    records = varied_records()
    of_records, _ = both_ways([RecordColumns.of(records)])
    from_wire, _ = both_ways([decoded(records)])
    assert of_records == from_wire


def test_the_json_matches_across_string_table_resets() -> None:
    batches = [decoded([record(i * 3 + k, logger=f"log.{i}.{k}", path=f"/p{i}.py")
                        for k in range(3)]) for i in range(12)]
    columnar, reference = both_ways(batches, max_strings=40)
    assert columnar == reference
    assert sum('"reset":true' in text for text in columnar) >= 2


def test_unused_sites_and_odd_sparse_rows_are_read_as_records_read_them() -> None:
    """A writer may list a site no row uses, list sites in any order, and send sparse
    rows out of order, twice, or for rows past the batch: the JSON holds what the
    records hold (an unused site's strings are never sent)."""
    records = varied_records()
    body = wire_body(records)
    sites = len(body["sites"])
    body["sites"] = [["never.used", "never/used", 50, "NEVER", None, "/never.py", 1, None],
                     *reversed(body["sites"])]
    body["site"] = [sites - s for s in body["site"]]  # the same sites at their new places
    body["exc"] = [[99, "Past", "the", "batch"], [-1, "Before", "the", "batch"],
                   *reversed(body["exc"]), [1, "Again", "the last", "wins"]]
    body["stack"] = [[42, "past the batch"], *reversed(body["stack"])]
    columns = decode_columns(body)
    columnar, reference = both_ways([columns])
    assert columnar == reference
    sent = json.loads(columnar[0])
    assert "never.used" not in sent["strings"] and "NEVER" not in sent["strings"]
    assert [row for row, *_ in sent["exception"]] == [1, 7]
    assert sent["exception"][0] == [1, "Again", "the last", "wins"]


def test_mixed_batches_of_records_still_make_their_json() -> None:
    """The snapshot's path: records of several streams in one batch."""
    records = varied_records()
    sources = [("a", 1) if i % 3 else ("b", 2) for i in range(len(records))]
    columnar, reference = FeedClient(), RecordPathFeed()
    columnar.mixed_records(records, sources)
    reference.mixed_records(records, sources)
    texts = columnar.data_to_send()
    assert texts == reference.data_to_send()
    message = json.loads(texts[0])
    assert message["streams"] == [["b", 2], ["a", 1]] and message["stream"][:3] == [0, 1, 1]


# --- the caps, column by column -------------------------------------------------------


BIG = "é" * (MAX_FIELD_CHARS + 100)


def over_the_caps() -> list[Record]:
    """Records with each field past its cap, one at a time, and records within them."""
    many_args = tuple("a" * 1000 for _ in range(400))
    return [
        record(0, message=BIG),
        record(1),
        record(2, logger=BIG + "1", entity_path=BIG),  # a site past the caps
        record(3, logger=BIG + "1", entity_path=BIG),  # the same site
        record(4, thread_name=BIG, task_name=BIG + "t"),  # a context past the caps
        record(5, template=BIG, function=BIG + "f", path=BIG + "p", level_name=BIG + "l"),
        record(6, exception=ExceptionInfo("ValueError", BIG, "Traceback\n" + BIG)),
        record(7, exception=ExceptionInfo(BIG, "v", "tb")),
        record(8, stack_info=BIG),
        record(9, args=many_args),
        record(10, args={"k": "v" * (MAX_FIELD_CHARS + 5), "n": 1}),
        record(11, args=("x" * (MAX_FIELD_CHARS + 1),)),
        record(12, extras={f"key{i}": "x" * 1000 for i in range(300)}),
        record(13, extras={"long": "y" * (MAX_FIELD_CHARS + 7), "raw": b"z" * (MAX_FIELD_CHARS + 2)}),
        record(14, extras={"many": list(range(20_000))}),  # big but within the caps
        record(15, args=tuple(range(10_000))),  # big but within the caps
        record(16, exception=ExceptionInfo("E", "small", "tb"), stack_info="short"),
        record(17, thread_name="MainThread"),
    ]


def columns_over_the_caps(records: Sequence[Record]) -> RecordColumns:
    """``records`` in one decoded RECORDS message, extras and arguments as a peer
    may send them (a writer would have cut them already)."""
    body = wire_body(records)
    body["extra"] = [r.extras or None for r in records]
    body["args"] = [list(r.args) if isinstance(r.args, tuple) else r.args for r in records]
    return decode_columns(body)


@pytest.mark.parametrize("build", [columns_over_the_caps, RecordColumns.of], ids=["decoded", "of"])
def test_columns_are_cut_as_each_record_is_cut(build: Any) -> None:
    records = over_the_caps()
    columns = build(records)
    originals = columns.records()
    expected = [bounded_record(r) for r in originals]
    bounded, cut = bounded_columns(columns)
    assert bounded.records() == expected
    assert cut == sum(b is not r for b, r in zip(expected, originals)) == 13
    assert bounded.records()[0].message == expected[0].message != records[0].message
    assert bounded.args[9] == [f"…[400 arguments left out: record over {MAX_EXTRAS_BYTES} bytes]"]


def test_columns_within_the_caps_come_back_themselves() -> None:
    columns = columns_over_the_caps([record(i, extras={"many": list(range(20_000))},
                                            args=tuple(range(10_000))) for i in range(3)])
    assert bounded_columns(columns) == (columns, 0)
    varied = decoded(varied_records())
    same, cut = bounded_columns(varied)
    assert same is varied and cut == 0


def test_bounded_messages_cuts_columns_and_records_alike() -> None:
    records = over_the_caps()
    columns = columns_over_the_caps(records)
    by_columns, cut_columns = bounded_messages([columns], 10 * MAX_FIELD_CHARS)
    by_records, cut_records = bounded_messages(columns.records(), 10 * MAX_FIELD_CHARS)
    assert record_messages(by_columns) == by_records and cut_columns == cut_records
    same, cut = bounded_messages([columns], MAX_FIELD_CHARS)  # too small to hold a long field
    assert same == [columns] and cut == 0


# --- through the ingest ----------------------------------------------------------------


class Printer:
    """A RecordPrinter that keeps what it is shown; ``columns`` says how it takes records."""

    def __init__(self, columns: bool) -> None:
        self.columns = columns
        self.shown: list[Message] = []

    def __bool__(self) -> bool:
        return True

    def show(self, info: RecordingInfo, messages: Sequence[Message]) -> None:
        self.shown.extend(messages)

    def skipped(self, info: RecordingInfo, records: int) -> None:
        raise AssertionError("never skipped: the printer is always true")


def test_the_ingest_shows_columns_to_a_columnar_printer_and_records_to_the_others() -> None:
    info = RecordingInfo("columns-test", "rec-columns", T0, "host", 99, "3.11", "0.1")
    records = [dataclasses.replace(r, seq=seq)
               for seq, r in enumerate([*varied_records(), *over_the_caps()])]
    stream = stream_header(info) + b"".join(
        encode_frame(encode_records(records[start:start + 7])) for start in range(0, len(records), 7)
    )
    seen = {}
    for columnar in (True, False):
        printer = Printer(columnar)
        ingest = StreamIngest("test", RecordingStore(), printer=printer, network=False)
        ingest.feed(stream)
        ingest.close()
        seen[columnar] = (printer.shown, ingest.truncated)
    (columns, cut_columns), (one_by_one, cut_records) = seen[True], seen[False]
    assert all(isinstance(m, RecordColumns) for m in columns) and len(columns) == 4
    assert all(isinstance(m, Record) for m in one_by_one)
    assert repr(record_messages(columns)) == repr(one_by_one)  # repr: NaN is not NaN
    assert cut_columns == cut_records >= 8  # the writer cut some extras and args already
    assert [r.seq for r in one_by_one] == [r.seq for r in records]


def test_the_long_number_test_is_the_regex_test() -> None:
    """``json_text``'s check for integers JavaScript cannot hold, made by C loops, says
    what the regex it replaced says, for every run of digits around 16."""
    from rerun_logging.viewer.feed import _LONG_NUMBER, _has_long_number

    texts = [
        "", "1" * 15, "1" * 16, "9" * 40, "[1.234567890123456]", "[12345678901234,5]",
        '{"a":"x0123456789012345"}', "-" + "0" * 16, "123456789012345a6", "0" * 15 + ".0",
        json.dumps([2**53, 2**53 - 1, 1e16, "\udcff" + "7" * 16]),
    ]
    for text in texts:
        assert _has_long_number(text) == bool(_LONG_NUMBER.search(text)), text
    assert json_text([2**53]) == '["9007199254740992"]' and json_text([2**53 - 1]) == "[9007199254740991]"
