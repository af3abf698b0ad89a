"""What an instrumented process does: one RerunHandler, fed from ``Logger.callHandlers``.

:func:`start` is called by our ``sitecustomize`` when ``RERUN_LOGGING_RUN`` is set,
before the program's own code runs. See the package docstring for why the handler
is not on ``root.handlers``. The hooks, all installed once:

- ``logging.Logger.callHandlers`` (the class attribute) is wrapped: every record a
  logger handles goes to our handler (at its level), whatever the ``propagate``
  flags; the app's handlers get the record through the original ``callHandlers``
  only when the app's own levels allow it (see :func:`app_level`).
- ``logging.root.setLevel`` (an attribute of the root logger instance) is wrapped:
  it remembers the app's level and lowers the root to our level when the app's is
  higher. ``basicConfig``, ``dictConfig`` and ``fileConfig`` set the root's level
  through it, so they need no wrapping of their own: they cannot see, remove or
  close our handler (it is neither on root nor in ``logging._handlerList``).
- ``atexit``: close the handler (flush within ``flush_timeout``). Registered after
  ``logging`` was imported, so it runs before ``logging.shutdown``; a forked child
  inherits it, and ``multiprocessing`` children are closed by the handler's own
  fork hooks.

Known limits: a ``Logger`` subclass that overrides ``callHandlers`` bypasses the
hook (its records reach neither our handler nor the level gate); a record passed
to ``Logger.handle`` directly with a level below the app's root level reaches only
our handler; ``root.level`` reads our level while it is lowered; a process killed
by a signal (``multiprocessing.Pool.terminate``, which leaving ``with Pool()``
does) loses what it logged in its last ``flush_interval`` (``pool.close()`` and
``pool.join()`` keep it), as with any RerunHandler; a process that re-handles
records of other processes through ``Logger.handle`` (the logging cookbook's
multiprocessing listener) records them again, beside the worker's own copy.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from typing import Any, Callable

from . import CONFIG_ENV_VAR, FLUSH_TIMEOUT, SITE_DIR, RunConfig, process_sinks

PREFIX = "rerun-logging run"

_handler: logging.Handler | None = None
_level = logging.NOTSET
"""The level the root is lowered to (our handler's)."""
_app_root_level = logging.WARNING
"""The root level the app asked for (what ``root.level`` would be without us)."""
_lowered = False
"""Whether the root is below the app's level now (the gate is needed)."""
_top = True
"""Whether this is the run's top process."""
_original_call_handlers: Callable[[logging.Logger, logging.LogRecord], None] | None = None


def handler() -> logging.Handler | None:
    """The handler this process was instrumented with, or None."""
    return _handler


def start(environ: Any = None) -> logging.Handler | None:
    """Instrument this process as ``RERUN_LOGGING_RUN`` says; returns the handler (or None)."""
    environ = os.environ if environ is None else environ
    config = RunConfig.from_env(environ[CONFIG_ENV_VAR])
    if is_rerun_logging_itself():
        return None
    pid = os.getpid()
    top = config.top_pid is None or config.top_pid == pid
    if top:
        if config.top_only:
            _forget_run(environ, config)
        elif config.top_pid is None:
            environ[CONFIG_ENV_VAR] = config.claimed(pid).to_env()
    sinks = process_sinks(config.sink, top)
    if not sinks or sinks == ["off"]:
        return None
    global _top
    _top = top
    handler = install(sinks, config.application_id, config.level)
    if config.top_only:  # what the program starts sees the environment it would have seen
        from ..family import withdraw_files
        from ..spec import parse_sinks

        withdraw_files(parse_sinks(sinks))
    return handler


def is_rerun_logging_itself(argv: list[str] | None = None) -> bool:
    """Whether this interpreter runs rerun-logging's own command (the viewer that ``spawn``
    starts, a nested ``rerun-logging run``): never instrumented."""
    if argv is None:
        argv = list(getattr(sys, "orig_argv", None) or sys.argv)
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-m":
            return i + 1 < len(argv) and argv[i + 1].split(".")[0] == "rerun_logging"
        if arg.startswith("-m"):
            return arg[2:].split(".")[0] == "rerun_logging"
        if arg.startswith("-c") or not arg.startswith("-"):
            return os.path.basename(arg) == "rerun-logging"
        i += 2 if arg in ("-W", "-X", "--check-hash-based-pycs") else 1
    return False


def _forget_run(environ: Any, config: RunConfig) -> None:
    """--top-only: the program's subprocesses get the environment it would have had."""
    environ.pop(CONFIG_ENV_VAR, None)
    if config.pythonpath is None:
        environ.pop("PYTHONPATH", None)
    else:
        environ["PYTHONPATH"] = config.pythonpath
    if config.recording_id_set:
        from ..handler import RECORDING_ID_ENV_VAR, default_recording_id

        default_recording_id()  # this process keeps the run's id
        environ.pop(RECORDING_ID_ENV_VAR, None)


def install(sinks: list[str], application_id: str, level: int) -> logging.Handler:
    """Create the handler and install the hooks (once per process)."""
    global _handler
    if _handler is not None:
        return _handler
    from ..handler import RerunHandler

    new = RerunHandler(
        sinks, application_id=application_id, level=level, flush_timeout=FLUSH_TIMEOUT,
    )
    new.set_sink(sinks)  # wins over RERUN_LOGGING_SINK, which is for the app's handlers
    _unregister(new)
    _handler = new
    _hook_levels(level)
    _hook_call_handlers()
    atexit.register(_close)
    return new


def _unregister(handler: logging.Handler) -> None:
    """Out of ``logging._handlerList``: dictConfig and fileConfig close what is listed."""
    handler_list = getattr(logging, "_handlerList", None)
    if handler_list is None:
        return
    with logging._lock:  # type: ignore[attr-defined]
        handler_list[:] = [ref for ref in handler_list if ref() is not handler]


def _close() -> None:
    """At exit. A subprocess that logged nothing leaves no file (a helper, a resource
    tracker); the top process always ends its recording (an empty one is valid)."""
    if _handler is None:
        return
    if not _top and _handler.stats.emitted == 0:  # type: ignore[attr-defined]
        return
    _handler.close()


# --- levels -------------------------------------------------------------------------


def _hook_levels(level: int) -> None:
    global _level, _app_root_level
    root = logging.root
    _level = level
    _app_root_level = root.level
    set_level = logging.Logger.setLevel

    def setLevel(level: int | str) -> None:  # noqa: N802 (logging's name)
        global _app_root_level
        set_level(root, level)
        _app_root_level = root.level
        _apply_level()

    setLevel.__doc__ = set_level.__doc__
    setLevel.__wrapped__ = set_level  # type: ignore[attr-defined]
    root.setLevel = setLevel  # type: ignore[method-assign]
    _apply_level()


def _apply_level() -> None:
    """Lower the root to our level when the app's is higher (NOTSET lets everything pass)."""
    global _lowered
    if _app_root_level > _level:
        logging.Logger.setLevel(logging.root, _level)
        _lowered = True
    else:
        if logging.root.level != _app_root_level:
            logging.Logger.setLevel(logging.root, _app_root_level)
        _lowered = False


def app_level(logger: logging.Logger) -> int:
    """The effective level ``logger`` would have with the app's root level."""
    root = logging.root
    current: logging.Logger | None = logger
    while current is not None:
        if current is root:
            return _app_root_level
        if current.level:
            return current.level
        current = current.parent
    return logging.NOTSET


# --- records --------------------------------------------------------------------------


def _hook_call_handlers() -> None:
    global _original_call_handlers
    original = logging.Logger.callHandlers
    _original_call_handlers = original

    def callHandlers(self: logging.Logger, record: logging.LogRecord) -> None:  # noqa: N802
        if not _lowered or record.levelno >= app_level(self):
            original(self, record)
        ours = _handler
        if ours is not None and record.levelno >= ours.level:
            try:
                ours.handle(record)
            except Exception:  # handle() does not raise; a bug must not reach the app
                pass

    callHandlers.__doc__ = original.__doc__
    callHandlers.__wrapped__ = original  # type: ignore[attr-defined]
    logging.Logger.callHandlers = callHandlers  # type: ignore[method-assign]


def report(text: str) -> None:
    """One line on standard error, never raising."""
    try:
        sys.stderr.write(f"{PREFIX}: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


__all__ = ["SITE_DIR", "app_level", "handler", "install", "start"]
