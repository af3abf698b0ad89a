"""Tests of ``rerun_logging.viewer.ingest``: the sans-I/O :class:`StreamIngest` on a real store.

Streams are built with ``rerun_logging.format`` and fed as bytes; replies are read
back with the one decoder. No socket, file or clock is involved: the ingest has none.
(``tests/test_viewer.py`` covers every split point of one chunk boundary, refusals
of malformed headers and the save directory; ``tests/test_viewer_bounds.py`` the
deflate bomb and the INFO caps.)
"""

from __future__ import annotations

import logging
import struct
import zlib
from typing import Any, Sequence

import pytest

from rerun_logging.format import (
    CODEC_ZLIB,
    HEADER,
    MAX_EXTRAS_BYTES,
    MAX_FIELD_CHARS,
    MAX_PAYLOAD_SIZE,
    TRUNCATION_MARK,
    VIEWER_HELLO,
    VIEWER_MAGIC,
    Ack,
    ChecksumMismatch,
    Dropped,
    End,
    ExceptionInfo,
    Message,
    Record,
    RecordingInfo,
    Refused,
    StreamDecoder,
    dropped_message,
    encode_frame,
    encode_records,
    end_message,
    stream_header,
    truncate_text,
)
from rerun_logging.viewer.ingest import (
    MAX_PEER_PAYLOAD_SIZE,
    StreamIngest,
    bounded_messages,
    bounded_record,
    payload_limit,
)
from rerun_logging.viewer.store import RecordingStore

T0 = 1_765_000_000_000_000_000
PEER = "127.0.0.1:50123"


def info(recording_id: str = "rec-ingest", pid: int = 777) -> RecordingInfo:
    return RecordingInfo("ingest-test", recording_id, T0, "host-a", pid, "3.11.7", "0.1.0")


def record(seq: int, message: str | None = None, **fields: Any) -> Record:
    return Record(
        seq=seq, time_ns=T0 + seq * 1_000, level=logging.WARNING, level_name="WARNING",
        entity_path="svc/db", logger="svc.db",
        message=f"row {seq}" if message is None else message, **fields,
    )


def records_frame(first: int, count: int, **fields: Any) -> bytes:
    return encode_frame(encode_records([record(first + i, **fields) for i in range(count)]))


def drop_frame(count: int, reason: str = "queue full") -> bytes:
    return encode_frame(dropped_message(count, reason))


END = encode_frame(end_message())


def deflated(payload: bytes) -> bytes:
    """A frame around ``payload`` deflated at level 9 (as small as a peer can make it)."""
    data = zlib.compress(payload, 9)
    crc = zlib.crc32(data, zlib.crc32(bytes((CODEC_ZLIB,))))
    return struct.pack("<IBI", len(data), CODEC_ZLIB, crc) + data


def corrupted(frame: bytes) -> bytes:
    """``frame`` with its last payload byte flipped: the CRC no longer matches."""
    return frame[:-1] + bytes((frame[-1] ^ 0xFF,))


def replies_of(chunks: Sequence[bytes]) -> list[Message]:
    """The viewer's replies, read as a client reads them (after the viewer's hello)."""
    decoder = StreamDecoder("replies", magic=VIEWER_MAGIC)
    decoder.feed(VIEWER_HELLO + b"".join(chunks))
    messages = list(decoder.messages())
    decoder.close()
    return messages


def acks(chunks: Sequence[bytes]) -> list[int]:
    return [m.frames for m in replies_of(chunks) if isinstance(m, Ack)]


class Printer:
    """A RecordPrinter that keeps every message it is shown."""

    def __init__(self) -> None:
        self.shown: list[Message] = []
        self.skipped_records = 0

    def __bool__(self) -> bool:
        return True

    def show(self, info: RecordingInfo, messages: Sequence[Message]) -> None:
        self.shown.extend(messages)

    def skipped(self, info: RecordingInfo, records: int) -> None:
        self.skipped_records += records


STREAM_FRAMES = [records_frame(0, 4), drop_frame(3), records_frame(4, 2, message="tail"), END]
STREAM = stream_header(info()) + b"".join(STREAM_FRAMES)


def state(store: RecordingStore) -> tuple[Any, ...]:
    (stream,) = store.streams()
    return (stream.records, stream.dropped, stream.ended, stream.next_seq,
            list(store.frames(stream.key)))


# --- chunking does not matter --------------------------------------------------------------


def test_a_stream_fed_whole_and_byte_by_byte_gives_the_same_records_and_acks() -> None:
    whole_store, whole_printer = RecordingStore(), Printer()
    whole = StreamIngest(f"tcp {PEER}", whole_store, name=PEER, printer=whole_printer)
    whole_replies = whole.feed(STREAM)

    byte_store, byte_printer = RecordingStore(), Printer()
    by_byte = StreamIngest(f"tcp {PEER}", byte_store, name=PEER, printer=byte_printer)
    byte_replies: list[bytes] = []
    for i in range(len(STREAM)):
        byte_replies += by_byte.feed(STREAM[i:i + 1])

    assert state(whole_store) == state(byte_store) == (6, 3, True, 6, STREAM_FRAMES)
    assert whole_printer.shown == byte_printer.shown
    assert [m.seq for m in byte_printer.shown if isinstance(m, Record)] == list(range(6))
    assert any(isinstance(m, Dropped) and m.count == 3 for m in byte_printer.shown)
    # one ACK per chunk that completed frames: all four at once, or one at a time
    assert acks(whole_replies) == [4]
    assert acks(byte_replies) == [1, 2, 3, 4]
    assert (whole.acked, whole.records, by_byte.acked, by_byte.records) == (4, 6, 4, 6)
    assert whole.error is None and by_byte.error is None and not by_byte.finished
    assert by_byte.buffered == 0 and by_byte.received == len(STREAM)


def test_acks_count_frames_after_info_and_coalesce_when_not_taken() -> None:
    ingest = StreamIngest(f"tcp {PEER}", RecordingStore())
    ingest.receive_data(stream_header(info()))
    assert ingest.handshaken and ingest.data_to_send() == []  # INFO is not acknowledged
    for first in range(0, 50, 10):  # five chunks, replies not taken in between
        ingest.receive_data(records_frame(first, 10))
    (reply,) = ingest.data_to_send()  # ACK is cumulative: one reply for five frames
    assert acks([reply]) == [5]
    assert ingest.data_to_send() == []  # nothing new: nothing to say
    ingest.receive_data(records_frame(50, 1)[:7])  # half a frame: no change, no ACK
    assert ingest.data_to_send() == [] and ingest.partial_frame_at is not None
    assert acks(ingest.feed(records_frame(50, 1)[7:])) == [6]
    # a frame the store has already is acknowledged too (the sender may forget it)
    assert acks(ingest.feed(records_frame(20, 10))) == [7]
    assert (ingest.records, ingest.duplicates) == (51, 1)


# --- errors --------------------------------------------------------------------------------


def test_a_corrupt_frame_after_good_ones_keeps_them_refuses_and_ignores_later_data() -> None:
    lines: list[str] = []
    store = RecordingStore()
    ingest = StreamIngest(f"tcp {PEER}", store, name=PEER, report=lines.append)
    good = stream_header(info()) + records_frame(0, 3) + records_frame(3, 3)
    bad = corrupted(records_frame(6, 3))
    replies = ingest.feed(good + bad + records_frame(9, 3))

    # the ACK of the good frames goes first, then the REFUSED that names the fault
    *acked, refused = replies_of(replies)
    assert acked == [Ack(2)]
    assert isinstance(refused, Refused) and "checksum" in refused.reason
    assert f"at byte {len(good)}" in refused.reason
    assert isinstance(ingest.error, ChecksumMismatch) and ingest.error.offset == len(good)
    assert ingest.finished
    # the good frames stay; the stream no longer has a source
    (stream,) = store.streams()
    assert (stream.records, stream.next_seq, len(stream.frames)) == (6, 6, 2)
    assert not stream.connected
    # one line for the refusal (after the one saying the stream connected)
    connected, refusal = lines
    assert connected == f"{PEER}: ingest-test[777] (recording rec-ingest) connected"
    assert refusal.startswith(f"refused {PEER}: at byte {len(good)}: ") and "checksum" in refusal
    # later data is ignored, and closing adds nothing
    ingest.receive_data(records_frame(12, 3))
    assert ingest.data_to_send() == []
    ingest.close()
    assert len(lines) == 2 and stream.records == 6
    assert ingest.refuse("too late") == []


def test_a_file_source_gets_no_refusal_and_its_line_says_the_frames_are_kept() -> None:
    lines: list[str] = []
    store = RecordingStore()
    ingest = StreamIngest("run.rrd", store, report=lines.append, network=False)
    good = stream_header(info()) + records_frame(0, 5)
    replies = ingest.feed(good + corrupted(records_frame(5, 5)) + records_frame(10, 5))
    # a file's decoder looks past the damage for a next run: the fault is final at close
    assert ingest.error is None and not ingest.finished and lines == []
    ingest.close()
    after = ingest.data_to_send()
    # a REFUSED is for a peer: a file gets none; only the coalesced ACK its reader drops
    assert acks(replies) == [1] and after == []
    assert ingest.finished and isinstance(ingest.error, ChecksumMismatch)
    (line,) = lines  # a file is not "connected": its only line is the fault
    assert line == (f"run.rrd: at byte {len(good)}: frame checksum does not match (corrupt data); "
                     "the frames before it are kept")
    assert state(store)[:4] == (5, 0, False, 5)


def test_a_clean_file_is_never_refused_and_holds_at_most_one_coalesced_ack() -> None:
    """A file has no one to answer; its reader drops ``data_to_send``, which holds one ACK."""
    lines: list[str] = []
    ingest = StreamIngest("ok.rrd", RecordingStore(), report=lines.append, network=False)
    for frame in [stream_header(info()), *STREAM_FRAMES]:
        ingest.receive_data(frame)
    ingest.close()
    assert acks(ingest.data_to_send()) == [4]
    assert lines == ["ok.rrd: loaded ingest-test[777] (recording rec-ingest): 6 records; ended cleanly"]


# --- a reconnect resumes its stream by sequence numbers ----------------------------------------


def test_a_reconnect_resumes_by_sequence_number_and_drops_what_it_resends() -> None:
    lines: list[str] = []
    store = RecordingStore()
    header = stream_header(info())
    first = StreamIngest(f"tcp {PEER}", store, name=PEER, report=lines.append)
    first.feed(header + records_frame(0, 10) + records_frame(10, 10) + records_frame(20, 10)[:-3])
    first.close()  # the connection broke inside the third frame
    assert "torn tail" in lines[-1] and "20 records" in lines[-1]
    (stream,) = store.streams()
    assert (stream.next_seq, stream.connected) == (20, False)

    # the client never saw the ACK of the second frame: it resends from seq 10
    second = StreamIngest("tcp 127.0.0.1:50124", store, name="127.0.0.1:50124", report=lines.append)
    replies = second.feed(header + records_frame(10, 10) + records_frame(20, 10) + records_frame(30, 5))
    assert acks(replies) == [3]  # all three acknowledged, the duplicate too
    assert (second.duplicates, second.records) == (1, 15)
    assert "resuming its stream" in lines[-1]
    assert store.summary().streams == 1  # the same stream, not a second one
    assert (stream.records, stream.next_seq, stream.connected) == (35, 35, True)
    decoder = StreamDecoder("store")
    decoder.feed(HEADER + b"".join(store.frames(stream.key)))
    seqs = [m.seq for m in decoder.messages() if isinstance(m, Record)]
    assert seqs == list(range(35))  # each record once, in order
    second.feed(END)
    second.close()
    assert lines[-1].endswith("ended cleanly; 15 records, 1 resent frames skipped")


def test_a_resent_drop_report_is_skipped_but_a_new_one_after_new_records_is_kept() -> None:
    store = RecordingStore()
    header = stream_header(info())
    first = StreamIngest("tcp a", store)
    first.feed(header + records_frame(0, 2) + drop_frame(4))
    first.close()
    second = StreamIngest("tcp b", store)
    second.feed(header + drop_frame(4) + records_frame(2, 2) + drop_frame(4))
    (stream,) = store.streams()
    # the first drop report is a resend (same bytes, before any new records); the second,
    # after new records, is new although its bytes are the same
    assert second.duplicates == 1
    assert stream.dropped == 8 and stream.records == 4


# --- the caps ---------------------------------------------------------------------------------


def test_bounded_messages_returns_a_small_frame_unchecked() -> None:
    long = record(0, message="m" * (MAX_FIELD_CHARS + 10))
    messages: list[Message] = [long, End()]
    same, cut = bounded_messages(messages, MAX_FIELD_CHARS)  # the frame cannot hold it: unchecked
    assert same is messages and cut == 0


def test_bounded_messages_cuts_each_field_to_the_caps_and_counts_the_records() -> None:
    big = "é" * (MAX_FIELD_CHARS + 100)
    within = record(1)
    messages: list[Message] = [
        record(0, message=big, function=big),
        within,
        record(2, exception=ExceptionInfo("ValueError", big, "Traceback\n" + big)),
        record(3, args=tuple("a" * 1000 for _ in range(400))),
        Dropped(5, big),
        End(),
    ]
    out, cut = bounded_messages(messages, 10 * MAX_FIELD_CHARS)
    assert cut == 3  # the record within the caps and the non-records are not counted
    long, same, exc, args, dropped, end = out
    mark = TRUNCATION_MARK.format(100)
    assert long.message == truncate_text(big) and len(long.message) == MAX_FIELD_CHARS + len(mark)
    assert long.function is not None and mark in long.function
    assert same is within
    assert exc.exception is not None and exc.exception.type == "ValueError"
    assert mark in exc.exception.value and len(exc.exception.value) == MAX_FIELD_CHARS + len(mark)
    assert len(exc.exception.traceback) == MAX_FIELD_CHARS + len(TRUNCATION_MARK.format(110))
    assert args.args == (f"…[400 arguments left out: record over {MAX_EXTRAS_BYTES} bytes]",)
    assert dropped == Dropped(5, dropped.reason) and mark in dropped.reason
    assert end == End()
    assert bounded_record(within) is within


def test_the_peer_inflate_cap_holds_whatever_the_record_count() -> None:
    """A frame of many records may inflate to what its count allows from a file, but from
    a network peer inflating stops at MAX_PEER_PAYLOAD_SIZE, before anything is stored."""
    count = 700
    text = "z" * 9_000  # 700 records of 9 KB: about 6.3 MB inflated, a few KB deflated
    frame = deflated(encode_records([record(i, message=text) for i in range(count)]))
    inflated = len(zlib.decompress(frame[9:]))
    assert MAX_PEER_PAYLOAD_SIZE < inflated < min(payload_limit(count), MAX_PAYLOAD_SIZE)

    from_file = StreamIngest("big.rrd", RecordingStore(), network=False)
    from_file.feed(stream_header(info()) + frame)
    assert from_file.error is None and from_file.records == count

    store = RecordingStore()
    peer = StreamIngest(f"tcp {PEER}", store)
    replies = peer.feed(stream_header(info()) + records_frame(0, 1) + frame)
    assert peer.error is not None
    assert peer.error.reason == f"payload inflates beyond {MAX_PEER_PAYLOAD_SIZE} bytes"
    assert [type(m) for m in replies_of(replies)] == [Ack, Refused]
    assert state(store)[:4] == (1, 0, False, 1)  # the frame before it stays; nothing of it


def test_a_frame_just_within_the_peer_cap_is_taken() -> None:
    text = "y" * 1_000
    count = (MAX_PEER_PAYLOAD_SIZE - 200_000) // 1_020
    payload = encode_records([record(i, message=text) for i in range(count)])
    assert MAX_PEER_PAYLOAD_SIZE - 300_000 < len(payload) <= MAX_PEER_PAYLOAD_SIZE
    peer = StreamIngest(f"tcp {PEER}", RecordingStore())
    peer.feed(stream_header(info()) + deflated(payload))
    assert peer.error is None and peer.records == count


@pytest.mark.parametrize("network", [True, False])
def test_a_frame_over_what_its_record_count_allows_is_refused_before_it_is_stored(network: bool) -> None:
    store = RecordingStore()
    lines: list[str] = []
    ingest = StreamIngest("src", store, network=network, report=lines.append)
    payload = encode_records([record(0, message="x" * (payload_limit(1) + 10))])
    ingest.feed(stream_header(info()) + records_frame(0, 2) + deflated(payload))
    # under the peer's inflate cap, over the count's: refused by the count, peer or file
    assert ingest.error is not None and payload_limit(1) < len(payload) < MAX_PEER_PAYLOAD_SIZE
    assert ingest.error.reason == (
        f"frame inflates to {len(payload)} bytes for 1 record, more than a writer "
        f"within the field caps can produce ({payload_limit(1)} bytes)"
    )
    assert state(store)[:4] == (2, 0, False, 2)
    assert len(lines) == (2 if network else 1)
