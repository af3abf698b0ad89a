"""The save sink: a recording file, appended to, one ``os.write`` per frame.

A path that exists is appended to, as ``logging.FileHandler`` appends: each
handler's stream starts with its own header and INFO after what the file holds, so
a file may hold several runs (every reader shows each). ``mode="w"`` starts it
afresh instead.

Several handlers of one process may save to one path at the same time (the same
dictConfig applied twice, two handlers on one file). They share one descriptor
per path from a process-wide table of open files (:class:`OpenFile`), and write
under its lock, which only flusher threads ever take (never an app thread in
``emit``). A write whose previous writer on that descriptor was another stream is
prefixed with this stream's header, in the same ``os.write``: a header re-announces
its stream, and readers resume it (see :mod:`rerun_logging.format`). So frames of
two streams interleave in the file but each reader can tell whose they are.

After ``fork`` the child never touches the parent's entries or locks: the table is
keyed by ``os.getpid()``, so the child finds an empty one the first time it looks
(lazily, on its own flusher thread; nothing runs in an at-fork hook), and it saves
beside the parent's file anyway (:func:`child_path`).
"""

from __future__ import annotations

import os
import threading

from typing import TYPE_CHECKING

from .. import family
from ..fds import write_all
from .base import Sink
from .mode import Mode

if TYPE_CHECKING:
    from ..spec import SinkSpec
    from . import SinkOptions

MODES = ("a", "w")
"""``a``: append a new stream after what the file holds; ``w``: start the file afresh."""


def child_path(path: str, pid: int) -> str:
    """Where a forked child saves: ``run.rlg`` becomes ``run.<pid>.rlg`` beside it."""
    stem, ext = os.path.splitext(path)
    return f"{stem}.{pid}{ext or '.rlg'}"


class OpenFile:
    """One recording file open in this process, shared by every sink saving to its path.

    ``size`` is where the last whole write ended (a failed write is cut back to it);
    ``writer`` is the sink whose stream the file's last frame belongs to. Both change
    under ``lock`` only; ``users`` under the table's lock. Another process appending
    to the same path is noticed by the size (one ``fstat`` per write); only the
    instant between that ``fstat`` and the write is not covered.
    """

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.size = os.fstat(fd).st_size
        self.writer: object | None = None
        self.users = 0
        self._inherited = [fd]
        """The descriptor, for a forked child to close once (``list.pop`` is atomic)."""

    def write(self, writer: object, header: bytes, frame: bytes) -> None:
        """Append ``frame`` for ``writer``, after ``header`` when another stream wrote last.

        One ``os.write`` (more only after a short write). A file that grew since our
        last write (another process appends to it) counts as written by another
        stream. On failure the file is cut back to where this write began and the
        next write re-announces its stream.
        """
        with self.lock:
            end = os.fstat(self.fd).st_size
            if end != self.size:
                self.size, self.writer = end, None
            data = frame if self.writer is writer else header + frame
            try:
                write_all(self.fd, data)
            except OSError:
                self.writer = None
                self._cut_back()
                raise
            self.size += len(data)
            self.writer = writer

    def sync(self) -> None:
        """Flush the file to disk; errors are ignored (the data was written)."""
        try:
            os.fsync(self.fd)
        except OSError:
            pass

    def close_inherited(self) -> None:
        """In a forked child: close the parent's descriptor, once whoever asks first."""
        if self.pid == os.getpid():
            return
        try:
            fd = self._inherited.pop()
        except IndexError:
            return
        try:
            os.close(fd)
        except OSError:
            pass

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self.fd, self.size)
        except OSError:
            pass


class OpenFiles:
    """This process's open recording files by absolute path (see the module docstring)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: dict[str, OpenFile] = {}

    def acquire(self, path: str, mode: str) -> OpenFile:
        """The open file of ``path``, opened (and for ``w`` truncated) if no sink has it.

        ``w`` truncates only when this call opens the file: a sink joining a path
        that another sink of this process has open appends its stream, so a second
        handler never wipes the first's records.
        """
        with self.lock:
            shared = self.files.get(path)
            if shared is None:
                shared = _open(path, mode)
                self.files[path] = shared
            shared.users += 1
            return shared

    def release(self, shared: OpenFile) -> bool:
        """One sink stops using ``shared``; True when it was the last (then close it)."""
        with self.lock:
            shared.users -= 1
            if shared.users > 0:
                return False
            if self.files.get(shared.path) is shared:
                del self.files[shared.path]
            return True


_OPEN_FILES: dict[int, OpenFiles] = {}
"""The table of each process, by pid: a forked child's pid finds none and makes its own."""


def open_files() -> OpenFiles:
    """This process's table of open files, made on first use (also first use after fork).

    Takes no lock: ``dict.setdefault`` is atomic, so flushers racing to make it
    agree on one. The parent's table, copied into a child by ``fork``, is dropped
    unused (its locks may have been held by threads that do not exist here).
    """
    pid = os.getpid()
    table = _OPEN_FILES.get(pid)
    if table is None:
        table = _OPEN_FILES.setdefault(pid, OpenFiles())
        for stale in [p for p in list(_OPEN_FILES) if p != pid]:
            _OPEN_FILES.pop(stale, None)
    return table


def _open(path: str, mode: str) -> OpenFile:
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
    if mode == "w":
        flags |= os.O_TRUNC
    fd = os.open(path, flags, 0o644)
    try:
        return OpenFile(path, fd)
    except BaseException:
        os.close(fd)
        raise


class FileSink(Sink):
    """Streams frames into ``path``: appended (``mode="a"``) or started afresh (``"w"``).

    The file is opened at the first write; the stream's header goes in front of the
    first frame, in the same write. A frame is written whole or not at all: after a
    failed or short write the file is cut back to the last whole write, so a disk
    that fills up leaves a readable file, and frames written after it clears follow
    a ``dropped`` message. The file is fsynced on close, and closed when the last
    sink of this process saving to it closes. A missing directory is reported, not
    created, as ``logging.FileHandler`` does.
    """

    def __init__(self, path: str, mode: str = "a") -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"save mode must be 'a' (append) or 'w' (start afresh), not {mode!r}")
        self.path = os.path.abspath(os.fspath(path))
        self.mode = mode
        self.name = f"save:{path}"
        self._file: OpenFile | None = None

    def _write(self, data: bytes) -> None:
        if self._file is None:
            self._file = open_files().acquire(self.path, self.mode)
        self._file.write(self, self._header, data)

    def close(self, end_frame: bytes, deadline: float) -> None:
        self.write(end_frame, 0)
        shared, self._file = self._file, None
        if shared is None:
            return
        shared.sync()
        if open_files().release(shared):
            os.close(shared.fd)

    def after_fork(self) -> Sink:
        """The child closes the inherited descriptor and saves beside it (see child_path).

        With the parent's mode: a pid seen in an earlier run (pids are reused) appends its
        run after that one's, never over it.
        """
        shared, self._file = self._file, None
        if shared is not None:
            shared.close_inherited()
        return FileSink(child_path(self.path, os.getpid()), mode=self.mode)


class SaveMode(Mode):
    """``save:PATH``: the stream appended to a file (``mode="w"``: started afresh).

    A process whose ancestor saves into the same path writes beside it
    (:func:`child_path`): the family announces the file to the processes it starts.
    """

    name = "save"
    argument = "path"
    writes_here = True

    def open(self, spec: SinkSpec, options: SinkOptions) -> Sink:
        assert spec.path is not None
        if family.saved_by_an_ancestor(spec.path):
            return FileSink(child_path(spec.path, os.getpid()), mode=options.mode)
        return FileSink(spec.path, mode=options.mode)

    def saved_file(self, spec: SinkSpec) -> str | None:
        return spec.path

    def for_run(self, spec: SinkSpec) -> str:
        assert spec.path is not None
        return f"{self.name}:{os.path.abspath(spec.path)}"
