"""Sinks: where the handler's frames go. One module per mode; :func:`open_sink` picks."""

from __future__ import annotations

from ..spec import SinkSpec, check_available
from .base import Sink, SinkStats
from .file import FileSink
from .memory import MemorySink
from .stdout import StdoutSink

__all__ = ["FileSink", "MemorySink", "Sink", "SinkStats", "StdoutSink", "open_sink"]


def open_sink(spec: SinkSpec, buffer_size: int) -> Sink:
    """The sink for ``spec`` (nothing is opened until it first writes)."""
    check_available([spec])
    if spec.mode == "save":
        assert spec.path is not None
        return FileSink(spec.path)
    if spec.mode == "stdout":
        return StdoutSink()
    if spec.mode == "memory":
        return MemorySink(buffer_size)
    raise ValueError(f"sink {spec} cannot be opened")
