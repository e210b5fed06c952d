"""The root-cause rule: which failure of one trace caused which others.

:func:`link_trace` takes what is known of one trace — its spans (ids, parent
ids, times, status, service) and the failures recorded on them — and returns a
:class:`Verdict`: the trace's root failure and, for every other failure that is
a *symptom*, the root that explains it.

**A failure reaches another** (it could have travelled up to it) when

1. the other is on an *ancestor* span, the failure left its own span — the span
   ended with status ERROR or the failure escaped it (``failure.handled`` is
   false), or an exception it caused did (see 3) — and every span in between
   passed it on: a span in between that ended without ERROR and let no failure
   escape *absorbed* it (the caller caught it and went on), so a failure higher
   up is unrelated. The failure higher up must also have happened after the call
   that led down to the first one started (a failure a handler logged before it
   made the call is not its symptom); or
2. the span in between is **missing** (not received, not sent by the SDK) — then
   the trace is joined where it can be: a span whose parent was never seen hangs
   under the shortest received span whose time range encloses its own (allowing
   for a constant clock offset between services), and
   across such a guessed link only a failure that happened *later* counts; or
3. both are on the **same span** and the other's stack trace names the first's
   exception type as its cause (``raise … from``, "During handling of the above
   exception", Java ``Caused by:``, JavaScript ``[cause]:`` —
   :mod:`.chains`), and the first happened before.

Times from different services are compared with :data:`CLOCK_SKEW_NANOS` of
tolerance (hosts' clocks differ a little); times within one service exactly.

**Roots** are the failures no other failure reaches: their span has no failing
descendant that got through to them. Reaching is transitive: what a symptom
reaches, its cause reaches. Each symptom is explained by the earliest root that
reaches it (directly or through other symptoms). The trace's root is
the earliest root that explains any symptom — or, when none does, the earliest
failure. A failure is never its own group's symptom (the same defect recorded on
nested spans is one defect).

Cost: each failure walks up to the first span where a failure it caused goes on
(or that absorbed it), so a cascade costs ``O(failures)``; the worst case is
``O(failures * depth)`` for a trace, and traces are bounded by the window
(:mod:`.window`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from faultlens_collector.causes.chains import chain_of, names_cause

#: ``Span.status.code`` values (OTLP).
STATUS_UNSET: Final = 0
STATUS_OK: Final = 1
STATUS_ERROR: Final = 2
#: Tolerance when comparing times of different services (their clocks differ).
CLOCK_SKEW_NANOS: Final = 20_000_000


class FailureLike(Protocol):
    """What the rule reads of one failure event (the processor's ``Occurrence`` is one)."""

    @property
    def fingerprint(self) -> str: ...
    @property
    def exception_type(self) -> str: ...
    @property
    def stacktrace(self) -> str: ...
    @property
    def handled(self) -> bool | None: ...
    @property
    def count(self) -> int: ...
    @property
    def time_unix_nano(self) -> int: ...
    @property
    def service(self) -> str: ...


@dataclass(slots=True)
class SpanFacts:
    """One span of a trace as far as linking needs it.

    ``span_id``/``parent_id`` are the raw 8-byte ids (``parent_id`` empty for a
    trace's root span); ``failures`` the failure events recorded on the span, in
    the order of its events. A span without failures matters for its status:
    it passes failures from below on (ERROR) or absorbs them.
    """

    span_id: bytes
    parent_id: bytes
    start: int
    end: int
    status: int
    service: str
    failures: Sequence[FailureLike] = ()

    @property
    def passes(self) -> bool:
        """Whether a failure from below can travel through: the span ended with ERROR,
        or a failure escaped it."""
        if self.status == STATUS_ERROR:
            return True
        return any(failure.handled is False for failure in self.failures)


@dataclass(slots=True)
class Link:
    """Symptoms of one group explained by a root of another, within one trace."""

    occurrences: int = 0
    services: set[str] = field(default_factory=set)
    last_seen: int = 0


@dataclass(slots=True)
class Verdict:
    """What one trace says: its root failure and the links from roots to symptoms.

    ``links`` is keyed by ``(cause fingerprint, symptom fingerprint)``; ``roles``
    holds each fingerprint's part in this trace: ``"root"`` (explains symptoms),
    ``"symptom"`` (explained by a root of another group) or ``""`` (neither).
    """

    root: str = ""
    root_service: str = ""
    links: dict[tuple[str, str], Link] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    failures: int = 0

    def causes_of(self, symptom: str) -> list[str]:
        """The root groups explaining ``symptom`` in this trace."""
        return [cause for cause, other in self.links if other == symptom]


#: Each span's parent and whether that link was guessed (the real parent never arrived).
_Parents = dict[bytes, tuple[SpanFacts, bool]]


class _Node:
    """A failure inside :func:`link_trace`."""

    __slots__ = ("failure", "key", "roots", "sources", "span")

    def __init__(self, failure: FailureLike, span: SpanFacts, key: tuple[int, bytes, int]) -> None:
        self.failure = failure
        self.span = span
        self.key = key
        self.sources: list[_Node] = []
        self.roots: list[_Node] | None = None


def link_trace(spans: Iterable[SpanFacts], *, skew: int = CLOCK_SKEW_NANOS) -> Verdict:
    """Apply the rule (see the module docstring) to the spans known of one trace.

    A span id seen twice counts once (the first kept: a retried export sends the same
    span again). Never raises on odd input (zero or reversed times, unknown parents,
    cycles through guessed links).
    """
    by_id: dict[bytes, SpanFacts] = {}
    for span in spans:
        by_id.setdefault(span.span_id, span)
    nodes: list[_Node] = []
    on_span: dict[bytes, list[_Node]] = {}
    for span in by_id.values():
        for index, failure in enumerate(span.failures):
            node = _Node(failure, span, (failure.time_unix_nano, span.span_id, index))
            nodes.append(node)
            on_span.setdefault(span.span_id, []).append(node)
    verdict = Verdict(failures=len(nodes))
    if not nodes:
        return verdict
    if len(nodes) > 1:
        parents = _parents(by_id, skew)
        chains: dict[int, tuple[str, ...]] = {}
        for node in nodes:
            _find_sources(node, on_span, parents, chains, skew)
    _explain(nodes, verdict)
    return verdict


def _parents(by_id: dict[bytes, SpanFacts], skew: int) -> _Parents:
    """Each span's parent as ``(span, guessed)``: the received parent, or for a span
    whose parent never arrived the shortest received span enclosing it in time."""
    parents: _Parents = {}
    orphans: list[SpanFacts] = []
    for span in by_id.values():
        parent = by_id.get(span.parent_id) if span.parent_id else None
        if parent is not None and parent is not span:
            parents[span.span_id] = (parent, False)
        elif span.parent_id and parent is None:
            orphans.append(span)
    for orphan in orphans:
        best: SpanFacts | None = None
        for candidate in by_id.values():
            if candidate is orphan or not _encloses(candidate, orphan, skew):
                continue
            if _below(candidate, orphan, parents):
                continue
            if best is None or _tighter(candidate, best):
                best = candidate
        if best is not None:
            parents[orphan.span_id] = (best, True)
    return parents


def _encloses(outer: SpanFacts, inner: SpanFacts, skew: int) -> bool:
    """Whether ``outer`` is at least as long as ``inner`` and contains it once shifted by
    at most the clock offset between their services (none within one service)."""
    tolerance = 0 if outer.service == inner.service else skew
    if outer.end - outer.start < inner.end - inner.start:
        return False
    return outer.start - inner.start <= tolerance and outer.end - inner.end >= -tolerance


def _tighter(candidate: SpanFacts, best: SpanFacts) -> bool:
    duration, best_duration = candidate.end - candidate.start, best.end - best.start
    if duration != best_duration:
        return duration < best_duration
    if candidate.start != best.start:
        return candidate.start > best.start
    return candidate.span_id < best.span_id


def _below(span: SpanFacts, ancestor: SpanFacts, parents: _Parents) -> bool:
    """Whether ``ancestor`` is ``span`` or above it through the links known so far."""
    seen: set[bytes] = set()
    current: SpanFacts | None = span
    while current is not None and current.span_id not in seen:
        if current is ancestor:
            return True
        seen.add(current.span_id)
        entry = parents.get(current.span_id)
        current = entry[0] if entry else None
    return False


def _find_sources(
    node: _Node,
    on_span: dict[bytes, list[_Node]],
    parents: _Parents,
    chains: dict[int, tuple[str, ...]],
    skew: int,
) -> None:
    """Register ``node`` as a source of every failure it reaches."""
    failure, span = node.failure, node.span
    caused_here = [
        other
        for other in on_span.get(span.span_id, ())
        if other is not node
        and node.key < other.key
        and names_cause(_chain(other, chains), failure.exception_type)
    ]
    for other in caused_here:
        other.sources.append(node)
    leaves = span.passes and (
        failure.handled is not True
        or any(other.failure.handled is not True for other in caused_here)
    )
    if not leaves:
        return
    seen = {span.span_id}
    child, guessed = span, False
    entry = parents.get(span.span_id)
    while entry is not None:
        ancestor, guessed_here = entry
        if ancestor.span_id in seen:
            return  # a cycle through guessed links
        seen.add(ancestor.span_id)
        guessed = guessed or guessed_here
        carried = False
        for other in on_span.get(ancestor.span_id, ()):
            if _after(
                other.failure,
                failure,
                child=child,
                ancestor=ancestor,
                guessed=guessed,
                guessed_here=guessed_here,
                skew=skew,
            ):
                other.sources.append(node)
                carried = carried or other.failure.handled is not True
        if not ancestor.passes:
            return  # absorbed here: the failures on this span were its last stop
        if carried:
            return  # a failure it caused goes on from here: what that reaches, it reaches
        child = ancestor
        entry = parents.get(ancestor.span_id)


def _after(
    symptom: FailureLike,
    cause: FailureLike,
    *,
    child: SpanFacts,
    ancestor: SpanFacts,
    guessed: bool,
    guessed_here: bool,
    skew: int,
) -> bool:
    """Whether ``symptom`` (on ``ancestor``) happened late enough to follow ``cause``:
    after the call to ``child`` started when that link was received, after ``cause``
    itself when any link on the way was guessed."""
    when = symptom.time_unix_nano
    if guessed:
        tolerance = 0 if symptom.service == cause.service else skew
        if when + tolerance < cause.time_unix_nano:
            return False
    if not guessed_here:
        tolerance = 0 if child.service == ancestor.service else skew
        if when + tolerance < child.start:
            return False
    return True


def _chain(node: _Node, chains: dict[int, tuple[str, ...]]) -> tuple[str, ...]:
    key = id(node)
    chain = chains.get(key)
    if chain is None:
        chain = chains[key] = chain_of(node.failure.stacktrace)
    return chain


def _explain(nodes: list[_Node], verdict: Verdict) -> None:
    """Roots, each symptom's earliest root, the links and the trace's root."""
    roots_with_symptoms: list[_Node] = []
    roles = verdict.roles
    for node in nodes:
        roots = _roots_of(node)
        if roots == [node]:
            roles.setdefault(node.failure.fingerprint, "")
            continue
        root = min(roots, key=_key)
        cause, symptom = root.failure, node.failure
        if cause.fingerprint == symptom.fingerprint:
            roles.setdefault(symptom.fingerprint, "")
            continue
        link = verdict.links.get((cause.fingerprint, symptom.fingerprint))
        if link is None:
            link = verdict.links[(cause.fingerprint, symptom.fingerprint)] = Link()
        link.occurrences += max(symptom.count, 1)
        link.services.add(symptom.service)
        link.last_seen = max(link.last_seen, symptom.time_unix_nano)
        roots_with_symptoms.append(root)
        roles[symptom.fingerprint] = "symptom"
    for root in roots_with_symptoms:
        if roles.get(root.failure.fingerprint) != "symptom":
            roles[root.failure.fingerprint] = "root"
    candidates = roots_with_symptoms or [node for node in nodes if _roots_of(node) == [node]]
    first = min(candidates, key=_key)
    verdict.root = first.failure.fingerprint
    verdict.root_service = first.failure.service


def _key(node: _Node) -> tuple[int, bytes, int]:
    return node.key


def _roots_of(node: _Node) -> list[_Node]:
    """The roots reaching ``node`` (``[node]`` for a root), memoized; iterative so a deep
    trace cannot exhaust the stack."""
    if node.roots is not None:
        return node.roots
    stack: list[tuple[_Node, int]] = [(node, 0)]
    active: set[int] = {id(node)}
    while stack:
        current, position = stack[-1]
        sources = current.sources
        if position < len(sources):
            stack[-1] = (current, position + 1)
            source = sources[position]
            if source.roots is None and id(source) not in active:
                active.add(id(source))
                stack.append((source, 0))
            continue
        stack.pop()
        active.discard(id(current))
        found: dict[int, _Node] = {}
        for source in sources:
            for root in source.roots or ():
                found[id(root)] = root
        current.roots = list(found.values()) if found else [current]
    return node.roots or [node]
