"""The exceptions a failure's stack trace names as its causes.

An exception raised while handling another, or wrapping it, carries the other in
its printed stack trace. :func:`chain_of` reads those *cause* types out of
``exception.stacktrace`` text, in the formats the grouping code reads
(:mod:`faultlens_collector.ingest.stacktrace`):

* **Python**: the sections before "The above exception was the direct cause of
  the following exception:" (``raise ... from``) and before "During handling of
  the above exception, another exception occurred:" (implicit chaining); each
  section's exception line (``pkg.errors.Timeout: pricing timed out``) names a
  cause. Members of an ``ExceptionGroup`` (the ``| ``-framed sections) are causes
  of the group too.
* **Java** (Kotlin, Scala): every ``Caused by: java.net.SocketTimeoutException:
  …`` line; ``Suppressed:`` exceptions are not causes.
* **JavaScript / Node**: ``[cause]: TypeError: …`` (how ``util.inspect`` prints
  ``error.cause``) and ``Caused by: …`` / ``caused by: …`` lines (what
  ``verror``-style libraries print). A plain ``error.stack`` carries no cause.

The failure's own type is never among its causes (the last Python section, the
first Java line). Types are returned as printed, innermost cause last for Java
and first for Python — the order does not matter to :func:`names_cause`, which
compares a failure's ``exception.type`` with them, allowing for a module prefix
on either side (Python's traceback omits ``__main__.``; OTel SDKs differ on
whether they qualify names).

Never raises; text in no known format has no causes. Bounded: only the first
:data:`MAX_CAUSES` causes are kept, and lines longer than
:data:`MAX_LINE_CHARS` are skipped.
"""

from __future__ import annotations

import functools
import re
from typing import Final

#: Causes kept per stack trace.
MAX_CAUSES: Final = 16
#: No exception line worth reading is longer than this.
MAX_LINE_CHARS: Final = 4096
#: Stack traces remembered, and the longest one remembered.
CACHE_SIZE: Final = 2048
MAX_CACHED_CHARS: Final = 16 * 1024

_PY_SEPARATORS: Final = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
#: ``pkg.mod.Type: message``, ``Type``, ``pkg.Type: `` — a dotted identifier then ``:`` or end.
_EXCEPTION_LINE: Final = re.compile(r"([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)(?::|$)")
_JAVA_CAUSE: Final = re.compile(r"\s*(?:Caused by|caused by):\s+(.*)$")
_JS_CAUSE: Final = re.compile(r"\s*\[cause\]:\s+(.*)$")
_GROUP_MARGIN: Final = re.compile(r"\s*(?:\|\s?|\+-[-+ \d.]*)")


def chain_of(stacktrace: str) -> tuple[str, ...]:
    """The exception types ``stacktrace`` names as causes of the failure it belongs to.

    Results for texts up to :data:`MAX_CACHED_CHARS` are cached (least recently used,
    :data:`CACHE_SIZE` entries): the same defect sends the same text every time.
    """
    if not isinstance(stacktrace, str) or not stacktrace:
        return ()
    if len(stacktrace) <= MAX_CACHED_CHARS:
        return _cached_chain(stacktrace)
    return _chain_uncached(stacktrace)


def _chain_uncached(stacktrace: str) -> tuple[str, ...]:
    try:
        if any(separator in stacktrace for separator in _PY_SEPARATORS) or (
            "Exception Group Traceback" in stacktrace
        ):
            return _python_causes(stacktrace)
        return _line_causes(stacktrace)
    except Exception:  # a reader bug must not lose the failure
        return ()


_cached_chain: Final = functools.lru_cache(maxsize=CACHE_SIZE)(_chain_uncached)


def names_cause(chain: tuple[str, ...], exception_type: str) -> bool:
    """Whether ``exception_type`` is one of the causes in ``chain`` (module prefixes on
    either side ignored: ``TimeoutError`` matches ``builtins.TimeoutError`` and
    ``app.errors.Upstream`` matches ``errors.Upstream``)."""
    if not exception_type or not chain:
        return False
    for cause in chain:
        if cause == exception_type:
            return True
        if cause.endswith("." + exception_type) or exception_type.endswith("." + cause):
            return True
    return False


def _python_causes(text: str) -> tuple[str, ...]:
    """Every section's exception type but the last one's (the failure itself)."""
    pattern = "|".join(re.escape(separator) for separator in _PY_SEPARATORS)
    sections = re.split(pattern, text)
    causes: list[str] = []
    for section in sections[:-1]:
        causes.extend(_section_types(section))
    last = _section_types(sections[-1])
    if "Exception Group Traceback" in sections[-1]:
        causes.extend(last[1:])  # the group is printed first, its members after it
    else:
        causes.extend(last[:-1])
    return tuple(_dedupe(causes)[:MAX_CAUSES])


def _section_types(section: str) -> list[str]:
    """The exception lines of one Python traceback section, in order: lines that follow
    a frame (``File "…"`` plus its source line) and start at the margin."""
    found: list[str] = []
    after_frames = False
    for raw in section.splitlines():
        if len(raw) > MAX_LINE_CHARS:
            continue
        margin = _GROUP_MARGIN.match(raw)
        line = raw[margin.end() :] if margin and margin.end() else raw
        stripped = line.strip()
        if not stripped:
            # "+---------------- 2 ----------------" opens a group member, which may
            # start with its exception line (a member that was never raised).
            after_frames = after_frames or "+-" in raw
            continue
        if stripped.startswith(("Traceback (most recent call last)", "Exception Group Traceback")):
            after_frames = False
            continue
        if line[:1] in " \t" or stripped.startswith(("File ", "^", "~")):
            after_frames = True
            continue
        if after_frames:
            match = _EXCEPTION_LINE.match(stripped)
            if match is not None:
                found.append(match.group(1))
            after_frames = False
    return found


def _line_causes(text: str) -> tuple[str, ...]:
    """Java ``Caused by:`` and JavaScript ``[cause]:`` lines."""
    causes: list[str] = []
    for line in text.splitlines():
        if len(line) > MAX_LINE_CHARS or "ause" not in line:
            continue
        match = _JAVA_CAUSE.match(line) or _JS_CAUSE.match(line)
        if match is None:
            continue
        exception = _EXCEPTION_LINE.match(match.group(1).strip())
        if exception is not None:
            causes.append(exception.group(1))
            if len(causes) >= MAX_CAUSES:
                break
    return tuple(_dedupe(causes))


def _dedupe(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))
