"""What the viewer reports while it runs, as events: small immutable classes, no I/O.

The viewer (:class:`~.server.Viewer`) calls one callable with each event, in the
order things happened, on its event loop's thread; what an event becomes is the
caller's choice, as h11 leaves it to its caller what to do with ``next_event()``:

- ``rerun-logging viewer`` says each as one line on standard error
  (:class:`~.report.LineReport`, the default);
- the serve sink says them as its own lines and leaves out :class:`Listening`
  (the port of its children is found in their environment, not read by people);
- ``rerun-logging run`` keeps :class:`WebUINotStarted` to say once what it does
  instead, and leaves a stream's ordinary life (:class:`PeerConnected`, a clean
  :class:`PeerDisconnected`) off the program's standard error.

Events, by when they happen::

    ViewerEvent
    ├── NotStarted          a source or the save directory cannot be used (exit 2)
    ├── CannotListen        the TCP (or OTLP) port cannot listen (exit 3 when in use)
    ├── PortTaken           a defaulted TCP port is taken: a free one instead
    ├── Listening           the TCP port listens
    ├── OtlpListening       the OTLP/HTTP port (``--otlp-port``) listens
    ├── WebUIStarted        the web UI serves its page (perhaps on a free port)
    ├── WebUINotStarted     the web UI cannot listen; the viewer runs without it
    ├── NoStateFile         the state file for ``rerun-logging stop`` cannot be written
    ├── PeerConnected       a TCP peer's stream started (or resumed)
    ├── PeerRefused         a TCP peer was refused (REFUSED sent) and is closed
    ├── PeerTimedOut        a TCP peer missed a deadline and is closed
    ├── PeerFailed          an internal error cost one connection
    ├── PeerDisconnected    a TCP peer closed: how its stream ended, its counts
    ├── AcceptFailed        accepting failed (out of descriptors): first of a burst
    ├── SourceUnreadable    a file or standard input failed while being read
    ├── SourceEmpty         a file or standard input held nothing
    ├── PrintStopped        ``--print`` cannot write to standard output any more
    ├── Note                a line of the store's collaborators (a file's load,
    │                       the save directory, the web UI's refusals)
    └── Stopped             the viewer shut down: what it held, what it saved

The lines each one is said as live in :mod:`.report`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .store import StoreSummary


@dataclass(frozen=True)
class ViewerEvent:
    """Base of every event the viewer reports."""


@dataclass(frozen=True)
class NotStarted(ViewerEvent):
    """The viewer does not start: a source it cannot read, a save directory it cannot use."""

    problem: str
    """What is wrong, naming the file or directory."""


@dataclass(frozen=True)
class CannotListen(ViewerEvent):
    """The TCP port cannot listen; the viewer exits (status 3 when the address is in use)."""

    address: str
    """``host:port`` as configured."""
    reason: str
    in_use: bool
    """The address is in use: another viewer probably runs there."""
    otlp: bool = False
    """It is the OTLP/HTTP port (``--otlp-port``), not the TCP port for our streams."""


@dataclass(frozen=True)
class PortTaken(ViewerEvent):
    """A TCP port the user did not name was taken; the viewer listens on a free one."""

    port: int
    instead: int


@dataclass(frozen=True)
class Listening(ViewerEvent):
    """The TCP port for apps' streams listens on ``address`` (``host:port``)."""

    address: str


@dataclass(frozen=True)
class OtlpListening(ViewerEvent):
    """The OTLP/HTTP receiver listens on ``address`` (``host:port``) for ``POST /v1/logs``."""

    address: str


@dataclass(frozen=True)
class WebUIStarted(ViewerEvent):
    """The web UI serves its page at ``url``."""

    url: str
    taken_port: int | None = None
    """The defaulted port that was taken, when the UI gave way to a free one."""


@dataclass(frozen=True)
class WebUINotStarted(ViewerEvent):
    """The web UI cannot listen on ``address``; the viewer runs without it."""

    address: str
    reason: str


@dataclass(frozen=True)
class NoStateFile(ViewerEvent):
    """The state file cannot be written: ``rerun-logging stop`` cannot find this viewer."""

    reason: str


@dataclass(frozen=True)
class PeerConnected(ViewerEvent):
    """A TCP peer's stream started: its header and INFO arrived."""

    peer: str
    """``host:port`` of the peer."""
    stream: str
    """``app[pid] (recording ID)``, escaped to one line."""
    resumed: bool
    """It rejoins a stream the viewer holds (a reconnect)."""


@dataclass(frozen=True)
class PeerRefused(ViewerEvent):
    """A TCP peer was sent REFUSED (bad input, or a viewer-wide limit) and is closed."""

    peer: str
    offset: int
    """Byte of the peer's stream where it was refused."""
    reason: str


@dataclass(frozen=True)
class PeerTimedOut(ViewerEvent):
    """A TCP peer missed a deadline (handshake, frame, reading replies) and is closed."""

    peer: str
    reason: str


@dataclass(frozen=True)
class PeerFailed(ViewerEvent):
    """An internal error of the viewer closed one connection (the others go on)."""

    peer: str
    error: str
    """``repr`` of the exception."""


@dataclass(frozen=True)
class PeerDisconnected(ViewerEvent):
    """A TCP peer whose stream had started closed (not at shutdown, not refused)."""

    peer: str
    clean: bool
    """Its stream ended with END and no frame was torn."""
    line: str
    """How the ingest words it: how the stream ended, and its counts."""


@dataclass(frozen=True)
class AcceptFailed(ViewerEvent):
    """Accepting a connection failed (out of descriptors or memory): the first of a burst.

    The port pauses for a second and accepts again; the rest of the burst is counted.
    """

    address: str | None
    """``host:port`` of the listening socket, when known."""
    reason: str
    descriptor_limit: int | None
    """The process's RLIMIT_NOFILE, when there is one."""
    previous_burst: int
    """Failures of the burst before this one that had no event of their own."""


@dataclass(frozen=True)
class SourceUnreadable(ViewerEvent):
    """A file or standard input failed while being read; what was read is kept."""

    source: str
    reason: str


@dataclass(frozen=True)
class SourceEmpty(ViewerEvent):
    """A file or standard input held nothing to load."""

    source: str


@dataclass(frozen=True)
class PrintStopped(ViewerEvent):
    """``--print`` stopped: standard output cannot be written (the viewer goes on)."""

    reason: str


@dataclass(frozen=True)
class Note(ViewerEvent):
    """A line that a part of the viewer words itself: a file's load summary or damage,
    the save directory, the web UI (refused requests, connections closed at its cap)."""

    text: str


@dataclass(frozen=True)
class Stopped(ViewerEvent):
    """The viewer shut down (SIGINT, SIGTERM, :meth:`~.server.Viewer.stop`)."""

    summary: StoreSummary
    saved_files: int | None = None
    """Files written under ``save_dir`` (None without ``--save-dir``)."""
    save_dir: str | None = None
