"""The OTLP receiver's pure half (``rerun_logging.otlp.receive``): bodies built with the
official generated classes, in protobuf and in OTLP/JSON, gzip or not, into our records
and streams; malformed bodies and deflate bombs refused, naming what."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import logging
from typing import Any

import pytest

pytest.importorskip("opentelemetry.proto")

from google.protobuf import json_format  # noqa: E402
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (  # noqa: E402
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord  # noqa: E402

from rerun_logging import format  # noqa: E402
from rerun_logging.format import Dropped, ExceptionInfo, Record, RecordingInfo, StreamDecoder  # noqa: E402
from rerun_logging.otlp import mapping, receive  # noqa: E402
from rerun_logging.otlp.receive import (  # noqa: E402
    BodyTooLarge,
    MalformedBody,
    OtlpStreams,
    UnsupportedMediaType,
    decode_request,
)

NOW = 1_800_000_000_000_000_000
TRACE = bytes(range(1, 17))
SPAN = bytes(range(21, 29))
INFO = RecordingInfo("shop", "run-7", 123, "box", 4242, "3.12.1", "0.9.0")


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def sdk_request(count: int = 3, **log_fields: Any) -> ExportLogsServiceRequest:
    """A request as an OpenTelemetry SDK sends it: one resource, one scope."""
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.extend([
        kv("service.name", string_value="checkout"), kv("service.instance.id", string_value="i-1"),
        kv("host.name", string_value="web-3"), kv("process.pid", int_value=77),
        kv("telemetry.sdk.name", string_value="opentelemetry"),
        kv("telemetry.sdk.version", string_value="1.40.0"),
    ])
    scope = resource_logs.scope_logs.add()
    scope.scope.name = "app.orders"
    for i in range(count):
        log = scope.log_records.add(
            time_unix_nano=NOW + i, observed_time_unix_nano=NOW + 1000 + i, severity_number=9,
            severity_text="INFO", body=AnyValue(string_value=f"order {i}"), trace_id=TRACE,
            span_id=SPAN,
        )
        log.attributes.extend([
            kv("order", int_value=i), kv("amount", double_value=i / 2), kv("paid", bool_value=True),
            kv("code.file.path", string_value="/srv/orders.py"),
            kv("code.line.number", int_value=40 + i), kv("code.function.name", string_value="place"),
            kv("thread.id", int_value=99), kv("thread.name", string_value="worker-1"),
        ])
        for name, value in log_fields.items():
            if isinstance(value, AnyValue):
                getattr(log, name).CopyFrom(value)
            else:
                setattr(log, name, value)
    return request


def otlp_json(request: ExportLogsServiceRequest) -> bytes:
    """``request`` in OTLP/JSON: protobuf's JSON mapping with trace and span ids in hex."""
    document = json_format.MessageToDict(request)
    for resource_logs in document.get("resourceLogs", []):
        for scope_logs in resource_logs.get("scopeLogs", []):
            for log in scope_logs.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in log:
                        log[key] = base64.b64decode(log[key]).hex().upper()
    return json.dumps(document).encode()


def records_of(batch: receive.ExportBatch) -> list[Record]:
    return [m for r in batch.resources for m in r.messages if isinstance(m, Record)]


# --- what a request becomes ------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
@pytest.mark.parametrize("gzipped", [False, True])
def test_an_sdk_request_becomes_records(encoding: str, gzipped: bool) -> None:
    request = sdk_request()
    body = request.SerializeToString() if encoding == "protobuf" else otlp_json(request)
    content_type = receive.PROTOBUF if encoding == "protobuf" else "application/json; charset=utf-8"
    if gzipped:
        body = gzip.compress(body)
    batch = decode_request(body, content_type, "gzip" if gzipped else None, NOW)
    (resource,) = batch.resources
    assert resource.info == RecordingInfo("checkout", "i-1", 0, "web-3", 77, "", "opentelemetry 1.40.0")
    assert batch.records == 3 and batch.rejected == 0
    first, second, _ = records_of(batch)
    assert second == Record(
        seq=0, time_ns=NOW + 1, level=logging.INFO, level_name="INFO", entity_path="app/orders",
        logger="app.orders", message="order 1",
        extras={"order": 1, "amount": 0.5, "paid": True},
        thread=99, thread_name="worker-1", process=77, path="/srv/orders.py", line=41,
        function="place", trace_id=TRACE.hex(), span_id=SPAN.hex(), trace_flags=second.trace_flags,
    )
    assert type(first.extras["order"]) is int and type(first.extras["amount"]) is float


def test_our_sinks_records_come_back_with_every_field_it_carries() -> None:
    records = [
        Record(seq=5, time_ns=NOW, level=logging.WARNING, level_name="WARNING", entity_path="a/b",
               logger="a.b", message="low stock", extras={"sku": "x1", "n": [1, None, "z"],
                                                          "m": {"k": b"\x00\xff"}, "f": 1.5},
               exception=ExceptionInfo("KeyError", "'x'", "Traceback ...\nKeyError: 'x'"),
               stack_info="Stack (most recent call last): ...", thread=12345, thread_name="T-1",
               process=INFO.pid, path="/app/x.py", line=12, function="handle"),
        Record(seq=6, time_ns=NOW + 5, level=23, level_name="NOTICE", entity_path="root",
               logger="root", message="", process=INFO.pid),
    ]
    request = mapping.export_request(mapping.resource(INFO), records, [mapping.dropped_note(3, "full", NOW)])
    batch = decode_request(request.SerializeToString(), receive.PROTOBUF, None, NOW)
    (resource,) = batch.resources
    assert resource.info == RecordingInfo("shop", "run-7", 0, "box", 4242, "3.12.1", "0.9.0")
    got = resource.messages
    assert got[:2] == [dataclasses.replace(r, seq=0) for r in records]
    assert got[2] == Dropped(3, "full")


def test_severity_numbers_invert_the_sinks_mapping() -> None:
    for level in (5, 6, 7, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52, 53):
        assert receive.level_of(mapping.severity_number(level)) == level
    assert [receive.level_of(n) for n in (0, 1, 4, 5, 8, 9, 13, 17, 21, 24, 99, -3)] == [
        0, 5, 8, 10, 13, 20, 30, 40, 50, 53, 53, 0]
    assert [receive.level_name_of(n) for n in (0, 1, 2, 5, 9, 10, 13, 17, 21, 24)] == [
        "NOTSET", "TRACE", "TRACE2", "DEBUG", "INFO", "INFO2", "WARNING", "ERROR", "CRITICAL",
        "FATAL4"]


def test_bodies_attributes_and_fallbacks() -> None:
    request = ExportLogsServiceRequest()
    scope = request.resource_logs.add().scope_logs.add()  # no resource attributes, no scope name
    structured = AnyValue()
    structured.kvlist_value.values.extend([kv("user", string_value="ann"), kv("n", int_value=2)])
    scope.log_records.add(body=structured, observed_time_unix_nano=NOW + 9, severity_number=17)
    deep = AnyValue()
    inner = deep
    for _ in range(40):
        inner = inner.array_value.values.add()
    inner.string_value = "bottom"
    log = scope.log_records.add(event_name="checkout.done")
    log.attributes.extend([
        KeyValue(key="deep", value=deep), kv("empty"), kv("blob", bytes_value=b"\x01\x02"),
        kv("code.line.number", string_value="not a number"),
        kv("exception.type", string_value="ValueError"),
    ])
    batch = decode_request(request.SerializeToString(), receive.PROTOBUF, None, NOW)
    first, second = records_of(batch)
    assert batch.resources[0].info.application_id == "unknown_service"
    assert batch.resources[0].info.recording_id.startswith("otlp-")
    assert first.message == '{"user": "ann", "n": 2}' and first.time_ns == NOW + 9
    assert (first.level, first.level_name, first.logger, first.entity_path) == (40, "ERROR", "root", "root")
    assert second.time_ns == NOW and second.level == 0 and second.message == ""
    assert second.extras["empty"] is None and second.extras["blob"] == b"\x01\x02"
    assert second.extras["code.line.number"] == "not a number" and second.line == 0
    assert second.extras["event_name"] == "checkout.done"
    assert second.exception == ExceptionInfo("ValueError", "", "")
    text = json.dumps(second.extras["deep"])
    assert "nested deeper than 32 levels" in text and "bottom" not in text


def test_a_resource_without_an_instance_id_has_a_stable_one() -> None:
    def info(**attributes: str) -> RecordingInfo:
        request = ExportLogsServiceRequest()
        resource_logs = request.resource_logs.add()
        resource_logs.resource.attributes.extend([kv(k, string_value=v) for k, v in attributes.items()])
        resource_logs.scope_logs.add().log_records.add()
        return decode_request(request.SerializeToString(), receive.PROTOBUF, None, NOW).resources[0].info

    assert info(**{"service.name": "a"}) == info(**{"service.name": "a"})
    assert info(**{"service.name": "a"}).recording_id != info(**{"service.name": "b"}).recording_id


def test_fields_are_cut_to_the_handlers_caps() -> None:
    long = "x" * (format.MAX_FIELD_CHARS + 10)
    request = sdk_request(1, body=AnyValue(string_value=long))
    log = request.resource_logs[0].scope_logs[0].log_records[0]
    log.attributes.extend([kv(f"big{i}", string_value="y" * 60_000) for i in range(8)])
    (record,) = records_of(decode_request(request.SerializeToString(), receive.PROTOBUF, None, NOW))
    assert record.message == format.truncate_text(long) and "…[truncated 10 chars]" in record.message
    assert "rerun.truncated" in record.extras
    assert len(format.packb(record.extras)) <= format.MAX_EXTRAS_BYTES + 200


def test_records_past_the_request_cap_are_rejected() -> None:
    batch = decode_request(sdk_request(5).SerializeToString(), receive.PROTOBUF, None, NOW, max_records=3)
    assert [r.message for r in records_of(batch)] == ["order 0", "order 1", "order 2"]
    assert batch.rejected == 2 and "more than 3 log records" in batch.reason


# --- what is refused ------------------------------------------------------------------------


@pytest.mark.parametrize("body, content_type, says", [
    (b"\xff\xff\xff", receive.PROTOBUF, "not an ExportLogsServiceRequest (protobuf)"),
    (b"{not json", receive.JSON, "the body is not JSON"),
    (b"\xff\xfe{}", receive.JSON, "JSON"),
    (b'{"resourceLogs": 5}', receive.JSON, "resourceLogs"),
    (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}',
     receive.JSON, "timeUnixNano"),
    (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "zz"}]}]}]}',
     receive.JSON, "resourceLogs[0].scopeLogs[0].logRecords[0].traceId is not hex"),
    (b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{}, {"spanId": "0102"}]}]}]}',
     receive.JSON, "logRecords[1].spanId has 2 bytes, not 8"),
    (b"[" * 100_000 + b"]" * 100_000, receive.JSON, "JSON"),
])
def test_a_malformed_body_is_a_400_naming_what(body: bytes, content_type: str, says: str) -> None:
    with pytest.raises(MalformedBody) as caught:
        decode_request(body, content_type, None, NOW)
    assert caught.value.status == 400 and says in str(caught.value)


def test_nesting_past_protobufs_limits_is_a_400_not_a_crash() -> None:
    request = ExportLogsServiceRequest()
    value = request.resource_logs.add().scope_logs.add().log_records.add().body
    for _ in range(300):
        value = value.array_value.values.add()
    with pytest.raises(MalformedBody, match="protobuf"):
        decode_request(request.SerializeToString(), receive.PROTOBUF, None, NOW)
    body: dict[str, Any] = {"stringValue": "x"}
    for _ in range(300):
        body = {"arrayValue": {"values": [body]}}
    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": body}]}]}]}
    with pytest.raises(MalformedBody, match="body field"):
        decode_request(json.dumps(document).encode(), receive.JSON, None, NOW)
    lone = b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "\\ud800"}}]}]}]}'
    with pytest.raises(MalformedBody, match="surrogate"):
        decode_request(lone, receive.JSON, None, NOW)


def test_resources_and_scopes_without_records_open_no_stream() -> None:
    request = ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add()
    request.resource_logs.add()
    batch = decode_request(request.SerializeToString(), receive.PROTOBUF, None, NOW)
    assert batch.resources == [] and OtlpStreams().frames(batch, 1) == []
    assert decode_request(b"", receive.PROTOBUF, None, NOW).resources == []
    assert decode_request(b"{}", receive.JSON, None, NOW).resources == []


def test_unknown_json_fields_are_ignored_and_ids_may_be_lowercase() -> None:
    document = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "traceId": TRACE.hex(), "spanId": SPAN.hex(), "severityNumber": 13, "futureField": 1,
        "body": {"stringValue": "hi"}, "timeUnixNano": str(NOW)}]}], "newThing": {}}]}
    (record,) = records_of(decode_request(json.dumps(document).encode(), receive.JSON, None, 0))
    assert (record.level, record.message, record.time_ns) == (30, "hi", NOW)
    assert record.extras == {} and (record.trace_id, record.span_id) == (TRACE.hex(), SPAN.hex())


@pytest.mark.parametrize("content_type, encoding, error", [
    ("text/plain", None, UnsupportedMediaType),
    (None, None, UnsupportedMediaType),
    (receive.PROTOBUF, "br", UnsupportedMediaType),
    (receive.PROTOBUF, "deflate", UnsupportedMediaType),
])
def test_other_content_types_and_encodings_are_415(content_type: str | None, encoding: str | None,
                                                    error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        decode_request(b"", content_type, encoding, NOW)
    assert caught.value.status == 415  # type: ignore[attr-defined]


def test_gzip_bombs_are_refused_without_inflating_them() -> None:
    limit = receive.MAX_INFLATED_SIZE
    assert len(receive.inflate(gzip.compress(b"\0" * limit), "gzip")) == limit
    with pytest.raises(BodyTooLarge) as caught:
        receive.inflate(gzip.compress(b"\0" * (limit + 1)), "gzip")
    assert caught.value.status == 413
    with pytest.raises(BodyTooLarge):  # a bomb inflating to 1 GiB costs what the limit does
        receive.inflate(gzip.compress(b"\0" * 64 * 1024 * 1024, 9) * 16, "gzip", limit=1024)
    with pytest.raises(BodyTooLarge):
        receive.inflate(b"\0" * (receive.MAX_BODY_SIZE + 1), None)
    assert len(receive.inflate(b"\0" * receive.MAX_BODY_SIZE, None)) == receive.MAX_BODY_SIZE


@pytest.mark.parametrize("body, says", [
    (b"not gzip at all", "does not inflate"),
    (gzip.compress(b"hello")[:-6], "ends early"),
    (gzip.compress(b"hello") + b"tail", "4 bytes after the gzip stream"),
])
def test_broken_gzip_is_a_400(body: bytes, says: str) -> None:
    with pytest.raises(MalformedBody, match=says):
        receive.inflate(body, "gzip")


# --- streams -----------------------------------------------------------------------------------


def stream_messages(data: bytes) -> list[Any]:
    decoder = StreamDecoder("test")
    decoder.feed(data)
    messages = list(decoder.messages())
    decoder.close()
    return messages


def test_each_resource_is_a_stream_whose_numbers_go_on() -> None:
    streams = OtlpStreams()
    first = streams.frames(decode_request(sdk_request(3).SerializeToString(), receive.PROTOBUF, None, NOW), 55)
    second = streams.frames(decode_request(sdk_request(2).SerializeToString(), receive.PROTOBUF, None, NOW), 66)
    assert [(p.new, p.key == first[0].key) for p in first + second] == [(True, True), (False, True)]
    info = RecordingInfo("checkout", "i-1", 55, "web-3", 77, "", "opentelemetry 1.40.0")
    assert first[0].info == second[0].info == info
    messages = stream_messages(first[0].data + second[0].data)
    assert messages[0] == info
    assert [m.seq for m in messages[1:]] == [0, 1, 2, 3, 4]
    assert [m.message for m in messages[1:]] == ["order 0", "order 1", "order 2", "order 0", "order 1"]


def test_big_batches_are_split_into_frames_as_the_handler_splits_them() -> None:
    request = sdk_request(80, body=AnyValue(string_value="z" * 60_000))
    body = gzip.compress(request.SerializeToString())
    (part,) = OtlpStreams().frames(decode_request(body, receive.PROTOBUF, "gzip", NOW), 1)
    decoder = StreamDecoder("test")
    decoder.feed(part.data)
    frames = list(decoder.frames())
    assert len(frames) >= 3  # INFO, then at least two frames of records
    assert all(len(f.payload) <= format.TARGET_PAYLOAD_SIZE for f in frames)
    assert [m.seq for m in stream_messages(part.data)[1:]] == list(range(80))


def test_resources_past_the_cap_are_rejected() -> None:
    streams = OtlpStreams(max_streams=1)
    streams.frames(decode_request(sdk_request(1).SerializeToString(), receive.PROTOBUF, None, NOW), 1)
    other = sdk_request(2)
    other.resource_logs[0].resource.attributes[1].value.string_value = "i-2"
    batch = decode_request(other.SerializeToString(), receive.PROTOBUF, None, NOW)
    assert streams.frames(batch, 2) == []
    assert batch.rejected == 2 and "holds 1 OTLP resources" in batch.reason and len(streams) == 1


# --- responses -------------------------------------------------------------------------------


def test_responses_in_both_encodings() -> None:
    response = ExportLogsServiceResponse()
    response.ParseFromString(receive.success_body("protobuf"))
    assert not response.HasField("partial_success")
    response.ParseFromString(receive.success_body("protobuf", 2, "too many"))
    assert (response.partial_success.rejected_log_records, response.partial_success.error_message) == (2, "too many")
    assert json.loads(receive.success_body("json")) == {}
    assert json.loads(receive.success_body("json", 2, "x")) == {
        "partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "x"}}


def test_the_error_body_is_a_google_rpc_status() -> None:
    status_pb2 = pytest.importorskip("google.rpc.status_pb2")
    status = status_pb2.Status()
    message = "the body is not JSON: " + "é" * 200
    status.ParseFromString(receive.status_body("protobuf", 3, message))
    assert (status.code, status.message) == (3, message)
    assert json.loads(receive.status_body("json", 3, "bad")) == {"code": 3, "message": "bad"}


def test_a_log_record_of_every_kind_decodes() -> None:
    """Each AnyValue kind as its Python value."""
    values = {
        "s": AnyValue(string_value="t"), "b": AnyValue(bool_value=False), "i": AnyValue(int_value=-(2**63)),
        "d": AnyValue(double_value=2.5), "y": AnyValue(bytes_value=b"\x00"),
    }
    log = LogRecord(attributes=[KeyValue(key=k, value=v) for k, v in values.items()])
    record = receive.log_message(log, "s", INFO, NOW)
    assert isinstance(record, Record)
    assert record.extras == {"s": "t", "b": False, "i": -(2**63), "d": 2.5, "y": b"\x00"}
