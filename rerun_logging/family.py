"""One run, many processes: what a process tells the Python processes it starts.

Through the environment, which every child inherits (``multiprocessing`` spawn
workers, ``subprocess`` children, forks), the first process of a run passes on:

- ``RERUN_LOGGING_RECORDING_ID``: the recording id, so the children's records
  join the same recording;
- ``RERUN_LOGGING_SAVED_AT`` (``PID:PATH``): the file its ``save`` sink writes. A
  child whose ``save`` names the same file writes ``PATH-stem.<pid>.rrd`` beside
  it instead of over it (forked children already do, through the fork hook);
- ``RERUN_LOGGING_SERVED_AT`` (``PID:PORT:SPEC``): its ``serve`` sink and the
  loopback TCP port that takes streams. A child configured with the same ``serve``
  spec connects there instead of failing to serve on the same port.

Only a match on the same file or the same serve spec changes what a child does:
an unrelated app started by this one, with its own file, is left alone. A value
already set by an ancestor is kept, so the whole tree shares the first process's.
"""

from __future__ import annotations

import os
import uuid
from typing import Iterable

from .spec import SinkSpec

RECORDING_ID_ENV_VAR = "RERUN_LOGGING_RECORDING_ID"
SAVED_AT_ENV_VAR = "RERUN_LOGGING_SAVED_AT"
SERVED_AT_ENV_VAR = "RERUN_LOGGING_SERVED_AT"
ENV_VARS = (RECORDING_ID_ENV_VAR, SAVED_AT_ENV_VAR, SERVED_AT_ENV_VAR)

_recording_id: str | None = None


def recording_id() -> str:
    """This run's recording id: inherited, or new (and then passed on to children)."""
    global _recording_id
    if _recording_id is None:
        _recording_id = os.environ.get(RECORDING_ID_ENV_VAR) or str(uuid.uuid4())
        os.environ.setdefault(RECORDING_ID_ENV_VAR, _recording_id)
    return _recording_id


def announce_files(specs: Iterable[SinkSpec]) -> None:
    """Tell processes started from now on which file this process saves into.

    Called when a handler is configured, on the app's thread, so that a worker
    started right after knows, not only once the flusher opened the file.
    """
    for spec in specs:
        if spec.mode == "save" and spec.path and not saved_by_an_ancestor(spec.path):
            os.environ.setdefault(SAVED_AT_ENV_VAR, f"{os.getpid()}:{os.path.abspath(spec.path)}")


def saved_by_an_ancestor(path: str) -> bool:
    """Whether an ancestor process saves into ``path`` (so this one must not)."""
    pid, _, saved = os.environ.get(SAVED_AT_ENV_VAR, "").partition(":")
    return pid.isdigit() and int(pid) != os.getpid() and saved == os.path.abspath(path)


def announce_server(spec: str, port: int) -> None:
    """Tell processes started from now on where this process's ``spec`` server takes streams."""
    os.environ.setdefault(SERVED_AT_ENV_VAR, f"{os.getpid()}:{port}:{spec}")


def ancestor_server(spec: str) -> int | None:
    """The loopback TCP port of an ancestor's server for ``spec``, or None."""
    pid, _, rest = os.environ.get(SERVED_AT_ENV_VAR, "").partition(":")
    port, _, served = rest.partition(":")
    if not (pid.isdigit() and port.isdigit()) or int(pid) == os.getpid() or served != spec:
        return None
    return int(port)
