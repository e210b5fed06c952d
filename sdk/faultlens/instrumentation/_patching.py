"""Find the objects a :class:`~faultlens.instrumentation._spec.Target` names and wrap them.

Every wrap is a :class:`Patch`: the owner (a module or a class), the attribute
name, the exact object that was there, and the wrapt ``FunctionWrapper`` put in
its place. :meth:`Patch.restore` puts the original object back, identical
(``is``) to what was there before.

What each target form wraps:

* ``module:func`` — the module attribute ``func``: any callable that is not a
  class (classes are reported: name ``Class.*`` or ``Class.method``).
* ``module:Class.method`` — the raw class attribute (plain function,
  ``staticmethod`` or ``classmethod`` object, or another callable) found along
  the class's MRO without running descriptors. A method the class inherits is
  wrapped *on that class only* (the base class and its other subclasses stay
  untouched); restoring removes the attribute again. Properties are reported,
  not wrapped.
* ``module:Class.*`` — every function, ``staticmethod`` and ``classmethod`` in
  the class's own ``__dict__`` (inherited ones are not), except dunder methods
  other than ``__init__`` and ``__call__``: protocol methods such as
  ``__getattr__`` or ``__next__`` raise as part of normal control flow. Name a
  dunder explicitly (``Class.__enter__``) to wrap it.
* ``module:*`` — every plain function in the module's namespace whose
  ``__module__`` is that module (functions imported from elsewhere are not).

Wildcards are globs: a module or class they match nothing in (a module of
constants or classes only, the usual case when ``module:*`` names every module of
a package) is no problem and gets no warning.

On Python 3.12+ with a :class:`~faultlens._monitoring.Monitor`, a target that
is a Python function (also through ``staticmethod``/``classmethod`` and
``__wrapped__`` chains: ``@contextmanager``, ``functools.wraps`` decorators,
``lru_cache``) is not replaced at all: the engine watches its code, and the
code nested in it. Such a :class:`Patch` has ``wrapper is original``; its
``restore`` stops watching. Because code is watched, every reference to the
function counts, also ones taken before instrumenting (framework registries,
``from``-imports); a method a class inherits is watched in the class that
defines it, so calls through the base class and its other subclasses count
too.

Other targets, and every target on 3.10/3.11 or without a monitor, get a
:class:`~faultlens._wrappers.CaptureWrapper` with source ``auto``; the kind of
wrapper is chosen from the object itself. An attribute already handled by this
instrumentation is not handled twice.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import CodeType, ModuleType
from typing import Any, Final

from faultlens import _wrappers as wrappers
from faultlens._capture import CaptureOptions, RecordingClient
from faultlens._monitoring import Monitor
from faultlens._wrappers import Kind, WrapperFunction, codes_of, function_kind, python_function
from faultlens.instrumentation._spec import WILDCARD, Target

#: Dunder methods ``Class.*`` still wraps; other dunders must be named explicitly.
WILDCARD_DUNDERS: Final = frozenset({"__init__", "__call__"})

_OPTIONS: Final = CaptureOptions(source="auto")


class TargetProblem(Exception):
    """A target that cannot be wrapped; the message says why (without the target)."""


@dataclass(slots=True)
class Patch:
    """One wrapped (or watched) attribute and what it replaced."""

    target: str
    owner: Any
    name: str
    original: Any
    wrapper: Any  # the original itself when its code is watched instead
    own: bool  # the original lived in owner.__dict__ (False: inherited by a class)
    codes: list[CodeType] = field(default_factory=list)
    monitor: Monitor | None = None
    client: RecordingClient | None = None

    @property
    def watched(self) -> bool:
        """True when the original's code is watched rather than wrapped."""
        return self.monitor is not None

    def restore(self) -> bool:
        """Put the original back (or stop watching); False if someone replaced the wrapper.

        A replaced wrapper is left alone: the newer object wins.
        """
        if self.monitor is not None and self.client is not None:
            self.monitor.unwatch(self.codes, self.client)
            return True
        namespace = vars(self.owner)
        if namespace.get(self.name) is not self.wrapper:
            return False
        if self.own:
            setattr(self.owner, self.name, self.original)
        else:
            delattr(self.owner, self.name)
        wrappers.remove_named(self.codes)
        return True


class Wrapping:
    """Watches or wraps targets (one shared wrapper function per kind) and applies patches."""

    def __init__(self, monitor: Monitor | None = None) -> None:
        self.monitor = monitor
        self.client = RecordingClient(_OPTIONS)
        self._wrappers: dict[Kind, WrapperFunction] = {}
        #: Attributes currently patched, keyed by (id(owner), name); the Patch keeps
        #: the owner alive, so the id cannot be reused while the key is present.
        self.applied: dict[tuple[int, str], Patch] = {}

    def wrap_object(self, original: Any) -> Any:
        """A :class:`~faultlens._wrappers.CaptureWrapper` recording what escapes ``original``."""
        kind = function_kind(original)
        wrapper = self._wrappers.get(kind)
        if wrapper is None:
            wrapper = self._wrappers[kind] = wrappers.make_wrapper(kind, _OPTIONS.record)
        return wrappers.CaptureWrapper(original, wrapper)

    def apply(self, module: ModuleType, target: Target) -> list[Patch]:
        """Watch or wrap what ``target`` names in the imported ``module``.

        Raises :class:`TargetProblem` when nothing can be wrapped; attributes
        this instance already handled are skipped silently.
        """
        owner: Any = module
        where = module.__name__
        for name in target.owner_path:
            owner = _class_attribute(owner, name, where)
            where = f"{where}.{name}"
        patches = []
        for name, original, own in _members(owner, target, where):
            key = (id(owner), name)
            if key in self.applied:
                continue
            patch = self._patch(target, owner, name, original, own=own, where=where)
            self.applied[key] = patch
            patches.append(patch)
        return patches

    def _patch(
        self, target: Target, owner: Any, name: str, original: Any, *, own: bool, where: str
    ) -> Patch:
        codes = codes_of(original)
        if self.monitor is not None and python_function(original) is not None:
            self.monitor.watch(codes, self.client)
            return Patch(
                target.text, owner, name, original, original, own, codes, self.monitor, self.client
            )
        patch = Patch(target.text, owner, name, original, self.wrap_object(original), own, codes)
        try:
            setattr(owner, name, patch.wrapper)
        except (AttributeError, TypeError) as err:
            raise TargetProblem(f"{where}.{name} cannot be replaced ({err})") from None
        wrappers.add_named(codes)
        return patch

    def restore_all(self) -> list[Patch]:
        """Restore every applied patch, newest first; returns those left as they were."""
        kept = []
        for patch in reversed(list(self.applied.values())):
            try:
                restored = patch.restore()
            except (AttributeError, TypeError):
                restored = False
            if not restored:
                kept.append(patch)
        self.applied.clear()
        return kept


def _class_attribute(owner: Any, name: str, where: str) -> type:
    """The class ``owner.name`` (looked up without running descriptors)."""
    value = inspect.getattr_static(owner, name, None)
    if value is None:
        raise TargetProblem(f"{where} has no attribute {name!r}")
    if not isinstance(value, type):
        raise TargetProblem(f"{where}.{name} is not a class ({type(value).__name__})")
    return value


def _members(owner: Any, target: Target, where: str) -> Iterator[tuple[str, Any, bool]]:
    """(name, raw original, own) for each attribute ``target`` names in ``owner``."""
    name = target.attribute
    if isinstance(owner, ModuleType):
        yield from _module_members(owner, name, where)
    else:
        yield from _class_members(owner, name, where)


def _module_members(module: ModuleType, name: str, where: str) -> Iterator[tuple[str, Any, bool]]:
    namespace = vars(module)
    if name == WILDCARD:
        found = [
            (key, value, True)
            for key, value in namespace.items()
            if inspect.isfunction(value) and getattr(value, "__module__", None) == module.__name__
        ]
        yield from found  # a wildcard is a glob: a module without functions matches nothing
        return
    if name not in namespace:
        raise TargetProblem(f"module {where!r} has no attribute {name!r}")
    value = namespace[name]
    _check_callable(value, f"{where}.{name}", class_hint=f"{where}:{name}")
    yield name, value, True


def _class_members(owner: type, name: str, where: str) -> Iterator[tuple[str, Any, bool]]:
    if name == WILDCARD:
        found = [
            (key, value, True)
            for key, value in vars(owner).items()
            if _is_method(value) and (not _is_dunder(key) or key in WILDCARD_DUNDERS)
        ]
        yield from found  # as for modules: a class without own methods matches nothing
        return
    for klass in owner.__mro__:
        if name in vars(klass):
            value = vars(klass)[name]
            _check_callable(value, f"{where}.{name}", class_hint=None)
            yield name, value, klass is owner
            return
    raise TargetProblem(f"class {where} has no attribute {name!r}")


def _check_callable(value: Any, where: str, class_hint: str | None) -> None:
    if isinstance(value, type):
        hint = f" (name {class_hint}.* or {class_hint}.<method>)" if class_hint else ""
        raise TargetProblem(f"{where} is a class{hint}")
    if isinstance(value, property):
        raise TargetProblem(f"{where} is a property; properties are not wrapped")
    if isinstance(value, ModuleType):
        raise TargetProblem(f"{where} is a module")
    if not (callable(value) or isinstance(value, (staticmethod, classmethod))):
        raise TargetProblem(f"{where} is not callable ({type(value).__name__})")


def _is_method(value: Any) -> bool:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    return inspect.isfunction(value)


def _is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")
