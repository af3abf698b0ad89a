"""One report line per burst of like events (failed accepts, connections closed at a cap). Pure.

A flood can make the same event happen thousands of times a second; the viewer
says so once, when the burst starts, and counts the rest. A burst ends after
``quiet`` seconds without the event; the first line of the next burst says how
many the previous one had after its own line.
"""

from __future__ import annotations


class BurstReport:
    """Decides which occurrences of one kind of event get a line: the first of each burst.

    Call :meth:`note` with the monotonic time of each occurrence; it returns True
    when this one starts a burst (say it), False when it belongs to the current
    one (it is only counted). :attr:`unreported` is what the current burst had
    after its first line; :meth:`note` moves it to :attr:`previous` when a new
    burst starts.
    """

    def __init__(self, quiet: float = 10.0) -> None:
        self.quiet = quiet
        self.total = 0
        """Occurrences so far."""
        self.unreported = 0
        """Occurrences of the current burst after its first (reported) one."""
        self.previous = 0
        """Occurrences of the burst before the current one that had no line of their own."""
        self._last: float | None = None

    def note(self, now: float) -> bool:
        """Count one occurrence at ``now``; True if it starts a burst (report it)."""
        self.total += 1
        starts = self._last is None or now - self._last >= self.quiet
        self._last = now
        if starts:
            self.previous, self.unreported = self.unreported, 0
            return True
        self.unreported += 1
        return False

    def suffix(self) -> str:
        """What a burst's line adds about the previous burst ("" when it had one line only)."""
        if not self.previous:
            return ""
        return f" (the previous burst had {self.previous} more)"
