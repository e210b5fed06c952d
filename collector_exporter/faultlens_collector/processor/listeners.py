"""The listener seam: what the processor tells the components that act on failures.

Modelled on OpenTelemetry's ``SpanProcessor`` and ``SynchronousMultiSpanProcessor``:
a :class:`Listener` is handed every committed change of the failure groups, the keys
of spans that ended without failure, the span-tree facts root-cause linking reads
and every metrics request; :class:`MultiListener`
fans each call out to several listeners, in the order they were given. The action
engine's :class:`~faultlens_collector.actions.listener.ActionListener` is one; the
processor knows nothing else about rules, hooks, halts or alerts.

**What to extract.** Ingest reads only what some listener asks for
(:attr:`Listener.interest`, an :class:`Interest`): the span's and event's attributes
of each occurrence (costly: off unless asked), and the key fields of successful spans
(off unless a listener names fields). A listener's interest is read once, when the
processor starts.

**The contract** — every method:

* is called **synchronously** on a thread of the processor (``on_commit`` on the
  thread that committed the transaction, before the requests in it are acknowledged;
  ``on_success`` and ``on_metrics`` on the thread serving the request), so it **must
  not block**: queue slow work (a hook, a network call, a disk write that may wait)
  to a thread of its own;
* **must not raise**; an exception is logged and the other listeners are still
  called, but the listener missed that call;
* may be called from several threads at once (guard shared state).

**What a listener may keep.** :class:`~faultlens_collector.groups.model.Change`
objects, their ``occurrences`` and ``batch`` lists and the
:class:`~faultlens_collector.ingest.extract.Occurrence` objects are never
changed after the call and may be kept. ``Change.group`` is the store's live record
of the group: read it during the call, copy what you need, never change it — a later
commit changes it in place. Success keys and metrics requests are the listener's to
keep. :meth:`Listener.shutdown` is called once, when the processor stops, after the
last call; a listener releases its threads and resources there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.util.types import AttributeValue

from faultlens_collector.causes.spans import SpanTrees, TracedSpan
from faultlens_collector.groups.model import Change

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Interest:
    """What a listener needs ingest to read beyond the failures themselves.

    ``attributes``: occurrences carry their span's and exception event's attributes
    (``Occurrence.attributes``; empty otherwise). ``success_keys``: for spans that
    ended without failure (no ``exception`` event, status not ERROR), the values of
    these fields — ``service.name`` (the resource's), ``span.name`` or an attribute
    name —
    are handed to :meth:`Listener.on_success` once per distinct key and request;
    empty: successful spans are not read at all. ``span_trees`` (a live
    :class:`~faultlens_collector.causes.spans.SpanTrees` the listener changes as it
    goes): the span-tree facts of every span with failures (ids, parent, times, status,
    kind, service, its occurrences) and of every span it wants, in the traces it
    follows, are handed to :meth:`Listener.on_spans`; None: none are read.
    """

    attributes: bool = False
    success_keys: tuple[str, ...] = ()
    span_trees: SpanTrees | None = None

    def __or__(self, other: Interest) -> Interest:
        """What either of two listeners needs (one listener at most asks for span trees:
        the first one's are kept)."""
        return Interest(
            self.attributes or other.attributes,
            tuple(sorted({*self.success_keys, *other.success_keys})),
            self.span_trees if self.span_trees is not None else other.span_trees,
        )


class Listener(Protocol):
    """Told about committed group changes, successes and metrics (see the module
    docstring for the contract). Subclass it to inherit no-op methods."""

    @property
    def interest(self) -> Interest:
        """What ingest must read for this listener (read once, at start)."""
        return Interest()

    def on_commit(self, changes: Sequence[Change]) -> None:
        """A transaction committed these changes, one per group it touched."""
        del changes  # the defaults do nothing (a subclass inherits them)

    def on_success(self, key: Mapping[str, AttributeValue]) -> None:
        """A span ended without failure; ``key`` holds the :attr:`Interest.success_keys`
        fields it has (a field the span lacks is left out)."""
        del key

    def on_metrics(self, request: Any) -> None:
        """An ``ExportMetricsServiceRequest`` with at least one resource arrived."""
        del request

    def on_spans(self, spans: Sequence[TracedSpan]) -> None:
        """The span-tree facts of a trace request whose failures committed (only with
        :attr:`Interest.span_trees`): ``(raw trace id, facts)`` per span."""
        del spans  # a listener that asks for none is told about none

    def shutdown(self) -> None:
        """The processor stops: no call follows; release threads and resources."""


class MultiListener(Listener):
    """Calls each listener in turn, in the order given; one that raises is logged and
    does not keep the others from being called."""

    def __init__(self, listeners: Iterable[Listener] = ()) -> None:
        self.listeners: tuple[Listener, ...] = tuple(listeners)
        interest = Interest()
        for listener in self.listeners:
            interest |= listener.interest
        self._interest = interest

    @property
    def interest(self) -> Interest:
        """What any of the listeners needs."""
        return self._interest

    def on_commit(self, changes: Sequence[Change]) -> None:
        self._each("a commit", lambda listener: listener.on_commit(changes))

    def on_success(self, key: Mapping[str, AttributeValue]) -> None:
        self._each("a success", lambda listener: listener.on_success(key))

    def on_metrics(self, request: Any) -> None:
        self._each("metrics", lambda listener: listener.on_metrics(request))

    def on_spans(self, spans: Sequence[TracedSpan]) -> None:
        self._each("span trees", lambda listener: listener.on_spans(spans))

    def shutdown(self) -> None:
        """Shut every listener down, in order (one that raises does not stop the rest)."""
        self._each("shutdown", lambda listener: listener.shutdown())

    def _each(self, what: str, call: Callable[[Listener], None]) -> None:
        for listener in self.listeners:
            try:
                call(listener)
            except Exception:
                _log.exception("faultlens: listener %r failed on %s", listener, what)
