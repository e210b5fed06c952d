"""Remove secrets from failure text before it leaves the process.

Redaction runs on ``exception.message`` and ``exception.stacktrace`` of every
failure the SDK emits and on every failure the processor stores or sends on. It
never touches what the fingerprint is computed from, so turning redaction on or
off, or adding patterns, never changes a fingerprint.

Built-in patterns cover:

* ``key=value`` / ``key: value`` / ``"key": "value"`` where the key names a
  secret (``password``, ``passwd``, ``pwd``, ``secret``, ``token``,
  ``api_key``, ``apikey``, ``access_key``, ``private_key``, ``credentials``,
  also as part of a longer key such as ``db_password`` or ``X-Auth-Token``);
* ``Authorization: Bearer …`` / ``Basic …`` credentials;
* user information in URLs (``scheme://user:secret@host``);
* well-known token shapes: JSON Web Tokens, AWS access key ids, GitHub and
  Slack tokens.

Users add their own with :meth:`Redactor.add` (or
:func:`faultlens.add_redaction`).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Iterable
from typing import Final

#: What a redacted value is replaced with.
REDACTED: Final = "[REDACTED]"

_SECRET_WORD = re.compile(
    r"passw(?:or)?d|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key"
    r"|private[_\-]?key|credentials?",
    re.IGNORECASE,
)
# A key starts where a word starts (the look-behind), so each word is tried once
# and the scan stays linear in the length of the text, whatever it holds.
_KEY_AND_SEPARATOR = re.compile(r"(?<![\w.\-])(?P<key>[\"']?[\w.\-]+[\"']?)\s*[=:]\s*")
_VALUE = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|(?!\[REDACTED\])[^\s,;&'\")\]}]+")


def _redact_secret_values(text: str) -> str:
    """``key=value``, ``key: value``, ``"key": "value"`` where the key names a secret:
    the value (quoted or bare) becomes :data:`REDACTED`."""
    parts: list[str] = []
    kept = 0
    position = 0
    while (found := _KEY_AND_SEPARATOR.search(text, position)) is not None:
        position = found.end()
        if _SECRET_WORD.search(found.group("key")) is None:
            continue
        value = _VALUE.match(text, position)
        if value is None:
            continue
        parts.append(text[kept:position])
        parts.append(REDACTED)
        kept = position = value.end()
    if not parts:
        return text
    parts.append(text[kept:])
    return "".join(parts)


def _substitution(pattern: str, replacement: str) -> Callable[[str], str]:
    return functools.partial(re.compile(pattern).sub, replacement)


#: (substitution, hints): a rule runs only on text whose lowercase form contains
#: one of its hints, so clean text costs a few substring checks. Every rule is
#: linear in the length of the text (no backtracking over a word from each of
#: its characters), so hostile text cannot stall the caller.
_BUILTIN: Final[tuple[tuple[Callable[[str], str], tuple[str, ...]], ...]] = (
    # URL user-info: keep the user, drop the password. The scheme starts where a run
    # of scheme characters starts.
    (
        _substitution(
            r"(?i)(?<![a-z0-9+.\-])([a-z][a-z0-9+.\-]*://[^/\s:@]+):[^/\s@]+@",
            rf"\1:{REDACTED}@",
        ),
        ("://",),
    ),
    # Authorization header schemes.
    (
        _substitution(r"(?i)\b(bearer|basic|digest)\s+[A-Za-z0-9\-._~+/]+=*", rf"\1 {REDACTED}"),
        ("bearer", "basic", "digest"),
    ),
    # key=value, key: value, "key": "value" (value quoted or bare).
    (_redact_secret_values, ("pass", "pwd", "secret", "token", "key", "credential")),
    # JSON Web Tokens.
    (
        _substitution(
            r"\beyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}", REDACTED
        ),
        ("eyj",),
    ),
    # AWS access key ids, GitHub tokens, Slack tokens.
    (_substitution(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", REDACTED), ("akia", "asia")),
    (_substitution(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b", REDACTED), ("gh",)),
    (_substitution(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}\b", REDACTED), ("xox",)),
)

_Rule = tuple[Callable[[str], str], tuple[str, ...]]


class Redactor:
    """An ordered list of ``(pattern, replacement)`` substitutions.

    Thread-safe: :meth:`add` may run while other threads call :meth:`redact`
    (they see the list either before or after the addition, never a torn one).
    """

    def __init__(self, *, builtin: bool = True) -> None:
        self._lock = threading.Lock()
        self._rules: tuple[_Rule, ...] = ()
        if builtin:
            for substitute, hints in _BUILTIN:
                self._append(substitute, hints)

    def add(self, pattern: str | re.Pattern[str], replacement: str = REDACTED) -> None:
        """Add a pattern; every match is replaced by ``replacement``.

        ``replacement`` may use back-references (``\\1``, ``\\g<name>``) to keep
        part of the match. Raises :class:`re.error` (a ``ValueError``) at once
        for an invalid pattern rather than at the first failure.
        """
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
        # Validate the replacement template now, not during an error storm.
        compiled.sub(replacement, "")
        self._append(functools.partial(compiled.sub, replacement), ())

    def extend(self, rules: Iterable[tuple[str | re.Pattern[str], str]]) -> None:
        """Add several ``(pattern, replacement)`` rules in order."""
        for pattern, replacement in rules:
            self.add(pattern, replacement)

    def _append(self, substitute: Callable[[str], str], hints: tuple[str, ...]) -> None:
        with self._lock:
            self._rules = (*self._rules, (substitute, hints))

    def redact(self, text: str) -> str:
        """Return ``text`` with every rule applied in order."""
        lowered = text.lower()
        for substitute, hints in self._rules:
            if hints and not any(hint in lowered for hint in hints):
                continue
            text = substitute(text)
        return text

    def __call__(self, text: str) -> str:
        return self.redact(text)
