"""Write ``tests/data/golden-v1.0.rrd``: a fixed recording in format version 1.0.

NEVER RE-RUN THIS SCRIPT FOR v1.0 ONCE ``golden-v1.0.rrd`` IS COMMITTED.

The committed file is the bytes a 1.0 writer produced, and
``tests/test_format.py::test_golden_v1_0_reads_forever`` reads it with hard-coded
expectations: every future reader must still understand it. Re-running this script
with a changed encoder would silently replace those bytes with new ones and the
test would stop protecting old recordings. A new format version gets a new script
and a new golden file next to this one.

Everything is fixed (times, ids, threads, tracebacks), so the output is
deterministic. The file holds::

    header  MAGIC 1.0
    frame   INFO                                   (msgpack, uncompressed)
    frame   RECORDS x3: extras of every plain type  (zlib)
    frame   DROPPED + RECORDS x2: exception, stack  (msgpack, uncompressed)
    frame   END                                    (msgpack)

Run as ``python tests/data/make_golden.py`` from the repository root.
"""

from __future__ import annotations

from pathlib import Path

from rerun_logging import format

INFO = format.RecordingInfo(
    application_id="golden-app",
    recording_id="00000000-0000-4000-8000-000000000001",
    start_time_ns=1_700_000_000_000_000_000,
    host="golden-host",
    pid=4242,
    python_version="3.11.7",
    package_version="0.1.0",
    entity_prefix="svc",
)

T0 = 1_700_000_000_123_456_789
CTX = dict(thread=140_000_000_000_001, thread_name="MainThread", process=4242,
           process_name="MainProcess", task_name=None)

FIRST_BATCH = [
    format.Record(
        seq=0, time_ns=T0, level=20, level_name="INFO", entity_path="svc/app/web",
        logger="app.web", message="request 1 done", template="request %d done",
        extras={
            "user": "u", "n": 1, "ratio": 0.25, "ok": True, "none": None,
            "big": 2**64 - 1, "neg": -(2**63), "raw": b"\x00\xff",
            "tags": ["a", "b", [1, 2]], "nested": {"k": {"x": 1.5}},
        },
        path="/srv/app/web.py", line=42, function="handle", **CTX,
    ),
    format.Record(
        seq=1, time_ns=T0 + 3_000, level=20, level_name="INFO", entity_path="svc/app/web",
        logger="app.web", message="request 2 done", template="request %d done",
        extras={"user": "u", "n": 2},
        path="/srv/app/web.py", line=42, function="handle", **CTX,
    ),
    format.Record(
        seq=2, time_ns=T0 + 7_000, level=30, level_name="WARNING", entity_path="svc/app/db",
        logger="app.db", message="slow query: 1.5 s \u00e9\u4e16\U0001f389 \ud800",
        template="slow query: %s s \u00e9\u4e16\U0001f389 \ud800",
        extras={"k\udfff": "v\ud800"},
        path="/srv/app/db.py", line=7, function="query", thread=140_000_000_000_002,
        thread_name="worker-1", process=4242, process_name="MainProcess", task_name="Task-1",
    ),
]

SECOND_BATCH = [
    format.Record(
        seq=5, time_ns=T0 + 20_000, level=40, level_name="ERROR", entity_path="svc/app/web",
        logger="app.web", message="failed", template="failed",
        exception=format.ExceptionInfo(
            type="ValueError",
            value="bad value",
            traceback=(
                "Traceback (most recent call last):\n"
                '  File "/srv/app/web.py", line 50, in handle\n'
                '    raise ValueError("bad value")\n'
                "ValueError: bad value"
            ),
        ),
        path="/srv/app/web.py", line=51, function="handle", **CTX,
    ),
    format.Record(
        seq=6, time_ns=T0 + 21_000, level=10, level_name="DEBUG", entity_path="svc/root",
        logger="root", message="", template=None, extras={"event": "tick"},
        stack_info='Stack (most recent call last):\n  File "/srv/app/main.py", line 3, in <module>',
        path="/srv/app/main.py", line=3, function="<module>", **CTX,
    ),
]


def golden_bytes() -> bytes:
    """The bytes of the golden recording."""
    return b"".join(
        [
            format.HEADER,
            format.encode_frame(format.info_message(INFO), compress=False),
            format.encode_frame(format.encode_records(FIRST_BATCH), compress=True),
            format.encode_frame(
                format.dropped_message(2, "queue full: oldest records dropped")
                + format.encode_records(SECOND_BATCH),
                compress=False,
            ),
            format.encode_frame(format.end_message()),
        ]
    )


if __name__ == "__main__":
    target = Path(__file__).with_name("golden-v1.0.rrd")
    target.write_bytes(golden_bytes())
    print(f"wrote {target} ({target.stat().st_size} bytes)")
