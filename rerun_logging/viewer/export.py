"""Recording files of a selection of stored records: the web UI's Download. Sans-I/O.

The page knows which rows it shows; the server holds their bytes. The page sends
which records it wants, by stream and sequence number, and the server answers with
a recording file written by the same :mod:`rerun_logging.format` code as every
other writer, so ``rerun-logging FILE`` opens it. (Writing the file in the browser
would have meant a second encoder of the format, in JavaScript, to keep in step.)

Request, a WebSocket text message from the page::

    {"type": "download", "id": int,
     "select": [{"recording": str, "pid": int, "seqs": [first, count, first, count, ...]},
                ...]}

``seqs`` lists runs of consecutive sequence numbers. Answer: a text message
``{"type": "download", "id": int, "name": str, "records": int, "missing": int}``
then, at once, one binary message holding the file. ``missing`` counts the
records asked for that the server no longer holds (evicted under its memory
limit). A bad request is answered ``{"type": "error", "id": int | null, "error": str}``
naming what was wrong.

One stream selected: the file is that stream (its INFO, its sequence numbers).
Several: one merged stream, records in time order and renumbered; each record
still names its process and thread.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, Sequence

from ..format import (
    MAX_RECORDS_PER_FRAME, Record, RecordingError, RecordingInfo, encode_frame, encode_records,
    end_message, stored_decoder, stream_header,
)
from .store import RecordingStore

MAX_SELECTED_STREAMS = 1024
MAX_RUNS = 500_000
"""Most runs one request may list (a million numbers): past it the page must narrow."""
RECORDS_PER_FRAME = 4096
"""Records per frame of an exported file (the handler's default batch)."""


class ExportRequestError(ValueError):
    """A download request that does not follow the protocol; the message says where."""


@dataclass(frozen=True)
class Selection:
    """The records asked for of one (recording, pid): sorted, disjoint runs of seqs."""

    recording_id: str
    pid: int
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    """Exclusive end of each run."""

    @property
    def count(self) -> int:
        """How many records this selection asks for."""
        return sum(end - start for start, end in zip(self.starts, self.ends))

    def __contains__(self, seq: int) -> bool:
        i = bisect.bisect_right(self.starts, seq) - 1
        return i >= 0 and seq < self.ends[i]


@dataclass(frozen=True)
class ExportSource:
    """One stored stream that a selection names, with its frames as held now."""

    info: RecordingInfo
    frames: tuple[bytes, ...]
    selection: Selection


@dataclass(frozen=True)
class Export:
    """The answer to a download: the file and what it holds."""

    name: str
    records: int
    missing: int
    data: bytes

    def meta(self, request_id: int) -> dict[str, Any]:
        """The text message that precedes the file."""
        return {"type": "download", "id": request_id, "name": self.name,
                "records": self.records, "missing": self.missing}


def parse_request(message: Any) -> tuple[int, list[Selection]]:
    """The id and selections of a download request; ExportRequestError if malformed."""
    if not isinstance(message, dict):
        raise ExportRequestError("a download request must be a JSON object")
    request_id = message.get("id")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise ExportRequestError("download: 'id' must be an integer")
    select = message.get("select")
    if not isinstance(select, list) or len(select) > MAX_SELECTED_STREAMS:
        raise ExportRequestError(
            f"download {request_id}: 'select' must be a list of at most {MAX_SELECTED_STREAMS} streams"
        )
    runs = sum(
        len(item["seqs"]) // 2 for item in select
        if isinstance(item, dict) and isinstance(item.get("seqs"), list)
    )
    if runs > MAX_RUNS:
        raise ExportRequestError(
            f"download {request_id}: more than {MAX_RUNS} runs of records; narrow the selection"
        )
    return request_id, [_selection(request_id, i, item) for i, item in enumerate(select)]


def _selection(request_id: int, index: int, item: Any) -> Selection:
    where = f"download {request_id}: select[{index}]"
    if not isinstance(item, dict):
        raise ExportRequestError(f"{where} must be an object")
    recording, pid, seqs = item.get("recording"), item.get("pid"), item.get("seqs")
    if not isinstance(recording, str):
        raise ExportRequestError(f"{where}.recording must be a string")
    if not _is_int(pid):
        raise ExportRequestError(f"{where}.pid must be an integer")
    if not isinstance(seqs, list) or len(seqs) % 2 or not all(_is_int(n) and n >= 0 for n in seqs):
        raise ExportRequestError(
            f"{where}.seqs must be pairs of non-negative integers [first, count, ...]"
        )
    runs = sorted((first, first + count) for first, count in zip(seqs[::2], seqs[1::2]) if count)
    starts: list[int] = []
    ends: list[int] = []
    for start, end in runs:
        if ends and start <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return Selection(recording, pid, tuple(starts), tuple(ends))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def sources_for(store: RecordingStore, selections: Sequence[Selection]) -> list[ExportSource]:
    """The stored streams the selections name, with their frames as held now.

    Cheap (references only): call it on the store's owner, then
    :func:`build_export` anywhere.
    """
    out = []
    for selection in selections:
        for stream in store.streams():
            key = stream.key
            if key.recording_id == selection.recording_id and key.pid == selection.pid:
                frames = tuple(frame.raw for frame in stream.frames)
                out.append(ExportSource(stream.info, frames, selection))
    return out


def build_export(sources: Sequence[ExportSource], wanted: int) -> Export:
    """The recording file of the selected records of ``sources`` (``wanted`` asked for).

    Streams through the frames: memory is one frame's records per source plus the
    file being written, whatever the selection's size.
    """
    if len(sources) == 1:
        info = sources[0].info
        records: Iterator[Record] = _selected(sources[0])
    else:
        info = merged_info([source.info for source in sources])
        ordered = heapq.merge(*map(_selected, sources), key=_time)
        records = (_renumbered(record, seq) for seq, record in enumerate(ordered))
    parts = [stream_header(info)]
    found = 0
    for batch in _batches(records, min(RECORDS_PER_FRAME, MAX_RECORDS_PER_FRAME)):
        parts.append(encode_frame(encode_records(batch)))
        found += len(batch)
    parts.append(encode_frame(end_message()))
    return Export(file_name(info), found, max(wanted - found, 0), b"".join(parts))


def _selected(source: ExportSource) -> Iterator[Record]:
    """The records of ``source`` that its selection names, frame by frame."""
    decoder = stored_decoder("<export>")
    selection = source.selection
    for raw in source.frames:
        decoder.feed(raw)
        try:
            for frame in decoder.frames():
                for message in decoder.decode_payload(frame):
                    if isinstance(message, Record) and message.seq in selection:
                        yield message
        except RecordingError:
            return  # never expected: stored frames were checked on the way in


def _time(record: Record) -> int:
    return record.time_ns


def _renumbered(record: Record, seq: int) -> Record:
    return replace(record, seq=seq)


def _batches(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def merged_info(infos: Sequence[RecordingInfo]) -> RecordingInfo:
    """The INFO of one stream made of several: every application named, the earliest start.

    Records keep their own process and thread; they are put in time order (each
    stream's order kept) and renumbered.
    """
    if not infos:
        return RecordingInfo("empty", "empty", 0, "", 0, "", "")
    first = infos[0]
    applications = list(dict.fromkeys(info.application_id for info in infos))
    recordings = {info.recording_id for info in infos}
    return replace(
        first,
        application_id="+".join(applications),
        recording_id=first.recording_id if len(recordings) == 1 else f"merged-{first.recording_id}",
        start_time_ns=min(info.start_time_ns for info in infos),
    )


def file_name(info: RecordingInfo) -> str:
    """A safe download name: ``<application>-<recording>.rlg``, other characters as ``_``."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{info.application_id}-{info.recording_id[:8]}")
    return f"{stem.strip('._-')[:100] or 'recording'}.rlg"
