"""Zero-code instrumentation: ``rerun-logging run [OPTIONS] -- PROGRAM [ARGS...]``.

Runs an unmodified Python program with a :class:`~rerun_logging.RerunHandler`
receiving its logging, the way ``opentelemetry-instrument`` does. This module is
pure configuration (no logging hooks, no sockets): the runner is
:mod:`.runner`, what each instrumented process does is :mod:`.process`, and the
bootstrap is ``_sitedir/sitecustomize.py``.

How it works
------------

- The runner starts PROGRAM as a subprocess with ``_sitedir`` prepended to
  ``PYTHONPATH`` and one variable, :data:`CONFIG_ENV_VAR` (``RERUN_LOGGING_RUN``),
  holding the run's configuration as JSON (:class:`RunConfig`). It also sets
  ``RERUN_LOGGING_RECORDING_ID`` (a fresh uuid4 unless already set), so every
  Python process of the run joins one recording, and the application id defaults
  to the program's name (script stem, ``-m`` module, console script) for every
  process of the run.
- Every Python interpreter started with that environment imports our
  ``sitecustomize``. Without the variable it imports nothing of rerun_logging
  (only ``os`` and ``sys``, already loaded). Either way it then executes the next
  ``sitecustomize`` found on ``sys.path`` after our directory, so a site's own
  one still runs. An error of ours is one line on stderr; the program goes on.
- The first instrumented process is the *top* process: it writes its pid into the
  variable (``top_pid``), so the Python processes it starts know they are not.
  (A process that ``exec``s itself keeps its pid, and stays top.)
- rerun-logging's own commands are never instrumented (``python -m rerun_logging``,
  the ``rerun-logging`` script): the viewer that ``spawn`` starts inherits the
  environment and must not stream into itself; a nested ``rerun-logging run``
  starts a run of its own (in the same recording).
- ``--top-only``: the top process takes our directory out of ``PYTHONPATH`` and
  the variable (and the recording id, when the runner set it) out of
  ``os.environ``, so what it starts sees the environment it would have seen.
- A subprocess that logged nothing leaves no file and no stream (helpers,
  ``multiprocessing``'s resource tracker); the top process always ends its
  recording, empty or not.

Sinks per process (decided here, :func:`process_sinks`)
-------------------------------------------------------

- ``save:PATH``: the top process saves to PATH (made absolute by the runner);
  every other Python process saves beside it, ``run.rlg`` -> ``run.<pid>.rlg``,
  as any child of a process saving there does (:mod:`rerun_logging.family`: the
  top process's handler announces PATH to the processes it starts).
- ``serve[:HOST:PORT]``: the RUNNER serves. It runs the viewer in a thread
  (:class:`~rerun_logging.viewer.server.Viewer`: TCP on a free loopback port,
  the web UI on HOST:PORT) and every Python process of the run, top or not, gets
  ``connect:127.0.0.1:<that port>``, so one page shows the whole run and the page
  outlives the program. After the program exits, the runner keeps serving until
  Ctrl-C only when its standard output is a terminal (it says so on stderr);
  otherwise it stops at once and exits with the program's status.
- ``stdout``: only the top process writes frames to standard output; the others
  would interleave their streams into it (or into a pipe their parent reads), so
  they are not instrumented.
- ``connect``, ``spawn``, ``memory``, ``off``: the same in every process.

The default sink is ``spawn`` (``RERUN_LOGGING_SINK`` when set and ``--sink`` is
not given). ``RERUN_LOGGING_SINK`` does not override the run's handler (it is set
with ``set_sink``), and is left in the environment for the app's own handlers.

Where the handler sits (decided in :mod:`.process`)
----------------------------------------------------

The handler is *not* added to ``root.handlers`` (nor to ``logging._handlerList``):
``Logger.callHandlers`` is wrapped so that it sees every record a logger handles,
also from loggers that do not propagate (``uvicorn.access``). So the app's own
logging configuration is unaffected by it: ``basicConfig`` still installs its
handler (root has none of ours), ``dictConfig``/``fileConfig`` cannot remove or
close it, code testing ``if not root.handlers`` still sees what it expects, and
the stdlib's last-resort handler still prints warnings of an unconfigured app.
It is closed (bounded by ``flush_timeout``) by its own ``atexit`` hook, which runs
before ``logging.shutdown``.

``--level`` (default INFO) is the handler's level, and no level of the app's is
changed: ``root.level``, every logger's level, ``isEnabledFor`` and what the app's
handlers print are what they would be without the run. A record below the app's
levels (an unconfigured app's root is at WARNING) but at ``--level`` is still made,
with the app's file and line, and reaches our handler only: ``Logger.info`` and its
kin (and ``LoggerAdapter.log``) are wrapped for it. ``logging.disable`` and a
logger's ``disabled`` hold for our handler too.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from typing import Any

CONFIG_ENV_VAR = "RERUN_LOGGING_RUN"
"""The run's configuration, as JSON: what the sitecustomize looks for."""

SITE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sitedir")
"""The directory prepended to ``PYTHONPATH``: it holds only our ``sitecustomize``."""

DEFAULT_SINK = "spawn"
DEFAULT_LEVEL = 20  # logging.INFO, without importing logging here
FLUSH_TIMEOUT = 3.0
"""The instrumented handler's ``flush_timeout``: the longest its close delays an exit."""


@dataclass(frozen=True)
class RunConfig:
    """What every instrumented process of a run needs to know."""

    sink: list[str]
    """The sink specs each process adapts (:func:`process_sinks`); serve is already
    replaced by ``connect`` to the runner's viewer."""
    application_id: str
    level: int = DEFAULT_LEVEL
    top_only: bool = False
    runner_pid: int = 0
    top_pid: int | None = None
    """The pid of the top process, once it started (None before)."""
    pythonpath: str | None = None
    """``PYTHONPATH`` as it was before the runner added its directory (for --top-only)."""
    recording_id_set: bool = False
    """Whether the runner set ``RERUN_LOGGING_RECORDING_ID`` (for --top-only)."""

    def to_env(self) -> str:
        """The value of :data:`CONFIG_ENV_VAR`."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_env(cls, text: str) -> RunConfig:
        """Parse :data:`CONFIG_ENV_VAR`; ValueError when it is not ours."""
        try:
            data: Any = json.loads(text)
        except ValueError as error:
            raise ValueError(f"{CONFIG_ENV_VAR} is not JSON: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("sink"), list):
            raise ValueError(f"{CONFIG_ENV_VAR} holds no run configuration")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**known)
        except TypeError as error:
            raise ValueError(f"{CONFIG_ENV_VAR}: {error}") from None

    def claimed(self, pid: int) -> RunConfig:
        """The configuration the top process (``pid``) hands to its subprocesses."""
        return replace(self, top_pid=pid)


def process_sinks(sink: list[str], top: bool) -> list[str]:
    """The sinks of one process of the run (see the module docstring); [] = not instrumented.

    Only a mode for the top process alone (``stdout``) differs between processes:
    the others would interleave their streams into it. Where a subprocess saves is decided by the handler itself.
    """
    from ..sinks import mode_of
    from ..spec import parse_sinks

    return [str(spec) for spec in parse_sinks(sink) if top or not mode_of(spec).top_process_only]


__all__ = ["CONFIG_ENV_VAR", "DEFAULT_SINK", "RunConfig", "SITE_DIR", "process_sinks"]
