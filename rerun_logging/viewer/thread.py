"""The viewer on its own event loop in a daemon thread of another program.

Two programs host it: an app logging with ``sink="serve"`` (the serve sink feeds
it the app's own stream) and ``rerun-logging run --sink serve`` (every process
of the run streams to it over TCP). Both set it up the one way
:func:`page_config` says: the page on the address they were given, TCP on a free
loopback port for their processes.

The app's flusher thread hands it bytes (:meth:`ViewerThread.feed`); the loop
thread is the only one that touches the viewer's store, as in the standalone
viewer. What lies between the two threads is bounded: bytes handed over but not
yet taken by the loop are capped, and past the cap :meth:`feed` refuses (the sink
counts the records as dropped) instead of growing the app's memory. The viewer's
events (:mod:`.events`) reach the host's callable on the loop thread.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from typing import TYPE_CHECKING, Callable

from .. import own_threads
from .events import ViewerEvent
from .report import say
from .server import Viewer, ViewerConfig
from .store import DEFAULT_MEMORY_LIMIT

if TYPE_CHECKING:
    from .ingest import StreamIngest

MAX_HANDED_OVER = 32 * 1024 * 1024
"""Most bytes handed to the loop thread and not yet taken by it."""


class ServerBehind(BufferError):
    """The loop thread has not taken what it was handed; the bytes are refused."""


def page_config(
    host: str, port: int, *, port_given: bool = True, tcp_socket: socket.socket | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT, open_browser: bool = True,
) -> ViewerConfig:
    """The settings of a viewer that serves the page of an app or of a run.

    The web UI listens on ``host:port``; a port that was not given (the default)
    gives way to a free one when it is taken, a given one is kept (taken: no web
    UI, said once). TCP listens on loopback only, on a free port (or on
    ``tcp_socket``, already bound): the processes of the app or the run stream
    there, never another machine.
    """
    return ViewerConfig(
        bind="127.0.0.1", port=0, tcp_socket=tcp_socket,
        web_bind=host, web_port=port, web_port_fallback=not port_given,
        memory_limit=memory_limit, open_browser=open_browser,
    )


class ViewerThread:
    """Runs a :class:`~.server.Viewer` (TCP, web UI, an in-process source) in a thread.

    :meth:`start` returns once it listens; :meth:`feed` gives it this process's
    own stream (from one thread at a time), when it has a ``source_name`` (the
    serve sink; ``rerun-logging run --sink serve`` has none: every process of the
    run connects over TCP); :meth:`stop` ends it within a timeout.

    ``events`` receives the viewer's events on the loop thread (see
    :class:`~.server.Viewer`); without it they are said as lines through ``report``.
    """

    def __init__(
        self, config: ViewerConfig, report: Callable[[str], None] = say,
        source_name: str | None = None, max_handed_over: int = MAX_HANDED_OVER, *,
        events: Callable[[ViewerEvent], None] | None = None,
    ) -> None:
        self.config = config
        self.report = report
        self.events = events
        self.source_name = source_name
        self.max_handed_over = max_handed_over
        self.viewer: Viewer | None = None
        self.status: int | None = None
        """The viewer's exit status once it stopped."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._source: StreamIngest | None = None
        self._listening = False
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._handed_over = 0
        self._thread = threading.Thread(target=self._run, name="rerun-logging serve", daemon=True)

    # --- life cycle -------------------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Start the thread; wait until the viewer listens and its web UI started or
        failed (their events were reported by then); OSError if it cannot listen."""
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the server did not start within {timeout:g}s")
        if not self._listening:
            raise OSError(f"the server could not start (status {self.status})")

    def stop(self, timeout: float) -> None:
        """End this process's stream, stop the viewer, wait for the thread up to ``timeout``."""
        loop = self._loop
        if loop is None or not self._thread.is_alive():
            return
        try:
            loop.call_soon_threadsafe(self._stop)
        except RuntimeError:  # the loop already closed
            return
        self._thread.join(max(timeout, 0.0))

    def after_fork(self) -> None:
        """In a forked child: close the inherited listening sockets (the thread is gone)."""
        viewer, self.viewer, self._loop, self._source = self.viewer, None, None, None
        if viewer is None:
            return
        servers = [viewer.tcp_server, viewer.web.server if viewer.web else None]
        for server in servers:
            for sock in getattr(server, "sockets", None) or ():
                try:
                    os.close(sock.fileno())
                except OSError:
                    pass

    # --- data -------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Hand ``data`` (the next bytes of this process's stream) to the loop thread.

        Raises :class:`ServerBehind` when the loop has not taken
        :attr:`max_handed_over` bytes yet, OSError when the server is not running.
        """
        loop = self._loop
        if loop is None or self._source is None:
            raise OSError("the server is not running")
        with self._lock:
            if self._handed_over + len(data) > self.max_handed_over:
                raise ServerBehind(
                    f"the server thread is {self._handed_over} bytes behind; records dropped"
                )
            self._handed_over += len(data)
        try:
            loop.call_soon_threadsafe(self._take, data)
        except RuntimeError as error:  # the loop closed under us
            with self._lock:
                self._handed_over -= len(data)
            raise OSError("the server stopped") from error

    def sync(self, timeout: float) -> bool:
        """Wait until the loop took everything fed before; False on timeout."""
        loop = self._loop
        if loop is None:
            return False
        done = threading.Event()
        try:
            loop.call_soon_threadsafe(done.set)
        except RuntimeError:
            return False
        return done.wait(max(timeout, 0.0))

    @property
    def url(self) -> str | None:
        """The web UI's URL, or None when it is not served."""
        viewer = self.viewer
        return viewer.web.url if viewer is not None and viewer.web is not None else None

    @property
    def tcp_port(self) -> int | None:
        """The TCP port of the viewer (children of this process stream there)."""
        viewer = self.viewer
        if viewer is None or viewer.tcp_server is None or not viewer.tcp_server.sockets:
            return None
        return int(viewer.tcp_server.sockets[0].getsockname()[1])

    # --- the loop thread ----------------------------------------------------------------

    def join(self, timeout: float | None = None) -> None:
        """Wait until the viewer stopped (Ctrl-C, :meth:`stop`), up to ``timeout``."""
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the viewer's thread is still running."""
        return self._thread.is_alive()

    def _run(self) -> None:
        own_threads.enter()  # asyncio's and websockets' records here are never recorded
        try:
            asyncio.run(self._main())
        finally:
            own_threads.leave()
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        viewer = self.viewer = Viewer(self.config, report=self.report, events=self.events)
        running = asyncio.ensure_future(viewer.run())
        ready = asyncio.ensure_future(viewer.ready.wait())
        await asyncio.wait({running, ready}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        self._listening = viewer.ready.is_set()
        if self._listening and self.source_name is not None:
            self._source = viewer.local_source(self.source_name)
        self._ready.set()
        self.status = await running

    def _take(self, data: bytes) -> None:
        with self._lock:
            self._handed_over -= len(data)
        if self._source is not None and not self._source.finished:
            self._source.receive_data(data)
            if self.viewer is not None:
                self.viewer.stored_changed()

    def _stop(self) -> None:
        if self._source is not None:
            self._source.close(quiet=True)
            self._source = None
        if self.viewer is not None:
            self.viewer.stored_changed()
            self.viewer.stop()
