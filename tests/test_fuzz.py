"""Fuzzing every place that reads bytes or JSON from outside: the decoder, the viewer's
ingest, the web feed and the page's requests.

Properties: nothing but the one documented exception (``RecordingError``, with a
byte offset) ever escapes; whatever decodes can be rendered, printed as JSON and
sent to a page; nothing holds more than the stated limits.

A fast subset runs with the suite. The long run is one command::

    FUZZ_EXAMPLES=100000 python -m pytest -p no:logging tests/test_fuzz.py

(``FUZZ_EXAMPLES`` sets the examples per property; the default is 150.)
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerun_logging import format
from rerun_logging.format import Record, RecordingError, RecordingInfo, StreamDecoder
from rerun_logging.render import json_fields, text_line
from rerun_logging.viewer.export import ExportRequestError, parse_request
from rerun_logging.viewer.feed import FeedClient, to_json
from rerun_logging.viewer.ingest import StreamIngest
from rerun_logging.viewer.store import RecordingStore

from .test_format import INFO, MESSAGES

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Any msgpack value, nested: what a hostile peer can put in a frame whose CRC is right.
LEAVES = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
          | st.text(max_size=20) | st.binary(max_size=20))
VALUES = st.recursive(
    LEAVES,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)
RECORD_KEYS = ("seq", "time", "sites", "site", "ctxs", "ctx", "msg", "exc", "stack", "extra", "args")


def consume(messages: list[Any], info: RecordingInfo | None) -> None:
    """What every consumer does with decoded messages: must never raise."""
    feed = FeedClient()
    records = [m for m in messages if isinstance(m, Record)]
    for record in records:
        text_line(record, info)
        json.dumps(json_fields(record, info))
    feed.records("fuzz", records)
    for text in feed.data_to_send():
        assert text.isascii()
        json.loads(text)


def decode_all(data: bytes, chunk: int = 0) -> tuple[list[Any], StreamDecoder]:
    decoder = StreamDecoder("fuzz")
    out: list[Any] = []
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] if chunk else [data]
    for piece in pieces:
        decoder.feed(piece)
        out.extend(decoder.messages())
        assert decoder.pending <= format.MAX_FRAME_SIZE + format.FRAME_HEAD_SIZE
    decoder.close()
    return out, decoder


def check_refusal(error: RecordingError, data: bytes) -> None:
    assert isinstance(error.offset, int) and 0 <= error.offset <= len(data)
    assert error.source == "fuzz" and str(error)


def frame_of(body: bytes, compress: bool) -> bytes:
    return format.encode_frame(body, compress=compress)


def decode_or_refuse(data: bytes, chunk: int = 0) -> None:
    """Decode ``data``: a documented refusal, or messages every consumer can use."""
    try:
        messages, decoder = decode_all(data, chunk)
    except RecordingError as error:
        check_refusal(error, data)
    else:
        consume(messages, decoder.info)


@FUZZ
@given(st.binary(max_size=2000), st.integers(0, 64))
def test_random_bytes_are_refused_with_an_offset(data: bytes, chunk: int) -> None:
    decode_or_refuse(data, chunk)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_random_payloads_behind_a_valid_header_and_crc(payload: bytes, compress: bool) -> None:
    data = format.stream_header(INFO) + frame_of(payload, compress)
    decode_or_refuse(data)


@FUZZ
@given(st.dictionaries(st.sampled_from(RECORD_KEYS), VALUES, max_size=len(RECORD_KEYS)),
       st.booleans())
def test_hostile_records_messages_with_valid_crcs(body: dict[str, Any], compress: bool) -> None:
    """Structure-aware: a RECORDS message of any shape and types, framed correctly."""
    payload = msgpack.packb([format.KIND_RECORDS, body], use_bin_type=True)
    data = format.stream_header(INFO) + frame_of(payload, compress)
    decode_or_refuse(data)


@FUZZ
@given(st.dictionaries(st.sampled_from(("app", "rec", "start", "host", "pid", "python", "version", "prefix")),
                       VALUES, max_size=8))
def test_hostile_info_messages(body: dict[str, Any]) -> None:
    payload = msgpack.packb([format.KIND_INFO, body], use_bin_type=True)
    data = format.HEADER + frame_of(payload, False) + format.encode_stream(INFO, [])[len(format.HEADER):]
    store = RecordingStore()
    ingest = StreamIngest("fuzz", store, network=True)
    ingest.feed(data)
    ingest.close()
    for stream in store.streams():
        assert isinstance(stream.info.application_id, str) and isinstance(stream.info.pid, int)


@FUZZ
@given(MESSAGES, st.data())
def test_valid_streams_with_mutations(messages: list[Any], data: st.DataObject) -> None:
    stream = bytearray(format.encode_stream(INFO, messages))
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert", "length"]))
        at = data.draw(st.integers(0, max(len(stream) - 1, 0)))
        if kind == "flip" and stream:
            stream[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "cut":
            del stream[at:]
        elif kind == "insert":
            stream[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        elif kind == "length" and len(stream) >= at + 4:
            stream[at:at + 4] = struct.pack("<I", data.draw(st.sampled_from([0, 2**31, 2**32 - 1, format.MAX_FRAME_SIZE + 1])))
    decode_or_refuse(bytes(stream), data.draw(st.integers(0, 100)))


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=8), st.booleans())
def test_the_viewer_ingest_never_raises_and_stays_within_its_limits(chunks: list[bytes], valid_start: bool) -> None:
    store = RecordingStore(memory_limit=64 * 1024)
    ingest = StreamIngest("fuzz", store, network=True)
    if valid_start:
        ingest.feed(format.stream_header(INFO))
    for chunk in chunks:
        replies = ingest.feed(chunk)
        assert all(isinstance(r, bytes) for r in replies)
        assert ingest.buffered <= format.MAX_FRAME_SIZE + format.FRAME_HEAD_SIZE
    ingest.close()
    assert store.summary().bytes <= 64 * 1024 + format.MAX_FRAME_SIZE


def test_deep_nesting_and_huge_maps_are_refused_not_crashing() -> None:
    deep: Any = 0
    for _ in range(100_000):
        deep = [deep]
    for value in (deep, {str(i): i for i in range(200_000)}):
        try:
            payload = msgpack.packb([format.KIND_RECORDS, {"msg": value}], use_bin_type=True)
        except ValueError:  # msgpack's own packer refuses the depth: build it by hand
            payload = b"\x92\x02\x81\xa3msg" + b"\x91" * 100_000 + b"\x00"
        data = format.stream_header(INFO) + frame_of(payload, True)
        try:
            decode_all(data)
        except RecordingError as error:
            check_refusal(error, data)


def test_a_declared_huge_frame_is_refused_before_any_payload() -> None:
    head = struct.pack("<IBI", 2**32 - 1, format.CODEC_ZLIB, zlib.crc32(b""))
    data = format.stream_header(INFO) + head
    try:
        decode_all(data)
    except RecordingError as error:
        assert isinstance(error, format.FrameTooLarge) and error.offset == len(format.stream_header(INFO))
    else:
        raise AssertionError("not refused")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=25,
)


@FUZZ
@given(JSON | st.fixed_dictionaries({"type": st.just("download"), "id": JSON, "select": JSON}))
def test_page_requests_are_parsed_or_refused_with_a_reason(request: Any) -> None:
    try:
        request_id, selections = parse_request(request)
    except ExportRequestError as error:
        assert str(error)
    else:
        assert isinstance(request_id, int)
        for selection in selections:
            assert list(selection.starts) == sorted(selection.starts)
            assert all(a < b for a, b in zip(selection.starts, selection.ends))


@FUZZ
@given(MESSAGES)
def test_the_feed_turns_any_records_into_ascii_json(messages: list[Any]) -> None:
    feed = FeedClient(max_batches=3, max_bytes=50_000)
    records = [m for m in messages if isinstance(m, Record)]
    for start in range(0, len(records), 2):
        feed.records("fuzz", records[start:start + 2])
    for text in feed.data_to_send():
        assert text.isascii()
        json.loads(text)
    assert to_json({"x": "\ud800"}).isascii()


VALID_BODY = msgpack.unpackb(
    format.encode_records([
        Record(seq=0, time_ns=1, level=20, level_name="INFO", entity_path="a", logger="a", message="m",
               template="m %s", extras={"k": 1}, args=(1,), thread=1, thread_name="t", process=2,
               process_name="p", task_name="x", path="p.py", line=3, function="f"),
        Record(seq=1, time_ns=2, level=40, level_name="ERROR", entity_path="b", logger="b", message="n",
               exception=format.ExceptionInfo("E", "v", "tb"), stack_info="st"),
    ]),
    raw=False,
)[1]


@FUZZ
@given(st.sampled_from(RECORD_KEYS), st.data())
def test_one_column_of_a_valid_records_message_replaced(key: str, data: st.DataObject) -> None:
    """Structure-aware mutation: every column right but one, which holds anything."""
    body = dict(VALID_BODY)
    if key in ("sites", "ctxs"):
        row = data.draw(st.integers(0, len(body[key]) - 1))
        column = [list(r) for r in body[key]]
        column[row][data.draw(st.integers(0, len(column[row]) - 1))] = data.draw(VALUES)
        body[key] = column
    elif data.draw(st.booleans()) and isinstance(body.get(key), list) and body[key]:
        column = list(body[key])
        column[data.draw(st.integers(0, len(column) - 1))] = data.draw(VALUES)
        body[key] = column
    else:
        body[key] = data.draw(VALUES)
    payload = msgpack.packb([format.KIND_RECORDS, body], use_bin_type=True)
    raw = format.stream_header(INFO) + frame_of(payload, True)
    decode_or_refuse(raw)
