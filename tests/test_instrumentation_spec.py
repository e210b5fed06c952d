"""FAULTLENS_INSTRUMENT parsing (docs/instrumentation.md, "Targets")."""

from __future__ import annotations

import pytest
from faultlens.instrumentation._spec import SpecError, Target, parse_entry, parse_spec


def test_every_target_form_parses() -> None:
    targets, errors = parse_spec(
        " shop.orders:charge , shop.orders:Cart.checkout,shop:Outer.Inner.m, shop.cart:Cart.*,"
        "shop.util:* ,"
    )
    assert errors == []
    assert targets == [
        Target("shop.orders", "charge"),
        Target("shop.orders", "Cart.checkout"),
        Target("shop", "Outer.Inner.m"),
        Target("shop.cart", "Cart.*"),
        Target("shop.util", "*"),
    ]
    assert targets[2].owner_path == ("Outer", "Inner")
    assert targets[2].attribute == "m"
    assert targets[3].owner_path == ("Cart",)
    assert targets[3].attribute == "*"
    assert targets[4].owner_path == ()
    assert targets[0].text == "shop.orders:charge"


def test_duplicates_and_empty_entries_are_dropped_in_order() -> None:
    targets, errors = parse_spec("a:f,,b:g, a:f ,")
    assert [t.text for t in targets] == ["a:f", "b:g"]
    assert errors == []


def test_unset_or_blank_means_no_targets() -> None:
    assert parse_spec(None) == ([], [])
    assert parse_spec("  ") == ([], [])


def test_an_iterable_of_entries_is_accepted() -> None:
    targets, _ = parse_spec(["a:f", " b:C.* "])
    assert [t.text for t in targets] == ["a:f", "b:C.*"]


@pytest.mark.parametrize(
    "entry",
    [
        "shop.orders",  # no colon
        "shop.orders:",
        ":charge",
        "shop orders:charge",
        "shop..orders:charge",
        "shop.orders:*.charge",
        "shop.orders:Cart.*.x",
        "shop.orders:Cart.",
        "shop.orders:char-ge",
        "shop.orders:**",
        "1shop:f",
    ],
)
def test_malformed_entries_are_reported_by_name(entry: str) -> None:
    result = parse_entry(entry)
    assert isinstance(result, SpecError)
    assert result.entry == entry
    targets, errors = parse_spec(f"good:f,{entry}")
    assert [t.text for t in targets] == ["good:f"]  # the others still count
    assert [e.entry for e in errors] == [entry]
