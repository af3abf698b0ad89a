"""``--print`` (``viewer/printing.py``): one line per stored record on standard output."""

from __future__ import annotations

import io

from rerun_logging.format import Dropped, ExceptionInfo, Record, RecordingInfo
from rerun_logging.viewer.events import PrintStopped, ViewerEvent
from rerun_logging.viewer.printing import TextPrinter, record_lines

INFO = RecordingInfo("printed", "rec", 1, "host", 4242, "3.11", "0")


def record(seq: int, message: str = "hello", **changes: object) -> Record:
    return Record(**{"seq": seq, "time_ns": 0, "level": 20, "level_name": "INFO",  # type: ignore[arg-type]
                     "entity_path": "app/db", "logger": "app.db", "message": message, **changes})


def test_records_and_drops_are_one_line_each_with_the_app_and_pid() -> None:
    failed = record(1, "first\nsecond", exception=ExceptionInfo("KeyError", "'k'", "Traceback\nKeyError: 'k'"))
    lines = record_lines(INFO, [record(0), Dropped(2, "queue full"), failed], color=False)
    assert len(lines) == 3 and all("\n" not in line for line in lines)
    assert lines[0].endswith("printed[4242] app.db: hello")
    assert lines[1] == "printed[4242] -- 2 records dropped: queue full --"
    assert lines[2].endswith("printed[4242] app.db: first\\nsecond exception=KeyError: 'k'")
    assert "Traceback" not in lines[2]


def test_the_printer_writes_its_lines() -> None:
    out = io.StringIO()
    events: list[ViewerEvent] = []
    printer = TextPrinter(out, False, events.append)
    printer.show(INFO, [record(0), record(1, "again")])
    printer.show(INFO, [])
    assert out.getvalue().splitlines() == record_lines(INFO, [record(0), record(1, "again")], False)
    assert events == []


def test_an_output_that_closed_stops_the_printing_said_once() -> None:
    out = io.StringIO()
    events: list[ViewerEvent] = []
    printer = TextPrinter(out, False, events.append)
    out.close()
    printer.show(INFO, [record(0)])
    printer.show(INFO, [record(1)])
    assert printer.broken
    assert events == [PrintStopped("I/O operation on closed file")]
