"""Message parameterization and secret redaction."""

from __future__ import annotations

import re

import faultlens
import pytest
from faultlens._parameterize import MAX_MESSAGE_CHARS, parameterize
from faultlens._redact import REDACTED, Redactor


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Timeout after 30s connecting to 10.0.0.7:5432"
            " (request 8f14e45f-ceea-467a-9af0-0123456789ab)",
            "Timeout after <duration> connecting to <ip> (request <uuid>)",
        ),
        ("user bob@example.com not found", "user <email> not found"),
        ("GET https://api.example.com/v1/users?id=3 failed", "GET <url> failed"),
        ("KeyError: 'user_id'", "KeyError: <str>"),
        ('missing "tax_region"', "missing <str>"),
        ("cannot open /var/lib/app/data.csv", "cannot open <path>"),
        ("cannot open C:\\data\\x.csv", "cannot open <path>"),
        ("at 2024-03-01T12:00:00Z and 2024-03-01 12:00:00.123", "at <timestamp> and <timestamp>"),
        ("at 12:30:45", "at <timestamp>"),
        ("object at 0x7f3a2b4c5d60", "object at <hex>"),
        ("commit deadbeef12 broke it", "commit <hex> broke it"),
        ("connect to db-3.prod.internal:5432 refused", "connect to <host> refused"),
        ("peer [::1]:8080 and fe80::1ff:fe23:4567:890a", "peer <ip> and <ip>"),
        ("got 42 items, expected 7.5", "got <num> items, expected <num>"),
        ("worker-17 died after 300ms", "worker-<num> died after <duration>"),
        ("context deadline exceeded after 1m30s", "context deadline exceeded after <duration>"),
        (
            "took 1h2m3.5s, limit PT30S, retention P1DT12H",
            "took <duration>, limit <duration>, retention <duration>",
        ),
        ("expires 01/03/2024 or 1.3.2024, 12:00", "expires <timestamp> or <timestamp>"),
        ("at Mon, 01 Mar 2024 12:00:00 GMT", "at <timestamp>"),
        ("due Tuesday, March 5th, 2024 and 5 May 2023", "due <timestamp> and <timestamp>"),
        (
            "column `total` and \u201cAlice\u201d and \u2018x\u2019",
            "column <str> and <str> and <str>",
        ),
        (
            "May I help? PTSD is no duration, P5 no period",
            "May I help? PTSD is no duration, P5 no period",
        ),
        ("module.attribute has no len()", "module.attribute has no len()"),
        ("std::vector overflow", "std::vector overflow"),
    ],
)
def test_parameterize(message: str, expected: str) -> None:
    assert parameterize(message) == expected
    assert parameterize(expected) == expected  # idempotent


def test_parameterize_bounds_its_input() -> None:
    assert len(parameterize("a" * (MAX_MESSAGE_CHARS * 10))) == MAX_MESSAGE_CHARS


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("login failed password=hunter2 for bob", f"login failed password={REDACTED} for bob"),
        ("db_password: s3cr3t, next", f"db_password: {REDACTED}, next"),
        ('{"api_key": "abc123", "x": 1}', f'{{"api_key": {REDACTED}, "x": 1}}'),
        ("token=abc&next=1", f"token={REDACTED}&next=1"),
        ("X-Auth-Token: zzz", f"X-Auth-Token: {REDACTED}"),
        ("Authorization: Bearer eyJhbGciOi.abc.def", f"Authorization: Bearer {REDACTED}"),
        ("Authorization: Basic dXNlcjpwYXNz", f"Authorization: Basic {REDACTED}"),
        ("postgres://app:pa55w0rd@db:5432/x", f"postgres://app:{REDACTED}@db:5432/x"),
        ("key AKIAIOSFODNN7EXAMPLE leaked", f"key {REDACTED} leaked"),
        ("password = 'hunter2'", f"password = {REDACTED}"),
        ("author=John apikeys are fine to mention", "author=John apikeys are fine to mention"),
    ],
)
def test_builtin_redaction(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


def test_redaction_is_idempotent() -> None:
    redactor = Redactor()
    once = redactor.redact("password=hunter2 token=abc")
    assert redactor.redact(once) == once


def test_user_patterns_with_back_references() -> None:
    redactor = Redactor(builtin=False)
    redactor.add(r"(card=)\d{12}(\d{4})", r"\1************\2")
    assert redactor.redact("card=123456789012345 ok") == "card=123456789012345 ok"
    assert redactor.redact("card=1234567890123456") == "card=************3456"


def test_invalid_user_pattern_fails_at_once() -> None:
    with pytest.raises(re.error):
        Redactor().add("(unclosed")
    with pytest.raises(re.error):
        Redactor().add("(ok)", r"\2")


def test_secrets_never_leave_the_process(telemetry) -> None:
    faultlens.add_redaction(r"ssn \d{3}-\d{2}-\d{4}", "ssn [SSN]")

    def connect() -> None:
        password = "hunter2"
        raise ConnectionError(f"postgres://app:{password}@db/x refused; ssn 123-45-6789")

    def login() -> None:
        raise PermissionError("login failed password=hunter2")  # the source line is in the trace

    for func in (connect, login):
        try:
            func()
        except OSError as exc:
            faultlens.record_failure(exc)
    events = telemetry.failure_events()
    assert len(events) == 2
    for event in events:
        assert "hunter2" not in event["exception.message"]
        assert "hunter2" not in event["exception.stacktrace"]
    assert "123-45-6789" not in events[0]["exception.message"]
    assert "ssn [SSN]" in events[0]["exception.message"]
    assert f'password={REDACTED}")' in events[1]["exception.stacktrace"]


def test_redaction_can_be_switched_off(telemetry) -> None:
    faultlens.configure(redact=False)
    faultlens.record_failure(ValueError("token=abc"))
    assert telemetry.only_failure()["exception.message"] == "token=abc"
