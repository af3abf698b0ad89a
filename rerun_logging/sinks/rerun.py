"""The rerun sink: records as ``TextLog`` rows in a real Rerun recording (rerun-sdk).

Grammar (:class:`RerunMode`; the spec's ``path`` carries what follows ``rerun:``)::

    rerun                       the app's current Rerun recording, else one of our own
    rerun:save:PATH             a Rerun .rrd file (``rerun PATH`` opens it)
    rerun:spawn[:PORT]          start the Rerun viewer (``rr.spawn``) and stream to it
    rerun:connect[:URL]         stream to a Rerun gRPC server (default: rerun-sdk's,
                                rerun+http://127.0.0.1:9876/proxy)
    rerun:serve[:PORT]          serve Rerun's gRPC server (default port 9876) and its
                                web viewer (port 9090), from this process

It needs the ``rerun-logging[rerun]`` extra (``rerun-sdk``); without it, a
``rerun`` spec is refused where the handler is configured, in one line naming it.

:class:`RerunSink` is a shell around :mod:`rerun_logging.rerun_sdk.mapping`: on the
flusher thread it takes each of the handler's batches as read columns (the flusher's
``format.columns_as_read``: no frame packed and unpacked in between; a batch that
does not pack exactly, and a buffer's backlog, come as frames, which it decodes),
builds one set of columns per entity path and hands each to ``rr.send_columns``
(one call per entity path per frame; never one ``rr.log`` per record). Rerun's own
threads batch and deliver them: a record handed over is ``written``; one the SDK refuses, or that finds no
recording, is ``dropped`` (counted, said once, then reported as a WARN row on
``<root>/rerun_logging`` once writing works again). The sink holds nothing itself
(``pending`` is 0): what Rerun still holds is bounded by Rerun (its batcher, the
gRPC server's ``server_memory_limit``; a recording with no sink yet buffers in
memory, as ``rr.init()`` does). ``connect`` makes no gRPC client while nothing answers
at its URL (:meth:`RerunSink._probe`): its records are dropped, counted, until then. ``flush`` and ``close`` wait for Rerun's flush
until their deadline; ``close`` ends (disconnects) the recording the sink made for
``save``, ``spawn``, ``connect`` or ``serve`` (a file gets its footer; ending a gRPC
client is waited for until the deadline only), and only flushes under ``rerun``,
whose recording is the app's (rerun-sdk ends it at exit).

``rerun`` (current) looks for the app's recording at every frame
(``rr.get_global_data_recording()``): records go beside the app's other data as soon
as it has one. Until then, a recording of our own (the handler's application id and
recording id) is made and becomes the global recording, so the app's later
``rr.spawn()``, ``rr.save()`` or ``rr.connect_grpc()`` carry the records too; a
later ``rr.init()`` replaces it, and the records from then on follow the app's.

After ``fork``, Rerun disables the parent's recording streams in the child (its own
at-fork hook); the child's sink makes its own, on its own flusher: ``save`` writes
beside the parent's file (``run.rrd`` becomes ``run.<pid>.rrd``, as the save sink
does), ``connect`` connects again, ``spawn`` and ``serve`` connect to the parent's
viewer or server (same recording id: Rerun shows one recording), ``rerun`` follows
the child's own current recording. Processes that ``rerun-logging run`` starts do
the same through the family (:mod:`rerun_logging.family`).

Exit: rerun-sdk flushes and shuts itself down in an ``atexit`` hook that runs before
``logging.shutdown`` (it was registered later). So that the last records are not
sent into a stopped SDK, :meth:`RerunMode.before_start` registers, once per process
and after rerun's, a hook that closes the handlers with a rerun sink first (within
their ``flush_timeout``).
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from .. import family, format, own_threads
from ..format import Dropped, RecordColumns
from ..spec import SinkSpec, SinkSpecError
from .base import Sink
from .file import child_path
from .mode import Mode

if TYPE_CHECKING:
    from . import SinkOptions

__all__ = ["RerunMode", "RerunSink", "Target", "parse_target"]

DEFAULT_GRPC_PORT = 9876
"""rerun-sdk's default port for ``spawn`` and ``serve_grpc``."""
KINDS = ("current", "save", "spawn", "connect", "serve")
GRAMMAR = "rerun[:save:PATH | :spawn[:PORT] | :connect[:URL] | :serve[:PORT]]"


@dataclass(frozen=True)
class Target:
    """Where a rerun sink logs: ``kind`` (one of :data:`KINDS`) and its argument."""

    kind: str
    path: str | None = None
    url: str | None = None
    port: int | None = None

    @property
    def argument(self) -> str | None:
        """What the spec's ``path`` carries for this target (None for ``current``)."""
        if self.kind == "current":
            return None
        if self.kind == "save":
            return f"save:{self.path}"
        if self.kind == "connect":
            return f"connect:{self.url}" if self.url else "connect"
        return f"{self.kind}:{self.port}" if self.port is not None else self.kind


def parse_target(text: str, argument: str | None) -> Target:
    """The target of ``rerun`` + ``argument`` (what followed ``rerun:``); ``text`` names
    the spec in errors (:class:`~rerun_logging.spec.SinkSpecError`)."""
    if argument is None:
        return Target("current")
    kind, sep, rest = argument.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "save":
        if not rest.strip():
            raise SinkSpecError(f"sink {text!r} needs a path: rerun:save:PATH")
        return Target("save", path=rest.strip())
    if kind == "connect":
        url = rest.strip() or None
        if url is not None and not url.startswith(("rerun://", "rerun+http://", "rerun+https://")):
            raise SinkSpecError(
                f"bad URL in {text!r}: Rerun's gRPC URLs start with rerun://, rerun+http:// "
                "or rerun+https:// (rerun+http://127.0.0.1:9876/proxy)"
            )
        return Target("connect", url=url)
    if kind in ("spawn", "serve"):
        if not sep:
            return Target(kind)
        try:
            port = int(rest)
        except ValueError:
            raise SinkSpecError(f"bad port {rest!r} in {text!r}; expected rerun:{kind}[:PORT]") from None
        if not 0 < port < 65536:
            raise SinkSpecError(f"port {port} out of range in {text!r}")
        return Target(kind, port=port)
    raise SinkSpecError(f"unknown rerun sink {text!r}; expected {GRAMMAR}")


PROBE_TIMEOUT = 1.0
"""How long the ``connect`` target's probe waits for a TCP answer (see ``_probe``)."""
PROBE_RETRY = 2.0
"""How often a ``connect`` target with no server asks again."""


def _address_of(url: str) -> tuple[str, int] | None:
    """The (host, port) of a Rerun gRPC URL, or None when it names no port."""
    from urllib.parse import urlsplit  # prepared (RerunMode.modules)

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return parts.hostname, port


def _url_of(port: int) -> str:
    return f"rerun+http://127.0.0.1:{port}/proxy"


class RerunSink(Sink):
    """Sends the records of its frames into a Rerun recording (see the module docstring)."""

    stores_frames = False  # it decodes each frame and maps the records: no zlib wanted
    reads_columns = True  # the flusher's own batches come already read: no decode

    def __init__(self, target: Target, open_browser: bool = False) -> None:
        # Imported by prepare() on the configuring thread (RerunMode.modules): found, not loaded.
        import rerun as rr

        from ..rerun_sdk import mapping

        super().__init__()
        self._rr, self._mapping = rr, mapping
        self.target = target
        self.open_browser = open_browser
        self.name = f"rerun:{target.argument}" if target.argument else "rerun"
        self.url: str | None = None
        """The web viewer's URL once ``rerun:serve`` serves it."""
        self._kinds = mapping.ExtraKinds()
        self._paths: dict[str, str] = {}
        self._info: Any = None
        self._own: Any = None
        """The recording this sink made (None: none yet, or the app's is used)."""
        self._failed: Exception | None = None
        """Why making our recording failed (it is not tried again), or None."""
        self._helper: threading.Thread | None = None
        """The thread attaching our recording's gRPC client, if any."""
        self._unflushed: str | None = None

    # --- the Sink interface -------------------------------------------------------------

    def start(self, header: bytes) -> None:
        super().start(header)
        self._info = format.header_info(header, self.name)

    def write(self, frame: bytes, records: int) -> None:
        try:
            messages = list(format.stored_columns((frame,), self.name))
        except Exception as error:  # a frame that does not decode: never one of the handler's
            self._lost(records, error)
            return
        self.write_columns(messages, records)

    def write_columns(self, messages: list[RecordColumns | Dropped], records: int) -> None:
        if not messages and not self._unreported:
            return  # an END frame, nothing to log: no recording is made for it
        try:
            recording = self._recording()
        except Exception as error:
            self._lost(records, error)
            return
        if recording is None:
            self._lost(records, RuntimeError(self._no_recording()))
            return
        self._send(recording, messages)

    def flush(self, deadline: float) -> None:
        for recording in self._recordings():
            self._flush(recording, deadline)

    def close(self, end_frame: bytes, deadline: float) -> None:
        """Flush until ``deadline``, then end our recording (a file gets its footer);
        ``rerun`` (current) only flushes, the recording is the app's.

        Ending a gRPC client that never connected waits 5 s in rerun-sdk: done on a
        thread of ours, waited for until ``deadline`` only."""
        self.write(end_frame, 0)  # the handler's last drop reports, if any
        self.flush(deadline)
        if self.target.kind == "current":
            return  # the app's recording, or ours made the app's global one: left open
        own, self._own = self._own, None
        if own is None:
            return
        if self.target.kind == "save":
            _disconnect(own)
            return
        helper = _background("disconnect", lambda: _disconnect(own, self._helper))
        helper.join(max(deadline - time.monotonic(), 0.0))

    def after_fork(self) -> Sink:
        """The child's own sink (the parent's recordings are dead in a child: not touched)."""
        self._own = None
        target = self.target
        if target.kind == "save":
            assert target.path is not None
            target = Target("save", path=child_path(target.path, os.getpid()))
        elif target.kind in ("spawn", "serve"):
            target = Target("connect", url=_url_of(target.port or DEFAULT_GRPC_PORT))
        return type(self)(target, open_browser=False)

    # --- recordings ---------------------------------------------------------------------

    def _recording(self) -> Any:
        """The recording to send into now (made on first use), or None when there is none."""
        if self.target.kind == "current":
            app = self._app_recording()
            if app is not None:
                return app
        if self._failed is not None:
            raise self._failed  # said once: the same error each time
        if self._own is None:
            if self.target.kind == "connect":
                self._probe()
            try:
                self._own = self._open()
            except Exception as error:
                self._failed = error
                raise
        if not self._rr.is_enabled(recording=self._own):
            return None
        return self._own

    def _probe(self) -> None:
        """Raise ``ConnectionError`` while nothing listens at the ``connect`` URL
        (asked again every :data:`PROBE_RETRY` seconds, not at every frame).

        rerun-sdk's gRPC client, made for a server that is not there, waits 5 s to
        connect and 5 s more when it is ended: an app whose Rerun server is down would
        wait 10 s at exit. No client is made until a server answers; until then the
        records are dropped (counted, said once), never held without bound."""
        now = time.monotonic()
        if now < self._probe_after:
            raise self._unreachable or ConnectionError("no Rerun server")
        address = _address_of(self.target.url or _url_of(DEFAULT_GRPC_PORT))
        if address is None:
            return  # no port to probe: rerun-sdk's default for the scheme, its own wait
        try:
            socket.create_connection(address, timeout=PROBE_TIMEOUT).close()
        except OSError as error:
            self._probe_after = now + PROBE_RETRY
            self._unreachable = ConnectionError(
                f"no Rerun server at {address[0]}:{address[1]} ({error.strerror or error})"
            )
            raise self._unreachable from None

    _probe_after = 0.0
    _unreachable: ConnectionError | None = None

    def _app_recording(self) -> Any:
        """The app's global recording when it is not ours (nor a dead one of a parent)."""
        found = self._rr.get_global_data_recording()
        if found is None or found.to_native().is_forked_child():
            return None
        own = self._own
        if own is not None and found.get_recording_id() == own.get_recording_id():
            return None
        return found

    def _open(self) -> Any:
        """Make our recording and attach its sink, as the target says.

        Attaching a gRPC client (``connect``, ``spawn``) blocks in rerun-sdk until it
        connects, 5 s at most: done on a thread of ours, while the records already go
        into the recording (Rerun holds them, and hands them to the client once it is
        attached)."""
        rr, info, target = self._rr, self._info, self.target
        current = target.kind == "current"
        recording = rr.RecordingStream(
            info.application_id, recording_id=info.recording_id, make_default=current,
        )
        if target.kind == "save":
            assert target.path is not None
            recording.save(target.path)
        elif target.kind == "connect":
            self._helper = _background("connect", lambda: recording.connect_grpc(target.url))
        elif target.kind == "spawn":
            port, viewer = target.port or DEFAULT_GRPC_PORT, _viewer_executable()
            self._helper = _background(
                "spawn", lambda: rr.spawn(port=port, executable_path=viewer, recording=recording)
            )
        elif target.kind == "serve":
            uri = recording.serve_grpc(grpc_port=target.port or DEFAULT_GRPC_PORT)
            self._serve_page(uri)
        return recording

    def _serve_page(self, uri: str) -> None:
        from ..viewer.browser import can_open_browser  # prepared (RerunMode.modules)

        open_browser = can_open_browser(self.open_browser)
        try:
            self._rr.serve_web_viewer(open_browser=open_browser, connect_to=uri)
        except Exception as error:
            self._say(f"the web viewer cannot be served ({error}); the gRPC server is at {uri}")
            return
        self.url = f"http://127.0.0.1:9090/?url={uri}"
        self._say(f"Rerun's web viewer: {self.url} (gRPC: {uri})")

    def _recordings(self) -> list[Any]:
        found = []
        if self.target.kind == "current":
            try:
                app = self._app_recording()
            except Exception:
                app = None
            if app is not None:
                found.append(app)
        if self._own is not None:
            found.append(self._own)
        return found

    def _no_recording(self) -> str:
        return "Rerun is disabled (RERUN=off)"

    def _flush(self, recording: Any, deadline: float) -> None:
        """Wait for Rerun's flush until ``deadline``; a timeout is said once per reason."""
        timeout = deadline - time.monotonic()
        try:
            recording.flush(timeout_sec=max(timeout, 0.0))
        except Exception as error:
            text = str(error) or type(error).__name__
            if text != self._unflushed:
                self._unflushed = text
                self._say(f"Rerun did not flush by the deadline: {text}")
        else:
            self._unflushed = None

    # --- sending ------------------------------------------------------------------------

    def _send(self, recording: Any, messages: list[RecordColumns | Dropped]) -> None:
        mapping, prefix = self._mapping, self._info.entity_prefix
        notes = [m for m in messages if isinstance(m, Dropped)]
        for batch in messages:
            if isinstance(batch, RecordColumns):
                for columns in mapping.batch_columns(batch, prefix, self._kinds, self._paths):
                    self._deliver(recording, columns, columns.rows)
        wall = time.time_ns()
        if self._unreported and not self.error:
            count, self._unreported = self._unreported, 0
            self._deliver(recording, mapping.dropped_columns(count, self._loss_reason(), wall, prefix), 0)
        for note in notes:
            self._deliver(recording, mapping.dropped_columns(note.count, note.reason, wall, prefix), 0)

    def _deliver(self, recording: Any, columns: Any, records: int) -> None:
        try:
            self._mapping.send(columns, recording)
        except Exception as error:
            self._lost(records, error)
            return
        self.written += records
        self.bytes += columns.nbytes
        if self.error is not None:
            self.error = None
            self._say("writing again")

    def _loss_reason(self) -> str:
        return f"{self.name} could not log them: {self._last_error or 'error'}"

    def _lost(self, records: int, error: BaseException) -> None:
        self._last_error = str(error) or type(error).__name__
        super()._lost(records, error)

    _last_error: str | None = None


def _viewer_executable() -> str | None:
    """The ``rerun`` viewer to spawn: the one on ``PATH``, else the one installed beside
    this interpreter (a venv's ``bin``, not on ``PATH`` when the venv is not activated)."""
    import shutil  # prepared (RerunMode.modules)

    found = shutil.which("rerun")
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), "rerun")
    return beside if os.access(beside, os.X_OK) else None


_helpers: set[threading.Thread] = set()
"""The helper threads still inside rerun-sdk: joined at exit (:func:`_close_rerun_handlers`)."""

HELPERS_EXIT_WAIT = 15.0
"""How long the exit waits for the helpers: rerun-sdk's connect (5 s) and, after it,
its disconnect of a client still connecting (5 s), with room to spare."""


def _background(name: str, call: Callable[[], object]) -> threading.Thread:
    """Run ``call`` on a daemon thread of ours (records it logs are never recorded).

    The thread is joined at exit: a daemon thread still inside rerun-sdk when the
    interpreter finalizes aborts the process ("terminate called without an active
    exception"), because Python ends such a thread with ``pthread_exit`` when it
    returns for the GIL, and that cannot unwind through Rust's frames."""

    def run() -> None:
        own_threads.enter()
        try:
            call()
        except Exception as error:
            sys.stderr.write(f"rerun-logging: rerun: {name} failed: {error}\n")
        finally:
            own_threads.leave()
            _helpers.discard(threading.current_thread())

    thread = threading.Thread(target=run, name=f"rerun-logging-rerun-{name}", daemon=True)
    _helpers.add(thread)
    thread.start()
    return thread


def _join_helpers(timeout: float) -> None:
    """Wait until no helper of ours is inside rerun-sdk, ``timeout`` at most."""
    deadline = time.monotonic() + timeout
    for thread in list(_helpers):
        thread.join(max(deadline - time.monotonic(), 0.0))


def _disconnect(recording: Any, helper: threading.Thread | None = None) -> None:
    """End ``recording``'s stream, after ``helper`` attached its sink (if it still does)."""
    if helper is not None:
        helper.join()
    try:
        recording.disconnect()
    except Exception as error:
        sys.stderr.write(f"rerun-logging: rerun: closing the recording failed: {error!r}\n")


_exit_hook_installed = False


def _close_rerun_handlers() -> None:
    """At exit, before rerun-sdk's own hook: close the handlers that have a rerun sink,
    then wait for the helper threads still inside rerun-sdk (see :func:`_background`).

    Found the way ``logging.shutdown`` finds every handler (``logging._handlerList``);
    a handler that closed already is left alone (``close`` twice is a no-op)."""
    for ref in reversed(list(getattr(logging, "_handlerList", ()))):
        try:
            handler = ref()
            specs = getattr(handler, "sinks", ()) if handler is not None else ()
            if any(getattr(spec, "mode", None) == RerunMode.name for spec in specs):
                handler.close()  # type: ignore[union-attr]
        except Exception:  # never in the way of the exit
            pass
    _join_helpers(HELPERS_EXIT_WAIT)


class RerunMode(Mode):
    """``rerun[:save:PATH | :spawn[:PORT] | :connect[:URL] | :serve[:PORT]]``: Rerun's own modes."""

    name = "rerun"
    argument = "rerun"
    modules = (
        "rerun",
        "rerun.sinks",
        "rerun.web",
        "rerun.recording_stream",
        "rerun._send_columns",
        "rerun._properties",
        "rerun._spawn",
        "uuid",
        "json",
        "shutil",
        "urllib.parse",
        "encodings.idna",
        "numpy",
        "pyarrow",
        "rerun_logging.rerun_sdk.mapping",
        "rerun_logging.viewer.browser",
    )
    sink = RerunSink

    @property
    def grammar(self) -> str:
        return GRAMMAR

    def parse(self, text: str, argument: str | None) -> SinkSpec:
        """The spec of ``text``; the target is checked, and the extra imported, now.

        Raises :class:`~rerun_logging.spec.SinkSpecError` for a sub-form that does not
        parse and :class:`~rerun_logging.rerun_sdk.RerunUnavailable` (one too)
        without ``rerun-logging[rerun]``.
        """
        target = parse_target(text, argument)
        from ..rerun_sdk import require

        require()
        return SinkSpec(self.name, path=target.argument)

    def target_of(self, spec: SinkSpec) -> Target:
        """The target a parsed ``spec`` names."""
        return parse_target(str(spec), spec.path)

    def open(self, spec: SinkSpec, options: SinkOptions) -> Sink:
        target = self.target_of(spec)
        if target.kind == "save" and target.path is not None and family.saved_by_an_ancestor(target.path):
            target = Target("save", path=child_path(target.path, os.getpid()))
        elif target.kind in ("spawn", "serve"):
            port = family.ancestor_server(str(spec))
            if port is not None:  # a process of a run, or a child: the ancestor's viewer
                target = Target("connect", url=_url_of(port))
        return self.sink(target, open_browser=options.open_browser)

    def before_start(self, spec: SinkSpec) -> None:
        """Announce ``spawn``/``serve``'s port to children; order the exit hooks (once)."""
        global _exit_hook_installed
        target = self.target_of(spec)
        if target.kind in ("spawn", "serve") and family.ancestor_server(str(spec)) is None:
            family.announce_server(str(spec), target.port or DEFAULT_GRPC_PORT)
        if not _exit_hook_installed:
            _exit_hook_installed = True
            atexit.register(_close_rerun_handlers)

    def saved_file(self, spec: SinkSpec) -> str | None:
        target = self.target_of(spec)
        return target.path if target.kind == "save" else None

    def for_run(self, spec: SinkSpec) -> str:
        target = self.target_of(spec)
        if target.kind == "save":
            assert target.path is not None
            return f"{self.name}:save:{os.path.abspath(target.path)}"
        return str(spec)
