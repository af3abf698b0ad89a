"""The runner of ``rerun-logging run``: start PROGRAM instrumented, wait, pass its status on.

PROGRAM is resolved like this (:func:`resolve_command`):

- ``python``, ``python3``, ``python3.X`` as the first word: this interpreter
  (``sys.executable``), where rerun_logging is importable; an explicit path to an
  interpreter is used as it is (it needs rerun_logging installed to be instrumented);
- a path (it has a ``/``, or ends with ``.py``, or is an existing file that is not
  executable): run by this interpreter, unless it is an executable file (a console
  script with its own shebang), which is run as it is;
- any other word: a command on ``PATH`` (``uvicorn``), run as it is.

A PROGRAM that does not exist: one line naming it, exit 127 (126: not executable),
as a shell does. A bad ``--sink``: one line, exit 2.

The program runs as a subprocess that inherits standard input, output and error
and the runner's process group. The runner waits and returns its status; death by
signal N is 128+N, as a shell reports it. Signals: SIGINT, SIGQUIT and SIGHUP that
the terminal sends reach the whole foreground process group, so the program gets
them itself and the runner ignores them; when the runner is not in the terminal's
foreground group (no terminal, a test, a supervisor signalling the runner's pid)
it forwards them. SIGTERM is always forwarded.

With ``serve``, the runner runs the viewer (see the package docstring), set up as
the serve sink sets up its own (:func:`~rerun_logging.viewer.thread.page_config`),
and says its events (:mod:`rerun_logging.viewer.events`) as its own lines, but
for a stream's ordinary life (a process connects, its stream ends cleanly). The
program always runs: a defaulted web port (``serve``, 7271) that is taken gives way
to a free one (said in the line with the URL); a port named in ``serve:HOST:PORT``
that is taken is said once, and the program runs anyway, streaming to the runner,
which counts its records when it ends; when even the runner's loopback port cannot
listen, the program runs with its records in memory.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ..exitcodes import EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_USAGE
from . import CONFIG_ENV_VAR, DEFAULT_LEVEL, DEFAULT_SINK, SITE_DIR, RunConfig

if TYPE_CHECKING:
    from ..viewer.events import ViewerEvent

PREFIX = "rerun-logging run"
SERVER_START_TIMEOUT = 10.0
SERVER_STOP_TIMEOUT = 5.0
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
TERMINAL_SIGNALS = ("SIGINT", "SIGHUP", "SIGQUIT")
_PYTHON_NAME = re.compile(r"python(\d+(\.\d+)?)?", re.IGNORECASE)


class UsageError(Exception):
    """A problem with the command line: one line, exit status ``status``."""

    def __init__(self, text: str, status: int = EXIT_USAGE) -> None:
        super().__init__(text)
        self.status = status


@dataclass(frozen=True)
class Program:
    """The command to start and the name the run's application id defaults to."""

    argv: list[str]
    name: str


def say(text: str) -> None:
    """One line on standard error, prefixed ``rerun-logging run:``."""
    from ..viewer.report import say as say_line

    say_line(text, PREFIX)


# --- the command line ------------------------------------------------------------------


def resolve_command(command: Sequence[str]) -> Program:
    """The argv to start for ``command`` (see the module docstring); UsageError if none."""
    if not command:
        raise UsageError("no program given: rerun-logging run [OPTIONS] -- PROGRAM [ARGS...]")
    first, rest = command[0], list(command[1:])
    if _PYTHON_NAME.fullmatch(first):
        return Program([sys.executable, *rest], _python_program_name(rest))
    looks_like_path = os.sep in first or (os.altsep or "\0") in first or first.endswith(".py")
    if looks_like_path or (os.path.exists(first) and not _is_executable_file(first)):
        if not os.path.exists(first):
            raise UsageError(f"{first}: no such file", EXIT_NOT_FOUND)
        if _PYTHON_NAME.fullmatch(os.path.basename(first)) and _is_executable_file(first):
            return Program([first, *rest], _python_program_name(rest))
        if _is_executable_file(first) and not first.endswith(".py"):
            return Program([first, *rest], _stem(first))
        return Program([sys.executable, first, *rest], _script_name(first))
    found = shutil.which(first)
    if found is None:
        raise UsageError(f"{first}: command not found", EXIT_NOT_FOUND)
    return Program([found, *rest], _stem(first))


def _is_executable_file(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path.rstrip(os.sep)))[0] or "python"


def _script_name(path: str) -> str:
    """As the handler names a script: its stem; a package's ``__main__.py``: the folder."""
    stem = _stem(path)
    if os.path.isdir(path):
        return os.path.basename(os.path.abspath(path)) or "python"
    if stem == "__main__":
        return os.path.basename(os.path.dirname(os.path.abspath(path))) or "python"
    return stem


def _python_program_name(args: Sequence[str]) -> str:
    """The program a Python command line runs: the ``-m`` module, the script, or python."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-m" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("-m") and len(arg) > 2:
            return arg[2:]
        if arg in ("-c", "-") or arg.startswith("-c"):
            return "python"
        if arg in ("-W", "-X", "--check-hash-based-pycs"):
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        return _script_name(arg)
    return "python"


def check_sink(text: str | None) -> list[str]:
    """The run's sinks from ``--sink`` (or ``RERUN_LOGGING_SINK``, or spawn); UsageError if bad."""
    from ..sinks import mode_of
    from ..spec import ENV_VAR, SinkSpecError, parse_sinks

    source = "--sink"
    if text is None:
        env = os.environ.get(ENV_VAR, "")
        text, source = (env, ENV_VAR) if env.strip() else (DEFAULT_SINK, "default sink")
    try:
        specs = parse_sinks(text)
    except SinkSpecError as error:
        raise UsageError(f"bad {source} {text!r}: {error}") from None
    return [mode_of(spec).for_run(spec) for spec in specs]


# --- running -----------------------------------------------------------------------------


def run(
    command: Sequence[str], sink: str | None = None, application_id: str | None = None,
    level: int = DEFAULT_LEVEL, top_only: bool = False,
) -> int:
    """Run ``command`` instrumented; return its exit status (or 2, 126, 127)."""
    try:
        sinks = check_sink(sink)
        program = resolve_command(command)
    except UsageError as error:
        say(str(error))
        return error.status
    signals = Signals()
    signals.install()
    try:
        return _run(program, sinks, application_id or program.name, level, top_only, signals)
    finally:
        signals.restore()


def _serves_page(sink: str) -> bool:
    from ..sinks import mode_of
    from ..spec import parse_one

    return mode_of(parse_one(sink)).serves_page


def _run(
    program: Program, sinks: list[str], application_id: str, level: int, top_only: bool,
    signals: Signals,
) -> int:
    server: RunServer | None = None
    serving = [s for s in sinks if _serves_page(s)]
    if serving:
        if len(serving) > 1:
            say(f"only one serve sink per run: {', '.join(serving)}")
            return EXIT_USAGE
        server = RunServer(serving[0])
        try:
            port = server.start()
        except OSError as error:
            say(f"cannot serve: {error}; running the program with its records in memory only")
            server.stop()
            from ..spec import MEMORY

            server, replacement = None, str(MEMORY)
        else:
            replacement = f"connect:127.0.0.1:{port}"
            if server.url is None:
                say(f"cannot serve the web viewer: {server.web_error}; running the program "
                    "anyway (its records are counted here when it ends; serve on another port: "
                    "--sink serve:HOST:PORT)")
        sinks = [replacement if s == serving[0] else s for s in sinks]
    try:
        if signals.received is not None:  # stopped before the program started
            return 128 + signals.received
        env = program_env(sinks, application_id, level, top_only)
        status = _run_program(program, env, signals)
        if server is not None:
            server.linger(status, signals)
        return status
    finally:
        if server is not None:
            server.stop()


def program_env(
    sinks: list[str], application_id: str, level: int, top_only: bool,
    environ: dict[str, str] | None = None,
) -> dict[str, str]:
    """The program's environment: ours prepended to PYTHONPATH, the config, the recording id."""
    from ..handler import RECORDING_ID_ENV_VAR

    env = dict(os.environ if environ is None else environ)
    before = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join([SITE_DIR, before]) if before else SITE_DIR
    recording_id_set = not env.get(RECORDING_ID_ENV_VAR)
    if recording_id_set:
        env[RECORDING_ID_ENV_VAR] = str(uuid.uuid4())
    config = RunConfig(
        sink=sinks, application_id=application_id, level=level, top_only=top_only,
        runner_pid=os.getpid(), pythonpath=before, recording_id_set=recording_id_set,
    )
    env[CONFIG_ENV_VAR] = config.to_env()
    return env


def _run_program(program: Program, env: dict[str, str], signals: Signals) -> int:
    """Start the program, wait for it; its status as a shell reports it."""
    try:
        process = subprocess.Popen(program.argv, env=env)
    except FileNotFoundError:
        say(f"{program.argv[0]}: no such file or interpreter")
        return EXIT_NOT_FOUND
    except PermissionError:
        say(f"{program.argv[0]}: permission denied")
        return EXIT_NOT_EXECUTABLE
    except OSError as error:
        say(f"{program.argv[0]}: cannot run: {error.strerror or error}")
        return EXIT_NOT_EXECUTABLE
    signals.child = process
    try:
        status = process.wait()
    finally:
        signals.child = None
    return 128 - status if status < 0 else status


class Signals:
    """The runner's signal handlers, for its whole life (see the module docstring).

    While the program runs: forward, unless the terminal sent the signal to the whole
    foreground group. Otherwise (before it starts, while serving after it ended):
    remember the signal and set :attr:`stop`.
    """

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.stop = threading.Event()
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._terminal = {getattr(signal, n) for n in TERMINAL_SIGNALS if hasattr(signal, n)}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for name in FORWARDED:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except (OSError, ValueError):
                pass

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            try:
                signal.signal(signum, handler)
            except (OSError, ValueError, TypeError):
                pass
        self._previous.clear()

    def _handle(self, signum: int, frame: object) -> None:
        child = self.child
        if child is not None and child.returncode is None:
            if signum in self._terminal and _terminal_sent_it():
                return  # the program got it from the terminal too
            try:
                child.send_signal(signum)
            except OSError:
                pass
            return
        self.received = signum
        self.stop.set()


def _terminal_sent_it() -> bool:
    """Whether the runner is in its terminal's foreground group (the program got it too)."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | getattr(os, "O_NOCTTY", 0))
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


# --- serve -------------------------------------------------------------------------------


class RunServer:
    """The viewer of a ``serve`` run, in a thread of the runner: TCP on loopback, the web UI."""

    def __init__(self, spec: str) -> None:
        from ..spec import parse_one
        from ..viewer.thread import ViewerThread, page_config

        parsed = parse_one(spec)
        assert parsed.host is not None and parsed.port is not None
        self.host, self.port = parsed.host, parsed.port
        self.url: str | None = None
        """The page's URL once it serves; None when the web UI could not listen."""
        self.web_error: str | None = None
        """Why the web UI could not listen, then."""
        config = page_config(self.host, self.port, port_given=parsed.port_given)
        self._server = ViewerThread(config, events=self._event)

    def start(self) -> int:
        """Listen; the loopback TCP port the run's processes connect to (OSError if not).

        A web UI that cannot listen is no error: :attr:`url` stays None and
        :attr:`web_error` says why (the run goes on; its records are counted at the end).
        """
        self._server.start(SERVER_START_TIMEOUT)
        port = self._server.tcp_port
        if port is None:
            raise OSError(f"the viewer could not start (status {self._server.status})")
        self.url = self._server.url
        if self.url is None and self.web_error is None:
            self.web_error = f"the web UI could not listen on {self.host}:{self.port}"
        return port

    def _event(self, event: ViewerEvent) -> None:
        """An event of the viewer (on its thread), said on the program's stderr when it
        tells the user something: not a stream's ordinary life."""
        from ..viewer.events import (
            Listening, PeerConnected, PeerDisconnected, Stopped, WebUINotStarted,
        )
        from ..viewer.report import event_line, stopped_text

        match event:
            case WebUINotStarted(address=address, reason=reason):
                # said once by the runner, with what it does instead (see _run)
                self.web_error = f"cannot listen on {address}: {reason}"
            case Stopped() if self.url is None and self.web_error is not None:
                say(f"not served (no page): {stopped_text(event)}")
            case Listening() | PeerConnected() | PeerDisconnected(clean=True) | Stopped():
                pass  # a stream's life: the program's stderr is not the place
            case _:
                say(event_line(event))

    def linger(self, status: int, signals: Signals) -> None:
        """After the program: keep serving until Ctrl-C when stdout is a terminal."""
        try:
            interactive = sys.stdout.isatty()
        except (AttributeError, ValueError):
            interactive = False
        if not interactive or not self._server.running:
            return
        say(f"the program exited with status {status}; still serving {self.url} "
            "(Ctrl-C to stop)")
        while not signals.stop.is_set() and self._server.running:
            signals.stop.wait(0.5)

    def stop(self) -> None:
        """Stop the viewer (its page says the server went away); bounded."""
        self._server.stop(SERVER_STOP_TIMEOUT)
