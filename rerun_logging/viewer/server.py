"""The viewer's asyncio app: its TCP server, sources and web UI on one event loop.

Everything that decides lives in :mod:`.ingest`, :mod:`.store` and :mod:`.peers`;
everything that touches the system in small modules beside this one. This module
only routes bytes and events between them:

- a TCP server (``asyncio.start_server`` on one listening socket,
  :mod:`.sockets`), one task per connection: greet with ``VIEWER_HELLO``, read
  chunks of at most 256 KiB, feed the connection's :class:`~.ingest.StreamIngest`,
  write back what it returns, enforce the deadlines of
  :class:`~.ingest.ReadDeadline`; a refused peer gets its REFUSED message and a
  graceful close, and no other peer notices. At most :data:`MAX_CONNECTIONS`
  peers: a new one is always taken, and when the table is full one peer makes
  room for it (see :class:`~.peers.PeerTable`); failed accepts (out of file
  descriptors) are one event per burst, never a traceback;
- recording files and ``-`` (standard input), each read by a daemon thread
  (:mod:`.files`) and fed to an ingest on the event loop (the store has one
  owner: the loop);
- the web UI (:mod:`.web`) on ``--bind`` and ``--web-port``, beside the TCP
  server: while at least one web client is connected, the stored frames are
  decoded (through the same :class:`~.ingest.RecordPrinter` hook as ``--print``,
  :mod:`.printing`) and their records pushed live, in columns (one
  ``RecordColumns`` per RECORDS message, no object per record: :class:`WebFanout`),
  with the recordings list whenever it changes; with no web client nothing is decoded for it. A client
  that joins gets a snapshot (decoded by :func:`.feed.queue_snapshot`): the
  recordings list and the records of the most recent stored frames, at most
  :data:`SNAPSHOT_RECORDS` records. A web port that is taken costs the web UI only
  (a default port that is taken gives way to a free one:
  :attr:`ViewerConfig.web_port_fallback`); a browser is opened on it where one
  can be shown (:mod:`.browser`);
- with ``--otlp-port``, an OTLP/HTTP receiver (:mod:`.otlp_http`) on its own port:
  ``POST /v1/logs``, each resource a stream fed to its own ingest as a peer's
  bytes are (it needs the ``rerun-logging[otlp]`` extra, checked at start);
- SIGINT/SIGTERM: stop accepting, close every source, finish and fsync saved
  files, report a summary, exit 0.

What happens is reported as events (:mod:`.events`), in order, to the one
callable the viewer is given, on the loop's thread; by default each is said as a
``rerun-logging viewer: ...`` line on standard error (:mod:`.report`).
``--print`` writes records to standard output.
"""

from __future__ import annotations

import asyncio
import errno
import importlib
import os
import signal
import socket
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence, TextIO

from ..format import VIEWER_HELLO, Message, Record, RecordColumns, RecordingInfo
from ..reader import source_name
from ..exitcodes import EXIT_OK, EXIT_PORT_TAKEN, EXIT_USAGE
from ..spec import DEFAULT_HOST, DEFAULT_TCP_PORT, DEFAULT_WEB_PORT
from .browser import can_open_browser, open_browser
from .bursts import BurstReport
from .events import (
    AcceptFailed,
    CannotListen,
    Listening,
    NoStateFile,
    Note,
    NotStarted,
    OtlpListening,
    PeerConnected,
    PeerDisconnected,
    PeerFailed,
    PeerRefused,
    PeerTimedOut,
    PortTaken,
    SourceEmpty,
    SourceUnreadable,
    Stopped,
    ViewerEvent,
    WebUINotStarted,
    WebUIStarted,
)
from .files import read_chunks, unreadable_source
from .ingest import ReadDeadline, StreamIngest, describe_stream, record_messages
from .peers import PeerSlot, PeerTable
from .printing import TextPrinter
from .report import LineReport, say
from .savedir import SaveDir
from .sockets import (
    CHUNK_SIZE, descriptor_limit, format_address, linger, listening_socket, peer_host, peer_name,
)
from .store import DEFAULT_MEMORY_LIMIT, RecordingStore

if TYPE_CHECKING:
    from .feed import FeedClient
    from .otlp_http import OtlpReceiver
    from .state import ViewerState
    from .web import WebServer

DEFAULT_BIND = DEFAULT_HOST
DEFAULT_PORT = DEFAULT_TCP_PORT
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
DEFAULT_FRAME_TIMEOUT = 30.0

MAX_CONNECTIONS = 256
"""Most TCP peers at once. One more is taken, and one peer makes room for it (REFUSED,
then closed): see :class:`~.peers.PeerTable`."""
MAX_LINGERING = 64
"""Most refused peers read (and discarded) at once before their close (see
:func:`~.sockets.linger`); past it a refused peer is closed at once."""
ACCEPT_ERRORS = ("socket.accept() out of system resource",
                 "Error on transport creation for incoming connection")
"""What asyncio's accept loop tells the loop's exception handler when an accept fails
(out of file descriptors, buffers or memory); it then pauses that socket for 1 s."""
MAX_BUFFERED_BYTES = 256 * 1024 * 1024
"""Most bytes of unfinished frames held for all peers together (each is also capped
by the frame limit, 16 MiB); the peer that passes it is refused."""

SNAPSHOT_RECORDS = 100_000
"""Most records a web client that joins gets from what the store holds (the newest)."""
WEB_CLOSE_TIMEOUT = 5.0


@dataclass(frozen=True)
class ViewerConfig:
    """What ``rerun-logging viewer`` was asked to do (see the CLI for each option)."""

    sources: tuple[str, ...] = ()
    bind: str = DEFAULT_BIND
    port: int = DEFAULT_PORT
    save_dir: str | None = None
    print_records: bool = False
    color: bool | None = None
    memory_limit: int = DEFAULT_MEMORY_LIMIT
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    frame_timeout: float = DEFAULT_FRAME_TIMEOUT
    web_port: int = DEFAULT_WEB_PORT
    """Port of the web UI on ``bind`` (0: any free port)."""
    open_browser: bool = True
    """Open a browser on the web UI (see :func:`~.browser.can_open_browser`)."""
    web_bind: str | None = None
    """Address of the web UI; None: the same as ``bind``. (The serve sink keeps its
    TCP port on loopback for its children while the UI may listen elsewhere.)"""
    web: bool = True
    """Serve the web UI at all."""
    tcp_socket: socket.socket | None = None
    """A TCP socket already listening, used instead of binding ``bind:port`` (the serve
    sink binds its port for child processes before its server thread starts)."""
    port_fallback: bool = False
    """A taken ``port`` (a default the user did not name) gives way to a free port
    (:class:`~.events.PortTaken`) instead of exit status 3 (``rerun-logging FILE``
    while another viewer runs)."""
    web_port_fallback: bool = False
    """A taken ``web_port`` (a default the user did not name) gives way to a free
    port (:attr:`~.events.WebUIStarted.taken_port`) instead of running without the web UI."""
    otlp_port: int | None = None
    """Port of the OTLP/HTTP receiver (``POST /v1/logs``); None: no receiver; 0: any free port."""
    otlp_bind: str | None = None
    """Address of the OTLP/HTTP receiver; None: the same as ``bind``."""
    state_file: bool = False
    """Write the state file (:mod:`.state`: pid, TCP address, page URL) that
    ``rerun-logging stop`` and the spawn sink read; removed at shutdown."""

    @property
    def web_address(self) -> str:
        """Where the web UI listens."""
        return self.bind if self.web_bind is None else self.web_bind

    @property
    def otlp_address(self) -> str:
        """Where the OTLP/HTTP receiver listens."""
        return self.bind if self.otlp_bind is None else self.otlp_bind


def run(config: ViewerConfig) -> int:
    """Run the viewer until SIGINT or SIGTERM, saying its events on stderr; return the exit status."""
    try:
        return asyncio.run(Viewer(config).run())
    except KeyboardInterrupt:  # a Ctrl-C before the signal handlers were installed
        return EXIT_OK


# --- the viewer -----------------------------------------------------------------------


class Viewer:
    """The running viewer: its store, save directory, printer, server and sources.

    ``events`` receives every :class:`~.events.ViewerEvent`, in order, on the loop's
    thread; it must return quickly and not raise. Without it each event is said as a
    line (:class:`~.report.LineReport`) through ``report`` (default: standard error).
    ``out`` is where ``--print`` writes (default: standard output).
    """

    def __init__(
        self,
        config: ViewerConfig,
        report: Callable[[str], None] = say,
        out: TextIO | None = None,
        *,
        events: Callable[[ViewerEvent], None] | None = None,
    ) -> None:
        self.config = config
        self.emit: Callable[[ViewerEvent], None] = events if events is not None else LineReport(report)
        """Reports one event (see :mod:`.events`)."""
        self.store = RecordingStore(config.memory_limit)
        self.saver = SaveDir(config.save_dir, self._note) if config.save_dir else None
        self.printer: TextPrinter | None = None
        if config.print_records:
            stream = out if out is not None else sys.stdout
            color = stream.isatty() if config.color is None else config.color
            self.printer = TextPrinter(stream, color, self.emit)
        self.web: WebServer | None = None
        self.tcp_server: asyncio.AbstractServer | None = None
        self.otlp: OtlpReceiver | None = None
        """The OTLP/HTTP receiver, with ``otlp_port``."""
        self.feed = WebFanout(self)
        self._recordings_sent: object = None
        self.address: str | None = None
        self._stop = asyncio.Event()
        self.ready = asyncio.Event()
        """Set once the viewer listens and its web UI started (or failed to)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self.peers = PeerTable()
        """The connected TCP peers."""
        self._lingering = 0
        self._accept_errors = BurstReport()

    def _note(self, text: str) -> None:
        """A line of a collaborator (save directory, web UI, a file's ingest), as a Note."""
        self.emit(Note(text))

    async def run(self) -> int:
        """Check the sources, listen, load the sources, serve until stopped."""
        problem = self._check_setup()
        if problem:
            self.emit(NotStarted(problem))
            return EXIT_USAGE
        asyncio.get_running_loop().set_exception_handler(self._loop_exception)
        try:
            sock = self.config.tcp_socket or self._listen_tcp()
        except OSError as error:
            return self._cannot_listen(error)
        try:
            otlp_sock = self._listen_otlp()
        except OSError as error:
            if self.config.tcp_socket is None:
                sock.close()
            return self._cannot_listen(error, self.config.otlp_address, self.config.otlp_port)
        server = self.tcp_server = await asyncio.start_server(
            self._serve_connection, sock=sock, limit=CHUNK_SIZE
        )
        self.address = format_address(sock.getsockname())
        self._install_signal_handlers()
        self.emit(Listening(self.address))
        if otlp_sock is not None:
            await self._start_otlp(otlp_sock)
        if self.config.web:
            await self._start_web()
        state = self._write_state(sock)
        for path in self.config.sources:
            self._spawn(self._load_source(path))
        self.ready.set()
        try:
            await self._stop.wait()
            await self._shutdown(server)
        finally:
            if state is not None:
                state.remove()
        return EXIT_OK

    def _listen_tcp(self) -> socket.socket:
        """The TCP socket on ``bind:port``; a free port instead when the default is taken
        and ``port_fallback`` allows it (reported once)."""
        try:
            return listening_socket(self.config.bind, self.config.port)
        except OSError as error:
            if not (self.config.port_fallback and self.config.port and error.errno == errno.EADDRINUSE):
                raise
        sock = listening_socket(self.config.bind, 0)
        self.emit(PortTaken(self.config.port, int(sock.getsockname()[1])))
        return sock

    def _listen_otlp(self) -> socket.socket | None:
        """The OTLP/HTTP socket on ``otlp_address:otlp_port``, or None without ``otlp_port``."""
        if self.config.otlp_port is None:
            return None
        return listening_socket(self.config.otlp_address, self.config.otlp_port)

    async def _start_otlp(self, sock: socket.socket) -> None:
        from .otlp_http import OtlpReceiver

        self.otlp = OtlpReceiver(
            sock, lambda name: self._ingest(name, name, network=False),
            self.stored_changed, self._note,
        )
        await self.otlp.start()
        self.emit(OtlpListening(self.otlp.address))

    def _write_state(self, sock: socket.socket) -> ViewerState | None:
        """Write the state file when asked to; None when not asked or it cannot be written."""
        if not self.config.state_file:
            return None
        from .state import ViewerState

        state = ViewerState(os.getpid(), format_address(sock.getsockname()),
                            self.web.url if self.web is not None else None)
        problem = state.write()
        if problem is not None:
            self.emit(NoStateFile(problem))
            return None
        return state

    def stop(self) -> None:
        """Ask the viewer to shut down (what SIGINT and SIGTERM do)."""
        self._stop.set()

    def _check_setup(self) -> str | None:
        for path in self.config.sources:
            problem = unreadable_source(path)
            if problem:
                return problem
        if self.config.save_dir:
            try:
                os.makedirs(self.config.save_dir, exist_ok=True)
            except OSError as error:
                return f"cannot use --save-dir {self.config.save_dir}: {error.strerror or error}"
            if not os.access(self.config.save_dir, os.W_OK | os.X_OK):
                return f"cannot use --save-dir {self.config.save_dir}: not writable"
        if self.config.otlp_port is not None:
            return otlp_unavailable()
        return None

    def _cannot_listen(self, error: OSError, host: str | None = None, port: int | None = None) -> int:
        """Say why a port cannot listen (the TCP port, or the OTLP port given); the exit status."""
        in_use = error.errno == errno.EADDRINUSE
        reason = getattr(error, "strerror", None) or str(error)
        if host is None:
            self.emit(CannotListen(f"{self.config.bind}:{self.config.port}", reason, in_use))
        else:
            self.emit(CannotListen(f"{host}:{port}", reason, in_use, otlp=True))
        return EXIT_PORT_TAKEN if in_use else EXIT_USAGE

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self.stop)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        """A failed accept is one event per burst (asyncio pauses the socket 1 s); the rest as asyncio's."""
        if context.get("message") not in ACCEPT_ERRORS:
            loop.default_exception_handler(context)
            return
        if not self._accept_errors.note(loop.time()):
            return
        error = context.get("exception")
        reason = getattr(error, "strerror", None) or str(error or context.get("message"))
        where = None
        sock = context.get("socket")
        if sock is not None:
            try:
                where = format_address(sock.getsockname())  # type: ignore[attr-defined]
            except (AttributeError, OSError):
                pass
        self.emit(AcceptFailed(where, reason, descriptor_limit(), self._accept_errors.previous))

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shutdown(self, server: asyncio.AbstractServer) -> None:
        server.close()
        if self.otlp is not None:
            await self.otlp.close()
        if self.web is not None:
            try:
                await asyncio.wait_for(self.web.close(), WEB_CLOSE_TIMEOUT)
            except (asyncio.TimeoutError, OSError):
                pass
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.saver is None:
            self.emit(Stopped(self.store.summary()))
            return
        self.saver.close_all()
        self.emit(Stopped(self.store.summary(), len(self.saver.files), self.saver.directory))

    def _ingest(
        self, source: str, name: str, network: bool, report: Callable[[str], None] | None = None,
    ) -> StreamIngest:
        return StreamIngest(
            source, self.store, name=name, saver=self.saver, printer=self.feed,
            report=self._note if report is None else report, network=network,
        )

    # --- TCP ------------------------------------------------------------------------

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """One peer, from greeting to close. Never raises: other peers are never disturbed."""
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        address = writer.get_extra_info("peername")
        peer = peer_name(address)
        now = asyncio.get_running_loop().time()
        said = PeerReport(self.emit, peer)
        ingest = said.ingest = self._ingest(f"tcp {peer}", peer, network=True, report=said)
        slot = PeerSlot(ingest, peer, peer_host(address), now, now, task)  # type: ignore[arg-type]
        victim = self.peers.admit(slot, now, MAX_CONNECTIONS)
        if victim is not None and victim.task is not None:
            victim.task.cancel()  # it refuses itself, with victim.evicted as the reason
        quiet = False
        try:
            writer.write(VIEWER_HELLO)
            quiet = await self._pump(slot, reader, writer)
            self.peers.remove(slot)
            if ingest.error is not None:
                await self._linger(reader, writer)
        except asyncio.CancelledError:
            if slot.evicted is None:
                # Shutdown. Not re-raised: asyncio's streams (3.11) log a cancelled
                # connection task as an error; this task has nothing left to do.
                quiet = True
            else:
                await self._leave(slot, reader, writer)
        except (ConnectionError, OSError):
            pass  # the peer went away: close() below says whether it tore a frame
        except Exception as error:  # a bug must cost one connection, not the viewer
            self.emit(PeerFailed(peer, repr(error)))
            quiet = True
        finally:
            self.peers.remove(slot)
            said.closing()
            ingest.close(quiet=quiet)
            self.stored_changed()
            writer.close()
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]

    async def _leave(
        self, slot: PeerSlot, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """An evicted peer (its task was cancelled for it): refused with the reason, closed."""
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        assert slot.evicted is not None
        try:
            writer.writelines(slot.ingest.refuse(slot.evicted))
            await self._linger(reader, writer)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """:func:`~.sockets.linger`, for at most MAX_LINGERING peers at once (a flood of
        refusals must not hold a descriptor per refusal); beyond, closed at once."""
        if self._lingering >= MAX_LINGERING:
            return
        self._lingering += 1
        try:
            await linger(reader, writer)
        finally:
            self._lingering -= 1

    async def _pump(
        self, slot: PeerSlot, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Read, feed, answer until the peer closes or is refused; True if a timeout ended it."""
        ingest, peer = slot.ingest, slot.name
        loop = asyncio.get_running_loop()
        deadlines = ReadDeadline(
            self.config.handshake_timeout, self.config.frame_timeout, loop.time()
        )
        while not ingest.finished:
            due = deadlines.next(ingest, loop.time())
            try:
                if due is None:
                    chunk = await reader.read(CHUNK_SIZE)
                else:
                    chunk = await asyncio.wait_for(
                        reader.read(CHUNK_SIZE), max(due.at - loop.time(), 0.0)
                    )
            except asyncio.TimeoutError:
                assert due is not None
                self.emit(PeerTimedOut(peer, due.reason))
                return True
            if not chunk:
                return False
            ingest.receive_data(chunk)
            replies = ingest.data_to_send()
            self.peers.received(slot, loop.time(), ingest.buffered)
            replies += self._check_buffered(slot)
            self.stored_changed()
            if replies:
                writer.writelines(replies)
                try:
                    await asyncio.wait_for(writer.drain(), self.config.frame_timeout)
                except asyncio.TimeoutError:
                    self.emit(PeerTimedOut(peer, "it did not read the viewer's replies within "
                                                 f"{self.config.frame_timeout:g}s"))
                    return True
        return False

    def _check_buffered(self, slot: PeerSlot) -> list[bytes]:
        """Refuse ``slot``'s peer if the unfinished frames of all peers now pass MAX_BUFFERED_BYTES."""
        total = self.peers.buffered
        if total <= MAX_BUFFERED_BYTES:
            return []
        self.peers.remove(slot)
        return slot.ingest.refuse(
            f"the viewer holds {total / 2**20:.1f} MiB of unfinished frames from all peers "
            f"(limit {MAX_BUFFERED_BYTES / 2**20:.1f} MiB)"
        )

    # --- files and stdin ------------------------------------------------------------

    async def _load_source(self, path: str) -> None:
        """Read a recording file (or ``-``) into the store, as a source that is not answered."""
        name = source_name(path)
        ingest = self._ingest(name, name, network=False)
        quiet = False
        try:
            async for chunk in read_chunks(path, CHUNK_SIZE):
                ingest.receive_data(chunk)
                self.stored_changed()
                if ingest.finished:
                    break
        except asyncio.CancelledError:
            quiet = True
            raise
        except OSError as error:
            self.emit(SourceUnreadable(name, error.strerror or str(error)))
        else:
            if ingest.received == 0:
                self.emit(SourceEmpty(name))
        finally:
            ingest.close(quiet=quiet)
            self.stored_changed()

    # --- in-process sources ------------------------------------------------------------

    def local_source(self, name: str) -> StreamIngest:
        """An ingest for bytes this process produces (the serve sink's own stream).

        Call it and :meth:`StreamIngest.receive_data` on the viewer's loop only; after each
        call :meth:`stored_changed`. Close it with :meth:`StreamIngest.close`.
        """
        return self._ingest(name, name, network=False)

    # --- the web UI -------------------------------------------------------------------

    async def _start_web(self) -> None:
        """Start the web UI beside the TCP server; a failure costs the web UI only.

        A taken default port (``web_port_fallback``) gives way to a free port: the
        :class:`~.events.WebUIStarted` event names the port that was taken.
        """
        from .web import serve_web

        where = format_address((self.config.web_address, self.config.web_port))
        port = self.config.web_port
        try:
            try:
                self.web = await serve_web(
                    self.config.web_address, port, self._web_snapshot,
                    requests=self._web_request, report=self._note,
                )
            except OSError as error:
                if not (error.errno == errno.EADDRINUSE and port and self.config.web_port_fallback):
                    raise
                port = 0
                self.web = await serve_web(
                    self.config.web_address, port, self._web_snapshot,
                    requests=self._web_request, report=self._note,
                )
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                reason = "the address is in use"
            else:
                reason = getattr(error, "strerror", None) or str(error)
            self.emit(WebUINotStarted(where, reason))
            return
        url = self.web.url
        self.emit(WebUIStarted(url, self.config.web_port if port != self.config.web_port else None))
        if can_open_browser(self.config.open_browser):
            open_browser(url)

    def web_clients(self) -> bool:
        """Whether at least one web client is connected now."""
        return self.web is not None and self.web.clients > 0

    def stored_changed(self) -> None:
        """After a source fed or closed: send web clients the recordings list if it changed."""
        if not self.web_clients():
            self._recordings_sent = None
            return
        assert self.web is not None
        from .feed import stream_summaries

        summaries = stream_summaries(self.store)
        if summaries != self._recordings_sent:
            self._recordings_sent = summaries
            self.web.push_recordings(summaries)

    def _web_snapshot(self, feed: FeedClient) -> None:
        """What a web client that joins starts with: the recordings, the newest records
        within the record and byte bounds, and the count of those left out
        (:func:`.feed.queue_snapshot`)."""
        from .feed import queue_snapshot

        queue_snapshot(feed, self.store, SNAPSHOT_RECORDS)

    async def _web_request(self, request: dict[str, object]) -> list[str | bytes]:
        """Answer a page's request: a download of the records it shows (see :mod:`.export`)."""
        from .export import ExportRequestError, build_export, parse_request, sources_for
        from .feed import to_json

        if request.get("type") != "download":
            return [to_json({"type": "error", "id": request.get("id"),
                             "error": f"unknown request type {request.get('type')!r}"})]
        try:
            request_id, selections = parse_request(request)
        except ExportRequestError as error:
            request_id = request.get("id")
            return [to_json({"type": "error", "id": request_id if isinstance(request_id, int) else None,
                             "error": str(error)})]
        sources = sources_for(self.store, selections)
        wanted = sum(s.count for s in selections)
        export = await asyncio.to_thread(build_export, sources, wanted)
        return [to_json(export.meta(request_id)), export.data]


def otlp_unavailable() -> str | None:
    """Why ``--otlp-port`` cannot be served (the extra is not installed), or None."""
    from ..otlp import EXTRA, OtlpUnavailable

    try:
        importlib.import_module(f"{__package__}.otlp_http")  # it imports opentelemetry-proto
    except OtlpUnavailable as error:
        cause = error.__cause__
        why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        return f"--otlp-port needs the {EXTRA} extra: pip install '{EXTRA}'{why}"
    return None


class WebFanout:
    """The ingests' :class:`~.ingest.RecordPrinter`: ``--print`` and the web clients.

    False (so an ingest does not even decode a frame) when there is no ``--print``
    and no web client with room in its queue. It takes records in columns
    (:attr:`columns`): each RECORDS message goes to the web clients as the one
    :class:`~rerun_logging.format.RecordColumns` it was decoded to, with no Python
    object per record; only ``--print`` turns them into records.
    """

    columns = True
    """Show me RECORDS messages as :class:`~rerun_logging.format.RecordColumns`."""

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer

    def __bool__(self) -> bool:
        web = self.viewer.web
        return self.viewer.printer is not None or (web is not None and web.wants_records)

    def skipped(self, info: RecordingInfo, records: int) -> None:
        """Records stored while every web client's queue was full: counted as missed."""
        if self.viewer.web is not None:
            self.viewer.web.skip_records(records)

    def show(self, info: RecordingInfo, messages: Sequence[Message]) -> None:
        """Print ``messages`` (``--print``) and push their records to the web clients:
        one batch per RECORDS message (its columns), one for any loose records."""
        if self.viewer.printer is not None:
            self.viewer.printer.show(info, record_messages(messages))
        web = self.viewer.web
        if web is not None and web.clients:
            records = [m for m in messages if isinstance(m, Record)]
            if records:
                web.push_records(info.recording_id, records, info.pid)
            for columns in messages:
                if isinstance(columns, RecordColumns) and len(columns):
                    web.push_records(info.recording_id, columns, info.pid)


class PeerReport:
    """What a TCP peer's ingest says (its ``report``), turned into events.

    Which event a line is comes from the ingest's state when it says it, never from
    its words: with a new error it was refused (:class:`~.events.PeerRefused`); once
    :meth:`closing` was called it tells how the peer closed
    (:class:`~.events.PeerDisconnected`); the first line once its stream started is
    the connection (:class:`~.events.PeerConnected`); anything else is a
    :class:`~.events.Note`. Set :attr:`ingest` before feeding it.
    """

    def __init__(self, emit: Callable[[ViewerEvent], None], peer: str) -> None:
        self.emit = emit
        self.peer = peer
        self.ingest: StreamIngest | None = None
        self._clean: bool | None = None
        """Set by :meth:`closing`: whether the stream ended cleanly."""
        self._connected = False
        self._refused = False

    def closing(self) -> None:
        """Call just before the ingest's ``close()``: what it says next is how the peer closed."""
        ingest = self.ingest
        assert ingest is not None
        key = ingest.key
        self._clean = key is not None and ingest.store.stream(key).ended and ingest.buffered == 0

    def __call__(self, text: str) -> None:
        ingest = self.ingest
        assert ingest is not None
        if ingest.error is not None and not self._refused:
            self._refused = True
            self.emit(PeerRefused(self.peer, ingest.error.offset, ingest.error.reason))
        elif self._clean is not None:
            self.emit(PeerDisconnected(self.peer, self._clean, text))
        elif ingest.key is not None and not self._connected:
            self._connected = True
            stream = ingest.store.stream(ingest.key)
            self.emit(PeerConnected(self.peer, describe_stream(stream), stream.frames_stored > 0))
        else:
            self.emit(Note(text))
