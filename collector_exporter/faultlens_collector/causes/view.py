"""What the control API shows of root causes, per group: :class:`LinkView`.

For each group: its **links** both ways — ``caused_by`` (the root groups whose
failures explain some of its occurrences) and ``causes`` (the groups its failures
took down) — each with the traces that showed it, the symptom occurrences it
explains and that as a **share** of the symptom's occurrences since its links were
last reset; its ``root_fingerprint`` (the one cause explaining at least half of its
occurrences, :func:`~.links.assign_roots`: one level deep, so roots and their
symptoms form a forest) and its **pattern** (:mod:`.patterns`).

Marking symptoms needs every link and every symptom group's count: that map is
computed from the store and kept for :data:`REFRESH_SECONDS` (shares move with
every occurrence; a second of staleness does not change a majority), and at once
after links are written or reset. Resolving a group resets its links as a symptom
(:meth:`LinkView.reset`): a group that comes back starts a new story.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from faultlens_collector.causes.links import LinkCount, assign_roots, share
from faultlens_collector.causes.patterns import pattern_of
from faultlens_collector.causes.store import LinkStore, StoredLink
from faultlens_collector.groups.model import Group
from faultlens_collector.groups.store import GroupQuery, GroupStore

#: How long the map of symptoms to roots is reused (seconds).
REFRESH_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class LinkedGroup:
    """One link as a group shows it: the group at the other end."""

    fingerprint: str
    traces: int
    occurrences: int
    share: float
    first_seen: int
    last_seen: int


@dataclass(frozen=True, slots=True)
class Causality:
    """A group's place among root causes."""

    pattern: str
    root_fingerprint: str
    caused_by: tuple[LinkedGroup, ...] = ()
    causes: tuple[LinkedGroup, ...] = ()


class LinkView:
    """Links, roots and patterns of groups, read from the link and group stores."""

    def __init__(
        self,
        links: LinkStore,
        groups: GroupStore,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._links = links
        self._groups = groups
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[int, float, dict[str, str], dict[str, int]] | None = None

    def of(self, groups: Sequence[Group]) -> dict[str, Causality]:
        """The causality of each of ``groups``, by fingerprint."""
        if not groups:
            return {}
        roots, totals = self._roots()
        stored = self._links.links_of(group.fingerprint for group in groups)
        missing = {link.symptom for link in stored} - totals.keys()
        if missing:  # a link written since the map was computed
            totals = {**totals, **self._totals(missing)}
        caused_by: dict[str, list[LinkedGroup]] = {}
        causes: dict[str, list[LinkedGroup]] = {}
        for link in stored:
            total = totals.get(link.symptom, 0)
            caused_by.setdefault(link.symptom, []).append(_linked(link.cause, link, total))
            causes.setdefault(link.cause, []).append(_linked(link.symptom, link, total))
        result: dict[str, Causality] = {}
        for group in groups:
            fingerprint = group.fingerprint
            root = roots.get(fingerprint, "")
            result[fingerprint] = Causality(
                pattern=pattern_of(group.category, root),
                root_fingerprint=root,
                caused_by=_ordered(caused_by.get(fingerprint, ())),
                causes=_ordered(causes.get(fingerprint, ())),
            )
        return result

    def roots(self) -> dict[str, str]:
        """``symptom → root`` for every group marked a symptom."""
        return self._roots()[0]

    def symptoms_of(self, roots: Iterable[str]) -> list[str]:
        """The groups marked as symptoms of any of ``roots``, sorted."""
        wanted = set(roots)
        return sorted(symptom for symptom, root in self.roots().items() if root in wanted)

    def reset(self, groups: Iterable[Group]) -> int:
        """Reset the links of ``groups`` as symptoms (they were resolved); returns the
        links deleted."""
        deleted = self._links.reset({group.fingerprint: group.count for group in groups})
        with self._lock:
            self._cached = None
        return deleted

    def _roots(self) -> tuple[dict[str, str], dict[str, int]]:
        now = self._clock()
        version = self._links.version
        with self._lock:
            cached = self._cached
            if cached is not None and cached[0] == version and now - cached[1] < REFRESH_SECONDS:
                return cached[2], cached[3]
        stored = self._links.all_links()
        totals = self._totals({link.symptom for link in stored})
        roots = assign_roots(
            LinkCount(link.cause, link.symptom, link.traces, link.occurrences, totals[link.symptom])
            for link in stored
            if link.symptom in totals
        )
        with self._lock:
            self._cached = (version, now, roots, totals)
        return roots, totals

    def _totals(self, fingerprints: Iterable[str]) -> dict[str, int]:
        """Each group's occurrences since its links were last reset."""
        wanted = tuple(sorted(set(fingerprints)))
        if not wanted:
            return {}
        resets = self._links.resets(wanted)
        return {
            group.fingerprint: max(group.count - resets.get(group.fingerprint, 0), 0)
            for group in self._groups.iter_groups(GroupQuery(fingerprints=wanted))
        }


def _linked(other: str, link: StoredLink, total: int) -> LinkedGroup:
    return LinkedGroup(
        fingerprint=other,
        traces=link.traces,
        occurrences=link.occurrences,
        share=share(link.occurrences, total),
        first_seen=link.first_seen,
        last_seen=link.last_seen,
    )


def _ordered(linked: Iterable[LinkedGroup]) -> tuple[LinkedGroup, ...]:
    """Strongest first: share, then traces, then fingerprint."""
    return tuple(sorted(linked, key=lambda item: (-item.share, -item.traces, item.fingerprint)))
