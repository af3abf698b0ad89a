"""The recording format: schema, values, messages, frames and the one incremental decoder.

This package is sans-I/O, like ``websockets``' protocol core: it turns messages into
bytes and bytes into messages, and touches no file, socket or thread. Every reader
(files, pipes, sockets, tests) feeds bytes to :class:`StreamDecoder`; every writer
uses :func:`stream_header`, :func:`encode_frame` and the message encoders. It
imports nothing of ``rerun_logging`` outside itself. One module per job:

- :mod:`.schema`: what the bytes mean, the one definition writers and readers
  share: versions, magic, codecs, message kinds, limits, and the fields of the
  ``sites``, ``ctxs`` and INFO tables and of the RECORDS columns (names, order,
  types) that the encoders, the decoder and the handler's capture step derive
  from. The stream layout is documented there.
- :mod:`.errors`: :class:`RecordingError` and its subclasses (all ``ValueError``).
- :mod:`.values`: what a Python value becomes (:func:`plain_value`,
  :func:`sanitize`), the caps (:func:`truncate_text`, :func:`fit_extras`), message
  rendering (:func:`render`, :func:`render_message`, :func:`deferrable_template`),
  packing of the ``extra`` and ``args`` columns, :func:`entity_path_for`.
- :mod:`.messages`: the message types (:class:`Record`, :class:`RecordingInfo`,
  ...) and their bodies to and from msgpack.
- :mod:`.frames`: a frame's bytes out and in, whole streams out, :func:`peek_frame`.
- :mod:`.decoder`: :class:`StreamDecoder`, which reads headers, frames and
  streams (several per file, resynced after damage), and :func:`stored_decoder`
  for frames kept apart from their stream.

Every name is importable from here (``from rerun_logging.format import Record``,
``format.encode_frame``); the modules are the map, not a second API.
"""

from __future__ import annotations

from . import messages as _messages
from .decoder import (
    DecodedStream, StreamDecoder, header_info, reported_drops, stored_columns, stored_decoder,
    stored_records,
)
from .errors import (
    ChecksumMismatch,
    CorruptFrame,
    FrameTooLarge,
    NotARecording,
    RecordingError,
    TruncatedStream,
    UnsupportedVersion,
)
from .frames import (
    FRAME_HEAD,
    FRAME_HEAD_SIZE,
    Frame,
    FramePeek,
    encode_frame,
    encode_stream,
    frame_payload,
    peek_frame,
    stream_header,
)
from .messages import (
    Ack,
    Damage,
    Dropped,
    End,
    ExceptionInfo,
    ExtraColumns,
    Message,
    Record,
    RecordColumns,
    RecordingInfo,
    Refused,
    StreamId,
    ack_message,
    columns_for,
    columns_as_read,
    decode_columns,
    decode_info,
    decode_records,
    delta_decode,
    delta_encode,
    dropped_message,
    encode_records,
    end_message,
    info_message,
    pack_map,
    records_message,
    refused_message,
    stream_id,
    trace_row,
)
from .schema import (
    CODEC_MSGPACK,
    CODEC_ZLIB,
    COLUMN_ITEMS,
    COLUMN_ROWS,
    CONTEXT,
    CONTEXT_FIELDS,
    CONTEXT_TYPES,
    EXCEPTION_ROW,
    FORMAT_MAJOR,
    FORMAT_MINOR,
    HEADER,
    HEADER_SIZE,
    INFO_FIELDS,
    KIND_ACK,
    KIND_DROPPED,
    KIND_END,
    KIND_INFO,
    KIND_RECORDS,
    KIND_REFUSED,
    MAGIC,
    MAX_DEFERRED_CONVERSIONS,
    MAX_DEFERRED_WIDTH,
    MAX_EXTRAS_BYTES,
    MAX_FIELD_CHARS,
    MAX_FRAME_SIZE,
    MAX_PAYLOAD_SIZE,
    MAX_RECORDS_PER_FRAME,
    RECORD_COLUMNS,
    RERUN_SDK_MAGIC,
    SITE,
    SITE_FIELDS,
    SITE_TYPES,
    SPAN_ID_SIZE,
    STACK_ROW,
    TARGET_PAYLOAD_SIZE,
    TRACE_ID_SIZE,
    TRACE_ROW,
    TRUNCATION_MARK,
    VIEWER_HELLO,
    VIEWER_MAGIC,
    Column,
    Field,
    InfoField,
)
from .values import (
    Packed,
    deferrable_template,
    entity_path_for,
    fit_extras,
    new_packer,
    pack_args,
    pack_args_capped,
    pack_args_exactly,
    pack_extras,
    pack_extras_capped,
    pack_extras_exactly,
    packb,
    plain_value,
    render,
    render_message,
    safe_repr,
    safe_str,
    sanitize,
    truncate_text,
    unformattable,
)

__all__ = [
    # schema
    "CODEC_MSGPACK", "CODEC_ZLIB", "COLUMN_ITEMS", "COLUMN_ROWS", "CONTEXT", "CONTEXT_FIELDS",
    "CONTEXT_TYPES", "Column", "EXCEPTION_ROW", "FORMAT_MAJOR", "FORMAT_MINOR", "Field",
    "HEADER", "HEADER_SIZE", "INFO_FIELDS", "InfoField", "KIND_ACK", "KIND_DROPPED",
    "KIND_END", "KIND_INFO", "KIND_RECORDS", "KIND_REFUSED", "MAGIC",
    "MAX_DEFERRED_CONVERSIONS", "MAX_DEFERRED_WIDTH", "MAX_EXTRAS_BYTES", "MAX_FIELD_CHARS",
    "MAX_FRAME_SIZE", "MAX_PAYLOAD_SIZE", "MAX_RECORDS_PER_FRAME", "RECORD_COLUMNS",
    "RERUN_SDK_MAGIC", "SITE", "SITE_FIELDS", "SITE_TYPES", "SPAN_ID_SIZE", "STACK_ROW",
    "TARGET_PAYLOAD_SIZE", "TRACE_ID_SIZE", "TRACE_ROW", "TRUNCATION_MARK", "VIEWER_HELLO",
    "VIEWER_MAGIC",
    # errors
    "ChecksumMismatch", "CorruptFrame", "FrameTooLarge", "NotARecording", "RecordingError",
    "TruncatedStream", "UnsupportedVersion",
    # values
    "Packed", "deferrable_template", "entity_path_for", "fit_extras", "new_packer",
    "pack_args", "pack_args_capped", "pack_args_exactly", "pack_extras", "pack_extras_capped",
    "pack_extras_exactly", "packb",
    "plain_value", "render", "render_message", "safe_repr", "safe_str", "sanitize",
    "truncate_text", "unformattable",
    # messages
    "Ack", "Damage", "Dropped", "End", "ExceptionInfo", "Message", "Record",
    "ExtraColumns", "RecordColumns", "RecordingInfo", "Refused", "StreamId", "ack_message", "columns_as_read",
    "columns_for",
    "decode_columns", "decode_info",
    "decode_records", "delta_decode", "delta_encode", "dropped_message", "encode_records",
    "end_message", "info_message", "pack_map", "records_message", "refused_message",
    "stream_id", "trace_row",
    # frames
    "FRAME_HEAD", "FRAME_HEAD_SIZE", "Frame", "FramePeek", "encode_frame", "encode_stream",
    "frame_payload", "peek_frame", "stream_header",
    # decoder
    "DecodedStream", "StreamDecoder", "header_info", "reported_drops", "stored_columns",
    "stored_decoder", "stored_records",
]

# Not part of the API, but imported by rerun_logging.capture (to read a value back as
# the decoder reads it); kept importable from the package as they were from format.py.
_hashable_keys = _messages._hashable_keys
_unpack_all = _messages._unpack_all
