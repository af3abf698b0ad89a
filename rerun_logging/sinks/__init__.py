"""Sinks: where the handler's frames go. One module per mode (its sink and its :class:`Mode`);
:data:`MODES` registers them and :func:`open_sink` asks the mode.

:func:`prepare` imports what a spec's sink will need, on the thread that configures
the handler. The flusher thread never imports: a process may fork while one of its
threads is inside an import, and the child then waits forever on that module's
import lock (the lock's owner does not exist in the child).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Iterable

from ..spec import SinkSpec
from .base import Sink, SinkStats
from .file import FileSink, SaveMode
from .memory import MemoryMode, MemorySink
from .mode import Mode, Off
from .otlp import OtlpMode
from .rerun import RerunMode
from .serve import ServeMode
from .spawn import SpawnMode
from .stdout import StdoutMode, StdoutSink
from .tcp import ConnectMode

__all__ = [
    "FileSink", "MODES", "MemorySink", "Mode", "Sink", "SinkOptions", "SinkStats", "StdoutSink",
    "before_start", "mode_of", "open_sink", "prepare", "saved_files", "writes_here",
]

MODES: dict[str, Mode] = {
    mode.name: mode
    for mode in (Off(), MemoryMode(), StdoutMode(), SaveMode(), ConnectMode(), SpawnMode(), ServeMode(), OtlpMode(), RerunMode())
}
"""Every sink mode, by name, in the order the grammar lists them."""


def mode_of(spec: SinkSpec) -> Mode:
    """The mode of ``spec`` (every parsed spec has one)."""
    return MODES[spec.mode]


def prepare(specs: Iterable[SinkSpec]) -> None:
    """Import now, on the calling thread, every module the sinks of ``specs`` will use."""
    for spec in specs:
        for name in mode_of(spec).modules:
            importlib.import_module(name)


def before_start(specs: Iterable[SinkSpec]) -> None:
    """What the sinks of ``specs`` do on the app's thread before the flusher starts."""
    for spec in specs:
        mode_of(spec).before_start(spec)


def saved_files(specs: Iterable[SinkSpec]) -> list[str]:
    """The files the sinks of ``specs`` write (what the family announces to children)."""
    return [path for spec in specs if (path := mode_of(spec).saved_file(spec))]


def writes_here(specs: Iterable[SinkSpec]) -> bool:
    """Whether any sink of ``specs`` writes from this process alone (a file, stdout)."""
    return any(mode_of(spec).writes_here for spec in specs)


@dataclass(frozen=True)
class SinkOptions:
    """The handler's settings that sinks use: bounds, reconnection knobs, the file mode."""

    buffer_size: int
    """Bytes a sink may hold undelivered (the handler's ``buffer_size``)."""
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
    return mode_of(spec).open(spec, options)
