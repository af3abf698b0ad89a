"""The ``otlp`` sink's export state: backlog, batches, retries, what each answer means. Sans-I/O.

:class:`ExportProtocol` is to :class:`~rerun_logging.sinks.otlp.OtlpSink` what
:class:`~rerun_logging.sinks.delivery.DeliveryProtocol` is to the connect sink: it
touches no socket, clock or thread (the shell passes ``now``). Its calls::

    write(frame, records)       per frame: held until delivered, the backlog bounded
    due(now)                    whether a request should go out now
    take(now)                   the next Batch (the one to retry first); it is in flight
    response(status, ...)       the receiver answered the batch in flight
    failed(error, now)          no answer (connection refused, reset, timed out)
    unreadable(error)           the batch's frames do not decode (never happens to ours)
    nothing_to_send()           the batch holds no log record (an END frame): done
    notices()                   what to say on stderr since the last call

Rules (the OTLP/HTTP specification's):

- 2xx: delivered. ``partial_success.rejected_log_records`` (read by the function
  given as ``read_partial``) are counted as dropped, the rest as written; said once
  per distinct message.
- 429, 502, 503, 504 and no answer at all: the batch is sent again, whole and first,
  after the backoff (:class:`~rerun_logging.backoff.Backoff`), or after the
  ``Retry-After`` the answer gave (seconds or an HTTP date, at most
  ``max_retry_after``).
- Any other status (400, 401, 404, 413...): the batch is dropped and counted;
  said once per status.

The backlog holds at most ``buffer_size`` bytes of frames (in flight included): past
it the oldest frames not in flight are dropped, counted exactly, and the next request
carries a note of how many (:func:`~.mapping.dropped_note`). A batch in flight, or
waiting to be sent again, is never dropped: the receiver may have stored it (a timed
out request), and counting it lost could count it twice.

Counters: :attr:`written` (records delivered), :attr:`dropped`, :attr:`pending`
(held or in flight), :attr:`bytes` (request bodies delivered). Every record given to
:meth:`~ExportProtocol.write` is in exactly one of the first three.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import Callable, Deque, Mapping, Tuple

from .. import format
from ..backoff import Backoff
from ..wording import binary_size, counted

Held = Tuple[bytes, int]
"""A frame held until delivered, and how many records it holds."""

RETRYABLE = frozenset({429, 502, 503, 504})
"""Statuses after which the same batch is sent again (the OTLP/HTTP specification's)."""
BACKLOG_FULL = "backlog full: the OTLP receiver was unreachable or too slow"


@dataclass(frozen=True, eq=False)
class Batch:
    """Frames sent in one request (compared by identity: a retry is the same batch)."""

    frames: tuple[Held, ...]
    records: int
    size: int
    """Bytes of its frames."""
    dropped: int = 0
    """Records dropped from the backlog before it, which its request reports."""
    reason: str = BACKLOG_FULL


def is_retryable(status: int) -> bool:
    """Whether a response with ``status`` asks for the same request again later."""
    return status in RETRYABLE


def retry_after(value: str | None, wall_now: float) -> float | None:
    """Seconds to wait that a ``Retry-After`` value asks for, or None if it asks nothing.

    ``value`` is delay-seconds (``"120"``) or an HTTP date (``"Fri, 31 Dec 1999
    23:59:59 GMT"``, read against ``wall_now``, a ``time.time()``); a date in the past
    or a negative delay is 0. Anything else is None.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is GMT
        when = when.replace(tzinfo=timezone.utc)
    return max(when.timestamp() - wall_now, 0.0)


def _no_partial(body: bytes) -> tuple[int, str]:
    return 0, ""


class ExportProtocol:
    """One ``otlp`` sink's export state. Pure: the shell passes ``now`` (monotonic seconds).

    ``timeout`` is how long a request may take before :meth:`expired`;
    ``read_partial(body)`` returns the records a 2xx body rejected and its message.
    A batch holds up to ``max_batch_records`` records and ``max_batch_bytes`` of
    frames (at least one frame, whatever its size).
    """

    def __init__(
        self,
        buffer_size: int,
        backoff: Backoff,
        timeout: float = 10.0,
        read_partial: Callable[[bytes], tuple[int, str]] = _no_partial,
        max_batch_records: int = 2048,
        max_batch_bytes: int = 1024 * 1024,
        max_retry_after: float = 3600.0,
    ) -> None:
        self.buffer_size = buffer_size
        self.backoff = backoff
        self.timeout = timeout
        self.read_partial = read_partial
        self.max_batch_records = max_batch_records
        self.max_batch_bytes = max_batch_bytes
        self.max_retry_after = max_retry_after
        self.written = 0
        self.dropped = 0
        self.bytes = 0
        self.error: str | None = None
        """What went wrong last, until a request is delivered again."""
        self.in_flight: Batch | None = None
        self.sent_at = 0.0
        self._backlog: Deque[Held] = deque()
        self._retry: Batch | None = None
        self._size = 0
        """Bytes of frames held: the backlog, the batch to retry, the batch in flight."""
        self._held = 0
        self._unreported = 0
        self._notices: list[str] = []
        self._said: set[str] = set()

    # --- the stream -------------------------------------------------------------------

    def write(self, frame: bytes, records: int) -> None:
        """Hold ``frame`` (of ``records`` records) until delivered; trim to ``buffer_size``."""
        self._backlog.append((frame, records))
        self._size += len(frame)
        self._held += records
        self._trim()

    @property
    def pending(self) -> int:
        """Records held or in flight: neither delivered nor dropped."""
        return self._held

    @property
    def held_bytes(self) -> int:
        """Bytes of frames held (in flight included)."""
        return self._size

    @property
    def undelivered(self) -> bool:
        """Whether anything waits to be sent or answered (frames, a retry, a drop note)."""
        return bool(self._backlog or self._retry or self.in_flight or self._unreported)

    # --- requests ---------------------------------------------------------------------

    @property
    def next_attempt(self) -> float:
        """When the next request may go out (after a failure; 0 when at once)."""
        return self.backoff.next_attempt

    def due(self, now: float) -> bool:
        """Whether a request should go out at ``now``: nothing in flight, something to send."""
        return (
            self.in_flight is None
            and bool(self._retry or self._backlog or self._unreported)
            and self.backoff.ready(now)
        )

    def take(self, now: float) -> Batch:
        """The batch to send now: the one to retry, else the oldest frames. It is in flight."""
        batch = self._retry
        self._retry = None
        if batch is None:
            batch = self._next_batch()
        self.in_flight = batch
        self.sent_at = now
        return batch

    @property
    def retrying(self) -> Batch | None:
        """The batch to send again first (after a failure), if any."""
        return self._retry

    def expired(self, now: float) -> bool:
        """Whether the request in flight has taken longer than ``timeout``."""
        return self.in_flight is not None and now - self.sent_at >= self.timeout

    # --- outcomes ---------------------------------------------------------------------

    def response(
        self, status: int, reason: str, headers: Mapping[str, str], body: bytes,
        now: float, wall_now: float, sent: int = 0,
    ) -> None:
        """The receiver answered the batch in flight (``headers`` with lowercase names).

        ``sent`` is the size of the request body (counted in :attr:`bytes` when delivered);
        ``wall_now`` (``time.time()``) reads a ``Retry-After`` date.
        """
        batch = self._landed()
        if 200 <= status < 300:
            rejected, message = self.read_partial(body)
            self._delivered(batch, min(rejected, batch.records), message, sent)
        elif is_retryable(status):
            delay = retry_after(headers.get("retry-after"), wall_now)
            self._again(batch, f"the receiver answered {status} {reason}".rstrip(), now, delay)
        else:
            self._count_lost(batch, batch.records)
            self.error = f"the receiver refused a request: {status} {reason}".rstrip()
            self._say_once(
                f"status {status}",
                f"{self.error}; its {counted(batch.records, 'record')} dropped (counted), "
                "as are those of every request it refuses",
            )

    def failed(self, error: str, now: float, at_once: bool = False) -> None:
        """The batch in flight got no answer (``error`` says why): it is sent again.

        ``at_once``: without waiting (a kept-alive connection the receiver had closed).
        """
        batch = self._landed()
        if at_once:
            self._retry = batch
            return
        self._again(batch, error, now, None)

    def unreadable(self, error: str) -> None:
        """The batch in flight cannot be made a request (its frames do not decode): dropped."""
        batch = self._landed()
        self._count_lost(batch, batch.records)
        self._say_once(
            "unreadable",
            f"records that cannot be sent as OTLP ({error}): {counted(batch.records, 'record')} "
            "dropped (counted)",
        )

    def nothing_to_send(self) -> None:
        """The batch in flight holds no log record and no drop note (an END frame): done.

        Its records, if it claimed any, are counted as dropped: none of them decoded."""
        batch = self._landed()
        self._count_lost(batch, batch.records)

    def notices(self) -> list[str]:
        """What to say since the last call (each line once), oldest first."""
        notices, self._notices = self._notices, []
        return notices

    # --- inside -----------------------------------------------------------------------

    def _next_batch(self) -> Batch:
        frames: list[Held] = []
        records = size = 0
        backlog = self._backlog
        while backlog:
            frame, count = backlog[0]
            if frames and (
                records + count > self.max_batch_records or size + len(frame) > self.max_batch_bytes
            ):
                break
            backlog.popleft()
            frames.append((frame, count))
            records += count
            size += len(frame)
        dropped, self._unreported = self._unreported, 0
        return Batch(tuple(frames), records, size, dropped)

    def _landed(self) -> Batch:
        batch = self.in_flight
        if batch is None:
            raise ValueError("no request is in flight")
        self.in_flight = None
        return batch

    def _delivered(self, batch: Batch, rejected: int, message: str, sent: int) -> None:
        self._release(batch)
        self.written += batch.records - rejected
        self.dropped += rejected
        self.bytes += sent
        self.backoff.success()
        if rejected:
            self._say_once(
                f"partial {message}",
                f"the receiver rejected {rejected} of {counted(batch.records, 'record')}"
                f"{f' ({message})' if message else ''}; they are dropped (counted)",
            )
        if self.error is not None:
            self.error = None
            self._notices.append("delivering again")

    def _again(self, batch: Batch, error: str, now: float, delay: float | None) -> None:
        self._retry = batch
        self.backoff.failure(now)
        if delay is not None:
            self.backoff.next_attempt = now + min(delay, self.max_retry_after)
        if error != self.error:
            self.error = error
            self._notices.append(
                f"{error}; keeping up to {binary_size(self.buffer_size)} of records and retrying"
            )

    def _count_lost(self, batch: Batch, records: int) -> None:
        self._release(batch)
        self.dropped += records

    def _release(self, batch: Batch) -> None:
        self._size -= batch.size
        self._held -= batch.records

    def _say_once(self, key: str, text: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self._notices.append(text)

    def _trim(self) -> None:
        """Drop the oldest frames of the backlog while over ``buffer_size``.

        The drop reports a dropped frame held (the handler's) are carried into the
        next note, so no loss goes unreported.
        """
        backlog = self._backlog
        while self._size > self.buffer_size and backlog:
            frame, records = backlog.popleft()
            self._size -= len(frame)
            self._held -= records
            self.dropped += records
            self._unreported += records + format.reported_drops(frame)
