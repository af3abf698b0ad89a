"""Helpers of the real-applications suite (tests/test_real_*.py): where the records went.

A scenario starts a real server or framework (from ``tests/apps/``) with its logging
configured the way its users configure it, makes it log a known set of records, stops
it the way it is stopped in production, and then reads back every stream every
process wrote, through one of the targets below:

- :class:`SaveTarget`: ``save:PATH``; the parent's file and its children's
  ``PATH-stem.<pid>.rrd`` files beside it (a file holding several runs, one after the
  other, is split into its streams);
- :class:`ConnectTarget`: ``connect`` to a viewer the test starts, with ``--save-dir``;
- :class:`SpawnTarget`: ``spawn`` on a free port where nothing listens: the first app
  starts the viewer; its streams are read through the viewer's own web feed.

Every process a test starts is stopped by it (:class:`App` kills its whole process
group; :class:`SpawnTarget` the viewer that ``spawn`` started). Waits are on lines,
files and feeds, each with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import pytest

from rerun_logging.format import (
    MAGIC,
    Dropped,
    End,
    FrameTooLarge,
    NotARecording,
    Record,
    RecordingError,
    RecordingInfo,
    StreamDecoder,
)
from rerun_logging.viewer.feed import BATCH_TAG

from .conftest import ROOT, Lines, ViewerProcess, child_env, feed_of, free_port, viewer_pids

APPS = ROOT / "tests" / "apps"
RUN = [sys.executable, "-m", "rerun_logging", "run"]
SLOW = os.environ.get("REAL_APPS_FULL") == "1"
"""``REAL_APPS_FULL=1``: the full counts (more rounds, requests, tasks) instead of CI's."""


def count(ci: int, full: int) -> int:
    """``ci`` in CI (the default), ``full`` with ``REAL_APPS_FULL=1``."""
    return full if SLOW else ci


def app_env(**extra: str) -> dict[str, str]:
    """A clean environment for an app: the package importable, no sink, no run, no
    recording inherited from the test process, never a browser, viewers on free web
    ports, and faulthandler armed (a hung process asked with SIGABRT says where)."""
    env = child_env()
    for name in list(env):
        if name.startswith("RERUN_LOGGING_") and name != "RERUN_LOGGING_WEB_PORT":
            del env[name]
    env.update(CI="1", PYTHONFAULTHANDLER="1", PYTHONUNBUFFERED="1")
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


# --- streams ---------------------------------------------------------------------------


@dataclass
class Stream:
    """One process's stream: its INFO, its records, whether it ended cleanly."""

    info: RecordingInfo
    source: str
    records: list[Record] = field(default_factory=list)
    ended: bool = False
    dropped: int = 0
    torn: str | None = None

    @property
    def pid(self) -> int:
        return self.info.pid

    def messages(self) -> list[str]:
        return [r.message for r in self.records]

    def __repr__(self) -> str:
        end = "END" if self.ended else f"no END{' (' + self.torn + ')' if self.torn else ''}"
        return (f"<{self.info.application_id}[{self.pid}] {len(self.records)} records, {end}, "
                f"dropped {self.dropped}, {self.source}>")


def streams_of_bytes(data: bytes, source: str) -> list[Stream]:
    """Every stream in ``data``: one after the other when a file was appended to (a new
    stream header, or a new INFO without one), a torn tail noted on the last."""
    out: list[Stream] = []
    start = 0
    while start < len(data):
        decoder = StreamDecoder(source)
        decoder.feed(data[start:])
        restart = None
        current: Stream | None = None
        try:
            for message in decoder.messages():
                if isinstance(message, RecordingInfo):
                    current = Stream(message, source)
                    out.append(current)
                elif current is None:
                    raise AssertionError(f"{source}: a message before INFO: {message!r}")
                elif isinstance(message, Record):
                    current.records.append(message)
                elif isinstance(message, End):
                    current.ended = True
                elif isinstance(message, Dropped):
                    current.dropped += message.count
            decoder.close()
        except (FrameTooLarge, NotARecording) as error:
            at = start + error.offset
            if data[at:at + len(MAGIC)] == MAGIC and at > start:
                restart = at  # a second run appended its own header
            elif current is not None:
                current.torn = str(error)
            else:
                raise
        except RecordingError as error:
            if current is None:
                raise
            current.torn = str(error)
        if restart is None:
            break
        start = restart
    return out


def file_streams(path: Path) -> list[Stream]:
    """The streams of the recording ``path`` and of the children's files beside it."""
    stem = path.stem
    files = [path] if path.exists() else []
    files += sorted(p for p in path.parent.glob(f"{stem}.*{path.suffix}") if p != path)
    return [s for f in files for s in streams_of_bytes(f.read_bytes(), f.name)]


def folder_streams(folder: Path) -> list[Stream]:
    """The streams a viewer saved into ``folder`` (``--save-dir``: one ``.rlg`` each)."""
    return [s for f in sorted(folder.glob("*.rlg")) for s in streams_of_bytes(f.read_bytes(), f.name)]


# --- targets ----------------------------------------------------------------------------


class Target:
    """Where a scenario's handlers send their records; :meth:`streams` reads them back."""

    name = ""
    spec = ""

    def streams(self) -> list[Stream]:
        raise NotImplementedError

    def log_text(self) -> str:
        """What the viewer said (connect, spawn), for failure messages."""
        return ""

    def close(self) -> None:
        """Stop whatever the target started (always called, in a finally)."""


class SaveTarget(Target):
    name = "save"

    def __init__(self, folder: Path, file_name: str = "app.rrd") -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / file_name
        self.spec = f"save:{self.path}"

    def streams(self) -> list[Stream]:
        return file_streams(self.path)


class ConnectTarget(Target):
    """A viewer the test starts, saving every stream it receives into a folder."""

    name = "connect"

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "viewer"
        self.viewer = ViewerProcess("--no-browser", save_dir=self.folder)
        self.spec = f"connect:127.0.0.1:{self.viewer.port}"

    def streams(self) -> list[Stream]:
        """Stop the viewer (its files are then complete) and read every stream it saved."""
        assert self.viewer.stop() == 0, "".join(self.viewer.lines)
        return folder_streams(self.folder)

    def log_text(self) -> str:
        return "".join(self.viewer.lines)

    def close(self) -> None:
        self.viewer.stop()


class SpawnTarget(Target):
    """``spawn`` on a free port: the first app starts the viewer, the next ones use it."""

    name = "spawn"

    def __init__(self) -> None:
        from rerun_logging.sinks.spawn import viewer_log_path

        self.port = free_port()
        self.log = Path(viewer_log_path(self.port))
        self.log.unlink(missing_ok=True)
        self.spec = f"spawn:127.0.0.1:{self.port}"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def streams(self, timeout: float = 20.0) -> list[Stream]:
        """Every stream the spawned viewer holds, read through its web feed."""
        deadline = time.monotonic() + timeout
        while "web UI on " not in self.log_text():
            if time.monotonic() > deadline:
                pytest.fail(f"the spawned viewer has no web UI: {self.log_text()!r}")
            time.sleep(0.05)
        line = next(l for l in self.log_text().splitlines() if "web UI on " in l)
        return feed_streams(line.split("web UI on ", 1)[1].strip(), deadline)

    def close(self) -> None:
        for pid in viewer_pids(self.port):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        self.log.unlink(missing_ok=True)


def feed_streams(url: str, deadline: float) -> list[Stream]:
    """The streams of the viewer serving ``url``: their states from its WebSocket feed
    (waiting until none is live), their records through the page's Download request,
    one stream at a time (the live feed itself is bounded per page, by design)."""
    from websockets.sync.client import connect

    ws_url, origin = feed_of(url)
    recordings: list[dict[str, Any]] = []
    out = []
    with connect(ws_url, origin=origin, max_size=None) as ws:

        def receive() -> Any:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"the viewer at {url} did not answer in time; streams: {recordings}")
            return ws.recv(timeout=left)

        while not recordings or any(r["state"] == "live" for r in recordings):
            message = receive()
            if isinstance(message, str) and json.loads(message)["type"] == "recordings":
                recordings = json.loads(message)["recordings"]
        for i, r in enumerate(recordings):
            ws.send(json.dumps({"type": "download", "id": i, "select": [
                {"recording": r["recording"], "pid": r["pid"], "seqs": [0, 2**40]}]}))
            while True:  # the download's text message, then its file
                message = receive()
                if isinstance(message, bytes) and message.startswith(BATCH_TAG):
                    continue  # a records batch of the live feed, not the file
                if isinstance(message, str):
                    reply = json.loads(message)
                    if reply["type"] == "error":
                        pytest.fail(f"download refused: {reply}")
                    continue
                break
            (stream,) = streams_of_bytes(message, f"feed {r['state']}")
            stream.ended, stream.dropped = r["state"] == "ended", r["dropped"]
            out.append(stream)
    return out


def make_target(name: str, folder: Path) -> Target:
    if name == "save":
        return SaveTarget(folder / "rec")
    if name == "connect":
        return ConnectTarget(folder)
    if name == "spawn":
        return SpawnTarget()
    raise ValueError(name)


# --- processes ---------------------------------------------------------------------------


class App:
    """A server started in a session of its own: its output collected line by line, the
    whole group (workers too) killed at the end whatever happened."""

    def __init__(self, argv: Sequence[str], *, cwd: Path, env: dict[str, str]) -> None:
        self.argv = list(argv)
        # A terminal of its own (a pty as the session's controlling terminal, its group in
        # the foreground), so that a signal to the whole group is what a terminal's Ctrl-C
        # is: ``rerun-logging run`` then knows the program got it too, as in a real shell.
        self._terminal, slave = os.openpty()
        terminal = os.ttyname(slave)
        try:
            self.process = subprocess.Popen(
                self.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, start_new_session=True,
                preexec_fn=lambda: os.close(os.open(terminal, os.O_RDWR)),
            )
        finally:
            os.close(slave)
        assert self.process.stdout is not None and self.process.stderr is not None
        self.out, self.err = Lines(self.process.stdout), Lines(self.process.stderr)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, sig: int = signal.SIGTERM, *, group: bool = False, timeout: float = 30.0) -> float:
        """Send ``sig`` (to the whole group: a terminal's Ctrl-C) and wait for the exit;
        the seconds it took. A process still there after ``timeout`` fails the test,
        with where its threads were (faulthandler, asked with SIGABRT)."""
        started = time.monotonic()
        if group:
            os.killpg(self.pid, sig)
        else:
            self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.argv} did not stop within {timeout}s of signal {sig}:\n"
                        + self.dump_hung())
        return time.monotonic() - started

    def dump_hung(self, pids: Iterable[int] | None = None) -> str:
        """Ask ``pids`` (default: every process of the group) for their Python stacks."""
        targets = list(pids) if pids is not None else group_pids(self.pid)
        before = len(self.err.lines)
        for pid in targets:  # one at a time, so that their dumps do not interleave
            try:
                os.kill(pid, signal.SIGABRT)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 3.0
            while os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" and time.monotonic() < deadline:
                time.sleep(0.02)
        time.sleep(0.3)  # let the pipe drain
        return f"stacks of {targets} (faulthandler):\n" + "\n".join(self.err.lines[before:][-300:])

    def output(self) -> str:
        return "stderr:\n" + "\n".join(self.err.lines) + "\nstdout:\n" + "\n".join(self.out.lines)

    def kill(self) -> None:
        for pid in group_pids(self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                try:
                    stream.close()
                except (OSError, ValueError):
                    pass
        if self._terminal >= 0:
            os.close(self._terminal)
            self._terminal = -1


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def group_pids(pgid: int) -> list[int]:
    """Live processes of process group ``pgid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def get(url: str, timeout: float = 15.0) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()


def wait_until(predicate: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# --- assertions ---------------------------------------------------------------------------


def by_recording(streams: list[Stream]) -> dict[str, list[Stream]]:
    out: dict[str, list[Stream]] = {}
    for stream in streams:
        out.setdefault(stream.info.recording_id, []).append(stream)
    return out


def extras_of(streams: Iterable[Stream], key: str) -> list[Any]:
    """Every value of extra ``key`` in ``streams``, sorted (each record once)."""
    return sorted(r.extras[key] for s in streams for r in s.records if key in r.extras)


def assert_own_records(streams: Iterable[Stream]) -> None:
    """Every record of a stream was logged by that stream's process."""
    for stream in streams:
        others = {r.process for r in stream.records} - {stream.pid}
        assert not others, f"{stream}: records of other processes {others}"


def assert_clean_ends(streams: Iterable[Stream], context: str = "") -> None:
    unclean = [s for s in streams if not s.ended or s.torn or s.dropped]
    assert not unclean, (f"streams without a clean END (or with drops): {unclean}; "
                         f"last records: {[s.messages()[-3:] for s in unclean]}\n{context}")


def notable(output: str, limit: int = 60) -> str:
    """The lines of ``output`` worth reading first in a failure: what rerun-logging said,
    exceptions, tracebacks (the rest of a long output is cut)."""
    keys = ("rerun-logging", "Exception", "Error", "Traceback", "File \"", "Thread 0x", "Current thread")
    lines = [line for line in output.splitlines() if any(k in line for k in keys)]
    return "notable lines:\n" + "\n".join(lines[:limit])
