"""How the ways a process ends reach the handlers, so every record logged before is kept.

A process can end in ways that skip ``atexit`` (and so ``logging.shutdown``). Each
one that still lets code run gets a hook here; the handler module gives the one
callback they all call (close every live handler, within its ``flush_timeout``):

- **A terminating signal at its default action** (``SIGTERM``, ``SIGHUP``): the
  default kills the process at once. :func:`install_signal_handlers` puts a handler
  on each such signal, once per process, from the main thread, and only where the
  signal is still at ``SIG_DFL``: an app's own handler is never replaced. Ours closes
  the handlers, then restores ``SIG_DFL`` and raises the signal again, so the
  process still dies of it (exit status ``-SIGTERM``), as a supervisor expects.
  Servers that install their own handler for a while and then restore the previous
  one and re-raise (uvicorn does exactly that) restore ours, so their last lines
  (shutdown complete, process finished) are kept. A signal that arrives while the
  main thread is inside a handler's close (a pool worker closing at exit when
  ``Pool.terminate()`` sends SIGTERM) waits for that close to end: dying in the
  middle of it would lose what it was writing.
  Python runs the handler on the main thread at its next bytecode, so a signal that
  lands just before the main thread blocks in C (a pool worker entering its wait for
  the next task as ``Pool.terminate()`` sends SIGTERM), or that another thread takes,
  would leave the handler never run and the pool's ``join`` waiting for ever. The C
  half of the package notes each arrival (``_speedups.watch_signal``) and every
  flusher, at each wake-up, delivers a noted signal again to the main thread
  (:func:`deliver_missed_signal`), whose wait then ends and runs the handler. While
  no flusher runs (nothing is queued) the signal takes its default action at once
  (:func:`flusher_runs`). Without the C half that race remains (rare: one
  ``terminate()`` in tens).
- **A multiprocessing child** (fork, spawn or forkserver) leaves through
  ``os._exit`` after ``threading._shutdown``; :func:`close_at_child_exit` hooks that
  (the hook ``concurrent.futures`` relies on too).
- **A billiard child** leaves through ``os._exit`` after billiard's own exit function,
  which runs its ``Finalize`` callbacks but not ``threading._shutdown``;
  :func:`close_at_child_exit` registers one there. A Celery prefork child leaves
  from inside its pool loop (billiard's ``Worker._do_exit``, straight to
  ``os._exit``), after Celery sends ``worker_process_shutdown``: a receiver of that
  signal closes the handlers there. (A bare billiard ``Pool`` without Celery has no
  such hook: its workers keep what they had written, as after ``os._exit``.)
- **Normal exit**: ``logging.shutdown`` closes the handlers as usual. The ``atexit``
  hook here only marks that the process is exiting (:func:`exiting`), so a Ctrl-C
  while a close waits for a slow sink ends the wait with one line, not a traceback.

Where nothing can run (``SIGKILL``, a bare ``os._exit``, a crash of the interpreter)
what the flusher has not written yet is lost; see the handler's ``flush_interval``
for how little that is.

Nothing here runs in an at-fork hook: a forked child inherits the signal handlers
(they close the child's own handlers) and registers its child-exit hooks when its
flusher starts.
"""

from __future__ import annotations

import atexit
import signal
import sys
import threading
import weakref
from typing import Any, Callable

from .speedups import SPEEDUPS

TERMINATING_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Signals whose default action ends the process without running ``atexit``."""

_close_all: Callable[[], None] | None = None
_installed = False
_closing = 0
"""Closes in progress on the main thread (see :class:`closing`)."""
_pending_signal: int | None = None
_signal_taken = False
"""Whether our handler has run for a signal (then it is not delivered again)."""
_exiting = False


def install_signal_handlers(close_all: Callable[[], None]) -> None:
    """Hook the terminating signals still at their default action (once per process).

    Only from the main thread (``signal.signal`` works nowhere else); elsewhere, or
    where the app already handles a signal, nothing changes. ``close_all`` is what a
    signal runs before the process dies of it.
    """
    global _close_all, _installed
    _close_all = close_all
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    _installed = True
    for signum in TERMINATING_SIGNALS:
        try:
            if signal.getsignal(signum) is signal.SIG_DFL:
                signal.signal(signum, _on_terminating_signal)
                if SPEEDUPS is not None:
                    SPEEDUPS.watch_signal(signum)
        except (ValueError, OSError):  # not the main interpreter, or not allowed here
            pass


class closing:
    """Marks a handler's close in progress on this thread (a context manager).

    A terminating signal that arrives on the main thread while one of its closes
    waits (a multiprocessing worker closing at exit when ``Pool.terminate()``
    sends SIGTERM) must not kill the process in the middle of it: the signal waits
    for the close to end (it is bounded by ``flush_timeout``), then the remaining
    handlers close and the process dies of the signal as before.
    """

    def __enter__(self) -> None:
        global _closing
        if threading.current_thread() is threading.main_thread():
            _closing += 1

    def __exit__(self, *exc: object) -> None:
        global _closing, _pending_signal
        if threading.current_thread() is not threading.main_thread():
            return
        _closing -= 1
        if _closing == 0 and _pending_signal is not None:
            signum, _pending_signal = _pending_signal, None
            _terminate(signum)


def deliver_missed_signal() -> None:
    """Deliver again to the main thread a watched signal whose handler has not run.

    Called by each flusher at every wake-up (every ``flush_interval`` at most): a
    signal noted and still not handled by then was missed by a main thread asleep in C,
    and one delivered to that thread ends its wait. Delivered again while the handler
    is about to run, it only marks the handler due once more (it runs once)."""
    if SPEEDUPS is None or _signal_taken:
        return
    signum = SPEEDUPS.take_signal()
    if signum and not _signal_taken:
        ident = threading.main_thread().ident  # alive while any thread runs Python
        if ident is None:
            return
        try:
            signal.pthread_kill(ident, signum)
        except OSError:
            pass


def flusher_runs(change: int) -> None:
    """Count a flusher in (+1, before its thread starts) or out (-1, after its last write).

    While none runs, nobody would deliver a missed signal again, and nothing is queued
    (a handler starts its flusher before it queues its first record; only where no
    thread can be started do records wait without one): a watched signal then takes its
    default action at once, in C, as it would without the package."""
    if SPEEDUPS is not None:
        SPEEDUPS.deliverers(change)


def _on_terminating_signal(signum: int, frame: Any) -> None:
    """Our handler of a terminating signal: it runs once (see :func:`deliver_missed_signal`)."""
    global _signal_taken
    if _signal_taken:
        return
    _signal_taken = True
    _terminate(signum)


def _terminate(signum: int) -> None:
    """Close the handlers, then die of ``signum`` as the default action would have."""
    global _pending_signal
    if _closing:  # it interrupted a close on this thread: that close re-raises it
        _pending_signal = signum
        return
    try:
        if _close_all is not None:
            _close_all()
    finally:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


def close_at_child_exit(close: Callable[[], None], owner: object) -> None:
    """Run ``close`` when this process is a multiprocessing or billiard child about to exit.

    ``owner`` is held weakly: once it is gone the hook does nothing. Called on the
    caller's thread when a handler's flusher starts, never in an at-fork hook.
    """
    ref = weakref.ref(owner)

    def run() -> None:
        if ref() is not None:
            close()

    if _in_multiprocessing_child():
        register = getattr(threading, "_register_atexit", None)
        if register is not None:
            try:
                register(run)
            except RuntimeError:  # threading is already shutting down
                pass
    billiard = _billiard_child()
    if billiard is not None:
        billiard.Finalize(None, run, exitpriority=-100)
        celery = sys.modules.get("celery.signals")
        if celery is not None:
            celery.worker_process_shutdown.connect(
                lambda **_: run(), weak=False, dispatch_uid=f"rerun-logging-{id(owner)}"
            )


def _in_multiprocessing_child() -> bool:
    """Whether this process is a ``multiprocessing`` child (fork, spawn or forkserver)."""
    module = sys.modules.get("multiprocessing")
    return module is not None and module.parent_process() is not None


def _billiard_child() -> Any:
    """``billiard.util`` when this process is a billiard child (Celery's pool), else None.

    Only looked up where billiard is already imported: an app without it pays nothing.
    """
    process = sys.modules.get("billiard.process")
    util = sys.modules.get("billiard.util")
    if process is None or util is None:
        return None
    # billiard's main process object has no parent pid; every child's names its parent.
    return util if getattr(process.current_process(), "_parent_pid", None) is not None else None


def exiting() -> bool:
    """Whether the interpreter is exiting (our ``atexit`` hook ran, or it finalizes)."""
    return _exiting or sys.is_finalizing()


def _mark_exiting() -> None:
    global _exiting
    _exiting = True


# Registered when the handler module imports this one, after ``logging`` registered
# ``logging.shutdown``: atexit runs hooks last-in first-out, so this one runs first.
atexit.register(_mark_exiting)
