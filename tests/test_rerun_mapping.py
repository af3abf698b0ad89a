"""rerun_sdk.mapping: our records as Rerun columns, checked with the real rerun-sdk and
read back from a real .rrd file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rerun", reason="needs the rerun-logging[rerun] extra (rerun-sdk)")

import pyarrow as pa  # noqa: E402
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


def arrow(column: Any) -> pa.Array:
    """A column's (or timeline's) array as a ``pyarrow`` array: the C half makes them as
    ``_speedups.ArrowColumn``, which pyarrow imports by the Arrow C data interface."""
    array = column.as_arrow_array()
    return array if isinstance(array, pa.Array) else pa.array(array)


def by_name(columns: mapping.EntityColumns) -> dict[str, list[Any]]:
    """Each component column's rows, by component name."""
    return {c.component_descriptor().component: arrow(c).to_pylist() for c in columns.columns}


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
    seqs = arrow(batches[0].indexes[1]).to_pylist()
    assert seqs == [0, 2] and batches[0].indexes[1].timeline_name() == "log_seq"
    assert batches[0].indexes[0].timeline_name() == "log_time"
    assert arrow(batches[0].indexes[0]).cast("int64").to_pylist() == [records[0].time_ns] * 2


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
    types = {c.component_descriptor().component: arrow(c).type.value_type for c in batch.columns}
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


def require_speedups() -> None:
    """Skip a test of the C half where it is not built (fail where CI says it must be)."""
    if mapping._SPEEDUPS is None:
        if os.environ.get("RERUN_LOGGING_REQUIRE_SPEEDUPS"):
            pytest.fail("rerun_logging._speedups is not built, and RERUN_LOGGING_REQUIRE_SPEEDUPS is set")
        pytest.skip("rerun_logging._speedups is not built here")


def test_the_c_half_makes_the_extra_columns_the_python_steps_make(monkeypatch: pytest.MonkeyPatch) -> None:
    require_speedups()
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


# --- the flusher's GIL ------------------------------------------------------------------


def mixed_batch(rows: int) -> list[Record]:
    """Records of three loggers and sites, with nulls, every kind of extra, exceptions."""
    return [
        record(
            seq=i, time_ns=1_700_000_000_000_000_000 + i, message=f"m{i}",
            entity_path=("shop/db", "shop/web", "jobs")[i % 3], logger=("shop.db", "shop.web", "jobs")[i % 3],
            line=10 + i % 3, thread=7 + i % 2, thread_name=("MainThread", "worker")[i % 2],
            exception=ExceptionInfo("KeyError", "'k'", "Traceback") if i % 50 == 0 else None,
            extras={"n": i, "user": "ann", "ratio": i / 2, "ok": i % 2 == 0, "tags": [i]} if i % 4 else {},
        )
        for i in range(rows)
    ]


def gil_releases(call: Any) -> int:
    """How many times another thread ran while ``call()`` ran on this one: 0 when
    ``call`` never released the GIL (the switch interval is made too long to force a
    switch, and the other thread asks for the GIL again at once each time it has it)."""
    import sys
    import threading
    import time

    ran, stop, started = [0], threading.Event(), threading.Event()

    def other() -> None:
        started.set()
        while not stop.is_set():
            ran[0] += 1
            time.sleep(0)  # gives the GIL back, and asks for it again

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    thread = threading.Thread(target=other, daemon=True)
    try:
        thread.start()
        started.wait(10)
        before = ran[0]
        call()
        return ran[0] - before
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        thread.join(10)


def test_making_the_columns_never_releases_the_gil() -> None:
    """Arrow's compute kernels and numpy's loops give the GIL up while they run, and the
    flusher then waits up to the switch interval (5 ms) to get it back from an app thread
    that is logging: 40 such waits a batch made the ``rerun`` sinks fall behind a fast
    app and drop records. The C half makes the columns without giving it up. (The
    Python half, for an install without the C half, is not held to this: the
    ``pa.Array.from_buffers`` it ends with validates with the GIL released, about one
    call in seventy.)"""
    require_speedups()
    batch = format.RecordColumns.of(mixed_batch(600))
    kinds = mapping.ExtraKinds()
    mapping.batch_columns(batch, "", kinds)  # first use: imports, caches
    made: list[Any] = []
    assert gil_releases(lambda: made.extend(mapping.batch_columns(batch, "", kinds, {}))) == 0
    assert [c.rows for c in made] == [200, 200, 200]


ODD_FIELDS: list[tuple[list[Any], Any]] = [
    (["a", None, "\udc80", "é", "", "x" * 300], pa.string()),
    ([1, None, -(2**63), 2**63 - 1, 2**63, -(2**63) - 1, 0], pa.int64()),
    ([0, 2**64 - 1, 2**64, -1, None], pa.uint64()),
    ([0.5, None, float("inf"), -0.0, 1e308], pa.float64()),
    ([True, False, None] * 5, pa.bool_()),
    ([None, None, None], pa.string()),
]


def both_halves(monkeypatch: pytest.MonkeyPatch, make: Any) -> tuple[Any, Any]:
    """What ``make()`` gives with the C half, and with the Python half."""
    require_speedups()
    fast = make()
    with monkeypatch.context() as patched:
        patched.setattr(mapping, "_SPEEDUPS", None)
        slow = make()
    return fast, slow


def as_rows(columns: list[Any]) -> list[Any]:
    return [None if c is None else (str(arrow(c).type), arrow(c).null_count, arrow(c).to_pylist()) for c in columns]


@pytest.mark.parametrize("index, rows", [(None, None), (None, [2, 0, 1]), ([1, 1, 0, 2, 0, 1], [5, 0, 3])])
def test_the_c_half_makes_the_columns_the_python_half_makes(
    monkeypatch: pytest.MonkeyPatch, index: list[int] | None, rows: list[int] | None,
) -> None:
    fields = [(rr.ComponentDescriptor(f"f{at}"), values, kind) for at, (values, kind) in enumerate(ODD_FIELDS)]
    fast, slow = both_halves(monkeypatch, lambda: as_rows(mapping._list_columns(fields, index, rows)))
    assert fast == slow
    if index is None and rows is None:
        assert fast[0] == ("list<item: string>", 1, [["a"], None, ["\\udc80"], ["é"], [""], ["x" * 300]])
        assert fast[1][2] == [[1], None, [-(2**63)], [2**63 - 1], None, None, [0]]  # past int64: null
        assert fast[2][2] == [[0], [2**64 - 1], None, None, None]
        assert fast[4][2][:3] == [[True], [False], None]
        assert fast[5] is None  # no row has a value: no column


def test_an_empty_batch_makes_no_rows_in_either_half(monkeypatch: pytest.MonkeyPatch) -> None:
    fields = [(rr.ComponentDescriptor("f"), [], pa.string())]
    fast, slow = both_halves(monkeypatch, lambda: as_rows(mapping._list_columns(fields)))
    assert fast == slow == [None]
    fast, slow = both_halves(monkeypatch, lambda: arrow(mapping._index("t", [], None, True)).to_pylist())
    assert fast == slow == []


def test_the_c_half_makes_the_timelines_the_python_half_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    times = [1_700_000_000_000_000_000, -5, 0, 3]

    def timelines() -> list[Any]:
        made = [mapping._index("time", times, rows, True) for rows in (None, [3, 1])]
        made.append(mapping._index("seq", [7, 8, 9], [2, 0], False))
        return [(index.timeline_name(), str(arrow(index).type), arrow(index).cast("int64").to_pylist()) for index in made]

    fast, slow = both_halves(monkeypatch, timelines)
    assert fast == slow == [
        ("time", "timestamp[ns]", [1_700_000_000_000_000_000, 0, 0, 3]),  # before the epoch: the epoch
        ("time", "timestamp[ns]", [3, 0]),
        ("seq", "int64", [9, 7]),
    ]


def test_both_halves_group_the_rows_by_entity_path(monkeypatch: pytest.MonkeyPatch) -> None:
    records = mixed_batch(30)
    fast, slow = both_halves(
        monkeypatch,
        lambda: [(b.entity_path, b.rows, by_name(b)) for b in mapping.columns_for(records, "", mapping.ExtraKinds())],
    )
    assert fast == slow
    assert [(path, rows) for path, rows, _ in fast] == [("/logs/shop/db", 10), ("/logs/shop/web", 10), ("/logs/jobs", 10)]
