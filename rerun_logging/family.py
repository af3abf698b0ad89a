"""One run, many processes: what a process tells the Python processes it starts.

Through the environment, which every child inherits (``multiprocessing`` spawn
workers, ``subprocess`` children, forks), the first process of a run passes on:

- ``RERUN_LOGGING_RECORDING_ID``: the recording id, so the children's records
  join the same recording;
- ``RERUN_LOGGING_SAVED_AT``: the files its ``save`` sinks write, as JSON
  ``{"PATH": PID}``. A child whose ``save`` names one of them writes
  ``PATH-stem.<pid>.EXT`` beside it instead of over it (forked children already
  do, through the fork hook);
- ``RERUN_LOGGING_SERVED_AT``: its ``serve`` sinks and the loopback TCP port that
  takes streams, as JSON ``{"SPEC": [PID, PORT]}``. A child configured with the
  same ``serve`` spec connects there instead of failing to serve on the same port.

Only a match on the same file or the same serve spec changes what a child does:
an unrelated app started by this one, with its own file, is left alone. Every
process adds its own files and servers; a claim made by an ancestor is kept, so
the whole tree shares the first claimant's. A value that is not ours is ignored.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any, Iterable

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


def announce_files(paths: Iterable[str]) -> None:
    """Tell processes started from now on that this process saves into ``paths``.

    Called when a handler is configured, on the app's thread, so that a worker
    started right after knows, not only once the flusher opened the file.
    """
    for path in paths:
        _claim(SAVED_AT_ENV_VAR, os.path.abspath(path), os.getpid())


def withdraw_files(paths: Iterable[str]) -> None:
    """Take back this process's claims on ``paths`` (children will not know of them)."""
    claims = _claims(SAVED_AT_ENV_VAR)
    for path in map(os.path.abspath, paths):
        if claims.get(path) == os.getpid():
            del claims[path]
    if claims:
        os.environ[SAVED_AT_ENV_VAR] = json.dumps(claims)
    else:
        os.environ.pop(SAVED_AT_ENV_VAR, None)


def saved_by_an_ancestor(path: str) -> bool:
    """Whether an ancestor process saves into ``path`` (so this one must not)."""
    pid = _claims(SAVED_AT_ENV_VAR).get(os.path.abspath(path))
    return isinstance(pid, int) and pid != os.getpid()


def announce_server(spec: str, port: int) -> None:
    """Tell processes started from now on where this process's ``spec`` server takes streams."""
    _claim(SERVED_AT_ENV_VAR, spec, [os.getpid(), port])


def ancestor_server(spec: str) -> int | None:
    """The loopback TCP port of an ancestor's server for ``spec``, or None."""
    claim = _claims(SERVED_AT_ENV_VAR).get(spec)
    if not (isinstance(claim, list) and len(claim) == 2 and all(isinstance(n, int) for n in claim)):
        return None
    pid, port = claim
    return None if pid == os.getpid() else port


def _claims(name: str) -> dict[str, Any]:
    """The claims in environment variable ``name`` (none when unset or not ours)."""
    try:
        claims = json.loads(os.environ.get(name) or "{}")
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _claim(name: str, key: str, value: Any) -> None:
    """Add ``key: value`` to the claims in ``name``, unless ``key`` is claimed already."""
    claims = _claims(name)
    if key not in claims:
        claims[key] = value
        os.environ[name] = json.dumps(claims)
