"""Rerun's own SDK as a destination, for the ``rerun`` sink.

The sink (:mod:`rerun_logging.sinks.rerun`) is a shell around one pure part:

- :mod:`.mapping`: our records (decoded from the handler's frames) as Rerun columns,
  one :class:`~.mapping.EntityColumns` per entity path: ``TextLog`` rows (text and
  level) on a ``log_time`` timestamp timeline and a ``log_seq`` sequence timeline,
  with the record's fields and extras as components beside them. It builds Arrow
  arrays and Rerun descriptors and touches no recording: the sink hands each
  :class:`~.mapping.EntityColumns` to ``rr.send_columns``. The only module of ours
  that imports ``rerun`` (and ``pyarrow``, ``numpy``), with the sink itself.

``import rerun_logging`` never imports this package's :mod:`.mapping`, nor ``rerun``:
a handler configured with a ``rerun`` sink does, on the thread that configures it.
Without the extra installed that fails with :class:`RerunUnavailable`, a
:class:`~rerun_logging.spec.SinkSpecError` (so also a ``ValueError``) and an
``ImportError``, whose one line names the extra to install.
"""

from __future__ import annotations

import importlib

from ..spec import MissingExtra

EXTRA = "rerun-logging[rerun]"
"""What to install for the ``rerun`` sink."""


class RerunUnavailable(MissingExtra):
    """The ``rerun`` sink was asked for, and ``rerun-sdk`` cannot be imported."""

    sink = "rerun"
    extra = EXTRA


def require() -> None:
    """Import what the ``rerun`` sink needs, now; :class:`RerunUnavailable` if it cannot.

    Called where the sink is configured (parsing a ``rerun`` spec), never on a flusher.
    """
    importlib.import_module(f"{__name__}.mapping")  # it raises RerunUnavailable when it cannot
