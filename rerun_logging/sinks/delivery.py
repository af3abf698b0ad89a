"""The client half of the TCP protocol: what to send a viewer, what it acknowledged. Sans-I/O.

:class:`DeliveryProtocol` is to :class:`~.tcp.ConnectSink` what
:class:`~..viewer.ingest.StreamIngest` is to the viewer's server: it touches no
socket, clock or thread. The shell opens connections and moves bytes; the
protocol decides everything else. Its calls::

    start(header)             once: the stream header (magic, version, INFO frame)
    write(frame, records)     per frame; end(frame) once, with the END frame
    connected()               a connection is open: the viewer's greeting comes first
    receive_data(data)        bytes the viewer sent (greeting, ACK, REFUSED)
    greeting_ended(timeout)   the shell stopped waiting for the greeting (timeout, EOF)
    events_received()         what the bytes meant: Greeted, Acknowledged, Failed
    data_to_send()            the bytes to send next, one item (header, frame) at a time
    data_sent(count)          the socket took ``count`` of those bytes
    connection_lost()         the connection is gone (reset, EOF, or closed on Failed)

Delivery: the viewer acknowledges the frames it has stored (``ACK n``: the first
``n`` frames after the header on this connection). Frames are kept until
acknowledged, and after a reconnect the header goes first, then the frames sent
but never acknowledged, then the rest; the viewer drops the ones it already had
(by sequence number). Within the ``buffer_size`` bound nothing is lost when the
viewer restarts; past it the oldest frames never sent are dropped, counted
exactly, and a ``DROPPED`` message goes into the stream before the next frame.

Why one item at a time (``data_sent``), not all bytes at once as websockets'
``data_to_send``: a frame counts as sent only once the socket took all of it. A
sent frame may be stored by the viewer, so it is never dropped (dropping it could
count it lost *and* delivered); a frame not yet sent stays droppable under the
bound. Handing everything out at once would make the whole backlog undroppable.

Exceptions (Sans-I/O: carried by :class:`Failed` events, never raised)::

    NotAViewer (ConnectionError)   the greeting is not a viewer's of our major version
    ConnectionRefusedError         the viewer sent REFUSED
    RecordingError (ValueError)    the viewer's replies do not decode
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass
from typing import Deque, Tuple, Union

from .. import format

Held = Tuple[bytes, int]
"""A frame kept until acknowledged, and how many records it holds."""

_NOTHING = memoryview(b"")


class _State(enum.Enum):
    """Where the current connection is."""

    IDLE = "no connection"
    GREETING = "connected, waiting for the viewer's greeting"
    OPEN = "greeted: frames go out, replies come in"
    FAILED = "failed (a Failed event says why): the shell closes it"


_IDLE, _GREETING, _OPEN, _FAILED = _State.IDLE, _State.GREETING, _State.OPEN, _State.FAILED


class NotAViewer(ConnectionError):
    """Something that is not a rerun-logging viewer answered on the address. (Sans-I/O)

    ``silent``: it accepted the connection and said nothing in time (a viewer still
    starting does that too: it listens before its loop greets)."""

    def __init__(self, text: str, silent: bool = False) -> None:
        super().__init__(text)
        self.silent = silent


@dataclass(frozen=True)
class Greeted:
    """The viewer greeted with our major version (``minor`` may be newer: it skips nothing we send)."""

    major: int
    minor: int


@dataclass(frozen=True)
class Acknowledged:
    """An ACK released ``frames`` frames holding ``records`` records and ``size`` bytes."""

    frames: int
    records: int
    size: int


@dataclass(frozen=True)
class Failed:
    """The connection cannot go on: close it, then call :meth:`DeliveryProtocol.connection_lost`."""

    error: Exception


Event = Union[Greeted, Acknowledged, Failed]


class DeliveryProtocol:
    """One connect sink's stream to a viewer: the backlog, ACKs, resends, drop reports. Pure.

    ``name`` names the sink in decoder errors; ``where`` (``host:port``) names the
    address in :class:`NotAViewer` messages. At most ``buffer_size`` of frames are
    held; frames already sent on some connection are held past the bound (they
    are bounded by one connection's socket buffers).

    Counters: :attr:`written` and :attr:`bytes` (records and frame bytes the
    viewer acknowledged), :attr:`dropped` (records the bound dropped),
    :attr:`pending` (records held, neither acknowledged nor dropped).
    """

    def __init__(self, name: str, where: str, buffer_size: int) -> None:
        self.name = name
        self.where = where
        self.buffer_size = buffer_size
        self.header = b""
        self.written = 0
        self.dropped = 0
        self.bytes = 0
        self.ended = False
        """Whether :meth:`end` was called (the END frame is held like any other)."""
        self.header_sent = False
        """Whether the header went out on the current connection."""
        self._state = _IDLE
        self._greeting = b""
        self._replies = self._new_reply_decoder()
        self._events: list[Event] = []
        self._pending: Deque[Held] = deque()
        """Frames never sent, oldest first: the ones the backlog bound may drop."""
        self._resend: Deque[Held] = deque()
        """Frames sent on a connection that died before acknowledging them: the viewer
        may have stored them, so they are sent again and never dropped."""
        self._unacked: Deque[Held] = deque()
        """Frames sent on this connection, not yet acknowledged."""
        self._size = 0
        self._held = 0
        self._inflight: memoryview | None = None
        self._inflight_from: Deque[Held] | None = None
        """Where the item being sent comes from (None: the header)."""
        self._acked = 0
        self._unreported = 0
        self._reports = 0

    # --- the stream -------------------------------------------------------------------

    def start(self, header: bytes) -> None:
        """Set the stream header, sent first on every connection."""
        self.header = header

    def write(self, frame: bytes, records: int) -> None:
        """Hold ``frame`` (of ``records`` records) until acknowledged; trim to ``buffer_size``."""
        self._pending.append((frame, records))
        self._size += len(frame)
        self._held += records
        self._trim()

    def end(self, frame: bytes) -> None:
        """Hold the END ``frame``: the last one of the stream."""
        self.ended = True
        self.write(frame, 0)

    @property
    def pending(self) -> int:
        """Records held: neither acknowledged nor dropped."""
        return self._held

    @property
    def held_bytes(self) -> int:
        """Bytes of frames held (never sent, to resend, unacknowledged)."""
        return self._size

    @property
    def undelivered(self) -> bool:
        """Whether any frame waits to be sent or acknowledged."""
        return bool(self._pending or self._resend or self._unacked)

    @property
    def unsent(self) -> Deque[Held]:
        """Frames never sent, oldest first (read only)."""
        return self._pending

    @property
    def to_resend(self) -> Deque[Held]:
        """Frames to send again on the next connection, before the unsent ones (read only)."""
        return self._resend

    @property
    def unacknowledged(self) -> Deque[Held]:
        """Frames sent on this connection and not yet acknowledged (read only)."""
        return self._unacked

    # --- the connection ---------------------------------------------------------------

    @property
    def greeting_needed(self) -> int:
        """Bytes of the viewer's greeting still to come (0 once it is judged, or idle)."""
        if self._state is not _GREETING:
            return 0
        return len(format.VIEWER_HELLO) - len(self._greeting)

    @property
    def open(self) -> bool:
        """Whether a connection is greeted and working (frames can be sent)."""
        return self._state is _OPEN

    def connected(self) -> None:
        """A connection is open: the viewer's greeting is expected first, then the header goes out."""
        if self._state is not _IDLE:
            self.connection_lost()
        self._state = _GREETING
        self._greeting = b""
        self._replies = self._new_reply_decoder()
        self._acked = 0

    def receive_data(self, data: bytes) -> None:
        """Take bytes the viewer sent; then read :meth:`events_received`.

        The first :data:`~..format.VIEWER_HELLO`-sized bytes are the greeting,
        judged once all of them arrived (:class:`Greeted`, or :class:`Failed`
        with :class:`NotAViewer`); what follows are ACK and REFUSED messages.
        Ignored when no connection is open or it failed.
        """
        if self._state is _GREETING:
            missing = self.greeting_needed
            self._greeting += data[:missing]
            data = data[missing:]
            if self.greeting_needed:
                return
            self._judge_greeting()
        if self._state is _OPEN and data:
            self._replies.feed(data)
            self._read_replies()

    def greeting_ended(self, timeout: float) -> None:
        """The shell stopped waiting for the greeting, after ``timeout`` seconds or at EOF.

        If the greeting is incomplete, the peer is not a viewer (:class:`Failed`
        with :class:`NotAViewer`; ``silent`` when it said nothing); ``timeout`` is
        named in that message. Does nothing once the greeting was judged.
        """
        if self._state is not _GREETING:
            return
        hello = self._greeting
        if hello:
            text = f"{self.where} is not a rerun-logging viewer (it answered {hello!r})"
        else:
            text = (f"{self.where} is not a rerun-logging viewer (it said nothing within "
                    f"{timeout:g}s; or it is a viewer too busy to greet)")
        self._fail(NotAViewer(text, silent=not hello))

    def events_received(self) -> list[Event]:
        """The events since the last call, oldest first; call after each :meth:`receive_data`."""
        events, self._events = self._events, []
        return events

    def connection_lost(self) -> None:
        """The connection is gone: frames sent and not acknowledged go back to be sent again.

        A frame half sent stays where it was (the viewer discards a torn frame) and
        is sent whole on the next connection, after the header.
        """
        self._resend.extendleft(reversed(self._unacked))
        self._unacked.clear()
        self._inflight = self._inflight_from = None
        self.header_sent = False
        self._state = _IDLE

    # --- output -----------------------------------------------------------------------

    def data_to_send(self) -> memoryview:
        """The bytes to send next (empty when there are none, or no working connection).

        One item at a time: the header first on each connection, then frames to
        resend, then a ``DROPPED`` report if frames were dropped, then unsent
        frames. The same bytes come back until :meth:`data_sent` says the socket
        took them (a view, so that a large frame half sent is not copied).
        """
        if self._state is not _OPEN:
            return _NOTHING
        if self._inflight is None and not self._next_item():
            return _NOTHING
        assert self._inflight is not None
        return self._inflight

    def data_sent(self, count: int) -> None:
        """The socket took the first ``count`` bytes of :meth:`data_to_send`."""
        if self._inflight is None:
            if count:
                raise ValueError(f"{count} bytes sent, none were to send")
            return
        self._inflight = self._inflight[count:]
        if self._inflight:
            return
        self._inflight = None
        if self._inflight_from is None:
            self.header_sent = True
        else:
            self._unacked.append(self._inflight_from.popleft())
            self._inflight_from = None

    # --- inside -----------------------------------------------------------------------

    def _new_reply_decoder(self) -> format.StreamDecoder:
        return format.StreamDecoder(self.name, magic=format.VIEWER_MAGIC)

    def _fail(self, error: Exception) -> None:
        self._state = _FAILED
        self._events.append(Failed(error))

    def _judge_greeting(self) -> None:
        hello = self._greeting
        if _speaks_our_major(hello):
            self._state = _OPEN
            self.header_sent = False
            self._replies.feed(hello)
            self._events.append(Greeted(hello[-2], hello[-1]))
        elif hello.startswith(format.VIEWER_MAGIC):
            self._fail(NotAViewer(
                f"the viewer at {self.where} speaks format {hello[-2]}.{hello[-1]}, this app "
                f"{format.FORMAT_MAJOR}.{format.FORMAT_MINOR}"
            ))
        else:
            self._fail(NotAViewer(
                f"{self.where} is not a rerun-logging viewer (it answered {hello[:16]!r})"
            ))

    def _read_replies(self) -> None:
        """Every whole reply: ACKs release frames, REFUSED or garbage fails the connection."""
        try:
            for message in self._replies.messages():
                if isinstance(message, format.Ack):
                    self._acknowledge(message.frames)
                elif isinstance(message, format.Refused):
                    self._fail(ConnectionRefusedError(
                        f"the viewer refused the stream: {message.reason}"
                    ))
                    return
        except ValueError as error:
            self._fail(error)

    def _acknowledge(self, frames: int) -> None:
        released = records = size = 0
        for _ in range(min(frames - self._acked, len(self._unacked))):
            frame, held = self._unacked.popleft()
            released += 1
            records += held
            size += len(frame)
        self._size -= size
        self._held -= records
        self.written += records
        self.bytes += size
        self._acked = max(self._acked, frames)
        if released:
            self._events.append(Acknowledged(released, records, size))

    def _next_item(self) -> bool:
        """Choose what to send next (see :meth:`data_to_send`); False when nothing."""
        if not self.header_sent:
            if not self.header:
                self.header_sent = True  # no header was given: nothing to send first
            else:
                self._inflight, self._inflight_from = memoryview(self.header), None
                return True
        source = self._resend if self._resend else self._pending
        if source is self._pending and self._unreported:
            self._report_drops()
        if not source:
            return False
        self._inflight, self._inflight_from = memoryview(source[0][0]), source
        return True

    def _report_drops(self) -> None:
        """Put a DROPPED frame for the records dropped so far ahead of the unsent frames."""
        self._reports += 1
        report = format.encode_frame(format.dropped_message(
            self._unreported, "backlog full: the viewer was unreachable or too slow",
            serial=self._reports,
        ))
        self._unreported = 0
        self._pending.appendleft((report, 0))
        self._size += len(report)

    def _trim(self) -> None:
        """Drop the oldest unsent frames (never one half sent) while over ``buffer_size``.

        Frames already sent (on this connection or one that died) are not dropped:
        the viewer may have stored them, and counting them lost would count them
        twice. A dropped frame's own ``dropped`` reports (the handler's, or an
        earlier report of ours) are carried into the next report, so no loss goes
        unreported.
        """
        keep = 1 if self._inflight_from is self._pending else 0
        while self._size > self.buffer_size and len(self._pending) > keep:
            frame, records = self._pending[keep]
            del self._pending[keep]
            self._size -= len(frame)
            self._held -= records
            self.dropped += records
            self._unreported += records + format.reported_drops(frame)



def _speaks_our_major(hello: bytes) -> bool:
    """A viewer's greeting of our major version (a newer minor is fine: it skips nothing we send)."""
    magic = format.VIEWER_MAGIC
    return (
        len(hello) == len(magic) + 2
        and hello.startswith(magic)
        and hello[len(magic)] == format.FORMAT_MAJOR
    )
