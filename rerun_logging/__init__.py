"""rerun-logging: stream Python's standard ``logging`` into a live viewer.

``RerunHandler`` is the whole API an app needs; the recording format and its
decoder live in :mod:`rerun_logging.format`, the reader in
:mod:`rerun_logging.reader`. The viewer and the network sinks are imported only
where they are used, so ``import rerun_logging`` stays light.
"""

from __future__ import annotations

from typing import Any

from ._version import __version__
from .format import (
    Dropped,
    End,
    ExceptionInfo,
    Record,
    RecordingError,
    RecordingInfo,
    StreamDecoder,
)
from .handler import HandlerStats, RerunHandler
from .sinks import SinkStats
from .spec import ENV_VAR, SinkSpec, SinkSpecError, parse_sinks

__all__ = [
    "ENV_VAR",
    "Dropped",
    "End",
    "ExceptionInfo",
    "HandlerStats",
    "Record",
    "RecordingError",
    "RecordingInfo",
    "RerunHandler",
    "SinkSpec",
    "SinkSpecError",
    "SinkStats",
    "StreamDecoder",
    "__version__",
    "parse_sinks",
    "script_add_args",
    "script_setup",
    "script_teardown",
]

_SCRIPT_HELPERS = ("script_add_args", "script_setup", "script_teardown")


def __getattr__(name: str) -> Any:
    """The flags helpers, imported on first use: they need argparse, which an app
    that only logs should not pay for at start-up."""
    if name in _SCRIPT_HELPERS:
        from . import script

        return getattr(script, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
