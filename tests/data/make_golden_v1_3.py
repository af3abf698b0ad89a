"""Write ``tests/data/golden-v1.3.rrd``: a fixed recording in format version 1.3.

NEVER RE-RUN THIS SCRIPT ONCE ``golden-v1.3.rrd`` IS COMMITTED (see make_golden.py:
the committed bytes are what every future reader must still understand).

1.3 added the ``trace`` table: the OpenTelemetry trace context of the records logged
in a span, one row each ``[row, trace id (16 bytes), span id (8 bytes), flags]``,
left out of a batch where no record has one. The file holds::

    header  MAGIC 1.3
    frame   INFO
    frame   RECORDS x4 (zlib): outside a span; in span A (sampled, msg nil);
            in span B of the same trace (not sampled, an extra); outside a span again
    frame   RECORDS x1 (zlib): no record in a span, so no ``trace`` key at all
    frame   END

Run as ``python tests/data/make_golden_v1_3.py`` from the repository root.
"""

from __future__ import annotations

from pathlib import Path

from rerun_logging import format

INFO = format.RecordingInfo(
    application_id="golden-app", recording_id="00000000-0000-4000-8000-000000000013",
    start_time_ns=1_700_000_000_000_000_000, host="golden-host", pid=4242,
    python_version="3.11.7", package_version="0.4.0",
)
T0 = 1_700_000_000_123_456_789
SITE = dict(level=20, level_name="INFO", entity_path="app/web", logger="app.web",
            path="/srv/app/web.py", line=42, function="handle", thread=1, thread_name="MainThread",
            process=4242, process_name="MainProcess")
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_A = "00f067aa0ba902b7"
SPAN_B = "53995c3f42cd8ad8"
RECORDS = [
    format.Record(seq=0, time_ns=T0, message="starting", template="starting", **SITE),
    format.Record(seq=1, time_ns=T0 + 1_000, message="", template="request %d done", args=(1,),
                  trace_id=TRACE, span_id=SPAN_A, trace_flags=1, **SITE),
    format.Record(seq=2, time_ns=T0 + 2_000, message="query took 3 ms",
                  template="query took %d ms", args=(3,), extras={"db": "main"},
                  trace_id=TRACE, span_id=SPAN_B, trace_flags=0, **SITE),
    format.Record(seq=3, time_ns=T0 + 3_000, message="idle", template="idle", **SITE),
]
DEFERRED = (1,)
LATER = [format.Record(seq=4, time_ns=T0 + 4_000, message="stopping", template="stopping", **SITE)]

if __name__ == "__main__":
    columns, extras = format.columns_for(RECORDS)
    assert "trace" in columns and [row[0] for row in columns["trace"]] == [1, 2]
    columns["msg"] = [None if row in DEFERRED else m for row, m in enumerate(columns["msg"])]
    payload = format.records_message(columns, format.pack_extras(extras))
    later = format.encode_records(LATER)
    data = (
        format.stream_header(INFO) + format.encode_frame(payload) + format.encode_frame(later)
        + format.encode_frame(format.end_message())
    )
    assert data[8:10] == b"\x01\x03"
    Path(__file__).with_name("golden-v1.3.rrd").write_bytes(data)
