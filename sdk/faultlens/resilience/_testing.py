"""Testing mode of the resilience layer (:func:`set_testing`, stamina-style), and the
clocks, sleeps and random numbers its primitives read.

Tests of an application that retries should not wait for backoffs nor make every
attempt: :func:`set_testing` turns that off for every retry policy at once, with no
test hook in any public signature. faultlens' own tests need finer control — a fake
clock for a breaker's recovery timeout, a tracker's reset window, a retry's deadline —
and get it from :func:`clocks`, which is private.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator

from faultlens._randomness import generator
from faultlens._restoring import Restoring

__all__ = ["CLOCKS", "TESTING", "clocks", "set_testing"]


class _Mode:
    """What :func:`set_testing` set; retry policies read it after a failed attempt."""

    __slots__ = ("active", "attempts", "cap")

    def __init__(self) -> None:
        self.active = False
        self.attempts = 1
        self.cap = False

    def put_back(self, active: bool, attempts: int, cap: bool) -> None:
        self.active, self.attempts, self.cap = active, attempts, cap

    def attempts_for(self, configured: int) -> int:
        """How many attempts a policy configured for ``configured`` makes now."""
        if not self.active:
            return configured
        return min(configured, self.attempts) if self.cap else self.attempts


#: The testing mode in force (one per process).
TESTING = _Mode()


def set_testing(testing: bool, *, attempts: int = 1, cap: bool = False) -> Restoring:
    """Put every retry policy in testing mode (``testing=True``) or take it out, at once.

    In testing mode a policy makes ``attempts`` attempts — with ``cap=True`` at most
    ``attempts``, never more than it is configured for — and does not wait between them:
    the backoff delays are still drawn (and reported in ``faultlens.retry`` events) but
    not slept, and a ``deadline`` counts only the time the attempts took. Everything else
    — what is retried, what is recorded, the metrics — is as in production; breakers,
    trackers, fallbacks and checkpoints are not affected.

    Applies at once; as a context manager it restores the previous mode when the block
    ends (stamina's ``set_testing``)::

        with faultlens.resilience.set_testing(True, attempts=2):
            ...

    Raises ``ValueError`` when ``attempts`` is not an integer of at least 1.
    """
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(
            f"faultlens: set_testing: attempts must be an integer >= 1, got {attempts!r}"
        )
    previous = (TESTING.active, TESTING.attempts, TESTING.cap)
    TESTING.active, TESTING.attempts, TESTING.cap = bool(testing), attempts, bool(cap)
    return Restoring(lambda: TESTING.put_back(*previous))


class _Clocks:
    """The time and randomness sources a primitive takes when it is built."""

    __slots__ = ("async_sleep", "monotonic", "random", "sleep", "wall")

    def __init__(self) -> None:
        self.monotonic: Callable[[], float] = time.monotonic
        self.wall: Callable[[], float] = time.time
        self.sleep: Callable[[float], object] = time.sleep
        self.async_sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
        self.random: Callable[[], float] = generator.random


#: What retry policies, breakers, trackers and backoffs built now read.
CLOCKS = _Clocks()


@contextlib.contextmanager
def clocks(
    *,
    monotonic: Callable[[], float] | None = None,
    wall: Callable[[], float] | None = None,
    sleep: Callable[[float], object] | None = None,
    async_sleep: Callable[[float], Awaitable[object]] | None = None,
    random: Callable[[], float] | None = None,
) -> Iterator[None]:
    """For faultlens' own tests: retry policies, circuit breakers, failure trackers and
    backoffs *built inside the block* read ``monotonic`` (seconds, for intervals),
    ``wall`` (epoch seconds, for timestamps), ``sleep`` / ``async_sleep`` (a retry's
    wait) and ``random`` (a backoff's jitter, in ``[0, 1)``) instead of the real ones,
    and keep them after the block (as a constructor argument would). Those not given
    stay as they are. Not thread-safe against itself.
    """
    previous = (CLOCKS.monotonic, CLOCKS.wall, CLOCKS.sleep, CLOCKS.async_sleep, CLOCKS.random)
    CLOCKS.monotonic = monotonic or CLOCKS.monotonic
    CLOCKS.wall = wall or CLOCKS.wall
    CLOCKS.sleep = sleep or CLOCKS.sleep
    CLOCKS.async_sleep = async_sleep or CLOCKS.async_sleep
    CLOCKS.random = random or CLOCKS.random
    try:
        yield
    finally:
        CLOCKS.monotonic, CLOCKS.wall, CLOCKS.sleep, CLOCKS.async_sleep, CLOCKS.random = previous
