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

Those rules, the greeting check and every count are the sans-I/O
:class:`~.delivery.DeliveryProtocol`'s; :class:`ConnectSink` is its shell: it
connects (with backoff), waits for the greeting, and moves bytes between the
socket and the protocol (``receive_data``, ``data_to_send``, ``data_sent``,
``connection_lost``), raising the error of a ``Failed`` event to close the
connection.
"""

from __future__ import annotations

import select
import socket
import time
from typing import TYPE_CHECKING, Deque

from ..backoff import Backoff
from ..spec import DEFAULT_TCP_PORT, SinkSpec
from ..wording import binary_size
from .base import Sink, protocol_counter
from .delivery import DeliveryProtocol, Failed, Held, NotAViewer
from .mode import Mode

if TYPE_CHECKING:
    from . import SinkOptions

__all__ = ["ConnectMode", "ConnectSink", "NotAViewer"]


class ConnectSink(Sink):
    """Streams frames to ``host:port``; keeps at most ``buffer_size`` of frames unacknowledged.

    The delivery rules live in :attr:`protocol` (a :class:`~.delivery.DeliveryProtocol`);
    this class connects, backs off, waits and moves bytes between it and the socket.
    """

    mode = "connect"

    def __init__(
        self,
        host: str,
        port: int,
        buffer_size: int,
        backoff: Backoff,
        connect_timeout: float = 1.0,
    ) -> None:
        self.name = f"{self.mode}:{host}:{port}"
        self.protocol = DeliveryProtocol(self.name, f"{host}:{port}", buffer_size)
        """Owns the backlog and the counters (so it exists before Sink sets them)."""
        super().__init__()
        self.host = host
        self.port = port
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self._sock: socket.socket | None = None

    # --- the Sink interface -------------------------------------------------------------

    def start(self, header: bytes) -> None:
        super().start(header)
        self.protocol.start(header)

    def write(self, frame: bytes, records: int) -> None:
        self.protocol.write(frame, records)
        self._pump(time.monotonic())

    def poll(self, now: float) -> None:
        if self.protocol.undelivered or self._sock is not None:
            self._pump(now)

    def flush(self, deadline: float) -> None:
        self._deliver(deadline)

    def close(self, end_frame: bytes, deadline: float) -> None:
        self.protocol.end(end_frame)
        self._pump(time.monotonic())
        self._deliver(deadline)
        self._disconnect(None)

    @property
    def pending(self) -> int:
        return self.protocol.pending

    @property
    def buffer_size(self) -> int:
        """The backlog bound (the protocol's)."""
        return self.protocol.buffer_size

    def after_fork(self) -> Sink:
        """A child opens its own connection; the parent's socket is closed in the child."""
        if self._sock is not None:
            self._sock.close()
        return type(self)(
            self.host, self.port, self.buffer_size, self.backoff.fresh(), self.connect_timeout
        )

    # --- driving the protocol -----------------------------------------------------------

    def _deliver(self, deadline: float) -> None:
        """Pump until everything is acknowledged or ``deadline`` passes."""
        while self.protocol.undelivered:
            now = time.monotonic()
            if now >= deadline:
                return
            self._pump(now)
            if not self.protocol.undelivered:
                return
            wait = min(deadline, max(self.backoff.next_attempt, now + 0.001)) - now
            if self._sock is None:
                time.sleep(max(min(wait, 0.05), 0))
                continue
            writers = [self._sock] if self.protocol.data_to_send() else []
            select.select([self._sock], writers, [], min(max(deadline - now, 0), 0.05))

    def _pump(self, now: float) -> None:
        if self._sock is None:
            if not self.backoff.ready(now) or not self.protocol.undelivered:
                return
            try:
                self._connect()
            except OSError as error:
                self._connect_failed(now, error)
                return
        try:
            self._receive()
            self._send()
        except (OSError, ValueError) as error:
            self._disconnect(error)
            self.backoff.failure(now)

    def _connect(self) -> None:
        sock = self._open_connection()
        try:
            self._greet(sock)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            sock.close()
            self.protocol.connection_lost()
            raise
        self._sock = sock
        self.backoff.success()
        if self.error is not None:
            self.error = None
            self._say("connected")

    def _open_connection(self) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout=self.connect_timeout)

    def _greet(self, sock: socket.socket) -> None:
        """Read the viewer's greeting for at most ``connect_timeout``; NotAViewer if it is none."""
        protocol = self.protocol
        protocol.connected()
        deadline = time.monotonic() + self.connect_timeout
        while protocol.greeting_needed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(protocol.greeting_needed)
            except socket.timeout:
                break
            if not chunk:
                break
            protocol.receive_data(chunk)
        protocol.greeting_ended(self.connect_timeout)
        self._raise_failure()

    def _receive(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(65536)
            except BlockingIOError:
                return
            if not data:
                raise ConnectionResetError("the viewer closed the connection")
            self.protocol.receive_data(data)
            self._raise_failure()

    def _raise_failure(self) -> None:
        """Raise the error of a :class:`Failed` event, if the protocol had one."""
        for event in self.protocol.events_received():
            if isinstance(event, Failed):
                raise event.error

    def _send(self) -> None:
        assert self._sock is not None
        while data := self.protocol.data_to_send():
            try:
                sent = self._sock.send(data)
            except BlockingIOError:
                return
            self.protocol.data_sent(sent)

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
        self.protocol.connection_lost()
        if error is not None:
            text = f"connection lost: {_describe_connect(error)}"
            if text != self.error:
                self.error = text
                self._say(f"{text}; reconnecting")

    # --- the protocol's state, seen through the sink ------------------------------------

    @property
    def _pending(self) -> Deque[Held]:
        """Frames never sent (for tests)."""
        return self.protocol.unsent

    @property
    def _unacked(self) -> Deque[Held]:
        """Frames sent on this connection, not acknowledged (for tests)."""
        return self.protocol.unacknowledged

    @property
    def _header_sent(self) -> bool:
        """Whether the header went out on the current connection (for tests)."""
        return self.protocol.header_sent

    written = protocol_counter("written")
    dropped = protocol_counter("dropped")
    bytes = protocol_counter("bytes")


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
