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
   that led down to the first one returned (a failure a handler logged before or
   while it waited for that call is not its symptom); or
2. the span in between is **missing** (not received, not sent by the SDK) — then
   the trace is joined where it can be: a span whose parent was never seen hangs
   under a received span whose time range encloses its own (allowing for a clock
   offset between services) — the one that reacted to it with a failure at once,
   else the shortest (:func:`_guess`) — and across such a guessed link only a
   failure that happened *later* counts; inside one process, only the same
   exception or one raised from it (an exception unwinds to its caller at once:
   anything else means it was caught in between); or
3. both are on the **same span** and the other's stack trace names the first's
   exception type as its cause (``raise … from``, "During handling of the above
   exception", Java ``Caused by:``, JavaScript ``[cause]:`` —
   :mod:`.chains`), and the first happened before.

Times from different services are compared with :data:`CLOCK_SKEW_NANOS` of
tolerance (hosts' clocks differ a little); times within one service exactly.

**Roots** are the failures no other failure reaches: their span has no failing
descendant that got through to them. Every other failure is a *symptom*, explained
by one root: of the failures that reach it, its *proximate* cause is the one whose
failure came back to its span last before it was raised (when a handler waits for
several calls and one of them failing is tolerated, the call that failed last before
the handler gave up is the one that made it give up), and its root is the root of
that cause — so reaching is transitive: what a symptom reaches, its cause reaches.
A failure caught and logged on its way up (a handled failure it reaches on an
ancestor span) goes no further when that span then failed of something else: the
handler caught it and went on.

The trace's root — among the roots that explain symptoms (those whose span has no
failing descendant that reached them) — is the one whose symptoms reach highest up
the trace (what took the request down), then the one with most symptoms, then the
earliest; when no root explains anything, the earliest failure. A failure is never
its own group's symptom (the same defect recorded on nested spans is one defect).

Cost: each failure walks up to the first span where a failure it caused goes on
(or that absorbed it), so a cascade costs ``O(failures)``; the worst case is
``O(failures * depth)`` for a trace, and traces are bounded by the window
(:mod:`.window`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple, Protocol

from faultlens_collector.causes.chains import chain_of, names_cause

#: ``Span.status.code`` values (OTLP).
STATUS_UNSET: Final = 0
STATUS_OK: Final = 1
STATUS_ERROR: Final = 2
_new_tuple: Final = tuple.__new__
#: Tolerance when comparing times of different services (their clocks differ).
CLOCK_SKEW_NANOS: Final = 1_000_000
#: A caller that records a failure this soon after a failed call returned reacted to it.
REACTION_NANOS: Final = 50_000_000
#: ``Span.kind`` values of spans whose parent may be in another service.
_CALLED_KINDS: Final = frozenset({0, 2, 5})  # UNSPECIFIED, SERVER, CONSUMER
#: ``Span.kind`` values of spans that call another service.
_CALLING_KINDS: Final = frozenset({3, 4})  # CLIENT, PRODUCER
#: The kind of a placeholder for a span known only from failures sent as log records
#: tied to it: its parent is unknown until the span arrives; until then it hangs, like
#: a span whose parent never arrived, under a span of its service around its time.
LOGGED: Final = -1


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


class FailureEvent(NamedTuple):
    """What linking keeps of one failure event: a compact copy of the processor's
    ``Occurrence`` (the strings are shared with it)."""

    fingerprint: str
    exception_type: str
    stacktrace: str
    handled: bool | None
    count: int  # type: ignore[assignment]  # the field shadows tuple.count, on purpose
    time_unix_nano: int
    service: str


def failure_event(failure: FailureLike) -> FailureEvent:
    """The compact copy of ``failure`` (built directly: one per failure on ingest)."""
    return _new_tuple(
        FailureEvent,
        (
            failure.fingerprint,
            failure.exception_type,
            failure.stacktrace,
            failure.handled,
            failure.count,
            failure.time_unix_nano,
            failure.service,
        ),
    )


class SpanFacts(NamedTuple):
    """One span of a trace as far as linking needs it (a tuple: ingest builds one per
    span with failures, cheaply).

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
    #: ``Span.kind`` (OTLP): 2 SERVER and 5 CONSUMER spans are called from elsewhere.
    kind: int = 0

    @property
    def passes(self) -> bool:
        """Whether a failure from below can travel through: the span ended with ERROR,
        or a failure escaped it."""
        if self.status == STATUS_ERROR:
            return True
        for failure in self.failures:  # noqa: SIM110 - cheaper than any(), per span
            if failure.handled is False:
                return True
        return False


@dataclass(slots=True)
class Link:
    """Symptoms of one group explained by a root of another, within one trace."""

    occurrences: int = 0
    services: set[str] = field(default_factory=set)
    first_seen: int = 0
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
    #: The service of each root that explains symptoms.
    services: dict[str, str] = field(default_factory=dict)

    def causes_of(self, symptom: str) -> list[str]:
        """The root groups explaining ``symptom`` in this trace."""
        return [cause for cause, other in self.links if other == symptom]


#: Each span's parent and whether that link was guessed (the real parent never arrived).
_Parents = dict[bytes, tuple[SpanFacts, bool]]


class _Node:
    """A failure inside :func:`link_trace`."""

    __slots__ = ("failure", "key", "root", "sources", "span")

    def __init__(self, failure: FailureLike, span: SpanFacts, key: tuple[int, bytes, int]) -> None:
        self.failure = failure
        self.span = span
        self.key = key
        #: The failures that reach this one, each with when it came back to this span.
        self.sources: list[tuple[_Node, int]] = []
        self.root: _Node | None = None


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
    for listed in on_span.values():
        if len(listed) > 1:
            listed.sort(key=_key)
    parents: _Parents = {}
    if len(nodes) > 1:
        parents = _parents(by_id, skew)
        chains: dict[int, tuple[str, ...]] = {}
        for node in nodes:
            _find_sources(node, on_span, parents, chains, skew)
    _explain(nodes, verdict, skew, parents)
    return verdict


def _parents(by_id: dict[bytes, SpanFacts], skew: int) -> _Parents:
    """Each span's parent as ``(span, guessed)``: the received parent, or for a span
    whose parent never arrived a guess (see :func:`_guess`)."""
    parents: _Parents = {}
    orphans: list[SpanFacts] = []
    called: set[bytes] = set()  # CLIENT and PRODUCER spans whose callee arrived
    for span in by_id.values():
        parent = by_id.get(span.parent_id) if span.parent_id else None
        if parent is not None and parent is not span:
            parents[span.span_id] = (parent, False)
            called.add(parent.span_id)
        elif (span.parent_id and parent is None) or span.kind == LOGGED:
            orphans.append(span)
    for orphan in orphans:
        chosen = _guess(orphan, by_id, parents, called, skew)
        if chosen is not None:
            parents[orphan.span_id] = (chosen, True)
    return parents


def _guess(
    orphan: SpanFacts,
    by_id: dict[bytes, SpanFacts],
    parents: _Parents,
    called: set[bytes],
    skew: int,
) -> SpanFacts | None:
    """Where a span whose parent never arrived hangs: under a received span that
    encloses it in time (allowing for the clock offset between services) and could
    have called it — of its own service unless it is a SERVER or CONSUMER span (whose
    parent is in the caller's process), not a CLIENT or PRODUCER span whose callee
    arrived (a call has one callee). A caller reacts to a failed call at once: for a
    span that passed a failure on, the candidate that recorded a failure soonest after
    it ended (within :data:`REACTION_NANOS`) wins; otherwise the shortest."""
    local = orphan.kind not in _CALLED_KINDS
    reacting = orphan.passes
    best: tuple[int, int, bool, int, bytes] | None = None
    chosen: SpanFacts | None = None
    for candidate in by_id.values():
        if candidate is orphan or (local and candidate.service != orphan.service):
            continue
        if candidate.kind in _CALLING_KINDS and (local or candidate.span_id in called):
            continue
        shift = _enclosure(candidate, orphan, skew)
        if shift is None:
            continue
        duration = candidate.end - candidate.start
        # Only a span no longer than the orphan (give or take the offset) can be below it.
        if duration <= orphan.end - orphan.start + 2 * skew and _below(candidate, orphan, parents):
            continue
        reaction = _reaction(candidate, orphan, skew) if reacting else REACTION_NANOS
        rank = (reaction, duration, shift, -candidate.start, candidate.span_id)
        if best is None or rank < best:
            best, chosen = rank, candidate
    return chosen


def _reaction(candidate: SpanFacts, orphan: SpanFacts, skew: int) -> int:
    """How soon after ``orphan`` ended ``candidate`` recorded a failure
    (:data:`REACTION_NANOS` when not within that)."""
    tolerance = 0 if candidate.service == orphan.service else skew
    soonest = REACTION_NANOS
    for failure in candidate.failures:
        gap = failure.time_unix_nano - orphan.end
        if -tolerance <= gap < soonest:
            soonest = max(gap, 0)
    return soonest


def _enclosure(outer: SpanFacts, inner: SpanFacts, skew: int) -> bool | None:
    """None when ``outer`` cannot enclose ``inner``; else whether it needs a clock offset
    to: it must be at least as long and contain ``inner`` once shifted by at most the
    tolerated offset between their services (none within one service)."""
    if outer.end - outer.start < inner.end - inner.start or outer.end < outer.start:
        return None
    if outer.start <= inner.start and outer.end >= inner.end:
        return False
    tolerance = 0 if outer.service == inner.service else skew
    if outer.start - inner.start <= tolerance and outer.end - inner.end >= -tolerance:
        return True
    return None


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
    neighbours = on_span[span.span_id]
    caused_here = (
        [
            other
            for other in neighbours
            if other is not node
            and node.key < other.key
            and names_cause(_chain(other, chains), failure.exception_type)
        ]
        if len(neighbours) > 1
        else []
    )
    for other in caused_here:
        other.sources.append((node, failure.time_unix_nano))
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
        # Across missing spans inside the failure's own process, the exception unwinds
        # to the caller at once: the same exception, or one raised from it, shows there.
        in_process = guessed_here and ancestor.service == failure.service
        carried = unrelated = False
        caught: _Node | None = None  # the handled failure that shows it was caught here
        reached: list[_Node] = []
        for other in on_span.get(ancestor.span_id, ()):
            if not _after(
                other.failure,
                failure,
                child=child,
                ancestor=ancestor,
                guessed=guessed,
                skew=skew,
            ):
                continue
            related = _same_exception(other, failure, chains)
            if in_process and not related:
                unrelated = True
                continue
            if caught is not None and not (
                related or names_cause(_chain(other, chains), caught.failure.exception_type)
            ):
                continue  # caught and logged before: the handler went on
            other.sources.append((node, child.end))
            reached.append(other)
            if other.failure.handled is not True:
                carried = True
            elif caught is None:
                caught = other
        if not ancestor.passes:
            return  # absorbed here: the failures on this span were its last stop
        if carried:
            return  # a failure it caused goes on from here: what that reaches, it reaches
        if unrelated:
            return  # caught in a missing span: this span failed of another exception
        if caught is not None and any(
            other.failure.handled is False and other not in reached
            for other in on_span.get(ancestor.span_id, ())
        ):
            return  # caught and logged here; the span failed of something else
        child = ancestor
        entry = parents.get(ancestor.span_id)


def _same_exception(node: _Node, cause: FailureLike, chains: dict[int, tuple[str, ...]]) -> bool:
    """Whether ``node``'s failure is ``cause``'s exception type or names it as its cause."""
    return node.failure.exception_type == cause.exception_type or names_cause(
        _chain(node, chains), cause.exception_type
    )


def _after(
    symptom: FailureLike,
    cause: FailureLike,
    *,
    child: SpanFacts,
    ancestor: SpanFacts,
    guessed: bool,
    skew: int,
) -> bool:
    """Whether ``symptom`` (on ``ancestor``) happened late enough to follow ``cause``:
    after the call that led down to it (``child``, the span below ``ancestor`` on the
    way) returned, and after ``cause`` itself when any link on the way was guessed."""
    when = symptom.time_unix_nano
    if guessed:
        tolerance = 0 if symptom.service == cause.service else skew
        if when + tolerance < cause.time_unix_nano:
            return False
    tolerance = 0 if child.service == ancestor.service else skew
    return when + tolerance >= child.end


def _chain(node: _Node, chains: dict[int, tuple[str, ...]]) -> tuple[str, ...]:
    key = id(node)
    chain = chains.get(key)
    if chain is None:
        chain = chains[key] = chain_of(node.failure.stacktrace)
    return chain


def _explain(nodes: list[_Node], verdict: Verdict, skew: int, parents: _Parents) -> None:
    """Each symptom's root, the links and the trace's root."""
    explained: dict[int, list[_Node]] = {}  # root → its symptoms (of other groups)
    roles = verdict.roles
    for node in nodes:
        root = _root_of(node, skew)
        if root is node:
            roles.setdefault(node.failure.fingerprint, "")
            continue
        cause, symptom = root.failure, node.failure
        if cause.fingerprint == symptom.fingerprint:
            roles.setdefault(symptom.fingerprint, "")
            continue
        link = verdict.links.get((cause.fingerprint, symptom.fingerprint))
        if link is None:
            link = verdict.links[(cause.fingerprint, symptom.fingerprint)] = Link()
        link.occurrences += max(symptom.count, 1)
        link.services.add(symptom.service)
        when = symptom.time_unix_nano
        link.first_seen = min(link.first_seen, when) if link.first_seen else when
        link.last_seen = max(link.last_seen, when)
        explained.setdefault(id(root), [root]).append(node)
        roles[symptom.fingerprint] = "symptom"
    for root, *_ in explained.values():
        if roles.get(root.failure.fingerprint) != "symptom":
            roles[root.failure.fingerprint] = "root"
        verdict.services.setdefault(root.failure.fingerprint, root.failure.service)
    if len(explained) == 1:
        first = next(iter(explained.values()))[0]
    elif explained:
        depths: dict[bytes, int] = {}
        first = min(
            explained.values(),
            key=lambda group: (
                min(_depth(symptom.span, parents, depths) for symptom in group[1:]),
                -len(group),
                group[0].key,
            ),
        )[0]
    else:
        first = min(nodes, key=_key)
    verdict.root = first.failure.fingerprint
    verdict.root_service = first.failure.service


def _depth(span: SpanFacts, parents: _Parents, depths: dict[bytes, int]) -> int:
    """How many spans (received or guessed) are above ``span``."""
    path: list[bytes] = []
    current: SpanFacts | None = span
    depth = 0  # of the last span on the path
    while current is not None:
        known = depths.get(current.span_id)
        if known is not None:
            depth = known + 1
            break
        if current.span_id in path:
            break  # a cycle through guessed links
        path.append(current.span_id)
        entry = parents.get(current.span_id)
        current = entry[0] if entry else None
    for offset, span_id in enumerate(reversed(path)):
        depths[span_id] = depth + offset
    return depths[span.span_id]


def _key(node: _Node) -> tuple[int, bytes, int]:
    return node.key


def _proximate(node: _Node, skew: int) -> _Node:
    """Of the failures reaching ``node``, the one that came back to its span last before
    it was raised (the earliest to come back when all came back after it, which clock
    offsets can make happen); ties go to the earlier failure."""
    when = node.failure.time_unix_nano + skew
    latest: _Node | None = None
    latest_at = 0
    earliest: _Node | None = None
    earliest_at = 0
    for source, arrival in node.sources:
        if arrival <= when:
            if (
                latest is None
                or arrival > latest_at
                or (arrival == latest_at and source.key < latest.key)
            ):
                latest, latest_at = source, arrival
        elif (
            earliest is None
            or arrival < earliest_at
            or (arrival == earliest_at and source.key < earliest.key)
        ):
            earliest, earliest_at = source, arrival
    chosen = latest if latest is not None else earliest
    assert chosen is not None  # only called for a node with sources
    return chosen


def _root_of(node: _Node, skew: int) -> _Node:
    """The root explaining ``node`` (itself for a root), following proximate causes;
    memoized and iterative, so a deep trace cannot exhaust the stack."""
    path: list[_Node] = []
    seen: set[int] = set()
    current = node
    while current.root is None and current.sources and id(current) not in seen:
        seen.add(id(current))
        path.append(current)
        current = _proximate(current, skew)
    # ``current`` is a root, a failure already explained, or (through guessed links
    # only) a failure met twice, which then counts as a root.
    root = current.root if current.root is not None else current
    for visited in path:
        visited.root = root
    current.root = root
    return root
