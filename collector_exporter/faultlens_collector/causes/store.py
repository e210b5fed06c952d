"""What a link store does, whatever the backend: :class:`LinkStore`.

It keeps the links between failure groups (:mod:`.links`): per (cause, symptom) pair
the traces that showed it and the symptom occurrences it explains, and per symptom
group the occurrence count at which its links were last reset (it was resolved: its
shares are measured from there). Writes are additive — each batch of decided traces
adds its net change in one transaction, a late arrival that moved symptoms to another
root subtracts from the old link, and a link whose counts reach zero goes — so
processors sharing one database add up instead of overwriting each other. A backend
implements it (:mod:`faultlens_collector.store.sqlite.links`); a
:class:`~faultlens_collector.store.database.Database` hands it out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from faultlens_collector.causes.links import LinkChange


@dataclass(frozen=True, slots=True)
class StoredLink:
    """One stored link: the symptom occurrences ``cause`` explains, over how many traces,
    and when the first and last of them happened (Unix ns)."""

    cause: str
    symptom: str
    traces: int
    occurrences: int
    first_seen: int
    last_seen: int


class LinkStore(Protocol):
    """Durable group links (see the module docstring). Thread-safe."""

    @property
    def version(self) -> int:
        """Bumped by every write of this store (derived data can be cached by it)."""
        ...

    def apply(self, changes: Mapping[tuple[str, str], LinkChange]) -> None:
        """Add ``changes`` (:func:`~.links.changes`) in one transaction; raises (and
        changes nothing) when it cannot commit."""
        ...

    def reset(self, counts: Mapping[str, int]) -> int:
        """Forget the links of these symptom groups and measure their shares from these
        occurrence counts on (they were resolved); returns the links deleted."""
        ...

    def links_of(self, fingerprints: Iterable[str]) -> list[StoredLink]:
        """Every link whose cause or symptom is one of ``fingerprints``."""
        ...

    def all_links(self) -> list[StoredLink]:
        """Every link."""
        ...

    def resets(self, fingerprints: Iterable[str] | None = None) -> dict[str, int]:
        """The occurrence counts at the last reset, of ``fingerprints`` (None: all)."""
        ...

    def close(self) -> None:
        """Finish (the database closes the connection)."""
        ...
