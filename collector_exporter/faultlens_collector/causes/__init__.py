"""Root causes across services: which failure group caused which others.

The path, as the processor runs it: failing spans (and the spans above them that
decide whether a failure travelled up) are held per trace for a bounded window
(:mod:`.window`); each settled trace is decided by the root-cause rule
(:mod:`.linking`, with exception chains read by :mod:`.chains`); the verdicts are
summed into durable links between groups, and groups mostly explained by one
cause are marked its symptoms (:mod:`.links`); every group gets a pattern
(:mod:`.patterns`). The rule, its limits and the figures: docs/root-causes.md.
"""

from __future__ import annotations

from faultlens_collector.causes.linking import SpanFacts, Verdict, link_trace
from faultlens_collector.causes.links import SYMPTOM_SHARE, assign_roots, fold
from faultlens_collector.causes.patterns import PATTERNS, pattern_of
from faultlens_collector.causes.window import Decision, TraceWindow, WindowSettings

__all__ = [
    "PATTERNS",
    "SYMPTOM_SHARE",
    "Decision",
    "SpanFacts",
    "TraceWindow",
    "Verdict",
    "WindowSettings",
    "assign_roots",
    "fold",
    "link_trace",
    "pattern_of",
]
