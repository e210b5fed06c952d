"""Rule matching: every criterion, rule order, and the index agreeing with plain evaluation."""

from __future__ import annotations

from typing import Any

import pytest
from actions_support import FP, FP2, facts
from faultlens_collector.actions.config import MatchConfig, parse_config
from faultlens_collector.actions.matching import Matcher, RuleSet
from hypothesis import given, settings
from hypothesis import strategies as st


def match(**criteria: Any) -> MatchConfig:
    """A MatchConfig built the way the config file builds it."""
    data = {"rules": [{"name": "r", "alert": True, **criteria}]}
    return parse_config(data).rules[0].match


CASES = [
    ({"category": "value"}, {}, True),
    ({"category": ["io", "timeout"]}, {}, False),
    ({"category": ["io", "value"]}, {}, True),
    ({"severity": "medium"}, {}, True),
    ({"severity": "medium"}, {"severity": "critical"}, True),
    ({"severity": "high"}, {"severity": "medium"}, False),
    ({"severity": "low"}, {"severity": "bogus"}, False),
    ({"exception_type": "ValueError"}, {}, True),
    ({"exception_type": "KeyError"}, {}, False),
    ({"exception_type": "psycopg2.*"}, {"exception_type": "psycopg2.errors.Deadlock"}, True),
    ({"exception_type": "psycopg2.*"}, {"exception_type": "ValueError"}, False),
    ({"exception_type": "*Error"}, {}, True),
    ({"exception_type": "valueerror"}, {}, False),  # case matters, as in Python
    ({"service": "payments"}, {}, True),
    ({"service": ["orders"]}, {}, False),
    ({"span_name": "char?e"}, {}, True),
    ({"span_name": "refund"}, {}, False),
    ({"message": r"amount -\d+"}, {}, True),
    ({"message": "^amount"}, {}, False),  # search, anchored on purpose here
    ({"message": "AMOUNT"}, {}, False),
    ({"message": "(?i)AMOUNT"}, {}, True),
    ({"fingerprint": FP}, {}, True),
    ({"fingerprint": [FP2]}, {}, False),
    ({"handled": True}, {"handled": True}, True),
    ({"handled": True}, {"handled": None}, False),
    ({"handled": False}, {"handled": False}, True),
    ({"status": "open"}, {}, True),
    ({"status": ["dismissed"]}, {}, False),
    ({"attributes": {"db.system": "postgres"}}, {"attributes": {"db.system": "postgres"}}, True),
    ({"attributes": {"db.system": "post*"}}, {"attributes": {"db.system": "postgresql"}}, True),
    ({"attributes": {"db.system": "mysql"}}, {"attributes": {"db.system": "postgresql"}}, False),
    ({"attributes": {"db.system": "mysql"}}, {}, False),
    ({"attributes": {"retry": 3}}, {"attributes": {"retry": 3}}, True),
    ({"attributes": {"cached": True}}, {"attributes": {"cached": True}}, True),
    ({"attributes": {"tags": "b"}}, {"attributes": {"tags": ("a", "b")}}, True),
    ({"attributes": {"service.name": "payments"}}, {}, True),  # group fields by wire name
    ({"category": "value", "service": "orders"}, {}, False),  # every criterion must hold
    ({"category": "value", "service": "payments", "severity": "low"}, {}, True),
    ({}, {}, True),
]


@pytest.mark.parametrize(("criteria", "group", "expected"), CASES)
def test_each_criterion(criteria: dict[str, Any], group: dict[str, Any], expected: bool) -> None:
    config = match(**criteria)
    failure = facts(**group)
    assert Matcher(config)(failure) is expected
    # The indexed rule set agrees with the matcher.
    assert RuleSet([(config, "r")]).matches(failure) == (("r",) if expected else ())


def test_matches_come_back_in_rule_order() -> None:
    rules = RuleSet(
        [
            (match(severity="low"), "any"),
            (match(service="payments"), "payments"),
            (match(category="io"), "io"),
            (match(exception_type="ValueError"), "value-error"),
            (match(fingerprint=FP), "this-group"),
            (match(message="amount"), "amount"),
        ]
    )
    assert rules.matches(facts()) == ("any", "payments", "value-error", "this-group", "amount")
    assert rules.matches(facts(fingerprint=FP2, service="orders", message="x")) == (
        "any",
        "value-error",
    )
    assert len(rules) == 6


def test_no_rules_match_nothing() -> None:
    assert RuleSet([]).matches(facts()) == ()


# Hypothesis: the index never changes the answer of plain evaluation.
CATEGORIES = ["value", "io", "timeout"]
SERVICES = ["payments", "orders"]
TYPES = ["ValueError", "KeyError", "db.errors.Deadlock", "db.errors.Timeout"]
SPANS = ["charge", "refund", "list"]

criteria_strategy = st.fixed_dictionaries(
    {},
    optional={
        "category": st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=2),
        "severity": st.sampled_from(["low", "medium", "high", "critical"]),
        "exception_type": st.lists(
            st.sampled_from([*TYPES, "db.errors.*", "*Error"]), min_size=1, max_size=2
        ),
        "service": st.lists(st.sampled_from(SERVICES), min_size=1, max_size=2),
        "span_name": st.lists(st.sampled_from([*SPANS, "ch*"]), min_size=1, max_size=2),
        "fingerprint": st.lists(st.sampled_from([FP, FP2]), min_size=1, max_size=2),
        "message": st.sampled_from(["amount", "^x", "timeout$"]),
    },
)
group_strategy = st.fixed_dictionaries(
    {
        "fingerprint": st.sampled_from([FP, FP2]),
        "category": st.sampled_from(CATEGORIES),
        "severity": st.sampled_from(["low", "medium", "high", "critical"]),
        "exception_type": st.sampled_from(TYPES),
        "service": st.sampled_from(SERVICES),
        "span_name": st.sampled_from(SPANS),
        "message": st.sampled_from(["invalid amount", "x", "read timeout"]),
    }
)


@settings(max_examples=200, deadline=None)
@given(st.lists(criteria_strategy, max_size=12), st.lists(group_strategy, min_size=1, max_size=5))
def test_index_agrees_with_plain_evaluation(
    rules: list[dict[str, Any]], groups: list[dict[str, Any]]
) -> None:
    configs = [match(**criteria) for criteria in rules]
    rule_set = RuleSet([(config, index) for index, config in enumerate(configs)])
    for group in groups:
        failure = facts(**group)
        expected = tuple(i for i, config in enumerate(configs) if Matcher(config)(failure))
        assert rule_set.matches(failure) == expected


def test_remembered_answers_follow_the_fields_rules_read(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = RuleSet(
        [
            (match(severity="high"), "serious"),
            (match(attributes={"tenant": "acme"}), "acme"),  # per occurrence: never remembered
        ]
    )
    assert rules.matches(facts(severity="medium")) == ()
    assert rules.matches(facts(severity="high")) == ("serious",)  # recategorized group
    assert rules.matches(facts(severity="high", attributes={"tenant": "acme"})) == (
        "serious",
        "acme",
    )
    assert rules.matches(facts(severity="high", attributes={"tenant": "other"})) == ("serious",)
    monkeypatch.setattr("faultlens_collector.actions.matching.MEMO_SIZE", 4)
    for index in range(10):
        assert rules.matches(facts(fingerprint=f"{index:016x}", severity="low")) == ()
    assert len(rules._memo) <= 4
