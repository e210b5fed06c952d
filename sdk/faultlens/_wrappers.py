"""The wrapping path (Python 3.10/3.11, and 3.12+ when ``sys.monitoring`` is not available).

:func:`wrap` puts a :class:`CaptureWrapper` (a :mod:`wrapt` function wrapper)
around a callable. Exceptions that escape it are handed to ``record`` at the
boundary. What a program could otherwise notice, and what is done about it:

* **kind** — the wrapper (plain, coroutine, generator, async generator) is
  chosen from the object actually called, never by looking through
  ``__wrapped__``: a ``@contextmanager`` function, or a ``functools.wraps``
  wrapper that collects a generator into a list, is a plain function and gets
  the plain wrapper, so it still returns what it returned.
* **identity** — a wrapped plain function read from a class (``C.f`` after
  ``C.f = f``) is the wrapper itself, as a function would be, not a new bound
  object per access: ``C.__setattr__ = f; C.__setattr__ is f`` stays true.
  Read from an instance it binds as a function does.
* **pickling and copying** — a wrapper pickles by reference like the function
  (``pickle.dumps(mod.func)`` gives the bytes it gives without faultlens; a
  wrapper not reachable under its own name unpickles to whatever that name
  holds then); ``copy.copy``/``copy.deepcopy`` return it, and a bound wrapper
  copies like a bound method. ``ProcessPoolExecutor().map(mod.func, ...)``
  works.
* **frames** — the wrapper's own frame is unavoidable (one Python frame
  between the caller and the function), but it is made as invisible as Python
  allows: its code's file name marks it as an internal frame the way CPython
  marks ``importlib._bootstrap`` frames, so ``warnings.warn(stacklevel=...)`` and
  ``logging``'s ``stacklevel`` skip it; its globals answer with the caller's
  globals, so ``sys._getframe(1).f_globals["__name__"]`` (``make_class``-style
  factories naming classes after the caller's module) gives the caller's
  module; and the wrapper removes its own entry from the exception's
  traceback before re-raising, so tracebacks printed or logged (Python 3.11+)
  and recorded stack traces show no faultlens frame. What stays visible: the
  frame itself, to ``sys._getframe(1).f_code``, ``inspect.stack()`` and
  profilers; and on 3.10 the traceback entry (3.10 re-raises the traceback it
  caught, not the exception's ``__traceback__``).

The failure rule on this path: an exception is recorded when it leaves a
wrapper into a caller that is not itself named code (:func:`named_code`): one
that a named caller catches was raised and caught inside named code. Its fate
after that cannot be seen without tracing every call, so it is recorded at the
boundary as escaped (``failure.handled=false``) and the span status is left to
the span's owner.
"""

from __future__ import annotations

import builtins
import copy
import importlib
import inspect
import operator
import sys
import types
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Iterator
from typing import Any, Final, Literal

import wrapt

Kind = Literal["sync", "async", "generator", "async_generator"]
Record = Callable[[BaseException], None]
WrapperFunction = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]

#: The file name of wrapper code: ``warnings`` and ``logging`` skip frames whose file
#: name contains both "importlib" and "_bootstrap", as they do for the import system.
HIDDEN_FILENAME: Final = "<faultlens wrapper, hidden like importlib._bootstrap frames>"

# Code objects of named code (wrapped functions and the code nested in them), counted.
_named: dict[int, int] = {}
_named_codes: dict[int, types.CodeType] = {}


def function_kind(func: Callable[..., Any]) -> Kind:
    """Which wrapper the object ``func`` needs, judged from the object itself."""
    if inspect.isasyncgenfunction(func):
        return "async_generator"
    if inspect.iscoroutinefunction(func):
        return "async"
    if inspect.isgeneratorfunction(func):
        return "generator"
    return "sync"


def python_function(obj: Any) -> types.FunctionType | None:
    """The Python function whose code runs when ``obj`` is called, if there is one.

    Looks through ``staticmethod``/``classmethod`` objects and ``__wrapped__``
    chains (``@contextmanager``, ``functools.wraps`` decorators, ``lru_cache``)
    down to the innermost plain function; None for other callables.
    """
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    found = obj if isinstance(obj, types.FunctionType) else None
    seen = 0
    while hasattr(obj, "__wrapped__") and seen < 32:
        obj = obj.__wrapped__
        seen += 1
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        if isinstance(obj, types.FunctionType):
            found = obj
    return found


def nested_codes(code: types.CodeType) -> Iterator[types.CodeType]:
    """``code`` and every code object defined inside it (functions, lambdas, comprehensions)."""
    stack = [code]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(const for const in current.co_consts if isinstance(const, types.CodeType))


def codes_of(obj: Any) -> list[types.CodeType]:
    """The named code of ``obj``: its function's code and the code nested in it."""
    function = python_function(obj)
    return [] if function is None else list(nested_codes(function.__code__))


def add_named(codes: Iterable[types.CodeType]) -> None:
    """Count ``codes`` as named code (a wrapper's caller running them is inside)."""
    for code in codes:
        _named[id(code)] = _named.get(id(code), 0) + 1
        _named_codes[id(code)] = code


def remove_named(codes: Iterable[types.CodeType]) -> None:
    """Undo one :func:`add_named` of ``codes``."""
    for code in codes:
        left = _named.get(id(code), 0) - 1
        if left > 0:
            _named[id(code)] = left
        else:
            _named.pop(id(code), None)
            _named_codes.pop(id(code), None)


def named_code(code: types.CodeType) -> bool:
    """True when ``code`` is part of wrapped (named) code."""
    return id(code) in _named


# -- the wrapper functions --------------------------------------------------------


def _boundary(exc: BaseException, frame: types.FrameType, record: Record) -> None:
    """At the wrapper's ``except``: drop its traceback entry; record unless still inside."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame is frame:
        exc.__traceback__ = tb.tb_next
    caller = frame.f_back
    if caller is not None and id(caller.f_code) in _named:
        return
    record(exc)


def _sync(record: Record) -> WrapperFunction:
    boundary, getframe, base = _boundary, sys._getframe, BaseException

    def sync_wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            return wrapped(*args, **kwargs)
        except base as exc:
            boundary(exc, getframe(), record)
            raise

    return sync_wrapper


def _async(record: Record) -> WrapperFunction:
    boundary, getframe, base = _boundary, sys._getframe, BaseException

    async def async_wrapper(
        wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        try:
            return await wrapped(*args, **kwargs)
        except base as exc:
            boundary(exc, getframe(), record)
            raise

    return async_wrapper


def _iterating(guard: Callable[..., Any]) -> Callable[[Record], WrapperFunction]:
    """The factory of (async) generator wrappers: calling records, iterating goes to ``guard``."""

    def factory(record: Record) -> WrapperFunction:
        boundary, getframe, base = _boundary, sys._getframe, BaseException

        def generator_wrapper(
            wrapped: Callable[..., Any],
            instance: Any,
            args: tuple[Any, ...],
            kwargs: dict[str, Any],
        ) -> Any:
            try:
                inner = wrapped(*args, **kwargs)
            except base as exc:
                boundary(exc, getframe(), record)
                raise
            return guard(inner, record)

        return generator_wrapper

    return factory


def _guard_generator(
    inner: Generator[Any, Any, Any],
    record: Record,
    *,
    boundary: Callable[..., None] = _boundary,
    getframe: Callable[[], types.FrameType] = sys._getframe,
    base: type[BaseException] = BaseException,
) -> Generator[Any, Any, Any]:
    try:
        return (yield from inner)
    except base as exc:
        boundary(exc, getframe(), record)
        raise


async def _guard_async_generator(
    inner: AsyncGenerator[Any, Any],
    record: Record,
    *,
    boundary: Callable[..., None] = _boundary,
    getframe: Callable[[], types.FrameType] = sys._getframe,
    base: type[BaseException] = BaseException,
    stop: type[BaseException] = StopAsyncIteration,
    exit_: type[BaseException] = GeneratorExit,
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
        except stop:
            return
        except base as exc:
            boundary(exc, getframe(), record)
            raise
        try:
            to_send = yield item
        except exit_:
            await inner.aclose()
            raise
        except base as exc:
            to_throw = exc
            to_send = None


class _CallerGlobals(dict[str, Any]):
    """The globals of wrapper frames: every read answers from the caller's globals.

    Code that looks at ``sys._getframe(1).f_globals`` from a wrapped function
    (to name a class after its caller's module, say) sees its real caller's
    module. Wrapper code itself never reads a global.
    """

    def _caller(self) -> dict[str, Any]:
        frame: types.FrameType | None = sys._getframe(2)
        while frame is not None and frame.f_globals is not self:
            frame = frame.f_back
        while frame is not None and frame.f_globals is self:
            frame = frame.f_back
        return frame.f_globals if frame is not None else vars(builtins)

    def __getitem__(self, key: str) -> Any:
        return self._caller()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._caller().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._caller()

    def __iter__(self) -> Iterator[str]:
        return iter(self._caller())

    def __len__(self) -> int:
        return len(self._caller())

    def keys(self) -> Any:
        return self._caller().keys()

    def values(self) -> Any:
        return self._caller().values()

    def items(self) -> Any:
        return self._caller().items()


_CALLER_GLOBALS: Final = _CallerGlobals(__builtins__=builtins)
_hidden_codes: dict[types.CodeType, types.CodeType] = {}


def hidden(function: Any) -> Any:
    """A copy of ``function`` whose frames are hidden (file name, caller's globals)."""
    code = function.__code__
    replaced = _hidden_codes.get(code)
    if replaced is None:
        replaced = _hidden_codes[code] = code.replace(co_filename=HIDDEN_FILENAME)
    copy_ = types.FunctionType(
        replaced, _CALLER_GLOBALS, function.__name__, function.__defaults__, function.__closure__
    )
    copy_.__qualname__ = function.__qualname__
    copy_.__kwdefaults__ = function.__kwdefaults__
    return copy_


_guard = hidden(_guard_generator)
_async_guard = hidden(_guard_async_generator)
_FACTORIES: Final[dict[Kind, Callable[[Record], WrapperFunction]]] = {
    "sync": _sync,
    "async": _async,
    "generator": _iterating(_guard),
    "async_generator": _iterating(_async_guard),
}


def make_wrapper(kind: Kind, record: Record) -> WrapperFunction:
    """A wrapt wrapper function ``(wrapped, instance, args, kwargs)`` for ``kind``."""
    return hidden(_FACTORIES[kind](record))  # type: ignore[no-any-return]


# -- the wrapper objects -------------------------------------------------------------


class _ModuleRef:
    """Pickles as ``importlib.import_module(name)``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return importlib.import_module, (self.name,)


def _lookup(module: str, qualname: str) -> Any:
    target: Any = sys.modules.get(module)
    for part in qualname.split("."):
        target = getattr(target, part, None)
    return target


class BoundCaptureWrapper(wrapt.BoundFunctionWrapper[..., Any]):
    """A :class:`CaptureWrapper` bound to an instance or class."""

    def __new__(  # noqa: PLR0917 - wrapt calls it positionally
        cls,
        descriptor: Any,
        instance: Any,
        wrapper: Any,
        enabled: Any,
        binding: Any,
        parent: Any,
        owner: Any = None,
    ) -> Any:
        if instance is None and binding == "function":
            return parent  # a plain function read from its class is the function itself
        return super().__new__(cls)

    def __reduce_ex__(self, protocol: Any) -> Any:
        return getattr, (self.__self__, self.__name__)

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return getattr(copy.deepcopy(self.__self__, memo), self.__name__)


class CaptureWrapper(wrapt.FunctionWrapper[..., Any]):
    """A wrapt function wrapper that pickles, copies and binds like the function it wraps."""

    __bound_function_wrapper__ = BoundCaptureWrapper

    def __reduce_ex__(self, protocol: Any) -> Any:
        module = getattr(self, "__module__", None)
        qualname = getattr(self, "__qualname__", None)
        if not isinstance(module, str) or not isinstance(qualname, str):
            raise TypeError(f"cannot pickle {self!r}: it has no module and qualified name")
        if _lookup(module, qualname) is self:
            return qualname  # by reference, exactly as the function itself pickles
        return operator.attrgetter(qualname), (_ModuleRef(module),)

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return self


def wrap(func: Any, record: Record) -> CaptureWrapper:
    """``func`` in a :class:`CaptureWrapper` handing escaping exceptions to ``record``."""
    return CaptureWrapper(func, make_wrapper(function_kind(func), record))
