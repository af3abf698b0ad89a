"""The errors of reading a recording: one base, a subclass per way a stream fails.

All are raised by the sans-I/O decoder and are also ``ValueError``::

    RecordingError          base; names the source and the byte offset
    ├── NotARecording       bad magic (and says so when it is a Rerun SDK file)
    ├── UnsupportedVersion  a newer major version
    ├── FrameTooLarge       a declared size above MAX_FRAME_SIZE
    ├── ChecksumMismatch    the CRC does not match
    ├── CorruptFrame        the payload does not decode
    └── TruncatedStream     the stream ended inside a header or a frame, or a frame
                            was cut short by the header of the next run
"""

from __future__ import annotations


class RecordingError(ValueError):
    """A stream that cannot be read further. Names its source and byte offset."""

    def __init__(self, reason: str, source: str = "<stream>", offset: int = 0) -> None:
        self.reason = reason
        self.source = source
        self.offset = offset
        super().__init__(f"{source}: at byte {offset}: {reason}")


class NotARecording(RecordingError):
    """The stream does not start with our magic."""


class UnsupportedVersion(RecordingError):
    """The stream was written by a newer major version of the format."""


class FrameTooLarge(RecordingError):
    """A frame declares a size above the limit."""


class ChecksumMismatch(RecordingError):
    """A frame's payload does not match its CRC."""


class CorruptFrame(RecordingError):
    """A frame's payload passed its CRC but does not decode."""


class TruncatedStream(RecordingError):
    """The stream ended inside the header or a frame (a torn tail)."""

