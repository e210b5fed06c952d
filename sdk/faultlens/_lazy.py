"""Public names loaded on first use (PEP 562), so that importing a package is cheap.

``import faultlens`` runs only the package's ``__init__``: the recorder, the capture
engine, asyncio, wrapt and the OpenTelemetry SDK load when a program first uses a name
that needs them (``faultlens.capture``, ``faultlens.record_failure``, …), and a program
that imports ``faultlens.shared`` for one helper — the ``faultlens`` command line's
control client — loads that helper's module and nothing else.

A package lists its names twice: as imports under ``if TYPE_CHECKING:`` (what type
checkers and readers see) and in the table given to :func:`exports` (what runs);
tests/test_sdk_public_api.py holds the two to the same names.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def exports(
    package: str, sources: Mapping[str, tuple[str, ...]]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for the module named ``package``.

    ``sources`` maps a module to the names taken from it; ``"public=private"`` takes
    ``private`` under the name ``public``, and a (private) name that is the module's own
    last component (``"faultlens.semconv": ("semconv",)``) is the module itself. The first
    look-up of a name imports its module and stores the value in ``package``'s
    namespace, so later look-ups are ordinary attribute reads that never come back
    here. An unknown name raises ``AttributeError`` as for any module.
    """
    where: dict[str, tuple[str, str]] = {}
    for module, names in sources.items():
        for entry in names:
            public, _, private = entry.partition("=")
            where[public] = (module, private or public)

    def __getattr__(name: str) -> object:
        try:
            module_name, attribute = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module = importlib.import_module(module_name)
        itself = module_name.rpartition(".")[2] == attribute
        value = module if itself else getattr(module, attribute)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
