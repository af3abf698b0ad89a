"""Recording files as the viewer's sources (``viewer/files.py``): checked, then read off the loop."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from rerun_logging.viewer.files import read_chunks, unreadable_source

TIMEOUT = 10.0


def test_a_source_that_cannot_be_read_is_named_with_why(tmp_path: Path) -> None:
    missing = tmp_path / "missing.rrd"
    assert unreadable_source(str(missing)) == f"{missing}: cannot read: No such file or directory"
    assert unreadable_source(str(tmp_path)) == f"{tmp_path}: cannot read: Is a directory"
    present = tmp_path / "run.rrd"
    present.write_bytes(b"anything")
    assert unreadable_source(str(present)) is None


def collect(path: str, chunk_size: int) -> tuple[list[bytes], set[str]]:
    """The chunks of ``path``, and the names of the threads that read them."""
    async def main() -> tuple[list[bytes], set[str]]:
        chunks = []
        async for chunk in read_chunks(path, chunk_size):
            chunks.append(chunk)
        return chunks, {t.name for t in threading.enumerate()}

    return asyncio.run(asyncio.wait_for(main(), TIMEOUT))


def test_a_file_is_read_in_chunks_of_at_most_the_size_asked(tmp_path: Path) -> None:
    data = os.urandom(100_003)
    path = tmp_path / "run.rrd"
    path.write_bytes(data)
    chunks, _ = collect(str(path), 4096)
    assert b"".join(chunks) == data
    assert all(0 < len(chunk) <= 4096 for chunk in chunks)


def test_an_empty_file_has_no_chunks(tmp_path: Path) -> None:
    path = tmp_path / "empty.rrd"
    path.write_bytes(b"")
    assert collect(str(path), 4096)[0] == []


def test_the_reading_threads_error_reaches_the_loop(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        collect(str(tmp_path / "gone.rrd"), 4096)
