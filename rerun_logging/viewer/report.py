"""The viewer's events (:mod:`.events`) as the lines people read on standard error.

:func:`event_line` words one event; :class:`LineReport` is the viewer's default
way to report (``rerun-logging viewer``): each event as one ``rerun-logging
viewer: ...`` line, through :func:`say`. The serve sink and ``rerun-logging run``
word events with :func:`event_line` too, under their own prefixes, so a line
reads the same wherever the viewer runs.
"""

from __future__ import annotations

import sys
from typing import Callable

from ..wording import counted
from .events import (
    AcceptFailed,
    CannotListen,
    Listening,
    NoStateFile,
    Note,
    NotStarted,
    OtlpListening,
    PeerConnected,
    PeerDisconnected,
    PeerFailed,
    PeerRefused,
    PeerTimedOut,
    PortTaken,
    PrintStopped,
    SourceEmpty,
    SourceUnreadable,
    Stopped,
    ViewerEvent,
    WebUINotStarted,
    WebUIStarted,
)

PREFIX = "rerun-logging viewer"
"""How every line the viewer writes on standard error starts."""
WEB_HINT = "the viewer runs without it (choose another --web-port)"
"""What ``rerun-logging viewer`` adds to :class:`~.events.WebUINotStarted`."""


def say(text: str, prefix: str = PREFIX) -> None:
    """One line on standard error, prefixed ``rerun-logging viewer:`` (or ``prefix``)."""
    try:
        sys.stderr.write(f"{prefix}: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def event_line(event: ViewerEvent, web_hint: str = WEB_HINT) -> str:
    """``event`` as one line (without prefix); ``web_hint`` ends :class:`WebUINotStarted`'s."""
    match event:
        case NotStarted(problem=problem):
            return problem
        case CannotListen(address=address, reason=reason, otlp=True):
            return f"cannot listen for OTLP/HTTP on {address}: {reason}"
        case CannotListen(address=address, in_use=True):
            return (f"cannot listen on {address}: the address is in use (another viewer "
                    "probably runs there; apps can stream to it)")
        case CannotListen(address=address, reason=reason):
            return f"cannot listen on {address}: {reason}"
        case PortTaken(port=port, instead=instead):
            return (f"port {port} is taken (another viewer probably runs there); "
                    f"using port {instead} instead")
        case Listening(address=address):
            return f"listening on {address}"
        case OtlpListening(address=address):
            return f"OTLP/HTTP on http://{address}/v1/logs"
        case WebUIStarted(url=url, taken_port=None):
            return f"web UI on {url}"
        case WebUIStarted(url=url, taken_port=taken):
            return f"port {taken} is taken; web UI on {url}"
        case WebUINotStarted(address=address, reason=reason):
            return f"web UI not started: cannot listen on {address}: {reason}; {web_hint}"
        case NoStateFile(reason=reason):
            return f"no state file ({reason}); `rerun-logging stop` cannot find this viewer"
        case PeerConnected(peer=peer, stream=stream, resumed=resumed):
            return f"{peer}: {stream} connected{', resuming its stream' if resumed else ''}"
        case PeerRefused(peer=peer, offset=offset, reason=reason):
            return f"refused {peer}: at byte {offset}: {reason}"
        case PeerTimedOut(peer=peer, reason=reason):
            return f"timed out {peer}: {reason}"
        case PeerFailed(peer=peer, error=error):
            return f"internal error with {peer}: {error}; connection closed"
        case PeerDisconnected(line=line):
            return line
        case AcceptFailed():
            return accept_failed_line(event)
        case SourceUnreadable(source=source, reason=reason):
            return f"{source}: cannot read: {reason}"
        case SourceEmpty(source=source):
            return f"{source}: empty, nothing to load"
        case PrintStopped(reason=reason):
            return f"--print stopped: cannot write to standard output ({reason})"
        case Note(text=text):
            return text
        case Stopped():
            return f"stopped: {stopped_text(event)}"
    raise TypeError(f"not a viewer event: {event!r}")


def accept_failed_line(event: AcceptFailed) -> str:
    """The line of a burst of failed accepts (one per burst, see :mod:`.bursts`)."""
    where = f" on {event.address}" if event.address else ""
    limit = f" (RLIMIT_NOFILE {event.descriptor_limit})" if event.descriptor_limit is not None else ""
    previous = (f" (the previous burst had {event.previous_burst} more)"
                if event.previous_burst else "")
    return (f"cannot accept connections{where}: {event.reason}{limit}; the port pauses "
            f"1s and accepts again (one line per burst){previous}")


def stopped_text(event: Stopped) -> str:
    """What the viewer held when it stopped, and the files it saved."""
    text = str(event.summary)
    if event.saved_files is not None:
        text += f"; {counted(event.saved_files, 'file')} in {event.save_dir}"
    return text


class LineReport:
    """Reports each event as one line through ``write`` (default: :func:`say`)."""

    def __init__(self, write: Callable[[str], None] = say, web_hint: str = WEB_HINT) -> None:
        self.write = write
        self.web_hint = web_hint

    def __call__(self, event: ViewerEvent) -> None:
        """Say ``event``."""
        self.write(event_line(event, self.web_hint))
