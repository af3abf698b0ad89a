"""Every reader on files a hostile or broken writer could make (issue 11, item 6).

``print``, ``print --json``, ``verify`` and the viewer loading the file are run as
real processes on: extras nested 1,000 levels deep (msgpack reads up to 1,024, so a
peer can send it; ``json.dumps`` would hit the recursion limit), an INFO whose
``app`` is bytes (INFO fields are type-checked by the decoder), and an empty file.
None may crash: each says what it found in one line, with the documented status.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rerun_logging import render
from rerun_logging.format import (
    End, Record, RecordingInfo, encode_frame, encode_records, encode_stream, end_message, packb,
    stream_header,
)

from .conftest import ViewerProcess
from .test_cli import run_cli

DEPTH = 1000
INFO = RecordingInfo("hostile", "rec-h", 1_700_000_000_000_000_000, "h", 77, "3.11", "0.1")
RECORD = Record(seq=0, time_ns=INFO.start_time_ns, level=20, level_name="INFO",
                entity_path="app", logger="app", message="deep one", extras={"deep": "PLACEHOLDER"})


def deeply_nested_file(path: Path) -> Path:
    """A clean recording whose one record's extra ``deep`` is a list nested DEPTH deep.

    msgpack's packer refuses that depth, so the packed placeholder is swapped for
    DEPTH one-element arrays around a nil.
    """
    body = encode_records([RECORD]).replace(packb("PLACEHOLDER"), b"\x91" * DEPTH + b"\xc0")
    path.write_bytes(stream_header(INFO) + encode_frame(body) + encode_frame(end_message()))
    return path


def bytes_app_file(path: Path) -> Path:
    """A recording whose INFO has bytes for ``app`` (the encoder packs what it is given)."""
    bad = RecordingInfo(b"hostile", "rec-b", 1, "h", 78, "3.11", "0.1")  # type: ignore[arg-type]
    path.write_bytes(encode_stream(bad, [RECORD, End()]))
    return path


def depth(value: object) -> int:
    levels = 0
    while isinstance(value, list):
        value, levels = value[0], levels + 1
    return levels


def test_json_value_caps_the_depth_and_marks_the_text() -> None:
    nested: object = None
    for _ in range(DEPTH * 3):  # deeper than repr can go: the text shows the first levels
        nested = [nested]
    value = render.json_value(nested)
    assert depth(value) == render.MAX_JSON_DEPTH
    inner = value
    for _ in range(render.MAX_JSON_DEPTH):
        inner = inner[0]  # type: ignore[index]
    assert isinstance(inner, str) and inner.startswith(render.TOO_DEEP_MARK.format(render.MAX_JSON_DEPTH))
    assert inner.endswith("[[[...]]]]]]]]]")
    json.dumps(value)  # never RecursionError
    shallow = [[{"a": b"\x00"}]]
    assert render.json_value(shallow) == [[{"a": "AA=="}]]


def test_print_and_verify_read_deeply_nested_extras(tmp_path: Path) -> None:
    path = deeply_nested_file(tmp_path / "deep.rrd")
    text = run_cli("print", str(path))
    assert text.returncode == 0, text.stderr
    assert "deep one deep=" in text.stdout
    as_json = run_cli("print", "--json", str(path))
    assert as_json.returncode == 0 and as_json.stderr == "", as_json.stderr
    (line,) = as_json.stdout.splitlines()
    fields = json.loads(line)
    assert fields["message"] == "deep one" and depth(fields["deep"]) == render.MAX_JSON_DEPTH
    checked = run_cli("verify", str(path))
    assert checked.returncode == 0 and "records: 1" in checked.stdout, checked.stdout


@pytest.mark.parametrize("args", [["print"], ["print", "--json"], ["verify"]])
def test_every_reader_refuses_an_info_with_a_bytes_app_in_one_line(tmp_path: Path, args: list[str]) -> None:
    path = bytes_app_file(tmp_path / "bytes-app.rrd")
    result = run_cli(*args, str(path))
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    said = result.stderr + result.stdout
    assert "INFO field 'app' (application_id) is a bytes, not a str" in said, said
    if args == ["verify"]:
        assert "records: 0" in result.stdout and "corrupt at byte 10" in result.stdout
    else:
        assert result.stdout == "" and len(result.stderr.splitlines()) == 1


def test_the_viewer_loads_deep_extras_and_refuses_a_bytes_app(tmp_path: Path) -> None:
    deep = deeply_nested_file(tmp_path / "deep.rrd")
    bad = bytes_app_file(tmp_path / "bytes-app.rrd")
    empty = tmp_path / "empty.rrd"
    empty.write_bytes(b"")
    viewer = ViewerProcess("--no-browser", str(deep), str(bad), str(empty))
    try:
        lines = {path: until_line(viewer, f"{path}: ") for path in (deep, bad, empty)}  # any order
    finally:
        assert viewer.stop() == 0
    assert "loaded hostile[77]" in lines[deep] and "ended cleanly" in lines[deep], lines
    assert "INFO field 'app' (application_id) is a bytes, not a str" in lines[bad], lines
    assert lines[empty].strip().endswith(f"{empty}: empty, nothing to load"), lines
    assert "Traceback" not in "".join(viewer.lines)


def until_line(viewer: ViewerProcess, text: str) -> str:
    """The first line of the viewer's (with ``text``), read on for it when not seen yet."""
    seen = [line for line in viewer.lines if text in line]
    return seen[0] if seen else viewer.wait_for(text)


def test_print_and_verify_of_an_empty_file_say_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.rrd"
    empty.write_bytes(b"")
    for args in (["print"], ["print", "--json"], ["verify"]):
        result = run_cli(*args, str(empty))
        assert result.returncode == 1 and len(result.stderr.splitlines()) == 1, result
        assert str(empty) in result.stderr and "Traceback" not in result.stderr
