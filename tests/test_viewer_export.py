"""The web UI's Download, sans-I/O: requests parsed strictly, files written by the format."""

from __future__ import annotations

import logging

import pytest

from rerun_logging.format import (
    HEADER, Record, RecordingInfo, StreamDecoder, encode_frame, encode_records, stream_header,
)
from rerun_logging.viewer.export import (
    ExportRequestError, build_export, file_name, parse_request, sources_for,
)
from rerun_logging.viewer.ingest import StreamIngest
from rerun_logging.viewer.store import RecordingStore


def info(app: str, recording: str, pid: int) -> RecordingInfo:
    return RecordingInfo(app, recording, 1_000, "host", pid, "3.11", "0")


def record(seq: int, pid: int) -> Record:
    return Record(seq=seq, time_ns=10_000 + seq * 10 + pid, level=logging.INFO, level_name="INFO",
                  entity_path="a", logger="a", message=f"{pid}:{seq}", process=pid)


def store_with(*streams: tuple[RecordingInfo, int]) -> RecordingStore:
    store = RecordingStore()
    for stream_info, count in streams:
        ingest = StreamIngest("test", store, network=False)
        frames = [encode_frame(encode_records([record(s, stream_info.pid) for s in range(i, min(i + 7, count))]))
                  for i in range(0, count, 7)]
        ingest.feed(stream_header(stream_info) + b"".join(frames))
        ingest.close()
    return store


def read(data: bytes) -> list[object]:
    decoder = StreamDecoder("<export>")
    decoder.feed(data)
    messages = list(decoder.messages())
    decoder.close()
    return messages


def test_one_stream_keeps_its_info_and_sequence_numbers() -> None:
    store = store_with((info("app", "rec-1", 11), 30))
    request_id, selections = parse_request(
        {"type": "download", "id": 1, "select": [{"recording": "rec-1", "pid": 11, "seqs": [3, 4, 20, 2]}]}
    )
    export = build_export(sources_for(store, selections), sum(s.count for s in selections))
    messages = read(export.data)
    assert messages[0] == info("app", "rec-1", 11)
    assert [m.seq for m in messages if isinstance(m, Record)] == [3, 4, 5, 6, 20, 21]
    assert (export.records, export.missing, export.name) == (6, 0, "app-rec-1.rlg")


def test_several_streams_merge_in_time_order_renumbered() -> None:
    store = store_with((info("a", "rec", 1), 5), (info("b", "rec", 2), 5))
    _, selections = parse_request({"id": 2, "select": [
        {"recording": "rec", "pid": 1, "seqs": [0, 5]}, {"recording": "rec", "pid": 2, "seqs": [0, 5]}]})
    export = build_export(sources_for(store, selections), 10)
    messages = read(export.data)
    head, records = messages[0], [m for m in messages if isinstance(m, Record)]
    assert isinstance(head, RecordingInfo) and head.application_id == "a+b"
    assert [r.message for r in records] == [f"{pid}:{seq}" for seq in range(5) for pid in (1, 2)]
    assert [r.seq for r in records] == list(range(10))


def test_records_no_longer_held_are_counted_missing() -> None:
    store = store_with((info("app", "rec", 1), 10))
    _, selections = parse_request({"id": 3, "select": [
        {"recording": "rec", "pid": 1, "seqs": [8, 5]}, {"recording": "gone", "pid": 9, "seqs": [0, 4]}]})
    export = build_export(sources_for(store, selections), sum(s.count for s in selections))
    assert (export.records, export.missing) == (2, 7)


def test_overlapping_runs_count_once() -> None:
    _, (selection,) = parse_request({"id": 4, "select": [{"recording": "r", "pid": 1, "seqs": [0, 5, 3, 5, 20, 0]}]})
    assert (selection.starts, selection.ends, selection.count) == ((0,), (8,), 8)
    assert 7 in selection and 8 not in selection


@pytest.mark.parametrize("request_, error", [
    ([], "must be a JSON object"),
    ({"select": []}, "'id' must be an integer"),
    ({"id": True, "select": []}, "'id' must be an integer"),
    ({"id": 1}, "'select' must be a list"),
    ({"id": 1, "select": ["x"]}, r"select\[0\] must be an object"),
    ({"id": 1, "select": [{"recording": 5, "pid": 1, "seqs": []}]}, r"select\[0\].recording must be a string"),
    ({"id": 1, "select": [{"recording": "r", "pid": "1", "seqs": []}]}, r"select\[0\].pid must be an integer"),
    ({"id": 1, "select": [{"recording": "r", "pid": 1, "seqs": [1, -2]}]}, "pairs of non-negative integers"),
    ({"id": 1, "select": [{"recording": "r", "pid": 1, "seqs": [1.5, 2]}]}, "pairs of non-negative integers"),
    ({"id": 1, "select": [{"recording": "r", "pid": 1, "seqs": 7}]}, "pairs of non-negative integers"),
    ({"id": 1, "select": [{"recording": "r", "pid": 1, "seqs": [0, 1] * 500_001}]}, "narrow the selection"),
])
def test_bad_requests_name_what_was_wrong(request_: object, error: str) -> None:
    with pytest.raises(ExportRequestError, match=error):
        parse_request(request_)


def test_file_names_are_safe_whatever_the_application_says() -> None:
    assert file_name(info("../../etc/passwd", "r" * 40, 1)) == "etc_passwd-rrrrrrrr.rlg"
    assert file_name(info("", "", 1)) == "recording.rlg"
    assert "/" not in file_name(info("a/b\\c\0d", "x", 1))


def test_empty_selection_is_a_valid_empty_recording() -> None:
    export = build_export([], 0)
    assert export.records == 0 and export.data.startswith(HEADER)
    assert read(export.data)[-1].__class__.__name__ == "End"


def test_each_run_of_a_file_downloads_on_its_own() -> None:
    """A file of two runs (a reused save path) loads as two recordings; each exports alone."""
    store = RecordingStore()
    ingest = StreamIngest("runs.rrd", store, network=False)
    runs = [info("app", "run-1", 11), info("app", "run-2", 12)]
    ingest.feed(b"".join(
        stream_header(run) + encode_frame(encode_records([record(s, run.pid) for s in range(5)]))
        for run in runs
    ))
    ingest.close()
    for run in runs:
        _, selections = parse_request(
            {"type": "download", "id": 1, "select": [{"recording": run.recording_id, "pid": run.pid, "seqs": [0, 5]}]}
        )
        export = build_export(sources_for(store, selections), 5)
        messages = read(export.data)
        assert messages[0] == run and (export.records, export.missing) == (5, 0)
        assert [m.message for m in messages if isinstance(m, Record)] == [f"{run.pid}:{s}" for s in range(5)]
