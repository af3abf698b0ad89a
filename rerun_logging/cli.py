"""The ``rerun-logging`` command (also ``python -m rerun_logging``).

Subcommands::

    rerun-logging print FILE|-    records as text lines, or JSON lines (--json)
    rerun-logging verify FILE     check a recording: version, counts, clean end
    rerun-logging --version

The viewer (``rerun-logging [FILE...]``, ``rerun-logging viewer``) arrives in a
later version; for now those say so and exit 2.

Exit status: 0 success; 1 a recording that is torn, corrupt or not a recording
(everything readable before the fault is printed first); 2 a usage error or a
file that cannot be opened; 130 interrupted (except while following, where
Ctrl-C is the normal way to stop, and exits 0). A closed pipe (``| head``) ends
the command quietly with 0. Errors are one line on stderr that names the file.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Callable, Sequence, TextIO

from . import __version__
from .format import (
    Dropped,
    Message,
    NotARecording,
    Record,
    RecordingError,
    RecordingInfo,
    TruncatedStream,
    UnsupportedVersion,
)
from .reader import STDIN, VerifyReport, read_batches, source_name, verify
from .render import dropped_fields, dropped_line, json_fields, text_line

PROG = "rerun-logging"
COMMANDS = ("print", "verify", "viewer")

EXIT_OK = 0
EXIT_BAD_RECORDING = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if wants_viewer(args):
        return viewer_not_yet(args)
    try:
        options = build_parser().parse_args(args)
    except SystemExit as stop:  # --help, --version and usage errors
        return stop.code if isinstance(stop.code, int) else EXIT_USAGE
    command: Callable[[argparse.Namespace], int] = options.run
    return command(options)


def wants_viewer(args: Sequence[str]) -> bool:
    """No subcommand, ``viewer``, or file names straight after the program name."""
    if not args:
        return True
    first = args[0]
    return first == "viewer" or (first not in COMMANDS and not first.startswith("-"))


def viewer_not_yet(args: Sequence[str]) -> int:
    """Say that the viewer is not in this version and how to read a file now."""
    files = [a for a in args if a != "viewer" and not a.startswith("-")]
    target = files[0] if files else "FILE"
    _error(
        f"the viewer arrives in a later version (this is {__version__}); "
        f"to read a recording now: {PROG} print {target}"
    )
    return EXIT_USAGE


def run_viewer(options: argparse.Namespace) -> int:
    """``rerun-logging viewer`` (or no subcommand): not in this version yet."""
    return viewer_not_yet([])


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: ``print``, ``verify`` (``viewer`` is answered before it)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Read recordings made by rerun-logging's RerunHandler."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.set_defaults(run=run_viewer)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    show = commands.add_parser("print", help="print the records of a recording")
    show.add_argument("file", metavar="FILE", help="a recording file, or - for standard input")
    show.add_argument("--json", action="store_true", help="JSON lines instead of text")
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

    viewer = commands.add_parser("viewer", help="the live viewer (in a later version)")
    viewer.set_defaults(run=run_viewer)
    return parser


def parse_level(text: str) -> int:
    """A level from a name (``warning``, ``WARN``) or a number (``30``)."""
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    level = logging.getLevelName(stripped.upper())
    if isinstance(level, int):
        return level
    raise argparse.ArgumentTypeError(
        f"unknown level {text!r}; use DEBUG, INFO, WARNING, ERROR, CRITICAL or a number"
    )


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


class RecordPrinter:
    """Turns messages into output lines, keeping the recording's INFO for the records after it."""

    def __init__(self, wanted: RecordFilter, as_json: bool, color: bool) -> None:
        self.wanted = wanted
        self.as_json = as_json
        self.color = color
        self.info: RecordingInfo | None = None

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
        return out

    def record(self, record: Record) -> str:
        """One record as text or as a JSON line."""
        if self.as_json:
            return json.dumps(json_fields(record, self.info))
        return text_line(record, self.info, self.color)

    def dropped(self, dropped: Dropped) -> str:
        """A visible mark where records were lost."""
        if self.as_json:
            return json.dumps(dropped_fields(dropped))
        return dropped_line(dropped)


def run_print(options: argparse.Namespace) -> int:
    """``rerun-logging print``: stream the records of a file or standard input."""
    if options.file == STDIN and sys.stdin.isatty():
        _error(f"{source_name(STDIN)}: standard input is a terminal; pipe a recording "
               f"into it: python app.py | {PROG} print -")
        return EXIT_USAGE
    out = text_output(sys.stdout)
    color = out.isatty() if options.color is None else options.color
    printer = RecordPrinter(
        RecordFilter(options.level, tuple(options.logger)), options.json, color
    )
    try:
        for batch in read_batches(options.file, follow=options.follow):
            lines = printer.lines(batch)
            if lines:
                out.write("\n".join(lines) + "\n")
                out.flush()
    except BrokenPipeError:
        return quiet_broken_pipe()
    except RecordingError as error:
        _flush_quietly(out)
        _error(describe(error))
        return EXIT_BAD_RECORDING
    except OSError as error:
        _error(cannot_read(options.file, error))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _flush_quietly(out)
        return EXIT_OK if options.follow else EXIT_INTERRUPTED
    return EXIT_OK


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
    """The verify report as text lines."""
    version = ".".join(map(str, report.version)) if report.version else "unknown"
    lines = [f"{report.source}: rerun-logging recording, format {version}"]
    for rec in report.recordings:
        lines.append(
            f"  recording: {rec.application_id} {rec.recording_id} (pid {rec.pid} on {rec.host})"
        )
    lines.append(f"  records: {report.records}")
    lines.append(f"  dropped: {report.dropped}")
    lines.append(f"  end: {end_status(report)}")
    return lines


def end_status(report: VerifyReport) -> str:
    """How the stream ends: clean, torn (with the offset), corrupt, or without END."""
    error = report.error
    if error is None:
        if report.ended:
            return "clean (END seen)"
        return "no END message: the writer has not closed it (still running, or killed)"
    if isinstance(error, TruncatedStream):
        return f"torn tail at byte {error.offset}: {error.reason}"
    return f"corrupt at byte {error.offset}: {error.reason}"


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


def cannot_read(source: str, error: OSError) -> str:
    """One line for a file that cannot be opened or read."""
    return f"{source_name(source)}: cannot read: {error.strerror or error}"


def _error(text: str) -> None:
    sys.stderr.write(f"{PROG}: {text}\n")
    sys.stderr.flush()
