"""The spawn sink: use the viewer listening on the address, or start one and use it.

The viewer is started once per sink, as ``python -m rerun_logging viewer`` in a
session of its own (it outlives the app and keeps its data for the next one), with
``RERUN_LOGGING_SINK`` removed from its environment so it cannot spawn itself, and
its output in ``<tempdir>/rerun-logging-viewer-<port>.log``. Two apps spawning at
once both start one; the second cannot bind the port and exits, and both apps
connect to the first. Whatever answers must greet like a viewer: a port held by
something else is reported and records stay in the bounded backlog.

The temporary directory is shared with other users, so the log is opened with
``O_NOFOLLOW`` (a planted symlink is not followed), created ``0600``, and used
only when it is a regular file of ours with one link; otherwise (and said in one
line) the viewer logs to a fresh ``rerun-logging-viewer-<port>-XXXX.log`` made
with ``O_EXCL``, or, when even that fails, nowhere.

When it started a viewer, the sink says so once on stderr: the page's URL (read
from the viewer's state file, :mod:`rerun_logging.viewer.state`, waiting at most
:data:`ANNOUNCE_TIMEOUT`), that the viewer keeps running after the app exits, and
that ``rerun-logging stop`` stops it. Connecting to a viewer that already ran says
nothing.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys
import tempfile
import time
from typing import Callable

from ..spec import DEFAULT_TCP_PORT, ENV_VAR
from ..viewer.state import read_state
from .tcp import NETWORK_MODULES, ConnectMode, ConnectSink, NotAViewer

STARTING_RETRY = 0.2
"""Seconds between attempts while a viewer may still be starting (see SpawnSink)."""
SPAWN_TIMEOUT = 10.0
"""How long to wait for a spawned viewer to accept connections."""
ANNOUNCE_TIMEOUT = 3.0
"""How long to wait, once connected, for the spawned viewer's state file (its URL)."""

class SpawnedViewer(subprocess.Popen):  # type: ignore[type-arg]
    """A viewer process this process started, and the file it logs to."""

    log_path: str = os.devnull


_spawned: list[SpawnedViewer] = []
"""Viewers this process started (kept so they are not reaped as garbage)."""


def viewer_log_path(port: int) -> str:
    """Where a spawned viewer's output goes (unless that file is unsafe: see :func:`open_viewer_log`)."""
    return os.path.join(tempfile.gettempdir(), f"rerun-logging-viewer-{port}.log")


def _say(text: str) -> None:
    sys.stderr.write(f"rerun-logging: spawn: {text}\n")
    sys.stderr.flush()


def open_viewer_log(port: int, say: Callable[[str], None] = _say) -> tuple[int, str]:
    """The descriptor the viewer on ``port`` logs to, and its path (``os.devnull`` for none).

    :func:`viewer_log_path` is opened for appending without following a link and
    created ``0600``; a file there that is not a regular file of ours with one link
    (made by someone else, or a hard link) is left alone, and the log goes to a
    fresh file instead. Each fallback is said through ``say``. Never raises.
    """
    path = viewer_log_path(port)
    flags = (os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK
             | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as error:
        problem = error.strerror or str(error)
        if getattr(os, "O_NOFOLLOW", 0) and error.errno == errno.ELOOP:
            problem = "it is a symbolic link"
    else:
        problem = _unsafe_log(fd)
        if problem is None:
            os.set_blocking(fd, True)
            return fd, path
        os.close(fd)
    try:
        fd, fresh = tempfile.mkstemp(prefix=f"rerun-logging-viewer-{port}-", suffix=".log")
    except OSError as error:
        say(f"not logging the viewer to {path} ({problem}) nor to a fresh file "
            f"({error.strerror or error}); its output is discarded")
        return os.open(os.devnull, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0)), os.devnull
    say(f"not logging the viewer to {path} ({problem}); it logs to {fresh}")
    return fd, fresh


def _unsafe_log(fd: int) -> str | None:
    """Why the opened log file is not ours to append to, or None."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return f"it belongs to user {info.st_uid}"
    if info.st_nlink != 1:
        return f"it has {info.st_nlink} links"
    if info.st_mode & 0o077:
        os.fchmod(fd, 0o600)  # ours, from an older version: keep others out from now on
    return None


def spawn_viewer(host: str, port: int, say: Callable[[str], None] = _say) -> SpawnedViewer:
    """Start a detached viewer listening on ``host:port``; returns at once.

    Its output goes where :func:`open_viewer_log` says (``log_path``).
    """
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    command = [sys.executable, "-m", "rerun_logging", "viewer", "--bind", host, "--port", str(port)]
    log, log_path = open_viewer_log(port, say)
    try:
        process = SpawnedViewer(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(log)
    process.log_path = log_path
    _spawned.append(process)
    return process


class SpawnSink(ConnectSink):
    """A :class:`ConnectSink` that starts the viewer the first time nobody listens."""

    mode = "spawn"

    def __init__(self, *args: object, spawn_timeout: float = SPAWN_TIMEOUT, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.spawn_timeout = spawn_timeout
        self.spawned: SpawnedViewer | None = None
        self.may_spawn = True
        """False once this sink (or, in a forked child, its parent's) started a viewer."""
        self._starting_until: float | None = None
        """Until when a viewer is expected to come up: ``spawn_timeout`` after this sink
        (or its parent) spawned one, or after the first silent greeting."""

    def _connect_failed(self, now: float, error: OSError) -> None:
        """As a connect sink, but a viewer that is starting is tried again every
        ``STARTING_RETRY`` seconds, not with a growing backoff, until ``_starting_until``:
        a port that accepts and does not greet yet (a viewer this app, its parent or
        another app just spawned listens before its loop greets; ``spawn_timeout`` after
        the first such failure), and, in a child forked from the spawner, a port that
        still refuses (``spawn_timeout`` after the parent spawned)."""
        super()._connect_failed(now, error)
        if isinstance(error, NotAViewer) and error.silent:
            if self._starting_until is None:
                self._starting_until = now + self.spawn_timeout
        elif not (isinstance(error, ConnectionRefusedError) and self.spawned is None
                  and not self.may_spawn):
            return  # a refusal counts as "still starting" only in a child of the spawner
        if self._starting_until is not None and now < self._starting_until:
            self.backoff.next_attempt = min(self.backoff.next_attempt, now + STARTING_RETRY)

    def _open_connection(self) -> socket.socket:
        try:
            return super()._open_connection()
        except ConnectionRefusedError:
            if not self.may_spawn:
                raise
        # Before spawning: a child forked from here on knows the viewer is coming.
        self.may_spawn = False
        self._starting_until = time.monotonic() + self.spawn_timeout
        self.spawned = spawn_viewer(self.host, self.port, self._say)
        sock = self._wait_for_viewer()
        self._announce()
        return sock

    def _announce(self) -> None:
        """Say once where the spawned viewer's page is, that it stays, how to stop it."""
        deadline = time.monotonic() + ANNOUNCE_TIMEOUT
        where = f"its page's address is in its log, {self.log_path}"
        while True:
            state = read_state(self.port)
            # Ours, or (ours lost a race and exited) the one that runs there.
            if state is not None and self.spawned is not None and (
                    state.pid == self.spawned.pid or self.spawned.poll() is not None):
                where = f"its page is {state.url}" if state.url else \
                    f"it serves no page (see {self.log_path})"
                break
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        stop = "rerun-logging stop" + ("" if self.port == DEFAULT_TCP_PORT else f" --port {self.port}")
        self._say(f"started a viewer: {where}; it keeps running after this app exits "
                  f"(stop it with `{stop}`)")

    @property
    def log_path(self) -> str:
        """Where the viewer this sink spawned logs (where it would log, before it spawned one)."""
        return self.spawned.log_path if self.spawned is not None else viewer_log_path(self.port)

    def _wait_for_viewer(self) -> socket.socket:
        deadline = time.monotonic() + self.spawn_timeout
        while True:
            try:
                return super()._open_connection()
            except ConnectionRefusedError:
                if self.spawned is not None and self.spawned.poll() is not None:
                    raise ConnectionRefusedError(
                        f"the viewer spawned on {self.host}:{self.port} exited with status "
                        f"{self.spawned.returncode} (see {self.log_path})"
                    ) from None
                if time.monotonic() >= deadline:
                    raise ConnectionRefusedError(
                        f"the viewer spawned on {self.host}:{self.port} did not accept "
                        f"connections within {self.spawn_timeout:g}s (see "
                        f"{self.log_path})"
                    ) from None
                time.sleep(0.05)

    def after_fork(self) -> ConnectSink:
        """A forked child connects to the viewer its parent spawned (or is spawning); never another.

        It waits for that viewer as the parent does, trying every ``STARTING_RETRY``
        seconds until the parent's ``spawn_timeout`` ends, instead of spawning a second
        viewer (seconds of the child's close deadline: the race the fork stress found).
        The parent's process handle stays the parent's: polling it here would say the
        viewer exited (``ECHILD``).
        """
        child = super().after_fork()
        if isinstance(child, SpawnSink):
            child.may_spawn = self.may_spawn
            child._starting_until = self._starting_until
        return child


class SpawnMode(ConnectMode):
    """``spawn[:HOST:PORT]``: as ``connect``, starting the viewer when nobody listens there."""

    name = "spawn"
    modules = (*NETWORK_MODULES, "rerun_logging.sinks.spawn", "subprocess")
    sink = SpawnSink
