"""The connect sink: the recording stream over TCP to a viewer, with a bounded backlog.

The flusher thread drives it; nothing here blocks longer than ``connect_timeout``
except :meth:`ConnectSink.flush` and :meth:`ConnectSink.close`, which the app asked
to wait (until their deadline). The socket is non-blocking once connected: a viewer
that accepts and never reads fills its buffers, then this sink's backlog, then the
oldest frames are dropped and counted; the app is never held up.

Delivery: the viewer acknowledges the frames it has stored (``ACK``). Frames are
kept until acknowledged, and after a reconnect the unacknowledged ones are sent
again, after a fresh header; the viewer drops the ones it already had (by sequence
number). Within the backlog bound nothing is lost when the viewer restarts; past
it the oldest frames are dropped, counted exactly, and a ``dropped`` message goes
into the stream.
"""

from __future__ import annotations

import select
import socket
import time
from collections import deque
from typing import TYPE_CHECKING

from .. import format
from ..backoff import Backoff
from ..spec import DEFAULT_TCP_PORT, SinkSpec
from ..wording import binary_size
from .base import Sink
from .mode import Mode

if TYPE_CHECKING:
    from . import SinkOptions


class NotAViewer(ConnectionError):
    """Something that is not a rerun-logging viewer answered on the address.

    ``silent``: it accepted the connection and said nothing in time (a viewer still
    starting does that too: it listens before its loop greets)."""

    def __init__(self, text: str, silent: bool = False) -> None:
        super().__init__(text)
        self.silent = silent


class ConnectSink(Sink):
    """Streams frames to ``host:port``; keeps at most ``buffer_size`` of frames unacknowledged."""

    mode = "connect"

    def __init__(
        self,
        host: str,
        port: int,
        buffer_size: int,
        backoff: Backoff,
        connect_timeout: float = 1.0,
    ) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.name = f"{self.mode}:{host}:{port}"
        self.buffer_size = buffer_size
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None
        self._pending: deque[tuple[bytes, int]] = deque()
        """Frames never sent, oldest first: the ones the backlog bound may drop."""
        self._resend: deque[tuple[bytes, int]] = deque()
        """Frames sent on a connection that died before acknowledging them: the viewer
        may have stored them, so they are sent again and never dropped (counting them
        lost could count them twice). Bounded by the socket buffers of one connection."""
        self._unacked: deque[tuple[bytes, int]] = deque()
        self._size = 0
        self._held = 0
        self._inflight: memoryview | None = None
        self._inflight_from: deque[tuple[bytes, int]] | None = None
        self._header_sent = False
        self._acked = 0
        self._reports = 0
        self._replies = format.StreamDecoder(self.name, magic=format.VIEWER_MAGIC)

    # --- the Sink interface -------------------------------------------------------------

    def write(self, frame: bytes, records: int) -> None:
        self._pending.append((frame, records))
        self._size += len(frame)
        self._held += records
        self._trim()
        self._pump(time.monotonic())

    def poll(self, now: float) -> None:
        if self._undelivered or self._sock is not None:
            self._pump(now)

    def flush(self, deadline: float) -> None:
        self._deliver(deadline)

    def close(self, end_frame: bytes, deadline: float) -> None:
        self.write(end_frame, 0)
        self._deliver(deadline)
        self._disconnect(None)

    @property
    def pending(self) -> int:
        return self._held

    @property
    def _undelivered(self) -> bool:
        """Whether any frame waits to be sent or acknowledged."""
        return bool(self._pending or self._resend or self._unacked)

    def after_fork(self) -> Sink:
        """A child opens its own connection; the parent's socket is closed in the child."""
        if self._sock is not None:
            self._sock.close()
        return type(self)(
            self.host, self.port, self.buffer_size, self.backoff.fresh(), self.connect_timeout
        )

    # --- delivery -----------------------------------------------------------------------

    def _deliver(self, deadline: float) -> None:
        """Pump until everything is acknowledged or ``deadline`` passes."""
        while self._undelivered:
            now = time.monotonic()
            if now >= deadline:
                return
            self._pump(now)
            if not self._undelivered:
                return
            wait = min(deadline, max(self.backoff.next_attempt, now + 0.001)) - now
            if self._sock is None:
                time.sleep(max(min(wait, 0.05), 0))
                continue
            writers = [self._sock] if self._pending or self._resend or self._inflight else []
            select.select([self._sock], writers, [], min(max(deadline - now, 0), 0.05))

    def _pump(self, now: float) -> None:
        if self._sock is None:
            if not self.backoff.ready(now) or not self._undelivered:
                return
            try:
                self._connect()
            except OSError as error:
                self._connect_failed(now, error)
                return
        try:
            self._read_replies()
            self._send_some()
        except (OSError, ValueError) as error:
            self._disconnect(error)
            self.backoff.failure(now)

    def _connect(self) -> None:
        sock = self._open_connection()
        try:
            hello = _recv_exactly(sock, len(format.VIEWER_HELLO), self.connect_timeout)
            if not _speaks_our_major(hello):
                raise NotAViewer(self._not_a_viewer(hello), silent=not hello)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._replies = format.StreamDecoder(self.name, magic=format.VIEWER_MAGIC)
        self._replies.feed(hello)
        self._header_sent = False
        self._acked = 0
        self.backoff.success()
        if self.error is not None:
            self.error = None
            self._say("connected")

    def _open_connection(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=self.connect_timeout)

    def _not_a_viewer(self, hello: bytes) -> str:
        where = f"{self.host}:{self.port}"
        if hello.startswith(format.VIEWER_MAGIC) and len(hello) == len(format.VIEWER_HELLO):
            return (
                f"the viewer at {where} speaks format {hello[-2]}.{hello[-1]}, this app "
                f"{format.FORMAT_MAJOR}.{format.FORMAT_MINOR}"
            )
        if not hello:
            return (
                f"{where} is not a rerun-logging viewer (it said nothing within "
                f"{self.connect_timeout:g}s; or it is a viewer too busy to greet)"
            )
        return f"{where} is not a rerun-logging viewer (it answered {hello[:16]!r})"

    def _connect_failed(self, now: float, error: OSError) -> None:
        self.backoff.failure(now)
        text = str(error) if isinstance(error, NotAViewer) else _describe_connect(error)
        if text != self.error:
            self.error = text
            self._say(
                f"{text}; keeping up to {binary_size(self.buffer_size)} of records and retrying"
            )

    def _disconnect(self, error: BaseException | None) -> None:
        """Drop the connection; unacknowledged frames go back to be sent again."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._resend.extendleft(reversed(self._unacked))
        self._unacked.clear()
        self._inflight = self._inflight_from = None
        self._header_sent = False
        if error is not None:
            text = f"connection lost: {_describe_connect(error)}"
            if text != self.error:
                self.error = text
                self._say(f"{text}; reconnecting")

    def _read_replies(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return
            if not data:
                raise ConnectionResetError("the viewer closed the connection")
            self._replies.feed(data)
            for message in self._replies.messages():
                if isinstance(message, format.Ack):
                    self._acknowledge(message.frames)
                elif isinstance(message, format.Refused):
                    raise ConnectionRefusedError(f"the viewer refused the stream: {message.reason}")

    def _acknowledge(self, frames: int) -> None:
        for _ in range(min(frames - self._acked, len(self._unacked))):
            frame, records = self._unacked.popleft()
            self._size -= len(frame)
            self._held -= records
            self.written += records
            self.bytes += len(frame)
        self._acked = max(self._acked, frames)

    def _send_some(self) -> None:
        assert self._sock is not None
        while True:
            if self._inflight is None:
                data = self._next_to_send()
                if data is None:
                    return
                self._inflight = memoryview(data)
                self._inflight_from = (
                    None if not self._header_sent else self._resend if self._resend else self._pending
                )
            try:
                sent = self._sock.send(self._inflight)
            except BlockingIOError:
                return
            self._inflight = self._inflight[sent:]
            if not self._inflight:
                self._inflight = None
                if self._inflight_from is None:
                    self._header_sent = True
                else:
                    self._unacked.append(self._inflight_from.popleft())
                    self._inflight_from = None

    def _next_to_send(self) -> bytes | None:
        if not self._header_sent:
            return self._header
        if self._resend:
            return self._resend[0][0]
        if self._unreported:
            self._reports += 1
            report = format.encode_frame(
                format.dropped_message(
                    self._unreported,
                    "backlog full: the viewer was unreachable or too slow",
                    serial=self._reports,
                )
            )
            self._unreported = 0
            self._pending.appendleft((report, 0))
            self._size += len(report)
        return self._pending[0][0] if self._pending else None

    def _trim(self) -> None:
        """Drop the oldest unsent frames (never one half sent) while over ``buffer_size``.

        Frames already sent (on this connection or one that died) are not dropped:
        the viewer may have stored them, and counting them lost would count them
        twice. They are bounded by the socket's buffers. A dropped frame's own ``dropped`` reports (the
        handler's) are carried into the next report, so no loss goes unreported.
        """
        keep = 1 if self._inflight_from is self._pending else 0
        while self._size > self.buffer_size and len(self._pending) > keep:
            frame, records = self._pending[keep]
            del self._pending[keep]
            self._size -= len(frame)
            self._held -= records
            self.dropped += records
            self._unreported += records + _reported_in(frame)


def _reported_in(frame: bytes) -> int:
    """Records that ``dropped`` messages inside ``frame`` report (0 if unreadable)."""
    decoder = format.StreamDecoder("backlog")
    decoder.feed(format.HEADER + frame)
    try:
        return sum(format.peek_frame(f.payload).dropped for f in decoder.frames())
    except ValueError:
        return 0


def _speaks_our_major(hello: bytes) -> bool:
    """A viewer's greeting of our major version (a newer minor is fine: it skips nothing we send)."""
    magic = format.VIEWER_MAGIC
    return (
        len(hello) == len(magic) + 2
        and hello.startswith(magic)
        and hello[len(magic)] == format.FORMAT_MAJOR
    )


def _recv_exactly(sock: socket.socket, size: int, timeout: float) -> bytes:
    """Up to ``size`` bytes, stopping early at EOF or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(size - len(data))
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


def _describe_connect(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError) and not str(error).startswith("the viewer"):
        return "no viewer is listening (connection refused)"
    if isinstance(error, socket.timeout):
        return "the connection timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


NETWORK_MODULES = (
    "rerun_logging.sinks.tcp",
    # socket.getaddrinfo encodes a str host with the "idna" codec, imported on first use.
    "encodings.idna",
)
"""What every network sink imports after its first write (prepared up front)."""


def backoff_of(options: SinkOptions) -> Backoff:
    """A fresh reconnection backoff with the handler's knobs."""
    return Backoff(options.retryStart, options.retryFactor, options.retryMax)


class ConnectMode(Mode):
    """``connect[:HOST:PORT]``: stream to a viewer started by hand, maybe on another host."""

    name = "connect"
    argument = "address"
    default_port = DEFAULT_TCP_PORT
    modules = NETWORK_MODULES
    sink = ConnectSink

    def open(self, spec: SinkSpec, options: SinkOptions) -> Sink:
        assert spec.host is not None and spec.port is not None
        return self.sink(spec.host, spec.port, options.buffer_size, backoff_of(options))
