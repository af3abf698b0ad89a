"""rerun-logging's bootstrap, imported by ``site`` at every interpreter's start-up.

Its directory is on ``PYTHONPATH`` only under ``rerun-logging run``. With
``RERUN_LOGGING_RUN`` unset it imports nothing (``os`` and ``sys`` are loaded
already); set, it instruments the process (:mod:`rerun_logging.instrument.process`),
and an error is one line on stderr, never raised into the program. Either way the
next ``sitecustomize`` on ``sys.path`` after this directory, if any, is executed
in its place (``import sitecustomize`` then gives that one), and what it raises
reaches ``site`` as it would without us.
"""

import os as _os
import sys as _sys


def _rerun_logging_start():
    if not _os.environ.get("RERUN_LOGGING_RUN"):
        return
    try:
        from rerun_logging.instrument.process import start

        start()
    except Exception as error:  # noqa: BLE001 (never into the program)
        try:
            _sys.stderr.write(
                "rerun-logging run: not instrumented (%s): %s: %s\n"
                % (_sys.executable, type(error).__name__, error)
            )
        except Exception:  # noqa: BLE001
            pass


def _rerun_logging_next():
    """The spec of the next ``sitecustomize`` on ``sys.path`` after this directory."""
    here = _os.path.normcase(_os.path.dirname(_os.path.abspath(__file__)))
    after, seen = [], False
    for entry in _sys.path:
        if _os.path.normcase(_os.path.abspath(entry or _os.curdir)) == here:
            after, seen = [], True
        elif seen:
            after.append(entry)
    if not seen:
        after = [e for e in _sys.path if _os.path.normcase(_os.path.abspath(e or _os.curdir)) != here]
    try:
        from importlib.machinery import PathFinder

        return PathFinder.find_spec("sitecustomize", after)
    except Exception:  # noqa: BLE001
        return None


def _rerun_logging_chain():
    spec = _rerun_logging_next()
    if spec is None or spec.loader is None:
        return
    import importlib.util

    module = importlib.util.module_from_spec(spec)
    _sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_rerun_logging_start()
_rerun_logging_chain()
