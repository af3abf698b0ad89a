"""The viewer's state file: who runs on a TCP port, and where its page is.

A standalone viewer writes ``<tempdir>/rerun-logging-<uid>/viewer-<port>.json``,
``{"pid": PID, "tcp": "HOST:PORT", "url": URL or null}``, once it listens, and
removes it when it stops. The spawn sink reads it to tell the user where the page
of the viewer it started is; ``rerun-logging stop`` reads it to find the viewer to
signal.

The temporary directory is shared with other users: the folder is created ``0700``
and used only when it is a real directory (not a link) of ours that nobody else can
write; the file is written to a fresh name (``O_EXCL``, ``0600``) and renamed into
place, and read with ``O_NOFOLLOW``. The URL may hold the page's access token, so
the file is never readable by others.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass

MAX_STATE_BYTES = 64 * 1024
"""A state file larger than this is not ours."""


def state_dir() -> str:
    """``<tempdir>/rerun-logging-<uid>``: where this user's viewers write their state."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return os.path.join(tempfile.gettempdir(), f"rerun-logging-{uid}")


def state_path(port: int) -> str:
    """The state file of the viewer whose TCP port is ``port``."""
    return os.path.join(state_dir(), f"viewer-{port}.json")


def _safe_dir(create: bool) -> str:
    """:func:`state_dir`, checked (and created when ``create``); OSError when unsafe."""
    path = state_dir()
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise OSError(f"{path} is not a directory")
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise OSError(f"{path} belongs to user {info.st_uid}")
    if info.st_mode & 0o077:
        raise OSError(f"{path} is open to other users (mode {stat.S_IMODE(info.st_mode):o})")
    return path


@dataclass(frozen=True)
class ViewerState:
    """What a running viewer tells: its pid, TCP address, and page URL (None: no web UI)."""

    pid: int
    tcp: str
    url: str | None

    @property
    def port(self) -> int:
        """The TCP port of :attr:`tcp`."""
        return int(self.tcp.rsplit(":", 1)[1])

    def write(self) -> str | None:
        """Write the state file for :attr:`port`; None, or why it could not be written."""
        try:
            folder = _safe_dir(create=True)
            final = os.path.join(folder, f"viewer-{self.port}.json")
            fresh = f"{final}.{self.pid}.tmp"
            flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_CLOEXEC", 0))
            try:
                os.unlink(fresh)  # a leftover of a viewer that had this pid
            except FileNotFoundError:
                pass
            fd = os.open(fresh, flags, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump({"pid": self.pid, "tcp": self.tcp, "url": self.url}, out)
            os.replace(fresh, final)
        except OSError as error:
            return error.strerror or str(error)
        return None

    def remove(self) -> None:
        """Remove the state file, if it is still this viewer's."""
        found = read_state(self.port)
        if found is not None and found.pid == self.pid:
            try:
                os.unlink(state_path(self.port))
            except OSError:
                pass


def read_state(port: int) -> ViewerState | None:
    """The state the viewer on TCP port ``port`` wrote, or None (none, unsafe, not ours)."""
    try:
        folder = _safe_dir(create=False)
        fd = os.open(os.path.join(folder, f"viewer-{port}.json"),
                     os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_STATE_BYTES:
            return None
        if hasattr(os, "getuid") and info.st_uid != os.getuid():
            return None
        data = json.loads(os.read(fd, MAX_STATE_BYTES))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(data, dict):
        return None
    pid, tcp, url = data.get("pid"), data.get("tcp"), data.get("url")
    if not (isinstance(pid, int) and pid > 0 and isinstance(tcp, str) and ":" in tcp
            and (url is None or isinstance(url, str))):
        return None
    try:
        state = ViewerState(pid, tcp, url)
        state.port  # noqa: B018 - checks the address
    except ValueError:
        return None
    return state


def is_viewer_process(pid: int) -> bool | None:
    """Whether process ``pid`` runs the rerun-logging viewer; None when it cannot be told.

    Read from ``/proc/PID/cmdline`` (Linux): ``python -m rerun_logging [viewer] ...``
    or the ``rerun-logging`` script, and not one of its other commands.
    """
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as source:
            words = [w.decode(errors="replace") for w in source.read().split(b"\0") if w]
    except FileNotFoundError:
        return False if os.path.isdir("/proc/self") else None
    except OSError:
        return None
    for i, word in enumerate(words):
        program = (word == "rerun_logging" and i > 0 and words[i - 1] == "-m") or \
            os.path.basename(word) == "rerun-logging"
        if program:
            rest = words[i + 1:]
            return not rest or rest[0] not in ("print", "verify", "run", "stop")
    return False
