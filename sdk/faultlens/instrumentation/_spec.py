"""Parse ``FAULTLENS_INSTRUMENT``: which functions the zero-code instrumentation wraps.

The value is a comma-separated list of targets ``module:qualname``
(docs/instrumentation.md, "Targets")::

    shop.orders:charge            a module-level function
    shop.orders:Cart.checkout     a method (static and class methods too); nested
                                  classes as in ``Outer.Inner.method``
    shop.orders:Cart.*            every function defined in the class body
    shop.orders:*                 every function defined in the module

Whitespace around entries is ignored, and so are empty entries (a trailing
comma). A malformed entry is reported as a :class:`SpecError` naming it; the
other entries still count. Duplicates are kept once, in first-seen order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WILDCARD = "*"


@dataclass(frozen=True, slots=True)
class Target:
    """One parsed target: ``module`` and the dotted ``qualname`` inside it."""

    module: str
    qualname: str

    @property
    def text(self) -> str:
        """The target as the user wrote it (normalized): ``module:qualname``."""
        return f"{self.module}:{self.qualname}"

    @property
    def owner_path(self) -> tuple[str, ...]:
        """Names of the classes to walk from the module to the wrapped attribute(s)."""
        return tuple(self.qualname.split(".")[:-1])

    @property
    def attribute(self) -> str:
        """The last part of the qualname: a name, or ``*``."""
        return self.qualname.rsplit(".", 1)[-1]


@dataclass(frozen=True, slots=True)
class SpecError:
    """A malformed entry and why it was rejected."""

    entry: str
    reason: str


def _is_dotted_name(text: str) -> bool:
    return all(part.isidentifier() for part in text.split("."))


def parse_entry(entry: str) -> Target | SpecError:
    """Parse one ``module:qualname`` entry (already stripped)."""
    module, sep, qualname = entry.partition(":")
    module, qualname = module.strip(), qualname.strip()
    if not sep or not module or not qualname:
        return SpecError(entry, "expected module:qualname")
    if not _is_dotted_name(module):
        return SpecError(entry, f"{module!r} is not a module name")
    if qualname == WILDCARD:
        return Target(module, qualname)
    parts = qualname.split(".")
    if parts[-1] == WILDCARD:
        parts = parts[:-1]
    if not parts or not all(part.isidentifier() for part in parts):
        return SpecError(
            entry, f"{qualname!r} is not func, Class.method, Class.* or * (a lone * only)"
        )
    return Target(module, qualname)


def parse_spec(raw: str | Iterable[str] | None) -> tuple[list[Target], list[SpecError]]:
    """Parse a ``FAULTLENS_INSTRUMENT`` value (or an iterable of entries).

    Returns the targets in first-seen order without duplicates, and the
    malformed entries. Never raises.
    """
    if raw is None:
        return [], []
    entries = raw.split(",") if isinstance(raw, str) else list(raw)
    targets: dict[Target, None] = {}
    errors: list[SpecError] = []
    for item in entries:
        entry = item.strip()
        if not entry:
            continue
        parsed = parse_entry(entry)
        if isinstance(parsed, SpecError):
            errors.append(parsed)
        else:
            targets.setdefault(parsed, None)
    return list(targets), errors
