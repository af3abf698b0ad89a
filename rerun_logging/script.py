"""The standard flags of a script, as the Rerun SDK's ``script_add_args`` names them.

Three calls give a script every mode::

    import argparse, logging, rerun_logging

    parser = argparse.ArgumentParser()
    rerun_logging.script_add_args(parser)
    args = parser.parse_args()
    rerun_logging.script_setup(args, "my_app")
    logging.getLogger(__name__).info("hello")
    rerun_logging.script_teardown(args)

With no flag the viewer is spawned (started if none listens), as in Rerun's
examples. ``--headless`` only buffers in memory (bounded; a later
``handler.set_sink`` flushes it). The modes are exclusive, so a typo such as
``--save x --serve`` is an error from argparse rather than a silent choice.
``RERUN_LOGGING_SINK`` still overrides whatever the flags chose.

``--rerun`` sends the same modes to the real Rerun viewer instead of ours (the
``rerun`` sink, extra ``rerun-logging[rerun]``): none spawns it, ``--connect`` streams
to its gRPC server (``--url HOST:PORT``), ``--serve`` serves its web viewer,
``--save PATH`` writes a Rerun ``.rrd``, ``--headless`` logs into the script's own
rerun-sdk recording. Rerun has no ``--stdout`` form here: that pair is an error.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from .handler import RerunHandler
from .spec import DEFAULT_HOST, DEFAULT_TCP_PORT, DEFAULT_WEB_PORT, SinkSpecError, parse_one

__all__ = ["script_add_args", "script_setup", "script_teardown", "sink_for"]

_installed: list[tuple[logging.Logger, RerunHandler]] = []
"""What :func:`script_setup` attached, for :func:`script_teardown`."""


def script_add_args(parser: argparse.ArgumentParser) -> None:
    """Add the standard flags to ``parser``.

    Modes (at most one): ``--headless``, ``--connect``, ``--serve``, ``--save
    PATH``, ``--stdout``; none spawns the viewer. ``--url`` is the address of
    ``--connect`` or ``--serve``; ``--log-level`` and ``--app-id`` are what a
    logging user needs besides.
    """
    group = parser.add_argument_group("rerun-logging")
    modes = group.add_mutually_exclusive_group()
    modes.add_argument("--headless", action="store_true",
                       help="do not show a viewer: keep records in memory (bounded)")
    modes.add_argument("--connect", action="store_true",
                       help=f"stream to a viewer started by hand (`rerun-logging`) at --url "
                            f"(default {DEFAULT_HOST}:{DEFAULT_TCP_PORT})")
    modes.add_argument("--serve", action="store_true",
                       help=f"serve the web viewer from this script at --url (default "
                            f"{DEFAULT_HOST}:{DEFAULT_WEB_PORT}, or a free port when that is "
                            "taken); it keeps serving after the script ends, until Ctrl-C")
    modes.add_argument("--save", metavar="PATH",
                       help="stream into a recording file; open it with `rerun-logging PATH`")
    modes.add_argument("--stdout", action="store_true",
                       help="write the recording to standard output, for a pipe: "
                            "`python script.py --stdout | rerun-logging -`")
    group.add_argument("--rerun", action="store_true",
                       help="to the Rerun viewer (rerun-sdk) instead of ours: the same modes, "
                            "in Rerun's own viewer and .rrd files")
    group.add_argument("--url", metavar="HOST:PORT",
                       help="address for --connect or --serve (a scheme such as tcp:// "
                            "or http:// and a path are ignored)")
    group.add_argument("--log-level", metavar="LEVEL", default="INFO", type=parse_level,
                       help="lowest level recorded (name or number; default INFO)")
    group.add_argument("--app-id", metavar="ID",
                       help="application id shown in the viewer (default: the script's own)")


def sink_for(args: argparse.Namespace) -> str | None:
    """The sink spec the flags ask for (None: buffer in memory)."""
    if getattr(args, "rerun", False):
        return _rerun_sink_for(args)
    if getattr(args, "headless", False):
        return None
    if getattr(args, "save", None):
        return f"save:{args.save}"
    if getattr(args, "stdout", False):
        return "stdout"
    mode = _network_mode(args)
    url = getattr(args, "url", None)
    if not url:
        return mode
    return _checked(f"{mode}:{_address(url)}", url)


def _rerun_sink_for(args: argparse.Namespace) -> str:
    """``--rerun`` with a mode: the ``rerun`` sink of Rerun's same mode."""
    if getattr(args, "stdout", False):
        raise SinkSpecError("--rerun --stdout: the rerun sink has no stdout form; "
                            "use --rerun --save PATH, or --stdout alone")
    if getattr(args, "headless", False):
        return "rerun"
    if getattr(args, "save", None):
        return f"rerun:save:{args.save}"
    url = getattr(args, "url", None)
    mode = _network_mode(args)
    if not url:
        return f"rerun:{mode}"
    host, _, port = _address(url).rpartition(":")
    if getattr(args, "connect", False):  # Rerun connects to a URL; it serves and spawns on a port
        return _checked(f"rerun:connect:rerun+http://{host}:{port}/proxy", url)
    return _checked(f"rerun:{mode}:{port}", url)


def _checked(spec: str, url: str) -> str:
    """``spec``, made from ``--url``; a SinkSpecError naming the flag when it does not parse."""
    try:
        parse_one(spec)
    except SinkSpecError as error:
        raise SinkSpecError(f"--url {url!r}: {error}") from None
    return spec


def script_setup(
    args: argparse.Namespace, application_id: str, logger: logging.Logger | None = None,
) -> RerunHandler:
    """Attach a :class:`RerunHandler` to ``logger`` (the root logger by default) as the flags say.

    The logger's level is lowered to ``--log-level`` when it is higher, so the
    records asked for reach the handler. With ``--serve`` the server starts now
    and its URL is printed. Returns the handler.
    """
    target = logger if logger is not None else logging.getLogger()
    level = getattr(args, "log_level", logging.INFO)
    handler = RerunHandler(
        sink_for(args), application_id=getattr(args, "app_id", None) or application_id, level=level,
    )
    if target.getEffectiveLevel() > level:
        target.setLevel(level)
    target.addHandler(handler)
    _installed.append((target, handler))
    if getattr(args, "serve", False):
        handler.start()
    return handler


def script_teardown(args: argparse.Namespace, wait: threading.Event | None = None) -> None:
    """Flush and close what :func:`script_setup` attached.

    With ``--serve`` it first keeps serving, saying so, until Ctrl-C (or until
    ``wait`` is set), so the page can still be read after the script's work; when
    the page is not served (its port was named and is taken: said when the server
    started), it says so and returns without waiting.
    """
    installed, _installed[:] = _installed[:], []
    if getattr(args, "serve", False):
        urls = [h.url for _, h in installed if h.url]
        if not urls:
            sys.stderr.write("rerun-logging: the web viewer is not served (see above); "
                             "not waiting\n")
            sys.stderr.flush()
        else:
            sys.stderr.write(f"rerun-logging: serving the web viewer on {', '.join(urls)}; "
                             "press Ctrl-C to stop\n")
            sys.stderr.flush()
            try:
                (wait or threading.Event()).wait()
            except KeyboardInterrupt:
                sys.stderr.write("rerun-logging: Ctrl-C received, stopping\n")
    for target, handler in installed:
        target.removeHandler(handler)
        handler.close()


def _network_mode(args: argparse.Namespace) -> str:
    """``serve``, ``connect``, or (no such flag) ``spawn``."""
    return "serve" if getattr(args, "serve", False) else "connect" if getattr(args, "connect", False) else "spawn"


def _address(url: str) -> str:
    """``HOST:PORT`` of ``url`` (``tcp://h:p``, ``http://h:p/x``, or already ``h:p``)."""
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0]


def parse_level(text: str) -> int:
    """A logging level from its name (any case: ``warning``, ``WARN``) or number, for argparse."""
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    level = logging.getLevelName(stripped.upper())
    if not isinstance(level, int):
        raise argparse.ArgumentTypeError(
            f"unknown level {text!r}; use DEBUG, INFO, WARNING, ERROR, CRITICAL or a number"
        )
    return level
