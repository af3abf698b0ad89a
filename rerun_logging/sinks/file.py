"""The save sink: a recording file, written append-only, one ``os.write`` per frame."""

from __future__ import annotations

import os

from .base import Sink


def child_path(path: str, pid: int) -> str:
    """Where a forked child saves: ``run.rrd`` becomes ``run.<pid>.rrd`` beside it."""
    stem, ext = os.path.splitext(path)
    return f"{stem}.{pid}{ext or '.rrd'}"


class FileSink(Sink):
    """Streams frames into ``path`` (created or truncated at the first write).

    A frame is written whole or not at all: after a failed or short write the file
    is cut back to the last whole frame, so a disk that fills up leaves a readable
    file, and frames written after it clears follow a ``dropped`` message. The file
    is fsynced on close. A missing directory is reported, not created, as
    ``logging.FileHandler`` does.
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = os.path.abspath(os.fspath(path))
        self.name = f"save:{path}"
        self._fd: int | None = None
        self._size = 0

    def _write(self, data: bytes) -> None:
        if self._fd is None:
            self._open()
        assert self._fd is not None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            self._cut_back()
            raise
        self._size += len(data)

    def _open(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(self.path, flags, 0o644)
        self._size = 0
        try:
            header = self._header
            view = memoryview(header)
            while view:
                view = view[os.write(self._fd, view) :]
            self._size = len(header)
        except OSError:
            self._cut_back()
            os.close(self._fd)
            self._fd = None
            raise

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self._fd, self._size)  # type: ignore[arg-type]
        except OSError:
            pass

    def close(self, end_frame: bytes, deadline: float) -> None:
        self.write(end_frame, 0)
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None

    def after_fork(self) -> Sink:
        """The child closes the inherited descriptor and saves beside it (see child_path)."""
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None
        return FileSink(child_path(self.path, os.getpid()))
