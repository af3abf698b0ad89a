"""The otlp sink: records as OpenTelemetry logs, posted over OTLP/HTTP (protobuf).

``otlp`` or ``otlp:URL`` sends every record to an OTLP receiver (the OpenTelemetry
Collector, or any backend that takes OTLP/HTTP): the endpoint, headers, timeout,
compression, TLS files and resource attributes come from the ``OTEL_*`` variables a
user of the OpenTelemetry SDK already sets (:mod:`rerun_logging.otlp.config`). It
needs the ``rerun-logging[otlp]`` extra (``opentelemetry-proto``); without it, an
``otlp`` spec is refused where the handler is configured, in one line naming it.

:class:`OtlpSink` is a shell around pure parts: it decodes the handler's frames
and builds each request with :mod:`~rerun_logging.otlp.mapping`, keeps the backlog
and follows the retry rules of :class:`~rerun_logging.otlp.delivery.ExportProtocol`,
and moves the bytes of one :class:`~rerun_logging.otlp.exchange.Exchange` at a time
over a non-blocking socket (kept alive between requests). On the flusher thread it
never waits on the receiver: ``write`` and ``poll`` block at most ``connect_timeout``
(opening a connection, as the connect sink does), ``flush`` and ``close`` until
their deadline at the latest. A request that gets no whole answer within the OTLP
timeout is sent again (see the delivery rules there).
"""

from __future__ import annotations

import os
import select
import socket
import sys
import time
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..backoff import Backoff
from .. import format
from ..format import Record
from ..otlp import config
from ..spec import SinkSpec, SinkSpecError
from .base import Sink, protocol_counter
from .mode import Mode
from .tcp import backoff_of

if TYPE_CHECKING:
    import ssl

    from ..otlp.delivery import Batch
    from ..otlp.exchange import Exchange
    from . import SinkOptions

__all__ = ["OtlpMode", "OtlpSink"]

USER_AGENT = f"rerun-logging/{__version__}"


class OtlpSink(Sink):
    """Posts the records of its frames to ``settings.endpoint``; holds at most ``buffer_size``.

    The backlog, batches, retries and counts are :attr:`protocol`'s (an
    :class:`~rerun_logging.otlp.delivery.ExportProtocol`); this class encodes the
    requests, connects and moves bytes.
    """

    mode = "otlp"

    def __init__(
        self,
        settings: config.OtlpSettings,
        buffer_size: int,
        backoff: Backoff,
        connect_timeout: float = 1.0,
    ) -> None:
        # Imported by prepare() on the configuring thread (OtlpMode.modules): found, not loaded.
        import ssl

        from ..otlp import delivery, exchange, mapping

        self._exchanges, self._mapping = exchange, mapping
        self._would_block = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
        """What a non-blocking send or recv raises when it cannot go on now (TLS included)."""
        self.name = f"{self.mode}:{settings.endpoint.url}"
        self.protocol = delivery.ExportProtocol(
            buffer_size, backoff, settings.timeout, read_partial=mapping.partial_success
        )
        """Owns the backlog and the counters (so it exists before Sink sets them)."""
        super().__init__()
        self.settings = settings
        self.backoff = backoff
        self.connect_timeout = connect_timeout
        self._resource: Any = None
        self._sock: socket.socket | None = None
        self._exchange: Exchange | None = None
        self._reused = False
        """Whether the connection has carried a whole exchange (kept alive since)."""
        self._body: tuple[Batch, bytes] | None = None
        """The last request's body, kept for its retry."""
        self._tls: ssl.SSLContext | None = None

    # --- the Sink interface -------------------------------------------------------------

    def start(self, header: bytes) -> None:
        super().start(header)
        info = format.header_info(header, self.name)
        self._resource = self._mapping.resource(
            info, self.settings.resource, sys.implementation.name
        )
        for problem in self.settings.problems:
            self._say(problem)

    def write(self, frame: bytes, records: int) -> None:
        self.protocol.write(frame, records)
        self._pump(time.monotonic(), None)

    def poll(self, now: float) -> None:
        if self.protocol.undelivered or self._exchange is not None:
            self._pump(now, None)

    def flush(self, deadline: float) -> None:
        self._deliver(deadline)

    def close(self, end_frame: bytes, deadline: float) -> None:
        self.protocol.write(end_frame, 0)  # the handler's last drop reports, if any
        self._deliver(deadline)
        self._disconnect()

    @property
    def pending(self) -> int:
        return self.protocol.pending

    @property
    def buffer_size(self) -> int:
        """The backlog bound (the protocol's)."""
        return self.protocol.buffer_size

    def after_fork(self) -> Sink:
        """A child posts over its own connection; the parent's socket is closed in the child."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        return type(self)(self.settings, self.buffer_size, self.backoff.fresh(), self.connect_timeout)

    written = protocol_counter("written")
    dropped = protocol_counter("dropped")
    bytes = protocol_counter("bytes")

    @property  # type: ignore[override]
    def error(self) -> str | None:
        """What went wrong last, until a request is delivered again (the protocol's)."""
        return self.protocol.error

    @error.setter
    def error(self, value: str | None) -> None:
        self.protocol.error = value

    # --- driving the protocol -----------------------------------------------------------

    def _deliver(self, deadline: float) -> None:
        """Pump until nothing is held or ``deadline`` passes."""
        while self.protocol.undelivered:
            now = time.monotonic()
            if now >= deadline:
                return
            self._pump(now, deadline)
            if not self.protocol.undelivered:
                return
            now = time.monotonic()
            exchange, sock = self._exchange, self._sock
            if exchange is not None and sock is not None:
                until = min(deadline, self.protocol.sent_at + self.protocol.timeout)
                _ready(sock, bool(exchange.data_to_send()), min(until - now, 0.05))
            else:
                until = min(deadline, max(self.protocol.next_attempt, now + 0.001))
                time.sleep(min(max(until - now, 0), 0.05))

    def _pump(self, now: float, deadline: float | None) -> None:
        """Move the exchange in flight on; start the next one when due. Never raises.

        Connection errors are outcomes the protocol handles; anything else (a bug)
        drops the connection and sends the batch in flight again later, so that no
        record is ever counted twice by the handler's own error path.
        """
        try:
            if self._exchange is not None:
                self._progress(now)
            if self._exchange is None and self.protocol.due(now):
                self._begin(now, deadline)
        except Exception as error:
            self._exchange = None
            self._disconnect()
            if self.protocol.in_flight is not None:
                self.protocol.failed(f"internal error: {error!r}", now)
        finally:
            for notice in self.protocol.notices():
                self._say(notice)

    def _begin(self, now: float, deadline: float | None) -> None:
        batch = self.protocol.take(now)
        body = self._body_of(batch)
        if body is None:
            return
        if self._sock is not None and not self._still_open(self._sock):
            self._disconnect()
        if self._sock is None:
            try:
                self._connect(now, deadline)
            except OSError as error:
                self.protocol.failed(_describe(error), now)
                return
        encoding = "gzip" if self.settings.compression == "gzip" else None
        head = self._exchanges.request_head(
            self.settings.endpoint, len(body), self.settings.headers, encoding, USER_AGENT
        )
        self._exchange = self._exchanges.Exchange(head + body)
        self._progress(now)

    def _body_of(self, batch: Batch) -> bytes | None:
        """The request body for ``batch`` (kept for its retries); None when there is none."""
        if self._body is not None and self._body[0] is batch:
            return self._body[1]
        try:
            request = self._request_for(batch)
        except Exception as error:  # a frame that does not decode: never one of the handler's
            self.protocol.unreadable(f"{type(error).__name__}: {error}")
            return None
        if request is None:
            self.protocol.nothing_to_send()
            return None
        body = request.SerializeToString()
        if self.settings.compression == "gzip":
            body = _gzip(body)
        self._body = (batch, body)
        return body

    def _request_for(self, batch: Batch) -> Any:
        """The ``ExportLogsServiceRequest`` of ``batch``'s frames and drop notes (None: empty)."""
        mapping = self._mapping
        records, notes = [], []
        wall = time.time_ns()
        for message in format.stored_records((frame for frame, _ in batch.frames), self.name):
            if isinstance(message, Record):
                records.append(message)
            else:
                notes.append(mapping.dropped_note(message.count, message.reason, wall))
        if batch.dropped:
            notes.append(mapping.dropped_note(batch.dropped, batch.reason, wall))
        if not records and not notes:
            return None
        return mapping.export_request(self._resource, records, notes)

    def _progress(self, now: float) -> None:
        """Send and receive what the socket takes now; hand a whole answer to the protocol."""
        exchange, sock = self._exchange, self._sock
        assert exchange is not None and sock is not None
        try:
            self._send(sock, exchange)
            self._receive(sock, exchange)
        except OSError as error:
            if exchange.response is None:
                self._exchange_failed(now, exchange, error)
                return
        response = exchange.response
        if response is None:
            if self.protocol.expired(now):
                self._exchange_failed(now, exchange, TimeoutError(
                    f"no answer within {self.settings.timeout:g}s"
                ))
            return
        self._exchange = None
        if response.will_close:
            self._disconnect()
        else:
            self._reused = True
        sent = len(self._body[1]) if self._body is not None else 0
        self.protocol.response(
            response.status, response.reason, response.headers, response.body,
            now, time.time(), sent,
        )
        self._forget_body()

    def _exchange_failed(self, now: float, exchange: Exchange, error: BaseException) -> None:
        stale = self._reused and exchange.received == 0 and not isinstance(error, TimeoutError)
        self._exchange = None
        self._disconnect()
        # A kept-alive connection the receiver closed meanwhile: once more at once, anew.
        self.protocol.failed(_describe(error), now, at_once=stale)
        self._forget_body()

    def _forget_body(self) -> None:
        """Let the last body go unless its batch is to be sent again."""
        if self._body is not None and self._body[0] is not self.protocol.retrying:
            self._body = None

    def _send(self, sock: socket.socket, exchange: Exchange) -> None:
        while data := exchange.data_to_send():
            try:
                sent = sock.send(data)
            except self._would_block:
                return
            exchange.data_sent(sent)

    def _receive(self, sock: socket.socket, exchange: Exchange) -> None:
        while exchange.response is None:
            try:
                data = sock.recv(65536)
            except self._would_block:
                return
            exchange.receive_data(data)
            if not data:
                return

    def _still_open(self, sock: socket.socket) -> bool:
        """Whether an idle kept-alive connection is still open (the receiver may close it)."""
        try:
            return not _ready(sock, False, 0)  # EOF, or bytes nobody asked for: start afresh
        except (OSError, ValueError):
            return False

    def _connect(self, now: float, deadline: float | None) -> None:
        endpoint = self.settings.endpoint
        timeout = min(self.connect_timeout, self.settings.timeout)
        if deadline is not None:
            timeout = min(timeout, deadline - now)
        if timeout <= 0:
            raise TimeoutError("no time left to connect")
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        try:
            if endpoint.secure:
                sock = self._tls_context().wrap_socket(sock, server_hostname=endpoint.host)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._reused = False

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            import ssl  # prepared (OtlpMode.modules)

            context = ssl.create_default_context(cafile=self.settings.certificate)
            if self.settings.client_certificate:
                context.load_cert_chain(self.settings.client_certificate, self.settings.client_key)
            self._tls = context
        return self._tls

    def _disconnect(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        self._reused = False


def _ready(sock: socket.socket, writing: bool, timeout: float) -> bool:
    """Wait at most ``timeout`` for ``sock`` to be readable (or writable, when ``writing``).

    ``poll`` where there is one: ``select`` refuses descriptors past 1024, which a
    busy app's sockets may be."""
    timeout = max(timeout, 0.0)
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN | (select.POLLOUT if writing else 0))
        return bool(poller.poll(timeout * 1000))
    readable, writable, _ = select.select([sock], [sock] if writing else [], [], timeout)
    return bool(readable or writable)


def _gzip(body: bytes) -> bytes:
    import gzip  # prepared (OtlpMode.modules)

    return gzip.compress(body, compresslevel=6, mtime=0)


def _describe(error: BaseException) -> str:
    """What went wrong, for the sink's line (which names the URL already)."""
    if isinstance(error, ConnectionRefusedError):
        return "the receiver is not listening (connection refused)"
    if isinstance(error, TimeoutError):  # socket.timeout too
        text = str(error)
        return text if text and text != "timed out" else "connecting timed out"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host ({error.strerror or error})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class OtlpMode(Mode):
    """``otlp[:URL]``: OpenTelemetry logs over OTLP/HTTP, to ``URL`` or the ``OTEL_*`` endpoint."""

    name = "otlp"
    argument = "url"
    modules = (
        "rerun_logging.otlp.mapping",
        "rerun_logging.otlp.delivery",
        "rerun_logging.otlp.exchange",
        "http.client",
        "ssl",
        "gzip",
        # socket.getaddrinfo encodes a str host with the "idna" codec, imported on first use.
        "encodings.idna",
    )
    sink = OtlpSink

    @property
    def grammar(self) -> str:
        return f"{self.name}[:URL]"

    def parse(self, text: str, argument: str | None) -> SinkSpec:
        """``otlp`` or ``otlp:URL``; the endpoint is checked, and the extra imported, now.

        Raises :class:`~rerun_logging.otlp.config.OtlpConfigError` for an endpoint
        (the URL, or the ``OTEL_*`` one) that is not http(s), and
        :class:`~rerun_logging.otlp.OtlpUnavailable` without ``rerun-logging[otlp]``:
        both are :class:`~rerun_logging.spec.SinkSpecError`.
        """
        url = None
        if argument is not None:
            url = argument.strip()
            if not url:
                raise SinkSpecError(f"sink {text!r} needs a URL: {self.grammar}")
        config.endpoint_from(os.environ, url)
        from ..otlp import require

        require()
        return SinkSpec(self.name, path=url)

    def open(self, spec: SinkSpec, options: SinkOptions) -> Sink:
        settings = config.settings_from(os.environ, spec.path)
        return self.sink(settings, options.buffer_size, backoff_of(options))
