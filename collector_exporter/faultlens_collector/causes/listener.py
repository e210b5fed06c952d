"""Root-cause linking as a processor listener (:class:`RootCauseListener`).

What it asks ingest for (:class:`~faultlens_collector.processor.listeners.Interest`):
the span-tree facts of every span with failures, and of the spans without failures
its window wants (:mod:`.spans`, :mod:`.window`). What it does with them:

* ``on_spans`` — hold them in the :class:`~.window.TraceWindow` (a lock and a few
  dictionary operations per span: the ingest thread does nothing more);
* ``on_commit`` — for each group a commit *created* from an occurrence with a trace
  context, hold its ``new_failure`` alert until that trace is decided
  (:mod:`.alerting`; only with an alert sink);
* a thread of its own, every :attr:`RootCauseSettings.tick_seconds`, decides the
  traces that settled, adds their links to the :class:`~.store.LinkStore` in one
  transaction (a batch that cannot commit — a full disk — is kept and added to the
  next: links are never counted twice nor lost while the processor runs) and tells
  the alert logic;
* ``shutdown`` — decides every trace still held, stores their links, sends the
  alerts still held.

So a link is durable a tick after its trace settled. A processor killed outright
loses the traces it was holding (their links are never counted).

**Under load.** Following a trace costs a few microseconds per span with failures on
the ingest threads. Within :attr:`RootCauseSettings.budget` spans with failures per
second (default 1,000) every trace is followed; beyond, one trace in 2, 4, … (the
smallest power of two that brings the followed spans within the budget, decided per
second and halved at once within a burst), chosen by the first byte of the trace id
(:class:`~.spans.SpanTrees`), and each decision counts for as many traces: link
counts are then estimates — unbiased, each within a few percent once a link was seen
in a few hundred traces.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from faultlens_collector.causes.alerting import ALERT_WINDOW_SECONDS, AlertSink, CascadeAlerts
from faultlens_collector.causes.links import LinkChange, changes
from faultlens_collector.causes.spans import EVERY_TRACE, SpanTrees, TracedSpan
from faultlens_collector.causes.store import LinkStore
from faultlens_collector.causes.window import Decision, TraceWindow, WindowSettings
from faultlens_collector.groups.model import Change
from faultlens_collector.processor.listeners import Interest, Listener

_log = logging.getLogger(__name__)
#: Default :attr:`RootCauseSettings.budget`.
BUDGET: Final = 1_000


@dataclass(frozen=True, slots=True)
class RootCauseSettings:
    """How traces are held (``window``) and how long a root's ``cascade`` alert covers
    new symptoms (``alert_window_seconds``)."""

    window: WindowSettings = field(default_factory=WindowSettings)
    alert_window_seconds: float = ALERT_WINDOW_SECONDS
    #: How often settled traces are decided and their links stored (seconds).
    tick_seconds: float = 0.5
    #: Spans with failures per second followed in every trace; beyond, a sample of the
    #: traces is followed (see the module docstring).
    budget: int = BUDGET


class RootCauseListener(Listener):
    """Links failure groups across services (see the module docstring).

    ``alerts`` (the action engine's side of :class:`~.alerting.AlertSink`) makes new
    groups alert once per cascade; without it no alert is held. ``on_decision`` is
    told about every decision reported (benchmarks and tests score them).
    """

    def __init__(
        self,
        links: LinkStore,
        settings: RootCauseSettings | None = None,
        *,
        alerts: AlertSink | None = None,
        on_decision: Callable[[Sequence[Decision]], None] | None = None,
    ) -> None:
        self.settings = settings or RootCauseSettings()
        self.links = links
        self.window = TraceWindow(self.settings.window)
        self.alerts = (
            CascadeAlerts(
                self.window, alerts, alert_window_seconds=self.settings.alert_window_seconds
            )
            if alerts is not None
            else None
        )
        #: Told about every decision reported (benchmarks and tests score them).
        self.on_decision = on_decision
        self._pending: dict[tuple[str, str], LinkChange] = {}
        self._lock = threading.Lock()  # one decider at a time (the thread, shutdown)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.trees = SpanTrees(self.window.wanted(), self.settings.budget)
        self._interest = Interest(span_trees=self.trees)

    @property
    def interest(self) -> Interest:
        """The span-tree facts of failing spans and of the spans the window wants."""
        return self._interest

    def start(self) -> None:
        """Start deciding settled traces in the background."""
        self._thread = threading.Thread(target=self._run, name="faultlens-links", daemon=True)
        self._thread.start()

    def on_spans(self, spans: Sequence[TracedSpan]) -> None:
        self.window.weight = self.trees.weight
        self.window.add_many(spans)

    def on_commit(self, changes: Sequence[Change]) -> None:
        """Hold the ``new_failure`` alert of each group created from an occurrence with a
        trace context."""
        alerts = self.alerts
        if alerts is None:
            return
        for change in changes:
            if not change.created:
                continue
            for occurrence in change.batch or (change.last,):
                if occurrence.trace_id:
                    alerts.hold(change.group.fingerprint, bytes.fromhex(occurrence.trace_id))
                    break

    def held(self, fingerprint: str) -> bool:
        """Whether the ``new_failure`` alert of this group is being held."""
        return self.alerts is not None and self.alerts.held(fingerprint)

    def decide(self, *, everything: bool = False) -> list[Decision]:
        """Decide what settled (``everything``: all held traces), store the links and
        tell the alert logic; returns the decisions. Never raises."""
        with self._lock:
            try:
                decisions = self.window.collect(everything=everything)
            except Exception:
                _log.exception("faultlens: could not decide the traces held for linking")
                return []
            self._store(decisions)
            if self.alerts is not None:
                _guarded(self.alerts.on_decisions, decisions, "send the cascade alerts")
            if self.on_decision is not None and decisions:
                _guarded(self.on_decision, decisions, "report decisions")
            return decisions

    @property
    def followed(self) -> float:
        """The share of traces followed (1.0 within the budget)."""
        return self.trees.keep / EVERY_TRACE

    def _store(self, decisions: Sequence[Decision]) -> None:
        pending = self._pending
        for key, change in changes(decisions).items():
            kept = pending.get(key)
            if kept is None:
                pending[key] = change
                continue
            kept.traces += change.traces
            kept.occurrences += change.occurrences
            if change.first_seen and (not kept.first_seen or change.first_seen < kept.first_seen):
                kept.first_seen = change.first_seen
            kept.last_seen = max(kept.last_seen, change.last_seen)
        if not pending:
            return
        try:
            self.links.apply(pending)
        except Exception as exc:
            _log.warning("faultlens: links not stored yet (%s); retrying", exc)
            return
        self._pending = {}

    def _run(self) -> None:
        while not self._stopping.wait(self.settings.tick_seconds):
            self.decide()

    def shutdown(self) -> None:
        """Stop the thread, decide every trace still held, store and alert."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.decide(everything=True)


def _guarded(
    call: Callable[[Sequence[Decision]], None], decisions: Sequence[Decision], what: str
) -> None:
    try:
        call(decisions)
    except Exception:
        _log.exception("faultlens: could not %s", what)
