"""Alert once: new groups that are symptoms of a root do not alert on their own.

A new failure group normally sends a ``new_failure`` alert at once. With linking,
the alert of a new group first seen in a trace is **held** until that trace is
decided (:mod:`.window`: a few seconds, at most the window), and then:

* the group is a **symptom** of a root in that trace — its own alert is dropped. If
  the root already sent a ``cascade`` alert within :attr:`CascadeAlerts.alert_window`,
  nothing is sent (the operator was told); otherwise the root sends one now, naming
  the services and groups it took down in that trace;
* the group is a **root** that took others down — it sends a ``cascade`` alert
  instead of its ``new_failure`` (unless it sent one within the alert window);
* otherwise — the group's own ``new_failure`` alert is sent, late by the settle time.

A root that already alerted is remembered for the alert window (in memory: after a
restart a root may alert once more). Held alerts are sent when the processor stops
(every held trace is decided then); a processor killed outright loses the alerts it
was holding — at most those of the groups created in its last window.

The alerts themselves are built and delivered by whoever :class:`AlertSink` is (the
action engine): this module decides only which to send.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from faultlens_collector.causes.window import Decision, TraceWindow

#: Default for how long a root's ``cascade`` alert covers new symptoms (seconds).
ALERT_WINDOW_SECONDS: Final = 600.0


@dataclass(frozen=True, slots=True)
class Cascade:
    """What a root took down in one trace: the symptom groups and their services."""

    root: str
    root_service: str
    symptoms: tuple[str, ...]
    services: tuple[str, ...]
    #: The symptom groups first seen in this trace (new groups).
    new: tuple[str, ...] = ()


class AlertSink(Protocol):
    """Who sends the alerts (the action engine)."""

    def new_failure(self, fingerprint: str) -> None:
        """Send the held ``new_failure`` alert of this group."""

    def cascade(self, cascade: Cascade) -> None:
        """Send a ``cascade`` alert for ``cascade.root``."""

    def drop(self, fingerprint: str) -> None:
        """Forget the held ``new_failure`` alert of ``fingerprint``: a symptom, or a root
        whose ``cascade`` alert replaces it."""


class CascadeAlerts:
    """Holds new groups' alerts until their trace is decided (see the module docstring)."""

    def __init__(
        self,
        window: TraceWindow,
        sink: AlertSink,
        *,
        alert_window_seconds: float = ALERT_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window
        self._sink = sink
        self.alert_window = alert_window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, bytes] = {}  # fingerprint → the trace it waits for
        self._alerted: dict[str, float] = {}  # root → when its cascade alert went out

    def hold(self, fingerprint: str, trace_id: bytes) -> None:
        """Hold the ``new_failure`` alert of a group just created by an occurrence in
        ``trace_id`` (raw 16 bytes) until the trace is decided."""
        with self._lock:
            self._held[fingerprint] = trace_id
        self._window.watch(trace_id, fingerprint)

    def held(self, fingerprint: str) -> bool:
        """Whether this group's ``new_failure`` alert is being held."""
        return fingerprint in self._held

    def on_decisions(self, decisions: Sequence[Decision]) -> None:
        """Send what the decided traces call for (see the module docstring)."""
        now = self._clock()
        for decision in decisions:
            if decision.watched:
                self._decided(decision, now)
        self._forget(now)

    def _decided(self, decision: Decision, now: float) -> None:
        verdict = decision.verdict
        with self._lock:
            waiting = [
                fingerprint
                for fingerprint in decision.watched
                if self._held.get(fingerprint) == decision.trace_id
            ]
            for fingerprint in waiting:
                del self._held[fingerprint]
        if not waiting:
            return
        cascades: dict[str, Cascade] = {}
        for fingerprint in waiting:
            role = verdict.roles.get(fingerprint, "")
            roots = [fingerprint] if role == "root" else verdict.causes_of(fingerprint)
            if not roots:
                self._sink.new_failure(fingerprint)
                continue
            for root in roots:
                if root not in cascades:
                    cascades[root] = _cascade(decision, root, waiting)
        for root, cascade in cascades.items():
            alerted = self._alerted.get(root)
            if alerted is not None and now - alerted < self.alert_window:
                continue  # told already: the new symptoms stay quiet
            self._alerted[root] = now
            self._sink.cascade(cascade)
        for fingerprint in waiting:  # what a cascade alert told, or had told
            if fingerprint in cascades or verdict.causes_of(fingerprint):
                self._sink.drop(fingerprint)

    def _forget(self, now: float) -> None:
        expired = [root for root, at in self._alerted.items() if now - at >= self.alert_window]
        for root in expired:
            del self._alerted[root]


def _cascade(decision: Decision, root: str, new: Sequence[str]) -> Cascade:
    verdict = decision.verdict
    symptoms = sorted(symptom for cause, symptom in verdict.links if cause == root)
    services = sorted(
        {
            service
            for (cause, _), link in verdict.links.items()
            if cause == root
            for service in link.services
        }
    )
    return Cascade(
        root=root,
        root_service=verdict.services.get(root, ""),
        symptoms=tuple(symptoms),
        services=tuple(services),
        new=tuple(symptom for symptom in symptoms if symptom in new),
    )
