"""The wrapping path (:mod:`faultlens._wrappers`): what a program cannot notice about a wrapper.

These tests build wrappers directly with :func:`faultlens._wrappers.wrap`, so they
exercise the wrapping path on any interpreter (3.10/3.11 use it for every
target; 3.12+ for what the ``sys.monitoring`` engine cannot watch).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import inspect
import pickle
import sys
import traceback
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from faultlens import _wrappers as wrappers
from instrumentation_support import Modules, modules_fixture

__all__ = ["modules_fixture"]


class Recorded(list[BaseException]):
    def __call__(self, exc: BaseException) -> None:
        self.append(exc)


@pytest.fixture
def recorded() -> Recorded:
    return Recorded()


def test_the_kind_is_taken_from_the_object_called(recorded) -> None:
    @contextlib.contextmanager
    def opened() -> Iterator[str]:
        yield "x"

    @contextlib.asynccontextmanager
    async def aopened() -> Any:
        yield "a"

    def listify(func: Any) -> Any:
        @functools.wraps(func)
        def collect(*args: Any) -> list[Any]:
            return list(func(*args))

        return collect

    @listify
    def numbers() -> Iterator[int]:
        yield from (1, 2)

    assert wrappers.function_kind(opened) == "sync"
    with wrappers.wrap(opened, recorded)() as value:
        assert value == "x"

    async def use() -> str:
        async with wrappers.wrap(aopened, recorded)() as value:
            return str(value)

    assert asyncio.run(use()) == "a"
    assert wrappers.wrap(numbers, recorded)() == [1, 2]
    assert recorded == []


def test_a_function_stored_in_a_class_keeps_its_identity(recorded) -> None:
    def frozen_setattr(self: object, name: str, value: object) -> None:
        raise AttributeError(name)

    wrapped = wrappers.wrap(frozen_setattr, recorded)

    class Frozen:
        pass

    Frozen.__setattr__ = wrapped  # type: ignore[method-assign,assignment]
    assert Frozen.__setattr__ is wrapped
    assert Frozen.__dict__["__setattr__"] is wrapped
    with pytest.raises(AttributeError):
        Frozen().x = 1
    assert len(recorded) == 1

    class Box:
        def method(self, x: int) -> int:
            return x + 1

    Box.method = wrappers.wrap(Box.__dict__["method"], recorded)  # type: ignore[method-assign]
    assert Box.method is Box.method
    assert Box().method(1) == 2
    assert Box.method(Box(), 2) == 3  # called through the class, the instance comes first
    assert list(inspect.signature(Box().method).parameters) == ["x"]


def test_pickle_by_reference_copy_and_deepcopy(modules: Modules, recorded) -> None:
    plain = modules.load(
        "plain",
        """
        def square(x):
            return x * x

        class Box:
            def method(self, x):
                return x + 1
        """,
    )
    expected = pickle.dumps(plain.square)
    wrapped = modules.load(
        "wrapd",
        """
        def square(x):
            return x * x

        class Box:
            def method(self, x):
                return x + 1
        """,
    )
    wrapped.square = wrappers.wrap(wrapped.square, recorded)
    wrapped.Box.method = wrappers.wrap(wrapped.Box.__dict__["method"], recorded)
    # the same bytes as the unwrapped function's, but for the module name
    assert pickle.dumps(wrapped.square) == expected.replace(b"plain", b"wrapd")
    assert pickle.loads(pickle.dumps(wrapped.square)) is wrapped.square
    assert pickle.loads(pickle.dumps(wrapped.Box.method)) is wrapped.Box.method
    assert pickle.loads(pickle.dumps(wrapped.Box().method))(1) == 2
    assert copy.copy(wrapped.square) is wrapped.square
    assert copy.deepcopy(wrapped.square) is wrapped.square
    assert copy.deepcopy(wrapped.Box.method) is wrapped.Box.method
    assert copy.copy(wrapped.Box().method)(2) == 3
    assert copy.deepcopy(wrapped.Box().method)(3) == 4
    # a wrapper not reachable under its own name unpickles to what the name holds
    loose = wrappers.wrap(plain.square, recorded)
    assert pickle.loads(pickle.dumps(loose)) is plain.square


def test_warnings_and_caller_globals_see_the_real_caller(recorded) -> None:
    def deprecated() -> str:
        warnings.warn("old", DeprecationWarning, stacklevel=2)
        return str(sys._getframe(1).f_globals["__name__"])

    wrapped = wrappers.wrap(deprecated, recorded)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert wrapped() == __name__
    assert caught[0].filename == __file__
    frame_globals = sys._getframe(0).f_globals
    assert "test_warnings_and_caller_globals_see_the_real_caller" in frame_globals


@pytest.mark.skipif(sys.version_info < (3, 11), reason="3.10 re-raises the caught traceback")
def test_tracebacks_show_no_wrapper_frame(recorded) -> None:
    def explode() -> None:
        raise RuntimeError("explode")

    with pytest.raises(RuntimeError) as raised:
        wrappers.wrap(explode, recorded)()
    shown = "".join(traceback.format_exception(raised.value))
    assert "faultlens" not in shown
    assert shown.count('  File "') == 2  # this test, explode
    assert recorded == [raised.value]


def test_generator_and_async_generator_wrappers_hide_their_frames(recorded) -> None:
    def numbers() -> Iterator[int]:
        yield 1
        raise LookupError("while iterating")

    with pytest.raises(LookupError) as raised:
        list(wrappers.wrap(numbers, recorded)())
    assert "faultlens" not in "".join(traceback.format_exception(raised.value))

    async def stream() -> Any:
        yield 1
        raise EOFError("stream")

    async def drain() -> None:
        async for _ in wrappers.wrap(stream, recorded)():
            pass

    with pytest.raises(EOFError):
        asyncio.run(drain())
    assert [type(exc) for exc in recorded] == [LookupError, EOFError]


def test_an_exception_a_named_caller_catches_is_not_recorded(recorded) -> None:
    def inner() -> None:
        raise ValueError("control flow")

    wrapped_inner = wrappers.wrap(inner, recorded)

    def outer() -> str:
        try:
            wrapped_inner()
        except ValueError:
            return "caught inside named code"
        return "no"

    wrappers.add_named(wrappers.codes_of(outer))
    try:
        assert wrappers.wrap(outer, recorded)() == "caught inside named code"
    finally:
        wrappers.remove_named(wrappers.codes_of(outer))
    assert recorded == []
    with pytest.raises(ValueError):
        wrapped_inner()  # the test is not named code: recorded at the boundary
    assert len(recorded) == 1


def test_python_function_and_codes_of_look_through_decorators() -> None:
    @contextlib.contextmanager
    def opened() -> Iterator[None]:
        def nested() -> None:
            pass

        yield nested()

    function = wrappers.python_function(opened)
    assert function is not None
    assert function.__code__.co_name == "opened"
    names = {code.co_name for code in wrappers.codes_of(opened)}
    assert names == {"opened", "nested"}
    assert wrappers.python_function(functools.partial(print)) is None
    assert wrappers.python_function(staticmethod(opened)) is function
