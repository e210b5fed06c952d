"""What root-cause linking reads from OTLP spans, read cheaply on the ingest path.

* :func:`facts_of` — the facts of a span that carries failures, from the frame
  ingest decoded anyway to read those failures (:mod:`~faultlens_collector.ingest.framing`):
  trace and span ids, parent id, start and end, status code.
* :class:`SpanTrees` — what ingest is asked for, and how much: the spans wanted, and
  the share of traces followed. Under a load beyond its budget, linking follows a
  sample of the traces, chosen by the first byte of the trace id (so every span of a
  trace is in or out together, whichever service sends it): a span with failures of a
  trace outside the sample costs one byte comparison.
* :func:`logged_span` — a failure sent as a log record with a span context stands on
  a placeholder of its span until the span itself arrives.
* :func:`add_wanted` — the spans *without* failures that a held trace wants (the
  parent of a span that passed a failure on, :mod:`.window`). They are found without
  decoding the others: a serialized span starts with its trace id and its span id
  (fields 1 and 2, written first by every OpenTelemetry SDK and by the Collector), so
  the span id is at bytes 20 to 28 of each span; one C-level pass over a scope's spans
  compares those bytes with the wanted ids, and only a span that matches is decoded. A
  span written in another field order is not found: linking then treats it as missing.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Container, Sequence
from typing import Any, Final

from google.protobuf.message import DecodeError

from faultlens_collector.causes.linking import LOGGED, FailureLike, SpanFacts, failure_event
from faultlens_collector.ingest.framing import SpanFrame
from faultlens_collector.ingest.framing import StatusFrame as _StatusFrame

#: Bytes 20 to 28 of a span serialized trace id first: ``0x0a 0x10`` + 16 id bytes, then
#: ``0x12 0x08`` + the 8 bytes of the span id.
_SPAN_ID: Final = operator.itemgetter(slice(20, 28))

#: ``Status.code`` (field 3, varint) as the first byte of its entry.
_CODE_TAG: Final = 0x18
_new: Final = tuple.__new__

#: ``(raw trace id, facts)``: one span of a trace, as the window takes it.
TracedSpan = tuple[bytes, SpanFacts]
#: :attr:`SpanTrees.keep` when every trace is followed.
EVERY_TRACE: Final = 256


class SpanTrees:
    """What linking asks ingest for — a live object ingest and linking share.

    ``wanted``: span ids whose spans are handed over even without failures.
    ``keep``: traces whose id starts with a byte below this are followed (256: all).
    ``budget``: spans with failures followed per second at most. Ingest reports each
    request's spans with failures (:meth:`offer`); within a second, the share of
    traces followed halves as soon as the followed ones pass the budget, and each new
    second starts from the share the last second's total called for — growing back by
    at most a doubling per second. Ingest reads and
    writes it without a lock: a count off by a few under a race changes nothing that
    matters.
    """

    __slots__ = ("_clock", "_count", "_second", "budget", "keep", "scanned", "wanted")

    def __init__(
        self,
        wanted: Container[bytes],
        budget: int = 1_000,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wanted = wanted
        self.budget = budget
        self.keep = EVERY_TRACE
        self._clock = clock
        self._second = -1
        self._count = 0
        #: Scopes whose spans without failures were looked through (a sampled share of
        #: them while only a sample of the traces is followed).
        self.scanned = 0

    @property
    def weight(self) -> int:
        """How many traces a followed trace stands for."""
        return EVERY_TRACE // self.keep

    def offer(self, spans: int) -> None:
        """A request had ``spans`` spans with failures (followed or not)."""
        if not spans:
            return
        second = int(self._clock())
        if second != self._second:
            gap = max(second - self._second, 1)
            last = self._count if gap == 1 else 0
            self._second, self._count = second, 0
            # What the last second called for, recovering at most a doubling per second
            # (a pause between bursts is not the end of the load).
            recovered = self.keep << min(gap, 8)
            self.keep = min(EVERY_TRACE // _weight_for(last, self.budget), recovered, EVERY_TRACE)
        self._count += spans
        while self.keep > 1 and self._count * self.keep > self.budget * EVERY_TRACE:
            self.keep //= 2

    def follows(self, trace_id: bytes) -> bool:
        """Whether the trace is in the sample."""
        return self.keep >= EVERY_TRACE or (bool(trace_id) and trace_id[0] < self.keep)

    def scan_now(self) -> bool:
        """Whether to look for wanted spans in the next scope: always when every trace is
        followed, else in the sampled share of scopes (wanted spans in the others are
        missed, as if not sent)."""
        if not self.wanted:
            return False
        self.scanned += 1
        keep = self.keep
        return keep >= EVERY_TRACE or (self.scanned * keep) % EVERY_TRACE < keep


def _weight_for(spans: int, budget: int) -> int:
    """The smallest power of two that brings ``spans`` within ``budget``."""
    weight = 1
    while spans > budget * weight and weight < EVERY_TRACE:
        weight *= 2
    return weight


def facts_of(
    span: Any, service: str, failures: Sequence[FailureLike], trace_id: bytes | None = None
) -> TracedSpan:
    """The linking facts of a decoded ``SpanFrame`` with ``failures`` on it (compact
    copies of them: the window keeps them for a while; the tuple is built directly:
    this runs for every span with failures). ``trace_id``: the span's, when read
    already."""
    return span.trace_id if trace_id is None else trace_id, _new(
        SpanFacts,
        (
            span.span_id,
            span.parent_span_id,
            span.start_time_unix_nano,
            span.end_time_unix_nano,
            status_code(span.status),
            service,
            (failure_event(failures[0]),)
            if len(failures) == 1
            else tuple(map(failure_event, failures)),
            span.kind,
        ),
    )


def logged_span(record: Any, service: str, failure: FailureLike) -> TracedSpan:
    """A failure sent as a log record tied to a span: a placeholder for that span
    (:data:`~.linking.LOGGED`) with the failure on it, at the record's time; the span
    itself, when it arrives over the traces signal, takes its place
    (:mod:`.window`)."""
    when = failure.time_unix_nano
    return record.trace_id, _new(
        SpanFacts, (record.span_id, b"", when, when, 0, service, (failure_event(failure),), LOGGED)
    )


def status_code(status: bytes) -> int:
    """``Status.code`` of a serialized ``Status``: empty is UNSET, ``0x18 <code>`` (field
    3, what SDKs write without a message) is read directly, anything else is decoded."""
    if not status:
        return 0
    if len(status) == 2 and status[0] == _CODE_TAG:
        return status[1]
    try:
        return int(_StatusFrame.FromString(status).code)
    except DecodeError:
        return 0


def add_wanted(
    items: Sequence[bytes], wanted: Container[bytes], service: str, found: list[TracedSpan]
) -> None:
    """Append to ``found`` the facts of the serialized spans in ``items`` whose span id
    is in ``wanted`` (a span that does not decode is skipped: the next hop validates
    it)."""
    if not any(map(wanted.__contains__, map(_SPAN_ID, items))):
        return
    for raw in items:
        if raw[20:28] in wanted:
            try:
                span = SpanFrame.FromString(raw)
            except DecodeError:
                continue
            if span.span_id in wanted:
                found.append(facts_of(span, service, ()))
