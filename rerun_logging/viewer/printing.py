"""``--print``: every record the viewer stores, as one line on standard output.

:func:`record_lines` words them (``rerun-logging print``'s line, kept to one line);
:class:`TextPrinter` writes them, and stops once when standard output cannot be
written any more. The viewer calls it for each stored frame it decodes.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence, TextIO

from ..format import Dropped, Message, Record, RecordingInfo
from ..render import dropped_line, text_line
from .events import PrintStopped, ViewerEvent


class TextPrinter:
    """``--print``: one line per record (its app and pid in it), and a line per drop report.

    Tracebacks and stacks are left out to keep one line per record (``rerun-logging
    print`` on a saved file shows them). Writes what the terminal's encoding
    cannot (lone surrogates) as escapes; a closed output stops the printing, once
    reported to ``emit`` (:class:`~.events.PrintStopped`), and nothing else.
    """

    def __init__(self, out: TextIO, color: bool, emit: Callable[[ViewerEvent], None]) -> None:
        reconfigure = getattr(out, "reconfigure", None)
        if callable(reconfigure):
            reconfigure(errors="backslashreplace")
        self.out = out
        self.color = color
        self.emit = emit
        self.broken = False

    def show(self, info: RecordingInfo, messages: Sequence[Message]) -> None:
        """Print the records and drop reports among ``messages``."""
        if self.broken:
            return
        lines = record_lines(info, messages, self.color)
        if not lines:
            return
        try:
            self.out.write("\n".join(lines) + "\n")
            self.out.flush()
        except (OSError, ValueError) as error:
            self.broken = True
            self.emit(PrintStopped(str(error)))


def record_lines(info: RecordingInfo, messages: Sequence[Message], color: bool) -> list[str]:
    """The ``--print`` lines of ``messages``: one per record, one per drop report.

    A record's line is ``rerun-logging print``'s, with the exception's type and
    value (not its traceback) at the end, and line breaks escaped: one record,
    one line, whatever its message holds.
    """
    lines: list[str] = []
    for message in messages:
        if isinstance(message, Record):
            lines.append(record_line(message, info, color))
        elif isinstance(message, Dropped):
            lines.append(_escape_breaks(f"{info.application_id}[{info.pid}] {dropped_line(message)}"))
    return lines


def record_line(record: Record, info: RecordingInfo, color: bool) -> str:
    """One record as one line (see :func:`record_lines`)."""
    line = text_line(replace(record, exception=None, stack_info=None), info, color)
    if record.exception is not None:
        line += f" exception={record.exception.type}: {record.exception.value}"
    return _escape_breaks(line)


def _escape_breaks(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")
