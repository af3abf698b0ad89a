"""Backoff: plain state, tested without sockets (as h11 tests its state tables)."""

from __future__ import annotations

from rerun_logging.backoff import Backoff


def test_delays_grow_by_the_factor_up_to_the_cap() -> None:
    backoff = Backoff(retryStart=1.0, retryFactor=2.0, retryMax=5.0, jitter=0.0)
    assert backoff.ready(0.0)
    times = [backoff.failure(100.0) - 100.0 for _ in range(5)]
    assert times == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert not backoff.ready(104.9) and backoff.ready(105.0)


def test_success_starts_over() -> None:
    backoff = Backoff(retryStart=0.5, retryFactor=3.0, retryMax=60.0, jitter=0.0)
    backoff.failure(0.0)
    backoff.failure(0.0)
    backoff.success()
    assert backoff.ready(0.0)
    assert backoff.failure(10.0) == 10.5


def test_jitter_spreads_within_its_fraction() -> None:
    low = Backoff(retryStart=10.0, jitter=0.1, rng=lambda: 0.0)
    high = Backoff(retryStart=10.0, jitter=0.1, rng=lambda: 0.999999)
    assert low.failure(0.0) == 9.0
    assert 10.99 < high.failure(0.0) <= 11.0
