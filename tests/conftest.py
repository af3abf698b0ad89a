"""Shared fixtures: logging state restored after each test, the environment cleaned."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Iterator

import pytest

from rerun_logging import family, spec
from rerun_logging.format import Message, StreamDecoder

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without RERUN_LOGGING_SINK and leaves the root logger as it was."""
    monkeypatch.delenv(spec.ENV_VAR, raising=False)
    monkeypatch.setenv("RERUN_LOGGING_WEB_PORT", "0")  # viewers the tests start take free ports
    spec._parse_env.cache_clear()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    spec._parse_env.cache_clear()
    for name in family.ENV_VARS[1:]:  # what this process's sinks told its children
        os.environ.pop(name, None)


@pytest.fixture
def logger(request: pytest.FixtureRequest) -> Iterator[logging.Logger]:
    """A logger of the test's own, at DEBUG, not propagating; handlers closed after."""
    log = logging.getLogger(f"tests.{request.node.name}")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in log.handlers[:]:
        log.removeHandler(handler)
        handler.close()


def read_messages(path: str | os.PathLike[str], strict: bool = True) -> list[Message]:
    """Every message of a recording file, through the one decoder."""
    decoder = StreamDecoder(str(path))
    decoder.feed(Path(path).read_bytes())
    messages = list(decoder.messages())
    if strict:
        decoder.close()
    return messages


def run_python(
    code: str, *, cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
    timeout: float = 60, **kwargs: object,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter with the package importable."""
    full_env = {**child_env(), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=full_env, capture_output=True,
        text=True, timeout=timeout, **kwargs,  # type: ignore[arg-type]
    )


def feed_of(page_url: str) -> tuple[str, str]:
    """The WebSocket feed's URL (token kept) and the page's origin, for the page at ``page_url``."""
    base, _, query = page_url.partition("?")
    origin = base.rstrip("/")
    return origin.replace("http://", "ws://") + "/ws" + (f"?{query}" if query else ""), origin


_TEST_PORTS: set[int] = set()
"""Every port :func:`free_port` handed out: a viewer that a spawn sink starts there logs
to ``<tempdir>/rerun-logging-viewer-PORT.log``, removed at the end of the session."""


def cleaned_up(port: int) -> int:
    """``port`` (bound by a test itself), its spawned viewer's log removed at the end."""
    _TEST_PORTS.add(port)
    return port


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _TEST_PORTS.add(port)
    return port


@pytest.fixture(scope="session", autouse=True)
def _remove_spawned_viewer_logs() -> Iterator[None]:
    """After the session: the logs of viewers spawned on the tests' ports (ours only; other
    users' files and other ports are left alone, so a concurrent session keeps its own)."""
    yield
    from rerun_logging.sinks.spawn import viewer_log_path

    for port in _TEST_PORTS:
        first = Path(viewer_log_path(port))
        for log in [first, *first.parent.glob(f"rerun-logging-viewer-{port}-*.log")]:
            try:
                if log.lstat().st_uid == os.getuid():
                    log.unlink()
            except OSError:
                pass


def viewer_pids(port: int) -> list[int]:
    """Live viewer processes whose command line names ``port``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if b"rerun_logging" in words and str(port).encode() in words and state != "Z":
            pids.append(int(entry.name))
    return pids


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: the package importable, no sink override, and
    viewers on a free web port (also when started by a module-scoped fixture, which runs
    outside the per-test environment)."""
    env = {k: v for k, v in os.environ.items() if k not in (spec.ENV_VAR, *family.ENV_VARS)}
    env["RERUN_LOGGING_WEB_PORT"] = "0"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


LINE_TIMEOUT = 15.0
"""How long a test waits for a line of a process's output."""


class Lines:
    """Every line of a process's output, collected by a thread; waits with deadlines."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self.closed = False
        self._changed = threading.Condition()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, *texts: str, count: int = 1, timeout: float = LINE_TIMEOUT) -> list[str]:
        """The lines containing all ``texts``, once there are ``count`` of them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.matching(*texts)
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    pytest.fail(f"no {count} line(s) with {texts} within {timeout}s; saw {self.lines}")
                self._changed.wait(left)

    def matching(self, *texts: str) -> list[str]:
        return [line for line in list(self.lines) if all(t in line for t in texts)]

    def first(self, text: str, timeout: float = LINE_TIMEOUT) -> str:
        """The first line containing ``text``, waiting for it up to ``timeout`` seconds."""
        return self.wait_for(text, timeout=timeout)[0]


class ViewerProcess:
    """A real viewer subprocess on a free port (or ``port``), stopped by :meth:`stop`."""

    def __init__(self, *args: str, port: int = 0, save_dir: Path | None = None) -> None:
        command = [sys.executable, "-m", "rerun_logging", "viewer", "--port", str(port)]
        if save_dir is not None:
            command += ["--save-dir", str(save_dir)]
        self.process = subprocess.Popen(
            [*command, *args], env=child_env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.lines: list[str] = []
        self.port = self._wait_for_port()

    def _wait_for_port(self) -> int:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if "listening on" in line:
                return int(line.rsplit(":", 1)[1])
        raise AssertionError(f"the viewer did not start: {''.join(self.lines)}")

    def wait_for(self, text: str) -> str:
        """Read standard error on until a line containing ``text``; that line."""
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}: {''.join(self.lines)}")

    def stop(self, sig: int = 15, timeout: float = 20) -> int:
        """Signal the viewer and wait for it; returns its exit status."""
        if self.process.stderr is None or self.process.stderr.closed:
            return int(self.process.returncode)
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            self.lines += self.process.stderr.readlines() if self.process.stderr else []
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()


# --- the browser tests (Playwright with Debian's Chromium) ------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "tests" / "artifacts"
"""Screenshots and other artifacts the browser tests leave to be looked at (not
``test-results/``: pytest-playwright empties that folder at every session start)."""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, object]) -> dict[str, object]:
    """pytest-playwright launches Debian's Chromium (skip without it, unless in CI)."""
    if not os.path.exists(CHROMIUM):
        message = f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu"]}


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> object:
    """``screenshot(page, name)`` saves ``tests/artifacts/screenshots/<test>-<name>.png``."""
    folder = ARTIFACTS / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: object, name: str) -> Path:
        path = folder / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=False)  # type: ignore[attr-defined]
        return path

    return take
