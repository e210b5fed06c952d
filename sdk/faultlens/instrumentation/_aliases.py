"""The ``from module import func`` trap: rebind module globals that hold an original.

A module that ran ``from shop.orders import charge`` before ``charge`` was
wrapped holds the original function in its own namespace; wrapping
``shop.orders.charge`` does not change that name. :func:`rebind_aliases` scans
the namespaces of the modules loaded *now* and points every global that is the
very same object as a wrapped original (``is``) at its wrapper, recording an
:class:`Alias` so the rebinding can be undone exactly.

Which modules are scanned:

* when targets of modules already imported are wrapped (``instrument()``):
  every module in ``sys.modules``;
* when a module is wrapped by its post-import hook: the modules that entered
  ``sys.modules`` after it (``sys.modules`` keeps insertion order, and a module
  is inserted before its body runs), i.e. the ones imported *while* it was
  being imported, the only ones that could have bound its brand-new functions
  (circular imports, a package ``__init__`` re-exporting a submodule's
  function), plus the module that defines each wrapped function. See
  :func:`scan_after_import`.

Only module globals are scanned; references held anywhere else (class
attributes, containers, closures, default arguments, bound methods, callbacks
already registered) keep the original. Cost: a module with no match costs one
C-level set test (``map(id, values)`` against the index of originals); a full
pass over ~300 modules (14,000 globals) takes under a millisecond, see
``benchmarks/bench_instrument.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from faultlens.instrumentation._patching import Patch


@dataclass(slots=True)
class Alias:
    """A module global pointed at a wrapper, and the original it held."""

    namespace: dict[str, Any]
    name: str
    original: Any
    wrapper: Any

    def restore(self) -> bool:
        """Put the original back unless the global has been rebound since."""
        if self.namespace.get(self.name) is not self.wrapper:
            return False
        self.namespace[self.name] = self.original
        return True


def rebind_aliases(patches: Iterable[Patch], modules: Iterable[Any] | None = None) -> list[Alias]:
    """Point module globals that are a wrapped original at its wrapper.

    ``modules`` defaults to every module in ``sys.modules``. Only patches of an
    attribute the owner defined itself are considered (a method inherited by
    the targeted class stays the base class's business), and only wrapped ones:
    watched code needs no rebinding. Never raises.
    """
    index: dict[int, Patch] = {
        id(patch.original): patch for patch in patches if patch.own and not patch.watched
    }
    if not index:
        return []
    candidates = list(sys.modules.values()) if modules is None else list(modules)
    keys = index.keys()
    aliases: list[Alias] = []
    for module in candidates:
        if not isinstance(module, ModuleType):
            continue
        namespace = module.__dict__
        try:
            if keys.isdisjoint(map(id, namespace.values())):
                continue
            items = list(namespace.items())
        except RuntimeError:  # resized by another thread mid-scan: skip this one
            continue
        for name, value in items:
            patch = index.get(id(value))
            if patch is not None and value is patch.original:
                namespace[name] = patch.wrapper
                aliases.append(Alias(namespace, name, value, patch.wrapper))
    return aliases


def scan_after_import(module: ModuleType, patches: Iterable[Patch]) -> list[ModuleType]:
    """The modules to scan after ``module``'s post-import hook wrapped ``patches``.

    Those that entered ``sys.modules`` from ``module`` on, plus the module
    defining each wrapped function.
    """
    names = list(sys.modules)
    try:
        start = names.index(module.__name__)
    except ValueError:
        start = len(names)
    chosen = dict.fromkeys(names[start:])
    for patch in patches:
        defined_in = getattr(patch.original, "__module__", None)
        if isinstance(defined_in, str):
            chosen.setdefault(defined_in, None)
    found = (sys.modules.get(name) for name in chosen)
    return [candidate for candidate in found if isinstance(candidate, ModuleType)]
