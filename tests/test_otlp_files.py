"""rerun_logging/otlp/files.py: OTLP JSON lines files, written from our records and read
back as our stream bytes (the round trip keeps every field OTLP carries)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.proto")

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (  # noqa: E402
    ExportLogsServiceRequest,
)

from rerun_logging import RerunHandler, format  # noqa: E402
from rerun_logging.format import Dropped, Record, RecordingError, RecordingInfo  # noqa: E402
from rerun_logging.otlp import files, mapping, receive  # noqa: E402
from rerun_logging.reader import is_otlp_json, read_messages  # noqa: E402

from .conftest import ViewerProcess, child_env  # noqa: E402

CARRIED = ("message", "level", "level_name", "logger", "entity_path", "time_ns", "extras",
           "path", "line", "function", "thread", "thread_name", "process", "exception",
           "stack_info", "trace_id", "span_id", "trace_flags")


def recorded(tmp_path: Path, name: str = "run") -> list[format.Message]:
    """What a real handler saved: plain, formatted, typed extras, an exception, a stack."""
    path = tmp_path / f"{name}.rrd"
    handler = RerunHandler(f"save:{path}", application_id=name)
    logger = logging.getLogger(f"otlpfiles.{name}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.debug("plain")
        logger.info("user %s did %d things", "ann", 3,
                    extra={"user": "u", "n": 3, "ratio": 0.5, "ok": True, "tags": ["a", 1],
                           "nested": {"k": None}, "raw": b"\x00\xff"})
        try:
            1 / 0
        except ZeroDivisionError:
            logger.exception("it broke")
        logger.warning("with a stack", stack_info=True)
    finally:
        logger.removeHandler(handler)
        handler.close()
    return list(read_messages(str(path)))


def decoded(data: bytes) -> list[format.Message]:
    decoder = format.StreamDecoder("<otlp json>")
    decoder.feed(data)
    messages = list(decoder.messages())
    decoder.close()
    return messages


def records(messages: list[format.Message]) -> list[Record]:
    return [m for m in messages if isinstance(m, Record)]


def test_a_recording_comes_back_from_otlp_json_with_every_field_otlp_carries(tmp_path: Path) -> None:
    original = recorded(tmp_path)
    lines = list(files.json_lines(original))
    assert len(lines) == 1 and "\n" not in lines[0]
    back = decoded(b"".join(files.stream_bytes([line.encode() for line in lines], "f.jsonl")))
    assert len(records(back)) == len(records(original)) == 4
    for before, after in zip(records(original), records(back)):
        assert {f: getattr(after, f) for f in CARRIED} == {f: getattr(before, f) for f in CARRIED}
    (info,) = [m for m in back if isinstance(m, RecordingInfo)]
    (mine,) = [m for m in original if isinstance(m, RecordingInfo)]
    assert (info.application_id, info.recording_id, info.host, info.pid) == (
        mine.application_id, mine.recording_id, mine.host, mine.pid)


def test_each_line_is_an_otlp_json_request_the_official_classes_read(tmp_path: Path) -> None:
    lines = list(files.json_lines(recorded(tmp_path), line_records=2))
    assert len(lines) == 2  # 4 records, 2 a line
    for line in lines:
        document = json.loads(line)
        logs = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        assert isinstance(logs[0]["severityNumber"], int)  # enums as integers, as OTLP/JSON says
        request = receive.parse_request(line.encode(), "json")
        assert isinstance(request, ExportLogsServiceRequest) and request.resource_logs


def test_trace_and_span_ids_are_written_in_hex() -> None:
    request = ExportLogsServiceRequest()
    log = request.resource_logs.add().scope_logs.add().log_records.add()
    log.trace_id = bytes(range(16))
    log.span_id = bytes(range(8))
    written = json.loads(files.json_line(request))
    logged = written["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert logged["traceId"] == bytes(range(16)).hex() and logged["spanId"] == bytes(range(8)).hex()


def test_dropped_messages_travel_as_the_sinks_notes_and_come_back(tmp_path: Path) -> None:
    original = recorded(tmp_path)
    original.insert(2, Dropped(7, "queue full: the flusher fell behind"))
    back = decoded(b"".join(files.stream_bytes(
        [line.encode() for line in files.json_lines(original)], "f.jsonl")))
    assert Dropped(7, "queue full: the flusher fell behind") in back


def test_resources_that_take_turns_are_streams_that_resume(tmp_path: Path) -> None:
    a, b = recorded(tmp_path, "alpha"), recorded(tmp_path, "beta")
    lines = [*files.json_lines(a, 2), *files.json_lines(b, 2)]
    lines = [lines[0], lines[2], lines[1], lines[3]]  # alpha, beta, alpha, beta
    decoder = format.StreamDecoder("<otlp json>")
    decoder.feed(b"".join(files.stream_bytes([line.encode() for line in lines], "f.jsonl")))
    messages = list(decoder.messages())
    by_app: dict[str, list[str]] = {}
    app = ""
    for message in messages:
        if isinstance(message, RecordingInfo):
            app = message.application_id
        elif isinstance(message, Record):
            by_app.setdefault(app, []).append(message.message)
    assert by_app == {n: [r.message for r in records(m)] for n, m in (("alpha", a), ("beta", b))}
    infos = [m.application_id for m in messages if isinstance(m, RecordingInfo)]
    assert infos[:4] == ["alpha", "beta", "alpha", "beta"]  # each switch names its stream again
    assert sum(isinstance(m, format.End) for m in messages) == 2  # the file is whole: both end
    assert [r.seq for r in records(messages) if r.logger.endswith("alpha")] == [0, 1, 2, 3]


def test_a_bad_line_is_named_in_a_dropped_message_and_costs_nothing_else(tmp_path: Path) -> None:
    lines = [line.encode() for line in files.json_lines(recorded(tmp_path), 2)]
    lines = [b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "xyz"}]}]}]}',
             lines[0], b"", b"not json at all", lines[1]]
    back = decoded(b"".join(files.stream_bytes(lines, "app.jsonl")))
    assert len(records(back)) == 4
    reasons = [m.reason for m in back if isinstance(m, Dropped)]
    assert len(reasons) == 2
    assert reasons[0].startswith("app.jsonl line 1 is not an OTLP logs request: ")
    assert "traceId is not hex" in reasons[0]
    assert reasons[1].startswith("app.jsonl line 4 is not an OTLP logs request: the body is not JSON")


def test_a_file_without_any_request_is_an_error_naming_its_first_problem() -> None:
    with pytest.raises(RecordingError, match=r"x\.jsonl line 1 is not an OTLP logs request"):
        list(files.stream_bytes([b"[1, 2]", b"{"], "x.jsonl"))
    with pytest.raises(RecordingError, match="holds no OTLP logs request"):
        list(files.stream_bytes([b"", b"  "], "x.jsonl"))


def test_a_line_over_the_receivers_cap_is_refused_by_its_size() -> None:
    huge = b'{"resourceLogs": []' + b" " * files.MAX_LINE_SIZE + b"}"
    transcoder = files.OtlpJsonTranscoder("big.jsonl")
    assert transcoder.line(huge) == b""  # held: no stream yet
    assert transcoder.first_problem is not None and "more than" in transcoder.first_problem


def test_the_file_kind_is_told_by_its_first_byte(tmp_path: Path) -> None:
    assert is_otlp_json(b'{"resourceLogs":[]}')
    assert is_otlp_json(b'\xef\xbb\xbf\n  {"resourceLogs":[]}')
    assert not is_otlp_json(format.HEADER)
    assert not is_otlp_json(b"")


def test_an_sdk_shaped_line_reads_as_a_recording() -> None:
    """A line as an OpenTelemetry SDK writes one: its own resource, severity text WARN."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name").value.string_value = "checkout"
    scope = resource_logs.scope_logs.add()
    scope.scope.name = "shop.pay"
    log = scope.log_records.add()
    log.time_unix_nano = 1_700_000_000_000_000_000
    log.severity_number = 13
    log.severity_text = "WARN"
    log.body.string_value = "card declined"
    log.attributes.add(key="order").value.int_value = 42
    log.trace_id, log.span_id, log.flags = bytes(range(1, 17)), bytes(range(1, 9)), 1
    back = decoded(b"".join(files.stream_bytes([files.json_line(request).encode()], "sdk.jsonl")))
    (record,) = records(back)
    assert (record.level, record.level_name, record.logger, record.message, record.extras) == (
        30, "WARN", "shop.pay", "card declined", {"order": 42})
    assert (record.trace_id, record.span_id, record.trace_flags) == (
        bytes(range(1, 17)).hex(), bytes(range(1, 9)).hex(), 1)
    again = list(files.json_lines([m for m in back if not isinstance(m, format.End)]))
    logged = json.loads(again[0])["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    assert (logged["traceId"], logged["spanId"]) == (bytes(range(1, 17)).hex(), bytes(range(1, 9)).hex())
    assert mapping.severity_number(record.level) == 13


# --- the command line and the viewer read and write them --------------------------------


def cli(*args: str, cwd: Path, block_otel: bool = False) -> subprocess.CompletedProcess[str]:
    prefix = [sys.executable, "-c", BLOCK_OPENTELEMETRY + "import runpy; runpy.run_module("
              "'rerun_logging', run_name='__main__')"] if block_otel else \
        [sys.executable, "-m", "rerun_logging"]
    return subprocess.run([*prefix, *args], cwd=cwd, env=child_env(), capture_output=True,
                          text=True, timeout=60)


BLOCK_OPENTELEMETRY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry.") or name == "google" \\
                or name.startswith("google."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
sys.argv[0] = "rerun-logging"
"""


def test_print_writes_otlp_json_that_print_verify_and_the_viewer_read(tmp_path: Path) -> None:
    recorded(tmp_path, "alpha")
    recorded(tmp_path, "beta")
    done = cli("print", "--otlp-json", "alpha.rrd", "beta.rrd", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(json.loads(line)["resourceLogs"] for line in lines)
    (tmp_path / "both.jsonl").write_text(done.stdout)

    printed = cli("print", "--json", "both.jsonl", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    messages = [json.loads(line)["message"] for line in printed.stdout.splitlines()
                if "message" in json.loads(line)]
    assert messages == ["plain", "user ann did 3 things", "it broke", "with a stack"] * 2

    checked = cli("verify", "both.jsonl", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "records: 8" in checked.stdout and "end: clean" in checked.stdout

    viewer = ViewerProcess(str(tmp_path / "both.jsonl"), "--no-browser", save_dir=tmp_path / "saved")
    try:
        viewer.wait_for("loaded beta[")
    finally:
        viewer.stop()
    saved = [m for p in sorted((tmp_path / "saved").glob("*.rlg")) for m in read_messages(str(p))]
    assert sorted(r.message for r in records(saved)) == sorted(messages)


def test_print_says_in_one_line_which_extra_otlp_json_needs(tmp_path: Path) -> None:
    recorded(tmp_path, "alpha")
    done = cli("print", "--otlp-json", "alpha.rrd", cwd=tmp_path, block_otel=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "rerun-logging[otlp]" in done.stderr
    (tmp_path / "x.jsonl").write_text('{"resourceLogs": []}\n')
    read = cli("print", "x.jsonl", cwd=tmp_path, block_otel=True)
    assert read.returncode == 1 and "rerun-logging[otlp]" in read.stderr
    ours = cli("print", "alpha.rrd", cwd=tmp_path, block_otel=True)  # our own files need nothing
    assert ours.returncode == 0 and "it broke" in ours.stdout


def test_two_resources_that_share_an_instance_id_and_pid_stay_two_streams() -> None:
    """Readers tell streams apart by recording id, pid and start: two services of one
    process (one instance id) must not read as one stream, the second's records lost as
    resent frames."""
    request = ExportLogsServiceRequest()
    for service in ("cart", "pay"):
        resource_logs = request.resource_logs.add()
        for key, value in (("service.name", service), ("service.instance.id", "one-run")):
            resource_logs.resource.attributes.add(key=key).value.string_value = value
        resource_logs.resource.attributes.add(key="process.pid").value.int_value = 7
        log = resource_logs.scope_logs.add().log_records.add()
        log.body.string_value = f"from {service}"
        log.time_unix_nano = 1
    data = b"".join(files.stream_bytes([files.json_line(request).encode()], "two.jsonl", 5))
    decoder = format.StreamDecoder("two")
    decoder.feed(data)
    messages = list(decoder.messages())
    assert [r.message for r in records(messages)] == ["from cart", "from pay"]
    infos = {format.stream_id(m) for m in messages if isinstance(m, RecordingInfo)}
    assert len(infos) == 2
