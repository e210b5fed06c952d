"""Hostile text: inputs built to make regular expressions backtrack, injections, secrets.

Shared by the reliability tests and ``benchmarks/soak.py``. Every text
processor in faultlens that sees failure text (redaction, message
parameterization, stack-trace parsing) must stay linear in its input for all
of these; a quadratic or worse pattern turns one failure into a stalled writer
or a frozen application.
"""

from __future__ import annotations

from collections.abc import Iterator

#: Short units repeated to fill a text: each is the start of something a pattern
#: looks for (a secret key, a URL scheme, a token shape, a quote, a frame line).
UNITS: tuple[str, ...] = (
    "token",
    "password",
    "a.",
    "a-",
    "a:",
    "a://",
    "://",
    "a:b@",
    "x://a:b",
    "bearer ",
    "bearer a",
    "eyJaaaaa.",
    "ghp_",
    "xoxa-",
    "AKIA",
    "password=",
    "token:",
    '"token"',
    'token="',
    "token='",
    "token ",
    "a=",
    "=",
    ": ",
    "'",
    '"',
    "`",
    "-1",
    "1.",
    "0x",
    "12:00 ",
    "May ",
    "P1D",
    "/lib/python3/",
    "a/",
    'File "',
    'File "a", line 1, in ',
    "at a(",
    "at a.b(c:1)\n",
    "    at f (a.js:1:1)\n",
    "\tx:1 +0x1\n",
    "goroutine 1 [",
    "a@b:1:1\n",
)
PREFIXES: tuple[str, ...] = ("", "token", "x://")

#: Failure messages crafted as shell or SQL injection: stored and handed on verbatim.
INJECTIONS: tuple[str, ...] = (
    "'; DROP TABLE failure_groups; --",
    '"; DELETE FROM faultlens_schema; --',
    "$(touch /tmp/faultlens-pwned)",
    "`touch /tmp/faultlens-pwned`",
    "; touch /tmp/faultlens-pwned #",
    "| touch /tmp/faultlens-pwned",
    "${IFS}touch${IFS}/tmp/faultlens-pwned",
    "%s%s%s%n {0.__class__} {{7*7}}",
    "\x1b[2J\x1b[31mred\x1b[0m and a bell \x07",
    "line one\nline two\r\nFAULTLENS_FAILURE_TYPE=forged",
)

#: (text with a secret, the secret) pairs the built-in redaction must remove.
SECRETS: tuple[tuple[str, str], ...] = (
    ("login failed password=hunter2-pw for bob", "hunter2-pw"),
    ("connect postgres://app:s3cr3t-url@db:5432/orders refused", "s3cr3t-url"),
    ("upstream said 401 to Authorization: Bearer abcdefTOKEN123", "abcdefTOKEN123"),
    ('config {"api_key": "k-98765-secret"} rejected', "k-98765-secret"),
    ("X-Auth-Token: tok_live_4242 expired", "tok_live_4242"),
)


def repeated_texts(size: int) -> Iterator[tuple[str, str]]:
    """(label, text) for every prefix and unit: the unit repeated to about ``size`` chars."""
    for prefix in PREFIXES:
        for unit in UNITS:
            yield f"{prefix!r}+{unit!r}*", prefix + unit * max(1, size // len(unit))
