"""Scoring root-cause linking against the truth of generated traces (cascade_traces.py).

* **top-1 root accuracy**: over the traces with a cascade (a root with at least one
  symptom), the share whose root the processor named is the true root's group;
* **links**: the group links (cause group → symptom group) the processor counted,
  against the true ones — as a set (every pair counted at least once), weighted by
  the occurrences each link explains, and as the marks operators see (a symptom
  folded under the one cause that explains most of it, ``causes.links.assign_roots``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cascade_traces import Kind, Truth
from faultlens_collector.causes.links import LinkCount, assign_roots
from faultlens_collector.ingest.fingerprint import fingerprint_of


def fingerprint(kind: Kind) -> str:
    """The group a kind lands in: the SDK's fingerprint, or what the processor computes."""
    return fingerprint_of(
        {
            "exception.type": kind.exception_type,
            "exception.message": kind.message,
            "exception.stacktrace": kind.stacktrace(),
            **({"failure.fingerprint": kind.fingerprint} if kind.language == "faultlens" else {}),
        }
    )


@dataclass(frozen=True)
class Score:
    cascades: int
    top1: float
    link_precision: float
    link_recall: float
    weighted_precision: float
    weighted_recall: float
    marked_precision: float
    marked_recall: float
    false_links: list[tuple[str, str, int]]
    missed_links: list[tuple[str, str, int]]

    def lines(self) -> list[str]:
        return [
            f"top-1 root accuracy over {self.cascades} traces with a cascade: {self.top1:.3f}",
            f"group links (pairs): precision {self.link_precision:.3f}, "
            f"recall {self.link_recall:.3f}",
            f"group links (weighted by occurrences): precision {self.weighted_precision:.3f}, "
            f"recall {self.weighted_recall:.3f}",
            f"symptoms folded under their root: precision {self.marked_precision:.3f}, "
            f"recall {self.marked_recall:.3f}",
        ]


def score(
    truths: Iterable[Truth],
    roots: Mapping[bytes, str],
    links: Mapping[tuple[str, str], int],
    kinds: Iterable[Kind],
) -> Score:
    """``roots``: the root fingerprint the processor named per trace id; ``links``: its
    link counts (explained occurrences) per (cause, symptom) fingerprint."""
    names = {fingerprint(kind): kind.name for kind in kinds}
    truths = list(truths)
    cascades = [truth for truth in truths if truth.root is not None]
    right = sum(1 for truth in cascades if names.get(roots.get(truth.trace_id, "")) == truth.root)
    true_links = Counter(pair for truth in truths for pair in truth.symptoms)
    occurrences = Counter(failure.kind.name for truth in truths for failure in truth.failures)
    found = Counter({(names.get(c, c), names.get(s, s)): n for (c, s), n in links.items() if n > 0})
    hits = set(found) & set(true_links)
    overlap = sum(min(found[pair], true_links[pair]) for pair in hits)
    marked = assign_roots(LinkCount(c, s, 1, n, occurrences[s]) for (c, s), n in found.items())
    true_marked = assign_roots(
        LinkCount(c, s, 1, n, occurrences[s]) for (c, s), n in true_links.items()
    )
    marked_hits = {s for s, c in marked.items() if true_marked.get(s) == c}
    return Score(
        cascades=len(cascades),
        top1=right / max(len(cascades), 1),
        link_precision=len(hits) / max(len(found), 1),
        link_recall=len(hits) / max(len(true_links), 1),
        weighted_precision=overlap / max(sum(found.values()), 1),
        weighted_recall=overlap / max(sum(true_links.values()), 1),
        marked_precision=len(marked_hits) / max(len(marked), 1),
        marked_recall=len(marked_hits) / max(len(true_marked), 1),
        false_links=sorted(
            ((c, s, n) for (c, s), n in found.items() if (c, s) not in true_links),
            key=lambda item: -item[2],
        ),
        missed_links=sorted(
            ((c, s, n) for (c, s), n in true_links.items() if (c, s) not in found),
            key=lambda item: -item[2],
        ),
    )
