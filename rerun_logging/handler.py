"""``RerunHandler``: a ``logging.Handler`` that streams records into recordings.

How a record travels::

    caller thread   handle() -> capture() -> deque.append          (no I/O, no lock)
    flusher thread  every flush_interval or batch_size records:
                    batch -> columns -> one frame -> every sink       (all the I/O)

Three owners, as the stdlib's ``QueueHandler`` / queue / ``QueueListener``: this
module is the caller's side (configuration, ``emit``, ``flush``, ``close``,
``stats``); :class:`~.handoff.Handoff` owns the queue and every counter both
sides touch; :class:`~.flusher.Flusher` owns the thread, the sinks and the stream.
Each sink owns its own counters.

The caller's side takes no lock that the flusher holds across I/O: the hand-off is a
``collections.deque``, whose ``append`` and ``popleft`` are atomic. The hand-off is
bounded by ``queue_size`` records; past it the oldest are dropped and counted, so a
stalled sink never grows memory without bound nor blocks the app. Every drop is
counted in :attr:`RerunHandler.stats` and reported in the stream as a ``dropped``
message.

With no sink (or ``memory``) frames are kept in a :class:`MemorySink` bounded by
``buffer_size`` bytes; :meth:`RerunHandler.set_sink` replays them, in order, into the
sinks it enables.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Any, Sequence

from . import capture as _capture
from . import exits, family, format, own_threads
from .capture import Captured, capture
from .flusher import Flusher, FlusherSettings, sink_drop_reason
from .handoff import NEVER, Handoff
from .speedups import SPEEDUPS as _SPEEDUPS
from .sinks import Sink, SinkOptions, SinkStats, before_start, prepare, saved_files, writes_here
from .spec import OFF, SinkConfig, SinkSpec, env_sinks, parse_sinks
from .wording import counted

RECORDING_ID_ENV_VAR = family.RECORDING_ID_ENV_VAR
_HANDLE_RETURNS_RECORD = sys.version_info >= (3, 12)


@dataclass(frozen=True)
class HandlerStats:
    """A snapshot of a handler's counters.

    ``emitted``: records accepted by ``emit`` (plus those refused after close).
    ``dropped``: records lost, by reason in ``dropped_by_reason``: those lost before
    any sink saw them (hand-off overflow, after close, unencodable) plus the most
    that one sink lost (a file it cannot write, a viewer it cannot reach, the
    in-memory buffer's evictions), so that with one sink ``emitted`` is
    ``written + dropped + pending`` once the sink has settled.
    ``dropped_before_sinks``: the first part alone.
    ``pending``: records waiting for the flusher. Each sink counts what it wrote
    and what it lost (``sinks``).
    """

    emitted: int
    dropped: int
    dropped_by_reason: dict[str, int]
    pending: int
    buffered: int
    sinks: tuple[SinkStats, ...]
    dropped_before_sinks: int = 0

    @property
    def written(self) -> int:
        """Records written by every sink (the least any sink wrote), 0 without sinks."""
        return min((s.written for s in self.sinks), default=0)


_BASIC_CONFIG_CODE = logging.basicConfig.__code__
_OWN_THREADS = own_threads.OWN
_live_handlers: weakref.WeakSet[RerunHandler] = weakref.WeakSet()


def _default_application_id() -> str:
    """The program's name: the script, or the package run with ``-m``."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0 in ("", "-c", "-m", "-"):
        return "python"
    stem = os.path.splitext(os.path.basename(argv0))[0]
    if stem == "__main__":
        return os.path.basename(os.path.dirname(os.path.abspath(argv0))) or "python"
    return stem or "python"


def default_recording_id() -> str:
    """One id per run, shared by every handler of the process and the processes it starts.

    ``RERUN_LOGGING_RECORDING_ID`` sets it; see :mod:`rerun_logging.family`.
    """
    return family.recording_id()


class RerunHandler(logging.Handler):
    """Streams log records to the rerun-logging viewer, a file, or stdout.

    All arguments are plain values so that ``dictConfig`` and ``fileConfig`` can
    build it. ``sink`` is a spec string (``"save:run.rlg"``, ``"stdout"``, several
    joined by commas) or a list; None buffers in memory until :meth:`set_sink`.
    ``RERUN_LOGGING_SINK`` in the environment overrides it.

    ``mode`` is the save sink's file mode, as ``logging.FileHandler``'s: ``"a"``
    (the default) appends a new stream (run) after what the file holds, ``"w"``
    starts the file afresh.

    Guarantees: ``emit`` does no I/O and never raises; memory is bounded by
    ``queue_size`` records waiting plus ``buffer_size`` bytes buffered; ``flush``
    and ``close`` return within ``flush_timeout`` seconds. Nothing starts until the
    first record: no thread, file or socket in ``__init__``. A record is written
    within ``flush_interval`` of its ``emit``, and at once when the handler had
    nothing to write for a whole ``flush_interval``: what a process that dies
    without running any code (``SIGKILL``, ``os._exit``) can lose. Every other exit
    keeps every record (see :mod:`rerun_logging.exits`).
    """

    def __init__(
        self,
        sink: SinkConfig = None,
        *,
        application_id: str | None = None,
        recording_id: str | None = None,
        entity_prefix: str = "",
        flush_interval: float = 0.05,
        batch_size: int = 4096,
        buffer_size: int = 64 * 1024 * 1024,
        queue_size: int = 200_000,
        flush_timeout: float = 5.0,
        retryStart: float = 1.0,
        retryFactor: float = 2.0,
        retryMax: float = 30.0,
        open_browser: bool = True,
        mode: str = "a",
        level: int | str = logging.NOTSET,
    ) -> None:
        # Every argument is checked before logging.Handler.__init__ registers the
        # handler for logging.shutdown: a handler that failed to build is never flushed.
        configured = parse_sinks(sink)
        self.configured_sinks = configured
        self.application_id = application_id or _default_application_id()
        self.recording_id = recording_id or default_recording_id()
        self.entity_prefix = entity_prefix
        self.flush_interval = _positive(flush_interval, "flush_interval")
        self.batch_size = min(int(_positive(batch_size, "batch_size")), format.MAX_RECORDS_PER_FRAME)
        self.buffer_size = int(_positive(buffer_size, "buffer_size"))
        self.queue_size = int(_positive(queue_size, "queue_size"))
        self.flush_timeout = _positive(flush_timeout, "flush_timeout")
        self.retryStart = _positive(retryStart, "retryStart")
        self.retryFactor = _positive(retryFactor, "retryFactor")
        self.retryMax = _positive(retryMax, "retryMax")
        self.open_browser = bool(open_browser)
        if mode not in ("a", "w"):
            raise ValueError(f"RerunHandler mode must be 'a' (append) or 'w' (start afresh), got {mode!r}")
        self.mode = mode
        specs: tuple[SinkSpec, ...] = env_sinks() or configured
        prepare(specs)
        super().__init__(level)
        self._specs = specs
        family.announce_files(saved_files(self._specs))
        self._accepting = self._specs != (OFF,)
        if self._accepting:
            exits.install_signal_handlers(_close_all_for_exit)
        self._closed = False
        self._forked = False
        self._reset_runtime()
        _live_handlers.add(self)

    def _reset_runtime(self, inherited: Sequence[Sink] = ()) -> None:
        """Fresh state for both halves: at construction and in a forked child.

        The caller's side owns what it keeps here (the locks of start and close, the
        flush outcome); :class:`~.handoff.Handoff` owns what both halves touch;
        the :class:`~.flusher.Flusher` owns the sinks and the stream.
        """
        handoff = Handoff()
        self._handoff = handoff
        self._queue = handoff.queue  # aliases of the hand-off's, for emit's speed
        self._wake = handoff.wake
        self._start_lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._flusher = Flusher(self._flusher_settings(), handoff, self._specs, inherited)
        self._stalled = False
        self._stalled_since: float | None = None
        self._interrupted = False
        self._close_deadline = 0.0

    def _flusher_settings(self) -> FlusherSettings:
        options = SinkOptions(
            self.buffer_size, self.retryStart, self.retryFactor, self.retryMax, self.open_browser,
            self.mode, forked=self._forked,
        )
        return FlusherSettings(
            self.application_id, self.recording_id, self.entity_prefix, self.flush_interval,
            self.batch_size, self.flush_timeout, options,
        )

    # --- the caller's side ----------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> Any:
        """Filter and emit without the handler lock (``emit`` is thread-safe).

        Returns what ``logging.Handler.handle`` returns on this Python version.
        """
        if not self._accepting:  # off, or closed: no call of its own (off's whole cost)
            if self._closed and self._specs != (OFF,):
                self._handoff.count_drop("logged after close", 1, refused=True)
            return False
        if self.filters:
            rv = self.filter(record)
            if not rv:
                return rv
            if isinstance(rv, logging.LogRecord):
                record = rv
        if record.thread in _OWN_THREADS:
            return False
        self.emit(record)
        return record if _HANDLE_RETURNS_RECORD else True

    def emit(self, record: logging.LogRecord) -> None:
        """Capture ``record`` and hand it to the flusher; never blocks, never raises."""
        try:
            if self._thread is None:  # before the record is queued: see exits.flusher_runs
                try:
                    self._start()
                except Exception:  # no thread to be had: the record waits for the next try
                    self.handleError(record)
            state = None
            if self.formatter is None and not _capture._trace_imported:
                plain = _capture._plain_capture  # capture()'s own first step, without its call
                state = plain(record) if plain is not None else None
            queue = self._queue
            queue.append(state if state is not None else capture(record, self.formatter))
            if len(queue) >= self.batch_size:
                self._on_batch_ready(queue)
            elif record.created >= self._handoff.quiet_until:
                self._wake_flusher()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)

    if _SPEEDUPS is not None:
        handle = _SPEEDUPS.Handle(  # type: ignore[assignment]
            handle, emit, deque.append, _OWN_THREADS, vars(_capture), _HANDLE_RETURNS_RECORD
        )
        """The C half's ``handle``: what ``handle`` and ``emit`` above do for the common
        record (a plain ``LogRecord``, a handler with neither filters nor a formatter,
        this ``emit``), in one C call, about 0.15 µs a record less than the two Python
        calls; any other record, and any handler whose ``emit`` is another (a
        subclass's, a test's mock), it hands to the Python ``handle`` before doing
        anything."""

    def _wake_flusher(self) -> None:
        """Wake the flusher now: it wrote nothing for a whole ``flush_interval``."""
        self._handoff.quiet_until = NEVER
        self._wake.set()

    def _on_batch_ready(self, queue: deque[Captured]) -> None:
        if len(queue) > self.queue_size:
            self._handoff.trim(self.queue_size, "queue full: the flusher fell behind")
        if not self._wake.is_set():
            self._handoff.batch_ready = True
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None or self._closed:
                return
            if not self._flusher.inherits:
                before_start(self._specs)
            self._thread = self._flusher.start(
                f"rerun-logging-flusher-{id(self):x}", self._flusher_settings()
            )
            exits.close_at_child_exit(self.close, self)

    def setFormatter(self, fmt: logging.Formatter | None) -> None:  # noqa: N802 (logging's name)
        """Set the formatter whose text becomes each record's message (None: the message alone).

        The structured fields (level, logger, time, extras, exception) stay beside it.
        ``logging.basicConfig(handlers=[...])`` gives every handler without one its
        console format (``LEVEL:logger:message`` by default); that one is not taken:
        it was meant for text lines, and would only repeat the fields the recording
        keeps. A formatter set any other way (``setFormatter``, dictConfig's
        ``"formatter"``, fileConfig) is honoured, a redacting one included.
        """
        caller = sys._getframe(1).f_code
        if fmt is not None and caller is _BASIC_CONFIG_CODE:
            return
        super().setFormatter(fmt)

    # --- control --------------------------------------------------------------------

    def start(self, timeout: float | None = None) -> None:
        """Open the sinks now rather than at the first record; wait up to ``timeout``.

        For ``serve``, whose URL a script wants to print before it logs anything
        (see :attr:`url`). ``timeout`` defaults to ``flush_timeout``.
        """
        if self._accepting and not self._closed:
            self._start()
            self.flush(timeout)

    @property
    def url(self) -> str | None:
        """The web viewer's URL in ``serve`` mode once it serves, else None."""
        for sink in self._flusher.sinks:
            url = getattr(sink, "url", None)
            if url:
                return str(url)
        return None

    def set_sink(self, sink: SinkConfig) -> None:
        """Send records to ``sink`` from now on (a spec as in ``__init__``).

        Records buffered in memory are written into the new sinks first, in order.
        An explicit call wins over ``RERUN_LOGGING_SINK``. Raises ValueError for a
        bad or unavailable spec; waits at most ``flush_timeout`` for the switch.
        """
        specs = parse_sinks(sink)
        if self._closed:
            raise ValueError("set_sink() on a closed RerunHandler")
        prepare(specs)
        if specs != (OFF,):
            exits.install_signal_handlers(_close_all_for_exit)
        self._accepting = specs != (OFF,)
        family.announce_files(saved_files(specs))
        self._specs = specs
        if self._thread is None:
            self._flusher.specs = specs
            return
        self._flusher.request_switch(specs)
        self.flush(self.flush_timeout)

    @property
    def sinks(self) -> tuple[SinkSpec, ...]:
        """The sinks in force (after the environment override and set_sink)."""
        return self._specs

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record emitted before this call is written, or ``timeout``.

        ``timeout`` defaults to ``flush_timeout``. Returns whether it got there.
        """
        thread = self._thread
        if thread is None or not thread.is_alive():
            return True
        flusher = self._flusher
        if threading.get_ident() == flusher.ident:
            return False
        timeout = self.flush_timeout if timeout is None else timeout
        if self._interrupted:
            timeout = 0.0
        started = time.monotonic()
        ticket = flusher.request_flush(started + timeout)
        try:
            delivered = flusher.wait_flushed(ticket, timeout)
        except KeyboardInterrupt:
            self._on_interrupt("flush")
            return False
        self._stalled = not delivered
        if delivered:
            self._stalled_since = None
        elif self._stalled_since is None:
            self._stalled_since = started
        return delivered

    def close(self) -> None:
        """Flush within ``flush_timeout``, end every stream cleanly, stop. Idempotent.

        Records logged afterwards are counted as dropped. If the sinks cannot take
        everything in time, one line on stderr says how many records were lost.
        """
        # Marked closing before it is marked closed: a terminating signal from here on
        # waits for this close (before, it closes the handler itself). The other order
        # left a window in which the signal found the handler closed, its close not yet
        # started, and died at once without the stream's END (seen once in CI).
        with exits.closing():
            with self._start_lock:
                if self._closed:
                    return
                self._closed = True
                self._accepting = False
            self._close()

    def _close(self) -> None:
        wait = 0.0 if self._interrupted else 0.2 if self._stalled else self.flush_timeout
        started = time.monotonic()
        self._close_deadline = started + max(wait - 0.1, 0.05)
        try:
            thread = self._thread
            if thread is None:
                if not self._forked and writes_here(self._specs):
                    self._flusher.finish_without_thread(
                        self._flusher_settings(), self._close_deadline
                    )
            else:
                self._flusher.request_stop(self._close_deadline)
                try:
                    thread.join(wait)
                except KeyboardInterrupt:
                    self._on_interrupt("close")
                if not thread.is_alive():  # what threads appended while it ended: counted
                    self._handoff.strand("logged after close")
            lost = self._undelivered()
            if lost and not self._interrupted:
                waited = time.monotonic() - (self._stalled_since or started)
                sys.stderr.write(
                    f"rerun-logging: {self.application_id}: gave up after {waited:.1f}s "
                    f"(flush_timeout {self.flush_timeout:g}s): "
                    f"{counted(lost, 'record')} not delivered to {', '.join(map(str, self.sinks))}\n"
                )
        finally:
            _live_handlers.discard(self)
            super().close()

    def _on_interrupt(self, where: str) -> None:
        """Ctrl-C while ``flush`` or ``close`` waits: say so in one line, stop waiting.

        At exit the interrupt ends the wait and goes no further (a traceback from
        ``logging.shutdown`` would say nothing useful); elsewhere it is re-raised, as
        the app's Ctrl-C must reach the app.
        """
        self._interrupted = True
        try:
            lost = self._undelivered()
            sys.stderr.write(
                f"rerun-logging: {self.application_id}: interrupted while waiting in {where}(): "
                f"{counted(lost, 'record')} not delivered to {', '.join(map(str, self.sinks))}\n"
            )
        except Exception:
            pass
        if not exits.exiting():
            raise KeyboardInterrupt

    def _await_close(self) -> None:
        """Wait, up to the close's own deadline, for a close already under way to end."""
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            deadline = self._close_deadline or time.monotonic() + self.flush_timeout  # not set yet
            thread.join(max(deadline - time.monotonic(), 0.0))

    def _undelivered(self) -> int:
        """Records emitted that the slowest sink has neither written nor counted lost."""
        counts = self._handoff.counts()
        sinks = [s.stats() for s in self._flusher.sinks]
        if not sinks:
            return 0
        emitted = counts.taken + counts.queued + counts.refused
        handled = min(s.written + s.dropped for s in sinks)
        return max(emitted - sum(counts.dropped.values()) - handled, 0)

    @property
    def stats(self) -> HandlerStats:
        """Counters: emitted, dropped (by reason), pending, buffered, per sink."""
        counts = self._handoff.counts()
        own = sum(counts.dropped.values())
        dropped = {**counts.dropped, **self._flusher.retired_drops}
        sinks = self._flusher.sinks
        buffered = sum(s.buffered_records for s in sinks)
        sink_stats = tuple(s.stats() for s in sinks)
        worst = max(sink_stats, key=lambda s: s.dropped, default=None)
        if worst is not None and worst.dropped:
            dropped[sink_drop_reason(worst.name)] = worst.dropped
        return HandlerStats(
            emitted=counts.taken + counts.queued + counts.refused,
            dropped=sum(dropped.values()),
            dropped_by_reason=dropped,
            pending=counts.queued,
            buffered=buffered,
            sinks=sink_stats,
            dropped_before_sinks=own,
        )

    def __repr__(self) -> str:
        level = logging.getLevelName(self.level)
        return f"<RerunHandler {', '.join(map(str, self.sinks))} ({level})>"

    # --- fork ----------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """Give a forked child fresh state; its flusher opens the child's own streams.

        Runs inside ``os.fork()``: it only resets state. No import, no I/O, no lock
        that a thread of the parent may have held (the thread does not exist here,
        so its lock would never be released). The parent's sinks are kept aside for
        the child's flusher, which asks each for the child's (``Sink.after_fork``):
        a file beside the parent's, a connection of its own.
        """
        self._forked = True
        self._reset_runtime(inherited=self._flusher.sinks)


def _positive(value: Any, name: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(f"RerunHandler {name} must be positive, got {value!r}")
    return number


def _close_all_for_exit() -> None:
    """Close every live handler: the process is about to end (a terminating signal)."""
    for handler in list(_live_handlers):
        if handler._closed:
            handler._await_close()  # the signal interrupted its close on this thread
        else:
            handler.close()


def _reinit_after_fork() -> None:
    """At-fork hook: every live handler gets fresh state in the child (state only)."""
    own_threads.OWN.clear()  # the parent's threads do not exist here
    for handler in [h for h in _live_handlers if not h._closed]:
        handler._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)
