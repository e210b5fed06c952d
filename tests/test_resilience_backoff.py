"""Backoff strategies: exact delays, caps, full jitter bounds, bad parameters."""

from __future__ import annotations

import random

import pytest
from faultlens.resilience import Backoff, constant, exponential, linear
from faultlens.resilience._testing import clocks


def test_constant() -> None:
    assert [constant(0.5).delay(n) for n in (1, 2, 10)] == [0.5, 0.5, 0.5]
    assert constant(5, cap=2).delay(1) == 2


def test_linear_with_cap() -> None:
    strategy = linear(0.1, step=0.2, cap=0.6)
    assert [round(strategy.delay(n), 6) for n in range(1, 6)] == [0.1, 0.3, 0.5, 0.6, 0.6]
    assert linear(1).delay(3) == 3  # step defaults to the initial delay


def test_exponential_without_jitter() -> None:
    strategy = exponential(0.1, jitter=False, cap=1)
    assert [round(strategy.delay(n), 6) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.8, 1]
    assert exponential(1, multiplier=3, jitter=False).delay(3) == 9


def test_exponential_full_jitter_draws_below_the_capped_ceiling() -> None:
    with clocks(random=lambda: 0.5):
        assert exponential(1).delay(3) == 2.0  # 0.5 * 4
    with clocks(random=lambda: 0.999):
        assert exponential(1, cap=3).delay(10) == pytest.approx(2.997)
    with clocks(random=random.Random(7).random):
        strategy = exponential(0.1, cap=10)
    delays = [strategy.delay(6) for _ in range(2000)]
    assert all(0 <= d < 3.2 for d in delays)
    assert max(delays) > 2.5
    assert min(delays) < 0.5


def test_huge_retry_numbers_do_not_overflow() -> None:
    assert exponential(1, cap=30, jitter=False).delay(100_000) == 30


def test_strategies_satisfy_the_protocol() -> None:
    class Fixed:
        def delay(self, retry: int) -> float:
            return 0.0

    for strategy in (constant(1), linear(1), exponential(1), Fixed()):
        assert isinstance(strategy, Backoff)


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda: constant(-1), "seconds must be >= 0"),
        (lambda: linear(1, step=-1), "step must be >= 0"),
        (lambda: exponential(-0.1), "initial must be >= 0"),
        (lambda: exponential(1, multiplier=0.5), "multiplier must be >= 1"),
        (lambda: exponential(1, cap=-5), "cap must be >= 0"),
        (lambda: constant("1"), "seconds must be a number"),
    ],
)
def test_bad_parameters(make, problem) -> None:
    with pytest.raises(ValueError, match="invalid") as error:
        make()
    assert problem in str(error.value)


def test_the_jitter_comes_from_faultlens_own_generator_not_a_public_argument() -> None:
    import inspect

    assert "rng" not in inspect.signature(exponential).parameters
    random.seed(1)
    expected = random.random()
    random.seed(1)
    exponential(1).delay(5)  # draws from faultlens' generator, not the global one
    assert random.random() == expected
