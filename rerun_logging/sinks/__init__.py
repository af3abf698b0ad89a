"""Sinks: where the handler's frames go. One module per mode; :func:`open_sink` picks."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .. import family
from ..backoff import Backoff
from ..spec import SinkSpec, check_available
from .base import Sink, SinkStats
from .file import FileSink, child_path
from .memory import MemorySink
from .stdout import StdoutSink

__all__ = ["FileSink", "MemorySink", "Sink", "SinkOptions", "SinkStats", "StdoutSink", "open_sink"]


@dataclass(frozen=True)
class SinkOptions:
    """The handler's settings that sinks use: bounds and reconnection knobs."""

    buffer_size: int
    retryStart: float = 1.0
    retryFactor: float = 2.0
    retryMax: float = 30.0
    open_browser: bool = True


def open_sink(spec: SinkSpec, options: SinkOptions) -> Sink:
    """The sink for ``spec`` (nothing is opened until it first writes)."""
    check_available([spec])
    if spec.mode == "save":
        assert spec.path is not None
        if family.saved_by_an_ancestor(spec.path):
            return FileSink(child_path(spec.path, os.getpid()))
        return FileSink(spec.path)
    if spec.mode == "stdout":
        return StdoutSink()
    if spec.mode == "memory":
        return MemorySink(options.buffer_size)
    if spec.mode == "serve":
        from .serve import ServeSink
        from .tcp import ConnectSink

        assert spec.host is not None and spec.port is not None
        backoff = Backoff(options.retryStart, options.retryFactor, options.retryMax)
        port = family.ancestor_server(str(spec))
        if port is not None:
            return ConnectSink("127.0.0.1", port, options.buffer_size, backoff)
        return ServeSink(spec.host, spec.port, options.buffer_size, backoff, options.open_browser)
    if spec.mode in ("connect", "spawn"):
        from .spawn import SpawnSink
        from .tcp import ConnectSink

        kind = SpawnSink if spec.mode == "spawn" else ConnectSink
        assert spec.host is not None and spec.port is not None
        backoff = Backoff(options.retryStart, options.retryFactor, options.retryMax)
        return kind(spec.host, spec.port, options.buffer_size, backoff)
    raise ValueError(f"sink {spec} cannot be opened")
