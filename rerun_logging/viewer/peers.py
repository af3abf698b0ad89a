"""The viewer's table of TCP peers, and which one makes room for a new one. Pure.

No sockets and no clock: the server (:mod:`.server`) passes monotonic times in,
cancels the task of the peer this table evicts, and sends it its REFUSED reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

if TYPE_CHECKING:
    import asyncio

    from .ingest import StreamIngest

IDLE_EVICT_AFTER = 5.0
"""A peer that sent nothing for this long is the first to make room for a new one."""


@dataclass(eq=False)
class PeerSlot:
    """One TCP peer in the viewer's table: who, since when, its last byte, what it holds."""

    ingest: StreamIngest
    name: str
    """How report lines name it: ``127.0.0.1:5555``."""
    host: str
    """Its address without the port: peers are shared fairly between addresses."""
    connected_at: float
    last_received: float
    """Monotonic time of its last byte (of its connection before the first)."""
    task: asyncio.Task[None] | None = None
    buffered: int = 0
    """Bytes of an unfinished frame held for it."""
    evicted: str | None = None
    """Why it makes room for a new peer, once it was chosen to."""


class PeerTable:
    """The TCP peers the viewer holds, and which one makes room for a new one. Pure.

    A new peer is always taken (:meth:`admit`): nobody can hold the slots against
    an app. When ``capacity`` peers are held, one is evicted for it:

    1. the peer idle longest (no byte for the longest time), once idle for
       ``idle_after`` seconds: silent peers go first, and an app that only paused
       reconnects when it has something to send;
    2. when every peer is busy, the oldest connection of the address holding the
       most: a host that floods evicts its own first, and on one address the slots
       rotate, each connection keeping its slot until ``capacity`` newer ones came.

    The evicted peer is told why (REFUSED): an app reconnects with backoff and
    resends the frames not acknowledged, which the viewer de-duplicates, so it
    loses nothing. Times are monotonic seconds passed in by the caller.
    """

    def __init__(self, idle_after: float = IDLE_EVICT_AFTER) -> None:
        self.idle_after = idle_after
        self._slots: dict[PeerSlot, None] = {}
        """Held peers in the order they came (oldest first)."""
        self.buffered = 0
        """Bytes of unfinished frames held for all peers together."""

    def __len__(self) -> int:
        return len(self._slots)

    def __iter__(self) -> Iterator[PeerSlot]:
        return iter(list(self._slots))

    def admit(self, slot: PeerSlot, now: float, capacity: int) -> PeerSlot | None:
        """Hold ``slot``; return the peer evicted for it (its ``evicted`` says why), or None."""
        victim = None
        if self._slots and len(self._slots) >= capacity:
            victim, reason = self.choose(now, capacity)
            victim.evicted = reason
            self.remove(victim)
        self._slots[slot] = None
        slot.buffered = 0
        return victim

    def choose(self, now: float, capacity: int) -> tuple[PeerSlot, str]:
        """The peer that makes room for a new one, and the reason it is told."""
        full = f"too many connections (the viewer takes {capacity} at once): closed to make room for a new one"
        idle = min(self._slots, key=lambda s: s.last_received)
        idle_for = now - idle.last_received
        if idle_for >= self.idle_after:
            return idle, f"{full}, as the one idle longest ({idle_for:.1f}s without a byte)"
        counts = Counter(s.host for s in self._slots)
        host, held = counts.most_common(1)[0]
        oldest = next(s for s in self._slots if s.host == host)
        return oldest, (
            f"{full}, as the oldest ({now - oldest.connected_at:.1f}s) of the {held} from {host}, "
            f"the address holding the most; none was idle for {self.idle_after:g}s"
        )

    def received(self, slot: PeerSlot, now: float, buffered: int) -> None:
        """``slot`` received bytes at ``now`` and holds ``buffered`` of an unfinished frame."""
        slot.last_received = now
        if slot in self._slots:
            self.buffered += buffered - slot.buffered
            slot.buffered = buffered

    def remove(self, slot: PeerSlot) -> None:
        """``slot`` no longer holds a place (closed, refused or evicted); idempotent."""
        if self._slots.pop(slot, False) is None:
            self.buffered -= slot.buffered
        slot.buffered = 0
