"""Backoff strategies: how long to wait before retry number *n*.

A strategy is any object with ``delay(retry: int) -> float`` where ``retry``
is 1 before the second attempt, 2 before the third, and so on. The built-in
ones are immutable and safe to share between threads and concurrent calls;
each caps every delay at ``cap`` seconds (None: no cap)::

    constant(0.5)                       # 0.5, 0.5, 0.5, ...
    linear(0.1, step=0.2, cap=1)        # 0.1, 0.3, 0.5, 0.7, 0.9, 1, 1, ...
    exponential(0.1, cap=10)            # full jitter: uniform(0, min(cap, 0.1 * 2**(n-1)))
    exponential(0.1, jitter=False)      # 0.1, 0.2, 0.4, ...

Full jitter (AWS architecture blog, "Exponential Backoff And Jitter") spreads
retries of many clients uniformly over the window, which keeps a recovering
dependency from being hit by synchronized waves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from faultlens.resilience._settings import Problems
from faultlens.resilience._testing import CLOCKS


@runtime_checkable
class Backoff(Protocol):
    """Anything that says how many seconds to wait before retry number ``retry`` (1-based)."""

    def delay(self, retry: int) -> float: ...


def _capped(value: float, cap: float | None) -> float:
    return value if cap is None or value < cap else cap


def _validate(what: str, cap: float | None, **numbers: float) -> None:
    problems = Problems(f"{what} backoff")
    for name, value in numbers.items():
        problems.at_least(name, value, 0)
    problems.at_least("cap", cap, 0)
    problems.raise_if_any()


@dataclass(frozen=True, slots=True)
class Constant:
    """The same delay before every retry."""

    seconds: float
    cap: float | None = None

    def __post_init__(self) -> None:
        _validate("constant", self.cap, seconds=self.seconds)

    def delay(self, retry: int) -> float:
        return _capped(self.seconds, self.cap)


@dataclass(frozen=True, slots=True)
class Linear:
    """``initial + step * (retry - 1)``, capped."""

    initial: float
    step: float
    cap: float | None = None

    def __post_init__(self) -> None:
        _validate("linear", self.cap, initial=self.initial, step=self.step)

    def delay(self, retry: int) -> float:
        return _capped(self.initial + self.step * (retry - 1), self.cap)


@dataclass(frozen=True, slots=True)
class Exponential:
    """``initial * multiplier ** (retry - 1)``, capped; with full jitter a uniform draw below it.

    The jitter is drawn from faultlens' private generator, so the global ``random``
    state a program seeded is never touched (faultlens' own tests give a fixed source
    through ``faultlens.resilience._testing.clocks``, read when the backoff is built).
    """

    initial: float
    multiplier: float = 2.0
    cap: float | None = None
    jitter: bool = True
    rng: Callable[[], float] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rng", CLOCKS.random)
        _validate("exponential", self.cap, initial=self.initial)
        problems = Problems("exponential backoff")
        problems.at_least("multiplier", self.multiplier, 1)
        problems.raise_if_any()

    def delay(self, retry: int) -> float:
        try:
            ceiling = self.initial * self.multiplier ** (retry - 1)
        except OverflowError:
            ceiling = math.inf
        ceiling = _capped(ceiling, self.cap)
        return ceiling * self.rng() if self.jitter else ceiling


def constant(seconds: float, *, cap: float | None = None) -> Constant:
    """Wait ``seconds`` before every retry."""
    return Constant(seconds, cap)


def linear(initial: float, *, step: float | None = None, cap: float | None = None) -> Linear:
    """Wait ``initial``, then ``step`` (default: ``initial``) longer before each further retry."""
    return Linear(initial, initial if step is None else step, cap)


def exponential(
    initial: float,
    *,
    multiplier: float = 2.0,
    cap: float | None = None,
    jitter: bool = True,
) -> Exponential:
    """Exponential backoff, with full jitter unless ``jitter=False``."""
    return Exponential(initial, multiplier, cap, jitter)
