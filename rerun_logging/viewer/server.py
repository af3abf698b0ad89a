"""The viewer's asyncio shell: sockets, files, stdin, signals and timeouts.

Everything that decides lives in :mod:`.ingest` and :mod:`.store`; this module
only moves bytes between them and the outside world:

- a TCP server (``asyncio.start_server`` on one listening socket), one task per
  connection: greet with ``VIEWER_HELLO``, read chunks of at most 256 KiB, feed the
  connection's :class:`~.ingest.StreamIngest`, write back what it returns, enforce
  the deadlines of :class:`~.ingest.ReadDeadline`; a refused peer gets its REFUSED
  message and a graceful close, and no other peer notices. At most
  :data:`MAX_CONNECTIONS` peers: a new one is always taken, and when the table is
  full one peer makes room for it (see :class:`PeerTable`); failed accepts (out of
  file descriptors) are one line per burst, never a traceback;
- recording files and ``-`` (standard input), each read by a daemon thread and fed
  to an ingest on the event loop (the store has one owner: the loop);
- the web UI (:mod:`.web`) on ``--bind`` and ``--web-port``, beside the TCP
  server: while at least one web client is connected, the stored frames are
  decoded (through the same :class:`~.ingest.RecordPrinter` hook as ``--print``)
  and their records pushed live, with the recordings list whenever it changes; with
  no web client nothing is decoded for it. A client that joins gets a snapshot:
  the recordings list and the records of the most recent stored frames, at most
  :data:`SNAPSHOT_RECORDS` records. A web port that is taken costs the web UI only
  (a default port that is taken gives way to a free one, said once:
  :attr:`ViewerConfig.web_port_fallback`);
- SIGINT/SIGTERM: stop accepting, close every source, finish and fsync saved
  files, log a summary line, exit 0.

Everything the viewer says goes to standard error as ``rerun-logging viewer:
...`` lines, one per event; ``--print`` writes records to standard output.
"""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import socket
import sys
import threading
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, AsyncIterator, Callable, Iterator, Mapping, Sequence, TextIO

try:
    import resource  # imported here: out of descriptors, an extension module cannot be opened
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

from ..format import VIEWER_HELLO, Dropped, Message, Record, RecordingInfo
from ..reader import STDIN, open_source, source_name
from ..render import dropped_line, text_line
from ..exitcodes import EXIT_OK, EXIT_PORT_TAKEN, EXIT_USAGE
from ..spec import DEFAULT_HOST, DEFAULT_TCP_PORT, DEFAULT_WEB_PORT
from ..wording import counted
from .bursts import BurstReport
from .ingest import ReadDeadline, StreamIngest
from .savedir import SaveDir
from .store import DEFAULT_MEMORY_LIMIT, RecordingStore

if TYPE_CHECKING:
    from .feed import FeedClient
    from .state import ViewerState
    from .web import WebServer

PREFIX = "rerun-logging viewer"
"""How every line the viewer writes on standard error starts."""
DEFAULT_BIND = DEFAULT_HOST
DEFAULT_PORT = DEFAULT_TCP_PORT
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
DEFAULT_FRAME_TIMEOUT = 30.0
CHUNK_SIZE = 256 * 1024
"""Most bytes read from a source at once."""
LINGER_SECONDS = 1.0
LINGER_BYTES = 1024 * 1024
"""After a refusal, how long and how much the viewer reads (and discards) before
closing, so the peer receives the REFUSED message instead of a reset."""

MAX_CONNECTIONS = 256
"""Most TCP peers at once. One more is taken, and one peer makes room for it (REFUSED,
then closed): see :class:`PeerTable`."""
IDLE_EVICT_AFTER = 5.0
"""A peer that sent nothing for this long is the first to make room for a new one."""
MAX_LINGERING = 64
"""Most refused peers read (and discarded) at once before their close (see
:func:`linger`); past it a refused peer is closed at once."""
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
    """Open a browser on the web UI (see :func:`can_open_browser`)."""
    web_bind: str | None = None
    """Address of the web UI; None: the same as ``bind``. (The serve sink keeps its
    TCP port on loopback for its children while the UI may listen elsewhere.)"""
    web: bool = True
    """Serve the web UI at all."""
    web_port_hint: str = "the viewer runs without it (choose another --web-port)"
    """What the report says after the web UI could not listen."""
    listening: str = "listening on"
    """How the report names the TCP address (the serve sink's is for child processes)."""
    tcp_socket: socket.socket | None = None
    """A TCP socket already listening, used instead of binding ``bind:port`` (the serve
    sink binds its port for child processes before its server thread starts)."""
    port_fallback: bool = False
    """A taken ``port`` (a default the user did not name) gives way to a free port,
    said in one line, instead of exit status 3 (``rerun-logging FILE`` while another
    viewer runs)."""
    web_port_fallback: bool = False
    """A taken ``web_port`` (a default the user did not name) gives way to a free
    port, said in one line, instead of running without the web UI."""
    state_file: bool = False
    """Write the state file (:mod:`.state`: pid, TCP address, page URL) that
    ``rerun-logging stop`` and the spawn sink read; removed at shutdown."""

    @property
    def web_address(self) -> str:
        """Where the web UI listens."""
        return self.bind if self.web_bind is None else self.web_bind


def say(text: str, prefix: str = PREFIX) -> None:
    """One line on standard error, prefixed ``rerun-logging viewer:`` (or ``prefix``)."""
    try:
        sys.stderr.write(f"{prefix}: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def run(config: ViewerConfig) -> int:
    """Run the viewer until SIGINT or SIGTERM; return the exit status."""
    try:
        return asyncio.run(Viewer(config).run())
    except KeyboardInterrupt:  # a Ctrl-C before the signal handlers were installed
        return EXIT_OK


# --- the viewer -----------------------------------------------------------------------


class Viewer:
    """The running viewer: its store, save directory, printer, server and sources."""

    def __init__(
        self,
        config: ViewerConfig,
        report: Callable[[str], None] = say,
        out: TextIO | None = None,
    ) -> None:
        self.config = config
        self.report = report
        self.store = RecordingStore(config.memory_limit)
        self.saver = SaveDir(config.save_dir, report) if config.save_dir else None
        self.printer: TextPrinter | None = None
        if config.print_records:
            stream = out if out is not None else sys.stdout
            color = stream.isatty() if config.color is None else config.color
            self.printer = TextPrinter(stream, color, report)
        self.web: WebServer | None = None
        self.tcp_server: asyncio.AbstractServer | None = None
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

    async def run(self) -> int:
        """Check the sources, listen, load the sources, serve until stopped."""
        problem = self._check_setup()
        if problem:
            self.report(problem)
            return EXIT_USAGE
        asyncio.get_running_loop().set_exception_handler(self._loop_exception)
        try:
            sock = self.config.tcp_socket or self._listen_tcp()
        except OSError as error:
            return self._cannot_listen(error)
        server = self.tcp_server = await asyncio.start_server(
            self._serve_connection, sock=sock, limit=CHUNK_SIZE
        )
        self.address = format_address(sock.getsockname())
        self._install_signal_handlers()
        self.report(f"{self.config.listening} {self.address}")
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
        and ``port_fallback`` allows it (said once)."""
        try:
            return listening_socket(self.config.bind, self.config.port)
        except OSError as error:
            if not (self.config.port_fallback and self.config.port and error.errno == errno.EADDRINUSE):
                raise
        sock = listening_socket(self.config.bind, 0)
        self.report(f"port {self.config.port} is taken (another viewer probably runs there); "
                    f"using port {sock.getsockname()[1]} instead")
        return sock

    def _write_state(self, sock: socket.socket) -> ViewerState | None:
        """Write the state file when asked to; None when not asked or it cannot be written."""
        if not self.config.state_file:
            return None
        from .state import ViewerState

        state = ViewerState(os.getpid(), format_address(sock.getsockname()),
                            self.web.url if self.web is not None else None)
        problem = state.write()
        if problem is not None:
            self.report(f"no state file ({problem}); `rerun-logging stop` cannot find this viewer")
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
        return None

    def _cannot_listen(self, error: OSError) -> int:
        where = f"{self.config.bind}:{self.config.port}"
        if error.errno == errno.EADDRINUSE:
            self.report(f"cannot listen on {where}: the address is in use (another viewer "
                        "probably runs there; apps can stream to it)")
            return EXIT_PORT_TAKEN
        self.report(f"cannot listen on {where}: {getattr(error, 'strerror', None) or error}")
        return EXIT_USAGE

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, self.stop)
            except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
                pass

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
        """A failed accept is one line per burst (asyncio pauses the socket 1 s); the rest as asyncio's."""
        if context.get("message") not in ACCEPT_ERRORS:
            loop.default_exception_handler(context)
            return
        if not self._accept_errors.note(loop.time()):
            return
        error = context.get("exception")
        reason = getattr(error, "strerror", None) or str(error or context.get("message"))
        where = ""
        sock = context.get("socket")
        if sock is not None:
            try:
                where = f" on {format_address(sock.getsockname())}"  # type: ignore[attr-defined]
            except (AttributeError, OSError):
                pass
        self.report(f"cannot accept connections{where}: {reason}{fd_limit()}; the port pauses "
                    f"1s and accepts again (one line per burst){self._accept_errors.suffix()}")

    def _spawn(self, coroutine: object) -> None:
        task = asyncio.ensure_future(coroutine)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shutdown(self, server: asyncio.AbstractServer) -> None:
        server.close()
        if self.web is not None:
            try:
                await asyncio.wait_for(self.web.close(), WEB_CLOSE_TIMEOUT)
            except (asyncio.TimeoutError, OSError):
                pass
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.saver is not None:
            self.saver.close_all()
        line = f"stopped: {self.store.summary()}"
        if self.saver is not None:
            line += f"; {counted(len(self.saver.files), 'file')} in {self.saver.directory}"
        self.report(line)

    def _ingest(self, source: str, name: str, network: bool) -> StreamIngest:
        return StreamIngest(
            source, self.store, name=name, saver=self.saver, printer=self.feed,
            report=self.report, network=network,
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
        ingest = self._ingest(f"tcp {peer}", peer, network=True)
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
            self.report(f"internal error with {peer}: {error!r}; connection closed")
            quiet = True
        finally:
            self.peers.remove(slot)
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
        """:func:`linger`, for at most MAX_LINGERING peers at once (a flood of refusals
        must not hold a descriptor per refusal); beyond, closed at once."""
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
                self.report(f"timed out {peer}: {due.reason}")
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
                    self.report(f"timed out {peer}: it did not read the viewer's replies "
                                f"within {self.config.frame_timeout:g}s")
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
            async for chunk in read_chunks(path):
                ingest.receive_data(chunk)
                self.stored_changed()
                if ingest.finished:
                    break
        except asyncio.CancelledError:
            quiet = True
            raise
        except OSError as error:
            self.report(f"{name}: cannot read: {error.strerror or error}")
        else:
            if ingest.received == 0:
                self.report(f"{name}: empty, nothing to load")
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

        A taken default port (``web_port_fallback``) gives way to a free port: the one
        line that gives the URL names the port that was taken.
        """
        from .web import serve_web

        where = format_address((self.config.web_address, self.config.web_port))
        port = self.config.web_port
        try:
            try:
                self.web = await serve_web(
                    self.config.web_address, port, self._web_snapshot,
                    requests=self._web_request, report=self.report,
                )
            except OSError as error:
                if not (error.errno == errno.EADDRINUSE and port and self.config.web_port_fallback):
                    raise
                port = 0
                self.web = await serve_web(
                    self.config.web_address, port, self._web_snapshot,
                    requests=self._web_request, report=self.report,
                )
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                reason = "the address is in use"
            else:
                reason = getattr(error, "strerror", None) or str(error)
            self.report(f"web UI not started: cannot listen on {where}: {reason}; "
                        f"{self.config.web_port_hint}")
            return
        url = self.web.url
        if port != self.config.web_port:
            self.report(f"port {self.config.web_port} is taken; web UI on {url}")
        else:
            self.report(f"web UI on {url}")
        if can_open_browser(self.config.open_browser):
            threading.Thread(target=_open_browser, args=(url,), name="open browser",
                             daemon=True).start()

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


@dataclass(eq=False)
class PeerSlot:
    """One TCP peer in the viewer's table: who, since when, its last byte, what it holds."""

    ingest: StreamIngest
    name: str
    """How report lines name it: ``127.0.0.1:5555``."""
    host: str
    """Its address without the port: peers are shared fairly between addresses."""
    connected_at: float
    last_received: float
    """Monotonic time of its last byte (of its connection before the first)."""
    task: asyncio.Task[None] | None = None
    buffered: int = 0
    """Bytes of an unfinished frame held for it."""
    evicted: str | None = None
    """Why it makes room for a new peer, once it was chosen to."""


class PeerTable:
    """The TCP peers the viewer holds, and which one makes room for a new one. Pure.

    A new peer is always taken (:meth:`admit`): nobody can hold the slots against
    an app. When ``capacity`` peers are held, one is evicted for it:

    1. the peer idle longest (no byte for the longest time), once idle for
       ``idle_after`` seconds: silent peers go first, and an app that only paused
       reconnects when it has something to send;
    2. when every peer is busy, the oldest connection of the address holding the
       most: a host that floods evicts its own first, and on one address the slots
       rotate, each connection keeping its slot until ``capacity`` newer ones came.

    The evicted peer is told why (REFUSED): an app reconnects with backoff and
    resends the frames not acknowledged, which the viewer de-duplicates, so it
    loses nothing. Times are monotonic seconds passed in by the caller.
    """

    def __init__(self, idle_after: float = IDLE_EVICT_AFTER) -> None:
        self.idle_after = idle_after
        self._slots: dict[PeerSlot, None] = {}
        """Held peers in the order they came (oldest first)."""
        self.buffered = 0
        """Bytes of unfinished frames held for all peers together."""

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self) -> Iterator[PeerSlot]:
        return iter(list(self._slots))

    def admit(self, slot: PeerSlot, now: float, capacity: int) -> PeerSlot | None:
        """Hold ``slot``; return the peer evicted for it (its ``evicted`` says why), or None."""
        victim = None
        if self._slots and len(self._slots) >= capacity:
            victim, reason = self.choose(now, capacity)
            victim.evicted = reason
            self.remove(victim)
        self._slots[slot] = None
        slot.buffered = 0
        return victim

    def choose(self, now: float, capacity: int) -> tuple[PeerSlot, str]:
        """The peer that makes room for a new one, and the reason it is told."""
        full = f"too many connections (the viewer takes {capacity} at once): closed to make room for a new one"
        idle = min(self._slots, key=lambda s: s.last_received)
        idle_for = now - idle.last_received
        if idle_for >= self.idle_after:
            return idle, f"{full}, as the one idle longest ({idle_for:.1f}s without a byte)"
        counts = Counter(s.host for s in self._slots)
        host, held = counts.most_common(1)[0]
        oldest = next(s for s in self._slots if s.host == host)
        return oldest, (
            f"{full}, as the oldest ({now - oldest.connected_at:.1f}s) of the {held} from {host}, "
            f"the address holding the most; none was idle for {self.idle_after:g}s"
        )

    def received(self, slot: PeerSlot, now: float, buffered: int) -> None:
        """``slot`` received bytes at ``now`` and holds ``buffered`` of an unfinished frame."""
        slot.last_received = now
        if slot in self._slots:
            self.buffered += buffered - slot.buffered
            slot.buffered = buffered

    def remove(self, slot: PeerSlot) -> None:
        """``slot`` no longer holds a place (closed, refused or evicted); idempotent."""
        if self._slots.pop(slot, False) is None:
            self.buffered -= slot.buffered
        slot.buffered = 0


class WebFanout:
    """The ingests' :class:`~.ingest.RecordPrinter`: ``--print`` and the web clients.

    False (so an ingest does not even decode a frame) when there is no ``--print``
    and no web client with room in its queue.
    """

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
        """Print ``messages`` (``--print``) and push their records to the web clients."""
        if self.viewer.printer is not None:
            self.viewer.printer.show(info, messages)
        web = self.viewer.web
        if web is not None and web.clients:
            records = [m for m in messages if isinstance(m, Record)]
            if records:
                web.push_records(info.recording_id, records, info.pid)


def can_open_browser(wanted: bool, env: Mapping[str, str] | None = None) -> bool:
    """Whether to open a browser on the web UI: asked to, not in CI, a display to show it on.

    ``CI`` set: never. On Linux and other Unixes a display is needed (``DISPLAY``
    or ``WAYLAND_DISPLAY``); macOS and Windows always have one.
    """
    env = os.environ if env is None else env
    if not wanted or env.get("CI"):
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def _open_browser(url: str) -> None:
    import webbrowser  # here: the viewer's start-up (and a spawned viewer's) stays quick

    try:
        webbrowser.open(url)
    except Exception:  # a browser that fails to start is no failure of the viewer
        pass


# --- output -----------------------------------------------------------------------------


class TextPrinter:
    """``--print``: one line per record (its app and pid in it), and a line per drop report.

    Tracebacks and stacks are left out to keep one line per record (``rerun-logging
    print`` on a saved file shows them). Writes what the terminal's encoding
    cannot (lone surrogates) as escapes; a closed output stops the printing, once
    reported, and nothing else.
    """

    def __init__(self, out: TextIO, color: bool, report: Callable[[str], None]) -> None:
        reconfigure = getattr(out, "reconfigure", None)
        if callable(reconfigure):
            reconfigure(errors="backslashreplace")
        self.out = out
        self.color = color
        self.report = report
        self.broken = False

    def show(self, info: RecordingInfo, messages: Sequence[Message]) -> None:
        """Print the records and drop reports among ``messages``."""
        if self.broken:
            return
        lines = record_lines(info, messages, self.color)
        if not lines:
            return
        try:
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()
        except (OSError, ValueError) as error:
            self.broken = True
            self.report(f"--print stopped: cannot write to standard output ({error})")


def record_lines(info: RecordingInfo, messages: Sequence[Message], color: bool) -> list[str]:
    """The ``--print`` lines of ``messages``: one per record, one per drop report.

    A record's line is ``rerun-logging print``'s, with the exception's type and
    value (not its traceback) at the end, and line breaks escaped: one record,
    one line, whatever its message holds.
    """
    lines: list[str] = []
    for message in messages:
        if isinstance(message, Record):
            lines.append(record_line(message, info, color))
        elif isinstance(message, Dropped):
            lines.append(_escape_breaks(f"{info.application_id}[{info.pid}] {dropped_line(message)}"))
    return lines


def record_line(record: Record, info: RecordingInfo, color: bool) -> str:
    """One record as one line (see :func:`record_lines`)."""
    line = text_line(replace(record, exception=None, stack_info=None), info, color)
    if record.exception is not None:
        line += f" exception={record.exception.type}: {record.exception.value}"
    return _escape_breaks(line)


def _escape_breaks(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


# --- sockets and sources ------------------------------------------------------------------


def listening_socket(host: str, port: int) -> socket.socket:
    """A non-blocking socket listening on the first address ``host`` resolves to.

    One socket, so ``--port 0`` picks one port even when a name resolves to
    several addresses. SO_REUSEADDR lets a restarted viewer take its port back
    from connections in TIME_WAIT; it never lets two viewers listen on one port.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def format_address(address: object) -> str:
    """``host:port``, or ``[v6host]:port``, from a socket address tuple."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = str(address[0]), address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return str(address)


def peer_name(address: object) -> str:
    """How report lines name a peer: ``127.0.0.1:5555``."""
    return format_address(address) if address else "<unknown peer>"


def peer_host(address: object) -> str:
    """A peer's address without its port: ``127.0.0.1`` (connections are shared per host)."""
    if isinstance(address, tuple) and address:
        return str(address[0])
    return "<unknown peer>"


def fd_limit() -> str:
    """`` (RLIMIT_NOFILE N)``: what a report of running out of descriptors adds ("" if unknown)."""
    if resource is None:
        return ""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return f" (RLIMIT_NOFILE {soft})" if soft != resource.RLIM_INFINITY else ""


def unreadable_source(path: str) -> str | None:
    """Why ``path`` cannot be loaded (missing, a directory, stdin a terminal), or None."""
    if path == STDIN:
        if sys.stdin is None or sys.stdin.isatty():
            return (f"{source_name(STDIN)}: standard input is a terminal; pipe a recording "
                    "into it: python app.py | rerun-logging -")
        return None
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        return f"{path}: cannot read: {error.strerror or error}"
    return None


async def read_chunks(path: str) -> AsyncIterator[bytes]:
    """The chunks of ``path`` (or ``-``), read by a daemon thread, handed to the loop.

    The thread never blocks the event loop and, being a daemon, never holds the
    process open at shutdown (a pipe may stay silent forever). At most a few
    chunks wait in between (back-pressure). Raises the thread's OSError.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | OSError] = asyncio.Queue(maxsize=4)

    def put(item: bytes | OSError) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def pump() -> None:
        try:
            with open_source(path) as stream:
                read = getattr(stream, "read1", None) or stream.read
                while True:
                    chunk = read(CHUNK_SIZE)
                    put(chunk)
                    if not chunk:
                        return
        except OSError as error:
            put(error)
        except RuntimeError:  # the loop is gone: the viewer is shutting down
            pass

    threading.Thread(target=pump, name=f"read {source_name(path)}", daemon=True).start()
    while True:
        item = await queue.get()
        if isinstance(item, OSError):
            raise item
        if not item:
            return
        yield item


async def linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Close gracefully after a refusal: send FIN, then read and discard for a moment.

    Closing a socket with unread data makes the kernel send a reset, and a reset
    can destroy the REFUSED message before the peer reads it.
    """
    try:
        if writer.can_write_eof():
            writer.write_eof()
        loop = asyncio.get_running_loop()
        until = loop.time() + LINGER_SECONDS
        discarded = 0
        while discarded < LINGER_BYTES:
            chunk = await asyncio.wait_for(reader.read(CHUNK_SIZE), max(until - loop.time(), 0.0))
            if not chunk:
                return
            discarded += len(chunk)
    except (asyncio.TimeoutError, ConnectionError, OSError):
        pass
