"""The viewer's OTLP/HTTP receiver (``rerun_logging.viewer.otlp_http``, ``--otlp-port``).

First its pure parts (the request head, the checks before a body is read, our stream
bytes through a real ingest into a store), then a real viewer process on 127.0.0.1
with ``--otlp-port 0``: requests posted with ``http.client`` and raw sockets, the
real OpenTelemetry SDK in a subprocess, and our own ``otlp`` sink, each read back
from the viewer's ``--save-dir`` files. Waits are on lines and files, with deadlines.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import logging
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

pytest.importorskip("opentelemetry.proto")

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (  # noqa: E402
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from rerun_logging import RerunHandler  # noqa: E402
from rerun_logging.format import Record, RecordingInfo, StreamDecoder  # noqa: E402
from rerun_logging.otlp import receive  # noqa: E402
from rerun_logging.viewer import otlp_http  # noqa: E402
from rerun_logging.viewer.ingest import StreamIngest  # noqa: E402
from rerun_logging.viewer.otlp_http import HttpError, OtlpReceiver, check_request, parse_head  # noqa: E402
from rerun_logging.viewer.sockets import listening_socket  # noqa: E402
from rerun_logging.viewer.store import RecordingStore  # noqa: E402

from .conftest import Lines, child_env  # noqa: E402
from .test_otlp_receive import NOW, SPAN, TRACE, otlp_json, sdk_request  # noqa: E402
from .test_sinks_otlp import BLOCK_OPENTELEMETRY  # noqa: E402

TIMEOUT = 20.0
HOSTS = otlp_http.allowed_hosts("127.0.0.1", 4318)


# --- pure: the head, the checks, the ingest ------------------------------------------------


def head(*lines: str, method: str = "POST", target: str = "/v1/logs") -> bytes:
    return "\r\n".join([f"{method} {target} HTTP/1.1", *lines, "", ""]).encode("latin-1")


GOOD = ("Host: 127.0.0.1:4318", "Content-Type: application/x-protobuf", "Content-Length: 10")


def test_a_good_head_is_parsed_and_checked() -> None:
    parsed = parse_head(head(*GOOD, "Content-Encoding: gzip", "X-Other: a", "x-other: b"))
    assert (parsed.method, parsed.path, parsed.minor, parsed.keep_alive) == ("POST", "/v1/logs", 1, True)
    assert parsed.headers["x-other"] == ["a", "b"]
    checked = check_request(parsed, HOSTS)
    assert (checked.length, checked.kind, checked.content_encoding) == (10, "protobuf", "gzip")
    assert not parse_head(head(*GOOD, "Connection: close")).keep_alive
    assert check_request(parse_head(head("Host: evil.example", *GOOD[1:])), None).length == 10


@pytest.mark.parametrize("data, says", [
    (b"POST /v1/logs HTTP/1.1\r\nHost: a\r\n", "does not end with an empty line"),
    (head(*GOOD).replace(b"\r\nContent-Type", b"\nContent-Type"), "bare CR or LF"),
    (b"POST /v1/logs HTTP/2\r\nHost: a\r\n\r\n", "request line"),
    (b"post /v1/logs HTTP/1.1\r\nHost: a\r\n\r\n", "request line"),
    (head(*GOOD, " folded"), "folded"),
    (head(*GOOD, "Bad Name: x"), "malformed header line"),
    (head(*GOOD, "X: a\x01b"), "malformed header line"),
    (head(*GOOD, "Content-Length: 10"), "more than one content-length"),
    (head(*GOOD, "Host: other"), "more than one host"),
    (head(*GOOD[1:]), "without Host"),
])
def test_a_malformed_head_is_a_400(data: bytes, says: str) -> None:
    with pytest.raises(HttpError) as caught:
        parse_head(data)
    assert caught.value.status == 400 and says in caught.value.reason


@pytest.mark.parametrize("lines, method, target, status, says", [
    (GOOD, "POST", "/v1/traces", 404, "no '/v1/traces' here"),
    (GOOD, "GET", "/v1/logs", 405, "GET is not allowed"),
    (GOOD, "OPTIONS", "/v1/logs", 405, "OPTIONS is not allowed"),
    (("Host: evil.example:4318", *GOOD[1:]), "POST", "/v1/logs", 403, "unexpected Host"),
    ((*GOOD, "Origin: http://evil.example"), "POST", "/v1/logs", 403, "another origin"),
    ((*GOOD[:2], "Transfer-Encoding: chunked"), "POST", "/v1/logs", 411, "Transfer-Encoding"),
    ((*GOOD, "Transfer-Encoding: chunked"), "POST", "/v1/logs", 411, "Transfer-Encoding"),
    (GOOD[:2], "POST", "/v1/logs", 411, "Content-Length is required"),
    ((*GOOD[:2], "Content-Length: +10"), "POST", "/v1/logs", 400, "not a number"),
    ((*GOOD[:2], f"Content-Length: {receive.MAX_BODY_SIZE + 1}"), "POST", "/v1/logs", 413, "limit"),
    ((GOOD[0], "Content-Type: text/plain", GOOD[2]), "POST", "/v1/logs", 415, "text/plain"),
    ((*GOOD, "Content-Encoding: br"), "POST", "/v1/logs", 415, "'br'"),
])
def test_what_is_refused_before_the_body(lines: tuple[str, ...], method: str, target: str,
                                         status: int, says: str) -> None:
    with pytest.raises(HttpError) as caught:
        check_request(parse_head(head(*lines, method=method, target=target)), HOSTS)
    assert caught.value.status == status and says in caught.value.reason


def test_the_receivers_own_origin_and_loopback_names_pass() -> None:
    for host in ("127.0.0.1:4318", "localhost:4318", "[::1]:4318"):
        lines = (f"Host: {host}", *GOOD[1:], f"Origin: http://{host}")
        assert check_request(parse_head(head(*lines)), HOSTS).length == 10
    assert otlp_http.allowed_hosts("0.0.0.0", 4318) is None


def test_otlp_streams_feed_an_ingest_like_a_peers_bytes() -> None:
    store = RecordingStore()
    ingest = StreamIngest("otlp checkout", store, network=False)
    streams = receive.OtlpStreams()
    for count in (3, 2):
        batch = receive.decode_request(sdk_request(count).SerializeToString(), receive.PROTOBUF, None, NOW)
        for part in streams.frames(batch, 99):
            ingest.receive_data(part.data)
    assert ingest.error is None and ingest.records == 5
    assert ingest.key is not None
    stream = store.stream(ingest.key)
    assert stream.info.application_id == "checkout" and stream.info.start_time_ns == 99
    ingest.close(quiet=True)


def test_the_receiver_in_process_keeps_its_deadlines_and_feeds_the_store() -> None:
    """The asyncio shell on a loop of the test's own, with short deadlines."""
    store = RecordingStore()
    lines: list[str] = []
    fed: list[str] = []

    def open_ingest(name: str) -> StreamIngest:
        fed.append(name)
        return StreamIngest(name, store, network=False)

    async def scenario() -> None:
        sock = listening_socket("127.0.0.1", 0)
        receiver = OtlpReceiver(sock, open_ingest, lambda: None, lines.append,
                                head_timeout=0.2, body_timeout=0.2, idle_timeout=0.3)
        await receiver.start()
        port = sock.getsockname()[1]
        loop = asyncio.get_running_loop()

        async def exchange(data: bytes) -> tuple[float, bytes]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            start = loop.time()
            writer.write(data)
            answer = await asyncio.wait_for(reader.read(), TIMEOUT)
            writer.close()
            return loop.time() - start, answer

        took, answer = await exchange(b"POST /v1/logs HTTP/1.1\r\n")  # a head that never ends
        assert answer == b"" and 0.2 <= took < TIMEOUT
        body = sdk_request(3).SerializeToString()
        request = head(f"Host: 127.0.0.1:{port}", "Content-Type: application/x-protobuf",
                       f"Content-Length: {len(body)}")
        took, answer = await exchange(request + body[:5])  # a body that never completes
        assert answer == b"" and 0.2 <= took < TIMEOUT
        took, answer = await exchange(request + body)  # a good one, then idle: closed
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and 0.3 <= took < TIMEOUT
        assert receiver.requests == 1 and len(receiver.ingests) == 1
        await receiver.close()
        assert receiver.ingests == {}

    asyncio.run(scenario())
    assert fed == ["otlp checkout[77]"]
    assert lines == ["OTLP: checkout[77] (recording i-1) started"]
    summary = store.summary()
    assert (summary.records, summary.streams, summary.connected) == (3, 1, 0)


# --- a real viewer -----------------------------------------------------------------------------


class OtlpViewer:
    """``python -m rerun_logging viewer --port 0 --otlp-port 0 --save-dir DIR``."""

    def __init__(self, save_dir: Path) -> None:
        self.save_dir = save_dir
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rerun_logging", "viewer", "--port", "0", "--otlp-port", "0",
             "--no-browser", "--save-dir", str(save_dir)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env=clean_env(),
        )
        assert self.process.stderr is not None
        self.err = Lines(self.process.stderr)
        (line,) = self.err.wait_for("OTLP/HTTP on", timeout=TIMEOUT)
        match = re.fullmatch(r"rerun-logging viewer: OTLP/HTTP on http://127\.0\.0\.1:(\d+)/v1/logs", line)
        assert match, line
        self.port = int(match.group(1))
        self.url = f"http://127.0.0.1:{self.port}/v1/logs"

    def records(self, app: str, count: int) -> tuple[RecordingInfo, list[Record]]:
        """The INFO and records of the saved stream of ``app``, once it has ``count`` records."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            found = saved_stream(self.save_dir, app)
            if found is not None and len(found[1]) >= count:
                return found
            if time.monotonic() > deadline:
                pytest.fail(f"no {count} records of {app} saved in time: {found}; {self.err.lines}")
            time.sleep(0.02)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=TIMEOUT)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=TIMEOUT)


def clean_env(**extra: str) -> dict[str, str]:
    """A child's environment without OTEL_* variables or proxies (posts go to loopback)."""
    return {k: v for k, v in child_env(**extra).items()
            if not k.startswith("OTEL_") and "proxy" not in k.lower()}


def saved_stream(folder: Path, app: str) -> tuple[RecordingInfo, list[Record]] | None:
    files = sorted(folder.glob(f"{app}-*.rlg"))
    if not files:
        return None
    assert len(files) == 1, files
    decoder = StreamDecoder(str(files[0]))
    decoder.feed(files[0].read_bytes())
    messages = list(decoder.messages())
    infos = [m for m in messages if isinstance(m, RecordingInfo)]
    return (infos[0] if infos else None), [m for m in messages if isinstance(m, Record)]  # type: ignore[return-value]


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OtlpViewer]:
    started = OtlpViewer(tmp_path_factory.mktemp("otlp-saved"))
    try:
        yield started
    finally:
        assert started.stop() == 0


def post(port: int, body: bytes, headers: dict[str, str], connection: http.client.HTTPConnection | None = None,
         path: str = "/v1/logs", method: str = "POST") -> tuple[int, dict[str, str], bytes]:
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request(method, path, body, headers)
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def named_request(app: str, count: int) -> ExportLogsServiceRequest:
    request = sdk_request(count)
    request.resource_logs[0].resource.attributes[0].value.string_value = app
    return request


def test_protobuf_json_and_gzip_posts_arrive_in_one_stream(viewer: OtlpViewer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", viewer.port, timeout=TIMEOUT)
    request = named_request("posted", 2)
    bodies = [
        (request.SerializeToString(), {"Content-Type": "application/x-protobuf"}),
        (gzip.compress(request.SerializeToString()),
         {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}),
        (otlp_json(request), {"Content-Type": "application/json"}),
        (gzip.compress(otlp_json(request)), {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
    ]
    for body, headers in bodies:  # one kept-alive connection
        status, got, answer = post(viewer.port, body, headers, conn)
        assert status == 200 and got["content-type"] == headers["Content-Type"]
        if headers["Content-Type"] == "application/json":
            assert json.loads(answer) == {}
        else:
            response = ExportLogsServiceResponse()
            response.ParseFromString(answer)
            assert not response.HasField("partial_success")
    info, records = viewer.records("posted", 8)
    assert (info.application_id, info.recording_id, info.host, info.pid) == ("posted", "i-1", "web-3", 77)
    assert [r.seq for r in records] == list(range(8))
    assert [r.message for r in records] == ["order 0", "order 1"] * 4
    assert all(r.trace_id == TRACE.hex() and r.span_id == SPAN.hex() for r in records)
    assert records[1].extras["order"] == 1 and records[1].line == 41 and records[1].path == "/srv/orders.py"
    viewer.err.wait_for("OTLP: posted[77] (recording i-1) started", timeout=TIMEOUT)


def test_partial_success_past_the_request_cap(viewer: OtlpViewer) -> None:
    request = named_request("capped", receive.MAX_REQUEST_RECORDS + 3)
    status, _, answer = post(viewer.port, gzip.compress(request.SerializeToString()),
                             {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert status == 200
    response = ExportLogsServiceResponse()
    response.ParseFromString(answer)
    assert response.partial_success.rejected_log_records == 3
    assert f"more than {receive.MAX_REQUEST_RECORDS}" in response.partial_success.error_message


@pytest.mark.parametrize("body, headers, status, says", [
    (b"\xff\xff", {"Content-Type": "application/x-protobuf"}, 400, "ExportLogsServiceRequest"),
    (b"{oops", {"Content-Type": "application/json"}, 400, "not JSON"),
    (gzip.compress(b"\0" * (receive.MAX_INFLATED_SIZE + 1)),
     {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"}, 413, "inflates past"),
    (b"x", {"Content-Type": "text/plain"}, 415, "text/plain"),
    (b"x", {"Content-Type": "application/x-protobuf", "Content-Encoding": "zstd"}, 415, "zstd"),
    (b"x", {"Content-Type": "application/x-protobuf", "Origin": "http://evil.example"}, 403, "origin"),
    (b"x", {"Content-Type": "application/x-protobuf", "Host": "evil.example"}, 403, "Host"),
])
def test_refused_requests_get_their_status_and_a_status_body(
    viewer: OtlpViewer, body: bytes, headers: dict[str, str], status: int, says: str,
) -> None:
    got, response_headers, answer = post(viewer.port, body, headers)
    assert got == status and response_headers["connection"] == "close"
    kind = "json" if headers["Content-Type"] == "application/json" else "protobuf"
    if kind == "json":
        assert says in json.loads(answer)["message"]
    else:
        status_pb2 = pytest.importorskip("google.rpc.status_pb2")
        parsed = status_pb2.Status()
        parsed.ParseFromString(answer)
        assert says in parsed.message and parsed.code in (3, 7, 8)


def test_other_paths_and_methods(viewer: OtlpViewer) -> None:
    assert post(viewer.port, b"", {}, path="/v1/traces")[0] == 404
    status, headers, _ = post(viewer.port, b"", {}, method="GET")
    assert status == 405 and headers["allow"] == "POST"
    assert post(viewer.port, b"", {"Origin": "http://evil.example"}, method="OPTIONS")[0] == 405


def raw_exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
        return out


def test_heads_a_strict_parser_refuses(viewer: OtlpViewer) -> None:
    port = viewer.port
    host = f"Host: 127.0.0.1:{port}"
    duplicate = head(host, "Content-Type: application/x-protobuf", "Content-Length: 1",
                     "Content-Length: 1") + b"x"
    assert raw_exchange(port, duplicate).startswith(b"HTTP/1.1 400 ")
    chunked = head(host, "Content-Type: application/x-protobuf", "Transfer-Encoding: chunked") + b"0\r\n\r\n"
    assert raw_exchange(port, chunked).startswith(b"HTTP/1.1 411 ")
    huge = head(host, *(f"X-{i}: {'v' * 100}" for i in range(400)))
    assert raw_exchange(port, huge).startswith(b"HTTP/1.1 431 ")
    too_big = head(host, "Content-Type: application/x-protobuf",
                   f"Content-Length: {receive.MAX_BODY_SIZE + 1}")  # answered before its body
    answer = raw_exchange(port, too_big)
    assert answer.startswith(b"HTTP/1.1 413 ") and f"limit is {receive.MAX_BODY_SIZE}".encode() in answer


def test_connections_past_the_cap_are_answered_503(viewer: OtlpViewer) -> None:
    held = [socket.create_connection(("127.0.0.1", viewer.port), timeout=TIMEOUT)
            for _ in range(otlp_http.MAX_CONNECTIONS)]
    try:
        for sock in held:  # each connection has started a request
            sock.sendall(b"P")
        deadline = time.monotonic() + TIMEOUT
        while True:  # a request answered at once whether or not it is over the cap
            answer = raw_exchange(viewer.port, head(f"Host: 127.0.0.1:{viewer.port}", method="GET"))
            if answer.startswith(b"HTTP/1.1 503 ") or time.monotonic() > deadline:
                break
        assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
    finally:
        for sock in held:
            sock.close()
    request = named_request("after-cap", 1)
    deadline = time.monotonic() + TIMEOUT
    while post(viewer.port, request.SerializeToString(), {"Content-Type": "application/x-protobuf"})[0] != 200:
        assert time.monotonic() < deadline, "the receiver did not take requests again"


SDK_APP = """
import json, logging, os, sys
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

url, count = sys.argv[1], int(sys.argv[2])
resource = Resource.create({"service.name": "sdk-app", "service.instance.id": "sdk-1",
                            "host.name": "sdk-host", "process.pid": os.getpid()})
provider = LoggerProvider(resource=resource)
exporter = OTLPLogExporter(endpoint=url, compression=Compression.Gzip)
provider.add_log_record_processor(BatchLogRecordProcessor(exporter, max_export_batch_size=64))
log = logging.getLogger("sdk.orders")
log.addHandler(LoggingHandler(logger_provider=provider))
log.setLevel(logging.DEBUG)
log.propagate = False
trace.set_tracer_provider(TracerProvider())
with trace.get_tracer("shop").start_as_current_span("checkout") as span:
    context = span.get_span_context()
    for i in range(count):
        log.log([logging.DEBUG, logging.INFO, logging.WARNING][i % 3], "order %d", i,
                extra={"order": i, "ratio": i / 4, "ok": i % 2 == 0, "tags": ["a", "b"]})
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("failed")
provider.shutdown()
print(json.dumps({"trace_id": format(context.trace_id, "032x"),
                  "span_id": format(context.span_id, "016x"), "pid": os.getpid()}))
"""


def test_the_opentelemetry_sdk_exports_into_the_viewer(viewer: OtlpViewer) -> None:
    pytest.importorskip("opentelemetry.sdk._logs")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    count = 150
    done = subprocess.run([sys.executable, "-c", SDK_APP, viewer.url, str(count)], env=clean_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ids = json.loads(done.stdout.strip().splitlines()[-1])
    info, records = viewer.records("sdk-app", count + 1)
    assert (info.application_id, info.recording_id, info.host, info.pid) == (
        "sdk-app", "sdk-1", "sdk-host", ids["pid"])
    assert info.package_version.startswith("opentelemetry ")
    assert len(records) == count + 1 and [r.seq for r in records] == list(range(count + 1))
    assert sorted(r.message for r in records[:count]) == sorted(f"order {i}" for i in range(count))
    for record in records[:count]:
        i = record.extras["order"]
        assert record.message == f"order {i}" and record.logger == "sdk.orders"
        assert record.level == [logging.DEBUG, logging.INFO, logging.WARNING][i % 3]
        assert record.extras["ratio"] == i / 4 and record.extras["ok"] is (i % 2 == 0)
        assert record.extras["tags"] == ["a", "b"]
        assert record.trace_id == ids["trace_id"] and record.span_id == ids["span_id"]
        assert record.trace_flags is not None and record.trace_flags & 1  # sampled
        assert record.path == "<string>" and record.function == "<module>" and record.line > 0
        assert record.process == ids["pid"] and record.time_ns > 0
    failed = records[-1]
    assert failed.level == logging.ERROR and failed.message == "failed"
    assert failed.exception is not None and failed.exception.type == "ZeroDivisionError"
    assert "Traceback" in failed.exception.traceback


def test_our_own_otlp_sink_round_trips_every_field_it_carries(viewer: OtlpViewer, tmp_path: Path) -> None:
    local = tmp_path / "local.rrd"
    handler = RerunHandler(f"save:{local},otlp:{viewer.url}", application_id="own-app",
                           recording_id="own-1")
    logger = logging.getLogger("test_viewer_otlp.own")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        for i in range(40):  # the levels the sink's severities tell apart
            level = (10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52)[i % 15]
            logger.log(level, "item %s of %d", f"#{i}", 40, extra={
                "n": i, "f": i / 3, "flag": i % 2 == 0, "nothing": None, "raw": b"\x00\x01",
                "list": [1, "two", None], "map": {"k": [i]}})
        logger.warning("with a stack", stack_info=True)
        thread = threading.Thread(target=lambda: logger.error("from a thread"), name="worker-7")
        thread.start()
        thread.join()
        try:
            {}["missing"]
        except KeyError:
            logger.exception("lookup failed")
        assert handler.flush(TIMEOUT)
    finally:
        logger.removeHandler(handler)
        handler.close()
    decoder = StreamDecoder(str(local))
    decoder.feed(local.read_bytes())
    messages = list(decoder.messages())
    sent = [m for m in messages if isinstance(m, Record)]
    (sent_info,) = [m for m in messages if isinstance(m, RecordingInfo)]
    info, got = viewer.records("own-app", len(sent))
    assert len(got) == len(sent) == 43
    assert (info.application_id, info.recording_id, info.host, info.pid, info.python_version,
            info.package_version) == (sent_info.application_id, sent_info.recording_id,
                                      sent_info.host, sent_info.pid, sent_info.python_version,
                                      sent_info.package_version)
    carried = ("time_ns", "level", "level_name", "logger", "entity_path", "message", "extras",
               "exception", "stack_info", "thread", "thread_name", "process", "path", "line",
               "function")
    for a, b in zip(sent, got):
        assert {f: getattr(a, f) for f in carried} == {f: getattr(b, f) for f in carried}
    assert got[-2].thread_name == "worker-7" and got[-1].exception is not None
    assert got[-3].stack_info and got[0].extras["raw"] == b"\x00\x01"


# --- without the extra -------------------------------------------------------------------------


def test_without_the_extra_otlp_port_fails_at_start_in_one_line() -> None:
    code = BLOCK_OPENTELEMETRY + textwrap.dedent("""
        from rerun_logging.cli import main
        sys.exit(main(["viewer", "--port", "0", "--otlp-port", "0", "--no-browser"]))
    """)
    done = subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("rerun-logging viewer: --otlp-port needs the rerun-logging[otlp] extra")
    assert "pip install 'rerun-logging[otlp]'" in line


def test_a_taken_otlp_port_is_said_and_the_viewer_exits_3() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "rerun_logging", "viewer", "--port", "0", "--otlp-port", str(port),
             "--no-browser"], env=clean_env(), capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 3, done.stderr
    assert f"cannot listen for OTLP/HTTP on 127.0.0.1:{port}" in done.stderr
    assert "listening on" not in done.stderr
