"""The spawn sink: use the viewer listening on the address, or start one and use it.

The viewer is started once per sink, as ``python -m rerun_logging viewer`` in a
session of its own (it outlives the app and keeps its data for the next one), with
``RERUN_LOGGING_SINK`` removed from its environment so it cannot spawn itself, and
its output in ``<tempdir>/rerun-logging-viewer-<port>.log``. Two apps spawning at
once both start one; the second cannot bind the port and exits, and both apps
connect to the first. Whatever answers must greet like a viewer: a port held by
something else is reported and records stay in the bounded backlog.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

from ..spec import ENV_VAR
from .tcp import ConnectSink

SPAWN_TIMEOUT = 10.0
"""How long to wait for a spawned viewer to accept connections."""

_spawned: list[subprocess.Popen[bytes]] = []
"""Viewers this process started (kept so they are not reaped as garbage)."""


def viewer_log_path(port: int) -> str:
    """Where a spawned viewer's output goes."""
    return os.path.join(tempfile.gettempdir(), f"rerun-logging-viewer-{port}.log")


def spawn_viewer(host: str, port: int) -> subprocess.Popen[bytes]:
    """Start a detached viewer listening on ``host:port``; returns at once."""
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    command = [sys.executable, "-m", "rerun_logging", "viewer", "--bind", host, "--port", str(port)]
    with open(viewer_log_path(port), "ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    _spawned.append(process)
    return process


class SpawnSink(ConnectSink):
    """A :class:`ConnectSink` that starts the viewer the first time nobody listens."""

    mode = "spawn"

    def __init__(self, *args: object, spawn_timeout: float = SPAWN_TIMEOUT, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.spawn_timeout = spawn_timeout
        self.spawned: subprocess.Popen[bytes] | None = None

    def _open_connection(self) -> socket.socket:
        try:
            return super()._open_connection()
        except ConnectionRefusedError:
            if self.spawned is not None:
                raise
        self.spawned = spawn_viewer(self.host, self.port)
        return self._wait_for_viewer()

    def _wait_for_viewer(self) -> socket.socket:
        deadline = time.monotonic() + self.spawn_timeout
        while True:
            try:
                return super()._open_connection()
            except ConnectionRefusedError:
                if self.spawned is not None and self.spawned.poll() is not None:
                    raise ConnectionRefusedError(
                        f"the viewer spawned on {self.host}:{self.port} exited with status "
                        f"{self.spawned.returncode} (see {viewer_log_path(self.port)})"
                    ) from None
                if time.monotonic() >= deadline:
                    raise ConnectionRefusedError(
                        f"the viewer spawned on {self.host}:{self.port} did not accept "
                        f"connections within {self.spawn_timeout:g}s (see "
                        f"{viewer_log_path(self.port)})"
                    ) from None
                time.sleep(0.05)

    def after_fork(self) -> ConnectSink:
        """A forked child connects to the parent's viewer; it never spawns another."""
        child = super().after_fork()
        if isinstance(child, SpawnSink):
            child.spawned = self.spawned
        return child
