"""The save sink: append by default, ``mode="w"``, several handlers on one path, fork.

Real files, real handlers and threads; the files are read back through the one
decoder (``reader.verify`` / ``StreamDecoder``), never by looking at bytes.
"""

from __future__ import annotations

import logging
import logging.config
import os
import threading
from pathlib import Path

import pytest

from rerun_logging import RerunHandler, format, reader
from rerun_logging.format import Record, RecordingInfo, StreamDecoder, stream_id
from rerun_logging.sinks.file import FileSink, child_path, open_files

INFO = RecordingInfo("file-test", "rec-file", 1_700_000_000_000_000_000, "host", 4242, "3.11", "0.1.0")


def streams_of(path: Path) -> dict[tuple[str, int, int], list[Record]]:
    """The records of each stream of ``path``, by stream id, in file order."""
    decoder = StreamDecoder(str(path))
    decoder.feed(path.read_bytes())
    out: dict[tuple[str, int, int], list[Record]] = {}
    for message in decoder.messages():
        if isinstance(message, Record):
            assert decoder.stream is not None
            out.setdefault(stream_id(decoder.stream.info), []).append(message)
    decoder.close()
    return out


def log_config(path: Path, name: str, **handler: object) -> dict[str, object]:
    return {
        "version": 1,
        "handlers": {"rrd": {"class": "rerun_logging.RerunHandler", "sink": f"save:{path}", **handler}},
        "loggers": {name: {"handlers": ["rrd"], "level": "INFO", "propagate": False}},
    }


# --- append, mode="w" ---------------------------------------------------------------


def test_the_same_dict_config_applied_twice_keeps_every_record(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "twice.rrd"
    for run in range(2):
        logging.config.dictConfig(log_config(path, logger.name))
        for i in range(5):
            logger.info("run %d record %d", run, i)
    logging.config.dictConfig({"version": 1, "loggers": {logger.name: {"handlers": []}}})
    for handler in logger.handlers[:]:
        handler.close()
    report = reader.verify(str(path))
    assert report.records == 10 and len(report.streams) == 2 and report.clean, report
    runs = [[r.message for r in records] for records in streams_of(path).values()]
    assert runs == [[f"run {run} record {i}" for i in range(5)] for run in range(2)]


def test_a_path_that_exists_is_appended_to(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "again.rrd"
    for run in range(3):
        handler = RerunHandler(f"save:{path}", application_id=f"run{run}")
        logger.addHandler(handler)
        logger.warning("run %d", run)
        logger.removeHandler(handler)
        handler.close()
    report = reader.verify(str(path))
    assert [s.recording.application_id for s in report.streams] == ["run0", "run1", "run2"]
    assert [s.records for s in report.streams] == [1, 1, 1] and report.clean


def test_mode_w_starts_afresh(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "fresh.rrd"
    path.write_bytes(format.encode_stream(INFO, [format.End()]) + b"not even a frame")
    handler = RerunHandler(f"save:{path}", application_id="fresh", mode="w")
    logger.addHandler(handler)
    logger.info("only me")
    logger.removeHandler(handler)
    handler.close()
    report = reader.verify(str(path))
    assert [r.application_id for r in report.recordings] == ["fresh"]
    assert report.records == 1 and report.clean


def test_mode_w_from_dict_config(tmp_path: Path, logger: logging.Logger) -> None:
    path = tmp_path / "fresh.rrd"
    path.write_bytes(format.encode_stream(INFO, [format.End()]))
    logging.config.dictConfig(log_config(path, logger.name, mode="w"))
    logger.info("kept")
    for handler in logger.handlers[:]:
        logger.removeHandler(handler)
        handler.close()
    report = reader.verify(str(path))
    assert len(report.streams) == 1 and report.records == 1 and report.clean


def test_a_sink_in_mode_w_joining_an_open_path_does_not_wipe_it(tmp_path: Path) -> None:
    path = tmp_path / "shared.rrd"
    first, second = FileSink(str(path)), FileSink(str(path), mode="w")
    first.start(format.stream_header(INFO))
    other = RecordingInfo(**{**INFO.__dict__, "start_time_ns": INFO.start_time_ns + 1})
    second.start(format.stream_header(other))
    first.write(records_frame(0, 3), 3)
    second.write(records_frame(0, 2), 2)
    first.write(records_frame(3, 1), 1)
    for sink in (first, second):
        sink.close(format.encode_frame(format.end_message()), 0)
    assert {key: [r.seq for r in rs] for key, rs in streams_of(path).items()} == {
        stream_id(INFO): [0, 1, 2, 3], stream_id(other): [0, 1],
    }
    assert reader.verify(str(path)).clean


def test_a_bad_mode_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'x'"):
        FileSink(str(tmp_path / "m.rrd"), mode="x")


def records_frame(first: int, count: int) -> bytes:
    records = [
        Record(seq=first + i, time_ns=INFO.start_time_ns + first + i, level=20, level_name="INFO",
               entity_path="a", logger="a", message=f"m{first + i}")
        for i in range(count)
    ]
    return format.encode_frame(format.encode_records(records))


# --- two handlers, one path ---------------------------------------------------------


def test_two_handlers_on_one_path_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "two.rrd"
    loggers = []
    for n in range(2):
        log = logging.getLogger(f"tests.two_handlers.{n}")
        log.propagate = False
        log.setLevel(logging.INFO)
        log.addHandler(RerunHandler(f"save:{path}", application_id="two", batch_size=7,
                                    flush_interval=0.001))
        loggers.append(log)
    go = threading.Barrier(2)

    def work(log: logging.Logger) -> None:
        go.wait()
        for i in range(100):
            log.info("%s %d", log.name, i)

    threads = [threading.Thread(target=work, args=(log,)) for log in loggers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for log in loggers:
        for handler in log.handlers[:]:
            log.removeHandler(handler)
            handler.close()
    report = reader.verify(str(path))
    assert report.records == 200 and len(report.streams) == 2 and report.clean, report
    streams = streams_of(path)
    assert sorted(len(records) for records in streams.values()) == [100, 100]
    for records in streams.values():
        name = records[0].logger
        assert [r.message for r in records] == [f"{name} {i}" for i in range(100)]
        assert [r.seq for r in records] == list(range(100))


def test_the_descriptor_closes_with_the_last_sink(tmp_path: Path) -> None:
    path = str(tmp_path / "ref.rrd")
    sinks = [FileSink(path), FileSink(path)]
    for sink in sinks:
        sink.start(format.stream_header(INFO))
        sink.write(records_frame(0, 1), 1)
    shared = open_files().files[os.path.abspath(path)]
    assert shared.users == 2
    sinks[0].close(format.encode_frame(format.end_message()), 0)
    os.fstat(shared.fd)  # still open for the other sink
    sinks[1].close(format.encode_frame(format.end_message()), 0)
    assert os.path.abspath(path) not in open_files().files
    with pytest.raises(OSError):
        os.fstat(shared.fd)


# --- fork ---------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_with_an_empty_table(tmp_path: Path) -> None:
    """The parent holds its file's lock while forking; the child neither sees nor needs it."""
    path = str(tmp_path / "fork.rrd")
    sink = FileSink(path)
    sink.start(format.stream_header(INFO))
    sink.write(records_frame(0, 1), 1)
    shared = open_files().files[os.path.abspath(path)]
    with shared.lock:
        pid = os.fork()
        if pid == 0:  # the child: a fresh table, and the path is writable without that lock
            status = 1
            try:
                fresh = open_files()
                child = sink.after_fork()
                assert fresh.files == {} and isinstance(child, FileSink)
                assert child.path == child_path(os.path.abspath(path), os.getpid())
                child.start(format.stream_header(INFO))
                child.close(format.encode_frame(format.end_message()), 0)
                other = FileSink(path)
                other.start(format.stream_header(RecordingInfo(**{**INFO.__dict__, "pid": os.getpid()})))
                other.close(format.encode_frame(format.end_message()), 0)
                status = 0
            finally:
                os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    sink.write(records_frame(1, 1), 1)
    sink.close(format.encode_frame(format.end_message()), 0)
    report = reader.verify(path)
    assert report.clean and [s.records for s in report.streams] == [2, 0]  # the child's stream: none
    assert reader.verify(child_path(path, pid)).clean
