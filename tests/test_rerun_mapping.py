"""rerun_sdk.mapping: our records as Rerun columns, checked with the real rerun-sdk and
read back from a real .rrd file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rerun", reason="needs the rerun-logging[rerun] extra (rerun-sdk)")

import rerun as rr  # noqa: E402
from rerun.chunk import RrdReader  # noqa: E402

from rerun_logging import format  # noqa: E402
from rerun_logging.format import ExceptionInfo, Record  # noqa: E402
from rerun_logging.rerun_sdk import mapping  # noqa: E402


def record(**fields: Any) -> Record:
    base: dict[str, Any] = dict(
        seq=0, time_ns=1_700_000_000_000_000_000, level=20, level_name="INFO",
        entity_path="shop/db", logger="shop.db", message="hello", template="hello",
        thread=7, thread_name="MainThread", process=42, process_name="MainProcess",
        path="/app/shop.py", line=12, function="buy",
    )
    base.update(fields)
    return Record(**base)


def by_name(columns: mapping.EntityColumns) -> dict[str, list[Any]]:
    """Each component column's rows, by component name."""
    return {c.component_descriptor().component: c.as_arrow_array().to_pylist() for c in columns.columns}


# --- entity paths and levels -------------------------------------------------------------


def test_entity_paths_go_under_logs_or_the_prefix() -> None:
    assert mapping.entity_path("shop/db", "") == "/logs/shop/db"
    assert mapping.entity_path("root", "") == "/logs/root"
    assert mapping.entity_path("robot/shop/db", "robot") == "/robot/shop/db"
    assert mapping.entity_path("a b/c", "") == "/logs/a\\ b/c"  # escaped as Rerun parses it


def test_levels_are_rerun_text_log_levels() -> None:
    assert [mapping.text_log_level(n, "X") for n in (50, 40, 30, 20, 10)] == [
        "CRITICAL", "ERROR", "WARN", "INFO", "DEBUG",
    ]
    assert mapping.text_log_level(25, "NOTICE") == "NOTICE"


# --- columns -----------------------------------------------------------------------------


def test_one_entity_columns_per_path_in_first_seen_order() -> None:
    records = [
        record(seq=0, entity_path="b"), record(seq=1, entity_path="a"), record(seq=2, entity_path="b"),
    ]
    batches = mapping.columns_for(records, "", mapping.ExtraKinds())
    assert [(b.entity_path, b.rows) for b in batches] == [("/logs/b", 2), ("/logs/a", 1)]
    seqs = batches[0].indexes[1].as_arrow_array().to_pylist()
    assert seqs == [0, 2] and batches[0].indexes[1].timeline_name() == "log_seq"
    assert batches[0].indexes[0].timeline_name() == "log_time"
    assert batches[0].indexes[0].as_arrow_array().cast("int64").to_pylist() == [records[0].time_ns] * 2


def test_the_record_fields_are_components_beside_the_text_log() -> None:
    (batch,) = mapping.columns_for([record(level=30, level_name="WARNING")], "", mapping.ExtraKinds())
    got = by_name(batch)
    assert got["TextLog:text"] == [["hello"]] and got["TextLog:level"] == [["WARN"]]
    assert got["LogRecord:levelno"] == [[30]]
    assert got["LogRecord:logger"] == [["shop.db"]]
    assert got["LogRecord:pathname"] == [["/app/shop.py"]] and got["LogRecord:lineno"] == [[12]]
    assert got["LogRecord:funcName"] == [["buy"]]
    assert got["LogRecord:thread"] == [[7]] and got["LogRecord:threadName"] == [["MainThread"]]
    assert got["LogRecord:process"] == [[42]] and got["LogRecord:processName"] == [["MainProcess"]]
    assert "LogRecord:exc_text" not in got and "LogRecord:taskName" not in got  # no row has one
    descriptor = {c.component_descriptor().component: c.component_descriptor() for c in batch.columns}
    assert descriptor["LogRecord:logger"].archetype == "LogRecord"
    assert descriptor["TextLog:text"].component_type == "rerun.components.Text"


def test_exception_and_stack_rows_and_nulls_elsewhere() -> None:
    failed = record(exception=ExceptionInfo("KeyError", "'k'", "Traceback...\nKeyError: 'k'"), stack_info="Stack")
    (batch,) = mapping.columns_for([record(), failed], "", mapping.ExtraKinds())
    got = by_name(batch)
    assert got["LogRecord:exc_type"] == [None, ["KeyError"]]
    assert got["LogRecord:exc_value"] == [None, ["'k'"]]
    assert got["LogRecord:exc_text"] == [None, ["Traceback...\nKeyError: 'k'"]]
    assert got["LogRecord:stack_info"] == [None, ["Stack"]]


def test_extras_are_typed_components_named_by_their_key() -> None:
    records = [
        record(extras={"user_id": 7, "ratio": 0.5, "ok": True, "who": "ann", "tags": ["a", 1], "raw": b"\x00"}),
        record(extras={"user_id": 8}),
    ]
    (batch,) = mapping.columns_for(records, "", mapping.ExtraKinds())
    got = by_name(batch)
    assert got["user_id"] == [[7], [8]]
    assert got["ratio"] == [[0.5], None] and got["ok"] == [[True], None] and got["who"] == [["ann"], None]
    assert got["tags"] == [['["a", 1]'], None]  # JSON text
    assert got["raw"] == [["b'\\x00'"], None]
    types = {c.component_descriptor().component: c.as_arrow_array().type.value_type for c in batch.columns}
    assert str(types["user_id"]) == "int64" and str(types["ratio"]) == "double"
    assert str(types["ok"]) == "bool" and str(types["who"]) == "string"


ODD_EXTRAS: list[list[dict[Any, Any] | None]] = [
    [{"n": 1, "s": "a"}, None, {"s": 2, "z": None}, {"n": 2**70}, {}],
    [{"b": True}, {"b": False}, {"f": 1.5}, {"f": 2}, {1: "an int key"}, {"l": [1]}, {"t": "\udc80"}],
    [{"n": 2**63 - 1}, {"n": -(2**63)}, {"u": 2**63}],
    [None, None],
    [],
    # Keys in another order, missing, or new from one row to the next (the C half tries
    # the row before's keys first), and equal keys that are other str objects.
    [{"a": 1, "b": "x"}, {"b": "y", "a": 2}, {"a": 3}, {"c": 1.5, "a": 4, "b": "z"},
     {"".join(["a"]): 5, "b": "w"}, None, {"b": "v", "a": 6}],
]


def test_the_c_half_makes_the_extra_columns_the_python_steps_make(monkeypatch: pytest.MonkeyPatch) -> None:
    if mapping._SPEEDUPS is None:
        if os.environ.get("RERUN_LOGGING_REQUIRE_SPEEDUPS"):
            pytest.fail("rerun_logging._speedups is not built, and RERUN_LOGGING_REQUIRE_SPEEDUPS is set")
        pytest.skip("rerun_logging._speedups is not built here")
    fast = [mapping._extra_columns(extras) for extras in ODD_EXTRAS]
    monkeypatch.setattr(mapping, "_SPEEDUPS", None)
    assert fast == [mapping._extra_columns(extras) for extras in ODD_EXTRAS]
    assert [kind for _, _, kind in fast[0]] == ["", "", None]
    assert [kind for _, _, kind in fast[1]] == ["bool", "", "text", "", "text"]
    assert [kind for _, _, kind in fast[2]] == ["int", ""]
    assert fast[0][1] == ("s", ["a", None, 2, None, None], "")
    assert fast[5] == [
        ("a", [1, 2, 3, 4, 5, None, 6], "int"),
        ("b", ["x", "y", None, "z", "w", None, "v"], "text"),
        ("c", [None, None, None, 1.5, None, None, None], "float"),
    ]


def test_a_key_keeps_its_first_type_across_batches() -> None:
    kinds = mapping.ExtraKinds()
    mapping.columns_for([record(extras={"n": 1.5})], "", kinds)
    (batch,) = mapping.columns_for(
        [record(extras={"n": 2}), record(extras={"n": "three"}), record(extras={"n": None})], "", kinds,
    )
    got = by_name(batch)
    assert got["n"] == [[2.0], None, None]  # an int into the float component
    assert got["n.text"] == [None, ["three"], None]  # what does not fit: beside it, as text
    assert kinds.kinds == {"n": "float"}


def test_text_utf8_cannot_hold_is_escaped() -> None:
    (batch,) = mapping.columns_for(
        [record(message="bad \udc80 byte", extras={"k": "v\udc81"})], "", mapping.ExtraKinds(),
    )
    got = by_name(batch)
    assert got["TextLog:text"] == [["bad \\udc80 byte"]] and got["k"] == [["v\\udc81"]]


def test_a_drop_report_is_a_warn_row() -> None:
    batch = mapping.dropped_columns(3, "queue full", 1_700_000_000_000_000_000, "")
    assert batch.entity_path == "/logs/rerun_logging" and batch.rows == 1
    got = by_name(batch)
    assert got["TextLog:level"] == [["WARN"]]
    assert got["rerun_logging:dropped_count"] == [[3]]
    assert got["rerun_logging:dropped_reason"] == [["queue full"]]
    assert mapping.dropped_columns(1, "x", 0, "robot/arm").entity_path == "/robot/arm/rerun_logging"


# --- frames and headers ------------------------------------------------------------------


def test_frames_and_header_decode_to_records_and_info() -> None:
    info = format.RecordingInfo("shop", "rid", 1, "host", 2, "3.11", "0.1", "robot")
    assert format.header_info(format.stream_header(info)) == info
    frame = format.encode_frame(format.dropped_message(2, "why"))
    (dropped,) = list(format.stored_records([frame]))
    assert (dropped.count, dropped.reason) == (2, "why")
    with pytest.raises(ValueError):
        list(format.stored_records([b"not a frame"]))


# --- into a real recording ----------------------------------------------------------------


def test_sent_columns_read_back_from_a_real_rrd(tmp_path: Path) -> None:
    path = tmp_path / "m.rrd"
    recording = rr.RecordingStream("mapping", recording_id="mapping-1")
    recording.save(str(path))
    kinds = mapping.ExtraKinds()
    records = [record(seq=i, message=f"m{i}", extras={"i": i} if i % 2 else {}) for i in range(5)]
    for batch in mapping.columns_for(records, "", kinds):
        mapping.send(batch, recording)
    mapping.send(mapping.dropped_columns(1, "because", records[0].time_ns, ""), recording)
    recording.flush(timeout_sec=10)
    recording.disconnect()
    rows: dict[str, list[dict[str, Any]]] = {}
    for chunk in RrdReader(str(path)).stream():
        table = chunk.to_record_batch()
        names = [n for n in table.schema.names if n != "log_time"]
        rows.setdefault(chunk.entity_path, []).extend(table.select(names).to_pylist())
    logs = rows["/logs/shop/db"]
    assert [r["TextLog:text"] for r in logs] == [[f"m{i}"] for i in range(5)]
    assert [r["i"] for r in logs] == [None, [1], None, [3], None]
    assert [r["log_seq"] for r in logs] == list(range(5))
    assert rows["/logs/rerun_logging"][0]["rerun_logging:dropped_count"] == [1]


def test_a_bad_batch_raises_instead_of_warning() -> None:
    recording = rr.RecordingStream("mapping", recording_id="mapping-2")
    (batch,) = mapping.columns_for([record()], "", mapping.ExtraKinds())
    broken = mapping.EntityColumns(batch.entity_path, batch.indexes, batch.columns[:1] * 2 + [
        mapping._Column(rr.ComponentDescriptor("short"), rr.TextLog.columns(text=["a", "b"]).__iter__().__next__().as_arrow_array()),
    ], 1)
    with pytest.raises(Exception):
        mapping.send(broken, recording)


@pytest.mark.skipif("trace_id" not in Record.__dataclass_fields__, reason="records without trace context")
def test_the_span_a_record_was_logged_in() -> None:
    traced = record(trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331", trace_flags=1)
    (batch,) = mapping.columns_for([record(), traced], "", mapping.ExtraKinds())
    got = by_name(batch)
    assert got["LogRecord:trace_id"] == [None, ["0af7651916cd43dd8448eb211c80319c"]]
    assert got["LogRecord:span_id"] == [None, ["b7ad6b7169203331"]]
    assert got["LogRecord:trace_flags"] == [None, [1]]
