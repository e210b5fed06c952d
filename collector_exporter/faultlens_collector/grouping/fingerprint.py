"""Fingerprints for failures that arrive without one (from any OpenTelemetry SDK).

:func:`compute_fingerprint` follows the SDK's algorithm (:mod:`faultlens.fingerprint`)
on text instead of live frames: a 64-bit BLAKE2b hash, 16 lowercase hex
characters, of

* the exception type, as sent in ``exception.type``;
* the frames of ``exception.stacktrace`` (every chained or grouped section of it,
  :func:`~faultlens_collector.grouping.stacktrace.parse_frames`) as
  ``module:function`` — application frames only, or the library frames when no
  application frame is left — with consecutive repeats (recursion) counted once;
* when no frame can be read: the message with its variable parts replaced by
  placeholders (:func:`faultlens.parameterize.parameterize`).

Line numbers, columns, paths outside the application's own tree, addresses and
offsets never count, so the same defect gets the same fingerprint on every host,
after restarts, and after deploys that do not touch the failing code.

:func:`fingerprint_of` takes a failure's attributes and keeps a valid
``failure.fingerprint`` (what the faultlens SDK sends) or computes one.

Cost: parsing a trace takes tens of microseconds, so the frame part is cached
per stack-trace text (least recently used, :data:`CACHE_SIZE` entries, texts up
to :data:`MAX_CACHED_CHARS` characters — at most a few MiB): a repeated failure
costs a dictionary lookup and one small hash. The cache is thread-safe.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, Final

from faultlens import semconv
from faultlens.fingerprint import hash_parts
from faultlens.parameterize import parameterize

from faultlens_collector.grouping.stacktrace import parse_frames

#: Stack-trace texts whose frame part is remembered.
CACHE_SIZE: Final = 2048
#: Longer stack traces are parsed every time, so the cache stays small.
MAX_CACHED_CHARS: Final = 16 * 1024

_HEX16: Final = re.compile(r"[0-9a-f]{16}")


def compute_fingerprint(exception_type: str, stacktrace: str, message: str) -> str:
    """Return the 16-lowercase-hex fingerprint of a failure (see the module docstring).

    Never raises; any of the three may be empty.
    """
    frames = _frame_part(stacktrace) if stacktrace else ""
    if frames:
        return hash_parts((exception_type + "@" + frames,))
    return hash_parts((exception_type + "#" + parameterize(message),))


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


def _frame_part(stacktrace: str) -> str:
    if len(stacktrace) > MAX_CACHED_CHARS:
        return _signature(stacktrace)
    return _cached_signature(stacktrace)


def _signature(stacktrace: str) -> str:
    """``module:function`` of the frames that count, ``;``-joined; "" when there are none."""
    frames = parse_frames(stacktrace)
    chosen = [frame for frame in frames if not frame.library] or frames
    keys: list[str] = []
    for frame in chosen:
        key = frame.module + ":" + frame.function
        if not keys or keys[-1] != key:
            keys.append(key)
    return ";".join(keys)


_cached_signature: Final = functools.lru_cache(maxsize=CACHE_SIZE)(_signature)


def cache_clear() -> None:
    """Forget every cached frame part (for tests and benchmarks)."""
    _cached_signature.cache_clear()
