"""The viewer's OTLP/HTTP receiver: ``POST /v1/logs`` on its own port, into the store.

A small HTTP/1.1 server of its own (``asyncio.start_server``), a shell around pure
parts: :func:`parse_head` (the request head, strictly), :func:`check_request` (what
is asked, before the body is read) and :mod:`rerun_logging.otlp.receive` (the body
as our records, the response bodies). Each resource's records become our stream
bytes (:class:`~rerun_logging.otlp.receive.OtlpStreams`), fed to one
:class:`~.ingest.StreamIngest` per resource kept while the viewer runs, the path a
TCP peer's bytes take: the store, the web UI, ``--print`` and ``--save-dir`` see
OTLP streams as any other.

Answers, as the OTLP/HTTP specification says: 200 with an
``ExportLogsServiceResponse`` in the request's encoding (a partial success when
records were rejected); 400 for a body that does not decode, with a
``google.rpc.Status`` naming what; 403 for a ``Host`` or ``Origin`` the checks
refuse; 404 for another path, 405 for another method, 411 without a
``Content-Length`` (``Transfer-Encoding`` is refused), 413 for a body over the cap,
415 for another ``Content-Type`` or ``Content-Encoding``, 431 for a head over
:data:`MAX_HEAD_SIZE`, 503 past :data:`MAX_CONNECTIONS`. Every answer but a 200
closes the connection; a 200 keeps it for the next request.

Bounds: :data:`MAX_CONNECTIONS` connections; a head within :data:`MAX_HEAD_SIZE`
bytes and :data:`HEAD_TIMEOUT` seconds of its first byte; a body within
``MAX_BODY_SIZE`` bytes and :data:`BODY_TIMEOUT` seconds; an idle connection is
closed after :data:`IDLE_TIMEOUT`. Bodies are decoded one at a time, in a worker
thread (the loop goes on serving), so one inflated body is held at once.

The checks a browser meets (as the web UI's, :mod:`.web`): bound to loopback, the
``Host`` must name this port on a loopback name (refusing DNS rebinding); a request
with an ``Origin`` (browsers send one on every cross-origin POST) is refused unless
it is this server's own origin, which serves no page. A preflight (``OPTIONS``) is
answered 405 without CORS headers, so a page elsewhere cannot POST at all.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from ..otlp.receive import (
    CODE_INVALID_ARGUMENT,
    CODE_NOT_FOUND,
    CODE_PERMISSION_DENIED,
    CODE_RESOURCE_EXHAUSTED,
    CODE_UNAVAILABLE,
    CODE_UNIMPLEMENTED,
    MAX_BODY_SIZE,
    ExportBatch,
    Kind,
    OtlpStreams,
    ReceiveError,
    StreamBytes,
    body_kind,
    content_type_of,
    decode_request,
    status_body,
    success_body,
)
from .bursts import BurstReport
from .ingest import StreamIngest, describe_stream
from .sockets import format_address, is_loopback, linger, peer_name

LOGS_PATH = "/v1/logs"
MAX_CONNECTIONS = 32
"""Most connections at once; one more is answered 503 and closed."""
MAX_HEAD_SIZE = 32 * 1024
"""Most bytes of a request line and headers."""
HEAD_TIMEOUT = 10.0
"""Seconds a request head has from its first byte."""
BODY_TIMEOUT = 30.0
"""Seconds a body has to arrive once its head did."""
IDLE_TIMEOUT = 120.0
"""Seconds a kept-alive connection may wait for its next request."""
MAX_LINGERING = 8
"""Most refused connections read (and discarded) at once before their close."""
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SINGLE_HEADERS = ("host", "origin", "content-length", "content-type", "content-encoding",
                  "transfer-encoding", "connection", "expect")
"""Headers the receiver reads: two of one of them is a 400 (which one would count?)."""

_REQUEST_LINE = re.compile(r"([A-Z]{1,16}) (\S{1,8000}) HTTP/1\.([01])")
_HEADER_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\x00-\x08\x0a-\x1f\x7f]*?)[ \t]*")
_DIGITS = re.compile(r"[0-9]{1,15}")


# --- the request, pure ---------------------------------------------------------------


class HttpError(Exception):
    """(Sans-I/O) A request answered with ``status`` and ``reason``; the connection closes."""

    def __init__(self, status: int, reason: str, code: int = CODE_INVALID_ARGUMENT,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.code = code
        self.headers = headers


@dataclass(frozen=True)
class RequestHead:
    """A parsed request head: method, target, minor version, headers (names lowercased)."""

    method: str
    target: str
    minor: int
    headers: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """The one value of header ``name`` (the parser refused duplicates of these)."""
        values = self.headers.get(name)
        return values[0] if values else None

    @property
    def path(self) -> str:
        """The target's path (its query left out)."""
        return self.target.split("?", 1)[0]

    @property
    def keep_alive(self) -> bool:
        """Whether the client wants the connection kept after the response."""
        connection = (self.header("connection") or "").lower()
        if self.minor == 0:
            return "keep-alive" in connection
        return "close" not in connection


def parse_head(data: bytes) -> RequestHead:
    """The head ``data`` (up to and with its blank line) as a :class:`RequestHead`.

    Strict: CRLF line ends, a request line ``METHOD TARGET HTTP/1.x``, header names
    that are tokens, no folded lines, no control characters; :class:`HttpError` (400)
    otherwise, and for two of a header in :data:`SINGLE_HEADERS`, or HTTP/1.1 without
    ``Host``.
    """
    if not data.endswith(b"\r\n\r\n"):
        raise HttpError(400, "the request head does not end with an empty line")
    text = data[:-4].decode("latin-1")
    lines = text.split("\r\n")
    if any("\n" in line or "\r" in line for line in lines):
        raise HttpError(400, "a bare CR or LF in the request head")
    match = _REQUEST_LINE.fullmatch(lines[0])
    if match is None:
        raise HttpError(400, "the request line is not METHOD TARGET HTTP/1.1")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            raise HttpError(400, "a folded header line")
        pair = _HEADER_LINE.fullmatch(line)
        if pair is None:
            raise HttpError(400, f"a malformed header line: {line[:60]!r}")
        headers.setdefault(pair.group(1).lower(), []).append(pair.group(2))
    for name in SINGLE_HEADERS:
        if len(headers.get(name, ())) > 1:
            raise HttpError(400, f"more than one {name} header")
    head = RequestHead(match.group(1), match.group(2), int(match.group(3)), headers)
    if head.minor == 1 and head.header("host") is None:
        raise HttpError(400, "an HTTP/1.1 request without Host")
    return head


@dataclass(frozen=True)
class Checked:
    """A request that may send its body: its length, encodings, and the response's kind."""

    length: int
    kind: Kind
    content_type: str | None
    content_encoding: str | None


def check_request(head: RequestHead, allowed_hosts: frozenset[str] | None) -> Checked:
    """What ``head`` asks, checked before its body is read; :class:`HttpError` if refused.

    ``allowed_hosts`` are the ``Host`` values accepted (``NAME:PORT`` on loopback), or
    None to accept any; an ``Origin`` must be ``http://`` + the request's ``Host``.
    """
    if head.path != LOGS_PATH:
        raise HttpError(404, f"no {head.path[:100]!r} here: OTLP logs go to {LOGS_PATH}",
                        CODE_NOT_FOUND)
    if head.method != "POST":
        raise HttpError(405, f"{head.method} is not allowed: POST the logs", CODE_UNIMPLEMENTED,
                        (("Allow", "POST"),))
    host = head.header("host")
    if allowed_hosts is not None and host not in allowed_hosts:
        raise HttpError(403, "unexpected Host (a loopback receiver answers its own names)",
                        CODE_PERMISSION_DENIED)
    origin = head.header("origin")
    if origin is not None and (host is None or origin != f"http://{host}"):
        raise HttpError(403, "a page of another origin may not post logs here",
                        CODE_PERMISSION_DENIED)
    if head.header("transfer-encoding") is not None:
        raise HttpError(411, "Transfer-Encoding is not accepted: send Content-Length")
    length_text = head.header("content-length")
    if length_text is None:
        raise HttpError(411, "Content-Length is required")
    if _DIGITS.fullmatch(length_text) is None:
        raise HttpError(400, f"Content-Length {length_text[:40]!r} is not a number")
    length = int(length_text)
    if length > MAX_BODY_SIZE:
        raise HttpError(413, f"the body has {length} bytes, the limit is {MAX_BODY_SIZE}",
                        CODE_RESOURCE_EXHAUSTED)
    content_type = head.header("content-type")
    try:
        kind = body_kind(content_type)
    except ReceiveError as error:
        raise HttpError(error.status, error.reason, error.code) from None
    encoding = head.header("content-encoding")
    if (encoding or "identity").strip().lower() not in ("identity", "gzip"):
        raise HttpError(415, f"Content-Encoding {encoding[:40]!r} is not read here: send gzip "
                        "or no encoding")
    return Checked(length, kind, content_type, encoding)


_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 411: "Length Required", 413: "Content Too Large",
            415: "Unsupported Media Type", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}


def response_bytes(status: int, kind: Kind, body: bytes, close: bool,
                   headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A whole response: status line, headers, ``body`` as ``kind``'s content type."""
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
             f"Content-Type: {content_type_of(kind)}", f"Content-Length: {len(body)}",
             "X-Content-Type-Options: nosniff", *(f"{k}: {v}" for k, v in headers)]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def error_response(error: HttpError | ReceiveError, kind: Kind) -> bytes:
    """The response to a refused request: its status and a ``google.rpc.Status``."""
    headers = error.headers if isinstance(error, HttpError) else ()
    return response_bytes(error.status, kind, status_body(kind, error.code, error.reason),
                          True, headers)


def allowed_hosts(bind: str, port: int) -> frozenset[str] | None:
    """The ``Host`` values a receiver on ``bind:port`` accepts: its loopback names, or any."""
    if not is_loopback(bind):
        return None
    name = f"[{bind}]" if ":" in bind and not bind.startswith("[") else bind
    names = {*LOOPBACK_NAMES, name}
    hosts = {f"{n}:{port}" for n in names}
    return frozenset(hosts | names if port == 80 else hosts)


# --- the server ----------------------------------------------------------------------


class OtlpReceiver:
    """The OTLP/HTTP port of a viewer. ``await start()``, then ``await close()``.

    ``open_ingest(name)`` makes the ingest of a new resource's stream (the viewer's,
    so the store, save directory and feed are its own); ``changed()`` is called
    after records were fed; ``report`` says one line (a new stream, refused requests
    one line per burst). Runs on one event loop; the ingests are fed on it.
    """

    def __init__(
        self,
        sock: socket.socket,
        open_ingest: Callable[[str], StreamIngest],
        changed: Callable[[], None],
        report: Callable[[str], None],
        *,
        max_connections: int = MAX_CONNECTIONS,
        head_timeout: float = HEAD_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.sock = sock
        self.open_ingest = open_ingest
        self.changed = changed
        self.report = report
        self.max_connections = max_connections
        self.head_timeout = head_timeout
        self.body_timeout = body_timeout
        self.idle_timeout = idle_timeout
        host, port = sock.getsockname()[:2]
        self.address = format_address((host, port))
        """``host:port`` it listens on."""
        self.allowed_hosts = allowed_hosts(str(host), int(port))
        self.streams = OtlpStreams()
        """The resources' streams (used in the decoding thread, under :attr:`_decoding`)."""
        self.ingests: dict[object, StreamIngest] = {}
        self.requests = 0
        """Requests answered 200."""
        self._decoding = asyncio.Lock()
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._refusals = BurstReport()
        self._lingering = 0

    @property
    def url(self) -> str:
        """Where to post: ``http://HOST:PORT/v1/logs``."""
        return f"http://{self.address}{LOGS_PATH}"

    async def start(self) -> None:
        """Serve on the socket."""
        self._server = await asyncio.start_server(self._connection, sock=self.sock,
                                                  limit=MAX_HEAD_SIZE)
        if self.allowed_hosts is None:
            self.report(f"OTLP: {self.address} is reachable beyond this machine: anyone who "
                        "can reach it can add records")

    async def close(self) -> None:
        """Stop accepting, end every connection, close every stream's ingest quietly."""
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        async with self._decoding:
            for ingest in self.ingests.values():
                ingest.close(quiet=True)
            self.ingests.clear()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        peer = peer_name(writer.get_extra_info("peername"))
        try:
            if len(self._tasks) >= self.max_connections:
                self._refused(peer, f"503: {self.max_connections} connections open already")
                writer.write(error_response(HttpError(
                    503, f"{self.max_connections} connections open already: try again",
                    CODE_UNAVAILABLE, (("Retry-After", "1"),)), "protobuf"))
                await asyncio.wait_for(writer.drain(), self.head_timeout)
                return
            if task is not None:
                self._tasks.add(task)  # type: ignore[arg-type]
            while await self._request(reader, writer, peer):
                pass
        except (ConnectionError, OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # shutdown: nothing left to do (not re-raised, as the TCP server's tasks)
        except Exception as error:  # a bug must cost one connection, not the viewer
            self.report(f"OTLP: internal error with {peer}: {error!r}; connection closed")
        finally:
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def _request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       peer: str) -> bool:
        """Read and answer one request; whether the connection goes on."""
        try:
            first = await asyncio.wait_for(reader.read(1), self.idle_timeout)
        except asyncio.TimeoutError:
            return False
        if not first:
            return False
        kind: Kind = "protobuf"
        try:
            try:
                rest = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.head_timeout)
            except asyncio.LimitOverrunError:
                raise HttpError(431, f"the request head is over {MAX_HEAD_SIZE} bytes",
                                CODE_RESOURCE_EXHAUSTED) from None
            except asyncio.TimeoutError:
                return False
            head = parse_head(first + rest)
            kind = _kind_of(head)
            checked = check_request(head, self.allowed_hosts)
            if (head.header("expect") or "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = await asyncio.wait_for(reader.readexactly(checked.length), self.body_timeout)
            rejected, reason = await self._take(body, checked)
        except (HttpError, ReceiveError) as error:
            self._refused(peer, f"{error.status}: {error.reason}")
            writer.write(error_response(error, kind))
            await asyncio.wait_for(writer.drain(), self.head_timeout)
            if self._lingering < MAX_LINGERING:  # so the client reads the answer, not a reset
                self._lingering += 1
                try:
                    await linger(reader, writer)
                finally:
                    self._lingering -= 1
            return False
        self.requests += 1
        keep = head.keep_alive
        writer.write(response_bytes(200, checked.kind, success_body(checked.kind, rejected, reason),
                                    not keep))
        await asyncio.wait_for(writer.drain(), self.body_timeout)
        return keep

    async def _take(self, body: bytes, checked: Checked) -> tuple[int, str]:
        """Decode ``body`` in a worker thread (one at a time), feed each stream; rejected, why."""
        async with self._decoding:
            batch, frames = await asyncio.to_thread(self._decode, body, checked)
            for part in frames:
                self._feed(part)
        if frames:
            self.changed()
        return batch.rejected, batch.reason

    def _decode(self, body: bytes, checked: Checked) -> tuple[ExportBatch, list[StreamBytes]]:
        now = time.time_ns()
        batch = decode_request(body, checked.content_type, checked.content_encoding, now)
        return batch, self.streams.frames(batch, now)

    def _feed(self, part: StreamBytes) -> None:
        ingest = self.ingests.get(part.key)
        if ingest is None:
            info = part.info
            name = f"otlp {info.application_id}[{info.pid}]"
            ingest = self.ingests[part.key] = self.open_ingest(name)
        ingest.receive_data(part.data)
        if part.new and ingest.key is not None:
            self.report(f"OTLP: {describe_stream(ingest.store.stream(ingest.key))} started")

    def _refused(self, peer: str, what: str) -> None:
        """One line per burst of refused requests."""
        if self._refusals.note(time.monotonic()):
            self.report(f"OTLP: answered {peer} with {what} (one line per burst)"
                        f"{self._refusals.suffix()}")


def _kind_of(head: RequestHead) -> Kind:
    """The encoding of the answer to ``head``: its body's when it names one, else protobuf."""
    try:
        return body_kind(head.header("content-type"))
    except ReceiveError:
        return "protobuf"
