"""Rules compiled for evaluation on the processor's ingest path.

:class:`Matcher` turns a :class:`~faultlens_collector.actions.config.MatchConfig`
into one predicate with every regular expression and glob compiled up front.
:class:`RuleSet` indexes its rules by their most selective exact criterion
(fingerprint, exception type, service, category, severity, span name), so a
failure is checked only against the rules that can match it plus the few that
have no exact criterion — the cost grows with the candidates, not with the
number of rules — and remembers the answer for a group seen again. Results come
back in configuration order.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Container, Iterable, Sequence
from operator import attrgetter
from typing import Final, Generic, TypeVar

from faultlens import semconv

from faultlens_collector.actions.config import MatchConfig
from faultlens_collector.actions.facts import FailureFacts, attribute_text, value_getter

R = TypeVar("R")
Predicate = Callable[[FailureFacts], bool]

_GLOB_CHARS: Final = frozenset("*?[")


class _Names:
    """Exact names plus globs, compiled into one set and one regular expression."""

    __slots__ = ("exact", "pattern")

    def __init__(self, names: Iterable[str]) -> None:
        exact = {name for name in names if not _GLOB_CHARS & set(name)}
        globs = [name for name in names if _GLOB_CHARS & set(name)]
        self.exact = frozenset(exact)
        self.pattern = re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None

    @property
    def only_exact(self) -> bool:
        return self.pattern is None

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name in self.exact or (
            self.pattern is not None and self.pattern.match(name) is not None
        )


class Matcher:
    """One compiled :class:`MatchConfig`: ``matcher(facts)`` is True when every criterion holds."""

    __slots__ = ("_checks", "config")

    def __init__(self, config: MatchConfig) -> None:
        self.config = config
        checks: list[Predicate] = []
        criteria: tuple[tuple[str, Container[str] | None], ...] = (
            ("fingerprint", config.fingerprints),
            ("category", config.categories),
            ("severity", _severities_from(config.min_severity)),
            ("service", config.services),
            ("exception_type", _names(config.exception_types)),
            ("span_name", _names(config.span_names)),
            ("status", config.statuses),
        )
        for field_name, allowed in criteria:
            if allowed is not None:
                checks.append(_member_check(attrgetter(field_name), allowed))
        if config.handled is not None:
            handled = config.handled
            checks.append(lambda facts: facts.handled is handled)
        for name, values in config.attributes.items():
            checks.append(_attribute_check(name, _Names(values)))
        if config.message is not None:  # the costliest check goes last
            search = re.compile(config.message).search
            checks.append(lambda facts: search(facts.message) is not None)
        self._checks: tuple[Predicate, ...] = tuple(checks)

    @property
    def matches_everything(self) -> bool:
        return not self._checks

    def __call__(self, facts: FailureFacts) -> bool:
        # A plain loop: all() over a generator costs twice as much on this path.
        for check in self._checks:  # noqa: SIM110
            if not check(facts):
                return False
        return True


def _severities_from(minimum: str | None) -> frozenset[str] | None:
    """The severities at least ``minimum`` (None: no criterion)."""
    if minimum is None:
        return None
    rank = semconv.SEVERITY_RANK[minimum]
    return frozenset(name for name in semconv.SEVERITIES if semconv.SEVERITY_RANK[name] >= rank)


def _names(names: tuple[str, ...] | None) -> _Names | None:
    return None if names is None else _Names(names)


def _member_check(get: Callable[[FailureFacts], str], allowed: Container[str]) -> Predicate:
    return lambda facts: get(facts) in allowed


def _attribute_check(name: str, values: _Names) -> Predicate:
    get = value_getter(name)

    def check(facts: FailureFacts) -> bool:
        value = get(facts)
        if value is None:
            return False
        if isinstance(value, (str, bool, int, float)):
            return attribute_text(value) in values
        return any(
            isinstance(item, (str, bool, int, float)) and attribute_text(item) in values
            for item in value
        )

    return check


#: Index fields in order of preference: (facts attribute, how a config gives exact values).
_INDEXES: Final[tuple[tuple[str, Callable[[MatchConfig], frozenset[str] | None]], ...]] = (
    ("fingerprint", lambda config: config.fingerprints),
    ("exception_type", lambda config: _exact(config.exception_types)),
    ("service", lambda config: config.services),
    ("category", lambda config: config.categories),
    (
        "severity",
        lambda config: (
            None if config.min_severity is None else _severities_from(config.min_severity)
        ),
    ),
    ("span_name", lambda config: _exact(config.span_names)),
)


def _exact(names: tuple[str, ...] | None) -> frozenset[str] | None:
    if names is None or not _Names(names).only_exact:
        return None
    return frozenset(names)


#: FailureFacts fields a MatchConfig criterion reads (``attributes`` aside).
_CRITERION_FIELDS: Final[tuple[tuple[str, Callable[[MatchConfig], object]], ...]] = (
    ("fingerprint", lambda config: config.fingerprints),
    ("exception_type", lambda config: config.exception_types),
    ("message", lambda config: config.message),
    ("category", lambda config: config.categories),
    ("severity", lambda config: config.min_severity),
    ("service", lambda config: config.services),
    ("span_name", lambda config: config.span_names),
    ("handled", lambda config: config.handled),
    ("status", lambda config: config.statuses),
)

#: Results remembered per distinct combination of the fields rules read.
MEMO_SIZE: Final = 65_536


class _Index:
    """Rules by their most selective exact criterion, plus those without one."""

    def __init__(self, configs: Sequence[tuple[int, MatchConfig]]) -> None:
        indexes: dict[str, dict[str, list[int]]] = {}
        always: list[int] = []
        for position, config in configs:
            for field_name, exact_values in _INDEXES:
                values = exact_values(config)
                if values is not None:
                    buckets = indexes.setdefault(field_name, {})
                    for value in values:
                        buckets.setdefault(value, []).append(position)
                    break
            else:
                always.append(position)
        self.always: tuple[int, ...] = tuple(always)
        self.indexes: tuple[tuple[Callable[[FailureFacts], str], dict[str, tuple[int, ...]]], ...]
        self.indexes = tuple(
            (attrgetter(field_name), {value: tuple(found) for value, found in buckets.items()})
            for field_name, buckets in indexes.items()
        )

    def candidates(self, facts: FailureFacts) -> list[int]:
        """Positions of the rules that may match, in rule order."""
        candidates = list(self.always)
        for get, buckets in self.indexes:
            found = buckets.get(get(facts))
            if found:
                candidates.extend(found)
        if len(candidates) > 1:
            candidates.sort()
        return candidates


class RuleSet(Generic[R]):
    """An ordered list of ``(MatchConfig, payload)``; :meth:`matches` returns the
    payloads of every rule a failure matches, in the order given.

    Results are remembered (up to :data:`MEMO_SIZE` combinations, then forgotten
    wholesale) by the values of the fields the rules read, so a group seen again
    costs one tuple and one dict lookup. Rules with ``attributes`` criteria read
    per-occurrence data and are evaluated every time.
    """

    def __init__(self, rules: Sequence[tuple[MatchConfig, R]]) -> None:
        self._payloads: tuple[R, ...] = tuple(payload for _, payload in rules)
        self._matchers: tuple[Matcher, ...] = tuple(Matcher(config) for config, _ in rules)
        stable = [(i, config) for i, (config, _) in enumerate(rules) if not config.attributes]
        volatile = [(i, config) for i, (config, _) in enumerate(rules) if config.attributes]
        self._stable = _Index(stable)
        self._volatile = _Index(volatile) if volatile else None
        fields = [
            name
            for name, read in _CRITERION_FIELDS
            if any(read(config) is not None for _, config in stable)
        ]
        self._memo_key: Callable[[FailureFacts], object] = (
            attrgetter(*fields) if fields else (lambda facts: None)
        )
        self._memo: dict[object, tuple[int, ...]] = {}

    def __len__(self) -> int:
        return len(self._payloads)

    def matches(self, facts: FailureFacts) -> tuple[R, ...]:
        """The payloads of the rules ``facts`` matches, in rule order (empty if none)."""
        key = self._memo_key(facts)
        found = self._memo.get(key)
        if found is None:
            found = self._evaluate(self._stable, facts)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = found
        if self._volatile is not None:
            found = tuple(sorted((*found, *self._evaluate(self._volatile, facts))))
        if not found:
            return ()
        payloads = self._payloads
        return tuple(payloads[i] for i in found)

    def _evaluate(self, index: _Index, facts: FailureFacts) -> tuple[int, ...]:
        matchers = self._matchers
        return tuple(i for i in index.candidates(facts) if matchers[i](facts))
