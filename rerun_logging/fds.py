"""Writing to file descriptors: the one loop every raw writer uses."""

from __future__ import annotations

import os


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, however many ``os.write`` calls it takes.

    ``os.write`` may take less than it is given (a pipe, a signal, a nearly full
    disk); raises the ``OSError`` of the call that failed.
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
