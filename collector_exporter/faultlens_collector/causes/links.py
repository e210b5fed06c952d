"""Links between failure groups: cause group → symptom group, counted over traces.

Every decided trace (:mod:`.window`) says which root failure explains which
symptom failures; summed over traces, that is a **link** from the root's group
(the *cause*) to the symptom's group, with

* ``traces`` — how many traces showed it;
* ``occurrences`` — how many of the symptom's occurrences it explains (the sum
  of their ``failure.count``);
* ``share`` — ``occurrences`` over the symptom's occurrences counted since its
  links were last reset (:func:`share`): a symptom whose occurrences also come
  without a trace context, or with other causes, has a smaller share.

A group whose occurrences are **mostly explained by one cause** — that cause's
share is at least :data:`SYMPTOM_SHARE` (one half) — is marked a *symptom* of
it (:func:`assign_roots`). Marks are one level deep: a group marked as another's
symptom is never itself the root others are marked under, and when two groups
would be each other's symptom the stronger link (higher share, then more
traces, then the smaller fingerprint) wins; so operators see a forest of roots
with their symptoms folded under them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from faultlens_collector.causes.window import Decision

#: A symptom group is marked as caused by a root group that explains at least this share
#: of its occurrences.
SYMPTOM_SHARE: Final = 0.5


@dataclass(slots=True)
class LinkChange:
    """What decisions added to one link (negative when a late arrival moved symptoms to
    another root)."""

    traces: int = 0
    occurrences: int = 0
    first_seen: int = 0
    last_seen: int = 0
    services: set[str] = field(default_factory=set)


def changes(decisions: Iterable[Decision]) -> dict[tuple[str, str], LinkChange]:
    """The net change per ``(cause, symptom)`` of ``decisions``: each verdict's links
    added, the links of the verdict it replaces taken away, each counted as many times
    as its trace's weight (a followed trace stands for ``weight`` traces under load).
    Entries that net to nothing are left out."""
    net: dict[tuple[str, str], LinkChange] = {}
    for decision in decisions:
        weight = decision.weight
        for key, link in decision.verdict.links.items():
            change = net.get(key)
            if change is None:
                change = net[key] = LinkChange()
            change.traces += weight
            change.occurrences += link.occurrences * weight
            if link.first_seen and (not change.first_seen or link.first_seen < change.first_seen):
                change.first_seen = link.first_seen
            change.last_seen = max(change.last_seen, link.last_seen)
            change.services.update(link.services)
        if decision.previous is not None:
            for key, link in decision.previous.links.items():
                change = net.get(key)
                if change is None:
                    change = net[key] = LinkChange()
                change.traces -= weight
                change.occurrences -= link.occurrences * weight
    return {key: change for key, change in net.items() if change.traces or change.occurrences}


def share(explained: int, occurrences: int) -> float:
    """``explained`` over ``occurrences``, within [0, 1] (0 when there are none)."""
    if occurrences <= 0 or explained <= 0:
        return 0.0
    return min(explained / occurrences, 1.0)


@dataclass(frozen=True, slots=True)
class LinkCount:
    """One stored link, and the symptom's occurrences its share is measured against."""

    cause: str
    symptom: str
    traces: int
    occurrences: int
    symptom_occurrences: int

    @property
    def share(self) -> float:
        return share(self.occurrences, self.symptom_occurrences)


def assign_roots(links: Iterable[LinkCount], threshold: float = SYMPTOM_SHARE) -> dict[str, str]:
    """``symptom → cause`` for every group mostly explained by one cause (see the module
    docstring): one level deep, strongest links first, deterministic."""
    candidates = sorted(
        (link for link in links if link.share >= threshold and link.cause != link.symptom),
        key=lambda link: (-link.share, -link.traces, link.symptom, link.cause),
    )
    roots: dict[str, str] = {}
    causes: set[str] = set()
    for link in candidates:
        if link.symptom in roots or link.symptom in causes or link.cause in roots:
            continue
        roots[link.symptom] = link.cause
        causes.add(link.cause)
    return roots


def fold(order: Iterable[str], roots: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    """Groups in ``order`` with each symptom folded under its root: ``(group, symptoms)``
    per group that is not a folded symptom, symptoms in ``order``. A symptom whose root
    is not in ``order`` stays on its own (it is not hidden)."""
    listed = list(order)
    present = set(listed)
    folded: dict[str, list[str]] = {}
    for fingerprint in listed:
        root = roots.get(fingerprint)
        if root is not None and root in present:
            folded.setdefault(root, []).append(fingerprint)
    return [
        (fingerprint, folded.get(fingerprint, []))
        for fingerprint in listed
        if roots.get(fingerprint) not in present
    ]
