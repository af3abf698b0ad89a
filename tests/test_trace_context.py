"""Trace correlation: a record logged in an OpenTelemetry span carries its trace context.

Real OpenTelemetry (``opentelemetry-api`` and ``-sdk``): spans started with a real
``TracerProvider``'s tracer, records logged through a real ``RerunHandler`` into a
file and read back with :mod:`rerun_logging.reader`, then printed, fed to a page
and mapped to OTLP. The global tracer provider is only ever set in subprocesses;
in this process the spans come from a provider of their own (the current span is
a context variable, whatever provider made it).
"""

from __future__ import annotations

import json
import logging
import sys
import types
from pathlib import Path
from typing import Any, Iterator

import pytest

from rerun_logging import capture, format, reader, render
from rerun_logging.viewer.feed import FeedClient

from .conftest import run_python

pytest.importorskip("opentelemetry.trace")
pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402

APP = """
import json, logging, sys
{early}
from rerun_logging import RerunHandler
h = RerunHandler("save:" + sys.argv[1], application_id="traced")
log = logging.getLogger("app.traced"); log.addHandler(h); log.setLevel(logging.INFO)
log.propagate = False
log.info("before any span")
{late}
trace.set_tracer_provider(TracerProvider())
tracer = trace.get_tracer("app")
ids = []
with tracer.start_as_current_span("request") as outer:
    log.info("in the request %d", 1, extra={{"user": "ann"}})
    with tracer.start_as_current_span("query") as inner:
        log.warning("in the query")
    log.info("back in the request")
    ids = [inner.get_span_context(), outer.get_span_context()]
log.info("after the span")
h.close()
print(json.dumps([[f"{{c.trace_id:032x}}", f"{{c.span_id:016x}}", int(c.trace_flags)] for c in ids]))
"""
IMPORT_OTEL = "from opentelemetry import trace\nfrom opentelemetry.sdk.trace import TracerProvider"


def traced_recording(path: Path, otel_first: bool) -> tuple[list[format.Record], list[list[Any]]]:
    """Run the app (OpenTelemetry imported before or after rerun_logging); its records and spans."""
    early, late = (IMPORT_OTEL, "") if otel_first else ("", IMPORT_OTEL)
    code = APP.format(early=early, late=late).replace("sys.argv[1]", repr(str(path)))
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    spans = json.loads(result.stdout)
    records = [m for m in reader.read_messages(str(path)) if isinstance(m, format.Record)]
    return records, spans


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[format.Record], list[list[Any]]]:
    path = tmp_path_factory.mktemp("trace") / "traced.rrd"
    records, spans = traced_recording(path, otel_first=False)
    return path, records, spans


def trace_of(record: format.Record) -> tuple[str | None, str | None, int | None]:
    return (record.trace_id, record.span_id, record.trace_flags)


# --- capture, end to end --------------------------------------------------------------


@pytest.mark.parametrize("otel_first", [False, True])
def test_records_in_a_span_carry_its_ids_and_the_others_none(
    tmp_path: Path, otel_first: bool
) -> None:
    """OpenTelemetry imported before rerun_logging, or after it and after a first record
    (the import is noticed: the flag capture reads is set)."""
    records, ((trace_id, query, flags), (same_trace, request, _)) = traced_recording(
        tmp_path / "run.rrd", otel_first
    )
    assert same_trace == trace_id and len(trace_id) == 32 and len(request) == 16
    assert [(r.message, trace_of(r)) for r in records] == [
        ("before any span", (None, None, None)),
        ("in the request 1", (trace_id, request, flags)),
        ("in the query", (trace_id, query, flags)),
        ("back in the request", (trace_id, request, flags)),
        ("after the span", (None, None, None)),
    ]
    assert flags & 1  # the SDK's default sampler samples
    assert records[1].extras == {"user": "ann"}  # the trace context is no extra


def test_an_app_without_opentelemetry_gets_no_trace_fields_and_imports_none(tmp_path: Path) -> None:
    path = tmp_path / "plain.rrd"
    code = f"""
import logging, sys
from rerun_logging import RerunHandler
h = RerunHandler("save:" + {str(path)!r})
log = logging.getLogger("plain"); log.addHandler(h); log.setLevel(logging.INFO); log.propagate = False
for i in range(10):
    log.info("request %d done", i, extra={{"user": "u"}})
h.close()
print(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    records = [m for m in reader.read_messages(str(path)) if isinstance(m, format.Record)]
    assert len(records) == 10
    assert all(trace_of(r) == (None, None, None) for r in records)
    data = path.read_bytes()
    assert data[8:10] == bytes((1, format.FORMAT_MINOR))


# --- capture, in this process -------------------------------------------------------------


@pytest.fixture
def tracer() -> Iterator[Any]:
    provider = TracerProvider()
    yield provider.get_tracer("test")
    provider.shutdown()


def columns_of(*log_records: logging.LogRecord) -> dict[str, Any]:
    columns, _ = capture.record_columns([capture.capture(r) for r in log_records], 0)
    return columns


def make(logger: logging.Logger, msg: str = "m") -> logging.LogRecord:
    return logger.makeRecord(logger.name, logging.INFO, "/srv/app.py", 1, msg, None, None)


def test_capture_keeps_the_current_span_at_emit(logger: logging.Logger, tracer: Any) -> None:
    outside = make(logger)
    with tracer.start_as_current_span("s") as span:
        inside = make(logger)
        context = span.get_span_context()
        captured = capture.capture(inside)
    assert capture.capture(outside).get(capture.TRACE_KEY) is None
    assert captured[capture.TRACE_KEY] == (context.trace_id, context.span_id, int(context.trace_flags))
    assert list(captured)[-2:] == [capture.TRACE_KEY, capture.MESSAGE_KEY]
    columns, extras = capture.record_columns([capture.capture(outside), captured], 0)
    assert columns["trace"] == [[1, context.trace_id.to_bytes(16, "big"),
                                 context.span_id.to_bytes(8, "big"), int(context.trace_flags)]]
    assert [x or {} for x in extras] == [{}, {}]  # the trace context is no extra
    # the same columns as the Record path writes
    (record,) = format.decode_records({**columns, "extra": extras})[1:]
    assert trace_of(record) == (f"{context.trace_id:032x}", f"{context.span_id:016x}",
                                int(context.trace_flags))
    assert list(format.columns_for([record])[0]) == list(columns)


def test_no_span_no_trace_column(logger: logging.Logger) -> None:
    """OpenTelemetry is imported in this process: without a current span, nothing is added."""
    assert "opentelemetry.trace" in sys.modules and capture._trace_imported
    assert capture.trace_context() is None
    assert "trace" not in columns_of(make(logger), make(logger))


def test_the_import_is_noticed_by_the_watch_or_else_by_the_next_batch(
    logger: logging.Logger, tracer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture, "_trace_imported", False)
    watch = capture._TraceImportWatch()
    assert watch.find_spec("opentelemetry.context") is None and not capture._trace_imported
    assert watch.find_spec("opentelemetry.trace") is None and capture._trace_imported
    monkeypatch.setattr(capture, "_trace_imported", False)
    with tracer.start_as_current_span("s"):
        first = capture.capture(make(logger))  # a module the watch did not see being imported
        assert capture.TRACE_KEY not in first
        capture.record_columns([first], 0)  # the flusher finds it in sys.modules
        assert capture._trace_imported
        assert capture.TRACE_KEY in capture.capture(make(logger))


def test_a_broken_trace_module_never_fails_logging(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = types.ModuleType("opentelemetry.trace")

    def get_current_span() -> Any:
        raise RuntimeError("no context")

    broken.get_current_span = get_current_span  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", broken)
    assert capture.trace_context() is None
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", types.ModuleType("opentelemetry.trace"))
    assert capture.trace_context() is None  # still being imported: no get_current_span yet
    assert "trace" not in columns_of(make(logger))


def test_a_trace_context_that_is_not_one_is_left_out(logger: logging.Logger) -> None:
    """Only ``trace_context`` puts one there; a forged one (zero ids, not ints) is dropped."""
    states = [capture.capture(make(logger)) for _ in range(3)]
    for state, forged in zip(states, [(0, 1, 1), (1.5, 1, 1), (1, 2, 3)]):
        message = state.pop(capture.MESSAGE_KEY)
        state[capture.TRACE_KEY] = forged
        state[capture.MESSAGE_KEY] = message
    columns, extras = capture.record_columns(states, 0)
    assert [row[0] for row in columns["trace"]] == [2]
    assert [x or {} for x in extras] == [{}, {}, {}]


# --- readers ------------------------------------------------------------------------------


def test_print_shows_trace_and_span_and_json_names_them_as_opentelemetry_does(
    recorded: tuple[Path, list[format.Record], list[list[Any]]],
) -> None:
    _, records, ((trace_id, query, flags), _) = recorded
    line = render.text_line(records[2], None)
    assert line.endswith(f"in the query trace={trace_id} span={query}")
    assert "trace=" not in render.text_line(records[0], None)
    fields = render.json_fields(records[2], None)
    assert (fields["trace_id"], fields["span_id"], fields["trace_flags"]) == (
        trace_id, query, f"{flags:02x}")
    assert not {"trace_id", "span_id", "trace_flags"} & set(render.json_fields(records[0], None))
    json.dumps(fields)


def test_the_cli_prints_them(recorded: tuple[Path, list[format.Record], list[list[Any]]]) -> None:
    path, _, ((trace_id, query, _), (_, request, _)) = recorded
    result = run_python(f"import sys; from rerun_logging.cli import main; sys.exit(main(['print', {str(path)!r}]))")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[2].endswith(f"trace={trace_id} span={query}") and "trace=" not in lines[0]
    assert lines[1].endswith(f"user=ann trace={trace_id} span={request}")


def test_the_feed_sends_a_sparse_trace_column(
    recorded: tuple[Path, list[format.Record], list[list[Any]]],
) -> None:
    _, records, ((trace_id, query, flags), (_, request, _)) = recorded
    feed = FeedClient()
    feed.records("rec", records, 1)
    (batch,) = [json.loads(m) for m in feed.data_to_send() if '"records"' in m]
    assert batch["trace"] == [
        [1, trace_id, request, flags], [2, trace_id, query, flags], [3, trace_id, request, flags]]
    feed.records("rec", records[:1], 1)
    (plain,) = [json.loads(m) for m in feed.data_to_send() if '"records"' in m]
    assert "trace" not in plain


def test_the_otlp_mapping_sets_the_log_records_trace_fields(
    recorded: tuple[Path, list[format.Record], list[list[Any]]],
) -> None:
    mapping = pytest.importorskip("rerun_logging.otlp.mapping")
    path, records, ((trace_id, query, flags), (_, request, _)) = recorded
    info = next(m for m in reader.read_messages(str(path)) if isinstance(m, format.RecordingInfo))
    request_message = mapping.export_request(mapping.resource(info), records)
    body = request_message.SerializeToString()
    parsed = type(request_message).FromString(body)  # what goes on the wire, read back
    (scope,) = parsed.resource_logs[0].scope_logs
    logs = list(scope.log_records)
    assert [(log.trace_id.hex(), log.span_id.hex(), log.flags) for log in logs] == [
        ("", "", 0),
        (trace_id, request, flags), (trace_id, query, flags), (trace_id, request, flags),
        ("", "", 0),
    ]
    assert not any(kv.key in ("trace_id", "span_id") for log in logs for kv in log.attributes)
