"""``faultlens.capture``: record exceptions that escape a function or a block.

``capture`` never swallows: it records the escaping exception as a failure with
``failure.handled=false`` and re-raises it unchanged. Forms::

    @faultlens.capture
    def charge(order): ...

    @faultlens.capture(category="dependency", severity="high", attributes={"peer": "psp"})
    async def fetch(): ...

    with faultlens.capture(category="io"):
        ...

Decorated sync functions, coroutine functions, generators and async generators
(exceptions raised while iterating are recorded too), methods, static and class
methods all work; the wrapper is a :mod:`wrapt` function wrapper, so signatures,
``inspect`` and descriptors behave like the original's. The success path costs
one ``try`` block over a bare wrapt pass-through. With ``FAULTLENS_DISABLED``
set when the decorator runs, the function is returned unwrapped.

:func:`make_wrapper` builds the same wrappers for other modules (the zero-code
instrumentation uses it with ``source="auto"``).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

import wrapt
from opentelemetry.util.types import AttributeValue

from faultlens import semconv
from faultlens.classify import validate_category, validate_severity
from faultlens.recorder import is_disabled, record_failure

F = TypeVar("F", bound=Callable[..., Any])

Kind = Literal["sync", "async", "generator", "async_generator"]
WrapperFunction = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class CaptureOptions:
    """How escaping exceptions are recorded."""

    category: str | None = None
    severity: str | None = None
    fingerprint: str | None = None
    attributes: Mapping[str, AttributeValue] | None = None
    source: semconv.Source = "decorator"

    def __post_init__(self) -> None:
        if self.category is not None:
            validate_category(self.category)
        if self.severity is not None:
            validate_severity(self.severity)

    def record(self, exc: BaseException) -> None:
        """Record ``exc`` as an escaped failure with these options."""
        record_failure(
            exc,
            handled=False,
            category=self.category,
            severity=self.severity,
            fingerprint=self.fingerprint,
            attributes=self.attributes,
            source=self.source,
        )


def function_kind(func: Callable[..., Any]) -> Kind:
    """Which wrapper a callable needs (looks through ``functools.partial`` and wrappers)."""
    target = inspect.unwrap(func) if hasattr(func, "__wrapped__") else func
    if inspect.isasyncgenfunction(target):
        return "async_generator"
    if inspect.iscoroutinefunction(target):
        return "async"
    if inspect.isgeneratorfunction(target):
        return "generator"
    return "sync"


def make_wrapper(kind: Kind, options: CaptureOptions) -> WrapperFunction:
    """A wrapt wrapper function ``(wrapped, instance, args, kwargs)`` for ``kind``."""
    record = options.record

    if kind == "async":

        async def async_wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            try:
                return await wrapped(*args, **kwargs)
            except BaseException as exc:
                record(exc)
                raise

        return async_wrapper

    if kind == "generator":

        def generator_wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            try:
                inner = wrapped(*args, **kwargs)
            except BaseException as exc:
                record(exc)
                raise
            return _guard_generator(inner, record)

        return generator_wrapper

    if kind == "async_generator":

        def async_generator_wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            try:
                inner = wrapped(*args, **kwargs)
            except BaseException as exc:
                record(exc)
                raise
            return _guard_async_generator(inner, record)

        return async_generator_wrapper

    def sync_wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            return wrapped(*args, **kwargs)
        except BaseException as exc:
            record(exc)
            raise

    return sync_wrapper


def _guard_generator(
    inner: Generator[Any, Any, Any], record: Callable[[BaseException], None]
) -> Generator[Any, Any, Any]:
    try:
        return (yield from inner)
    except BaseException as exc:
        record(exc)
        raise


async def _guard_async_generator(
    inner: AsyncGenerator[Any, Any], record: Callable[[BaseException], None]
) -> AsyncGenerator[Any, Any]:
    to_send: Any = None
    to_throw: BaseException | None = None
    while True:
        try:
            if to_throw is not None:
                thrown, to_throw = to_throw, None
                item = await inner.athrow(thrown)
            else:
                item = await inner.asend(to_send)
        except StopAsyncIteration:
            return
        except BaseException as exc:
            record(exc)
            raise
        try:
            to_send = yield item
        except GeneratorExit:
            await inner.aclose()
            raise
        except BaseException as exc:
            to_throw = exc
            to_send = None


def wrap(func: F, options: CaptureOptions) -> F:
    """Wrap ``func`` so that exceptions escaping it are recorded with ``options``."""
    wrapper = make_wrapper(function_kind(func), options)
    return wrapt.FunctionWrapper(func, wrapper)  # type: ignore[return-value]


class Capture:
    """Decorator and (async) context manager returned by :func:`capture`.

    Decorating records with ``options.source`` (``decorator``); a ``with`` block
    records with source ``manual``.
    """

    def __init__(self, options: CaptureOptions) -> None:
        self.options = options
        self._block_options = replace(options, source="manual")

    def __call__(self, func: F) -> F:
        if is_disabled():
            return func
        return wrap(func, self.options)

    def __enter__(self) -> Capture:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is not None:
            self._block_options.record(exc)
        return False

    async def __aenter__(self) -> Capture:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        return self.__exit__(exc_type, exc, tb)


@overload
def capture(func: F, /) -> F: ...


@overload
def capture(
    func: None = None,
    /,
    *,
    category: str | None = None,
    severity: str | None = None,
    fingerprint: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Capture: ...


def capture(
    func: Callable[..., Any] | None = None,
    /,
    *,
    category: str | None = None,
    severity: str | None = None,
    fingerprint: str | None = None,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Any:
    """Record exceptions escaping a function (decorator) or a block (context manager).

    ``category``, ``severity``, ``fingerprint`` and ``attributes`` override what
    faultlens would compute; an invalid category or severity raises
    ``ValueError`` here, at decoration time. Used as a context manager the
    failure's source is ``manual``; as a decorator, ``decorator``.
    """
    if func is not None:
        if not callable(func):
            raise TypeError(f"faultlens.capture: expected a callable, got {type(func).__name__}")
        return Capture(CaptureOptions())(func)
    return Capture(CaptureOptions(category, severity, fingerprint, attributes))
