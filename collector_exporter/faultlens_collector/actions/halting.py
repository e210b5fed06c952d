"""Halt rules: stop a key (a service, a span, any attribute) after repeated failures.

Each halt rule counts, per key, the failures that match it:

* ``consecutive = N`` — N failures in a row. A *success* for the key resets the
  count (:meth:`HaltEngine.on_success`), and so does a quiet period: with
  ``reset_window`` (default 5 minutes) a failure more than that long after the
  key's previous one starts the count afresh. The faultlens exporter forwards
  only spans that carry failures, so successes reach the processor only from
  applications that also send it their other spans; without them, the quiet
  period is what ends a streak.
* ``count = N`` and ``window = <duration>`` — N failures within the window
  (a sliding window over the last N failure times); successes play no part.

A failure aggregated by the SDK (``failure.count`` > 1) counts as that many.
A failure that lacks one of the key's fields does not count for that rule.

At the threshold the key is halted: a :class:`HaltRecord` (key, rule, reason,
since, the fingerprints that tripped it) is saved to the store, the change is
published on :attr:`HaltEngine.broadcast`, and the caller runs the halt hooks and
sends the ``halt`` alert. Further failures of a halted key are not counted. A
halt is lifted only by :meth:`HaltEngine.resume` — never by a success and never
by time — and halts are read back from the store at start, so they survive
restarts.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from faultlens.shared import Key, KeyValue, Redactor, covers, make_key
from opentelemetry.util.types import AttributeValue

from faultlens_collector.actions.broadcast import Broadcast, Subscription
from faultlens_collector.actions.config import HaltRuleConfig
from faultlens_collector.actions.facts import FailureFacts, value_getter
from faultlens_collector.actions.matching import Matcher
from faultlens_collector.actions.records import HaltRecord, new_id
from faultlens_collector.actions.store import HaltStore

_MAX_FINGERPRINTS: Final = 10


@dataclass(frozen=True, slots=True)
class HaltChange:
    """One message of the halt broadcast.

    ``snapshot``: every active halt (the first message of a subscription, and the
    answer to an overflow); ``halted`` / ``resumed``: the halts that changed.
    ``version`` increases with every change.
    """

    kind: Literal["snapshot", "halted", "resumed"]
    version: int
    halts: tuple[HaltRecord, ...]


class _Streak:
    __slots__ = ("count", "fingerprints", "last_at", "times")

    def __init__(self, threshold: int) -> None:
        self.count = 0
        self.last_at: float | None = None
        self.times: deque[float] = deque(maxlen=threshold)
        self.fingerprints: deque[str] = deque(maxlen=_MAX_FINGERPRINTS)


class _RuleCounter:
    """One halt rule compiled, with its streaks per key and the keys it holds halted."""

    __slots__ = ("config", "fields", "getters", "halted", "matcher", "max_keys", "streaks")

    def __init__(self, config: HaltRuleConfig, max_keys: int) -> None:
        self.config = config
        self.fields = tuple(sorted(set(config.key)))
        self.getters = tuple((name, value_getter(name)) for name in self.fields)
        matcher = Matcher(config.match)
        self.matcher = None if matcher.matches_everything else matcher
        self.max_keys = max_keys
        self.streaks: dict[Key, _Streak] = {}
        #: Keys this rule holds halted; replaced (never mutated) under the broadcast's lock.
        self.halted: frozenset[Key] = frozenset()

    def key_of(self, facts: FailureFacts) -> Key | None:
        """The key ``facts`` belongs to (fields sorted by name), or None if one is missing."""
        items = []
        for name, get in self.getters:
            value = get(facts)
            if value is None or not isinstance(value, (str, bool, int, float)):
                return None
            items.append((name, value))
        return tuple(items)

    def count(self, key: Key, facts: FailureFacts, occurrences: int, now: float) -> str | None:
        """Add the failures to the key's streak; the halt reason if it trips (the streak
        is then forgotten)."""
        rule = self.config
        streak = self.streaks.get(key)
        if streak is None:
            if len(self.streaks) >= self.max_keys:
                del self.streaks[next(iter(self.streaks))]
            streak = self.streaks[key] = _Streak(rule.threshold)
        if not streak.fingerprints or streak.fingerprints[-1] != facts.fingerprint:
            streak.fingerprints.append(facts.fingerprint)
        if rule.mode == "consecutive":
            last = streak.last_at
            if (
                rule.reset_window is not None
                and last is not None
                and now - last > rule.reset_window
            ):
                streak.count = 0
            streak.count += max(occurrences, 1)
            streak.last_at = now
            if streak.count < rule.threshold:
                return None
            reason = f"{streak.count} consecutive failures"
        else:
            times = streak.times
            if occurrences <= 1:
                times.append(now)
            else:
                times.extend([now] * min(occurrences, rule.threshold))
            assert rule.window is not None
            if len(times) < rule.threshold or now - times[0] > rule.window:
                return None
            reason = f"{rule.threshold} failures within {rule.window:g} s"
        return reason

    def success(self, attributes: Mapping[str, AttributeValue]) -> None:
        """Forget the streak of the key ``attributes`` give (if they give one)."""
        items = []
        for name in self.fields:
            value = attributes.get(name)
            if not isinstance(value, (str, bool, int, float)):
                return
            items.append((name, value))
        self.streaks.pop(tuple(items), None)


class HaltEngine:
    """Counts failures per halt rule and key; holds the halts in force."""

    def __init__(
        self,
        rules: Sequence[HaltRuleConfig],
        store: HaltStore,
        *,
        max_keys: int = 100_000,
        redactor: Redactor | None = None,
    ) -> None:
        self._rules = tuple(_RuleCounter(rule, max_keys) for rule in rules)
        self._by_name = {rule.config.name: rule for rule in self._rules}
        self._consecutive = tuple(r for r in self._rules if r.config.mode == "consecutive")
        self._store = store
        self._redactor = redactor or Redactor()
        self._lock = threading.Lock()
        self._active: dict[str, HaltRecord] = {}
        self._version = 0
        self.broadcast: Broadcast[HaltChange] = Broadcast(snapshot=self._snapshot)

    def load(self) -> None:
        """Read the active halts from the store."""
        halts = self._store.active_halts()
        with self.broadcast.locked():
            self._active = {halt.id: halt for halt in halts}
            self._refresh_halted()

    def _snapshot(self) -> HaltChange:
        # Runs with the broadcast's lock held, which guards _active and _version.
        return HaltChange("snapshot", self._version, tuple(self._active.values()))

    def subscribe(self) -> Subscription[HaltChange]:
        """Follow halts: a snapshot first, then every change."""
        return self.broadcast.subscribe()

    def active(self) -> list[HaltRecord]:
        with self.broadcast.locked():
            return sorted(self._active.values(), key=lambda halt: halt.since)

    def halt_for(self, key: Mapping[str, KeyValue]) -> HaltRecord | None:
        """The oldest active halt that covers ``key`` (a halt on ``{service.name: a}``
        covers ``{service.name: a, span.name: b}``), or None."""
        wanted = make_key(key)
        for halt in self.active():
            if covers(halt.key, wanted):
                return halt
        return None

    def on_failure(self, facts: FailureFacts, occurrences: int, now: float) -> list[HaltRecord]:
        """Count one update of ``occurrences`` failures; the halts it starts."""
        if not self._rules:
            return []
        started: list[HaltRecord] = []
        with self._lock:
            for rule in self._rules:
                key = rule.key_of(facts)
                if key is None or key in rule.halted:
                    continue
                if rule.matcher is not None and not rule.matcher(facts):
                    continue
                reason = rule.count(key, facts, occurrences, now)
                if reason is not None:
                    streak = rule.streaks.pop(key)
                    started.append(
                        HaltRecord(
                            id=new_id(),
                            rule=rule.config.name,
                            key=key,
                            reason=self._redactor.redact(
                                f"{reason} (last: {facts.summary(latest=True)})"
                            ),
                            since=now,
                            fingerprints=tuple(dict.fromkeys(streak.fingerprints)),
                        )
                    )
        saved: list[HaltRecord] = []
        for halt in started:
            in_force = self._store.start_halt(halt)
            self._publish("halted", in_force)
            if in_force.id == halt.id:
                saved.append(halt)
        return saved

    def on_success(self, attributes: Mapping[str, AttributeValue]) -> None:
        """A success for the key these attributes give: reset consecutive streaks.

        ``attributes`` are the successful span's ``service.name``, ``span.name``
        and attributes; each consecutive-mode rule whose key fields are all present
        forgets that key's streak.
        """
        with self._lock:
            for rule in self._consecutive:
                rule.success(attributes)

    def halt(
        self, key: Mapping[str, KeyValue], reason: str, *, now: float, rule: str = "manual"
    ) -> tuple[HaltRecord, bool]:
        """Halt ``key`` by hand (an operator's halt): the halt, and whether it is new
        (False: ``rule`` already held that key, and that halt is returned)."""
        normalized = make_key(key)
        with self.broadcast.locked():
            for halt in self._active.values():
                if halt.rule == rule and halt.key == normalized:
                    return halt, False
        halt = HaltRecord(id=new_id(), rule=rule, key=normalized, reason=reason, since=now)
        in_force = self._store.start_halt(halt)
        self._publish("halted", in_force)
        return in_force, in_force.id == halt.id

    def resume(
        self,
        *,
        halt_id: str | None = None,
        key: Mapping[str, KeyValue] | None = None,
        by: str,
        now: float,
    ) -> list[HaltRecord]:
        """Lift the halt ``halt_id``, or every halt on exactly ``key``; returns them."""
        wanted = None if key is None else make_key(key)
        if halt_id is None and wanted is None:
            raise ValueError("resume needs a halt id or a key")
        self.sync()  # a halt another processor started a moment ago can be lifted here
        with self.broadcast.locked():
            chosen = [
                halt
                for halt in self._active.values()
                if (halt_id is None or halt.id == halt_id)
                and (wanted is None or halt.key == wanted)
            ]
        resumed = [replace(halt, resumed_at=now, resumed_by=by) for halt in chosen]
        for halt in resumed:
            self._store.save_halt(halt)
            rule = self._by_name.get(halt.rule)
            if rule is not None:
                with self._lock:
                    rule.streaks.pop(halt.key, None)
            self._publish("resumed", halt)
        return resumed

    def sync(self) -> tuple[list[HaltRecord], list[HaltRecord]]:
        """Read the halts in force from the store and publish what changed there (other
        processors started or lifted halts); the halts started and the halts lifted."""
        halts = {halt.id: halt for halt in self._store.active_halts()}
        with self.broadcast.locked():
            started = [halt for halt_id, halt in halts.items() if halt_id not in self._active]
            lifted = [halt for halt_id, halt in self._active.items() if halt_id not in halts]
        for halt in started:
            self._publish("halted", halt)
        for halt in lifted:
            rule = self._by_name.get(halt.rule)
            if rule is not None:
                with self._lock:
                    rule.streaks.pop(halt.key, None)
            self._publish("resumed", halt)
        return started, lifted

    def _refresh_halted(self) -> None:
        """Give each rule the keys it holds halted (the caller holds the broadcast's lock)."""
        for rule in self._rules:
            rule.halted = frozenset(
                halt.key for halt in self._active.values() if halt.rule == rule.config.name
            )

    def _publish(self, kind: Literal["halted", "resumed"], halt: HaltRecord) -> None:
        with self.broadcast.locked():
            if (kind == "halted") == (halt.id in self._active):
                return  # known already (adopted, or followed from another processor)
            if kind == "halted":
                self._active[halt.id] = halt
            else:
                self._active.pop(halt.id, None)
            self._refresh_halted()
            self._version += 1
            self.broadcast.publish_locked(HaltChange(kind, self._version, (halt,)))
