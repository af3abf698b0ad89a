"""Tests of ``rerun_logging.render``: how a record prints as a text line and as a JSON object.

Pure functions, called directly. Times are local: the tests that read them fix the
time zone (a POSIX ``TZ`` string, no tz database needed) and restore it after.
``tests/test_cli.py`` checks the shape of one line and the JSON field order through
``print``; ``tests/test_hostile_files.py`` the depth cap on a hostile file.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any, Iterator

import pytest
from pythonjsonlogger.json import JsonFormatter

from rerun_logging import render
from rerun_logging.format import MAX_FIELD_CHARS, TRUNCATION_MARK, Dropped, ExceptionInfo, Record, RecordingInfo

INFO = RecordingInfo("shop", "rec-42", 1_765_000_000_000_000_000, "box-1", 4242, "3.11.7", "0.1.0")
TRACEBACK = 'Traceback (most recent call last):\n  File "app.py", line 3, in <module>\nKeyError: \'k\''


def make(**fields: Any) -> Record:
    base: dict[str, Any] = dict(
        seq=7, time_ns=1_765_000_000_500_000_000, level=logging.INFO, level_name="INFO",
        entity_path="shop/cart", logger="shop.cart", message="added item", path="/srv/app.py",
        line=12, function="add", thread=111, thread_name="MainThread", process=4300,
        process_name="MainProcess",
    )
    base.update(fields)
    return Record(**base)


@pytest.fixture
def utc_plus_0530(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC+05:30 for the test (``TZ`` and ``time.tzset``), then as it was."""
    monkeypatch.setenv("TZ", "XYZ-5:30")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- text ------------------------------------------------------------------------------------


def test_text_line_shows_time_level_origin_logger_message_and_extras(utc_plus_0530: None) -> None:
    record = make(extras={"user": "alice", "n": 3})
    assert render.text_line(record, INFO) == (
        "2025-12-06 11:16:40.500 INFO  shop[4300] shop.cart: added item user=alice n=3"
    )


def test_local_time_is_local_to_the_millisecond_and_never_rounds_up(utc_plus_0530: None) -> None:
    assert render.local_time(0) == "1970-01-01 05:30:00.000"
    assert render.local_time(999_999_999) == "1970-01-01 05:30:00.999"
    assert render.local_time(1_000_999_999) == "1970-01-01 05:30:01.000"
    assert render.local_time(-1) == "1970-01-01 05:29:59.999"  # before the epoch, still truncated


def test_levels_are_padded_to_a_column_and_never_cut() -> None:
    lines = {name: render.text_line(make(level_name=name, level=level), INFO)
             for name, level in [("INFO", 20), ("ERROR", 40), ("CRITICAL", 50), ("X", 5)]}
    assert " INFO  shop[" in lines["INFO"] and " ERROR shop[" in lines["ERROR"]
    assert " CRITICAL shop[" in lines["CRITICAL"] and " X     shop[" in lines["X"]
    assert render.LEVEL_WIDTH == 5


@pytest.mark.parametrize(
    ("level", "sequence"),
    [(60, "\x1b[1;31m"), (50, "\x1b[1;31m"), (45, "\x1b[31m"), (40, "\x1b[31m"), (30, "\x1b[33m"),
     (25, "\x1b[32m"), (20, "\x1b[32m"), (19, "\x1b[2m"), (10, "\x1b[2m"), (0, "\x1b[2m"), (-5, "\x1b[2m")],
)
def test_a_level_takes_the_colour_of_the_standard_level_at_or_below_it(level: int, sequence: str) -> None:
    assert render.level_color(level) == sequence
    line = render.text_line(make(level=level, level_name="LVL"), INFO, color=True)
    assert f" {sequence}LVL  \x1b[0m shop[" in line
    assert "\x1b" not in render.text_line(make(level=level, level_name="LVL"), INFO)


def test_origin_falls_back_to_the_recording_then_to_question_marks() -> None:
    assert render.origin(make(process=9), INFO) == "shop[9]"
    assert render.origin(make(process=None), INFO) == "shop[4242]"  # the INFO's pid
    assert render.origin(make(process=9), None) == "?[9]"
    assert render.origin(make(process=None), None) == "?[?]"


def test_an_empty_message_leaves_no_double_space() -> None:
    assert render.text_line(make(message=""), INFO).endswith(" shop.cart:")
    assert render.text_line(make(message="", extras={"k": "v"}), INFO).endswith(" shop.cart: k=v")


def test_extras_print_plain_words_bare_and_anything_else_as_repr_on_one_line() -> None:
    extras = {
        "user": "alice@example.com", "path": "/a/b-c.txt", "url": "host:80/x+y", "n": 3,
        "ratio": 0.5, "none": None, "flag": True, "spaced": "two words", "empty": "",
        "multi": "line1\nline2", "list": [1, "a"], "blob": b"\x00\xff", "lone": "\udc80",
        5: "int key",
    }
    assert render.extras_text(extras) == (
        "user=alice@example.com path=/a/b-c.txt url=host:80/x+y n=3 ratio=0.5 none=None "
        "flag=True spaced='two words' empty='' multi='line1\\nline2' list=[1, 'a'] "
        "blob=b'\\x00\\xff' lone='\\udc80' 5='int key'"
    )
    assert render.extras_text({}) == ""


def test_an_extra_key_with_a_newline_stays_on_one_line() -> None:
    text = render.text_line(make(extras={"forged\n2025-01-01 00:00:00.000 ERROR x": 1}), INFO)
    assert "\n" not in text


def test_compact_value_never_breaks_the_line_and_survives_a_broken_repr() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert render.compact_value("plain_word-1.2") == "plain_word-1.2"
    assert render.compact_value("a\r\nb\x1b[31m") == "'a\\r\\nb\\x1b[31m'"
    assert render.compact_value(Broken()) == "<unrepresentable Broken>"


def test_traceback_and_stack_follow_the_line_indented() -> None:
    record = make(level=40, level_name="ERROR", exception=ExceptionInfo("KeyError", "'k'", TRACEBACK),
                  stack_info="Stack (most recent call last):\n  File \"app.py\", line 9")
    line, *details = render.text_line(record, INFO).split("\n")
    assert line.endswith("shop.cart: added item")
    assert details == [
        "    Traceback (most recent call last):", '      File "app.py", line 3, in <module>',
        "    KeyError: 'k'", "    Stack (most recent call last):", '      File "app.py", line 9',
    ]
    assert render.detail_lines(make(exception=ExceptionInfo("E", "v", ""))) == []
    assert render.detail_lines(make(stack_info="")) == []


def test_dropped_and_stream_lines(utc_plus_0530: None) -> None:
    assert render.dropped_line(Dropped(1, "queue full")) == "-- 1 record dropped: queue full --"
    assert render.dropped_line(Dropped(12, "sink down")) == "-- 12 records dropped: sink down --"
    assert render.stream_line(INFO, 2) == (
        "-- stream 2: shop[4242] recording rec-42 on box-1, started 2025-12-06 11:16:40.000 --"
    )


# --- JSON ------------------------------------------------------------------------------------


def test_json_fields_are_what_json_formatter_logs_for_the_same_record() -> None:
    """The same record logged with python-json-logger's JsonFormatter, every field asked for."""
    log_record = logging.LogRecord("shop.cart", logging.INFO, "/srv/app.py", 12, "added %s", ("item",),
                                   None, func="add")
    log_record.created = 1_765_000_000.5
    log_record.thread, log_record.threadName = 111, "MainThread"
    log_record.process, log_record.processName = 4300, "MainProcess"
    extras = {"user": "alice", "data": b"\xff\x00", "nested": {"k": (1, 2)}, "_hidden": 1}
    for key, value in extras.items():
        setattr(log_record, key, value)
    names = ["message", "name", "levelname", "levelno", "created", "pathname", "lineno",
             "funcName", "thread", "threadName", "process", "processName"]
    theirs = json.loads(JsonFormatter(" ".join(f"%({n})s" for n in names)).format(log_record))

    ours = json.loads(json.dumps(render.json_fields(make(extras=extras), INFO)))
    added = {k: ours.pop(k) for k in ("seq", "entity_path", "application_id", "recording_id")}
    assert ours == theirs
    assert list(ours) == list(theirs)  # in the same order too
    assert added == {"seq": 7, "entity_path": "shop/cart", "application_id": "shop",
                     "recording_id": "rec-42"}


def test_json_fields_carry_exception_stack_and_task_only_when_present() -> None:
    bare = render.json_fields(make(), INFO)
    assert not {"exc_info", "stack_info", "taskName"} & set(bare)
    full = render.json_fields(make(exception=ExceptionInfo("KeyError", "'k'", TRACEBACK),
                                   stack_info="Stack:\n  here", task_name="Task-3"), INFO)
    assert full["exc_info"] == TRACEBACK and full["stack_info"] == "Stack:\n  here"
    assert full["taskName"] == "Task-3"
    keys = list(full)
    assert keys.index("processName") < keys.index("taskName") < keys.index("exc_info") \
        < keys.index("stack_info") < keys.index("seq")


def test_json_fields_without_a_recording_and_extras_that_clash() -> None:
    fields = render.json_fields(make(extras={"levelname": "mine", "_x": 1, 3: "three"}), None)
    assert fields["application_id"] is None and fields["recording_id"] is None
    assert fields["levelname"] == "mine"  # an extra wins a clash
    assert "_x" not in fields and fields["3"] == "three"


def test_json_fields_dump_as_ascii_json_even_with_lone_surrogates() -> None:
    text = json.dumps(render.json_fields(make(message="bad \udc80 byte", extras={"k": "\ud800"}), INFO))
    assert text.isascii()
    assert json.loads(text)["message"] == "bad \udc80 byte"


@pytest.mark.parametrize(
    "key", [True, False, None, 7, -3, 1.5, float("nan"), float("inf"), float("-inf"), "text"]
)
def test_json_key_is_what_json_dumps_writes(key: Any) -> None:
    (written,) = json.loads(json.dumps({key: 0}))
    assert render.json_key(key) == written


def test_json_key_of_bytes_and_other_objects() -> None:
    assert render.json_key(b"\xff") == "_w=="
    assert render.json_key((1, 2)) == "(1, 2)"


def test_json_value_makes_every_decoded_value_serializable() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    value = {"b": b"\xfb\xff", "ba": bytearray(b"\x00"), "t": (1, [2, (3,)]), 1: None,
             "o": Odd(), "f": 2.5, "ok": True}
    assert render.json_value(value) == {
        "b": "-_8=", "ba": "AA==", "t": [1, [2, [3]]], "1": None, "o": "odd", "f": 2.5, "ok": True,
    }
    json.dumps(render.json_value(value))


def test_json_value_keeps_exactly_max_json_depth_levels() -> None:
    def nested(levels: int) -> Any:
        value: Any = "leaf"
        for _ in range(levels):
            value = [value]
        return value

    kept = render.json_value(nested(render.MAX_JSON_DEPTH))
    assert kept == nested(render.MAX_JSON_DEPTH)
    cut = render.json_value(nested(render.MAX_JSON_DEPTH + 1))
    inner = cut
    for _ in range(render.MAX_JSON_DEPTH):
        inner = inner[0]
    assert inner == render.TOO_DEEP_MARK.format(render.MAX_JSON_DEPTH) + "['leaf']"


def test_too_deep_text_is_capped_to_the_field_size() -> None:
    wide = [["x" * 1000] * 200]
    text = render.too_deep_text(wide)
    mark = render.TOO_DEEP_MARK.format(render.MAX_JSON_DEPTH)
    assert text.startswith(mark + "[['xxx")
    cut = len(repr(wide)) - MAX_FIELD_CHARS
    assert text.endswith(TRUNCATION_MARK.format(cut))
    assert len(text) == len(mark) + MAX_FIELD_CHARS + len(TRUNCATION_MARK.format(cut))


def test_dropped_and_stream_fields() -> None:
    assert render.dropped_fields(Dropped(3, "sink down")) == {"dropped": 3, "reason": "sink down"}
    assert render.stream_fields(INFO, 2) == {
        "stream": 2, "application_id": "shop", "recording_id": "rec-42", "process": 4242,
        "host": "box-1", "created": 1_765_000_000.0,
    }
