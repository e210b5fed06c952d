"""Failure text built to make regular expressions backtrack costs linear time everywhere.

Redaction runs on every failure the SDK emits and every group the processor
stores (on its single writer thread); message parameterization and stack-trace
parsing run for every failure from another SDK. Found by this suite: the
built-in ``key=value`` redaction rule was cubic (``"token" * 400`` took 9 s,
an 8 KiB message minutes) and the URL rule quadratic.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from faultlens._parameterize import parameterize
from faultlens._redact import REDACTED, Redactor
from faultlens_collector.ingest.fingerprint import compute_fingerprint
from faultlens_collector.ingest.stacktrace import parse_frames

from tests.reliability.hostile import SECRETS, repeated_texts

#: 64 KiB: twice the longest stack trace the SDK sends, 8x the longest message stored.
SIZE = 64 * 1024
#: Linear passes over 64 KiB take a few milliseconds; a quadratic one takes seconds.
LIMIT_SECONDS = 0.25


def _worst(function: Callable[[str], object]) -> tuple[float, str]:
    worst = (0.0, "")
    for label, text in repeated_texts(SIZE):
        started = time.perf_counter()
        function(text)
        worst = max(worst, (time.perf_counter() - started, label))
    return worst


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("redact", Redactor().redact),
        ("parameterize", parameterize),
        ("parse_frames", parse_frames),
        ("fingerprint by trace", lambda text: compute_fingerprint("E", text, "")),
        ("fingerprint by message", lambda text: compute_fingerprint("E", "", text)),
    ],
)
def test_hostile_text_costs_linear_time(name: str, function: Callable[[str], object]) -> None:
    seconds, label = _worst(function)
    print(f"\n{name}: worst {seconds * 1000:.1f} ms on 64 KiB of {label}")
    assert seconds < LIMIT_SECONDS, (name, label, seconds)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x=token=abc", f"x=token={REDACTED}"),
        ("a=1 b: 2, password=hunter2", f"a=1 b: 2, password={REDACTED}"),
        ("token token token=abc", f"token token token={REDACTED}"),
        ("tokentoken=abc", f"tokentoken={REDACTED}"),
        ("see x_https://u:pw@h/x", f"see x_https://u:{REDACTED}@h/x"),
        ("a.b.https://u:pw@h", f"a.b.https://u:{REDACTED}@h"),
        ('"token" : "a b"', f'"token" : {REDACTED}'),
        ("token=", "token="),
    ],
)
def test_linear_redaction_keeps_what_the_rules_meant(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


def test_every_hostile_secret_sample_is_redacted() -> None:
    redactor = Redactor()
    for text, secret in SECRETS:
        assert secret not in redactor.redact(text), text
