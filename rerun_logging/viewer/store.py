"""The recording store: every stream the viewer has received, bounded in memory.

Plain state with one owner (the viewer's event loop; no locks, no I/O, no asyncio).
Frames are kept as the raw bytes they arrived in, never as per-record objects:
that keeps ingest fast and memory predictable, and a frame can be forwarded or
saved unchanged.

Identity:

- A **recording** is one run of one application: its ``recording_id``. Every
  stream with that id joins it (a reconnect, forked children with other pids).
- A **stream** is one writer in it: :class:`StreamKey` ``(recording_id, pid,
  started_ns)``. A reconnect resends the same INFO, so it finds its stream again;
  two handlers in one process share recording id and pid but not their INFO's
  start time, so their independent sequence numbers never clash.

Bounds: everything the store keeps costs at most ``memory_limit`` bytes: the
frames (:func:`frame_cost`) and each stream's own state (:func:`stream_cost`: its
INFO, its tables, the marks of its recent frames). Past the limit, what goes first:

1. whole streams that hold no frames and have no source any more (ended, or
   disconnected), the longest idle first; the store counts them
   (:attr:`RecordingStore.streams_evicted`, and their records stay in the totals);
2. then the oldest frames, whatever their recording; each stream counts exactly how
   many frames and records it lost. A stream whose last frame goes while it has no
   source becomes a candidate for 1.

A stream a source feeds is never evicted whole (the number of sources is bounded
by the server), so a source always finds its stream again.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

from ..format import FRAME_HEAD_SIZE, FramePeek, RecordingInfo

DEFAULT_MEMORY_LIMIT = 512 * 1024 * 1024
"""Bytes of frames the viewer keeps in memory by default (``--memory-limit``)."""
FRAME_OVERHEAD = 192
"""Bytes charged per frame on top of its size, for the Python objects that hold it
(the bytes object's head, a :class:`StoredFrame`, two deque slots; measured)."""
STREAM_OVERHEAD = 3072
"""Bytes charged per stream on top of its INFO, for the objects that hold its state
(measured with tracemalloc: about 2.1 KiB)."""
MARK_COST = 96
"""Bytes charged per remembered mark of a frame without records."""
RECENT_MARKS = 256
"""How many frames without records a stream remembers, to recognise them when resent."""


def frame_cost(raw: bytes) -> int:
    """What one stored frame counts against the memory limit."""
    return len(raw) + FRAME_OVERHEAD


def stream_cost(info: RecordingInfo, info_frame: bytes) -> int:
    """What one stream's state counts against the memory limit (its frames aside)."""
    texts = (
        info.application_id, info.recording_id, info.host, info.python_version,
        info.package_version, info.entity_prefix,
    )
    chars = sum(len(t) * (1 if t.isascii() else 4) for t in texts if isinstance(t, str))
    return STREAM_OVERHEAD + len(info_frame) + chars


def frame_mark(raw: bytes) -> bytes:
    """A frame's fingerprint: its head (size, codec, CRC-32 of the payload)."""
    return bytes(raw[:FRAME_HEAD_SIZE])


class StreamKey(NamedTuple):
    """Which writer a stream comes from: ``(recording_id, pid, started_ns)``."""

    recording_id: str
    pid: int
    started_ns: int

    @classmethod
    def of(cls, info: RecordingInfo) -> StreamKey:
        """The key of the stream that ``info`` starts."""
        return cls(info.recording_id, info.pid, info.start_time_ns)


@dataclass(frozen=True, slots=True)
class StoredFrame:
    """One frame as received: its bytes unchanged and how many records it holds."""

    key: StreamKey
    raw: bytes
    records: int


@dataclass
class StreamState:
    """One writer's stream: its INFO, the frames held, and exact counters.

    ``records`` and ``frames_stored`` count everything ever stored (evicted
    included); ``evicted_records``/``evicted_frames`` say how much of it memory
    pressure removed; ``dropped`` sums the stream's DROPPED messages (records the
    app lost before they reached the viewer).
    """

    key: StreamKey
    info: RecordingInfo
    info_frame: bytes
    frames: deque[StoredFrame] = field(default_factory=deque)
    next_seq: int = 0
    frames_stored: int = 0
    records: int = 0
    dropped: int = 0
    evicted_frames: int = 0
    evicted_records: int = 0
    ended: bool = False
    connections: int = 0
    bytes: int = 0
    """Cost of the frames held (:func:`frame_cost`)."""
    state_bytes: int = 0
    """Cost of the stream's own state (:func:`stream_cost`, the marks)."""
    idle: bool = False
    """A source fed it and none does now: it may be evicted whole once it holds no frames."""
    recent_marks: deque[bytes] = field(default_factory=lambda: deque(maxlen=RECENT_MARKS))

    @property
    def connected(self) -> bool:
        """Whether a source is feeding this stream now."""
        return self.connections > 0

    @property
    def records_held(self) -> int:
        """Records in the frames still in memory."""
        return self.records - self.evicted_records


@dataclass
class Recording:
    """One run of one application: the streams that share its recording id."""

    recording_id: str
    application_id: str
    streams: dict[StreamKey, StreamState] = field(default_factory=dict)

    def by_pid(self, pid: int) -> list[StreamState]:
        """The streams of process ``pid`` (one, unless it had several handlers)."""
        return [s for s in self.streams.values() if s.key.pid == pid]


@dataclass(frozen=True)
class StoreSummary:
    """Totals over the store, for logs and tests."""

    recordings: int
    streams: int
    connected: int
    ended: int
    records: int
    dropped: int
    evicted_records: int
    frames_held: int
    bytes: int
    streams_evicted: int = 0
    """Streams evicted whole (their records count in ``records`` and ``evicted_records``)."""

    def __str__(self) -> str:
        gone = (f", {self.streams_evicted} idle stream{_s(self.streams_evicted)} evicted"
                if self.streams_evicted else "")
        return (
            f"{self.recordings} recording{_s(self.recordings)}, {self.streams} "
            f"stream{_s(self.streams)} ({self.connected} connected, {self.ended} ended{gone}), "
            f"{self.records} records ({self.evicted_records} evicted from memory), "
            f"{self.dropped} dropped by apps, {self.bytes / 1048576:.1f} MiB held"
        )


class RecordingStore:
    """Recordings by id, their streams, and their frames, within ``memory_limit`` bytes."""

    def __init__(self, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        if memory_limit <= 0:
            raise ValueError(f"memory limit must be positive, got {memory_limit}")
        self.memory_limit = memory_limit
        self.recordings: dict[str, Recording] = {}
        self.bytes = 0
        """Cost of everything held: frames and stream state."""
        self.streams_evicted = 0
        """Streams evicted whole, ever."""
        self._gone = [0, 0, 0]
        """Records, evicted records and dropped counts of the streams evicted whole."""
        self._order: deque[StoredFrame] = deque()
        self._husks: OrderedDict[StreamKey, None] = OrderedDict()
        """Idle streams that hold no frames, the longest idle first: evicted first."""

    # --- streams ----------------------------------------------------------------

    def open_stream(self, info: RecordingInfo, info_frame: bytes) -> StreamState:
        """The stream ``info`` starts: a new one, or the existing one of that writer.

        A new stream with a known recording id joins that recording. The caller
        tells a rejoin from a new stream by ``frames_stored > 0``. A new stream's
        state counts against the memory limit at once (which may evict others).
        """
        key = StreamKey.of(info)
        recording = self.recordings.get(key.recording_id)
        if recording is None:
            recording = Recording(key.recording_id, info.application_id)
            self.recordings[key.recording_id] = recording
        stream = recording.streams.get(key)
        if stream is None:
            stream = StreamState(key, info, info_frame)
            recording.streams[key] = stream
            self._charge(stream, stream_cost(info, info_frame))
            self._evict()
        return stream

    def stream(self, key: StreamKey) -> StreamState:
        """The stream of ``key``; KeyError if it was never opened."""
        return self.recordings[key.recording_id].streams[key]

    def streams(self) -> Iterator[StreamState]:
        """Every stream, recordings in arrival order."""
        for recording in self.recordings.values():
            yield from recording.streams.values()

    def attach(self, key: StreamKey) -> None:
        """A source starts feeding ``key`` (it shows as connected; never evicted whole)."""
        stream = self.stream(key)
        stream.connections += 1
        stream.idle = False
        self._husks.pop(key, None)

    def detach(self, key: StreamKey) -> None:
        """A source of ``key`` is gone; with none left the stream may be evicted whole."""
        stream = self.stream(key)
        stream.connections = max(0, stream.connections - 1)
        if stream.connections == 0:
            stream.idle = True
            if not stream.frames:
                self._husks[key] = None
            self._evict()

    # --- frames -----------------------------------------------------------------

    def is_duplicate(self, key: StreamKey, peek: FramePeek) -> bool:
        """Whether a frame of records was stored already: its first seq is behind the stream."""
        return peek.first_seq is not None and peek.first_seq < self.stream(key).next_seq

    def add_frame(self, key: StreamKey, raw: bytes, peek: FramePeek) -> bool:
        """Store one frame of ``key`` (after its INFO); False when it is a duplicate.

        A duplicate (see :meth:`is_duplicate`) changes nothing. A stored frame
        updates the stream's counters, then the oldest frames are evicted while
        the store is over its memory limit (possibly this very frame, when it
        alone is larger than the limit).
        """
        stream = self.stream(key)
        if self.is_duplicate(key, peek):
            return False
        frame = StoredFrame(key, raw, peek.records)
        stream.frames.append(frame)
        stream.frames_stored += 1
        stream.records += peek.records
        stream.dropped += peek.dropped
        stream.ended = stream.ended or peek.ended
        stream.bytes += frame_cost(raw)
        self.bytes += frame_cost(raw)
        self._husks.pop(key, None)
        if peek.first_seq is not None:
            stream.next_seq = max(stream.next_seq, peek.first_seq + peek.records)
        else:
            if len(stream.recent_marks) < RECENT_MARKS:
                self._charge(stream, MARK_COST)
            stream.recent_marks.append(frame_mark(raw))
        self._order.append(frame)
        self._evict()
        return True

    def recent_marks(self, key: StreamKey) -> list[bytes]:
        """Fingerprints of the stream's latest frames without records (DROPPED, END).

        Such frames carry no sequence number; a source that rejoins the stream
        uses these to recognise the ones it resends.
        """
        return list(self.stream(key).recent_marks)

    def frames(self, key: StreamKey) -> Iterator[bytes]:
        """The raw frames of ``key`` still in memory, oldest first (INFO not included)."""
        return (frame.raw for frame in list(self.stream(key).frames))

    def newest_frames(self) -> Iterator[StoredFrame]:
        """Every frame still in memory, across streams, newest first."""
        return reversed(list(self._order))

    def _charge(self, stream: StreamState, cost: int) -> None:
        stream.state_bytes += cost
        self.bytes += cost

    def _evict(self) -> None:
        """While over the limit: idle streams without frames first, then the oldest frames."""
        while self.bytes > self.memory_limit:
            if self._husks:
                key, _ = self._husks.popitem(last=False)
                self._evict_stream(self.stream(key))
            elif self._order:
                self._evict_frame(self._order.popleft())
            else:
                return

    def _evict_frame(self, frame: StoredFrame) -> None:
        stream = self.stream(frame.key)
        oldest = stream.frames.popleft()
        assert oldest is frame, "a stream's frames are in global arrival order"
        cost = frame_cost(frame.raw)
        self.bytes -= cost
        stream.bytes -= cost
        stream.evicted_frames += 1
        stream.evicted_records += frame.records
        if stream.idle and not stream.frames:
            self._husks[stream.key] = None

    def _evict_stream(self, stream: StreamState) -> None:
        """Forget an idle stream that holds no frames; its counts stay in the totals."""
        assert not stream.frames and not stream.connected
        recording = self.recordings[stream.key.recording_id]
        del recording.streams[stream.key]
        if not recording.streams:
            del self.recordings[stream.key.recording_id]
        self.bytes -= stream.state_bytes
        self.streams_evicted += 1
        self._gone[0] += stream.records
        self._gone[1] += stream.evicted_records
        self._gone[2] += stream.dropped

    # --- reporting --------------------------------------------------------------

    def summary(self) -> StoreSummary:
        """Totals over every recording."""
        streams = list(self.streams())
        return StoreSummary(
            recordings=len(self.recordings),
            streams=len(streams),
            connected=sum(s.connected for s in streams),
            ended=sum(s.ended for s in streams),
            records=sum(s.records for s in streams) + self._gone[0],
            dropped=sum(s.dropped for s in streams) + self._gone[2],
            evicted_records=sum(s.evicted_records for s in streams) + self._gone[1],
            frames_held=len(self._order),
            bytes=self.bytes,
            streams_evicted=self.streams_evicted,
        )


def _s(count: int) -> str:
    return "" if count == 1 else "s"
