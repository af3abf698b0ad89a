"""The otlp sink's export state (rerun_logging.otlp.delivery): sans-I/O, no socket, no clock."""

from __future__ import annotations

from email.utils import formatdate

import pytest

from rerun_logging import format
from rerun_logging.backoff import Backoff
from rerun_logging.format import Record
from rerun_logging.otlp.delivery import ExportProtocol, is_retryable, retry_after


def frame(records: int, pad: int = 0) -> bytes:
    rows = [
        Record(seq=i, time_ns=i, level=20, level_name="INFO", entity_path="a", logger="a",
               message="x" * pad)
        for i in range(records)
    ]
    return format.encode_frame(format.encode_records(rows), compress=False)


def protocol(buffer_size: int = 1 << 20, **kwargs: object) -> ExportProtocol:
    backoff = Backoff(1.0, 2.0, 8.0, jitter=0.0)
    return ExportProtocol(buffer_size, backoff, **kwargs)  # type: ignore[arg-type]


def settled(p: ExportProtocol, records: int) -> bool:
    return p.written + p.dropped + p.pending == records


# --- Retry-After and statuses -----------------------------------------------------------


@pytest.mark.parametrize("value, seconds", [
    ("120", 120.0), (" 3 ", 3.0), ("0", 0.0), ("1.5", 1.5), ("-4", 0.0),
    (None, None), ("soon", None), ("nan", None), ("inf", None), ("", None),
])
def test_retry_after_seconds(value: str | None, seconds: float | None) -> None:
    assert retry_after(value, 1000.0) == seconds


def test_retry_after_an_http_date() -> None:
    now = 1_800_000_000.0
    assert retry_after(formatdate(now + 30, usegmt=True), now) == pytest.approx(30.0)
    assert retry_after(formatdate(now - 30, usegmt=True), now) == 0.0
    assert retry_after("Sun, 06 Nov 1994 08:49:37", 0.0) == pytest.approx(784111777.0)


def test_which_statuses_are_retried() -> None:
    assert [s for s in (200, 400, 401, 404, 408, 413, 429, 500, 502, 503, 504) if is_retryable(s)] == [
        429, 502, 503, 504,
    ]


# --- batches ----------------------------------------------------------------------------


def test_frames_are_batched_up_to_the_bounds() -> None:
    p = protocol(max_batch_records=5)
    for _ in range(4):
        p.write(frame(2), 2)
    first = p.take(0.0)
    assert (len(first.frames), first.records) == (2, 4)
    assert not p.due(0.0)  # one request at a time
    p.response(200, "OK", {}, b"", 0.0, 0.0, sent=10)
    second = p.take(0.0)
    assert second.records == 4
    p.response(200, "OK", {}, b"", 0.0, 0.0, sent=10)
    assert (p.written, p.pending, p.bytes, p.held_bytes) == (8, 0, 20, 0)
    assert not p.undelivered and not p.due(0.0)


def test_a_frame_larger_than_a_batch_goes_alone() -> None:
    p = protocol(max_batch_bytes=10)
    p.write(frame(3), 3)
    p.write(frame(1), 1)
    assert p.take(0.0).records == 3


# --- outcomes ---------------------------------------------------------------------------


def test_a_retryable_status_sends_the_same_batch_again_after_the_backoff() -> None:
    p = protocol()
    p.write(frame(3), 3)
    batch = p.take(10.0)
    p.response(503, "Service Unavailable", {}, b"", 10.0, 0.0)
    assert p.pending == 3 and p.retrying is batch
    assert not p.due(10.5) and p.due(11.0)  # retryStart 1 s, no jitter
    p.write(frame(1), 1)
    assert p.take(11.0) is batch  # whole and first
    p.response(502, "Bad Gateway", {}, b"", 11.0, 0.0)
    assert not p.due(12.9) and p.due(13.0)  # doubled
    p.take(13.0)
    p.response(200, "OK", {}, b"", 13.0, 0.0)
    assert p.written == 3 and p.pending == 1 and p.error is None
    notices = p.notices()
    assert len(notices) == 3 and notices[-1] == "delivering again"
    assert "503" in notices[0] and "502" in notices[1]


def test_retry_after_wins_over_the_backoff() -> None:
    p = protocol(max_retry_after=60.0)
    p.write(frame(1), 1)
    p.take(0.0)
    p.response(429, "Too Many Requests", {"retry-after": "7"}, b"", 0.0, 0.0)
    assert not p.due(6.9) and p.due(7.0)
    p.take(7.0)
    p.response(503, "", {"retry-after": formatdate(1_000_000 + 3, usegmt=True)}, b"", 7.0, 1_000_000.0)
    assert p.next_attempt == pytest.approx(10.0)
    p.take(10.0)
    p.response(503, "", {"retry-after": "86400"}, b"", 10.0, 0.0)
    assert p.next_attempt == 70.0  # at most max_retry_after


def test_no_answer_is_retried_and_said_once_per_error() -> None:
    p = protocol()
    p.write(frame(2), 2)
    for now in (0.0, 1.0, 3.0):
        p.take(now)
        p.failed("connection refused", now)
    assert len(p.notices()) == 1 and p.pending == 2 and p.error == "connection refused"


def test_a_stale_connection_is_retried_at_once() -> None:
    p = protocol()
    p.write(frame(2), 2)
    batch = p.take(0.0)
    p.failed("reset", 0.0, at_once=True)
    assert p.due(0.0) and p.take(0.0) is batch and p.notices() == []


def test_a_refused_request_is_dropped_counted_and_said_once() -> None:
    p = protocol()
    for records in (2, 3):
        p.write(frame(records), records)
        p.take(0.0)
        p.response(400, "Bad Request", {}, b"", 0.0, 0.0)
    assert (p.written, p.dropped, p.pending) == (0, 5, 0)
    (notice,) = p.notices()
    assert "400 Bad Request" in notice and "dropped" in notice
    p.write(frame(1), 1)
    p.take(0.0)
    p.response(401, "Unauthorized", {}, b"", 0.0, 0.0)
    assert len(p.notices()) == 1  # another status: said too


def test_partial_success_counts_the_rejected_as_dropped() -> None:
    p = protocol(read_partial=lambda body: (int(body), "too old") if body else (0, ""))
    p.write(frame(5), 5)
    p.take(0.0)
    p.response(200, "OK", {}, b"2", 0.0, 0.0)
    assert (p.written, p.dropped) == (3, 2)
    p.write(frame(1), 1)
    p.take(0.0)
    p.response(200, "OK", {}, b"9", 0.0, 0.0)  # more than it held: all of them
    assert (p.written, p.dropped) == (3, 3)
    (notice,) = p.notices()  # one message, said once
    assert "rejected 2 of 5" in notice and "too old" in notice


def test_unreadable_frames_and_empty_batches() -> None:
    p = protocol()
    p.write(b"junk", 4)
    p.take(0.0)
    p.unreadable("bad frame")
    p.write(format.encode_frame(format.end_message()), 0)
    p.take(0.0)
    p.nothing_to_send()
    assert (p.written, p.dropped, p.pending, p.held_bytes) == (0, 4, 0, 0)
    assert len(p.notices()) == 1


def test_an_outcome_without_a_request_in_flight_is_an_error() -> None:
    with pytest.raises(ValueError):
        protocol().failed("x", 0.0)


# --- the bound --------------------------------------------------------------------------


def test_the_backlog_drops_the_oldest_frames_counted_exactly() -> None:
    size = len(frame(10, pad=50))
    p = protocol(buffer_size=size * 3)
    written = 0
    for _ in range(10):
        p.write(frame(10, pad=50), 10)
        written += 10
        assert p.held_bytes <= size * 3
        assert settled(p, written)
    assert (p.dropped, p.pending) == (70, 30)
    batch = p.take(0.0)
    assert batch.dropped == 70  # its request says so
    p.response(200, "OK", {}, b"", 0.0, 0.0)
    assert settled(p, written) and p.written == batch.records


def test_a_batch_in_flight_or_to_retry_is_never_dropped() -> None:
    size = len(frame(10, pad=50))
    p = protocol(buffer_size=size * 2, max_batch_records=10)
    p.write(frame(10, pad=50), 10)
    batch = p.take(0.0)
    for _ in range(5):
        p.write(frame(10, pad=50), 10)
    assert p.in_flight is batch and p.pending == 20 and p.dropped == 40
    p.failed("timed out", 0.0)
    for _ in range(5):
        p.write(frame(10, pad=50), 10)
    assert p.retrying is batch and p.pending == 20 and settled(p, 110)


def test_drop_reports_inside_a_dropped_frame_are_carried_on() -> None:
    reported = format.encode_frame(format.dropped_message(7, "queue full") + format.encode_records([
        Record(seq=0, time_ns=0, level=20, level_name="INFO", entity_path="a", logger="a", message="m")
    ]))
    p = protocol(buffer_size=len(reported))
    p.write(reported, 1)
    p.write(frame(1), 1)  # pushes the first out
    assert p.dropped == 1
    assert p.take(0.0).dropped == 1 + 7


def test_only_a_drop_note_left_is_still_sent() -> None:
    p = protocol(buffer_size=10)
    p.write(frame(3), 3)  # larger than the whole bound: dropped at once
    assert p.dropped == 3 and p.pending == 0 and p.undelivered and p.due(0.0)
    batch = p.take(0.0)
    assert (batch.frames, batch.records, batch.dropped) == ((), 0, 3)


def test_expiry() -> None:
    p = protocol(timeout=2.0)
    p.write(frame(1), 1)
    assert not p.expired(100.0)  # nothing in flight
    p.take(100.0)
    assert not p.expired(101.9) and p.expired(102.0)
