"""The web viewer's asyncio shell: one port for the page, its files and the feed.

Built on ``websockets.asyncio.server.serve``: its ``process_request`` hook answers
plain HTTP (``GET /`` and the static files of ``rerun_logging/viewer/static/``)
and lets only ``/ws`` go on to the WebSocket handshake; each WebSocket client gets
a :class:`~.feed.FeedClient` and a task that sends what that feed gives. What the
feed says lives in :mod:`.feed`; this module only moves it.

The viewer (:mod:`.server`) starts it beside its TCP server (``--web-port``).

Security decisions
------------------

- **Origin.** A WebSocket handshake is accepted only from the page's own origin,
  checked in ``process_request`` (not with ``serve(origins=...)``: the port is
  known only once bound, and beyond loopback the name the user typed is only
  known from the request):

  - bound to loopback: ``Origin`` must be ``http://NAME:PORT`` with NAME one of
    ``127.0.0.1``, ``localhost``, ``[::1]`` (and the bound host), PORT this server's.
    A request *without* ``Origin`` is allowed: browsers always send one on
    WebSocket handshakes, so it comes from a local non-browser client, which can
    read the user's logs anyway. Every HTTP request must also carry one of those
    names in ``Host``: that refuses DNS-rebinding pages (``evil.example``
    resolving to 127.0.0.1), whose ``Origin`` and ``Host`` would match each other.
  - bound beyond loopback: ``Origin`` must be present and equal ``http://`` +
    the request's ``Host``; the access token (below) is what keeps other pages out.

  A refused handshake gets ``403 Forbidden``. A request with two ``Host`` or two
  ``Origin`` headers is ambiguous (which one would the check have read?): ``400
  Bad Request`` and one line.
- **Token.** Bound beyond loopback (or with ``require_token=True``), the page
  (``/`` and ``/index.html``) and ``/ws`` require ``?token=`` equal to a random
  ``secrets.token_urlsafe(24)`` (compared in constant time); a warning with the
  page's URL is logged on ``rerun_logging.viewer.web``. Without it they answer
  ``403``. Other static files are served without a token: they are the UI's
  code, never log data.
- **Headers.** Every response (pages, errors, the ``101`` of the handshake)
  carries the policy of :func:`content_security_policy` (``connect-src 'self'
  ws://HOST``, HOST the request's own ``Host`` once checked), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: no-referrer`` (the token is in the URL) and
  ``Cache-Control: no-store``.
- **Paths.** Only ``GET`` of files directly named under ``static/``: a path with a
  ``..`` or ``.`` segment, a backslash, a NUL, a hidden name, or that resolves
  outside the folder, is ``404 Not Found``, like a missing file.
- **Compression.** permessage-deflate is offered only when bound beyond loopback
  (``compress=None``, the default; ``True`` or ``False`` decide it), with websockets'
  settings for servers (4 KiB windows, ``memLevel`` 5) at zlib level 1 instead of 6
  (:func:`_page_deflate`). Since batches went binary (:func:`.feed.binary_batch`, issue
  14), loopback is better off without it: with 1M records into a page on two cores
  (``bench_browser.py``, one run each), the page had them all 4.3 s after the first byte
  without compression and 4.9 s with it, the viewer spending 0.9 s of its one thread on
  deflate while Chromium takes 70 MB/s of plain WebSocket data here. Across a network,
  where bytes cost more than a core, the feed is deflated (to about a fifth).
- **Connections before the request.** At most ``max_opening`` (:data:`MAX_OPENING`)
  connections may be waiting to send their HTTP request; one more closes the oldest
  of them at once (a browser sends its request as soon as it connects, so the
  oldest is the slowest), and each has ``open_timeout`` (:data:`OPEN_TIMEOUT`) for
  its request and the handshake. A flood of slow connections thus holds a bounded
  number of descriptors and cannot keep a page out for long. Connections closed at
  the cap, and refused requests, are reported one line per burst, never a traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Sequence, Union
from urllib.parse import parse_qs, unquote, urlsplit

from ..format import Record, RecordColumns
from .bursts import BurstReport
from .feed import DEFAULT_MAX_BATCHES, DEFAULT_MAX_BYTES, FeedClient, StreamSummary, to_json
from .sockets import is_loopback

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.datastructures import Headers
    from websockets.http11 import Request, Response

log = logging.getLogger(__name__)

_WEBSOCKETS_LOG = logging.Logger("rerun_logging.viewer.websockets", logging.ERROR)
"""What websockets itself logs, to standard error only. A logger outside the
hierarchy (it never reaches the root logger): in serve mode the app's root logger
feeds this very server, and websockets' per-frame debug lines would loop back."""
_WEBSOCKETS_LOG.addHandler(logging.StreamHandler())

STATIC_DIR = Path(__file__).resolve().parent / "static"
"""The UI's files, shipped as package data."""
WS_PATH = "/ws"
_HOST_HEADER = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")
"""What a ``Host`` header may look like to be echoed into the policy."""


def content_security_policy(ws_origin: str | None) -> str:
    """The Content-Security-Policy of every response.

    Only our own files run (no inline script, no ``eval``), no plugins, no framing,
    no forms; the page may connect to its own origin and to ``ws_origin``
    (``ws://`` + the request's ``Host``), the WebSocket feed: ``'self'`` alone does
    not cover ``ws:`` in every browser. None: ``'self'`` only.
    """
    connect = f"'self' {ws_origin}" if ws_origin else "'self'"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; object-src 'none'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )


SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
"""Sent with every response, beside the Content-Security-Policy."""
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
PAGES = ("/", "/index.html")
"""Paths that serve the page (and need the token when one is required)."""
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

FeedSource = Callable[[FeedClient], None]
"""Called with each new client's feed, to queue what it starts with (e.g. the
recordings list and the records held so far)."""
RequestHandler = Callable[[Any], Awaitable[list[Union[str, bytes]]]]
"""Answers one request from the page (a decoded JSON object, e.g. a download):
the messages to send back to that page, in order (text or binary)."""
MAX_REQUEST_SIZE = 16 * 1024 * 1024
"""Largest message the page may send (a download request lists runs of records)."""
MAX_CLIENTS = 32
"""Most pages connected at once; one more gets ``503``. With each page's queue
capped (``max_bytes``), this bounds what the feed holds for all of them."""
MAX_QUEUED_REQUESTS = 4
"""Messages from one page buffered before websockets stops reading it."""
MAX_OPENING = 64
"""Most connections waiting to send their HTTP request; one more closes the oldest."""
OPEN_TIMEOUT = 5.0
"""Seconds a connection has to send its request and finish the handshake."""
ACCEPT_BACKLOG = 32
"""The listening socket's backlog, which is also how many connections asyncio accepts
at once: under a flood, at most a few times this many wait to be closed at the cap."""
SINGLE_HEADERS = ("Host", "Origin")
"""Headers the checks read: a request with two of one of them is refused (400)."""


def _host_name(host: str) -> str:
    """``host`` as it appears in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _set_header(response: Response, name: str, value: str) -> None:
    """Replace header ``name`` of ``response`` with ``value``."""
    if name in response.headers:
        del response.headers[name]
    response.headers[name] = value


@dataclasses.dataclass(eq=False)
class _Client:
    feed: FeedClient
    wake: asyncio.Event
    replies: list[str | bytes] = dataclasses.field(default_factory=list)
    """Answers to the page's requests, sent before the feed's next messages."""


class WebServer:
    """The page, its files and the feed on one port; see the module docstring.

    Create it, ``await start()``, push data with :meth:`push_records`,
    :meth:`push_recordings` or :meth:`push`, and ``await close()``. Runs on one
    event loop; call its methods from that loop only.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        feed_source: FeedSource | None = None,
        *,
        requests: RequestHandler | None = None,
        require_token: bool | None = None,
        token: str | None = None,
        static_dir: Path = STATIC_DIR,
        max_batches: int = DEFAULT_MAX_BATCHES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_clients: int = MAX_CLIENTS,
        max_opening: int = MAX_OPENING,
        open_timeout: float = OPEN_TIMEOUT,
        report: Callable[[str], None] | None = None,
        compress: bool | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.feed_source = feed_source
        self.requests = requests
        self.loopback = is_loopback(host)
        self.require_token = (not self.loopback) if require_token is None else require_token
        self.compress = (not self.loopback) if compress is None else compress
        """Whether permessage-deflate is offered (see "Compression" above)."""
        self.token = (token or secrets.token_urlsafe(24)) if self.require_token else None
        self.static_dir = static_dir.resolve()
        self.max_batches = max_batches
        self.max_bytes = max_bytes
        self.max_clients = max_clients
        self.max_opening = max_opening
        self.open_timeout = open_timeout
        self.report = report if report is not None else log.warning
        """Where the server's one-line reports go (the viewer's standard error)."""
        self.server: Server | None = None
        self._clients: set[_Client] = set()
        self._opening: dict[ServerConnection, float] = {}
        """Connections that have not sent their request yet, oldest first, with when they came."""
        self._closed_at_cap = BurstReport()
        self._bad_requests = BurstReport()

    # --- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving; ``port`` is then the bound port."""
        from websockets.asyncio.server import serve

        self.server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            process_response=self._process_response,
            server_header=None,
            max_size=MAX_REQUEST_SIZE,
            max_queue=MAX_QUEUED_REQUESTS,
            open_timeout=self.open_timeout,
            create_connection=_counted_connection(self),
            backlog=ACCEPT_BACKLOG,
            logger=_WEBSOCKETS_LOG,
            compression=None,  # the extension is ours, at level 1, or none
            extensions=[_page_deflate()] if self.compress else [],
        )
        self.port = self.server.sockets[0].getsockname()[1]
        if self.require_token and not self.loopback:
            log.warning(
                "the web viewer is reachable beyond this machine on %s:%d; open it "
                "with its access token: %s", self.host, self.port, self.url,
            )

    async def close(self) -> None:
        """Stop listening, close every client (1001 going away), wait for them."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    @property
    def url(self) -> str:
        """The page's URL, token included when one is required."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        query = f"?token={self.token}" if self.token else ""
        return f"http://{_host_name(host)}:{self.port}/{query}"

    @property
    def clients(self) -> int:
        """WebSocket clients connected now."""
        return len(self._clients)

    @property
    def opening(self) -> int:
        """Connections that have not sent their HTTP request yet."""
        return len(self._opening)

    # --- connections before their request --------------------------------------------

    def _connection_opened(self, connection: ServerConnection) -> None:
        """A new connection: counted until its request arrives; at the cap, the oldest goes."""
        now = asyncio.get_running_loop().time()
        if len(self._opening) >= self.max_opening:
            oldest, since = next(iter(self._opening.items()))
            del self._opening[oldest]
            oldest.transport.abort()
            if self._closed_at_cap.note(now):
                self.report(
                    f"web UI: {self.max_opening} connections were waiting to send their request; "
                    f"closed the oldest ({now - since:.1f}s, from {_peer(oldest)}) to take a new one "
                    f"(one line per burst){self._closed_at_cap.suffix()}"
                )
        self._opening[connection] = now

    def _connection_done_opening(self, connection: ServerConnection) -> None:
        """Its request arrived, or it closed: no longer counted as opening."""
        self._opening.pop(connection, None)

    # --- pushing ----------------------------------------------------------------------

    def push(self, fill: Callable[[FeedClient], None]) -> None:
        """Call ``fill`` with every client's feed, then wake their senders."""
        for client in list(self._clients):
            fill(client.feed)
            client.wake.set()

    def push_records(
        self, recording_id: str, records: RecordColumns | Sequence[Record], pid: int | None = None
    ) -> None:
        """Queue a ``records`` batch to every client: one RECORDS message's columns, or
        records (see :meth:`.feed.FeedClient.records`)."""
        self.push(lambda feed: feed.records(recording_id, records, pid))

    @property
    def wants_records(self) -> bool:
        """Whether some client's queue has room (else records need not even be decoded)."""
        return any(not client.feed.full for client in self._clients)

    def skip_records(self, count: int) -> None:
        """Tell every client that ``count`` records went by while it could take none."""
        self.push(lambda feed: feed.skipped(count))

    def push_recordings(self, summaries: Iterable[StreamSummary]) -> None:
        """Queue the ``recordings`` snapshot to every client."""
        summaries = list(summaries)
        self.push(lambda feed: feed.recordings(summaries))

    # --- WebSocket ----------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        client = _Client(FeedClient(self.max_batches, self.max_bytes, binary=True), asyncio.Event())
        self._clients.add(client)
        sender = asyncio.create_task(self._send(connection, client))
        try:
            if self.feed_source is not None:
                self.feed_source(client.feed)
                client.wake.set()
            async for message in connection:
                replies = await self._answer(message)
                if replies:
                    client.replies.extend(replies)
                    client.wake.set()
        except ConnectionClosed:
            pass  # a client that went away abruptly is no error of ours
        finally:
            self._clients.discard(client)
            sender.cancel()

    async def _send(self, connection: ServerConnection, client: _Client) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await client.wake.wait()
                client.wake.clear()
                replies, client.replies = client.replies, []
                for reply in replies:
                    await connection.send(reply)
                for text in client.feed.data_to_send():
                    await connection.send(text)
        except ConnectionClosed:
            pass

    async def _answer(self, message: str | bytes) -> list[str | bytes]:
        """The replies to one message from the page; a bad one is answered with an error."""
        try:
            request = json.loads(message)
        except ValueError:
            return [to_json({"type": "error", "id": None, "error": "a request must be JSON text"})]
        if not isinstance(request, dict) or self.requests is None:
            return [to_json({"type": "error", "id": None, "error": "unknown request"})]
        return await self.requests(request)

    # --- HTTP ---------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Answer plain HTTP, refuse what the checks refuse; None lets ``/ws`` go on to the handshake.

        Never raises (websockets would log a traceback and answer a 500 without our
        headers): an unexpected error is one line and a 500.
        """
        try:
            return self._answer_request(connection, request)
        except Exception as error:  # a bug must cost one request, not a traceback per request
            self._refused_request(connection, f"500: internal error: {error!r}")
            return connection.respond(500, "Internal Server Error\n")

    def _answer_request(self, connection: ServerConnection, request: Request) -> Response | None:
        for name in SINGLE_HEADERS:
            count = len(request.headers.get_all(name))
            if count > 1:
                self._refused_request(connection, f"400: {count} {name} headers")
                return connection.respond(400, f"Bad Request: more than one {name} header.\n")
        url = urlsplit(request.path)
        host = _single(request.headers, "Host")
        if self.loopback and not self._loopback_host(host):
            return connection.respond(403, "Forbidden: unexpected Host.\n")
        if url.path == WS_PATH:
            if not self._origin_allowed(_single(request.headers, "Origin"), host):
                return connection.respond(403, "Forbidden: this page's origin may not read the feed.\n")
            if not self._token_ok(url.query):
                return connection.respond(403, "Forbidden: access token missing or wrong.\n")
            if len(self._clients) >= self.max_clients:
                return connection.respond(
                    503, f"Service Unavailable: {self.max_clients} pages are open already.\n"
                )
            return None  # on to the WebSocket handshake
        if url.path in PAGES and not self._token_ok(url.query):
            return connection.respond(403, "Forbidden: open the URL with its access token.\n")
        file = self._static_file("/index.html" if url.path == "/" else url.path)
        if file is None:
            return connection.respond(404, "Not Found\n")
        try:
            body = file.read_bytes()
        except OSError as error:  # e.g. out of file descriptors under a flood
            self._refused_request(connection, f"503: cannot read {file.name}: {error.strerror or error}")
            return connection.respond(503, "Service Unavailable: try again.\n")
        response = connection.respond(200, "")
        _set_header(response, "Content-Type", CONTENT_TYPES.get(file.suffix, "application/octet-stream"))
        _set_header(response, "Content-Length", str(len(body)))
        return dataclasses.replace(response, body=body)

    def _refused_request(self, connection: ServerConnection, what: str) -> None:
        """One line for a request answered with an error status (one per burst)."""
        if self._bad_requests.note(asyncio.get_running_loop().time()):
            self.report(f"web UI: answered {_peer(connection)} with {what} (one line per burst)"
                        f"{self._bad_requests.suffix()}")

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> None:
        host = _single(request.headers, "Host")
        valid = host is not None and _HOST_HEADER.fullmatch(host) is not None
        if valid and self.loopback:
            valid = self._loopback_host(host)
        _set_header(response, "Content-Security-Policy", content_security_policy(
            f"ws://{host}" if valid else None
        ))
        for name, value in SECURITY_HEADERS:
            _set_header(response, name, value)

    def _loopback_authorities(self) -> set[str]:
        """``NAME:PORT`` for every loopback name of this server (bare NAME on port 80)."""
        names = {*LOOPBACK_NAMES, _host_name(self.host)}
        out = {f"{name}:{self.port}" for name in names}
        return out | names if self.port == 80 else out

    def _loopback_host(self, host: str | None) -> bool:
        return host is not None and host in self._loopback_authorities()

    def _origin_allowed(self, origin: str | None, host: str | None) -> bool:
        if self.loopback:
            if origin is None:
                return True
            return origin in {f"http://{name}" for name in self._loopback_authorities()}
        return origin is not None and host is not None and origin == f"http://{host}"

    def _token_ok(self, query: str) -> bool:
        if self.token is None:
            return True
        given = parse_qs(query).get("token", [""])[0]
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _static_file(self, path: str) -> Path | None:
        """The file under ``static_dir`` that ``path`` names, or None (404)."""
        parts = unquote(path).split("/")[1:]
        if not parts or any(
            not part or part.startswith(".") or "\\" in part or "\0" in part for part in parts
        ):
            return None
        file = self.static_dir.joinpath(*parts).resolve()
        if not file.is_relative_to(self.static_dir) or not file.is_file():
            return None
        return file


def _single(headers: Headers, name: str) -> str | None:
    """The value of header ``name`` if the request has exactly one, else None."""
    values = headers.get_all(name)
    return values[0] if len(values) == 1 else None


def _peer(connection: ServerConnection) -> str:
    """``127.0.0.1:5555`` for report lines."""
    try:
        address = connection.remote_address
    except Exception:  # the transport is gone
        return "<unknown peer>"
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return "<unknown peer>"


def _page_deflate() -> Any:
    """websockets' own permessage-deflate settings for servers, at zlib level 1 (see
    "Compression" in the module docstring)."""
    from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

    return ServerPerMessageDeflateFactory(
        server_max_window_bits=12, client_max_window_bits=12,
        compress_settings={"memLevel": 5, "level": 1},
    )


def _counted_connection(web: WebServer) -> Callable[..., ServerConnection]:
    """websockets' ``create_connection``: its ServerConnection, counted by ``web`` until the
    request arrives (see :meth:`WebServer._connection_opened`)."""
    from websockets.asyncio.server import ServerConnection
    from websockets.http11 import Request

    class CountedConnection(ServerConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            web._connection_opened(self)

        def process_event(self, event: object) -> None:
            if self.request is None and isinstance(event, Request):
                web._connection_done_opening(self)
            super().process_event(event)  # type: ignore[arg-type]

        def connection_lost(self, exc: Exception | None) -> None:
            web._connection_done_opening(self)
            super().connection_lost(exc)

    return CountedConnection


async def serve_web(
    host: str, port: int, feed_source: FeedSource | None = None, **options: object
) -> WebServer:
    """Start a :class:`WebServer` on ``host:port`` (0: any free port) and return it.

    ``options`` go to :class:`WebServer` (``requests``, ``require_token``, ``token``,
    ``static_dir``, ``max_batches``, ``max_bytes``, ``max_clients``, ``max_opening``,
    ``open_timeout``, ``report``, ``compress``). Close it with ``await server.close()``.
    """
    server = WebServer(host, port, feed_source, **options)  # type: ignore[arg-type]
    await server.start()
    return server
