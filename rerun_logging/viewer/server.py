"""The viewer's asyncio shell: sockets, files, stdin, signals and timeouts.

Everything that decides lives in :mod:`.ingest` and :mod:`.store`; this module
only moves bytes between them and the outside world:

- a TCP server (``asyncio.start_server`` on one listening socket), one task per
  connection: greet with ``VIEWER_HELLO``, read chunks of at most 256 KiB, feed the
  connection's :class:`~.ingest.StreamIngest`, write back what it returns, enforce
  the deadlines of :class:`~.ingest.ReadDeadline`; a refused peer gets its REFUSED
  message and a graceful close, and no other peer notices;
- recording files and ``-`` (standard input), each read by a daemon thread and fed
  to an ingest on the event loop (the store has one owner: the loop);
- the web UI (:mod:`.web`) on ``--bind`` and ``--web-port``, beside the TCP
  server: while at least one web client is connected, the stored frames are
  decoded (through the same :class:`~.ingest.RecordPrinter` hook as ``--print``)
  and their records pushed live, with the recordings list whenever it changes; with
  no web client nothing is decoded for it. A client that joins gets a snapshot:
  the recordings list and the records of the most recent stored frames, at most
  :data:`SNAPSHOT_RECORDS` records. A web port that is taken costs the web UI only;
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
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, AsyncIterator, Callable, Mapping, Sequence, TextIO

from ..format import (
    HEADER, VIEWER_HELLO, Dropped, Message, Record, RecordingError, RecordingInfo, StreamDecoder,
    encode_frame, refused_message,
)
from ..reader import STDIN, open_source, source_name
from ..render import dropped_line, text_line
from ..spec import DEFAULT_HOST, DEFAULT_TCP_PORT, DEFAULT_WEB_PORT
from .ingest import ReadDeadline, StreamIngest
from .savedir import SaveDir
from .store import DEFAULT_MEMORY_LIMIT, RecordingStore, StoredFrame

if TYPE_CHECKING:
    from .feed import FeedClient
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
"""Most TCP peers at once; one more is refused (REFUSED) and closed."""
MAX_BUFFERED_BYTES = 256 * 1024 * 1024
"""Most bytes of unfinished frames held for all peers together (each is also capped
by the frame limit, 16 MiB); the peer that passes it is refused."""

SNAPSHOT_RECORDS = 100_000
"""Most records a web client that joins gets from what the store holds (the newest)."""
SNAPSHOT_BATCH = 1000
"""Most records in one ``records`` batch of a snapshot."""
WEB_CLOSE_TIMEOUT = 5.0

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_PORT_TAKEN = 3


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
        self._peers: dict[StreamIngest, int] = {}
        """Connected peers and the bytes of unfinished frames held for each."""

    async def run(self) -> int:
        """Check the sources, listen, load the sources, serve until stopped."""
        problem = self._check_setup()
        if problem:
            self.report(problem)
            return EXIT_USAGE
        try:
            sock = self.config.tcp_socket or listening_socket(self.config.bind, self.config.port)
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
        for path in self.config.sources:
            self._spawn(self._load_source(path))
        self.ready.set()
        await self._stop.wait()
        await self._shutdown(server)
        return EXIT_OK

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
            line += f"; {len(self.saver.files)} files in {self.saver.directory}"
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
        peer = peer_name(writer.get_extra_info("peername"))
        if len(self._peers) >= MAX_CONNECTIONS:
            await self._turn_away(peer, reader, writer, task)
            return
        ingest = self._ingest(f"tcp {peer}", peer, network=True)
        self._peers[ingest] = 0
        quiet = False
        try:
            writer.write(VIEWER_HELLO)
            quiet = await self._pump(ingest, reader, writer, peer)
            if ingest.error is not None:
                await linger(reader, writer)
        except asyncio.CancelledError:
            # Shutdown. Not re-raised: asyncio's streams (3.11) log a cancelled
            # connection task as an error; this task has nothing left to do.
            quiet = True
        except (ConnectionError, OSError):
            pass  # the peer went away: close() below says whether it tore a frame
        except Exception as error:  # a bug must cost one connection, not the viewer
            self.report(f"internal error with {peer}: {error!r}; connection closed")
            quiet = True
        finally:
            self._peers.pop(ingest, None)
            ingest.close(quiet=quiet)
            self.stored_changed()
            writer.close()
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]

    async def _turn_away(
        self, peer: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
        task: asyncio.Task[object] | None,
    ) -> None:
        """A peer beyond MAX_CONNECTIONS: greeted, refused, closed; the others never notice."""
        reason = f"too many connections (the viewer takes {MAX_CONNECTIONS} at once)"
        self.report(f"refused {peer}: {reason}")
        try:
            writer.write(VIEWER_HELLO + encode_frame(refused_message(reason)))
            await linger(reader, writer)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]

    async def _pump(
        self, ingest: StreamIngest, reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter, peer: str,
    ) -> bool:
        """Read, feed, answer until the peer closes or is refused; True if a timeout ended it."""
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
            replies = ingest.feed(chunk)
            replies += self._check_buffered(ingest)
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

    def _check_buffered(self, ingest: StreamIngest) -> list[bytes]:
        """Refuse ``ingest`` if the unfinished frames of all peers now pass MAX_BUFFERED_BYTES."""
        self._peers[ingest] = ingest.buffered
        total = sum(self._peers.values())
        if total <= MAX_BUFFERED_BYTES:
            return []
        self._peers[ingest] = 0
        return ingest.refuse(
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
                ingest.feed(chunk)
                self.stored_changed()
                if ingest.finished:
                    break
        except asyncio.CancelledError:
            quiet = True
            raise
        except OSError as error:
            self.report(f"{name}: cannot read: {error.strerror or error}")
        finally:
            ingest.close(quiet=quiet)
            self.stored_changed()

    # --- in-process sources ------------------------------------------------------------

    def local_source(self, name: str) -> StreamIngest:
        """An ingest for bytes this process produces (the serve sink's own stream).

        Call it and :meth:`StreamIngest.feed` on the viewer's loop only; after each
        feed call :meth:`stored_changed`. Close it with :meth:`StreamIngest.close`.
        """
        return self._ingest(name, name, network=False)

    # --- the web UI -------------------------------------------------------------------

    async def _start_web(self) -> None:
        """Start the web UI beside the TCP server; a failure costs the web UI only."""
        from .web import serve_web

        where = format_address((self.config.web_address, self.config.web_port))
        try:
            self.web = await serve_web(
                self.config.web_address, self.config.web_port, self._web_snapshot,
                requests=self._web_request,
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
        """What a web client that joins starts with: the recordings, the newest records."""
        from .feed import stream_summaries

        feed.recordings(stream_summaries(self.store))
        for info, records in snapshot_records(self.store, SNAPSHOT_RECORDS):
            for start in range(0, len(records), SNAPSHOT_BATCH):
                feed.records(info.recording_id, records[start:start + SNAPSHOT_BATCH], info.pid)


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


def snapshot_records(
    store: RecordingStore, limit: int = SNAPSHOT_RECORDS
) -> list[tuple[RecordingInfo, list[Record]]]:
    """The records of the newest stored frames, at most ``limit`` in all, oldest first.

    Whole frames only, newest first until the next one would pass ``limit``; runs
    of consecutive frames of one stream are decoded together. A frame that does
    not decode (never expected: frames are checked on the way in) ends its run.
    """
    chosen: list[StoredFrame] = []
    total = 0
    for frame in store.newest_frames():
        if total + frame.records > limit:
            break
        total += frame.records
        chosen.append(frame)
    chosen.reverse()
    out: list[tuple[RecordingInfo, list[Record]]] = []
    start = 0
    while start < len(chosen):
        key = chosen[start].key
        end = start
        while end < len(chosen) and chosen[end].key == key:
            end += 1
        info = store.stream(key).info
        decoder = StreamDecoder("<snapshot>")
        decoder.feed(HEADER + b"".join(f.raw for f in chosen[start:end]))
        records: list[Record] = []
        try:
            for frame in decoder.frames():
                records.extend(m for m in decoder.decode_payload(frame) if isinstance(m, Record))
        except RecordingError:
            pass
        if records:
            out.append((info, records))
        start = end
    return out


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
