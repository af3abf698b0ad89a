"""Records and recording info as OTLP messages (rerun_logging.otlp.mapping): pure."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("opentelemetry.proto", reason="needs the rerun-logging[otlp] extra")

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (  # noqa: E402
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue  # noqa: E402

from rerun_logging import format  # noqa: E402
from rerun_logging.format import ExceptionInfo, Record, RecordingInfo  # noqa: E402
from rerun_logging.otlp import mapping  # noqa: E402

INFO = RecordingInfo(
    application_id="shop", recording_id="9f0c-run", start_time_ns=1, host="web-1", pid=4242,
    python_version="3.12.1", package_version="0.1.0",
)


def record(**fields: object) -> Record:
    base: dict[str, object] = dict(
        seq=0, time_ns=1_700_000_000_123_456_789, level=20, level_name="INFO",
        entity_path="app", logger="app", message="hello",
    )
    base.update(fields)
    return Record(**base)  # type: ignore[arg-type]


def attributes(log: object) -> dict[str, AnyValue]:
    return {kv.key: kv.value for kv in log.attributes}  # type: ignore[attr-defined]


def plain(value: AnyValue) -> object:
    """An AnyValue back as a Python value (kind, value), to compare with what was sent."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    return (kind, getattr(value, kind))


# --- severity ---------------------------------------------------------------------------


@pytest.mark.parametrize("level, number", [
    (logging.DEBUG, 5), (logging.INFO, 9), (logging.WARNING, 13), (logging.ERROR, 17),
    (logging.CRITICAL, 21), (11, 6), (12, 7), (13, 8), (19, 8), (25, 12), (35, 16),
    (45, 20), (53, 24), (99, 24), (5, 1), (8, 4), (9, 4), (1, 1), (0, 0), (-3, 0),
])
def test_severity_numbers_by_range(level: int, number: int) -> None:
    assert mapping.severity_number(level) == number


def test_every_level_maps_inside_its_band() -> None:
    for level in range(10, 60):
        band = min(level // 10, 5)
        assert 1 + band * 4 <= mapping.severity_number(level) <= 4 + band * 4


# --- values -----------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    (True, ("bool_value", True)),
    (False, ("bool_value", False)),
    (7, ("int_value", 7)),
    (-(2**63), ("int_value", -(2**63))),
    (2**63, ("string_value", str(2**63))),
    (2.5, ("double_value", 2.5)),
    ("text", ("string_value", "text")),
    (b"\x00\xff", ("bytes_value", b"\x00\xff")),
    (None, None),
    ([1, "a", [True]], [("int_value", 1), ("string_value", "a"), [("bool_value", True)]]),
    ((1, 2), [("int_value", 1), ("int_value", 2)]),
    ({"k": {"n": 1.0}, 3: "three"}, {"k": {"n": ("double_value", 1.0)}, "3": ("string_value", "three")}),
])
def test_values_are_typed(value: object, expected: object) -> None:
    assert plain(mapping.any_value(value)) == expected


def test_other_values_and_deep_nesting_are_text() -> None:
    assert plain(mapping.any_value({1, 2}.__class__.__name__)) == ("string_value", "set")
    assert plain(mapping.any_value(complex(1, 2))) == ("string_value", "(1+2j)")
    deep: list[object] = []
    node = deep
    for _ in range(mapping.MAX_DEPTH + 5):
        child: list[object] = []
        node.append(child)
        node = child
    value = mapping.any_value(deep)
    depth = 0
    while value.WhichOneof("value") == "array_value":
        value = value.array_value.values[0]
        depth += 1
    assert depth == mapping.MAX_DEPTH and value.WhichOneof("value") == "string_value"


# --- one record -------------------------------------------------------------------------


def test_a_record_with_everything() -> None:
    log = mapping.log_record(record(
        level=40, level_name="ERROR", message="payment failed",
        extras={"order": 17, "amount": 9.5, "retry": False, "tags": ["a", "b"], "who": {"id": 3}},
        exception=ExceptionInfo("ValueError", "bad card", "Traceback ...\nValueError: bad card"),
        stack_info="Stack (most recent call last):\n  ...",
        thread=140001, thread_name="worker-1", path="/app/pay.py", line=42, function="charge",
    ))
    assert log.time_unix_nano == log.observed_time_unix_nano == 1_700_000_000_123_456_789
    assert (log.severity_number, log.severity_text) == (17, "ERROR")
    assert plain(log.body) == ("string_value", "payment failed")
    got = {key: plain(value) for key, value in attributes(log).items()}
    assert got == {
        "order": ("int_value", 17),
        "amount": ("double_value", 9.5),
        "retry": ("bool_value", False),
        "tags": [("string_value", "a"), ("string_value", "b")],
        "who": {"id": ("int_value", 3)},
        "code.file.path": ("string_value", "/app/pay.py"),
        "code.line.number": ("int_value", 42),
        "code.function.name": ("string_value", "charge"),
        "thread.id": ("int_value", 140001),
        "thread.name": ("string_value", "worker-1"),
        "exception.type": ("string_value", "ValueError"),
        "exception.message": ("string_value", "bad card"),
        "exception.stacktrace": ("string_value", "Traceback ...\nValueError: bad card"),
        "code.stacktrace": ("string_value", "Stack (most recent call last):\n  ..."),
    }
    assert log.dropped_attributes_count == 0
    assert not log.trace_id and not log.span_id and not log.event_name


def test_a_bare_record_has_no_optional_attributes() -> None:
    log = mapping.log_record(record())
    assert attributes(log) == {}
    assert (log.severity_number, log.severity_text) == (9, "INFO")


def test_a_custom_level_keeps_its_name() -> None:
    log = mapping.log_record(record(level=25, level_name="NOTICE"))
    assert (log.severity_number, log.severity_text) == (12, "NOTICE")


def test_an_extra_named_like_a_field_gives_way_and_is_counted() -> None:
    log = mapping.log_record(record(path="/a.py", line=3, extras={"code.line.number": "x", "ok": 1}))
    assert plain(attributes(log)["code.line.number"]) == ("int_value", 3)
    assert log.dropped_attributes_count == 1


def test_lone_surrogates_are_escaped_not_fatal() -> None:
    request = mapping.export_request(
        mapping.resource(INFO), [record(message="bad \udc80 byte", extras={"k\udc81": "v\udc82"})]
    )
    log = request.resource_logs[0].scope_logs[0].log_records[0]
    assert log.body.string_value == "bad \\udc80 byte"
    assert plain(attributes(log)["k\\udc81"]) == ("string_value", "v\\udc82")
    ExportLogsServiceRequest.FromString(request.SerializeToString())


# --- the resource and the request -------------------------------------------------------


def test_the_resource() -> None:
    resource = mapping.resource(INFO, runtime_name="cpython")
    got = {kv.key: plain(kv.value) for kv in resource.attributes}
    assert got == {
        "service.name": ("string_value", "shop"),
        "service.instance.id": ("string_value", "9f0c-run"),
        "host.name": ("string_value", "web-1"),
        "process.pid": ("int_value", 4242),
        "process.runtime.name": ("string_value", "cpython"),
        "process.runtime.version": ("string_value", "3.12.1"),
        "telemetry.sdk.name": ("string_value", "rerun-logging"),
        "telemetry.sdk.language": ("string_value", "python"),
        "telemetry.sdk.version": ("string_value", "0.1.0"),
    }


def test_the_environment_wins_in_the_resource() -> None:
    resource = mapping.resource(INFO, [("service.name", "checkout"), ("deployment.environment", "prod")])
    got = {kv.key: plain(kv.value) for kv in resource.attributes}
    assert got["service.name"] == ("string_value", "checkout")
    assert got["deployment.environment"] == ("string_value", "prod")
    assert [kv.key for kv in resource.attributes].count("service.name") == 1


def test_records_are_grouped_by_logger_in_order_and_notes_come_last() -> None:
    records = [
        record(seq=0, logger="a", message="a0"), record(seq=1, logger="b", message="b0"),
        record(seq=2, logger="a", message="a1"),
    ]
    note = mapping.dropped_note(5, "backlog full", 123)
    request = mapping.export_request(mapping.resource(INFO), records, [note])
    (resource_logs,) = request.resource_logs
    scopes = [(s.scope.name, [r.body.string_value for r in s.log_records]) for s in resource_logs.scope_logs]
    assert scopes == [("a", ["a0", "a1"]), ("b", ["b0"]), ("rerun_logging", [note.body.string_value])]
    assert note.event_name == mapping.DROPPED_EVENT and note.severity_number == 13
    assert plain(attributes(note)["rerun_logging.dropped.count"]) == ("int_value", 5)
    assert "5 records" in note.body.string_value and "backlog full" in note.body.string_value


# --- frames in, responses in ------------------------------------------------------------


def test_frames_are_read_back_with_their_drop_reports() -> None:
    records = [record(seq=i, message=f"m{i}", extras={"i": i}) for i in range(3)]
    frames = [
        format.encode_frame(format.dropped_message(2, "queue full") + format.encode_records(records[:2])),
        format.encode_frame(format.encode_records(records[2:])),
        format.encode_frame(format.end_message()),
    ]
    read = list(format.stored_records(frames))
    assert read[0] == format.Dropped(2, "queue full")
    assert [m.message for m in read[1:]] == ["m0", "m1", "m2"]  # type: ignore[union-attr]
    assert read[3].extras == {"i": 2}  # type: ignore[union-attr]


def test_a_frame_that_does_not_decode_is_a_value_error() -> None:
    frame = bytearray(format.encode_frame(format.encode_records([record()])))
    frame[-1] ^= 0xFF
    with pytest.raises(ValueError):
        list(format.stored_records([bytes(frame)]))
    with pytest.raises(ValueError):
        list(format.stored_records([bytes(frame[:-3])]))


def test_the_recording_info_of_a_stream_header() -> None:
    assert format.header_info(format.stream_header(INFO)) == INFO


def test_partial_success() -> None:
    response = ExportLogsServiceResponse(
        partial_success=ExportLogsPartialSuccess(rejected_log_records=3, error_message="too old")
    )
    assert mapping.partial_success(response.SerializeToString()) == (3, "too old")
    assert mapping.partial_success(b"") == (0, "")
    assert mapping.partial_success(b'{"partialSuccess": {}}') == (0, "")
    assert mapping.partial_success(b"\xff\xff\xff") == (0, "")
