"""The schema is the one definition of the format: writers and readers derive from it.

``rerun_logging.format.schema`` names, orders and types the fields of the ``sites``,
``ctxs`` and INFO tables and the RECORDS columns. These tests check that each writer
(``columns_for`` for ``Record`` objects, ``capture.record_columns`` for captured
``LogRecord`` data, ``info_message``) puts them in the schema's order, that the
decoder checks the schema's types, that the capture step reads the ``LogRecord``
attributes the schema names, and that the package keeps its shape (one job per
module, nothing of ``rerun_logging`` imported from outside it).
"""

from __future__ import annotations

import ast
import dataclasses
import logging
from pathlib import Path
from typing import Any

import msgpack
import pytest

from rerun_logging import capture, format
from rerun_logging.format import (
    CONTEXT,
    CONTEXT_FIELDS,
    INFO_FIELDS,
    RECORD_COLUMNS,
    SITE,
    SITE_FIELDS,
    Record,
    RecordingInfo,
    StreamDecoder,
)

from .test_format import FULL, INFO, MINIMAL, SMALL_STREAM_MESSAGES, record

FORMAT_DIR = Path(format.__file__).resolve().parent
WRITER_ORDER = [c.key for c in RECORD_COLUMNS]


def schema_order(keys: Any) -> list[str]:
    """The schema's column keys that ``keys`` holds, in the schema's order."""
    return [key for key in WRITER_ORDER if key in set(keys)]


def site_of(row: list[Any]) -> dict[str, Any]:
    return dict(zip(SITE_FIELDS, row))


def context_of(row: list[Any]) -> dict[str, Any]:
    return dict(zip(CONTEXT_FIELDS, row))


# --- the tables ---------------------------------------------------------------------


def test_every_table_field_is_a_record_field_once() -> None:
    record_fields = [f.name for f in dataclasses.fields(Record)]
    table_fields = [*SITE_FIELDS, *CONTEXT_FIELDS]
    assert len(set(table_fields)) == len(table_fields)
    assert set(table_fields) <= set(record_fields)
    # what the tables do not hold has a column of its own
    assert set(record_fields) - set(table_fields) == {
        "seq", "time_ns", "message", "extras", "exception", "stack_info", "args",
        "trace_id", "span_id", "trace_flags",
    }


def test_info_fields_are_the_recording_info_fields() -> None:
    assert [f.name for f in INFO_FIELDS] == [f.name for f in dataclasses.fields(RecordingInfo)]
    optional = [f.key for f in INFO_FIELDS if f.optional]
    assert optional == ["prefix"]


def test_record_columns_are_unique_and_extra_comes_last() -> None:
    assert len(set(WRITER_ORDER)) == len(WRITER_ORDER)
    assert WRITER_ORDER[-1] == "extra"
    for column in RECORD_COLUMNS:
        assert bool(column.items) != bool(column.row), column  # a flat column or a table


def test_the_only_derived_site_field_is_the_entity_path() -> None:
    assert [f.name for f in SITE if f.log_record is None] == ["entity_path"]
    assert all(f.log_record is not None for f in CONTEXT)


# --- writers ------------------------------------------------------------------------


@pytest.mark.parametrize("with_args", [False, True])
def test_columns_for_writes_the_schema_order(with_args: bool) -> None:
    records = [FULL, MINIMAL, record(3, args=(3,) if with_args else None)]
    if not with_args:
        records = [dataclasses.replace(r, args=None) for r in records]
    columns, _ = format.columns_for(records)
    assert list(columns) == schema_order(columns)
    assert ("args" in columns) is with_args
    assert [site_of(row) for row in columns["sites"]][0] == {
        name: getattr(FULL, name) for name in SITE_FIELDS
    }
    assert context_of(columns["ctxs"][0]) == {name: getattr(FULL, name) for name in CONTEXT_FIELDS}


def test_a_records_message_holds_the_columns_in_the_schema_order() -> None:
    payload = format.encode_records([FULL, MINIMAL])
    kind, body = msgpack.unpackb(payload, raw=False, strict_map_key=False, unicode_errors="surrogatepass")
    assert kind == format.KIND_RECORDS
    assert list(body) == schema_order(body) and list(body)[-1] == "extra"


@pytest.mark.parametrize("with_args", [False, True])
def test_record_columns_writes_the_schema_order(logger: logging.Logger, with_args: bool) -> None:
    captured = [
        capture.capture(logger.makeRecord(
            logger.name, logging.WARNING, "/srv/app.py", 7, "n=%s" if with_args else "plain",
            (object(),) if with_args else None, None, func="serve",
        ))
        for _ in range(3)
    ]
    columns, _ = capture.record_columns(captured, 0, "svc")
    assert list(columns) == schema_order(columns)
    assert ("args" in columns) is with_args
    same = record(0, args=("x",) if with_args else None)
    assert list(columns) == list(format.columns_for([same])[0])  # both writers, one order


def test_record_columns_fills_each_field_from_the_attribute_the_schema_names(
    logger: logging.Logger,
) -> None:
    log_record = logger.makeRecord(
        logger.name, logging.ERROR, "/srv/app.py", 42, "request %d done", (1,), None, func="serve",
    )
    columns, _ = capture.record_columns([capture.capture(log_record)], 0, "svc")
    (site,), (context,) = columns["sites"], columns["ctxs"]
    expected_site = {
        f.name: getattr(log_record, f.log_record) for f in SITE if f.log_record is not None
    }
    expected_site["entity_path"] = format.entity_path_for(logger.name, "svc")
    assert site_of(site) == expected_site
    assert context_of(context) == {
        f.name: getattr(log_record, f.log_record, None) for f in CONTEXT if f.log_record
    }


def test_capture_reads_the_attributes_the_schema_names() -> None:
    standard = logging.LogRecord("n", 0, "p", 0, "m", (), None).__dict__
    assert capture._SITE_KEYS == tuple(f.log_record for f in SITE if f.log_record)
    assert capture._CONTEXT_KEYS == tuple(f.log_record for f in CONTEXT if f.log_record in standard)
    assert set(capture._KEY_NAMES) <= set(standard)
    # a field this Python's LogRecord lacks (taskName before 3.12) is padded at the end
    absent = [f.log_record for f in CONTEXT if f.log_record not in standard]
    assert [f.log_record for f in CONTEXT][len(CONTEXT) - len(absent):] == absent
    assert capture._ABSENT_CONTEXT == (None,) * len(absent)


def test_info_message_writes_the_schema_order() -> None:
    kind, body = msgpack.unpackb(format.info_message(INFO), raw=False)
    assert kind == format.KIND_INFO
    assert list(body) == [f.key for f in INFO_FIELDS]
    assert format.decode_info(body) == INFO


# --- readers ------------------------------------------------------------------------


def records_body(**changes: Any) -> dict[str, Any]:
    columns, extras = format.columns_for([record(0)])
    return {**columns, "extra": extras, **changes}


WRONG = {str: 1.5, int: "1", type(None): 1.5}
"""A value of another type than each type a field may have (never bool for int: a bool is an int)."""


@pytest.mark.parametrize("table, fields", [("sites", SITE), ("ctxs", CONTEXT)])
def test_the_decoder_checks_each_field_with_the_schemas_types(table: str, fields: Any) -> None:
    (row,) = records_body()[table]
    for at, field in enumerate(fields):
        types = field.types if isinstance(field.types, tuple) else (field.types,)
        wrong = next(v for t, v in WRONG.items() if not isinstance(v, types))
        bad = [*row[:at], wrong, *row[at + 1 :]]
        with pytest.raises(ValueError, match="bad (site|context) entry"):
            format.decode_records(records_body(**{table: [bad]}))
        for kind in types:
            good = [*row[:at], {str: "x", int: 1, type(None): None}[kind], *row[at + 1 :]]
            (decoded,) = format.decode_records(records_body(**{table: [good]}))
            assert getattr(decoded, field.name) == good[at]


@pytest.mark.parametrize("column", [c for c in RECORD_COLUMNS if c.items])
def test_the_decoder_checks_each_column_with_the_schemas_types(column: Any) -> None:
    wrong = next(v for v in (1.5, "x", 1) if type(v) not in column.items)
    with pytest.raises(ValueError, match=f"column '{column.key}' must be a list of"):
        format.decode_records(records_body(**{column.key: [wrong]}))


def test_a_stream_written_by_encode_stream_decodes_back() -> None:
    data = format.encode_stream(INFO, SMALL_STREAM_MESSAGES)
    decoder = StreamDecoder("schema-test")
    decoder.feed(data)
    messages = list(decoder.messages())
    decoder.close()
    assert messages == [INFO, *SMALL_STREAM_MESSAGES]
    for got, sent in zip(messages[1:], SMALL_STREAM_MESSAGES):
        if isinstance(sent, Record):
            assert {f.name: getattr(got, f.name) for f in dataclasses.fields(Record)} == vars(got)


# --- the package's shape ------------------------------------------------------------


def test_the_format_package_imports_nothing_of_rerun_logging_outside_itself() -> None:
    for path in sorted(FORMAT_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{path.name}: from {'.' * node.level}{node.module}"
                assert node.level == 1 or not (node.module or "").startswith("rerun_logging"), path.name
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("rerun_logging") for a in node.names), path.name


def test_every_format_module_says_its_job() -> None:
    modules = sorted(p.stem for p in FORMAT_DIR.glob("*.py"))
    assert modules == ["__init__", "decoder", "errors", "frames", "messages", "schema", "values"]
    for path in FORMAT_DIR.glob("*.py"):
        assert ast.get_docstring(ast.parse(path.read_text())), path.name


def test_every_name_of_the_package_is_exported_from_its_top() -> None:
    assert len(set(format.__all__)) == len(format.__all__)
    for name in format.__all__:
        assert hasattr(format, name), name
    for module in (format.schema, format.errors, format.values, format.messages, format.frames,
                   format.decoder):
        public = {
            name for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", module.__name__) == module.__name__
            and not isinstance(value, type(format))
        }
        assert public - set(format.__all__) <= {"annotations"}, module.__name__
