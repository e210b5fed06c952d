"""The ``from module import func`` trap: rebind module globals that hold an original.

A module that ran ``from shop.orders import charge`` before ``charge`` was
wrapped holds the original function in its own namespace; wrapping
``shop.orders.charge`` does not change that name. :func:`rebind_aliases` scans
the namespaces of the modules loaded *now* and points every global that is the
very same object as a wrapped original (``is``) at its wrapper, recording an
:class:`Alias` so the rebinding can be undone exactly.

Only module globals are scanned; references held anywhere else (class
attributes, containers, closures, default arguments, bound methods, callbacks
already registered) keep the original. Cost: one pass over every loaded
module's namespace, where a module with no match costs one C-level set test
(``map(id, values)`` against the index of originals), so a pass over ~1,000
modules stays around a millisecond; see ``benchmarks/bench_instrument.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from faultlens.instrumentation.patching import Patch


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
    the targeted class stays the base class's business). Never raises.
    """
    index: dict[int, Patch] = {id(patch.original): patch for patch in patches if patch.own}
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
