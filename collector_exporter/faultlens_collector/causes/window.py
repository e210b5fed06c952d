"""Per-trace state over a bounded window: spans arrive late, out of order, from anywhere.

The spans of one trace reach the processor in different requests, from
different services, in any order: each service's SDK exports on its own
schedule (the OpenTelemetry ``BatchSpanProcessor`` waits up to 5 s by default).
:class:`TraceWindow` keeps what linking needs of each trace with a failure
(:class:`~.linking.SpanFacts`) and decides it with :func:`~.linking.link_trace`:

* **settle** (``settle_seconds``, default 5 s): a trace is decided once nothing
  new arrived for it for this long;
* **window** (``window_seconds``, default 30 s): its state is kept this long
  after its first span arrived. A span arriving after the trace was decided but
  within the window is a *late arrival*: the trace is decided again once it
  settles, and the new verdict is reported beside the previous one, so whoever
  counts links applies the difference (a root that arrived late takes over its
  symptoms; nothing is counted twice). A span arriving after the window starts
  a new state for its trace: it cannot be linked to what was decided before.
* **memory**: at most ``max_traces`` traces are held (the oldest is decided and
  dropped to make room) and ``max_spans`` spans per trace (further spans are
  counted in :attr:`TraceWindow.dropped_spans` and ignored).

**Which spans without failures are kept.** A span ancestor of a failure matters
when it absorbed it (it ended without ERROR). The parent of a span that *passes*
a failure on (status ERROR, or a failure escaped it) is *wanted*
(:meth:`TraceWindow.wanted`): the ingest path looks for wanted span ids among
the spans without failures of every request and adds the ones it finds, whose
own parents become wanted in turn, up to the trace's root or the first span
that absorbed the failure. A failure that did not leave its span needs nothing
above it. Wanted ids live as long as their trace.

Traces are only reported (:meth:`TraceWindow.collect`) when their verdict
changed something — a link — or when someone asked to hear about them
(:meth:`TraceWindow.watch`: the alert hold); a trace with one failure is decided
without running the rule.

**A budget under storms.** The rule costs tens of microseconds per trace; a cascade
repeats the same failures in thousands of traces a second. So each *combination* of
failure groups (the set of fingerprints in a trace) is decided by the rule for at
most ``decisions_per_second`` traces a second (default 20), and the rule gets at most
``decision_share`` of each second (default 5%, of the thread that decides); the other
traces get the verdict of the last trace of their combination decided by the rule —
the same root and links, counting their own occurrences. A combination seen for the
first time, and a watched trace (a new group's alert waits for it), are always decided
by the rule.

Thread-safe: one lock, held for a request's spans at a time.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

from faultlens_collector.causes.linking import (
    CLOCK_SKEW_NANOS,
    LOGGED,
    Link,
    SpanFacts,
    Verdict,
    link_trace,
)

#: Defaults (see the module docstring).
SETTLE_SECONDS: Final = 5.0
WINDOW_SECONDS: Final = 30.0
MAX_TRACES: Final = 20_000
MAX_SPANS: Final = 256
DECISIONS_PER_SECOND: Final = 20
DECISION_SHARE: Final = 0.05
#: Combinations of groups whose last verdict is remembered.
_TEMPLATES: Final = 4096


@dataclass(frozen=True, slots=True)
class WindowSettings:
    """How long and how much per-trace state is held (see the module docstring)."""

    settle_seconds: float = SETTLE_SECONDS
    window_seconds: float = WINDOW_SECONDS
    max_traces: int = MAX_TRACES
    max_spans: int = MAX_SPANS
    #: Tolerance when comparing times of different services.
    skew_nanos: int = CLOCK_SKEW_NANOS
    #: Traces per second and combination of groups decided by the rule (see the module
    #: docstring); beyond, the last verdict of the combination is applied.
    decisions_per_second: int = DECISIONS_PER_SECOND
    #: ... and at most this share of each second is spent on the rule (the rest of the
    #: traces of combinations decided before get their last verdict).
    decision_share: float = DECISION_SHARE

    def __post_init__(self) -> None:
        if not 0 < self.settle_seconds <= self.window_seconds:
            raise ValueError("the settle time must be positive and at most the window")
        if self.max_traces < 1 or self.max_spans < 1 or self.decisions_per_second < 1:
            raise ValueError("max_traces, max_spans and decisions_per_second must be at least 1")
        if not 0 < self.decision_share <= 1:
            raise ValueError("decision_share must be within (0, 1]")


@dataclass(frozen=True, slots=True)
class Decision:
    """A trace decided (again): its verdict now and the one reported before (None the
    first time). ``watched`` holds what :meth:`TraceWindow.watch` registered for it."""

    trace_id: bytes
    verdict: Verdict
    previous: Verdict | None
    watched: tuple[str, ...] = ()
    #: How many traces this one stands for (linking followed one in ``weight``).
    weight: int = 1


class _Trace:
    """What is held of one trace."""

    __slots__ = (
        "dirty",
        "failures",
        "first",
        "last",
        "queued",
        "spans",
        "trace_id",
        "verdict",
        "watched",
        "weight",
    )

    def __init__(self, trace_id: bytes, now: float, weight: int = 1) -> None:
        self.trace_id = trace_id
        self.weight = weight
        self.first = now
        self.last = now
        self.spans: list[SpanFacts] = []
        self.failures = 0
        self.verdict: Verdict | None = None
        self.dirty = False
        self.queued = False
        self.watched: list[str] | None = None


_EMPTY: Final = Verdict()
#: A trace taken for a decision: the trace, a copy of its spans, its verdict so far and
#: what was watched.
_Due = tuple[_Trace, tuple[SpanFacts, ...], Verdict | None, tuple[str, ...]]


class _Templates:
    """Per combination of failure groups (the set of fingerprints in a trace): the traces
    decided by the rule in the current second, and the last verdict; and the time the
    rule took this second. Bounded: forgotten all at once when full."""

    def __init__(self, per_second: int, share: float) -> None:
        self._per_second = per_second
        self._share = share
        self._seen: dict[frozenset[str], list[Any]] = {}  # [second, decided, verdict]
        self._second = -1
        self._spent = 0.0

    def template(self, combination: frozenset[str], now: float) -> Verdict | None:
        """The verdict to apply instead of the rule — the combination's budget for this
        second is spent, or the rule used its share of this second already; None:
        decide by the rule (and :meth:`remember` the verdict). A combination never
        decided has no template."""
        second = int(now)
        if second != self._second:
            self._second, self._spent = second, 0.0
        entry = self._seen.get(combination)
        if entry is None:
            return None
        if entry[0] != second:
            entry[0], entry[1] = second, 0
        if entry[1] < self._per_second and self._spent < self._share:
            return None
        verdict: Verdict = entry[2]
        return verdict

    def remember(self, combination: frozenset[str], verdict: Verdict, spent: float) -> None:
        """The rule decided a trace of ``combination`` in ``spent`` seconds."""
        self._spent += spent
        entry = self._seen.get(combination)
        if entry is None:
            if len(self._seen) >= _TEMPLATES:
                self._seen.clear()
            self._seen[combination] = [-1, 0, verdict]
            return
        entry[1] += 1
        entry[2] = verdict


def _merged(held: SpanFacts, arrived: SpanFacts) -> SpanFacts:
    """One span seen twice: sent again (the same), found as wanted after its failures
    (the one with failures), or a placeholder of failures sent as log records and the
    span itself (the span, with every failure) — ``held`` itself when nothing changes."""
    if LOGGED in (held.kind, arrived.kind):
        base = arrived if held.kind == LOGGED and arrived.kind != LOGGED else held
        failures = list(held.failures)
        failures += [failure for failure in arrived.failures if failure not in failures]
        if base is held and len(failures) == len(held.failures):
            return held
        return base._replace(failures=tuple(failures))
    if arrived.failures and not held.failures:
        return arrived
    return held


def applied(template: Verdict, spans: Iterable[SpanFacts]) -> Verdict:
    """``template`` (the verdict of a trace with the same groups) as the verdict of a
    trace made of ``spans``: the same root and the same links, counting this trace's
    occurrences of each symptom group."""
    occurrences: dict[str, list[Any]] = {}  # fingerprint → [count, services, first, last]
    failures = 0
    for span in spans:
        for failure in span.failures:
            failures += 1
            when = failure.time_unix_nano
            entry = occurrences.get(failure.fingerprint)
            if entry is None:
                occurrences[failure.fingerprint] = [
                    max(failure.count, 1),
                    {failure.service},
                    when,
                    when,
                ]
                continue
            entry[0] += max(failure.count, 1)
            entry[1].add(failure.service)
            entry[2], entry[3] = min(entry[2], when), max(entry[3], when)
    links: dict[tuple[str, str], Link] = {}
    for cause, symptom in template.links:
        entry = occurrences.get(symptom)
        if entry is not None and cause in occurrences:
            links[(cause, symptom)] = Link(entry[0], set(entry[1]), entry[2], entry[3])
    return Verdict(
        root=template.root if template.root in occurrences else "",
        root_service=template.root_service,
        links=links,
        roles={fingerprint: template.roles.get(fingerprint, "") for fingerprint in occurrences},
        failures=failures,
        services=dict(template.services),
    )


class TraceWindow:
    """Held traces (see the module docstring). ``clock`` returns seconds (monotonic).

    The lock is held for a request's spans, or to take what is due: the rule itself
    runs outside it (:meth:`collect` works on a copy of each trace's spans), so ingest
    never waits for a decision.
    """

    def __init__(
        self,
        settings: WindowSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or WindowSettings()
        self._clock = clock
        self._lock = threading.Lock()
        self._collecting = threading.Lock()
        # In order of first arrival: the oldest is first (O(1) to reach and to drop).
        self._traces: OrderedDict[bytes, _Trace] = OrderedDict()
        self._settling: deque[tuple[float, _Trace]] = deque()
        self._wanted: dict[bytes, _Trace] = {}
        #: Traces to decide at the next :meth:`collect` (evicted ones with news).
        self._due: list[_Trace] = []
        #: Spans ignored because their trace held ``max_spans`` already.
        self.dropped_spans = 0
        #: Traces dropped before their window ended to stay within ``max_traces``.
        self.evicted_traces = 0
        self._templates = _Templates(
            self.settings.decisions_per_second, self.settings.decision_share
        )
        #: Traces decided from the verdict of an earlier trace (over the budget).
        self.templated = 0
        #: How many traces each trace arriving from now on stands for (the linking side
        #: follows one in ``weight`` under load).
        self.weight = 1

    # --- what arrives ---------------------------------------------------------------

    def add(self, trace_id: bytes, spans: Iterable[SpanFacts]) -> None:
        """Hold ``spans`` of one trace (failing spans, or wanted spans without failures)."""
        with self._lock:
            self._add(trace_id, spans, self._clock())

    def add_many(self, items: Iterable[tuple[bytes, SpanFacts]]) -> None:
        """:meth:`add` for ``(trace id, span)`` pairs of many traces, under one lock.

        This runs for every span with failures: the first span of a trace (the usual
        case) takes a short way.
        """
        with self._lock:
            now = self._clock()
            traces = self._traces
            wanted = self._wanted
            settling = self._settling
            limit = self.settings.max_traces
            for trace_id, span in items:
                trace = traces.get(trace_id)
                if trace is not None:
                    self._add(trace_id, (span,), now)
                    continue
                if len(traces) >= limit:
                    self._evict()
                trace = traces[trace_id] = _Trace(trace_id, now, self.weight)
                trace.spans.append(span)
                failures = trace.failures = len(span.failures)
                if span.parent_id and span.passes:
                    wanted[span.parent_id] = trace
                elif span.kind == LOGGED:
                    wanted[span.span_id] = trace
                if failures > 1:  # one failure alone has nothing to link: no decision
                    trace.dirty = trace.queued = True
                    settling.append((now, trace))

    def _trace(self, trace_id: bytes, now: float) -> _Trace:
        trace = self._traces.get(trace_id)
        if trace is None:
            if len(self._traces) >= self.settings.max_traces:
                self._evict()
            trace = self._traces[trace_id] = _Trace(trace_id, now, self.weight)
        return trace

    def _evict(self) -> None:
        """Make room: the oldest trace leaves, to be decided at the next collect."""
        _, oldest = self._traces.popitem(last=False)
        self._forget(oldest)
        if oldest.dirty:
            self._due.append(oldest)
        self.evicted_traces += 1

    def _add(self, trace_id: bytes, spans: Iterable[SpanFacts], now: float) -> None:
        trace = self._trace(trace_id, now)
        wanted = self._wanted
        max_spans = self.settings.max_spans
        held = trace.spans
        news = not held  # a trace just held (watched) waits for its decision
        for span in spans:
            span_id = span.span_id
            for index, other in enumerate(held):
                if other.span_id == span_id:  # sent again, found as wanted, or logged
                    merged = _merged(other, span)
                    if merged is not other:  # not the same span sent again: news
                        news = True
                        held[index] = merged
                        trace.failures += len(merged.failures) - len(other.failures)
                        if merged.kind != LOGGED and wanted.get(span_id) is trace:
                            del wanted[span_id]
                        self._want_parent(trace, merged)
                    break
            else:
                if len(held) >= max_spans:
                    self.dropped_spans += 1
                    continue
                news = True
                held.append(span)
                trace.failures += len(span.failures)
                if span.kind == LOGGED:
                    wanted[span_id] = trace  # its span gives it its place in the tree
                elif wanted.get(span_id) is trace:
                    del wanted[span_id]
                self._want_parent(trace, span)
        if news:
            self._touch(trace, now)

    def _want_parent(self, trace: _Trace, span: SpanFacts) -> None:
        """Want the parent of a span that passes a failure on, unless it is held."""
        parent = span.parent_id
        if parent and span.passes and not any(other.span_id == parent for other in trace.spans):
            self._wanted[parent] = trace

    def _touch(self, trace: _Trace, now: float) -> None:
        """News for ``trace``: decide it (again) once it settles."""
        trace.last = now
        trace.dirty = True
        if not trace.queued:
            trace.queued = True
            self._settling.append((now, trace))

    def wanted(self) -> dict[bytes, _Trace]:
        """Span ids (raw 8 bytes) whose spans are wanted even without failures. Read it
        without the lock only to test membership."""
        return self._wanted

    def watch(self, trace_id: bytes, what: str) -> None:
        """Report the trace's next decision with ``what`` in :attr:`Decision.watched`
        (a trace not held yet is held from now on, as if a span had arrived: its spans
        are on their way)."""
        with self._lock:
            trace = self._trace(trace_id, self._clock())
            if trace.watched is None:
                trace.watched = []
            if what not in trace.watched:
                trace.watched.append(what)
            if not trace.dirty:
                self._touch(trace, trace.last)

    def pending(self, trace_id: bytes) -> bool:
        """Whether ``trace_id`` is held and has news not decided yet."""
        trace = self._traces.get(trace_id)
        return trace is not None and trace.dirty

    # --- deciding -------------------------------------------------------------------

    def collect(self, *, everything: bool = False) -> list[Decision]:
        """Decide the traces that settled, drop those whose window ended (deciding them
        first if they have news), and return the decisions worth reporting.
        ``everything`` decides and drops every trace (at shutdown)."""
        with self._collecting:
            with self._lock:
                due = self._take_due(everything)
            decided = []
            for trace, spans, previous, watched in due:
                decision = self._decide(trace, spans, previous, watched)
                if decision is not None:
                    decided.append(decision)
            return decided

    def _take_due(self, everything: bool) -> list[_Due]:
        """Under the lock: what to decide, each trace's spans copied."""
        now = self._clock()
        traces = self._traces
        due, self._due = self._due, []
        window_start = now - self.settings.window_seconds
        while traces:
            oldest = next(iter(traces.values()))
            if not everything and oldest.first > window_start:
                break
            traces.popitem(last=False)
            self._forget(oldest)
            if oldest.dirty:
                due.append(oldest)
        settled = now - self.settings.settle_seconds
        settling = self._settling
        while settling and settling[0][0] <= settled:
            _, trace = settling.popleft()
            if traces.get(trace.trace_id) is not trace:
                continue  # dropped meanwhile (decided then if it had news)
            if trace.last > settled:
                settling.append((trace.last, trace))  # news since: wait for it
                continue
            trace.queued = False
            if trace.dirty:
                due.append(trace)
        taken: list[_Due] = []
        for trace in due:
            if not trace.dirty:
                continue  # listed twice (evicted, then dropped)
            trace.dirty = False
            if trace.failures <= 1 and trace.verdict is None and not trace.watched:
                trace.verdict = _EMPTY  # one failure nobody watches: nothing to link
                continue
            watched = tuple(trace.watched or ())
            trace.watched = None
            taken.append((trace, tuple(trace.spans), trace.verdict, watched))
        return taken

    def _forget(self, trace: _Trace) -> None:
        """A trace leaves the window: its wanted spans are wanted no more."""
        wanted = self._wanted
        if wanted:
            for span in trace.spans:
                if span.parent_id and wanted.get(span.parent_id) is trace:
                    del wanted[span.parent_id]

    def _decide(
        self,
        trace: _Trace,
        spans: tuple[SpanFacts, ...],
        previous: Verdict | None,
        watched: tuple[str, ...],
    ) -> Decision | None:
        """The rule on a copy of ``trace``'s spans (outside the lock) — or, past the budget
        of its combination of groups, the verdict of the last trace of that combination
        applied to it (a watched trace is always decided by the rule)."""
        verdict = None
        combination: frozenset[str] | None = None
        if not watched:
            combination = frozenset(
                failure.fingerprint for span in spans for failure in span.failures
            )
            template = self._templates.template(combination, self._clock())
            if template is not None:
                verdict = applied(template, spans)
                self.templated += 1
        if verdict is None:
            started = time.perf_counter()
            verdict = link_trace(spans, skew=self.settings.skew_nanos)
            if combination is not None:
                self._templates.remember(combination, verdict, time.perf_counter() - started)
        trace.verdict = verdict
        if watched or verdict.links or (previous is not None and previous.links):
            return Decision(trace.trace_id, verdict, previous, watched, trace.weight)
        return None

    # --- reading --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._traces)

    @property
    def spans(self) -> int:
        """Spans held in all traces."""
        return sum(len(trace.spans) for trace in self._traces.values())
