"""Write ``tests/data/golden-v1.2.rrd``: a fixed recording in format version 1.2.

NEVER RE-RUN THIS SCRIPT ONCE ``golden-v1.2.rrd`` IS COMMITTED (see make_golden.py:
the committed bytes are what every future reader must still understand).

1.2 lets a ``msg`` row be nil: the reader renders ``template % args``. The file holds::

    header  MAGIC 1.2
    frame   INFO
    frame   RECORDS x4 (zlib): positional args (msg nil), mapping args (msg written),
            no args (msg nil), args the template refuses (msg nil: the reader says why)
    frame   END

Run as ``python tests/data/make_golden_v1_2.py`` from the repository root.
"""

from __future__ import annotations

from pathlib import Path

from rerun_logging import format

INFO = format.RecordingInfo(
    application_id="golden-app", recording_id="00000000-0000-4000-8000-000000000012",
    start_time_ns=1_700_000_000_000_000_000, host="golden-host", pid=4242,
    python_version="3.11.7", package_version="0.3.0",
)
T0 = 1_700_000_000_123_456_789
SITE = dict(level=20, level_name="INFO", entity_path="uvicorn/access", logger="uvicorn.access",
            path="/srv/h11_impl.py", line=476, function="send", thread=1, thread_name="MainThread",
            process=4242, process_name="MainProcess")
RECORDS = [
    format.Record(seq=0, time_ns=T0, message="", template='%s - "%s %s HTTP/%s" %d',
                  args=("127.0.0.1:5000", "GET", "/items/1", "1.1", 200), **SITE),
    format.Record(seq=1, time_ns=T0 + 1_000, message="ann did 3 things",
                  template="%(user)s did %(n)d things", args={"user": "ann", "n": 3}, **SITE),
    format.Record(seq=2, time_ns=T0 + 2_000, message="", template="plain 100%", **SITE),
    format.Record(seq=3, time_ns=T0 + 3_000, message="", template="%d items", args=("x",), **SITE),
]
DEFERRED = (0, 2, 3)

if __name__ == "__main__":
    columns, extras = format.columns_for(RECORDS)
    columns["msg"] = [None if row in DEFERRED else m for row, m in enumerate(columns["msg"])]
    payload = format.records_message(columns, format.pack_extras(extras))
    data = (
        format.stream_header(INFO) + format.encode_frame(payload)
        + format.encode_frame(format.end_message())
    )
    assert data[8:10] == b"\x01\x02"
    Path(__file__).with_name("golden-v1.2.rrd").write_bytes(data)
