"""``--save-dir``: a file swapped for a stream's file is never written (issue 11, item 8).

A stream's file is created with ``O_EXCL``; when its source goes away the file is
closed, and a reconnect reopens it by name. Whatever was put at that name in
between (a hard link to another file, a FIFO, another file) is refused with one
report line, the viewer goes on, and the frames of that stream are counted as not
saved.
"""

from __future__ import annotations

import os
from pathlib import Path

from rerun_logging.format import (
    HEADER, RecordingInfo, StreamDecoder, encode_frame, encode_records, end_message, info_message,
)
from rerun_logging.viewer.savedir import SaveDir, stream_file_name

from .test_viewer import make_info, make_record

INFO_FRAME = encode_frame(info_message(make_info()))


def frame(seq: int) -> bytes:
    return encode_frame(encode_records([make_record(seq)]))


def saved_stream(directory: Path) -> tuple[SaveDir, list[str], Path]:
    """A save dir holding one stream, written and released (its source went away)."""
    directory.mkdir(exist_ok=True)
    lines: list[str] = []
    saver = SaveDir(str(directory), lines.append)
    saver.open_stream("key", make_info(), INFO_FRAME)
    saver.append("key", frame(0))
    saver.flush()
    saver.release("key")
    return saver, lines, directory / stream_file_name(make_info())


def test_a_released_stream_reopens_its_own_file(tmp_path: Path) -> None:
    saver, lines, path = saved_stream(tmp_path)
    saver.append("key", frame(1))
    saver.end("key")
    assert lines == []
    decoder = StreamDecoder(str(path))
    decoder.feed(path.read_bytes())
    assert [m.seq for m in decoder.messages() if hasattr(m, "seq")] == [0, 1]
    decoder.close()


def test_a_hard_link_swapped_in_is_never_written(tmp_path: Path) -> None:
    saver, lines, path = saved_stream(tmp_path / "saved")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    path.unlink()
    os.link(victim, path)  # the stream's name is now another file's second link
    saver.append("key", frame(1))
    saver.flush()  # viewer goes on
    saver.append("key", frame(2))
    saver.append("key", encode_frame(end_message()))
    saver.end("key")
    assert victim.read_bytes() == b"precious\n"
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"cannot save to {path}: the file has 2 links") and "refusing" in lines[0]
    assert lines[1] == f"{path}: 3 frames ({len(frame(1)) * 2 + len(encode_frame(end_message()))} bytes) of its stream not saved"
    assert saver.files["key"].failed and saver.files["key"].unsaved_frames == 3


def test_another_file_renamed_in_is_refused(tmp_path: Path) -> None:
    saver, lines, path = saved_stream(tmp_path)
    other = tmp_path / "other.rrd"
    other.write_bytes(HEADER)
    other.replace(path)  # one link, but not the inode created
    saver.append("key", frame(1))
    saver.close_all()
    assert path.read_bytes() == HEADER
    assert "another file was put in its place" in lines[0]
    assert lines[1].endswith("1 frame (" + str(len(frame(1))) + " bytes) of its stream not saved")


def test_a_fifo_swapped_in_does_not_block_the_viewer(tmp_path: Path) -> None:
    saver, lines, path = saved_stream(tmp_path)
    path.unlink()
    os.mkfifo(path)
    saver.append("key", frame(1))
    saver.flush()  # returns: O_NONBLOCK, no reader
    assert len(lines) == 1 and lines[0].startswith(f"cannot save to {path}"), lines


def test_a_stream_whose_file_cannot_be_created_counts_what_it_did_not_save(tmp_path: Path) -> None:
    lines: list[str] = []
    saver = SaveDir(str(tmp_path / "missing"), lines.append)
    info = RecordingInfo("app", "rec", 1, "h", 1, "3.11", "0.1")
    saver.open_stream("key", info, encode_frame(info_message(info)))
    saver.append("key", frame(0))
    saver.close_all()
    assert lines[0].startswith("cannot save app[1]: ")
    assert lines[1].endswith(f"1 frame ({len(frame(0))} bytes) of its stream not saved")
