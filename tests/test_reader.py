"""The reader: files, stdin, following a growing stream, and verify's report."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Iterator

import pytest

from rerun_logging import format, reader
from rerun_logging.format import (
    KIND_RECORDS,
    ChecksumMismatch,
    CorruptFrame,
    Dropped,
    End,
    Message,
    NotARecording,
    Record,
    RecordingInfo,
    TruncatedStream,
    encode_frame,
    encode_records,
    encode_stream,
    end_message,
    entity_path_for,
    packb,
    stream_header,
)
from rerun_logging.handler import RerunHandler

INFO = RecordingInfo(
    application_id="reader-test",
    recording_id="rec-1",
    start_time_ns=1_700_000_000_000_000_000,
    host="testhost",
    pid=4242,
    python_version="3.11.0",
    package_version="0.1.0",
)


def make_record(seq: int, logger: str = "app", level: int = logging.INFO, **fields: object) -> Record:
    """A record as the format stores it, numbered ``seq``."""
    return Record(
        seq=seq,
        time_ns=INFO.start_time_ns + seq * 1_000_000,
        level=level,
        level_name=logging.getLevelName(level),
        entity_path=entity_path_for(logger),
        logger=logger,
        message=f"message {seq}",
        **fields,  # type: ignore[arg-type]
    )


def two_frame_stream() -> tuple[bytes, list[Record], list[Record], int]:
    """Header, a frame of records, a second frame of records (no END).

    Returns the bytes, both record lists and the offset of the second frame.
    """
    first = [make_record(i) for i in range(3)]
    second = [make_record(i) for i in range(3, 6)]
    head = stream_header(INFO) + encode_frame(encode_records(first))
    return head + encode_frame(encode_records(second)), first, second, len(head)


class ChunkedStream:
    """A binary stream that returns scripted chunks; ``b""`` means "nothing new yet"."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        return self.chunks.pop(0) if self.chunks else b""


def flatten(batches: Iterator[list[Message]]) -> list[Message]:
    return [message for batch in batches for message in batch]


def test_reads_a_file_in_chunks(tmp_path: Path) -> None:
    messages: list[Message] = [
        INFO, *[make_record(i, extras={"i": i}) for i in range(50)], Dropped(3, "queue full"),
        make_record(50), End(),
    ]
    path = tmp_path / "run.rrd"
    path.write_bytes(encode_stream(INFO, messages[1:]))
    assert list(reader.read_messages(str(path))) == messages
    assert list(reader.read_messages(str(path), chunk_size=7)) == messages


def test_reads_a_file_written_by_the_handler(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "handler.rrd"
    handler = RerunHandler(f"save:{path}", application_id="reader-handler")
    logger.addHandler(handler)
    logger.warning("hello %s", "reader", extra={"user": "alice"})
    handler.close()
    messages = list(reader.read_messages(str(path)))
    assert isinstance(messages[0], RecordingInfo) and messages[0].application_id == "reader-handler"
    (record,) = [m for m in messages if isinstance(m, Record)]
    assert (record.message, record.logger, record.extras) == ("hello reader", logger.name, {"user": "alice"})
    assert isinstance(messages[-1], End)


def test_reads_stdin_for_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    data = encode_stream(INFO, [make_record(0), End()])
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(data))))
    assert list(reader.read_messages("-")) == [INFO, make_record(0), End()]


def test_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        list(reader.read_messages(str(tmp_path / "missing.rrd")))


def test_torn_tail_yields_what_is_whole_then_raises(tmp_path: Path) -> None:
    data, first, _, second_offset = two_frame_stream()
    path = tmp_path / "torn.rrd"
    path.write_bytes(data[:-3])
    seen: list[Message] = []
    with pytest.raises(TruncatedStream) as caught:
        for message in reader.read_messages(str(path), chunk_size=11):
            seen.append(message)
    assert seen == [INFO, *first]
    assert caught.value.offset == second_offset
    assert caught.value.source == str(path)


def test_corrupt_frame_yields_earlier_frames_of_the_same_chunk(tmp_path: Path) -> None:
    data, first, _, second_offset = two_frame_stream()
    flipped = bytearray(data)
    flipped[-1] ^= 0x01
    path = tmp_path / "flipped.rrd"
    path.write_bytes(bytes(flipped))
    seen: list[Message] = []
    with pytest.raises(ChecksumMismatch) as caught:
        for message in reader.read_messages(str(path)):
            seen.append(message)
    assert seen == [INFO, *first]
    assert caught.value.offset == second_offset


def test_follow_keeps_partial_frames_until_the_rest_arrives() -> None:
    data = encode_stream(INFO, [make_record(0), Dropped(2, "r"), make_record(1), End()])
    cuts = [3, 17, 18, len(data) - 5]
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    chunks: list[bytes] = []
    for piece in pieces:
        chunks += [piece, b"", b""]  # the writer pauses between pieces
    chunks.append(b"never read: the stream ended")
    stream = ChunkedStream(chunks)
    slept: list[float] = []
    batches = list(
        reader.read_stream(stream, "growing", follow=True, poll_interval=0.25, sleep=slept.append)  # type: ignore[arg-type]
    )
    assert flatten(iter(batches)) == [INFO, make_record(0), Dropped(2, "r"), make_record(1), End()]
    assert slept == [0.25] * (2 * len(pieces) - 2)
    assert stream.chunks == [b"", b"", b"never read: the stream ended"]


def test_follow_stops_on_keyboard_interrupt() -> None:
    data = encode_stream(INFO, [make_record(0)])
    stream = ChunkedStream([data[:-2], data[-2:]])

    def interrupt(_: float) -> None:
        raise KeyboardInterrupt

    batches = reader.read_stream(stream, "s", follow=True, sleep=interrupt)  # type: ignore[arg-type]
    assert flatten(batches) == [INFO, make_record(0)]


def test_without_follow_an_empty_read_is_the_end() -> None:
    data = encode_stream(INFO, [make_record(0)])
    stream = ChunkedStream([data[:-2], b"", data[-2:]])
    with pytest.raises(TruncatedStream):
        flatten(reader.read_stream(stream, "s"))  # type: ignore[arg-type]


def test_follow_on_a_real_file_ends_at_end(tmp_path: Path) -> None:
    path = tmp_path / "done.rrd"
    path.write_bytes(encode_stream(INFO, [make_record(0), End()]))
    messages = list(reader.read_messages(str(path), follow=True, poll_interval=0.01))
    assert messages == [INFO, make_record(0), End()]


# --- verify ---------------------------------------------------------------------------


def test_verify_clean_file(tmp_path: Path) -> None:
    path = tmp_path / "clean.rrd"
    path.write_bytes(
        encode_stream(INFO, [make_record(0), Dropped(5, "a"), make_record(1), Dropped(2, "b"), End()])
    )
    report = reader.verify(str(path))
    assert report.version == (format.FORMAT_MAJOR, format.FORMAT_MINOR)
    assert report.recordings == (reader.RecordingSummary("reader-test", "rec-1", 4242, "testhost"),)
    assert (report.records, report.dropped) == (2, 7)
    assert report.ended and report.clean and not report.torn and not report.corrupt
    assert report.offset is None


def test_verify_lists_every_recording(tmp_path: Path) -> None:
    other = RecordingInfo("second", "rec-2", 0, "h2", 7, "3.11", "0.1.0")
    path = tmp_path / "two.rrd"
    path.write_bytes(encode_stream(INFO, [make_record(0), other, make_record(1), End()]))
    report = reader.verify(str(path))
    assert [r.application_id for r in report.recordings] == ["reader-test", "second"]
    assert report.clean


def test_verify_torn_tail_reports_offset(tmp_path: Path) -> None:
    data, first, _, second_offset = two_frame_stream()
    path = tmp_path / "torn.rrd"
    path.write_bytes(data[:-1])
    report = reader.verify(str(path))
    assert report.torn and not report.clean and not report.corrupt
    assert report.offset == second_offset
    assert report.records == len(first)
    assert "inside a frame" in report.error.reason  # type: ignore[union-attr]


def test_verify_without_end_is_not_clean(tmp_path: Path) -> None:
    data, first, second, _ = two_frame_stream()
    path = tmp_path / "open.rrd"
    path.write_bytes(data)
    report = reader.verify(str(path))
    assert report.error is None and not report.ended and not report.clean
    assert report.records == len(first) + len(second)


def test_verify_flipped_bit_is_corrupt(tmp_path: Path) -> None:
    data, first, _, second_offset = two_frame_stream()
    flipped = bytearray(data + encode_frame(end_message()))
    flipped[second_offset + 20] ^= 0x10
    path = tmp_path / "flipped.rrd"
    path.write_bytes(bytes(flipped))
    report = reader.verify(str(path))
    assert isinstance(report.error, ChecksumMismatch)
    assert report.corrupt and not report.torn and not report.clean
    assert report.offset == second_offset and report.records == len(first)


def test_verify_counts_only_records_it_could_read(tmp_path: Path) -> None:
    """A frame whose CRC holds but whose second message does not decode counts nothing."""
    good = encode_records([make_record(0)])
    broken = packb([KIND_RECORDS, {"seq": [1]}])
    head = stream_header(INFO)
    path = tmp_path / "undecodable.rrd"
    path.write_bytes(head + encode_frame(good + broken))
    report = reader.verify(str(path))
    assert isinstance(report.error, CorruptFrame) and report.offset == len(head)
    assert report.records == 0


def test_verify_rerun_sdk_file(tmp_path: Path) -> None:
    path = tmp_path / "sdk.rrd"
    path.write_bytes(b"RRF2" + bytes(60))
    report = reader.verify(str(path))
    assert isinstance(report.error, NotARecording)
    assert report.version is None and "Rerun SDK" in report.error.reason


def test_verify_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        reader.verify(str(tmp_path / "missing.rrd"))


# --- several streams: runs appended, a torn run before another ------------------------

RUN_2 = RecordingInfo("reader-test", "rec-2", 1_700_000_001_000_000_000, "testhost", 4343, "3.11.7", "0.1.0")


def test_verify_reports_each_stream_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "runs.rrd"
    path.write_bytes(
        encode_stream(INFO, [make_record(0), Dropped(2, "full"), End()])
        + encode_stream(RUN_2, [make_record(0), make_record(1), End()])
    )
    report = reader.verify(str(path))
    assert report.clean and (report.records, report.dropped) == (3, 2)
    assert [(s.recording.recording_id, s.records, s.dropped, s.ended) for s in report.streams] == [
        ("rec-1", 1, 2, True), ("rec-2", 2, 0, True)]
    assert [r.recording_id for r in report.recordings] == ["rec-1", "rec-2"]


def test_verify_counts_the_run_after_a_torn_one_and_reports_the_damage(tmp_path: Path) -> None:
    data, first, _, second_offset = two_frame_stream()
    path = tmp_path / "torn-then-run.rrd"
    path.write_bytes(data[:-3] + encode_stream(RUN_2, [make_record(0), End()]))
    report = reader.verify(str(path))
    assert report.records == len(first) + 1 and report.error is None
    (damage,) = report.damage
    assert damage.offset == second_offset == report.offset
    assert damage.resumed_at == len(data) - 3 and isinstance(damage.error, TruncatedStream)
    assert report.damaged and not report.clean
    assert [s.ended for s in report.streams] == [False, True]


def test_read_messages_yields_the_damage_where_it_was(tmp_path: Path) -> None:
    data, first, _, _ = two_frame_stream()
    path = tmp_path / "torn-then-run.rrd"
    path.write_bytes(data[:-3] + encode_stream(RUN_2, [make_record(0), End()]))
    for chunk_size in (7, 1000):
        messages = list(reader.read_messages(str(path), chunk_size=chunk_size))
        kinds = [type(m).__name__ for m in messages]
        assert kinds == ["RecordingInfo", *["Record"] * len(first), "Damage", "RecordingInfo", "Record", "End"]


def test_follow_stops_when_the_last_process_has_ended_every_stream() -> None:
    """Two handlers of one process: the first END does not stop following, the second does."""
    other = RecordingInfo(**{**INFO.__dict__, "start_time_ns": INFO.start_time_ns + 1})
    end = encode_frame(end_message())
    first_end = stream_header(INFO) + stream_header(other) + encode_frame(encode_records([make_record(0)]))
    first_end += stream_header(INFO) + end
    chunks = [first_end, b"", stream_header(other) + end, b"never read"]
    stream = ChunkedStream(chunks)
    batches = list(reader.read_stream(stream, "s", follow=True, sleep=lambda _: None))  # type: ignore[arg-type]
    assert [type(m).__name__ for m in flatten(iter(batches))].count("End") == 2
    assert stream.chunks == [b"never read"]


def test_an_info_with_a_mistyped_field_is_a_corrupt_frame_for_every_reader(tmp_path: Path) -> None:
    bad = RecordingInfo(b"app", "rec", 1, "h", 1, "3.11", "0.1")  # type: ignore[arg-type]
    path = tmp_path / "bad.rrd"
    path.write_bytes(encode_stream(bad, [make_record(0), End()]))
    with pytest.raises(CorruptFrame, match=r"INFO field 'app' \(application_id\) is a bytes"):
        list(reader.read_messages(str(path)))
    report = reader.verify(str(path))
    assert report.corrupt and report.records == 0 and report.recordings == ()
