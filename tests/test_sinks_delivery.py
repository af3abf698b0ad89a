"""The connect sink's sans-I/O delivery protocol: no sockets, no clock, no threads.

Its peer is a real :class:`StreamIngest` on a real store wherever that makes a
test stronger: the protocol's output is fed to the ingest, the ingest's replies
are fed back, and what the store ends up holding is checked (every record once,
in order; every loss counted). Replies are split at every byte offset, and
connections are cut at every byte of what was sent.
"""

from __future__ import annotations

import logging
from typing import Iterable

import pytest

from rerun_logging import format
from rerun_logging.backoff import Backoff
from rerun_logging.format import (
    HEADER,
    VIEWER_HELLO,
    VIEWER_MAGIC,
    Record,
    RecordingInfo,
    StreamDecoder,
    ack_message,
    encode_frame,
    encode_records,
    end_message,
    refused_message,
)
from rerun_logging.sinks.delivery import (
    Acknowledged,
    DeliveryProtocol,
    Failed,
    Greeted,
    NotAViewer,
)
from rerun_logging.sinks.tcp import ConnectSink
from rerun_logging.viewer.ingest import StreamIngest
from rerun_logging.viewer.store import RecordingStore

START = 1_700_000_000_000_000_000
INFO = RecordingInfo("delivery-test", "rec-delivery", START, "testhost", 4242, "3.11.0", "0.1.0")
STREAM_HEADER = format.stream_header(INFO)
END = encode_frame(end_message())
WHERE = "127.0.0.1:5555"
REASON = "backlog full: the viewer was unreachable or too slow"
RECORDING_HEADER = format.MAGIC + b"\x00\x00"
"""A recording's header where a viewer's greeting should be."""


def records_frame(first: int, count: int) -> bytes:
    return encode_frame(encode_records([
        Record(seq=first + i, time_ns=START + i, level=logging.INFO, level_name="INFO",
               entity_path="app", logger="app", message=f"message {first + i:06d}", process=4242)
        for i in range(count)
    ]))


def ack(frames: int) -> bytes:
    return encode_frame(ack_message(frames))


def new_protocol(buffer_size: int = 1 << 20) -> DeliveryProtocol:
    protocol = DeliveryProtocol(f"connect:{WHERE}", WHERE, buffer_size)
    protocol.start(STREAM_HEADER)
    return protocol


def greet(protocol: DeliveryProtocol, hello: bytes = VIEWER_HELLO) -> list[object]:
    protocol.connected()
    protocol.receive_data(hello)
    return list(protocol.events_received())


def send_all(protocol: DeliveryProtocol, step: int | None = None) -> bytes:
    """Everything the protocol has to send, as a socket taking ``step`` bytes a call would."""
    out = bytearray()
    while data := protocol.data_to_send():
        taken = bytes(data[:step] if step else data)
        out += taken
        protocol.data_sent(len(taken))
    return bytes(out)


def send_items(protocol: DeliveryProtocol) -> list[bytes]:
    """What the protocol sends, item by item (header, frames)."""
    items = []
    while data := protocol.data_to_send():
        items.append(bytes(data))
        protocol.data_sent(len(data))
    return items


class Viewer:
    """A viewer without sockets: a store, and one real ingest per connection."""

    def __init__(self) -> None:
        self.store = RecordingStore()
        self.lines: list[str] = []
        self.ingest = self.connect()

    def connect(self) -> StreamIngest:
        self.ingest = StreamIngest(f"tcp {WHERE}", self.store, name=WHERE, report=self.lines.append)
        return self.ingest

    def take(self, data: bytes) -> bytes:
        """Feed the connection's ingest; its replies."""
        self.ingest.receive_data(data)
        return b"".join(self.ingest.data_to_send())

    def records(self) -> list[int]:
        """Sequence numbers of the records stored, in store order."""
        (stream,) = self.store.streams()
        decoder = StreamDecoder("store")
        decoder.feed(HEADER + b"".join(self.store.frames(stream.key)))
        return [m.seq for m in decoder.messages() if isinstance(m, Record)]

    def dropped(self) -> int:
        (stream,) = self.store.streams()
        return stream.dropped


def failure(events: Iterable[object]) -> Exception:
    (failed,) = [e for e in events if isinstance(e, Failed)]
    return failed.error


def splits(data: bytes) -> Iterable[list[bytes]]:
    """``data`` in two parts at every offset, then one byte at a time."""
    for cut in range(len(data) + 1):
        yield [data[:cut], data[cut:]]
    yield [data[i:i + 1] for i in range(len(data))]


# --- the greeting ------------------------------------------------------------------------


@pytest.mark.parametrize("cut", range(len(VIEWER_HELLO) + 1))
def test_the_greeting_is_judged_once_whole_at_every_split(cut: int) -> None:
    protocol = new_protocol()
    protocol.write(records_frame(0, 1), 1)
    protocol.connected()
    protocol.receive_data(VIEWER_HELLO[:cut])
    if cut < len(VIEWER_HELLO):
        assert protocol.greeting_needed == len(VIEWER_HELLO) - cut
        assert protocol.events_received() == [] and not protocol.data_to_send()
    protocol.receive_data(VIEWER_HELLO[cut:])
    assert protocol.events_received() == [Greeted(format.FORMAT_MAJOR, format.FORMAT_MINOR)]
    assert protocol.greeting_needed == 0 and protocol.open
    assert send_items(protocol) == [STREAM_HEADER, records_frame(0, 1)]


def test_the_greeting_one_byte_at_a_time() -> None:
    protocol = new_protocol()
    protocol.connected()
    for i in range(len(VIEWER_HELLO)):
        assert not protocol.open
        protocol.receive_data(VIEWER_HELLO[i:i + 1])
    assert protocol.events_received() == [Greeted(format.FORMAT_MAJOR, format.FORMAT_MINOR)]


def test_a_newer_minor_is_a_viewer() -> None:
    newer = VIEWER_MAGIC + bytes((format.FORMAT_MAJOR, format.FORMAT_MINOR + 1))
    assert greet(new_protocol(), newer) == [Greeted(format.FORMAT_MAJOR, format.FORMAT_MINOR + 1)]


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n",
         f"{WHERE} is not a rerun-logging viewer (it answered b'HTTP/1.1 4')"),
        (RECORDING_HEADER, f"{WHERE} is not a rerun-logging viewer (it answered {RECORDING_HEADER!r})"),
        (VIEWER_MAGIC + bytes((format.FORMAT_MAJOR + 1, 0)),
         f"the viewer at {WHERE} speaks format {format.FORMAT_MAJOR + 1}.0, this app "
         f"{format.FORMAT_MAJOR}.{format.FORMAT_MINOR}"),
        (VIEWER_MAGIC + bytes((format.FORMAT_MAJOR - 1, 9)),
         f"the viewer at {WHERE} speaks format {format.FORMAT_MAJOR - 1}.9, this app "
         f"{format.FORMAT_MAJOR}.{format.FORMAT_MINOR}"),
    ],
)
def test_not_a_viewer_at_every_split(answer: bytes, says: str) -> None:
    for parts in splits(answer):
        protocol = new_protocol()
        protocol.write(records_frame(0, 1), 1)
        protocol.connected()
        for part in parts:
            protocol.receive_data(part)
        protocol.greeting_ended(1.0)  # the shell stops waiting: nothing changes any more
        error = failure(protocol.events_received())
        assert isinstance(error, NotAViewer) and isinstance(error, ConnectionError)
        assert str(error) == says and error.silent is False
        assert not protocol.data_to_send() and not protocol.open
        protocol.receive_data(ack(1))  # a failed connection takes nothing more
        assert protocol.events_received() == [] and protocol.pending == 1


def test_a_peer_that_says_nothing_is_silent_and_named_with_the_wait() -> None:
    protocol = new_protocol()
    protocol.connected()
    protocol.greeting_ended(2.5)
    error = failure(protocol.events_received())
    assert isinstance(error, NotAViewer) and error.silent is True
    assert str(error) == (f"{WHERE} is not a rerun-logging viewer (it said nothing within 2.5s; "
                          "or it is a viewer too busy to greet)")


def test_a_greeting_cut_short_is_what_it_answered() -> None:
    protocol = new_protocol()
    protocol.connected()
    protocol.receive_data(VIEWER_HELLO[:6])
    protocol.greeting_ended(1.0)  # EOF or timeout with part of a greeting
    error = failure(protocol.events_received())
    assert isinstance(error, NotAViewer) and not error.silent
    assert str(error) == f"{WHERE} is not a rerun-logging viewer (it answered {VIEWER_HELLO[:6]!r})"


def test_greeting_ended_after_a_good_greeting_does_nothing() -> None:
    protocol = new_protocol()
    greet(protocol)
    protocol.greeting_ended(1.0)
    assert protocol.events_received() == [] and protocol.open


def test_a_connection_lost_before_the_greeting_resends_nothing_and_starts_over() -> None:
    protocol = new_protocol()
    frames = [records_frame(0, 2), records_frame(2, 2)]
    for frame in frames:
        protocol.write(frame, 2)
    protocol.connected()
    protocol.receive_data(VIEWER_HELLO[:4])
    protocol.connection_lost()
    assert list(protocol.to_resend) == [] and protocol.pending == 4
    greet(protocol)  # the new connection needs a whole greeting of its own
    assert send_items(protocol) == [STREAM_HEADER, *frames]


# --- acknowledgements ----------------------------------------------------------------------


def test_every_split_of_the_viewers_replies_releases_exactly_what_they_ack() -> None:
    frames = [(records_frame(0, 3), 3), (records_frame(3, 2), 2), (END, 0)]
    viewer = Viewer()
    replies = viewer.take(STREAM_HEADER + frames[0][0]) + viewer.take(frames[1][0]) + viewer.take(END)
    assert replies == ack(1) + ack(2) + ack(3)  # what a real viewer answers, frame by frame
    ends = [len(ack(1)), len(ack(1) + ack(2)), len(replies)]
    for parts in splits(VIEWER_HELLO + replies):
        protocol = new_protocol()
        for frame, records in frames:
            protocol.write(frame, records)
        protocol.connected()
        fed = 0
        released: list[Acknowledged] = []
        for part in parts:
            if not protocol.open:  # as the shell reads it: the greeting alone first
                greeting, part = part[:protocol.greeting_needed], part[protocol.greeting_needed:]
                protocol.receive_data(greeting)
                fed += len(greeting)
                if protocol.open:
                    send_all(protocol)  # every frame is out before any ACK can come
            protocol.receive_data(part)
            fed += len(part)
            events = protocol.events_received()
            released += [e for e in events if isinstance(e, Acknowledged)]
            whole = sum(1 for end in ends if end <= fed - len(VIEWER_HELLO))
            assert protocol.written == sum(r for _, r in frames[:whole]), parts
            assert protocol.pending == sum(r for _, r in frames[whole:])
        assert sum(e.frames for e in released) == 3 and sum(e.records for e in released) == 5
        assert protocol.bytes == sum(len(f) for f, _ in frames) == sum(e.size for e in released)
        assert not protocol.undelivered and protocol.held_bytes == 0 and protocol.dropped == 0


def test_acks_and_a_real_ingest_deliver_everything_once_in_order() -> None:
    viewer = Viewer()
    protocol = new_protocol()
    greet(protocol)
    for i in range(20):
        protocol.write(records_frame(i * 5, 5), 5)
        protocol.receive_data(viewer.take(send_all(protocol, step=7)))
    protocol.end(END)
    protocol.receive_data(viewer.take(send_all(protocol)))
    assert protocol.ended and not protocol.undelivered
    assert (protocol.written, protocol.pending, protocol.dropped) == (100, 0, 0)
    assert viewer.records() == list(range(100))
    viewer.ingest.close()
    assert viewer.lines[-1].endswith("disconnected: ended cleanly; 100 records")


def test_an_ack_behind_an_earlier_one_releases_nothing() -> None:
    protocol = new_protocol()
    greet(protocol)
    for i in range(4):
        protocol.write(records_frame(i, 1), 1)
    send_all(protocol)
    protocol.receive_data(ack(2) + ack(1))
    assert protocol.written == 2
    protocol.receive_data(ack(3))
    assert [e.frames for e in protocol.events_received() if isinstance(e, Acknowledged)] == [2, 1]
    assert (protocol.written, protocol.pending) == (3, 1)


def test_each_connection_starts_with_the_header_again() -> None:
    protocol = new_protocol()
    greet(protocol)
    send_all(protocol)
    assert protocol.header_sent
    protocol.connection_lost()
    assert protocol.header_sent is False and not protocol.data_to_send()
    greet(protocol)
    assert send_items(protocol) == [STREAM_HEADER]


def test_data_to_send_repeats_until_the_socket_takes_it() -> None:
    protocol = new_protocol()
    greet(protocol)
    assert bytes(protocol.data_to_send()) == bytes(protocol.data_to_send()) == STREAM_HEADER
    protocol.data_sent(3)
    assert bytes(protocol.data_to_send()) == STREAM_HEADER[3:]
    protocol.data_sent(len(STREAM_HEADER) - 3)
    assert protocol.header_sent and not protocol.data_to_send()
    protocol.data_sent(0)
    with pytest.raises(ValueError):
        protocol.data_sent(1)


def test_nothing_is_sent_without_a_greeted_connection() -> None:
    protocol = new_protocol()
    protocol.write(records_frame(0, 1), 1)
    assert not protocol.data_to_send()
    protocol.connected()
    assert not protocol.data_to_send()


def test_a_refusal_fails_the_connection_after_the_acks_before_it() -> None:
    protocol = new_protocol()
    greet(protocol)
    protocol.write(records_frame(0, 2), 2)
    protocol.write(records_frame(2, 2), 2)
    send_all(protocol)
    protocol.receive_data(ack(1) + encode_frame(refused_message("too big")) + ack(2))
    events = protocol.events_received()
    assert isinstance(events[0], Acknowledged) and events[0].records == 2
    error = failure(events)
    assert type(error) is ConnectionRefusedError
    assert str(error) == "the viewer refused the stream: too big"
    assert protocol.written == 2 and protocol.pending == 2  # the ACK after REFUSED is not read
    protocol.connection_lost()
    greet(protocol)
    assert send_items(protocol) == [STREAM_HEADER, records_frame(2, 2)]


def test_garbled_replies_fail_the_connection_as_a_value_error() -> None:
    protocol = new_protocol()
    protocol.connected()
    protocol.receive_data(VIEWER_HELLO + b"\xff" * 64)
    events = protocol.events_received()
    assert events[0] == Greeted(format.FORMAT_MAJOR, format.FORMAT_MINOR)
    assert isinstance(failure(events), ValueError) and not protocol.data_to_send()


# --- faults: every byte a connection may die at -------------------------------------------


def deliver(protocol: DeliveryProtocol, viewer: Viewer) -> None:
    """A new connection to ``viewer`` that works: greet, send all, feed back every reply."""
    viewer.connect()
    greet(protocol)
    protocol.receive_data(viewer.take(send_all(protocol)))
    assert [e for e in protocol.events_received() if isinstance(e, Failed)] == []


FRAMES = [(records_frame(0, 3), 3), (records_frame(3, 4), 4), (END, 0)]


@pytest.mark.parametrize("acked", [False, True])
def test_a_connection_lost_at_every_byte_delivers_everything_once(acked: bool) -> None:
    """The viewer got ``cut`` bytes of what the socket took, and (``acked``) answered them."""
    sent = STREAM_HEADER + b"".join(f for f, _ in FRAMES)
    for cut in range(len(sent) + 1):
        viewer, protocol = Viewer(), new_protocol()
        for frame, records in FRAMES:
            protocol.write(frame, records)
        greet(protocol)
        assert send_all(protocol, step=11) == sent
        replies = viewer.take(sent[:cut])
        if acked:
            protocol.receive_data(replies)
        viewer.ingest.close()
        protocol.connection_lost()
        assert protocol.written + protocol.pending == 7 and protocol.dropped == 0
        deliver(protocol, viewer)
        assert viewer.records() == list(range(7)), cut
        assert (protocol.written, protocol.pending, protocol.undelivered) == (7, 0, False)
        assert next(viewer.store.streams()).ended


def test_after_partial_acks_only_the_unacknowledged_frames_are_resent() -> None:
    viewer, protocol = Viewer(), new_protocol()
    for frame, records in FRAMES:
        protocol.write(frame, records)
    greet(protocol)
    replies = b"".join(viewer.take(item) for item in send_items(protocol))
    assert replies == ack(1) + ack(2) + ack(3)
    protocol.receive_data(replies[: len(ack(1)) + 3])  # ACK 1 and part of ACK 2
    assert protocol.written == 3
    protocol.connection_lost()
    assert list(protocol.to_resend) == FRAMES[1:]
    viewer.connect()
    greet(protocol)
    assert send_items(protocol) == [STREAM_HEADER, FRAMES[1][0], END]


def test_a_frame_half_sent_when_the_connection_dies_is_sent_whole_after_the_header() -> None:
    protocol = new_protocol()
    protocol.write(FRAMES[0][0], 3)
    greet(protocol)
    send_all(protocol)  # the header
    protocol.write(FRAMES[1][0], 4)
    protocol.data_to_send()
    protocol.data_sent(5)
    protocol.connection_lost()
    assert [f for f, _ in protocol.to_resend] == [FRAMES[0][0]]
    assert [f for f, _ in protocol.unsent] == [FRAMES[1][0]]
    greet(protocol)
    assert send_items(protocol) == [STREAM_HEADER, FRAMES[0][0], FRAMES[1][0]]


def test_a_connection_lost_during_the_resend_keeps_the_order() -> None:
    viewer, protocol = Viewer(), new_protocol()
    for frame, records in FRAMES:
        protocol.write(frame, records)
    greet(protocol)
    send_all(protocol)
    protocol.connection_lost()  # nothing acknowledged: all three to resend
    greet(protocol)
    assert bytes(protocol.data_to_send()) == STREAM_HEADER
    protocol.data_sent(len(STREAM_HEADER))
    assert bytes(protocol.data_to_send()) == FRAMES[0][0]
    protocol.data_sent(len(FRAMES[0][0]))  # the first resent frame, whole
    assert bytes(protocol.data_to_send()) == FRAMES[1][0]
    protocol.data_sent(4)  # part of the second
    protocol.connection_lost()
    assert list(protocol.to_resend) == FRAMES  # back in order, the half-sent one in place
    deliver(protocol, viewer)
    assert viewer.records() == list(range(7)) and next(viewer.store.streams()).ended
    assert (protocol.written, protocol.undelivered) == (7, False)


def test_a_second_connection_lost_at_every_byte_of_the_resend() -> None:
    first = STREAM_HEADER + FRAMES[0][0]
    second = STREAM_HEADER + FRAMES[1][0] + END
    for cut in range(len(second) + 1):
        viewer, protocol = Viewer(), new_protocol()
        for frame, records in FRAMES:
            protocol.write(frame, records)
        greet(protocol)
        assert send_all(protocol).startswith(first)
        protocol.receive_data(viewer.take(first))  # ACK 1: the rest dies unacknowledged
        viewer.ingest.close()
        protocol.connection_lost()
        viewer.connect()
        greet(protocol)
        assert send_all(protocol, step=13) == second
        protocol.receive_data(viewer.take(second[:cut]))
        viewer.ingest.close()
        protocol.connection_lost()
        deliver(protocol, viewer)
        assert viewer.records() == list(range(7)), cut
        assert (protocol.written, protocol.pending) == (7, 0)


# --- the backlog bound ---------------------------------------------------------------------


def test_overflow_drops_the_oldest_unsent_frames_exactly_and_reports_them() -> None:
    frames = [records_frame(i * 10, 10) for i in range(40)]
    bound = sum(len(f) for f in frames[-8:])  # room for the newest eight
    protocol = new_protocol(buffer_size=bound)
    for frame in frames:
        protocol.write(frame, 10)
        assert protocol.held_bytes <= bound
    assert [f for f, _ in protocol.unsent] == frames[-8:]
    assert (protocol.dropped, protocol.pending, protocol.written) == (320, 80, 0)
    viewer = Viewer()
    greet(protocol)
    items = send_items(protocol)
    assert items[0] == STREAM_HEADER and items[2:] == frames[-8:]
    report = StreamDecoder("report")
    report.feed(HEADER + items[1])
    (dropped,) = report.messages()
    assert dropped == format.Dropped(320, REASON)
    protocol.receive_data(viewer.take(b"".join(items)))
    assert viewer.dropped() == 320 and viewer.records() == list(range(320, 400))
    assert (protocol.written, protocol.dropped, protocol.pending) == (80, 320, 0)


def test_a_dropped_report_that_is_dropped_carries_its_count_into_the_next() -> None:
    frames = [records_frame(i * 10, 10) for i in range(30)]
    protocol = new_protocol(buffer_size=3 * len(frames[0]))
    for frame in frames[:10]:
        protocol.write(frame, 10)
    first_loss = protocol.dropped
    assert first_loss > 0 and first_loss + protocol.pending == 100
    greet(protocol)
    assert bytes(protocol.data_to_send()) == STREAM_HEADER
    protocol.data_sent(len(STREAM_HEADER))
    assert protocol.data_to_send()  # the report of the first loss, made and in flight
    report, records = protocol.unsent[0]
    assert records == 0 and report not in frames
    protocol.connection_lost()  # before the socket took any of it
    for frame in frames[10:]:
        protocol.write(frame, 10)
    assert all(records == 10 for _, records in protocol.unsent)  # the report was dropped too
    assert protocol.dropped + protocol.pending == 300
    viewer = Viewer()
    deliver(protocol, viewer)
    assert viewer.dropped() == protocol.dropped  # the first loss was carried into the next report
    assert viewer.records() == list(range(protocol.dropped, 300))
    assert protocol.written + protocol.dropped == 300


def test_the_handlers_own_dropped_frames_count_into_the_report_when_dropped() -> None:
    handler_report = encode_frame(format.dropped_message(5, "queue full"))
    protocol = new_protocol(buffer_size=len(records_frame(0, 10)))
    protocol.write(handler_report, 0)
    protocol.write(records_frame(0, 10), 10)
    assert protocol.dropped == 0 and protocol.pending == 10  # the handler's report went
    viewer = Viewer()
    deliver(protocol, viewer)
    assert viewer.dropped() == 5  # its 5 are reported all the same


def test_frames_sent_are_never_dropped_whatever_the_backlog() -> None:
    sent = [records_frame(i * 10, 10) for i in range(4)]
    protocol = new_protocol(buffer_size=sum(len(f) for f in sent))
    greet(protocol)
    for frame in sent:
        protocol.write(frame, 10)
        send_all(protocol)  # taken by the socket, never acknowledged
    protocol.connection_lost()
    for i in range(4, 30):
        protocol.write(records_frame(i * 10, 10), 10)  # no room: each is dropped at once
    assert [f for f, _ in protocol.to_resend] == sent and not protocol.unsent
    assert (protocol.dropped, protocol.pending) == (260, 40)
    viewer = Viewer()
    deliver(protocol, viewer)
    assert viewer.records() == list(range(40)) and viewer.dropped() == 260
    assert (protocol.written, protocol.dropped, protocol.pending) == (40, 260, 0)


def test_the_frame_in_flight_is_never_dropped() -> None:
    frames = [records_frame(i * 10, 10) for i in range(10)]
    protocol = new_protocol(buffer_size=len(frames[0]))
    greet(protocol)
    send_all(protocol)  # the header
    protocol.write(frames[0], 10)
    assert bytes(protocol.data_to_send()) == frames[0]
    protocol.data_sent(3)
    for frame in frames[1:]:
        protocol.write(frame, 10)
    assert [f for f, _ in protocol.unsent] == [frames[0]]  # each newer one went instead
    assert bytes(protocol.data_to_send()) == frames[0][3:]
    assert protocol.dropped == 90


# --- the shell's counters are the protocol's ---------------------------------------------


def test_the_connect_sink_counts_through_its_protocol() -> None:
    sink = ConnectSink("127.0.0.1", 9, 1024, Backoff())
    sink.write_failed(3, RuntimeError("a bug"))  # the flusher's call when write() raised
    assert sink.protocol.dropped == 3 and sink.stats().dropped == 3
    sink.protocol.written, sink.protocol.bytes = 5, 50
    stats = sink.stats()
    assert (stats.written, stats.bytes, stats.pending, sink.buffer_size) == (5, 50, 0, 1024)


# --- the ingest speaks the same convention --------------------------------------------------


def test_the_ingest_coalesces_acks_it_was_not_asked_for() -> None:
    viewer = Viewer()
    ingest = viewer.ingest
    ingest.receive_data(STREAM_HEADER)
    for i in range(5):
        ingest.receive_data(records_frame(i, 1))
    assert ingest.data_to_send() == [ack(5)] and ingest.data_to_send() == []


def test_the_ingest_sends_the_ack_before_its_refusal_once() -> None:
    ingest = Viewer().ingest
    ingest.receive_data(STREAM_HEADER + records_frame(0, 1) + b"\x00" * 9)
    first = ingest.data_to_send()
    assert first[0] == ack(1) and len(first) == 2 and ingest.finished
    decoder = StreamDecoder("replies", magic=VIEWER_MAGIC)
    decoder.feed(VIEWER_HELLO + first[1])
    (refused,) = decoder.messages()
    assert isinstance(refused, format.Refused)
    ingest.receive_data(b"more")
    assert ingest.data_to_send() == []
