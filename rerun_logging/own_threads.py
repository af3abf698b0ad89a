"""The package's own threads, whose log records are never recorded.

A record logged on one of them (asyncio's or websockets' debug lines in the serve
sink's server, anything a sink's library logs on the flusher) would be captured,
sent, and could log again: a loop. :class:`~rerun_logging.RerunHandler` drops
records whose ``thread`` is in :data:`OWN`, as ``logging`` itself guards against
re-entrance. The threads themselves are started elsewhere (the handler's flusher,
:mod:`rerun_logging.viewer.thread`); each marks itself with :func:`enter`.
"""

from __future__ import annotations

import threading

OWN: set[int] = set()
"""Idents of the package's running threads (flushers, servers)."""


def enter() -> None:
    """Mark the calling thread as the package's own until :func:`leave`."""
    OWN.add(threading.get_ident())


def leave() -> None:
    """Unmark the calling thread (it is about to end)."""
    OWN.discard(threading.get_ident())
