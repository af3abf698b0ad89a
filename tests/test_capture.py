"""Capture: real LogRecords to columns to bytes and back, with every odd value a user logs.

Records are made by real loggers and taken in a handler's ``emit`` (as RerunHandler
does), turned into a RECORDS message with ``record_columns`` and ``pack_extras``, and
read back through ``StreamDecoder``. Where python-json-logger defines how a value
reads, its ``JsonFormatter`` output for the same record is the expectation.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import gc
import io
import json
import logging
import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from pythonjsonlogger.core import RESERVED_ATTRS as JSON_LOGGER_RESERVED
from pythonjsonlogger.json import JsonFormatter

from rerun_logging import RerunHandler, format
from rerun_logging import capture as capture_module
from rerun_logging.capture import RESERVED_ATTRS, Captured, capture, record_batch, record_columns
from rerun_logging.flusher import _as_read as flusher_as_read
from rerun_logging.format import (
    MAX_EXTRAS_BYTES,
    MAX_FIELD_CHARS,
    Record,
    StreamDecoder,
    entity_path_for,
)

from .conftest import read_messages


@pytest.fixture(autouse=True, params=["speedups", "python"])
def capture_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs through capture's C half (where it is built) and without it.

    ``.ci/run`` sets RERUN_LOGGING_REQUIRE_SPEEDUPS: there a build that silently lost
    the extension (it is optional) fails these tests instead of skipping them."""
    if request.param == "python":
        monkeypatch.setattr(capture_module, "_plain_capture", None)
        monkeypatch.setattr(capture_module, "_middles", None)
        monkeypatch.setattr(capture_module, "_batch_rows", None)
        monkeypatch.setattr(capture_module, "_rows_fit", None)
        monkeypatch.setattr(capture_module, "_render_rows", None)
        monkeypatch.setattr(capture_module, "_extra_columns_of", None)
    elif capture_module._plain_capture is None:
        if os.environ.get("RERUN_LOGGING_REQUIRE_SPEEDUPS"):
            pytest.fail("rerun_logging._speedups is not built, and RERUN_LOGGING_REQUIRE_SPEEDUPS is set")
        pytest.skip("rerun_logging._speedups is not built here")
    return str(request.param)


class Collecting(logging.Handler):
    """Keeps each record and what ``capture`` took of it inside ``emit``."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.captured: list[Captured] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.captured.append(capture(record))


@pytest.fixture
def collected(logger: logging.Logger) -> Iterator[Collecting]:
    handler = Collecting()
    logger.addHandler(handler)
    yield handler


def handle_directly(
    handler: logging.Handler, logger: logging.Logger, msg: Any, *args: Any,
    level: int = logging.INFO, extra: dict[str, Any] | None = None,
) -> None:
    """A record made by ``logger`` handed to ``handler`` only.

    For records that pytest's own capture handlers (which it adds to every logger)
    would raise on, or would print in full on a failure.
    """
    handler.handle(logger.makeRecord(logger.name, level, __file__, 1, msg, args, None, extra=extra))


AS_READ: list[int] = []
"""How many batches :func:`read_back` also checked through ``columns_as_read``."""


def read_back(captured: list[Captured], first_seq: int = 0, prefix: str = "") -> list[Record]:
    """The records of one RECORDS frame built from ``captured``, through the decoder.

    Where the batch packs exactly, the records a sink in this process reads without
    the frame (``format.columns_as_read``, the rerun sink's path) must be the same."""
    encoded = record_batch(captured, first_seq, prefix)
    payload = format.records_message(encoded.columns, format.pack_extras(encoded.extras))
    decoder = StreamDecoder("capture-test")
    decoder.feed(format.HEADER + format.encode_frame(payload))
    records = list(decoder.messages())
    decoder.close()
    assert all(isinstance(r, Record) for r in records)
    if encoded.args_exact and format.pack_extras_exactly(encoded.extras) is not None:
        assert encoded.times == format.delta_decode(encoded.columns["time"])
        as_read = format.columns_as_read(encoded.columns, encoded.args, encoded.extras, encoded.times)
        assert as_read.records() == records
        flushers = flusher_as_read(encoded)  # its messages rendered by messages_as_read
        assert flushers is not None and flushers.records() == records
        AS_READ.append(len(records))
    unframed = record_batch(captured, first_seq, prefix, framed=False)  # the rerun sinks' batch
    if unframed.args_exact and capture_module.extras_fit(unframed):
        in_process = flusher_as_read(unframed)  # extras as columns, where they could be
        assert in_process is not None and in_process.records() == records
    return records  # type: ignore[return-value]


def json_logger_view(record: logging.LogRecord) -> dict[str, Any]:
    """What python-json-logger writes for ``record`` (without its ``message`` key)."""
    out = json.loads(JsonFormatter().format(record))
    out.pop("message")
    return out


# --- extras -------------------------------------------------------------------------


def test_capture_keeps_the_fields_of_real_records(logger: logging.Logger, collected: Collecting) -> None:
    logger.info("hello %s", "world", extra={"user": "u", "n": 3})
    logger.warning("plain")
    logger.debug("n=%d", 5, stack_info=True)
    records = read_back(collected.captured, first_seq=40, prefix="svc")
    assert [r.seq for r in records] == [40, 41, 42]
    assert [r.message for r in records] == ["hello world", "plain", "n=5"]
    assert [r.template for r in records] == ["hello %s", "plain", "n=%d"]
    assert [(r.level, r.level_name) for r in records] == [(20, "INFO"), (30, "WARNING"), (10, "DEBUG")]
    assert [r.extras for r in records] == [{"user": "u", "n": 3}, {}, {}]
    for r, source in zip(records, collected.records):
        assert r.logger == logger.name
        assert r.entity_path == "svc/" + logger.name.replace(".", "/")
        assert r.path == source.pathname == __file__
        assert r.line == source.lineno
        assert r.function == "test_capture_keeps_the_fields_of_real_records"
        assert abs(r.time_ns - source.created * 1e9) < 1_000
        assert (r.thread, r.thread_name) == (source.thread, source.threadName)
        assert (r.process, r.process_name) == (source.process, source.processName)
        assert r.exception is None
    assert records[0].stack_info is None
    assert records[2].stack_info is not None
    assert records[2].stack_info.startswith("Stack (most recent call last):")
    assert "test_capture_keeps_the_fields_of_real_records" in records[2].stack_info


def test_extras_are_exactly_the_attributes_json_logger_finds(
    logger: logging.Logger, collected: Collecting
) -> None:
    extra = {"user": "u", "n": 1, "ctx": {"a": [1, 2]}, "flag": True, "nothing": None, "ratio": 0.5}
    logger.info("with extras", extra=extra)
    logger.info("without extras")
    logger.error("one more", extra={"request_id": "r-1", "_private": "left out"})
    records = read_back(collected.captured)
    for decoded, source in zip(records, collected.records):
        assert decoded.extras == json_logger_view(source)
    assert records[0].extras == extra
    assert records[1].extras == {}
    assert records[2].extras == {"request_id": "r-1"}


def test_reserved_attributes_include_json_loggers() -> None:
    assert set(JSON_LOGGER_RESERVED) <= RESERVED_ATTRS
    assert {"message", "asctime", "msg", "args", "exc_info", "taskName"} <= RESERVED_ATTRS


def test_a_dict_message_gives_its_items_as_extras(logger: logging.Logger, collected: Collecting) -> None:
    event = {"event": "login", "user": "a", "attempt": 2}
    logger.info(event, extra={"user": "b"})
    event["event"] = "changed after logging"
    (decoded,) = read_back(collected.captured)
    assert decoded.message == ""
    assert decoded.template is None
    assert decoded.extras == {"event": "login", "user": "b", "attempt": 2}
    source = collected.records[0]
    source.msg = {"event": "login", "user": "a", "attempt": 2}
    assert json.loads(JsonFormatter().format(source)) == {"message": "", **decoded.extras}


def test_a_formatter_that_ran_first_does_not_leak_into_extras(
    logger: logging.Logger, collected: Collecting
) -> None:
    text = logging.StreamHandler(io.StringIO())
    text.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.handlers.insert(0, text)
    try:
        logger.info("formatted %d", 1, extra={"kept": "yes"})
    finally:
        logger.removeHandler(text)
    source = collected.records[0]
    assert source.message == "formatted 1" and source.asctime  # the formatter did run
    (decoded,) = read_back(collected.captured)
    assert decoded.extras == {"kept": "yes"}
    assert decoded.message == "formatted 1"


def test_attributes_set_after_emit_are_not_captured(logger: logging.Logger, collected: Collecting) -> None:
    logger.info("early %s", "x", extra={"kept": 1})
    collected.records[0].late = "set by a later handler"
    collected.records[0].msg = "changed"
    (decoded,) = read_back(collected.captured)
    assert decoded.extras == {"kept": 1}
    assert decoded.message == "early x"
    assert decoded.template == "early %s"


# --- odd values ---------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


class Size(enum.IntEnum):
    LARGE = 3


@dataclasses.dataclass
class Point:
    x: int
    label: str


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")


def _recursive_list() -> list[Any]:
    value: list[Any] = [1]
    value.append(value)
    return value


def _recursive_dict() -> dict[str, Any]:
    value: dict[str, Any] = {"a": 1}
    value["self"] = value
    return value


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


WHEN = datetime.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)

# name: (value, what it reads as, or None to take python-json-logger's output as expected)
ODD_VALUES: dict[str, tuple[Any, Any]] = {
    "datetime": (WHEN, "2024-01-02T03:04:05.000006+00:00"),
    "naive datetime": (datetime.datetime(2024, 1, 2, 3, 4, 5), None),
    "date": (datetime.date(2024, 1, 2), "2024-01-02"),
    "time": (datetime.time(1, 2, 3), None),
    "timedelta": (datetime.timedelta(seconds=5), None),
    "set": ({1, 2}, None),
    "frozenset": (frozenset(["a"]), "frozenset({'a'})"),
    "decimal": (decimal.Decimal("1.50"), "1.50"),
    "uuid": (uuid.UUID(int=5), "00000000-0000-0000-0000-000000000005"),
    "int 2**64": (2**64, "18446744073709551616"),
    "int below -2**63": (-(2**63) - 1, "-9223372036854775809"),
    "int 2**64-1": (2**64 - 1, 2**64 - 1),
    "int -2**63": (-(2**63), -(2**63)),
    "recursive list": (_recursive_list(), [1, "[...]"]),
    "recursive dict": (_recursive_dict(), {"a": 1, "self": "{...}"}),
    "unprintable": (Unprintable(), None),
    "bytes": (b"ab\xff", b"ab\xff"),
    "bytearray": (bytearray(b"xy"), b"xy"),
    "100-deep list": (_deep_list(100), _deep_list(100)),
    "enum": (Colour.RED, "red"),
    "int enum": (Size.LARGE, 3),
    "dataclass": (Point(1, "p"), {"x": 1, "label": "p"}),
    "exception": (KeyError("k"), None),
    "type": (int, None),
    "tuple": ((1, "a"), [1, "a"]),
    "dict with odd values": ({"when": WHEN, "n": 2**70}, {"when": WHEN.isoformat(), "n": str(2**70)}),
}


@pytest.mark.parametrize("name", sorted(ODD_VALUES))
def test_an_odd_extra_value_reads_as_plain_data(
    name: str, logger: logging.Logger, collected: Collecting
) -> None:
    value, expected = ODD_VALUES[name]
    logger.info("odd", extra={"value": value, "after": "still here"})
    (decoded,) = read_back(collected.captured)
    if expected is None:
        expected = json_logger_view(collected.records[0])["value"]
    assert decoded.extras == {"value": expected, "after": "still here"}
    assert type(decoded.extras["value"]) is type(expected)


def test_json_logger_agrees_on_the_text_forms() -> None:
    """The hard-coded expectations above are python-json-logger's where it gives text."""
    record = logging.LogRecord("json-agree", 20, __file__, 1, "m", (), None)
    for name in ["datetime", "date", "frozenset", "decimal", "uuid", "enum", "dataclass"]:
        record.value = ODD_VALUES[name][0]
        assert json_logger_view(record)["value"] == ODD_VALUES[name][1], name


def test_every_odd_value_in_one_record(logger: logging.Logger, collected: Collecting) -> None:
    extra = {name.replace(" ", "_"): value for name, (value, _) in ODD_VALUES.items()}
    extra["huge"] = "x" * (MAX_FIELD_CHARS + 10)
    logger.info("all at once", extra=extra)
    (decoded,) = read_back(collected.captured)
    assert list(decoded.extras) == list(extra)
    for name, (value, expected) in ODD_VALUES.items():
        if name == "100-deep list":
            continue
        if expected is None:
            alone = logging.LogRecord("json-view", 20, __file__, 1, "m", (), None)
            alone.value = value
            expected = json_logger_view(alone)["value"]
        assert decoded.extras[name.replace(" ", "_")] == expected, name
    # The huge string sends the record down the checked path, where nesting past 32
    # levels becomes text (format.sanitize): 32 lists, then the repr of the rest.
    value = decoded.extras["100-deep_list"]
    for _ in range(32):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == repr(_deep_list(100 - 32))
    assert "…[truncated 10 chars]" in decoded.extras["huge"]


def test_a_huge_string_is_cut_with_a_visible_marker(logger: logging.Logger, collected: Collecting) -> None:
    huge = "a" * (MAX_FIELD_CHARS * 2) + "END"
    handle_directly(collected, logger, "big", extra={"huge": huge, "small": "s"})
    (decoded,) = read_back(collected.captured)
    cut = len(huge) - MAX_FIELD_CHARS
    text = decoded.extras["huge"]
    assert f"…[truncated {cut} chars]" in text
    assert text.startswith("aaa") and text.endswith("aEND")
    assert len(text) == MAX_FIELD_CHARS + len(f"…[truncated {cut} chars]")
    assert decoded.extras["small"] == "s"


def test_a_huge_message_is_cut_with_a_visible_marker(logger: logging.Logger, collected: Collecting) -> None:
    handle_directly(collected, logger, "%s", "m" * (MAX_FIELD_CHARS + 100))
    (decoded,) = read_back(collected.captured)
    assert "…[truncated 100 chars]" in decoded.message
    assert len(decoded.message) == MAX_FIELD_CHARS + len("…[truncated 100 chars]")


def test_a_huge_message_without_arguments_caps_its_template_too(
    logger: logging.Logger, collected: Collecting
) -> None:
    handle_directly(collected, logger, "t" * (MAX_FIELD_CHARS + 100))
    (decoded,) = read_back(collected.captured)
    mark = "…[truncated 100 chars]"
    assert mark in decoded.message and len(decoded.message) == MAX_FIELD_CHARS + len(mark)
    assert decoded.template is not None
    assert mark in decoded.template and len(decoded.template) == MAX_FIELD_CHARS + len(mark)


def test_huge_extras_say_how_many_were_left_out(logger: logging.Logger, collected: Collecting) -> None:
    extra = {f"key{i:04d}": "v" * 1000 for i in range(400)}
    logger.info("many", extra=extra)
    logger.info("next", extra={"fine": 1})
    first, second = read_back(collected.captured)
    note = first.extras.pop("rerun.truncated")
    kept = len(first.extras)
    assert 0 < kept < 400
    assert first.extras == {f"key{i:04d}": "v" * 1000 for i in range(kept)}
    assert note.startswith(f"{400 - kept} of 400 extras left out")
    assert str(MAX_EXTRAS_BYTES) in note
    assert len(format.packb(first.extras)) <= MAX_EXTRAS_BYTES
    assert second.extras == {"fine": 1}


def test_dict_keys_of_other_types_read_back(logger: logging.Logger, collected: Collecting) -> None:
    logger.info("keys", extra={"map": {1: "int", None: "none", 1.5: "float", frozenset([1]): "set"}})
    (decoded,) = read_back(collected.captured)
    assert decoded.extras["map"] == {1: "int", None: "none", 1.5: "float", "frozenset({1})": "set"}


@pytest.mark.parametrize("where", ["extra", "dict message"])
def test_a_tuple_dict_key_does_not_spoil_the_frame(
    where: str, logger: logging.Logger, collected: Collecting
) -> None:
    logger.info("before")
    if where == "extra":
        logger.info("tuple key", extra={"map": {(1, 2): "pair", ((3, "a"),): "nested"}})
    else:
        logger.info({(1, 2): "pair", ((3, "a"),): "nested"})
    logger.info("after")
    before, middle, after = read_back(collected.captured)
    assert (before.message, after.message) == ("before", "after")
    pairs = middle.extras["map"] if where == "extra" else middle.extras
    assert pairs == {(1, 2): "pair", ((3, "a"),): "nested"}


def test_a_message_that_cannot_be_formatted_is_kept_with_a_marker(
    logger: logging.Logger, collected: Collecting
) -> None:
    handle_directly(collected, logger, "%d items", "x")
    handle_directly(collected, logger, "%s and %s", "only one")
    (bad_type, too_few) = read_back(collected.captured)
    assert bad_type.message.startswith("<message could not be formatted: TypeError: ")
    assert "%d format: a real number is required, not str" in bad_type.message
    assert "msg='%d items'" in bad_type.message and "args=('x',)" in bad_type.message
    assert bad_type.template == "%d items"
    assert too_few.message.startswith("<message could not be formatted: TypeError: ")
    assert "not enough arguments" in too_few.message


class BrokenMessage:
    def __str__(self) -> str:
        raise RuntimeError("cannot render")

    def __repr__(self) -> str:
        raise RuntimeError("cannot repr")


def test_a_message_object_that_cannot_render_is_kept(logger: logging.Logger, collected: Collecting) -> None:
    handle_directly(collected, logger, BrokenMessage(), level=logging.WARNING)
    (decoded,) = read_back(collected.captured)
    assert decoded.message.startswith("<message could not be formatted: RuntimeError: cannot render>")
    assert "<unrepresentable BrokenMessage>" in decoded.message
    assert decoded.template is None
    assert decoded.level_name == "WARNING"


class MyError(Exception):
    pass


MyError.__module__ = "mypkg"


class Outer:
    class InnerError(LookupError):
        pass


def test_an_exception_keeps_type_value_and_traceback(logger: logging.Logger, collected: Collecting) -> None:
    try:
        raise ValueError("bad value \u00e9")
    except ValueError:
        logger.exception("failed %d", 1)
    try:
        raise MyError("mine")
    except MyError:
        logger.error("custom", exc_info=True)
    try:
        raise Outer.InnerError("inner")
    except LookupError as error:
        logger.warning("nested class", exc_info=error)
    builtin, custom, nested = read_back(collected.captured)
    assert builtin.message == "failed 1"
    assert builtin.exception is not None
    assert builtin.exception.type == "ValueError"
    assert builtin.exception.value == "bad value \u00e9"
    tb = builtin.exception.traceback
    assert tb.startswith("Traceback (most recent call last):")
    assert "raise ValueError(" in tb
    assert "test_an_exception_keeps_type_value_and_traceback" in tb
    assert tb.endswith("ValueError: bad value \u00e9")
    assert custom.exception is not None
    assert custom.exception.type == "mypkg.MyError"
    assert custom.exception.value == "mine"
    assert custom.exception.traceback.endswith("mypkg.MyError: mine")
    assert nested.exception is not None
    assert nested.exception.type == f"{__name__}.Outer.InnerError"
    assert nested.exception.value == "inner"


def test_exc_info_without_an_exception_gives_none(logger: logging.Logger, collected: Collecting) -> None:
    logger.info("no exception here", exc_info=True)
    (decoded,) = read_back(collected.captured)
    assert decoded.exception is None


def test_an_exception_already_rendered_as_text_is_kept(logger: logging.Logger) -> None:
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "from a socket", (), None)
    record.exc_text = "Traceback (most recent call last):\nRemoteError: far away"
    (decoded,) = read_back([capture(record)])
    assert decoded.exception == format.ExceptionInfo("", "", record.exc_text)


def test_unicode_and_lone_surrogates_round_trip(logger: logging.Logger) -> None:
    name = f"{logger.name}.\u00fcn\u00efc\u00f6de.\udcff"
    odd = logging.getLogger(name)
    odd.propagate = False
    handler = Collecting()
    odd.addHandler(handler)
    try:
        odd.warning(
            "h\u00e9llo %s \ud800 \U0001f389", "\u4e16\u754c\udfff",
            extra={"\u043a\u043b\u044e\u0447\ud800": "\u0437\u043d\u0430\u0447\udfff",
                   "list": ["\udc80", {"\ud83d": "\ude00"}]},
        )
    finally:
        odd.removeHandler(handler)
    (decoded,) = read_back(handler.captured, prefix="svc")
    assert decoded.message == "h\u00e9llo \u4e16\u754c\udfff \ud800 \U0001f389"
    assert decoded.template == "h\u00e9llo %s \ud800 \U0001f389"
    assert decoded.logger == name
    assert decoded.entity_path == "svc/" + name.replace(".", "/")
    assert decoded.extras == {
        "\u043a\u043b\u044e\u0447\ud800": "\u0437\u043d\u0430\u0447\udfff",
        "list": ["\udc80", {"\ud83d": "\ude00"}],
    }


# --- entity paths -------------------------------------------------------------------


def test_entity_paths() -> None:
    assert entity_path_for("root") == "root"
    assert entity_path_for("") == "root"
    assert entity_path_for("a.b.c") == "a/b/c"
    assert entity_path_for("a.b.c", "svc") == "svc/a/b/c"
    assert entity_path_for("a.b.c", "/svc/") == "svc/a/b/c"
    assert entity_path_for("a.b.c", "/") == "a/b/c"
    assert entity_path_for("a", "svc/api") == "svc/api/a"


def test_entity_paths_of_real_records(logger: logging.Logger) -> None:
    root_record = logging.getLogger().makeRecord("root", logging.INFO, __file__, 1, "r", (), None)
    child = logging.getLogger(f"{logger.name}.a.b.c")
    child_record = child.makeRecord(child.name, logging.INFO, __file__, 1, "c", (), None)
    root, nested = read_back([capture(root_record), capture(child_record)])
    assert (root.logger, root.entity_path) == ("root", "root")
    assert nested.entity_path == child.name.replace(".", "/")
    assert nested.entity_path.endswith("/a/b/c")
    (prefixed,) = read_back([capture(child_record)], prefix="svc")
    assert prefixed.entity_path == "svc/" + child.name.replace(".", "/")


def test_a_batch_from_many_loggers_keeps_each_records_site(logger: logging.Logger) -> None:
    handler = Collecting()
    loggers = [logging.getLogger(f"{logger.name}.part{i}") for i in range(3)]
    logger.addHandler(handler)
    for i in range(30):
        target = loggers[i % 3]
        extra = {"i": i} if i % 4 else None
        target.log(logging.INFO + i % 2 * 10, "n=%d from %s", i, target.name, extra=extra)
    records = read_back(handler.captured, first_seq=1000)
    assert [r.seq for r in records] == list(range(1000, 1030))
    for i, r in enumerate(records):
        name = loggers[i % 3].name
        assert r.logger == name and r.entity_path == name.replace(".", "/")
        assert r.level == logging.INFO + i % 2 * 10
        assert r.message == f"n={i} from {name}"
        assert r.extras == ({"i": i} if i % 4 else {})
    assert [r.time_ns for r in records] == sorted(r.time_ns for r in records)


def test_benchmark_records_through_capture_take_at_most_20_bytes(logger: logging.Logger) -> None:
    n = 100_000
    base = 1_764_000_000.0
    captured = []
    for i in range(n):
        record = logger.makeRecord(
            logger.name, logging.INFO, "/srv/app/bench.py", 42, "request %d done", (i,), None,
            func="serve", extra={"user": "u", "n": i},
        )
        record.created = base + i * 3e-6
        captured.append(capture(record))
    stream = [format.HEADER]
    for start in range(0, n, 4096):
        columns, extras = record_columns(captured[start : start + 4096], start)
        stream.append(format.encode_frame(format.records_message(columns, format.pack_extras(extras))))
    data = b"".join(stream)
    assert len(data) / n <= 20
    decoder = StreamDecoder("bench")
    decoder.feed(data)
    records = list(decoder.messages())
    assert len(records) == n
    assert records[-1].message == f"request {n - 1} done"
    assert records[-1].extras == {"user": "u", "n": n - 1}


def test_a_full_batch_of_ordinary_records_is_neither_capped_nor_rendered(logger: logging.Logger) -> None:
    """4,096 access-log records: their args (about 40 bytes each) and extras (a request
    id each) pack to well over MAX_FIELD_CHARS per column, though no record comes near
    it. They are written as they are, messages left to readers, and read back exactly."""
    captured = []
    for i in range(4096):
        record = logger.makeRecord(
            logger.name, logging.INFO, __file__, 7, "%s %s -> %d in %.1f ms",
            ("GET", f"/api/v1/users/{i}", 200, i / 8), None,
            extra={"request_id": f"{uuid.UUID(int=i)}", "user": "alice"},
        )
        captured.append(capture(record))
    columns, extras = record_columns(captured, 0)
    assert len(format.packb([c["args"] for c in captured])) > MAX_FIELD_CHARS
    assert len(format.packb(extras)) > MAX_FIELD_CHARS
    assert set(columns["msg"]) == {None}
    records = read_back(captured)
    assert [r.args for r in records] == [("GET", f"/api/v1/users/{i}", 200, i / 8) for i in range(4096)]
    assert records[4095].message == "GET /api/v1/users/4095 -> 200 in 511.9 ms"
    assert [r.extras for r in records] == [
        {"request_id": f"{uuid.UUID(int=i)}", "user": "alice"} for i in range(4096)
    ]


def test_one_record_over_the_cap_is_capped_and_the_rest_of_its_batch_kept(
    logger: logging.Logger, collected: Collecting
) -> None:
    for i in range(2000):
        logger.info("row %d of %s", i, "x" * 40, extra={"note": "y" * 40})
    logger.info("big %s", "z" * (MAX_FIELD_CHARS + 10), extra={"blob": "w" * (MAX_FIELD_CHARS + 10)})
    records = read_back(collected.captured)
    assert [r.message for r in records[:2000]] == [f"row {i} of {'x' * 40}" for i in range(2000)]
    assert all(r.extras == {"note": "y" * 40} for r in records[:2000])
    big = records[2000]
    assert big.message.startswith("big zzz") and len(big.message) < MAX_FIELD_CHARS + 100
    assert len(big.extras["blob"]) < MAX_FIELD_CHARS + 100


# --- capture's C half --------------------------------------------------------------------


class Quiet(enum.IntEnum):
    ONE = 1


class Text(str):
    pass


class SubRecord(logging.LogRecord):
    pass


def python_capture(record: logging.LogRecord, monkeypatch: pytest.MonkeyPatch) -> Captured:
    with monkeypatch.context() as patch:
        patch.setattr(capture_module, "_plain_capture", None)
        return capture(record)


PLAIN = [
    ("request %d done", (7,), {"user": "u", "n": 7}),
    ("no args", (), None),
    ("%s %s %r %.1f %d", ("a", "\udc80", None, 2.5, True), {"ok": False, "f": 1.5, "big": 2**70}),
    # taskName: reserved, and an extra before 3.12 (from 3.12 on, LogRecord's own: refused)
    ("%(a)s", None, {"taskName": "t", "_private": 1} if sys.version_info < (3, 12) else {"_private": 1}),
]
NOT_PLAIN = [
    ("list arg %s", ([1],), None),
    ("dict args %(a)s", ({"a": 1},), None),
    ("str subclass %s", (Text("x"),), None),
    ("int subclass %s", (Quiet.ONE,), None),
    ("list extra", (), {"tags": ["a"]}),
    ("object extra", (), {"at": datetime.date(2026, 1, 1)}),
    (Text("str subclass message"), (), None),
    ({"dict": "message"}, (), None),
    (12, (), None),
]


@pytest.mark.parametrize("capture_path", ["speedups"], indirect=True)
@pytest.mark.parametrize("msg, args, extra", PLAIN + NOT_PLAIN)
def test_the_c_half_keeps_exactly_what_the_python_steps_keep(
    logger: logging.Logger, msg: Any, args: Any, extra: dict[str, Any] | None,
    monkeypatch: pytest.MonkeyPatch, capture_path: str,
) -> None:
    fresh_args = tuple(list(args)) if args else args  # made now, tracked as the app's are
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 3, msg, fresh_args, None, "f", extra)
    fast = capture_module._plain_capture(record)  # type: ignore[misc]
    expected = python_capture(record, monkeypatch)
    if (msg, args, extra) in PLAIN:
        assert fast is not None and list(fast.items()) == list(expected.items())
        assert not gc.is_tracked(fast)
        assert not gc.is_tracked(fast["args"])  # scalars only: as the GC's first look leaves it
    elif isinstance(record.args, tuple) and record.args:
        assert gc.is_tracked(record.args)  # left to the Python steps, and the GC, as it was
    else:
        assert fast is None
    assert list(capture(record).items()) == list(expected.items())


@pytest.mark.parametrize("capture_path", ["speedups"], indirect=True)
def test_the_c_half_makes_each_records_extras_as_the_python_steps_do(
    logger: logging.Logger, collected: Collecting, capture_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    logger.info("none")
    logger.info("two", extra={"b": 1, "a": [2]})
    logger.info({"dict": "message"}, extra={"z": None})
    logger.info("odd", extra={"_private": 1, "\udc80": "s"})
    states = [*collected.captured, {"short": 1}]
    fast = capture_module._extras(states, [])
    monkeypatch.setattr(capture_module, "_middles", None)
    slow = capture_module._extras(states, [])
    assert [list((x or {}).items()) for x in fast[0]] == [list((x or {}).items()) for x in slow[0]]
    assert fast[0][1] == {"b": 1, "a": [2]} and fast == slow
    middles = capture_module._SPEEDUPS.middles
    assert middles(tuple(states)) is None and middles([{}, "not a dict"]) is None


def gapped_records(logger: logging.Logger) -> list[logging.LogRecord]:
    """Records whose attribute dict lost a key (a gap among its entries, or a split
    instance dict made combined): the C half finds where their extras start by walking."""
    made = []
    for remove in ("stack_info", "name", "extra_one"):
        record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "m %d", (1,), None, "f",
                                   {"extra_one": 1, "extra_two": "two"})
        state = dict(record.__dict__)  # a combined dict, as a copy of any other
        del state[remove]
        record.__dict__ = state
        made.append(record)
    grown = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "m", (), None, "f", {"a": 1})
    del grown.a
    grown.b = [1]  # not a scalar, after a gap: the Python steps
    made.append(grown)
    return made


@pytest.mark.parametrize("capture_path", ["speedups"], indirect=True)
def test_records_with_a_gap_in_their_attributes_are_kept_as_the_python_steps_keep_them(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, capture_path: str
) -> None:
    records = gapped_records(logger)
    fast = [capture_module._plain_capture(r) for r in records]  # type: ignore[misc]
    assert [f is None for f in fast] == [False, False, False, True]
    for record, state in zip(records, fast):
        expected = python_capture(record, monkeypatch)
        assert list(capture(record).items()) == list(expected.items())
        if state is not None:
            assert list(state.items()) == list(expected.items())
    states = [f for f in fast if f is not None]
    with monkeypatch.context() as patch:
        patch.setattr(capture_module, "_middles", None)
        expected_extras = capture_module._extras(states, [])[0]
    assert capture_module._SPEEDUPS.middles(states) == expected_extras
    for state in states:
        del state["levelno"]  # a gap in the copy too, and the entry moved to the end
        state["levelno"] = logging.INFO
    extras = capture_module._SPEEDUPS.middles(states)
    monkeypatch.setattr(capture_module, "_middles", None)
    assert extras == capture_module._extras(states, [])[0]


@pytest.mark.parametrize("capture_path", ["speedups"], indirect=True)
def test_the_c_half_reads_a_batch_as_the_python_steps_do(
    logger: logging.Logger, collected: Collecting, capture_path: str
) -> None:
    """``batch_rows`` against ``_rows``: runs of sites and threads, exceptions, stacks,
    times before 1970 and far ahead; batches it leaves to Python give None."""
    other = logging.getLogger(f"{logger.name}.other")
    for n in range(3):
        logger.info("same site %d", n)
    other.warning("stack", stack_info=True)
    logger.info("same site %d", 9)
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("caught")
    thread = threading.Thread(target=lambda: logger.info("same site %d", 10))
    thread.start()
    thread.join()
    logger.info({"dict": "message"})
    states = collected.captured
    states[1] = {**states[1], "created": -1.5}
    states[2] = {**states[2], "created": 3.9e9 + 0.123456789}
    states[4] = {key: states[4][key] for key in sorted(states[4])}  # not LogRecord's order: looked up
    plain, with_dict = states[:-1], states
    rows = capture_module._batch_rows
    assert rows is not None
    fast = rows(plain)
    assert fast is not None and (*fast, []) == capture_module._rows(plain)
    starts, exc_rows, stack_rows = fast[3], fast[5], fast[6]
    assert starts == [0, 3, 4, 5, 6] and exc_rows == [5] and stack_rows == [3]
    assert rows([]) == capture_module._rows([])[:-1]
    assert rows(with_dict) is None  # a dict message: the Python steps keep its items
    no_created = {k: v for k, v in plain[0].items() if k != "created"}
    far = {**plain[0], "created": 1e10}  # past 2096 in ns: Python's exact ints
    for odd in (no_created, far, {**plain[0], "created": float("nan")}, {**plain[0], "created": 1}):
        assert rows([plain[0], odd]) is None
    assert rows(tuple(plain)) is None and rows([*plain, "not a dict"]) is None


def test_columns_that_fit_the_caps_are_told_without_packing_them(capture_path: str) -> None:
    """``rows_fit`` says yes only where the packer would pack every row as it is (the
    extras' dicts, the args' tuples); where it is not certain (or without the C half)
    it says no and the packer decides."""
    from rerun_logging.capture import rows_fit
    from rerun_logging.format import MAX_FIELD_CHARS

    extras_fit = [
        [{"user": "u", "n": 7, "f": 1.5, "ok": True, "none": None, "é": "ü" * 100}, None, {}],
        [{"big": 2**63 - 1, "neg": -(2**63)}],
        [{"x": "x" * (MAX_FIELD_CHARS - 20)}],  # ASCII: counted exactly
    ]
    args_fit = [[(1, "a", 2.5, None, True), None, ()], [("x" * (MAX_FIELD_CHARS - 20),)]]
    unsure = [
        [{"big": 2**64 - 1}],  # packs, but past int64
        [{"x": "ü" * (MAX_FIELD_CHARS // 4)}],  # counted at 4 bytes a character
        [{"l": [1]}], [{1: "an int key"}], [{"x": "x" * MAX_FIELD_CHARS}], [{"n": 2**70}],
        [(2**70,)], [([1],)], [("x" * MAX_FIELD_CHARS,)], [[1, 2]],
    ]
    for extras in extras_fit:
        assert format.pack_extras_exactly(extras) is not None
        assert rows_fit(extras) is (capture_path == "speedups")
    for args in args_fit:
        assert format.pack_args_exactly(args) is not None
        assert rows_fit(args) is (capture_path == "speedups")
    for rows in unsure:
        assert not rows_fit(rows)
    assert not rows_fit(tuple(extras_fit[0]))  # type: ignore[arg-type]


def test_a_batch_left_unpacked_reads_as_the_packed_one(logger: logging.Logger, collected: Collecting) -> None:
    """``record_batch(framed=False)`` (no sink takes frames) leaves args that fit
    unpacked; what a sink in the process reads of it is what it reads of the packed one."""
    logger.info("%s did %d things", "ann", 3, extra={"n": 1})
    logger.info("no args")
    logger.info("big %d", 2**70)  # past 64 bits: packed as text, the message rendered
    for batch in (collected.captured[:2], collected.captured):
        packed = record_batch(batch, 5)
        unpacked = record_batch(batch, 5, framed=False)
        as_columns = isinstance(unpacked.extras, format.ExtraColumns)
        assert as_columns is (capture_module._extra_columns_of is not None)
        assert packed.framed and ("args" in unpacked.columns and not as_columns) is unpacked.framed
        read = [format.columns_as_read(c.columns, c.args, c.extras, c.times).records() for c in (packed, unpacked)]
        assert read[0] == read[1] and [r.message for r in read[0]][:2] == ["ann did 3 things", "no args"]
    assert record_batch(collected.captured[:2], 0, framed=False).framed is (capture_module._rows_fit is None)


@pytest.mark.parametrize("capture_path", ["speedups"], indirect=True)
def test_the_c_half_leaves_other_records_to_the_python_steps(
    logger: logging.Logger, capture_path: str
) -> None:
    plain = capture_module._plain_capture
    assert plain is not None
    subclass = SubRecord(logger.name, logging.INFO, __file__, 1, "sub %d", (1,), None)
    try:
        raise ValueError("x")
    except ValueError:
        failed = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "m", (), sys.exc_info())
    cached = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "m", (), None)
    cached.exc_text = "already rendered"
    no_args = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "m", (), None)
    del no_args.args
    assert [plain(r) for r in (subclass, failed, cached, no_args)] == [None] * 4
    assert plain(object()) is None
    assert plain(logger.makeRecord(logger.name, logging.INFO, __file__, 1, "m", (), None)) is not None


# --- args -------------------------------------------------------------------------------


def test_an_argument_past_64_bits_renders_as_the_app_saw_it(logger: logging.Logger, collected: Collecting) -> None:
    """msgpack cannot carry such an int: the args go as text, so the writer renders
    the message (a reader's ``%d`` of the text would fail)."""
    logger.info("n=%d and %s", 2**64, -(2**70))
    logger.info("small %d", 7)
    records = read_back(collected.captured)
    assert [r.message for r in records] == [f"n={2**64} and {-(2**70)}", "small 7"]
    assert records[0].args == (str(2**64), str(-(2**70)))


def test_batches_that_pack_exactly_read_the_same_without_their_frame(
    logger: logging.Logger, collected: Collecting
) -> None:
    """What a sink in this process reads (``columns_as_read``) is what the decoder
    reads, for a batch of every kind of field (checked inside :func:`read_back`)."""
    before = len(AS_READ)
    logger.info("a %s %d %.1f %r", "s", 1, 2.5, None, extra={"b": b"\x00", "t": True, "l": [1, {"k": 2}]})
    logger.info({"event": "dict", "n": 1}, extra={"n": 2})
    logger.warning("stack", stack_info=True)
    try:
        raise ValueError("bad")
    except ValueError:
        logger.exception("caught %s", "it")
    logging.getLogger(f"{logger.name}.other").error("another site", extra={"_private": 1, "u": "\udc80"})
    records = read_back(collected.captured, first_seq=7, prefix="p")
    assert len(AS_READ) == before + 1 and AS_READ[-1] == len(records) == 5


def test_args_are_kept_as_the_message_was_rendered_with(logger: logging.Logger, collected: Collecting) -> None:
    logger.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/items/1", "1.1", 200)
    logger.info("%(user)s did %(n)d things", {"user": "ann", "n": 3})
    logger.info("no arguments")
    records = read_back(collected.captured)
    assert records[0].args == ("127.0.0.1:5000", "GET", "/items/1", "1.1", 200)
    assert records[1].args == {"user": "ann", "n": 3}
    assert records[2].args is None


def test_mutable_args_are_copied_at_emit(logger: logging.Logger, collected: Collecting) -> None:
    items = [1, 2]
    options = {"retry": True}
    logger.info("items %s with %s", items, options)
    items.append(3)
    options["retry"] = False
    (record,) = read_back(collected.captured)
    assert record.message == "items [1, 2] with {'retry': True}"
    assert record.args == ([1, 2], {"retry": True})


def test_odd_and_huge_args_read_back_as_text_within_the_caps(logger: logging.Logger, collected: Collecting) -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd!"

    cycle: list[Any] = []
    cycle.append(cycle)
    huge = "x" * (format.MAX_FIELD_CHARS * 3)
    logger.info("%s %s %s %d", Odd(), cycle, huge, 2**80)
    (record,) = read_back(collected.captured)
    assert record.args is not None and record.args[0] == "odd!" and record.args[1] == ["[...]"]
    assert len(record.args[2]) < format.MAX_FIELD_CHARS + 40 and "[truncated " in record.args[2]
    assert record.args[3] == str(2**80)


# --- captured at log time, on the caller's thread ------------------------------------


def test_extras_are_what_they_were_when_logged(logger: logging.Logger, collected: Collecting) -> None:
    tags = ["a"]
    context = {"user": "u", "seen": [1]}
    logger.info("changed later", extra={"tags": tags, "context": context})
    tags.append("b")
    context["user"] = "someone else"
    context["seen"].append(2)
    (record,) = read_back(collected.captured)
    assert record.extras == {"tags": ["a"], "context": {"user": "u", "seen": [1]}}


class ThreadBound:
    """Like a Django QuerySet or a DB connection: usable only on the thread that made it."""

    def __init__(self) -> None:
        self.owner = threading.get_ident()

    def __str__(self) -> str:
        if threading.get_ident() != self.owner:
            raise RuntimeError("used from another thread")
        return "<QuerySet [<Item: 1>]>"


def test_no_code_of_the_app_runs_on_the_flusher(tmp_path: Path, logger: logging.Logger) -> None:
    handler = RerunHandler(f"save:{tmp_path / 'bound.rrd'}")
    logger.addHandler(handler)
    logger.info("query", extra={"queryset": ThreadBound(), "nested": {"qs": ThreadBound()}})
    handler.close()
    (record,) = [m for m in read_messages(tmp_path / "bound.rrd") if isinstance(m, Record)]
    assert record.extras == {"queryset": "<QuerySet [<Item: 1>]>",
                             "nested": {"qs": "<QuerySet [<Item: 1>]>"}}


class Redacting(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("s3cret", "***")


def test_a_formatter_on_the_handler_decides_the_message(tmp_path: Path, logger: logging.Logger) -> None:
    handler = RerunHandler(f"save:{tmp_path / 'fmt.rrd'}")
    handler.setFormatter(Redacting("[%(levelname)s] %(message)s"))
    logger.addHandler(handler)
    logger.warning("login password=%s", "s3cret", extra={"user": "u"})
    handler.close()
    (record,) = [m for m in read_messages(tmp_path / "fmt.rrd") if isinstance(m, Record)]
    assert record.message == "[WARNING] login password=***"
    assert (record.level_name, record.logger, record.extras) == ("WARNING", logger.name, {"user": "u"})
    assert record.template == "login password=%s"


def test_a_formatter_from_dict_config_is_honoured(tmp_path: Path) -> None:
    import logging.config

    logging.config.dictConfig({
        "version": 1,
        "formatters": {"redact": {"()": Redacting, "format": "%(message)s"}},
        "handlers": {"rerun": {"class": "rerun_logging.RerunHandler", "formatter": "redact",
                               "sink": f"save:{tmp_path / 'dc.rrd'}"}},
        "loggers": {"dictcfg.fmt": {"handlers": ["rerun"], "level": "INFO"}},
    })
    logging.getLogger("dictcfg.fmt").info("token s3cret")
    logging.shutdown()
    (record,) = [m for m in read_messages(tmp_path / "dc.rrd") if isinstance(m, Record)]
    assert record.message == "token ***"


def test_basic_config_gives_its_console_format_to_no_recording(tmp_path: Path) -> None:
    handler = RerunHandler(f"save:{tmp_path / 'basic.rrd'}")
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
    logging.getLogger("basic.cfg").info("plain %d", 1)
    assert handler.formatter is None
    handler.close()
    (record,) = [m for m in read_messages(tmp_path / "basic.rrd") if isinstance(m, Record)]
    assert record.message == "plain 1"


def test_an_exc_text_already_set_is_the_traceback(logger: logging.Logger, collected: Collecting) -> None:
    """loguru puts the traceback in its message and sets exc_text to a newline, so handlers
    do not write it again; a formatter that ran first leaves its text there."""
    try:
        raise KeyError("k")
    except KeyError:
        info = sys.exc_info()
    record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1,
                               "failed\nTraceback (most recent call last): ...", (), info)
    record.exc_text = "\n"
    cached = logger.makeRecord(logger.name, logging.ERROR, __file__, 2, "again", (), info)
    cached.exc_text = "cached traceback text"
    collected.handle(record)
    collected.handle(cached)
    first, second = read_back(collected.captured)
    assert first.exception is not None and second.exception is not None
    assert (first.exception.type, first.exception.value, first.exception.traceback) == ("KeyError", "'k'", "")
    assert second.exception.traceback == "cached traceback text"


# --- messages left for readers to render ----------------------------------------------


class OwnMessage(logging.LogRecord):
    def getMessage(self) -> str:  # noqa: N802 (logging's name)
        return "own: " + super().getMessage()


def raw_messages(captured: list[Captured]) -> list[str | None]:
    """The ``msg`` column as written: None where readers render ``template % args``."""
    columns, _ = record_columns(captured, 0)
    return columns["msg"]


def test_plain_messages_are_left_for_readers_and_read_back_as_get_message(
    logger: logging.Logger, collected: Collecting
) -> None:
    logger.info("n=%d user=%s ratio=%.2f", 5, "ann", 0.5)
    logger.info("no args, 100%")
    handle_directly(collected, logger, "%d items", "x")  # the app's mistake: the reader says what
    assert raw_messages(collected.captured) == [None, None, None]
    records = read_back(collected.captured)
    assert [r.message for r in records[:2]] == ["n=5 user=ann ratio=0.50", "no args, 100%"]
    assert records[2].message.startswith("<message could not be formatted: TypeError")


def test_messages_rendered_for_in_process_readers_are_what_readers_render(
    logger: logging.Logger, collected: Collecting, capture_path: str
) -> None:
    """``messages_as_read`` (one C pass) renders what ``format`` renders row by row, and
    leaves a batch it cannot render so (a mistake in the app's args, a message over the
    cap) to ``format``, which marks or cuts it."""
    logger.info("n=%d user=%s ratio=%.2f", 5, "ann", 0.5)
    logger.info("no args, 100%")
    batches = {"plain": list(collected.captured)}
    handle_directly(collected, logger, "%d items", "x")
    batches["a mistake"] = list(collected.captured)
    for name, captured in batches.items():
        encoded = record_batch(captured, 0, framed=False)
        assert None in encoded.columns["msg"], name
        by_format = format.columns_as_read(encoded.columns, encoded.args, encoded.extras, encoded.times)
        messages = capture_module.messages_as_read(encoded)
        rendered_here = None not in messages
        assert rendered_here is (name == "plain" and capture_path == "speedups"), name
        assert flusher_as_read(encoded).messages == by_format.messages, name  # type: ignore[union-attr]
    assert by_format.messages[2].startswith("<message could not be formatted: TypeError")


def test_extras_made_as_columns_read_as_the_python_steps_make_them(
    logger: logging.Logger, collected: Collecting, capture_path: str
) -> None:
    """``_speedups.extra_columns_of`` makes a batch's extras as columns, without a dict
    per record, where they need none of ``_extras``' steps; any batch that does (a
    private or reserved name, a None value, a value that may not pack as it is) gets
    those steps, and both read the same."""
    cases: dict[str, list[dict[str, Any]]] = {
        "plain": [{"user": "u", "n": 1}, {"n": 2, "user": "v", "ok": True}, {}, {"ratio": 0.5}],
        "private": [{"_hidden": 1, "n": 1}],
        "none": [{"n": None}],
        "big": [{"text": "x" * MAX_FIELD_CHARS}],
    }
    for name, extras in cases.items():
        collected.captured.clear()
        for i, extra in enumerate(extras):
            handle_directly(collected, logger, "n=%d", i, extra=extra)
        unframed = record_batch(collected.captured, 0, framed=False)
        as_columns = isinstance(unframed.extras, format.ExtraColumns)
        assert as_columns is (name == "plain" and capture_path == "speedups"), name
        read = flusher_as_read(unframed) if capture_module.extras_fit(unframed) else None
        framed = read_back(collected.captured)
        assert read is None or read.records() == framed, name
        if as_columns:
            assert [r.extras for r in framed] == extras
            assert unframed.extras[1] == {"n": 2, "user": "v", "ok": True} and unframed.extras[2] is None


@pytest.mark.parametrize(
    "template, args",
    [
        ("n=%d", [(1,), (2,)]),
        ("a list %s %s", [[1, 2], ["x", "y"]]),
        ("map %(k)s", [{"k": "v"}, {"k": 1}]),
        ("no args %d", [None, ()]),
        ("over %s", [("z" * MAX_FIELD_CHARS,), ("ok",)]),
        ("%d items", [(1,), ("x",)]),
        (5, [(2,), (3,)]),  # renders, but no str
    ],
)
@pytest.mark.parametrize("capture_path", ["speedups"], indirect=True)
def test_the_c_render_renders_as_format_renders_at_once(template: Any, args: list[Any], capture_path: str) -> None:
    """``_speedups.render_rows`` against the Python pass it stands for, row for row, and
    None wherever that pass gives None (then format renders each row the careful way)."""
    from rerun_logging import _speedups
    from rerun_logging.format import messages as format_messages

    messages = [None, None, "kept as it is"]
    site_rows, row_args = [0, 0, 0], [*args, (9,)]
    expected = format_messages._rendered_at_once(messages, site_rows, [template], row_args)
    assert _speedups.render_rows(messages, site_rows, [template], row_args, MAX_FIELD_CHARS) == expected


def test_messages_readers_could_not_render_exactly_are_written(
    logger: logging.Logger, collected: Collecting
) -> None:
    """Each way a reader's ``template % args`` could differ from the app's, or cost a
    reader more than its bytes: the writer renders those itself."""
    long_template = "x" * (MAX_FIELD_CHARS + 1) + " %s"
    cases = [
        ("a list arg %s", (["changed", "later"],)),  # rendered at log time, then plain
        ("%*d", (3, 7)),  # a width readers refuse
        (long_template, ("y",)),  # truncated in the site table
        ("big %s", ("z" * (MAX_FIELD_CHARS + 1),)),  # args capped in the column
        ("n=%(n)d", ({"n": 1},)),  # mapping args
    ]
    for template, args in cases:
        handle_directly(collected, logger, template, *args)
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(OwnMessage)
    try:
        handle_directly(collected, logger, "sub %s", "class")
    finally:
        logging.setLogRecordFactory(factory)
    expected = [r.getMessage() for r in collected.records]
    written = raw_messages(collected.captured)
    assert None not in written
    records = read_back(collected.captured)
    for record, message in zip(records, expected):
        assert record.message == format.truncate_text(message)
    assert records[-1].message == "own: sub class"
