"""Write ``tests/data/golden-v1.1.rrd``: a fixed recording in format version 1.1.

NEVER RE-RUN THIS SCRIPT ONCE ``golden-v1.1.rrd`` IS COMMITTED (see make_golden.py:
the committed bytes are what every future reader must still understand).

1.1 added the ``args`` column. The file holds::

    header  MAGIC 1.1
    frame   INFO
    frame   RECORDS x3: positional args, mapping args, no args   (zlib)
    frame   END

Run as ``python tests/data/make_golden_v1_1.py`` from the repository root.
"""

from __future__ import annotations

from pathlib import Path

from rerun_logging import format

INFO = format.RecordingInfo(
    application_id="golden-app", recording_id="00000000-0000-4000-8000-000000000011",
    start_time_ns=1_700_000_000_000_000_000, host="golden-host", pid=4242,
    python_version="3.11.7", package_version="0.1.0",
)
T0 = 1_700_000_000_123_456_789
SITE = dict(level=20, level_name="INFO", entity_path="uvicorn/access", logger="uvicorn.access",
            path="/srv/h11_impl.py", line=476, function="send", thread=1, thread_name="MainThread",
            process=4242, process_name="MainProcess")
RECORDS = [
    format.Record(seq=0, time_ns=T0, message='127.0.0.1:5000 - "GET /items/1 HTTP/1.1" 200',
                  template='%s - "%s %s HTTP/%s" %d',
                  args=("127.0.0.1:5000", "GET", "/items/1", "1.1", 200), **SITE),
    format.Record(seq=1, time_ns=T0 + 1_000, message="ann did 3 things",
                  template="%(user)s did %(n)d things", args={"user": "ann", "n": 3}, **SITE),
    format.Record(seq=2, time_ns=T0 + 2_000, message="plain", template="plain", **SITE),
]

if __name__ == "__main__":
    data = format.encode_stream(INFO, [*RECORDS, format.End()])
    assert data[8:10] == b"\x01\x01"
    Path(__file__).with_name("golden-v1.1.rrd").write_bytes(data)
