"""The serve sink: the app itself serves the web viewer, from a background thread.

The server is the standalone viewer's own code (:class:`~..viewer.thread.ViewerThread`):
the same store, feed, page and security checks. Its web UI listens on the sink's
address (``serve[:HOST:PORT]``, default 127.0.0.1:9090); beside it a TCP port on
loopback takes the streams of this app's forked children, which switch to a
connect sink aimed at it, so one page shows the whole process tree.

The server starts with the stream (the handler's first record), prints the page's
URL and opens a browser where one can be shown (never with ``CI`` set, never
without a display). It holds at most the handler's ``buffer_size`` bytes of
frames, evicting the oldest, and lives until the handler closes, normally at the
app's exit.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from .. import family
from ..backoff import Backoff
from ..spec import SinkSpec
from .base import Sink

if TYPE_CHECKING:
    from ..viewer.server import ViewerConfig
    from ..viewer.thread import ViewerThread

START_TIMEOUT = 10.0
"""How long the handler's thread waits for the server to listen."""


class ServeSink(Sink):
    """Feeds this process's frames to an in-app viewer serving the web UI on ``host:port``."""

    mode = "serve"

    def __init__(
        self, host: str, port: int, memory_limit: int, backoff: Backoff, open_browser: bool = True,
    ) -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.name = str(SinkSpec("serve", host=host, port=port))
        self.memory_limit = memory_limit
        self.backoff = backoff
        self.open_browser = open_browser
        self.server: ViewerThread | None = None
        """The in-app viewer, once the stream started."""
        self.url: str | None = None

    def start(self, header: bytes) -> None:
        """Start the server thread and feed it the stream header; failures are reported."""
        super().start(header)
        from ..viewer.thread import ViewerThread

        self.server = ViewerThread(self.viewer_config(), self._say, f"this process ({os.getpid()})")
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
        from ..viewer.server import ViewerConfig

        return ViewerConfig(
            bind="127.0.0.1", port=0, web_bind=self.host, web_port=self.port,
            memory_limit=self.memory_limit, open_browser=self.open_browser,
            web_port_hint="records are kept in memory only (serve on another port: serve:HOST:PORT)",
            listening="child processes stream to",
        )

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
        from .tcp import ConnectSink

        port = self.server.tcp_port if self.server is not None else None
        if self.server is not None:
            self.server.after_fork()
        backoff = Backoff(self.backoff.retryStart, self.backoff.retryFactor, self.backoff.retryMax)
        if port is None:
            from .memory import MemorySink

            return MemorySink(self.memory_limit)
        return ConnectSink("127.0.0.1", port, self.memory_limit, backoff)
