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

Thread-safe: one lock, held for a request's spans at a time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Final

from faultlens_collector.causes.linking import CLOCK_SKEW_NANOS, SpanFacts, Verdict, link_trace

#: Defaults (see the module docstring).
SETTLE_SECONDS: Final = 5.0
WINDOW_SECONDS: Final = 30.0
MAX_TRACES: Final = 50_000
MAX_SPANS: Final = 256


@dataclass(frozen=True, slots=True)
class WindowSettings:
    """How long and how much per-trace state is held (see the module docstring)."""

    settle_seconds: float = SETTLE_SECONDS
    window_seconds: float = WINDOW_SECONDS
    max_traces: int = MAX_TRACES
    max_spans: int = MAX_SPANS
    #: Tolerance when comparing times of different services.
    skew_nanos: int = CLOCK_SKEW_NANOS

    def __post_init__(self) -> None:
        if not 0 < self.settle_seconds <= self.window_seconds:
            raise ValueError("the settle time must be positive and at most the window")
        if self.max_traces < 1 or self.max_spans < 1:
            raise ValueError("max_traces and max_spans must be at least 1")


@dataclass(frozen=True, slots=True)
class Decision:
    """A trace decided (again): its verdict now and the one reported before (None the
    first time). ``watched`` holds what :meth:`TraceWindow.watch` registered for it."""

    trace_id: bytes
    verdict: Verdict
    previous: Verdict | None
    watched: tuple[str, ...] = ()


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
    )

    def __init__(self, trace_id: bytes, now: float) -> None:
        self.trace_id = trace_id
        self.first = now
        self.last = now
        self.spans: list[SpanFacts] = []
        self.failures = 0
        self.verdict: Verdict | None = None
        self.dirty = False
        self.queued = False
        self.watched: list[str] | None = None


_EMPTY: Final = Verdict()


class TraceWindow:
    """Held traces (see the module docstring). ``clock`` returns seconds (monotonic)."""

    def __init__(
        self,
        settings: WindowSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or WindowSettings()
        self._clock = clock
        self._lock = threading.Lock()
        self._traces: dict[bytes, _Trace] = {}
        self._settling: deque[tuple[float, _Trace]] = deque()
        self._wanted: dict[bytes, _Trace] = {}
        self._decided: list[Decision] = []
        #: Spans ignored because their trace held ``max_spans`` already.
        self.dropped_spans = 0
        #: Traces dropped before their window ended to stay within ``max_traces``.
        self.evicted_traces = 0

    # --- what arrives ---------------------------------------------------------------

    def add(self, trace_id: bytes, spans: Iterable[SpanFacts]) -> None:
        """Hold ``spans`` of one trace (failing spans, or wanted spans without failures)."""
        with self._lock:
            self._add(trace_id, spans, self._clock())

    def add_many(self, items: Iterable[tuple[bytes, SpanFacts]]) -> None:
        """:meth:`add` for ``(trace id, span)`` pairs of many traces, under one lock."""
        with self._lock:
            now = self._clock()
            for trace_id, span in items:
                self._add(trace_id, (span,), now)

    def _add(self, trace_id: bytes, spans: Iterable[SpanFacts], now: float) -> None:
        trace = self._traces.get(trace_id)
        if trace is None:
            if len(self._traces) >= self.settings.max_traces:
                self._evict_oldest()
            trace = self._traces[trace_id] = _Trace(trace_id, now)
        wanted = self._wanted
        max_spans = self.settings.max_spans
        held = trace.spans
        for span in spans:
            span_id, parent = span.span_id, span.parent_id
            parent_known = False
            for index, other in enumerate(held):
                if other.span_id == span_id:  # sent again, or found as wanted and failing
                    if span.failures and not other.failures:
                        held[index] = span
                        trace.failures += len(span.failures)
                    break
                parent_known = parent_known or other.span_id == parent
            else:
                if len(held) >= max_spans:
                    self.dropped_spans += 1
                    continue
                held.append(span)
                trace.failures += len(span.failures)
                if wanted and wanted.get(span_id) is trace:
                    del wanted[span_id]
                if parent and not parent_known and span.passes:
                    wanted[parent] = trace
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
            trace = self._traces.get(trace_id)
            if trace is None:
                self._add(trace_id, (), self._clock())
                trace = self._traces[trace_id]
            if trace.watched is None:
                trace.watched = []
            if what not in trace.watched:
                trace.watched.append(what)

    def pending(self, trace_id: bytes) -> bool:
        """Whether ``trace_id`` is held and has news not decided yet."""
        trace = self._traces.get(trace_id)
        return trace is not None and trace.dirty

    # --- deciding -------------------------------------------------------------------

    def collect(self, *, everything: bool = False) -> list[Decision]:
        """Decide the traces that settled, drop those whose window ended (deciding them
        first if they have news), and return the decisions worth reporting.
        ``everything`` decides and drops every trace (at shutdown)."""
        with self._lock:
            now = self._clock()
            settings = self.settings
            if everything:
                for trace in list(self._traces.values()):
                    self._drop(trace)
            else:
                window_start = now - settings.window_seconds
                for trace in list(self._traces.values()):
                    if trace.first > window_start:
                        break
                    self._drop(trace)
                settled = now - settings.settle_seconds
                settling = self._settling
                while settling and settling[0][0] <= settled:
                    _, trace = settling.popleft()
                    if self._traces.get(trace.trace_id) is not trace:
                        continue  # dropped meanwhile
                    if trace.last > settled:
                        settling.append((trace.last, trace))  # news since: wait for it
                        continue
                    trace.queued = False
                    if trace.dirty:
                        self._decide(trace)
            decided, self._decided = self._decided, []
            return decided

    def _decide(self, trace: _Trace) -> None:
        trace.dirty = False
        previous = trace.verdict
        skew = self.settings.skew_nanos
        if trace.failures <= 1 and previous is None:
            verdict = _EMPTY if not trace.watched else link_trace(trace.spans, skew=skew)
        else:
            verdict = link_trace(trace.spans, skew=skew)
        trace.verdict = verdict
        watched = tuple(trace.watched or ())
        trace.watched = None
        if watched or verdict.links or (previous is not None and previous.links):
            self._decided.append(Decision(trace.trace_id, verdict, previous, watched))

    def _drop(self, trace: _Trace) -> None:
        if trace.dirty:
            self._decide(trace)
        del self._traces[trace.trace_id]
        wanted = self._wanted
        if wanted:
            for span in trace.spans:
                if span.parent_id and wanted.get(span.parent_id) is trace:
                    del wanted[span.parent_id]

    def _evict_oldest(self) -> None:
        oldest = next(iter(self._traces.values()))
        self._drop(oldest)
        self.evicted_traces += 1

    # --- reading --------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._traces)

    @property
    def spans(self) -> int:
        """Spans held in all traces."""
        return sum(len(trace.spans) for trace in self._traces.values())
