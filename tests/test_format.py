"""The recording format: round trips, torn tails, corruption, versions, limits, golden bytes.

Every stream here goes through the one decoder (``StreamDecoder``), fed whole, split
at every byte offset, and one byte at a time. Frame boundaries are found by walking
the frame heads with ``struct`` (the layout ``format.schema`` documents), not by
asking the decoder, so the tests have an oracle of their own.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import logging
import math
import os
import random
import struct
import subprocess
import sys
import zlib
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Sequence

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rerun_logging import format
from rerun_logging.format import (
    HEADER,
    HEADER_SIZE,
    MAGIC,
    MAX_FRAME_SIZE,
    MAX_PAYLOAD_SIZE,
    ChecksumMismatch,
    CorruptFrame,
    Dropped,
    End,
    ExceptionInfo,
    FrameTooLarge,
    Message,
    NotARecording,
    Record,
    RecordingError,
    RecordingInfo,
    StreamDecoder,
    TruncatedStream,
    UnsupportedVersion,
)

DATA = Path(__file__).resolve().parent / "data"
CURRENT = (format.FORMAT_MAJOR, format.FORMAT_MINOR)
SOURCE = "test-source.rrd"

INFO = RecordingInfo(
    application_id="app",
    recording_id="rec-1",
    start_time_ns=1_700_000_000_000_000_000,
    host="host",
    pid=1234,
    python_version="3.11.7",
    package_version="0.1.0",
    entity_prefix="svc",
)

FULL = Record(
    seq=7,
    time_ns=1_700_000_000_123_456_789,
    level=40,
    level_name="ERROR",
    entity_path="svc/app/web",
    logger="app.web",
    message="request 7 failed: caf\u00e9 \u4e16\u754c \U0001f389 \ud800",
    template="request %d failed: caf\u00e9 \u4e16\u754c \U0001f389 \ud800",
    extras={
        "user": "u\udfff",
        "n": 7,
        "max": 2**64 - 1,
        "min": -(2**63),
        "ratio": -0.0,
        "inf": math.inf,
        "ok": False,
        "none": None,
        "raw": b"\x00\xff",
        "list": [1, "two", [3.5, None]],
        "map": {"inner": {"deep": True}, "": ""},
    },
    exception=ExceptionInfo(
        type="mypkg.MyError",
        value="it broke \ud800",
        traceback="Traceback (most recent call last):\n  ...\nmypkg.MyError: it broke",
    ),
    stack_info="Stack (most recent call last):\n  File \"x.py\", line 1, in <module>",
    thread=2**64 - 1,
    thread_name="worker-\u00e9",
    process=99999,
    process_name="MainProcess",
    task_name="Task-3",
    path="/srv/app/web.py",
    line=123456,
    function="handle",
    args=(7, "caf\u00e9 \ud800", [1, 2.5, None], {"k": b"\x00"}),
    trace_id="4bf92f3577b34da6a3ce929d0e0e4736",
    span_id="00f067aa0ba902b7",
    trace_flags=1,
)

MINIMAL = Record(
    seq=8, time_ns=1_700_000_000_123_460_000, level=0, level_name="NOTSET",
    entity_path="root", logger="root", message="",
)

SMALL_STREAM_MESSAGES: list[Message] = [
    FULL,
    MINIMAL,
    Dropped(3, "queue full"),
    Record(seq=12, time_ns=1_700_000_000_200_000_000, level=20, level_name="INFO",
           entity_path="svc/app", logger="app", message="back", template="back",
           extras={"n": 1}, line=9),
    End(),
]


# --- helpers ------------------------------------------------------------------------


def canon(value: Any) -> Any:
    """A comparable form that tells bool from int, -0.0 from 0.0, and NaN equal to NaN."""
    if is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, tuple((f.name, canon(getattr(value, f.name))) for f in fields(value)))
    if isinstance(value, bool) or value is None:
        return ("const", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value.hex())
    if isinstance(value, (bytes, bytearray)):
        return ("bytes", bytes(value))
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, (list, tuple)):
        return ("list", tuple(canon(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((canon(k), canon(v)) for k, v in value.items()))
    raise AssertionError(f"unexpected type in a decoded message: {type(value)!r}")


def assert_same(actual: Sequence[Message], expected: Sequence[Message]) -> None:
    actual, expected = [*map(_damage_key, actual)], [*map(_damage_key, expected)]
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected):
        assert canon(got) == canon(want), (got, want)


def _damage_key(message: Any) -> Any:
    """A Damage as comparable fields (its error is an exception, compared by what it says)."""
    if isinstance(message, format.Damage):
        return RecordingInfo("damage", type(message.error).__name__, message.offset, str(message), message.skipped, "", "")
    return message


def frame_spans(data: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of every whole frame, walked from the documented layout."""
    spans = []
    offset = HEADER_SIZE
    while offset + 9 <= len(data):
        (size,) = struct.unpack_from("<I", data, offset)
        end = offset + 9 + size
        if end > len(data):
            break
        spans.append((offset, end))
        offset = end
    return spans


def frame_groups(messages: Sequence[Message]) -> list[list[Message]]:
    """The messages of each frame ``encode_stream`` writes: INFO, runs of records, others."""
    groups: list[list[Message]] = [[INFO]]
    for message in messages:
        if isinstance(message, Record) and groups[-1] and isinstance(groups[-1][-1], Record):
            groups[-1].append(message)
        else:
            groups.append([message])
    return groups


def raw_frame(payload: bytes, codec: int = format.CODEC_MSGPACK, crc: int | None = None) -> bytes:
    """A frame built by hand: size, codec, CRC32 of codec byte and payload, payload."""
    if crc is None:
        crc = zlib.crc32(bytes([codec]) + payload)
    return struct.pack("<IBI", len(payload), codec, crc) + payload


def decode(data: bytes, *chunks: int) -> tuple[list[Message], StreamDecoder]:
    """Every message of ``data`` fed in pieces cut at ``chunks``; ``close()`` is the caller's."""
    decoder = StreamDecoder(SOURCE)
    out: list[Message] = []
    start = 0
    for cut in [*chunks, len(data)]:
        decoder.feed(data[start:cut])
        out.extend(decoder.messages())
        start = cut
    return out, decoder


def decode_until_error(data: bytes) -> tuple[list[Message], RecordingError]:
    """The messages read before the decoder failed on ``data``, and the error."""
    decoder = StreamDecoder(SOURCE)
    decoder.feed(data)
    out: list[Message] = []
    with pytest.raises(RecordingError) as caught:
        for message in decoder.messages():
            out.append(message)
        decoder.close()
    return out, caught.value


def record(i: int, **changes: Any) -> Record:
    base = dict(
        seq=i, time_ns=1_700_000_000_000_000_000 + 3_000 * i, level=20, level_name="INFO",
        entity_path="bench", logger="bench", message=f"request {i} done",
        template="request %d done", extras={"user": "u", "n": i}, thread=1, thread_name="MainThread",
        process=4242, process_name="MainProcess", path="/srv/bench.py", line=42, function="serve",
    )
    base.update(changes)
    return Record(**base)  # type: ignore[arg-type]


# --- round trips --------------------------------------------------------------------


def test_every_record_field_round_trips() -> None:
    data = format.encode_stream(INFO, SMALL_STREAM_MESSAGES)
    messages, decoder = decode(data)
    decoder.close()
    assert_same(messages, [INFO, *SMALL_STREAM_MESSAGES])
    assert messages[1] == FULL
    assert messages[2].extras == {} and messages[2].template is None and messages[2].thread is None
    assert decoder.version == (format.FORMAT_MAJOR, format.FORMAT_MINOR) == (1, 3)
    assert decoder.info == INFO
    assert decoder.ended
    assert decoder.records == 3
    assert decoder.offset == len(data)
    assert decoder.pending == 0


def test_split_at_every_byte_offset() -> None:
    data = format.encode_stream(INFO, SMALL_STREAM_MESSAGES)
    expected = [INFO, *SMALL_STREAM_MESSAGES]
    for cut in range(len(data) + 1):
        messages, decoder = decode(data, cut)
        decoder.close()
        assert_same(messages, expected)
        assert decoder.ended and decoder.offset == len(data)


def test_split_at_every_pair_of_offsets_in_a_small_stream() -> None:
    messages_in = [MINIMAL, Dropped(1, "x"), End()]
    data = format.encode_stream(INFO, messages_in)
    for first in range(0, len(data) + 1, 3):
        for second in range(first, len(data) + 1, 2):
            messages, decoder = decode(data, first, second)
            decoder.close()
            assert_same(messages, [INFO, *messages_in])


def test_fed_one_byte_at_a_time_each_frame_appears_with_its_last_byte() -> None:
    data = format.encode_stream(INFO, SMALL_STREAM_MESSAGES)
    spans = frame_spans(data)
    groups = frame_groups(SMALL_STREAM_MESSAGES)
    assert len(spans) == len(groups) == 5
    decoder = StreamDecoder(SOURCE)
    seen: list[Message] = []
    for position in range(len(data)):
        decoder.feed(data[position : position + 1])
        seen.extend(decoder.messages())
        fed = position + 1
        whole = [m for (_, end), group in zip(spans, groups) if end <= fed for m in group]
        assert_same(seen, whole)
        consumed = max([0] + [b for b in [HEADER_SIZE, *(e for _, e in spans)] if b <= fed])
        assert decoder.pending == fed - consumed
        assert decoder.offset == consumed
    decoder.close()
    assert_same(seen, [INFO, *SMALL_STREAM_MESSAGES])


def test_nan_and_signed_zero_extras_round_trip() -> None:
    rec = record(0, extras={"nan": math.nan, "neg_zero": -0.0, "inf": -math.inf})
    messages, decoder = decode(format.encode_stream(INFO, [rec, End()]))
    decoder.close()
    extras = messages[1].extras
    assert math.isnan(extras["nan"])
    assert math.copysign(1.0, extras["neg_zero"]) == -1.0
    assert extras["inf"] == -math.inf


# --- properties ---------------------------------------------------------------------

SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
TEXT = st.text(st.one_of(st.characters(), SURROGATES), max_size=12)
PLAIN = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    TEXT,
    st.binary(max_size=12),
)
VALUES = st.recursive(
    PLAIN,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(TEXT, children, max_size=4)
    ),
    max_leaves=12,
)
EXTRAS = st.dictionaries(TEXT, VALUES, max_size=5)
OPT_TEXT = st.none() | TEXT
INT64 = st.integers(min_value=0, max_value=2**62)

RECORDS = st.builds(
    Record,
    seq=INT64,
    time_ns=st.integers(min_value=-(2**62), max_value=2**62),
    level=st.integers(min_value=0, max_value=2**31),
    level_name=TEXT,
    entity_path=TEXT,
    logger=TEXT,
    message=TEXT,
    template=OPT_TEXT,
    extras=EXTRAS,
    exception=st.none() | st.builds(ExceptionInfo, TEXT, TEXT, TEXT),
    stack_info=OPT_TEXT,
    thread=st.none() | st.integers(min_value=0, max_value=2**64 - 1),
    thread_name=OPT_TEXT,
    process=st.none() | st.integers(min_value=0, max_value=2**31),
    process_name=OPT_TEXT,
    task_name=OPT_TEXT,
    path=TEXT,
    line=st.integers(min_value=0, max_value=2**31),
    function=OPT_TEXT,
    args=st.none() | st.lists(VALUES, min_size=1, max_size=3).map(tuple)
    | st.dictionaries(TEXT, VALUES, min_size=1, max_size=3),
)
TRACES = st.none() | st.tuples(
    st.binary(min_size=16, max_size=16).map(bytes.hex),
    st.none() | st.binary(min_size=8, max_size=8).map(bytes.hex),
    st.integers(min_value=0, max_value=255),
)
"""A record's trace context (format 1.3): none, or trace id, span id (or none), flags."""
RECORDS = st.builds(
    lambda r, t: r if t is None else dataclasses.replace(
        r, trace_id=t[0], span_id=t[1], trace_flags=t[2]
    ),
    RECORDS, TRACES,
)
MESSAGES = st.lists(
    st.one_of(RECORDS, RECORDS, st.builds(Dropped, st.integers(0, 2**32), TEXT)), max_size=10
)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES)
def test_any_records_write_then_read_are_the_same(messages: list[Message]) -> None:
    written = [*messages, End()]
    data = format.encode_stream(INFO, written)
    read, decoder = decode(data)
    decoder.close()
    assert_same(read, [INFO, *written])
    assert decoder.ended and decoder.offset == len(data)


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES)
def test_the_columns_decoder_reads_what_the_records_decoder_reads(messages: list[Message]) -> None:
    """``stored_columns`` (no object per record) holds the same records, in order, as
    ``stored_records``: each RECORDS message is one ``RecordColumns`` whose rows, made
    into records, are that message's records."""
    frames = [format.encode_frame(format.encode_records([m])) if isinstance(m, Record)
              else format.encode_frame(format.dropped_message(m.count, m.reason)) for m in messages]
    by_columns: list[Message] = []
    for item in format.stored_columns(frames):
        if isinstance(item, format.RecordColumns):
            assert len(item) == 1
            by_columns += item.records()
        else:
            by_columns.append(item)
    assert_same(by_columns, list(format.stored_records(frames)))
    assert_same(by_columns, messages)


def test_columns_keep_the_tables_and_name_each_row() -> None:
    records = [record(i, extras={"i": i}) for i in range(3)]
    records[1] = dataclasses.replace(records[1], exception=ExceptionInfo("E", "v", "tb"),
                                     trace_id="ab" * 16, span_id="cd" * 8, trace_flags=1)
    (columns,) = format.stored_columns([format.encode_frame(format.encode_records(records))])
    assert isinstance(columns, format.RecordColumns) and len(columns) == 3
    assert columns.seqs == [r.seq for r in records] and columns.messages == [r.message for r in records]
    assert [columns.sites[s][format.SITE_FIELDS.index("logger")] for s in columns.site_rows] == [
        r.logger for r in records]
    assert columns.exceptions == {1: ExceptionInfo("E", "v", "tb")}
    assert columns.traces == {1: ("ab" * 16, "cd" * 8, 1)}
    assert [x or {} for x in columns.extras] == [{"i": 0}, {"i": 1}, {"i": 2}]


@settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(MESSAGES, st.data())
def test_any_cut_reads_whole_frames_and_reports_a_torn_tail(
    messages: list[Message], data_strategy: st.DataObject
) -> None:
    written = [*messages, End()]
    data = format.encode_stream(INFO, written)
    spans = frame_spans(data)
    groups = frame_groups(written)
    assert len(spans) == len(groups)
    assert spans[-1][1] == len(data)
    boundaries = {HEADER_SIZE} | {end for _, end in spans}
    cuts = {data_strategy.draw(st.integers(0, len(data)), label="cut"), 0, len(data)}
    for b in boundaries:
        cuts |= {b - 1, b, b + 1}
    for cut in sorted(c for c in cuts if 0 <= c <= len(data)):
        read, decoder = decode(data[:cut])
        whole = [m for (_, end), group in zip(spans, groups) if end <= cut for m in group]
        assert_same(read, whole)
        if cut in boundaries:
            decoder.close()
            assert decoder.ended == (cut == len(data))
            assert decoder.offset == cut
        else:
            with pytest.raises(TruncatedStream) as caught:
                decoder.close()
            torn = 0 if cut < HEADER_SIZE else max(b for b in boundaries if b < cut)
            assert caught.value.offset == torn
            assert not decoder.ended


def test_every_cut_inside_the_last_frame_reports_that_frame() -> None:
    batch = [record(i) for i in range(200)]
    data = format.encode_stream(INFO, [record(1000), Dropped(2, "full"), *batch])
    spans = frame_spans(data)
    assert len(spans) == 4
    start, end = spans[-1]
    assert end == len(data)
    before = [INFO, record(1000), Dropped(2, "full")]
    for cut in range(start, end):
        read, decoder = decode(data[:cut])
        assert_same(read, before)
        assert decoder.pending == cut - start
        if cut == start:
            decoder.close()
            continue
        with pytest.raises(TruncatedStream) as caught:
            decoder.close()
        error = caught.value
        assert error.offset == start
        assert error.source == SOURCE
        assert f"at byte {start}" in str(error)
        # The decoder stays failed: the same error again, nothing more read.
        decoder.feed(data[cut:])
        with pytest.raises(TruncatedStream) as again:
            list(decoder.messages())
        assert again.value is error
    read, decoder = decode(data)
    decoder.close()
    assert_same(read, [*before, *batch])


def test_a_stream_cut_inside_the_header() -> None:
    data = format.encode_stream(INFO, [End()])
    for cut in range(HEADER_SIZE):
        read, decoder = decode(data[:cut])
        assert read == []
        with pytest.raises(TruncatedStream, match="stream header") as caught:
            decoder.close()
        assert caught.value.offset == 0


# --- corruption ---------------------------------------------------------------------


def test_a_flipped_bit_in_a_payload_is_a_checksum_mismatch_at_that_frame() -> None:
    data = format.encode_stream(INFO, [record(0), Dropped(1, "x"), *[record(i) for i in range(1, 50)], End()])
    spans = frame_spans(data)
    start, end = spans[3]  # INFO, RECORDS, DROPPED, then this second RECORDS frame
    before = [INFO, record(0), Dropped(1, "x")]
    for position in range(start + 9, end):
        bit = 1 << (position % 8)
        corrupt = bytearray(data)
        corrupt[position] ^= bit
        read, error = decode_until_error(bytes(corrupt))
        assert type(error) is ChecksumMismatch, (position, error)
        assert error.offset == start
        assert_same(read, before)


def test_a_flipped_bit_in_the_stored_crc_is_a_checksum_mismatch() -> None:
    data = format.encode_stream(INFO, [record(0), End()])
    start, _ = frame_spans(data)[1]
    for position in range(start + 5, start + 9):
        corrupt = bytearray(data)
        corrupt[position] ^= 0x10
        read, error = decode_until_error(bytes(corrupt))
        assert type(error) is ChecksumMismatch and error.offset == start
        assert_same(read, [INFO])


def test_a_flipped_codec_bit_is_caught() -> None:
    data = format.encode_stream(INFO, [*[record(i) for i in range(20)], End()])
    start, _ = frame_spans(data)[1]
    for bit in range(8):
        corrupt = bytearray(data)
        corrupt[start + 4] ^= 1 << bit
        read, error = decode_until_error(bytes(corrupt))
        assert type(error) in (ChecksumMismatch, CorruptFrame), bit
        assert error.offset == start
        assert_same(read, [INFO])


def test_a_flipped_bit_in_the_magic_is_not_a_recording() -> None:
    data = format.encode_stream(INFO, [End()])
    for position in range(len(MAGIC)):
        for bit in range(8):
            corrupt = bytearray(data)
            corrupt[position] ^= 1 << bit
            read, error = decode_until_error(bytes(corrupt))
            assert type(error) is NotARecording, (position, bit)
            assert error.offset == 0
            assert read == []
            # Refused as soon as the wrong byte arrives, without waiting for a header.
            decoder = StreamDecoder(SOURCE)
            decoder.feed(bytes(corrupt[: position + 1]))
            with pytest.raises(NotARecording):
                list(decoder.messages())


def test_a_rerun_sdk_file_is_named_as_such() -> None:
    decoder = StreamDecoder("run.rrd")
    decoder.feed(b"RRF2\x00\x00\x00\x00" + bytes(64))
    with pytest.raises(NotARecording) as caught:
        list(decoder.messages())
    assert "Rerun SDK recording" in str(caught.value)
    assert str(caught.value).startswith("run.rrd: at byte 0: ")


def test_text_is_not_a_recording() -> None:
    _, error = decode_until_error(b"hello, this is a text file\n")
    assert type(error) is NotARecording
    assert "Rerun SDK" not in str(error)


def test_empty_input_is_a_truncated_header() -> None:
    read, decoder = decode(b"")
    assert read == []
    with pytest.raises(TruncatedStream):
        decoder.close()


# --- versions -----------------------------------------------------------------------


def test_a_newer_major_version_is_refused_naming_both_versions() -> None:
    data = MAGIC + bytes([2, 0]) + format.encode_stream(INFO, [End()])[HEADER_SIZE:]
    read, error = decode_until_error(data)
    assert read == []
    assert type(error) is UnsupportedVersion
    assert error.offset == 0
    assert "2.0" in str(error) and f"1.{format.FORMAT_MINOR}" in str(error)


def test_an_older_unknown_major_version_is_refused() -> None:
    _, error = decode_until_error(MAGIC + bytes([0, 9]))
    assert type(error) is UnsupportedVersion
    assert "0.9" in str(error)


def test_a_newer_minor_version_skips_unknown_kinds_and_keys() -> None:
    rec = record(3, extras={"a": 1})
    columns, extras = format.columns_for([rec, record(4)])
    columns["future_column"] = [1, 2]
    columns["sites"] = [[*site, "a future site field"] for site in columns["sites"]]
    columns["ctxs"] = [[*ctx, {"future": True}] for ctx in columns["ctxs"]]
    info_body = {
        "app": "app", "rec": "r", "start": 5, "host": "h", "pid": 6, "python": "3.99",
        "version": "9.9", "future_info": {"x": [1, 2]},
    }
    data = b"".join(
        [
            MAGIC + bytes([1, 7]),
            format.encode_frame(format.packb([format.KIND_INFO, info_body])),
            format.encode_frame(format.packb([99, {"anything": [1, 2, 3]}])),
            format.encode_frame(
                format.packb([99, {}])
                + format.records_message(columns, format.pack_extras(extras))
                + format.packb([100, {"x": b"y"}, "a third element"])
            ),
            format.encode_frame(format.packb([format.KIND_DROPPED, {"count": 2, "reason": "r", "why": 1}])),
            format.encode_frame(format.packb([format.KIND_END, {"summary": {"records": 2}}])),
        ]
    )
    read, decoder = decode(data)
    decoder.close()
    info = RecordingInfo("app", "r", 5, "h", 6, "3.99", "9.9", "")
    assert_same(read, [info, rec, record(4), Dropped(2, "r"), End()])
    assert decoder.version == (1, 7)
    assert decoder.info == info
    assert decoder.ended


# --- limits and garbage -------------------------------------------------------------


def test_a_frame_declaring_too_many_bytes_is_refused_without_waiting() -> None:
    start = format.encode_stream(INFO, [])
    head = struct.pack("<IBI", MAX_FRAME_SIZE + 1, 0, 0)
    decoder = StreamDecoder(SOURCE)
    decoder.feed(start + head)
    read: list[Message] = []
    with pytest.raises(FrameTooLarge) as caught:
        for message in decoder.messages():
            read.append(message)
    assert_same(read, [INFO])
    assert caught.value.offset == len(start)
    assert str(MAX_FRAME_SIZE) in str(caught.value)


def test_a_frame_declaring_the_limit_is_waited_for() -> None:
    decoder = StreamDecoder(SOURCE)
    decoder.feed(HEADER + struct.pack("<IBI", MAX_FRAME_SIZE, 0, 0) + b"\x00" * 100)
    assert list(decoder.messages()) == []
    assert decoder.pending == 109
    with pytest.raises(TruncatedStream) as caught:
        decoder.close()
    assert caught.value.offset == HEADER_SIZE


def test_the_frame_limit_is_a_decoder_argument() -> None:
    payload = format.packb([99, {"pad": "x" * 200}])
    decoder = StreamDecoder(SOURCE, max_frame_size=len(payload) - 1)
    decoder.feed(HEADER + raw_frame(payload)[:9])
    with pytest.raises(FrameTooLarge):
        list(decoder.messages())
    read, decoder = decode(HEADER + raw_frame(payload))
    decoder.close()
    assert read == []


@functools.lru_cache(maxsize=1)
def deflate_bomb() -> bytes:
    """A small zlib payload that inflates past MAX_PAYLOAD_SIZE (computed once)."""
    return zlib.compress(b"\0" * (MAX_PAYLOAD_SIZE + 1))


def test_a_deflate_bomb_is_a_corrupt_frame() -> None:
    bomb = deflate_bomb()
    assert len(bomb) < MAX_FRAME_SIZE
    start = format.encode_stream(INFO, [])
    read, error = decode_until_error(start + raw_frame(bomb, format.CODEC_ZLIB))
    assert type(error) is CorruptFrame
    assert error.offset == len(start)
    assert str(MAX_PAYLOAD_SIZE) in str(error)
    assert_same(read, [INFO])


def test_a_payload_inflating_to_a_large_but_allowed_size_is_read() -> None:
    padding = format.packb([99, {"pad": b"\0" * (8 * 1024 * 1024)}])
    data = HEADER + raw_frame(zlib.compress(padding + format.end_message()), format.CODEC_ZLIB)
    read, decoder = decode(data)
    decoder.close()
    assert read == [End()]


GARBAGE_PAYLOADS = {
    "reserved msgpack byte": (format.CODEC_MSGPACK, b"\xc1"),
    "not a message": (format.CODEC_MSGPACK, format.packb(5)),
    "message without a body map": (format.CODEC_MSGPACK, format.packb([format.KIND_END, 1])),
    "message of one element": (format.CODEC_MSGPACK, format.packb([format.KIND_END])),
    "records without columns": (format.CODEC_MSGPACK, format.packb([format.KIND_RECORDS, {}])),
    "info without keys": (format.CODEC_MSGPACK, format.packb([format.KIND_INFO, {"app": "a"}])),
    "dropped without keys": (format.CODEC_MSGPACK, format.packb([format.KIND_DROPPED, {}])),
    "not zlib": (format.CODEC_ZLIB, b"this is not deflate data"),
    "unknown codec": (7, format.end_message()),
}


def _records_body(**changes: Any) -> bytes:
    columns, extras = format.columns_for([record(0), record(1)])
    columns.update(changes)
    return format.records_message(columns, format.pack_extras(extras))


GARBAGE_PAYLOADS.update(
    {
        "columns of different lengths": (format.CODEC_MSGPACK, _records_body(msg=["only one"])),
        "site index out of range": (format.CODEC_MSGPACK, _records_body(site=[0, 5])),
        "negative site index": (format.CODEC_MSGPACK, _records_body(site=[0, -1])),
        "negative context index": (format.CODEC_MSGPACK, _records_body(ctx=[-1, 0])),
        "short site row": (format.CODEC_MSGPACK, _records_body(sites=[["bench"]])),
    }
)


@pytest.mark.parametrize("name", sorted(GARBAGE_PAYLOADS))
def test_garbage_with_a_correct_crc_is_a_corrupt_frame(name: str) -> None:
    codec, payload = GARBAGE_PAYLOADS[name]
    start = format.encode_stream(INFO, [record(0)])
    read, error = decode_until_error(start + raw_frame(payload, codec) + raw_frame(format.end_message()))
    assert type(error) is CorruptFrame, error
    assert error.offset == len(start)
    assert_same(read, [INFO, record(0)])


def test_a_payload_ending_inside_a_message_is_a_corrupt_frame() -> None:
    whole = format.dropped_message(1, "kept") + format.end_message()
    start = format.encode_stream(INFO, [])
    for cut in range(len(format.dropped_message(1, "kept")) + 1, len(whole)):
        read, error = decode_until_error(start + raw_frame(whole[:cut]))
        assert type(error) is CorruptFrame, cut
        assert error.offset == len(start)
        assert_same(read, [INFO])


def test_a_zlib_stream_that_ends_early_is_a_corrupt_frame() -> None:
    deflater = zlib.compressobj()
    kept = deflater.compress(format.dropped_message(1, "kept")) + deflater.flush(zlib.Z_FULL_FLUSH)
    lost = deflater.compress(format.end_message()) + deflater.flush()
    assert zlib.decompress(kept + lost) == format.dropped_message(1, "kept") + format.end_message()
    start = format.encode_stream(INFO, [])
    read, error = decode_until_error(start + raw_frame(kept, format.CODEC_ZLIB))
    assert type(error) is CorruptFrame
    assert error.offset == len(start)
    assert_same(read, [INFO])


def _error_cases() -> dict[str, tuple[bytes, type[RecordingError], int]]:
    start = format.encode_stream(INFO, [record(0)])
    n = len(start)
    end = raw_frame(format.end_message())
    return {
        "not a recording": (b"GIF89a" + bytes(20), NotARecording, 0),
        "rerun sdk": (b"RRF2" + bytes(20), NotARecording, 0),
        "unsupported version": (MAGIC + bytes([3, 1]), UnsupportedVersion, 0),
        "frame too large": (start + struct.pack("<IBI", 2**32 - 1, 0, 0), FrameTooLarge, n),
        "checksum": (start + raw_frame(format.end_message(), crc=12345), ChecksumMismatch, n),
        "corrupt": (start + raw_frame(b"\xc1") + end, CorruptFrame, n),
        "truncated header": (HEADER[:5], TruncatedStream, 0),
        "truncated frame": (start + end[:-1], TruncatedStream, n),
    }


@pytest.mark.parametrize("name", sorted(_error_cases()))
def test_every_error_is_a_value_error_naming_source_and_offset(name: str) -> None:
    data, kind, offset = _error_cases()[name]
    _, error = decode_until_error(data)
    assert type(error) is kind
    assert isinstance(error, RecordingError) and isinstance(error, ValueError)
    assert error.source == SOURCE
    assert error.offset == offset
    assert str(error).startswith(f"{SOURCE}: at byte {offset}: ")
    assert error.reason and error.reason in str(error)


# --- the golden file ----------------------------------------------------------------

GOLDEN_T0 = 1_700_000_000_123_456_789
GOLDEN_CTX = dict(
    thread=140_000_000_000_001, thread_name="MainThread", process=4242,
    process_name="MainProcess", task_name=None,
)
GOLDEN_MESSAGES: list[Message] = [
    RecordingInfo(
        application_id="golden-app",
        recording_id="00000000-0000-4000-8000-000000000001",
        start_time_ns=1_700_000_000_000_000_000,
        host="golden-host",
        pid=4242,
        python_version="3.11.7",
        package_version="0.1.0",
        entity_prefix="svc",
    ),
    Record(
        seq=0, time_ns=GOLDEN_T0, level=20, level_name="INFO", entity_path="svc/app/web",
        logger="app.web", message="request 1 done", template="request %d done",
        extras={
            "user": "u", "n": 1, "ratio": 0.25, "ok": True, "none": None,
            "big": 18446744073709551615, "neg": -9223372036854775808, "raw": b"\x00\xff",
            "tags": ["a", "b", [1, 2]], "nested": {"k": {"x": 1.5}},
        },
        path="/srv/app/web.py", line=42, function="handle", **GOLDEN_CTX,  # type: ignore[arg-type]
    ),
    Record(
        seq=1, time_ns=GOLDEN_T0 + 3_000, level=20, level_name="INFO", entity_path="svc/app/web",
        logger="app.web", message="request 2 done", template="request %d done",
        extras={"user": "u", "n": 2},
        path="/srv/app/web.py", line=42, function="handle", **GOLDEN_CTX,  # type: ignore[arg-type]
    ),
    Record(
        seq=2, time_ns=GOLDEN_T0 + 7_000, level=30, level_name="WARNING", entity_path="svc/app/db",
        logger="app.db", message="slow query: 1.5 s \u00e9\u4e16\U0001f389 \ud800",
        template="slow query: %s s \u00e9\u4e16\U0001f389 \ud800",
        extras={"k\udfff": "v\ud800"},
        path="/srv/app/db.py", line=7, function="query", thread=140_000_000_000_002,
        thread_name="worker-1", process=4242, process_name="MainProcess", task_name="Task-1",
    ),
    Dropped(2, "queue full: oldest records dropped"),
    Record(
        seq=5, time_ns=GOLDEN_T0 + 20_000, level=40, level_name="ERROR", entity_path="svc/app/web",
        logger="app.web", message="failed", template="failed",
        exception=ExceptionInfo(
            type="ValueError",
            value="bad value",
            traceback=(
                "Traceback (most recent call last):\n"
                '  File "/srv/app/web.py", line 50, in handle\n'
                '    raise ValueError("bad value")\n'
                "ValueError: bad value"
            ),
        ),
        path="/srv/app/web.py", line=51, function="handle", **GOLDEN_CTX,  # type: ignore[arg-type]
    ),
    Record(
        seq=6, time_ns=GOLDEN_T0 + 21_000, level=10, level_name="DEBUG", entity_path="svc/root",
        logger="root", message="", template=None, extras={"event": "tick"},
        stack_info='Stack (most recent call last):\n  File "/srv/app/main.py", line 3, in <module>',
        path="/srv/app/main.py", line=3, function="<module>", **GOLDEN_CTX,  # type: ignore[arg-type]
    ),
    End(),
]


def test_golden_v1_0_reads_forever() -> None:
    data = (DATA / "golden-v1.0.rrd").read_bytes()
    assert data[:HEADER_SIZE] == b"\x89RLG\r\n\x1a\n\x01\x00"
    assert [(s, data[s + 4]) for s, _ in frame_spans(data)] == [
        (10, format.CODEC_MSGPACK), (157, format.CODEC_ZLIB), (560, format.CODEC_MSGPACK),
        (1110, format.CODEC_MSGPACK),
    ]
    for cuts in [(), (len(data) // 2,), tuple(range(1, len(data), 97))]:
        read, decoder = decode(data, *cuts)
        decoder.close()
        assert_same(read, GOLDEN_MESSAGES)
        assert decoder.ended and decoder.records == 5 and decoder.version == (1, 0)


# --- size ---------------------------------------------------------------------------


def test_a_benchmark_record_takes_at_most_20_bytes() -> None:
    rng = random.Random(20)
    time_ns = 1_764_000_000_000_000_000
    records = []
    for i in range(100_000):
        time_ns += 3_000 + rng.randrange(-500, 500)
        records.append(record(i, time_ns=time_ns, thread=139_909_566_638_976))
    stream = [format.stream_header(INFO)]
    for start in range(0, len(records), 4096):
        stream.append(format.encode_frame(format.encode_records(records[start : start + 4096])))
    stream.append(format.encode_frame(format.end_message()))
    data = b"".join(stream)
    assert len(data) / len(records) <= 20
    read, decoder = decode(data)
    decoder.close()
    assert read[1:-1] == records


def test_peek_refuses_a_frame_claiming_too_many_records() -> None:
    bomb = format.packb([format.KIND_RECORDS, {"seq": [0] * (format.MAX_RECORDS_PER_FRAME + 1)}])
    with pytest.raises(ValueError, match="records in one frame"):
        format.peek_frame(bomb)


def test_golden_v1_1_reads_forever() -> None:
    """Version 1.1 added ``args``; these committed bytes must always read back the same."""
    data = (DATA / "golden-v1.1.rrd").read_bytes()
    read, decoder = decode(data)
    decoder.close()
    assert decoder.version == (1, 1) and decoder.ended and decoder.records == 3
    records = [m for m in read if isinstance(m, Record)]
    assert [r.args for r in records] == [
        ("127.0.0.1:5000", "GET", "/items/1", "1.1", 200), {"user": "ann", "n": 3}, None]
    assert records[0].message == '127.0.0.1:5000 - "GET /items/1 HTTP/1.1" 200'
    assert records[0].logger == "uvicorn.access" and records[0].line == 476


def test_golden_v1_2_reads_forever() -> None:
    """Version 1.2 lets ``msg`` rows be nil: the reader renders them from template and args."""
    data = (DATA / "golden-v1.2.rrd").read_bytes()
    read, decoder = decode(data)
    decoder.close()
    assert decoder.version == (1, 2) and decoder.ended and decoder.records == 4
    records = [m for m in read if isinstance(m, Record)]
    assert [r.message for r in records] == [
        '127.0.0.1:5000 - "GET /items/1 HTTP/1.1" 200',
        "ann did 3 things",
        "plain 100%",
        "<message could not be formatted: TypeError: %d format: a real number is required, "
        "not str> msg='%d items' args=('x',)",
    ]
    assert records[3].template == "%d items" and records[3].args == ("x",)


GOLDEN_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_golden_v1_3_reads_forever() -> None:
    """Version 1.3 added the ``trace`` table: the OpenTelemetry span a record was logged in."""
    data = (DATA / "golden-v1.3.rrd").read_bytes()
    read, decoder = decode(data)
    decoder.close()
    assert decoder.version == (1, 3) and decoder.ended and decoder.records == 5
    records = [m for m in read if isinstance(m, Record)]
    assert [(r.trace_id, r.span_id, r.trace_flags) for r in records] == [
        (None, None, None),
        (GOLDEN_TRACE, "00f067aa0ba902b7", 1),
        (GOLDEN_TRACE, "53995c3f42cd8ad8", 0),
        (None, None, None),
        (None, None, None),
    ]
    assert [r.message for r in records] == [
        "starting", "request 1 done", "query took 3 ms", "idle", "stopping"]
    assert records[2].extras == {"db": "main"} and records[1].args == (1,)
    # the second frame has no record in a span: no trace key at all, as a 1.2 writer's
    (_, first, second, _) = frame_spans(data)
    payloads = [zlib.decompress(data[start + 9 : end]) for start, end in (first, second)]
    assert data[first[0] + 4] == data[second[0] + 4] == format.CODEC_ZLIB
    assert b"\xa5trace" in payloads[0] and b"\xa5trace" not in payloads[1]


V1_2_COMMIT = "ed710754a68a7f2644658097e3efe938e7231905"
"""A commit whose ``rerun_logging.format`` is the 1.2 reader (it never knew ``trace``)."""


def _v1_2_reader(into: Path) -> Path | None:
    """The 1.2 reader's ``format`` package, taken from git into ``into``; None without git."""
    repo = Path(__file__).resolve().parent.parent
    try:
        listing = subprocess.run(
            ["git", "-C", str(repo), "ls-tree", "--name-only", V1_2_COMMIT, "rerun_logging/format/"],
            capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if listing.returncode != 0 or not listing.stdout.strip():
        return None
    package = into / "rerun_logging"
    (package / "format").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for path in listing.stdout.split():
        shown = subprocess.run(["git", "-C", str(repo), "show", f"{V1_2_COMMIT}:{path}"],
                               capture_output=True, timeout=30, check=True)
        (into / path).write_bytes(shown.stdout)
    return into


READ_WITH = """
import sys
from rerun_logging import format
decoder = format.StreamDecoder("old")
decoder.feed(open(sys.argv[1], "rb").read())
print(format.FORMAT_MINOR, [vars(m) for m in decoder.messages() if isinstance(m, format.Record)])
decoder.close()
"""


@pytest.mark.parametrize("name", ["golden-v1.2.rrd", "golden-v1.3.rrd"])
def test_a_1_2_reader_reads_1_3_files_without_their_trace_context(tmp_path: Path, name: str) -> None:
    """The real 1.2 reader (from git) skips the ``trace`` table: every other field reads the same."""
    root = _v1_2_reader(tmp_path)
    if root is None:
        pytest.skip("not a git checkout holding the 1.2 reader")
    result = subprocess.run(
        [sys.executable, "-c", READ_WITH, str(DATA / name)], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(root)}, cwd=str(tmp_path), timeout=60,
    )
    assert result.returncode == 0, result.stderr
    minor, old = result.stdout.split(" ", 1)
    assert minor == "2"
    read, decoder = decode((DATA / name).read_bytes())
    decoder.close()
    trace_fields = ("trace_id", "span_id", "trace_flags")
    now = [{k: v for k, v in vars(m).items() if k not in trace_fields}
           for m in read if isinstance(m, Record)]
    assert ast.literal_eval(old) == now


def test_a_trace_row_must_hold_ids_of_their_size_and_a_flags_byte() -> None:
    traced = dataclasses.replace(record(0), trace_id=GOLDEN_TRACE, span_id="00f067aa0ba902b7",
                                 trace_flags=1)
    columns, extras = format.columns_for([traced, record(1)])
    assert columns["trace"] == [[0, bytes.fromhex(GOLDEN_TRACE), bytes.fromhex("00f067aa0ba902b7"), 1]]
    good = {**columns, "extra": extras}
    assert format.decode_records(good)[0] == traced
    row = columns["trace"][0]
    for bad in ([*row[:1], b"\x01" * 15, *row[2:]], [*row[:2], b"\x01" * 9, row[3]],
                [*row[:3], 256], [*row[:3], -1], [*row[:3], "1"], [row[0], row[1]]):
        with pytest.raises(ValueError, match="bad trace entry"):
            format.decode_records({**good, "trace": [bad]})
    # a row naming no record is ignored, as ``exc`` and ``stack`` rows are
    assert format.decode_records({**good, "trace": [[7, *row[1:]]]})[0].trace_id is None
    # a span id may be absent (OTLP allows a trace id alone)
    only_trace = [row[0], row[1], b"", 0]
    (first, _) = format.decode_records({**good, "trace": [only_trace]})
    assert (first.trace_id, first.span_id, first.trace_flags) == (GOLDEN_TRACE, None, 0)


def test_a_record_without_trace_context_costs_no_byte() -> None:
    """A batch without a span is what a 1.2 writer wrote; one record in a span costs its row."""
    plain = [record(i) for i in range(100)]
    traced = [dataclasses.replace(r, trace_id=GOLDEN_TRACE, span_id=f"{i + 1:016x}", trace_flags=1)
              for i, r in enumerate(plain)]
    assert "trace" not in format.columns_for(plain)[0]
    sizes = [len(format.encode_frame(format.encode_records(rs))) for rs in (plain, traced)]
    assert sizes[1] - sizes[0] <= 100 * 20  # the trace id repeats; span ids deflate poorly
    with pytest.raises(ValueError, match="not a trace id"):
        format.columns_for([dataclasses.replace(record(0), trace_id="abc")])
    with pytest.raises(ValueError, match="not a trace context"):
        format.trace_row(0, 0, 1, 1)  # OpenTelemetry's invalid (zero) trace id


@pytest.mark.parametrize("template, args, expected", [
    ("n=%d", (5,), "n=5"),
    ("%s|%r|%5.2f|%-4s|%x|%%", ("a", "b", 3.14159, "z", 255), "a|'b'| 3.14|z   |ff|%"),
    ("100% plain", None, "100% plain"),
    ("%(a)s and %(b)d", {"a": "x", "b": 2}, "x and 2"),
    ("%d", (True,), "1"),
    ("%s %s", (None, 1.5), "None 1.5"),
])
def test_render_message_gives_what_get_message_gives(template: str, args: Any, expected: str) -> None:
    assert format.render_message(template, args) == expected
    assert format.deferrable_template(template)
    record = logging.LogRecord("n", 20, "p", 1, template, args, None)
    assert record.getMessage() == expected


@pytest.mark.parametrize("template", [
    "%999999999d", "%*d", "%.*f", "%0100d", "%s" * (format.MAX_DEFERRED_CONVERSIONS + 1),
    "x" * (format.MAX_FIELD_CHARS + 1), b"%s", None,
])
def test_a_template_that_could_make_a_reader_build_a_huge_string_is_never_rendered(
    template: Any,
) -> None:
    """A crafted stream names such a template with a nil message: the reader says so, small."""
    assert not format.deferrable_template(template)
    if isinstance(template, str):
        text = format.render_message(template, (10**9, 1))
        assert text.startswith("<message not rendered") and len(text) <= format.MAX_FIELD_CHARS + 64


NIL_MESSAGE_BATCHES = {
    "all render": [("request %d done", [1]), ("%(user)s did %(n)d", {"user": "ann", "n": 3}),
                   ("plain 100%%", None), ("no args", None), ("%s and %r", ["a", "b"])],
    "one raises": [("request %d done", [1]), ("%d items", ["x"]), ("%s", ["ok"])],
    "one past the cap": [("%s", ["x" * (format.MAX_FIELD_CHARS + 5)]), ("%d", [2])],
    "one not deferrable": [("%s", ["a"]), ("%*d", [5, 1])],
}


@pytest.mark.parametrize("name", sorted(NIL_MESSAGE_BATCHES))
def test_nil_messages_render_as_render_message_renders_each(name: str) -> None:
    """A batch is rendered in one pass when it can be; whatever the batch holds, each
    row's text is what ``render_message`` makes of its template and args alone."""
    rows = NIL_MESSAGE_BATCHES[name]
    records = [Record(seq=i, time_ns=i, message="", template=t, level=20, level_name="INFO",
                      logger="x", entity_path="x", path="p", line=i, function="f",
                      args=tuple(a) if isinstance(a, list) else a)
               for i, (t, a) in enumerate(rows)]
    columns, extras = format.columns_for(records)
    columns["msg"] = [None] * len(records)
    body = msgpack.unpackb(format.records_message(columns, format.pack_extras(extras)),
                           raw=False, strict_map_key=False)[1]
    stored_args = body.get("args") or [None] * len(rows)  # as stored: capped
    expected = [format.render_message(t, (tuple(a) if isinstance(a, list) else a) or None)
                for (t, _), a in zip(rows, stored_args)]
    assert format.decode_columns(body).messages == expected
    assert [r.message for r in format.decode_records(body)] == expected


def test_a_crafted_nil_message_with_a_huge_width_reads_as_a_short_note() -> None:
    record = Record(seq=0, time_ns=1, message="", template="%999999999d", args=(1,),
                    level=20, level_name="INFO", logger="x", entity_path="x",
                    path="p", line=1, function="f")
    columns, extras = format.columns_for([record])
    columns["msg"] = [None]
    data = HEADER + format.encode_frame(format.info_message(INFO))
    data += format.encode_frame(format.records_message(columns, format.pack_extras(extras)))
    read, decoder = decode(data)
    (decoded,) = [m for m in read if isinstance(m, Record)]
    assert decoded.message.startswith("<message not rendered") and len(decoded.message) < 200


# --- several streams in one file ----------------------------------------------------

SECOND = RecordingInfo(
    application_id="app", recording_id="rec-2", start_time_ns=1_700_000_000_500_000_000,
    host="host", pid=1235, python_version="3.11.7", package_version="0.1.0",
)


def two_runs() -> tuple[bytes, list[Message], list[Message]]:
    """A file a save path was reused for: one run, then a second appended after it."""
    first = [record(0), Dropped(1, "full"), record(1), End()]
    second = [record(0, message="again"), record(1, message="again 1"), End()]
    return format.encode_stream(INFO, first) + format.encode_stream(SECOND, second), first, second


def resync_decode(data: bytes, *cuts: int) -> tuple[list[Message], StreamDecoder]:
    """Every message of ``data`` fed in pieces cut at ``cuts``, to the end (close and drain)."""
    decoder = StreamDecoder(SOURCE, resync=True)
    out: list[Message] = []
    start = 0
    for cut in [*cuts, len(data)]:
        decoder.feed(data[start:cut])
        out.extend(decoder.messages())
        start = cut
    decoder.close()
    out.extend(decoder.messages())
    return out, decoder


def test_a_header_after_frames_starts_the_next_stream() -> None:
    data, first, second = two_runs()
    read, decoder = decode(data)
    decoder.close()
    assert_same(read, [INFO, *first, SECOND, *second])
    assert decoder.headers == 2 and decoder.info == SECOND and decoder.ended
    assert list(decoder.streams) == [format.stream_id(INFO), format.stream_id(SECOND)]
    assert [(s.index, s.ended, s.version) for s in decoder.streams.values()] == [
        (0, True, CURRENT), (1, True, CURRENT)]


def test_every_split_of_a_two_stream_file_decodes_the_same() -> None:
    data, first, second = two_runs()
    whole = [INFO, *first, SECOND, *second]
    for cut in range(len(data) + 1):
        for resync in (False, True):
            decoder = StreamDecoder(SOURCE, resync=resync)
            read: list[Message] = []
            for piece in (data[:cut], data[cut:]):
                decoder.feed(piece)
                read.extend(decoder.messages())
            decoder.close()
            assert_same(read, whole)
            assert decoder.headers == 2 and len(decoder.streams) == 2
    read, _ = decode(data, *range(1, len(data)))  # one byte at a time
    assert_same(read, whole)


def test_a_repeated_header_and_info_resumes_its_stream() -> None:
    """Two handlers on one path: each write after the other's carries its header again."""
    other = RecordingInfo(**{**INFO.__dict__, "start_time_ns": INFO.start_time_ns + 1})
    a, b = format.stream_header(INFO), format.stream_header(other)
    frame = lambda *rs: format.encode_frame(format.encode_records(list(rs)))  # noqa: E731
    end = format.encode_frame(format.end_message())
    data = a + frame(record(0)) + b + frame(record(0)) + a + frame(record(1)) + end + b + frame(record(1)) + end
    decoder = StreamDecoder(SOURCE)
    decoder.feed(data)
    owners = [(decoder.stream.index if decoder.stream else None, m.seq)
              for m in decoder.messages() if isinstance(m, Record)]
    decoder.close()
    assert owners == [(0, 0), (1, 0), (0, 1), (1, 1)]
    assert decoder.headers == 4 and len(decoder.streams) == 2
    assert all(s.ended for s in decoder.streams.values()) and decoder.ended


def test_resuming_a_stream_restores_its_end() -> None:
    other = RecordingInfo(**{**INFO.__dict__, "pid": 99})
    end = format.encode_frame(format.end_message())
    data = format.stream_header(INFO) + format.stream_header(other) + end + format.stream_header(INFO)
    read, decoder = decode(data)
    decoder.close()
    assert decoder.info == INFO and not decoder.ended
    assert decoder.streams[format.stream_id(other)].ended


def torn_then_appended(cut_inside: int) -> tuple[bytes, int, list[Message], list[Message]]:
    """Run 1 killed ``cut_inside`` bytes into its last frame, then run 2 appended."""
    first = [record(0), record(1)]
    whole = format.encode_stream(INFO, first)
    last = format.encode_frame(format.encode_records([record(i) for i in range(2, 60)]))
    second = [record(0, message="second run"), End()]
    data = whole + last[:cut_inside] + format.encode_stream(SECOND, second)
    return data, len(whole), first, second


def test_a_torn_frame_then_an_appended_run_is_damage_and_the_run_is_read() -> None:
    _, _, first, second = torn_then_appended(1)
    frame_size = len(format.encode_frame(format.encode_records([record(i) for i in range(2, 60)])))
    for cut_inside in range(1, frame_size):
        data, torn_at, _, _ = torn_then_appended(cut_inside)
        read, decoder = resync_decode(data)
        damage = [m for m in read if isinstance(m, format.Damage)]
        assert len(damage) == 1, cut_inside
        (d,) = damage
        assert d.offset == torn_at and d.skipped == cut_inside and d.resumed_at == torn_at + cut_inside
        assert isinstance(d.error, TruncatedStream), (cut_inside, d.error)
        assert d.error.source == SOURCE and f"at byte {torn_at}" in str(d)
        assert_same([m for m in read if not isinstance(m, format.Damage)], [INFO, *first, SECOND, *second])
        assert decoder.damage == damage and decoder.ended and len(decoder.streams) == 2


def test_every_split_of_a_torn_then_appended_file_decodes_the_same() -> None:
    data, _, first, second = torn_then_appended(37)
    expected, _ = resync_decode(data)
    for cut in range(len(data) + 1):
        read, _ = resync_decode(data, cut)
        assert_same(read, expected)
    read, _ = resync_decode(data, *range(1, len(data)))
    assert_same(read, expected)


def test_a_torn_frame_whose_size_runs_past_the_end_still_finds_the_next_run() -> None:
    """The torn frame claims more bytes than the whole rest of the file: found at close()."""
    rng = random.Random(4)
    big = format.encode_frame(format.encode_records(
        [record(i, message=rng.randbytes(40).hex()) for i in range(200)]))
    first, second = [record(0)], [record(0, message="second run"), End()]
    head = format.encode_stream(INFO, first)
    data, torn_at = head + big[:300] + format.encode_stream(SECOND, second), len(head)
    assert len(big) > len(data)
    read, decoder = decode(data)  # without resync: torn, as before
    with pytest.raises(TruncatedStream) as caught:
        decoder.close()
    assert caught.value.offset == torn_at
    read, decoder = resync_decode(data)
    assert [type(m).__name__ for m in read].count("Damage") == 1
    assert_same([m for m in read if not isinstance(m, format.Damage)], [INFO, *first, SECOND, *second])


def test_a_bad_checksum_or_size_before_a_run_is_damage_naming_it() -> None:
    start = format.encode_stream(INFO, [record(0)])
    good = format.encode_stream(SECOND, [record(1), End()])
    cases = {
        ChecksumMismatch: raw_frame(format.end_message(), crc=12345),
        FrameTooLarge: struct.pack("<IBI", MAX_FRAME_SIZE + 1, 0, 0) + b"junk",
        CorruptFrame: raw_frame(format.end_message(), codec=7),
    }
    for kind, bad in cases.items():
        read, decoder = resync_decode(start + bad + good)
        (damage,) = decoder.damage
        assert type(damage.error) is kind and damage.offset == len(start)
        assert damage.skipped == len(bad)
        assert_same([m for m in read if not isinstance(m, format.Damage)],
                    [INFO, record(0), SECOND, record(1), End()])


@pytest.mark.parametrize("name", sorted(_error_cases()))
def test_with_resync_a_single_stream_fails_as_before(name: str) -> None:
    """No header after the fault: the same error, at the same offset, the same messages."""
    data, kind, offset = _error_cases()[name]
    before, error = decode_until_error(data)
    decoder = StreamDecoder(SOURCE, resync=True)
    decoder.feed(data)
    read: list[Message] = []
    with pytest.raises(RecordingError) as caught:
        read.extend(decoder.messages())
        decoder.close()
        read.extend(decoder.messages())
    assert type(caught.value) is kind and caught.value.offset == offset == error.offset
    assert str(caught.value) == str(error)
    assert_same(read, before)
    assert decoder.damage == []


def test_golden_files_read_the_same_with_resync() -> None:
    for name in ("golden-v1.0.rrd", "golden-v1.1.rrd", "golden-v1.2.rrd", "golden-v1.3.rrd"):
        data = (DATA / name).read_bytes()
        plain, _ = decode(data)
        read, decoder = resync_decode(data, *range(1, len(data), 61))
        assert_same(read, plain)
        assert decoder.damage == [] and decoder.headers == 1


def test_a_header_is_never_read_as_a_frame() -> None:
    assert struct.unpack("<I", MAGIC[:4])[0] > MAX_FRAME_SIZE
    with pytest.raises(ValueError, match="stream header"):
        StreamDecoder(SOURCE, max_frame_size=struct.unpack("<I", MAGIC[:4])[0])


# --- INFO fields are type-checked -----------------------------------------------------------

INFO_BODY = {"app": "app", "rec": "rec", "start": 1, "host": "h", "pid": 7, "python": "3.11",
             "version": "0.1", "prefix": "svc"}
BAD_INFO_FIELDS = {
    "app": b"app", "rec": 5, "start": "1", "host": None, "pid": True, "python": 3.11,
    "version": ["0.1"], "prefix": b"svc",
}


def info_stream(body: dict[str, Any]) -> bytes:
    return format.HEADER + raw_frame(format.packb([format.KIND_INFO, body]))


@pytest.mark.parametrize("key", sorted(BAD_INFO_FIELDS))
def test_an_info_field_of_the_wrong_type_is_a_corrupt_frame_naming_it(key: str) -> None:
    read, error = decode_until_error(info_stream({**INFO_BODY, key: BAD_INFO_FIELDS[key]}))
    assert type(error) is CorruptFrame and read == []
    assert f"INFO field {key!r}" in error.reason and "not a" in error.reason, error.reason
    assert error.offset == format.HEADER_SIZE


@pytest.mark.parametrize("key", sorted(set(INFO_BODY) - {"prefix"}))
def test_a_missing_info_field_is_a_corrupt_frame_naming_it(key: str) -> None:
    body = {k: v for k, v in INFO_BODY.items() if k != key}
    read, error = decode_until_error(info_stream(body))
    assert type(error) is CorruptFrame and f"INFO field {key!r}" in error.reason, error.reason


def test_the_info_prefix_is_optional_and_unknown_keys_are_skipped() -> None:
    body = {k: v for k, v in INFO_BODY.items() if k != "prefix"}
    messages, decoder = decode(info_stream({**body, "later": [1, 2]}))
    decoder.close()
    assert messages == [RecordingInfo("app", "rec", 1, "h", 7, "3.11", "0.1", "")]
    assert format.decode_info(INFO_BODY).entity_prefix == "svc"


# --- frames kept apart from their stream --------------------------------------------


def test_stored_decoder_reads_frames_kept_without_their_header() -> None:
    records = format.encode_frame(format.encode_records([FULL, MINIMAL]))
    end = format.encode_frame(format.end_message())
    decoder = format.stored_decoder("<kept>", records)
    decoder.feed(end)  # more frames later, as an export feeds them
    assert_same(list(decoder.messages()), [FULL, MINIMAL, End()])
    decoder.close()
    (frame,) = format.stored_decoder("<kept>", records).frames()
    assert frame.raw == records and format.peek_frame(frame.payload).records == 2


def test_stored_decoder_errors_name_their_source() -> None:
    broken = bytearray(format.encode_frame(format.encode_records([FULL])))
    broken[-1] ^= 1
    with pytest.raises(ChecksumMismatch) as caught:
        list(format.stored_decoder("<kept>", bytes(broken)).frames())
    assert caught.value.source == "<kept>" and caught.value.offset == HEADER_SIZE
