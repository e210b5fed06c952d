"""Group links: shares, who is marked whose symptom, folding (causes/links.py), and the
pattern rule (causes/patterns.py)."""

from __future__ import annotations

from faultlens_collector.causes.links import SYMPTOM_SHARE, LinkCount, assign_roots, fold, share
from faultlens_collector.causes.patterns import PATTERNS, pattern_of
from hypothesis import given
from hypothesis import strategies as st


def link(cause: str, symptom: str, occurrences: int, total: int, traces: int = 1) -> LinkCount:
    return LinkCount(cause, symptom, traces, occurrences, total)


def test_share() -> None:
    assert share(3, 4) == 0.75
    assert share(5, 4) == 1.0  # never above 1 (counts are written at different moments)
    assert share(0, 4) == 0.0
    assert share(3, 0) == 0.0
    assert share(-1, 4) == 0.0


def test_mostly_explained_by_one_cause() -> None:
    roots = assign_roots(
        [
            link("pricing", "cart", 9, 10),
            link("inventory", "cart", 1, 10),
            link("pricing", "checkout", 5, 10),  # exactly half: mostly enough
            link("pricing", "audit", 4, 10),  # less than half: not marked
        ]
    )
    assert roots == {"cart": "pricing", "checkout": "pricing"}
    assert SYMPTOM_SHARE == 0.5


def test_marks_are_one_level_deep_and_the_stronger_link_wins() -> None:
    roots = assign_roots(
        [
            link("a", "b", 10, 10, traces=10),
            link("b", "a", 9, 10, traces=9),  # each other's symptom: a → b is stronger
            link("b", "c", 10, 10),  # b is a symptom: c cannot be folded under it
            link("c", "d", 8, 10),
        ]
    )
    assert roots == {"b": "a", "d": "c"}


def test_ties_are_broken_by_traces_then_fingerprint() -> None:
    assert assign_roots([link("x", "s", 6, 10, traces=2), link("y", "s", 6, 10, traces=3)]) == {
        "s": "y"
    }
    assert assign_roots([link("y", "s", 6, 10), link("x", "s", 6, 10)]) == {"s": "x"}


def test_self_links_never_mark() -> None:
    assert assign_roots([link("a", "a", 10, 10)]) == {}


@given(
    st.lists(
        st.tuples(
            st.sampled_from("abcdef"),
            st.sampled_from("abcdef"),
            st.integers(0, 20),
            st.integers(1, 20),
        ),
        max_size=20,
    )
)
def test_marks_form_a_forest_of_depth_one(entries: list[tuple[str, str, int, int]]) -> None:
    links = [link(cause, symptom, explained, total) for cause, symptom, explained, total in entries]
    roots = assign_roots(links)
    for symptom, cause in roots.items():
        assert cause not in roots  # a root is never itself folded
        assert symptom != cause
        assert any(
            item.cause == cause and item.symptom == symptom and item.share >= SYMPTOM_SHARE
            for item in links
        )
    assert assign_roots(list(reversed(links))) == roots  # order of input does not matter


def test_fold() -> None:
    roots = {"cart": "pricing", "checkout": "pricing", "orphan": "gone"}
    order = ["checkout", "pricing", "other", "cart", "orphan"]
    assert fold(order, roots) == [
        ("pricing", ["checkout", "cart"]),
        ("other", []),
        ("orphan", []),
    ]
    assert fold([], roots) == []


def test_patterns() -> None:
    assert PATTERNS == ("cascade", "timing", "integration", "data_quality")
    assert pattern_of("timeout") == "timing"
    assert pattern_of("cancelled") == "timing"
    for category in ("attribute", "type", "import", "configuration", "connection", "dependency"):
        assert pattern_of(category) == "integration"
    for category in ("value", "validation", "lookup", "io"):
        assert pattern_of(category) == "data_quality"
    assert pattern_of("timeout", "0123456789abcdef") == "cascade"  # a symptom first
    assert pattern_of("unknown") == ""
    assert pattern_of("my-own-category") == ""
