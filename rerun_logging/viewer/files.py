"""Recording files and standard input as sources of the viewer: checked, then read off the loop.

:func:`unreadable_source` says before the viewer starts why a path cannot be
loaded; :func:`read_chunks` reads one in a daemon thread and hands its chunks to
the event loop, which alone feeds the store.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import AsyncIterator

from ..reader import STDIN, open_source, source_name


def unreadable_source(path: str) -> str | None:
    """Why ``path`` cannot be loaded (missing, a directory, stdin a terminal), or None."""
    if path == STDIN:
        if sys.stdin is None or sys.stdin.isatty():
            return (f"{source_name(STDIN)}: standard input is a terminal; pipe a recording "
                    "into it: python app.py | rerun-logging -")
        return None
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        return f"{path}: cannot read: {error.strerror or error}"
    return None


async def read_chunks(path: str, chunk_size: int) -> AsyncIterator[bytes]:
    """The chunks of ``path`` (or ``-``), at most ``chunk_size`` bytes each, read by a
    daemon thread and handed to the running loop.

    The thread never blocks the event loop and, being a daemon, never holds the
    process open at shutdown (a pipe may stay silent forever). At most a few
    chunks wait in between (back-pressure). Raises the thread's OSError.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | OSError] = asyncio.Queue(maxsize=4)

    def put(item: bytes | OSError) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def pump() -> None:
        try:
            with open_source(path) as stream:
                read = getattr(stream, "read1", None) or stream.read
                while True:
                    chunk = read(chunk_size)
                    put(chunk)
                    if not chunk:
                        return
        except OSError as error:
            put(error)
        except RuntimeError:  # the loop is gone: the viewer is shutting down
            pass

    threading.Thread(target=pump, name=f"read {source_name(path)}", daemon=True).start()
    while True:
        item = await queue.get()
        if isinstance(item, OSError):
            raise item
        if not item:
            return
        yield item
