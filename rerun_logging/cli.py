"""The ``rerun-logging`` command (also ``python -m rerun_logging``).

Subcommands::

    rerun-logging [FILE ...]         the viewer (also: rerun-logging viewer [FILE ...])
    rerun-logging print FILE|-       records as text lines, or JSON lines (--json)
    rerun-logging verify FILE        check a recording: version, counts, clean end
    rerun-logging run -- PROGRAM     run a Python program with its logging recorded
    rerun-logging stop [--port PORT] stop the viewer on a TCP port (default 7270)
    rerun-logging --version

Anything that is not ``print``, ``verify``, ``run`` or ``stop`` starts the viewer: no arguments,
``viewer``, options, or recording files (``-`` is standard input). A file whose
name looks like a mistyped command (``prnt``) is still a file when it exists;
when it does not, the error says which command was probably meant.

Exit status: 0 success; 1 a recording that is torn, corrupt or not a recording
(everything readable before the fault is printed first; damage that a later run's
header ends is reported on stderr and reading goes on to that run); 2 a usage error or a
file that cannot be opened; 3 the viewer's port is taken (another viewer runs
there: the one that lost the race exits; a default port that is taken while the
viewer opens files, and a taken default web port, give way to free ports instead,
said once); ``stop``: 0 stopped, 1 nothing stopped (no viewer there, or the
process recorded there is not a viewer); 130 interrupted (except while
following, where Ctrl-C is the normal way to stop, and exits 0). A closed pipe
(``| head``) ends the command quietly with 0. Errors are one line on stderr that
names the file.
"""

from __future__ import annotations

import argparse
import difflib
import io
import json
import logging
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TextIO

from ._version import __version__
from .exitcodes import (
    EXIT_BAD_RECORDING, EXIT_INTERRUPTED, EXIT_NOT_STOPPED, EXIT_OK, EXIT_USAGE,
)
from .script import parse_level
from .format import (
    Damage,
    Dropped,
    Message,
    NotARecording,
    Record,
    RecordingError,
    RecordingInfo,
    TruncatedStream,
    UnsupportedVersion,
    stream_id,
)
from .reader import (
    STDIN, RecordingSummary, StreamReport, VerifyReport, read_batches, source_name, verify,
)
from .render import dropped_fields, dropped_line, json_fields, stream_fields, stream_line, text_line
from .spec import DEFAULT_TCP_PORT, DEFAULT_WEB_PORT
from .wording import counted

PROG = "rerun-logging"
COMMANDS = ("print", "verify", "viewer", "run", "stop")
READ_COMMANDS = ("print", "verify", "run", "stop")
"""The subcommands that are not the viewer."""
COMMANDS_HELP = f"""commands:
  {PROG} [viewer] [FILE ...]   the viewer (the default command): TCP streams and files
  {PROG} print FILE|-          print a recording as text lines, or JSON lines (--json)
  {PROG} verify FILE|-         check a recording: version, counts, clean end
  {PROG} run -- PROGRAM ...    run a Python program with its logging recorded
  {PROG} stop [--port PORT]    stop the viewer on a TCP port (a spawned one keeps running)

'{PROG} COMMAND --help' tells more about each."""
"""Every subcommand, for the top-level ``--help`` (the viewer's, as no command is the viewer)."""

STOP_TIMEOUT = 10.0
"""How long ``stop`` waits for the viewer to exit after SIGTERM."""


WEB_PORT_ENV_VAR = "RERUN_LOGGING_WEB_PORT"
"""Sets the viewer's default web port, also for viewers that ``spawn`` starts."""


def _default_web_port() -> int:
    value = os.environ.get(WEB_PORT_ENV_VAR, "")
    try:
        return parse_port(value) if value.strip() else DEFAULT_WEB_PORT
    except argparse.ArgumentTypeError:
        sys.stderr.write(f"rerun-logging: ignoring {WEB_PORT_ENV_VAR}={value!r}: not a port\n")
        return DEFAULT_WEB_PORT


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if wants_viewer(args):
        return viewer_command(args)
    try:
        options = build_parser().parse_args(args)
    except SystemExit as stop:  # --help and usage errors
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    command: Callable[[argparse.Namespace], int] = options.run
    return command(options)


def wants_viewer(args: Sequence[str]) -> bool:
    """Everything but ``print`` and ``verify``: nothing, ``viewer``, options, file names."""
    return not args or args[0] not in READ_COMMANDS


# --- viewer -------------------------------------------------------------------------


def viewer_command(args: Sequence[str]) -> int:
    """``rerun-logging [viewer] [OPTIONS] [FILE ...]``: parse, check, run the viewer."""
    named = bool(args) and args[0] == "viewer"
    rest = list(args[1:] if named else args)
    if not named:
        hint = mistyped_command(rest)
        if hint:
            _error(hint)
            return EXIT_USAGE
    parser = build_viewer_parser(f"{PROG} viewer" if named else PROG)
    try:
        options = parser.parse_args(rest)
    except SystemExit as stop:  # --help, --version and usage errors
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    return run_viewer(options)


def mistyped_command(args: Sequence[str]) -> str | None:
    """A hint when the first argument is no file but looks like a command (``prnt``)."""
    if not args or args[0].startswith("-") or args[0] == STDIN or os.path.exists(args[0]):
        return None
    first = args[0]
    if os.sep in first or "." in first:
        return None
    close = difflib.get_close_matches(first, COMMANDS, n=1, cutoff=0.6)
    if not close:
        return None
    return (f"{first}: no such file, and not a command; did you mean "
            f"'{PROG} {close[0]}'? (commands: {', '.join(COMMANDS)})")


def run_viewer(options: argparse.Namespace) -> int:
    """Start the viewer with the parsed ``options``; returns when it stops.

    Ports the user did not name may give way to free ones when taken (said once):
    the web port always, the TCP port when the viewer opens files (so that
    ``rerun-logging FILE`` works while another viewer runs). A port named with
    ``--port`` or ``--web-port`` is kept, and a taken one is an error as before.
    """
    from .viewer.server import DEFAULT_PORT, ViewerConfig, run

    port_given, web_port_given = options.port is not None, options.web_port is not None
    config = ViewerConfig(
        sources=tuple(options.files),
        bind=options.bind,
        port=options.port if port_given else DEFAULT_PORT,
        port_fallback=not port_given and bool(options.files),
        web_port=options.web_port if web_port_given else _default_web_port(),
        web_port_fallback=not web_port_given,
        state_file=True,
        save_dir=options.save_dir,
        print_records=options.print_records,
        color=options.color,
        memory_limit=options.memory_limit,
        handshake_timeout=options.handshake_timeout,
        frame_timeout=options.frame_timeout,
        open_browser=options.open_browser,
        otlp_port=options.otlp_port,
    )
    return run(config)


def build_viewer_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The viewer's parser (no subcommand, or ``viewer``)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="The rerun-logging viewer: receives the streams of apps logging with\n"
        "RerunHandler (connect and spawn sinks) over TCP, and loads recording files.",
        epilog=COMMANDS_HELP + "\n\nExit status 3: the port named by --port is taken (another "
        "viewer runs there). Ports not named fall back to free ones when taken: the web UI's "
        "always, the TCP port when FILEs are given (said once).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    add_viewer_options(parser)
    return parser


def add_viewer_options(parser: argparse.ArgumentParser) -> None:
    """The viewer's arguments and options."""
    from .viewer import server

    parser.add_argument("files", metavar="FILE", nargs="*",
                        help="recording files to load, or - for standard input")
    parser.add_argument("--bind", metavar="HOST", default=server.DEFAULT_BIND,
                        help="address to listen on (default %(default)s: this machine only)")
    parser.add_argument("--port", type=parse_port, default=None,
                        help=f"TCP port for app streams (default {server.DEFAULT_PORT}; with "
                        "FILEs, a free one when it is taken; 0 picks a free one)")
    parser.add_argument("--save-dir", metavar="DIR",
                        help="save every stream as DIR/APP-RECORDING-PID.rlg (created if missing)")
    parser.add_argument("--print", dest="print_records", action="store_true",
                        help="print every incoming record as a line on standard output")
    parser.add_argument("--color", action=argparse.BooleanOptionalAction, default=None,
                        help="colour levels in --print output (default: on a terminal)")
    parser.add_argument("--memory-limit", metavar="SIZE", type=parse_size,
                        default=server.DEFAULT_MEMORY_LIMIT,
                        help="memory for stored frames, e.g. 512M or 2G (default 512M); "
                        "past it the oldest frames are evicted and counted")
    parser.add_argument("--handshake-timeout", metavar="SECONDS", type=parse_seconds,
                        default=server.DEFAULT_HANDSHAKE_TIMEOUT,
                        help="time a connection has to send its header and INFO (default %(default)g)")
    parser.add_argument("--frame-timeout", metavar="SECONDS", type=parse_seconds,
                        default=server.DEFAULT_FRAME_TIMEOUT,
                        help="time a frame that has started has to complete (default %(default)g); "
                        "between frames there is no timeout")
    parser.add_argument("--web-port", type=parse_port, default=None,
                        help=f"port of the web UI on --bind (default {DEFAULT_WEB_PORT}, or "
                        f"${WEB_PORT_ENV_VAR}, or a free one when that is taken; 0: any free port)")
    parser.add_argument("--otlp-port", metavar="PORT", type=parse_port, default=None,
                        help="also receive OpenTelemetry logs: OTLP/HTTP (protobuf or JSON, "
                        "gzip or not) POSTed to http://HOST:PORT/v1/logs on --bind, each "
                        "resource a recording (default: off; 0: any free port; needs the "
                        "rerun-logging[otlp] extra)")
    parser.add_argument("--no-browser", dest="open_browser", action="store_false",
                        help="do not open a browser on the web UI (never opened when CI is "
                        "set or there is no display)")


def parse_port(text: str) -> int:
    """A TCP port number, 0 to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r} (0 to 65535)")
    return port


def parse_seconds(text: str) -> float:
    """A positive number of seconds."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return seconds


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """A size in bytes: ``1048576``, ``512K``, ``512M``, ``2G``, ``2GiB`` (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 2G)")
    scale = 1024 ** " kmgt".index(match.group(2).lower() or " ")
    size = int(float(match.group(1)) * scale)
    if size <= 0:
        raise argparse.ArgumentTypeError(f"the size must be positive: {text!r}")
    return size


# --- print and verify ---------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``print`` and ``verify`` (``viewer`` is parsed by :func:`build_viewer_parser`)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Read recordings made by rerun-logging's RerunHandler.",
        epilog=f"Without a command (or with 'viewer'), {PROG} starts the viewer: {PROG} --help.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    show = commands.add_parser("print", help="print the records of a recording")
    show.add_argument("file", metavar="FILE", nargs="+",
                      help="recording files (ours, or OTLP JSON lines), read in turn; "
                           "- for standard input")
    show.add_argument("--json", action="store_true", help="JSON lines instead of text")
    show.add_argument("--otlp-json", action="store_true",
                      help="OTLP JSON lines instead of text: the OpenTelemetry file exporter's "
                           "format, which the Collector's otlpjsonfile receiver replays "
                           "(needs the rerun-logging[otlp] extra)")
    show.add_argument("-f", "--follow", action="store_true",
                      help="keep reading a file that is still being written, until its end")
    show.add_argument("--color", action=argparse.BooleanOptionalAction, default=None,
                      help="colour levels (default: when standard output is a terminal)")
    show.add_argument("--level", type=parse_level, default=logging.NOTSET,
                      help="minimum level, a name (WARNING) or a number (30)")
    show.add_argument("--logger", action="append", default=[], metavar="NAME",
                      help="only this logger and its children (repeatable)")
    show.set_defaults(run=run_print)

    check = commands.add_parser("verify", help="check a recording and summarize it")
    check.add_argument("file", metavar="FILE", help="a recording file, or - for standard input")
    check.set_defaults(run=run_verify)

    program = commands.add_parser(
        "run", help="run a Python program with a RerunHandler on its logging",
        usage=f"{PROG} run [--sink SPEC] [--app-id ID] [--level LEVEL] [--top-only] "
        "-- PROGRAM [ARGS ...]",
        description="Run an unmodified Python program (a script, python -m MODULE, or a "
        "console script such as uvicorn) with a RerunHandler receiving its logging; the "
        "Python processes it starts join the same recording. Its exit status, standard "
        "input, output and error pass through unchanged.",
        epilog="Exit status: the program's (128+N when killed by signal N); 127 a program "
        "that does not exist; 2 a usage error (a bad --sink).",
    )
    program.add_argument("--sink", metavar="SPEC", default=None,
                         help="where the records go (default: $RERUN_LOGGING_SINK, or spawn); "
                         "save:PATH saves other processes beside PATH as PATH-stem.PID.EXT; "
                         "serve[:HOST:PORT] serves the web UI from this command")
    program.add_argument("--app-id", metavar="ID", default=None,
                         help="the application id (default: the program's name)")
    program.add_argument("--level", type=parse_level, default=logging.INFO,
                         help="the handler's level (default INFO); the root logger is lowered "
                         "to it without changing what the program's own handlers print")
    program.add_argument("--top-only", action="store_true",
                         help="instrument the program only, not the Python processes it starts")
    program.add_argument("command", metavar="PROGRAM", nargs=argparse.REMAINDER,
                         help="the program and its arguments, after --")
    program.set_defaults(run=run_program)

    stop = commands.add_parser(
        "stop", help="stop the viewer listening on a TCP port",
        description=f"Stop the viewer whose TCP port is PORT (default {DEFAULT_TCP_PORT}), such as the one a "
        "spawn sink started and left running: it finishes its saved files and exits. Only a "
        "viewer of this user that wrote its state file is signalled.",
        epilog="Exit status: 0 stopped; 1 nothing stopped (no viewer on that port, or the "
        "process recorded there is not a viewer).",
    )
    stop.add_argument("--port", type=parse_port, default=None,
                      help=f"the viewer's TCP port (default {DEFAULT_TCP_PORT})")
    stop.set_defaults(run=run_stop)
    return parser


# --- print --------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordFilter:
    """Which records to print: at least ``level``, and from ``loggers`` (or any)."""

    level: int = logging.NOTSET
    loggers: tuple[str, ...] = ()

    def __call__(self, record: Record) -> bool:
        """Whether ``record`` passes."""
        if record.level < self.level:
            return False
        return not self.loggers or any(logger_matches(record.logger, n) for n in self.loggers)


def logger_matches(logger: str, wanted: str) -> bool:
    """``logger`` is ``wanted`` or one of its children (``app`` takes ``app.db``, not ``application``).

    ``root`` (or an empty name) is every logger's ancestor, as in ``logging``.
    """
    if wanted in ("", "root"):
        return True
    return logger == wanted or logger.startswith(wanted + ".")


class PrintFormatter:
    """Turns messages into output lines, keeping the recording's INFO for the records after it.

    A file may hold several streams (runs): from the second on, a line marks where
    each new one starts (text ``-- stream 2: ... --``, or a JSON ``{"stream": 2, ...}``
    line); a stream that resumes (another handler wrote in between) gets none, its
    records name their recording. ``damage`` collects the damage reports seen.
    """

    def __init__(self, wanted: RecordFilter, as_json: bool, color: bool) -> None:
        self.wanted = wanted
        self.as_json = as_json
        self.color = color
        self.info: RecordingInfo | None = None
        self.damage: list[Damage] = []
        self._streams: set[object] = set()

    def lines(self, messages: Sequence[Message]) -> list[str]:
        """The output lines (without newlines) for ``messages``."""
        out: list[str] = []
        for message in messages:
            if isinstance(message, Record):
                if self.wanted(message):
                    out.append(self.record(message))
            elif isinstance(message, Dropped):
                out.append(self.dropped(message))
            elif isinstance(message, RecordingInfo):
                self.info = message
                out.extend(self.new_stream(message))
            elif isinstance(message, Damage):
                self.damage.append(message)
        return out

    def new_stream(self, info: RecordingInfo) -> list[str]:
        """The mark of a stream seen for the first time, after the first one."""
        try:
            key: object = stream_id(info)
            hash(key)
        except TypeError:
            key = id(info)
        if key in self._streams:
            return []
        self._streams.add(key)
        number = len(self._streams)
        if number == 1:
            return []
        if self.as_json:
            return [json.dumps(stream_fields(info, number))]
        return [stream_line(info, number)]

    def record(self, record: Record) -> str:
        """One record as text or as a JSON line."""
        if self.as_json:
            return json.dumps(json_fields(record, self.info))
        return text_line(record, self.info, self.color)

    def finish(self) -> list[str]:
        """Lines due at the end of a source: none (every line is written as it comes)."""
        return []

    def dropped(self, dropped: Dropped) -> str:
        """A visible mark where records were lost."""
        if self.as_json:
            return json.dumps(dropped_fields(dropped))
        return dropped_line(dropped)


def run_print(options: argparse.Namespace) -> int:
    """``rerun-logging print``: stream the records of files or standard input, in turn."""
    sources: list[str] = options.file
    if STDIN in sources and sys.stdin.isatty():
        _error(f"{source_name(STDIN)}: standard input is a terminal; pipe a recording "
               f"into it: python app.py | {PROG} print -")
        return EXIT_USAGE
    if options.follow and len(sources) > 1:
        _error("--follow reads one file: name only one")
        return EXIT_USAGE
    if options.json and options.otlp_json:
        _error("--json and --otlp-json are two output formats: choose one")
        return EXIT_USAGE
    out = text_output(sys.stdout)
    wanted = RecordFilter(options.level, tuple(options.logger))
    if options.otlp_json:
        try:
            from .otlp import files as otlp_files
        except ImportError as error:
            _error(f"--otlp-json needs the rerun-logging[otlp] extra: pip install "
                   f"'rerun-logging[otlp]' ({error})")
            return EXIT_USAGE
        printer: Any = OtlpJsonPrinter(otlp_files, wanted)
    else:
        color = out.isatty() if options.color is None else options.color
        printer = PrintFormatter(wanted, options.json, color)
    status = EXIT_OK
    for source in sources:
        done, go_on = _print_source(source, printer, out, options.follow)
        status = max(status, done)
        if not go_on:
            break
    return status


def _print_source(source: str, printer: Any, out: TextIO, follow: bool) -> tuple[int, bool]:
    """Print one source through ``printer``: its exit status, and whether to go on to
    the next (not once the reader of the output went away, nor after Ctrl-C)."""
    try:
        for batch in read_batches(source, follow=follow):
            told = len(printer.damage)
            lines = printer.lines(batch)
            if lines:
                out.write("\n".join(lines) + "\n")
                out.flush()
            for damage in printer.damage[told:]:
                _error(describe_damage(damage))
        lines = printer.finish()
        if lines:
            out.write("\n".join(lines) + "\n")
            out.flush()
    except BrokenPipeError:
        return quiet_broken_pipe(), False
    except RecordingError as error:
        _flush_quietly(out)
        _error(describe(error))
        return EXIT_BAD_RECORDING, True
    except OSError as error:
        _error(cannot_read(source, error))
        return EXIT_USAGE, True
    except KeyboardInterrupt:
        _flush_quietly(out)
        return (EXIT_OK if follow else EXIT_INTERRUPTED), False
    return (EXIT_BAD_RECORDING if printer.damage else EXIT_OK), True


class OtlpJsonPrinter:
    """``print --otlp-json``: messages to OTLP JSON lines (one request per 4,096 records
    of one stream), records filtered as ``print`` filters them."""

    def __init__(self, files: Any, wanted: RecordFilter) -> None:
        self._files = files
        self._wanted = wanted
        self._held: list[Message] = []
        self.damage: list[Damage] = []

    def lines(self, batch: list[Message]) -> list[str]:
        """Lines for the records of ``batch`` (a chunk of the file: at most 4,096 a line)."""
        for message in batch:
            if isinstance(message, Damage):
                self.damage.append(message)
            elif not isinstance(message, Record) or self._wanted(message):
                self._held.append(message)
        return self.finish()

    def finish(self) -> list[str]:
        """Lines for everything held; the stream's INFO is kept for the records after it."""
        held, self._held = self._held, []
        out = list(self._files.json_lines(held))
        info = [m for m in held if isinstance(m, RecordingInfo)]
        if info:
            self._held.append(info[-1])
        return out


def text_output(stream: TextIO) -> TextIO:
    """``stream``, set to write what its encoding cannot (lone surrogates) as ``\\udcxx``."""
    if isinstance(stream, io.TextIOWrapper):
        stream.reconfigure(errors="backslashreplace")
    return stream


def quiet_broken_pipe() -> int:
    """The reader of our output went away (``| head``): stop without a traceback.

    Standard output is pointed at devnull so that the interpreter's final flush
    does not fail again (the recipe of the ``signal`` module's documentation).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_OK


def _flush_quietly(stream: TextIO) -> None:
    try:
        stream.flush()
    except OSError:
        pass


# --- verify -------------------------------------------------------------------------


def run_verify(options: argparse.Namespace) -> int:
    """``rerun-logging verify``: print a summary; 0 when clean, 1 when not, 2 when unreadable."""
    try:
        report = verify(options.file)
    except OSError as error:
        _error(cannot_read(options.file, error))
        return EXIT_USAGE
    if report.version is None and report.error is not None:
        _error(describe(report.error))
        return EXIT_BAD_RECORDING
    try:
        sys.stdout.write("\n".join(report_lines(report)) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        return quiet_broken_pipe()
    return EXIT_OK if report.clean else EXIT_BAD_RECORDING


def report_lines(report: VerifyReport) -> list[str]:
    """The verify report as text lines: one line per stream when there are several."""
    version = ".".join(map(str, report.version)) if report.version else "unknown"
    lines = [f"{report.source}: rerun-logging recording, format {version}"]
    if len(report.streams) > 1:
        lines.append(f"  streams: {len(report.streams)}")
        lines.extend(f"  stream {n}: {stream_summary(s)}" for n, s in enumerate(report.streams, 1))
    else:
        for rec in report.recordings:
            lines.append(f"  recording: {recording_text(rec)}")
    for damage in report.damage:
        lines.append(f"  damage at byte {damage.offset}: {damage.error.reason}; skipped "
                     f"{counted(damage.skipped, 'byte')} to the stream header at byte {damage.resumed_at}")
    lines.append(f"  records: {report.records}")
    lines.append(f"  dropped: {report.dropped}")
    lines.append(f"  end: {end_status(report)}")
    return lines


def recording_text(rec: RecordingSummary) -> str:
    """``app recording-id (pid N on host)``."""
    return f"{rec.application_id} {rec.recording_id} (pid {rec.pid} on {rec.host})"


def stream_summary(stream: StreamReport) -> str:
    """One stream of a verify report: who wrote it, its counts, whether it ended."""
    version = ".".join(map(str, stream.version))
    end = "END seen" if stream.ended else "no END"
    return (f"{recording_text(stream.recording)}, format {version}: "
            f"{counted(stream.records, 'record')}, {stream.dropped} dropped, {end}")


def end_status(report: VerifyReport) -> str:
    """How the recording ends: clean, torn (with the offset), corrupt, damaged, or without END."""
    error = report.error
    if error is None:
        if report.damage:
            return (f"damaged ({counted(len(report.damage), 'span')} skipped, see above); "
                    "the streams after the damage were read")
        if report.ended:
            return "clean (END seen)" if len(report.streams) < 2 else "clean (END seen in every stream)"
        if len(report.streams) > 1:
            open_ = [str(n) for n, s in enumerate(report.streams, 1) if not s.ended]
            return (f"no END message in stream {', '.join(open_)}: its writer has not closed "
                    "it (still running, or killed)")
        return "no END message: the writer has not closed it (still running, or killed)"
    if isinstance(error, TruncatedStream):
        return f"torn tail at byte {error.offset}: {error.reason}"
    return f"corrupt at byte {error.offset}: {error.reason}"


# --- run ----------------------------------------------------------------------------


def run_program(options: argparse.Namespace) -> int:
    """``rerun-logging run -- PROGRAM``: the program's exit status (see rerun_logging.instrument)."""
    from .instrument.runner import run

    command = list(options.command)
    if command and command[0] == "--":
        command = command[1:]
    return run(command, sink=options.sink, application_id=options.app_id,
               level=options.level, top_only=options.top_only)


# --- stop ---------------------------------------------------------------------------


def run_stop(options: argparse.Namespace) -> int:
    """``rerun-logging stop``: SIGTERM to the viewer recorded on the port, once checked.

    The pid comes from the viewer's state file (:mod:`.viewer.state`, this user's
    only) and is signalled only when its command line is the rerun-logging viewer;
    then ``stop`` waits (bounded) until it exited.
    """
    import signal
    import time

    from .viewer.server import DEFAULT_PORT
    from .viewer.state import is_viewer_process, read_state, state_path

    port = DEFAULT_PORT if options.port is None else options.port
    state = read_state(port)
    if state is None:
        _error(f"stop: no viewer of yours is recorded on port {port} (no {state_path(port)})")
        return EXIT_NOT_STOPPED
    verdict = is_viewer_process(state.pid)
    if verdict is False and not _alive(state.pid):
        state.remove()  # left by a viewer that was killed
        _error(f"stop: the viewer recorded on port {port} (pid {state.pid}) is not running")
        return EXIT_NOT_STOPPED
    if not verdict:
        why = "is not a rerun-logging viewer" if verdict is False else "cannot be checked"
        _error(f"stop: not stopping pid {state.pid}, recorded on port {port}: it {why}")
        return EXIT_NOT_STOPPED
    try:
        os.kill(state.pid, signal.SIGTERM)
    except ProcessLookupError:
        _error(f"stop: the viewer recorded on port {port} (pid {state.pid}) is not running")
        return EXIT_NOT_STOPPED
    except OSError as error:
        _error(f"stop: cannot signal pid {state.pid}: {error.strerror or error}")
        return EXIT_NOT_STOPPED
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(state.pid) and is_viewer_process(state.pid):
        if time.monotonic() >= deadline:
            _error(f"stop: the viewer on port {port} (pid {state.pid}) did not exit within "
                   f"{STOP_TIMEOUT:g}s")
            return EXIT_NOT_STOPPED
        time.sleep(0.05)
    sys.stderr.write(f"{PROG}: stopped the viewer on {state.tcp} (pid {state.pid})\n")
    return EXIT_OK


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (and is not a zombie, where that can be told)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as source:
            return source.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


# --- messages -----------------------------------------------------------------------


def describe(error: RecordingError) -> str:
    """One line for a recording error, naming the file and, where it helps, the byte."""
    if isinstance(error, (NotARecording, UnsupportedVersion)) or error.offset == 0:
        return f"{error.source}: {error.reason}"
    if isinstance(error, TruncatedStream):
        return (f"{error.source}: torn tail at byte {error.offset}: {error.reason}; "
                "everything before it was read")
    return (f"{error.source}: corrupt at byte {error.offset}: {error.reason}; "
            "everything before it was read")


def describe_damage(damage: Damage) -> str:
    """One line for damage that a later stream header ended: what, where, how much skipped."""
    return (f"{damage.error.source}: damaged at byte {damage.offset}: {damage.error.reason}; "
            f"skipped {counted(damage.skipped, 'byte')} to the next stream, read on from byte {damage.resumed_at}")


def cannot_read(source: str, error: OSError) -> str:
    """One line for a file that cannot be opened or read."""
    return f"{source_name(source)}: cannot read: {error.strerror or error}"


def _error(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")
    sys.stderr.flush()
