"""The C half of the hot paths (``rerun_logging._speedups``), loaded once.

An optional extension, built where a compiler is (``setup.py``, ``optional=True``,
as websockets' speedups): :data:`SPEEDUPS` is the module, or None where it was not
built or ``RERUN_LOGGING_NO_SPEEDUPS`` is set. Each caller (``capture``, the rerun
mapping) then runs the same steps in Python, which the tests check give the same.
"""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("RERUN_LOGGING_NO_SPEEDUPS"):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    return _speedups


SPEEDUPS = _load()
