"""The serve sink: the app itself serves the web viewer, from a background thread.

The server is the standalone viewer's own code (:class:`~..viewer.thread.ViewerThread`,
set up by :func:`~..viewer.thread.page_config` as ``rerun-logging run`` sets up its
own): the same store, feed, page and security checks. Its web UI listens on the
sink's address (``serve[:HOST:PORT]``, default 127.0.0.1:7271); beside it a TCP
port on loopback takes the streams of this app's forked children, which switch to
a connect sink aimed at it, so one page shows the whole process tree.

The loopback TCP port for children is bound by :func:`bind_child_port` on the
thread that logs the handler's first record, before the flusher starts, and
announced to child processes at once (:mod:`rerun_logging.family`): a child forked
right after the first record already knows where to stream, although the server
thread may still be starting.

The server starts with the stream (the handler's first record), says the page's
URL and opens a browser where one can be shown (never with ``CI`` set, never
without a display). A defaulted port (``serve``, 7271) that is taken, by a viewer
that a spawn left running for instance, gives way to a free port, said in the line
that gives the URL; a port written in the spec (``serve:HOST:PORT``) is kept, and
when it is taken the app goes on without the page, said once. The server's events
(:mod:`~..viewer.events`) are said as this sink's lines, but for the TCP port of
the children (:class:`~..viewer.events.Listening`), which they find in their
environment. It holds at most the handler's ``buffer_size`` bytes of frames,
evicting the oldest, and lives until the handler closes, normally at the app's
exit.
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING

from .. import family
from ..backoff import Backoff
from ..spec import DEFAULT_WEB_PORT, SinkSpec
from .base import Sink
from .memory import MemorySink
from .mode import Mode
from .tcp import NETWORK_MODULES, ConnectSink, backoff_of

if TYPE_CHECKING:
    from . import SinkOptions
    from ..viewer.events import ViewerEvent
    from ..viewer.server import ViewerConfig
    from ..viewer.thread import ViewerThread

START_TIMEOUT = 10.0
"""How long the handler's thread waits for the server to listen."""
WEB_HINT = "records are kept in memory only (serve on another port: serve:HOST:PORT)"
"""What the sink adds when its web UI cannot listen."""

_child_ports: dict[str, tuple[int, socket.socket]] = {}
"""Loopback sockets bound for the serve sinks of this process, by spec, with the pid
that bound them (a forked child's copy is its parent's, not its own)."""


def bind_child_port(spec: SinkSpec) -> None:
    """Bind and announce the loopback TCP port of ``spec``'s server, once per process.

    Called on the app's thread when a handler starts (its first record). A process
    whose parent serves ``spec`` streams there instead (see ``open_sink``), and
    binds nothing; a port that cannot be bound is left to the server to report.
    """
    name = str(spec)
    held = _child_ports.get(name)
    if (held is not None and held[0] == os.getpid()) or family.ancestor_server(name) is not None:
        return
    from ..viewer.sockets import listening_socket

    try:
        sock = listening_socket("127.0.0.1", 0)
    except OSError:
        return
    _child_ports[name] = (os.getpid(), sock)
    family.announce_server(name, int(sock.getsockname()[1]))


def _take_child_port(name: str) -> socket.socket | None:
    """The socket :func:`bind_child_port` bound for ``name`` in this process, once."""
    held = _child_ports.get(name)
    if held is None or held[0] != os.getpid():
        return None
    del _child_ports[name]
    return held[1]


class ServeSink(Sink):
    """Feeds this process's frames to an in-app viewer serving the web UI on ``host:port``."""

    mode = "serve"

    def __init__(
        self, host: str, port: int, buffer_size: int, backoff: Backoff, open_browser: bool = True,
        port_given: bool = True,
    ) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.port_given = port_given
        """False for a defaulted port (``serve``): taken, it gives way to a free one."""
        self.name = str(SinkSpec("serve", host=host, port=port))
        self.buffer_size = buffer_size
        self.backoff = backoff
        self.open_browser = open_browser
        self.server: ViewerThread | None = None
        """The in-app viewer, once the stream started."""
        self.url: str | None = None

    def start(self, header: bytes) -> None:
        """Start the server thread and feed it the stream header; failures are reported."""
        super().start(header)
        from ..viewer.thread import ViewerThread

        self.server = ViewerThread(self.viewer_config(), source_name=f"this process ({os.getpid()})",
                                   events=self._event)
        try:
            self.server.start(START_TIMEOUT)
            self.server.feed(header)
        except OSError as error:
            self.error = f"cannot serve: {error}"
            self._say(self.error)
        self.url = self.server.url
        if self.server.tcp_port is not None:
            family.announce_server(self.name, self.server.tcp_port)

    def viewer_config(self) -> ViewerConfig:
        """The server's settings: the web UI on the sink's address, TCP on loopback only."""
        from ..viewer.thread import page_config

        return page_config(
            self.host, self.port, port_given=self.port_given,
            tcp_socket=_take_child_port(self.name), memory_limit=self.buffer_size,
            open_browser=self.open_browser,
        )

    def _event(self, event: ViewerEvent) -> None:
        """An event of the server (on its thread): said as a line of this sink, but for
        the children's TCP port (the user needs only the URL)."""
        from ..viewer.events import Listening
        from ..viewer.report import event_line

        if not isinstance(event, Listening):
            self._say(event_line(event, WEB_HINT))

    def _write(self, data: bytes) -> None:
        if self.server is None:
            raise OSError("the server is not running")
        self.server.feed(data)

    def flush(self, deadline: float) -> None:
        """Wait until the server thread took everything written."""
        if self.server is not None:
            self.server.sync(deadline - time.monotonic())

    def close(self, end_frame: bytes, deadline: float) -> None:
        """End the stream, stop serving (the page says the server went away)."""
        self.write(end_frame, 0)
        if self.server is not None:
            self.server.sync(deadline - time.monotonic())
            self.server.stop(deadline - time.monotonic())

    def after_fork(self) -> Sink:
        """A forked child streams to the parent's server over its loopback TCP port."""
        port = self.server.tcp_port if self.server is not None else None
        if self.server is not None:
            self.server.after_fork()
        if port is None:
            return MemorySink(self.buffer_size)
        return ConnectSink("127.0.0.1", port, self.buffer_size, self.backoff.fresh())


class ServeMode(Mode):
    """``serve[:HOST:PORT]``: the app serves the web viewer itself, from a thread of its own.

    A process whose parent serves the same spec streams into the parent's page
    instead (the family announces the parent's loopback port)."""

    name = "serve"
    argument = "address"
    default_port = DEFAULT_WEB_PORT
    any_port = True
    serves_page = True
    modules = (
        *NETWORK_MODULES,
        "rerun_logging.sinks.serve",
        "rerun_logging.viewer.thread",
        "rerun_logging.viewer.server",
        "rerun_logging.viewer.events",
        "rerun_logging.viewer.report",
        "rerun_logging.viewer.web",
        "rerun_logging.viewer.feed",
        "rerun_logging.viewer.export",
        "rerun_logging.viewer.state",
        "websockets.asyncio.server",
        "websockets.http11",
        "websockets.exceptions",
        "webbrowser",
    )

    def open(self, spec: SinkSpec, options: SinkOptions) -> Sink:
        assert spec.host is not None and spec.port is not None
        port = family.ancestor_server(str(spec))
        if port is not None:
            return ConnectSink("127.0.0.1", port, options.buffer_size, backoff_of(options))
        return ServeSink(spec.host, spec.port, options.buffer_size, backoff_of(options),
                         options.open_browser, port_given=spec.port_given)

    def before_start(self, spec: SinkSpec) -> None:
        """Bind the port the app's children stream to, so that a child forked right
        after the first record knows it."""
        bind_child_port(spec)

    def for_run(self, spec: SinkSpec) -> str:
        # A defaulted port may give way to a free one (the runner's server): unwritten.
        return str(spec) if spec.port_given else self.name
