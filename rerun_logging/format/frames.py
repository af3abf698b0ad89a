"""Frames: a frame's bytes out (:func:`encode_frame`) and in (:func:`frame_payload`).

A frame is ``size (u32 LE) | codec (u8) | crc32 (u32 LE) | payload``: the CRC covers
the codec byte and the payload as stored, and a ``CODEC_ZLIB`` payload is inflated
(within a bound) before its messages are read. :func:`stream_header` and
:func:`encode_stream` put the header and frames of a whole stream together;
:func:`peek_frame` reads what a frame holds without decoding its records. Reading a
stream of frames (headers, torn tails, resync) is :mod:`~rerun_logging.format.decoder`'s
job. Sans-I/O: bytes in, bytes out.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Iterable

import msgpack

from .errors import ChecksumMismatch, CorruptFrame
from .messages import (
    Dropped,
    End,
    Message,
    Record,
    RecordingInfo,
    dropped_message,
    encode_records,
    end_message,
    info_message,
)
from .schema import (
    CODEC_MSGPACK,
    CODEC_ZLIB,
    HEADER,
    KIND_DROPPED,
    KIND_END,
    KIND_INFO,
    KIND_RECORDS,
    MAX_FRAME_SIZE,
    MAX_PAYLOAD_SIZE,
    MAX_RECORDS_PER_FRAME,
)

FRAME_HEAD = struct.Struct("<IBI")
"""A frame's head: payload size, codec, CRC-32."""
FRAME_HEAD_SIZE = FRAME_HEAD.size
_CODEC_CRC = {c: zlib.crc32(bytes((c,))) for c in (CODEC_MSGPACK, CODEC_ZLIB)}
"""The CRC-32 of each codec byte: where a frame's CRC over its payload starts."""


def encode_frame(payload: bytes, compress: bool = True) -> bytes:
    """One frame around ``payload`` (concatenated packed messages).

    Deflates (zlib level 1) when asked and when it pays. Raises ValueError when the
    result would exceed MAX_FRAME_SIZE: writers split their batches before that.
    """
    codec = CODEC_MSGPACK
    if compress and len(payload) > 64:
        deflated = zlib.compress(payload, 1)
        if len(deflated) < len(payload):
            payload, codec = deflated, CODEC_ZLIB
    if len(payload) > MAX_FRAME_SIZE:
        raise ValueError(f"frame payload of {len(payload)} bytes exceeds {MAX_FRAME_SIZE}")
    crc = zlib.crc32(payload, _CODEC_CRC[codec])
    return FRAME_HEAD.pack(len(payload), codec, crc) + payload


def frame_payload(
    codec: int, crc: int, stored: memoryview | bytes, *,
    max_payload_size: int = MAX_PAYLOAD_SIZE, source: str = "<stream>", offset: int = 0,
) -> bytes:
    """The payload of a frame from its head's ``codec`` and ``crc`` and its ``stored`` bytes.

    Checks the CRC and inflates a deflated payload (at most ``max_payload_size``
    bytes). Raises :class:`CorruptFrame` (an unknown codec, a payload that does not
    inflate or inflates too far) or :class:`ChecksumMismatch`, naming ``source`` and
    ``offset`` (where the frame starts).
    """
    if codec not in _CODEC_CRC:
        raise CorruptFrame(f"unknown codec {codec}", source, offset)
    if zlib.crc32(stored, _CODEC_CRC[codec]) != crc:
        raise ChecksumMismatch("frame checksum does not match (corrupt data)", source, offset)
    if codec == CODEC_MSGPACK:
        return bytes(stored)
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(stored, max_payload_size)
    except zlib.error as error:
        raise CorruptFrame(f"payload does not inflate: {error}", source, offset) from None
    if inflater.unconsumed_tail:
        raise CorruptFrame(f"payload inflates beyond {max_payload_size} bytes", source, offset)
    if not inflater.eof:
        raise CorruptFrame("deflated payload ends early", source, offset)
    return data


@dataclass(frozen=True)
class Frame:
    """One checked frame as read: where it started, its bytes as stored, its payload inflated.

    ``raw`` is the whole frame (head and stored payload), ready to be forwarded or
    appended to another stream unchanged.
    """

    offset: int
    raw: bytes
    payload: bytes

    @property
    def size(self) -> int:
        """Bytes the frame takes in the stream."""
        return len(self.raw)


def stream_header(info: RecordingInfo) -> bytes:
    """The bytes every stream starts with: magic, version, and the INFO frame."""
    return HEADER + encode_frame(info_message(info))


def encode_stream(info: RecordingInfo, messages: Iterable[Message]) -> bytes:
    """A whole stream for ``info`` and ``messages``, one frame per run of records.

    Convenience for tests and tools; the handler writes frames as it goes.
    """
    out = [stream_header(info)]
    pending: list[Record] = []

    def flush_records() -> None:
        if pending:
            out.append(encode_frame(encode_records(pending)))
            pending.clear()

    for message in messages:
        if isinstance(message, Record):
            pending.append(message)
            continue
        flush_records()
        if isinstance(message, Dropped):
            out.append(encode_frame(dropped_message(message.count, message.reason)))
        elif isinstance(message, End):
            out.append(encode_frame(end_message()))
        elif isinstance(message, RecordingInfo):
            out.append(encode_frame(info_message(message)))
    flush_records()
    return b"".join(out)


@dataclass(frozen=True)
class FramePeek:
    """What a frame holds, read without decoding its records.

    ``first_seq`` and ``records`` describe its RECORDS message (None and 0 when it
    has none); ``dropped`` sums its DROPPED messages; ``info`` and ``ended`` say
    whether it holds INFO or END.
    """

    first_seq: int | None
    records: int
    dropped: int
    info: bool
    ended: bool


def peek_frame(payload: bytes) -> FramePeek:
    """Walk the messages of a frame payload, reading of RECORDS only its ``seq`` column.

    Lets a viewer count, order and de-duplicate frames without building a Python
    object per record. Raises ValueError on a payload that does not decode.
    """
    unpacker = msgpack.Unpacker(
        raw=False, strict_map_key=False, max_buffer_size=max(len(payload), 1)
    )
    unpacker.feed(payload)
    first_seq, records, dropped, info, ended = None, 0, 0, False, False
    end = 0
    while end < len(payload):
        try:
            if unpacker.read_array_header() < 2:
                raise ValueError("a message must be [kind, map]")
            kind = unpacker.unpack()
            if kind == KIND_RECORDS:
                first_seq, records = _peek_seq(unpacker)
            elif kind == KIND_DROPPED:
                dropped += int(unpacker.unpack().get("count", 0))
            else:
                info = info or kind == KIND_INFO
                ended = ended or kind == KIND_END
                unpacker.skip()
        except msgpack.OutOfData:
            raise ValueError(f"payload ends inside a message at byte {end}") from None
        except (TypeError, AttributeError, IndexError) as error:
            raise ValueError(f"malformed message at byte {end}: {error!r}") from None
        end = unpacker.tell()
    return FramePeek(first_seq, records, dropped, info, ended)


def _peek_seq(unpacker: msgpack.Unpacker) -> tuple[int | None, int]:
    first_seq, count = None, 0
    for _ in range(unpacker.read_map_header()):
        if unpacker.unpack() == "seq":
            count = unpacker.read_array_header()
            if count > MAX_RECORDS_PER_FRAME:
                raise ValueError(f"{count} records in one frame, the limit is {MAX_RECORDS_PER_FRAME}")
            if count:
                first_seq = int(unpacker.unpack())
                for _ in range(count - 1):
                    unpacker.skip()
        else:
            unpacker.skip()
    return first_seq, count
