"""Fingerprints for failures that arrive without one (from any OpenTelemetry SDK).

:func:`compute_fingerprint` follows the SDK's algorithm (:mod:`faultlens._fingerprint`)
on text instead of live frames: a 64-bit BLAKE2b hash, 16 lowercase hex
characters, of

* the exception type, as sent in ``exception.type``;
* the frames of ``exception.stacktrace`` (every chained or grouped section of it,
  :func:`~faultlens_collector.ingest.stacktrace.parse_frames`) as
  ``module:function`` — application frames only, or the library frames when no
  application frame is left — with consecutive repeats (recursion) counted once;
* when no frame can be read: the message with its variable parts replaced by
  placeholders (:func:`faultlens.shared.parameterize`).

Line numbers, columns, paths outside the application's own tree, addresses and
offsets never count, so the same defect gets the same fingerprint on every host,
after restarts, and after deploys that do not touch the failing code.

:func:`fingerprint_of` takes a failure's attributes and keeps a valid
``failure.fingerprint`` (what the faultlens SDK sends) or computes one.

Cost: reading a trace or parameterizing a message takes tens of microseconds,
so results are cached (least recently used, thread-safe): per exception type and
stack-trace text up to :data:`MAX_CACHED_CHARS` characters, and per exception
type and message (whose first ``MAX_MESSAGE_CHARS`` characters only count), at
most :data:`CACHE_SIZE` entries each — a few MiB at worst. A repeated failure
costs hashing its text once, about as much as one ``sha256`` of it
(``benchmarks/bench_grouping.py``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final

from faultlens import semconv
from faultlens.shared import MAX_MESSAGE_CHARS, hash_parts, parameterize

from faultlens_collector.ingest.stacktrace import read_frames

#: Fingerprints remembered per (type, stack trace) and per (type, message).
CACHE_SIZE: Final = 2048
#: Longer stack traces are parsed every time, so the cache stays small.
MAX_CACHED_CHARS: Final = 16 * 1024

_HEX16: Final = re.compile(r"[0-9a-f]{16}")


def compute_fingerprint(exception_type: str, stacktrace: str, message: str) -> str:
    """Return the 16-lowercase-hex fingerprint of a failure (see the module docstring).

    Never raises; any of the three may be empty.
    """
    if stacktrace:
        by_frames = (
            _by_frames(exception_type, stacktrace)
            if len(stacktrace) <= MAX_CACHED_CHARS
            else _by_frames_uncached(exception_type, stacktrace)
        )
        if by_frames:
            return by_frames
    # parameterize() reads no further than MAX_MESSAGE_CHARS: cut first, cache the rest.
    return _by_message(exception_type, message[:MAX_MESSAGE_CHARS])


def fingerprint_of(attributes: Mapping[str, Any]) -> str:
    """The fingerprint of a failure given its event or log-record attributes.

    A ``failure.fingerprint`` of 16 hex characters is kept (lower-cased);
    anything else there is ignored and the fingerprint is computed from
    ``exception.type``, ``exception.stacktrace`` and ``exception.message``.
    """
    given = attributes.get(semconv.FAILURE_FINGERPRINT)
    if isinstance(given, str):
        candidate = given.strip().lower()
        if _HEX16.fullmatch(candidate):
            return candidate
    return compute_fingerprint(
        _text(attributes.get(semconv.EXCEPTION_TYPE)),
        _text(attributes.get(semconv.EXCEPTION_STACKTRACE)),
        _text(attributes.get(semconv.EXCEPTION_MESSAGE)),
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _by_frames_uncached(exception_type: str, stacktrace: str) -> str:
    """The fingerprint from the frames that count, or "" when no frame is read."""
    frames = read_frames(stacktrace)
    chosen = [frame for frame in frames if not frame[2]] or frames
    keys: list[str] = []
    for module, function, _ in chosen:
        key = module + ":" + function
        if not keys or keys[-1] != key:
            keys.append(key)
    return hash_parts((exception_type + "@" + ";".join(keys),)) if keys else ""


def _by_message_uncached(exception_type: str, message: str) -> str:
    return hash_parts((exception_type + "#" + parameterize(message),))


_by_frames: Final = functools.lru_cache(maxsize=CACHE_SIZE)(_by_frames_uncached)
_by_message: Final = functools.lru_cache(maxsize=CACHE_SIZE)(_by_message_uncached)


def cache_clear() -> None:
    """Forget every cached fingerprint (for tests and benchmarks)."""
    _by_frames.cache_clear()
    _by_message.cache_clear()
