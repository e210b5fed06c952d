"""Exception chains read out of stack trace text (causes/chains.py)."""

from __future__ import annotations

import sys

import pytest
from faultlens_collector.causes.chains import MAX_CAUSES, chain_of, names_cause
from hypothesis import given
from hypothesis import strategies as st

from tests.causes_support import formatted
from tests.grouping_samples import (
    JAVA_SPRING,
    NODE_EXPRESS,
    PYTHON_CHAINED,
    PYTHON_DURING_HANDLING,
    PYTHON_GROUP,
    render,
)


class UpstreamError(Exception):
    pass


def test_raise_from_names_the_cause() -> None:
    def fail() -> None:
        try:
            raise TimeoutError("pricing timed out")
        except TimeoutError as exc:
            raise UpstreamError("pricing unavailable") from exc

    chain = chain_of(formatted(fail))
    assert chain == ("TimeoutError",)
    assert names_cause(chain, "TimeoutError")
    assert not names_cause(chain, f"{__name__}.UpstreamError")  # the failure itself


def test_implicit_chain_during_handling() -> None:
    def fail_during_handling() -> None:
        try:
            {}["sku"]
        except KeyError:
            int("n/a")

    def suppressed() -> None:
        try:
            {}["sku"]
        except KeyError:
            raise ValueError("bad price") from None

    assert chain_of(formatted(fail_during_handling)) == ("KeyError",)
    assert chain_of(formatted(suppressed)) == ()  # `from None`: no chain printed


def test_three_levels_and_qualified_names() -> None:
    def fail() -> None:
        try:
            try:
                raise ConnectionResetError("reset")
            except ConnectionResetError as exc:
                raise TimeoutError("deadline") from exc
        except TimeoutError as exc:
            raise UpstreamError("gave up") from exc

    chain = chain_of(formatted(fail))
    assert set(chain) == {"ConnectionResetError", "TimeoutError"}
    assert names_cause(chain, "builtins.ConnectionResetError")


def test_no_chain_in_a_plain_traceback() -> None:
    def fail() -> None:
        raise UpstreamError("alone")

    assert chain_of(formatted(fail)) == ()


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is 3.11+")
def test_exception_group_members_are_causes() -> None:
    def fail() -> None:
        raise ExceptionGroup("two", [ValueError("a"), KeyError("b")])  # noqa: F821

    chain = chain_of(formatted(fail))
    assert set(chain) == {"ValueError", "KeyError"}
    assert "ExceptionGroup" not in chain


@pytest.mark.parametrize("seed", range(4))
def test_samples(seed: int) -> None:
    assert chain_of(render(PYTHON_CHAINED, seed)) == ("KeyError",)
    assert chain_of(render(PYTHON_DURING_HANDLING, seed)) == ("psycopg.OperationalError",)
    assert set(chain_of(render(PYTHON_GROUP, seed))) == {"httpx.HTTPStatusError", "ValueError"}
    # Caused by counts; Suppressed does not; the first line is the failure itself.
    assert chain_of(render(JAVA_SPRING, seed)) == ("java.lang.IllegalStateException",)
    assert chain_of(render(NODE_EXPRESS, seed)) == ()


def test_java_nested_causes() -> None:
    text = (
        "com.acme.cart.UpstreamException: pricing unavailable\n"
        "\tat com.acme.cart.Cart.total(Cart.java:12)\n"
        "Caused by: java.net.SocketTimeoutException: Read timed out\n"
        "\tat java.base/java.net.SocketInputStream.read(SocketInputStream.java:1)\n"
        "Caused by: java.io.IOException\n"
        "\t... 3 more\n"
    )
    chain = chain_of(text)
    assert chain == ("java.net.SocketTimeoutException", "java.io.IOException")
    assert names_cause(chain, "SocketTimeoutException")


def test_node_cause_as_util_inspect_prints_it() -> None:
    text = (
        "Error: cart failed\n"
        "    at total (/app/src/cart.js:10:11)\n"
        "    at process.processTicksAndRejections (node:internal/process/task_queues:95:5) {\n"
        "  [cause]: TimeoutError: pricing timed out\n"
        "      at fetchPrice (/app/src/pricing.js:3:9)\n"
        "}\n"
    )
    assert chain_of(text) == ("TimeoutError",)
    assert chain_of("VError: cart failed: caused by: Error: ECONNRESET\n") == ()
    assert chain_of("VError: cart failed\ncaused by: RangeError: bad\n") == ("RangeError",)


def test_names_cause_needs_a_name_boundary() -> None:
    assert names_cause(("app.errors.Timeout",), "errors.Timeout")
    assert names_cause(("Timeout",), "app.errors.Timeout")
    assert not names_cause(("app.errors.Timeout",), "Timeout2")
    assert not names_cause(("MyTimeout",), "Timeout")
    assert not names_cause((), "Timeout")
    assert not names_cause(("Timeout",), "")


def test_bounded() -> None:
    text = "".join(f"Caused by: pkg.E{index}: x\n" for index in range(100))
    assert len(chain_of(text)) == MAX_CAUSES
    assert chain_of("Caused by: " + "A" * 10_000 + ": x\n") == ()


@given(st.text())
def test_never_raises(text: str) -> None:
    assert isinstance(chain_of(text), tuple)
