"""The stdout sink: the framed stream on standard output, for ``| rerun-logging print -``."""

from __future__ import annotations

import os
import sys

from typing import TYPE_CHECKING

from ..fds import write_all
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
    """

    name = "stdout"

    def __init__(self, fd: int = 1, refuse_reason: str | None = None) -> None:
        super().__init__()
        self._fd = fd
        self._refuse = refuse_reason
        self._header_sent = False

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
        write_all(self._fd, data)

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
