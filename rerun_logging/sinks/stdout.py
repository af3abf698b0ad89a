"""The stdout sink: the framed stream on standard output, for ``| rerun-logging print -``."""

from __future__ import annotations

import errno
import os
import select
import sys
import time

from typing import TYPE_CHECKING

from .base import Sink
from .mode import Mode

if TYPE_CHECKING:
    from ..spec import SinkSpec
    from . import SinkOptions


class StdoutSink(Sink):
    """Writes the stream to file descriptor 1, one ``os.write`` loop per frame.

    Standard output then belongs to the stream: text an app prints there mixes
    into it. A terminal is refused (binary data would garble it), and a forked
    child does not write, because its frames would interleave with the parent's
    in one pipe; both are reported once and their records counted as dropped.

    On a non-blocking descriptor that fills up, a frame nothing of which went out is
    dropped whole (counted; the stream stays intact), and a frame the descriptor
    took part of is finished before anything else (on the next write, tick or
    close): stopping half-way would tear the stream for its reader.
    """

    name = "stdout"

    def __init__(self, fd: int = 1, refuse_reason: str | None = None) -> None:
        super().__init__()
        self._fd = fd
        self._refuse = refuse_reason
        self._header_sent = False
        self._rest = memoryview(b"")
        """The unwritten end of a frame the descriptor took part of."""

    def _write(self, data: bytes) -> None:
        if self._refuse is None and os.isatty(self._fd):
            self._refuse = (
                "standard output is a terminal; pipe it instead: "
                f"python {os.path.basename(sys.argv[0] or 'app.py')} | rerun-logging print -"
            )
        if self._refuse is not None:
            raise RuntimeError(self._refuse)
        if not self._header_sent:
            self._write_all(self._header)
            self._header_sent = True
        self._write_all(data)

    def _write_all(self, data: bytes) -> None:
        if not self._finish_rest():
            raise BlockingIOError(errno.EAGAIN, "standard output is full (a frame is half written)")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except BlockingIOError:
            if len(view) == len(data):
                raise  # nothing of it went out: dropped whole, the stream intact
            self._rest = view  # begun: finished before anything else

    def _finish_rest(self) -> bool:
        """Write what is left of a frame begun earlier; whether none is left."""
        try:
            while self._rest:
                self._rest = self._rest[os.write(self._fd, self._rest):]
        except BlockingIOError:
            return False
        return True

    def poll(self, now: float) -> None:
        if self._rest:
            try:
                self._finish_rest()
            except OSError as error:
                self._rest = memoryview(b"")
                self._lost(0, error)

    def close(self, end_frame: bytes, deadline: float) -> None:
        """Finish a frame begun (waiting for the reader until ``deadline``), then END."""
        try:
            while not self._finish_rest() and time.monotonic() < deadline:
                select.select([], [self._fd], [], max(min(deadline - time.monotonic(), 0.05), 0))
        except OSError as error:
            self._rest = memoryview(b"")
            self._lost(0, error)
        super().close(end_frame, deadline)

    def after_fork(self) -> Sink:
        return StdoutSink(
            self._fd,
            refuse_reason=f"process {os.getpid()} is a forked child; standard output "
            "carries the parent's stream",
        )


class StdoutMode(Mode):
    """``stdout``: the stream on standard output, written by the top process only."""

    name = "stdout"
    writes_here = True
    top_process_only = True

    def open(self, spec: SinkSpec, options: SinkOptions) -> Sink:
        return StdoutSink().after_fork() if options.forked else StdoutSink()
