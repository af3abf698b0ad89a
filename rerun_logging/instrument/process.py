"""What an instrumented process does: one RerunHandler, fed from ``Logger.callHandlers``.

:func:`start` is called by our ``sitecustomize`` when ``RERUN_LOGGING_RUN`` is set,
before the program's own code runs. See the package docstring for why the handler
is not on ``root.handlers``. No level of the app's is changed: ``root.level``, every
logger's level, ``isEnabledFor``, ``Logger._cache`` and the handler lists read what
they would read without us. The hooks, all installed once, as class attributes:

- ``Logger.callHandlers`` is wrapped: every record a logger handles goes to our
  handler (at its level), whatever the ``propagate`` flags, and to the app's handlers
  through the original ``callHandlers``, except a record made for our handler only.
- ``Logger.debug``, ``info``, ``warning``, ``error``, ``critical`` and ``log`` are
  replaced by the stdlib's code plus one branch: when the logger is not enabled for
  the level but our handler's level is (INFO by default, where an unconfigured app's
  root is at WARNING), ``logging.disable`` allows it and the logger is not
  ``disabled``, the record is still made through ``self._log`` (so the logger's
  filters, ``makeRecord``, ``extra``, ``exc_info`` and ``stack_info`` work as usual)
  inside a per-thread flag; ``callHandlers`` gives such a record (one its logger is
  not enabled for) to our handler only, never to the app's handlers nor to the
  last-resort handler. ``warn``, ``fatal`` and ``exception`` call these (3.10 to
  3.13), so they are left as they are. ``LoggerAdapter.log``, which checks the level
  itself, also passes on what our handler takes.
- ``logging._is_internal_frame`` (3.11 and later) also names the frames of those
  methods, so ``findCaller`` skips them as it skips the stdlib's: the record has the
  app's file, line and function, ``stacklevel`` counts as without us (see "the
  caller's file and line" below for 3.10).
- ``atexit``: close the handler (flush within ``flush_timeout``). Registered after
  ``logging`` was imported, so it runs before ``logging.shutdown``; a forked child
  inherits it, and ``multiprocessing`` children are closed by the handler's own
  fork hooks.

Known limits: a ``Logger`` subclass that overrides ``callHandlers`` bypasses the
hook (its records do not reach our handler); one that overrides a level method
without calling the stdlib's (or code that bound ``Logger.info`` before the program
started) records nothing below the app's levels; the app's logger filters,
``makeRecord``, LogRecord factory and ``LoggerAdapter.process`` also run for the
records made for our handler only, and making them costs what making any record
does; on Python 3.10 a ``Logger`` subclass that overrides ``_log`` gets our method's
line as the caller of its records; a process killed by a signal
(``multiprocessing.Pool.terminate``, which leaving ``with Pool()`` does) loses what
it logged in its last ``flush_interval`` (``pool.close()`` and ``pool.join()`` keep
it), as with any RerunHandler; a process that re-handles records of other processes
through ``Logger.handle`` (the logging cookbook's multiprocessing listener) records
them again, beside the worker's own copy.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
import threading
from typing import Any, Callable

from . import CONFIG_ENV_VAR, FLUSH_TIMEOUT, SITE_DIR, RunConfig, process_sinks

PREFIX = "rerun-logging run"

_handler: logging.Handler | None = None
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
    if not sinks or _is_off(sinks):
        return None
    global _top
    _top = top
    handler = install(sinks, config.application_id, config.level)
    if config.top_only:  # what the program starts sees the environment it would have seen
        from ..family import withdraw_files
        from ..sinks import saved_files
        from ..spec import parse_sinks

        withdraw_files(saved_files(parse_sinks(sinks)))
    return handler


def _is_off(sinks: list[str]) -> bool:
    from ..spec import OFF, parse_sinks

    return parse_sinks(sinks) == (OFF,)


def is_rerun_logging_itself(argv: list[str] | None = None) -> bool:
    """Whether this interpreter runs rerun-logging's own command (the viewer that ``spawn``
    starts, a nested ``rerun-logging run``): never instrumented."""
    if argv is None:
        argv = list(getattr(sys, "orig_argv", None) or sys.argv)
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-" or not arg.startswith("-"):  # the script: the console script is ours
            return os.path.basename(arg) == "rerun-logging"
        if arg.startswith("--"):
            i += 2 if arg == "--check-hash-based-pycs" else 1
            continue
        # A group of short flags (-uBm NAME): -c, -m, -W and -X take the rest of the
        # group or the next word; the others take nothing.
        for j, flag in enumerate(arg[1:], 2):
            if flag in "cmWX":
                value = arg[j:] or (argv[i + 1] if i + 1 < len(argv) else "")
                if flag == "m":
                    return value.split(".")[0] == "rerun_logging"
                if flag == "c":
                    return False
                i += 1 if arg[j:] else 2
                break
        else:
            i += 1
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
    _hook_logger_methods()
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


# --- records below the app's levels ---------------------------------------------------

_LEVEL_METHODS = {
    "debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
    "error": logging.ERROR, "critical": logging.CRITICAL,
}
_DELEGATING = ("warn", "fatal", "exception")
"""Logger methods that call ``self.warning`` / ``self.critical`` / ``self.error``
(3.10 to 3.13): left as they are, unless one is an alias of a wrapped method."""


class _OursOnly(threading.local):
    """Per thread: ``depth`` > 0 inside a call making a record that the app's levels drop;
    ``callHandlers`` then gives a record its logger is not enabled for to our handler only."""

    depth = 0

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(self, *exc_info: object) -> None:
        self.depth -= 1


_ours_only = _OursOnly()


def _for_us_only(logger: logging.Logger, level: int) -> bool:
    """Whether a record at ``level``, which ``logger`` is not enabled for, is still made
    for our handler: at its level, not below ``logging.disable``, the logger not disabled."""
    ours = _handler
    return (ours is not None and level >= ours.level and logger.manager.disable < level
            and not logger.disabled)


def _level_method(level: int, original: Callable[..., None]) -> Callable[..., None]:
    """``Logger.info`` and its kin: the stdlib's, plus the record for our handler only
    when the logger is not enabled for ``level``."""

    def method(self: logging.Logger, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            self._log(level, msg, args, **kwargs)
        elif _for_us_only(self, level):
            with _ours_only:
                self._log(level, msg, args, **kwargs)

    return functools.update_wrapper(method, original)


def _log_method(original: Callable[..., None]) -> Callable[..., None]:
    """``Logger.log``: as :func:`_level_method`, with the stdlib's check of ``level``."""

    def log(self: logging.Logger, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if not isinstance(level, int):
            if logging.raiseExceptions:
                raise TypeError("level must be an integer")
            return
        if self.isEnabledFor(level):
            self._log(level, msg, args, **kwargs)
        elif _for_us_only(self, level):
            with _ours_only:
                self._log(level, msg, args, **kwargs)

    return functools.update_wrapper(log, original)


def _adapter_log_method(original: Callable[..., None]) -> Callable[..., None]:
    """``LoggerAdapter.log``, which checks the level before it calls ``logger.log``: it
    also passes on what only our handler takes (``logger.log`` then routes it)."""

    def log(self: logging.LoggerAdapter[Any], level: int, msg: object, *args: object,
            **kwargs: Any) -> None:
        if self.isEnabledFor(level) or _adapter_for_us_only(self, level):
            msg, kwargs = self.process(msg, kwargs)
            self.logger.log(level, msg, *args, **_one_frame_deeper(self, kwargs))

    return functools.update_wrapper(log, original)


def _logger_of(adapter: logging.LoggerAdapter[Any]) -> object:
    """The logger under ``adapter`` and the adapters it wraps (a Logger, or what the app gave)."""
    logger: object = adapter
    while isinstance(logger, logging.LoggerAdapter):
        logger = logger.logger
    return logger


def _adapter_for_us_only(adapter: logging.LoggerAdapter[Any], level: object) -> bool:
    logger = _logger_of(adapter)
    return (isinstance(level, int) and isinstance(logger, logging.Logger)
            and _for_us_only(logger, level))


# --- the caller's file and line ---------------------------------------------------------
#
# From 3.11 on, findCaller walks up from _log and skips the frames that
# logging._is_internal_frame names (the logging module's own); stacklevel counts the
# others. Our wrappers are named too (:func:`_hook_caller_lookup`), so they are
# skipped exactly as the stdlib methods they replace: any stacklevel, LoggerAdapter,
# a Logger subclass's own _log, all behave as without us.
#
# Up to 3.10, findCaller starts from the frame that called _log (our method stands
# where the stdlib's stood) and steps stacklevel - 1 frames back, whatever their file,
# before it skips the logging module's: only LoggerAdapter.log, one frame more than
# the stdlib's path, passes stacklevel + 1 (:func:`_one_frame_deeper`).

_INTERNAL_FRAMES_HOOK = hasattr(logging, "_is_internal_frame")
_STDLIB_LOG = logging.Logger._log
_CO_VARKEYWORDS = 0x08  # inspect.CO_VARKEYWORDS, without importing inspect


def _hook_caller_lookup(wrappers: list[Callable[..., Any]]) -> None:
    """3.11 and later: ``findCaller`` skips the frames of ``wrappers`` as logging's own."""
    if not _INTERNAL_FRAMES_HOOK:
        return
    codes = frozenset(function.__code__ for function in wrappers)
    is_logging_frame = logging._is_internal_frame  # type: ignore[attr-defined]

    def _is_internal_frame(frame: Any) -> bool:
        return frame.f_code in codes or is_logging_frame(frame)

    functools.update_wrapper(_is_internal_frame, is_logging_frame)
    logging._is_internal_frame = _is_internal_frame  # type: ignore[attr-defined]


def _one_frame_deeper(adapter: logging.LoggerAdapter[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """3.10: ``kwargs`` with ``stacklevel`` raised by one, past our ``LoggerAdapter.log``;
    unchanged when the logger under ``adapter`` is no Logger, when ``stacklevel`` is no
    int (the stdlib's own error, or behaviour, for it), and when the logger's ``_log``
    (a subclass's) has no ``stacklevel`` parameter and was given none."""
    logger = _logger_of(adapter)
    if _INTERNAL_FRAMES_HOOK or not isinstance(logger, logging.Logger):
        return kwargs
    stacklevel = kwargs.get("stacklevel", 1)
    if not isinstance(stacklevel, int):
        return kwargs
    if "stacklevel" not in kwargs and not _takes_stacklevel(type(logger)._log):
        return kwargs
    return {**kwargs, "stacklevel": stacklevel + 1}


def _takes_stacklevel(log: object) -> bool:
    """Whether a ``_log`` function accepts ``stacklevel`` (the stdlib's does, since 3.8)."""
    if log is _STDLIB_LOG:
        return True
    code = getattr(log, "__code__", None)
    if code is None:
        return False
    if code.co_flags & _CO_VARKEYWORDS:
        return True
    return "stacklevel" in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]


# --- installing ---------------------------------------------------------------------------


def _hook_logger_methods() -> None:
    """Replace the level methods of ``logging.Logger`` and ``LoggerAdapter.log`` (class
    attributes): a record below the app's levels is still made, for our handler only."""
    logger_class = logging.Logger
    wrapped: dict[Any, Callable[..., None]] = {}
    for name, level in _LEVEL_METHODS.items():
        original = getattr(logger_class, name)
        wrapped[original] = _level_method(level, original)
        setattr(logger_class, name, wrapped[original])
    original = logger_class.log
    wrapped[original] = _log_method(original)
    logger_class.log = wrapped[original]  # type: ignore[method-assign]
    for name in _DELEGATING:  # an alias (``fatal = critical``) would bypass the wrapper
        current = getattr(logger_class, name, None)
        if current in wrapped:
            setattr(logger_class, name, wrapped[current])
    adapter_log = _adapter_log_method(logging.LoggerAdapter.log)
    logging.LoggerAdapter.log = adapter_log  # type: ignore[method-assign]
    _hook_caller_lookup([*wrapped.values(), adapter_log])


def _hook_call_handlers() -> None:
    global _original_call_handlers
    original = logging.Logger.callHandlers
    _original_call_handlers = original

    def callHandlers(self: logging.Logger, record: logging.LogRecord) -> None:  # noqa: N802
        if not (_ours_only.depth and not self.isEnabledFor(record.levelno)):
            original(self, record)
        ours = _handler
        if ours is not None and record.levelno >= ours.level:
            try:
                ours.handle(record)
            except Exception:  # handle() does not raise; a bug must not reach the app
                pass

    functools.update_wrapper(callHandlers, original)
    logging.Logger.callHandlers = callHandlers  # type: ignore[method-assign]


def report(text: str) -> None:
    """One line on standard error, never raising."""
    try:
        sys.stderr.write(f"{PREFIX}: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):
        pass


__all__ = ["SITE_DIR", "handler", "install", "start"]
