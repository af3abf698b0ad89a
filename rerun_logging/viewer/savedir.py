"""``--save-dir DIR``: one recording file per stream, written as frames arrive.

Each stream ``(recording_id, pid)`` of application ``app`` goes to
``DIR/{app}-{recording_id}-{pid}.rlg``: the stream header, the INFO frame, then
every frame the store kept, byte for byte as received, so ``rerun-logging print``
and ``verify`` read it like a file the save sink wrote. A stream that reconnects
appends to the same file (no second header).

Names come from the network, so they are reduced to ``[A-Za-z0-9._-]`` (at most 64
characters, never empty, never starting with a dot) and every file is created with
``O_EXCL`` and reopened with ``O_NOFOLLOW``: whatever an application id says, and
whatever is already in the directory, nothing is written outside ``DIR`` or
through a link. A name already taken (a file of an earlier viewer run, another
handler of the same process) gets ``-2``, ``-3``, ... before ``.rlg``. A file
reopened (its stream reconnected) must still be the one created: the same inode,
a regular file with one link. Anything else swapped in for it (a hard link to
another file, a FIFO) is refused with one line and the stream is no longer saved;
its frames are counted as not saved and said when the stream ends.

Writes are buffered per stream and written by :meth:`SaveDir.flush` (the ingest
calls it once per chunk it processed); a file is fsynced and closed on the
stream's END and at shutdown, and closed (not synced) when its source goes away.
A write that fails (a full disk) is cut back to the last whole frame and the file
is given up, with one line through ``report``; the viewer keeps running.
"""

from __future__ import annotations

import os
import re
import stat as _stat
from dataclasses import dataclass, field
from typing import Callable

from ..fds import write_all
from ..format import HEADER, RecordingInfo
from ..wording import binary_size, counted
from .store import StreamKey

MAX_NAME_CHARS = 64
"""Longest application or recording id kept in a file name."""
MAX_COLLISIONS = 1000
"""Most ``-N`` suffixes tried for a name already taken."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_name(text: object, fallback: str = "app") -> str:
    """``text`` as a file-name part: only ``[A-Za-z0-9._-]``, at most 64 chars, no leading dot.

    Anything else becomes ``_``. The result is never empty and never ``.`` or
    ``..`` (or any name of dots), so it can never name a directory or escape one.
    """
    name = _UNSAFE.sub("_", str(text))[:MAX_NAME_CHARS]
    if name.startswith("."):
        name = "_" + name[1:]
    return name or fallback


def stream_file_name(info: RecordingInfo, attempt: int = 1) -> str:
    """``{app}-{recording_id}-{pid}.rlg``, with ``-{attempt}`` before ``.rlg`` after the first."""
    stem = f"{safe_name(info.application_id)}-{safe_name(info.recording_id, 'rec')}-{int(info.pid)}"
    return f"{stem}.rlg" if attempt == 1 else f"{stem}-{attempt}.rlg"


@dataclass
class SavedStream:
    """One stream's file: where it is, its descriptor while open, what waits to be written."""

    path: str
    fd: int | None = None
    size: int = 0
    pending: list[bytes] = field(default_factory=list)
    failed: bool = False
    identity: tuple[int, int] | None = None
    """``(st_dev, st_ino)`` of the file created: a reopen must find the same one."""
    unsaved_frames: int = 0
    """Frames of the stream not written (after the file was given up)."""
    unsaved_bytes: int = 0
    told_unsaved: bool = False


class UnsafeFile(OSError):
    """The file at a stream's path is no longer the one created (a link swapped in)."""


class SaveDir:
    """Writes every stream into its own file under ``directory`` (which must exist)."""

    def __init__(self, directory: str, report: Callable[[str], None]) -> None:
        self.directory = os.path.abspath(directory)
        self.report = report
        self.files: dict[StreamKey, SavedStream] = {}

    def open_stream(self, key: StreamKey, info: RecordingInfo, info_frame: bytes) -> None:
        """Create the file of a new stream with its header and INFO; nothing for a known one."""
        if key in self.files:
            return
        try:
            fd, path = self._create(info)
        except OSError as error:
            self.files[key] = SavedStream(self._path(stream_file_name(info)), failed=True)
            self.report(f"cannot save {info.application_id}[{info.pid}]: {_describe(error)}")
            return
        stat = os.fstat(fd)
        saved = SavedStream(path, fd, identity=(stat.st_dev, stat.st_ino))
        self.files[key] = saved
        saved.pending.append(HEADER + info_frame)
        self._write(saved)

    def append(self, key: StreamKey, raw: bytes) -> None:
        """Queue one frame of ``key`` for the next :meth:`flush`."""
        saved = self.files.get(key)
        if saved is None:
            return
        if saved.failed:
            saved.unsaved_frames += 1
            saved.unsaved_bytes += len(raw)
        else:
            saved.pending.append(raw)

    def flush(self) -> None:
        """Write what every stream has queued (whole frames, appended)."""
        for saved in self.files.values():
            if saved.pending:
                self._write(saved)

    def end(self, key: StreamKey) -> None:
        """The stream ended cleanly: write, fsync and close its file."""
        saved = self.files.get(key)
        if saved is not None:
            self._write(saved)
            self._close(saved, sync=True)
            self._tell_unsaved(saved)

    def release(self, key: StreamKey) -> None:
        """The stream's source went away: write and close (a reconnect reopens it)."""
        saved = self.files.get(key)
        if saved is not None:
            self._write(saved)
            self._close(saved, sync=False)

    def close_all(self) -> None:
        """At shutdown: write, fsync and close every file."""
        for saved in self.files.values():
            self._write(saved)
            self._close(saved, sync=True)
            self._tell_unsaved(saved)

    @property
    def paths(self) -> list[str]:
        """Every file written (or started), in stream order."""
        return [saved.path for saved in self.files.values()]

    # --- files ------------------------------------------------------------------

    def _path(self, name: str) -> str:
        path = os.path.join(self.directory, name)
        if os.path.dirname(path) != self.directory:  # belt and braces: safe_name allows no '/'
            raise ValueError(f"unsafe file name {name!r}")
        return path

    def _create(self, info: RecordingInfo) -> tuple[int, str]:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        for attempt in range(1, MAX_COLLISIONS + 1):
            path = self._path(stream_file_name(info, attempt))
            try:
                return os.open(path, flags, 0o644), path
            except FileExistsError:
                continue
        raise FileExistsError(f"{MAX_COLLISIONS} files named like {stream_file_name(info)} exist")

    def _reopen(self, saved: SavedStream) -> None:
        """Open the stream's file again, only if it is still the file created.

        ``O_NOFOLLOW`` refuses a symlink, ``O_NONBLOCK`` a FIFO with no reader (it
        would block the viewer); a hard link or any other file swapped in is caught
        by its inode and link count, and closed unwritten (raises :class:`UnsafeFile`).
        """
        flags = (os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
                 | getattr(os, "O_NOFOLLOW", 0))
        fd = os.open(saved.path, flags)
        try:
            stat = os.fstat(fd)
            problem = _not_ours(stat, saved.identity)
            if problem:
                raise UnsafeFile(f"{problem}; refusing to write it")
            os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        saved.fd = fd
        saved.size = stat.st_size

    def _write(self, saved: SavedStream) -> None:
        if saved.failed or not saved.pending:
            saved.pending.clear()
            return
        frames = list(saved.pending)
        data = b"".join(frames)
        saved.pending.clear()
        try:
            if saved.fd is None:
                self._reopen(saved)
            assert saved.fd is not None
            write_all(saved.fd, data)
        except OSError as error:
            saved.unsaved_frames += len(frames)
            saved.unsaved_bytes += len(data)
            self._give_up(saved, error)
            return
        saved.size += len(data)

    def _give_up(self, saved: SavedStream, error: OSError) -> None:
        """Cut the file back to its last whole frame and stop writing it."""
        saved.failed = True
        if saved.fd is not None:
            try:
                os.ftruncate(saved.fd, saved.size)
            except OSError:
                pass
            self._close(saved, sync=False)
        self.report(f"cannot save to {saved.path}: {_describe(error)}; that file stops here")

    def _tell_unsaved(self, saved: SavedStream) -> None:
        """Once, when the stream of a given-up file ends: how much of it was not saved."""
        if saved.unsaved_frames and not saved.told_unsaved:
            saved.told_unsaved = True
            self.report(f"{saved.path}: {counted(saved.unsaved_frames, 'frame')} "
                        f"({binary_size(saved.unsaved_bytes)}) of its stream not saved")

    def _close(self, saved: SavedStream, *, sync: bool) -> None:
        if saved.fd is None:
            return
        fd, saved.fd = saved.fd, None
        try:
            if sync:
                os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


def _not_ours(stat: os.stat_result, identity: tuple[int, int] | None) -> str | None:
    """Why the file opened at a stream's path is not the one created, or None."""
    if not _stat.S_ISREG(stat.st_mode):
        return "not a regular file"
    if stat.st_nlink != 1:
        return f"the file has {stat.st_nlink} links (a hard link was made to it or put in its place)"
    if identity is not None and (stat.st_dev, stat.st_ino) != identity:
        return "another file was put in its place"
    return None


def _describe(error: OSError) -> str:
    return error.strerror or str(error)
