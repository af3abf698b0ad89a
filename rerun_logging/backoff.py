"""Reconnection delays: exponential backoff with jitter, as plain state testable without sockets.

The knobs carry the names of ``logging.handlers.SocketHandler``'s (``retryStart``,
``retryFactor``, ``retryMax``) so that a user who knows the stdlib knows these.
"""

from __future__ import annotations

import random
from typing import Callable


class Backoff:
    """When to try again after failures: ``retryStart * retryFactor**n``, capped at ``retryMax``.

    Each delay is spread by ``jitter`` (a fraction, 0.1 = ±10 %) so that many apps
    that lost the same viewer do not all come back in the same instant.
    """

    def __init__(
        self,
        retryStart: float = 1.0,
        retryFactor: float = 2.0,
        retryMax: float = 30.0,
        jitter: float = 0.1,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.retryStart = retryStart
        self.retryFactor = retryFactor
        self.retryMax = retryMax
        self.jitter = jitter
        self._rng = rng
        self.delay: float | None = None
        self.next_attempt = 0.0

    def fresh(self) -> Backoff:
        """A new backoff with the same knobs and no failures yet (for a new connection's owner)."""
        return Backoff(self.retryStart, self.retryFactor, self.retryMax, self.jitter, self._rng)

    def ready(self, now: float) -> bool:
        """Whether an attempt may be made at ``now`` (monotonic seconds)."""
        return now >= self.next_attempt

    def failure(self, now: float) -> float:
        """Record a failed attempt at ``now``; returns the time of the next one."""
        if self.delay is None:
            self.delay = self.retryStart
        else:
            self.delay = min(self.delay * self.retryFactor, self.retryMax)
        spread = 1.0 + self.jitter * (2.0 * self._rng() - 1.0)
        self.next_attempt = now + self.delay * spread
        return self.next_attempt

    def success(self) -> None:
        """Record a working connection: the next failure starts from ``retryStart``."""
        self.delay = None
        self.next_attempt = 0.0
