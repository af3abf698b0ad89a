"""The ``rerun-logging`` command, run as real processes on real files and pipes.

Also the pure rendering it prints with (``rerun_logging.render``), checked against
python-json-logger's own ``JsonFormatter`` for the same records.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pythonjsonlogger.json import JsonFormatter

import rerun_logging
from rerun_logging import format, render
from rerun_logging.format import (
    Dropped,
    End,
    ExceptionInfo,
    Record,
    RecordingInfo,
    encode_frame,
    encode_records,
    encode_stream,
    end_message,
    entity_path_for,
    stream_header,
)
from rerun_logging.handler import RerunHandler

from .conftest import Lines, child_env

TIMEOUT = 20
INFO = RecordingInfo(
    application_id="cli-test",
    recording_id="rec-cli",
    start_time_ns=1_700_000_000_000_000_000,
    host="testhost",
    pid=4242,
    python_version="3.11.0",
    package_version="0.1.0",
)
LINE = re.compile(
    r"(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (?P<level>\S+) +"
    r"(?P<app>[^\[]+)\[(?P<pid>\d+)\] (?P<logger>\S+): (?P<rest>.*)"
)


# --- helpers ----------------------------------------------------------------------------


cli_env = child_env


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """``python -m rerun_logging ARGS``, its output decoded (UTF-8, strictly)."""
    result = subprocess.run(
        [sys.executable, "-m", "rerun_logging", *args], input=stdin, capture_output=True,
        env=cli_env(), timeout=TIMEOUT,
    )
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
    )


def make_record(seq: int, logger: str = "app", level: int = logging.INFO, **fields: Any) -> Record:
    """A record as the format stores it, numbered ``seq``."""
    fields.setdefault("message", f"message {seq}")
    return Record(
        seq=seq, time_ns=INFO.start_time_ns + seq * 1_000_000, level=level,
        level_name=logging.getLevelName(level), entity_path=entity_path_for(logger),
        logger=logger, process=INFO.pid, **fields,
    )


def write_stream(path: Path, messages: list[Any]) -> Path:
    path.write_bytes(encode_stream(INFO, messages))
    return path


def record_lines(text: str) -> list[re.Match[str]]:
    """The record lines of text output (not tracebacks, stacks or drop marks)."""
    return [m for m in map(LINE.fullmatch, text.splitlines()) if m]


def stop(*procs: subprocess.Popen[Any]) -> None:
    """Kill what is still running (a failed test must not leave processes behind)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)


@pytest.fixture
def app_recording(tmp_path: Path, logger: logging.Logger) -> Path:
    """A recording made by a real RerunHandler: extras, an exception, a stack."""
    path = tmp_path / "app.rrd"
    handler = RerunHandler(f"save:{path}", application_id="cli-app")
    logger.addHandler(handler)
    logger.info("hello %s", "world", extra={"user": "alice", "n": 3, "note": "two words\nline"})
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("division failed")
    logger.warning("where am I", stack_info=True)
    handler.close()
    return path


# --- print: text ------------------------------------------------------------------------


def test_print_text(app_recording: Path, logger: logging.Logger) -> None:
    result = run_cli("print", "--no-color", str(app_recording))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = record_lines(result.stdout)
    assert [(m["level"], m["app"], m["pid"], m["logger"]) for m in lines] == [
        ("INFO", "cli-app", str(os.getpid()), logger.name),
        ("ERROR", "cli-app", str(os.getpid()), logger.name),
        ("WARNING", "cli-app", str(os.getpid()), logger.name),
    ]
    assert lines[0]["rest"] == "hello world user=alice n=3 note='two words\\nline'"
    assert result.stdout.splitlines()[0].split(" ")[2:4] == ["INFO", ""]  # padded level
    text = result.stdout
    assert "\n    Traceback (most recent call last):\n" in text
    assert "\n    ZeroDivisionError: division by zero\n" in text
    assert "\n    Stack (most recent call last):\n" in text
    assert "\x1b[" not in text


def test_print_text_time_is_local_with_milliseconds(tmp_path: Path) -> None:
    record = make_record(0)
    path = write_stream(tmp_path / "t.rrd", [record, End()])
    (line,) = record_lines(run_cli("print", str(path)).stdout)
    seconds, nanos = divmod(record.time_ns, 10**9)
    expected = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) + f".{nanos // 10**6:03d}"
    assert line["time"] == expected


def test_print_color_forced_and_off_in_a_pipe(tmp_path: Path) -> None:
    levels = [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
    path = write_stream(tmp_path / "c.rrd", [make_record(i, level=lv) for i, lv in enumerate(levels)])
    colored = run_cli("print", "--color", str(path)).stdout.splitlines()
    codes = ["\x1b[2m", "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[1;31m"]
    for line, code, level in zip(colored, codes, levels):
        assert f"{code}{logging.getLevelName(level)}" in line and "\x1b[0m" in line
    assert "\x1b" not in run_cli("print", str(path)).stdout


def test_print_lone_surrogates_do_not_crash(tmp_path: Path) -> None:
    record = make_record(0, message="bad \udc80 byte", extras={"raw": "x\udcff"})
    path = write_stream(tmp_path / "s.rrd", [record, End()])
    text = run_cli("print", str(path))
    assert text.returncode == 0, text.stderr
    assert "bad \\udc80 byte raw='x\\udcff'" in text.stdout
    as_json = run_cli("print", "--json", str(path))
    assert as_json.returncode == 0, as_json.stderr
    assert '"message": "bad \\udc80 byte"' in as_json.stdout
    assert json.loads(as_json.stdout)["raw"] == "x\udcff"


# --- print: JSON ------------------------------------------------------------------------


def test_print_json(app_recording: Path, logger: logging.Logger) -> None:
    result = run_cli("print", "--json", str(app_recording))
    assert result.returncode == 0, result.stderr
    hello, failed, where = map(json.loads, result.stdout.splitlines())
    assert hello["message"] == "hello world" and hello["name"] == logger.name
    assert (hello["levelname"], hello["levelno"]) == ("INFO", 20)
    assert (hello["user"], hello["n"], hello["note"]) == ("alice", 3, "two words\nline")
    assert hello["application_id"] == "cli-app" and hello["process"] == os.getpid()
    assert hello["entity_path"] == logger.name.replace(".", "/")
    assert [hello["seq"], failed["seq"], where["seq"]] == [0, 1, 2]
    assert abs(hello["created"] - time.time()) < 60
    assert "exc_info" not in hello and "stack_info" not in hello
    assert failed["exc_info"].startswith("Traceback (most recent call last):")
    assert failed["exc_info"].endswith("ZeroDivisionError: division by zero")
    assert where["stack_info"].startswith("Stack (most recent call last):")


def test_json_agrees_with_python_json_logger(tmp_path: Path, logger: logging.Logger) -> None:
    """The same LogRecords through JsonFormatter and through a recording + print --json."""
    path = tmp_path / "agree.rrd"
    formatted = io.StringIO()
    plain = logging.StreamHandler(formatted)
    standard = ["name", "levelname", "levelno", "created", "pathname", "lineno", "funcName",
                "thread", "threadName", "process", "processName", "message"]
    plain.setFormatter(JsonFormatter(standard))
    logger.addHandler(plain)
    handler = RerunHandler(f"save:{path}", application_id="agree")
    logger.addHandler(handler)
    extras = {
        "when": datetime(2026, 11, 25, 9, 12, 1, 123456, tzinfo=timezone.utc),
        "day": datetime(2026, 11, 25).date(),
        "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "amount": Decimal("12.50"),
        "blob": b"\x00\xff\xfe binary",
        "tags": {"red"},
        "nested": {1: [b"\x01", (2, 3)], None: "none", 2.5: True},
        "count": 7,
        "ratio": 0.25,
        "missing": None,
        "_private": "left out",
    }
    logger.info("with extras", extra=extras)
    try:
        raise KeyError("k")
    except KeyError:
        logger.error("failed %d", 1, exc_info=True, stack_info=True, extra={"attempt": 2})
    logger.info({"event": "dict message", "size": 3})
    handler.close()
    expected = [json.loads(line) for line in formatted.getvalue().splitlines()]
    result = run_cli("print", "--json", str(path))
    assert result.returncode == 0, result.stderr
    ours = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(ours) == len(expected) == 3
    for theirs, mine in zip(expected, ours):
        assert mine.pop("created") == pytest.approx(theirs.pop("created"), abs=1e-6)
        assert theirs.items() <= mine.items(), {k: (v, mine.get(k)) for k, v in theirs.items() if mine.get(k) != v}
        assert set(mine) - set(theirs) <= {"seq", "entity_path", "application_id", "recording_id"}
    assert "_private" not in ours[0] and ours[0]["blob"] == "AP_-IGJpbmFyeQ=="
    assert ours[1]["attempt"] == 2 and "exc_info" in ours[1] and "stack_info" in ours[1]


# --- print: filters, drops, sources -----------------------------------------------------


@pytest.fixture
def mixed_recording(tmp_path: Path) -> Path:
    """Records of loggers app, app.db, application and root, at every level."""
    specs = [
        ("app", logging.DEBUG), ("app", logging.WARNING), ("app.db", logging.INFO),
        ("app.db", logging.ERROR), ("application", logging.CRITICAL), ("root", logging.WARNING),
    ]
    records = [make_record(i, name, level) for i, (name, level) in enumerate(specs)]
    return write_stream(tmp_path / "mixed.rrd", [*records, End()])


def printed(*args: str) -> list[tuple[str, str]]:
    result = run_cli("print", *args)
    assert result.returncode == 0, result.stderr
    return [(m["logger"], m["level"]) for m in record_lines(result.stdout)]


def test_level_filter(mixed_recording: Path) -> None:
    path = str(mixed_recording)
    at_warning = [("app", "WARNING"), ("app.db", "ERROR"), ("application", "CRITICAL"), ("root", "WARNING")]
    assert printed("--level", "WARNING", path) == at_warning
    assert printed("--level", "warn", path) == at_warning
    assert printed("--level", "40", path) == [("app.db", "ERROR"), ("application", "CRITICAL")]
    assert len(printed(path)) == 6
    bad = run_cli("print", "--level", "loud", path)
    assert bad.returncode == 2 and "loud" in bad.stderr


def test_logger_filter(mixed_recording: Path) -> None:
    path = str(mixed_recording)
    assert printed("--logger", "app", path) == [
        ("app", "DEBUG"), ("app", "WARNING"), ("app.db", "INFO"), ("app.db", "ERROR"),
    ]
    assert printed("--logger", "app.db", "--level", "ERROR", path) == [("app.db", "ERROR")]
    assert printed("--logger", "application", "--logger", "root", path)[-1] == ("root", "WARNING")
    assert printed("--logger", "ap", path) == []


def test_dropped_is_visible(tmp_path: Path) -> None:
    path = write_stream(
        tmp_path / "d.rrd", [make_record(0), Dropped(12, "queue full"), make_record(1), End()]
    )
    text = run_cli("print", "--level", "ERROR", str(path))
    assert text.stdout == "-- 12 records dropped: queue full --\n"
    as_json = run_cli("print", "--json", str(path)).stdout.splitlines()
    assert json.loads(as_json[1]) == {"dropped": 12, "reason": "queue full"}


def test_print_stdin(tmp_path: Path) -> None:
    data = encode_stream(INFO, [make_record(0, message="from stdin"), End()])
    result = run_cli("print", "-", stdin=data)
    assert result.returncode == 0, result.stderr
    assert [m["rest"] for m in record_lines(result.stdout)] == ["from stdin"]


def test_pipeline_from_an_app_on_stdout(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(
        """
        import logging
        from rerun_logging import RerunHandler

        logging.basicConfig(level=logging.INFO, handlers=[RerunHandler("stdout", application_id="piped")])
        log = logging.getLogger("pipeline.app")
        log.info("hello from %s", "app", extra={"k": 1})
        try:
            {}["missing"]
        except KeyError:
            log.exception("lookup failed")
        """
    ))
    env = cli_env()
    producer = subprocess.Popen([sys.executable, str(app)], stdout=subprocess.PIPE, env=env)
    consumer = subprocess.Popen(
        [sys.executable, "-m", "rerun_logging", "print", "-"], stdin=producer.stdout,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    assert producer.stdout is not None
    producer.stdout.close()
    try:
        out, err = consumer.communicate(timeout=TIMEOUT)
        assert producer.wait(timeout=TIMEOUT) == 0
    finally:
        stop(producer, consumer)
    assert consumer.returncode == 0, err
    lines = record_lines(out.decode())
    assert [(m["app"], m["logger"], m["rest"]) for m in lines] == [
        ("piped", "pipeline.app", "hello from app k=1"),
        ("piped", "pipeline.app", "lookup failed"),
    ]
    assert "    KeyError: 'missing'" in out.decode()


# --- print --follow ---------------------------------------------------------------------


WRITER = textwrap.dedent(
    """
    import logging, sys
    from rerun_logging import RerunHandler

    handler = RerunHandler("save:" + sys.argv[1], application_id="writer", flush_interval=0.01)
    log = logging.getLogger("follow.writer")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    log.info("first line")
    handler.flush()
    sys.stdin.readline()
    log.info("second line")
    handler.close()
    """
)


def test_follow_a_file_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "live.rrd"
    path.touch()
    env = cli_env()
    follower = subprocess.Popen(
        [sys.executable, "-m", "rerun_logging", "print", "--follow", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE, text=True, env=env
    )
    try:
        assert follower.stdout is not None and writer.stdin is not None
        output = Lines(follower.stdout)
        assert "writer[" in output.first("first line")
        writer.stdin.write("go on\n")
        writer.stdin.flush()
        output.first("second line")
        assert follower.wait(timeout=TIMEOUT) == 0  # ends by itself at END
        assert writer.wait(timeout=TIMEOUT) == 0
    finally:
        stop(follower, writer)


def test_follow_buffers_a_frame_written_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "pieces.rrd"
    path.write_bytes(stream_header(INFO) + encode_frame(encode_records([make_record(0)])))
    follower = subprocess.Popen(
        [sys.executable, "-m", "rerun_logging", "print", "-f", "--json", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
    )
    try:
        assert follower.stdout is not None
        output = Lines(follower.stdout)
        output.first('"message 0"')
        frame = encode_frame(encode_records([make_record(1, message="split across writes")]))
        with path.open("ab") as sink:
            sink.write(frame[:7])
            sink.flush()
            sink.write(frame[7:] + encode_frame(end_message()))
        assert json.loads(output.first("split across writes"))["seq"] == 1
        assert follower.wait(timeout=TIMEOUT) == 0
    finally:
        stop(follower)


# --- print: damaged input and errors ----------------------------------------------------


def torn_file(tmp_path: Path) -> tuple[Path, int]:
    """Two frames of records, the second cut short; returns the path and its offset."""
    head = stream_header(INFO) + encode_frame(encode_records([make_record(0), make_record(1)]))
    last = encode_frame(encode_records([make_record(2)]))
    path = tmp_path / "torn.rrd"
    path.write_bytes(head + last[:-4])
    return path, len(head)


def test_print_torn_tail(tmp_path: Path) -> None:
    path, offset = torn_file(tmp_path)
    result = run_cli("print", str(path))
    assert result.returncode == 1
    assert [m["rest"] for m in record_lines(result.stdout)] == ["message 0", "message 1"]
    (line,) = result.stderr.splitlines()
    assert str(path) in line and f"byte {offset}" in line and "torn" in line


def test_print_corrupt_stream(tmp_path: Path) -> None:
    head = stream_header(INFO) + encode_frame(encode_records([make_record(0)]))
    bad = bytearray(encode_frame(encode_records([make_record(1)])))
    bad[-2] ^= 0x40
    path = tmp_path / "bad.rrd"
    path.write_bytes(head + bytes(bad) + encode_frame(end_message()))
    result = run_cli("print", "--json", str(path))
    assert result.returncode == 1
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == [0]
    (line,) = result.stderr.splitlines()
    assert str(path) in line and f"byte {len(head)}" in line and "checksum" in line


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"RRF2\x00\x00\x00\x00" + bytes(40), "Rerun SDK"),
        (b"just some text\n", "not a rerun-logging recording"),
        (b"", "stream header"),
    ],
)
def test_print_not_a_recording(tmp_path: Path, content: bytes, says: str) -> None:
    path = tmp_path / "other.rrd"
    path.write_bytes(content)
    result = run_cli("print", str(path))
    assert result.returncode == 1 and result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert str(path) in line and says in line
    assert "Traceback" not in result.stderr


def test_print_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.rrd"
    result = run_cli("print", str(path))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert str(path) in line and "No such file" in line


def test_broken_pipe_exits_quietly(tmp_path: Path) -> None:
    records = [make_record(i, message="x" * 100) for i in range(3000)]
    path = write_stream(tmp_path / "big.rrd", [*records, End()])
    proc = subprocess.Popen(
        [sys.executable, "-m", "rerun_logging", "print", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(),
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline()
        proc.stdout.close()  # as `| head -1` does
        assert proc.wait(timeout=TIMEOUT) == 0
        assert proc.stderr.read() == b""
    finally:
        stop(proc)


# --- verify -----------------------------------------------------------------------------


def test_verify_clean(app_recording: Path) -> None:
    result = run_cli("verify", str(app_recording))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"format 1.{format.FORMAT_MINOR}" in out and "cli-app" in out and f"pid {os.getpid()}" in out
    assert "records: 3" in out and "dropped: 0" in out and "clean" in out


def test_verify_counts_dropped(tmp_path: Path) -> None:
    path = write_stream(tmp_path / "d.rrd", [make_record(0), Dropped(4, "r"), Dropped(1, "s"), End()])
    result = run_cli("verify", str(path))
    assert result.returncode == 0 and "records: 1" in result.stdout and "dropped: 5" in result.stdout


def test_verify_torn_tail(tmp_path: Path) -> None:
    path, offset = torn_file(tmp_path)
    result = run_cli("verify", str(path))
    assert result.returncode == 1
    assert "records: 2" in result.stdout and f"torn tail at byte {offset}" in result.stdout


def test_verify_flipped_bit(tmp_path: Path) -> None:
    data = bytearray(encode_stream(INFO, [make_record(0), make_record(1), End()]))
    data[len(stream_header(INFO)) + 12] ^= 0x02
    path = tmp_path / "flip.rrd"
    path.write_bytes(bytes(data))
    result = run_cli("verify", str(path))
    assert result.returncode == 1
    assert f"corrupt at byte {len(stream_header(INFO))}" in result.stdout
    assert "checksum" in result.stdout


def test_verify_rerun_sdk_file(tmp_path: Path) -> None:
    path = tmp_path / "sdk.rrd"
    path.write_bytes(b"RRF2" + bytes(100))
    result = run_cli("verify", str(path))
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert str(path) in line and "Rerun SDK" in line


def test_verify_missing_file(tmp_path: Path) -> None:
    result = run_cli("verify", str(tmp_path / "nope.rrd"))
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "nope.rrd" in line and "Traceback" not in result.stderr


# --- the rest of the command line -------------------------------------------------------


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"rerun-logging {rerun_logging.__version__}"


# --- render (pure) ----------------------------------------------------------------------


def test_text_line_shape() -> None:
    record = make_record(
        5, "app.db", logging.ERROR, message="query failed",
        extras={"table": "users", "rows": 0, "sql": "select *", "blob": b"\x00"},
        exception=ExceptionInfo("ValueError", "bad", "Traceback (most recent call last):\nValueError: bad"),
        stack_info="Stack (most recent call last):\n  File x",
    )
    line, *details = render.text_line(record, INFO, color=False).split("\n")
    assert line.endswith(
        " ERROR cli-test[4242] app.db: query failed table=users rows=0 sql='select *' blob=b'\\x00'"
    )
    assert details == [
        "    Traceback (most recent call last):", "    ValueError: bad",
        "    Stack (most recent call last):", "      File x",
    ]


def test_json_fields_order_and_clash() -> None:
    record = make_record(1, extras={"seq": "mine", "k": {1: b"\xff"}})
    fields = render.json_fields(record, INFO)
    assert list(fields)[:12] == [
        "message", "name", "levelname", "levelno", "created", "pathname", "lineno",
        "funcName", "thread", "threadName", "process", "processName",
    ]
    assert fields["seq"] == "mine" and fields["k"] == {"1": "_w=="}
    assert fields["created"] == record.time_ns / 1e9
    assert "taskName" not in fields and "exc_info" not in fields
    assert render.json_fields(make_record(2, task_name="Task-1"), INFO)["taskName"] == "Task-1"


# --- a save path reused: several runs in one file -------------------------------------------

APP = textwrap.dedent("""
    import logging, sys
    from rerun_logging import RerunHandler
    log = logging.getLogger("app")
    log.setLevel(logging.INFO)
    log.addHandler(RerunHandler("save:" + sys.argv[1], application_id="twice"))
    for i in range(5):
        log.info("run %s record %d", sys.argv[2], i)
""")


def test_an_app_run_twice_keeps_both_runs(tmp_path: Path) -> None:
    path = tmp_path / "app.rrd"
    script = tmp_path / "app.py"
    script.write_text(APP)
    for run in ("one", "two"):
        done = subprocess.run([sys.executable, str(script), str(path), run], env=cli_env(),
                              capture_output=True, timeout=TIMEOUT)
        assert done.returncode == 0, done.stderr
    checked = run_cli("verify", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "streams: 2" in checked.stdout and "records: 10" in checked.stdout
    assert checked.stdout.count("twice ") == 2 and "5 records, 0 dropped, END seen" in checked.stdout
    printed = run_cli("print", "--no-color", str(path))
    assert printed.returncode == 0 and printed.stderr == ""
    assert [m["rest"] for m in record_lines(printed.stdout)] == [
        f"run {run} record {i}" for run in ("one", "two") for i in range(5)]
    (mark,) = [line for line in printed.stdout.splitlines() if line.startswith("-- stream 2: twice[")]
    as_json = [json.loads(line) for line in run_cli("print", "--json", str(path)).stdout.splitlines()]
    (stream,) = [line for line in as_json if "stream" in line]
    recordings = [line["recording_id"] for line in as_json if "message" in line]
    assert len(set(recordings[:5])) == 1 and len(set(recordings[5:])) == 1
    assert recordings[0] != recordings[5] == stream["recording_id"] and stream["stream"] == 2


def test_a_torn_run_then_an_appended_run(tmp_path: Path) -> None:
    path, offset = torn_file(tmp_path)
    torn_size = path.stat().st_size
    second = RecordingInfo(**{**INFO.__dict__, "recording_id": "rec-second", "pid": 4343})
    with path.open("ab") as stream:
        stream.write(encode_stream(second, [make_record(7, message="after the crash"), End()]))
    checked = run_cli("verify", str(path))
    assert checked.returncode == 1
    out = checked.stdout
    assert "streams: 2" in out and "records: 3" in out
    assert f"damage at byte {offset}:" in out and f"skipped {torn_size - offset} bytes" in out
    assert "damaged" in out.splitlines()[-1]
    printed = run_cli("print", "--no-color", str(path))
    assert printed.returncode == 1
    assert [m["rest"] for m in record_lines(printed.stdout)] == [
        "message 0", "message 1", "after the crash"]
    (line,) = printed.stderr.splitlines()
    assert str(path) in line and f"damaged at byte {offset}" in line and "skipped" in line


# --- issue 11, item 13 ----------------------------------------------------------------------


def test_top_level_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("viewer", "print", "verify", "run"):
        assert re.search(rf"^  rerun-logging (\[)?{command}\b", result.stdout, re.MULTILINE), result.stdout


def test_the_demo_on_the_stdout_sink_pipes_into_print(tmp_path: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, str(Path(rerun_logging.__file__).parent.parent / "examples" / "demo.py")],
        cwd=tmp_path, env=cli_env(RERUN_LOGGING_SINK="stdout"), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    reader = subprocess.run(
        [sys.executable, "-m", "rerun_logging", "print", "-"], stdin=demo.stdout,
        capture_output=True, text=True, env=cli_env(), timeout=TIMEOUT,
    )
    assert demo.stdout is not None and demo.stderr is not None
    demo.stdout.close()
    said = demo.stderr.read().decode()
    demo.stderr.close()
    assert demo.wait(timeout=TIMEOUT) == 0, said
    assert reader.returncode == 0, reader.stderr
    assert len(record_lines(reader.stdout)) == 23 and "order 21 failed" in reader.stdout
    assert said == "wrote 23 records to stdout (dropped 0)\n"
    assert not (tmp_path / "demo.rlg").exists()


def test_verify_counts_in_words(tmp_path: Path) -> None:
    path = tmp_path / "two.rrd"
    other = RecordingInfo(**{**INFO.__dict__, "recording_id": "rec-other"})
    path.write_bytes(encode_stream(INFO, [make_record(0), End()])
                     + encode_stream(other, [make_record(0), make_record(1), End()]))
    result = run_cli("verify", str(path))
    assert ": 1 record, 0 dropped, END seen" in result.stdout, result.stdout
    assert ": 2 records, 0 dropped, END seen" in result.stdout, result.stdout


# --- ports that are taken, spawn's viewer, stop ----------------------------------------------


def test_a_file_opens_while_another_viewer_holds_the_default_ports(tmp_path: Path) -> None:
    from .conftest import ViewerProcess

    recording = write_stream(tmp_path / "demo.rrd", [make_record(1), make_record(2)])
    other = ViewerProcess("--no-browser")
    opener = None
    try:
        web_line = other.wait_for("web UI on")
        held_web = int(re.search(r":(\d+)/", web_line).group(1))  # type: ignore[union-attr]
        # The defaults this viewer would take are the other viewer's ports.
        code = ("import sys; from rerun_logging.viewer import server; "
                f"server.DEFAULT_PORT = {other.port}; from rerun_logging import cli; "
                f"sys.exit(cli.main([{str(recording)!r}, '--no-browser']))")
        opener = subprocess.Popen(
            [sys.executable, "-c", code], env=cli_env(RERUN_LOGGING_WEB_PORT=str(held_web)),
            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        assert opener.stderr is not None
        err = Lines(opener.stderr)
        (tcp_line,) = err.wait_for(f"port {other.port} is taken")
        used = int(tcp_line.rsplit("using port ", 1)[1].split()[0])
        assert used != other.port
        err.wait_for("demo.rrd: loaded")
        (web,) = err.wait_for(f"port {held_web} is taken; web UI on ")
        url = web.split("web UI on ", 1)[1].strip()
        assert f":{held_web}/" not in url
        import urllib.request

        with urllib.request.urlopen(url, timeout=TIMEOUT) as page:
            assert page.status == 200
        assert len(err.matching("is taken")) == 2  # each said once
        opener.terminate()
        assert opener.wait(TIMEOUT) == 0
    finally:
        if opener is not None:
            stop(opener)
        other.stop()


def test_a_named_port_that_is_taken_still_exits_3() -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "rerun_logging", "--port", str(port), "--no-browser"],
            env=cli_env(), capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
        )
    assert done.returncode == 3 and "address is in use" in done.stderr


def _viewer_state_dir(tmp_path: Path) -> Path:
    return tmp_path / f"rerun-logging-{os.getuid()}"


def test_spawn_says_where_its_viewer_is_once_and_stop_stops_it(tmp_path: Path) -> None:
    import urllib.request

    from .conftest import free_port, run_python, viewer_pids

    port = free_port()
    env = {"TMPDIR": str(tmp_path), "CI": "1"}
    app = (f"import logging, rerun_logging; h = rerun_logging.RerunHandler('spawn:127.0.0.1:{port}'); "
           "logging.getLogger().addHandler(h); logging.getLogger('a').warning('hi'); h.close()")
    try:
        first = run_python(app, env=env)
        assert first.returncode == 0, first.stderr
        lines = [line for line in first.stderr.splitlines() if "started a viewer" in line]
        assert len(lines) == 1, first.stderr
        assert "keeps running after this app exits" in lines[0]
        assert f"`rerun-logging stop --port {port}`" in lines[0]
        url = re.search(r"its page is (http://\S+);", lines[0]).group(1)  # type: ignore[union-attr]
        with urllib.request.urlopen(url, timeout=TIMEOUT) as page:
            assert page.status == 200
        (pid,) = viewer_pids(port)

        again = run_python(app, env=env)  # the viewer runs already: nothing new is said
        assert again.returncode == 0 and "started a viewer" not in again.stderr, again.stderr

        stopped = subprocess.run(
            [sys.executable, "-m", "rerun_logging", "stop", "--port", str(port)],
            env=cli_env(**env), capture_output=True, text=True, timeout=TIMEOUT * 2,
        )
        assert stopped.returncode == 0, stopped.stderr
        assert f"stopped the viewer on 127.0.0.1:{port} (pid {pid})" in stopped.stderr
        assert viewer_pids(port) == []  # stop returns once it exited
        assert not (_viewer_state_dir(tmp_path) / f"viewer-{port}.json").exists()
    finally:
        for leftover in viewer_pids(port):
            os.kill(leftover, 9)


def test_stop_refuses_a_pid_that_is_not_a_viewer(tmp_path: Path) -> None:
    from .conftest import free_port

    port = free_port()
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        folder = _viewer_state_dir(tmp_path)
        folder.mkdir(mode=0o700)
        (folder / f"viewer-{port}.json").write_text(json.dumps(
            {"pid": bystander.pid, "tcp": f"127.0.0.1:{port}", "url": None}))
        done = subprocess.run(
            [sys.executable, "-m", "rerun_logging", "stop", "--port", str(port)],
            env=cli_env(TMPDIR=str(tmp_path)), capture_output=True, text=True, timeout=TIMEOUT,
        )
        assert done.returncode == 1
        assert f"not stopping pid {bystander.pid}" in done.stderr
        assert "is not a rerun-logging viewer" in done.stderr
        assert bystander.poll() is None
        nothing = subprocess.run(
            [sys.executable, "-m", "rerun_logging", "stop", "--port", str(free_port())],
            env=cli_env(TMPDIR=str(tmp_path)), capture_output=True, text=True, timeout=TIMEOUT,
        )
        assert nothing.returncode == 1 and "no viewer of yours is recorded" in nothing.stderr
    finally:
        stop(bystander)
