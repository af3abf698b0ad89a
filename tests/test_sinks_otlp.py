"""otlp: a real RerunHandler and logging, posting to a real OTLP/HTTP receiver on loopback."""

from __future__ import annotations

import gzip
import http.server
import logging
import os
import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

pytest.importorskip("opentelemetry.proto", reason="needs the rerun-logging[otlp] extra")

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (  # noqa: E402
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from rerun_logging import Record, RerunHandler, SinkSpecError  # noqa: E402
from rerun_logging.otlp import mapping  # noqa: E402

from .conftest import child_env, free_port, read_messages  # noqa: E402

WAIT = 15.0
"""How long a test waits for something that takes milliseconds."""


@dataclass
class Received:
    """One request as the receiver got it."""

    path: str
    headers: dict[str, str]
    body: bytes
    request: ExportLogsServiceRequest
    at: float
    peer: tuple[str, int]

    def log_records(self, notes: bool = False) -> list[Any]:
        return [
            log
            for resource_logs in self.request.resource_logs
            for scope in resource_logs.scope_logs
            if (scope.scope.name == mapping.DROPPED_SCOPE) == notes
            for log in scope.log_records
        ]


Answer = tuple[int, dict[str, str], bytes]
STALL: Answer = (0, {}, b"")
"""An answer that never comes (until the receiver stops)."""


class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1: decodes each request, answers as scripted.

    ``answers`` are used in order, then ``default``; ``STALL`` holds the request unanswered."""

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Received] = []
        self.answers: deque[Answer] = deque()
        self.default: Answer = (200, {}, b"")
        self.changed = threading.Condition()
        self.released = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                raw = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
                received = Received(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                    ExportLogsServiceRequest.FromString(raw), time.monotonic(),
                    self.client_address[:2],
                )
                with receiver.changed:
                    receiver.requests.append(received)
                    status, headers, payload = (
                        receiver.answers.popleft() if receiver.answers else receiver.default
                    )
                    receiver.changed.notify_all()
                if status == 0:
                    receiver.released.wait(WAIT)
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/logs"

    def log_records(self, notes: bool = False) -> list[Any]:
        with self.changed:
            return [log for request in self.requests for log in request.log_records(notes)]

    def wait_for(self, condition: Callable[[Receiver], bool], timeout: float = WAIT) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: condition(self), timeout)

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own OTEL_* settings are not the test's."""
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def otlp_handler(url: str, **kwargs: Any) -> RerunHandler:
    kwargs.setdefault("application_id", "shop")
    kwargs.setdefault("retryStart", 0.05)
    kwargs.setdefault("retryMax", 0.2)
    return RerunHandler(f"otlp:{url}", **kwargs)


def value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in any_value.kvlist_value.values}
    return (kind, getattr(any_value, kind)) if kind else None


def attributes(log: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in log.attributes}


def settled(handler: RerunHandler, records: int) -> tuple[int, int, int]:
    (stats,) = handler.stats.sinks
    assert stats.written + stats.dropped + stats.pending == records, stats
    return stats.written, stats.dropped, stats.pending


def until(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Wait for ``condition`` (checked every few milliseconds) for at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- what arrives -----------------------------------------------------------------------


def test_every_record_arrives_once_with_its_fields(receiver: Receiver, logger: logging.Logger) -> None:
    handler = otlp_handler(receiver.url, recording_id="run-42")
    logger.addHandler(handler)
    for i in range(200):
        logger.info("order %d placed", i, extra={
            "order": i, "amount": i / 2, "paid": i % 2 == 0, "tags": ["a", i], "who": {"id": i},
            "thing": object(),
        })
    logger.warning("low stock")
    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup failed")
    assert handler.flush(WAIT)
    handler.close()
    assert settled(handler, 202) == (202, 0, 0)

    logs = receiver.log_records()
    assert [log.body.string_value for log in logs[:200]] == [f"order {i} placed" for i in range(200)]
    assert len(logs) == 202 and receiver.log_records(notes=True) == []
    first = attributes(logs[1])
    assert first["order"] == ("int_value", 1)
    assert first["amount"] == ("double_value", 0.5)
    assert first["paid"] == ("bool_value", False)
    assert first["tags"] == [("string_value", "a"), ("int_value", 1)]
    assert first["who"] == {"id": ("int_value", 1)}
    assert first["thing"][0] == "string_value" and "object" in first["thing"][1]
    assert first["code.file.path"] == ("string_value", __file__)
    assert first["code.function.name"] == ("string_value", "test_every_record_arrives_once_with_its_fields")
    assert first["code.line.number"][0] == "int_value"
    assert first["thread.id"] == ("int_value", threading.get_ident())
    assert first["thread.name"] == ("string_value", "MainThread")
    assert [(log.severity_number, log.severity_text) for log in logs[199:]] == [
        (9, "INFO"), (13, "WARNING"), (17, "ERROR"),
    ]
    failed = attributes(logs[-1])
    assert failed["exception.type"] == ("string_value", "KeyError")
    assert failed["exception.message"] == ("string_value", "'missing'")
    assert "Traceback" in failed["exception.stacktrace"][1]
    assert all(log.time_unix_nano == log.observed_time_unix_nano > 0 for log in logs)
    assert abs(logs[0].time_unix_nano / 1e9 - time.time()) < 60

    request = receiver.requests[0]
    assert request.path == "/v1/logs"
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["user-agent"].startswith("rerun-logging/")
    assert "content-encoding" not in request.headers
    (resource_logs,) = request.request.resource_logs
    assert [scope.scope.name for scope in resource_logs.scope_logs] == [logger.name]
    resource = attributes(resource_logs.resource)
    assert resource["service.name"] == ("string_value", "shop")
    assert resource["service.instance.id"] == ("string_value", "run-42")
    assert resource["host.name"] == ("string_value", socket.gethostname())
    assert resource["process.pid"] == ("int_value", os.getpid())
    assert resource["process.runtime.name"] == ("string_value", sys.implementation.name)
    assert resource["process.runtime.version"] == ("string_value", sys.version.split()[0])


def test_requests_share_one_kept_alive_connection(receiver: Receiver, logger: logging.Logger) -> None:
    handler = otlp_handler(receiver.url)
    logger.addHandler(handler)
    for i in range(3):
        logger.info("batch %d", i)
        assert handler.flush(WAIT)
    handler.close()
    assert len(receiver.requests) == 3
    assert len({request.peer for request in receiver.requests}) == 1


def test_an_answer_that_closes_the_connection(receiver: Receiver, logger: logging.Logger) -> None:
    receiver.default = (200, {"Connection": "close"}, b"")
    handler = otlp_handler(receiver.url)
    logger.addHandler(handler)
    for i in range(3):
        logger.info("batch %d", i)
        assert handler.flush(WAIT)
    handler.close()
    assert len(receiver.log_records()) == 3 and settled(handler, 3) == (3, 0, 0)
    assert len({request.peer for request in receiver.requests}) == 3


def test_gzip_headers_and_resource_from_the_environment(
    receiver: Receiver, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{receiver.port}/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=s3cret%20key,x-tenant=acme")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "api-key=logs-only")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "checkout")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,service.name=ignored")
    handler = RerunHandler("otlp", application_id="shop")
    logger.addHandler(handler)
    for i in range(50):
        logger.info("compressed %d", i)
    handler.close()
    assert settled(handler, 50) == (50, 0, 0)
    request = receiver.requests[0]
    assert request.path == "/v1/logs"
    assert request.headers["content-encoding"] == "gzip"
    assert request.body[:2] == b"\x1f\x8b"
    assert request.headers["api-key"] == "logs-only"  # the LOGS_ variable wins, whole
    assert "x-tenant" not in request.headers
    resource = attributes(request.request.resource_logs[0].resource)
    assert resource["service.name"] == ("string_value", "checkout")
    assert resource["deployment.environment"] == ("string_value", "test")
    assert len(receiver.log_records()) == 50


def test_combined_with_save_through_the_environment(
    receiver: Receiver, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    saved = tmp_path / "run.rrd"
    monkeypatch.setenv("RERUN_LOGGING_SINK", f"save:{saved},otlp:{receiver.url}")
    handler = RerunHandler()  # memory, overridden
    assert [spec.mode for spec in handler.sinks] == ["save", "otlp"]
    logger.addHandler(handler)
    for i in range(30):
        logger.info("both %d", i)
    handler.close()
    in_file = [m.message for m in read_messages(saved) if isinstance(m, Record)]
    assert in_file == [f"both {i}" for i in range(30)]
    assert [log.body.string_value for log in receiver.log_records()] == in_file
    assert [s.written for s in handler.stats.sinks] == [30, 30]


# --- when the receiver is not well -------------------------------------------------------


def test_503_is_retried_after_its_retry_after(
    receiver: Receiver, logger: logging.Logger, capsys: pytest.CaptureFixture[str],
) -> None:
    receiver.answers.append((503, {"Retry-After": "1"}, b""))
    handler = otlp_handler(receiver.url)  # its own backoff would retry after 0.05 s
    logger.addHandler(handler)
    for i in range(5):
        logger.info("retried %d", i)
    assert handler.flush(WAIT)
    handler.close()
    first, second, *rest = receiver.requests
    assert second.at - first.at >= 0.9
    assert second.body == first.body  # the same batch, whole and first
    assert settled(handler, 5) == (5, 0, 0)
    received = [log.body.string_value for log in receiver.log_records()]
    again = len(first.log_records())
    assert received[again:] == [f"retried {i}" for i in range(5)]  # the first batch twice, counted once
    err = capsys.readouterr().err
    # The answer is told once (counted as "answered 503": the port may hold "503" too).
    assert err.count("answered 503") == 1 and "delivering again" in err


def test_a_receiver_down_then_up_loses_nothing(logger: logging.Logger) -> None:
    port = free_port()
    handler = otlp_handler(f"http://127.0.0.1:{port}/v1/logs")
    logger.addHandler(handler)
    for i in range(40):
        logger.info("kept %d", i)
    def held() -> bool:
        sinks = handler.stats.sinks
        return bool(sinks) and sinks[0].pending == 40 and "connection refused" in (sinks[0].error or "")

    assert until(held)
    assert settled(handler, 40) == (0, 0, 40)
    receiver = Receiver(port)
    try:
        assert handler.flush(WAIT)
        handler.close()
        assert [log.body.string_value for log in receiver.log_records()] == [f"kept {i}" for i in range(40)]
        assert settled(handler, 40) == (40, 0, 0)
    finally:
        receiver.stop()


def test_the_backlog_is_bounded_and_its_drops_counted_and_reported(logger: logging.Logger) -> None:
    port = free_port()
    handler = otlp_handler(f"http://127.0.0.1:{port}/v1/logs", buffer_size=32 * 1024)
    logger.addHandler(handler)
    total = 0
    for chunk in range(20):
        for i in range(100):
            logger.info("%s %d", os.urandom(60).hex(), total)  # incompressible: frames stay large
            total += 1
        handler.flush(0.05)
    assert until(lambda: bool(handler.stats.sinks) and handler.stats.sinks[0].pending < total)
    receiver = Receiver(port)
    try:
        assert handler.flush(WAIT)
        handler.close()
        written, dropped, pending = settled(handler, total)
        assert dropped > 0 and pending == 0
        logs = receiver.log_records()
        assert len(logs) == written
        assert logs[-1].body.string_value.endswith(f" {total - 1}")  # the oldest went first
        notes = receiver.log_records(notes=True)
        assert sum(attributes(n)["rerun_logging.dropped.count"][1] for n in notes) == dropped
        assert all(n.event_name == mapping.DROPPED_EVENT for n in notes)
    finally:
        receiver.stop()


def test_400_is_dropped_counted_and_said_once(
    receiver: Receiver, logger: logging.Logger, capsys: pytest.CaptureFixture[str],
) -> None:
    receiver.default = (400, {}, b"")
    handler = otlp_handler(receiver.url)
    logger.addHandler(handler)
    logger.info("one")
    logger.info("two")
    assert handler.flush(WAIT)
    for i in range(3):
        logger.info("more %d", i)
    assert handler.flush(WAIT)
    handler.close()
    received = [log.body.string_value for log in receiver.log_records()]
    assert received == ["one", "two", "more 0", "more 1", "more 2"]  # none sent again
    assert settled(handler, 5) == (0, 5, 0)
    assert handler.stats.dropped == 5
    assert capsys.readouterr().err.count("refused a request: 400") == 1


def test_partial_success_is_counted_as_dropped(
    receiver: Receiver, logger: logging.Logger, capsys: pytest.CaptureFixture[str],
) -> None:
    answer = ExportLogsServiceResponse(
        partial_success=ExportLogsPartialSuccess(rejected_log_records=2, error_message="too old")
    )
    receiver.default = (200, {}, answer.SerializeToString())
    handler = otlp_handler(receiver.url)
    logger.addHandler(handler)
    for i in range(5):
        logger.info("partly %d", i)
    handler.close()
    rejected = sum(min(2, len(request.log_records())) for request in receiver.requests)
    assert rejected >= 2
    assert settled(handler, 5) == (5 - rejected, rejected, 0)
    err = capsys.readouterr().err
    assert err.count("rejected") == 1 and "(too old); they are dropped (counted)" in err


def test_no_answer_in_time_is_sent_again(
    receiver: Receiver, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_TIMEOUT", "300")  # milliseconds
    receiver.answers.append(STALL)
    handler = otlp_handler(receiver.url)
    logger.addHandler(handler)
    for i in range(4):
        logger.info("late %d", i)
    assert handler.flush(WAIT)
    handler.close()
    first, second, *rest = receiver.requests
    assert second.body == first.body and second.at - first.at >= 0.3
    assert second.peer != first.peer  # on a new connection
    received = [log.body.string_value for log in receiver.log_records()]
    assert received[len(first.log_records()):] == [f"late {i}" for i in range(4)]
    assert settled(handler, 4) == (4, 0, 0)
    assert "no answer within 0.3s" in capsys.readouterr().err


def test_close_returns_in_time_when_the_receiver_never_answers(
    receiver: Receiver, logger: logging.Logger, capsys: pytest.CaptureFixture[str],
) -> None:
    receiver.default = STALL
    handler = otlp_handler(receiver.url, flush_timeout=1.0)
    logger.addHandler(handler)
    for i in range(6):
        logger.info("stuck %d", i)
    assert receiver.wait_for(lambda r: len(r.requests) == 1)
    started = time.monotonic()
    handler.close()
    assert time.monotonic() - started < 2.0
    assert settled(handler, 6) == (0, 0, 6)
    assert "6 records not delivered" in capsys.readouterr().err


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["otlp:", "otlp:ftp://host/v1/logs", "otlp:127.0.0.1:4318"])
def test_a_bad_url_is_refused_at_configuration(spec: str) -> None:
    with pytest.raises(SinkSpecError):
        RerunHandler(spec)


def test_a_bad_endpoint_variable_is_refused_at_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")
    with pytest.raises(SinkSpecError, match="OTEL_EXPORTER_OTLP_ENDPOINT"):
        RerunHandler("otlp")
    RerunHandler("otlp:http://127.0.0.1:1/v1/logs").close()  # a URL given wins


def test_a_bad_variable_is_said_once_and_skipped(
    receiver: Receiver, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli")
    handler = otlp_handler(receiver.url)
    logger.addHandler(handler)
    logger.info("plain")
    handler.close()
    assert "content-encoding" not in receiver.requests[0].headers
    assert capsys.readouterr().err.count("'brotli'") == 1


def _child_env(**extra: str) -> dict[str, str]:
    return {k: v for k, v in child_env(**extra).items() if not k.startswith("OTEL_")}


BLOCK_OPENTELEMETRY = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
"""


def test_without_the_extra_an_otlp_spec_is_refused_in_one_line() -> None:
    code = BLOCK_OPENTELEMETRY + textwrap.dedent("""
        import os, sys
        import rerun_logging
        from rerun_logging import RerunHandler, SinkSpecError
        try:
            RerunHandler("save:unused.rrd,otlp")
        except SinkSpecError as error:
            assert isinstance(error, ImportError) and isinstance(error, ValueError)
            print("ERROR", error)
        os.environ["RERUN_LOGGING_SINK"] = "otlp"
        handler = RerunHandler("memory")
        print("SINKS", [str(s) for s in handler.sinks])
        handler.close()
        print("LOADED", sorted(m for m in sys.modules if m.startswith("opentelemetry")))
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], env=_child_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    (error,) = [line for line in lines if line.startswith("ERROR")]
    assert "rerun-logging[otlp]" in error and "pip install" in error
    assert "SINKS ['memory']" in lines and "LOADED []" in lines
    assert done.stderr.count("RERUN_LOGGING_SINK") == 1 and "rerun-logging[otlp]" in done.stderr


def test_import_rerun_logging_never_imports_opentelemetry() -> None:
    code = (
        "import sys, rerun_logging\n"
        "from rerun_logging import RerunHandler\n"
        "RerunHandler('memory').close()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'google.protobuf'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=_child_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_flusher_imports_nothing(receiver: Receiver) -> None:
    """Every module the sink uses is imported where the handler is configured (prepare)."""
    code = textwrap.dedent(f"""
        import logging, sys, threading
        from rerun_logging import RerunHandler
        handler = RerunHandler("otlp:{receiver.url}")
        imports = []
        def hook(event, args):
            if event == "import" and threading.current_thread() is not threading.main_thread():
                imports.append((threading.current_thread().name, args[0]))
        sys.addaudithook(hook)
        log = logging.getLogger("child")
        log.addHandler(handler)
        log.propagate = False
        log.warning("with %s", "args", extra={{"n": 1, "l": [1.5], "m": {{"k": None}}}})
        try:
            1 / 0
        except ZeroDivisionError:
            log.exception("failed")
        assert handler.flush(10)
        handler.close()
        print("IMPORTS", imports)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        env=_child_env(OTEL_EXPORTER_OTLP_COMPRESSION="gzip"),
    )
    assert done.returncode == 0, done.stderr
    assert "IMPORTS []" in done.stdout.splitlines(), done.stdout
    assert len(receiver.log_records()) == 2


# --- https --------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_https_with_the_certificate_variable(
    tmp_path: Path, logger: logging.Logger, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver = Receiver(tls=context)
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_CERTIFICATE", str(cert))
        handler = otlp_handler(f"https://127.0.0.1:{receiver.port}/v1/logs")
        logger.addHandler(handler)
        for i in range(3):
            logger.info("secure %d", i)
            assert handler.flush(WAIT)
        handler.close()
        assert [log.body.string_value for log in receiver.log_records()] == [
            f"secure {i}" for i in range(3)
        ]
        assert settled(handler, 3) == (3, 0, 0)
    finally:
        receiver.stop()


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl to make a certificate")
def test_https_refuses_a_certificate_it_cannot_verify(
    tmp_path: Path, logger: logging.Logger, capsys: pytest.CaptureFixture[str],
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    receiver = Receiver(tls=context)
    try:
        handler = otlp_handler(f"https://127.0.0.1:{receiver.port}/v1/logs", flush_timeout=0.5)
        logger.addHandler(handler)
        logger.info("not sent")
        handler.close()
        assert settled(handler, 1) == (0, 0, 1)
        assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err
    finally:
        receiver.stop()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_posts_its_own_records(receiver: Receiver) -> None:
    code = textwrap.dedent(f"""
        import logging, os
        from rerun_logging import RerunHandler
        handler = RerunHandler("otlp:{receiver.url}", application_id="forking")
        log = logging.getLogger("forking")
        log.addHandler(handler)
        log.propagate = False
        log.warning("parent before")
        assert handler.flush(10)
        pid = os.fork()
        if pid == 0:
            log.warning("child")
            logging.shutdown()
            os._exit(0)
        os.waitpid(pid, 0)
        log.warning("parent after")
        handler.close()
        print("CHILD", pid)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], env=_child_env(), capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    child = int(done.stdout.split("CHILD")[1])
    by_pid: dict[int, list[str]] = {}
    instances = set()
    for request in receiver.requests:
        resource = attributes(request.request.resource_logs[0].resource)
        instances.add(resource["service.instance.id"])
        by_pid.setdefault(resource["process.pid"][1], []).extend(
            log.body.string_value for log in request.log_records()
        )
    assert by_pid.pop(child) == ["child"]
    assert list(by_pid.values()) == [["parent before", "parent after"]]
    assert len(instances) == 1  # one recording: the run's id, shared by its children
