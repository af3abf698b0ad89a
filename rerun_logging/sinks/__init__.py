"""Sinks: where the handler's frames go. One module per mode; :func:`open_sink` picks.

:func:`prepare` imports what a spec's sink will need, on the thread that configures
the handler. The flusher thread never imports: a process may fork while one of its
threads is inside an import, and the child then waits forever on that module's
import lock (the lock's owner does not exist in the child).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Iterable

from .. import family
from ..backoff import Backoff
from ..spec import SinkSpec, check_available
from .base import Sink, SinkStats
from .file import FileSink, child_path
from .memory import MemorySink
from .stdout import StdoutSink

__all__ = [
    "FileSink", "MemorySink", "Sink", "SinkOptions", "SinkStats", "StdoutSink", "before_start",
    "open_sink", "prepare",
]

_NETWORK = (
    "rerun_logging.sinks.tcp",
    # socket.getaddrinfo encodes a str host with the "idna" codec, imported on first use.
    "encodings.idna",
)
_VIEWER = (
    "rerun_logging.sinks.serve",
    "rerun_logging.viewer.thread",
    "rerun_logging.viewer.server",
    "rerun_logging.viewer.web",
    "rerun_logging.viewer.feed",
    "rerun_logging.viewer.export",
    "rerun_logging.viewer.state",
    "websockets.asyncio.server",
    "websockets.http11",
    "websockets.exceptions",
    "webbrowser",
)
_MODULES = {
    "connect": _NETWORK,
    "spawn": (*_NETWORK, "rerun_logging.sinks.spawn", "subprocess"),
    "serve": (*_NETWORK, *_VIEWER),
}
"""What each mode imports, itself or in the modules it uses, after its first write."""


def prepare(specs: Iterable[SinkSpec]) -> None:
    """Import now, on the calling thread, every module the sinks of ``specs`` will use."""
    for spec in specs:
        for name in _MODULES.get(spec.mode, ()):
            importlib.import_module(name)


def before_start(specs: Iterable[SinkSpec]) -> None:
    """What the sinks of ``specs`` do on the app's thread before the flusher starts.

    Only ``serve``: it binds the port its children stream to, so that a child
    forked right after the first record knows it (see :mod:`.serve`).
    """
    for spec in specs:
        if spec.mode == "serve":
            from .serve import bind_child_port  # imported by prepare(): a lookup

            bind_child_port(spec)


@dataclass(frozen=True)
class SinkOptions:
    """The handler's settings that sinks use: bounds, reconnection knobs, the file mode."""

    buffer_size: int
    retryStart: float = 1.0
    retryFactor: float = 2.0
    retryMax: float = 30.0
    open_browser: bool = True
    mode: str = "a"
    forked: bool = False
    """Whether the handler is a forked child's copy whose parent had opened no sinks yet
    (it opens what :meth:`Sink.after_fork` would have given it)."""


def open_sink(spec: SinkSpec, options: SinkOptions) -> Sink:
    """The sink for ``spec`` (nothing is opened until it first writes)."""
    check_available([spec])
    if spec.mode == "save":
        assert spec.path is not None
        if family.saved_by_an_ancestor(spec.path):
            return FileSink(child_path(spec.path, os.getpid()), mode=options.mode)
        return FileSink(spec.path, mode=options.mode)
    if spec.mode == "stdout":
        return StdoutSink().after_fork() if options.forked else StdoutSink()
    if spec.mode == "memory":
        return MemorySink(options.buffer_size)
    if spec.mode == "serve":
        from .serve import ServeSink  # imported already by prepare(): a lookup, no lock
        from .tcp import ConnectSink

        assert spec.host is not None and spec.port is not None
        backoff = Backoff(options.retryStart, options.retryFactor, options.retryMax)
        port = family.ancestor_server(str(spec))
        if port is not None:
            return ConnectSink("127.0.0.1", port, options.buffer_size, backoff)
        return ServeSink(spec.host, spec.port, options.buffer_size, backoff, options.open_browser,
                         port_given=spec.port_given)
    if spec.mode in ("connect", "spawn"):
        # Each imported by prepare() for its own mode: a lookup here, never an import.
        if spec.mode == "spawn":
            from .spawn import SpawnSink as kind
        else:
            from .tcp import ConnectSink as kind
        assert spec.host is not None and spec.port is not None
        backoff = Backoff(options.retryStart, options.retryFactor, options.retryMax)
        return kind(spec.host, spec.port, options.buffer_size, backoff)
    raise ValueError(f"sink {spec} cannot be opened")
